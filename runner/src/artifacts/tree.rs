//! [`Tree`]: what one upload holds, by path, with a digest of the whole.
//!
//! Paths are relative, `/`-separated UTF-8 with no empty, `.` or `..`
//! component, and entries are sorted by the bytes of their path, so a
//! folder always comes before what it holds. The digest is the sha256 of a
//! canonical listing (see [`Tree::canonical_listing`]), so two uploads with
//! the same names, kinds, modes, link targets and contents have the same
//! digest wherever and whenever they were made.
//!
//! A tree read back from disk is not trusted: [`Tree::validate`] checks it
//! describes a folder that can be recreated without writing outside it.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ArtifactError, hex, is_sha256_hex};

/// The most symlinks one link target may pass through, as Linux allows.
const MAX_LINK_HOPS: u32 = 40;
const TOO_MANY_HOPS: &str = "goes through too many symlinks";

/// What one upload holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// The sha256 (lowercase hex) of [`Tree::canonical_listing`].
    pub digest: String,
    /// The sum of the files' sizes, in bytes.
    pub size: u64,
    /// Every entry, sorted by path.
    pub entries: Vec<Entry>,
}

/// One file, folder or symlink of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the artifact's root, `/`-separated.
    pub path: String,
    #[serde(flatten)]
    pub kind: EntryKind,
}

/// What an entry is. Modes are the permission bits (`mode & 0o777`), as a
/// number; setuid, setgid and sticky bits are never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file, stored as the blob named by its sha256.
    File {
        sha256: String,
        size: u64,
        mode: u32,
    },
    /// A folder.
    Dir { mode: u32 },
    /// A symlink, kept as its target text (never followed when stored).
    Symlink { target: String },
}

impl Tree {
    /// A tree of `entries`, sorted, with its size and digest computed.
    pub fn new(mut entries: Vec<Entry>) -> Tree {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let size = entries
            .iter()
            .map(|entry| match entry.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum();
        let digest = hex(&Sha256::digest(Self::listing(&entries).as_bytes()));
        Tree {
            digest,
            size,
            entries,
        }
    }

    /// How many regular files the tree holds.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| matches!(entry.kind, EntryKind::File { .. }))
            .count()
    }

    /// The sha256 of every file's content (with repeats).
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|entry| match &entry.kind {
            EntryKind::File { sha256, .. } => Some(sha256.as_str()),
            _ => None,
        })
    }

    /// The text the digest is taken over: a header line, then one line per
    /// entry in path order, every free-form string written as
    /// `<byte length>:<bytes>` so no name can forge another line:
    ///
    /// ```text
    /// gantry-tree-v1
    /// dir 755 3:css
    /// file 644 12 <sha256> 13:css/site.css
    /// symlink 6:latest 10:index.html
    /// ```
    pub fn canonical_listing(&self) -> String {
        Self::listing(&self.entries)
    }

    fn listing(entries: &[Entry]) -> String {
        let mut text = String::from("gantry-tree-v1\n");
        for entry in entries {
            let path = &entry.path;
            let _ = match &entry.kind {
                EntryKind::File { sha256, size, mode } => {
                    writeln!(text, "file {mode:o} {size} {sha256} {}:{path}", path.len())
                }
                EntryKind::Dir { mode } => writeln!(text, "dir {mode:o} {}:{path}", path.len()),
                EntryKind::Symlink { target } => writeln!(
                    text,
                    "symlink {}:{path} {}:{target}",
                    path.len(),
                    target.len()
                ),
            };
        }
        text
    }

    /// Checks the tree can be recreated safely: sane relative paths, in
    /// order, each inside a folder of the tree; well-formed digests; modes
    /// without special bits; links that stay inside; and a digest that
    /// matches the entries.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let invalid = |message: String| Err(ArtifactError::InvalidTree(message));
        let mut kinds: HashMap<&str, &EntryKind> = HashMap::with_capacity(self.entries.len());
        let mut previous: Option<&str> = None;
        let mut size = 0u64;
        for entry in &self.entries {
            let path = entry.path.as_str();
            if let Some(reason) = path_problem(path) {
                return invalid(format!("the entry path `{path}` {reason}"));
            }
            if previous.is_some_and(|previous| previous >= path) {
                return invalid(format!(
                    "the entry `{path}` is out of order or listed twice"
                ));
            }
            previous = Some(path);
            if let Some((parent, _)) = path.rsplit_once('/')
                && !matches!(kinds.get(parent), Some(EntryKind::Dir { .. }))
            {
                return invalid(format!(
                    "the entry `{path}` is not inside a folder of the tree"
                ));
            }
            match &entry.kind {
                EntryKind::File {
                    sha256,
                    size: file_size,
                    mode,
                } => {
                    if !is_sha256_hex(sha256) {
                        return invalid(format!("the file `{path}` has a malformed sha256"));
                    }
                    if mode & !0o777 != 0 {
                        return invalid(format!("the file `{path}` has mode {mode:o}"));
                    }
                    size = size.saturating_add(*file_size);
                }
                EntryKind::Dir { mode } => {
                    if mode & !0o777 != 0 {
                        return invalid(format!("the folder `{path}` has mode {mode:o}"));
                    }
                }
                EntryKind::Symlink { .. } => {}
            }
            kinds.insert(path, &entry.kind);
        }
        check_links(&self.entries)?;
        if size != self.size {
            return invalid(format!(
                "its size says {} bytes, its files hold {size}",
                self.size
            ));
        }
        let digest = hex(&Sha256::digest(self.canonical_listing().as_bytes()));
        if digest != self.digest {
            return invalid(format!(
                "its digest is {}, but its entries hash to {digest}",
                self.digest
            ));
        }
        Ok(())
    }
}

