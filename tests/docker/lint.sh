#!/usr/bin/env bash
# Lints the Dockerfile with dockerfile-utils (npm) and checks the image contract (lint.mjs).
# Installs its npm dependencies into tests/docker/node_modules on first use (or when
# package-lock.json changed). No Docker engine needed.
# Prints the findings and one line per check, ends with "N passed, M failed"; exit status 1 on
# any problem.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "tests/docker: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ ! -d node_modules/dockerfile-utils ] || [ ! -d node_modules/dockerfile-ast ]; then
  echo "tests/docker: installing npm dependencies (npm ci)"
  log=$(mktemp)
  if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "tests/docker: npm ci failed" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  rm -f "$log"
fi

exec node lint.mjs
