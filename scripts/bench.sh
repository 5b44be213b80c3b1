#!/bin/sh
# Builds gantry and its benchmark in release mode and runs the benchmark.
# Arguments go to the benchmark: --steps N (default 1000), --repeat R
# (default 5), --gantry PATH. See docs/BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet -p gantry --bin gantry -p gantry-bench
exec target/release/gantry-bench "$@"
