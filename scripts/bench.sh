#!/usr/bin/env bash
# Builds gantry and its benchmark in release mode, and the `hello` plugin
# for wasm32-wasip1, then runs the benchmark. Arguments go to the benchmark:
# --steps N (default 1000), --repeat R (default 7), --gantry PATH,
# --plugin WASM, --component WASM. See docs/BENCHMARKS.md.
#
# With the Python and JavaScript toolchains installed (scripts/toolchains.sh),
# it also builds a Python and a JavaScript step as `gantry new` makes them
# and times them as components (first run: compile; cached run, held to 5x
# the Rust probe's).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p gantry -p gantry-bench --bins
extra=()
# A real plugin of about 100 KB, for the second-run target beside the
# generated one; the figures are complete without it.
if cargo build --release --quiet --manifest-path plugins/Cargo.toml \
    --target wasm32-wasip1 --target-dir target -p hello; then
    extra+=(--plugin target/wasm32-wasip1/release/hello.wasm)
else
    echo "bench.sh: the hello plugin did not build; measuring without it" >&2
fi
if [ -x tools/bin/componentize-py ] && [ -x tools/bin/componentize-js ]; then
    scaffolds="target/bench-components"
    rm -rf "$scaffolds"
    mkdir -p "$scaffolds"
    for lang in python js; do
        step="$scaffolds/bench-$lang"
        target/release/gantry new "$step" --lang "$lang" >/dev/null
        if PATH="$PWD/tools/bin:$PATH" GANTRY="$PWD/target/release/gantry" "$step/build.sh" >/dev/null 2>&1; then
            extra+=(--component "$step/plugins/bench-$lang.wasm")
        else
            echo "bench.sh: the $lang step did not build; measuring without it" >&2
        fi
    done
else
    echo "bench.sh: no Python/JavaScript toolchains (scripts/toolchains.sh); measuring without component steps" >&2
fi
exec target/release/gantry-bench "${extra[@]}" "$@"
