//! `gantry new`: scaffolds a step — source, metadata, a pipeline running
//! it, and a README with the build command — that builds and passes its
//! own test as written. The templates live in `runner/templates/`.

use super::console::outln;
use std::path::{Component, Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{Failure, Outcome};
use crate::exit::Exit;

/// Create a new step in a new folder.
///
/// Rust steps depend on `gantry-sdk`. Where from: `--sdk PATH` when given;
/// else, when the new folder is inside a gantry checkout, its `sdk/` by a
/// relative path; else the checkout this gantry was built from, if it is
/// still there; else the registry version matching this gantry.
///
/// Python and JavaScript steps are WASI 0.2 components, built by
/// componentize-py (PyPI) and componentize-js (npm) against the WASI WIT
/// files the new folder gets in `wit/`.
#[derive(Debug, Args)]
pub struct NewCommand {
    /// The folder to create; its last component names the step
    /// (letters, digits, `-` and `_`, starting with a letter)
    path: PathBuf,
    /// The language to write the step in
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// The `gantry-sdk` folder to depend on (Rust only)
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    /// A WASI preview 1 module built with cargo and `gantry-sdk`
    Rust,
    /// A WASI preview 1 module built with clang
    C,
    /// A WASI 0.2 component built with componentize-py
    Python,
    /// A WASI 0.2 component built with componentize-js
    Js,
}

impl Lang {
    /// The language's name as a person writes it.
    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::C => "C",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// Everything a new step in this language is made of.
    fn templates(self) -> Vec<Template> {
        match self {
            Lang::Rust => RUST.to_vec(),
            Lang::C => C.to_vec(),
            // Components are built against the WASI WIT files, which the
            // step carries with it: the build tools read them from disk.
            Lang::Python => [PYTHON, WIT].concat(),
            Lang::Js => [JS, WIT].concat(),
        }
    }
}

/// `(path in the new folder, template, executable)`.
type Template = (&'static str, &'static str, bool);

const RUST: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml.in"),
        false,
    ),
    (
        "gantry-step.json",
        include_str!("../../templates/rust/gantry-step.json"),
        false,
    ),
    (
        "src/main.rs",
        include_str!("../../templates/rust/main.rs"),
        false,
    ),
    (
        "gantry.yml",
        include_str!("../../templates/rust/gantry.yml"),
        false,
    ),
    (
        "README.md",
        include_str!("../../templates/rust/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../../templates/rust/gitignore"),
        false,
    ),
];

const C: &[Template] = &[
    ("step.c", include_str!("../../templates/c/step.c"), false),
    (
        "meta.json",
        include_str!("../../templates/c/meta.json"),
        false,
    ),
    ("build.sh", include_str!("../../templates/c/build.sh"), true),
    ("test.sh", include_str!("../../templates/c/test.sh"), true),
    (
        "gantry.yml",
        include_str!("../../templates/c/gantry.yml"),
        false,
    ),
    (
        "README.md",
        include_str!("../../templates/c/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../../templates/c/gitignore"),
        false,
    ),
];

const PYTHON: &[Template] = &[
    (
        "step.py",
        include_str!("../../templates/python/step.py"),
        false,
    ),
    (
        "meta.json",
        include_str!("../../templates/python/meta.json"),
        false,
    ),
    (
        "build.sh",
        include_str!("../../templates/python/build.sh"),
        true,
    ),
    (
        "test.sh",
        include_str!("../../templates/python/test.sh"),
        true,
    ),
    (
        "gantry.yml",
        include_str!("../../templates/python/gantry.yml"),
        false,
    ),
    (
        "README.md",
        include_str!("../../templates/python/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../../templates/python/gitignore"),
        false,
    ),
];

