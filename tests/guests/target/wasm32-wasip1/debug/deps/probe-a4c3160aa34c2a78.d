/work/main/tests/guests/target/wasm32-wasip1/debug/deps/probe-a4c3160aa34c2a78.d: src/bin/probe.rs Cargo.toml

/work/main/tests/guests/target/wasm32-wasip1/debug/deps/libprobe-a4c3160aa34c2a78.rmeta: src/bin/probe.rs Cargo.toml

src/bin/probe.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
