#!/usr/bin/env bash
# Builds the plugins an example uses, pins them and runs the example:
#   examples/run.sh hello
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
example="${1:?usage: examples/run.sh EXAMPLE (one of: $(ls -d "$root"/examples/*/ | xargs -n1 basename | tr '\n' ' '))}"
folder="$root/examples/$example"
[ -f "$folder/gantry.yml" ] || { echo "error: no example named \`$example\`" >&2; exit 2; }
# An example that needs more than its plugins (a server to talk to) has a
# script of its own.
[ ! -x "$folder/run.sh" ] || exec "$folder/run.sh" "${@:2}"

"$root/scripts/wasm-targets.sh" wasm32-wasip1
echo "==> building the plugins for wasm32-wasip1"
# `http` is a WASI 0.2 component only; examples/http-deploy builds it.
cargo build --quiet --manifest-path "$root/plugins/Cargo.toml" --release --target wasm32-wasip1 \
    --workspace --exclude http --target-dir "$root/target"
mkdir -p "$folder/plugins"
for wasm in "$root"/target/wasm32-wasip1/release/*.wasm; do
    cp "$wasm" "$folder/plugins/"
done

echo "==> building gantry"
cargo build --quiet -p gantry
gantry="${CARGO_TARGET_DIR:-$root/target}/debug/gantry"

# The modules were just built from this repository's source, so pinning them
# is the one moment trusting an unpinned file is right.
echo "==> pinning the freshly built plugins"
"$gantry" lock --update "$folder"

echo "==> running the example"
exec "$gantry" run "$folder"
