#!/usr/bin/env bash
# Fail when the contract breaks wire/JSON compatibility with origin/main (or main).
set -euo pipefail
cd "$(dirname "$0")/.."
against=""
for ref in origin/main main; do
  if git rev-parse --verify -q "$ref" >/dev/null && git cat-file -e "$ref:protos/buf.yaml" 2>/dev/null; then
    against=$ref; break
  fi
done
if [ -z "$against" ]; then
  echo "buf breaking: no earlier contract on main to compare with"
  exit 0
fi
node_modules/.bin/buf breaking protos --against ".git#ref=$against,subdir=protos"
