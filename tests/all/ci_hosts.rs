//! Inside a CI host (issue 20, points 1–4): logs that stream while a step
//! works, groups and sections that never mix two jobs' lines, annotation
//! paths the host resolves against its checkout, GitLab failures left open
//! with `path:line:col:` locations, and a job summary that says what
//! happened and why.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use gantry_tests::{Project, probe_project};

/// Runs gantry with `env`, reading its stdout as it comes: each line with
/// the moment it arrived, and the moment the process ended.
fn run_watched(project: &Project, env: &[(&str, &str)]) -> (Vec<(Instant, String)>, Instant) {
    let mut child = project
        .command(&["run"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running gantry");
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<(Instant, String)> = BufReader::new(stdout)
        .lines()
        .map(|line| (Instant::now(), line.unwrap()))
        .collect();
    child.wait().unwrap();
    (lines, Instant::now())
}

/// Point 1: a step that prints a line and then works for three seconds
/// shows its line at once, inside its group, and its verdict after it.
#[test]
fn a_working_steps_lines_arrive_while_it_works() {
    let project = probe_project(
        "      - id: deploy\n        uses: probe\n        with: { action: print, text: 'uploading…', sleep: 3 }\n",
    );
    for env in [("GITHUB_ACTIONS", "true"), ("GITLAB_CI", "true")] {
        let (lines, ended) = run_watched(&project, &[env]);
        let (arrived, _) = lines
            .iter()
            .find(|(_, line)| line == "uploading…")
            .unwrap_or_else(|| panic!("{env:?}: no step line in {lines:?}"));
        let early = ended.duration_since(*arrived);
        assert!(
            early >= Duration::from_secs(2),
            "{env:?}: the line came only {early:?} before the end: held back"
        );
        let texts: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        let at = texts.iter().position(|l| *l == "uploading…").unwrap();
        let opened = texts[..at]
            .iter()
            .rposition(|l| {
                l.starts_with("::group::main / deploy [probe]")
                    || l.contains("section_start:") && l.ends_with("main / deploy [probe]")
            })
            .unwrap_or_else(|| panic!("{env:?}: the line is not in the step's group\n{texts:#?}"));
        assert!(opened < at);
        let result = texts[at..]
            .iter()
            .position(|l| l.starts_with("gantry: main / deploy [probe]: ok ("))
            .unwrap_or_else(|| panic!("{env:?}: no result line\n{texts:#?}"));
        let closed = texts[at..]
            .iter()
            .position(|l| *l == "::endgroup::" || l.contains("section_end:"))
            .unwrap();
        assert!(closed < result, "{env:?}: the verdict follows the group");
    }
}

/// Point 1, parallel jobs: two jobs print while both run; no group holds
/// another job's line, and each job's lines keep their order.
#[test]
fn parallel_jobs_never_share_a_group_or_reorder_their_lines() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    let job = |name: &str| {
        format!(
            "  {name}:\n    steps:\n      - uses: probe\n        with: {{ action: print, text: '{name}-1|{name}-2', sleep: 1 }}\n      - uses: probe\n        with: {{ action: print, text: '{name}-3|{name}-4', sleep: 0.5 }}\n"
        )
    };
    project.manifest(&format!(
        "name: parallel\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n{}{}",
        job("left"),
        job("right")
    ));
    for env in [("GITHUB_ACTIONS", "true"), ("GITLAB_CI", "true")] {
        let outcome = project.gantry_with_env(&["run"], &[env]);
        outcome.expect_code(0);
        let mut group: Option<String> = None;
        let mut seen: Vec<&str> = Vec::new();
        for line in outcome.stdout.lines() {
            if let Some(name) = line.strip_prefix("::group::") {
                group = Some(name.split(" / ").next().unwrap().to_owned());
            } else if let Some((_, header)) = line.split_once("section_start:") {
                let header = header.rsplit_once("\x1b[0K").unwrap().1;
                group = Some(header.split(" / ").next().unwrap().to_owned());
            } else if line == "::endgroup::" || line.contains("section_end:") {
                group = None;
            } else if let Some((job, _)) = line.split_once('-')
                && (job == "left" || job == "right")
            {
                assert_eq!(
                    group.as_deref(),
                    Some(job),
                    "{env:?}: {line} outside its job's group\n{}",
                    outcome.stdout
                );
                seen.push(line);
            }
        }
        for name in ["left", "right"] {
            let order: Vec<&str> = seen
                .iter()
                .copied()
                .filter(|l| l.starts_with(name))
                .collect();
            let expected: Vec<String> = (1..=4).map(|n| format!("{name}-{n}")).collect();
            assert_eq!(order, expected, "{env:?}\n{}", outcome.stdout);
        }
    }
}

/// A project whose manifest lies in `deploy/`, with a step annotating a
/// path relative to the manifest and one under the guest's `/workspace`.
fn manifest_below_the_checkout() -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("deploy/probe.wasm");
    project.write(
        "deploy/gantry.yml",
        format!(
            "name: nested\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: lint\n        uses: probe\n        with: {{ action: print, code: 1, text: '::error file=src/app.c,line=3,col=5::undefined x|::warning file=/workspace/lib/../lib/util.c,line=9::unused y' }}\n"
        ),
    );
    project
}

