//! `gantry-bench`: what a step costs in gantry, measured beside what it
//! costs in wasmtime alone (the floor) and as a native process, in one run.
//!
//! Every figure is the median of `--repeat` rounds; the machines this runs
//! on are shared and noisy, so the ratios matter more than the absolute
//! numbers. See `docs/BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry::engine::{self, AdmittedPlugins, RunOptions};
use gantry::plugin::VerifiedPlugin;
use gantry::plugin::cache::ModuleCache;
use gantry::report::{Event, Reporter};
use gantry::sandbox::{Sandbox, StepInvocation, StepModule};
use gantry::secrets::Secrets;
use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;

/// The no-op step: exports `_start` and a memory, imports nothing.
const NOOP_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

struct Options {
    steps: usize,
    repeat: usize,
    gantry: Option<PathBuf>,
}

fn parse_args() -> Options {
    let mut options = Options {
        steps: 1000,
        repeat: 5,
        gantry: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--steps" => options.steps = value().parse().unwrap_or_else(|_| usage("--steps")),
            "--repeat" => options.repeat = value().parse().unwrap_or_else(|_| usage("--repeat")),
            "--gantry" => options.gantry = Some(PathBuf::from(value())),
            _ => usage(&arg),
        }
    }
    options.repeat = options.repeat.max(1);
    options.steps = options.steps.max(10);
    options
}

fn usage(bad: &str) -> ! {
    eprintln!(
        "gantry-bench: bad argument `{bad}`\nusage: gantry-bench [--steps N] [--repeat R] [--gantry PATH]"
    );
    std::process::exit(2)
}

