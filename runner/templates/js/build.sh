#!/usr/bin/env bash
# Builds step.js into plugins/__NAME__.wasm (a WASI 0.2 component of the
# `wasi:cli/command` world) and embeds meta.json in its `gantry:step`
# section. Needs componentize-js: `npm install` here (package.json), or
# `npm install -g @bytecodealliance/componentize-js@0.23.0`.
# GANTRY names the gantry binary to use (default: `gantry` on PATH).
set -euo pipefail
cd "$(dirname "$0")"
PATH="$PWD/node_modules/.bin:$PATH"
command -v componentize-js >/dev/null || {
    echo "error: componentize-js not found; run \`npm install\` here" >&2
    exit 127
}
mkdir -p plugins
# wit/ holds the WASI 0.2.12 definitions, `wasi:cli` at its root.
# `--disable http` leaves out fetch's outgoing requests (the
# wasi:http/outgoing-handler import); drop it to use `fetch`, and grant
# the destinations in the step's `permissions.network`.
componentize-js step.js --wit wit --world-name wasi:cli/command@0.2.12 --disable http \
    --out plugins/__NAME__.wasm
"${GANTRY:-gantry}" plugin annotate plugins/__NAME__.wasm meta.json -o plugins/__NAME__.wasm
