#!/usr/bin/env bash
# The main jobs on the bundled sample, on this machine only: build ocirepl,
# start three throw-away registries on 127.0.0.1, push the multi-arch sample
# (examples/sample, an OCI layout) into the first, then
#   1. copy it to the second (digest kept), and again (nothing to do);
#   2. copy one platform of it (a new, reported index);
#   3. run a mirror job from a config (examples/mirror.yaml);
#   4. carry the job across an "air gap": export to an archive, import the
#      archive into the third registry.
# Stops the registries at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages docker-registry:docker-registry
cargo build --release --quiet
ocirepl=$(cargo_target_dir)/release/ocirepl

work=$(mktemp -d)
trap 'for r in a b c; do stop_registry "$work/$r"; done; rm -rf "$work"' EXIT
for r in a b c; do
  port=$(free_port)
  start_registry "$work/$r" "$port"
  eval "$r=127.0.0.1:$port"
done

echo "== push the bundled sample into $a (as sample and as tools)"
"$ocirepl" copy oci:examples/sample:1.0 "$a/sample:1.0" "$a/tools:2.1"

echo
echo "== 1. copy $a/sample:1.0 -> $b/mirror/sample:1.0 (the digest is kept)"
report=$("$ocirepl" copy --output json "$a/sample:1.0" "$b/mirror/sample:1.0")
echo "$report"
echo "== copy again: nothing to do"
"$ocirepl" copy "$a/sample:1.0" "$b/mirror/sample:1.0"

echo
echo "== 2. only linux/arm64, as its own index (a new digest, said why)"
"$ocirepl" copy --platform linux/arm64 "$a/sample:1.0" "$b/mirror/sample:1.0-arm64"

echo
echo "== 3. a mirror job: examples/mirror.yaml, with the registries filled in"
sed -e "s/SOURCE/$a/g" -e "s/TARGET/$b/g" examples/mirror.yaml >"$work/mirror.yaml"
"$ocirepl" sync --check "$work/mirror.yaml"
"$ocirepl" sync "$work/mirror.yaml"

echo
echo "== 4. across an air gap: export the job to an archive, import it into $c"
"$ocirepl" sync --to-archive "$work/carry.tar" "$work/mirror.yaml"
ls -l "$work"/carry.tar*
sed -e "s/SOURCE/$a/g" -e "s/TARGET/$c/g" examples/mirror.yaml >"$work/inside.yaml"
"$ocirepl" sync --from-archive "$work/carry.tar" "$work/inside.yaml"

digest=$(echo "$report" | sed -n 's/.*"target_digest":"\([^"]*\)".*/\1/p')
echo
echo "the sample's digest, in every registry: $digest"
