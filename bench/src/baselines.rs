//! The baselines gantry is measured against, each in the plainest form:
//! the wasmtime API in a minimal loop (the floor), the same loop with
//! gantry's engine settings, and one native process per step.

use std::process::Command;
use std::time::Instant;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

/// The floor: the documented minimal way to run a WASI preview 1 command
/// with wasmtime. Default engine, synchronous WASI, the module linked once;
/// per step a fresh WASI context (no folders) and store, instantiate, call
/// `_start`. It does less than any sandbox could, so it is a floor, not a
/// fair competitor.
pub struct Floor {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
    env: Vec<(String, String)>,
}

impl Floor {
    pub fn new(bytes: &[u8], env: &[(&str, &str)]) -> Floor {
        let engine = Engine::default();
        let module = Module::new(&engine, bytes).expect("the floor compiles the guest");
        let mut linker = Linker::<WasiP1Ctx>::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).expect("WASI links");
        let pre = linker.instantiate_pre(&module).expect("the guest links");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Floor { engine, pre, env }
    }

    /// Seconds per step over `n` steps.
    pub fn per_step(&self, n: usize) -> f64 {
        let started = Instant::now();
        for _ in 0..n {
            let wasi = WasiCtxBuilder::new()
                .args(&["step"])
                .envs(&self.env)
                .build_p1();
            let mut store = Store::new(&self.engine, wasi);
            let instance = self.pre.instantiate(&mut store).expect("instantiates");
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .expect("a WASI command");
            exited_cleanly(start.call(&mut store, ()));
        }
        started.elapsed().as_secs_f64() / n as f64
    }
}

/// Below the floor: no WASI at all, for a guest that imports nothing.
/// Shows what the WASI context itself costs.
pub struct Bare {
    engine: Engine,
    pre: InstancePre<()>,
}

impl Bare {
    pub fn new(bytes: &[u8]) -> Bare {
        let engine = Engine::default();
        let module = Module::new(&engine, bytes).expect("compiles");
        let pre = Linker::<()>::new(&engine)
            .instantiate_pre(&module)
            .expect("a guest without imports");
        Bare { engine, pre }
    }

    pub fn per_step(&self, n: usize) -> f64 {
        let started = Instant::now();
        for _ in 0..n {
            let mut store = Store::new(&self.engine, ());
            let instance = self.pre.instantiate(&mut store).expect("instantiates");
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .expect("_start");
            start.call(&mut store, ()).expect("runs");
        }
        started.elapsed().as_secs_f64() / n as f64
    }
}

/// The floor with gantry's engine settings and nothing else of gantry:
/// epoch interruption, asynchronous WASI, an async call on a tokio
/// runtime. The gap between it and the floor is the price of being able
/// to time a step out; the gap between it and gantry is gantry's own.
pub struct AsyncFloor {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
    env: Vec<(String, String)>,
    runtime: tokio::runtime::Runtime,
}

impl AsyncFloor {
    /// With `pooling`, wasmtime's pooling allocator, which keeps memories
    /// and fiber stacks for reuse instead of mapping them for every step.
    pub fn new(bytes: &[u8], env: &[(&str, &str)], pooling: bool) -> AsyncFloor {
        let mut config = Config::new();
        config.epoch_interruption(true);
        if pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(8)
                .total_memories(8)
                .total_tables(8)
                .total_stacks(8)
                .max_memory_size(64 << 20);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).expect("engine");
        let module = Module::new(&engine, bytes).expect("compiles");
        let mut linker = Linker::<WasiP1Ctx>::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |cx| cx).expect("WASI links");
        let pre = linker.instantiate_pre(&module).expect("the guest links");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AsyncFloor {
            engine,
            pre,
            env,
            runtime,
        }
    }

    pub fn per_step(&self, n: usize) -> f64 {
        self.runtime.block_on(async {
            let started = Instant::now();
            for _ in 0..n {
                let wasi = WasiCtxBuilder::new()
                    .args(&["step"])
                    .envs(&self.env)
                    .build_p1();
                let mut store = Store::new(&self.engine, wasi);
                store.epoch_deadline_async_yield_and_update(1);
                let instance = self
                    .pre
                    .instantiate_async(&mut store)
                    .await
                    .expect("instantiates");
                let start = instance
                    .get_typed_func::<(), ()>(&mut store, "_start")
                    .expect("a WASI command");
                exited_cleanly(start.call_async(&mut store, ()).await);
            }
            started.elapsed().as_secs_f64() / n as f64
        })
    }
}

/// A guest that returns from `_start` or calls `proc_exit(0)` succeeded.
fn exited_cleanly(result: wasmtime::Result<()>) {
    if let Err(error) = result {
        match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => {}
            _ => panic!("the guest failed: {error:#}"),
        }
    }
}

/// Seconds to create an engine configured as gantry's (epoch
/// interruption): the part of starting a sandbox wasmtime itself needs.
pub fn engine_start() -> f64 {
    let started = Instant::now();
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).expect("engine");
    let elapsed = started.elapsed().as_secs_f64();
    drop(engine);
    elapsed
}

/// One native process per step: spawn `/bin/true` and wait for it.
pub fn native_process_per_step(n: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let status = Command::new("/bin/true").status().expect("/bin/true");
        assert!(status.success());
    }
    started.elapsed().as_secs_f64() / n as f64
}
