//! A run's `summary.md`: the steps' summaries (then the rollback hooks'),
//! in the order they finished, written to disk as they come.
//!
//! Kept on disk rather than in memory, and capped: each step summary is
//! at most 1 MiB (its file is read capped), and the run's summary at most
//! [`MAX_RUN_SUMMARY`] (16 MiB); past it, later summaries are left out and
//! one line says so. Written to a temporary file in the run's folder and
//! renamed into place when the run ends, so a reader never sees half of
//! one (fsynced when the run's journal is durable).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The most a run's summary holds.
pub const MAX_RUN_SUMMARY: u64 = 16 << 20;

/// The file name of a run's summary in its folder.
pub const FILE_NAME: &str = "summary.md";

/// What a run's summary says once it is full.
const CUT_NOTE: &str =
    "\n_The run's summary reached its limit of 16 MiB; later step summaries were left out._\n";

/// The summary being written.
#[derive(Debug)]
pub struct RunSummary {
    folder: PathBuf,
    /// Created with the first summary.
    partial: Option<File>,
    written: u64,
    cut: bool,
    /// The first error met; the summary is then given up.
    failed: Option<io::Error>,
}

impl RunSummary {
    /// A summary for the run whose folder is `folder`.
    pub fn new(folder: &Path) -> RunSummary {
        RunSummary {
            folder: folder.to_owned(),
            partial: None,
            written: 0,
            cut: false,
            failed: None,
        }
    }

    /// A summary that goes on from the `summary.md` already in `folder`
    /// (for the hooks `gantry rollback` runs later): what it holds is kept
    /// as it is, and counts towards the cap.
    pub fn continuing(folder: &Path) -> RunSummary {
        let mut summary = RunSummary::new(folder);
        let existing = crate::fsutil::read_regular_file_capped(
            &folder.join(FILE_NAME),
            MAX_RUN_SUMMARY + CUT_NOTE.len() as u64,
        );
        if let Ok(Some(bytes)) = existing
            && !bytes.is_empty()
        {
            let text = String::from_utf8_lossy(&bytes);
            if let Err(error) = summary.write(&text, "") {
                summary.failed = Some(error);
            }
            summary.cut = text.ends_with(CUT_NOTE) || summary.written >= MAX_RUN_SUMMARY;
        }
        summary
    }

    fn partial_path(&self) -> PathBuf {
        self.folder.join(format!(".{FILE_NAME}.partial"))
    }

    /// Appends one summary (already masked), ending it with a newline.
    pub fn append(&mut self, text: &str) {
        if text.trim().is_empty() || self.cut || self.failed.is_some() {
            return;
        }
        let newline = if text.ends_with('\n') { "" } else { "\n" };
        let size = (text.len() + newline.len()) as u64;
        let (text, newline) = if self.written + size > MAX_RUN_SUMMARY {
            self.cut = true;
            (CUT_NOTE, "")
        } else {
            (text, newline)
        };
        if let Err(error) = self.write(text, newline) {
            self.failed = Some(error);
        }
    }

    fn write(&mut self, text: &str, newline: &str) -> io::Result<()> {
        if self.partial.is_none() {
            self.partial = Some(File::create(self.partial_path())?);
        }
        let file = self.partial.as_mut().expect("just created");
        file.write_all(text.as_bytes())?;
        file.write_all(newline.as_bytes())?;
        self.written += (text.len() + newline.len()) as u64;
        Ok(())
    }

    /// Puts the summary in place as `summary.md`; `Ok(None)` when no step
    /// wrote one.
    pub fn finish(mut self, durable: bool) -> io::Result<Option<PathBuf>> {
        if let Some(error) = self.failed.take() {
            let _ = std::fs::remove_file(self.partial_path());
            return Err(error);
        }
        let Some(file) = self.partial.take() else {
            return Ok(None);
        };
        if durable {
            file.sync_all()?;
        }
        drop(file);
        let path = self.folder.join(FILE_NAME);
        std::fs::rename(self.partial_path(), &path)?;
        if durable {
            crate::fsutil::sync_dir(&self.folder)?;
        }
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_go_to_disk_in_order_and_stop_at_the_cap() {
        let folder = tempfile::tempdir().unwrap();
        let mut summary = RunSummary::new(folder.path());
        summary.append("# one");
        summary.append("  \n");
        summary.append("# two\n");
        let path = summary.finish(false).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "# one\n# two\n");

        let mut summary = RunSummary::new(folder.path());
        let mebibyte = "x".repeat((1 << 20) - 1);
        for _ in 0..20 {
            summary.append(&mebibyte);
        }
        let path = summary.finish(true).unwrap().unwrap();
        let written = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            written.len() as u64,
            MAX_RUN_SUMMARY + CUT_NOTE.len() as u64
        );
        assert!(written.ends_with(CUT_NOTE));

        let empty = RunSummary::new(folder.path());
        assert!(empty.finish(true).unwrap().is_none());

        // Going on from a full summary keeps it and adds nothing.
        let mut full = RunSummary::continuing(folder.path());
        full.append("# a hook");
        let path = full.finish(true).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), written);
    }

    #[test]
    fn a_later_rollback_goes_on_from_the_summary_there() {
        let folder = tempfile::tempdir().unwrap();
        let mut summary = RunSummary::new(folder.path());
        summary.append("# step");
        summary.finish(false).unwrap();
        let mut later = RunSummary::continuing(folder.path());
        later.append("# hook");
        let path = later.finish(true).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "# step\n# hook\n");
    }
}
