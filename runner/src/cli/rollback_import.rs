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

use super::console::{errln, outln};
use std::path::{Path, PathBuf};

use super::common::{SandboxSetup, admit_plugins, load_plan_and_lock};
use super::compensate::{CompensateArgs, HookRun, record, run_hooks};
use super::print_error;
use crate::engine::rollback::Compensation;
use crate::engine::run_id;
use crate::exit::Exit;
use crate::handoff::{self, Bundle};
use crate::journal::{self, Entry, HookSpec, Journal};
use crate::runs;

/// One hook another machine left to do, in the order its step started.
struct Imported {
    run_id: String,
    origin_seq: u64,
    hook: HookSpec,
    outcome: String,
    state: Vec<(String, String)>,
    interrupted: bool,
}

pub(super) fn compensate_imported(
    imports: &[PathBuf],
    args: &CompensateArgs,
) -> Result<Exit, Exit> {
    let invalid = |message: String| {
        print_error(message);
        Exit::Invalid
    };
    let (mut plan, lock) = load_plan_and_lock(args.manifest.as_deref())?;
    let secrets = args.secrets.load()?;
    // A job that failed before gantry wrote its bundle (its pins did not
    // verify, say) ran nothing, so an engine that brings no folder at all
    // leaves nothing to compensate; a folder that is there must hold
    // bundles.
    let present: Vec<PathBuf> = imports.iter().filter(|p| p.exists()).cloned().collect();
    for missing in imports.iter().filter(|p| !p.exists()) {
        errln!(
            "gantry: `{}` does not exist: no job handed a bundle on there",
            missing.display()
        );
    }
    if present.is_empty() {
        outln!("gantry: no bundle was imported, so no job ran anything to roll back");
        return Ok(Exit::Success);
    }
    let mut bundles = handoff::read_all(&present).map_err(|e| invalid(e.to_string()))?;
    // Plan order, then matrix order: the order the jobs could start in.
    let position = |bundle: &Bundle| {
        let job = plan.jobs.iter().position(|j| j.id == bundle.info.job);
        (job, bundle.info.instance)
    };
    if let Some(stranger) = bundles.iter().find(|b| position(b).0.is_none()) {
        return Err(invalid(format!(
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
    let state_dir = args.state.folder(&plan)?;
    let protected = args.state.protect(&plan, &state_dir)?;
    let setup = SandboxSetup {
        steps: hooks.max(1),
        concurrent_steps: 1,
        protected,
        memory_budget: None,
        // Kept by sha256, so `gantry resume` here finishes a rollback
        // that was cut short without the checkout.
        keep_hooks_in: Some(state_dir.clone()),
        ca_file: plan.ca_file.clone(),
    };
    let admitted = admit_plugins(&mut plan, &lock, args.no_cache, setup)?;
    let digest = handoff::plan_digest(&plan, &admitted.hashes);
    for bundle in &bundles {
        bundle
            .check_plan(&digest, &plan.name)
            .map_err(|e| invalid(e.to_string()))?;
    }
    let _lock = args.state.lock(&state_dir)?;

    // The rollback job's own run and journal.
    let run_id = run_id::new_run_id();
    let run_dir = runs::run_dir(&state_dir, &run_id);
    let journal = Journal::create(&run_dir, true).map_err(|e| {
        print_error(format!(
            "cannot create the journal of the rollback in `{}`: {e}",
            run_dir.display()
        ));
        Exit::RollbackFailed
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
    let records = journal::read(journal.path()).map_err(|e| {
        print_error(e);
        Exit::RollbackFailed
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
            secrets: &secrets,
            run_id: &run_id,
            workspace: &plan.root,
            color: args.color,
        },
        &compensation,
        &announce,
        "the pipeline failed; compensating the jobs every machine ran",
        "`gantry resume {run_id}` on this machine finishes it",
    )?;
    if !outcome.succeeded() {
        errln!(
            "gantry: {} of the rollback hooks failed: the target may be inconsistent",
            outcome.failed
        );
        return Ok(Exit::RollbackFailed);
    }
    outln!("gantry: the pipeline's jobs are rolled back (run `{run_id}`)");
    Ok(Exit::Success)
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
