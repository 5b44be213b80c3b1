//! What the git repository around a manifest says about the code being
//! deployed: the commit checked out, the branch, and where `origin` points.
//! It fills the `github` context when gantry runs outside a CI.
//!
//! The repository is read as files, never by running `git`: a step with
//! `workspace: write` may have written `.git/config` in an earlier run, and
//! git runs commands that config names (`core.fsmonitor`, for one). Reading
//! a handful of small files runs nothing, needs no git installed, and any
//! file that is missing, too big or malformed just leaves its field empty:
//! nothing here can fail a run.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most any file read here may hold; refs and `HEAD` are a line, a
/// config a few KiB. A bigger file is not trusted to be what it claims.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The facts of one checkout; each empty when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkout {
    /// The commit `HEAD` resolves to (40 or 64 lowercase hex).
    pub sha: String,
    /// `refs/heads/<branch>` when on a branch; empty when detached.
    pub reference: String,
    /// The branch name.
    pub ref_name: String,
    /// `owner/name` from the `origin` remote's URL.
    pub repository: String,
    /// `https://host` of the `origin` remote.
    pub server_url: String,
}

/// Reads the repository holding `folder` (or one of its parents).
pub fn checkout(folder: &Path) -> Checkout {
    let Some((git_dir, common_dir)) = find_git_dir(folder) else {
        return Checkout::default();
    };
    let mut found = Checkout::default();
    let head = read_small(&git_dir.join("HEAD")).unwrap_or_default();
    let head = head.trim();
    if let Some(reference) = head.strip_prefix("ref:") {
        let reference = reference.trim();
        if is_ref_name(reference) {
            found.sha = resolve_ref(&git_dir, &common_dir, reference).unwrap_or_default();
            found.reference = reference.to_owned();
            found.ref_name = reference
                .strip_prefix("refs/heads/")
                .unwrap_or(reference)
                .to_owned();
        }
    } else if is_object_id(head) {
        found.sha = head.to_owned();
    }
    if let Some(url) = origin_url(&common_dir) {
        (found.server_url, found.repository) = split_remote(&url);
    }
    found
}

/// The git folder of the repository around `folder`, and its common
/// folder (they differ in a linked worktree). A `.git` file (worktrees,
/// submodules) points at the real one.
fn find_git_dir(folder: &Path) -> Option<(PathBuf, PathBuf)> {
    for dir in folder.ancestors() {
        let dot_git = dir.join(".git");
        let git_dir = if dot_git.is_dir() {
            dot_git
        } else if dot_git.is_file() {
            let text = read_small(&dot_git)?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            dir.join(target)
        } else {
            continue;
        };
        let common = match read_small(&git_dir.join("commondir")) {
            Some(common) => git_dir.join(common.trim()),
            None => git_dir.clone(),
        };
        return Some((git_dir, common));
    }
    None
}

/// The commit a ref names: its loose file (in the worktree's own folder,
/// then the common one), else its line in `packed-refs`.
fn resolve_ref(git_dir: &Path, common_dir: &Path, reference: &str) -> Option<String> {
    for dir in [git_dir, common_dir] {
        if let Some(text) = read_small(&dir.join(reference)) {
            let id = text.trim();
            return is_object_id(id).then(|| id.to_owned());
        }
    }
    let packed = read_small(&common_dir.join("packed-refs"))?;
    packed.lines().find_map(|line| {
        let (id, name) = line.split_once(' ')?;
        (name.trim() == reference && is_object_id(id)).then(|| id.to_owned())
    })
}

/// `url` of `[remote "origin"]` in the repository's config.
fn origin_url(common_dir: &Path) -> Option<String> {
    let config = read_small(&common_dir.join("config"))?;
    let mut in_origin = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let section: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            in_origin = section == "[remote\"origin\"]";
            continue;
        }
        if !in_origin {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim().eq_ignore_ascii_case("url")
        {
            let value = value.trim().trim_matches('"');
            return Some(value.to_owned());
        }
    }
    None
}

