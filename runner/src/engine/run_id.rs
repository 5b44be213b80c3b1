//! Run ids: the UTC start time to the microsecond, sortable as text, plus
//! a random suffix so two runs never collide.
//!
//! The microseconds matter: with whole seconds, three runs started in the
//! same second sorted by their random suffixes, and a bare `gantry
//! rollback` could undo the wrong deployment. Runs of one state folder
//! hold its lock in turn, so their start times differ.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A new run id such as `20261123T120102.123456Z-3fa9c2`.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let suffix: u32 = random_u32() & 0x00ff_ffff;
    format!("{}-{suffix:06x}", precise_timestamp(now))
}

/// `YYYYMMDDTHHMMSS.ffffffZ` for a time since the Unix epoch.
fn precise_timestamp(since_epoch: Duration) -> String {
    let seconds = utc_timestamp(since_epoch.as_secs());
    format!(
        "{}.{:06}Z",
        &seconds[..seconds.len() - 1],
        since_epoch.subsec_micros()
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` for milliseconds since the Unix epoch, as a
/// person reads a run's start.
pub fn utc_display(ms: u64) -> String {
    let stamp = utc_timestamp(ms / 1000);
    format!(
        "{}-{}-{} {}:{}:{} UTC",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    )
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch.
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn random_u32() -> u32 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_correct_utc() {
        assert_eq!(utc_timestamp(0), "19700101T000000Z");
        // 2026-11-23 12:01:02 UTC
        assert_eq!(utc_timestamp(1_795_435_262), "20261123T120102Z");
        // A leap day.
        assert_eq!(utc_timestamp(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn ids_sort_by_time_to_the_microsecond() {
        let ids: Vec<String> = (0..50)
            .map(|_| {
                std::thread::sleep(Duration::from_micros(2));
                new_run_id()
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids sort in the order they were made");
        assert_eq!(ids[0].len(), "20261123T120102.123456Z-3fa9c2".len());
        assert!(crate::runs::is_run_id(&ids[0]), "{}", ids[0]);
        assert_eq!(
            precise_timestamp(Duration::from_micros(1_795_435_262_000_042)),
            "20261123T120102.000042Z"
        );
        assert_eq!(utc_display(1_795_435_262_999), "2026-11-23 12:01:02 UTC");
    }
}
