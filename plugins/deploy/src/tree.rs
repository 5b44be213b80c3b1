//! Copying an artifact's tree: files, folders and relative symbolic links
//! that stay inside the tree. Everything else (absolute links, links that
//! lead outside, devices, sockets, pipes) is refused before it is copied.
//!
//! WASI preview 1 has no permission bits or owners, so copies get the
//! defaults of the folder they are written to. Each file is flushed to
//! disk (`fd_sync`) before the copy counts as done.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

use gantry_sdk::{Result, ResultExt, bail};

/// How many links one link may go through before it counts as a loop
/// (Linux's own limit).
const MAX_HOPS: usize = 40;

/// What [`copy_tree`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    pub files: usize,
    pub dirs: usize,
    pub links: usize,
    pub bytes: u64,
}

/// Copies the folder `source` to `dest`, which must not exist yet. The
/// links of the tree are checked first, so a refused link leaves nothing
/// behind; an I/O error half-way may leave a partial `dest`, which the
/// caller removes.
pub fn copy_tree(source: &Path, dest: &Path) -> Result<Copied> {
    let meta = fs::metadata(source)
        .with_context(|| format!("cannot read the artifact folder `{}`", source.display()))?;
    if !meta.is_dir() {
        bail!("`{}` is not a folder", source.display());
    }
    check_tree(source, Path::new(""))?;
    let mut copied = Copied::default();
    fs::create_dir(dest).with_context(|| format!("cannot create `{}`", dest.display()))?;
    copy_dir(source, dest, &mut copied)?;
    Ok(copied)
}

/// The names in a folder, sorted so that copies and errors are
/// deterministic.
fn entries(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        names.push(entry.file_name());
    }
    names.sort();
    Ok(names)
}

/// Refuses what cannot be copied safely anywhere under `root/relative`.
fn check_tree(root: &Path, relative: &Path) -> Result<()> {
    let dir = root.join(relative);
    for name in entries(&dir)? {
        let rel = relative.join(&name);
        let path = root.join(&rel);
        let kind = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?
            .file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            check_link(root, &rel, &target).map_err(|reason| {
                gantry_sdk::Error::new(format!(
                    "refusing symbolic link `{}` -> `{}`: {reason}",
                    path.display(),
                    target.display()
                ))
            })?;
        } else if kind.is_dir() {
            check_tree(root, &rel)?;
        } else if !kind.is_file() {
            bail!(
                "`{}` is neither a file, a folder nor a symbolic link; it cannot be deployed",
                path.display()
            );
        }
    }
    Ok(())
}

/// One step of a path while resolving a link.
enum Part {
    Root,
    Up,
    Name(OsString),
}

/// The parts of a path, `.` left out.
fn parts(path: &Path) -> impl DoubleEndedIterator<Item = Part> + '_ {
    path.components().filter_map(|component| match component {
        Component::Prefix(_) | Component::RootDir => Some(Part::Root),
        Component::CurDir => None,
        Component::ParentDir => Some(Part::Up),
        Component::Normal(name) => Some(Part::Name(name.to_owned())),
    })
}

/// Checks that the link at `root/link` (a path relative to `root`) with
/// this target stays inside `root`, following the tree's own links on the
/// way, as the system would when the copy is served: `d -> .` next to
/// `l -> d/..` leaves the tree although `d/..` looks harmless. Absolute
/// targets are refused outright (wasmtime refuses to create them anyway).
pub fn check_link(root: &Path, link: &Path, target: &Path) -> std::result::Result<(), String> {
    if target.as_os_str().is_empty() {
        return Err("the link is empty".into());
    }
    let mut stack: Vec<OsString> = link
        .parent()
        .map(|parent| {
            parts(parent)
                .filter_map(|part| match part {
                    Part::Name(name) => Some(name),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut pending: VecDeque<Part> = parts(target).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part {
            Part::Root => {
                return Err("absolute targets are not allowed; use a relative one".into());
            }
            Part::Up => {
                if stack.pop().is_none() {
                    return Err("it leads outside the artifact".into());
                }
            }
            Part::Name(name) => {
                stack.push(name);
                let here = root.join(stack.iter().collect::<PathBuf>());
                let is_link = fs::symlink_metadata(&here)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err("too many levels of links (a loop?)".into());
                    }
                    let next = fs::read_link(&here).map_err(|e| e.to_string())?;
                    stack.pop();
                    for part in parts(&next).rev() {
                        pending.push_front(part);
                    }
                }
            }
        }
    }
    Ok(())
}

fn copy_dir(source: &Path, dest: &Path, copied: &mut Copied) -> Result<()> {
    for name in entries(source)? {
        let from = source.join(&name);
        let to = dest.join(&name);
        let kind = fs::symlink_metadata(&from)
            .with_context(|| format!("cannot read `{}`", from.display()))?
            .file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&from)
                .with_context(|| format!("cannot read `{}`", from.display()))?;
            symlink(&target, &to).with_context(|| format!("cannot create `{}`", to.display()))?;
            copied.links += 1;
        } else if kind.is_dir() {
            fs::create_dir(&to).with_context(|| format!("cannot create `{}`", to.display()))?;
            copied.dirs += 1;
            copy_dir(&from, &to, copied)?;
        } else {
            copied.bytes += copy_file(&from, &to)
                .with_context(|| format!("cannot copy `{}`", from.display()))?;
            copied.files += 1;
        }
    }
    Ok(())
}