fn main() {
    let options = parse_args();
    let work = tempfile::Builder::new()
        .prefix("gantry-bench-")
        .tempdir()
        .expect("a temp folder");
    let noop = wat::parse_str(NOOP_WAT).expect("valid wat");
    let probe = std::fs::read(gantry_tests::PROBE_WASM).expect("the probe guest was built");
    let gantry_bin = options.gantry.clone().unwrap_or_else(find_gantry);
    let n = options.steps;
    let r = options.repeat;

    println!("gantry-bench: {n} steps per round, median of {r} rounds");
    println!("machine: {}", machine());
    println!("gantry binary: {}", gantry_bin.display());
    println!();

    // Baselines.
    let floor = median(r, || raw_wasmtime_per_step(&noop, n));
    let floor_wasi = median(r, || raw_wasmtime_wasi_per_step(&noop, n));
    let native = median(r, || native_process_per_step(n.min(300)));

    // gantry's sandbox, one step after another, module from the cache.
    let cache_home = work.path().join("cache");
    let cache = ModuleCache::open(&cache_home.join("gantry")).expect("bench cache");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let sandbox = Arc::new(Sandbox::new().expect("sandbox"));
    let noop_plugin = verified("noop", &noop);
    // Fill the cache, then admit from it as a second run would.
    sandbox
        .admit_plugin(&noop_plugin, Some(&cache))
        .0
        .expect("admitted");
    let (module, note) = sandbox.admit_plugin(&noop_plugin, Some(&cache));
    assert!(note.is_none(), "{note:?}");
    let module = module.expect("admitted from the cache");
    let sandbox_step = median(r, || {
        runtime.block_on(sandbox_per_step(&sandbox, &module, n, &mut |_, _| {}))
    });

    // Memory: RSS after a warm-up and after many more steps.
    let (rss_warm, rss_end, rss_steps) = runtime.block_on(async {
        let warm = n / 10;
        let mut at_warm = 0;
        let mut sample = |i: usize, total: usize| {
            if i + 1 == warm {
                at_warm = rss_kib("VmRSS");
            }
            let _ = total;
        };
        sandbox_per_step(&sandbox, &module, n * 2, &mut sample).await;
        (at_warm, rss_kib("VmRSS"), n * 2 - warm)
    });

    // The engine: a 1,000-step job, and 1,000 steps over 8 parallel jobs.
    let one_job = write_pipeline(work.path(), "one-job", &noop, 1, n);
    let eight_jobs = write_pipeline(work.path(), "eight-jobs", &noop, 8, n / 8);
    let one_job_rate = median(r, || {
        engine_steps_per_second(&runtime, &sandbox, &module, &one_job, n)
    });
    let eight_jobs_rate = median(r, || {
        engine_steps_per_second(&runtime, &sandbox, &module, &eight_jobs, (n / 8) * 8)
    });
    drop(runtime);

    // Whole `gantry run` processes.
    let one_noop = write_pipeline(work.path(), "one-noop", &noop, 1, 1);
    let one_probe = write_probe_pipeline(work.path(), &probe);
    let process_cache = work.path().join("process-cache");
    let run = |manifest: &Path, fresh: bool| {
        if fresh {
            let _ = std::fs::remove_dir_all(&process_cache);
        }
        gantry_run(&gantry_bin, manifest, &process_cache).0
    };
    let noop_uncached = median(r, || run(&one_noop, true));
    let noop_cached = median(r, || run(&one_noop, false));
    let probe_uncached = median(r, || run(&one_probe, true));
    let probe_cached = median(r, || run(&one_probe, false));
    let _ = std::fs::remove_dir_all(&process_cache);
    gantry_run(&gantry_bin, &one_job, &process_cache);
    let (big_wall, big_peak) = {
        let runs: Vec<(f64, u64)> = (0..r)
            .map(|_| gantry_run(&gantry_bin, &one_job, &process_cache))
            .collect();
        let mut walls: Vec<f64> = runs.iter().map(|(w, _)| *w).collect();
        let peak = runs.iter().map(|(_, p)| *p).max().unwrap_or(0);
        (median_of(&mut walls), peak)
    };

    // sha256 verification.
    let sha_mib_s = median(r, sha256_throughput);

    let mut out = String::new();
    let us = |secs: f64| secs * 1e6;
    let _ = writeln!(out, "baselines");
    let _ = writeln!(
        out,
        "  raw wasmtime loop (floor)          {:>9.1} µs/step",
        us(floor)
    );
    let _ = writeln!(
        out,
        "  raw wasmtime + WASI ctx, async     {:>9.1} µs/step",
        us(floor_wasi)
    );
    let _ = writeln!(
        out,
        "  native process (/bin/true)         {:>9.1} µs/step",
        us(native)
    );
    let _ = writeln!(out, "gantry");
    let _ = writeln!(
        out,
        "  sandbox step, cached module        {:>9.1} µs/step   {:>6.2}× floor  {:>6.2}× wasmtime+WASI  {:>6.3}× native",
        us(sandbox_step),
        sandbox_step / floor,
        sandbox_step / floor_wasi,
        sandbox_step / native
    );
    let _ = writeln!(
        out,
        "  engine, {n} steps in one job     {:>9.0} steps/s  {:>6.1} µs/step  {:>6.2}× floor",
        one_job_rate,
        1e6 / one_job_rate,
        (1.0 / one_job_rate) / floor
    );
    let _ = writeln!(
        out,
        "  engine, {} steps over 8 jobs     {:>9.0} steps/s  {:>6.1} µs/step  {:>6.2}× floor",
        (n / 8) * 8,
        eight_jobs_rate,
        1e6 / eight_jobs_rate,
        (1.0 / eight_jobs_rate) / floor
    );
    let _ = writeln!(out, "whole `gantry run` process, one step (wall)");
    let _ = writeln!(
        out,
        "  no-op .wat, empty cache            {:>9.1} ms",
        noop_uncached * 1e3
    );
    let _ = writeln!(
        out,
        "  no-op .wat, cached                 {:>9.1} ms   {:>6.1}× native process",
        noop_cached * 1e3,
        noop_cached / native
    );
    let _ = writeln!(
        out,
        "  {} KB Rust guest, first run       {:>9.1} ms",
        probe.len() / 1024,
        probe_uncached * 1e3
    );
    let _ = writeln!(
        out,
        "  {} KB Rust guest, second run      {:>9.1} ms   {:>6.1}× faster than the first",
        probe.len() / 1024,
        probe_cached * 1e3,
        probe_uncached / probe_cached
    );
    let _ = writeln!(
        out,
        "  {n}-step pipeline                {:>9.1} ms   {:>6.0} steps/s",
        big_wall * 1e3,
        n as f64 / big_wall
    );
    let _ = writeln!(out, "memory");
    let _ = writeln!(
        out,
        "  peak RSS of `gantry run`, {n} steps {:>7.1} MiB",
        big_peak as f64 / 1024.0
    );
    let growth = rss_end as f64 - rss_warm as f64;
    let _ = writeln!(
        out,
        "  bench RSS growth over {rss_steps} steps    {:>+7.0} KiB ({:+.1} bytes/step; after warm-up {} KiB)",
        growth,
        growth * 1024.0 / rss_steps as f64,
        rss_warm
    );
    let _ = writeln!(out, "verification");
    let _ = writeln!(
        out,
        "  sha256                             {:>9.0} MiB/s",
        sha_mib_s
    );
    println!("{out}");

    println!("targets (from issue 7)");
    let target = |name: &str, ok: bool, value: String| {
        println!("  [{}] {name}: {value}", if ok { "met" } else { "MISSED" });
    };
    target(
        "per-step cost within 1.5× of the raw wasmtime loop",
        sandbox_step <= 1.5 * floor,
        format!("{:.2}×", sandbox_step / floor),
    );
    target(
        "≥ 5,000 no-op steps/s in one job",
        one_job_rate >= 5000.0,
        format!("{one_job_rate:.0} steps/s"),
    );
    target(
        "cached one-step `gantry run` ≤ 20 ms",
        noop_cached <= 0.020,
        format!("{:.1} ms", noop_cached * 1e3),
    );
    target(
        "a new ~100 KB plugin starts ≥ 10× faster on its second run",
        probe_uncached >= 10.0 * probe_cached,
        format!("{:.1}×", probe_uncached / probe_cached),
    );
    target(
        "peak RSS for 1,000 steps ≤ 100 MB",
        (big_peak as f64) * 1024.0 <= 100e6,
        format!("{:.1} MB", big_peak as f64 * 1024.0 / 1e6),
    );
}

