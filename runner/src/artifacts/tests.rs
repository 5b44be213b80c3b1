//! The store, the index and gc together, on real folders.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;

use sha2::Digest as _;

use super::*;
use crate::run_lock::RunLock;
use crate::runs;

/// What a folder holds, as (kind, mode, content or link target) by path.
fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mode = metadata.mode() & 0o7777;
            let value = if metadata.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                ('l', 0, target.to_string_lossy().as_bytes().to_vec())
            } else if metadata.is_dir() {
                pending.push(path);
                ('d', mode, Vec::new())
            } else {
                ('f', mode, fs::read(&path).unwrap())
            };
            found.insert(relative, value);
        }
    }
    found
}

fn write(root: &Path, relative: &str, contents: &[u8], mode: u32) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// An upload folder with nested folders, modes, an empty file and links.
fn sample_upload() -> tempfile::TempDir {
    let upload = tempfile::tempdir().unwrap();
    let root = upload.path();
    write(root, "index.html", b"<h1>hello</h1>\n", 0o644);
    write(root, "empty", b"", 0o600);
    write(root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "css/deep/er/site.css", b"body{}", 0o640);
    fs::set_permissions(root.join("css/deep"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir(root.join("empty-dir")).unwrap();
    symlink("index.html", root.join("latest")).unwrap();
    symlink("../../site.css-missing", root.join("css/deep/dangling")).unwrap();
    symlink("../bin", root.join("css/bin")).unwrap();
    upload
}

struct Fixture {
    state: tempfile::TempDir,
    store: Store,
}

fn fixture() -> Fixture {
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    Fixture { state, store }
}

#[test]
fn a_tree_round_trips_with_folders_modes_empty_files_and_links() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    tree.validate().unwrap();
    assert_eq!(tree.file_count(), 4);
    assert_eq!(tree.size, 15 + 18 + 6);
    let paths: Vec<&str> = tree.entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted);
    assert!(tree.entries.iter().any(|e| e.path == "latest"
        && e.kind
            == EntryKind::Symlink {
                target: "index.html".into()
            }));

    let out = tempfile::tempdir().unwrap();
    let to = out.path().join("new/folder");
    store.materialize(&tree, &to).unwrap();
    assert_eq!(snapshot(&to), snapshot(upload.path()));

    // Into an existing empty folder too.
    let empty = tempfile::tempdir().unwrap();
    store.materialize(&tree, empty.path()).unwrap();
    assert_eq!(snapshot(empty.path()), snapshot(upload.path()));
}

#[test]
fn the_tree_survives_json_and_the_digest_is_content_addressed() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    let json = serde_json::to_string(&tree).unwrap();
    let back: Tree = serde_json::from_str(&json).unwrap();
    assert_eq!(back, tree);
    back.validate().unwrap();

    fs::write(upload.path().join("index.html"), b"<h1>changed</h1>\n").unwrap();
    let changed = store.put_tree(upload.path()).unwrap();
    assert_ne!(changed.digest, tree.digest);
}