const JS: &[Template] = &[
    ("step.js", include_str!("../../templates/js/step.js"), false),
    (
        "package.json",
        include_str!("../../templates/js/package.json"),
        false,
    ),
    (
        "meta.json",
        include_str!("../../templates/js/meta.json"),
        false,
    ),
    (
        "build.sh",
        include_str!("../../templates/js/build.sh"),
        true,
    ),
    ("test.sh", include_str!("../../templates/js/test.sh"), true),
    (
        "gantry.yml",
        include_str!("../../templates/js/gantry.yml"),
        false,
    ),
    (
        "README.md",
        include_str!("../../templates/js/README.md"),
        false,
    ),
    (
        ".gitignore",
        include_str!("../../templates/js/gitignore"),
        false,
    ),
];

/// The WASI 0.2.12 WIT of the `wasi:cli/command` world, for the
/// component steps (see `templates/wit/README.md` for where it is from).
const WIT: &[Template] = &[
    (
        "wit/cli.wit",
        include_str!("../../templates/wit/cli.wit"),
        false,
    ),
    (
        "wit/deps/clocks.wit",
        include_str!("../../templates/wit/deps/clocks.wit"),
        false,
    ),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../templates/wit/deps/filesystem.wit"),
        false,
    ),
    (
        "wit/deps/io.wit",
        include_str!("../../templates/wit/deps/io.wit"),
        false,
    ),
    (
        "wit/deps/random.wit",
        include_str!("../../templates/wit/deps/random.wit"),
        false,
    ),
    (
        "wit/deps/sockets.wit",
        include_str!("../../templates/wit/deps/sockets.wit"),
        false,
    ),
    (
        "wit/README.md",
        include_str!("../../templates/wit/README.md"),
        false,
    ),
];

impl NewCommand {
    pub fn execute(self) -> Outcome {
        let invalid = |message: String| Failure::msg(Exit::Invalid, message);
        let name = step_name(&self.path).map_err(invalid)?;
        if self.path.exists() {
            return Err(invalid(format!("`{}` already exists", self.path.display())));
        }
        if self.sdk.is_some() && self.lang != Lang::Rust {
            return Err(invalid("`--sdk` applies to Rust steps only".into()));
        }
        let sdk = match self.lang {
            Lang::Rust => sdk_dependency(&self.path, self.sdk.as_deref()).map_err(invalid)?,
            Lang::C | Lang::Python | Lang::Js => String::new(),
        };
        for (relative, template, executable) in self.lang.templates() {
            let text = template
                .replace("__NAME__", &name)
                .replace("__SDK_DEPENDENCY__", &sdk);
            let path = self.path.join(relative);
            write_file(&path, &text, executable).map_err(|e| {
                Failure::new(Exit::Invalid, e)
                    .with_context(format!("cannot write `{}`", path.display()))
            })?;
        }
        outln!(
            "created the {} step `{name}` in {}",
            self.lang.title(),
            self.path.display()
        );
        if self.lang == Lang::Rust {
            outln!("  gantry-sdk: {sdk}");
        }
        outln!("next: follow {}", self.path.join("README.md").display());
        Ok(Exit::Success)
    }
}

fn write_file(path: &Path, text: &str, executable: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// The step's name: the folder's last component, usable as a crate name,
/// a plugin alias and a file name.
fn step_name(path: &Path) -> Result<String, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("`{}` does not end in a folder name", path.display()))?;
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "invalid step name `{name}`: use letters, digits, `-` and `_`, starting with a letter"
        ));
    }
    Ok(name.to_owned())
}

