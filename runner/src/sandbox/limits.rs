//! The resource limiter of one step's store: caps linear memory and tables,
//! and remembers when a cap was hit so the failure can say so; and the
//! run-wide memory budget that running steps share.

use wasmtime::ResourceLimiter;

/// Table elements a step may have; generous for real programs, small enough
/// that a table-growth bomb stays harmless.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Caps what a step's linear memories hold together: a module has one, a
/// component may have several (one per core module it is made of), and
/// the cap is the step's whatever it is built from.
#[derive(Debug)]
pub struct StepLimiter {
    memory_bytes: usize,
    /// What the step's memories hold now, together.
    memory_used: usize,
    /// The size a refused memory growth asked for.
    pub memory_refused: Option<usize>,
}

impl StepLimiter {
    pub fn new(memory_bytes: u64) -> Self {
        StepLimiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            memory_used: 0,
            memory_refused: None,
        }
    }
}

impl ResourceLimiter for StepLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_bytes {
            self.memory_refused = Some(total);
            // An error (rather than `Ok(false)`) traps the guest: a program
            // that ignores a failed `memory.grow` would otherwise fail later
            // with a less clear reason.
            wasmtime::bail!("memory limit of {} bytes exceeded", self.memory_bytes);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// What all running steps may reserve together: each step holds its
/// `memory-mb` of it while it runs, and a step that does not fit waits
/// for room rather than fails.
#[derive(Debug)]
pub struct MemoryBudget {
    mebibytes: tokio::sync::Semaphore,
    total: u64,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> MemoryBudget {
        let total = mebibytes(bytes).clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u64);
        MemoryBudget {
            mebibytes: tokio::sync::Semaphore::new(total as usize),
            total,
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.total * MIB
    }

    /// Waits until `bytes` fit beside the running steps, and holds them
    /// until the permit is dropped; `None` if they can never fit.
    pub async fn reserve(&self, bytes: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let wanted = mebibytes(bytes).max(1);
        if wanted > self.total {
            return None;
        }
        self.mebibytes.acquire_many(wanted as u32).await.ok()
    }
}

const MIB: u64 = 1024 * 1024;

/// `bytes` in whole MiB, rounded up.
fn mebibytes(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

/// The default memory budget: half of what this machine (or the cgroup
/// gantry runs in, when it is smaller) has.
pub fn default_memory_budget() -> u64 {
    machine_memory() / 2
}

fn machine_memory() -> u64 {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let physical = u64::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(u64::try_from(page_size).unwrap_or(0));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match cgroup {
        Some(limit) if limit < physical || physical == 0 => limit,
        _ if physical > 0 => physical,
        _ => 4 << 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_waits_for_room_in_the_budget_and_one_too_big_never_fits() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let budget = MemoryBudget::new(100 * MIB);
            let first = budget.reserve(64 * MIB).await.unwrap();
            let waiting = tokio::time::timeout(
                std::time::Duration::from_millis(50),
                budget.reserve(64 * MIB),
            )
            .await;
            assert!(waiting.is_err(), "the second step waits");
            drop(first);
            assert!(budget.reserve(64 * MIB).await.is_some());
            assert!(budget.reserve(101 * MIB).await.is_none());
            assert!(budget.reserve(1).await.is_some(), "a byte takes a MiB");
        });
        assert!(default_memory_budget() > 0);
    }
}
