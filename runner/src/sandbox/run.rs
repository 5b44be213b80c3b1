//! Running one step: a fresh store of its kind, the guest supervised
//! against its timeout, cancellation and disk limit, and how it ended told
//! in words a person can act on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{InstancePre, Store, Trap};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;

use super::admission::Program;
use super::component::{self, ComponentState};
use super::context::{COMPONENT_TABLE_OVERHEAD, with_file_limit};
use super::limits::StepLimiter;
use super::output::OutputCapture;
use super::step_files::{StepFiles, StepFolder};
use super::{Failure, Sandbox, StepInvocation, StepModule, StepRun, disk, root_cause};
use crate::network::StepNetwork;

impl Sandbox {
    /// Runs one step in a fresh store and collects what it left behind.
    pub async fn run(&self, module: &StepModule, mut invocation: StepInvocation<'_>) -> StepRun {
        let _memory = match &self.memory_budget {
            Some(budget) => tokio::select! {
                biased;
                () = invocation.cancel.cancelled() => {
                    return early_failure(Instant::now(), Failure::Cancelled);
                }
                permit = budget.reserve(invocation.memory_bytes) => match permit {
                    Some(permit) => Some(permit),
                    None => return early_failure(
                        Instant::now(),
                        Failure::Setup(format!(
                            "its memory cap of {} MiB is more than the run's memory budget of {} MiB; raise it with `--memory-budget`",
                            invocation.memory_bytes.div_ceil(1 << 20),
                            budget.bytes() >> 20
                        )),
                    ),
                },
            },
            None => None,
        };
        let _slot = match &self.slots {
            Some(slots) => tokio::select! {
                biased;
                () = invocation.cancel.cancelled() => {
                    return early_failure(Instant::now(), Failure::Cancelled);
                }
                permit = slots.acquire() => permit.ok(),
            },
            None => None,
        };
        let started = Instant::now();
        let capture = OutputCapture::new(invocation.output_limit, invocation.sink.clone());
        // A module that can reach no folder gets none, not even its own
        // `/tmp` and step files: it could not use them.
        let folder = if module.reaches_folders {
            match self.folders.take() {
                Ok(folder) => Some(folder),
                Err(e) => {
                    return early_failure(
                        started,
                        Failure::Setup(format!("cannot create its private folder: {e}")),
                    );
                }
            }
        } else {
            None
        };
        // Until the guest starts, the folder is as it was handed out.
        let unused = |folder: Option<StepFolder>| {
            if let Some(folder) = folder {
                self.folders.put_back_unchanged(folder);
            }
        };
        if let Some(tell) = invocation.on_state_file.take()
            && let Some(state_file) = folder.as_ref().map(StepFolder::state_file)
            && let Err(reason) = tell(&state_file)
        {
            unused(folder);
            return early_failure(started, Failure::Setup(reason));
        }
        let (mut builder, mounts) =
            match self.build_wasi(&invocation, module, folder.as_ref(), &capture) {
                Ok(built) => built,
                Err(failure) => {
                    unused(folder);
                    return early_failure(started, failure);
                }
            };
        // What the step may fill: its private `/tmp` and upload folders.
        let filled: Vec<PathBuf> = match (&folder, module.changes_files) {
            (Some(folder), true) => std::iter::once(folder.scratch())
                .chain(
                    invocation
                        .extra_dirs
                        .iter()
                        .filter(|dir| dir.writable)
                        .map(|dir| dir.host.clone()),
                )
                .collect(),
            _ => Vec::new(),
        };
        let limiter = StepLimiter::new(invocation.memory_bytes);
        let (cancel, timeout) = (&invocation.cancel, invocation.timeout);
        let disk_bytes = invocation.disk_bytes;
        // Each kind gets its own store; the store (and the guest's files
        // with it) is dropped at the end of its arm, before the step
        // folder is read back.
        let (result, memory_refused) = match &module.program {
            Program::Module(pre) => {
                let wasi = with_file_limit(builder.build_p1(), mounts, invocation.max_files);
                let mut store = Store::new(&self.engine, StepState { wasi, limiter });
                store.limiter(|state| &mut state.limiter);
                store.epoch_deadline_async_yield_and_update(1);
                let guest = run_guest(pre, &mut store);
                let result = supervise(cancel, timeout, &filled, disk_bytes, guest).await;
                (result, store.data().limiter.memory_refused.is_some())
            }
            Program::Component(pre) => {
                let mut table = ResourceTable::new();
                table.set_max_capacity(
                    mounts + COMPONENT_TABLE_OVERHEAD + invocation.max_files as usize,
                );
                let denied = invocation
                    .on_network_denied
                    .clone()
                    .unwrap_or_else(|| Arc::new(|_: &str, _: &str| {}));
                let network = StepNetwork::new(invocation.network, self.tls.clone(), denied);
                network.configure_sockets(&mut builder);
                let state = ComponentState {
                    wasi: builder.build(),
                    table,
                    http: wasmtime_wasi_http::WasiHttpCtx::new(),
                    network,
                    limiter,
                };
                let mut store = Store::new(&self.engine, state);
                store.limiter(|state| &mut state.limiter);
                store.epoch_deadline_async_yield_and_update(1);
                let guest = component::run(pre, &mut store);
                let result = supervise(cancel, timeout, &filled, disk_bytes, guest).await;
                (result, store.data().limiter.memory_refused.is_some())
            }
        };
        let flooded = capture.finish();
        let outcome = match result {
            Ended::Cancelled => Err(Failure::Cancelled),
            Ended::DiskFull => Err(Failure::DiskLimit {
                limit: invocation.disk_bytes,
            }),
            Ended::Ran(Err(_elapsed)) => Err(Failure::Timeout(invocation.timeout)),
            Ended::Ran(Ok(Ok(()))) => Ok(()),
            Ended::Ran(Ok(Err(error))) => classify(&error, flooded, memory_refused, &invocation),
        };
        // A guest quicker than the watch may end past its limit: measured
        // once more now.
        let outcome = outcome.and_then(|()| {
            if disk::used(&filled) > invocation.disk_bytes {
                Err(Failure::DiskLimit {
                    limit: invocation.disk_bytes,
                })
            } else {
                Ok(())
            }
        });
        let read = match folder {
            Some(folder) if module.changes_files => self.folders.finish(folder),
            folder => {
                unused(folder);
                Ok(StepFiles::default())
            }
        };
        let (outcome, files) = match read {
            Ok(files) => (outcome, files),
            Err(reason) => (
                outcome.and(Err(Failure::StepFiles(reason))),
                StepFiles::default(),
            ),
        };
        StepRun {
            outcome,
            files,
            duration: started.elapsed(),
        }
    }
}

