#!/usr/bin/env bash
# Builds the example steps written in other languages than Rust from
# source, adds their metadata, pins them and runs their pipelines:
#   examples/build-foreign.sh            # c-step zig-step go-step python-step
#   examples/build-foreign.sh js-step    # one (its pipeline needs a server, see its README)
# Needs: Debian's `clang lld wasi-libc libclang-rt-dev-wasm32` for C,
# `pip install ziglang` for Zig, and for Go, Python and JavaScript what
# scripts/toolchains.sh installs into tools/bin.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
examples=("$@")
[ ${#examples[@]} -gt 0 ] || examples=(c-step zig-step go-step python-step)

echo "==> building gantry"
cargo build --quiet --manifest-path "$root/Cargo.toml" -p gantry
gantry="${CARGO_TARGET_DIR:-$root/target}/debug/gantry"

for example in "${examples[@]}"; do
    folder="$root/examples/$example"
    [ -x "$folder/build.sh" ] || { echo "error: no foreign example named \`$example\`" >&2; exit 2; }
    echo "==> building $example"
    "$folder/build.sh"
    wasm="$folder/plugins/$example.wasm"
    echo "==> annotating $example with its meta.json"
    "$gantry" plugin annotate "$wasm" "$folder/meta.json" -o "$wasm"
    "$gantry" inspect "$wasm"
    echo "==> pinning $example"
    "$gantry" lock --update "$folder"
    echo "==> running $example"
    "$gantry" run "$folder"
done
