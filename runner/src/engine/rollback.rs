//! Saga compensation: running the rollback hooks of what a run already did,
//! newest first, from its journal.
//!
//! The same code serves a run that just failed, `gantry rollback` on a
//! finished run and `gantry resume` after the runner died: each reads the
//! journal, finds the steps that started and declared a hook whose hook
//! never started, and runs those hooks in reverse order of start. A hook is
//! journaled before it starts, so one a crash cut short is never run a
//! second time: it is reported as interrupted instead, since nobody can
//! know how far it got.
//!
//! [`later`] compensates a run after its process has gone (`gantry
//! rollback`, `gantry resume`), and [`imported`] the jobs an exported
//! pipeline ran on other machines (`gantry rollback --import`).

pub mod imported;
pub mod later;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::log::StepLog;
use super::summary::MAX_RUN_SUMMARY;
use super::{AdmittedPlugins, mask_step_with, mask_with, run_off_executor};
use crate::abi::Masks;
use crate::expr::{Contexts, Template, Value};
use crate::journal::{Entry, HookSpec, HookValue, Journal, Record};
use crate::network::NetworkGrant;
use crate::plan::DirMount;
use crate::report::{Event, Reporter, StepRef};
use crate::sandbox::step_files::read_state_file;
use crate::sandbox::{Mount, Sandbox, StepInvocation};
use crate::secrets::Secrets;

/// A hook that has yet to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingHook {
    pub seq: u64,
    pub spec: HookSpec,
    /// `success` or `failure`: how the compensated step ended (a step the
    /// runner never saw finish counts as failed).
    pub outcome: &'static str,
    /// What the step saved in `GANTRY_STATE`.
    pub state: Vec<(String, String)>,
}

/// What a journal says is left to compensate.
#[derive(Debug, Default, PartialEq)]
pub struct Compensation {
    /// Hooks never started, newest step first.
    pub pending: Vec<PendingHook>,
    /// Hooks that started but never finished (the runner died or was
    /// stopped); they are not run again.
    pub interrupted: Vec<HookSpec>,
}

impl Compensation {
    /// Reads what is left to do from a run's journal.
    pub fn from_journal(records: &[Record]) -> Compensation {
        let mut started: Vec<(u64, &HookSpec)> = Vec::new();
        type Finished<'r> = (&'r str, &'r [(String, String)]);
        let mut finished: BTreeMap<u64, Finished> = BTreeMap::new();
        let mut hook_started: BTreeSet<u64> = BTreeSet::new();
        let mut hook_finished: BTreeSet<u64> = BTreeSet::new();
        let mut state_files: BTreeMap<u64, &Path> = BTreeMap::new();
        let mut imported_interrupted: BTreeSet<u64> = BTreeSet::new();
        for record in records {
            match &record.entry {
                // Another machine's step: started and finished there, or
                // its hook cut short there (then never run here).
                Entry::ImportedStep {
                    seq,
                    hook,
                    outcome,
                    state,
                    interrupted,
                    ..
                } => {
                    started.push((*seq, &**hook));
                    finished.insert(*seq, (outcome.as_str(), state.as_slice()));
                    if *interrupted {
                        imported_interrupted.insert(*seq);
                    }
                }
                Entry::StepStateFile { seq, path } => {
                    state_files.insert(*seq, path);
                }
                Entry::StepStarted {
                    seq,
                    hook: Some(hook),
                    ..
                } => started.push((*seq, &**hook)),
                Entry::StepFinished {
                    seq, status, state, ..
                } => {
                    finished.insert(*seq, (status.as_str(), state.as_slice()));
                }
                Entry::RollbackStarted { seq } => {
                    hook_started.insert(*seq);
                }
                Entry::RollbackFinished { seq, .. } => {
                    hook_finished.insert(*seq);
                }
                Entry::RollbackRerun { seq } => {
                    hook_started.remove(seq);
                    hook_finished.remove(seq);
                }
                _ => {}
            }
        }
        let mut compensation = Compensation::default();
        for (seq, spec) in started.into_iter().rev() {
            if imported_interrupted.contains(&seq) {
                compensation.interrupted.push(spec.clone());
                continue;
            }
            if hook_started.contains(&seq) {
                if !hook_finished.contains(&seq) {
                    compensation.interrupted.push(spec.clone());
                }
                continue;
            }
            let (outcome, state) = match finished.get(&seq) {
                Some(&(status, state)) => (status, state.to_vec()),
                // The runner died during the step: what it saved so far is
                // still in its folder, unless the machine restarted since.
                None => (
                    "failure",
                    state_files
                        .get(&seq)
                        .and_then(|path| read_state_file(path).ok())
                        .unwrap_or_default(),
                ),
            };
            compensation.pending.push(PendingHook {
                seq,
                spec: spec.clone(),
                outcome: if outcome == "success" {
                    "success"
                } else {
                    "failure"
                },
                state,
            });
        }
        compensation
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.interrupted.is_empty()
    }
}

