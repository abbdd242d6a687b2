#!/usr/bin/env bash
# ocirepl against skopeo on the same local registries, alternately, median
# of RUNS runs, a fresh target registry for every run. Measures wall time,
# client CPU (user+sys), peak RSS and the requests the target received
# (its access log), and writes docs/benchmarks.md.
#
#   scripts/bench.sh            # the full set (a few minutes)
#   RUNS=5 scripts/bench.sh     # more runs
#   SCALE=8 scripts/bench.sh    # big layers 8 times smaller (quick look)
#   RUNS1000=3 scripts/bench.sh # the 1,000-tag no-op over the WAN more than once
#   ONLY=https scripts/bench.sh # one section: local, wan, thousand, https, curve, fanout, archive, verify, events
#   TMPDIR=/dev/shm ONLY=fanout scripts/bench.sh
#                               # registries on tmpfs: Debian's registry syncs
#                               # every blob it commits, and on disk that wait
#                               # is in every wall but in no CPU floor
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
DELAY_MS=${DELAY_MS:-25}
RUNS1000=${RUNS1000:-1}
ONLY=${ONLY:-}
# One section is a quick look: its table goes to stdout, not into the docs.
OUT=${OUT:-$([ -z "$ONLY" ] && echo docs/benchmarks.md || echo /dev/null)}
ensure_packages docker-registry:docker-registry skopeo:skopeo /usr/bin/time:time curl:curl openssl:openssl
cargo build --release --quiet --bin ocirepl --example bench_fixtures --example latency_proxy --example tcp_delay --example sign_tags
TARGET_DIR=$(cargo_target_dir)
OCIREPL=$TARGET_DIR/release/ocirepl
PROXY=$TARGET_DIR/release/examples/latency_proxy
TCP_DELAY=$TARGET_DIR/release/examples/tcp_delay
SIGN_TAGS=$TARGET_DIR/release/examples/sign_tags
section() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_registry "$work/src"
  stop_registry "$work/dst"
  stop_registry "$work/src-tls"
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" # no auth files, no caches from elsewhere
mkdir -p "$HOME"

echo "== fixtures (scale 1/$SCALE)" >&2
"$TARGET_DIR"/release/examples/bench_fixtures "$work/fixtures" "$SCALE" >"$work/tags"
src_port=$(free_port)
start_registry "$work/src" "$src_port"
SRC=127.0.0.1:$src_port
skopeo --insecure-policy copy --dest-tls-verify=false "oci:$work/fixtures/big:v1" "docker://$SRC/big:v1" >/dev/null
skopeo --insecure-policy copy --all --dest-tls-verify=false "oci:$work/fixtures/multi:v1" "docker://$SRC/multi:v1" >/dev/null
while read -r t; do
  skopeo --insecure-policy copy --dest-tls-verify=false "oci:$work/fixtures/many:$t" "docker://$SRC/many:$t" >/dev/null
done <"$work/tags"
skopeo --insecure-policy copy --dest-tls-verify=false "oci:$work/fixtures/mid:v1" "docker://$SRC/mid:v1" >/dev/null

# Starts a fresh target registry (and, for the WAN profile, latency proxies in
# front of both registries); sets DST, FROM and the log mark. HTTPS=1: both
# registries speak TLS (HTTP/2 offered), and the WAN delays TCP itself.
fresh_target() {
  stop_registry "$work/dst"
  rm -rf "$work/dst"
  local port
  port=$(free_port)
  if [ "${HTTPS:-0}" = 1 ]; then
    start_registry "$work/dst" "$port" "$work/pki"
    DST=127.0.0.1:$port
    FROM=$SRC_TLS
    if [ "${WAN:-0}" = 1 ]; then
      "$TCP_DELAY" "$port" "$DELAY_MS" >"$work/pdst" & pids+=($!)
      "$TCP_DELAY" "${SRC_TLS#*:}" "$DELAY_MS" >"$work/psrc" & pids+=($!)
      sleep 0.3
      DST=127.0.0.1:$(head -1 "$work/pdst")
      FROM=127.0.0.1:$(head -1 "$work/psrc")
    fi
    return
  fi
  start_registry "$work/dst" "$port"
  DST=127.0.0.1:$port
  FROM=$SRC
  if [ "${WAN:-0}" = 1 ]; then
    "$PROXY" "$port" "$DELAY_MS" >"$work/pdst" & pids+=($!)
    "$PROXY" "$src_port" "$DELAY_MS" >"$work/psrc" & pids+=($!)
    sleep 0.3
    DST=127.0.0.1:$(head -1 "$work/pdst")
    FROM=127.0.0.1:$(head -1 "$work/psrc")
  fi
}

stop_proxies() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pids=()
}

requests() { wc -l <"$work/dst/access.log"; }

