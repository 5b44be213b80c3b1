//! [`Context`]: the one place the SDK reads variables and writes files, so
//! tests can point a step at a temporary folder instead of the real ABI.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files::format_entry;
use crate::input::{FromInput, input_variable};
use crate::step::{Outcome, Phase};

/// Where the workspace is mounted when `GANTRY_WORKSPACE` says nothing.
const DEFAULT_WORKSPACE: &str = "/workspace";
/// Where artifacts are mounted when `GANTRY_ARTIFACTS` says nothing.
const DEFAULT_ARTIFACTS: &str = "/artifacts";

/// Everything a step reads from and writes to gantry.
///
/// A context is a snapshot of environment variables. The ABI files it
/// writes to are the paths that `GANTRY_OUTPUT`, `GANTRY_ENV`,
/// `GANTRY_STATE` and `GANTRY_STEP_SUMMARY` name in that snapshot, so a
/// test builds one with [`Context::from_vars`], points those variables at
/// files in a temporary folder and reads the files back:
///
/// ```
/// use gantry_sdk::Context;
///
/// let dir = std::env::temp_dir().join(format!("gantry-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let output = dir.join("output");
/// let ctx = Context::from_vars([
///     ("INPUT_REPLICAS", "3"),
///     ("GANTRY_OUTPUT", output.to_str().unwrap()),
/// ]);
/// let replicas: u32 = ctx.input("replicas")?;
/// ctx.set_output("doubled", (replicas * 2).to_string())?;
/// assert_eq!(std::fs::read_to_string(&output)?, "doubled=6\n");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context {
    vars: BTreeMap<String, String>,
}

impl Context {
    /// The context of the running process: its environment, read once.
    /// Variables whose name or value is not UTF-8 are left out.
    ///
    /// ```no_run
    /// let ctx = gantry_sdk::Context::from_env();
    /// let who: String = ctx.input_or("who", "world".into())?;
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn from_env() -> Context {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Context { vars }
    }

