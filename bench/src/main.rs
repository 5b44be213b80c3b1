//! `gantry-bench`: what a step costs in gantry, measured beside what it
//! costs in wasmtime alone (the floor) and as a native process, in one run.
//!
//! The machines this runs on are shared and noisy, so each measurement is
//! repeated for `--repeat` rounds, the rounds interleave gantry with its
//! baselines, and every ratio is the median of the ratios taken within a
//! round. How to run it and what each line means: `docs/BENCHMARKS.md`.
//!
//! - [`guests`]: the modules run, the same bytes for gantry and baseline;
//! - [`baselines`]: the wasmtime floor loops and a native process per step;
//! - [`in_process`]: gantry's sandbox and engine inside this process;
//! - [`process`]: whole `gantry run` processes, wall time and peak RSS;
//! - [`verification`]: sha256 throughput.

mod baselines;
mod guests;
mod in_process;
mod process;
mod verification;

use std::path::{Path, PathBuf};
use std::process::Command;

use baselines::{AsyncFloor, Bare, Floor};
use guests::{PROBE_NOOP_ENV, PROBE_NOOP_WITH};
use in_process::Gantry;
use process::{ProcessRun, gantry_run, measure, write_pipeline};

/// The size of the "new plugin" whose first and second runs are compared.
const NEW_PLUGIN_BYTES: usize = 100 * 1024;
/// How many native processes are spawned per round (they are slow).
const NATIVE_STEPS: usize = 300;

/// The targets.
const MAX_FLOOR_RATIO: f64 = 1.5;
const MIN_STEPS_PER_SECOND: f64 = 5000.0;
const MAX_CACHED_RUN_SECONDS: f64 = 0.020;
const MIN_SECOND_RUN_SPEEDUP: f64 = 10.0;
const MAX_PEAK_RSS_BYTES: f64 = 100e6;
/// "No growth from step to step": what RSS may gain between the early
/// sample and the last step, per step. A leaked store, WASI context or
/// step folder would cost kilobytes per step; page-granular allocator
/// noise over 900 steps stays well below this.
const MAX_GROWTH_BYTES_PER_STEP: f64 = 256.0;

/// A component step (tens of MB from componentize-py or componentize-js)
/// may take this many times the Rust p1 probe's cached one-step run.
const MAX_COMPONENT_VS_PROBE: f64 = 5.0;

struct Options {
    steps: usize,
    repeat: usize,
    gantry: Option<PathBuf>,
    /// Real plugins whose first and second runs are compared too.
    plugins: Vec<PathBuf>,
    /// Component steps (Python, JavaScript) whose cached run is held to
    /// [`MAX_COMPONENT_VS_PROBE`] times the Rust probe's.
    components: Vec<PathBuf>,
}

fn parse_args() -> Options {
    let mut options = Options {
        steps: 1000,
        repeat: 7,
        gantry: None,
        plugins: Vec::new(),
        components: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--steps" => options.steps = value().parse().unwrap_or_else(|_| usage("--steps")),
            "--repeat" => options.repeat = value().parse().unwrap_or_else(|_| usage("--repeat")),
            "--gantry" => options.gantry = Some(PathBuf::from(value())),
            "--plugin" => options.plugins.push(PathBuf::from(value())),
            "--component" => options.components.push(PathBuf::from(value())),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => usage(&arg),
        }
    }
    options.repeat = options.repeat.max(1);
    // Divisible by 8 (the parallel jobs) and by 10 (the early RSS sample).
    options.steps = options.steps.max(80).div_ceil(40) * 40;
    options
}

const USAGE: &str = "usage: gantry-bench [--steps N] [--repeat R] [--gantry PATH] [--plugin WASM]... [--component WASM]...\n\
    \n\
    --steps N    steps per measurement (default 1000; rounded up to a multiple of 40)\n\
    --repeat R   rounds; every figure is the median of R (default 7)\n\
    --gantry P   the gantry binary to time (default: the one beside this binary)\n\
    --plugin W   also time the first and second run of the plugin W, run without inputs\n\
    --component W  the same for the component step W, whose cached run must stay within\n\
                 5× the Rust probe's (Python and JavaScript steps)";

