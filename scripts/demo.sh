#!/usr/bin/env bash
# The main job on the bundled sample, on this machine only: build ocirepl,
# start two throw-away registries on 127.0.0.1, push the multi-arch sample
# (examples/sample, an OCI layout) into the first, copy it to the second,
# print the JSON report and the target digest, stop the registries.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages docker-registry:docker-registry
cargo build --release --quiet
ocirepl=$(cargo_target_dir)/release/ocirepl

work=$(mktemp -d)
trap 'stop_registry "$work/a"; stop_registry "$work/b"; rm -rf "$work"' EXIT
port_a=$(free_port); start_registry "$work/a" "$port_a"
port_b=$(free_port); start_registry "$work/b" "$port_b"
a=127.0.0.1:$port_a
b=127.0.0.1:$port_b

echo "== push the bundled sample into $a"
"$ocirepl" copy oci:examples/sample:1.0 "$a/sample:1.0"

echo "== copy $a/sample:1.0 -> $b/mirror/sample:1.0"
report=$("$ocirepl" copy --output json "$a/sample:1.0" "$b/mirror/sample:1.0")
echo "$report"

echo "== copy again: nothing to do"
"$ocirepl" copy "$a/sample:1.0" "$b/mirror/sample:1.0"

digest=$(echo "$report" | sed -n 's/.*"target_digest":"\([^"]*\)".*/\1/p')
echo "target digest: $digest"
