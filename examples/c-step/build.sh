#!/usr/bin/env bash
# Builds step.c into plugins/c-step.wasm, a WASI preview 1 command module.
# Needs Debian's `clang lld wasi-libc libclang-rt-dev-wasm32`.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p plugins
clang --target=wasm32-wasi -O2 -Wall -Wextra -o plugins/c-step.wasm step.c
