#!/usr/bin/env bash
# The project's test command (README line 2, and what .ci/run runs).
#   1. every package, as `go test ./...`;
#   2. the concurrent packages again under the race detector.
# Long crash and soak loops read BADBATCH_CRASH_CYCLES (see docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."

go test -count=1 -timeout 20m ./...

race_pkgs=()
for p in disruptor journal storage replay httpapi; do
  [ -d "$p" ] && race_pkgs+=("./$p/...")
done
if [ ${#race_pkgs[@]} -gt 0 ]; then
  go test -count=1 -race -short -timeout 30m "${race_pkgs[@]}"
fi
