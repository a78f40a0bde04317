#!/usr/bin/env bash
# Runs the Durable Streams conformance suite (@durable-streams/server-conformance-tests)
# against a server root URL; the tests use ${URL}/v1/stream/<name>.
#
#   ./run.sh http://127.0.0.1:8080   # a running server
#   ./run.sh --ref                   # the reference Node server, file storage, in a temp dir
#                                    # (long-poll timeout DS_REF_LONG_POLL_MS, default 2000 ms,
#                                    # like ci.sh gives badbatch; the suite needs < ~4 s)
#
# Prints passed/failed/skipped counts and failing test names; exits non-zero on any failure.
# Extra arguments after the URL go to vitest (e.g. -t 'JSON Mode').
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -lt 1 ]; then
  echo "usage: $0 URL|--ref [vitest args...]" >&2
  exit 2
fi
target=$1
shift

[ -d node_modules ] || npm ci --no-audit --no-fund

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$target" = --ref ]; then
  node ref-server.mjs --port 0 --data-dir "$tmp/data" \
    --long-poll-timeout-ms "${DS_REF_LONG_POLL_MS:-2000}" >"$tmp/ref.out" 2>"$tmp/ref.err" &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q '^http' "$tmp/ref.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/ref.err" >&2; exit 1; }
    sleep 0.1
  done
  target=$(grep -m1 '^http' "$tmp/ref.out") || { echo "reference server did not start" >&2; exit 1; }
  echo "== reference server at $target (data dir $tmp/data)"
fi

echo "== conformance suite against $target"
status=0
DS_BASE_URL=$target npx vitest run --reporter=default --reporter=json \
  --outputFile.json="$tmp/report.json" "$@" || status=$?
[ -f "$tmp/report.json" ] || { echo "no vitest report (exit $status)" >&2; exit 1; }
node summarize.mjs "$tmp/report.json" || status=1
exit "$status"
