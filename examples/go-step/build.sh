#!/usr/bin/env bash
# Builds main.go into plugins/go-step.wasm, a WASI preview 1 command module
# (GOOS=wasip1 needs Go 1.21 or later). Uses the Go that
# scripts/toolchains.sh installs into tools/bin when it is there, else the
# one on PATH.
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(cd ../.. && pwd)/tools/bin:$PATH"
mkdir -p plugins
# GOTOOLCHAIN=local: never download another Go because go.mod asked.
# -trimpath keeps this machine's folders out of the module.
GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local go build -trimpath -ldflags=-s -o plugins/go-step.wasm .
