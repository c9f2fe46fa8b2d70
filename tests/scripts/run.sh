#!/usr/bin/env bash
# Tests of the runbook scripts in scripts/: shellcheck, --help, bad usage, the commands printed
# by --dry-run, real runs against a fake kubectl (fake-kubectl) and, for tenant-test, against a
# small local stand-in of the tenant API (mock-tenant-api.mjs, loopback only).
# One line per check, last line "N passed, M failed" (", K skipped" when a tool is missing);
# exit status 1 on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
S=$root/scripts
SCRIPTS=(k8s-render load-test tenant-test cold-start-check emergency)

passed=0 failed=0 skipped=0
work=$(mktemp -d)
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
skip() { skipped=$((skipped + 1)); echo "skip $1${2:+: $2}"; }

# expect_out LABEL EXPECTED ACTUAL: exact comparison of printed commands.
expect_out() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "$(printf 'expected:\n%s\ngot:\n%s' "$2" "$3")"; fi
}

# run_capture CMD...: sets $out (stdout), $err (stderr), $rc.
run_capture() {
  rc=0
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}

# ---- static checks -----------------------------------------------------------------------------

have_shellcheck=0
if command -v shellcheck >/dev/null 2>&1; then
  have_shellcheck=1
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tests/scripts: installing shellcheck (apt-get)"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1; }; then
    have_shellcheck=1
  fi
fi

for s in "${SCRIPTS[@]}"; do
  f=$S/$s
  if [ ! -x "$f" ]; then bad "$s exists and is executable"; continue; fi
  if bash -n "$f" 2>"$work/err"; then ok "$s: bash syntax"; else bad "$s: bash syntax" "$(cat "$work/err")"; fi
  if head -n 1 "$f" | grep -qx '#!/usr/bin/env bash' && grep -qx 'set -euo pipefail' "$f"; then
    ok "$s: bash with set -euo pipefail"
  else
    bad "$s: bash with set -euo pipefail"
  fi
  if [ "$have_shellcheck" = 1 ]; then
    if shellcheck -x "$f" >"$work/sc" 2>&1; then ok "$s: shellcheck clean"; else bad "$s: shellcheck clean" "$(head -n 20 "$work/sc")"; fi
  else
    skip "$s: shellcheck clean" "shellcheck not installed"
  fi
  run_capture "$f" --help
  if [ "$rc" = 0 ] && grep -q '^Usage: scripts/' <<<"$out" && [ -z "$err" ]; then ok "$s --help"; else bad "$s --help" "rc=$rc"; fi
  run_capture "$f" --no-such-option
  if [ "$rc" = 2 ] && [ -z "$out" ] && [ "$(wc -l <<<"$err")" = 1 ] && grep -q "^$s: " <<<"$err"; then
    ok "$s rejects an unknown option with one line, status 2"
  else
    bad "$s rejects an unknown option with one line, status 2" "rc=$rc err=$err"
  fi
done
for f in "$here/run.sh" "$here/fake-kubectl"; do
  if [ "$have_shellcheck" = 1 ]; then
    if shellcheck -x "$f" >"$work/sc" 2>&1; then ok "tests/scripts/$(basename "$f"): shellcheck clean"; else bad "tests/scripts/$(basename "$f"): shellcheck clean" "$(head -n 20 "$work/sc")"; fi
  fi
done

# ---- --dry-run prints the commands and runs nothing ------------------------------------------------

# A kubectl that must not be called during --dry-run.
cat >"$work/tripwire" <<EOF
#!/usr/bin/env bash
echo called >>"$work/tripwire.log"
exit 97
EOF
chmod +x "$work/tripwire"

dry() { KUBECTL="$work/tripwire" run_capture "$@"; }

dry "$S/emergency" --dry-run scale-down
expect_out "emergency scale-down --dry-run" \
"kubectl patch hpa spark-executor-hpa --type=merge -p '{\"spec\":{\"minReplicas\":1,\"maxReplicas\":1}}'
kubectl scale deployment/spark-executor --replicas=1" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" -n prod --dry-run scale-down --replicas 2
expect_out "emergency -n prod scale-down --replicas 2 --dry-run" \
"kubectl -n prod patch hpa spark-executor-hpa --type=merge -p '{\"spec\":{\"minReplicas\":2,\"maxReplicas\":2}}'
kubectl -n prod scale deployment/spark-executor --replicas=2" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" pin-hpa --dry-run
expect_out "emergency pin-hpa --dry-run (the guide's HPA pin)" \
"kubectl patch hpa spark-executor-hpa --type=merge -p '{\"spec\":{\"minReplicas\":1,\"maxReplicas\":1}}'" "${out//$work\/tripwire/kubectl}"

