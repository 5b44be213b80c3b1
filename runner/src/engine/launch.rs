//! Running a locked pipeline on this machine: its plugins admitted into
//! the sandbox, what other machines handed on checked and put in place,
//! the engine run with the reporters watching, and, for one job of an
//! exported pipeline, its hand-off bundle written for the machines after.
//!
//! The caller has loaded the plan (see [`crate::load`]), holds the state
//! folder's lock, and owns the runtime and the cancellation tokens (the
//! command line turns signals into them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Imported, RunOptions, RunOutcome};
use crate::artifacts::Store;
use crate::handoff::{self, Bundle, BundleError, Handoff};
use crate::load::Locked;
use crate::load::admit::{self, AdmitError, SandboxSetup};
use crate::plan::Plan;
use crate::report::{self, ColorChoice, Format, ReportOptions};

/// What running a locked pipeline needs.
pub struct Launch<'a> {
    pub locked: Locked,
    pub setup: SandboxSetup,
    /// The engine's options; the plugin hashes and what was imported are
    /// filled in here.
    pub options: RunOptions,
    /// For one job of an exported pipeline: what its needs handed on, and
    /// where its own bundle goes.
    pub handoff: Option<HandOn<'a>>,
    pub report: ReportSettings,
    pub runtime: &'a tokio::runtime::Runtime,
}

/// One job of a pipeline an outside engine runs, one machine each.
pub struct HandOn<'a> {
    /// The bundles of the jobs it needs, read, and assembled into results.
    pub bundles: Vec<Bundle>,
    pub assembled: Handoff,
    /// The matrix combination this machine runs.
    pub instance: Option<usize>,
    /// Where to write this job's bundle when it has ended.
    pub export: Option<&'a Path>,
}

/// How the person or CI system watching is told.
pub struct ReportSettings {
    pub format: Format,
    pub color: ColorChoice,
    pub verbose: bool,
    pub junit: Option<PathBuf>,
}

/// A pipeline that ran, with what its caller may report beyond the
/// verdict.
pub struct Launched {
    pub plan: Arc<Plan>,
    /// The verified sha256 of each plugin alias.
    pub hashes: BTreeMap<String, String>,
    pub outcome: RunOutcome,
    /// Why the JUnit report could not be written, if it could not.
    pub junit_error: Option<String>,
    /// The bundle written for the machines after, or why it could not be:
    /// without it, this machine's job failed.
    pub export: Option<Result<PathBuf, BundleError>>,
}

/// Why a pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Admit(#[from] AdmitError),
    /// A bundle is not this pipeline's, or its artifacts cannot be stored.
    #[error("{0}")]
    Handoff(String),
}

/// Admits the plugins, runs the pipeline, and writes its bundle if asked.
pub fn launch(launch: Launch<'_>) -> Result<Launched, LaunchError> {
    let Launch {
        locked,
        setup,
        mut options,
        handoff,
        report,
        runtime,
    } = launch;
    let steps = setup.steps;
    let plan = locked.plan;
    let admitted = admit::admit(&locked.plugins, &plan.root, setup)?;
    let digest = handoff::plan_digest(&plan, &admitted.hashes);
    if let Some(hand_on) = &handoff {
        for bundle in &hand_on.bundles {
            bundle
                .check_plan(&digest, &plan.name)
                .map_err(|e| LaunchError::Handoff(e.to_string()))?;
        }
        options.imported = Some(Imported {
            needs: hand_on.assembled.needs.clone(),
            uploads: hand_on.assembled.uploads.clone(),
            instance: hand_on.instance,
        });
        let store = Store::open(&options.state_dir).and_then(|store| {
            hand_on
                .assembled
                .fill_store(&store)
                .map_err(std::io::Error::other)
        });
        store.map_err(|e| {
            LaunchError::Handoff(format!(
                "cannot put the imported artifacts in the store: {e}"
            ))
        })?;
    }
    let hashes = admitted.hashes.clone();
    options.plugin_hashes = admitted.hashes;
    let state_dir = options.state_dir.clone();
    let label_jobs = plan.jobs.iter().map(|j| j.instance_count()).sum::<usize>() > 1;
    let reporters = report::build(&ReportOptions {
        format: report.format,
        color: report.color,
        verbose: report.verbose,
        label_jobs,
        junit: report.junit,
        secrets: &options.secrets,
        live_steps: Some(steps),
        manifest_dir: Some(&plan.root),
    });
    let plan = Arc::new(plan);
    let outcome = runtime.block_on(super::run(
        plan.clone(),
        admitted.sandbox,
        Arc::new(admitted.plugins),
        reporters.reporter.clone(),
        options,
    ));
    let junit_error = reporters.junit.as_ref().and_then(|junit| junit.error());
    let export = handoff
        .as_ref()
        .and_then(|hand_on| Some((hand_on.export?, hand_on.instance)))
        .and_then(|(dir, instance)| {
            let (job, result) = outcome.jobs.first()?;
            let job_plan = &plan.jobs[0];
            let name = job_plan.instance_name(instance.map(|i| &job_plan.matrix[i]));
            let written = handoff::Export {
                plan_digest: &digest,
                pipeline: &plan.name,
                job,
                instance,
                name: &name,
                run_id: &outcome.run_id,
                result,
                state_dir: &state_dir,
            }
            .write(dir);
            Some(written.map(|()| dir.to_owned()))
        });
    Ok(Launched {
        plan,
        hashes,
        outcome,
        junit_error,
        export,
    })
}
