#!/usr/bin/env bash
# Builds step.py into plugins/python-step.wasm, a WASI 0.2 component of the
# `wasi:cli/command` world, with componentize-py (PyPI). The component
# embeds CPython and its standard library, so it is large (about 18 MB).
# Uses the componentize-py that scripts/toolchains.sh installs into
# tools/bin when it is there, else the one on PATH.
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(cd ../.. && pwd)/tools/bin:$PATH"
command -v componentize-py >/dev/null || {
    echo "error: componentize-py not found; run scripts/toolchains.sh (or pip install componentize-py)" >&2
    exit 127
}
mkdir -p plugins
# wit/ holds the WASI 0.2.12 definitions, `wasi:cli` at its root.
componentize-py --wit-path wit --world wasi:cli/command@0.2.12 componentize step \
    --output plugins/python-step.wasm
