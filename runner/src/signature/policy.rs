//! Resolving a plugin's `verify:` entry into a [`SignaturePolicy`]: which
//! keys go together, files under the manifest's folder, and the key or
//! trusted root read and parsed while the manifest is checked, so a typo is
//! a located error before anything runs rather than a failure at admission.

use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::SignaturePolicy;
use crate::manifest::model::VerifySpec;

/// Key files and trusted roots larger than this are refused unread.
const MAX_TRUST_FILE_BYTES: u64 = 4 << 20;

/// One problem with a `verify:` entry, where it is and how to fix it.
#[derive(Debug)]
pub struct PolicyError {
    pub location: Location,
    pub message: String,
    pub hint: Option<String>,
}

/// Resolves `verify:` of plugin `alias`. `within` turns a path as written
/// into one under the manifest's folder, or `None` when it leaves it.
pub fn resolve(
    alias: &str,
    spec: &Spanned<VerifySpec>,
    within: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<SignaturePolicy, Vec<PolicyError>> {
    let verify = &spec.value;
    let error = |location: Location, message: String, hint: &str| PolicyError {
        location,
        message,
        hint: Some(hint.to_owned()),
    };
    let identity_keys = [&verify.identity, &verify.issuer, &verify.trusted_root];
    match &verify.key {
        Some(key) => {
            if let Some(extra) = identity_keys.iter().find_map(|k| k.as_ref()) {
                return Err(vec![error(
                    extra.referenced,
                    format!(
                        "`verify:` of plugin `{alias}` has both `key` and a certificate identity"
                    ),
                    "use `key:` alone for a key signature, or `identity:`, `issuer:` and `trusted-root:` for a certificate",
                )]);
            }
            let (path, text) = read_trust_file(alias, "key", key, within)?;
            SignaturePolicy::from_key_pem(&text, key.value.clone()).map_err(|reason| {
                vec![error(
                    key.referenced,
                    format!("the key `{}` of plugin `{alias}` cannot be used: {reason}", path.display()),
                    "give a PEM public key (`-----BEGIN PUBLIC KEY-----`), as `gantry plugin keygen` writes it",
                )]
            })
        }
        None => {
            let names = ["identity", "issuer", "trusted-root"];
            let missing: Vec<&str> = identity_keys
                .iter()
                .zip(names)
                .filter(|(value, _)| value.is_none())
                .map(|(_, name)| name)
                .collect();
            let (Some(identity), Some(issuer), Some(root)) =
                (&verify.identity, &verify.issuer, &verify.trusted_root)
            else {
                return Err(vec![error(
                    spec.referenced,
                    format!(
                        "`verify:` of plugin `{alias}` is missing `{}`",
                        missing.join("`, `")
                    ),
                    "give `key: FILE.pub`, or all of `identity:`, `issuer:` and `trusted-root:`",
                )]);
            };
            let mut errors = Vec::new();
            for value in [identity, issuer] {
                if value.value.trim().is_empty() {
                    errors.push(error(
                        value.referenced,
                        format!("an empty value in `verify:` of plugin `{alias}`"),
                        "write the exact certificate identity and OIDC issuer the signer had",
                    ));
                }
            }
            let (path, text) =
                read_trust_file(alias, "trusted-root", root, within).map_err(|mut e| {
                    errors.append(&mut e);
                    std::mem::take(&mut errors)
                })?;
            if !errors.is_empty() {
                return Err(errors);
            }
            SignaturePolicy::from_trusted_root(identity.value.clone(), issuer.value.clone(), &text)
                .map_err(|reason| {
                    vec![error(
                        root.referenced,
                        format!(
                            "the trusted root `{}` of plugin `{alias}` cannot be used: {reason}",
                            path.display()
                        ),
                        "give a Sigstore `trusted_root.json` (for the public instance, `cosign trusted-root create` or the one `sigstore-go` ships)",
                    )]
                })
        }
    }
}

/// Reads a file named in `verify:`, refusing one outside the manifest's
/// folder or missing.
fn read_trust_file(
    alias: &str,
    key: &str,
    written: &Spanned<String>,
    within: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<(PathBuf, String), Vec<PolicyError>> {
    let error = |message: String, hint: String| {
        vec![PolicyError {
            location: written.referenced,
            message,
            hint: Some(hint),
        }]
    };
    let Some(path) = within(&written.value) else {
        return Err(error(
            format!(
                "the `{key}` `{}` of plugin `{alias}` is outside the manifest's folder",
                written.value
            ),
            "keep the file in the project and write its path relative to the manifest".into(),
        ));
    };
    read_text(&path).map(|text| (path, text)).map_err(|reason| {
        error(
            format!(
                "cannot read the `{key}` `{}` of plugin `{alias}`: {reason}",
                written.value
            ),
            "the path is relative to the manifest's folder".into(),
        )
    })
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = crate::fsutil::read_capped(path, MAX_TRUST_FILE_BYTES)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("larger than {MAX_TRUST_FILE_BYTES} bytes"))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}
