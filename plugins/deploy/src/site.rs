//! The layout of a deploy target and every change made to it.
//!
//! ```text
//! <target>/
//!   current -> releases/<id>     relative symbolic link, the live release
//!   releases/<id>/               one folder per release
//!   releases.log                 deployed ids, oldest first
//!   releases/.incoming-<id>/     a release being copied (never served)
//!   releases/.trash-<id>/        a release being deleted
//!   .current-tmp-<id>            the new `current`, just before its rename
//! ```
//!
//! A release appears under its final name only once it is completely
//! copied (a folder rename), and `current` changes in one step (a link
//! renamed over the old one). Pruning follows `releases.log`, the order in
//! which releases were deployed, rather than names or times: folder times
//! are not kept by the copy, and ids need not sort in deploy order.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use gantry_sdk::{Error, Result, ResultExt, bail};

use crate::tree::{self, Copied};

/// The longest release id accepted.
const MAX_ID_LEN: usize = 128;

/// Checks that `id` can name a release folder: 1 to 128 of
/// `A-Z a-z 0-9 . _ -`, not starting with `.` (hidden names are the
/// step's own work folders).
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        bail!("release id `{id}` must be 1 to {MAX_ID_LEN} characters long");
    }
    if id.starts_with('.') {
        bail!("release id `{id}` must not start with `.`");
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        bail!("release id `{id}` contains `{bad}`; use letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

/// What `<target>/current` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// There is no `current`.
    Missing,
    /// A link to `releases/<id>`.
    Release(String),
    /// A link somewhere else, not made by this step.
    Foreign(PathBuf),
}

impl Current {
    /// Whether this is `current` pointing at release `id` (`None`: no
    /// `current` at all).
    fn is(&self, id: Option<&str>) -> bool {
        match (self, id) {
            (Current::Missing, None) => true,
            (Current::Release(live), Some(id)) => live == id,
            _ => false,
        }
    }
}

impl std::fmt::Display for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Current::Missing => f.write_str("missing"),
            Current::Release(id) => write!(f, "release `{id}`"),
            Current::Foreign(target) => write!(f, "`{}`", target.display()),
        }
    }
}

/// A deploy target: the folder holding `current`, `releases/` and
/// `releases.log`.
#[derive(Debug, Clone)]
pub struct Site {
    root: PathBuf,
}

impl Site {
    pub fn new(root: impl Into<PathBuf>) -> Site {
        Site { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn releases(&self) -> PathBuf {
        self.root.join("releases")
    }

    /// Where release `id` lives.
    pub fn release_dir(&self, id: &str) -> PathBuf {
        self.releases().join(id)
    }

    fn incoming_dir(&self, id: &str) -> PathBuf {
        self.releases().join(format!(".incoming-{id}"))
    }

    fn trash_dir(&self, id: &str) -> PathBuf {
        self.releases().join(format!(".trash-{id}"))
    }

    fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    fn next_link(&self, id: &str) -> PathBuf {
        self.root.join(format!(".current-tmp-{id}"))
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("releases.log")
    }

    /// Whether release `id`'s folder exists (as a folder, not a link).
    pub fn has_release(&self, id: &str) -> bool {
        fs::symlink_metadata(self.release_dir(id)).is_ok_and(|m| m.is_dir())
    }

    /// Checks that the target is a folder and creates `releases/`; then
    /// finishes deletions an interrupted prune left behind.
    pub fn prepare(&self) -> Result<()> {
        let meta = fs::metadata(&self.root).with_context(|| {
            format!(
                "cannot open the target folder `{}` (is it granted with `permissions.dirs`, access write?)",
                self.root.display()
            )
        })?;
        if !meta.is_dir() {
            bail!("the target `{}` is not a folder", self.root.display());
        }
        let releases = self.releases();
        match fs::create_dir(&releases) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(
                    Error::from(e).context(format!("cannot create `{}`", releases.display()))
                );
            }
        }
        for entry in fs::read_dir(&releases)
            .with_context(|| format!("cannot list `{}`", releases.display()))?
        {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(".trash-") {
                remove_any(&entry.path())?;
            }
        }
        Ok(())
    }