# CPU nanoseconds both registries of the run have used so far (the source
# is the TLS one in the HTTPS section): what the registries spent on a
# tool's requests, on the same cores as the tool. Summed over the threads'
# schedstat: /proc/PID/stat counts in 10 ms ticks, a tenth of a no-op.
registries_cpu() {
  local src=$work/src
  [ "${HTTPS:-0}" = 1 ] && src=$work/src-tls
  local p
  for p in $(cat "$src/pid" "$work/dst/pid"); do cat /proc/"$p"/task/*/schedstat; done |
    awk '{t += $1} END {printf "%.0f", t}'
}

# measure NAME TOOL CMD...: one run, appended to results.
measure() {
  local name=$1 tool=$2
  shift 2
  local before reg_before
  # Dirty pages another tool left are written out first: an export that
  # syncs its archive (ocirepl does, skopeo does not) would otherwise pay
  # for the writes of the run before it (export-big: 1.34 s alone, 1.7 to
  # 3.3 s right after skopeo's export, most of it system time).
  sync
  before=$(requests)
  reg_before=$(registries_cpu)
  # Wall and CPU in milliseconds from bash's time (GNU time's %e, %U and
  # %S have 10 ms steps, a seventh of a no-op); peak RSS from GNU time.
  local TIMEFORMAT='%3R %3U %3S'
  { time /usr/bin/time -f "%M" -o "$work/time" "$@" >/dev/null 2>"$work/err"; } 2>"$work/clock" || {
    echo "failed: $*" >&2
    cat "$work/err" >&2
    exit 1
  }
  sleep 0.2
  local wall user sys rss reg
  read -r wall user sys <"$work/clock"
  read -r rss <"$work/time"
  reg=$(awk -v a="$reg_before" -v b="$(registries_cpu)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  echo "$name $tool $wall $(awk -v a="$user" -v b="$sys" 'BEGIN { printf "%.3f", a + b }') $((rss / 1024)) $(($(requests) - before)) $reg" >>"$work/results"
}

skopeo_copy() { skopeo --insecure-policy copy --all --src-tls-verify=false --dest-tls-verify=false "docker://$1" "docker://$2"; }
export -f skopeo_copy

skopeo_many() {
  while read -r t; do
    skopeo --insecure-policy copy --src-tls-verify=false --dest-tls-verify=false \
      "docker://$1/many:$t" "docker://$2/many:$t"
  done <"$3"
}
export -f skopeo_many

skopeo_sync() {
  skopeo --insecure-policy sync --src docker --dest docker \
    --src-tls-verify=false --dest-tls-verify=false "$1/$3" "$2/mirror"
}
export -f skopeo_sync

# sync_config FROM DST REPO: a one-job config mirroring FROM/REPO where
# `skopeo sync` puts it (DST/mirror/REPO).
sync_config() {
  printf 'version: 1\njobs:\n  - name: %s\n    source: %s/%s\n    target: %s/mirror/%s\n' \
    "$3" "$1" "$3" "$2" "$3" >"$work/sync-$3.yaml"
  echo "$work/sync-$3.yaml"
}

run_scenarios() {
  local suffix=$1
  for _ in $(seq "$RUNS"); do
    if [ "${WAN:-0}" != 1 ]; then
      fresh_target; measure "big$suffix" skopeo bash -c "skopeo_copy $FROM/big:v1 $DST/big:v1"; stop_proxies
      fresh_target; measure "big$suffix" ocirepl "$OCIREPL" copy -q "$FROM/big:v1" "$DST/big:v1"; stop_proxies
    fi
    fresh_target; measure "multiarch$suffix" skopeo bash -c "skopeo_copy $FROM/multi:v1 $DST/multi:v1"; stop_proxies
    fresh_target; measure "multiarch$suffix" ocirepl "$OCIREPL" copy -q "$FROM/multi:v1" "$DST/multi:v1"; stop_proxies

    fresh_target
    measure "many$suffix" skopeo bash -c "skopeo_many $FROM $DST $work/tags"
    measure "noop$suffix" skopeo bash -c "skopeo_many $FROM $DST $work/tags"
    stop_proxies
    fresh_target
    measure "many$suffix" skopeo-sync skopeo --insecure-policy sync --src docker --dest docker \
      --src-tls-verify=false --dest-tls-verify=false "$FROM/many" "$DST/mirror"
    measure "noop$suffix" skopeo-sync skopeo --insecure-policy sync --src docker --dest docker \
      --src-tls-verify=false --dest-tls-verify=false "$FROM/many" "$DST/mirror"
    stop_proxies
    fresh_target
    measure "many$suffix" ocirepl "$OCIREPL" copy -q --all-tags "$FROM/many" "$DST/many"
    measure "noop$suffix" ocirepl "$OCIREPL" copy -q --all-tags "$FROM/many" "$DST/many"
    stop_proxies
    fresh_target
    cfg=$(sync_config "$FROM" "$DST" many)
    measure "many$suffix" ocirepl-sync "$OCIREPL" sync -q "$cfg"
    measure "noop$suffix" ocirepl-sync "$OCIREPL" sync -q "$cfg"
    stop_proxies
  done
}

# Over TLS both tools get the bench CA; ocirepl negotiates HTTP/2 with
# Go's registry, skopeo stays on HTTP/1.1.
skopeo_tls() { skopeo --insecure-policy copy --src-cert-dir "$CERTS" --dest-cert-dir "$CERTS" "docker://$1" "docker://$2"; }
skopeo_many_tls() {
  while read -r t; do skopeo_tls "$1/many:$t" "$2/many:$t"; done <"$3"
}
export -f skopeo_tls skopeo_many_tls

run_https() {
  local suffix=$1
  local tls=(--src-cert-dir "$CERTS" --dest-cert-dir "$CERTS")
  for _ in $(seq "$RUNS"); do
    fresh_target; measure "mid$suffix" skopeo bash -c "skopeo_tls $FROM/mid:v1 $DST/mid:v1"; stop_proxies
    fresh_target; measure "mid$suffix" ocirepl "$OCIREPL" copy -q "${tls[@]}" "$FROM/mid:v1" "$DST/mid:v1"; stop_proxies
    if [ "${WAN:-0}" = 1 ]; then
      fresh_target; measure "many$suffix" skopeo bash -c "skopeo_many_tls $FROM $DST $work/tags"; stop_proxies
      fresh_target; measure "many$suffix" ocirepl "$OCIREPL" copy -q --all-tags "${tls[@]}" "$FROM/many" "$DST/many"; stop_proxies
    fi
  done
}

# 1,000 tags of one image in repository k (skopeo pushes it once, the
# other tags are manifest PUTs of the same bytes).
seed_thousand() {
  skopeo --insecure-policy copy --src-tls-verify=false --dest-tls-verify=false \
    "docker://$SRC/many:$(head -1 "$work/tags")" "docker://$SRC/k:t0000" >/dev/null
  local mt=application/vnd.oci.image.manifest.v1+json
  curl -sf -H "Accept: $mt" "http://$SRC/v2/k/manifests/t0000" >"$work/k.json"
  for i in $(seq 1 999); do
    curl -sf -X PUT -H "Content-Type: $mt" --data-binary "@$work/k.json" \
      "http://$SRC/v2/k/manifests/t$(printf %04d "$i")" >/dev/null
  done
}

# The unchanged 1,000-tag run: ocirepl fills the target once, then both
# tools find everything up to date.
run_thousand() {
  local suffix=$1 runs=$2
  fresh_target
  local cfg
  cfg=$(sync_config "$FROM" "$DST" k)
  "$OCIREPL" sync -q "$cfg"
  for _ in $(seq "$runs"); do
    measure "noop1000$suffix" skopeo-sync bash -c "skopeo_sync $FROM $DST k"
    measure "noop1000$suffix" ocirepl-sync "$OCIREPL" sync -q "$cfg"
  done
  stop_proxies
}

# Fan-out: one source image to three targets at once (ocirepl with three
# DSTs), against three separate ocirepl copies and three skopeo copies,
# and one single-target ocirepl copy for scale. Measures the source's blob
# bytes read (its access log), wall, client CPU and the CPU of the source
# and the three targets. WAN=1: only the source is behind the latency
# proxy (where reading it once pays).
fan_targets() {
  local i port
  FAN=()
  for i in 1 2 3; do
    stop_registry "$work/fan$i"
    rm -rf "$work/fan$i"
    port=$(free_port)
    start_registry "$work/fan$i" "$port"
    FAN+=("127.0.0.1:$port")
  done
  FROM=$SRC
  if [ "${WAN:-0}" = 1 ]; then
    "$PROXY" "$src_port" "$DELAY_MS" >"$work/psrc" & pids+=($!)
    sleep 0.3
    FROM=127.0.0.1:$(head -1 "$work/psrc")
  fi
}

fan_cpu() {
  local p
  for p in $(cat "$work/src/pid" "$work/fan1/pid" "$work/fan2/pid" "$work/fan3/pid"); do
    cat /proc/"$p"/task/*/schedstat
  done | awk '{t += $1} END {printf "%.0f", t}'
}

