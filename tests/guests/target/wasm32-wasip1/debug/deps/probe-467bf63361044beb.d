/work/main/tests/guests/target/wasm32-wasip1/debug/deps/probe-467bf63361044beb.d: src/bin/probe.rs Cargo.toml

/work/main/tests/guests/target/wasm32-wasip1/debug/deps/libprobe-467bf63361044beb.rmeta: src/bin/probe.rs Cargo.toml

src/bin/probe.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
