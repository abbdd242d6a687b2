#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted input, on the stable
# toolchain: cargo-fuzz drives libFuzzer (built from the libfuzzer-sys
# crate) with `--sanitizer none`, since address sanitizers need nightly.
# Safe Rust needs no ASan to turn memory errors into crashes; what we hunt
# is panics, overflows (debug assertions are on) and broken invariants
# (the asserts in fuzz/bodies.rs).
#
#   scripts/fuzz.sh                 # every target for FUZZ_SECONDS (600) each
#   FUZZ_SECONDS=60 scripts/fuzz.sh token manifest
#
# New interesting inputs land in fuzz/corpus/<target>/ (minimised at the
# end); tests/fuzz_corpus.rs replays them in the test suite. Fails on any
# crash, which stays in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(reference challenge manifest schema1 range token sync_config layout_index archive)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd fuzz
cargo fuzz build --sanitizer none --debug-assertions "${targets[@]:0:1}" >/dev/null
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== $t: ${FUZZ_SECONDS}s" >&2
  if ! cargo fuzz run --sanitizer none --debug-assertions "$t" "corpus/$t" -- \
      -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      2> >(tee "artifacts/$t/run.log" | grep -E "^(stat::|#[0-9]+ +(DONE|INITED))|crash|panicked|ERROR" >&2); then
    failed+=("$t")
  fi
  cargo fuzz cmin --sanitizer none --debug-assertions "$t" "corpus/$t" >/dev/null 2>&1 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crash in ${#targets[@]} targets (${FUZZ_SECONDS}s each)" >&2
