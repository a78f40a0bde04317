#!/usr/bin/env bash
# clients/BENCH.md: bench.sh MODE URL STREAM (MODE: append or tail). One JSON
# line on stdout; anything else on stderr. BENCH_PY_CLIENT=async measures the
# asyncio client (default: the sync client, 4 threads).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$here/src" PYTHONDONTWRITEBYTECODE=1 exec /usr/bin/python3 "$here/bench.py" "$@"
