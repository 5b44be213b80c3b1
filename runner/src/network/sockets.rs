//! Raw TCP for component steps, through `wasi:sockets`: connects to granted
//! `tcp://` destinations only; no listening, no UDP.
//!
//! Before each bind and connect, wasmtime-wasi asks the check that
//! [`StepNetwork::configure_sockets`] installs, with the address alone. A
//! connect is allowed when a `tcp://` grant has its port and names its
//! address, names `localhost` (for a loopback address), or names a host
//! that resolves, here, to it and the address is not internal
//! ([`super::address`]). The implicit bind a connect performs (to the
//! unspecified address, port 0) is the only bind allowed. The guest may
//! look up only the names its `tcp://` grants hold
//! ([`StepNetwork::may_look_up`], checked in front of wasmtime-wasi's
//! lookup).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use super::grant::{Host, Scheme};
use super::{StepNetwork, address};

impl StepNetwork {
    /// Sets the step's socket permissions on its WASI context.
    pub fn configure_sockets(&self, builder: &mut WasiCtxBuilder) {
        let tcp = self.grants.iter().any(|g| g.scheme == Scheme::Tcp);
        let by_name = self
            .grants
            .iter()
            .any(|g| g.scheme == Scheme::Tcp && matches!(g.host, Host::Name(_)));
        // TCP stays on even without a grant, so a connect is refused by
        // the check below, with a warning, rather than unexplained.
        builder.allow_tcp(true);
        builder.allow_udp(false);
        // Which names may be looked up is decided in front of the lookup
        // (`sandbox::component`); this only turns lookups on at all.
        builder.allow_ip_name_lookup(tcp && by_name);
        let network = self.clone();
        builder.socket_addr_check(move |addr, usage| {
            let network = network.clone();
            Box::pin(async move { network.socket_allowed(addr, usage).await })
                as Pin<Box<dyn Future<Output = bool> + Send + Sync>>
        });
    }

    /// Whether the guest may look `name` up: only a host a `tcp://` grant
    /// names (an address needs no lookup, and is allowed as it is).
    pub fn may_look_up(&self, name: &str) -> Result<(), String> {
        if name.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        let wanted = name.trim_end_matches('.').to_ascii_lowercase();
        let granted = self.grants.iter().any(|grant| {
            grant.scheme == Scheme::Tcp && matches!(&grant.host, Host::Name(n) if *n == wanted)
        });
        if granted {
            Ok(())
        } else {
            Err("a step may only look up the names its `tcp://` grants hold".into())
        }
    }

    async fn socket_allowed(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            SocketAddrUse::TcpConnect => {}
            // The bind a connect makes by itself.
            SocketAddrUse::TcpBind if addr.ip().is_unspecified() && addr.port() == 0 => {
                return true;
            }
            SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => {
                self.refuse(
                    &format!("tcp://{addr}"),
                    "a step may not listen for connections",
                );
                return false;
            }
            _ => {
                self.refuse(&format!("udp://{addr}"), "a step may not use UDP");
                return false;
            }
        }
        let mut refusal = None;
        for grant in self
            .grants
            .iter()
            .filter(|g| g.scheme == Scheme::Tcp && g.port == addr.port())
        {
            match &grant.host {
                Host::Name(name) => {
                    let resolved = tokio::net::lookup_host((name.as_str(), addr.port())).await;
                    if !resolved.is_ok_and(|mut all| all.any(|a| a.ip() == addr.ip())) {
                        continue;
                    }
                }
                Host::Ip(ip) if *ip == addr.ip() => {}
                _ => continue,
            }
            match address::permitted(&grant.host, addr.ip()) {
                Ok(()) => return true,
                Err(why) => refusal = Some(why),
            }
        }
        let why = refusal
            .unwrap_or_else(|| "no `tcp://` grant of the step names this address and port".into());
        self.refuse(&format!("tcp://{addr}"), &why);
        false
    }
}
