#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: installs what the tests need (the
# wasm32-wasip2 target, the pinned Flink, the example job), checks formatting and lints, then
# runs every test. Every process a test starts is stopped by the test itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-wasip2 >/dev/null

step "Flink $(grep -m1 '^FLINK_VERSION=' tests/flink/setup.sh | cut -d= -f2) and the example job"
bash tests/flink/setup.sh >/dev/null

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "tests"
cargo test --workspace --no-fail-fast "$@"