src_blob_bytes() {
  awk -F'"' '$2 ~ /^GET [^ ]*\/blobs\/sha256:/ { split($3, a, " "); if (a[1] < 300) t += a[2] } END { printf "%.0f", t }' "$work/src/access.log"
}

# measure_fan NAME TOOL CMD...: one run, appended to fan-results.
measure_fan() {
  local name=$1 tool=$2
  shift 2
  local bytes_before cpu_before
  sync
  bytes_before=$(src_blob_bytes)
  cpu_before=$(fan_cpu)
  local TIMEFORMAT='%3R %3U %3S'
  { time "$@" >/dev/null 2>"$work/err"; } 2>"$work/clock" || {
    echo "failed: $*" >&2
    cat "$work/err" >&2
    exit 1
  }
  sleep 0.2
  local wall user sys
  read -r wall user sys <"$work/clock"
  echo "$name $tool $wall $(awk -v a="$user" -v b="$sys" 'BEGIN { printf "%.3f", a + b }') \
$(awk -v a="$bytes_before" -v b="$(src_blob_bytes)" 'BEGIN { printf "%.1f", (b - a) / 1048576 }') \
$(awk -v a="$cpu_before" -v b="$(fan_cpu)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" >>"$work/fan-results"
}

ocirepl_x3() {
  local from=$1 image=$2 flags=$3
  shift 3
  for t in "$@"; do "$OCIREPL" copy -q $flags "$from/$image" "$t/$image"; done
}
skopeo_x3() {
  local from=$1 image=$2
  shift 2
  for t in "$@"; do
    if [ "$image" = many ]; then
      skopeo_many "$from" "$t" "$work/tags"
    else
      skopeo_copy "$from/$image" "$t/$image"
    fi
  done
}
export -f skopeo_x3 skopeo_many skopeo_copy
export OCIREPL work

