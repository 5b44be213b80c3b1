//! `gantry rollback --import DIR…`: the rollback job of an exported
//! pipeline, compensating every machine's job from the journals their
//! hand-off bundles carry.
//!
//! Each imported journal is verified on its own (its hash chain from its
//! run id, its sha256 in its bundle, the bundle's plan) and left as it is:
//! this machine cannot append to another machine's chain, and must not
//! forge one. Instead the rollback job starts a run of its own whose
//! journal records which runs it took over (`imported_run`) and, for each
//! hook those journals left pending, an `imported_step` under a new
//! number, then the usual rollback transitions. A hook a machine already
//! ran (its job failed and rolled itself back) is finished in that
//! machine's journal, so it is not imported and never runs twice; one a
//! machine started and never finished is reported, not run.
//!
//! Order: machines' clocks are not comparable, so "reverse order of start"
//! across machines comes from the job graph: jobs in reverse plan order
//! (every job after the jobs it needs), and within a job its journal's
//! order, newest step first. Jobs that ran side by side are compensated
//! one after the other in some fixed order among themselves.

use std::path::{Path, PathBuf};

use super::Compensation;
use super::later::{CompensateError, HookEnvironment, HookRun, record, run_hooks};
use crate::console::{errln, outln};
use crate::engine::run_id;
use crate::handoff::{self, Bundle};
use crate::journal::{self, Entry, HookSpec, Journal};
use crate::load::admit::{self, SandboxSetup};
use crate::load::{Draft, LoadError};
use crate::plugin::LockFile;
use crate::runs;
use crate::state::Protected;

/// What the rollback job of an exported pipeline is given.
pub struct ImportRequest<'a> {
    /// The hand-off bundles, or folders of them, the engine brought.
    pub imports: &'a [PathBuf],
    /// The pipeline's manifest, loaded: it must be the one the jobs ran.
    pub draft: Draft,
    pub lock: &'a LockFile,
    /// The state folder, whose lock the caller holds, and what no hook may
    /// write.
    pub state_dir: &'a Path,
    pub protected: Protected,
    pub hooks: HookEnvironment<'a>,
}

/// How the rollback of imported jobs ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSettled {
    /// No job handed a bundle on: nothing ran anywhere to roll back.
    NothingImported,
    /// Every pending hook ran and succeeded.
    RolledBack,
    /// Some hooks failed or were found interrupted.
    HooksFailed,
}

/// Why the rollback of imported jobs did not run.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The manifest's plugins do not verify, or their hooks' copies cannot
    /// be kept.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The bundles cannot be read, or are not this pipeline's.
    #[error("{0}")]
    Bundles(String),
    /// The rollback's own journal cannot be made or written, or its hooks
    /// cannot be admitted.
    #[error(transparent)]
    Compensate(#[from] CompensateError),
}

