//! The run journal: `runs/<run-id>/journal.jsonl` in the state folder, one
//! JSON object per line, append-only.
//!
//! The journal lives in the state folder, which no step can write (the
//! pipeline is refused otherwise), and it is tamper-evident all the same:
//! each line carries the sha256 of the line before it (`prev`; the first
//! line, of the run id), so a line edited, removed, reordered or copied in
//! from elsewhere breaks the chain, and [`read`] calls the run *damaged*
//! instead of compensating from it. The chain is not a signature: whoever
//! may write the state folder can recompute it. What it rules out is
//! acting on a journal that is not the one gantry wrote.
//!
//! Every entry is written and fsynced before the action it announces
//! begins, so after a crash the journal says exactly which steps started,
//! which finished (with their outputs and saved state, secrets masked) and
//! which rollback hooks ran. A step that started declares its hook in full
//! ([`HookSpec`]), so `gantry rollback` and `gantry resume` can compensate
//! without the process that ran it. A crash can tear only the last line;
//! reading drops such a line and appending first cuts it off.
//!
//! Entries a compensation depends on (a step with a hook starting or
//! finishing, every rollback transition, the run's start and end) are
//! fsynced; the others (jobs, steps without hooks) are written without
//! waiting for the disk, which survives the runner being killed and costs
//! a step no fsync of its own. A run whose plan has no rollback hook at all
//! has nothing to compensate and fsyncs nothing (a journal created not
//! [`Journal::durable`]).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fsutil::sync_dir;

/// The journal's file name inside a run's folder.
pub const FILE_NAME: &str = "journal.jsonl";

/// Beside the journal when it could not be written: see
/// [`Journal::mark_unwritable`].
pub const UNWRITABLE_MARK: &str = "journal-unwritable";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Lowercase hex sha256 of the line before this one (its bytes without
    /// the newline); for the first line, of the run id.
    pub prev: String,
    /// Milliseconds since the Unix epoch when the entry was written.
    pub at_ms: u64,
    #[serde(flatten)]
    pub entry: Entry,
}

/// What happened. `seq` numbers steps in the order they started, across
/// all jobs of the run; rollback entries refer to a step by it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    RunStarted {
        run_id: String,
        pipeline: String,
        manifest: PathBuf,
        /// The manifest's canonical folder: the workspace its hooks run
        /// in, whatever folder `gantry rollback` is started from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root: Option<PathBuf>,
        /// The private CA file component steps' HTTPS trusted, which their
        /// hooks trust too when run later.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<PathBuf>,
        /// The pipeline's inputs as the run had them (given or default),
        /// typed, so a later look at the run sees the values it used.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        inputs: BTreeMap<String, serde_json::Value>,
        /// The configuration variables (`vars`) it was given; not secrets.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        vars: BTreeMap<String, String>,
    },
    JobStarted {
        job: String,
    },
    StepStarted {
        seq: u64,
        job: String,
        step: String,
        /// Everything needed to run the step's rollback hook later.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hook: Option<Box<HookSpec>>,
    },
    /// Where a step with a hook is saving its state while it runs, written
    /// before its guest starts (again for each attempt): if the runner dies
    /// during the step, `gantry resume` reads the state from there.
    StepStateFile {
        seq: u64,
        path: PathBuf,
    },
    StepFinished {
        seq: u64,
        /// success, failure or cancelled: the step's own outcome.
        status: String,
        #[serde(default)]
        outputs: BTreeMap<String, String>,
        /// What the step saved for its rollback (`GANTRY_STATE`).
        #[serde(default)]
        state: Vec<(String, String)>,
    },
    JobFinished {
        job: String,
        status: String,
    },
    RunFinished {
        /// success, failure or cancelled.
        status: String,
    },
    /// A compensation of the run begins (after a failure, or asked for by
    /// `gantry rollback`).
    RollbackBegun {
        reason: String,
    },
    RollbackStarted {
        seq: u64,
    },
    /// A person asked for the hook of step `seq`, which started before, to
    /// run again (`--rerun`): it is pending once more.
    RollbackRerun {
        seq: u64,
    },
    RollbackFinished {
        seq: u64,
        /// success or failure.
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A rollback job (`gantry rollback --import`) took over the
    /// compensation of another machine's run, whose journal it verified:
    /// the run's id, its job, and the sha256 of its journal as read. That
    /// journal is left as it was; this one records what is done for it.
    ImportedRun {
        run_id: String,
        job: String,
        journal_sha256: String,
    },
    /// A step of an imported run whose hook that run never started, now
    /// pending here under the new number `seq`, newest last like
    /// `step_started`; or, when `interrupted`, a hook the other machine
    /// started and never finished, which is reported and not run again.
    ImportedStep {
        seq: u64,
        /// The imported run and the step's number there.
        run_id: String,
        origin_seq: u64,
        hook: Box<HookSpec>,
        /// `success` or `failure`: how the step ended there.
        outcome: String,
        #[serde(default)]
        state: Vec<(String, String)>,
        #[serde(default)]
        interrupted: bool,
    },
    /// The compensation ended: every pending hook ran (`success` when all
    /// succeeded, else `failure`), or it was `interrupted` and `gantry
    /// resume` finishes it.
    RollbackEnded {
        status: String,
    },
}

