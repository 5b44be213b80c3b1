#!/usr/bin/env bash
# Builds step.py into plugins/__NAME__.wasm (a WASI 0.2 component of the
# `wasi:cli/command` world) and embeds meta.json in its `gantry:step`
# section. Needs componentize-py: `pip install componentize-py==0.25.1`.
# GANTRY names the gantry binary to use (default: `gantry` on PATH).
set -euo pipefail
cd "$(dirname "$0")"
command -v componentize-py >/dev/null || {
    echo "error: componentize-py not found; pip install componentize-py==0.25.1" >&2
    exit 127
}
mkdir -p plugins
# wit/ holds the WASI 0.2.12 definitions, `wasi:cli` at its root.
componentize-py --wit-path wit --world wasi:cli/command@0.2.12 componentize step \
    --output plugins/__NAME__.wasm
"${GANTRY:-gantry}" plugin annotate plugins/__NAME__.wasm meta.json -o plugins/__NAME__.wasm
