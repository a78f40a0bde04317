#!/usr/bin/env bash
# Durable Streams conformance for BadBatch (issue 14): installs the pinned suite with
# `npm ci`, builds badbatch, serves it from a temp dir, then runs the official
# conformance suite (run.sh) and the official-client test (client.test.mjs).
# Exits non-zero if either fails. .ci/run runs it.
#
#   conformance/durable-streams/ci.sh
#
# DS_SERVE_EXTRA_FLAGS adds flags to `badbatch serve` (e.g. "--cors-origins *").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$root/.ci/apt-install" curl
echo "== npm ci"
(cd "$here" && npm ci --no-audit --no-fund)

echo "== go build"
(cd "$root" && go build -o "$tmp/badbatch" ./cmd/badbatch)

port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url="http://127.0.0.1:$port"
echo "== badbatch serve on $url"
# shellcheck disable=SC2086 # DS_SERVE_EXTRA_FLAGS is a list of flags
"$tmp/badbatch" serve --data-dir "$tmp/data" --addr "127.0.0.1:$port" --long-poll-timeout 2s \
  ${DS_SERVE_EXTRA_FLAGS:-} >"$tmp/server.log" 2>&1 &
server_pid=$!
ready=
for _ in $(seq 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "badbatch exited before it was ready:" >&2
    cat "$tmp/server.log" >&2
    server_pid=
    exit 1
  fi
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" || true)" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "badbatch did not answer 200 on /readyz within 30 s" >&2
  tail -50 "$tmp/server.log" >&2
  exit 1
fi

status=0
echo "== conformance suite"
"$here/run.sh" "$url" || status=1
echo "== official client test"
(cd "$here" && DS_BASE_URL="$url" node --test client.test.mjs) || status=1

if [ "$status" != 0 ]; then
  echo "== last lines of the badbatch log"
  tail -30 "$tmp/server.log"
fi
exit "$status"