run_fanout() {
  local suffix=$1
  for _ in $(seq "$RUNS"); do
    for image in big:v1 many; do
      local name=${image%%:*} flags=""
      [ "$name" = many ] && flags=--all-tags
      fan_targets
      measure_fan "$name$suffix" ocirepl-fan3 "$OCIREPL" copy -q $flags "$FROM/$image" "${FAN[0]}/$image" "${FAN[1]}/$image" "${FAN[2]}/$image"
      stop_proxies; fan_targets
      measure_fan "$name$suffix" ocirepl-x3 bash -c "$(declare -f ocirepl_x3); ocirepl_x3 $FROM $image '$flags' ${FAN[*]}"
      stop_proxies; fan_targets
      measure_fan "$name$suffix" skopeo-x3 bash -c "skopeo_x3 $FROM $image ${FAN[*]}"
      stop_proxies; fan_targets
      measure_fan "$name$suffix" ocirepl-x1 "$OCIREPL" copy -q $flags "$FROM/$image" "${FAN[0]}/$image"
      stop_proxies
    done
  done
  for i in 1 2 3; do stop_registry "$work/fan$i"; done
}

# A read mirror holding everything the origin has: ocirepl sync through it
# (blob GETs at the origin: none) against the same sync without it.
run_mirror() {
  local mport
  stop_registry "$work/mirror"
  rm -rf "$work/mirror"
  mport=$(free_port)
  start_registry "$work/mirror" "$mport"
  "$OCIREPL" copy -q --all-tags "$SRC/many" "127.0.0.1:$mport/many"
  for _ in $(seq "$RUNS"); do
    for with in no yes; do
      fan_targets
      local cfg=$work/mirror-$with.yaml
      {
        echo "version: 1"
        [ "$with" = yes ] && printf 'registries:
  "%s":
    mirrors: ["127.0.0.1:%s"]
' "$SRC" "$mport"
        printf 'jobs:
  - name: many
    source: %s/many
    target: %s/many
' "$SRC" "${FAN[0]}"
      } >"$cfg"
      local before
      before=$(grep -c 'GET [^ ]*/blobs/sha256:' "$work/src/access.log" || true)
      measure_fan "many-mirror" "ocirepl-sync-mirror-$with" "$OCIREPL" sync -q "$cfg"
      echo "$with $(( $(grep -c 'GET [^ ]*/blobs/sha256:' "$work/src/access.log" || true) - before ))" >>"$work/mirror-gets"
    done
  done
  stop_registry "$work/mirror"
  for i in 1 2 3; do stop_registry "$work/fan$i"; done
}

# Archives: export of the big and many sets to one archive (skopeo: one
# `skopeo copy` per image, its CLI writing one image per archive) and
# import into an empty registry (skopeo: one copy per archive); then an
# incremental export after one new tag, and peak RSS for a 2 GiB archive.
skopeo_export_many() {
  mkdir -p "$2"
  while read -r t; do
    skopeo --insecure-policy copy --src-tls-verify=false "docker://$1/many:$t" "oci-archive:$2/$t.tar:$t"
  done <"$3"
}
skopeo_import_many() {
  while read -r t; do
    skopeo --insecure-policy copy --dest-tls-verify=false "oci-archive:$1/$t.tar:$t" "docker://$2/many:$t"
  done <"$3"
}
export -f skopeo_export_many skopeo_import_many

archive_size() { du -cb "$@" 2>/dev/null | tail -1 | cut -f1; }

