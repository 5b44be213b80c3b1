//! Plugin verification throughput: the sha256 gantry computes over every
//! plugin before it runs, beside coreutils' `sha256sum` on the same bytes.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// How much is hashed per measurement.
pub const HASHED_BYTES: usize = 64 << 20;

/// The bytes hashed: not constant, so no shortcut could apply.
pub fn data() -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..HASHED_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// MiB per second of [`gantry::plugin::sha256_hex`], the function
/// `gantry run` verifies every plugin with, over bytes already in memory.
pub fn gantry_mib_per_second(data: &[u8]) -> f64 {
    let started = Instant::now();
    let hex = gantry::plugin::sha256_hex(data);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(hex.len(), 64);
    mib(data.len()) / elapsed
}

/// MiB per second of `sha256sum FILE` (a file in the page cache), process
/// start included; `None` without coreutils.
pub fn sha256sum_mib_per_second(file: &Path, len: usize) -> Option<f64> {
    let started = Instant::now();
    let output = Command::new("sha256sum").arg(file).output().ok()?;
    let elapsed = started.elapsed().as_secs_f64();
    output.status.success().then(|| mib(len) / elapsed)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
