#!/usr/bin/env bash
# `make interop`: third-party MCP clients against the demo, headless, each failing the run if it fails.
#
#   interop/run.sh [STEP...]    STEP: conformance ts-sdk mcp-remote python-mcp1 (default: all four)
#
# Runs after the Makefile has prepared .venv (this project), interop/node_modules (`npm ci`: the pinned
# Node 22, the conformance suite, the TypeScript SDK, mcp-remote) and interop/.venv-mcp1 (`mcp` 1.x).
# One server serves every step: interop/server.py, the demo host with the mock upstream, on free
# loopback ports. Each client runs under a time bound and logs in as a user of its own; it passes only
# if the `whoami` tool names that user (the conformance suite passes on its own verdict).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export INTEROP_PYTHON=${INTEROP_PYTHON:-$root/.venv/bin/python}
py=$INTEROP_PYTHON
# The pinned Node 22 where the registry has one for this platform (Linux x64 and arm64), else the machine's.
export PATH="$root/interop/node_modules/.bin:$PATH"
[ $# -gt 0 ] && steps=("$@") || steps=(conformance ts-sdk mcp-remote python-mcp1)
CLIENT_TIMEOUT=${INTEROP_CLIENT_TIMEOUT:-120} # seconds for one client, its whole login included

work=$(mktemp -d)
stop() { # every job of this script, whether or not it ends: TERM, then KILL after 10 s
  local pids
  pids=$(jobs -p)
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 $pids 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null || true
}
trap 'stop; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
took() { local ms=$(($(now_ms) - $1)); echo "$((ms / 1000)).$((ms % 1000 / 100)) s"; }
version() { node -p "require('$root/interop/node_modules/$1/package.json').version"; }

# Four distinct free ports: the server, its upstream, the conformance suite's and mcp-remote's callbacks.
read -r port upstream_port conformance_port remote_port < <("$py" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
base=http://127.0.0.1:$port

"$py" interop/server.py "$port" "$upstream_port" >"$work/server.log" 2>&1 &
server=$!
# Ready when its metadata answers; not if it exits first, or within 60 s.
if ! "$py" - "$base/.well-known/oauth-authorization-server" "$server" <<'EOF'; then
import os, sys, time, urllib.request
url, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2):
            sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(1)
        time.sleep(0.05)
sys.exit(1)
EOF
  echo "interop: the demo server did not start; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "interop: demo at $base/mcp (mock upstream on port $upstream_port), node $(node --version)"

wait_for_line() { # wait_for_line SECONDS PID FILE REGEX: print the first match, while PID runs
  local deadline=$((SECONDS + $1))
  until grep -m1 -oE "$4" "$3" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null && [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

step_conformance() { # the suite plays the client; the walker plays its user, as `make conformance` did
  echo "   @modelcontextprotocol/conformance $(version @modelcontextprotocol/conformance), authorization-server scenarios"
  mkdir -p "$work/conformance"
  (cd "$work/conformance" && exec timeout "$CLIENT_TIMEOUT" conformance authorization --url "$base" \
    --client-id conf-client --port "$conformance_port" --resource "$base/mcp" -o results) >"$out" 2>&1 &
  local suite=$! url
  url=$(wait_for_line "$CLIENT_TIMEOUT" "$suite" "$out" 'https?://[^ ]*code_challenge=[^ ]*') ||
    echo "interop: the suite asked for no login" >>"$out"
  if [ -n "$url" ] && ! timeout 60 "$py" interop/walk.py "$url" >>"$out" 2>&1; then
    echo "interop: the walk through the login failed" >>"$out"
    kill "$suite" 2>/dev/null || true # rather than wait for its bound
  fi
  local status=0
  wait "$suite" || status=$?
  sed -n '/=== SUMMARY ===/,$p' "$out" | sed '1d;/^$/d;s/^/   /'
  return "$status"
}

step_ts-sdk() {
  echo "   @modelcontextprotocol/sdk $(version @modelcontextprotocol/sdk): OAuthClientProvider + StreamableHTTPClientTransport"
  client "$1" node interop/ts_sdk_client.mjs "$base/mcp" "$py" interop/walk.py --subject "$1"
}

step_mcp-remote() {
  echo "   mcp-remote $(version mcp-remote) with BROWSER=interop/browser, driven over stdio by the TypeScript SDK"
  local log=$work/mcp-remote.log
  if [ "$(uname)" != Linux ]; then # elsewhere open() runs the system's opener, which ignores $BROWSER
    echo "interop: this step needs Linux, where mcp-remote's open() honours \$BROWSER" >"$out"
    return 1
  fi
  mkdir -p "$work/mcp-auth" # its token store: empty, so it logs in
  MCP_REMOTE_CONFIG_DIR=$work/mcp-auth client "$1" node interop/mcp_remote_client.mjs "$base/mcp" "$remote_port" "$root/interop/browser" "$log" ||
    { cat "$log" >>"$out"; return 1; }
  grep -q '^browser: ' "$log" || { echo "interop: mcp-remote logged in without opening \$BROWSER" >>"$out"; return 1; }
}

step_python-mcp1() {
  echo "   mcp $(interop/.venv-mcp1/bin/python -c 'import importlib.metadata as m; print(m.version("mcp"))'): OAuthClientProvider + streamable_http_client"
  client "$1" interop/.venv-mcp1/bin/python interop/mcp1_client.py "$base/mcp" "$py" interop/walk.py --subject "$1"
}

client() { # client SUBJECT COMMAND...: run a client logging in as SUBJECT; pass if whoami names SUBJECT
  local subject=$1 status=0
  shift
  INTEROP_SUBJECT=$subject timeout "$CLIENT_TIMEOUT" "$@" >"$out" 2>&1 &
  wait $! || status=$?
  [ "$status" -ne 124 ] || echo "interop: no answer within $CLIENT_TIMEOUT s" >>"$out"
  grep '^whoami -> ' "$out" | sed 's/^/   /' || true
  [ "$status" -eq 0 ] || return "$status"
  "$py" - "$out" "$subject" <<'EOF' || { echo "interop: whoami did not name $subject" >>"$out"; return 1; }
import json, sys
lines = [line for line in open(sys.argv[1]) if line.startswith("whoami -> ")]
answer = json.loads(lines[-1].removeprefix("whoami -> ")) if lines else None
sys.exit(not (isinstance(answer, dict) and answer.get("subject") == sys.argv[2]))
EOF
}

passed=() failed=()
for step in "${steps[@]}"; do
  declare -F "step_$step" >/dev/null || { echo "interop: no step $step" >&2; exit 2; }
  echo "== $step"
  out=$work/$step.out
  : >"$out"
  start=$(now_ms)
  if "step_$step" "$step@interop.example"; then
    passed+=("$step")
    echo "   PASS $step ($(took "$start"))"
  else
    failed+=("$step")
    echo "   FAIL $step ($(took "$start")); its output:"
    sed 's/^/   | /' "$out"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== the demo server's log"
  sed 's/^/   | /' "$work/server.log"
fi
echo "interop: ${#passed[@]} passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
