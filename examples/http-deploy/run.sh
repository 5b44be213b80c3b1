#!/usr/bin/env bash
# Runs the http-deploy example against a throwaway nginx with WebDAV:
#   examples/http-deploy/run.sh           # upload, verify, health check passes
#   examples/http-deploy/run.sh --fail    # /healthz answers 503: the uploads are rolled back
# Needs nginx with its WebDAV module (Debian: `apt-get install nginx-light`).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
health=200
case "${1:-}" in
    "") ;;
    --fail) health=503 ;;
    *) echo "usage: $0 [--fail]" >&2; exit 2 ;;
esac

nginx="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
[ -x "$nginx" ] || { echo "error: nginx is not installed (apt-get install nginx-light)" >&2; exit 2; }
"$nginx" -V 2>&1 | grep -q -- --with-http_dav_module ||
    { echo "error: $nginx lacks the WebDAV module (--with-http_dav_module)" >&2; exit 2; }

"$root/scripts/wasm-targets.sh" wasm32-wasip1 wasm32-wasip2
echo "==> building the plugins (render for wasm32-wasip1, http for wasm32-wasip2)"
cargo build --quiet --manifest-path "$root/plugins/Cargo.toml" --release \
    --target wasm32-wasip1 -p render --target-dir "$target"
cargo build --quiet --manifest-path "$root/plugins/Cargo.toml" --release \
    --target wasm32-wasip2 -p http --target-dir "$target"
mkdir -p "$here/plugins"
cp "$target/wasm32-wasip1/release/render.wasm" "$target/wasm32-wasip2/release/http.wasm" "$here/plugins/"

echo "==> building gantry"
cargo build --quiet -p gantry --manifest-path "$root/Cargo.toml" --target-dir "$target"
gantry="$target/debug/gantry"

# Everything nginx writes goes to a temporary folder; the server is one
# process (see nginx.conf.in), ended by its pid on the way out.
tmp="$(mktemp -d)"
nginx_pid=""
cleanup() {
    [ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
    [ -z "$nginx_pid" ] || wait "$nginx_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# A free port: bound by the kernel's choice, then released for nginx.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
password="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
mkdir "$tmp/www"
printf 'deploy:{PLAIN}%s\n' "$password" > "$tmp/htpasswd"
sed -e "s#@DIR@#$tmp#g" -e "s#@PORT@#$port#g" -e "s#@HEALTH@#$health#g" \
    "$here/nginx.conf.in" > "$tmp/nginx.conf"
echo "==> starting nginx on 127.0.0.1:$port (/healthz answers $health)"
"$nginx" -e "$tmp/error.log" -p "$tmp" -c "$tmp/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/error.log" >&2; exit 1; }
    sleep 0.1
done

# A network grant is a literal destination, not an expression: the port
# goes into a copy of the manifest, beside it so `site/` and `plugins/`
# resolve the same.
manifest="$here/gantry.local.yml"
sed "s#127\.0\.0\.1:8089#127.0.0.1:$port#g" "$here/gantry.yml" > "$manifest"

# The plugins were just built from this repository's source, so pinning
# them is the one moment trusting an unpinned file is right.
echo "==> pinning the freshly built plugins"
"$gantry" lock --update "$manifest"

echo "==> running the pipeline"
# The WebDAV password reaches only the steps that name the secret, and is
# masked everywhere gantry prints or stores.
export DAV_AUTH="Basic $(printf 'deploy:%s' "$password" | base64)"
status=0
"$gantry" run "$manifest" --secret DAV_AUTH || status=$?

echo "==> what the server holds now"
(cd "$tmp/www" && find . -type f | sort | sed 's#^\./#  /#')
[ -n "$(find "$tmp/www" -type f)" ] || echo "  (nothing)"
exit "$status"
