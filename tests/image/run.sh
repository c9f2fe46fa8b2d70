#!/usr/bin/env bash
# Smoke test of the local image: builds localhost/spark-executor:local with scripts/image-local
# (which installs buildah when missing), checks its configuration and contents, then runs the
# service inside it with `buildah run` (chroot isolation, host network, the image's user) and a
# demo tenants file mounted at /etc/spark/tenants.json: a tenant request, the image's own
# healthcheck, the process uid, and a graceful SIGTERM stop with exit status 0.
# Needs root (buildah with vfs storage) and python3. One line per check, last line
# "N passed, M failed"; exit status 1 on any failure. Leaves the image in place.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
image=localhost/spark-executor:local
key="image-test-orgA-key-0123456789"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
finish() {
  echo "$passed passed, $failed failed"
  exit $((failed > 0))
}

bh() { buildah --storage-driver vfs "$@"; }
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

work=$(mktemp -d)
ctr="" mnt="" run_pid="" master="" exchange=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [ -n "$exchange" ]; then kill "$exchange" 2>/dev/null || true; fi
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    if [ -n "$master" ]; then kill -TERM "$master" 2>/dev/null || true; fi
    for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$run_pid" 2>/dev/null || true   # buildah kills what it started
    wait "$run_pid" 2>/dev/null || true
  fi
  if [ -n "$ctr" ]; then
    if [ -n "$mnt" ]; then bh umount "$ctr" >/dev/null 2>&1 || true; fi
    bh rm "$ctr" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# run_capture CMD...: sets $out (stdout), $err (stderr), $rc.
run_capture() {
  rc=0
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}

# http URL [HEADER...]: prints the status code, then the body; 000 when nothing answers.
# A reader that stops after the status line (head -n 1) ends it quietly.
http() {
  python3 - "$@" <<'PY'
import signal, sys, urllib.request, urllib.error
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
req = urllib.request.Request(sys.argv[1])
for h in sys.argv[2:]:
    k, v = h.split(":", 1)
    req.add_header(k.strip(), v.strip())
try:
    with urllib.request.urlopen(req, timeout=3) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
except OSError:
    print("000")
PY
}

# ---- the script ------------------------------------------------------------------------------

if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1; } \
    || true
fi
if command -v shellcheck >/dev/null 2>&1; then
  run_capture shellcheck "$root/scripts/image-local" "$here/run.sh"
  if [ "$rc" = 0 ]; then ok "shellcheck"; else bad "shellcheck" "$out"; fi
else
  bad "shellcheck" "not installed and apt-get could not install it"
fi

run_capture "$root/scripts/image-local" --help
if [ "$rc" = 0 ] && grep -q 'localhost/spark-executor:local' <<<"$out"; then
  ok "image-local --help"
else
  bad "image-local --help" "rc=$rc"
fi

run_capture env SPARK_BIN="$work/no-such-binary" "$root/scripts/image-local"
if [ "$rc" = 1 ] && grep -q 'run make first' <<<"$err"; then
  ok "missing binary: exit 1, \"run make first\""
else
  bad "missing binary" "rc=$rc: $err"
fi

# ---- build -----------------------------------------------------------------------------------

if [ ! -x "$root/spark-executor" ]; then
  echo "tests/image: building ./spark-executor (make)"
  make -C "$root" spark-executor >/dev/null
fi
run_capture env -u SPARK_BIN -u IMAGE "$root/scripts/image-local"
size=$(sed -n 's/^image-local: size_mb=\([0-9.]*\)$/\1/p' <<<"$out")
if [ "$rc" = 0 ] && [ -n "$size" ]; then
  ok "build $image"
  echo "$out"
else
  bad "build $image" "rc=$rc: $err"
  finish
fi

# ---- configuration ---------------------------------------------------------------------------