/// Why `path` is not a sane relative entry path, if it is not.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("is absolute")
    } else if path.contains('\0') {
        Some("holds a NUL byte")
    } else if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("has an empty, `.` or `..` component")
    } else {
        None
    }
}

/// Refuses any symlink of `entries` whose target is absolute or, followed
/// from where the link sits (through the tree's other links, as the kernel
/// would), climbs above the artifact's root.
pub(crate) fn check_links(entries: &[Entry]) -> Result<(), ArtifactError> {
    let links: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|entry| match &entry.kind {
            EntryKind::Symlink { target } => Some((entry.path.as_str(), target.as_str())),
            _ => None,
        })
        .collect();
    for (&path, &target) in &links {
        let parent: Vec<String> = match path.rsplit_once('/') {
            Some((parent, _)) => parent.split('/').map(str::to_owned).collect(),
            None => Vec::new(),
        };
        let mut hops = 0;
        resolve(&links, parent, target, false, &mut hops).map_err(|reason| {
            ArtifactError::LinkEscapes {
                path: path.to_owned(),
                target: target.to_owned(),
                reason,
            }
        })?;
    }
    Ok(())
}

/// Follows `target` from the folder `at` (components from the root) within
/// the tree, replacing each intermediate component that is one of `links`
/// by where it leads. Returns the components reached, or why the target
/// leaves the tree.
fn resolve(
    links: &HashMap<&str, &str>,
    mut at: Vec<String>,
    target: &str,
    follow_last: bool,
    hops: &mut u32,
) -> Result<Vec<String>, &'static str> {
    if target.is_empty() {
        return Err("is empty");
    }
    if target.starts_with('/') {
        return Err("is absolute");
    }
    if target.contains('\0') {
        return Err("holds a NUL byte");
    }
    let parts: Vec<&str> = target
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    for (index, part) in parts.iter().enumerate() {
        if *part == ".." {
            if at.pop().is_none() {
                return Err("climbs out of the artifact");
            }
            continue;
        }
        at.push((*part).to_owned());
        if index + 1 == parts.len() && !follow_last {
            break;
        }
        if let Some(next) = links.get(at.join("/").as_str()) {
            *hops += 1;
            if *hops > MAX_LINK_HOPS {
                return Err(TOO_MANY_HOPS);
            }
            at.pop();
            at = resolve(links, at, next, true, hops).map_err(|reason| match reason {
                TOO_MANY_HOPS => TOO_MANY_HOPS,
                _ => "leads out of the artifact through another link",
            })?;
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: &str, target: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink {
                target: target.into(),
            },
        }
    }

    fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir { mode: 0o755 },
        }
    }

    fn escapes(entries: Vec<Entry>) -> Option<String> {
        check_links(&entries).err().map(|e| e.to_string())
    }

    #[test]
    fn links_inside_are_accepted() {
        assert_eq!(
            escapes(vec![
                dir("a"),
                dir("a/b"),
                link("a/b/up", "../../x"),
                link("a/here", "./b/../b"),
                link("top", "a/b"),
                link("dangling", "nothing/here"),
            ]),
            None
        );
    }

    #[test]
    fn links_that_leave_are_refused() {
        let message = escapes(vec![link("l", "/etc/passwd")]).unwrap();
        assert!(
            message.contains("`l`") && message.contains("absolute"),
            "{message}"
        );
        let message = escapes(vec![dir("a"), link("a/l", "../../x")]).unwrap();
        assert!(message.contains("climbs out"), "{message}");
        // `a/up` leads to the root, so `a/up/..` is above it, although it
        // looks lexically like `a`.
        let message = escapes(vec![dir("a"), link("a/up", ".."), link("b", "a/up/../x")]).unwrap();
        assert!(message.contains("`b`"), "{message}");
        let message = escapes(vec![link("x", "y/z"), link("y", "x/w")]).unwrap();
        assert!(message.contains("too many symlinks"), "{message}");
    }

    #[test]
    fn the_digest_covers_every_field() {
        let file = |mode| Entry {
            path: "f".into(),
            kind: EntryKind::File {
                sha256: "0".repeat(64),
                size: 1,
                mode,
            },
        };
        let a = Tree::new(vec![file(0o644)]);
        let b = Tree::new(vec![file(0o755)]);
        assert_ne!(a.digest, b.digest);
        assert_eq!(a, Tree::new(vec![file(0o644)]));
        a.validate().unwrap();
        let mut tampered = a.clone();
        tampered.size = 2;
        assert!(tampered.validate().is_err());
    }

    #[test]
    fn validation_refuses_unsafe_paths() {
        for path in ["", "/abs", "a/../b", "./a", "a//b"] {
            let tree = Tree::new(vec![dir(path)]);
            assert!(tree.validate().is_err(), "{path:?}");
        }
        // A file under a link would be written through the link.
        let tree = Tree::new(vec![link("a", "b"), dir("a/c")]);
        assert!(tree.validate().is_err());
        let tree = Tree::new(vec![dir("a"), dir("a/c")]);
        tree.validate().unwrap();
    }
}