/// Copies one file's bytes into a new file and flushes it to disk.
fn copy_file(from: &Path, to: &Path) -> io::Result<u64> {
    let mut input = File::open(from)?;
    let mut output = OpenOptions::new().write(true).create_new(true).open(to)?;
    let bytes = io::copy(&mut input, &mut output)?;
    output.sync_all()?;
    Ok(bytes)
}

/// Creates the symbolic link `link` pointing at `target`, as written.
#[cfg(unix)]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Creates the symbolic link `link` pointing at `target`, as written.
/// (`std::os::wasi::fs::symlink_path` is still unstable; `soft_link` is the
/// stable way to reach WASI's `path_symlink`.)
#[cfg(target_os = "wasi")]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[allow(deprecated)]
    fs::soft_link(target, link)
}

/// Creates the symbolic link `link` pointing at `target`, as written.
#[cfg(not(any(unix, target_os = "wasi")))]
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    let _ = (target, link);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symbolic links are only supported on WASI and Unix",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(root: &Path, at: &str, target: &str) {
        let path = root.join(at);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(Path::new(target), &path).unwrap();
    }

    fn check(root: &Path, at: &str) -> std::result::Result<(), String> {
        let target = fs::read_link(root.join(at)).unwrap();
        check_link(root, Path::new(at), &target)
    }

    #[test]
    fn links_inside_the_tree_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/file"), "x").unwrap();
        link(root, "top", "a/b/file");
        link(root, "a/b/sibling", "file");
        link(root, "a/b/up", "../../a/./b/file");
        link(root, "a/dir", "b");
        link(root, "a/through", "dir/file");
        link(root, "dangling", "not/there/yet");
        for at in [
            "top",
            "a/b/sibling",
            "a/b/up",
            "a/dir",
            "a/through",
            "dangling",
        ] {
            check(root, at).unwrap_or_else(|e| panic!("{at}: {e}"));
        }
    }

    #[test]
    fn links_that_leave_the_tree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a")).unwrap();
        link(&root, "abs", "/etc/passwd");
        link(&root, "up", "../outside");
        link(&root, "a/up2", "../../outside");
        link(&root, "a/detour", "x/../../..");
        // `self -> .` makes `self/..` the parent of the tree, though it
        // looks like the tree itself.
        link(&root, "self", ".");
        link(&root, "sneaky", "self/..");
        link(&root, "loop1", "loop2");
        link(&root, "loop2", "loop1");
        link(&root, "via-abs", "abs");
        let expect = |at: &str, reason: &str| {
            let error = check(&root, at).unwrap_err();
            assert!(error.contains(reason), "{at}: {error}");
        };
        expect("abs", "absolute");
        expect("up", "outside");
        expect("a/up2", "outside");
        expect("a/detour", "outside");
        expect("sneaky", "outside");
        expect("loop1", "loop");
        expect("via-abs", "absolute");
        check(&root, "self").unwrap();
    }

    #[test]
    fn copy_keeps_files_folders_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir_all(source.join("empty")).unwrap();
        fs::create_dir_all(source.join("docs/deep")).unwrap();
        fs::write(source.join("docs/deep/a.txt"), "abc").unwrap();
        fs::write(source.join("b.bin"), [0u8, 1, 2, 255]).unwrap();
        link(&source, "docs/latest", "deep/a.txt");
        let dest = dir.path().join("dest");
        let copied = copy_tree(&source, &dest).unwrap();
        assert_eq!(
            copied,
            Copied {
                files: 2,
                dirs: 3,
                links: 1,
                bytes: 7
            }
        );
        assert!(dest.join("empty").is_dir());
        assert_eq!(fs::read(dest.join("b.bin")).unwrap(), [0u8, 1, 2, 255]);
        assert_eq!(
            fs::read_link(dest.join("docs/latest")).unwrap(),
            Path::new("deep/a.txt")
        );
        assert_eq!(fs::read_to_string(dest.join("docs/latest")).unwrap(), "abc");
    }

    #[test]
    fn a_refused_link_copies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir_all(source.join("z")).unwrap();
        fs::write(source.join("a.txt"), "a").unwrap();
        link(&source, "z/escape", "../../secret");
        let dest = dir.path().join("dest");
        let error = copy_tree(&source, &dest).unwrap_err();
        assert!(error.message().contains("z/escape"), "{error}");
        assert!(!dest.exists());
    }

    #[test]
    fn the_source_must_be_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "x").unwrap();
        assert!(copy_tree(&dir.path().join("file"), &dir.path().join("d")).is_err());
        assert!(copy_tree(&dir.path().join("missing"), &dir.path().join("d")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir(&source).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(source.join("sock")).unwrap();
        let error = copy_tree(&source, &dir.path().join("dest")).unwrap_err();
        assert!(error.message().contains("neither a file"), "{error}");
    }
}
