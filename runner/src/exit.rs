//! The exit status of `gantry`, exactly as the contract's table says.

use std::process::ExitCode;

/// Why gantry stopped, as a process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run succeeded (or the command did what it was asked).
    Success = 0,
    /// A step failed; rollback hooks, if any, all succeeded.
    StepFailed = 1,
    /// Usage error or invalid manifest; nothing ran.
    Invalid = 2,
    /// Plugin verification failed (pin missing or mismatched); nothing ran.
    Verification = 3,
    /// A rollback hook failed: the target may be inconsistent.
    RollbackFailed = 4,
}

impl From<crate::report::Verdict> for Exit {
    /// A run's verdict as the contract's exit status.
    fn from(verdict: crate::report::Verdict) -> Exit {
        use crate::report::Verdict;
        match verdict {
            Verdict::Succeeded => Exit::Success,
            Verdict::Failed => Exit::StepFailed,
            Verdict::RollbackFailed => Exit::RollbackFailed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