fn usage(bad: &str) -> ! {
    eprintln!("gantry-bench: bad argument `{bad}`\n{USAGE}");
    std::process::exit(2)
}

/// Every round's value of each figure.
#[derive(Default)]
struct Rounds {
    floor: Vec<f64>,
    bare: Vec<f64>,
    async_floor: Vec<f64>,
    pooled_floor: Vec<f64>,
    sandbox: Vec<f64>,
    probe_floor: Vec<f64>,
    probe_sandbox: Vec<f64>,
    native: Vec<f64>,
    step_folder: Vec<f64>,
    sandbox_on_demand: Vec<f64>,
    pool_start: Vec<f64>,
    pool_drop: Vec<f64>,
    on_demand_start: Vec<f64>,
    on_demand_drop: Vec<f64>,
    engine_start: Vec<f64>,
    one_job_rate: Vec<f64>,
    probe_job_rate: Vec<f64>,
    eight_jobs_rate: Vec<f64>,
    growth_kib: Vec<f64>,
    rss_early_kib: Vec<f64>,
    // Whole processes.
    true_process: Vec<ProcessRun>,
    version: Vec<f64>,
    noop_first: Vec<f64>,
    noop_second: Vec<f64>,
    sized_first: Vec<f64>,
    sized_second: Vec<f64>,
    probe_first: Vec<f64>,
    probe_second: Vec<f64>,
    /// Per `--plugin`: first runs, second runs.
    plugins: Vec<(Vec<f64>, Vec<f64>)>,
    big: Vec<ProcessRun>,
    small: Vec<ProcessRun>,
    // Verification.
    sha_gantry: Vec<f64>,
    sha_coreutils: Vec<f64>,
}

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == process::HELPER_ARG) {
        process::helper_main(args.skip(1));
    }
    let options = parse_args();
    let n = options.steps;
    let r = options.repeat;
    let work = tempfile::Builder::new()
        .prefix("gantry-bench-")
        .tempdir()
        .expect("a temp folder");
    let gantry_bin = options.gantry.clone().unwrap_or_else(find_gantry);
    let noop = guests::noop();
    let probe = guests::probe();
    let sized = guests::sized_plugin(NEW_PLUGIN_BYTES);

    println!("gantry-bench: {n} steps per measurement, median of {r} interleaved rounds");
    for line in machine() {
        println!("  {line}");
    }
    println!("  gantry binary: {}", gantry_bin.display());
    println!(
        "  guests: no-op .wat {} B; Rust probe {} KB; generated plugin {} KB",
        noop.len(),
        probe.len() / 1000,
        sized.len() / 1000
    );
    println!();

    // In-process: baselines and gantry, built once, outside any timing.
    let floor = Floor::new(&noop, &[]);
    let bare = Bare::new(&noop);
    let async_floor = AsyncFloor::new(&noop, &[], false);
    let pooled_floor = AsyncFloor::new(&noop, &[], true);
    let probe_floor = Floor::new(&probe, &PROBE_NOOP_ENV);
    let gantry = Gantry::new(&work.path().join("in-process-cache"), n);
    // What a run too short to pool gets: the same sandbox, allocating on
    // demand.
    let small_run = Gantry::new(&work.path().join("in-process-cache"), 1);
    let noop_module = gantry.admit_cached("step", &noop);
    let noop_on_demand = small_run.admit_cached("step", &noop);
    let probe_module = gantry.admit_cached("step", &probe);
    let one_job = write_pipeline(work.path(), "one-job", &noop, 1, n, &[]);
    let eight_jobs = write_pipeline(work.path(), "eight-jobs", &noop, 8, n / 8, &[]);
    let one_job_plan = in_process::load_plan(&one_job);
    let probe_job = write_pipeline(work.path(), "probe-job", &probe, 1, n, &PROBE_NOOP_WITH);
    let probe_job_plan = in_process::load_plan(&probe_job);
    let eight_jobs_plan = in_process::load_plan(&eight_jobs);
    let early = n / 10;

    // Whole processes: their pipelines and a cache folder of their own.
    let one_noop = write_pipeline(work.path(), "one-noop", &noop, 1, 1, &[]);
    let one_sized = write_pipeline(work.path(), "one-new-plugin", &sized, 1, 1, &[]);
    let one_probe = write_pipeline(work.path(), "one-probe", &probe, 1, 1, &PROBE_NOOP_WITH);
    let component_count = options.components.len();
    let plugins: Vec<(String, usize, PathBuf)> = options
        .components
        .iter()
        .chain(&options.plugins)
        .enumerate()
        .map(|(i, path)| {
            let bytes = std::fs::read(path)
                .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
            let name = path.file_name().map_or_else(
                || format!("plugin {i}"),
                |n| n.to_string_lossy().into_owned(),
            );
            let manifest = write_pipeline(work.path(), &format!("plugin-{i}"), &bytes, 1, 1, &[]);
            (name, bytes.len(), manifest)
        })
        .collect();
    let small = write_pipeline(work.path(), "small", &noop, 1, early, &[]);
    let process_cache = work.path().join("process-cache");
    let fresh_cache = || {
        let _ = std::fs::remove_dir_all(&process_cache);
    };
    let run = |manifest: &Path| gantry_run(&gantry_bin, manifest, &process_cache);

    // Verification: the same bytes in a file for coreutils. They are made
    // again in each round and dropped after, so 64 MiB of them do not sit
    // in this process's RSS while the engine's is sampled.
    let data_file = work.path().join("hashed.bin");
    std::fs::write(&data_file, verification::data()).expect("the hashed file");

    // One warm-up round, thrown away: faults in code and caches.
    floor.per_step(n / 10);
    bare.per_step(n / 10);
    async_floor.per_step(n / 10);
    pooled_floor.per_step(n / 10);
    probe_floor.per_step(n / 10);
    gantry.sandbox_per_step(&noop_module, &[], n / 10);
    small_run.sandbox_per_step(&noop_on_demand, &[], n / 10);
    gantry.sandbox_per_step(&probe_module, &PROBE_NOOP_ENV, n / 10);
    gantry.engine_run(&one_job_plan, "step", &noop_module, n, early);
    fresh_cache();
    run(&one_noop);
    run(&one_noop);

    let load_before = loadavg();
    let mut rounds = Rounds::default();
    for round in 1..=r {
        eprint!("\rround {round}/{r} ");
        rounds.floor.push(floor.per_step(n));
        rounds
            .sandbox
            .push(gantry.sandbox_per_step(&noop_module, &[], n));
        rounds.bare.push(bare.per_step(n));
        rounds.async_floor.push(async_floor.per_step(n));
        rounds.pooled_floor.push(pooled_floor.per_step(n));
        rounds.probe_floor.push(probe_floor.per_step(n));
        rounds
            .probe_sandbox
            .push(gantry.sandbox_per_step(&probe_module, &PROBE_NOOP_ENV, n));
        rounds
            .native
            .push(baselines::native_process_per_step(NATIVE_STEPS.min(n)));
        rounds.step_folder.push(in_process::step_folder_per_step(n));
        rounds
            .sandbox_on_demand
            .push(small_run.sandbox_per_step(&noop_on_demand, &[], n));
        let (start, stop) = gantry.sandbox_start_and_drop(&noop);
        rounds.pool_start.push(start);
        rounds.pool_drop.push(stop);
        let (start, stop) = small_run.sandbox_start_and_drop(&noop);
        rounds.on_demand_start.push(start);
        rounds.on_demand_drop.push(stop);
        rounds.engine_start.push(baselines::engine_start());
        let one = gantry.engine_run(&one_job_plan, "step", &noop_module, n, early);
        rounds.one_job_rate.push(one.steps_per_second);
        rounds.rss_early_kib.push(one.rss_early_kib as f64);
        rounds
            .growth_kib
            .push(one.rss_end_kib as f64 - one.rss_early_kib as f64);
        let eight = gantry.engine_run(&eight_jobs_plan, "step", &noop_module, n, early);
        rounds.eight_jobs_rate.push(eight.steps_per_second);
        let probes = gantry.engine_run(&probe_job_plan, "step", &probe_module, n, early);
        rounds.probe_job_rate.push(probes.steps_per_second);

        rounds
            .true_process
            .push(measure(&Command::new("/bin/true")).1);
        let (ok, version) = measure(Command::new(&gantry_bin).arg("--version"));
        assert!(ok, "`gantry --version` failed");
        rounds.version.push(version.wall);
        fresh_cache();
        rounds.sized_first.push(run(&one_sized).wall);
        rounds.sized_second.push(run(&one_sized).wall);
        fresh_cache();
        rounds.probe_first.push(run(&one_probe).wall);
        rounds.probe_second.push(run(&one_probe).wall);
        rounds.plugins.resize(plugins.len(), Default::default());
        for ((_, _, manifest), (first, second)) in plugins.iter().zip(&mut rounds.plugins) {
            fresh_cache();
            first.push(run(manifest).wall);
            second.push(run(manifest).wall);
        }
        fresh_cache();
        rounds.noop_first.push(run(&one_noop).wall);
        rounds.noop_second.push(run(&one_noop).wall);
        // The cache now holds the no-op module, as for any second run.
        rounds.big.push(run(&one_job));
        rounds.small.push(run(&small));

        let data = verification::data();
        rounds
            .sha_gantry
            .push(verification::gantry_mib_per_second(&data));
        drop(data);
        let len = verification::HASHED_BYTES;
        if let Some(rate) = verification::sha256sum_mib_per_second(&data_file, len) {
            rounds.sha_coreutils.push(rate);
        }
    }
    eprintln!("\r                ");
    let load_after = loadavg();

    let plugins: Vec<(String, usize)> = plugins.into_iter().map(|(n, l, _)| (n, l)).collect();
    report(
        &rounds,
        &plugins,
        component_count,
        n,
        &load_before,
        &load_after,
    );
}