/// Compensates every job the imported bundles ran, in a run of its own.
pub fn compensate_imported(request: ImportRequest<'_>) -> Result<ImportSettled, ImportError> {
    let plan = request.draft.plan();
    // A job that failed before gantry wrote its bundle (its pins did not
    // verify, say) ran nothing, so an engine that brings no folder at all
    // leaves nothing to compensate; a folder that is there must hold
    // bundles.
    let present: Vec<PathBuf> = request
        .imports
        .iter()
        .filter(|p| p.exists())
        .cloned()
        .collect();
    for missing in request.imports.iter().filter(|p| !p.exists()) {
        errln!(
            "gantry: `{}` does not exist: no job handed a bundle on there",
            missing.display()
        );
    }
    if present.is_empty() {
        outln!("gantry: no bundle was imported, so no job ran anything to roll back");
        return Ok(ImportSettled::NothingImported);
    }
    let mut bundles =
        handoff::read_all(&present).map_err(|e| ImportError::Bundles(e.to_string()))?;
    // Plan order, then matrix order: the order the jobs could start in.
    let position = |bundle: &Bundle| {
        let job = plan.jobs.iter().position(|j| j.id == bundle.info.job);
        (job, bundle.info.instance)
    };
    if let Some(stranger) = bundles.iter().find(|b| position(b).0.is_none()) {
        return Err(ImportError::Bundles(format!(
            "bundle `{}`: job `{}` is not in this pipeline",
            stranger.dir.display(),
            stranger.info.job
        )));
    }
    bundles.sort_by_key(position);
    let taken_over: Vec<Vec<Imported>> = bundles
        .iter()
        .map(|bundle| left_to_do(bundle, &plan.root))
        .collect();
    let hooks: usize = taken_over.iter().map(Vec::len).sum();
    // Kept by sha256, so `gantry resume` here finishes a rollback that was
    // cut short without the checkout.
    let locked = request.draft.lock(request.lock, Some(request.state_dir))?;
    let plan = &locked.plan;
    let setup = SandboxSetup {
        steps: hooks.max(1),
        concurrent_steps: 1,
        protected: request.protected,
        memory_budget: None,
        ca_file: plan.ca_file.clone(),
        no_cache: request.hooks.no_cache,
    };
    let admitted =
        admit::admit(&locked.plugins, &plan.root, setup).map_err(CompensateError::from)?;
    let digest = handoff::plan_digest(plan, &admitted.hashes);
    for bundle in &bundles {
        bundle
            .check_plan(&digest, &plan.name)
            .map_err(|e| ImportError::Bundles(e.to_string()))?;
    }

    // The rollback job's own run and journal.
    let run_id = run_id::new_run_id();
    let run_dir = runs::run_dir(request.state_dir, &run_id);
    let journal = Journal::create(&run_dir, true).map_err(|source| CompensateError::Journal {
        path: run_dir.clone(),
        source,
        hint: None,
    })?;
    record(
        &journal,
        Entry::RunStarted {
            run_id: run_id.clone(),
            pipeline: plan.name.clone(),
            manifest: plan.manifest_path.clone(),
            root: Some(plan.root.clone()),
            ca_file: plan.ca_file.clone(),
            inputs: Default::default(),
            vars: Default::default(),
        },
    )?;
    for bundle in &bundles {
        record(
            &journal,
            Entry::ImportedRun {
                run_id: bundle.info.run_id.clone(),
                job: bundle.info.name.clone(),
                journal_sha256: bundle.info.journal_sha256.clone(),
            },
        )?;
    }
    for (seq, imported) in (0u64..).zip(taken_over.into_iter().flatten()) {
        record(
            &journal,
            Entry::ImportedStep {
                seq,
                run_id: imported.run_id,
                origin_seq: imported.origin_seq,
                hook: Box::new(imported.hook),
                outcome: imported.outcome,
                state: imported.state,
                interrupted: imported.interrupted,
            },
        )?;
    }
    record(
        &journal,
        Entry::RunFinished {
            status: "failure".into(),
        },
    )?;
    // What to do is read back from the journal just written, as `gantry
    // resume` would read it: the record and the work never differ.
    let records = journal::read(journal.path()).map_err(|error| CompensateError::Journal {
        path: journal.path().to_owned(),
        source: std::io::Error::other(crate::hint::one_line(&error)),
        hint: None,
    })?;
    let compensation = Compensation::from_journal(&records);
    let announce = format!(
        "gantry: rolling back {} as run `{run_id}`: {} to run",
        crate::display::plural(bundles.len(), "imported job run"),
        crate::display::plural(compensation.pending.len(), "hook")
    );
    let outcome = run_hooks(
        &HookRun {
            admitted: &admitted,
            journal: &journal,
            run_id: &run_id,
            workspace: &plan.root,
            environment: &request.hooks,
        },
        &compensation,
        &announce,
        "the pipeline failed; compensating the jobs every machine ran",
        "`gantry resume {run_id}` on this machine finishes it",
    )?;
    if !outcome.succeeded() {
        return Ok(ImportSettled::HooksFailed);
    }
    outln!("gantry: the pipeline's jobs are rolled back (run `{run_id}`)");
    Ok(ImportSettled::RolledBack)
}

/// One hook another machine left to do, in the order its step started.
struct Imported {
    run_id: String,
    origin_seq: u64,
    hook: HookSpec,
    outcome: String,
    state: Vec<(String, String)>,
    interrupted: bool,
}

/// The hooks a bundle's journal leaves to do, oldest step first: those
/// never started, and those started and never finished (to report).
/// Folders the machine granted under its checkout are granted under this
/// one's: the same project, in another place.
fn left_to_do(bundle: &Bundle, root: &Path) -> Vec<Imported> {
    let records = &bundle.records;
    let origin_root = records.iter().find_map(|r| match &r.entry {
        Entry::RunStarted { root, .. } => root.clone(),
        _ => None,
    });
    let compensation = Compensation::from_journal(records);
    let rebase = |mut hook: HookSpec| {
        if let Some(origin) = &origin_root {
            for dir in &mut hook.dirs {
                if let Ok(relative) = dir.host.strip_prefix(origin) {
                    dir.host = root.join(relative);
                }
            }
        }
        hook
    };
    let seq_of = |spec: &HookSpec| {
        records.iter().find_map(|r| match &r.entry {
            Entry::StepStarted {
                seq,
                hook: Some(hook),
                ..
            } if **hook == *spec => Some(*seq),
            _ => None,
        })
    };
    let mut out: Vec<Imported> = compensation
        .interrupted
        .iter()
        .map(|spec| Imported {
            run_id: bundle.info.run_id.clone(),
            origin_seq: seq_of(spec).unwrap_or_default(),
            hook: rebase(spec.clone()),
            outcome: "failure".into(),
            state: Vec::new(),
            interrupted: true,
        })
        .collect();
    // Pending hooks come newest first; the rollback journal lists steps in
    // the order they started, as a run's does.
    out.extend(compensation.pending.into_iter().rev().map(|hook| Imported {
        run_id: bundle.info.run_id.clone(),
        origin_seq: hook.seq,
        hook: rebase(hook.spec),
        outcome: hook.outcome.into(),
        state: hook.state,
        interrupted: false,
    }));
    out
}