/// A step's rollback hook, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookSpec {
    /// The job instance's name (`deploy (eu)`).
    pub job: String,
    pub step_name: String,
    #[serde(default)]
    pub step_id: Option<String>,
    pub step_number: usize,
    /// The plugin alias that compensates, and the sha256 it had: a hook
    /// never runs a plugin other than the one pinned when its step ran.
    pub plugin: String,
    pub sha256: String,
    /// `INPUT_*` variables, in order.
    pub inputs: Vec<HookValue>,
    /// The step's environment (pipeline, job, exported and step `env`).
    pub env: Vec<HookValue>,
    /// `none`, `read` or `write`.
    pub workspace: String,
    pub dirs: Vec<HookDir>,
    /// Host variables passed through, by name; read again when it runs.
    pub host_env: Vec<String>,
    /// Destinations the hook may reach, as its step could
    /// (`scheme://host:port`).
    #[serde(default)]
    pub network: Vec<String>,
    pub memory_bytes: u64,
    /// Files the hook may hold open at once, as its step could.
    #[serde(default = "default_max_files")]
    pub max_files: u32,
    /// What the hook's `/tmp` may hold, as its step's could.
    #[serde(default = "default_disk_bytes")]
    pub disk_bytes: u64,
    pub timeout_ms: u64,
}

fn default_max_files() -> u32 {
    crate::plan::DEFAULT_MAX_FILES
}

fn default_disk_bytes() -> u64 {
    crate::plan::DEFAULT_DISK_MB << 20
}

#[cfg(test)]
impl HookSpec {
    /// A hook of step `name` in job `deploy`, for tests.
    pub(crate) fn example(name: &str) -> HookSpec {
        HookSpec {
            job: "deploy".into(),
            step_name: name.into(),
            step_id: None,
            step_number: 1,
            plugin: "p".into(),
            sha256: "0".repeat(64),
            inputs: Vec::new(),
            env: Vec::new(),
            workspace: "read".into(),
            dirs: Vec::new(),
            host_env: Vec::new(),
            network: Vec::new(),
            memory_bytes: 1 << 20,
            max_files: 16,
            disk_bytes: 1 << 20,
            timeout_ms: 1000,
        }
    }
}

/// A variable of a hook. A value that held a secret is stored masked,
/// with the template it came from, to be rendered again with the secrets
/// given to the command that runs the hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookValue {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A folder a hook is granted, as its step was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDir {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// An open journal, appended to from any thread.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<Tail>,
    durable: bool,
}