run_archive() {
  local a=$work/arch
  for _ in $(seq "$RUNS"); do
    rm -rf "$a" && mkdir -p "$a"
    fresh_target
    measure "export-big" skopeo skopeo --insecure-policy copy --src-tls-verify=false "docker://$SRC/big:v1" "oci-archive:$a/sk-big.tar:v1"
    measure "export-big" ocirepl "$OCIREPL" copy -q "$SRC/big:v1" "oci-archive:$a/big.tar"
    measure "import-big" skopeo skopeo --insecure-policy copy --dest-tls-verify=false "oci-archive:$a/sk-big.tar:v1" "docker://$DST/skbig:v1"
    # Each tool imports into an empty registry: one that holds the same
    # layers under another name spends more on every upload (it replaces
    # the blob files it has: 1.41 s against 1.60 s for the same import).
    fresh_target
    measure "import-big" ocirepl "$OCIREPL" copy -q "oci-archive:$a/big.tar" "$DST/big:v1"
    measure "export-many" skopeo bash -c "skopeo_export_many $SRC $a/sk-many $work/tags"
    measure "export-many" ocirepl "$OCIREPL" copy -q --all-tags "$SRC/many" "oci-archive:$a/many.tar"
    fresh_target
    measure "import-many" skopeo bash -c "skopeo_import_many $a/sk-many $DST $work/tags"
    fresh_target
    measure "import-many" ocirepl "$OCIREPL" copy -q --all-tags "oci-archive:$a/many.tar:$SRC/many" "$DST/many"
  done
  # One new tag (the multi-arch fixture, 3 platforms of new layers), then
  # an incremental export: it must write at most the new bytes + 1 MiB.
  skopeo --insecure-policy copy --all --src-tls-verify=false --dest-tls-verify=false \
    "docker://$SRC/multi:v1" "docker://$SRC/many:new" >/dev/null
  "$OCIREPL" copy -q --all-tags "$SRC/many" "oci-archive:$a/inc.tar" --since "$a/many.tar.inventory.json"
  local new_bytes written
  new_bytes=$(skopeo inspect --raw --tls-verify=false "docker://$SRC/many:new" | python3 -c '
import json, subprocess, sys
idx = json.load(sys.stdin); total = 0
for m in idx["manifests"]:
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://'"$SRC"'/many@" + m["digest"]], capture_output=True).stdout
    img = json.loads(raw); total += m["size"] + img["config"]["size"] + sum(l["size"] for l in img["layers"])
print(total)')
  written=$(archive_size "$a/inc.tar")
  echo "incremental $written $new_bytes" >>"$work/archive-extra"
  skopeo --insecure-policy delete --tls-verify=false "docker://$SRC/many:new" >/dev/null 2>&1 || true
  rm -rf "$a"
}

# Peak RSS exporting and importing a 2 GiB archive (the curve's 2 GiB layer).
run_archive_rss() {
  local a=$work/arch2g
  mkdir -p "$a"
  fresh_target
  /usr/bin/time -f "%M" -o "$work/rss" "$OCIREPL" copy -q "$SRC/curve2g:v1" "oci-archive:$a/2g.tar" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  echo "export-2g $(( $(cat "$work/rss") / 1024 ))" >>"$work/archive-extra"
  /usr/bin/time -f "%M" -o "$work/rss" "$OCIREPL" copy -q "oci-archive:$a/2g.tar" "$DST/curve2g:v1" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  echo "import-2g $(( $(cat "$work/rss") / 1024 ))" >>"$work/archive-extra"
  rm -rf "$a"
}

# Verify before mirror: the 40 tags, each signed (cosign's .sig layout, one
# key), in a repository of their own; `sync` with a key policy against the
# same sync without one, then each again onto the up-to-date target.
run_verify() {
  "$OCIREPL" copy -q --all-tags "$SRC/many" "$SRC/signed"
  mkdir -p "$work/keys"
  "$SIGN_TAGS" "$SRC" signed "$work/keys" <"$work/tags"
  local tool cfg before
  for _ in $(seq "$RUNS"); do
    for tool in ocirepl-sync ocirepl-verify; do
      fresh_target
      cfg=$(sync_config "$FROM" "$DST" signed)
      # The same 40 images either way (a verifying job leaves cosign's
      # .sig tags out of its tag list by itself).
      printf '    tags: {exclude: ["sha256-*"]}\n' >>"$cfg"
      [ "$tool" = ocirepl-verify ] && printf '    verify:\n      - keys: [%s]\n' "$work/keys/bench.pub" >>"$cfg"
      measure "many-signed" "$tool" "$OCIREPL" sync -q "$cfg"
      before=$(wc -l <"$work/src/access.log")
      measure "noop-signed" "$tool" "$OCIREPL" sync -q "$cfg"
      echo "$tool $(($(wc -l <"$work/src/access.log") - before))" >>"$work/verify-src"
    done
  done
}

# Mirror on push: a source registry notifying a daemon (release build,
# debounce 100 ms); 20 pushes of a new tag with skopeo, each timed from
# the push's end (the registry has the tag) to the tag readable in the
# target. Then requests per hour for 100 repositories: the daemon's 6 h
# safety-net sync plus narrow runs, against a sync every 5 minutes.
run_events() {
  local dport token=bench-token ev=$work/events
  dport=$(free_port)
  mkdir -p "$ev"
  NOTIFY_URL="http://127.0.0.1:$dport/v1/events/distribution" NOTIFY_TOKEN=$token \
    start_registry "$ev/src" "$(free_port)"
  local esrc=127.0.0.1:$(awk '/addr:/ {split($2, a, ":"); print a[2]}' "$ev/src/config.yml")
  fresh_target
  "$OCIREPL" copy -q oci:examples/sample:1.0 "$esrc/ev:seed"
  printf 'version: 1\nservice:\n  token_env: OCIREPL_TRIGGER_TOKEN\n  debounce: 100ms\njobs:\n  - name: ev\n    source: %s/ev\n    target: %s/ev\n    every: 1h\n' \
    "$esrc" "$DST" >"$ev/daemon.yaml"
  OCIREPL_TRIGGER_TOKEN=$token "$OCIREPL" sync --daemon --listen "127.0.0.1:$dport" "$ev/daemon.yaml" 2>"$ev/daemon.err" &
  local dpid=$!
  pids+=("$dpid")
  until curl -sf "http://127.0.0.1:$dport/readyz" >/dev/null; do sleep 0.1; done
  sleep 3 # the seed's own event, queued while nothing listened, is delivered
  local i start t
  for i in $(seq -w 1 20); do
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/fixtures/many:t$i" "docker://$esrc/ev:p$i" >/dev/null
    start=$(date +%s%N)
    until curl -sf -o /dev/null -I -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$DST/v2/ev/manifests/p$i"; do sleep 0.01; done
    t=$(date +%s%N)
    echo "$(((t - start) / 1000000))" >>"$ev/latency"
  done
  # The copy itself: the same image to a fresh tag, one-shot.
  start=$(date +%s%N)
  "$OCIREPL" copy -q "$esrc/ev:p01" "$DST/oneshot:p01"
  echo "$((($(date +%s%N) - start) / 1000000))" >"$ev/oneshot"
  # What one narrow run costs: the last push's requests from ocirepl.
  grep -c '"ocirepl/' "$ev/src/access.log" >"$ev/src-ocirepl" || true
  kill "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  stop_registry "$ev/src"
  # 100 repositories, one tag each: an unchanged run's requests.
  local r
  for r in $(seq -w 1 100); do "$OCIREPL" copy -q oci:examples/sample:1.0 "$SRC/hundred/r$r:1.0"; done
  fresh_target
  printf 'version: 1\njobs:\n  - name: hundred\n    source: %s/hundred/\n    target: %s/hundred/\n' "$SRC" "$DST" >"$ev/hundred.yaml"
  "$OCIREPL" sync -q "$ev/hundred.yaml"
  "$OCIREPL" sync --output json "$ev/hundred.yaml" | tail -1 |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(sum(sum(v.values()) for v in s["requests"].values()))' >"$ev/noop-requests"
  # One narrow run: a job of the 100 for one tag, as an event asks.
  printf 'version: 1\njobs:\n  - name: one\n    source: %s/hundred/r001\n    target: %s/hundred/r001\n' "$SRC" "$DST" >"$ev/one.yaml"
  "$OCIREPL" copy -q oci:examples/sample:1.0 "$SRC/hundred/r001:2.0"
  "$OCIREPL" sync --output json "$ev/one.yaml" | tail -1 |
    python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(sum(sum(v.values()) for v in s["requests"].values()))' >"$ev/narrow-requests"
}

touch "$work/results" "$work/fan-results" "$work/mirror-gets" "$work/archive-extra" "$work/verify-src"
if section fanout; then
  echo "== fan-out: one source to three targets; read mirror" >&2
  WAN=0 run_fanout ""
  WAN=1 run_fanout "-wan"
  run_mirror
fi
if section archive; then
  echo "== archives: export and import against skopeo, incremental, 2 GiB RSS" >&2
  WAN=0 run_archive
fi
if section verify; then
  echo "== verify: 40 signed tags, sync with and without a key policy" >&2
  WAN=0 run_verify
fi
if section events; then
  echo "== events: push-to-mirror latency, requests per hour" >&2
  WAN=0 run_events
fi
if section local; then
  echo "== local ($RUNS runs)" >&2
  WAN=0 run_scenarios ""
fi
if section wan; then
  echo "== WAN profile: +${DELAY_MS} ms per request" >&2
  WAN=1 run_scenarios "-wan"
fi
if section thousand; then
  echo "== 1,000 unchanged tags (sync)" >&2
  seed_thousand
  WAN=0 run_thousand "" "$RUNS"
  WAN=1 run_thousand "-wan" "$RUNS1000"
fi
if section https; then
  echo "== HTTPS (HTTP/2 offered), loopback and ${DELAY_MS} ms round trips" >&2
  make_pki "$work/pki"
  CERTS=$work/certs
  mkdir -p "$CERTS"
  cp "$work/pki/ca.crt" "$CERTS/"
  export CERTS
  tls_port=$(free_port)
  start_registry "$work/src-tls" "$tls_port" "$work/pki" "$work/src/data"
  SRC_TLS=127.0.0.1:$tls_port
  HTTPS=1 WAN=0 run_https "-https"
  HTTPS=1 WAN=1 run_https "-https-wan"
fi

# Peak RSS against layer size (ocirepl only): must stay flat.
curve=""
if [ "${CURVE:-1}" = 1 ] && { section curve || section archive; }; then
  echo "== memory curve: 1 MiB, 256 MiB, 2 GiB layers" >&2
  "$TARGET_DIR"/release/examples/bench_fixtures "$work/curve" curve
  for size in 1m 256m 2g; do
    skopeo --insecure-policy copy --dest-tls-verify=false "oci:$work/curve/$size:v1" "docker://$SRC/curve$size:v1" >/dev/null
  done
  rm -rf "$work/curve"
  section archive && run_archive_rss
  for size in 1m 256m 2g; do
    row="| $size"
    for mode in monolithic chunked; do
      fresh_target
      /usr/bin/time -f "%e %M" -o "$work/time" "$OCIREPL" copy -q --upload-mode "$mode" --chunk-size 8388608 \
        "$SRC/curve$size:v1" "$DST/curve$size:v1" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
      read -r wall rss <"$work/time"
      row="$row | $((rss / 1024)) MiB ($wall s)"
    done
    curve="$curve$row |"$'\n'
  done
fi

# Medians per (scenario, tool), then the table and the ratios to skopeo.
summary=$(sort -k1,1 -k2,2 "$work/results" | awk '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function flush() {
    if (key == "") return
    printf "%s %s %.3f %.3f %d %d %.3f\n", s, t, median(w, n), median(c, n), median(r, n), median(q, n), median(g, n)
  }
  { k = $1 " " $2; if (k != key) { flush(); key = k; s = $1; t = $2; n = 0 }
    n++; w[n] = $3; c[n] = $4; r[n] = $5; q[n] = $6; g[n] = $7 }
  END { flush() }')

fan_summary=$(sort -k1,1 -k2,2 "$work/fan-results" | awk '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function flush() {
    if (key == "") return
    printf "%s %s %.3f %.3f %.1f %.3f\n", s, t, median(w, n), median(c, n), median(b, n), median(g, n)
  }
  { k = $1 " " $2; if (k != key) { flush(); key = k; s = $1; t = $2; n = 0 }
    n++; w[n] = $3; c[n] = $4; b[n] = $5; g[n] = $6 }
  END { flush() }')
mirror_gets=$(awk '{ n[$1]++; t[$1] += $2 } END { for (k in n) printf "%s %.0f\n", k, t[k] / n[k] }' "$work/mirror-gets" | sort)

# The hand-written analysis below the marker survives a re-run.
marker='<!-- analysis: kept by scripts/bench.sh -->'
analysis=""
if [ -f docs/benchmarks.md ] && grep -qF "$marker" docs/benchmarks.md; then
  analysis=$(awk -v m="$marker" 'index($0, m) { keep = 1 } keep' docs/benchmarks.md)
fi

{
  echo "# Benchmarks"
  echo
  echo "ocirepl against skopeo $(skopeo --version | awk '{print $3}') on two local Debian"
  echo "\`docker-registry\` ($(docker-registry --version | awk '{print $3}')) instances; median of $RUNS runs,"
  echo "a fresh target registry for each run. Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB,"
  echo "$(uname -sr). Generated by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d)."
  echo
  echo "Scenarios: **big** one image of 4 × $((128 / SCALE)) MiB incompressible layers; **many** 40 tags"
  echo "of 3 × 1 MiB layers sharing a base (skopeo per tag, \`skopeo sync\`, ocirepl \`--all-tags\`);"
  echo "**noop** the same again onto the up-to-date target; **noop1000** \`sync\` of 1,000 unchanged"
  echo "tags of one repository (\`-wan\`: $RUNS1000 run); **multiarch** an index of 3 platforms"
  echo "× 2 × 8 MiB layers; **mid** one image of 2 × $((64 / SCALE)) MiB. \`-wan\`: through proxies adding ${DELAY_MS} ms"
  echo "to every request on both sides. \`-https\`: both registries serve TLS from a private CA"
  echo "(Go's server offers HTTP/2); \`-https-wan\` delays every TCP byte by half of ${DELAY_MS} ms each way."
  echo
  echo "| scenario | tool | wall s | CPU s | peak RSS MiB | target requests | registries' CPU s | wall floor s |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  echo "$summary" | awk -v cores="$(nproc)" '{printf "| %s | %s | %.3f | %.3f | %d | %d | %.3f | %.3f |\n", $1, $2, $3, $4, $5, $6, $7, ($4 + $7) / cores}'
  echo
  echo "Registries' CPU: what both registries spent while the tool ran, on the same"
  echo "$(nproc) cores. Wall floor: the tool's and the registries' CPU over $(nproc) cores, the"
  echo "least wall any schedule of that work could take here."
  echo
  echo "Ratios: ocirepl \`copy\` against per-tag skopeo (big, many, multiarch) and against"
  echo "\`skopeo sync\` (noop); ocirepl \`sync\` against \`skopeo sync\` (rows marked sync). Wall"
  echo "floor: ocirepl's wall floor against skopeo's wall, the least wall ratio the CPU that"
  echo "ocirepl and the registries spent on its run allows on these cores:"
  echo
  echo "| scenario | wall | CPU | peak RSS | requests | wall floor |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  echo "$summary" | awk -v cores="$(nproc)" '
    { key = $1; W[key, $2] = $3; C[key, $2] = $4; R[key, $2] = $5; Q[key, $2] = $6
      F[key, $2] = ($4 + $7) / cores; seen[key] = 1 }
    function row(name, a, b, k) {
      if (W[k, b] > 0 && W[k, a] != "")
        printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, W[k, a] / W[k, b], \
          (C[k, b] > 0 ? C[k, a] / C[k, b] : 0), (R[k, b] > 0 ? R[k, a] / R[k, b] : 0), \
          (Q[k, b] > 0 ? Q[k, a] / Q[k, b] : 0), F[k, a] / W[k, b]
    }
    END {
      for (k in seen) {
        base = (k ~ /^noop/) ? "skopeo-sync" : "skopeo"
        row(k, "ocirepl", base, k)
        row(k " (sync)", "ocirepl-sync", "skopeo-sync", k)
      }
    }' | sort
  echo
  verify_ratio=$(echo "$summary" | awk '
    $2 == "ocirepl-sync" { W[$1] = $3; Q[$1] = $6 } $2 == "ocirepl-verify" { V[$1] = $3; R[$1] = $6 }
    END { if (W["many-signed"] > 0 && W["noop-signed"] > 0)
      printf "%.2f × the wall of the same sync without it for the 40 signed tags (goal: at most 1.15 ×), %.2f × on the unchanged re-run, with %d target requests against %d", V["many-signed"] / W["many-signed"], V["noop-signed"] / W["noop-signed"], R["noop-signed"], Q["noop-signed"] }')
  [ -s "$work/verify-src" ] && verify_ratio="$verify_ratio and $(awk '{ n[$1]++; t[$1] += $2 } END { printf "%.0f source requests against %.0f", t["ocirepl-verify"] / n["ocirepl-verify"], t["ocirepl-sync"] / n["ocirepl-sync"] }' "$work/verify-src")"
  if [ -n "$verify_ratio" ]; then
    echo "Verify before mirror (rows many-signed, noop-signed: \`sync\` of the 40 tags, each signed"
    echo "with cosign's layout, with a key policy, ocirepl-verify, and without, ocirepl-sync):"
    echo "$verify_ratio."
    echo
  fi
  if [ -s "$work/events/latency" ]; then
    lat=$(sort -n "$work/events/latency" | awk '{a[NR] = $1} END {printf "median %d ms, worst %d ms", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, a[NR]}')
    noop=$(cat "$work/events/noop-requests")
    narrow=$(cat "$work/events/narrow-requests")
    echo "Mirror on push (\`sync --daemon\` with a \`service:\` block, debounce 100 ms, Debian's registry"
    echo "notifying it): from the end of a \`skopeo copy\` of a new tag to the tag readable in the target,"
    echo "20 pushes of a 3 MiB image: $lat (the copy alone, one-shot: $(cat "$work/events/oneshot") ms, process start included)."
    echo "Requests for 100 repositories of one tag each: an unchanged \`sync\` costs $noop requests, so polling every"
    echo "5 minutes spends $((noop * 12)) an hour; the daemon with triggers and a 6 h safety net spends"
    echo "$((noop / 6)) an hour plus $narrow per pushed tag (a narrow run: both tag lists, the copy)."
    echo
  fi
  if [ -n "$fan_summary" ]; then
    echo
    echo "Fan-out: one source image to three targets. **ocirepl-fan3** one \`ocirepl copy SRC DST DST DST\`;"
    echo "**ocirepl-x3** and **skopeo-x3** three copies one after another; **ocirepl-x1** one copy to one"
    echo "target. \`-wan\`: the source alone behind ${DELAY_MS} ms per request. Source MiB: blob bytes the"
    echo "source served (its access log). Registries' CPU: the source and the three targets."
    echo "**many-mirror**: \`sync\` of the 40 tags with a read mirror holding all of them (yes) or"
    echo "without (no)."
    echo
    echo "| scenario | tool | wall s | CPU s | source MiB | registries' CPU s | wall floor s |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    echo "$fan_summary" | awk -v cores="$(nproc)" '{printf "| %s | %s | %.3f | %.3f | %.1f | %.3f | %.3f |\n", $1, $2, $3, $4, $5, $6, ($4 + $6) / cores}'
    if [ -n "$mirror_gets" ]; then
      echo
      echo "Blob GETs at the origin during the mirrored sync (mean): $(echo "$mirror_gets" | awk '{printf "%s%s mirror: %s", (NR > 1 ? "; " : ""), ($1 == "yes" ? "with" : "without"), $2}')."
    fi
  fi
  if [ -s "$work/archive-extra" ]; then
    echo
    echo "Archives (rows export-* and import-* above: skopeo writes one archive per image, so its"
    echo "many rows are 40 copies): $(awk '
      $1 == "incremental" { printf "an incremental export after one new tag wrote %.1f MiB for %.1f MiB of new content (goal: at most the new bytes + 1 MiB); ", $2 / 1048576, $3 / 1048576 }
      $1 == "export-2g" { printf "peak RSS %d MiB exporting a 2 GiB archive, ", $2 }
      $1 == "import-2g" { printf "%d MiB importing it (goal: under 64 MiB)", $2 }' "$work/archive-extra")."
  fi
  if [ -n "$curve" ]; then
    echo
    echo "Peak RSS of ocirepl against layer size (one image, one layer; 8 MiB chunks):"
    echo
    echo "| layer | monolithic | chunked |"
    echo "| --- | ---: | ---: |"
    printf "%s" "$curve"
  fi
  echo
  echo "Re-run: \`scripts/bench.sh\` (\`RUNS=5\`, \`SCALE=8\`, \`DELAY_MS=50\` to vary; \`CURVE=0\` skips the 2 GiB curve)."
  if [ -n "$analysis" ]; then
    echo
    echo "$analysis"
  fi
} >"$work/benchmarks.md"
[ "$OUT" = /dev/null ] || cp "$work/benchmarks.md" "$OUT"
cat "$work/benchmarks.md"
