//! `gantry new`: scaffolds a step — source, metadata, a pipeline running
//! it, and a README with the build command — that builds and passes its
//! own test as written. The templates live in `runner/templates/`.

use super::console::outln;
use std::path::{Component, Path, PathBuf};

use clap::{Args, ValueEnum};

use super::print_error;
use crate::exit::Exit;

/// Create a new step in a new folder.
///
/// Rust steps depend on `gantry-sdk`. Where from: `--sdk PATH` when given;
/// else, when the new folder is inside a gantry checkout, its `sdk/` by a
/// relative path; else the checkout this gantry was built from, if it is
/// still there; else the registry version matching this gantry.
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
    Rust,
    C,
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

impl NewCommand {
    pub fn execute(self) -> Exit {
        match self.scaffold() {
            Ok(()) => Exit::Success,
            Err(message) => {
                print_error(message);
                Exit::Invalid
            }
        }
    }

    fn scaffold(&self) -> Result<(), String> {
        let name = step_name(&self.path)?;
        if self.path.exists() {
            return Err(format!("`{}` already exists", self.path.display()));
        }
        if self.sdk.is_some() && self.lang != Lang::Rust {
            return Err("`--sdk` applies to Rust steps only".into());
        }
        let (templates, sdk) = match self.lang {
            Lang::Rust => (RUST, sdk_dependency(&self.path, self.sdk.as_deref())?),
            Lang::C => (C, String::new()),
        };
        for (relative, template, executable) in templates {
            let text = template
                .replace("__NAME__", &name)
                .replace("__SDK_DEPENDENCY__", &sdk);
            let path = self.path.join(relative);
            write_file(&path, &text, *executable)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        }
        outln!(
            "created the {} step `{name}` in {}",
            match self.lang {
                Lang::Rust => "Rust",
                Lang::C => "C",
            },
            self.path.display()
        );
        if self.lang == Lang::Rust {
            outln!("  gantry-sdk: {sdk}");
        }
        outln!("next: follow {}", self.path.join("README.md").display());
        Ok(())
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
        for (path, template, _) in RUST.iter().chain(C) {
            let text = template
                .replace("__NAME__", "x")
                .replace("__SDK_DEPENDENCY__", "y");
            assert!(!text.contains("__"), "{path} keeps a placeholder");
        }
    }
}
