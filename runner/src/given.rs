//! What a run is given from outside its manifest: the values of its
//! `inputs`, its `vars`, and the facts of the machine and the CI it runs
//! in, read by `${{ inputs.* }}`, `${{ vars.* }}`, `${{ github.* }}` and
//! `${{ runner.* }}`.
//!
//! The `github` fields come from the hosting CI's variables (GitHub
//! Actions' `GITHUB_*`, GitLab's `CI_*` mapped onto GitHub's names), and
//! otherwise from the git repository around the manifest ([`crate::git`]);
//! a field nobody knows is empty. Only the variables named in
//! [`GITHUB_FIELDS`] are read: nothing else of the host's environment
//! reaches an expression. docs/MANIFEST.md has the table of every field
//! and its sources.

use std::collections::BTreeMap;
use std::path::Path;

use crate::expr::Value;
use crate::git;
use crate::vars::Vars;

/// The `github` fields gantry fills, with the GitHub Actions variable and
/// the GitLab CI variable each is read from (`""`: GitLab has none; the
/// GitLab `ref` is built from several, see [`github_fields`]).
pub const GITHUB_FIELDS: [(&str, &str, &str); 12] = [
    ("sha", "GITHUB_SHA", "CI_COMMIT_SHA"),
    ("ref", "GITHUB_REF", ""),
    ("ref_name", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"),
    ("repository", "GITHUB_REPOSITORY", "CI_PROJECT_PATH"),
    ("run_id", "GITHUB_RUN_ID", "CI_PIPELINE_ID"),
    ("run_number", "GITHUB_RUN_NUMBER", "CI_PIPELINE_IID"),
    ("run_attempt", "GITHUB_RUN_ATTEMPT", ""),
    ("actor", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"),
    ("event_name", "GITHUB_EVENT_NAME", "CI_PIPELINE_SOURCE"),
    ("server_url", "GITHUB_SERVER_URL", "CI_SERVER_URL"),
    ("workspace", "GITHUB_WORKSPACE", "CI_PROJECT_DIR"),
    // The gantry job an expression is in; filled per job.
    ("job", "", ""),
];

/// The `runner` fields gantry fills.
pub const RUNNER_FIELDS: [&str; 4] = ["os", "arch", "name", "temp"];

/// Which CI, if any, the run is hosted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    GitHub,
    GitLab,
    Local,
}

impl Host {
    /// As `GITHUB_ACTIONS=true` / `GITLAB_CI=true` say.
    pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Host {
        let set = |name: &str| env(name).is_some_and(|v| v == "true");
        if set("GITHUB_ACTIONS") {
            Host::GitHub
        } else if set("GITLAB_CI") {
            Host::GitLab
        } else {
            Host::Local
        }
    }
}

/// Everything a run is given besides its manifest.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// Every declared input's value (given, or its default), typed.
    pub inputs: BTreeMap<String, Value>,
    pub vars: Vars,
    /// The `github` fields known before the run starts; `run_id`,
    /// `run_attempt` and `job` are completed by the engine.
    pub github: BTreeMap<String, String>,
    /// `os`, `arch`, `name` and `temp`.
    pub runner: BTreeMap<String, String>,
}

