#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it: installs what the tests need (the
# wasm32-wasip2 target and the policy plugins here; the pinned Flink and the example job on first use by the tests),
# checks formatting and lints, then runs every test. Every process a test starts is stopped by
# the test itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add wasm32-wasip2 >/dev/null

step "Java for Flink and the example job"
command -v java >/dev/null && command -v javac >/dev/null || {
  echo "Flink needs Java 17 and the example job a JDK: apt-get install openjdk-17-jdk-headless" >&2
  exit 1
}

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "the production build (the image's): no local cluster in it"
# The image is built without the `local` feature: it must compile and lint clean that way, and
# the stand-in must not be among its dependencies.
cargo clippy -p flink-operator --no-default-features --quiet -- -D warnings
tree=$(cargo tree -p flink-operator --no-default-features --edges normal,build --prefix none \
  --format '{p} features: {f}')
if grep -E '^sandbox |^flink-policy .*features:.*\bdev\b' <<<"$tree"; then
  echo "the production build has the local cluster (sandbox) or the plugin dev helpers in it" >&2
  exit 1
fi

step "policy plugins (wasm32-wasip2)"
cargo build --quiet --profile plugin --target wasm32-wasip2 \
  -p tenant-quota-scaling -p maintenance-window-upgrade -p connector-pod-template \
  -p hostile-plugin -p hostile-imports-plugin -p hostile-version-plugin -p legacy-v1-0-plugin -p hostile-pods-plugin

step "tests"
cargo test --workspace --no-fail-fast "$@"
