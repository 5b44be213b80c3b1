#!/bin/sh
# Builds gantry and its benchmark in release mode, and the `hello` plugin
# for wasm32-wasip1, then runs the benchmark. Arguments go to the benchmark:
# --steps N (default 1000), --repeat R (default 7), --gantry PATH,
# --plugin WASM. See docs/BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet -p gantry -p gantry-bench --bins
# A real plugin of about 100 KB, for the second-run target beside the
# generated one; the figures are complete without it.
if cargo build --release --quiet --manifest-path plugins/Cargo.toml \
    --target wasm32-wasip1 --target-dir target -p hello; then
    exec target/release/gantry-bench --plugin target/wasm32-wasip1/release/hello.wasm "$@"
fi
echo "bench.sh: the hello plugin did not build; measuring without it" >&2
exec target/release/gantry-bench "$@"