/// `https://host` and `owner/name` of a remote URL, as GitHub names them:
/// `https://github.com/o/r.git`, `git@github.com:o/r.git` and
/// `ssh://git@host:22/o/r` all give `https://github.com`-style hosts.
/// Credentials in the URL are dropped; a local path gives nothing.
fn split_remote(url: &str) -> (String, String) {
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git") {
            return Default::default();
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit('@').next().unwrap_or(authority);
        // A port belongs to the transport, not the web address.
        let host = host.split(':').next().unwrap_or(host);
        (host, path)
    } else if let Some((authority, path)) = url.split_once(':')
        && !authority.contains('/')
    {
        // scp-like `user@host:owner/name`.
        (authority.rsplit('@').next().unwrap_or(authority), path)
    } else {
        return Default::default();
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let clean = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._/".contains(c))
    };
    if !clean(host) || !clean(path) {
        return Default::default();
    }
    (format!("https://{host}"), path.to_owned())
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64)
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// A ref `HEAD` may point at: under `refs/`, no `..`, nothing that could
/// leave the git folder or carry control characters into a log.
fn is_ref_name(reference: &str) -> bool {
    reference.starts_with("refs/")
        && !reference.contains("..")
        && !reference.contains('\\')
        && !reference.chars().any(|c| c.is_control() || c == ' ')
}

/// A small file's text, or `None` when it is missing, too big or not
/// UTF-8.
fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .ok()?;
    (text.len() as u64 <= MAX_FILE_BYTES).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_as_github_names_them() {
        let github = ("https://github.com".to_owned(), "acme/site".to_owned());
        assert_eq!(split_remote("https://github.com/acme/site.git"), github);
        assert_eq!(split_remote("git@github.com:acme/site.git"), github);
        assert_eq!(split_remote("ssh://git@github.com:22/acme/site"), github);
        assert_eq!(
            split_remote("https://user:token@gitlab.example.com/group/sub/app.git"),
            (
                "https://gitlab.example.com".to_owned(),
                "group/sub/app".to_owned()
            )
        );
        assert_eq!(split_remote("/srv/repos/site.git"), Default::default());
        assert_eq!(split_remote("file:///srv/site"), Default::default());
    }

    #[test]
    fn packed_refs_and_a_detached_head() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(&git).unwrap();
        let sha = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(git.join("HEAD"), "ref: refs/heads/release\n").unwrap();
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack-refs with: peeled\n{sha} refs/heads/release\n"),
        )
        .unwrap();
        let nested = dir.path().join("deploy/site");
        std::fs::create_dir_all(&nested).unwrap();
        let found = checkout(&nested);
        assert_eq!(found.sha, sha);
        assert_eq!(found.reference, "refs/heads/release");
        assert_eq!(found.ref_name, "release");
        assert_eq!(found.repository, "");

        std::fs::write(git.join("HEAD"), format!("{sha}\n")).unwrap();
        let detached = checkout(&nested);
        assert_eq!(
            (detached.sha.as_str(), detached.reference.as_str()),
            (sha, "")
        );

        // A HEAD pointing out of the git folder is not followed.
        std::fs::write(git.join("HEAD"), "ref: refs/../../secret\n").unwrap();
        assert_eq!(checkout(&nested), Checkout::default());
    }

    proptest::proptest! {
        /// Whatever a step may have written into `.git`, reading it
        /// neither panics nor yields a field that is not what it claims.
        #[test]
        fn any_repository_files_give_clean_facts(
            head in "(ref: refs/heads/)?[ -~\n]{0,60}",
            config in "(\\[remote \"origin\"\\]\n\turl = )?[ -~\n]{0,120}",
            packed in "[0-9a-f ]{0,50}[ -~\n]{0,80}",
        ) {
            let dir = tempfile::tempdir().unwrap();
            let git = dir.path().join(".git");
            std::fs::create_dir_all(&git).unwrap();
            std::fs::write(git.join("HEAD"), &head).unwrap();
            std::fs::write(git.join("config"), &config).unwrap();
            std::fs::write(git.join("packed-refs"), &packed).unwrap();
            let found = checkout(dir.path());
            proptest::prop_assert!(found.sha.is_empty() || is_object_id(&found.sha));
            proptest::prop_assert!(found.reference.is_empty() || is_ref_name(&found.reference));
            for text in [&found.repository, &found.server_url, &found.ref_name] {
                proptest::prop_assert!(!text.chars().any(char::is_control), "{text:?}");
            }
        }
    }
}