/// Point 2: GitHub resolves `file=` against `GITHUB_WORKSPACE`, GitLab
/// against `CI_PROJECT_DIR`: with the manifest in `deploy/`, the paths are
/// rebased; with no checkout, or a manifest outside it, they are kept.
#[test]
fn annotation_paths_are_rebased_onto_the_checkout() {
    let project = manifest_below_the_checkout();
    let root = project.path().to_str().unwrap();
    let github = project.gantry_with_env(
        &["run", "deploy"],
        &[("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", root)],
    );
    github
        .expect_code(1)
        .stdout_has("::error file=deploy/src/app.c,line=3,col=5::undefined x")
        .stdout_has("::warning file=deploy/lib/util.c,line=9::unused y");
    let gitlab = project.gantry_with_env(
        &["run", "deploy"],
        &[("GITLAB_CI", "true"), ("CI_PROJECT_DIR", root)],
    );
    gitlab
        .expect_code(1)
        .stdout_has("\ndeploy/src/app.c:3:5: error: undefined x\n")
        .stdout_has("\ndeploy/lib/util.c:9: warning: unused y\n");
    let elsewhere = tempfile::tempdir().unwrap();
    for checkout in [None, Some(elsewhere.path().to_str().unwrap())] {
        let mut env = vec![("GITHUB_ACTIONS", "true")];
        env.extend(checkout.map(|dir| ("GITHUB_WORKSPACE", dir)));
        project
            .gantry_with_env(&["run", "deploy"], &env)
            .expect_code(1)
            .stdout_has("::error file=src/app.c,line=3,col=5::undefined x")
            .stdout_has("::warning file=/workspace/lib/../lib/util.c,line=9::unused y");
    }
}

