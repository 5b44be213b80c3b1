//! Component steps: WASI 0.2 components of the `wasi:cli/command` world.
//!
//! They speak the same step ABI as preview 1 modules — the same
//! environment, folders, step files, output capture and limits, set up by
//! the same code in [`super`] — and differ in what they are linked with:
//! `wasi:cli`, `wasi:filesystem`, `wasi:clocks`, `wasi:random`, `wasi:io`,
//! plus `wasi:http` and `wasi:sockets`, whose every use is checked against
//! the step's network grants ([`crate::network`]). A component importing
//! anything else is refused at admission, naming the import.

use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::Host as _;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode as NetworkErrorCode, Network};
use wasmtime_wasi::sockets::WasiSocketsView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::Refused;
use super::limits::StepLimiter;
use crate::network::StepNetwork;

/// The WASI 0.2 packages a component step may import.
pub const PROVIDED_PACKAGES: [&str; 7] = [
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
    "wasi:http/",
    "wasi:sockets/",
];

/// The export that makes a component a command.
const RUN_EXPORT: &str = "wasi:cli/run@0.2";

/// What lives in a component step's store.
pub struct ComponentState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub network: StepNetwork,
    pub limiter: StepLimiter,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.network,
        }
    }
}

/// The interface whose `resolve-addresses` gantry puts in front of
/// wasmtime-wasi's, as the WASI version wasmtime-wasi 48 defines it.
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// The linker of every component step: WASI 0.2 and `wasi:http`, with
/// name lookups limited to the names the step's `tcp://` grants hold.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // wasmtime-wasi can only allow every lookup or none; a guest granted
    // `tcp://db.internal:5432` must be able to look up `db.internal` and
    // nothing else (a lookup of any other name would carry data out
    // through the resolver). So this one function is replaced by a check
    // in front of wasmtime-wasi's own.
    linker.allow_shadowing(true);
    linker.instance(IP_NAME_LOOKUP)?.func_wrap(
        "resolve-addresses",
        |mut store: wasmtime::StoreContextMut<'_, ComponentState>,
         (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            if let Err(why) = state.network.may_look_up(&name) {
                state.network.refuse(&format!("dns://{name}"), &why);
                return Ok((Err(NetworkErrorCode::PermanentResolverFailure),));
            }
            match WasiSocketsView::sockets(state).resolve_addresses(network, name) {
                Ok(stream) => Ok((Ok(stream),)),
                Err(error) => error.downcast().map(|code| (Err(code),)),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(linker)
}

/// Checks a compiled component is a command importing only what gantry
/// provides, and links it.
pub fn check(
    engine: &Engine,
    linker: &Linker<ComponentState>,
    component: &Component,
) -> Result<CommandPre<ComponentState>, Refused> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if !PROVIDED_PACKAGES
            .iter()
            .any(|package| name.starts_with(package))
        {
            return Err(Refused::new(format!(
                "it imports `{name}`, which gantry does not provide; a component step may import {}",
                provided_list()
            )));
        }
    }
    if !ty
        .exports(engine)
        .any(|(name, _)| name.starts_with(RUN_EXPORT))
    {
        return Err(Refused::new(
            "it does not export `wasi:cli/run`; a component step must be of the `wasi:cli/command` world (a program with a `main`)",
        ));
    }
    let pre = linker.instantiate_pre(component).map_err(|e| {
        Refused::new(format!(
            "it cannot be linked with the WASI 0.2 interfaces gantry provides: {}",
            super::root_cause(&e)
        ))
    })?;
    CommandPre::new(pre).map_err(|e| {
        Refused::new(format!(
            "its `wasi:cli/run` export is not the one WASI 0.2 defines: {}",
            super::root_cause(&e)
        ))
    })
}

fn provided_list() -> String {
    PROVIDED_PACKAGES
        .iter()
        .map(|package| format!("`{}*`", package))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Instantiates and runs the command; its `run` returning an error is exit
/// status 1, as `wasmtime run` and the Rust standard library treat it.
pub async fn run(
    pre: &CommandPre<ComponentState>,
    store: &mut Store<ComponentState>,
) -> wasmtime::Result<()> {
    let command = pre.instantiate_async(&mut *store).await?;
    match command.wasi_cli_run().call_run(&mut *store).await? {
        Ok(()) => Ok(()),
        Err(()) => Err(wasmtime_wasi::I32Exit(1).into()),
    }
}
