//! Engine setup: the wasmtime [`Engine`] a sandbox runs every step on,
//! configured once per run: epoch interruption for timeouts, the
//! allocation strategy (wasmtime's pooling allocator for runs long enough
//! to pay for it, on demand otherwise), the WASI preview 1 linker, and
//! the thread that advances the epoch while the sandbox lives.
//!
//! Kept apart from the [`Sandbox`] API because it changes with wasmtime's
//! configuration, not with what a step may do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, Linker};

use super::run::StepState;
use super::step_files::StepFolders;
use super::{Sandbox, limits, root_cause};
use crate::network::TlsRoots;
use crate::state::Protected;

/// How often the epoch advances; a running guest yields at each tick, so
/// this bounds how late a timeout can fire.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the sandbox allocates each step's memory, tables and stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Mapped for each step and unmapped after it.
    OnDemand,
    /// Reserved once, in slots reused from step to step (wasmtime's pooling
    /// allocator): no `mmap` of a fresh fiber stack and memory per step,
    /// which is most of what a small step costs in wasmtime.
    Pooling {
        /// Steps that may run at once; more wait for a slot.
        slots: u32,
    },
}

/// The most pool slots a sandbox reserves; each reserves address space (not
/// memory) for a whole 4 GiB linear memory plus its guard.
pub const MAX_POOL_SLOTS: u32 = 256;
/// Runs with fewer steps than this allocate on demand: reserving and
/// releasing a pool costs about what it saves on 15 to 30 steps (see
/// `Sandbox::new` in docs/BENCHMARKS.md), so a small run would only pay.
pub const POOL_MIN_STEPS: usize = 32;
/// Linear memories a step module may define.
pub(super) const MEMORIES_PER_MODULE: u32 = 1;
/// Tables a step module may define.
pub(super) const TABLES_PER_MODULE: u32 = 4;

impl Sandbox {
    /// A sandbox for a run of `steps` steps, up to `concurrent_steps` of
    /// them at a time: with the pooling allocator when the run is long
    /// enough for the pool to pay for itself ([`POOL_MIN_STEPS`]), and
    /// allocating on demand otherwise or where the pool's address space
    /// cannot be reserved (a `ulimit -v`, say).
    pub fn new(steps: usize, concurrent_steps: usize) -> wasmtime::Result<Sandbox> {
        if steps < POOL_MIN_STEPS {
            return Sandbox::with_allocation(Allocation::OnDemand);
        }
        let slots = u32::try_from(concurrent_steps.min(steps))
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_POOL_SLOTS);
        match Sandbox::with_allocation(Allocation::Pooling { slots }) {
            Ok(sandbox) => Ok(sandbox),
            Err(error) => {
                let mut sandbox = Sandbox::with_allocation(Allocation::OnDemand)?;
                sandbox.pool_refused = Some(root_cause(&error));
                Ok(sandbox)
            }
        }
    }

    /// Why the pool could not be reserved, when this sandbox fell back to
    /// allocating on demand.
    pub fn pool_refused(&self) -> Option<&str> {
        self.pool_refused.as_deref()
    }

    pub fn with_allocation(allocation: Allocation) -> wasmtime::Result<Sandbox> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut slots = None;
        if let Allocation::Pooling { slots: count } = allocation {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_core_instances(count)
                .total_memories(count)
                .total_tables(count * TABLES_PER_MODULE)
                .max_memories_per_module(MEMORIES_PER_MODULE)
                .max_tables_per_module(TABLES_PER_MODULE)
                .table_elements(limits::MAX_TABLE_ELEMENTS)
                .total_stacks(count);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            slots = Some(tokio::sync::Semaphore::new(count as usize));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut StepState| {
            &mut state.wasi
        })?;
        let ticker = Some(EpochTicker::start(engine.clone()));
        Ok(Sandbox {
            engine,
            linker,
            ticker,
            folders: StepFolders::default(),
            allocation,
            slots,
            pool_refused: None,
            project: None,
            protected: Protected::default(),
            memory_budget: None,
            components: OnceLock::new(),
            tls: Arc::new(TlsRoots::default()),
        })
    }

    /// How this sandbox allocates steps.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The engine every step of this sandbox runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while the sandbox lives.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gantry-epoch".into())
            .spawn(move || {
                // Parked rather than asleep, so `stop` can wake it at once
                // instead of waiting out the tick (a spurious wake-up only
                // advances the epoch early, which is harmless).
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_run_long_enough_reserves_a_pool_and_it_is_never_larger_than_the_run() {
        let allocation = |steps, concurrent| Sandbox::new(steps, concurrent).unwrap().allocation();
        assert_eq!(allocation(1, 8), Allocation::OnDemand);
        assert_eq!(allocation(POOL_MIN_STEPS - 1, 8), Allocation::OnDemand);
        assert_eq!(
            allocation(POOL_MIN_STEPS, 8),
            Allocation::Pooling { slots: 8 }
        );
        assert_eq!(
            allocation(POOL_MIN_STEPS, 10_000),
            Allocation::Pooling {
                slots: u32::try_from(POOL_MIN_STEPS).unwrap()
            }
        );
        assert_eq!(
            allocation(100_000, 10_000),
            Allocation::Pooling {
                slots: MAX_POOL_SLOTS
            }
        );
    }
}
