#!/usr/bin/env bash
# Where ocirepl's CPU goes on bench.sh's big scenario (one image of
# 4 × 128 MiB between two local registries): perf records the copy, and the
# report lists the hottest functions, self and with their callees. Then the
# floor: what other tools pay for the parts no copy can skip (openssl
# hashing the layers, curl reading them from the source and writing them to
# a target), beside ocirepl's own CPU for the same copy.
#
#   scripts/profile.sh            # prints the summary, keeps perf.data in /tmp
#   SCALE=4 scripts/profile.sh    # layers 4 times smaller
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SCALE=${SCALE:-1}
ensure_packages docker-registry:docker-registry skopeo:skopeo perf:linux-perf curl:curl openssl:openssl /usr/bin/time:time
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
  grep -E '^ +[0-9.]+%' | awk 'NR <= 25'
echo "== with callees, top 25"
perf report -i "$out" --children --sort symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9.]+% +[0-9.]+%' | awk 'NR <= 25'

# The floor, each part by a tool that does only that part. CPU is user +
# system of the tool alone (the registries' side is not counted, as it is
# not for ocirepl). GNU time prints 10 ms steps; these are hundreds of ms.
cpu_of() { /usr/bin/time -f "%U %S" -o "$work/t" "$@" >/dev/null 2>&1; awk '{ printf "%.2f", $1 + $2 }' "$work/t"; }
layers=$(ls -S "$work"/fixtures/big/blobs/sha256/* | head -4)
cat $layers >/dev/null # in the page cache, as the registry serves them
bytes=$(cat $layers | wc -c)
src=http://127.0.0.1:$src_port/v2/big/blobs
gets=()
for f in $layers; do gets+=(-o /dev/null "$src/sha256:$(basename "$f")"); done
hash=$(/usr/bin/time -f "%U" -o "$work/t" openssl dgst -sha256 $layers >/dev/null && cat "$work/t")
recv=$(cpu_of curl -sf "${gets[@]}")
put_all() {
  local f loc
  for f in $layers; do
    loc=$(curl -sf -X POST -D - -o /dev/null "http://127.0.0.1:$dst_port/v2/floor/blobs/uploads/" |
      tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
    case $loc in http*) ;; *) loc=http://127.0.0.1:$dst_port$loc ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$f" \
      "$loc&digest=sha256:$(basename "$f")" -o /dev/null
  done
}
export -f put_all
export layers dst_port
send=$(cpu_of bash -c put_all)
stop_registry "$work/dst"
sleep 0.5
rm -rf "$work/dst"
start_registry "$work/dst" "$dst_port"
ours=$(cpu_of "$OCIREPL" copy -q "127.0.0.1:$src_port/big:v1" "127.0.0.1:$dst_port/big:v1")
stop_registry "$work/dst"
sleep 0.5
rm -rf "$work/dst"
start_registry "$work/dst" "$dst_port"
theirs=$(cpu_of skopeo --insecure-policy copy --src-tls-verify=false --dest-tls-verify=false \
  "docker://127.0.0.1:$src_port/big:v1" "docker://127.0.0.1:$dst_port/big:v1")
echo "== floor: $((bytes / 1048576)) MiB of layers, CPU seconds"
echo "SHA-256 (openssl dgst, user time)   $hash"
echo "read from the source (curl GET)     $recv"
echo "write to a target (curl PUT -T)     $send (reading the files too)"
awk -v h="$hash" -v r="$recv" -v s="$send" 'BEGIN { printf "sum                                 %.2f\n", h + r + s }'
echo "ocirepl copy (all of it)            $ours"
echo "skopeo copy (all of it)             $theirs"
awk -v h="$hash" -v r="$recv" -v o="$ours" -v t="$theirs" 'BEGIN {
  printf "against skopeo: ocirepl %.2f x; SHA-256 alone %.2f x; SHA-256 and reading %.2f x\n", o / t, h / t, (h + r) / t }'