/// Prints every figure, its ratios to the baselines, and each target.
fn report(
    rounds: &Rounds,
    plugins: &[(String, usize)],
    // The first this many of `plugins` are component steps.
    component_count: usize,
    n: usize,
    load_before: &str,
    load_after: &str,
) {
    let us = |secs: f64| format!("{:.1} µs/step", secs * 1e6);
    let ms = |secs: f64| format!("{:.2} ms", secs * 1e3);
    let mb = |kib: u64| format!("{:.1} MB", kib as f64 * 1024.0 / 1e6);
    let early = n / 10;
    let walls = |runs: &[ProcessRun]| runs.iter().map(|p| p.wall).collect::<Vec<f64>>();
    let peak = |runs: &[ProcessRun]| runs.iter().map(|p| p.peak_rss_kib).max().unwrap_or(0);

    // Seconds per step, from steps per second.
    let per_step = |rates: &[f64]| rates.iter().map(|r| 1.0 / r).collect::<Vec<f64>>();
    let one_job_step = per_step(&rounds.one_job_rate);
    let eight_jobs_step = per_step(&rounds.eight_jobs_rate);
    let sandbox_ratio = ratio(&rounds.sandbox, &rounds.floor);
    let one_job_ratio = ratio(&one_job_step, &rounds.floor);
    let probe_ratio = ratio(&rounds.probe_sandbox, &rounds.probe_floor);
    let probe_job_step = per_step(&rounds.probe_job_rate);
    let probe_job_ratio = ratio(&probe_job_step, &rounds.probe_floor);
    let one_job_rate = median(&rounds.one_job_rate);

    println!("baselines, per step (the no-op .wat unless named)");
    line(
        "floor: wasmtime + WASI, minimal loop",
        us(median(&rounds.floor)),
        "1.00× floor".into(),
    );
    line(
        "wasmtime without WASI",
        us(median(&rounds.bare)),
        format!("{:.2}× floor", ratio(&rounds.bare, &rounds.floor)),
    );
    line(
        "wasmtime + WASI, async + epochs",
        us(median(&rounds.async_floor)),
        format!("{:.2}× floor", ratio(&rounds.async_floor, &rounds.floor)),
    );
    line(
        "  the same, pooling allocator",
        us(median(&rounds.pooled_floor)),
        format!("{:.2}× floor", ratio(&rounds.pooled_floor, &rounds.floor)),
    );
    line(
        "floor, Rust probe guest (exit 0)",
        us(median(&rounds.probe_floor)),
        String::new(),
    );
    line(
        "native process per step (/bin/true)",
        us(median(&rounds.native)),
        format!("{:.1}× floor", ratio(&rounds.native, &rounds.floor)),
    );
    println!();

    println!("gantry in process, module from the cache");
    line(
        "sandbox step, no-op .wat",
        us(median(&rounds.sandbox)),
        format!(
            "{sandbox_ratio:.2}× floor  {:.2}× async floor  {:.3}× native",
            ratio(&rounds.sandbox, &rounds.async_floor),
            ratio(&rounds.sandbox, &rounds.native)
        ),
    );
    line(
        "  the same, allocating on demand",
        us(median(&rounds.sandbox_on_demand)),
        format!(
            "{:.2}× floor; runs of fewer than {} steps allocate so",
            ratio(&rounds.sandbox_on_demand, &rounds.floor),
            gantry::sandbox::POOL_MIN_STEPS
        ),
    );
    line(
        "sandbox step, Rust probe (exit 0)",
        us(median(&rounds.probe_sandbox)),
        format!(
            "{probe_ratio:.2}× its floor  {:.3}× native",
            ratio(&rounds.probe_sandbox, &rounds.native)
        ),
    );
    // The no-op imports nothing that could change a file, so its folder
    // is handed on unread; the probe's is read back and emptied.
    line(
        "  of which the step folder",
        us(median(&rounds.step_folder)),
        format!(
            "{:.0}% of the probe's step; skipped for the no-op",
            100.0 * ratio(&rounds.step_folder, &rounds.probe_sandbox)
        ),
    );
    line(
        &format!("engine, {n} steps in one job"),
        format!("{one_job_rate:.0} steps/s"),
        format!(
            "{}  {one_job_ratio:.2}× floor  {:.3}× native",
            us(1.0 / one_job_rate),
            ratio(&one_job_step, &rounds.native)
        ),
    );
    line(
        &format!("engine, {n} Rust probe steps in one job"),
        format!("{:.0} steps/s", median(&rounds.probe_job_rate)),
        format!(
            "{}  {probe_job_ratio:.2}× its floor",
            us(1.0 / median(&rounds.probe_job_rate)),
        ),
    );
    line(
        &format!("engine, {n} steps over 8 parallel jobs"),
        format!("{:.0} steps/s", median(&rounds.eight_jobs_rate)),
        format!(
            "{}  {:.2}× floor  {:.2}× one job's rate",
            us(1.0 / median(&rounds.eight_jobs_rate)),
            ratio(&eight_jobs_step, &rounds.floor),
            ratio(&rounds.eight_jobs_rate, &rounds.one_job_rate)
        ),
    );
    line(
        "Sandbox::new, a pool for 8 steps",
        ms(median(&rounds.pool_start)),
        format!(
            "a bare wasmtime Engine::new, without a pool: {}",
            ms(median(&rounds.engine_start))
        ),
    );
    line(
        "  dropped after one step",
        ms(median(&rounds.pool_drop)),
        "stops the epoch thread, releases the pool".into(),
    );
    line(
        "Sandbox::new, on demand",
        ms(median(&rounds.on_demand_start)),
        String::new(),
    );
    line(
        "  dropped after one step",
        ms(median(&rounds.on_demand_drop)),
        String::new(),
    );
    // Where reserving the pool is paid back by cheaper steps.
    let pool_cost = median(&rounds.pool_start) + median(&rounds.pool_drop)
        - median(&rounds.on_demand_start)
        - median(&rounds.on_demand_drop);
    let saved_per_step = median(&rounds.sandbox_on_demand) - median(&rounds.sandbox);
    line(
        "the pool pays for itself after",
        if saved_per_step > 0.0 {
            format!("{:.0} steps", (pool_cost / saved_per_step).max(0.0).ceil())
        } else {
            "never".into()
        },
        format!(
            "it costs {} more to start and drop, and saves {}",
            ms(pool_cost),
            us(saved_per_step)
        ),
    );
    println!();

    let sized_speedup = ratio(&rounds.sized_first, &rounds.sized_second);
    let probe_speedup = ratio(&rounds.probe_first, &rounds.probe_second);
    let true_walls = walls(&rounds.true_process);
    let big_walls = walls(&rounds.big);
    let noop_second = median(&rounds.noop_second);
    let vs_true = |walls: &[f64]| format!("{:.1}× /bin/true", ratio(walls, &true_walls));
    println!("whole processes, wall time from spawn to exit");
    line("/bin/true", ms(median(&true_walls)), String::new());
    line(
        "gantry --version",
        ms(median(&rounds.version)),
        vs_true(&rounds.version),
    );
    line(
        "gantry run, 1 no-op step, empty cache",
        ms(median(&rounds.noop_first)),
        vs_true(&rounds.noop_first),
    );
    line(
        "gantry run, 1 no-op step, cached",
        ms(noop_second),
        vs_true(&rounds.noop_second),
    );
    line(
        &format!("new {} KB plugin, first run", NEW_PLUGIN_BYTES / 1024),
        ms(median(&rounds.sized_first)),
        String::new(),
    );
    line(
        "  second run, cached",
        ms(median(&rounds.sized_second)),
        format!("{sized_speedup:.1}× faster than the first"),
    );
    line(
        "Rust probe guest, first run",
        ms(median(&rounds.probe_first)),
        String::new(),
    );
    line(
        "  second run, cached",
        ms(median(&rounds.probe_second)),
        format!("{probe_speedup:.1}× faster than the first"),
    );
    for ((name, len), (first, second)) in plugins.iter().zip(&rounds.plugins) {
        line(
            &format!("{name} ({} KB), first run", len / 1000),
            ms(median(first)),
            String::new(),
        );
        line(
            "  second run, cached",
            ms(median(second)),
            format!("{:.1}× faster than the first", ratio(first, second)),
        );
    }
    line(
        &format!("gantry run, {n} no-op steps, cached"),
        ms(median(&big_walls)),
        format!("{:.0} steps/s", n as f64 / median(&big_walls)),
    );
    println!();

    let growth = median(&rounds.growth_kib);
    let growth_per_step = growth * 1024.0 / (n - early) as f64;
    let worst_growth = rounds
        .growth_kib
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let big_peak = peak(&rounds.big);
    let small_peak = peak(&rounds.small);
    println!("memory (peak RSS: the highest of all rounds)");
    line(
        &format!("peak RSS, gantry run of {n} steps"),
        mb(big_peak),
        format!(
            "{:+.0} KB against {early} steps",
            (big_peak as f64 - small_peak as f64) * 1.024
        ),
    );
    line(
        &format!("peak RSS, gantry run of {early} steps"),
        mb(small_peak),
        String::new(),
    );
    line(
        "peak RSS, /bin/true (the method's floor)",
        mb(peak(&rounds.true_process)),
        String::new(),
    );
    line(
        &format!("in-process RSS growth, step {early} to {n}"),
        format!("{growth:+.0} KiB"),
        format!(
            "{growth_per_step:+.1} B/step; worst round {worst_growth:+.0} KiB; RSS at step {early}: {:.1} MB",
            median(&rounds.rss_early_kib) * 1.024 / 1000.0
        ),
    );
    println!();

    println!("verification");
    let sha = median(&rounds.sha_gantry);
    let versus = if rounds.sha_coreutils.is_empty() {
        String::new()
    } else {
        format!(
            "{:.2}× sha256sum, which did {:.0} MiB/s",
            ratio(&rounds.sha_gantry, &rounds.sha_coreutils),
            median(&rounds.sha_coreutils)
        )
    };
    line("sha256 of plugin bytes", format!("{sha:.0} MiB/s"), versus);
    println!();
    println!("load average before: {load_before}; after: {load_after}");
    println!();

    println!("targets");
    target(
        "per step ≤ 1.5× floor: sandbox step, no-op .wat",
        sandbox_ratio <= MAX_FLOOR_RATIO,
        format!("{sandbox_ratio:.2}× floor"),
    );
    target(
        "per step ≤ 1.5× floor: engine step in one job",
        one_job_ratio <= MAX_FLOOR_RATIO,
        format!("{one_job_ratio:.2}× floor"),
    );
    target(
        "per step ≤ 1.5× floor: sandbox step, Rust guest",
        probe_ratio <= MAX_FLOOR_RATIO,
        format!("{probe_ratio:.2}× its floor"),
    );
    target(
        "per step ≤ 1.5× floor: engine step, Rust guest (beyond the issue)",
        probe_job_ratio <= MAX_FLOOR_RATIO,
        format!("{probe_job_ratio:.2}× its floor"),
    );
    target(
        "≥ 5,000 no-op steps/s in one job",
        one_job_rate >= MIN_STEPS_PER_SECOND,
        format!(
            "{one_job_rate:.0} steps/s = {:.2}× the target",
            one_job_rate / MIN_STEPS_PER_SECOND
        ),
    );
    target(
        "cached one-step `gantry run` ≤ 20 ms wall",
        noop_second <= MAX_CACHED_RUN_SECONDS,
        format!(
            "{} = {:.2}× the limit",
            ms(noop_second),
            noop_second / MAX_CACHED_RUN_SECONDS
        ),
    );
    target(
        "new 100 KB plugin: second run ≥ 10× faster",
        sized_speedup >= MIN_SECOND_RUN_SPEEDUP,
        format!(
            "{sized_speedup:.1}× = {:.2}× the target (Rust probe: {probe_speedup:.1}×)",
            sized_speedup / MIN_SECOND_RUN_SPEEDUP
        ),
    );
    let probe_cached = median(&rounds.probe_second);
    for ((name, len), (_, second)) in plugins.iter().zip(&rounds.plugins).take(component_count) {
        let times = median(second) / probe_cached;
        target(
            &format!(
                "{name} ({} KB): cached run ≤ {MAX_COMPONENT_VS_PROBE}× the Rust probe's",
                len / 1000
            ),
            times <= MAX_COMPONENT_VS_PROBE,
            format!(
                "{} = {times:.1}× the probe's {} = {:.2}× the target",
                ms(median(second)),
                ms(probe_cached),
                times / MAX_COMPONENT_VS_PROBE
            ),
        );
    }
    for ((name, len), (first, second)) in plugins.iter().zip(&rounds.plugins).skip(component_count)
    {
        let speedup = ratio(first, second);
        target(
            &format!("{name} ({} KB): second run ≥ 10× faster", len / 1000),
            speedup >= MIN_SECOND_RUN_SPEEDUP,
            format!(
                "{speedup:.1}× = {:.2}× the target",
                speedup / MIN_SECOND_RUN_SPEEDUP
            ),
        );
    }
    let peak_bytes = big_peak as f64 * 1024.0;
    target(
        &format!("peak RSS of a {n}-step run ≤ 100 MB"),
        peak_bytes <= MAX_PEAK_RSS_BYTES,
        format!(
            "{} = {:.2}× the limit",
            mb(big_peak),
            peak_bytes / MAX_PEAK_RSS_BYTES
        ),
    );
    target(
        "no RSS growth from step to step (≤ 256 B/step)",
        growth_per_step <= MAX_GROWTH_BYTES_PER_STEP,
        format!("{growth_per_step:+.1} B/step over {} steps", n - early),
    );
}

