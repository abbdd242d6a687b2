#!/usr/bin/env bash
# Where ocirepl's CPU goes on bench.sh's big scenario (one image of
# 4 × 128 MiB between two local registries): perf records the copy, and the
# report lists the hottest functions, self and with their callees.
#
#   scripts/profile.sh            # prints the summary, keeps perf.data in /tmp
#   SCALE=4 scripts/profile.sh    # layers 4 times smaller
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SCALE=${SCALE:-1}
ensure_packages docker-registry:docker-registry skopeo:skopeo perf:linux-perf
cargo build --release --quiet --bin ocirepl --example bench_fixtures
TARGET_DIR=$(cargo_target_dir)
OCIREPL=$TARGET_DIR/release/ocirepl

work=$(mktemp -d)
trap 'stop_registry "$work/src"; stop_registry "$work/dst"; rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME"
"$TARGET_DIR"/release/examples/bench_fixtures "$work/fixtures" "$SCALE" >/dev/null
src_port=$(free_port)
start_registry "$work/src" "$src_port"
dst_port=$(free_port)
start_registry "$work/dst" "$dst_port"
skopeo --insecure-policy copy --dest-tls-verify=false "oci:$work/fixtures/big:v1" \
  "docker://127.0.0.1:$src_port/big:v1" >/dev/null

out=${PERF_DATA:-/tmp/ocirepl-big.perf.data}
perf record -F 999 -g -o "$out" -- "$OCIREPL" copy -q \
  "127.0.0.1:$src_port/big:v1" "127.0.0.1:$dst_port/big:v1" 2>/dev/null
echo "== self time, top 25"
perf report -i "$out" --no-children --sort symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9.]+%' | head -25
echo "== with callees, top 25"
perf report -i "$out" --children --sort symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9.]+% +[0-9.]+%' | head -25
