#!/usr/bin/env bash
# Install what the project needs, only when missing. Parts: python, node-tools, remotion,
# polyglot, system.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
    return 1
  fi
  log "apt-get install ${missing[*]}"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_part() {
  local py
  py=$(command -v python3.11 || command -v python3)
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $py"
    "$py" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip uv >/dev/null
  log "installing Python dependencies (requirements.lock)"
  .venv/bin/uv pip sync -q --python .venv/bin/python requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
}

node_tools_part() {
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing repository tooling (buf)"
  npm ci --no-audit --no-fund --loglevel=error
}

remotion_part() {
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing Remotion (remotion/package-lock.json)"
  (cd remotion && npm ci --no-audit --no-fund --loglevel=error)
}

polyglot_part() {
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing the Node test client (tests/polyglot/package-lock.json)"
  (cd tests/polyglot && npm ci --no-audit --no-fund --loglevel=error)
}

system_part() {
  # Chromium for Remotion (never downloaded by Remotion), Redis and PostgreSQL for tests/demo,
  # and the fonts the compositions draw text with.
  local want=()
  [ -x /usr/bin/chromium-headless-shell ] || want+=(chromium-headless-shell)
  command -v redis-server >/dev/null || want+=(redis-server)
  command -v pg_ctlcluster >/dev/null || command -v pg_ctl >/dev/null || want+=(postgresql)
  command -v shellcheck >/dev/null || want+=(shellcheck)  # lints deploy/lambda/deploy.sh
  [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
  # The fonts of every text scene (remotion/src/fonts.json): Noto Sans (Latin, Greek,
  # Cyrillic), Arabic, Hebrew, Devanagari, Thai; Noto Sans CJK; Noto Color Emoji. Copied
  # into remotion/public/fonts, which the SSR bundle and the Lambda site carry.
  apt_install fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji
  if command -v node >/dev/null; then
    node remotion/scripts/stage-fonts.mjs
  fi
}

for part in "$@"; do
  case "$part" in
    python) python_part ;;
    node-tools) node_tools_part ;;
    remotion) remotion_part ;;
    polyglot) polyglot_part ;;
    system) system_part ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
