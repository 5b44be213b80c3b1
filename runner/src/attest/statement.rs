//! The in-toto Statement v1 with a SLSA provenance v1 predicate that
//! describes one run: built from the admitted plan, the plugins' verified
//! hashes, the run's journal and its artifact index; read back and checked
//! by `gantry verify-run`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::artifacts::index::ArtifactIndex;
use crate::digest::sha256_hex;
use crate::journal::{self, Entry};
use crate::plan::Plan;

/// `_type` of every in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What a gantry run is, as a SLSA build type.
pub const BUILD_TYPE: &str = "urn:gantry:run:v1";
/// Who ran it.
pub const BUILDER_ID: &str = "urn:gantry:runner";
/// The byproduct that carries the outcome and the rollback.
pub const OUTCOME_NAME: &str = "gantry:outcome";

/// An in-toto Statement v1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Provenance,
}

/// An in-toto ResourceDescriptor: what a subject or dependency is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

/// SLSA provenance v1.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// What the person running gantry chose: the manifest and the job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExternalParameters {
    pub pipeline: String,
    pub manifest: ManifestRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestRef {
    /// The manifest's file name, relative to its folder.
    pub path: String,
    pub sha256: String,
}

/// What each step was granted, as the plan resolved it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InternalParameters {
    pub steps: Vec<StepGrants>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepGrants {
    pub job: String,
    pub step: String,
    pub plugin: String,
    pub plugin_sha256: String,
    /// `none`, `read` or `write`.
    pub workspace: String,
    pub dirs: Vec<DirGrant>,
    /// Host environment variables passed through, by name.
    pub env: Vec<String>,
    /// Network destinations, canonical (`https://api.example.com:443`).
    pub network: Vec<String>,
    pub upload: Vec<String>,
    pub download: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_plugin: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirGrant {
    pub host: String,
    pub guest: String,
    /// `read` or `write`.
    pub access: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: Metadata,
    pub byproducts: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Builder {
    pub id: String,
    #[serde(default)]
    pub version: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub invocation_id: String,
    pub started_on: String,
    pub finished_on: String,
}

/// How the run ended: the annotations of the `gantry:outcome` byproduct.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// `success`, `failure` or `cancelled`; `unfinished` when the journal
    /// has no end (the runner stopped before it).
    pub status: String,
    pub steps: Vec<StepOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepOutcome {
    pub job: String,
    pub step: String,
    /// `success`, `failure`, `cancelled`, or `started` for a step that
    /// never finished.
    pub status: String,
}

/// The compensation the run took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rollback {
    pub reason: String,
    /// `success`, `failure`, or `interrupted` (finished later by `gantry
    /// resume`, which this record does not cover).
    pub status: String,
    /// Each hook that ran, in the order it ran.
    pub hooks: Vec<HookOutcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookOutcome {
    pub job: String,
    pub step: String,
    /// `success`, `failure`, or `started` when it never finished.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a statement is built from.
pub struct RunRecord<'a> {
    pub plan: &'a Plan,
    /// The verified sha256 of each plugin alias.
    pub hashes: &'a BTreeMap<String, String>,
    /// `--job`, when the run was limited to one job and its needs.
    pub job: Option<&'a str>,
    pub state_dir: &'a Path,
    pub run_id: &'a str,
}

impl Statement {
    /// The statement for a finished run.
    pub fn of_run(record: &RunRecord<'_>) -> Result<Statement, String> {
        let plan = record.plan;
        let journal_path =
            crate::runs::run_dir(record.state_dir, record.run_id).join(journal::FILE_NAME);
        let journal_bytes = std::fs::read(&journal_path).map_err(|e| {
            format!(
                "cannot read the run's journal `{}`: {e}",
                journal_path.display()
            )
        })?;
        let records = journal::read(&journal_path).map_err(|e| crate::hint::one_line(&e))?;
        let index = ArtifactIndex::load(record.state_dir, record.run_id)
            .map_err(|e| format!("cannot read the run's artifact index: {e}"))?;

        // The journal is always a subject: the record of every transition
        // the run made, chained line to line.
        let mut subject = vec![ResourceDescriptor {
            name: Some(format!("runs/{}/{}", record.run_id, journal::FILE_NAME)),
            digest: sha256_of(sha256_hex(&journal_bytes)),
            annotations: Some(serde_json::json!({ "gantry:kind": "journal" })),
            ..Default::default()
        }];
        for upload in index.latest_each() {
            subject.push(ResourceDescriptor {
                name: Some(format!("artifact:{}", upload.name)),
                // An artifact is a folder: its digest is the sha256 of its
                // canonical listing (every file's path, mode and sha256).
                digest: sha256_of(upload.tree.digest.clone()),
                annotations: Some(serde_json::json!({
                    "gantry:kind": "artifact-tree",
                    "job": upload.job,
                    "step": upload.step,
                    "size": upload.tree.size,
                })),
                ..Default::default()
            });
        }

        let resolved_dependencies = plan
            .plugins
            .values()
            .filter_map(|plugin| {
                let sha256 = record.hashes.get(&plugin.alias)?;
                Some(ResourceDescriptor {
                    name: Some(plugin.alias.clone()),
                    uri: Some(plugin.source.clone()),
                    digest: sha256_of(sha256.clone()),
                    annotations: None,
                })
            })
            .collect();

        let steps = plan
            .jobs
            .iter()
            .flat_map(|job| job.steps.iter().map(move |step| (job, step)))
            .map(|(job, step)| StepGrants {
                job: job.id.clone(),
                step: step.id.clone().unwrap_or_else(|| step.display_name.clone()),
                plugin: step.plugin.clone(),
                plugin_sha256: record.hashes.get(&step.plugin).cloned().unwrap_or_default(),
                workspace: step.grants.workspace.as_str().into(),
                dirs: step
                    .grants
                    .dirs
                    .iter()
                    .map(|dir| DirGrant {
                        host: shown_path(&plan.root, &dir.host),
                        guest: dir.guest.clone(),
                        access: if dir.writable { "write" } else { "read" }.into(),
                    })
                    .collect(),
                env: step.grants.host_env.clone(),
                network: step
                    .grants
                    .network
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                upload: step.artifacts.upload.clone(),
                download: step.artifacts.download.clone(),
                rollback_plugin: step.rollback.as_ref().map(|hook| hook.plugin.clone()),
            })
            .collect();

        let (outcome, started_on, finished_on) = outcome_of(&records);
        let manifest_name = plan
            .manifest_path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject,
            predicate_type: PREDICATE_TYPE.into(),
            predicate: Provenance {
                build_definition: BuildDefinition {
                    build_type: BUILD_TYPE.into(),
                    external_parameters: ExternalParameters {
                        pipeline: plan.name.clone(),
                        manifest: ManifestRef {
                            path: manifest_name,
                            sha256: plan.manifest_sha256.clone(),
                        },
                        job: record.job.map(str::to_owned),
                    },
                    internal_parameters: InternalParameters { steps },
                    resolved_dependencies,
                },
                run_details: RunDetails {
                    builder: Builder {
                        id: BUILDER_ID.into(),
                        version: BTreeMap::from([(
                            "gantry".to_string(),
                            env!("CARGO_PKG_VERSION").to_string(),
                        )]),
                    },
                    metadata: Metadata {
                        invocation_id: record.run_id.into(),
                        started_on: rfc3339(started_on),
                        finished_on: rfc3339(finished_on),
                    },
                    byproducts: vec![ResourceDescriptor {
                        name: Some(OUTCOME_NAME.into()),
                        // A descriptor needs a uri, a digest or content.
                        uri: Some(format!("urn:gantry:run:{}:outcome", record.run_id)),
                        annotations: Some(
                            serde_json::to_value(&outcome).expect("an outcome serializes"),
                        ),
                        ..Default::default()
                    }],
                },
            },
        })
    }

    /// The statement's JSON, as written and signed.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a statement serializes");
        json.push('\n');
        json
    }

    /// Reads a statement and checks its shape: the in-toto and SLSA types,
    /// subjects with sha256 digests, and gantry's outcome. Returns what is
    /// wrong otherwise.
    pub fn parse(payload: &[u8]) -> Result<Statement, String> {
        let statement: Statement = serde_json::from_slice(payload)
            .map_err(|e| format!("not an in-toto statement of a gantry run: {e}"))?;
        if statement.statement_type != STATEMENT_TYPE {
            return Err(format!(
                "`_type` is `{}`, not `{STATEMENT_TYPE}`",
                statement.statement_type
            ));
        }
        if statement.predicate_type != PREDICATE_TYPE {
            return Err(format!(
                "`predicateType` is `{}`, not `{PREDICATE_TYPE}`",
                statement.predicate_type
            ));
        }
        if statement.subject.is_empty() {
            return Err("the statement has no subject".into());
        }
        let digests = statement
            .subject
            .iter()
            .chain(&statement.predicate.build_definition.resolved_dependencies);
        for descriptor in digests {
            let name = descriptor.name.as_deref().unwrap_or("(unnamed)");
            match descriptor.digest.get("sha256") {
                Some(hex) if crate::plan::is_sha256_hex(hex) => {}
                Some(hex) => return Err(format!("`{name}` has a malformed sha256 `{hex}`")),
                None => return Err(format!("`{name}` has no sha256 digest")),
            }
        }
        statement.outcome()?;
        Ok(statement)
    }

    /// The outcome byproduct.
    pub fn outcome(&self) -> Result<Outcome, String> {
        let byproduct = self
            .predicate
            .run_details
            .byproducts
            .iter()
            .find(|b| b.name.as_deref() == Some(OUTCOME_NAME))
            .ok_or_else(|| format!("no `{OUTCOME_NAME}` byproduct"))?;
        let annotations = byproduct.annotations.clone().unwrap_or_default();
        serde_json::from_value(annotations).map_err(|e| format!("a malformed outcome: {e}"))
    }
}

