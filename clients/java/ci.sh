#!/usr/bin/env bash
# CI for the Java client (run by .ci/run): installs Java 17, JUnit 5 and Go's
# toolchain needs from Debian, compiles main and test sources with javac (Maven
# Central is not reachable here; pom.xml is for users), builds the server, and
# runs every test, the conformance cases included, with the JUnit console
# launcher. Non-interactive; works on a fresh clone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

"$root/.ci/apt-install" openjdk-17-jdk-headless junit5

out="$(mktemp -d "${TMPDIR:-/tmp}/badbatch-java-ci.XXXXXX")"
trap 'rm -rf "$out"' EXIT

J=/usr/share/java
test_cp="$J/junit-jupiter-api.jar:$J/junit-jupiter-params.jar:$J/apiguardian-api.jar:$J/opentest4j.jar:$J/junit-platform-commons.jar"

echo "== java client: javac (main)"
javac --release 17 -Xlint:all -Werror -d "$out/classes" $(find src/main/java -name '*.java')
echo "== java client: javac (test)"
javac --release 17 -Xlint:all -d "$out/test-classes" -cp "$out/classes:$test_cp" $(find src/test/java -name '*.java')

if [ -z "${BADBATCH_BIN:-}" ]; then
  echo "== java client: go build ./cmd/badbatch"
  (cd "$root" && go build -o "$out/badbatch" ./cmd/badbatch)
  export BADBATCH_BIN="$out/badbatch"
fi
export BADBATCH_ROOT="$root"

echo "== java client: tests (JUnit console launcher)"
java -jar "$J/junit-platform-console-standalone.jar" \
  --class-path "$out/classes:$out/test-classes" \
  --scan-class-path "$out/test-classes" \
  --include-engine junit-jupiter \
  --disable-banner --disable-ansi-colors --details=tree \
  --fail-if-no-tests