/// The file and the hash the next line chains to, locked together so two
/// threads can never chain to the same line.
#[derive(Debug)]
struct Tail {
    file: File,
    prev: String,
    /// The length of the complete lines: a write that fails halfway (a
    /// full disk) is cut back to it, so no torn line is left in the middle
    /// of the journal once later writes succeed.
    len: u64,
}

/// Why a journal cannot be acted on.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not the chain gantry wrote: a line was edited, removed,
    /// reordered or added by something else.
    #[error("`{}` is damaged at line {line}: {why}", path.display())]
    Damaged {
        path: PathBuf,
        line: usize,
        why: String,
    },
}

impl ReadError {
    /// Whether the journal does not exist at all.
    pub fn is_missing(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// Whether the journal exists but is not the one gantry wrote.
    pub fn is_damaged(&self) -> bool {
        matches!(self, ReadError::Damaged { .. })
    }
}

/// Fails when the journal's file has been unlinked (its state folder
/// removed under the run): what is written then is lost, so the run must
/// not go on as if its compensation were recorded.
fn still_linked(file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if file.metadata()?.nlink() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the journal was deleted while the run was writing it (was the state folder removed?)",
        ));
    }
    Ok(())
}

/// The lowercase hex sha256 of `bytes`: how a line names the one before it.
fn chain_hash(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)
}

