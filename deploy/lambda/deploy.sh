#!/usr/bin/env bash
# Deploy the Remotion Lambda function and site for render-export, then print the worker's
# environment. See deploy/lambda/RUNBOOK.md.
#
# stdout carries only the environment block (so `deploy.sh > lambda.env` works); progress,
# warnings and errors go to stderr.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

usage() {
  cat <<'EOF'
Usage: deploy/lambda/deploy.sh [options]

Deploys the Remotion Lambda function (`npx remotion lambda functions deploy`) and the site
(`npx remotion lambda sites create`) from remotion/, with the fonts of remotion/src/fonts.json
copied into remotion/public/fonts first (from Debian's fonts-noto-* packages, or
RENDER_FONTS_DIR; `make setup` installs them), then prints the `export VAR=value`
lines the render worker needs. Both steps are idempotent: an existing function with the
same version/memory/disk/timeout is reused, and the site is overwritten in place.

Options (environment variable in brackets, then the default):
  --region REGION        AWS region [AWS_REGION] us-east-1
  --site-name NAME       S3 site name [REMOTION_SITE_NAME] render-export
  --memory MB            function memory [REMOTION_LAMBDA_MEMORY_MB] 3008
  --disk MB              function ephemeral disk [REMOTION_LAMBDA_DISK_MB] 10240
  --timeout SECONDS      function timeout [REMOTION_TIMEOUT_SECONDS] 900
  --entry FILE           entry point, relative to remotion/ [REMOTION_ENTRY_POINT] src/index.ts
  --render-mode MODE     RENDER_MODE to suggest: ssr | lambda | auto (default auto)
  --dry-run              print the commands and a placeholder environment; run nothing
  -h, --help             show this help

Also read: WEBHOOK_SECRET (reused if set, else a new 64-hex-char secret is generated),
WEBHOOK_URL (public https URL of the worker's /webhooks/remotion), REMOTION_FRAMES_PER_LAMBDA
(20), REMOTION_MAX_RETRIES (3), REMOTION_PRIVACY (passed to `sites create` when no-acl),
REMOTION_DIR (the Remotion project, default remotion/ of this repo).

AWS credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (or the REMOTION_AWS_* pair),
AWS_PROFILE (or REMOTION_AWS_PROFILE), or a [default] profile in ~/.aws/credentials.
The identity needs deploy/lambda/iam/user-policy.json; the role remotion-lambda-role needs
deploy/lambda/iam/role-policy.json.

Example:
  AWS_PROFILE=render-deploy deploy/lambda/deploy.sh > lambda.env && chmod 600 lambda.env
EOF
}

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}
warn() { printf 'deploy.sh: warning: %s\n' "$*" >&2; }
log() { printf '==> %s\n' "$*" >&2; }

REGION=${AWS_REGION:-us-east-1}
SITE_NAME=${REMOTION_SITE_NAME:-render-export}
MEMORY=${REMOTION_LAMBDA_MEMORY_MB:-3008}
DISK=${REMOTION_LAMBDA_DISK_MB:-10240}
TIMEOUT=${REMOTION_TIMEOUT_SECONDS:-900}
ENTRY=${REMOTION_ENTRY_POINT:-src/index.ts}
REMOTION_DIR=${REMOTION_DIR:-$ROOT/remotion}
FRAMES_PER_LAMBDA=${REMOTION_FRAMES_PER_LAMBDA:-20}
MAX_RETRIES=${REMOTION_MAX_RETRIES:-3}
RENDER_MODE_SUGGESTED=auto
DRY_RUN=0

need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --region=*) REGION=${1#*=} ;;
    --site-name=*) SITE_NAME=${1#*=} ;;
    --memory=*) MEMORY=${1#*=} ;;
    --disk=*) DISK=${1#*=} ;;
    --timeout=*) TIMEOUT=${1#*=} ;;
    --entry=*) ENTRY=${1#*=} ;;
    --render-mode=*) RENDER_MODE_SUGGESTED=${1#*=} ;;
    --region | --site-name | --memory | --disk | --timeout | --entry | --render-mode)
      need_value "$@"
      case $1 in
        --region) REGION=$2 ;;
        --site-name) SITE_NAME=$2 ;;
        --memory) MEMORY=$2 ;;
        --disk) DISK=$2 ;;
        --timeout) TIMEOUT=$2 ;;
        --entry) ENTRY=$2 ;;
        --render-mode) RENDER_MODE_SUGGESTED=$2 ;;
      esac
      shift
      ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

# --- validate the inputs (same bounds as @remotion/lambda 4.0.x validates) ----------------