    /// What `current` is now. A `current` that is not a symbolic link is an
    /// error: it is not this step's to replace.
    pub fn current(&self) -> Result<Current> {
        let link = self.current_link();
        match fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Current::Missing),
            Err(e) => {
                return Err(Error::from(e).context(format!("cannot read `{}`", link.display())));
            }
            Ok(meta) if !meta.file_type().is_symlink() => bail!(
                "`{}` exists and is not a symbolic link; move it away so deploy can manage it",
                link.display()
            ),
            Ok(_) => {}
        }
        let target =
            fs::read_link(&link).with_context(|| format!("cannot read `{}`", link.display()))?;
        Ok(self.parse_link(&target))
    }

    /// `releases/<id>`, `./releases/<id>` or `<root>/releases/<id>` name a
    /// release; anything else is foreign.
    fn parse_link(&self, target: &Path) -> Current {
        let relative = target.strip_prefix(&self.root).unwrap_or(target);
        let parts: Vec<Component> = relative
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        if let [Component::Normal(dir), Component::Normal(id)] = parts.as_slice()
            && *dir == "releases"
            && let Some(id) = id.to_str()
            && check_id(id).is_ok()
        {
            return Current::Release(id.to_owned());
        }
        Current::Foreign(target.to_owned())
    }

    /// Copies `source` into `releases/.incoming-<id>`, then renames it to
    /// `releases/<id>`, which must not exist.
    pub fn install(&self, source: &Path, id: &str) -> Result<Copied> {
        let incoming = self.incoming_dir(id);
        if fs::symlink_metadata(&incoming).is_ok() {
            // Left by an earlier attempt with the same id that was killed.
            remove_any(&incoming)?;
        }
        let copied = match tree::copy_tree(source, &incoming) {
            Ok(copied) => copied,
            Err(e) => {
                let _ = remove_any(&incoming);
                return Err(e);
            }
        };
        let dest = self.release_dir(id);
        if fs::symlink_metadata(&dest).is_ok() {
            let _ = remove_any(&incoming);
            bail!(
                "release `{id}` appeared at `{}` while copying",
                dest.display()
            );
        }
        if let Err(e) = fs::rename(&incoming, &dest) {
            let _ = remove_any(&incoming);
            return Err(Error::from(e).context(format!("cannot rename into `{}`", dest.display())));
        }
        sync_dir(&self.releases());
        Ok(copied)
    }

    /// Points `current` at release `id`, or removes it for `None`, in one
    /// step: a new link `.current-tmp-<id>` -> `releases/<id>` (relative;
    /// WASI refuses absolute link targets) is renamed over `current`.
    pub fn point_current(&self, id: Option<&str>) -> Result<()> {
        let link = self.current_link();
        let Some(id) = id else {
            match fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(
                        Error::from(e).context(format!("cannot remove `{}`", link.display()))
                    );
                }
            }
            sync_dir(&self.root);
            return Ok(());
        };
        check_id(id)?;
        let next = self.next_link(id);
        if fs::symlink_metadata(&next).is_ok() {
            remove_any(&next)?;
        }
        let target = Path::new("releases").join(id);
        tree::symlink(&target, &next)
            .with_context(|| format!("cannot create `{}`", next.display()))?;
        if let Err(e) = fs::rename(&next, &link) {
            let _ = fs::remove_file(&next);
            return Err(Error::from(e).context(format!("cannot replace `{}`", link.display())));
        }
        sync_dir(&self.root);
        Ok(())
    }

    /// The deployed ids, oldest first, as `releases.log` lists them (an
    /// empty list when there is no log). Lines that are not ids are skipped.
    pub fn log(&self) -> Result<Vec<String>> {
        let path = self.log_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::from(e).context(format!("cannot read `{}`", path.display())));
            }
        };
        let mut ids: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim) {
            if check_id(line).is_ok() && !ids.iter().any(|id| id == line) {
                ids.push(line.to_owned());
            }
        }
        Ok(ids)
    }

    /// Replaces `releases.log` in one step: written to a temporary file,
    /// flushed, renamed over the old one.
    fn write_log(&self, ids: &[String]) -> Result<()> {
        let path = self.log_path();
        let temporary = self.root.join(".releases.log.tmp");
        let mut text = String::new();
        for id in ids {
            text.push_str(id);
            text.push('\n');
        }
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &path)
        };
        write().with_context(|| format!("cannot write `{}`", path.display()))?;
        sync_dir(&self.root);
        Ok(())
    }

    /// Adds `id` as the newest release of the log.
    pub fn record(&self, id: &str) -> Result<()> {
        let mut ids = self.log()?;
        ids.retain(|known| known != id);
        ids.push(id.to_owned());
        self.write_log(&ids)
    }

    /// Takes `id` out of the log, if it is there.
    fn forget(&self, id: &str) -> Result<()> {
        let mut ids = self.log()?;
        let before = ids.len();
        ids.retain(|known| known != id);
        if ids.len() != before {
            self.write_log(&ids)?;
        }
        Ok(())
    }

    /// Deletes the oldest releases of the log, keeping the newest `keep`
    /// and never the ones in `protect`. Folders the log does not list are
    /// never touched. Returns the deleted ids, oldest first.
    pub fn prune(&self, keep: usize, protect: &[&str]) -> Result<Vec<String>> {
        let logged = self.log()?;
        let existing: Vec<String> = logged
            .iter()
            .filter(|id| self.has_release(id))
            .cloned()
            .collect();
        let newest = existing.len().saturating_sub(keep);
        let doomed: Vec<String> = existing[..newest]
            .iter()
            .filter(|id| !protect.contains(&id.as_str()))
            .cloned()
            .collect();
        // Moved aside first, so no half-deleted release keeps its name;
        // the log is rewritten before the slow part.
        for id in &doomed {
            self.move_to_trash(id)?;
        }
        let kept: Vec<String> = existing
            .into_iter()
            .filter(|id| !doomed.contains(id))
            .collect();
        if kept != logged {
            self.write_log(&kept)?;
        }
        for id in &doomed {
            remove_any(&self.trash_dir(id))?;
        }
        Ok(doomed)
    }

    fn move_to_trash(&self, id: &str) -> Result<()> {
        let trash = self.trash_dir(id);
        if fs::symlink_metadata(&trash).is_ok() {
            remove_any(&trash)?;
        }
        let dir = self.release_dir(id);
        fs::rename(&dir, &trash)
            .with_context(|| format!("cannot move `{}` aside to delete it", dir.display()))
    }

    /// Deletes release `id` and whatever a deploy of it may have left:
    /// its folder, its half-copied folder, its next `current` link and its
    /// line in the log. Returns whether the release folder existed.
    pub fn remove_release(&self, id: &str) -> Result<bool> {
        let existed = self.has_release(id);
        if existed {
            self.move_to_trash(id)?;
        }
        self.forget(id)?;
        for leftover in [
            self.trash_dir(id),
            self.incoming_dir(id),
            self.next_link(id),
        ] {
            if fs::symlink_metadata(&leftover).is_ok() {
                remove_any(&leftover)?;
            }
        }
        Ok(existed)
    }
}