impl Given {
    /// The `github` context in job `job` (none: the pipeline's `env`) of
    /// run `run_id`: outside a CI, `run_id` is gantry's own and the run's
    /// first attempt.
    pub fn github_context(&self, run_id: &str, job: Option<&str>) -> Value {
        let mut fields = self.github.clone();
        for (field, fallback) in [("run_id", run_id), ("run_attempt", "1")] {
            let value = fields.entry(field.to_owned()).or_default();
            if value.is_empty() {
                *value = fallback.to_owned();
            }
        }
        fields.insert("job".into(), job.unwrap_or_default().to_owned());
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}

/// Inputs and vars as the journal records them.
pub type Recorded = (
    BTreeMap<String, serde_json::Value>,
    BTreeMap<String, String>,
);

impl Given {
    /// The inputs (typed) and the variables as the journal records them,
    /// every text through `mask`: neither is a secret, but a secret's
    /// value passed as one must not reach the disk in clear.
    pub fn recorded(&self, mask: impl Fn(&str) -> String) -> Recorded {
        let inputs = self
            .inputs
            .iter()
            .map(|(name, value)| {
                let json = match value {
                    Value::Bool(b) => serde_json::Value::Bool(*b),
                    // Whole numbers as integers, as a person wrote them.
                    Value::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => {
                        serde_json::Value::from(*n as i64)
                    }
                    Value::Number(n) => serde_json::Value::from(*n),
                    other => serde_json::Value::String(mask(&other.to_output_string())),
                };
                (name.clone(), json)
            })
            .collect();
        let vars = self
            .vars
            .iter()
            .map(|(k, v)| (k.to_owned(), mask(v)))
            .collect();
        (inputs, vars)
    }
}

/// The `github` fields from the host's variables (through `env`), each
/// empty one then filled from `checkout` (the git repository around the
/// manifest), `workspace` from the manifest's folder.
pub fn github_fields(
    env: &dyn Fn(&str) -> Option<String>,
    checkout: &git::Checkout,
    root: &Path,
) -> BTreeMap<String, String> {
    let host = Host::detect(env);
    let read = |name: &str| {
        if name.is_empty() {
            String::new()
        } else {
            env(name).unwrap_or_default()
        }
    };
    let mut fields: BTreeMap<String, String> = GITHUB_FIELDS
        .iter()
        .filter(|(field, ..)| *field != "job")
        .map(|(field, github, gitlab)| {
            let value = match host {
                Host::GitHub => read(github),
                Host::GitLab => read(gitlab),
                Host::Local => String::new(),
            };
            ((*field).to_owned(), value)
        })
        .collect();
    if host == Host::GitLab {
        // GitLab names the ref by kind; GitHub's `ref` is the full name.
        let reference = match (read("CI_COMMIT_TAG"), read("CI_COMMIT_BRANCH")) {
            (tag, _) if !tag.is_empty() => format!("refs/tags/{tag}"),
            (_, branch) if !branch.is_empty() => format!("refs/heads/{branch}"),
            _ => read("CI_MERGE_REQUEST_REF_PATH"),
        };
        fields.insert("ref".into(), reference);
    }
    let from_git = [
        ("sha", &checkout.sha),
        ("ref", &checkout.reference),
        ("ref_name", &checkout.ref_name),
        ("repository", &checkout.repository),
        ("server_url", &checkout.server_url),
    ];
    for (field, value) in from_git {
        let slot = fields.entry(field.to_owned()).or_default();
        if slot.is_empty() {
            slot.clone_from(value);
        }
    }
    let workspace = fields.entry("workspace".to_owned()).or_default();
    if workspace.is_empty() {
        *workspace = root.display().to_string();
    }
    fields
}

/// The `runner` context: `os` and `arch` spelled as GitHub spells them,
/// the runner's `name` (the CI's, else the machine's host name) and
/// `temp`, the run's own temporary folder on the host.
pub fn runner_fields(
    env: &dyn Fn(&str) -> Option<String>,
    temp: &Path,
) -> BTreeMap<String, String> {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        "windows" => "Windows",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "X64".to_owned(),
        "x86" => "X86".to_owned(),
        "aarch64" => "ARM64".to_owned(),
        "arm" => "ARM".to_owned(),
        other => other.to_ascii_uppercase(),
    };
    let name = match Host::detect(env) {
        Host::GitHub => env("RUNNER_NAME"),
        Host::GitLab => env("CI_RUNNER_DESCRIPTION"),
        Host::Local => None,
    }
    .filter(|name| !name.is_empty())
    .or_else(host_name)
    .unwrap_or_else(|| "gantry".to_owned());
    BTreeMap::from([
        ("os".to_owned(), os.to_owned()),
        ("arch".to_owned(), arch),
        ("name".to_owned(), name),
        ("temp".to_owned(), temp.display().to_string()),
    ])
}