check_int_range() { # NAME VALUE MIN MAX
  [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be an integer, got '$2'"
  ((10#$2 >= $3 && 10#$2 <= $4)) || die "$1 must be between $3 and $4, got $2"
}
check_int_range --memory "$MEMORY" 512 10240
check_int_range --disk "$DISK" 512 10240
check_int_range --timeout "$TIMEOUT" 15 900
check_int_range REMOTION_FRAMES_PER_LAMBDA "$FRAMES_PER_LAMBDA" 1 100000
check_int_range REMOTION_MAX_RETRIES "$MAX_RETRIES" 0 100
[[ $REGION =~ ^[a-z]{2}(-gov)?-[a-z]+-[0-9]$ ]] || die "--region '$REGION' is not an AWS region"
site_re="^[-0-9a-zA-Z!_.*'()]+\$"
[[ $SITE_NAME =~ $site_re ]] ||
  die "--site-name '$SITE_NAME' may only contain letters, digits and -!_.*'()"
case $RENDER_MODE_SUGGESTED in
  ssr | lambda | auto) ;;
  *) die "--render-mode must be ssr, lambda or auto, got '$RENDER_MODE_SUGGESTED'" ;;
esac

# --- tools, project and version pin ------------------------------------------------------

for tool in node npx; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' is not on PATH: install Node.js >= 20 (the Remotion CLI runs with npx)"
done
[[ -f $REMOTION_DIR/package.json ]] || die "no Remotion project at $REMOTION_DIR (set REMOTION_DIR)"
if [[ $ENTRY == /* ]]; then entry_path=$ENTRY; else entry_path=$REMOTION_DIR/$ENTRY; fi
[[ -f $entry_path ]] || die "entry point $entry_path does not exist (see --entry)"

json_field() { # FILE KEY... : the string at that key path of a JSON file, or nothing
  node -e '
    const [file, ...keys] = process.argv.slice(1);
    let v = JSON.parse(require("fs").readFileSync(file, "utf8"));
    for (const k of keys) v = v == null ? undefined : v[k];
    process.stdout.write(v == null ? "" : String(v));' "$@"
}
NPM_PIN=$(json_field "$REMOTION_DIR/package.json" dependencies @remotion/lambda)
[[ -n $NPM_PIN ]] || die "$REMOTION_DIR/package.json does not depend on @remotion/lambda"
PY_PIN=$(sed -n 's/.*"remotion-lambda==\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml" | head -n1)
[[ -n $PY_PIN ]] || die "pyproject.toml does not pin remotion-lambda==<version>"
if [[ $NPM_PIN != "$PY_PIN" ]]; then
  die "@remotion/lambda is $NPM_PIN in remotion/package.json but remotion-lambda is $PY_PIN in" \
    "pyproject.toml: the function only accepts calls from the same version (\"Version mismatch\")." \
    "Pin both to one exact version first."
fi
INSTALLED=$REMOTION_DIR/node_modules/@remotion/lambda/package.json
if [[ -f $INSTALLED ]]; then
  installed_version=$(json_field "$INSTALLED" version)
  [[ $installed_version == "$NPM_PIN" ]] ||
    die "installed @remotion/lambda is $installed_version but $NPM_PIN is pinned: run 'make setup'" \
      "(or 'npm ci' in remotion/)"
elif ((DRY_RUN)); then
  warn "$REMOTION_DIR/node_modules is not installed (run 'make setup' before deploying)"
else
  die "@remotion/lambda is not installed in $REMOTION_DIR/node_modules: run 'make setup'" \
    "(or 'npm ci' in remotion/)"
fi
VERSION=$NPM_PIN

# --- fonts: the site carries them (Lambda's Chromium has only its own fonts) ---------------

# `sites create` bundles remotion/public into the site; the compositions load the fonts of
# src/fonts.json from its fonts/ dir. They are copied there from Debian's packages (not in git).
STAGE_FONTS=$REMOTION_DIR/scripts/stage-fonts.mjs
[[ -f $STAGE_FONTS ]] || die "$STAGE_FONTS is missing: the site would render text without its fonts"
if ((DRY_RUN)); then
  if ! fonts_out=$(node "$STAGE_FONTS" --check "$REMOTION_DIR/public" 2>&1); then
    warn "$fonts_out"
  fi
else
  log "copying the fonts into $REMOTION_DIR/public/fonts (the site carries them)"
  if ! fonts_out=$(node "$STAGE_FONTS" "$REMOTION_DIR/public" 2>&1); then
    die "$fonts_out"
  fi
  printf '%s\n' "$fonts_out" >&2
fi

# --- AWS credentials (the same sources the Remotion CLI accepts) -------------------------

credentials_problem() {
  if [[ -n ${AWS_PROFILE:-}${REMOTION_AWS_PROFILE:-} ]]; then
    return 0
  fi
  if [[ -n ${AWS_ACCESS_KEY_ID:-}${REMOTION_AWS_ACCESS_KEY_ID:-} ]]; then
    [[ -n ${AWS_SECRET_ACCESS_KEY:-}${REMOTION_AWS_SECRET_ACCESS_KEY:-} ]] ||
      echo "an AWS access key id is set but no secret access key" \
        "(set AWS_SECRET_ACCESS_KEY or REMOTION_AWS_SECRET_ACCESS_KEY)"
    return 0
  fi
  local file=${AWS_SHARED_CREDENTIALS_FILE:-${HOME:-/nonexistent}/.aws/credentials}
  if [[ -r $file ]] && grep -q '^\[default\]' "$file"; then
    return 0
  fi
  echo "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" \
    "(or REMOTION_AWS_ACCESS_KEY_ID and REMOTION_AWS_SECRET_ACCESS_KEY), or AWS_PROFILE," \
    "or add a [default] profile to ~/.aws/credentials. The identity needs the policy in" \
    "deploy/lambda/iam/user-policy.json (see deploy/lambda/iam/README.md)."
}
problem=$(credentials_problem)
if [[ -n $problem ]]; then
  if ((DRY_RUN)); then warn "$problem"; else die "$problem"; fi
fi

# --- the two Remotion CLI commands -------------------------------------------------------

# --no-install: always the pinned CLI from remotion/node_modules, never one fetched ad hoc.
FUNCTION_CMD=(npx --no-install remotion lambda functions deploy
  "--region=$REGION" "--memory=$MEMORY" "--disk=$DISK" "--timeout=$TIMEOUT" --quiet)
SITE_CMD=(npx --no-install remotion lambda sites create "$ENTRY"
  "--site-name=$SITE_NAME" "--region=$REGION" --quiet)
if [[ ${REMOTION_PRIVACY:-} == no-acl ]]; then
  SITE_CMD+=(--privacy=no-acl) # bucket with ACLs disabled
fi

show_cmd() {
  local q
  q=$(printf ' %q' "$@")
  printf '+ (cd %q &&%s)\n' "$REMOTION_DIR" "$q" >&2
}

# Runs a command in remotion/ and prints its stdout without colour codes; stderr passes
# through. NO_COLOR (not FORCE_COLOR, which the Remotion CLI treats as "on") disables chalk.
run_in_remotion() {
  local out
  out=$(cd "$REMOTION_DIR" && NO_COLOR=1 "$@") || return $?
  printf '%s\n' "$out" | sed $'s/\x1b\\[[0-9;]*[A-Za-z]//g'
}

SPECULATED_FUNCTION="remotion-render-${VERSION//./-}-mem${MEMORY}mb-disk${DISK}mb-${TIMEOUT}sec"

if ((DRY_RUN)); then
  log "dry run: these commands would run (nothing was executed)"
  show_cmd "${FUNCTION_CMD[@]}"
  show_cmd "${SITE_CMD[@]}"
  FUNCTION_NAME=$SPECULATED_FUNCTION
  SERVE_URL="https://<remotion bucket>.s3.$REGION.amazonaws.com/sites/$SITE_NAME/index.html"
  BUCKET="<remotion bucket: remotionlambda-...>"
else
  log "deploying the Lambda function (Remotion $VERSION, ${MEMORY}MB memory, ${DISK}MB disk, ${TIMEOUT}s timeout, $REGION)"
  show_cmd "${FUNCTION_CMD[@]}"
  if ! fn_out=$(run_in_remotion "${FUNCTION_CMD[@]}"); then
    die "'remotion lambda functions deploy' failed (its error is above); see the troubleshooting" \
      "section of deploy/lambda/RUNBOOK.md"
  fi
  # With --quiet the CLI prints just the function name.
  FUNCTION_NAME=$(printf '%s\n' "$fn_out" | grep -Eo 'remotion-render-[A-Za-z0-9-]+' | tail -n1 || true)
  [[ -n $FUNCTION_NAME ]] ||
    die "could not read the function name from 'functions deploy --quiet' output: $fn_out"
  if [[ $FUNCTION_NAME != "$SPECULATED_FUNCTION" ]]; then
    warn "function is $FUNCTION_NAME, expected $SPECULATED_FUNCTION"
  fi
  log "function: $FUNCTION_NAME"

  log "deploying the site '$SITE_NAME' from $ENTRY (bundles the compositions, uploads to S3)"
  show_cmd "${SITE_CMD[@]}"
  if ! site_out=$(run_in_remotion "${SITE_CMD[@]}"); then
    die "'remotion lambda sites create' failed (its error is above); see the troubleshooting" \
      "section of deploy/lambda/RUNBOOK.md"
  fi
  # --quiet hides the progress bars only; the CLI still prints "Serve URL  <url>" (and
  # "Serve URL = <url>" at --log=verbose).
  SERVE_URL=$(printf '%s\n' "$site_out" |
    sed -n 's/^.*Serve URL[[:space:]=]*\(https:\/\/[^[:space:]]*\).*$/\1/p' | head -n1)
  [[ -n $SERVE_URL ]] ||
    die "could not read the serve URL from 'sites create' output: $site_out"
  # https://<bucket>.s3.<region>.amazonaws.com/sites/<site>/index.html
  host=${SERVE_URL#https://}
  host=${host%%/*}
  BUCKET=${host%%.s3.*}
  [[ -n $BUCKET && $BUCKET != "$host" ]] ||
    die "could not read the bucket from the serve URL $SERVE_URL"
  log "serve URL: $SERVE_URL"
  log "bucket: $BUCKET"
fi

# --- webhook secret and URL --------------------------------------------------------------

if [[ -n ${WEBHOOK_SECRET:-} ]]; then
  log "keeping WEBHOOK_SECRET from the environment (renders in flight keep verifying)"
else
  if command -v openssl >/dev/null 2>&1; then
    WEBHOOK_SECRET=$(openssl rand -hex 32)
  elif command -v python3 >/dev/null 2>&1; then
    WEBHOOK_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  else
    die "need openssl or python3 to generate WEBHOOK_SECRET (or set WEBHOOK_SECRET)"
  fi
  log "generated a new WEBHOOK_SECRET: store it with the worker's secrets"
fi

if [[ -n ${WEBHOOK_URL:-} ]]; then
  [[ $WEBHOOK_URL == https://* ]] || warn "WEBHOOK_URL should be a public https:// URL"
  [[ $WEBHOOK_URL == */webhooks/remotion ]] ||
    warn "WEBHOOK_URL should end in /webhooks/remotion (the worker's webhook path)"
else
  warn "WEBHOOK_URL is not set: fill in the commented placeholder in the output" \
    "(until then the worker only polls)"
fi

# --- the environment block (stdout) ------------------------------------------------------

quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
emit() { printf 'export %s=%s\n' "$1" "$(quote "$2")"; }

printf '# Remotion Lambda environment for the render worker: deploy/lambda/deploy.sh,\n'
dry_note=""
((DRY_RUN)) && dry_note=" (DRY RUN: placeholders, nothing was deployed)"
printf '# Remotion %s, %s%s.\n' "$VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$dry_note"
emit AWS_REGION "$REGION"
emit REMOTION_FUNCTION_NAME "$FUNCTION_NAME"
emit REMOTION_SERVE_URL "$SERVE_URL"
emit REMOTION_BUCKET "$BUCKET"
emit REMOTION_FRAMES_PER_LAMBDA "$FRAMES_PER_LAMBDA"
emit REMOTION_MAX_RETRIES "$MAX_RETRIES"
emit REMOTION_TIMEOUT_SECONDS "$TIMEOUT"
if [[ -n ${REMOTION_PRIVACY:-} ]]; then
  emit REMOTION_PRIVACY "$REMOTION_PRIVACY"
fi
emit WEBHOOK_SECRET "$WEBHOOK_SECRET"
if [[ -n ${WEBHOOK_URL:-} ]]; then
  emit WEBHOOK_URL "$WEBHOOK_URL"
else
  printf '# Public https URL that reaches the worker on WEBHOOK_PORT (8090), path /webhooks/remotion\n'
  printf '# (while unset, Lambda sends no webhooks and the worker relies on polling):\n'
  printf "# export WEBHOOK_URL='https://<public host>/webhooks/remotion'\n"
fi
printf '# auto: renders of AUTO_LAMBDA_MIN_FRAMES+ frames, or while the SSR queue is deeper than\n'
printf '# AUTO_MAX_SSR_QUEUE, go to Lambda; lambda: all; ssr: none (the rollback).\n'
emit RENDER_MODE "$RENDER_MODE_SUGGESTED"