fn sha256_of(hex: String) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_string(), hex)])
}

/// A granted host folder, relative to the manifest's folder when under it.
fn shown_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .map(|relative| format!("./{}", relative.display()))
        .unwrap_or_else(|_| path.display().to_string())
}

fn rfc3339(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map(|time| time.to_string())
        .unwrap_or_default()
}

/// The outcome, the rollback and the run's start and end, from the journal.
fn outcome_of(records: &[journal::Record]) -> (Outcome, u64, u64) {
    let started_on = records.first().map_or(0, |r| r.at_ms);
    let finished_on = records.last().map_or(0, |r| r.at_ms);
    let mut status = "unfinished".to_string();
    let mut steps: BTreeMap<u64, StepOutcome> = BTreeMap::new();
    let mut rollback: Option<Rollback> = None;
    let mut hook_index: BTreeMap<u64, usize> = BTreeMap::new();
    for record in records {
        match &record.entry {
            Entry::StepStarted { seq, job, step, .. } => {
                steps.insert(
                    *seq,
                    StepOutcome {
                        job: job.clone(),
                        step: step.clone(),
                        status: "started".into(),
                    },
                );
            }
            Entry::StepFinished {
                seq, status: done, ..
            } => {
                if let Some(step) = steps.get_mut(seq) {
                    step.status = done.clone();
                }
            }
            Entry::RunFinished { status: done } => status = done.clone(),
            Entry::RollbackBegun { reason } => {
                rollback = Some(Rollback {
                    reason: reason.clone(),
                    status: "interrupted".into(),
                    hooks: Vec::new(),
                });
            }
            Entry::RollbackStarted { seq } => {
                if let Some(rollback) = &mut rollback {
                    let (job, step) = steps
                        .get(seq)
                        .map(|s| (s.job.clone(), s.step.clone()))
                        .unwrap_or_default();
                    hook_index.insert(*seq, rollback.hooks.len());
                    rollback.hooks.push(HookOutcome {
                        job,
                        step,
                        status: "started".into(),
                        reason: None,
                    });
                }
            }
            Entry::RollbackFinished {
                seq,
                status: done,
                reason,
            } => {
                if let (Some(rollback), Some(&index)) = (&mut rollback, hook_index.get(seq)) {
                    rollback.hooks[index].status = done.clone();
                    rollback.hooks[index].reason = reason.clone();
                }
            }
            Entry::RollbackEnded { status: done } => {
                if let Some(rollback) = &mut rollback {
                    rollback.status = done.clone();
                }
            }
            _ => {}
        }
    }
    let outcome = Outcome {
        status,
        steps: steps.into_values().collect(),
        rollback,
    };
    (outcome, started_on, finished_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at_ms: u64, entry: Entry) -> journal::Record {
        journal::Record {
            prev: String::new(),
            at_ms,
            entry,
        }
    }

    fn started(seq: u64, step: &str) -> Entry {
        Entry::StepStarted {
            seq,
            job: "deploy".into(),
            step: step.into(),
            hook: None,
        }
    }

    fn finished(seq: u64, status: &str) -> Entry {
        Entry::StepFinished {
            seq,
            status: status.into(),
            outputs: BTreeMap::new(),
            state: Vec::new(),
        }
    }

    /// A runner killed during its rollback leaves a journal without an
    /// end: the record says the rollback was interrupted and which hook
    /// never finished, not that it succeeded.
    #[test]
    fn an_interrupted_rollback_is_recorded_as_such() {
        let records = [
            record(1_000, started(0, "upload")),
            record(1_100, finished(0, "success")),
            record(1_200, started(1, "switch")),
            record(1_300, finished(1, "failure")),
            record(
                1_400,
                Entry::RollbackBegun {
                    reason: "step `switch` failed".into(),
                },
            ),
            record(1_500, Entry::RollbackStarted { seq: 1 }),
            record(
                1_600,
                Entry::RollbackFinished {
                    seq: 1,
                    status: "failure".into(),
                    reason: Some("exit status 2".into()),
                },
            ),
            record(1_700, Entry::RollbackStarted { seq: 0 }),
        ];
        let (outcome, started_on, finished_on) = outcome_of(&records);
        assert_eq!((started_on, finished_on), (1_000, 1_700));
        assert_eq!(outcome.status, "unfinished");
        assert_eq!(outcome.steps[1].status, "failure");
        let rollback = outcome.rollback.expect("a rollback");
        assert_eq!(rollback.status, "interrupted");
        assert_eq!(rollback.reason, "step `switch` failed");
        let hooks: Vec<(&str, &str)> = rollback
            .hooks
            .iter()
            .map(|h| (h.step.as_str(), h.status.as_str()))
            .collect();
        assert_eq!(hooks, [("switch", "failure"), ("upload", "started")]);
        assert_eq!(rollback.hooks[0].reason.as_deref(), Some("exit status 2"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
