//! Signed plugins: the `verify:` policy of a plugin entry, where its
//! Sigstore bundle is found, and checking that bundle offline against the
//! exact sha256 of the bytes gantry is about to compile.
//!
//! Two policies, as cosign has them:
//!
//! - **key**: a `messageSignature` bundle whose signature verifies with the
//!   manifest's public key over the plugin's sha256. The key is the whole
//!   trust: transparency-log entries the bundle may carry are not needed and
//!   not relied upon (cosign's `--key` with `--insecure-ignore-tlog`).
//! - **identity**: a bundle holding a signing certificate, checked by
//!   `sigstore-verify` against a `trusted_root.json` with nothing skipped:
//!   the chain to a certificate authority of the root, the certificate's SCT,
//!   the transparency-log inclusion proof and checkpoint, the signing time,
//!   the identity and issuer, and the signature over the plugin's digest.
//!
//! A check runs after the sha256 pin matched and before anything compiles;
//! a failure is a verification failure (exit 3) saying what was expected and
//! what was found.

pub mod policy;
pub mod sign;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sigstore_verify::crypto::{KeyAlgorithm, verify_signature, verify_signature_prehashed};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::bundle::{SignatureContent, VerificationMaterialContent};
use sigstore_verify::types::{Bundle, DerPublicKey, HashAlgorithm, MediaType};
use sigstore_verify::{Error as SigstoreError, VerificationPolicy, Verifier};

use crate::digest::{hex, sha256_hex};
use crate::plan::PluginRef;

/// The extension of a bundle stored beside the file it signs.
pub const BUNDLE_SUFFIX: &str = ".sigstore.json";

/// Bundles larger than this are refused unread: a real one is a few KiB.
const MAX_BUNDLE_BYTES: u64 = 1 << 20;

/// Who must have signed a plugin, resolved from its `verify:` entry.
#[derive(Debug, Clone)]
pub enum SignaturePolicy {
    /// Signed with the private half of this public key.
    Key {
        key: DerPublicKey,
        /// The key file as written in the manifest, for messages.
        shown: String,
    },
    /// Signed under a certificate for `identity` from `issuer`, chaining to
    /// the trusted root.
    Identity {
        identity: String,
        issuer: String,
        root: Arc<TrustedRoot>,
    },
}

impl SignaturePolicy {
    /// A policy for a PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_key_pem(pem: &str, shown: String) -> Result<SignaturePolicy, String> {
        let key = DerPublicKey::from_pem(pem).map_err(|e| e.to_string())?;
        KeyAlgorithm::from_spki(&key).map_err(|e| format!("unsupported public key: {e}"))?;
        Ok(SignaturePolicy::Key { key, shown })
    }

    /// A policy for a certificate identity, checked against a Sigstore
    /// `trusted_root.json`.
    pub fn from_trusted_root(
        identity: String,
        issuer: String,
        root_json: &str,
    ) -> Result<SignaturePolicy, String> {
        let root = TrustedRoot::from_json(root_json).map_err(|e| e.to_string())?;
        // Building a verifier checks every key and certificate of the root,
        // so a broken root is a manifest error, not a failure per plugin.
        Verifier::new(&root).map_err(|e| e.to_string())?;
        Ok(SignaturePolicy::Identity {
            identity,
            issuer,
            root: Arc::new(root),
        })
    }

    /// What a good signature looks like, for messages: the key's file and
    /// fingerprint, or the identity and issuer.
    pub fn expected(&self) -> String {
        match self {
            SignaturePolicy::Key { key, shown } => {
                format!("a signature by key `{shown}` ({})", fingerprint(key))
            }
            SignaturePolicy::Identity {
                identity, issuer, ..
            } => format!("a certificate for identity `{identity}` issued by `{issuer}`"),
        }
    }
}

/// A public key's fingerprint: `SHA256:` and the hex sha256 of its DER
/// SubjectPublicKeyInfo, the same bytes `openssl pkey -pubin -outform der`
/// writes.
pub fn fingerprint(key: &DerPublicKey) -> String {
    format!("SHA256:{}", sha256_hex(key.as_bytes()))
}

/// Where the bundle of a plugin is looked for: `SOURCE.sigstore.json`
/// beside a local source; for a plugin from a registry, the bundle pulled
/// with it (the referrer attached to its OCI manifest), kept in the content
/// cache as `blobs/sha256/<wasm hex>.sigstore.json`.
///
/// This is the one place that decides it. The bundle is checked
/// cryptographically either way, so where it was found gives it no trust.
pub fn bundle_path(plugin: &PluginRef, sha256: &str) -> PathBuf {
    if crate::plugin::oci::is_oci(&plugin.source) {
        // No cache folder (no HOME) means nothing was pulled: a path that
        // does not exist reports the bundle as missing.
        return crate::plugin::oci::cached_bundle_path(sha256)
            .unwrap_or_else(|| PathBuf::from(format!("{sha256}{BUNDLE_SUFFIX}")));
    }
    let mut path = plugin.path.clone().into_os_string();
    path.push(BUNDLE_SUFFIX);
    PathBuf::from(path)
}

/// Why a plugin's signature was not accepted.
#[derive(Debug)]
pub enum SignatureError {
    /// No bundle where one was looked for.
    Missing { expected: String, path: PathBuf },
    /// The bundle could not be read or parsed.
    Unreadable { path: PathBuf, reason: String },
    /// The bundle does not prove what the policy asks.
    Rejected { expected: String, found: String },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Missing { expected, path } => write!(
                f,
                "expected {expected}, found no signature: `{}` does not exist",
                path.display()
            ),
            SignatureError::Unreadable { path, reason } => write!(
                f,
                "cannot read the Sigstore bundle `{}`: {reason}",
                path.display()
            ),
            SignatureError::Rejected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
        }
    }
}

