//! One destination a step may reach, `scheme://host[:port]`: defined in
//! `gantry-abi` (a plugin's metadata names the destinations it needs in
//! the same words), and re-exported here where the runner checks them.

pub use gantry_abi::network::{Host, NetworkGrant, Scheme};