fn verified(alias: &str, bytes: &[u8]) -> VerifiedPlugin {
    VerifiedPlugin {
        alias: alias.into(),
        sha256: gantry::plugin::sha256_hex(bytes),
        bytes: bytes.to_vec(),
    }
}

/// The median of `rounds` measurements.
fn median(rounds: usize, mut measure: impl FnMut() -> f64) -> f64 {
    let mut values: Vec<f64> = (0..rounds).map(|_| measure()).collect();
    median_of(&mut values)
}

fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The floor: a fresh store, instantiate, call `_start`; nothing else.
fn raw_wasmtime_per_step(bytes: &[u8], n: usize) -> f64 {
    use wasmtime::{Engine, Linker, Module, Store};
    let engine = Engine::default();
    let module = Module::new(&engine, bytes).unwrap();
    let pre = Linker::<()>::new(&engine).instantiate_pre(&module).unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let mut store = Store::new(&engine, ());
        let instance = pre.instantiate(&mut store).unwrap();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .unwrap();
        start.call(&mut store, ()).unwrap();
    }
    started.elapsed().as_secs_f64() / n as f64
}

/// What any async WASI host pays: the floor plus a WASI context (no
/// folders), an async call and epoch interruption.
fn raw_wasmtime_wasi_per_step(bytes: &[u8], n: usize) -> f64 {
    use wasmtime::{Config, Engine, Linker, Module, Store};
    use wasmtime_wasi::WasiCtxBuilder;
    use wasmtime_wasi::p1::WasiP1Ctx;
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, bytes).unwrap();
    let mut linker = Linker::<WasiP1Ctx>::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx).unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            let wasi = WasiCtxBuilder::new().build_p1();
            let mut store = Store::new(&engine, wasi);
            store.epoch_deadline_async_yield_and_update(1);
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .unwrap();
            start.call_async(&mut store, ()).await.unwrap();
        }
        started.elapsed().as_secs_f64() / n as f64
    })
}

fn native_process_per_step(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let status = Command::new("/bin/true").status().expect("/bin/true");
        assert!(status.success());
    }
    started.elapsed().as_secs_f64() / n as f64
}

/// `n` no-op steps through [`Sandbox::run`], one after another; `each` is
/// called after every step with its index.
async fn sandbox_per_step(
    sandbox: &Sandbox,
    module: &StepModule,
    n: usize,
    each: &mut dyn FnMut(usize, usize),
) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let invocation = StepInvocation {
            program: "noop",
            env: vec![("GANTRY_PHASE".into(), "run".into())],
            workspace: None,
            dirs: &[],
            timeout: Duration::from_secs(60),
            memory_bytes: 64 << 20,
            output_limit: gantry::sandbox::DEFAULT_OUTPUT_LIMIT,
            sink: Arc::new(|_, _| {}),
            cancel: CancellationToken::new(),
        };
        let run = sandbox.run(module, invocation).await;
        assert!(run.outcome.is_ok(), "{:?}", run.outcome);
        each(i, n);
    }
    started.elapsed().as_secs_f64() / n as f64
}