/// One figure: what, how much, and its ratios.
fn line(label: &str, value: String, ratios: String) {
    let text = format!("  {label:<40} {value:>16}  {ratios}");
    println!("{}", text.trim_end());
}

fn target(name: &str, pass: bool, measured: String) {
    let verdict = if pass { "PASS" } else { "MISS" };
    println!("  {verdict}  {name:<50} {measured}");
}

/// The median of a non-empty list.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The median of the ratios `a[i] / b[i]`, each pair from the same round.
fn ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    median(&ratios)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// What the figures came from: date, cores, CPU, kernel, compiler.
fn machine() -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .filter_map(|l| l.strip_prefix("model name"))
        .filter_map(|l| l.split(':').nth(1))
        .map(str::trim)
        .next()
        .unwrap_or("unknown CPU");
    let threads = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let command = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    vec![
        format!("date: {}", command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
        format!(
            "machine: {model}, {threads} logical CPUs, {cores} available (nproc {})",
            command("nproc", &[])
        ),
        format!("kernel: Linux {kernel}"),
        format!(
            "source: commit {}{}",
            command("git", &["rev-parse", "--short", "HEAD"]),
            match command("git", &["status", "--porcelain"]).as_str() {
                "" => "",
                "unknown" => " (not a git checkout?)",
                _ => " with uncommitted changes",
            }
        ),
        format!(
            "compiler: {}; wasmtime {}",
            command("rustc", &["-V"]),
            gantry::plugin::cache::WASMTIME_VERSION
        ),
    ]
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
