#!/usr/bin/env bash
# The whole test suite: installs what the tests need when missing (Debian's
# docker-registry and skopeo), checks formatting and lints, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages docker-registry:docker-registry skopeo:skopeo openssl:openssl script:bsdutils podman:podman
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets
