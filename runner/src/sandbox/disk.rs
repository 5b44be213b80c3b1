//! The disk a step fills: its private `/tmp` and upload folders, measured
//! while it runs.
//!
//! There is no quota to hand the kernel for a plain folder, so the folders
//! are measured every [`POLL`] on a blocking thread, and once more when
//! the guest ends; a step past its `limits.disk-mb` is stopped then. It can
//! overshoot by what it writes in one interval, and the bytes go with its
//! folders when the step ends.

use std::path::PathBuf;
use std::time::Duration;

/// How often a running step's folders are measured.
const POLL: Duration = Duration::from_millis(100);

/// The bytes the files under `folders` hold, no link followed.
pub fn used(folders: &[PathBuf]) -> u64 {
    folders
        .iter()
        .map(|folder| crate::fsutil::disk_usage(folder))
        .sum()
}

/// Returns once `folders` hold more than `limit` bytes; never, with no
/// folder to watch.
pub async fn watch(folders: &[PathBuf], limit: u64) {
    if folders.is_empty() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(POLL).await;
        let measured = folders.to_vec();
        let bytes = tokio::task::spawn_blocking(move || used(&measured))
            .await
            .unwrap_or(0);
        if bytes > limit {
            return;
        }
    }
}