/// Point 3: on GitLab a failed step's section is left open, a succeeded
/// one printed after the fact is collapsed, and annotations keep their
/// location as `path:line:col:`.
#[test]
fn gitlab_leaves_failures_open_with_located_annotations() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    // Whichever job is live first, `quick` (in the other job) finishes
    // while `slow` holds the log, so its section is printed once its
    // outcome is known.
    project.manifest(&format!(
        "name: gl\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  first:\n    steps:\n      - id: slow\n        uses: probe\n        with: {{ action: print, text: 'working', sleep: 3 }}\n      - id: broken\n        uses: probe\n        with: {{ action: print, code: 1, text: '::error file=src/app.c,line=3,col=5::undefined x' }}\n  second:\n    steps:\n      - id: wait\n        uses: probe\n        with: {{ action: print, text: waiting, sleep: 0.5 }}\n      - id: quick\n        uses: probe\n        with: {{ action: print, text: 'fast' }}\n"
    ));
    let outcome = project.gantry_with_env(&["run"], &[("GITLAB_CI", "true")]);
    outcome.expect_code(1);
    let header = |name: &str| {
        outcome
            .stdout
            .lines()
            .find(|l| l.contains("section_start:") && l.contains(name))
            .unwrap_or_else(|| panic!("no section for {name}\n{}", outcome.stdout))
    };
    assert!(
        header("first / broken").contains("[collapsed=false]"),
        "{}",
        header("first / broken")
    );
    assert!(
        header("second / quick").contains("[collapsed=true]"),
        "{}",
        header("second / quick")
    );
    outcome
        .stdout_has("\nsrc/app.c:3:5: error: undefined x\n")
        .stdout_has("gantry: first / broken [probe]: failure (");
}