/// The run id a journal's chain starts from: the name of its run folder.
fn run_id_of(path: &Path) -> String {
    path.parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Journal {
    /// Creates the journal of a new run in `run_folder` (created too), its
    /// chain starting from the folder's name, the run id. When `durable`,
    /// the folder and the file are made to survive a crash of the machine
    /// before this returns.
    pub fn create(run_folder: &Path, durable: bool) -> io::Result<Journal> {
        if durable {
            create_dir_durably(run_folder)?;
        } else {
            fs::create_dir_all(run_folder)?;
        }
        let path = run_folder.join(FILE_NAME);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        if durable {
            sync_dir(run_folder)?;
        }
        let prev = chain_hash(run_id_of(&path).as_bytes());
        Ok(Journal {
            path,
            file: Mutex::new(Tail { file, prev, len: 0 }),
            durable,
        })
    }

    /// Whether entries that ask for it wait for the disk.
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Opens an existing journal to append to it, first cutting off a line
    /// a crash left half-written. A damaged journal is not opened: nothing
    /// is ever appended to a chain gantry did not write.
    pub fn open(path: &Path) -> Result<Journal, ReadError> {
        let io = |source| ReadError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = crate::fsutil::open_regular(path, true).map_err(io)?;
        // Read through the descriptor just checked, not the path again.
        let mut contents = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut contents).map_err(io)?;
        let (_, prev, whole) = parse(path, &contents)?;
        if whole < contents.len() {
            file.set_len(whole as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(Tail {
                file,
                prev,
                len: whole as u64,
            }),
            durable: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves a mark beside the journal saying it could not be written
    /// (an empty file, which a full disk usually still has room for), so
    /// `gantry runs` does not take a run stopped for that for one whose
    /// runner died.
    pub fn mark_unwritable(&self) {
        let _ = File::create(self.path.with_file_name(UNWRITABLE_MARK));
    }

    /// Appends `entry` and waits until it is on disk, with every entry
    /// before it.
    pub fn record(&self, entry: Entry) -> io::Result<()> {
        self.append(entry, true)
    }

    /// Appends `entry`; with `sync`, waits until it is on disk. Without, it
    /// survives the runner being killed (it is in the kernel's cache) but
    /// not the machine crashing until the next synced entry: for entries
    /// that no compensation depends on.
    pub fn append(&self, entry: Entry, sync: bool) -> io::Result<()> {
        let mut tail = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let record = Record {
            prev: tail.prev.clone(),
            at_ms: now_ms(),
            entry,
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        let hash = chain_hash(&line);
        line.push(b'\n');
        if let Err(error) = tail.file.write_all(&line) {
            // Whatever part of the line reached the file goes (cutting a
            // file needs no free space); the chain still ends where it did.
            let _ = tail.file.set_len(tail.len);
            return Err(error);
        }
        tail.len += line.len() as u64;
        tail.prev = hash;
        let synced = if sync && self.durable {
            tail.file
                .sync_data()
                .and_then(|()| still_linked(&tail.file))
        } else {
            Ok(())
        };
        crash_point::reached();
        synced
    }
}

/// The crash-test hook: with `GANTRY_CRASH_AFTER_JOURNAL_WRITES=N` in its
/// environment, the process kills itself with SIGKILL right after its Nth
/// journal entry is written, so tests can cut a run or a rollback at every
/// point where the journal says something the work has not yet done.
/// Read once; costs an atomic increment per entry otherwise.
mod crash_point {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub const VARIABLE: &str = "GANTRY_CRASH_AFTER_JOURNAL_WRITES";

    pub fn reached() {
        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        static WRITTEN: AtomicU64 = AtomicU64::new(0);
        let limit = *LIMIT.get_or_init(|| std::env::var(VARIABLE).ok()?.parse().ok());
        if let Some(limit) = limit
            && WRITTEN.fetch_add(1, Ordering::SeqCst) + 1 == limit
        {
            // SAFETY: raising a signal at ourselves; SIGKILL cannot be caught.
            unsafe {
                libc::raise(libc::SIGKILL);
            }
        }
    }
}

/// Where a run stands, as far as compensation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its runner died before the run finished.
    Unfinished,
    /// Its compensation is not settled: a rollback began and did not end,
    /// ended interrupted, or — the run having failed with hooked steps —
    /// never ended at all (the runner died between the run's end and its
    /// rollback).
    RollbackUnfinished,
    /// Finished, and any compensation it needs ended.
    Settled,
}

impl RunState {
    /// Derived from the entries alone, never from an entry written ahead
    /// of the work it claims: a run that did not succeed and started a
    /// hooked step is settled only once a rollback has ended (with
    /// `success` or `failure`; `interrupted` leaves it for `resume`).
    pub fn of(records: &[Record]) -> RunState {
        let mut finished: Option<&str> = None;
        let mut hooked = false;
        let mut rollback_open = false;
        let mut rollback_ended = false;
        for record in records {
            match &record.entry {
                Entry::StepStarted { hook: Some(_), .. } | Entry::ImportedStep { .. } => {
                    hooked = true
                }
                Entry::RunFinished { status } => finished = Some(status),
                Entry::RollbackBegun { .. } | Entry::RollbackRerun { .. } => rollback_open = true,
                Entry::RollbackEnded { status } => {
                    rollback_open = status == "interrupted";
                    rollback_ended |= !rollback_open;
                }
                _ => {}
            }
        }
        match finished {
            None => RunState::Unfinished,
            Some(_) if rollback_open => RunState::RollbackUnfinished,
            Some(status) if status != "success" && hooked && !rollback_ended => {
                RunState::RollbackUnfinished
            }
            Some(_) => RunState::Settled,
        }
    }
}

/// Reads a journal and checks its chain. A last line without its newline
/// (a write a crash cut short) is dropped; any other line that does not
/// parse or does not chain to the one before makes the journal damaged.
pub fn read(path: &Path) -> Result<Vec<Record>, ReadError> {
    let contents = crate::fsutil::read_regular_file(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &contents).map(|(records, _, _)| records)
}

/// The records of a journal's complete lines, the hash the next line must
/// chain to, and how many bytes the complete lines take.
fn parse(path: &Path, contents: &[u8]) -> Result<(Vec<Record>, String, usize), ReadError> {
    parse_from(path, &run_id_of(path), contents)
}

/// Checks the chain of a journal's bytes that were carried away from their
/// run folder (a job hand-off bundle), starting from `run_id`; returns its
/// records or why it is damaged.
pub fn parse_chain(run_id: &str, contents: &[u8]) -> Result<Vec<Record>, String> {
    parse_from(Path::new(FILE_NAME), run_id, contents)
        .map(|(records, _, _)| records)
        .map_err(|error| match error {
            ReadError::Damaged { line, why, .. } => format!("line {line}: {why}"),
            other => crate::hint::one_line(&other),
        })
}

fn parse_from(
    path: &Path,
    run_id: &str,
    contents: &[u8],
) -> Result<(Vec<Record>, String, usize), ReadError> {
    let whole = contents
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let mut prev = chain_hash(run_id.as_bytes());
    let mut records = Vec::new();
    for (index, line) in contents[..whole]
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
    {
        let line = &line[..line.len() - 1];
        let damaged = |why: String| ReadError::Damaged {
            path: path.to_owned(),
            line: index + 1,
            why,
        };
        let record: Record = serde_json::from_slice(line)
            .map_err(|e| damaged(format!("not a journal entry ({e})")))?;
        if record.prev != prev {
            return Err(damaged(if index == 0 {
                "the first entry does not belong to this run".into()
            } else {
                "the entry does not follow the one before it (a line was edited, removed, reordered or added)".into()
            }));
        }
        prev = chain_hash(line);
        records.push(record);
    }
    Ok((records, prev, whole))
}

/// Creates `folder` and its missing parents, fsyncing each parent so the
/// new entries survive a crash.
fn create_dir_durably(folder: &Path) -> io::Result<()> {
    if folder.is_dir() {
        return Ok(());
    }
    if let Some(parent) = folder.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durably(parent)?;
        match fs::create_dir(folder) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        }
        sync_dir(parent)
    } else {
        fs::create_dir_all(folder)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(seq: u64) -> Entry {
        Entry::StepStarted {
            seq,
            job: "build".into(),
            step: "one".into(),
            hook: None,
        }
    }

    #[test]
    fn entries_round_trip_one_per_line() {
        let folder = tempfile::tempdir().unwrap();
        let run = folder.path().join("runs").join("r1");
        let journal = Journal::create(&run, true).unwrap();
        journal.record(started(0)).unwrap();
        journal
            .record(Entry::RunFinished {
                status: "success".into(),
            })
            .unwrap();
        let text = fs::read_to_string(run.join(FILE_NAME)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains(r#""event":"step_started""#)
        );
        let records = read(&run.join(FILE_NAME)).unwrap();
        assert_eq!(records[0].entry, started(0));
        assert!(
            Journal::create(&run, true).is_err(),
            "a run's journal is created once"
        );
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_cut_before_appending() {
        let folder = tempfile::tempdir().unwrap();
        let journal = Journal::create(folder.path(), true).unwrap();
        journal.record(started(0)).unwrap();
        let path = journal.path().to_owned();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"at_ms":1,"event":"step_sta"#).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        let journal = Journal::open(&path).unwrap();
        journal.record(started(1)).unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].entry, started(1));
    }

    fn record(entry: Entry) -> Record {
        Record {
            prev: String::new(),
            at_ms: 0,
            entry,
        }
    }

    #[test]
    fn a_failed_run_is_settled_only_once_its_compensation_ended() {
        let hooked = Entry::StepStarted {
            seq: 0,
            job: "deploy".into(),
            step: "one".into(),
            hook: Some(Box::new(HookSpec::example("one"))),
        };
        let finished = |status: &str| Entry::RunFinished {
            status: status.into(),
        };
        let ended = |status: &str| Entry::RollbackEnded {
            status: status.into(),
        };
        let begun = Entry::RollbackBegun { reason: "r".into() };
        let state = |entries: &[Entry]| {
            RunState::of(&entries.iter().cloned().map(record).collect::<Vec<_>>())
        };
        use RunState::*;
        assert_eq!(state(std::slice::from_ref(&hooked)), Unfinished);
        assert_eq!(state(&[hooked.clone(), finished("success")]), Settled);
        // Killed between the run's end and its rollback: not settled.
        for status in ["failure", "cancelled", "interrupted"] {
            assert_eq!(
                state(&[hooked.clone(), finished(status)]),
                RollbackUnfinished,
                "{status}"
            );
        }
        let begun_only = [hooked.clone(), finished("failure"), begun.clone()];
        assert_eq!(state(&begun_only), RollbackUnfinished);
        let cut = [
            hooked.clone(),
            finished("failure"),
            begun.clone(),
            ended("interrupted"),
        ];
        assert_eq!(state(&cut), RollbackUnfinished);
        for status in ["success", "failure"] {
            let done = [
                hooked.clone(),
                finished("failure"),
                begun.clone(),
                ended(status),
            ];
            assert_eq!(state(&done), Settled, "{status}");
        }
        // Nothing to compensate: a failed run without hooks is settled.
        let plain = Entry::StepStarted {
            seq: 0,
            job: "deploy".into(),
            step: "one".into(),
            hook: None,
        };
        assert_eq!(state(&[plain, finished("failure")]), Settled);
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join(FILE_NAME);
        fs::write(&path, "not json\n{}\n").unwrap();
        let error = read(&path).unwrap_err();
        assert!(error.is_damaged(), "{error}");
        assert!(error.to_string().contains("at line 1"), "{error}");
    }

    /// A journal of three entries, and its lines.
    fn three_entries() -> (tempfile::TempDir, PathBuf, Vec<String>) {
        let folder = tempfile::tempdir().unwrap();
        let run = folder.path().join("20261128T000000Z-abc123");
        let journal = Journal::create(&run, false).unwrap();
        for seq in 0..3 {
            journal.record(started(seq)).unwrap();
        }
        let path = journal.path().to_owned();
        let lines = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        (folder, path, lines)
    }

    fn damaged_line(path: &Path, lines: &[String]) -> usize {
        fs::write(path, lines.join("\n") + "\n").unwrap();
        match read(path) {
            Err(ReadError::Damaged { line, .. }) => line,
            other => panic!("expected a damaged journal, got {other:?}"),
        }
    }

    #[test]
    fn each_entry_chains_to_the_one_before_from_the_run_id() {
        let (_folder, path, lines) = three_entries();
        let records = read(&path).unwrap();
        assert_eq!(records[0].prev, chain_hash(b"20261128T000000Z-abc123"));
        assert_eq!(records[1].prev, chain_hash(lines[0].as_bytes()));
        assert_eq!(records[2].prev, chain_hash(lines[1].as_bytes()));
    }

    #[test]
    fn an_edited_removed_reordered_or_foreign_line_makes_the_journal_damaged() {
        let (_folder, path, lines) = three_entries();
        let mut edited = lines.clone();
        edited[1] = edited[1].replace(r#""seq":1"#, r#""seq":7"#);
        assert_eq!(damaged_line(&path, &edited), 3, "the line after an edit");
        let removed = [lines[0].clone(), lines[2].clone()];
        assert_eq!(damaged_line(&path, &removed), 2);
        let reordered = [lines[1].clone(), lines[0].clone(), lines[2].clone()];
        assert_eq!(damaged_line(&path, &reordered), 1);
        let mut foreign = lines.clone();
        foreign.push(lines[2].clone());
        assert_eq!(damaged_line(&path, &foreign), 4);
        // The same lines under another run id belong to no chain.
        let other = path
            .parent()
            .unwrap()
            .with_file_name("20261128T000000Z-other1");
        fs::create_dir(&other).unwrap();
        assert_eq!(damaged_line(&other.join(FILE_NAME), &lines), 1);
        assert!(Journal::open(&path).is_err(), "nothing is appended to it");
    }

    #[test]
    fn appending_after_reopening_continues_the_chain() {
        let (_folder, path, _) = three_entries();
        let journal = Journal::open(&path).unwrap();
        journal.record(started(3)).unwrap();
        assert_eq!(read(&path).unwrap().len(), 4);
    }
}
