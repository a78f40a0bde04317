#!/usr/bin/env bash
# CI for the TypeScript client: installs Chromium (Debian), the npm
# dependencies (package-lock.json, exact), builds the client and the server,
# and runs the unit tests, the conformance cases against real servers and
# the browser test. Non-interactive; works from a fresh clone.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd ../.. && pwd)

echo "== apt: chromium"
# Another job may hold the dpkg lock for a while: retry.
for i in 1 2 3 4 5 6 7 8 9 10; do
  if "$root/.ci/apt-install" chromium; then break; fi
  [ "$i" = 10 ] && { echo "apt-install chromium failed" >&2; exit 1; }
  sleep 15
done

echo "== node $(node --version), npm $(npm --version)"
node -e 'const [M]=process.versions.node.split(".").map(Number); if (M < 20) { console.error("Node 20+ needed"); process.exit(1); }'

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== build (tsc: dist/ with .d.ts)"
rm -rf dist build-test
npm run --silent build
test -f dist/index.d.ts
# The main entry must not import Node-only modules (it runs in browsers). Under
# Node, dist/transport.js loads node:http by a dynamic import() of a computed
# specifier, which no bundler follows: a literal one would be followed, so none.
if grep -lE "from \"node:|require\(|import\( *[\"'\`]node:" dist/*.js; then echo "dist imports Node-only modules" >&2; exit 1; fi
npm run --silent build:test

echo "== build the server"
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
(cd "$root" && go build -o "$bin_dir/badbatch" ./cmd/badbatch)
export BADBATCH_BIN="$bin_dir/badbatch"

echo "== tests: unit, conformance, cluster redirects, browser"
node --test --test-concurrency=1 --test-reporter=spec \
  build-test/test/unit.test.js build-test/test/conformance.test.js build-test/test/lifecycle.test.js build-test/test/cluster.test.js build-test/test/browser.test.js