bh inspect --type image "$image" >"$work/inspect.json"
run_capture python3 - "$work/inspect.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["Docker"]["config"]
want = {
    "User": "65532:65532",
    "Entrypoint": ["/spark-executor"],
    "Cmd": ["serve"],
    "ExposedPorts": {"4001/tcp": {}, "9464/tcp": {}},
}
problems = [f"{k}={c.get(k)!r}" for k, v in want.items() if c.get(k) != v]
env = c.get("Env") or []
for e in ("PORT=4001", "ADMIN_PORT=9464", "TENANT_KEYS_FILE=/etc/spark/tenants.json"):
    if e not in env:
        problems.append(f"Env lacks {e}")
hc = (c.get("Healthcheck") or {}).get("Test")
if hc != ["CMD", "/spark-executor", "healthcheck"]:
    problems.append(f"Healthcheck={hc!r}")
if d["Manifest"] and "docker.distribution.manifest.v2" not in d["Manifest"]:
    problems.append("not a Docker-format manifest")
print("; ".join(problems))
sys.exit(1 if problems else 0)
PY
if [ "$rc" = 0 ]; then
  ok "config: user 65532:65532, entrypoint, cmd, env, ports 4001/9464, exec-form HEALTHCHECK"
else
  bad "config" "$out"
fi

# ---- contents --------------------------------------------------------------------------------

ctr=$(bh from --pull=never --name "spark-executor-image-test-$$" "$image")
mnt=$(bh mount "$ctr")

# Exactly: the binary, the libraries ldd names (loader included), passwd, group, CA certificates.
expected=$( {
  echo /spark-executor
  { LC_ALL=C ldd "$root/spark-executor" 2>/dev/null || true; } \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
  printf '%s\n' /etc/passwd /etc/group /etc/ssl/certs/ca-certificates.crt
} | sort -u)
actual=$(cd "$mnt" && find . ! -type d | sed 's|^\.||' | sort)
if [ "$expected" = "$actual" ]; then
  ok "contents: binary, $(($(wc -l <<<"$expected") - 4)) ldd libraries, passwd, group, CA file"
else
  bad "contents" "$(diff <(echo "$expected") <(echo "$actual") | grep '^[<>]' | tr '\n' ' ')"
fi

if [ ! -e "$mnt/bin/sh" ] && [ ! -L "$mnt/bin/sh" ] \
  && [ -z "$(find "$mnt" \( -name sh -o -name bash -o -name dash -o -name busybox \) -print)" ]; then
  ok "no /bin/sh (nor any shell) in the image"
else
  bad "no /bin/sh" "a shell is in the image"
fi
run_capture bh run --isolation chroot "$ctr" -- /bin/sh -c true
if [ "$rc" != 0 ]; then ok "buildah run /bin/sh fails"; else bad "buildah run /bin/sh" "it ran"; fi

tmp_mode=$(stat -c '%a %u' "$mnt/tmp")
if [ "$tmp_mode" = "1777 0" ]; then ok "/tmp mode 1777"; else bad "/tmp" "mode/owner $tmp_mode"; fi
if grep -qx 'nonroot:x:65532:65532:[^:]*:[^:]*:[^:]*' "$mnt/etc/passwd" \
  && grep -qx 'nonroot:x:65532:' "$mnt/etc/group"; then
  ok "/etc/passwd and /etc/group: nonroot 65532"
else
  bad "/etc/passwd and /etc/group"
fi
bh umount "$ctr" >/dev/null
mnt=""

# ---- the service inside the image ------------------------------------------------------------

printf '{"orgA": {"apiKey": "%s", "qps": 100, "burst": 100}}\n' "$key" >"$work/tenants.json"
chmod 0644 "$work/tenants.json"
read -r port admin_port exchange_port < <(python3 -c '
import socket
a, b, c = socket.socket(), socket.socket(), socket.socket()
for s in (a, b, c):
    s.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1], c.getsockname()[1])')

