//! Whole `gantry run` processes: the pipelines they run, written to a
//! temp folder, and the wall time and peak RSS of one run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A pipeline of `jobs` independent jobs of `steps` steps each, every step
/// `uses: ALIAS` with the inputs `with`, the plugin `wasm` pinned inline.
/// Returns the manifest's path.
pub fn write_pipeline(
    work: &Path,
    name: &str,
    wasm: &[u8],
    jobs: usize,
    steps: usize,
    with: &[(&str, &str)],
) -> PathBuf {
    let folder = work.join(name);
    std::fs::create_dir_all(&folder).expect("a pipeline folder");
    std::fs::write(folder.join("step.wasm"), wasm).expect("the plugin is written");
    let mut yaml = format!(
        "name: {name}\nplugins:\n  step:\n    source: step.wasm\n    sha256: {}\njobs:\n",
        gantry::plugin::sha256_hex(wasm)
    );
    let mut step = String::from("      - uses: step\n");
    if !with.is_empty() {
        step.push_str("        with:\n");
        for (input, value) in with {
            let _ = writeln!(step, "          {input}: \"{value}\"");
        }
    }
    for job in 0..jobs {
        let _ = writeln!(yaml, "  job{job}:\n    steps:");
        for _ in 0..steps {
            yaml.push_str(&step);
        }
    }
    let manifest = folder.join("gantry.yml");
    std::fs::write(&manifest, yaml).expect("the manifest is written");
    manifest
}

/// What one process run measured.
#[derive(Debug, Clone, Copy)]
pub struct ProcessRun {
    /// Seconds from spawn to reaped.
    pub wall: f64,
    /// The process's peak resident set (`ru_maxrss`), in KiB.
    pub peak_rss_kib: u64,
}

/// Runs `gantry run MANIFEST` with `XDG_CACHE_HOME=cache_home` (so the
/// compiled-module cache is `cache_home/gantry`) and, if given, `TMPDIR`
/// (where the step folders go). Output is discarded; it must succeed.
pub fn gantry_run(gantry: &Path, manifest: &Path, cache_home: &Path) -> ProcessRun {
    let mut command = Command::new(gantry);
    command
        .arg("run")
        .arg(manifest)
        .env("XDG_CACHE_HOME", cache_home)
        // Whatever CI runs the bench, gantry must not take on its format.
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT");
    let (ok, run) = measure(&command);
    assert!(ok, "`gantry run {}` failed", manifest.display());
    run
}

/// The first argument that makes this binary the measuring helper.
pub const HELPER_ARG: &str = "--spawn-measured";

/// Runs `command` (stdin and stdout null, stderr shown) and returns whether
/// it exited with status 0, its wall time and its peak RSS.
///
/// The command is started by a fresh copy of this binary, the helper, not
/// by this process: Linux carries the parent's RSS high-water mark into a
/// child's `ru_maxrss` when the child is spawned (vfork, then exec), so a
/// child of this large process would report this process's peak instead
/// of its own. The helper is small when it spawns, and times the command
/// itself, so its own start is not counted either.
pub fn measure(command: &Command) -> (bool, ProcessRun) {
    let exe = std::env::current_exe().expect("own path");
    let mut helper = Command::new(exe);
    helper
        .arg(HELPER_ARG)
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => helper.env(name, value),
            None => helper.env_remove(name),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        helper.current_dir(dir);
    }
    let output = helper
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("the measuring helper starts");
    assert!(output.status.success(), "the measuring helper failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("the helper prints numbers"))
        .collect();
    let [ok, wall_ns, peak_rss_kib] = fields[..] else {
        panic!("the measuring helper printed `{text}`");
    };
    (
        ok == 1,
        ProcessRun {
            wall: wall_ns as f64 / 1e9,
            peak_rss_kib,
        },
    )
}

/// The helper: runs `program args…`, reaps it with wait4 and prints
/// `OK WALL_NS PEAK_RSS_KIB`. Allocates as little as it can before the
/// spawn, so its own RSS stays below any program worth measuring.
pub fn helper_main(mut args: impl Iterator<Item = std::ffi::OsString>) -> ! {
    let program = args.next().expect("a program to measure");
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let child = command.spawn().expect("the measured program starts");
    let (ok, peak_rss_kib) = wait_with_usage(child);
    let wall = started.elapsed();
    println!("{} {} {peak_rss_kib}", u8::from(ok), wall.as_nanos());
    std::process::exit(0)
}

/// Reaps `child` with wait4, which also reports its peak RSS in KiB.
fn wait_with_usage(child: std::process::Child) -> (bool, u64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is this process's own child and not yet reaped; the
    // pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed: {}", std::io::Error::last_os_error());
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    (ok, usage.ru_maxrss as u64)
}
