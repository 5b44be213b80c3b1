//! The commands print through [`crate::console`]'s writers.

pub(crate) use crate::console::{errln, out, outln};
