//! What the commands print on stdout and stderr, through writers that
//! treat a failed write as the reader having gone.
//!
//! `println!` panics when stdout is a closed pipe (`gantry schema | head
//! -1`) or a full disk (`gantry resume > /dev/full`): exit 101, and, worse,
//! a panic between a journal entry and the work it announces. Here a write
//! that fails is dropped and the command carries on: a deployment is not
//! abandoned halfway because nobody reads its log any more, and a command
//! whose output was cut short still ends with its own exit status.

/// Prints a line on stdout; a failed write is ignored.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints on stdout without a newline; a failed write is ignored.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints a line on stderr; a failed write is ignored.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub(crate) use {errln, out, outln};