/// Everything hooks run with.
pub struct HookRunner<'a> {
    pub sandbox: &'a Sandbox,
    pub plugins: &'a AdmittedPlugins,
    /// The sha256 each plugin alias has now, verified.
    pub hashes: &'a BTreeMap<String, String>,
    pub journal: &'a Journal,
    pub reporter: Arc<dyn Reporter>,
    pub secrets: &'a Secrets,
    /// The run's masks; `reporter` must mask with the same.
    pub masks: Arc<Mutex<Masks>>,
    pub run_id: &'a str,
    /// The manifest's folder, mounted at `/workspace` as the step had it.
    pub workspace: &'a Path,
    pub output_limit: usize,
    /// Stops the compensation: the running hook ends at once and the rest
    /// are left for `gantry resume`.
    pub stop: CancellationToken,
}

/// How a compensation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// Hooks that ran, successful or not.
    pub ran: usize,
    /// Hooks that failed, plus hooks found interrupted.
    pub failed: usize,
    /// Whether it was stopped before every hook had run.
    pub stopped: bool,
    /// What the hooks wrote to `GANTRY_STEP_SUMMARY`, in the order they
    /// ran, secrets masked: it belongs in the run's `summary.md`.
    pub summaries: String,
}

impl RollbackOutcome {
    pub fn succeeded(&self) -> bool {
        self.failed == 0 && !self.stopped
    }
}

