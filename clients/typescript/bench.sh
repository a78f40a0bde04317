#!/usr/bin/env bash
# clients/typescript/bench.sh MODE URL STREAM (clients/BENCH.md). Builds the
# client first (outside the timed part), then prints one JSON line on stdout.
# BADBATCH_TOKEN: a bearer token, if the server needs one.
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -ne 3 ]; then echo "usage: $0 append|tail URL STREAM" >&2; exit 2; fi
{
  [ -d node_modules/typescript ] || npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
} >&2
exec node bench/bench.mjs "$@"
