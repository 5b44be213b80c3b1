#!/usr/bin/env bash
# Builds step.c into plugins/__NAME__.wasm (a WASI preview 1 command module)
# and embeds meta.json in its `gantry:step` section.
# Needs clang with a wasm32-wasi sysroot; on Debian:
#   apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
# GANTRY names the gantry binary to use (default: `gantry` on PATH).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p plugins
clang --target=wasm32-wasi -O2 -Wall -Wextra -o plugins/__NAME__.wasm step.c
"${GANTRY:-gantry}" plugin annotate plugins/__NAME__.wasm meta.json -o plugins/__NAME__.wasm