/// Removes a file, a link (not what it points to) or a whole folder.
fn remove_any(path: &Path) -> Result<()> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let removed = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    removed.with_context(|| format!("cannot remove `{}`", path.display()))
}

/// Asks for a folder's entries (a rename, a new link) to reach the disk.
/// Best effort: WASI preview 1 runtimes, wasmtime included, may not open a
/// folder as a file or sync it, and there is nothing better to do then.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// What [`deploy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub release: String,
    pub previous: Option<String>,
    pub path: PathBuf,
    pub copied: Copied,
    pub pruned: Vec<String>,
}

/// The run phase: copies `source` into a new release `id` of `site`, makes
/// it current and prunes old releases down to `keep`.
///
/// `save` records rollback state, always before the change it helps to
/// undo: `target` and `release` before anything is written, `previous`
/// (the live release's id, empty when there was none) before `current`
/// moves.
pub fn deploy(
    site: &Site,
    source: &Path,
    id: &str,
    keep: usize,
    save: &mut dyn FnMut(&str, &str) -> Result<()>,
) -> Result<Deployed> {
    check_id(id)?;
    if keep == 0 {
        bail!("input `keep` must be at least 1");
    }
    site.prepare()?;
    // Checked before copying, so a target deploy cannot manage fails early.
    let before = site.current()?;
    if let Current::Foreign(target) = &before {
        bail!(
            "`{}` points to `{}`, not to a release under `releases/`; point it at one (or remove it) by hand first",
            site.current_link().display(),
            target.display()
        );
    }
    let dest = site.release_dir(id);
    if fs::symlink_metadata(&dest).is_ok() {
        bail!(
            "release `{id}` already exists at `{}`; deploy never overwrites a release, so give a new `release-id`",
            dest.display()
        );
    }
    save("target", &site.root().display().to_string())?;
    save("release", id)?;

    let copied = site.install(source, id)?;
    site.record(id)?;

    let previous = match site.current()? {
        Current::Missing => None,
        Current::Release(previous) => Some(previous),
        Current::Foreign(target) => bail!(
            "`{}` changed to `{}` while copying; not replacing it",
            site.current_link().display(),
            target.display()
        ),
    };
    save("previous", previous.as_deref().unwrap_or(""))?;
    site.point_current(Some(id))?;

    let mut protect = vec![id];
    protect.extend(previous.as_deref());
    let pruned = site.prune(keep, &protect)?;
    Ok(Deployed {
        release: id.to_owned(),
        previous,
        path: dest,
        copied,
        pruned,
    })
}