impl HookRunner<'_> {
    /// Runs every pending hook in order, journaling each transition before
    /// it happens. Fails only when the journal cannot be written, as going
    /// on without it could run a hook twice.
    pub async fn compensate(
        &self,
        compensation: &Compensation,
        reason: &str,
    ) -> std::io::Result<RollbackOutcome> {
        let mut outcome = RollbackOutcome {
            ran: 0,
            failed: 0,
            stopped: false,
            summaries: String::new(),
        };
        self.journal.record(Entry::RollbackBegun {
            reason: reason.to_owned(),
        })?;
        for spec in &compensation.interrupted {
            outcome.failed += 1;
            self.reporter.report(Event::StepNote {
                job: &spec.job,
                text: &format!(
                    "the rollback hook of `{}` was interrupted earlier; it is not run twice, so check what it compensates by hand",
                    spec.step_name
                ),
            });
        }
        for hook in &compensation.pending {
            if self.stop.is_cancelled() {
                outcome.stopped = true;
                break;
            }
            self.journal
                .record(Entry::RollbackStarted { seq: hook.seq })?;
            let step = StepRef {
                name: &hook.spec.step_name,
                id: hook.spec.step_id.as_deref(),
                number: hook.spec.step_number,
            };
            self.reporter.report(Event::RollbackStarted {
                job: &hook.spec.job,
                step,
                plugin: &hook.spec.plugin,
                outcome: hook.outcome,
            });
            let started = Instant::now();
            let (result, summary) = self.run_hook(hook).await;
            // Bounded like the run's summary, which they join.
            if !summary.is_empty() && (outcome.summaries.len() as u64) < MAX_RUN_SUMMARY {
                outcome
                    .summaries
                    .push_str(&mask_step_with(&self.masks, &summary));
                if !summary.ends_with('\n') {
                    outcome.summaries.push('\n');
                }
            }
            let masked = result.as_ref().err().map(|reason| self.mask(reason));
            if self.stop.is_cancelled() {
                // Stopped halfway: leave it started, never finished, so no
                // later resume runs it again.
                outcome.stopped = true;
                self.reporter.report(Event::RollbackFinished {
                    job: &hook.spec.job,
                    step,
                    outcome: Err("stopped before it finished"),
                    duration: started.elapsed(),
                });
                break;
            }
            outcome.ran += 1;
            if result.is_err() {
                outcome.failed += 1;
            }
            self.journal.record(Entry::RollbackFinished {
                seq: hook.seq,
                status: if result.is_ok() { "success" } else { "failure" }.into(),
                reason: masked.clone(),
            })?;
            self.reporter.report(Event::RollbackFinished {
                job: &hook.spec.job,
                step,
                outcome: masked.as_deref().map_or(Ok(()), Err),
                duration: started.elapsed(),
            });
        }
        let status = if outcome.stopped {
            "interrupted"
        } else if outcome.failed > 0 {
            "failure"
        } else {
            "success"
        };
        self.journal.record(Entry::RollbackEnded {
            status: status.into(),
        })?;
        Ok(outcome)
    }

    fn mask(&self, text: &str) -> String {
        mask_with(&self.masks, text)
    }

    /// Runs one hook; returns how it ended and the summary it wrote.
    async fn run_hook(&self, hook: &PendingHook) -> (Result<(), String>, String) {
        match self.try_run_hook(hook).await {
            Ok(run) => (
                run.outcome.map_err(|failure| failure.to_string()),
                run.files.summary,
            ),
            Err(reason) => (Err(reason), String::new()),
        }
    }

    /// Runs one hook, or says why it could not be started.
    async fn try_run_hook(&self, hook: &PendingHook) -> Result<crate::sandbox::StepRun, String> {
        let spec = &hook.spec;
        let current = self.hashes.get(&spec.plugin);
        if current != Some(&spec.sha256) {
            return Err(match current {
                Some(now) => format!(
                    "plugin `{}` changed since the step ran (sha256 {} then, {now} now); its hook was not run",
                    spec.plugin, spec.sha256
                ),
                None => format!(
                    "plugin `{}` is no longer in the manifest; its hook was not run",
                    spec.plugin
                ),
            });
        }
        let module = match self.plugins.get(&spec.plugin) {
            Some(Ok(module)) => module,
            Some(Err(reason)) => return Err(reason.clone()),
            None => return Err(format!("plugin `{}` was not loaded", spec.plugin)),
        };
        let env = self.environment(hook)?;
        let dirs: Vec<DirMount> = spec
            .dirs
            .iter()
            .map(|dir| DirMount {
                host: dir.host.clone(),
                guest: dir.guest.clone(),
                writable: dir.writable,
            })
            .collect();
        let workspace = match spec.workspace.as_str() {
            "none" => None,
            access => Some(Mount {
                host: self.workspace.to_owned(),
                writable: access == "write",
            }),
        };
        // The grants as the journal recorded them, read back through the
        // same parser as the manifest's: one that no longer parses grants
        // nothing and fails the hook.
        let network = spec
            .network
            .iter()
            .map(|text| NetworkGrant::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| format!("its recorded network grant is not valid: {why}"))?;
        let log = StepLog::new(
            self.reporter.clone(),
            self.masks.clone(),
            &spec.job,
            &spec.step_name,
        );
        let invocation = StepInvocation {
            program: &spec.plugin,
            env,
            workspace,
            dirs: &dirs,
            extra_dirs: Vec::new(),
            timeout: Duration::from_millis(spec.timeout_ms),
            memory_bytes: spec.memory_bytes,
            max_files: spec.max_files,
            disk_bytes: spec.disk_bytes,
            output_limit: self.output_limit,
            sink: log.sink(),
            cancel: self.stop.clone(),
            on_state_file: None,
            network: &network,
            on_network_denied: Some(log.denial_sink()),
        };
        Ok(run_off_executor(self.sandbox, module, invocation))
    }

    /// The hook's environment: the step's, its inputs, its saved state as
    /// `STATE_*`, and the phase variables. Values that held a secret are
    /// rendered again from their templates with this command's secrets.
    fn environment(&self, hook: &PendingHook) -> Result<Vec<(String, String)>, String> {
        let spec = &hook.spec;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for name in &spec.host_env {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.clone(), value);
            }
        }
        let mut contexts = Contexts::new();
        contexts.insert(
            "secrets",
            Value::Object(
                self.secrets
                    .iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                    .collect(),
            ),
        );
        let step_env = restore(&spec.env, &contexts)?;
        contexts.insert(
            "env",
            Value::Object(
                step_env
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        env.extend(step_env);
        env.extend(restore(&spec.inputs, &contexts)?);
        for (name, value) in &hook.state {
            env.insert(format!("STATE_{name}"), value.clone());
        }
        env.insert("GANTRY_PHASE".into(), "rollback".into());
        env.insert("GANTRY_STEP_OUTCOME".into(), hook.outcome.into());
        env.insert("GANTRY_RUN_ID".into(), self.run_id.into());
        env.insert("GANTRY_ARTIFACTS".into(), "/artifacts".into());
        if spec.workspace != "none" {
            env.insert("GANTRY_WORKSPACE".into(), "/workspace".into());
        }
        Ok(env.into_iter().collect())
    }
}