#[test]
fn setuid_and_setgid_bits_are_not_kept() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = tempfile::tempdir().unwrap();
    write(upload.path(), "tool", b"x", 0o6755);
    let tree = store.put_tree(upload.path()).unwrap();
    assert!(matches!(
        tree.entries[0].kind,
        EntryKind::File { mode: 0o755, .. }
    ));
    let out = tempfile::tempdir().unwrap();
    store.materialize(&tree, out.path()).unwrap();
    let mode = fs::metadata(out.path().join("tool")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn putting_the_same_folder_twice_rewrites_no_blob() {
    let Fixture { state, store } = fixture();
    let upload = sample_upload();
    let first = store.put_tree(upload.path()).unwrap();
    let blobs = store.list_blobs().unwrap();
    assert_eq!(blobs.len(), 4);
    let inodes: Vec<u64> = blobs
        .iter()
        .map(|(_, path, _)| fs::metadata(path).unwrap().ino())
        .collect();
    let second = store.put_tree(upload.path()).unwrap();
    assert_eq!(first, second);
    let again = store.list_blobs().unwrap();
    assert_eq!(
        again
            .iter()
            .map(|(_, path, _)| fs::metadata(path).unwrap().ino())
            .collect::<Vec<_>>(),
        inodes
    );
    for (sha256, path, _) in &again {
        assert_eq!(path, &store.blob_path(sha256));
        assert_eq!(fs::metadata(path).unwrap().mode() & 0o777, 0o444);
    }
    let leftovers = fs::read_dir(state.path().join("store/tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "no temporary file is left behind");
}

#[test]
fn a_planted_link_to_a_host_file_is_never_read() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret");
    fs::write(&secret, b"the host's secret").unwrap();
    let upload = tempfile::tempdir().unwrap();
    write(upload.path(), "ok.txt", b"fine", 0o644);
    symlink(&secret, upload.path().join("passwd")).unwrap();

    let error = store.put_tree(upload.path()).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, ArtifactError::LinkEscapes { .. }),
        "{message}"
    );
    assert!(
        message.contains("`passwd`") && message.contains("absolute"),
        "{message}"
    );
    // Refused before anything was copied, and the secret was never stored.
    assert!(store.list_blobs().unwrap().is_empty());
    let secret_blob = store.blob_path(&hex(&sha2::Sha256::digest(b"the host's secret")));
    assert!(!secret_blob.exists());

    // A link to a file of the artifact is stored as a link, not a copy.
    fs::remove_file(upload.path().join("passwd")).unwrap();
    symlink("ok.txt", upload.path().join("passwd")).unwrap();
    let tree = store.put_tree(upload.path()).unwrap();
    assert_eq!(tree.file_count(), 1);
    assert_eq!(store.list_blobs().unwrap().len(), 1);
}

#[test]
fn links_that_climb_out_are_refused_naming_the_entry() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    for (path, target) in [
        ("up", "../outside"),
        ("a/b/up", "../../../outside"),
        ("a/abs", "/etc/passwd"),
    ] {
        let upload = tempfile::tempdir().unwrap();
        fs::create_dir_all(upload.path().join("a/b")).unwrap();
        symlink(target, upload.path().join(path)).unwrap();
        let message = store.put_tree(upload.path()).unwrap_err().to_string();
        assert!(message.contains(&format!("`{path}`")), "{message}");
        assert!(message.contains(target), "{message}");
    }
}

#[test]
fn fifos_and_sockets_are_refused_naming_the_entry() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = tempfile::tempdir().unwrap();
    fs::create_dir(upload.path().join("sub")).unwrap();
    let fifo = std::ffi::CString::new(upload.path().join("sub/pipe").to_str().unwrap().as_bytes())
        .unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let error = store.put_tree(upload.path()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("`sub/pipe`") && message.contains("FIFO"),
        "{message}"
    );

    let upload = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(upload.path().join("sock")).unwrap();
    let message = store.put_tree(upload.path()).unwrap_err().to_string();
    assert!(
        message.contains("`sock`") && message.contains("socket"),
        "{message}"
    );
}

#[test]
fn an_upload_folder_that_is_a_link_is_refused() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let holder = tempfile::tempdir().unwrap();
    let link = holder.path().join("link");
    symlink(upload.path(), &link).unwrap();
    assert!(matches!(
        store.put_tree(&link),
        Err(ArtifactError::NotAFolder { .. })
    ));
}

#[test]
fn uploads_past_the_limits_are_refused() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = tempfile::tempdir().unwrap();
    for n in 0..5 {
        write(upload.path(), &format!("f{n}"), b"x", 0o644);
    }
    let limits = PutLimits {
        max_entries: 4,
        max_depth: 8,
        ..PutLimits::default()
    };
    let message = store
        .put_tree_with(upload.path(), &limits)
        .unwrap_err()
        .to_string();
    assert!(message.contains("more than 4 entries"), "{message}");

    let upload = tempfile::tempdir().unwrap();
    write(upload.path(), "a/b/c/d/e", b"x", 0o644);
    let limits = PutLimits {
        max_entries: 100,
        max_depth: 3,
        ..PutLimits::default()
    };
    let message = store
        .put_tree_with(upload.path(), &limits)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`a/b/c/d/e`") && message.contains("3 folders"),
        "{message}"
    );
    let limits = PutLimits {
        max_entries: 100,
        max_depth: 4,
        ..PutLimits::default()
    };
    store.put_tree_with(upload.path(), &limits).unwrap();

    // Too many bytes: refused before anything is copied into the store.
    let upload = tempfile::tempdir().unwrap();
    write(upload.path(), "big", &vec![7u8; 3 << 20], 0o644);
    let limits = PutLimits {
        max_bytes: 2 << 20,
        ..PutLimits::default()
    };
    let message = store
        .put_tree_with(upload.path(), &limits)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("holds 3 MiB, more than the limit of 2 MiB"),
        "{message}"
    );
    assert!(
        store
            .list_blobs()
            .unwrap()
            .iter()
            .all(|(_, _, size)| *size < (2 << 20))
    );
}

