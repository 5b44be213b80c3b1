//! The resource limiter of one step's store: caps linear memory and tables,
//! and remembers when a cap was hit so the failure can say so.

use wasmtime::ResourceLimiter;

/// Table elements a step may have; generous for real programs, small enough
/// that a table-growth bomb stays harmless.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

#[derive(Debug)]
pub struct StepLimiter {
    memory_bytes: usize,
    /// The size a refused memory growth asked for.
    pub memory_refused: Option<usize>,
}

impl StepLimiter {
    pub fn new(memory_bytes: u64) -> Self {
        StepLimiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            memory_refused: None,
        }
    }
}

impl ResourceLimiter for StepLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_refused = Some(desired);
            // An error (rather than `Ok(false)`) traps the guest: a program
            // that ignores a failed `memory.grow` would otherwise fail later
            // with a less clear reason.
            wasmtime::bail!("memory limit of {} bytes exceeded", self.memory_bytes);
        }
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
