#!/usr/bin/env bash
# RELIABILITY scenario 4 at full scale: kill -9 an `ocirepl copy --all-tags`
# mirror (16 single-arch images and 4 three-platform indexes) at a random
# moment, ROUNDS times, into a registry and into an OCI layout; each round
# copies into a fresh repository (or layout) of the same target, so that
# every kill lands in a copy with work left. After every kill each tag the
# target holds must name a complete image (skopeo copies it whole, reading
# and verifying every manifest and blob); then one more run into the last
# one must converge (every tag complete) and a further run must find
# everything up to date. CI runs the small version (tests/crash.rs).
#
#   scripts/chaos.sh              # 50 rounds per target kind
#   ROUNDS=10 scripts/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ROUNDS=${ROUNDS:-50}
ensure_packages docker-registry:docker-registry skopeo:skopeo
cargo build --release --quiet --bin ocirepl --example bench_fixtures
TARGET_DIR=$(cargo_target_dir)
OCIREPL=$TARGET_DIR/release/ocirepl

work=$(mktemp -d)
trap 'stop_registry "$work/src"; stop_registry "$work/dst"; rm -rf "$work"' EXIT
export HOME="$work/home"
mkdir -p "$HOME"

"$TARGET_DIR"/release/examples/bench_fixtures "$work/fixtures" chaos >"$work/tags"
src_port=$(free_port)
start_registry "$work/src" "$src_port"
SRC=127.0.0.1:$src_port
while read -r t; do
  skopeo --insecure-policy copy --all --dest-tls-verify=false \
    "oci:$work/fixtures/chaos:$t" "docker://$SRC/chaos:$t" >/dev/null
done <"$work/tags"
dst_port=$(free_port)
start_registry "$work/dst" "$dst_port"
DST=127.0.0.1:$dst_port

# complete REF: skopeo reads the whole image (every manifest and blob,
# digests verified) or says why not.
complete() {
  rm -rf "$work/check"
  skopeo --insecure-policy copy --all --src-tls-verify=false "$1" "dir:$work/check" >/dev/null 2>"$work/check.err"
}

# tags_of KIND ROUND: the tags that round's target holds now.
tags_of() {
  if [ "$1" = registry ]; then
    skopeo list-tags --tls-verify=false "docker://$DST/r$2" 2>/dev/null |
      sed -n 's/^ *"\([^"]*\)",\{0,1\}$/\1/p' | grep -v "^r$2\$" || true
  else
    [ -f "$work/layout-$2/index.json" ] || return 0
    grep -o '"org.opencontainers.image.ref.name":"[^"]*"' "$work/layout-$2/index.json" | cut -d'"' -f4
  fi
}

ref_of() { if [ "$1" = registry ]; then echo "docker://$DST/r$2:$3"; else echo "oci:$work/layout-$2:$3"; fi; }
target_of() { if [ "$1" = registry ]; then echo "$DST/r$2"; else echo "oci:$work/layout-$2"; fi; }

total_kills=0
# A whole copy takes about 1.8 s into the registry and 0.7 s into a layout
# here: kill points spread over all of it.
for kind in registry layout; do
  incomplete=0
  kills=0
  span_ms=2000
  [ "$kind" = layout ] && span_ms=800
  for round in $(seq 1 "$ROUNDS"); do
    delay_ms=$((10 + RANDOM % span_ms))
    "$OCIREPL" copy -q --all-tags --jobs 4 "$SRC/chaos" "$(target_of "$kind" "$round")" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v m="$delay_ms" 'BEGIN{printf "%.3f", m/1000}')"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
    present=0
    for t in $(tags_of "$kind" "$round"); do
      present=$((present + 1))
      if ! complete "$(ref_of "$kind" "$round" "$t")"; then
        echo "round $round ($kind): tag $t is incomplete: $(tail -1 "$work/check.err")" >&2
        incomplete=$((incomplete + 1))
      fi
    done
    echo "$kind round $round: killed after ${delay_ms} ms, $present of 20 tags there, all complete" >&2
  done
  [ "$incomplete" -eq 0 ] || { echo "FAIL: $incomplete incomplete tags in $kind" >&2; exit 1; }
  "$OCIREPL" copy -q --all-tags "$SRC/chaos" "$(target_of "$kind" "$ROUNDS")"
  n=0
  while read -r t; do
    complete "$(ref_of "$kind" "$ROUNDS" "$t")" || { echo "FAIL: $kind:$t incomplete after the final run" >&2; exit 1; }
    n=$((n + 1))
  done <"$work/tags"
  again=$("$OCIREPL" copy --all-tags --output json "$SRC/chaos" "$(target_of "$kind" "$ROUNDS")" | grep -c '"action":"up-to-date"')
  [ "$again" -eq "$n" ] || { echo "FAIL: $kind: $again of $n up to date on the run after" >&2; exit 1; }
  echo "== $kind: $ROUNDS rounds, $kills killed mid-copy, never an incomplete tag; the last target converged ($n tags), the run after: $again up to date" >&2
  total_kills=$((total_kills + kills))
done
echo "chaos: $total_kills kills mid-copy in $((2 * ROUNDS)) rounds, no incomplete tag" >&2
