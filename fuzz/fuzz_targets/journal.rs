//! The run journal reader: `gantry rollback`, `resume` and `runs` act on
//! what it returns, and a hand-off bundle carries a journal from another
//! machine (`journal::parse_chain`).
//!
//! Properties: nothing panics; a journal that reads is whole lines
//! chained from its run id; and any entries, appended by `Journal` to a
//! new run's file, read back as the same entries in the same order.

#![no_main]

use gantry::journal::{self, Entry, Journal, Record, RunState};
use libfuzzer_sys::fuzz_target;

const RUN_ID: &str = "20260101T000000Z-fuzz";

fuzz_target!(|bytes: &[u8]| {
    // The bytes as a journal: the chain rarely holds for random input, but
    // the seeds are real journals the fuzzer edits.
    if let Ok(records) = journal::parse_chain(RUN_ID, bytes) {
        let complete = bytes.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(records.len(), complete);
        let _ = RunState::of(&records);
    }

    // The bytes as entries, one a line, written through the journal's own
    // writer and read back from the file.
    let entries: Vec<Entry> = bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Record>(line).ok())
        .map(|record| record.entry)
        .collect();
    if entries.is_empty() {
        return;
    }
    let state = tempfile::tempdir().expect("a temp folder");
    let folder = state.path().join(RUN_ID);
    let journal = Journal::create(&folder, false).expect("a new journal");
    for entry in &entries {
        journal.append(entry.clone(), false).expect("an append");
    }
    let read = journal::read(journal.path()).expect("the journal just written reads");
    let read: Vec<Entry> = read.into_iter().map(|record| record.entry).collect();
    assert_eq!(read, entries);
    let _ = RunState::of(&journal::read(journal.path()).unwrap());
    drop(journal);
    // Reopening to append (as `resume` does) accepts it too.
    Journal::open(&folder.join(journal::FILE_NAME)).expect("the journal reopens");
});
