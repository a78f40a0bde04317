#!/usr/bin/env bash
# CI for the Rust client (run by .ci/run): installs the crates from Debian's librust-*-dev
# packages (crates.io is not reachable; .cargo/config.toml points cargo at
# /usr/share/cargo/registry, see docs/decisions/0015-rust-client-crates.md), builds the Go
# server once, and runs `cargo test --offline --all-features`: unit tests, the scripted-server
# tests, the conformance suite, a 3-node cluster and restarts under load against real servers.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

command -v cargo >/dev/null || { echo "rust: cargo is not installed (the CI image has Rust 1.95 from rustup)" >&2; exit 1; }
"$root/.ci/apt-install" librust-ureq-dev librust-serde-json-dev librust-getrandom-dev librust-base64-dev librust-url-dev librust-futures-core-dev

echo "== rust: $(cargo --version), $(rustc --version)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "== rust: go build the server"
(cd "$root" && go build -o "$work/badbatch" ./cmd/badbatch)

echo "== rust: cargo test --offline"
start=$(date +%s)
BADBATCH_BIN="$work/badbatch" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
  cargo test --offline --locked --all-features -- --nocapture 2>&1
echo "== rust: the crate without default features (http:// only) builds"
cargo check --offline --locked --no-default-features --lib
echo "== rust: ok ($(( $(date +%s) - start )) s for cargo test)"