/// The `gantry-sdk = …` line for a step created at `folder`.
fn sdk_dependency(folder: &Path, explicit: Option<&Path>) -> Result<String, String> {
    let folder = absolute(folder)?;
    if let Some(sdk) = explicit {
        let sdk = absolute(sdk)?;
        if !is_sdk(&sdk) {
            return Err(format!(
                "`{}` is not the gantry-sdk crate (no `Cargo.toml` naming `gantry-sdk`)",
                sdk.display()
            ));
        }
        return Ok(path_dependency(&folder, &sdk));
    }
    let inside_checkout = folder
        .ancestors()
        .skip(1)
        .map(|ancestor| ancestor.join("sdk"))
        .find(|sdk| is_sdk(sdk));
    if let Some(sdk) = inside_checkout {
        return Ok(path_dependency(&folder, &sdk));
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    if is_sdk(&built_from)
        && let Ok(sdk) = built_from.canonicalize()
    {
        return Ok(path_dependency(&folder, &sdk));
    }
    Ok(format!("gantry-sdk = \"{}\"", env!("CARGO_PKG_VERSION")))
}

fn is_sdk(folder: &Path) -> bool {
    std::fs::read_to_string(folder.join("Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|l| l.trim() == "name = \"gantry-sdk\""))
}

fn path_dependency(folder: &Path, sdk: &Path) -> String {
    let path = relative_path(folder, sdk).unwrap_or_else(|| sdk.to_owned());
    let text = path.display().to_string();
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("gantry-sdk = {{ path = \"{escaped}\" }}")
}

/// `path` made absolute and free of `.`/`..`, resolving symlinks in the
/// part that exists.
fn absolute(path: &Path) -> Result<PathBuf, String> {
    let joined = std::env::current_dir()
        .map_err(|e| format!("cannot read the current folder: {e}"))?
        .join(path);
    // Canonicalize the longest existing ancestor, then add the rest.
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut result = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve `{}`: {e}", existing.display()))?;
    for name in rest.into_iter().rev() {
        result.push(name);
    }
    Ok(result)
}

/// `to` relative to `from` (both absolute and normalized).
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    if from.first() != to.first() {
        return None;
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for component in &to[common..] {
        relative.push(component);
    }
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(step_name(Path::new("a/my-step")).unwrap(), "my-step");
        assert!(step_name(Path::new("1step")).is_err());
        assert!(step_name(Path::new("has space")).is_err());
        assert!(step_name(Path::new("/")).is_err());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/r/steps/greet"), Path::new("/r/sdk")),
            Some(PathBuf::from("../../sdk"))
        );
        assert_eq!(
            relative_path(Path::new("/r"), Path::new("/r/sdk")),
            Some(PathBuf::from("sdk"))
        );
    }

    #[test]
    fn inside_this_repository_the_sdk_is_a_relative_path() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let line = sdk_dependency(&repo.join("scratch/new-step"), None).unwrap();
        assert_eq!(line, "gantry-sdk = { path = \"../../sdk\" }");
    }

    #[test]
    fn templates_name_the_step_everywhere() {
        for lang in Lang::value_variants() {
            for (path, template, _) in lang.templates() {
                let text = template
                    .replace("__NAME__", "x")
                    .replace("__SDK_DEPENDENCY__", "y");
                assert_eq!(placeholder(&text), None, "{lang:?} {path}");
            }
        }
        // The check itself: a placeholder is found, Python's dunders are not.
        assert_eq!(placeholder("a __NAMES__ b"), Some("__NAMES__"));
        assert_eq!(placeholder("__pycache__/ and __init__"), None);
    }

    /// The first `__UPPER_CASE__` word left in `text`, if any.
    fn placeholder(text: &str) -> Option<&str> {
        text.match_indices("__").find_map(|(start, _)| {
            let rest = &text[start + 2..];
            let word = rest.split("__").next()?;
            let is_placeholder = !word.is_empty()
                && rest.len() > word.len()
                && word.starts_with(|c: char| c.is_ascii_uppercase())
                && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            is_placeholder.then(|| &text[start..start + 4 + word.len()])
        })
    }

    #[test]
    fn every_component_step_carries_the_wit_it_is_built_against() {
        for lang in [Lang::Python, Lang::Js] {
            let templates = lang.templates();
            let paths: Vec<&str> = templates.iter().map(|t| t.0).collect();
            assert!(paths.contains(&"wit/cli.wit"), "{lang:?}");
            let build = templates.iter().find(|t| t.0 == "build.sh").unwrap().1;
            assert!(build.contains("wasi:cli/command@0.2.12"), "{lang:?}");
            let cli = templates.iter().find(|t| t.0 == "wit/cli.wit").unwrap().1;
            assert!(cli.starts_with("package wasi:cli@0.2.12;"));
        }
    }
}
