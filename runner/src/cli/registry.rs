//! The registry options every command takes (`--registry-token`,
//! `--registry-user`, `--insecure-registry`): global flags, so they can be
//! written before or after the subcommand, and set once for the process.

use clap::Args;

use crate::plugin::oci::{self, RegistryOptions};

/// How to reach OCI registries.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// A registry access token, sent as the password of HTTP Basic
    /// authentication to registries (instead of docker's config.json);
    /// prefer the GANTRY_REGISTRY_TOKEN variable, which stays out of `ps`
    #[arg(long, global = true, value_name = "TOKEN")]
    registry_token: Option<String>,
    /// The user name sent with the token (registries that take a token as
    /// a password mostly ignore it)
    #[arg(long, global = true, value_name = "USER", default_value = "gantry")]
    registry_user: String,
    /// Reach HOST (or HOST:PORT) over plain HTTP; only loopback registries
    /// are reached that way without it (may be repeated)
    #[arg(long, global = true, value_name = "HOST")]
    insecure_registry: Vec<String>,
}

impl RegistryArgs {
    /// Sets the process's registry options.
    pub fn configure(self) {
        let token = self
            .registry_token
            .or_else(|| std::env::var("GANTRY_REGISTRY_TOKEN").ok())
            .filter(|token| !token.is_empty());
        oci::configure(RegistryOptions {
            token: token.map(|token| (self.registry_user, token)),
            insecure: self.insecure_registry,
        });
    }
}