/// Journaled values, those that held a secret rendered again.
fn restore(values: &[HookValue], contexts: &Contexts) -> Result<Vec<(String, String)>, String> {
    values
        .iter()
        .map(|value| {
            let Some(source) = &value.template else {
                return Ok((value.name.clone(), value.value.clone()));
            };
            let unavailable = |why: String| {
                format!(
                    "`{}` held a secret and cannot be rendered again ({why}); pass the secret with --secret",
                    value.name
                )
            };
            let template = Template::parse_with(source, super::FUNCTIONS)
                .map_err(|e| unavailable(e.message))?;
            for path in template.references() {
                if let [context, name, ..] = path.as_slice()
                    && context.eq_ignore_ascii_case("secrets")
                    && !matches!(contexts.get("secrets"), Some(Value::Object(s)) if s.contains_key(name))
                {
                    return Err(unavailable(format!("secret `{name}` is not given")));
                }
            }
            template
                .render(contexts)
                .map(|rendered| (value.name.clone(), rendered))
                .map_err(|e| unavailable(e.message))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> HookSpec {
        HookSpec::example(name)
    }

    fn record(entry: Entry) -> Record {
        Record {
            prev: String::new(),
            at_ms: 0,
            entry,
        }
    }

    fn started(seq: u64, name: &str, hook: bool) -> Record {
        record(Entry::StepStarted {
            seq,
            job: "deploy".into(),
            step: name.into(),
            hook: hook.then(|| Box::new(spec(name))),
        })
    }

    fn finished(seq: u64, status: &str) -> Record {
        record(Entry::StepFinished {
            seq,
            status: status.into(),
            outputs: BTreeMap::new(),
            state: vec![("mark".into(), format!("s{seq}"))],
        })
    }

    #[test]
    fn pending_hooks_newest_first_with_outcomes_and_state() {
        let records = vec![
            started(0, "a", true),
            finished(0, "success"),
            started(1, "b", false),
            finished(1, "success"),
            started(2, "c", true),
            finished(2, "failure"),
            started(3, "d", true),
        ];
        let compensation = Compensation::from_journal(&records);
        let order: Vec<(&str, &str)> = compensation
            .pending
            .iter()
            .map(|h| (h.spec.step_name.as_str(), h.outcome))
            .collect();
        assert_eq!(
            order,
            [("d", "failure"), ("c", "failure"), ("a", "success")]
        );
        assert_eq!(
            compensation.pending[2].state,
            [("mark".to_owned(), "s0".to_owned())]
        );
        assert!(compensation.pending[0].state.is_empty());
    }

    #[test]
    fn a_hook_never_runs_twice() {
        let records = vec![
            started(0, "a", true),
            finished(0, "success"),
            started(1, "b", true),
            finished(1, "success"),
            started(2, "c", true),
            finished(2, "failure"),
            record(Entry::RollbackBegun {
                reason: "failed".into(),
            }),
            record(Entry::RollbackStarted { seq: 2 }),
            record(Entry::RollbackFinished {
                seq: 2,
                status: "success".into(),
                reason: None,
            }),
            record(Entry::RollbackStarted { seq: 1 }),
        ];
        let compensation = Compensation::from_journal(&records);
        let pending: Vec<&str> = compensation
            .pending
            .iter()
            .map(|h| h.spec.step_name.as_str())
            .collect();
        assert_eq!(pending, ["a"]);
        assert_eq!(compensation.interrupted, [spec("b")]);
    }

    fn imported(seq: u64, name: &str, interrupted: bool) -> Record {
        record(Entry::ImportedStep {
            seq,
            run_id: "20261128T000000Z-abc123".into(),
            origin_seq: 7,
            hook: Box::new(spec(name)),
            outcome: "success".into(),
            state: vec![("mark".into(), format!("from-{name}"))],
            interrupted,
        })
    }

    #[test]
    fn imported_steps_are_pending_newest_first_and_an_interrupted_one_never_runs() {
        let records = vec![
            imported(0, "build", false),
            imported(1, "cut-short", true),
            imported(2, "deploy", false),
        ];
        let compensation = Compensation::from_journal(&records);
        let pending: Vec<(&str, &str)> = compensation
            .pending
            .iter()
            .map(|h| (h.spec.step_name.as_str(), h.state[0].1.as_str()))
            .collect();
        assert_eq!(
            pending,
            [("deploy", "from-deploy"), ("build", "from-build")]
        );
        assert_eq!(compensation.interrupted, [spec("cut-short")]);
        // Once this machine ran one, it is done here as any hook is.
        let mut done = records.clone();
        done.push(record(Entry::RollbackStarted { seq: 2 }));
        done.push(record(Entry::RollbackFinished {
            seq: 2,
            status: "success".into(),
            reason: None,
        }));
        let after = Compensation::from_journal(&done);
        let left: Vec<&str> = after
            .pending
            .iter()
            .map(|h| h.spec.step_name.as_str())
            .collect();
        assert_eq!(left, ["build"]);
    }

    #[test]
    fn a_hook_asked_to_rerun_is_pending_again() {
        let records = vec![
            started(0, "a", true),
            finished(0, "success"),
            record(Entry::RollbackBegun {
                reason: "failed".into(),
            }),
            record(Entry::RollbackStarted { seq: 0 }),
            record(Entry::RollbackRerun { seq: 0 }),
        ];
        let compensation = Compensation::from_journal(&records);
        assert_eq!(compensation.pending.len(), 1);
        assert!(compensation.interrupted.is_empty());
    }

    #[test]
    fn restoring_a_masked_value_renders_its_template_again() {
        let mut contexts = Contexts::new();
        contexts.insert(
            "secrets",
            Value::Object([("TOKEN".to_owned(), Value::String("hunter2".into()))].into()),
        );
        let values = [
            HookValue {
                name: "INPUT_TOKEN".into(),
                value: "***".into(),
                template: Some("Bearer ${{ secrets.TOKEN }}".into()),
            },
            HookValue {
                name: "INPUT_PLAIN".into(),
                value: "kept".into(),
                template: None,
            },
        ];
        assert_eq!(
            restore(&values, &contexts).unwrap(),
            [
                ("INPUT_TOKEN".to_owned(), "Bearer hunter2".to_owned()),
                ("INPUT_PLAIN".to_owned(), "kept".to_owned())
            ]
        );
        let missing = restore(&values[..1], &Contexts::new()).unwrap_err();
        assert!(
            missing.contains("pass the secret with --secret"),
            "{missing}"
        );
    }
}