/// Point 4: the GitHub job summary names the pipeline and run, says how
/// the run ended, which step failed and why, with its `::error` lines, and
/// what the rollback hooks did.
#[test]
fn the_job_summary_says_what_failed_and_why() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: release-site\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  ship:\n    steps:\n      - id: upload\n        uses: probe\n        with: {{ action: print, text: ok }}\n        rollback: {{ with: {{ action: print, text: undone }} }}\n      - id: verify\n        uses: probe\n        with: {{ action: print, code: 1, text: '::error file=site/index.html,line=7::broken link|::warning::slow' }}\n"
    ));
    let summary = project.write("summary.md", "");
    let outcome = project.gantry_with_env(
        &["run"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    outcome.expect_code(1);
    let run_id = std::fs::read_dir(project.state_dir().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let summary = std::fs::read_to_string(summary).unwrap();
    for expected in [
        "## gantry: release-site failed\n".to_owned(),
        format!("Run `{run_id}`: run failed in "),
        ": ship/verify failed\n".to_owned(),
        "### Failed steps\n\n- **ship / verify** (failure): exited with status 1\n  - site/index.html:7: error: broken link\n".to_owned(),
        "### Rollback\n\n- ship / rollback of upload: succeeded\n".to_owned(),
        "| ship | verify | failure |".to_owned(),
    ] {
        assert!(summary.contains(&expected), "lacks {expected:?}\n{summary}");
    }
    assert!(
        !summary.contains("slow"),
        "only errors are listed\n{summary}"
    );
}

/// The pipeline of docs/CI.md's samples: a step that logs and annotates
/// with a rollback hook, then a step that fails with an `::error`.
const SAMPLE_MANIFEST: &str = "\
name: site
plugins:
  tools:
    source: tools.wasm
jobs:
  build:
    steps:
      - id: render
        name: Render pages
        uses: tools
        with: { action: print, text: 'rendered 3 pages|::notice::cache warm' }
        rollback:
          with: { action: print, text: 'removed the pages' }
      - id: links
        name: Check links
        uses: tools
        with: { action: print, code: 1, text: 'checking 3 pages|::error file=public/index.html,line=7,col=12::broken link /about' }
";

/// What varies between runs made the same as the samples show it: the run
/// id, stop tokens, section times, durations.
fn normalised(text: &str, run_id: &str) -> String {
    let mut text = text.replace(run_id, "20261123T170000.482113Z-1a2b3c");
    for marker in ["::stop-commands::gantry-", "::gantry-"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(marker) {
            let start = from + at + marker.len();
            let end = start
                + text[start..]
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(0);
            text.replace_range(start..end, "5f0e2a8c41b7d3e69a0c7b2d4e1f8a36");
            from = start;
        }
    }
    for marker in ["section_start:", "section_end:", "time=\""] {
        let mut from = 0;
        while let Some(at) = text[from..].find(marker) {
            let start = from + at + marker.len();
            let end = start
                + text[start..]
                    .find(|c: char| !c.is_ascii_digit() && c != '.')
                    .unwrap_or(0);
            let fixed = if marker == "time=\"" {
                "0.012"
            } else {
                "1763917200"
            };
            text.replace_range(start..end, fixed);
            from = start + fixed.len();
        }
    }
    // Durations as gantry writes them: `12 ms`, `1.5 s`, `2 min`.
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, number) = rest.split_at(at);
        out.push_str(before);
        let len = number
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(number.len());
        let after = &number[len..];
        let preceded_by_word = before.ends_with(|c: char| c.is_alphanumeric() || c == '.');
        let unit = [" ms", " s", " min"].into_iter().find(|unit| {
            after.starts_with(unit)
                && !after[unit.len()..].starts_with(|c: char| c.is_alphanumeric())
        });
        match unit {
            Some(unit) if !preceded_by_word => {
                out.push_str("12 ms");
                rest = &after[unit.len()..];
            }
            _ => {
                out.push_str(&number[..len]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace('\x1b', "\\e").replace('\r', "\\r")
}

/// The byte range of the fenced block after `<!-- sample: NAME -->`.
fn sample_range(doc: &str, name: &str) -> std::ops::Range<usize> {
    let marker = format!("<!-- sample: {name} -->\n");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/CI.md has no {marker:?}"));
    let fence = at + marker.len();
    let start = fence + doc[fence..].find('\n').unwrap() + 1;
    let end = start
        + if doc[start..].starts_with("```") {
            0
        } else {
            doc[start..].find("\n```").unwrap() + 1
        };
    start..end
}

/// docs/CI.md shows what each host sees; each sample there is what gantry
/// prints for the sample pipeline, normalised. `BLESS=1` rewrites them.
#[test]
fn the_samples_in_ci_md_are_what_gantry_prints() {
    let project = Project::new();
    project.probe_plugin("site/tools.wasm");
    project.write("site/gantry.yml", SAMPLE_MANIFEST);
    project.gantry(&["lock", "site"]).expect_code(0);
    let root = project.path().to_str().unwrap().to_owned();
    let summary = project.write("summary.md", "");
    let github = project.gantry_with_env(
        &["run", "site", "--junit", "junit.xml"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_WORKSPACE", &root),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    github.expect_code(1);
    let run_id = github
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("gantry: running `site` (run "))
        .and_then(|rest| rest.strip_suffix(')'))
        .expect("the run's first line names it")
        .to_owned();
    let junit = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    let summary = std::fs::read_to_string(&summary).unwrap();
    let gitlab = project.gantry_with_env(
        &["run", "site"],
        &[("GITLAB_CI", "true"), ("CI_PROJECT_DIR", &root)],
    );
    gitlab.expect_code(1);
    let gitlab_id = gitlab
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("gantry: running `site` (run "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap()
        .to_owned();
    let samples = [
        ("manifest", SAMPLE_MANIFEST.to_owned()),
        ("github", normalised(&github.stdout, &run_id)),
        ("github-summary", normalised(&summary, &run_id)),
        ("gitlab", normalised(&gitlab.stdout, &gitlab_id)),
        ("junit", normalised(&junit, &run_id)),
    ];
    let path = &format!("{}/../docs/CI.md", gantry_tests::TESTS_DIR);
    let mut doc = std::fs::read_to_string(path).unwrap();
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, rendered) in samples {
        let range = sample_range(&doc, name);
        if doc[range.clone()] != rendered {
            if bless {
                doc.replace_range(range, &rendered);
            } else {
                stale.push(format!(
                    "--- docs/CI.md sample `{name}`:\n{}\n--- gantry prints:\n{rendered}",
                    &doc[range]
                ));
            }
        }
    }
    if bless {
        std::fs::write(path, doc).unwrap();
    }
    assert!(
        stale.is_empty(),
        "docs/CI.md is out of date (BLESS=1 rewrites it)\n{}",
        stale.join("\n")
    );
}
