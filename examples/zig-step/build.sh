#!/usr/bin/env bash
# Builds step.zig into plugins/zig-step.wasm, a WASI preview 1 command
# module. Needs the Zig compiler from PyPI: `pip install ziglang`.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p plugins
python3 -m ziglang build-exe step.zig -target wasm32-wasi -O ReleaseSmall -lc \
    -femit-bin=plugins/zig-step.wasm
rm -f plugins/zig-step.wasm.o
