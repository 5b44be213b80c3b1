//! The GitHub Actions form of an export (a workflow file).
//!
//! Every gantry job is a workflow job with `needs:` mapped one to one; a
//! matrix job uses the engine's own matrix over its combinations' indexes
//! (`fail-fast: false`: gantry's own `fail-fast` cannot reach across
//! machines). `if: ${{ !cancelled() }}` starts a job whatever its needs
//! concluded, and gantry decides. Bundles travel as artifacts named by
//! their folder (`build`, `deploy.3`), uploaded even when the job failed;
//! the upload's digest is the job's `bundle-digest` output, printed by the
//! jobs that download it. The rollback job runs `if: ${{ failure() ||
//! cancelled() }}` with every bundle. Secrets reach gantry's environment
//! from `secrets.NAME` and are passed by name (`--secret NAME`).

use std::fmt::Write;

use super::{
    BUNDLES_DIR, ExportInput, Instance, ROLLBACK_JOB, all_secrets, header, quoted,
    rollback_command, run_command, secrets_of, shell_word,
};

const CHECKOUT: &str = "actions/checkout@v4";
const UPLOAD: &str = "actions/upload-artifact@v4";
const DOWNLOAD: &str = "actions/download-artifact@v4";

/// The pipeline as a GitHub Actions workflow.
pub fn github(input: &ExportInput) -> String {
    let plan = input.plan;
    let mut out = header(input, "github", &all_secrets(plan));
    let _ = write!(
        out,
        "\nname: {}\non:\n  push:\n  workflow_dispatch:\npermissions:\n  contents: read\n\njobs:\n",
        quoted(&plan.name)
    );
    for job in &plan.jobs {
        let _ = write!(out, "  {}:\n    name: {}\n", job.id, quoted(&job.name));
        if !job.needs.is_empty() {
            let needs: Vec<String> = plan
                .jobs
                .iter()
                .filter(|j| job.needs.contains(&j.id))
                .map(|j| j.id.clone())
                .collect();
            let _ = writeln!(out, "    needs: [{}]", needs.join(", "));
            // Start whatever the needs concluded: gantry decides.
            out.push_str("    if: ${{ !cancelled() }}\n");
        }
        out.push_str("    runs-on: ubuntu-latest\n");
        let matrix = !job.matrix.is_empty();
        if matrix {
            let indexes: Vec<String> = (0..job.matrix.len()).map(|i| i.to_string()).collect();
            let _ = write!(
                out,
                "    strategy:\n      fail-fast: false\n      matrix:\n        instance: [{}]\n",
                indexes.join(", ")
            );
        }
        out.push_str(
            "    outputs:\n      bundle-digest: ${{ steps.bundle.outputs.artifact-digest }}\n",
        );
        out.push_str("    steps:\n");
        common_steps(&mut out, input);
        for need in plan.jobs.iter().filter(|j| job.needs.contains(&j.id)) {
            if need.matrix.is_empty() {
                let _ = write!(
                    out,
                    "      - name: {}\n        uses: {DOWNLOAD}\n        with:\n          name: {}\n          path: {}\n",
                    quoted(&format!("Download the bundle of {}", need.id)),
                    quoted(&need.id),
                    quoted(&format!("{BUNDLES_DIR}/{}", need.id)),
                );
            } else {
                let _ = write!(
                    out,
                    "      - name: {}\n        uses: {DOWNLOAD}\n        with:\n          pattern: {}\n          path: {BUNDLES_DIR}\n",
                    quoted(&format!("Download the bundles of {}", need.id)),
                    quoted(&format!("{}.*", need.id)),
                );
            }
            let _ = write!(
                out,
                "      - name: {}\n        run: echo \"bundle of {} uploaded with digest ${{{{ needs.{}.outputs.bundle-digest }}}}\"\n",
                quoted(&format!("Show the digest of {}'s bundle", need.id)),
                need.id,
                need.id,
            );
        }
        let instance = Instance { job, index: None };
        let command = run_command(input, &instance, matrix.then_some("${{ matrix.instance }}"));
        let _ = write!(
            out,
            "      - name: {}\n        run: {}\n",
            quoted(&format!("gantry run --job {}", job.id)),
            quoted(&command)
        );
        secret_env(&mut out, secrets_of(plan, job));
        let artifact = if matrix {
            format!("{}.${{{{ matrix.instance }}}}", job.id)
        } else {
            job.id.clone()
        };
        let _ = write!(
            out,
            "      - name: Hand the bundle on\n        id: bundle\n        if: ${{{{ !cancelled() }}}}\n        uses: {UPLOAD}\n        with:\n          name: {}\n          path: {}\n          if-no-files-found: error\n",
            quoted(&artifact),
            quoted(&format!("{BUNDLES_DIR}/{artifact}")),
        );
    }
    let ids: Vec<&str> = plan.jobs.iter().map(|j| j.id.as_str()).collect();
    let _ = write!(
        out,
        "  {ROLLBACK_JOB}:\n    name: Roll the pipeline back\n    needs: [{}]\n    if: ${{{{ failure() || cancelled() }}}}\n    runs-on: ubuntu-latest\n    steps:\n",
        ids.join(", ")
    );
    common_steps(&mut out, input);
    let _ = write!(
        out,
        "      - name: Download every bundle\n        uses: {DOWNLOAD}\n        with:\n          path: {BUNDLES_DIR}\n      - name: gantry rollback --import\n        run: {}\n",
        quoted(&rollback_command(input))
    );
    secret_env(&mut out, all_secrets(plan));
    out
}

/// Checkout, install, and the pins checked.
fn common_steps(out: &mut String, input: &ExportInput) {
    let _ = writeln!(out, "      - uses: {CHECKOUT}");
    if let Some(install) = input.install {
        match install.strip_prefix("uses:") {
            // gantry's own action, asked only to put gantry on the PATH.
            Some(action) => {
                let _ = write!(
                    out,
                    "      - name: Install gantry\n        uses: {}\n        with:\n          install-only: \"true\"\n",
                    action.trim()
                );
            }
            None => {
                let _ = write!(
                    out,
                    "      - name: Install gantry\n        run: {}\n",
                    quoted(install)
                );
            }
        }
    }
    let _ = write!(
        out,
        "      - name: Verify the plugins' pins\n        run: {}\n",
        quoted(&format!("gantry verify {}", shell_word(input.manifest)))
    );
}

/// `env:` giving a step the secrets it passes to gantry, by name.
fn secret_env(out: &mut String, secrets: std::collections::BTreeSet<String>) {
    if secrets.is_empty() {
        return;
    }
    out.push_str("        env:\n");
    for name in secrets {
        let _ = writeln!(out, "          {name}: ${{{{ secrets.{name} }}}}");
    }
}
