#!/usr/bin/env bash
# clients/rust/bench.sh MODE URL STREAM: the client benchmark of clients/BENCH.md.
# Builds the release binary first (outside the timed part; build output on stderr), then runs
# it; the last stdout line is the JSON result.
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -ne 3 ]; then
  echo "usage: $0 append|tail URL STREAM" >&2
  exit 2
fi
# No `tls`: the benchmark talks http:// to a local server, and the build skips ring.
cargo build --offline --release --quiet --no-default-features --example bench >&2
exec target/release/examples/bench "$@"