impl std::error::Error for SignatureError {}

impl crate::hint::Hinted for SignatureError {
    fn hint(&self) -> Option<String> {
        match self {
            SignatureError::Missing { .. } => Some(
                "sign it with `gantry plugin sign FILE.wasm --key KEY` and keep the bundle beside the plugin".into(),
            ),
            SignatureError::Unreadable { .. } => Some(
                "gantry reads Sigstore bundles v0.3 (JSON), as `cosign sign-blob --bundle` and `gantry plugin sign` write them".into(),
            ),
            SignatureError::Rejected { .. } => None,
        }
    }
}

/// Checks that the bundle at `bundle_path` signs exactly `bytes` (whose
/// sha256 is `sha256`) as `policy` requires.
pub fn verify_bytes(
    policy: &SignaturePolicy,
    bytes: &[u8],
    sha256: &str,
    bundle_path: &Path,
) -> Result<(), SignatureError> {
    let bundle = read_bundle(policy, bundle_path)?;
    let expected = policy.expected();
    let rejected = |found: String| SignatureError::Rejected {
        expected: expected.clone(),
        found,
    };
    match policy {
        SignaturePolicy::Key { key, .. } => {
            verify_with_key(key, &bundle, bytes, sha256).map_err(rejected)
        }
        SignaturePolicy::Identity {
            identity,
            issuer,
            root,
        } => {
            let verifier = Verifier::new(root).map_err(|e| rejected(e.to_string()))?;
            let policy = VerificationPolicy::new(identity.as_str(), issuer.as_str());
            verifier
                .verify(bytes, &bundle, &policy)
                .map(drop)
                .map_err(|error| rejected(describe_identity_failure(error)))
        }
    }
}

fn read_bundle(policy: &SignaturePolicy, path: &Path) -> Result<Bundle, SignatureError> {
    let unreadable = |reason: String| SignatureError::Unreadable {
        path: path.to_owned(),
        reason,
    };
    let bytes = match crate::fsutil::read_capped(path, MAX_BUNDLE_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(unreadable(format!("larger than {MAX_BUNDLE_BYTES} bytes"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SignatureError::Missing {
                expected: policy.expected(),
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8".into()))?;
    let bundle = Bundle::from_json(&text).map_err(|e| unreadable(e.to_string()))?;
    if bundle.media_type != MediaType::Bundle0_3 {
        return Err(unreadable(format!(
            "media type `{}`, not `{}`",
            bundle.media_type.as_str(),
            MediaType::Bundle0_3.as_str()
        )));
    }
    Ok(bundle)
}

/// The key policy: a message signature over the plugin's sha256 that
/// verifies with `key`. Returns what was found instead when it does not.
fn verify_with_key(
    key: &DerPublicKey,
    bundle: &Bundle,
    bytes: &[u8],
    sha256: &str,
) -> Result<(), String> {
    let hint = match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(identifier) => identifier.hint.clone(),
        _ => {
            return Err(
                "a bundle signed under a certificate, not with a key (use `identity:`, `issuer:` and `trusted-root:` for it)"
                    .into(),
            );
        }
    };
    let SignatureContent::MessageSignature(signature) = &bundle.content else {
        return Err("a DSSE envelope, not a signature over the plugin's bytes".into());
    };
    let digest = hex_to_bytes(sha256);
    // The digest the bundle says it signs; a different one is a signature
    // for another file, and is named as such.
    if let Some(claimed) = &signature.message_digest {
        let claimed_hex = hex(claimed.digest.as_ref());
        if claimed.algorithm != HashAlgorithm::Sha2256 {
            return Err(format!(
                "a signature over a {:?} digest, not sha256",
                claimed.algorithm
            ));
        }
        if claimed_hex != sha256 {
            return Err(format!(
                "a signature over another file: the bundle signs sha256 {claimed_hex}, the plugin is sha256 {sha256}"
            ));
        }
    }
    let scheme = KeyAlgorithm::from_spki(key)
        .map_err(|e| format!("a key gantry cannot use: {e}"))?
        .default_signing_scheme();
    // Verified over the digest gantry computed from the bytes it holds,
    // never over the digest the bundle claims; a scheme that does not sign
    // a SHA-256 digest (Ed25519, P-384) is verified over the bytes.
    let verified = if scheme.hash_algorithm() == Some(HashAlgorithm::Sha2256) {
        verify_signature_prehashed(key, &digest, &signature.signature, scheme)
    } else {
        verify_signature(key, bytes, &signature.signature, scheme)
    };
    verified.map_err(|_| {
        let by = if hint.is_empty() {
            String::new()
        } else {
            format!(" (the bundle names key `{hint}`)")
        };
        format!("a signature that does not verify with that key{by}")
    })
}

/// What an identity bundle showed instead of what was required.
fn describe_identity_failure(error: SigstoreError) -> String {
    match error {
        SigstoreError::IdentityMismatch { actual, .. } => match actual {
            Some(actual) => format!("a certificate for identity `{}`", actual.as_str()),
            None => "a certificate without an identity".into(),
        },
        SigstoreError::IssuerMismatch { actual, .. } => match actual {
            Some(actual) => format!("a certificate issued by `{actual}`"),
            None => "a certificate without an issuer".into(),
        },
        other => format!("a bundle that does not verify: {other}"),
    }
}

/// Lowercase hex (already checked) to bytes.
fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}
