//! The run folders of a state folder, `<state>/runs/<run-id>/`: listing
//! them newest first, and resolving the RUN argument of a command.
//!
//! Run ids start with their UTC start time, to the microsecond
//! (`20261123T120102.123456Z-3fa9c2`; ids of older gantry versions have
//! whole seconds), so they sort as text by start time. Only folders
//! named like a run id count as runs; anything else in `runs/` is ignored,
//! and so never removed by `gantry gc`.

use std::io;
use std::path::{Path, PathBuf};

/// The name of the folder of runs in a state folder.
pub const RUNS: &str = "runs";

/// `<state>/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(RUNS)
}

/// `<state>/runs/<run-id>`.
pub fn run_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(state_dir).join(run_id)
}

/// Whether `name` has the shape of a run id: `YYYYMMDDTHHMMSS`, optionally
/// `.` and six digits of microseconds, `Z-` and a suffix of lowercase
/// letters and digits.
pub fn is_run_id(name: &str) -> bool {
    let bytes = name.as_bytes();
    // `.ffffff` is taken out, so both shapes are checked as one.
    let fraction = bytes.get(15) == Some(&b'.');
    if fraction
        && !bytes
            .get(16..22)
            .is_some_and(|digits| digits.iter().all(u8::is_ascii_digit))
    {
        return false;
    }
    let whole: Vec<u8> = if fraction {
        [&bytes[..15], &bytes[22..]].concat()
    } else {
        bytes.to_vec()
    };
    let bytes = whole.as_slice();
    if bytes.len() < 18 {
        return false;
    }
    let (time, suffix) = bytes.split_at(17);
    let digits = |range: std::ops::Range<usize>| time[range].iter().all(u8::is_ascii_digit);
    digits(0..8)
        && time[8] == b'T'
        && digits(9..15)
        && time[15] == b'Z'
        && time[16] == b'-'
        && suffix
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// The runs of `state_dir`, newest first. A state folder without runs (or
/// without a `runs/` folder at all) has none.
pub fn list(state_dir: &Path) -> io::Result<Vec<String>> {
    let read = match std::fs::read_dir(runs_dir(state_dir)) {
        Ok(read) => read,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut runs = Vec::new();
    for entry in read {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if is_run_id(&name) && entry.file_type()?.is_dir() {
            runs.push(name);
        }
    }
    runs.sort_unstable_by(|a, b| b.cmp(a));
    Ok(runs)
}

/// Why a RUN argument names no single run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "there are no runs in the state folder `{}`; run the pipeline first, or point `--manifest` or `--state-dir` at the right place",
        state_dir.display()
    )]
    NoRuns { state_dir: PathBuf },
    #[error(
        "no run `{wanted}` in the state folder `{}`; the newest is `{newest}`",
        state_dir.display()
    )]
    NotFound {
        wanted: String,
        state_dir: PathBuf,
        newest: String,
    },
    #[error(
        "`{wanted}` is the start of {} runs ({}); give more of the id",
        matches.len(),
        matches.iter().take(5).map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            + if matches.len() > 5 { ", …" } else { "" }
    )]
    Ambiguous {
        wanted: String,
        matches: Vec<String>,
    },
    #[error("cannot list the runs in `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The run `wanted` names in `state_dir`: an exact id, the start of
/// exactly one id, or — when `wanted` is `None` — the newest run.
pub fn resolve(state_dir: &Path, wanted: Option<&str>) -> Result<String, RunError> {
    let runs = list(state_dir).map_err(|source| RunError::Io {
        path: runs_dir(state_dir),
        source,
    })?;
    let Some(newest) = runs.first() else {
        return Err(RunError::NoRuns {
            state_dir: state_dir.to_owned(),
        });
    };
    let Some(wanted) = wanted else {
        return Ok(newest.clone());
    };
    if runs.iter().any(|run| run == wanted) {
        return Ok(wanted.to_owned());
    }
    let mut matches: Vec<String> = if wanted.is_empty() {
        Vec::new()
    } else {
        runs.iter()
            .filter(|run| run.starts_with(wanted))
            .cloned()
            .collect()
    };
    match matches.len() {
        0 => Err(RunError::NotFound {
            wanted: wanted.to_owned(),
            state_dir: state_dir.to_owned(),
            newest: newest.clone(),
        }),
        1 => Ok(matches.remove(0)),
        _ => Err(RunError::Ambiguous {
            wanted: wanted.to_owned(),
            matches,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(runs: &[&str]) -> tempfile::TempDir {
        let state = tempfile::tempdir().unwrap();
        for run in runs {
            std::fs::create_dir_all(run_dir(state.path(), run)).unwrap();
        }
        state
    }

    #[test]
    fn run_ids_are_recognised() {
        assert!(is_run_id("20261123T120102Z-3fa9c2"));
        assert!(is_run_id("20261123T120102.000042Z-3fa9c2"));
        assert!(!is_run_id("20261123T120102.42Z-3fa9c2"));
        assert!(!is_run_id("20261123T120102.Z-3fa9c2"));
        assert!(!is_run_id("20261123T120102Z-"));
        assert!(!is_run_id("latest"));
        assert!(!is_run_id("20261123X120102Z-3fa9c2"));
        assert!(!is_run_id("20261123T120102Z-3FA9C2"));
    }

    #[test]
    fn runs_are_listed_newest_first_ignoring_strangers() {
        let state = state_with(&[
            "20261123T120102Z-3fa9c2",
            "20261124T000000Z-000001",
            "20251231T235959Z-ffffff",
            "notes",
        ]);
        std::fs::write(runs_dir(state.path()).join("20270101T000000Z-aaaaaa"), "").unwrap();
        assert_eq!(
            list(state.path()).unwrap(),
            [
                "20261124T000000Z-000001",
                "20261123T120102Z-3fa9c2",
                "20251231T235959Z-ffffff"
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(list(empty.path()).unwrap().is_empty());
    }

    #[test]
    fn a_run_argument_resolves_to_one_run() {
        let state = state_with(&[
            "20261123T120102Z-3fa9c2",
            "20261123T130000Z-000001",
            "20251231T235959Z-ffffff",
        ]);
        let resolve = |wanted| resolve(state.path(), wanted).map_err(|e| e.to_string());
        assert_eq!(resolve(None).unwrap(), "20261123T130000Z-000001");
        assert_eq!(
            resolve(Some("20261123T120102Z-3fa9c2")).unwrap(),
            "20261123T120102Z-3fa9c2"
        );
        assert_eq!(resolve(Some("2025")).unwrap(), "20251231T235959Z-ffffff");
        let ambiguous = resolve(Some("20261123")).unwrap_err();
        assert!(ambiguous.contains("2 runs"), "{ambiguous}");
        let missing = resolve(Some("1999")).unwrap_err();
        assert!(missing.contains("no run `1999`"), "{missing}");
        let none = tempfile::tempdir().unwrap();
        let error = super::resolve(none.path(), None).unwrap_err().to_string();
        assert!(error.contains("no runs"), "{error}");
    }
}