/// Writes a pipeline of `jobs` independent jobs of `steps` no-op steps.
fn write_pipeline(work: &Path, name: &str, wasm: &[u8], jobs: usize, steps: usize) -> PathBuf {
    let folder = work.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("noop.wasm"), wasm).unwrap();
    let mut yaml = format!(
        "name: {name}\nplugins:\n  noop:\n    source: noop.wasm\n    sha256: {}\njobs:\n",
        gantry::plugin::sha256_hex(wasm)
    );
    for job in 0..jobs {
        let _ = writeln!(yaml, "  job{job}:\n    steps:");
        for _ in 0..steps {
            yaml.push_str("      - uses: noop\n");
        }
    }
    let manifest = folder.join("gantry.yml");
    std::fs::write(&manifest, yaml).unwrap();
    manifest
}

fn write_probe_pipeline(work: &Path, wasm: &[u8]) -> PathBuf {
    let folder = work.join("probe");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("probe.wasm"), wasm).unwrap();
    let yaml = format!(
        "name: probe\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {}\njobs:\n  main:\n    steps:\n      - uses: probe\n        with: {{ action: print, text: hello }}\n",
        gantry::plugin::sha256_hex(wasm)
    );
    let manifest = folder.join("gantry.yml");
    std::fs::write(&manifest, yaml).unwrap();
    manifest
}

/// Runs a pipeline through [`engine::run`] as `gantry run` does (the
/// module already admitted) and returns steps per second.
fn engine_steps_per_second(
    runtime: &tokio::runtime::Runtime,
    sandbox: &Arc<Sandbox>,
    module: &StepModule,
    manifest: &Path,
    steps: usize,
) -> f64 {
    let loaded = gantry::manifest::load(manifest).expect("bench manifest");
    let plan = Arc::new(gantry::plan::resolve(&loaded).expect("bench plan"));
    let mut plugins: AdmittedPlugins = IndexMap::new();
    plugins.insert("noop".into(), Ok(module.clone()));
    let state = tempfile::tempdir().unwrap();
    let options = RunOptions {
        state_dir: state.path().to_owned(),
        output_limit: gantry::sandbox::DEFAULT_OUTPUT_LIMIT,
        max_parallel: 8,
        secrets: Secrets::default(),
        cancel: CancellationToken::new(),
    };
    let started = Instant::now();
    let outcome = runtime.block_on(engine::run(
        plan,
        sandbox.clone(),
        Arc::new(plugins),
        Arc::new(Quiet),
        options,
    ));
    let elapsed = started.elapsed().as_secs_f64();
    assert!(outcome.success, "the bench pipeline failed");
    steps as f64 / elapsed
}

struct Quiet;

impl Reporter for Quiet {
    fn report(&self, _event: Event<'_>) {}
}

/// Runs `gantry run MANIFEST` and returns its wall time in seconds and
/// its peak RSS in KiB.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also reports its peak RSS"
)]
fn gantry_run(gantry: &Path, manifest: &Path, cache_home: &Path) -> (f64, u64) {
    let started = Instant::now();
    let child = Command::new(gantry)
        .arg("run")
        .arg(manifest)
        .env("XDG_CACHE_HOME", cache_home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running gantry");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is our own child, not yet reaped.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed().as_secs_f64();
    assert!(pid > 0, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "gantry run {} failed",
        manifest.display()
    );
    (elapsed, usage.ru_maxrss as u64)
}

fn sha256_throughput() -> f64 {
    let data = vec![0x5au8; 64 << 20];
    let started = Instant::now();
    let hex = gantry::plugin::sha256_hex(&data);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(hex.len(), 64);
    64.0 / elapsed
}

/// A line of this process's `/proc/self/status`, in KiB.
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model: BTreeMap<&str, ()> = cpuinfo
        .lines()
        .filter_map(|l| l.strip_prefix("model name"))
        .filter_map(|l| l.split(':').nth(1))
        .map(|m| (m.trim(), ()))
        .collect();
    let model = model.keys().next().copied().unwrap_or("unknown CPU");
    format!("{cores} cores, {model}")
}

/// The `gantry` binary beside this one, built first if it is missing.
fn find_gantry() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let beside = exe.with_file_name("gantry");
    if !beside.exists() {
        let profile = exe.parent().and_then(Path::file_name);
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build.args(["build", "--quiet", "-p", "gantry", "--bin", "gantry"]);
        if profile.is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let ok = build.status().is_ok_and(|s| s.success());
        assert!(ok && beside.exists(), "cannot build the gantry binary");
    }
    beside
}