/// What [`rollback`] did, one sentence each.
pub type Actions = Vec<String>;

/// The rollback phase: undoes [`deploy`] of release `id`, given the
/// `previous` state it saved (`None` when it never got to save it, that
/// is, never moved `current`; `Some("")` when there was no previous
/// release). Safe to run again: what is already undone is left alone.
///
/// When `current` points somewhere that is neither this release nor the
/// previous one, someone deployed since: it fails and changes nothing.
pub fn rollback(site: &Site, id: &str, previous: Option<&str>) -> Result<Actions> {
    check_id(id)?;
    let previous = previous.map(|p| Some(p).filter(|p| !p.is_empty()));
    if let Some(Some(previous)) = previous {
        check_id(previous)?;
    }
    let mut actions = Actions::new();
    let current = site.current()?;
    match previous {
        Some(previous) if current.is(Some(id)) => {
            site.point_current(previous)?;
            actions.push(match previous {
                Some(previous) if site.has_release(previous) => {
                    format!("switched `current` back to release `{previous}`")
                }
                Some(previous) => format!(
                    "switched `current` back to release `{previous}`, whose folder is missing (it was already missing before this deploy)"
                ),
                None => "removed `current`: there was no release before this one".to_owned(),
            });
        }
        Some(previous) if current.is(previous) => actions.push(match previous {
            Some(previous) => format!("`current` already points to release `{previous}`"),
            None => "there is no `current`, as before this deploy".to_owned(),
        }),
        Some(previous) => bail!(
            "`current` is {current}, neither release `{id}` nor what it was before ({}); another deploy probably ran since, so nothing was changed",
            match previous {
                Some(previous) => format!("release `{previous}`"),
                None => "missing".to_owned(),
            }
        ),
        None if current.is(Some(id)) => bail!(
            "`current` points to release `{id}`, but the step saved no previous release; not touching it"
        ),
        None => actions.push(format!(
            "`current` was not switched by this step (it is {current})"
        )),
    }
    if site.remove_release(id)? {
        actions.push(format!("removed release `{id}`"));
    } else {
        actions.push(format!("release `{id}` is already gone"));
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target with an artifact folder beside it.
    struct Fixture {
        _dir: tempfile::TempDir,
        site: Site,
        artifact: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("artifact");
        fs::create_dir_all(artifact.join("css")).unwrap();
        fs::write(artifact.join("index.html"), "<h1>v1</h1>").unwrap();
        fs::write(artifact.join("css/site.css"), "body{}").unwrap();
        tree::symlink(Path::new("index.html"), &artifact.join("home.html")).unwrap();
        tree::symlink(Path::new("../index.html"), &artifact.join("css/up.html")).unwrap();
        let target = dir.path().join("www");
        fs::create_dir(&target).unwrap();
        Fixture {
            site: Site::new(target),
            artifact,
            _dir: dir,
        }
    }

    fn deploy_ok(f: &Fixture, id: &str, keep: usize) -> (Deployed, Vec<(String, String)>) {
        let mut state = Vec::new();
        let mut save = |k: &str, v: &str| {
            state.push((k.to_owned(), v.to_owned()));
            Ok(())
        };
        let deployed = deploy(&f.site, &f.artifact, id, keep, &mut save).unwrap();
        (deployed, state)
    }

    fn served(f: &Fixture, file: &str) -> String {
        fs::read_to_string(f.site.root().join("current").join(file)).unwrap()
    }

    fn release_names(f: &Fixture) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(f.site.root().join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn ids() {
        for good in ["1", "20261123T120102Z-3fa9c2", "v1.2.3_rc-1"] {
            check_id(good).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "x\n",
            &"x".repeat(129),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_deploy_copies_switches_and_records() {
        let f = fixture();
        let (deployed, state) = deploy_ok(&f, "r1", 5);
        assert_eq!(deployed.previous, None);
        assert_eq!(deployed.path, f.site.root().join("releases/r1"));
        assert_eq!(
            deployed.copied,
            Copied {
                files: 2,
                dirs: 1,
                links: 2,
                bytes: 17
            }
        );
        let link = fs::read_link(f.site.root().join("current")).unwrap();
        assert_eq!(link, Path::new("releases/r1"));
        assert_eq!(served(&f, "index.html"), "<h1>v1</h1>");
        assert_eq!(served(&f, "css/site.css"), "body{}");
        // Links are copied as links, with the same relative target.
        let home = f.site.root().join("releases/r1/home.html");
        assert!(
            fs::symlink_metadata(&home)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_link(&home).unwrap(), Path::new("index.html"));
        assert_eq!(served(&f, "css/up.html"), "<h1>v1</h1>");
        assert_eq!(
            state,
            [
                ("target".into(), f.site.root().display().to_string()),
                ("release".into(), "r1".into()),
                ("previous".into(), String::new()),
            ]
        );
        assert_eq!(f.site.log().unwrap(), ["r1"]);
        // No work folders or temporary links are left.
        assert_eq!(release_names(&f), ["r1"]);
        assert!(!f.site.root().join(".current-tmp-r1").exists());
        assert!(!f.site.root().join(".releases.log.tmp").exists());
    }

    #[test]
    fn second_deploy_records_the_previous_release() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        fs::write(f.artifact.join("index.html"), "<h1>v2</h1>").unwrap();
        let (deployed, state) = deploy_ok(&f, "r2", 5);
        assert_eq!(deployed.previous.as_deref(), Some("r1"));
        assert_eq!(state.last().unwrap(), &("previous".into(), "r1".into()));
        assert_eq!(served(&f, "index.html"), "<h1>v2</h1>");
        assert_eq!(f.site.current().unwrap(), Current::Release("r2".into()));
        assert_eq!(f.site.log().unwrap(), ["r1", "r2"]);
    }

    #[test]
    fn an_existing_release_id_is_refused_before_anything_is_saved() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        deploy_ok(&f, "r2", 5);
        fs::write(f.artifact.join("index.html"), "changed").unwrap();
        let mut state = Vec::new();
        let mut save = |k: &str, v: &str| {
            state.push((k.to_owned(), v.to_owned()));
            Ok(())
        };
        let error = deploy(&f.site, &f.artifact, "r1", 5, &mut save).unwrap_err();
        assert!(error.message().contains("already exists"), "{error}");
        assert!(state.is_empty());
        assert_eq!(
            fs::read_to_string(f.site.root().join("releases/r1/index.html")).unwrap(),
            "<h1>v1</h1>"
        );
        assert_eq!(f.site.current().unwrap(), Current::Release("r2".into()));
    }

    #[test]
    fn prune_follows_deploy_order_not_names() {
        let f = fixture();
        // Deployed in an order unlike the names' order.
        for id in ["c", "a", "d", "b", "e"] {
            deploy_ok(&f, id, 3);
        }
        assert_eq!(f.site.log().unwrap(), ["d", "b", "e"]);
        assert_eq!(release_names(&f), ["b", "d", "e"]);
        let (deployed, _) = deploy_ok(&f, "0", 3);
        assert_eq!(deployed.pruned, ["d"]);
        assert_eq!(f.site.log().unwrap(), ["b", "e", "0"]);
    }

    #[test]
    fn prune_keeps_current_previous_and_unlisted_folders() {
        let f = fixture();
        for id in ["r1", "r2", "r3"] {
            deploy_ok(&f, id, 5);
        }
        fs::create_dir(f.site.root().join("releases/by-hand")).unwrap();
        // keep 1 would leave only r3, but r2 is the previous release.
        let pruned = f.site.prune(1, &["r3", "r2"]).unwrap();
        assert_eq!(pruned, ["r1"]);
        assert_eq!(release_names(&f), ["by-hand", "r2", "r3"]);
        assert_eq!(f.site.log().unwrap(), ["r2", "r3"]);
        // A logged release whose folder is gone just leaves the log.
        fs::remove_dir_all(f.site.root().join("releases/r2")).unwrap();
        assert!(f.site.prune(5, &["r3"]).unwrap().is_empty());
        assert_eq!(f.site.log().unwrap(), ["r3"]);
    }

    #[test]
    fn leftovers_of_an_interrupted_prune_are_cleaned() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        fs::create_dir_all(f.site.root().join("releases/.trash-r0/sub")).unwrap();
        deploy_ok(&f, "r2", 5);
        assert_eq!(release_names(&f), ["r1", "r2"]);
    }

    #[test]
    fn rollback_returns_to_the_previous_release_and_is_idempotent() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        fs::write(f.artifact.join("index.html"), "<h1>v2</h1>").unwrap();
        deploy_ok(&f, "r2", 5);
        let actions = rollback(&f.site, "r2", Some("r1")).unwrap();
        assert_eq!(
            actions,
            [
                "switched `current` back to release `r1`",
                "removed release `r2`"
            ]
        );
        assert_eq!(served(&f, "index.html"), "<h1>v1</h1>");
        assert_eq!(release_names(&f), ["r1"]);
        assert_eq!(f.site.log().unwrap(), ["r1"]);
        let again = rollback(&f.site, "r2", Some("r1")).unwrap();
        assert_eq!(
            again,
            [
                "`current` already points to release `r1`",
                "release `r2` is already gone"
            ]
        );
        assert_eq!(served(&f, "index.html"), "<h1>v1</h1>");
        assert_eq!(release_names(&f), ["r1"]);
    }

    #[test]
    fn rollback_without_a_previous_release_removes_current() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        rollback(&f.site, "r1", Some("")).unwrap();
        assert_eq!(f.site.current().unwrap(), Current::Missing);
        assert!(release_names(&f).is_empty());
        assert!(f.site.log().unwrap().is_empty());
        let again = rollback(&f.site, "r1", Some("")).unwrap();
        assert_eq!(again[0], "there is no `current`, as before this deploy");
    }

    #[test]
    fn rollback_before_the_switch_only_cleans_up() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        // A deploy of r2 killed after copying, before saving `previous`.
        f.site.install(&f.artifact, "r2").unwrap();
        f.site.record("r2").unwrap();
        fs::create_dir(f.site.root().join("releases/.incoming-r2")).unwrap();
        for _ in 0..2 {
            rollback(&f.site, "r2", None).unwrap();
            assert_eq!(f.site.current().unwrap(), Current::Release("r1".into()));
            assert_eq!(release_names(&f), ["r1"]);
            assert_eq!(f.site.log().unwrap(), ["r1"]);
        }
        // Killed after saving `previous`, before the switch.
        f.site.install(&f.artifact, "r3").unwrap();
        rollback(&f.site, "r3", Some("r1")).unwrap();
        assert_eq!(f.site.current().unwrap(), Current::Release("r1".into()));
        assert_eq!(release_names(&f), ["r1"]);
    }

    #[test]
    fn rollback_leaves_a_later_deploy_alone() {
        let f = fixture();
        deploy_ok(&f, "r1", 5);
        deploy_ok(&f, "r2", 5);
        deploy_ok(&f, "r3", 5);
        let error = rollback(&f.site, "r2", Some("r1")).unwrap_err();
        assert!(error.message().contains("another deploy"), "{error}");
        assert_eq!(f.site.current().unwrap(), Current::Release("r3".into()));
        assert_eq!(release_names(&f), ["r1", "r2", "r3"]);
    }

    #[test]
    fn current_that_deploy_does_not_manage_is_refused() {
        let f = fixture();
        fs::create_dir(f.site.root().join("current")).unwrap();
        let mut save = |_: &str, _: &str| Ok(());
        let error = deploy(&f.site, &f.artifact, "r1", 5, &mut save).unwrap_err();
        assert!(error.message().contains("not a symbolic link"), "{error}");
        fs::remove_dir(f.site.root().join("current")).unwrap();
        tree::symlink(Path::new("elsewhere"), &f.site.root().join("current")).unwrap();
        let error = deploy(&f.site, &f.artifact, "r1", 5, &mut save).unwrap_err();
        assert!(error.message().contains("not to a release"), "{error}");
        assert!(release_names(&f).is_empty());
    }

    #[test]
    fn escaping_links_fail_the_deploy_and_leave_nothing() {
        let f = fixture();
        tree::symlink(Path::new("../../etc/passwd"), &f.artifact.join("css/bad")).unwrap();
        let mut saved = Vec::new();
        let mut save = |k: &str, _: &str| {
            saved.push(k.to_owned());
            Ok(())
        };
        let error = deploy(&f.site, &f.artifact, "r1", 5, &mut save).unwrap_err();
        assert!(error.message().contains("leads outside"), "{error}");
        assert!(release_names(&f).is_empty());
        assert_eq!(f.site.current().unwrap(), Current::Missing);
        // State was saved before copying; the rollback finds nothing to undo.
        assert_eq!(saved, ["target", "release"]);
        rollback(&f.site, "r1", None).unwrap();
    }

    #[test]
    fn current_link_forms() {
        let site = Site::new("/srv/site");
        assert_eq!(
            site.parse_link(Path::new("releases/a")),
            Current::Release("a".into())
        );
        assert_eq!(
            site.parse_link(Path::new("./releases/a")),
            Current::Release("a".into())
        );
        assert_eq!(
            site.parse_link(Path::new("/srv/site/releases/a")),
            Current::Release("a".into())
        );
        for foreign in [
            "releases",
            "releases/a/b",
            "../releases/a",
            "/var/www",
            "releases/.x",
        ] {
            assert!(matches!(
                site.parse_link(Path::new(foreign)),
                Current::Foreign(_)
            ));
        }
    }
}
