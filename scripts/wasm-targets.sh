#!/usr/bin/env bash
# Makes sure the Rust standard library for each WebAssembly target named is
# installed for this repository's toolchain, and says what it installs:
#   scripts/wasm-targets.sh wasm32-wasip1 wasm32-wasip2
# rustup installs rust-toolchain.toml's targets by itself only where
# auto-install is on; with RUSTUP_AUTO_INSTALL=0 (or an older rustup) a
# first build fails with "can't find crate for `core`" instead.
set -euo pipefail
cd "$(dirname "$0")/.."

sysroot="$(rustc --print sysroot)"
for target in "$@"; do
    [ -d "$sysroot/lib/rustlib/$target" ] && continue
    if ! command -v rustup >/dev/null; then
        echo "error: the Rust standard library for $target is not installed, and there is no rustup to install it" >&2
        echo "hint: install it with your Rust distribution's package for $target" >&2
        exit 1
    fi
    echo "==> installing the Rust standard library for $target (rustup target add $target)"
    rustup target add "$target"
done