/// How waiting for a guest ended.
enum Ended<T> {
    Cancelled,
    DiskFull,
    Ran(T),
}

/// What lives in a step's store.
pub(super) struct StepState {
    pub(super) wasi: WasiP1Ctx,
    pub(super) limiter: StepLimiter,
}

/// Waits for the guest, its timeout, a cancellation or a full disk,
/// whichever comes first.
/// (Given the invocation's parts, not the invocation: a reference to it
/// could not be held across an await by a future sent between threads.)
async fn supervise(
    cancel: &CancellationToken,
    timeout: Duration,
    filled: &[PathBuf],
    disk_bytes: u64,
    guest: impl Future<Output = wasmtime::Result<()>>,
) -> Ended<Result<wasmtime::Result<()>, tokio::time::error::Elapsed>> {
    let guarded = tokio::time::timeout(timeout, guest);
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ended::Cancelled,
        () = disk::watch(filled, disk_bytes) => Ended::DiskFull,
        result = guarded => Ended::Ran(result),
    }
}

async fn run_guest(
    pre: &InstancePre<StepState>,
    store: &mut Store<StepState>,
) -> wasmtime::Result<()> {
    // Instantiation runs the module's start function, so it sits inside the
    // timeout as well.
    let instance = pre.instantiate_async(&mut *store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    start.call_async(&mut *store, ()).await
}

fn early_failure(started: Instant, failure: Failure) -> StepRun {
    StepRun {
        outcome: Err(failure),
        files: StepFiles::default(),
        duration: started.elapsed(),
    }
}

/// Turns a guest error into the reason a person reads.
fn classify(
    error: &wasmtime::Error,
    flooded: bool,
    memory_refused: bool,
    invocation: &StepInvocation<'_>,
) -> Result<(), Failure> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return if exit.0 == 0 {
            Ok(())
        } else {
            Err(Failure::Exit(exit.0))
        };
    }
    if flooded {
        return Err(Failure::OutputFlood {
            limit: invocation.output_limit,
        });
    }
    if memory_refused {
        return Err(Failure::MemoryLimit {
            limit: invocation.memory_bytes,
        });
    }
    if error
        .chain()
        .any(|cause| cause.is::<wasmtime::component::ResourceTableError>())
    {
        return Err(Failure::FileLimit {
            limit: invocation.max_files,
        });
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return Err(Failure::Trap(describe_trap(*trap)));
    }
    Err(Failure::Trap(root_cause(error)))
}

fn describe_trap(trap: Trap) -> String {
    match trap {
        Trap::StackOverflow => "stack overflow (the guest recursed too deeply)".into(),
        Trap::UnreachableCodeReached => {
            "`unreachable` executed (this is how Rust and C guests abort or panic)".into()
        }
        // Rust and C keep their stack in linear memory, so their stack
        // overflows land here rather than on wasmtime's stack guard.
        Trap::MemoryOutOfBounds => {
            "out-of-bounds memory access (a stack overflow in a Rust or C guest looks like this)"
                .into()
        }
        Trap::IntegerDivisionByZero => "integer division by zero".into(),
        Trap::IntegerOverflow => "integer overflow".into(),
        Trap::IndirectCallToNull => "call through a null function reference".into(),
        Trap::BadSignature => "indirect call with the wrong signature".into(),
        Trap::Interrupt => "interrupted".into(),
        other => other.to_string(),
    }
}
