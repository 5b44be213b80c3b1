//! Step group files (`uses: ./steps/publish.yml`): the serde model of a
//! group, like a GitHub composite action, and reading one safely.
//!
//! A group file lives in the manifest's folder tree and is read under the
//! same rules as the manifest: a regular file, no link leading out of the
//! folder, a size cap, located errors naming the group file itself. What
//! its values mean (inputs passed, plugins, nested groups, cycles) is
//! checked when the plan is made, in `plan::groups`.

use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::model::{PluginSpec, Scalar, Spanned, Step};
use super::{ManifestError, parse_document};

/// A group file is small, like a manifest.
const MAX_GROUP_BYTES: u64 = 1024 * 1024;

/// The prefix that makes a step's `uses:` a group file instead of a plugin.
pub const GROUP_PREFIX: &str = "./";

/// Whether a step's `uses:` names a group file.
pub fn is_group_reference(uses: &str) -> bool {
    uses.starts_with(GROUP_PREFIX) || uses.starts_with("../") || uses.starts_with('/')
}

/// A whole group file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    #[serde(default)]
    pub inputs: IndexMap<Spanned<String>, GroupInput>,
    #[serde(default)]
    pub outputs: IndexMap<Spanned<String>, GroupOutput>,
    /// The group's own plugins, pinned in the group file or in `gantry.lock`.
    #[serde(default)]
    pub plugins: IndexMap<Spanned<String>, PluginSpec>,
    pub steps: Vec<Step>,
}

/// One declared input of a group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    #[serde(default)]
    pub required: Option<Spanned<bool>>,
    #[serde(default)]
    pub default: Option<Spanned<Scalar>>,
}

/// One declared output of a group: `value: ${{ steps.X.outputs.Y }}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupOutput {
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    pub value: Spanned<Scalar>,
}

/// A group file read and parsed.
#[derive(Debug)]
pub struct LoadedGroup {
    /// The file as messages name it: beside the manifest as the user
    /// named the manifest (`deploy/steps/publish.yml`).
    pub path: PathBuf,
    /// The text, to quote lines in errors.
    pub source: String,
    pub group: GroupFile,
}

/// The path below the manifest's folder that `uses:` names, or why it is
/// refused: a group is a file of the project, so absolute paths and `..`
/// are refused outright (even one that would come back in).
pub fn relative_path(uses: &str) -> Result<PathBuf, String> {
    let path = Path::new(uses);
    if path.is_absolute() {
        return Err(format!(
            "the step group `{uses}` is an absolute path; a group is a file in the manifest's folder"
        ));
    }
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "the step group `{uses}` leaves the manifest's folder (`..` is not allowed)"
                ));
            }
        }
    }
    if normal.as_os_str().is_empty() {
        return Err(format!("the step group `{uses}` names no file"));
    }
    Ok(normal)
}

/// Reads and parses the group file `relative` below `root`. Errors name
/// the group file as `shown`, with line and column where known.
pub fn load(root: &Path, relative: &Path, shown: &Path) -> Result<LoadedGroup, ManifestError> {
    let full = root.join(relative);
    let relative = shown;
    let bytes = crate::fsutil::read_project_file(root, &full, MAX_GROUP_BYTES)
        .map_err(|e| {
            let error =
                ManifestError::whole_file(relative, format!("cannot read the step group: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                error.with_hint(
                    "a step group's path is relative to the manifest's folder; check the spelling",
                )
            } else {
                error
            }
        })?
        .ok_or_else(|| {
            ManifestError::whole_file(
                relative,
                format!("the step group is longer than the limit of {MAX_GROUP_BYTES} bytes"),
            )
        })?;
    let source = String::from_utf8(bytes).map_err(|e| {
        ManifestError::whole_file(relative, format!("the step group is not UTF-8: {e}"))
    })?;
    if source
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Err(
            ManifestError::whole_file(relative, "the step group is empty")
                .with_hint("a step group needs at least `name:` and `steps:`"),
        );
    }
    let group = parse_document(relative, &source)?;
    Ok(LoadedGroup {
        path: relative.to_owned(),
        source,
        group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_below_the_folder_are_groups() {
        assert_eq!(
            relative_path("./steps/publish.yml").unwrap(),
            PathBuf::from("steps/publish.yml")
        );
        assert!(relative_path("./steps/../../x.yml").is_err());
        assert!(relative_path("./steps/../x.yml").is_err());
        assert!(relative_path("/etc/passwd").is_err());
        assert!(relative_path("./").is_err());
        assert!(is_group_reference("./a.yml"));
        assert!(is_group_reference("../a.yml"));
        assert!(!is_group_reference("render"));
    }
}
