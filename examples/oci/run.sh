#!/usr/bin/env bash
# Runs the oci example: a throwaway registry on loopback, the first-party
# `hello` plugin pushed to it by tag, `gantry lock` resolving the tag to a
# digest, and a pipeline run that pulls the plugin by that digest.
#   examples/oci/run.sh
# Needs Debian's docker-registry (`apt-get install docker-registry`).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
registry_bin=/usr/bin/docker-registry
[ -x "$registry_bin" ] || { echo "error: docker-registry is not installed (apt-get install docker-registry)" >&2; exit 2; }

echo "==> building the hello plugin and gantry"
cargo build --quiet --manifest-path "$root/plugins/Cargo.toml" --release \
    --target wasm32-wasip1 -p hello --target-dir "$target"
cargo build --quiet -p gantry --manifest-path "$root/Cargo.toml" --target-dir "$target"
gantry="$target/debug/gantry"

# The registry's storage, gantry's cache and state, and the project copy
# all live in a temporary folder; the registry is ended by its pid.
tmp="$(mktemp -d)"
registry_pid=""
cleanup() {
    [ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
    [ -z "$registry_pid" ] || wait "$registry_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$tmp/registry.yml" <<YAML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $tmp/storage } }
http: { addr: "127.0.0.1:$port", secret: example }
YAML
echo "==> starting docker-registry on 127.0.0.1:$port"
"$registry_bin" serve "$tmp/registry.yml" 2>"$tmp/registry.log" &
registry_pid=$!
for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$registry_pid" 2>/dev/null || exit 1
    sleep 0.1
done

export XDG_CACHE_HOME="$tmp/cache" XDG_STATE_HOME="$tmp/state" DOCKER_CONFIG="$tmp/docker"
project="$tmp/project"
mkdir -p "$project"
sed "s#@REGISTRY@#127.0.0.1:$port#" "$here/gantry.yml.in" > "$project/gantry.yml"

echo "==> gantry plugin push"
"$gantry" plugin push "$target/wasm32-wasip1/release/hello.wasm" "oci://127.0.0.1:$port/steps/hello:1"
echo "==> gantry lock (resolves the tag to a digest)"
(cd "$project" && "$gantry" lock)
cat "$project/gantry.lock"
echo "==> gantry fetch, then a run that needs no registry"
(cd "$project" && "$gantry" fetch)
kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; registry_pid=""
(cd "$project" && "$gantry" run)
