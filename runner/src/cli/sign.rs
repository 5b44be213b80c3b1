//! `gantry plugin keygen` and `gantry plugin sign`: a key pair for signing
//! plugins, and a Sigstore bundle beside a plugin, for a manifest entry
//! with `verify: { key: … }`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::console::outln;
use super::plugin::read_module;
use super::{Failure, Outcome};
use crate::exit::Exit;
use crate::fsutil::write_atomic;
use crate::plugin::sha256_hex;
use crate::signature::sign::{SigningKey, generate_key_pair};
use crate::signature::{BUNDLE_SUFFIX, fingerprint};

/// Write a new ECDSA P-256 key pair: PREFIX.key (private, mode 0600) and
/// PREFIX.pub (the public key a manifest's `verify: { key: }` names).
///
/// Neither file may exist already: a signing key is never overwritten.
#[derive(Debug, Args)]
pub struct KeygenCommand {
    /// Where to write the pair, without extension (e.g. `keys/release`)
    prefix: PathBuf,
}

impl KeygenCommand {
    pub fn execute(self) -> Outcome {
        let private_path = with_suffix(&self.prefix, ".key");
        let public_path = with_suffix(&self.prefix, ".pub");
        for path in [&private_path, &public_path] {
            if path.symlink_metadata().is_ok() {
                return Err(Failure::msg(
                    Exit::Invalid,
                    format!(
                        "`{}` already exists; gantry never overwrites a key",
                        path.display()
                    ),
                )
                .with_hint("choose another prefix, or remove the old pair first"));
            }
        }
        let (private, public) =
            generate_key_pair().map_err(|error| Failure::msg(Exit::Invalid, error))?;
        write_private(&private_path, private.as_bytes())
            .map_err(|error| cannot_write(&private_path, error))?;
        write_atomic(&public_path, public.as_bytes())
            .map_err(|error| cannot_write(&public_path, error))?;
        outln!(
            "wrote {} (private: keep it out of the repository) and {}",
            private_path.display(),
            public_path.display()
        );
        Ok(Exit::Success)
    }
}

/// `cannot write PATH`, caused by `error`.
fn cannot_write(path: &Path, error: std::io::Error) -> Failure {
    Failure::new(Exit::Invalid, error).with_context(format!("cannot write `{}`", path.display()))
}

/// The private key, created readable by its owner only from the start.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Sign a plugin with a private key: writes FILE.wasm.sigstore.json, a
/// Sigstore bundle v0.3 over the file's sha256, which `verify: { key: }`
/// checks before the plugin compiles.
#[derive(Debug, Args)]
pub struct SignCommand {
    /// The plugin to sign
    plugin: PathBuf,
    /// The private key, PEM PKCS#8 ECDSA P-256 (`gantry plugin keygen`)
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
}

impl SignCommand {
    pub fn execute(self) -> Outcome {
        let bytes = read_module(&self.plugin)?;
        let key = SigningKey::from_pem_file(&self.key)
            .map_err(|error| Failure::hinted(Exit::Invalid, error))?;
        let bundle = key
            .bundle_for(&bytes)
            .map_err(|error| Failure::msg(Exit::Invalid, error))?;
        let out = with_suffix(&self.plugin, BUNDLE_SUFFIX);
        write_atomic(&out, bundle.as_bytes()).map_err(|error| cannot_write(&out, error))?;
        outln!(
            "wrote {} (sha256 {} signed by {})",
            out.display(),
            sha256_hex(&bytes),
            fingerprint(key.public_key())
        );
        Ok(Exit::Success)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
