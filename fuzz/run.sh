#!/usr/bin/env bash
# Runs every cargo-fuzz target (or those named) from its seed corpus.
#
#   fuzz/run.sh --runs 2000            # each target, 2000 inputs (CI)
#   fuzz/run.sh --time 600 manifest    # the manifest target, ten minutes
#
# New inputs the fuzzer finds go to fuzz/target/corpus/<target> (not
# committed); fuzz/corpus/<target> is the committed seed corpus, only read.
# A crash stops the run and leaves its input in fuzz/artifacts/<target>/
# (docs/FUZZING.md says how to turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")"

limit=()
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) limit=("-runs=$2"); shift 2 ;;
        --time) limit=("-max_total_time=$2"); shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#limit[@]} -gt 0 ] || { echo "usage: fuzz/run.sh (--runs N | --time SECONDS) [TARGET...]" >&2; exit 2; }
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

# No sanitizer: the parsers fuzzed are safe Rust, where AddressSanitizer
# finds nothing a panic or an overflow check does not, yet it instruments
# every dependency (all of wasmtime) for a slower build and slower runs.
# libFuzzer's coverage guidance, debug assertions and overflow checks stay.
fuzz=(cargo +nightly fuzz run --sanitizer none)
for target in "${targets[@]}"; do
    echo "==> fuzz $target ${limit[*]}"
    mkdir -p "target/corpus/$target"
    # -timeout: an input that takes ten seconds is a hang for parsers of a
    # few KiB; -max_len: bigger than every seed, small enough to stay fast.
    log="target/fuzz-$target.log"
    if ! "${fuzz[@]}" "$target" "target/corpus/$target" "corpus/$target" -- \
        "${limit[@]}" -timeout=10 -max_len=16384 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target failed (whole log: fuzz/$log)" >&2
        exit 1
    fi
    grep -E '^(Done [0-9]+ runs|stat::average_exec_per_sec)' "$log" || true
done
