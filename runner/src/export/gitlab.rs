//! The GitLab CI form of an export (`.gitlab-ci.yml`).
//!
//! Every gantry job instance is an engine job in stage `gantry` with
//! `needs:` on the instances of its needs (artifacts included), so GitLab
//! starts it as soon as they finish; `when: always` lets it start whatever
//! they concluded, and gantry decides. A matrix job becomes one engine job
//! per combination, `ID:N`. Bundles are artifacts kept `when: always`, so
//! a failed job's journal reaches the rollback job, which sits in a later
//! stage, runs `when: on_failure`, and takes every job's artifacts through
//! `dependencies:`. Secrets are CI/CD variables, which GitLab puts in each
//! job's environment, passed to gantry by name (`--secret NAME`).

use std::fmt::Write;

use super::{
    BUNDLES_DIR, ExportInput, ROLLBACK_JOB, all_secrets, header, instances, quoted,
    rollback_command, run_command, shell_word,
};

/// The engine job name of an instance: `deploy`, or `deploy:2`.
fn job_name(job: &str, index: Option<usize>) -> String {
    match index {
        Some(index) => format!("{job}:{index}"),
        None => job.to_owned(),
    }
}

/// The pipeline as `.gitlab-ci.yml` text.
pub fn gitlab(input: &ExportInput) -> String {
    let plan = input.plan;
    let mut out = header(input, "gitlab", &all_secrets(plan));
    out.push_str("\nstages:\n  - gantry\n  - gantry-rollback\n");
    if let Some(install) = input.install {
        let _ = write!(
            out,
            "\ndefault:\n  before_script:\n    - {}\n",
            quoted(install)
        );
    }
    let verify = format!("gantry verify {}", shell_word(input.manifest));
    let mut every_job = Vec::new();
    for job in &plan.jobs {
        for instance in instances(job) {
            let name = job_name(&job.id, instance.index);
            every_job.push(name.clone());
            let _ = write!(out, "\n{}:\n  stage: gantry\n", quoted(&name));
            let needed: Vec<String> = plan
                .jobs
                .iter()
                .filter(|j| job.needs.contains(&j.id))
                .flat_map(|j| {
                    instances(j)
                        .into_iter()
                        .map(|i| job_name(&i.job.id, i.index))
                })
                .collect();
            if needed.is_empty() {
                out.push_str("  needs: []\n");
            } else {
                out.push_str("  needs:\n");
                for need in &needed {
                    let _ = writeln!(out, "    - job: {}\n      artifacts: true", quoted(need));
                }
                // Start whatever the needs concluded: gantry decides.
                out.push_str("  when: always\n");
            }
            let _ = write!(
                out,
                "  script:\n    - {}\n    - {}\n",
                quoted(&verify),
                quoted(&run_command(input, &instance, None))
            );
            let _ = write!(
                out,
                "  artifacts:\n    when: always\n    paths:\n      - {}\n",
                quoted(&format!("{BUNDLES_DIR}/{}/", instance.key()))
            );
        }
    }
    let _ = write!(
        out,
        "\n{ROLLBACK_JOB}:\n  stage: gantry-rollback\n  when: on_failure\n  dependencies:\n"
    );
    for name in &every_job {
        let _ = writeln!(out, "    - {}", quoted(name));
    }
    let _ = write!(
        out,
        "  script:\n    - {}\n",
        quoted(&rollback_command(input))
    );
    out
}