    /// A context made of the given variables only, for tests.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("INPUT_WHO", "you")]);
    /// assert_eq!(ctx.var("INPUT_WHO"), Some("you"));
    /// ```
    pub fn from_vars<I, K, V>(vars: I) -> Context
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Context { vars }
    }

    /// A variable of the snapshot, exactly by name.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("SITE", "demo")]);
    /// assert_eq!(ctx.var("SITE"), Some("demo"));
    /// assert_eq!(ctx.var("site"), None);
    /// ```
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The raw text of an input, `None` when it was not given or is empty.
    /// `name` is the key in the manifest's `with:`; it is looked up as
    /// [`input_variable`]`(name)`.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("INPUT_IMAGE_TAG", "1.2"), ("INPUT_EMPTY", "")]);
    /// assert_eq!(ctx.raw_input("image-tag"), Some("1.2"));
    /// assert_eq!(ctx.raw_input("empty"), None);
    /// ```
    pub fn raw_input(&self, name: &str) -> Option<&str> {
        self.var(&input_variable(name)).filter(|v| !v.is_empty())
    }

    /// A required input, parsed as `T`. Missing or empty is an error, and
    /// so is text that does not parse.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("INPUT_PORT", "8080")]);
    /// let port: u16 = ctx.input("port")?;
    /// assert_eq!(port, 8080);
    /// assert!(ctx.input::<u16>("host").is_err());
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn input<T: FromInput>(&self, name: &str) -> Result<T> {
        self.input_opt(name)?
            .ok_or_else(|| Error::new(format!("input `{name}` is required but was not given")))
    }

    /// An optional input, parsed as `T`: `None` when missing or empty.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("INPUT_TAGS", "a, b")]);
    /// let tags: Option<Vec<String>> = ctx.input_opt("tags")?;
    /// assert_eq!(tags, Some(vec!["a".to_owned(), "b".to_owned()]));
    /// assert_eq!(ctx.input_opt::<bool>("force")?, None);
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn input_opt<T: FromInput>(&self, name: &str) -> Result<Option<T>> {
        match self.raw_input(name) {
            None => Ok(None),
            Some(raw) => T::from_input(raw)
                .map(Some)
                .map_err(|reason| Error::new(format!("input `{name}`: {reason}"))),
        }
    }

    /// An input parsed as `T`, or `default` when missing or empty.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("INPUT_RATIO", "0.5")]);
    /// assert_eq!(ctx.input_or("ratio", 1.0)?, 0.5);
    /// assert_eq!(ctx.input_or("retries", 3u8)?, 3);
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn input_or<T: FromInput>(&self, name: &str, default: T) -> Result<T> {
        Ok(self.input_opt(name)?.unwrap_or(default))
    }

    /// Sets output `name` of this step, seen by later steps as
    /// `steps.<id>.outputs.<name>`. Multi-line values are written as a
    /// heredoc whose delimiter does not occur in the value.
    ///
    /// ```no_run
    /// let ctx = gantry_sdk::Context::from_env();
    /// ctx.set_output("notes", "line one\nline two")?;
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn set_output(&self, name: &str, value: impl AsRef<str>) -> Result<()> {
        self.append_entry("GANTRY_OUTPUT", name, value.as_ref())
    }

    /// Exports variable `name` to the following steps of the job.
    ///
    /// The names gantry sets itself (`INPUT_*`, `GANTRY_*`, `STATE_*`, in
    /// any case) are reserved: gantry does not export them and fails the
    /// step, as it does for a name or value holding a NUL byte.
    ///
    /// ```no_run
    /// let ctx = gantry_sdk::Context::from_env();
    /// ctx.export_env("RELEASE", "2024.06")?;
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn export_env(&self, name: &str, value: impl AsRef<str>) -> Result<()> {
        self.append_entry("GANTRY_ENV", name, value.as_ref())
    }

    /// Saves `name` for this step's rollback hook, which reads it back with
    /// [`Context::state`].
    ///
    /// ```no_run
    /// let ctx = gantry_sdk::Context::from_env();
    /// ctx.save_state("created", "/workspace/out/site.tar.gz")?;
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn save_state(&self, name: &str, value: impl AsRef<str>) -> Result<()> {
        self.append_entry("GANTRY_STATE", name, value.as_ref())
    }

    /// A value saved by [`Context::save_state`] during the run phase; in the
    /// rollback phase it arrives as the variable `STATE_<name>` (the name
    /// exactly as saved).
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("STATE_created", "/tmp/x")]);
    /// assert_eq!(ctx.state("created"), Some("/tmp/x"));
    /// assert_eq!(ctx.state("other"), None);
    /// ```
    pub fn state(&self, name: &str) -> Option<&str> {
        self.var(&format!("STATE_{name}"))
    }

    /// Appends Markdown to the run's summary, adding a final newline if the
    /// text has none.
    ///
    /// ```no_run
    /// let ctx = gantry_sdk::Context::from_env();
    /// ctx.append_summary("| file | sha256 |\n| --- | --- |")?;
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn append_summary(&self, markdown: &str) -> Result<()> {
        let mut text = markdown.to_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.append("GANTRY_STEP_SUMMARY", &text)
    }

    /// The phase from `GANTRY_PHASE`: [`Phase::Run`] when unset, an error
    /// when it names a phase this SDK does not know.
    ///
    /// ```
    /// use gantry_sdk::{Context, Phase};
    /// let ctx = Context::from_vars([("GANTRY_PHASE", "rollback")]);
    /// assert_eq!(ctx.phase()?, Phase::Rollback);
    /// assert_eq!(Context::default().phase()?, Phase::Run);
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn phase(&self) -> Result<Phase> {
        match self.var("GANTRY_PHASE") {
            None | Some("") => Ok(Phase::Run),
            Some(text) => text.parse(),
        }
    }

    /// In the rollback phase, how the compensated step ended
    /// (`GANTRY_STEP_OUTCOME`); `None` when unset or unknown.
    ///
    /// ```
    /// use gantry_sdk::{Context, Outcome};
    /// let ctx = Context::from_vars([("GANTRY_STEP_OUTCOME", "failure")]);
    /// assert_eq!(ctx.outcome(), Some(Outcome::Failure));
    /// ```
    pub fn outcome(&self) -> Option<Outcome> {
        self.var("GANTRY_STEP_OUTCOME")?.parse().ok()
    }

    /// The workspace folder (`GANTRY_WORKSPACE`), `None` when the step was
    /// given no access to it.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("GANTRY_WORKSPACE", "/workspace")]);
    /// assert_eq!(ctx.workspace(), Some(std::path::Path::new("/workspace")));
    /// ```
    pub fn workspace(&self) -> Option<&Path> {
        self.var("GANTRY_WORKSPACE")
            .filter(|w| !w.is_empty())
            .map(Path::new)
    }

    /// Resolves a path given by the user: absolute paths stay as they are,
    /// relative ones are taken from the workspace (`/workspace` when
    /// `GANTRY_WORKSPACE` is unset). WASI has no working folder, so steps
    /// should resolve every relative path this way.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("GANTRY_WORKSPACE", "/workspace")]);
    /// assert_eq!(ctx.workspace_path("a/b.txt"), std::path::Path::new("/workspace/a/b.txt"));
    /// assert_eq!(ctx.workspace_path("/public/x"), std::path::Path::new("/public/x"));
    /// ```
    pub fn workspace_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            return path.to_owned();
        }
        let root = self.workspace().unwrap_or(Path::new(DEFAULT_WORKSPACE));
        root.join(path.strip_prefix("./").unwrap_or(path))
    }

    /// The artifacts folder (`GANTRY_ARTIFACTS`, `/artifacts` when unset).
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::default();
    /// assert_eq!(ctx.artifacts_dir(), std::path::Path::new("/artifacts"));
    /// ```
    pub fn artifacts_dir(&self) -> PathBuf {
        PathBuf::from(
            self.var("GANTRY_ARTIFACTS")
                .filter(|a| !a.is_empty())
                .unwrap_or(DEFAULT_ARTIFACTS),
        )
    }

    /// The folder of artifact `name`: writable and empty when the step
    /// declares it in `artifacts.upload`, read-only when in `download`.
    ///
    /// ```
    /// let ctx = gantry_sdk::Context::from_vars([("GANTRY_ARTIFACTS", "/artifacts")]);
    /// assert_eq!(ctx.artifact("site"), std::path::Path::new("/artifacts/site"));
    /// ```
    pub fn artifact(&self, name: &str) -> PathBuf {
        self.artifacts_dir().join(name)
    }

    fn append_entry(&self, variable: &str, name: &str, value: &str) -> Result<()> {
        let entry = format_entry(name, value)?;
        self.append(variable, &entry)
    }

    fn append(&self, variable: &str, text: &str) -> Result<()> {
        let path = self
            .var(variable)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::new(format!(
                    "`{variable}` is not set; is this step running under gantry?"
                ))
            })?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::new(format!("cannot open `{path}` ({variable}): {e}")))?;
        file.write_all(text.as_bytes())
            .map_err(|e| Error::new(format!("cannot write `{path}` ({variable}): {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A context whose four ABI files live in a fresh temporary folder.
    fn sandbox(extra: &[(&str, &str)]) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        let mut vars: Vec<(String, String)> = ["OUTPUT", "ENV", "STATE", "STEP_SUMMARY"]
            .iter()
            .map(|f| {
                let path = dir.path().join(f.to_lowercase());
                (format!("GANTRY_{f}"), path.to_str().unwrap().to_owned())
            })
            .collect();
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        (dir, Context::from_vars(vars))
    }

    fn read(dir: &tempfile::TempDir, file: &str) -> String {
        fs::read_to_string(dir.path().join(file)).unwrap_or_default()
    }

    #[test]
    fn files_receive_entries_in_order() {
        let (dir, ctx) = sandbox(&[]);
        ctx.set_output("a", "1").unwrap();
        ctx.set_output("b", "").unwrap();
        ctx.export_env("TAG", "v2").unwrap();
        ctx.save_state("old", "v1").unwrap();
        ctx.append_summary("# Title").unwrap();
        ctx.append_summary("body\n").unwrap();
        assert_eq!(read(&dir, "output"), "a=1\nb=\n");
        assert_eq!(read(&dir, "env"), "TAG=v2\n");
        assert_eq!(read(&dir, "state"), "old=v1\n");
        assert_eq!(read(&dir, "step_summary"), "# Title\nbody\n");
    }

    #[test]
    fn multi_line_output_is_a_heredoc() {
        let (dir, ctx) = sandbox(&[]);
        ctx.set_output("notes", "one\ntwo").unwrap();
        let text = read(&dir, "output");
        let (head, rest) = text.split_once('\n').unwrap();
        let delimiter = head.strip_prefix("notes<<").unwrap();
        assert_eq!(rest, format!("one\ntwo\n{delimiter}\n"));
    }

    #[test]
    fn missing_file_variable_is_a_clear_error() {
        let ctx = Context::default();
        let error = ctx.set_output("a", "1").unwrap_err();
        assert!(error.message().contains("`GANTRY_OUTPUT` is not set"));
    }

    #[test]
    fn invalid_names_are_refused_before_writing() {
        let (dir, ctx) = sandbox(&[]);
        assert!(ctx.set_output("a=b", "1").is_err());
        assert!(ctx.set_output("", "1").is_err());
        assert!(ctx.export_env("x<<y", "1").is_err());
        assert_eq!(read(&dir, "output"), "");
    }

    #[test]
    fn inputs_required_optional_and_defaults() {
        let ctx = Context::from_vars([
            ("INPUT_COUNT", "12"),
            ("INPUT_DRY_RUN", "true"),
            ("INPUT_BLANK", ""),
            ("INPUT_BAD", "twelve"),
        ]);
        assert_eq!(ctx.input::<u32>("count").unwrap(), 12);
        assert!(ctx.input::<bool>("dry-run").unwrap());
        assert_eq!(ctx.input_opt::<String>("blank").unwrap(), None);
        assert_eq!(ctx.input_or("blank", 5i64).unwrap(), 5);
        let missing = ctx.input::<String>("name").unwrap_err();
        assert_eq!(
            missing.message(),
            "input `name` is required but was not given"
        );
        let bad = ctx.input::<u32>("bad").unwrap_err();
        assert!(bad.message().starts_with("input `bad`: "), "{bad}");
        // A default does not hide a value that does not parse.
        assert!(ctx.input_or("bad", 1u32).is_err());
    }

    #[test]
    fn phase_outcome_and_state() {
        let ctx = Context::from_vars([
            ("GANTRY_PHASE", "rollback"),
            ("GANTRY_STEP_OUTCOME", "success"),
            ("STATE_previous", "1.0"),
        ]);
        assert_eq!(ctx.phase().unwrap(), Phase::Rollback);
        assert_eq!(ctx.outcome(), Some(Outcome::Success));
        assert_eq!(ctx.state("previous"), Some("1.0"));
        let odd = Context::from_vars([("GANTRY_PHASE", "cleanup")]);
        assert!(odd.phase().is_err());
        assert_eq!(odd.outcome(), None);
    }

    #[test]
    fn paths() {
        let ctx = Context::from_vars([("GANTRY_WORKSPACE", "/w"), ("GANTRY_ARTIFACTS", "/a")]);
        assert_eq!(ctx.workspace_path("./x/y"), Path::new("/w/x/y"));
        assert_eq!(ctx.workspace_path("/abs"), Path::new("/abs"));
        assert_eq!(ctx.artifact("site"), Path::new("/a/site"));
        let bare = Context::default();
        assert_eq!(bare.workspace(), None);
        assert_eq!(bare.workspace_path("x"), Path::new("/workspace/x"));
    }
}