HPA_MIN_REPLICAS=3 HPA_MAX_REPLICAS=20 dry "$S/emergency" --dry-run restore-hpa
expect_out "emergency restore-hpa --dry-run reads HPA_MIN_REPLICAS/HPA_MAX_REPLICAS" \
"kubectl patch hpa spark-executor-hpa --type=merge -p '{\"spec\":{\"minReplicas\":3,\"maxReplicas\":20}}'" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" --dry-run lift-tenant-limits
expect_out "emergency lift-tenant-limits --dry-run (TENANT_DEFAULT_QPS=1000)" \
"kubectl set env deployment/spark-executor --containers=executor TENANT_DEFAULT_QPS=1000" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" --dry-run lift-tenant-limits --qps 500 --burst 1000
expect_out "emergency lift-tenant-limits --qps 500 --burst 1000 --dry-run" \
"kubectl set env deployment/spark-executor --containers=executor TENANT_DEFAULT_QPS=500 TENANT_BURST=1000" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" --dry-run restore-tenant-limits
expect_out "emergency restore-tenant-limits --dry-run" \
"kubectl set env deployment/spark-executor --containers=executor TENANT_DEFAULT_QPS=2 TENANT_BURST=4" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" --dry-run raise-resources
expect_out "emergency raise-resources --dry-run (the guide's 2 CPU / 2Gi patch)" \
"kubectl patch deployment spark-executor --type=strategic -p '{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"executor\",\"resources\":{\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"}}}]}}}}'" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" --dry-run --context prod-eu restart
expect_out "emergency --context prod-eu restart --dry-run" \
"kubectl --context prod-eu rollout restart deployment/spark-executor
kubectl --context prod-eu rollout status deployment/spark-executor --timeout=600s" "${out//$work\/tripwire/kubectl}"

dry "$S/emergency" --dry-run status
expect_out "emergency status --dry-run" \
"kubectl get hpa spark-executor-hpa
kubectl get deployment spark-executor
kubectl get pods -l app=spark-executor -o wide
kubectl top pods -l app=spark-executor" "${out//$work\/tripwire/kubectl}"

dry "$S/cold-start-check" --dry-run -n prod
expect_out "cold-start-check --dry-run: delete one pod, wait, logs | grep WARMUP" \
"kubectl -n prod get pods -l app=spark-executor --sort-by=.metadata.creationTimestamp -o name
kubectl -n prod delete 'pod/<oldest-pod>' --wait=true
kubectl -n prod wait --for=condition=Ready 'pod/<new-pod>' --timeout=180s
kubectl -n prod logs 'pod/<new-pod>' | grep WARMUP" "${out//$work\/tripwire/kubectl}"

dry "$S/cold-start-check" --dry-run --all
if grep -qx "kubectl delete pod -l app=spark-executor --wait=true" <<<"${out//$work\/tripwire/kubectl}"; then
  ok "cold-start-check --all --dry-run: the guide's delete by label"
else
  bad "cold-start-check --all --dry-run: the guide's delete by label" "$out"
fi

dry "$S/load-test" --dry-run --watch-hpa
expect_out "load-test --dry-run: the guide's autocannon command, key masked, then the HPA" \
"npx --yes autocannon@8.0.0 --renderStatusCodes -c 50 -d 30 -p 10 -H X-Org-Id=orgA -H 'X-Api-Key=***' 'http://localhost:4001/api/private/open-orders?symbol=BTCUSDT'
kubectl get hpa spark-executor-hpa" "${out//$work\/tripwire/kubectl}"

SPARK_API_KEY=very-private-demo dry "$S/load-test" --dry-run --url http://127.0.0.1:4001/api/private/health -c 10 -d 5 -p 1 --org orgB
if [ "$rc" = 0 ] && ! grep -q very-private-demo <<<"$out$err" \
  && grep -qx "npx --yes autocannon@8.0.0 --renderStatusCodes -c 10 -d 5 -p 1 -H X-Org-Id=orgB -H 'X-Api-Key=\*\*\*' http://127.0.0.1:4001/api/private/health" <<<"$out"; then
  ok "load-test --dry-run with options; the key is never printed"
else
  bad "load-test --dry-run with options; the key is never printed" "$out"
fi

if [ -e "$work/tripwire.log" ]; then bad "--dry-run never called kubectl"; else ok "--dry-run never called kubectl"; fi

for args in "emergency --dry-run scale-down --replicas 0" "emergency --dry-run pin-hpa --min 3 --max 2" \
  "emergency --dry-run raise-resources --cpu lots" "emergency --dry-run raise-resources --memory 2GB" \
  "emergency --dry-run fly-to-the-moon" "cold-start-check --dry-run --timeout soon" "load-test --dry-run -c many" \
  "tenant-test --key k" "tenant-test --org orgA --key k --url ftp://x"; do
  read -r -a argv <<<"$args"
  dry "$S/${argv[0]}" "${argv[@]:1}"
  if [ "$rc" = 2 ] && [ -z "$out" ] && [ "$(wc -l <<<"$err")" = 1 ]; then ok "refuses: $args ($err)"; else bad "refuses: $args" "rc=$rc out=$out err=$err"; fi
done

# ---- real runs against the fake kubectl ---------------------------------------------------------------

fake() {
  mkdir -p "$work/state"
  printf 'spark-executor-aaa\nspark-executor-bbb\n' >"$work/state/pods"
  : >"$work/kubectl.log"
  FAKE_KUBECTL_LOG=$work/kubectl.log FAKE_KUBECTL_STATE=$work/state KUBECTL=$here/fake-kubectl run_capture "$@"
}

fake "$S/emergency" -n prod scale-down
expect_out "emergency scale-down runs the printed kubectl commands in order" \
"kubectl -n prod patch hpa spark-executor-hpa --type=merge -p {\"spec\":{\"minReplicas\":1,\"maxReplicas\":1}}
kubectl -n prod scale deployment/spark-executor --replicas=1" "$(cat "$work/kubectl.log")"

fake "$S/emergency" restart
if [ "$rc" = 0 ] && [ "$(grep -c '^+ ' <<<"$err")" = 2 ] && [ "$(wc -l <"$work/kubectl.log")" = 2 ]; then
  ok "emergency restart: two kubectl calls, each echoed first"
else
  bad "emergency restart: two kubectl calls, each echoed first" "rc=$rc err=$err"
fi

fake "$S/cold-start-check" --timeout 10
if [ "$rc" = 0 ] && grep -q 'WARMUP done' <<<"$out" \
  && grep -qx 'kubectl delete pod/spark-executor-aaa --wait=true' "$work/kubectl.log" \
  && grep -qx 'kubectl wait --for=condition=Ready pod/spark-executor-aaa-new --timeout=[0-9]*s' "$work/kubectl.log" \
  && grep -qx 'kubectl logs pod/spark-executor-aaa-new' "$work/kubectl.log"; then
  ok "cold-start-check: deletes the oldest pod, waits for its replacement, shows WARMUP"
else
  bad "cold-start-check: deletes the oldest pod, waits for its replacement, shows WARMUP" "rc=$rc out=$out err=$err"
fi

fake "$S/cold-start-check" --all --timeout 10
if [ "$rc" = 0 ] && [ "$(grep -c 'WARMUP done' <<<"$out")" = 2 ] \
  && grep -qx 'kubectl delete pod -l app=spark-executor --wait=true' "$work/kubectl.log"; then
  ok "cold-start-check --all: deletes every pod, checks WARMUP in each replacement"
else
  bad "cold-start-check --all: deletes every pod, checks WARMUP in each replacement" "rc=$rc out=$out err=$err"
fi

FAKE_NO_WARMUP=1 fake "$S/cold-start-check" --timeout 10
if [ "$rc" = 1 ] && grep -q 'no WARMUP lines' <<<"$err"; then
  ok "cold-start-check fails when the new pod logs no WARMUP line"
else
  bad "cold-start-check fails when the new pod logs no WARMUP line" "rc=$rc err=$err"
fi

# ---- tenant-test against a local stand-in of the tenant API -----------------------------------------

start_mock() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
  : >"$work/port"
  node "$here/mock-tenant-api.mjs" "$@" >"$work/port" 2>"$work/mock.err" &
  mock_pid=$!
  for _ in $(seq 1 50); do
    [ -s "$work/port" ] && break
    sleep 0.1
  done
  port=$(head -n 1 "$work/port")
}

if ! command -v node >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  skip "tenant-test against the local stand-in" "node or curl missing"
else
  start_mock --burst 3
  if [ -z "$port" ]; then
    bad "mock tenant API started" "$(cat "$work/mock.err")"
  else
    SPARK_API_KEY=demo-orgA-key-not-a-secret run_capture "$S/tenant-test" --url "http://127.0.0.1:$port" --org orgA
    if [ "$rc" = 0 ] && grep -q '^ok   authentication: 200, X-Tenant: orgA' <<<"$out" \
      && grep -q '^ok   wrong key refused: 401' <<<"$out" \
      && grep -q '^ok   rate limit tripped after 3 requests (Retry-After 1s)' <<<"$out"; then
      ok "tenant-test: authenticates, wrong key is 401, 429 after the burst"
    else
      bad "tenant-test: authenticates, wrong key is 401, 429 after the burst" "rc=$rc out=$out"
    fi

    run_capture "$S/tenant-test" --url "http://127.0.0.1:$port" --org orgA --key wrong-key
    if [ "$rc" = 1 ] && grep -q 'FAIL: authentication: expected 200, got 401' <<<"$out"; then
      ok "tenant-test fails on a wrong key"
    else
      bad "tenant-test fails on a wrong key" "rc=$rc out=$out"
    fi

    start_mock --no-limit
    run_capture "$S/tenant-test" --url "http://127.0.0.1:$port" --org orgA --key demo-orgA-key-not-a-secret --max-requests 5
    if [ "$rc" = 1 ] && grep -q 'FAIL: no 429 after 5 requests' <<<"$out"; then
      ok "tenant-test fails when the rate limit never trips"
    else
      bad "tenant-test fails when the rate limit never trips" "rc=$rc out=$out"
    fi
  fi

  run_capture "$S/tenant-test" --url "http://127.0.0.1:9" --org orgA --key k --timeout 2
  if [ "$rc" = 1 ] && grep -q 'FAIL: cannot reach' <<<"$out"; then
    ok "tenant-test fails clearly when the service is unreachable"
  else
    bad "tenant-test fails clearly when the service is unreachable" "rc=$rc out=$out"
  fi
fi

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
