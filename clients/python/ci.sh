#!/usr/bin/env bash
# CI for the Python client: Debian's Python and test packages, the server
# built from this repository, then every test (unit, property, conformance)
# for the sync and the asyncio client, and mypy --strict. Non-interactive;
# about a minute once the packages are installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

"$root/.ci/apt-install" python3 python3-pytest python3-hypothesis mypy

bin_dir="$(mktemp -d)"
trap 'rm -rf "$bin_dir"' EXIT
if [ -z "${BADBATCH_BIN:-}" ]; then
  echo "== go build ./cmd/badbatch"
  (cd "$root" && go build -o "$bin_dir/badbatch" ./cmd/badbatch)
  export BADBATCH_BIN="$bin_dir/badbatch"
fi

cd "$here"
echo "== mypy --strict (the package is typed: py.typed)"
/usr/bin/python3 -m mypy --strict --no-incremental src/badbatch

echo "== pytest (/usr/bin/python3)"
export PYTHONPATH="$here/src" PYTHONDONTWRITEBYTECODE=1
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"
