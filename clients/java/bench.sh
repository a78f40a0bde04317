#!/usr/bin/env bash
# clients/BENCH.md: bench.sh MODE URL STREAM (MODE: append or tail). Builds the
# client and the benchmark with javac first (outside the timed part), then
# prints one JSON line on stdout. BADBATCH_TOKEN, if set, is the bearer token.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 3 ] || { echo "usage: $0 append|tail URL STREAM" >&2; exit 2; }
out="$here/target/bench-classes"
rm -rf "$out"
mkdir -p "$out"
javac --release 17 -d "$out" $(find "$here/src/main/java" -name '*.java') "$here/bench/io/badbatch/client/Bench.java" >&2
exec java -cp "$out" io.badbatch.client.Bench "$1" "$2" "$3"