/// Makes the blob of `sha256` writable and gives it other bytes.
fn corrupt(store: &Store, sha256: &str, bytes: &[u8]) {
    let blob = store.blob_path(sha256);
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, bytes).unwrap();
}

fn file_sha(tree: &Tree, path: &str) -> String {
    tree.entries
        .iter()
        .find_map(|entry| match &entry.kind {
            EntryKind::File { sha256, .. } if entry.path == path => Some(sha256.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_corrupted_blob_is_detected_naming_the_file() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    corrupt(&store, &file_sha(&tree, "css/deep/er/site.css"), b"body{}!");
    let out = tempfile::tempdir().unwrap();
    let to = out.path().join("site");
    let error = store.materialize(&tree, &to).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ArtifactError::Corrupt { .. }), "{message}");
    assert!(message.contains("`css/deep/er/site.css`"), "{message}");
    assert!(message.contains("store is corrupt"), "{message}");
    assert!(!to.exists(), "a failed extraction leaves nothing behind");

    // Same length, other bytes: still caught, and an existing destination
    // is emptied again.
    corrupt(&store, &file_sha(&tree, "css/deep/er/site.css"), b"BODY{}");
    let error = store.materialize(&tree, out.path()).unwrap_err();
    assert!(matches!(error, ArtifactError::Corrupt { .. }));
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_blob_is_detected_naming_the_file() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    fs::remove_file(store.blob_path(&file_sha(&tree, "bin/run.sh"))).unwrap();
    let out = tempfile::tempdir().unwrap();
    let error = store.materialize(&tree, &out.path().join("x")).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, ArtifactError::MissingBlob { .. }),
        "{message}"
    );
    assert!(
        message.contains("`bin/run.sh`") && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn a_damaged_blob_of_the_wrong_size_is_replaced_by_the_next_put() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    corrupt(&store, &file_sha(&tree, "index.html"), b"short");
    store.put_tree(upload.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    store.materialize(&tree, out.path()).unwrap();
}

#[test]
fn a_blob_damaged_without_changing_size_is_replaced_by_the_next_put() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    let sha = file_sha(&tree, "css/deep/er/site.css");
    let size = fs::metadata(store.blob_path(&sha)).unwrap().len() as usize;
    corrupt(&store, &sha, &vec![b'#'; size]);
    store.put_tree(upload.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    store.materialize(&tree, out.path()).unwrap();
}

#[test]
fn materializing_refuses_a_non_empty_destination_and_a_tampered_tree() {
    let Fixture {
        state: _state,
        store,
    } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    fs::write(out.path().join("keep"), b"mine").unwrap();
    let error = store.materialize(&tree, out.path()).unwrap_err();
    assert!(matches!(error, ArtifactError::DestinationNotEmpty { .. }));
    assert_eq!(fs::read(out.path().join("keep")).unwrap(), b"mine");

    let mut entries = tree.entries.clone();
    entries.push(Entry {
        path: "../escaped".into(),
        kind: EntryKind::Dir { mode: 0o755 },
    });
    let tampered = Tree::new(entries);
    let empty = tempfile::tempdir().unwrap();
    let error = store.materialize(&tampered, empty.path()).unwrap_err();
    assert!(matches!(error, ArtifactError::InvalidTree(_)), "{error}");
    assert!(!empty.path().parent().unwrap().join("escaped").exists());

    let mut forged = tree.clone();
    forged.entries.retain(|entry| entry.path != "empty");
    let error = store.materialize(&forged, empty.path()).unwrap_err();
    assert!(error.to_string().contains("digest"), "{error}");
}

const RUN_A: &str = "20261123T120102Z-3fa9c2";
const RUN_B: &str = "20261124T080000Z-000001";
const RUN_C: &str = "20261125T080000Z-00000f";

#[test]
fn the_index_records_uploads_and_the_latest_wins() {
    let Fixture { state, store } = fixture();
    let upload = sample_upload();
    let first = store.put_tree(upload.path()).unwrap();
    write(upload.path(), "index.html", b"v2", 0o644);
    let second = store.put_tree(upload.path()).unwrap();

    let run = RunArtifacts::open(state.path(), RUN_A).unwrap();
    assert!(run.latest("site").is_none());
    assert!(!run.path().exists(), "nothing is written before a record");
    run.record("site", "build", "page", first.clone()).unwrap();
    run.record("docs", "build", "docs", first.clone()).unwrap();
    run.record("site", "build (linux)", "page", second.clone())
        .unwrap();
    assert_eq!(run.latest("site").unwrap().tree, second);

    let index = ArtifactIndex::load(state.path(), RUN_A).unwrap();
    assert_eq!(index, run.snapshot());
    assert_eq!(index.uploads().len(), 3);
    let latest = index.latest("site").unwrap();
    assert_eq!(
        (latest.job.as_str(), &latest.tree),
        ("build (linux)", &second)
    );
    assert_eq!(index.upload_count("site"), 2);
    let names: Vec<&str> = index
        .latest_each()
        .iter()
        .map(|u| u.name.as_str())
        .collect();
    assert_eq!(names, ["docs", "site"]);
    assert!(index.latest("nothing").is_none());

    // Reopening (a resumed run) keeps what was recorded.
    let reopened = RunArtifacts::open(state.path(), RUN_A).unwrap();
    assert_eq!(reopened.snapshot(), index);
    assert!(matches!(
        run.record("../x", "build", "page", first),
        Err(ArtifactError::InvalidName { .. })
    ));
    assert_eq!(ArtifactIndex::load(state.path(), RUN_A).unwrap(), index);

    let empty = ArtifactIndex::load(state.path(), RUN_B).unwrap();
    assert!(empty.uploads().is_empty());
}

#[test]
fn a_broken_index_is_an_error_naming_the_file() {
    let state = tempfile::tempdir().unwrap();
    let path = ArtifactIndex::path(state.path(), RUN_A);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "{not json").unwrap();
    let message = ArtifactIndex::load(state.path(), RUN_A)
        .unwrap_err()
        .to_string();
    assert!(message.contains("artifacts.json"), "{message}");
    fs::write(&path, r#"{"version": 9, "uploads": []}"#).unwrap();
    let message = ArtifactIndex::load(state.path(), RUN_A)
        .unwrap_err()
        .to_string();
    assert!(message.contains("version 9"), "{message}");
}

#[test]
fn concurrent_records_from_threads_are_all_kept() {
    let Fixture { state, store } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    let run = Arc::new(RunArtifacts::open(state.path(), RUN_A).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|job| {
            let run = Arc::clone(&run);
            let tree = tree.clone();
            let store = store.clone();
            let upload = upload.path().to_owned();
            std::thread::spawn(move || {
                for step in 0..10 {
                    // Stores race too, writing the same blobs.
                    let stored = store.put_tree(&upload).unwrap();
                    assert_eq!(stored, tree);
                    run.record(
                        &format!("a{job}"),
                        &format!("job{job}"),
                        &step.to_string(),
                        stored,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let index = ArtifactIndex::load(state.path(), RUN_A).unwrap();
    assert_eq!(index.uploads().len(), 80);
    for job in 0..8 {
        assert_eq!(index.latest(&format!("a{job}")).unwrap().step, "9");
    }
}

/// The ids of the runs a collection removed.
fn removed_runs(report: &GcReport) -> Vec<&str> {
    report
        .removed_runs
        .iter()
        .map(|(r, _)| r.as_str())
        .collect()
}

#[test]
fn gc_keeps_the_newest_runs_and_the_blobs_they_use() {
    let Fixture { state, store } = fixture();
    let upload = tempfile::tempdir().unwrap();
    write(upload.path(), "shared", b"in every run", 0o644);
    write(upload.path(), "own", b"only in the oldest run", 0o644);
    let oldest = store.put_tree(upload.path()).unwrap();
    write(upload.path(), "own", b"only in the middle run", 0o644);
    let middle = store.put_tree(upload.path()).unwrap();
    fs::remove_file(upload.path().join("own")).unwrap();
    let newest = store.put_tree(upload.path()).unwrap();
    for (run, tree) in [(RUN_A, &oldest), (RUN_B, &middle), (RUN_C, &newest)] {
        let index = RunArtifacts::open(state.path(), run).unwrap();
        index.record("out", "build", "make", tree.clone()).unwrap();
        fs::write(runs::run_dir(state.path(), run).join("log"), b"a log").unwrap();
    }
    // A blob no run recorded (a killed run stored it) and a stray temporary.
    write(upload.path(), "orphan", b"orphan", 0o644);
    store.put_tree(upload.path()).unwrap();
    fs::write(state.path().join("store/tmp/.blob-left"), b"12345").unwrap();
    assert_eq!(store.list_blobs().unwrap().len(), 4);

    let lock = RunLock::acquire(state.path(), false).unwrap();
    let dry = collect_garbage(state.path(), 2, true, false, &lock).unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        store.list_blobs().unwrap().len(),
        4,
        "a dry run removes nothing"
    );
    assert!(runs::run_dir(state.path(), RUN_A).exists());

    let report = collect_garbage(state.path(), 2, false, false, &lock).unwrap();
    assert_eq!(report.kept_runs, [RUN_C, RUN_B]);
    assert_eq!(removed_runs(&report), [RUN_A]);
    assert_eq!(
        report.removed_blobs, 2,
        "the oldest run's own file and the orphan"
    );
    assert_eq!(
        report.store_bytes,
        "only in the oldest run".len() as u64 + "orphan".len() as u64 + 5
    );
    assert_eq!(
        (dry.removed_blobs, dry.freed_bytes()),
        (report.removed_blobs, report.freed_bytes())
    );
    assert!(!runs::run_dir(state.path(), RUN_A).exists());
    assert_eq!(runs::list(state.path()).unwrap(), [RUN_C, RUN_B]);
    assert_eq!(
        fs::read_dir(state.path().join("store/tmp"))
            .unwrap()
            .count(),
        0
    );
    for (run, tree) in [(RUN_B, &middle), (RUN_C, &newest)] {
        let out = tempfile::tempdir().unwrap();
        let index = ArtifactIndex::load(state.path(), run).unwrap();
        assert_eq!(&index.latest("out").unwrap().tree, tree);
        store.materialize(tree, out.path()).unwrap();
    }

    let report = collect_garbage(state.path(), 0, false, false, &lock).unwrap();
    assert_eq!(report.removed_runs.len(), 2);
    assert!(store.list_blobs().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(state.path().join("store/blobs"))
            .unwrap()
            .count(),
        0,
        "empty shards are removed too"
    );
}

/// A run whose runner died, or whose rollback was cut short, is what
/// `gantry resume` works from: gc keeps it, and the blobs it uses.
#[test]
fn gc_keeps_a_run_that_still_needs_resume() {
    use crate::journal::{Entry, Journal};
    let Fixture { state, store } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    for run in [RUN_A, RUN_B, RUN_C] {
        RunArtifacts::open(state.path(), run)
            .unwrap()
            .record("site", "build", "page", tree.clone())
            .unwrap();
    }
    let journal = |run: &str, entries: Vec<Entry>| {
        let journal = Journal::create(&runs::run_dir(state.path(), run), true).unwrap();
        for entry in entries {
            journal.record(entry).unwrap();
        }
    };
    let started = |run: &str| Entry::RunStarted {
        run_id: run.into(),
        pipeline: "p".into(),
        manifest: "gantry.yml".into(),
        root: None,
        ca_file: None,
        inputs: Default::default(),
        vars: Default::default(),
    };
    let finished = || Entry::RunFinished {
        status: "failure".into(),
    };
    // A: its rollback was interrupted. B: settled. C: the newest, kept.
    journal(
        RUN_A,
        vec![
            started(RUN_A),
            finished(),
            Entry::RollbackBegun {
                reason: "the run failed".into(),
            },
        ],
    );
    journal(RUN_B, vec![started(RUN_B), finished()]);
    let lock = RunLock::acquire(state.path(), false).unwrap();
    let report = collect_garbage(state.path(), 1, false, false, &lock).unwrap();
    assert_eq!(report.kept_unsettled, [RUN_A]);
    assert_eq!(removed_runs(&report), [RUN_B]);
    assert!(runs::run_dir(state.path(), RUN_A).exists());
    assert_eq!(store.list_blobs().unwrap().len(), 4, "its blobs stay");
}

#[test]
fn gc_removes_nothing_when_a_kept_index_is_unreadable() {
    let Fixture { state, store } = fixture();
    let upload = sample_upload();
    let tree = store.put_tree(upload.path()).unwrap();
    RunArtifacts::open(state.path(), RUN_A)
        .unwrap()
        .record("site", "build", "page", tree)
        .unwrap();
    fs::create_dir_all(runs::run_dir(state.path(), RUN_B)).unwrap();
    fs::write(ArtifactIndex::path(state.path(), RUN_B), b"garbage").unwrap();
    let lock = RunLock::acquire(state.path(), false).unwrap();
    let error = collect_garbage(state.path(), 1, false, false, &lock).unwrap_err();
    assert!(error.to_string().contains(RUN_B), "{error}");
    assert!(runs::run_dir(state.path(), RUN_A).exists());
    assert_eq!(store.list_blobs().unwrap().len(), 4);
}

#[test]
fn names_are_folder_safe() {
    for good in ["site", "dist-1.2", "a_b", ".hidden"] {
        check_name(good).unwrap();
    }
    for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(129)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}

/// What a step declares under `artifacts:`.
fn declared(upload: &[&str], download: &[&str]) -> crate::plan::StepArtifacts {
    let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect();
    crate::plan::StepArtifacts {
        upload: names(upload),
        download: names(download),
        location: serde_saphyr::Location::UNKNOWN,
    }
}

#[test]
fn a_step_gets_its_downloads_read_only_and_its_uploads_empty_then_stored() {
    let Fixture { state, store } = fixture();
    let run = RunArtifacts::open(state.path(), RUN_A).unwrap();
    let site = sample_upload();
    let tree = store.put_tree(site.path()).unwrap();
    run.record("site", "build", "page", tree).unwrap();

    let staged = ArtifactMounts::prepare(&declared(&["report"], &["site"]), &store, &run).unwrap();
    let mounts = staged.mounts().to_vec();
    let shown: Vec<(&str, bool)> = mounts
        .iter()
        .map(|mount| (mount.guest.as_str(), mount.writable))
        .collect();
    assert_eq!(
        shown,
        [("/artifacts/site", false), ("/artifacts/report", true)]
    );
    assert_eq!(snapshot(&mounts[0].host), snapshot(site.path()));
    let report = &mounts[1].host;
    assert!(snapshot(report).is_empty());

    // Another attempt starts from empty upload folders.
    write(report, "first-try.txt", b"partial", 0o644);
    staged.empty_uploads().unwrap();
    assert!(snapshot(report).is_empty());

    write(report, "result.txt", b"all green", 0o644);
    let limits = PutLimits::default();
    staged
        .store_uploads(&store, &run, &limits, "test (linux)", "step-2")
        .unwrap();
    let stored = run.latest("report").unwrap();
    assert_eq!(
        (stored.job.as_str(), stored.step.as_str()),
        ("test (linux)", "step-2")
    );
    let back = tempfile::tempdir().unwrap();
    store
        .materialize(&stored.tree, &back.path().join("report"))
        .unwrap();
    assert_eq!(snapshot(&back.path().join("report")), snapshot(report));

    // The folders are the step's alone: gone with it.
    drop(staged);
    assert!(!mounts[0].host.exists() && !report.exists());
}

#[test]
fn a_download_nobody_uploaded_in_this_run_is_refused_and_no_artifacts_mount_nothing() {
    let Fixture { state, store } = fixture();
    let run = RunArtifacts::open(state.path(), RUN_A).unwrap();
    let Err(reason) = ArtifactMounts::prepare(&declared(&[], &["site"]), &store, &run) else {
        panic!("a download of a name never uploaded was staged");
    };
    assert!(
        reason.contains("artifact `site` was not uploaded in this run"),
        "{reason}"
    );
    let none = ArtifactMounts::prepare(&declared(&[], &[]), &store, &run).unwrap();
    assert!(none.mounts().is_empty());
    none.store_uploads(&store, &run, &PutLimits::default(), "build", "step-1")
        .unwrap();
    assert!(run.snapshot().uploads().is_empty());
}
