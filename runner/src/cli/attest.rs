//! `gantry run --attest FILE [--attest-key KEY]` (the record written when
//! the run ends) and `gantry verify-run FILE [--key PUB]` (checking one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::console::{errln, outln};
use super::{Failure, Outcome};
use crate::attest::{Envelope, Statement, statement::RunRecord};
use crate::exit::Exit;
use crate::fsutil::write_atomic;
use crate::plan::Plan;
use crate::signature::sign::SigningKey;
use crate::signature::{SignaturePolicy, fingerprint};
use sigstore_verify::types::DerPublicKey;

/// The attestation options of `gantry run`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// When the run ends, write an in-toto statement (SLSA provenance v1)
    /// of it to FILE: the manifest's and every plugin's sha256, each step's
    /// grants, the artifacts by digest, the outcome and the rollback taken
    #[arg(long, value_name = "FILE")]
    attest: Option<PathBuf>,
    /// Sign the statement with this private key (PEM PKCS#8 ECDSA P-256),
    /// writing a DSSE envelope instead
    #[arg(long, value_name = "KEY", requires = "attest")]
    attest_key: Option<PathBuf>,
}

/// What `--attest` will write, its key already read: a key that cannot be
/// used is an error before anything runs, not after.
pub struct Attester {
    path: PathBuf,
    key: Option<SigningKey>,
}

impl AttestArgs {
    /// Reads the key, if any; `None` without `--attest`.
    ///
    /// It prints its own failure: `cli/run.rs`, its one caller, still
    /// returns a bare [`Exit`]; it becomes a [`Failure`] when that does.
    pub fn prepare(&self) -> Result<Option<Attester>, Failure> {
        let Some(path) = &self.attest else {
            return Ok(None);
        };
        let key = match &self.attest_key {
            Some(key) => Some(
                SigningKey::from_pem_file(key)
                    .map_err(|error| Failure::hinted(Exit::Invalid, error))?,
            ),
            None => None,
        };
        Ok(Some(Attester {
            path: path.clone(),
            key,
        }))
    }
}

impl Attester {
    /// Writes the record of the finished run `run_id`, atomically. The run
    /// already happened: a failure here is reported, and a successful
    /// run's status becomes a failure (its record is missing).
    pub fn write(
        &self,
        plan: &Plan,
        hashes: &BTreeMap<String, String>,
        job: Option<&str>,
        state_dir: &Path,
        run_id: &str,
        exit: Exit,
    ) -> Exit {
        let record = RunRecord {
            plan,
            hashes,
            job,
            state_dir,
            run_id,
        };
        let written = Statement::of_run(&record).and_then(|statement| {
            let json = statement.to_json();
            let contents = match &self.key {
                Some(key) => Envelope::sign(json.as_bytes(), key)?.to_json(),
                None => json,
            };
            write_atomic(&self.path, contents.as_bytes())
                .map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))
        });
        match written {
            Ok(()) => {
                let how = match &self.key {
                    Some(key) => format!("signed by {}", fingerprint(key.public_key())),
                    None => "unsigned".into(),
                };
                errln!(
                    "gantry: run attestation written to `{}` ({how})",
                    self.path.display()
                );
                exit
            }
            Err(error) => {
                // The run's own verdict was already reported; this adds to it.
                Failure::msg(Exit::StepFailed, error)
                    .with_context("the run's attestation was not written")
                    .print();
                if exit == Exit::Success {
                    Exit::StepFailed
                } else {
                    exit
                }
            }
        }
    }
}

/// Check a run attestation written by `gantry run --attest` and show what
/// it attests.
///
/// A signed attestation (a DSSE envelope) needs `--key`: its signature must
/// verify with that key, or the exit status is 3. The statement's shape is
/// checked either way (in-toto Statement v1, SLSA provenance v1, sha256
/// digests, gantry's outcome).
#[derive(Debug, Args)]
pub struct VerifyRunCommand {
    /// The attestation file
    file: PathBuf,
    /// The public key (PEM) the attestation must be signed with
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
}

impl VerifyRunCommand {
    pub fn execute(self) -> Outcome {
        let statement = self.check()?;
        show(&statement);
        Ok(Exit::Success)
    }

