#!/usr/bin/env bash
# Builds step.js into plugins/js-step.wasm, a WASI 0.2 component of the
# `wasi:cli/command` world, with componentize-js (npm). The component
# embeds the StarlingMonkey JavaScript engine (about 14 MB); `fetch` in it
# imports `wasi:http`. Uses the componentize-js that scripts/toolchains.sh
# installs into tools/bin when it is there, else the one on PATH.
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(cd ../.. && pwd)/tools/bin:$PATH"
command -v componentize-js >/dev/null || {
    echo "error: componentize-js not found; run scripts/toolchains.sh (or npm install @bytecodealliance/componentize-js)" >&2
    exit 127
}
mkdir -p plugins
# wit/ holds the WASI 0.2.12 definitions, `wasi:cli` at its root.
componentize-js step.js --wit wit --world-name wasi:cli/command@0.2.12 \
    --out plugins/js-step.wasm
