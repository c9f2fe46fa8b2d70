#!/usr/bin/env bash
# Offline validation of the Kubernetes manifests (k8s/) and of scripts/k8s-render's output.
# Installs its npm dependencies into tests/k8s/node_modules on first use (or when
# package-lock.json changed), then runs validate.mjs. No cluster and no kubectl needed.
# Prints one line per check and ends with "N passed, M failed"; exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "tests/k8s: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "tests/k8s: node 18 or later is required, found $(node --version)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# npm ci records what it installed in node_modules/.package-lock.json.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ ! -d node_modules/kubernetes-models ] || [ ! -d node_modules/yaml ]; then
  echo "tests/k8s: installing npm dependencies (npm ci)"
  # kubernetes-models declares node >= 22 but works on node 20; do not let engine checks stop it.
  log=$(mktemp)
  if ! npm ci --no-audit --no-fund --loglevel=error --engine-strict=false >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "tests/k8s: npm ci failed" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  rm -f "$log"
fi

exec node validate.mjs