    fn check(&self) -> Result<Statement, Failure> {
        let shown = self.file.display();
        let text = std::fs::read(&self.file).map_err(|e| {
            Failure::new(Exit::Invalid, e).with_context(format!("cannot read `{shown}`"))
        })?;
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            Failure::new(Exit::Verification, e).with_context(format!("`{shown}` is not JSON"))
        })?;
        let key = match &self.key {
            Some(path) => Some(read_public_key(path)?),
            None => None,
        };
        let rejected = |expected: &str, found: String| {
            Failure::msg(
                Exit::Verification,
                format!("`{shown}` does not verify: expected {expected}, found {found}"),
            )
        };
        let payload = match (Envelope::parse(&json), &key) {
            (Some(Err(error)), _) => return Err(rejected("a DSSE envelope", error)),
            (Some(Ok(envelope)), Some((key, policy))) => envelope
                .verify(key)
                .map_err(|found| rejected(&policy.expected(), found))?
                .to_vec(),
            (Some(Ok(envelope)), None) => {
                return Err(Failure::msg(
                    Exit::Invalid,
                    format!("`{shown}` is signed (by key `{}`)", envelope.key_id()),
                )
                .with_hint("give the public key with `--key PUB` to check it"));
            }
            (None, Some((_, policy))) => {
                return Err(rejected(&policy.expected(), "an unsigned statement".into()));
            }
            (None, None) => {
                errln!("gantry: `{shown}` is unsigned: its content is checked, not who wrote it");
                text
            }
        };
        Statement::parse(&payload).map_err(|error| rejected("a gantry run statement", error))
    }
}

/// The public key at `path`, and the key policy that names it in messages.
fn read_public_key(path: &Path) -> Result<(DerPublicKey, SignaturePolicy), Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::new(Exit::Invalid, e)
            .with_context(format!("cannot read the key `{}`", path.display()))
    })?;
    let policy = SignaturePolicy::from_key_pem(&text, path.display().to_string()).map_err(|e| {
        Failure::msg(
            Exit::Invalid,
            format!("the key `{}` cannot be used: {e}", path.display()),
        )
    })?;
    match &policy {
        SignaturePolicy::Key { key, .. } => Ok((key.clone(), policy)),
        // `from_key_pem` makes key policies only; an identity here would
        // be a bug, refused rather than trusted.
        SignaturePolicy::Identity { .. } => Err(Failure::msg(
            Exit::Invalid,
            format!("the key `{}` is not a public key", path.display()),
        )),
    }
}

/// Prints what a verified statement attests.
fn show(statement: &Statement) {
    let definition = &statement.predicate.build_definition;
    let details = &statement.predicate.run_details;
    let parameters = &definition.external_parameters;
    outln!("pipeline: {}", parameters.pipeline);
    outln!("run: {}", details.metadata.invocation_id);
    outln!(
        "manifest: {} (sha256 {})",
        parameters.manifest.path,
        parameters.manifest.sha256
    );
    if let Some(job) = &parameters.job {
        outln!("job: {job}");
    }
    outln!(
        "from {} to {}",
        details.metadata.started_on,
        details.metadata.finished_on
    );
    outln!("plugins:");
    for plugin in &definition.resolved_dependencies {
        outln!(
            "  {} {} sha256 {}",
            plugin.name.as_deref().unwrap_or("?"),
            plugin.uri.as_deref().unwrap_or(""),
            plugin.digest.get("sha256").map_or("", String::as_str)
        );
    }
    outln!("steps and their grants:");
    for step in &definition.internal_parameters.steps {
        let mut grants = vec![format!("workspace: {}", step.workspace)];
        for dir in &step.dirs {
            grants.push(format!("{} -> {} ({})", dir.host, dir.guest, dir.access));
        }
        if !step.env.is_empty() {
            grants.push(format!("env: {}", step.env.join(", ")));
        }
        if !step.network.is_empty() {
            grants.push(format!("network: {}", step.network.join(", ")));
        }
        if !step.upload.is_empty() {
            grants.push(format!("upload: {}", step.upload.join(", ")));
        }
        if !step.download.is_empty() {
            grants.push(format!("download: {}", step.download.join(", ")));
        }
        outln!(
            "  {}/{} uses {}: {}",
            step.job,
            step.step,
            step.plugin,
            grants.join("; ")
        );
    }
    outln!("subjects:");
    for subject in &statement.subject {
        outln!(
            "  {} sha256 {}",
            subject.name.as_deref().unwrap_or("?"),
            subject.digest.get("sha256").map_or("", String::as_str)
        );
    }
    // `parse` checked the outcome is there and well-formed.
    if let Ok(outcome) = statement.outcome() {
        outln!("outcome: {}", outcome.status);
        for step in &outcome.steps {
            outln!("  {}/{}: {}", step.job, step.step, step.status);
        }
        match &outcome.rollback {
            None => outln!("rollback: none"),
            Some(rollback) => {
                outln!("rollback: {} ({})", rollback.status, rollback.reason);
                for hook in &rollback.hooks {
                    let reason = hook
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    outln!("  {}/{}: {}{reason}", hook.job, hook.step, hook.status);
                }
            }
        }
    }
}