# The service warms up against an exchange before it takes connections: the
# test exchange runs on the host, which the container shares the network of.
[ -x "$root/build/tests/exchange" ] || make -C "$root" -s build/tests/exchange
"$root/build/tests/exchange" --port "$exchange_port" >"$work/exchange.log" 2>&1 &
exchange=$!
for _ in $(seq 50); do
  [ "$(http "http://127.0.0.1:$exchange_port/api/v3/ping" | head -n 1)" = 200 ] && break
  sleep 0.1
done

run_env=(--env "PORT=$port" --env "ADMIN_PORT=$admin_port" --env SHUTDOWN_DELAY_MS=200
         --env "EXCHANGE_BASE_URL=http://127.0.0.1:$exchange_port")

env -u REDIS_URL buildah --storage-driver vfs run --isolation chroot \
  -v "$work/tenants.json:/etc/spark/tenants.json:ro" "${run_env[@]}" \
  "$ctr" -- /spark-executor serve >"$work/service.log" 2>&1 &
run_pid=$!

ready=0
for _ in $(seq 100); do
  resp=$(http "http://127.0.0.1:$admin_port/readyz")
  if [ "$(head -n 1 <<<"$resp")" = 200 ]; then ready=1; break; fi
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 0.2
done
master=$(sed -n 's/.* master pid=\([0-9]*\) .*/\1/p' "$work/service.log" | head -n 1)
if [ "$ready" = 1 ] && [ -n "$master" ]; then
  ok "service ready (/readyz 200) on ports $port/$admin_port"
else
  bad "service ready" "$(tail -n 5 "$work/service.log" | tr '\n' ' ')"
  echo "---- exchange on $exchange_port: $(http "http://127.0.0.1:$exchange_port/api/v3/ping" | head -n 1)"
  tail -n 5 "$work/exchange.log"
  ss -ltnp 2>/dev/null | grep -E ":($exchange_port|$port|$admin_port) " || true
  finish
fi

resp=$(http "http://127.0.0.1:$port/api/private/health" "X-Org-Id: orgA" "X-Api-Key: $key")
if [ "$(head -n 1 <<<"$resp")" = 200 ] && grep -q '"org":"orgA"' <<<"$resp"; then
  ok "GET /api/private/health as orgA: 200"
else
  bad "GET /api/private/health as orgA" "$(tr '\n' ' ' <<<"$resp")"
fi
resp=$(http "http://127.0.0.1:$port/api/private/health" "X-Org-Id: orgA" "X-Api-Key: wrong-key-0123456789")
if [ "$(head -n 1 <<<"$resp")" = 401 ]; then
  ok "wrong key: 401"
else
  bad "wrong key" "$(head -n 1 <<<"$resp")"
fi

run_capture bh run --isolation chroot "${run_env[@]}" "$ctr" -- /spark-executor healthcheck
if [ "$rc" = 0 ]; then
  ok "spark-executor healthcheck inside the image: exit 0"
else
  bad "spark-executor healthcheck inside the image" "rc=$rc: $out $err"
fi

# The master is a descendant of our buildah run; it and every worker run as 65532:65532.
is_ours() {
  local p=$1
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    [ "$p" = "$run_pid" ] && return 0
    p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
  done
  return 1
}
ids_ok=1 nproc=0
for p in "$master" $(cat "/proc/$master/task/$master/children" 2>/dev/null); do
  nproc=$((nproc + 1))
  uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$p/status" 2>/dev/null)
  gid=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$p/status" 2>/dev/null)
  [ "$uid" = "65532 65532 65532 65532" ] && [ "$gid" = "65532 65532 65532 65532" ] || ids_ok=0
done
if is_ours "$master" && [ "$ids_ok" = 1 ]; then
  ok "runs as uid/gid 65532 (master pid $master and $((nproc - 1)) workers)"
else
  bad "runs as uid 65532" "master pid $master: $(grep -E '^(Uid|Gid):' "/proc/$master/status" 2>/dev/null | tr '\n\t' '  ')"
fi

kill -TERM "$master"
for _ in $(seq 150); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$run_pid" 2>/dev/null; then
  bad "SIGTERM: exit within 15 s"
else
  rc=0
  wait "$run_pid" || rc=$?
  run_pid=""
  if [ "$rc" = 0 ]; then
    ok "SIGTERM: drained and exited 0"
  else
    bad "SIGTERM: exit status" "$rc: $(tail -n 3 "$work/service.log" | tr '\n' ' ')"
  fi
fi

finish
