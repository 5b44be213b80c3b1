#!/usr/bin/env bash
# Builds step.py into plugins/python-step.wasm, a WASI 0.2 component of the
# world in wit/world.wit (`wasi:cli/command`, plus outgoing `wasi:http`),
# with componentize-py (PyPI). The component embeds CPython, so it is
# large (about 19 MB).
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
# wit/ holds the world and, in deps/, the WASI 0.2.12 packages it uses.
componentize-py --wit-path wit --world step componentize step \
    --output plugins/python-step.wasm
