//! The `plugins:` block, the manifest's or a step group's: each alias
//! checked, a local source kept inside the manifest's folder, a registry
//! reference parsed, an inline pin's shape and the `limits:` and `verify:`
//! keys checked. Kept apart from the steps that use the aliases because
//! what a plugin *is* is settled here once, before any step names it.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use super::grants::within_root;
use super::{PluginRef, Resolver, is_identifier, is_sha256_hex};
use crate::manifest::model;
use crate::plugin::compile_limits::CompileLimits;

impl Resolver<'_> {
    pub(super) fn plugins(&mut self) -> IndexMap<String, PluginRef> {
        let mut plugins = IndexMap::new();
        for (alias, spec) in &self.loaded.manifest.plugins {
            plugins.insert(alias.value.clone(), self.plugin_ref(alias, spec));
        }
        plugins
    }

    /// One entry of a `plugins:` block (the manifest's or a step group's),
    /// checked: its alias, its path inside the folder, its pin's shape.
    pub(super) fn plugin_ref(
        &mut self,
        alias: &Spanned<String>,
        spec: &model::PluginSpec,
    ) -> PluginRef {
        if !is_identifier(&alias.value) {
            self.error(
                alias.referenced,
                format!("invalid plugin alias `{}`", alias.value),
            )
            .hint = Some("use letters, digits, `-` and `_`".into());
        }
        // A registry source has no path; its reference is checked here,
        // so a typo is a manifest error with its position.
        let path = if crate::plugin::oci::is_oci(&spec.source.value) {
            if let Err(message) = crate::plugin::oci::OciRef::parse(&spec.source.value) {
                self.error(spec.source.referenced, message);
            }
            None
        } else {
            self.plugin_path(&alias.value, &spec.source)
        };
        let inline_sha256 = spec.sha256.as_ref().and_then(|pin| {
            if is_sha256_hex(&pin.value) {
                Some(pin.value.clone())
            } else {
                self.error(
                    pin.referenced,
                    format!("malformed sha256 `{}` for plugin `{}`", pin.value, alias.value),
                )
                .hint = Some(
                    "a pin is 64 lowercase hex digits; remove it and run `gantry lock` to compute it"
                        .into(),
                );
                None
            }
        });
        let signature = spec.verify.as_ref().and_then(|verify| {
            let root = self.loaded.root.clone();
            let within = |written: &str| within_root(&root, written);
            crate::signature::policy::resolve(&alias.value, verify, &within)
                .map_err(|errors| {
                    for error in errors {
                        self.error(error.location, error.message).hint = error.hint;
                    }
                })
                .ok()
        });
        PluginRef {
            alias: alias.value.clone(),
            source: spec.source.value.clone(),
            path: path.unwrap_or_default(),
            inline_sha256,
            compile_limits: self.compile_limits(spec.limits.as_ref()),
            signature,
        }
    }

    /// A plugin's compile limits: the defaults, each raised (or lowered)
    /// by its key under the plugin's `limits:`.
    fn compile_limits(&mut self, limits: Option<&model::PluginLimits>) -> CompileLimits {
        let mut result = CompileLimits::default();
        let Some(limits) = limits else {
            return result;
        };
        let mib = 1 << 20;
        let mut set =
            |value: &Option<Spanned<u64>>, key: &str, max: u64, target: &mut u64, unit: u64| {
                if let Some(value) = value {
                    if (1..=max).contains(&value.value) {
                        *target = value.value * unit;
                    } else {
                        self.error(
                            value.referenced,
                            format!("`{key}` must be between 1 and {max}, found {}", value.value),
                        );
                    }
                }
            };
        set(
            &limits.functions,
            "functions",
            10_000_000,
            &mut result.functions,
            1,
        );
        set(
            &limits.code_mb,
            "code-mb",
            1024,
            &mut result.code_bytes,
            mib,
        );
        set(&limits.locals, "locals", 1_000_000, &mut result.locals, 1);
        set(
            &limits.data_mb,
            "data-mb",
            1024,
            &mut result.data_bytes,
            mib,
        );
        let mut seconds = result.deadline.as_secs();
        set(
            &limits.compile_seconds,
            "compile-seconds",
            3600,
            &mut seconds,
            1,
        );
        result.deadline = Duration::from_secs(seconds);
        result
    }

    /// A plugin's absolute path, refusing anything outside the manifest's
    /// folder tree, whether by `..`, an absolute path or a symlink.
    fn plugin_path(&mut self, alias: &str, source: &Spanned<String>) -> Option<PathBuf> {
        let root = &self.loaded.root;
        let outside = |resolver: &mut Self| {
            resolver
                .error(
                    source.referenced,
                    format!(
                        "the source `{}` of plugin `{alias}` is outside the manifest's folder",
                        source.value
                    ),
                )
                .hint = Some(format!(
                "copy the module under `{}` and point `source` at it",
                root.display()
            ));
            None
        };
        match within_root(root, &source.value) {
            Some(path) => Some(path),
            None => outside(self),
        }
    }
}
