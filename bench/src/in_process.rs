//! gantry measured inside this process, without a process start: the
//! sandbox alone, step after step, and the engine running whole pipelines.
//! Every module is admitted from the compiled-module cache first, as on a
//! second `gantry run`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gantry::engine::{self, AdmittedPlugins, RunOptions};
use gantry::plan::Plan;
use gantry::plugin::VerifiedPlugin;
use gantry::plugin::cache::ModuleCache;
use gantry::report::{Event, Reporter};
use gantry::sandbox::step_files::StepFolders;
use gantry::sandbox::{Sandbox, StepInvocation, StepModule};
use gantry::secrets::Secrets;
use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;

/// Jobs the engine runs at once, and the steps the sandbox is sized for.
const PARALLEL_JOBS: usize = 8;

/// One sandbox and the runtime it runs on, as `gantry run` sets them up
/// for a run of a given number of steps.
pub struct Gantry {
    runtime: tokio::runtime::Runtime,
    sandbox: Arc<Sandbox>,
    cache: ModuleCache,
    steps: usize,
}

/// What one engine run measured.
pub struct EngineRun {
    pub steps_per_second: f64,
    /// This process's RSS after step `sample_at` finished, in KiB.
    pub rss_early_kib: u64,
    /// This process's RSS after the last step finished, in KiB.
    pub rss_end_kib: u64,
}

impl Gantry {
    /// Sized for a run of `steps` steps, up to 8 at once: pooled when
    /// that run is long enough for `gantry run` to pool, on demand if not.
    pub fn new(cache_home: &Path, steps: usize) -> Gantry {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let sandbox = Arc::new(Sandbox::new(steps, PARALLEL_JOBS).expect("the sandbox starts"));
        let cache = ModuleCache::open(&cache_home.join("gantry")).expect("the bench cache");
        Gantry {
            runtime,
            sandbox,
            cache,
            steps,
        }
    }

    /// Admits `bytes` as `gantry run` does, twice: the first fills the
    /// cache, the second loads from it. Returns the second.
    pub fn admit_cached(&self, alias: &str, bytes: &[u8]) -> StepModule {
        let plugin = VerifiedPlugin {
            alias: alias.into(),
            sha256: gantry::plugin::sha256_hex(bytes),
            bytes: bytes.to_vec(),
            limits: Some(Default::default()),
        };
        let (first, note) = self.sandbox.admit_plugin(&plugin, Some(&self.cache));
        first.expect("the guest is admitted");
        assert!(note.is_none(), "{note:?}");
        let (module, note) = self.sandbox.admit_plugin(&plugin, Some(&self.cache));
        assert!(note.is_none(), "the cache had something to say: {note:?}");
        module.expect("the guest is admitted from the cache")
    }

    /// Seconds per step over `n` steps through [`Sandbox::run`], one after
    /// another, with the step environment `env`.
    pub fn sandbox_per_step(&self, module: &StepModule, env: &[(&str, &str)], n: usize) -> f64 {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.push(("GANTRY_PHASE".into(), "run".into()));
        self.runtime.block_on(async {
            let started = Instant::now();
            for _ in 0..n {
                let run = self.sandbox.run(module, invocation(env.clone())).await;
                assert!(run.outcome.is_ok(), "{:?}", run.outcome);
            }
            started.elapsed().as_secs_f64() / n as f64
        })
    }

    /// Seconds to start a sandbox of its own sized like this one, and to
    /// drop it after it ran one step of `bytes`: what `gantry run` pays
    /// once (the pool reserved and released, if it pools; the epoch thread
    /// started and stopped; the step folder deleted).
    pub fn sandbox_start_and_drop(&self, bytes: &[u8]) -> (f64, f64) {
        let started = Instant::now();
        let sandbox = Sandbox::new(self.steps, PARALLEL_JOBS).expect("the sandbox starts");
        let start = started.elapsed().as_secs_f64();
        let module = sandbox.admit(bytes).expect("the guest is admitted");
        let run = self
            .runtime
            .block_on(sandbox.run(&module, invocation(Vec::new())));
        assert!(run.outcome.is_ok(), "{:?}", run.outcome);
        drop(module);
        let started = Instant::now();
        drop(sandbox);
        (start, started.elapsed().as_secs_f64())
    }

