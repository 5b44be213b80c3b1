#!/usr/bin/env bash
# Builds the step, pins it and runs gantry.yml, checking the greeting.
set -euo pipefail
cd "$(dirname "$0")"
gantry="${GANTRY:-gantry}"
./build.sh
"$gantry" lock --update
output="$("$gantry" run)"
echo "$output"
grep -q "Hello, world!" <<<"$output"
grep -q "Hello, Hello, world!!" <<<"$output"
echo "ok"
