//! The network a component step may reach: deny by default, per step, per
//! destination.
//!
//! A step's `permissions.network` lists destinations ([`grant`]). Every
//! component is linked with `wasi:http` and `wasi:sockets`, so one that
//! could reach the network but is granted nothing still runs, and only its
//! attempts fail: each HTTP request is checked and sent by gantry
//! ([`http`]), each TCP connect is checked against the `tcp://` grants
//! ([`sockets`]), and resolved addresses must not be internal unless the
//! grant names them ([`address`]). Each refusal is told to a
//! [`DenialSink`], which the engine turns into a warning of its own.

pub mod address;
pub mod grant;
pub mod http;
pub mod sockets;

use std::sync::Arc;

pub use self::grant::NetworkGrant;
pub use self::http::TlsRoots;

/// Told of each refused destination (`scheme://host:port`) and why.
pub type DenialSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// What one step may reach, and who hears of what it may not.
#[derive(Clone)]
pub struct StepNetwork {
    grants: Arc<[NetworkGrant]>,
    tls: Arc<TlsRoots>,
    denied: DenialSink,
}

impl StepNetwork {
    pub fn new(grants: &[NetworkGrant], tls: Arc<TlsRoots>, denied: DenialSink) -> StepNetwork {
        StepNetwork {
            grants: grants.into(),
            tls,
            denied,
        }
    }

    /// Tells the sink of a refused destination.
    pub fn refuse(&self, destination: &str, reason: &str) {
        (self.denied)(destination, reason);
    }
}