/// The machine's host name, if it has a printable one.
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, and gethostname
    // writes at most that many bytes.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&buffer[..end]).ok()?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_graphic())).then(|| name.to_owned())
}

/// A folder of its own for one run, under the host's temporary folder,
/// private to the user (`runner.temp`); removed when dropped, and by
/// `gantry gc` when its runner was killed (its name carries the pid).
pub fn run_temp() -> std::io::Result<tempfile::TempDir> {
    use crate::sandbox::leftovers::{RUNNER_TEMP_FOLDER, owned_prefix};
    tempfile::Builder::new()
        .prefix(&owned_prefix(RUNNER_TEMP_FOLDER))
        .tempdir()
}

/// The host's view, gathered once for a run of the manifest in `root`.
pub fn host_facts(
    root: &Path,
    temp: &Path,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let env = |name: &str| std::env::var(name).ok();
    let checkout = git::checkout(root);
    (
        github_fields(&env, &checkout, root),
        runner_fields(&env, temp),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn gitlab_variables_map_onto_githubs_names() {
        let env = env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "abc"),
            ("CI_COMMIT_TAG", "v2"),
            ("CI_COMMIT_REF_NAME", "v2"),
            ("CI_PROJECT_PATH", "group/app"),
            ("CI_PIPELINE_ID", "991"),
            ("CI_PIPELINE_IID", "12"),
            // A GitHub variable left in the environment is not GitLab's.
            ("GITHUB_SHA", "wrong"),
        ]);
        let fields = github_fields(&env, &git::Checkout::default(), Path::new("/p"));
        assert_eq!(fields["sha"], "abc");
        assert_eq!(fields["ref"], "refs/tags/v2");
        assert_eq!(fields["ref_name"], "v2");
        assert_eq!(fields["repository"], "group/app");
        assert_eq!(fields["run_id"], "991");
        assert_eq!(fields["run_number"], "12");
        assert_eq!(fields["run_attempt"], "");
        assert_eq!(fields["workspace"], "/p");
    }

    #[test]
    fn ci_values_win_and_git_fills_the_gaps() {
        let env = env_of(&[("GITHUB_ACTIONS", "true"), ("GITHUB_REF_NAME", "main")]);
        let checkout = git::Checkout {
            sha: "1".repeat(40),
            ref_name: "local-branch".into(),
            ..Default::default()
        };
        let fields = github_fields(&env, &checkout, Path::new("/p"));
        assert_eq!(fields["ref_name"], "main");
        assert_eq!(fields["sha"], "1".repeat(40));
        let given = Given {
            github: fields,
            ..Default::default()
        };
        let Value::Object(context) = given.github_context("r-1", Some("deploy")) else {
            panic!("an object");
        };
        assert_eq!(context["run_id"], Value::from("r-1"));
        assert_eq!(context["run_attempt"], Value::from("1"));
        assert_eq!(context["job"], Value::from("deploy"));
        assert_eq!(context.len(), GITHUB_FIELDS.len());
    }

    #[test]
    fn runner_spells_os_and_arch_as_github_does() {
        let fields = runner_fields(&env_of(&[]), Path::new("/tmp/x"));
        // The plan lets expressions read exactly these.
        assert!(
            fields.keys().map(String::as_str).eq(RUNNER_FIELDS
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>())
        );
        assert!(["Linux", "macOS", "Windows"].contains(&fields["os"].as_str()));
        assert!(
            fields["arch"]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        let named = runner_fields(
            &env_of(&[("GITHUB_ACTIONS", "true"), ("RUNNER_NAME", "runner-7")]),
            Path::new("/tmp/x"),
        );
        assert_eq!(named["name"], "runner-7");
    }
}