    /// Runs `plan` through [`engine::run`] as `gantry run` does once its
    /// plugins are admitted (`alias` bound to `module`), with up to 8 jobs
    /// at once. Measures steps per second and this process's RSS after
    /// step `sample_at` and after the last.
    pub fn engine_run(
        &self,
        plan: &Arc<Plan>,
        alias: &str,
        module: &StepModule,
        steps: usize,
        sample_at: usize,
    ) -> EngineRun {
        let mut plugins: AdmittedPlugins = IndexMap::new();
        plugins.insert(alias.into(), Ok(module.clone()));
        let state = tempfile::tempdir().expect("a state folder");
        let options = RunOptions {
            artifact_limit: gantry::artifacts::store::DEFAULT_ARTIFACT_BYTES,
            imported: None,
            state_dir: state.path().to_owned(),
            output_limit: gantry::sandbox::DEFAULT_OUTPUT_LIMIT,
            max_parallel: PARALLEL_JOBS,
            secrets: Secrets::default(),
            cancel: CancellationToken::new(),
            stop_rollback: CancellationToken::new(),
            plugin_hashes: Default::default(),
        };
        let sampler = Arc::new(RssSampler {
            finished: AtomicUsize::new(0),
            early_at: sample_at,
            end_at: steps,
            early_kib: AtomicU64::new(0),
            end_kib: AtomicU64::new(0),
        });
        let started = Instant::now();
        let outcome = self.runtime.block_on(engine::run(
            plan.clone(),
            self.sandbox.clone(),
            Arc::new(plugins),
            sampler.clone(),
            options,
        ));
        let elapsed = started.elapsed().as_secs_f64();
        assert!(outcome.verdict.succeeded(), "the bench pipeline failed");
        assert_eq!(sampler.finished.load(Ordering::Relaxed), steps);
        EngineRun {
            steps_per_second: steps as f64 / elapsed,
            rss_early_kib: sampler.early_kib.load(Ordering::Relaxed),
            rss_end_kib: sampler.end_kib.load(Ordering::Relaxed),
        }
    }
}

/// Seconds per step of the step's private folder alone, taken, read back
/// and emptied for the next step as [`Sandbox::run`] does for every step.
pub fn step_folder_per_step(n: usize) -> f64 {
    let folders = StepFolders::default();
    let started = Instant::now();
    for _ in 0..n {
        let folder = folders.take().expect("a step folder");
        folders.finish(folder).expect("the empty step files parse");
    }
    started.elapsed().as_secs_f64() / n as f64
}

/// A step with the environment `env`, no folders, the default limits and
/// a sink that drops every line.
fn invocation(env: Vec<(String, String)>) -> StepInvocation<'static> {
    StepInvocation {
        program: "step",
        env,
        workspace: None,
        dirs: &[],
        extra_dirs: Vec::new(),
        timeout: Duration::from_secs(60),
        memory_bytes: 64 << 20,
        max_files: 256,
        disk_bytes: 1 << 30,
        output_limit: gantry::sandbox::DEFAULT_OUTPUT_LIMIT,
        sink: Arc::new(|_, _, _| {}),
        cancel: CancellationToken::new(),
        on_state_file: None,
        network: &[],
        on_network_denied: None,
    }
}

/// Loads and resolves a bench manifest once, outside any timing.
pub fn load_plan(manifest: &Path) -> Arc<Plan> {
    let loaded = gantry::manifest::load(manifest).expect("the bench manifest loads");
    Arc::new(gantry::plan::resolve(&loaded).expect("the bench manifest resolves"))
}

/// A reporter that prints nothing and reads this process's RSS when the
/// step counts it waits for have finished. Reading `/proc` twice in a run
/// costs microseconds.
struct RssSampler {
    finished: AtomicUsize,
    early_at: usize,
    end_at: usize,
    early_kib: AtomicU64,
    end_kib: AtomicU64,
}

impl Reporter for RssSampler {
    fn report(&self, event: Event<'_>) {
        if let Event::StepFinished { .. } = event {
            let count = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
            if count == self.early_at {
                self.early_kib.store(rss_kib(), Ordering::Relaxed);
            }
            if count == self.end_at {
                self.end_kib.store(rss_kib(), Ordering::Relaxed);
            }
        }
    }
}

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
