//! Hiding secret values in log text.
//!
//! Two kinds of value are hidden, with different reach ([`Masks`]):
//!
//! - the run's **secrets** (`--secret`, `--secrets-file`) are replaced in
//!   everything gantry prints or stores, its own words included: a secret
//!   is never shown, whatever surrounds it;
//! - values a step registers with **`::add-mask::`** are replaced in text a
//!   step controls (its log, annotations, outputs, state, summary, and the
//!   step-controlled parts of gantry's own messages), never in gantry's
//!   fixed words, so a guest registering `a` or `failed` cannot make the
//!   run's report unreadable. Such a mask must be at least
//!   [`MIN_REGISTERED_CHARS`] characters long.
//!
//! gantry's own messages often quote step-controlled text (a heredoc
//! delimiter, an expression error about a step's output). Where such a
//! message is composed, the quoted part is wrapped with [`step_text`]; the
//! marks are invisible code points that [`Masks::message`] reads and
//! removes, so the registered masks reach exactly the marked spans.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use std::fmt;

/// What a masked secret is replaced with.
const MASK: &str = "***";

/// The set of secret values to hide from logs.
///
/// Every occurrence of every value is replaced; where matches overlap (one
/// value containing another, two values sharing text, a value overlapping
/// itself as `aa` does in `aaa`) the union of the matched text becomes a
/// single `***`, so no fragment of a secret survives. Because the union is
/// taken, a longer value always wins over a shorter one inside it.
///
/// All values are searched for at once by Aho–Corasick automata, so masking
/// is linear in the text however many values there are. Values added
/// lately sit in a small automaton of their own, merged into the large one
/// once they are many, so a step adding masks one line at a time rebuilds
/// only the small one (amortized, every value is compiled a few times).
#[derive(Clone, Default)]
pub struct Masker {
    settled: Tier,
    recent: Tier,
}

/// Values and the automaton that finds them, built on the first search
/// after a change.
#[derive(Clone, Default)]
struct Tier {
    values: std::collections::BTreeSet<String>,
    longest: usize,
    automaton: std::sync::OnceLock<Option<AhoCorasick>>,
}

impl Tier {
    fn insert(&mut self, value: String) -> bool {
        self.longest = self.longest.max(value.len());
        let added = self.values.insert(value);
        if added {
            self.automaton = std::sync::OnceLock::new();
        }
        added
    }

    /// Pushes the byte range of every occurrence of every value in `text`,
    /// overlapping ones included.
    fn find(&self, text: &str, ranges: &mut Vec<(usize, usize)>) {
        let automaton = self.automaton.get_or_init(|| {
            if self.values.is_empty() {
                return None;
            }
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&self.values)
                .ok()
        });
        match automaton {
            Some(automaton) => ranges.extend(
                automaton
                    .find_overlapping_iter(text)
                    .map(|found| (found.start(), found.end())),
            ),
            // Only if no automaton could be built: one value at a time.
            None => {
                for value in &self.values {
                    ranges.extend(
                        text.match_indices(value.as_str())
                            .map(|(start, found)| (start, start + found.len())),
                    );
                }
            }
        }
    }
}

// Hand-written so that debug output never prints a secret.
impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field(
                "secrets",
                &(self.settled.values.len() + self.recent.values.len()),
            )
            .finish()
    }
}

impl Masker {
    /// An empty masker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no value is registered (masking is then a no-op).
    pub fn is_empty(&self) -> bool {
        self.settled.values.is_empty() && self.recent.values.is_empty()
    }

    /// Registers a secret. Empty and whitespace-only values are ignored
    /// (masking them would wreck every line). A multi-line value is also
    /// registered line by line, trimmed, since tools often print one line of
    /// a key or certificate at a time; a line shorter than four characters
    /// (the `}` closing a JSON key) is not, as it would mask that text in
    /// every log line while hiding nothing.
    pub fn add(&mut self, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        self.register(value);
        if value.contains(['\n', '\r']) {
            for line in value.split(['\n', '\r']) {
                let line = line.trim();
                if line.chars().count() >= MIN_REGISTERED_CHARS {
                    self.register(line);
                }
            }
        }
    }

    fn register(&mut self, value: &str) {
        if self.settled.values.contains(value) || !self.recent.insert(value.to_owned()) {
            return;
        }
        if self.recent.values.len() > (self.settled.values.len() / 8).max(64) {
            let recent = std::mem::take(&mut self.recent);
            for value in recent.values {
                self.settled.insert(value);
            }
        }
    }

    /// Returns `text` with every registered value replaced by `***`. Borrows
    /// when nothing matches. Cost is linear in the text and its matches.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        replace(text, self.matches(text))
    }

    /// The byte range of every occurrence of every value in `text`,
    /// overlapping ones included, each on char boundaries; unordered.
    pub fn matches(&self, text: &str) -> Vec<(usize, usize)> {
        let mut ranges = Vec::new();
        self.settled.find(text, &mut ranges);
        self.recent.find(text, &mut ranges);
        // A valid UTF-8 needle only matches on char boundaries; rounding
        // outward anyway makes slicing by these ranges unable to panic.
        for r in &mut ranges {
            *r = (text.floor_char_boundary(r.0), text.ceil_char_boundary(r.1));
        }
        ranges
    }

    /// The length in bytes of the longest registered value (0 if none): a
    /// match can reach at most this far back from the end of a text.
    pub fn longest(&self) -> usize {
        self.settled.longest.max(self.recent.longest)
    }
}

/// Sorts `ranges` and merges the overlapping ones: the union of the
/// matched text becomes one mask, so no fragment of a value survives.
/// Adjacent ranges stay separate.
pub fn merge(mut ranges: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `text` with each of `ranges` (byte ranges on char boundaries, in any
/// order, possibly overlapping) replaced by `***`.
pub fn replace(text: &str, ranges: Vec<(usize, usize)>) -> Cow<'_, str> {
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0; // bytes of `text` already emitted or masked
    for (start, end) in merge(ranges) {
        out.push_str(&text[done..start]);
        out.push_str(MASK);
        done = end;
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// Opens a span of step-controlled text inside a message gantry composes.
/// A private-use code point: no text a step could mean to show uses it.
const STEP_OPEN: char = '\u{E000}';
/// Closes the span [`STEP_OPEN`] opened.
const STEP_CLOSE: char = '\u{E001}';

/// Marks `text` as step-controlled where gantry quotes it in a message of
/// its own, so the step's registered masks reach it (see [`Masks::message`]).
/// Marks already in `text` are replaced by U+FFFD: a step cannot close
/// the span early and pass its text off as gantry's.
pub fn step_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 6);
    out.push(STEP_OPEN);
    out.extend(text.chars().map(|c| match c {
        STEP_OPEN | STEP_CLOSE => char::REPLACEMENT_CHARACTER,
        c => c,
    }));
    out.push(STEP_CLOSE);
    out
}

/// `text` without the marks of [`step_text`], and the byte ranges (in the
/// result) that they enclosed.
fn unmark(text: &str) -> (Cow<'_, str>, Vec<(usize, usize)>) {
    if !text.contains([STEP_OPEN, STEP_CLOSE]) {
        return (Cow::Borrowed(text), Vec::new());
    }
    let mut out = String::with_capacity(text.len());
    let mut spans = Vec::new();
    let mut open: Option<usize> = None;
    for c in text.chars() {
        match c {
            STEP_OPEN => open = open.or(Some(out.len())),
            STEP_CLOSE => {
                if let Some(start) = open.take() {
                    spans.push((start, out.len()));
                }
            }
            c => out.push(c),
        }
    }
    // An unclosed span runs to the end: better too much masked than too little.
    if let Some(start) = open {
        spans.push((start, out.len()));
    }
    (Cow::Owned(out), spans)
}

/// `text` without the marks of [`step_text`], for places that show a
/// message without masking it (there is nothing to mask).
pub fn plain(text: &str) -> Cow<'_, str> {
    unmark(text).0
}

/// Why a value given to `::add-mask::` was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskRefused {
    /// Shorter than [`MIN_REGISTERED_CHARS`] (blank values included).
    TooShort,
}

/// The shortest value a step may register with `::add-mask::`, in
/// characters: shorter ones would hide pieces of ordinary words.
pub const MIN_REGISTERED_CHARS: usize = 4;

/// Everything a run hides: its secrets everywhere, and the values its
/// steps registered in step-controlled text (see the module docs).
#[derive(Clone, Default)]
pub struct Masks {
    secrets: Masker,
    registered: Masker,
}

// Hand-written so that debug output never prints a value.
impl fmt::Debug for Masks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masks")
            .field("secrets", &self.secrets)
            .field("registered", &self.registered)
            .finish()
    }
}

impl Masks {
    /// The masks of a run whose secrets `secrets` hides.
    pub fn new(secrets: Masker) -> Self {
        Masks {
            secrets,
            registered: Masker::new(),
        }
    }

    /// Registers a value a step gave to `::add-mask::`. A multi-line value
    /// is registered whole and line by line, each line only if it is long
    /// enough on its own.
    pub fn register(&mut self, value: &str) -> Result<(), MaskRefused> {
        let long_enough = |v: &str| v.trim().chars().count() >= MIN_REGISTERED_CHARS;
        if !long_enough(value) {
            return Err(MaskRefused::TooShort);
        }
        self.registered.register(value);
        if value.contains(['\n', '\r']) {
            for line in value.split(['\n', '\r']).map(str::trim) {
                if long_enough(line) {
                    self.registered.register(line);
                }
            }
        }
        Ok(())
    }

    /// The longest value either kind hides, in bytes.
    pub fn longest(&self) -> usize {
        self.secrets.longest().max(self.registered.longest())
    }

    /// Every range of `text` to hide if all of it is step-controlled.
    pub fn step_matches(&self, text: &str) -> Vec<(usize, usize)> {
        let mut ranges = self.secrets.matches(text);
        ranges.extend(self.registered.matches(text));
        ranges
    }

    /// Text a step controls entirely (a log line, an output value, a
    /// summary): every value of both kinds is hidden.
    pub fn step<'a>(&self, text: &'a str) -> Cow<'a, str> {
        replace(text, self.step_matches(text))
    }

    /// A message gantry composes, with step-controlled parts marked by
    /// [`step_text`]: secrets are hidden everywhere in it; registered
    /// values wherever a match touches a marked part (so a value split
    /// across gantry's words and a step's is still hidden whole). The
    /// marks are removed.
    pub fn message<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let (unmarked, spans) = unmark(text);
        let mut ranges = self.secrets.matches(&unmarked);
        if !spans.is_empty() {
            let touches =
                |&(start, end): &(usize, usize)| spans.iter().any(|&(s, e)| start < e && s < end);
            ranges.extend(
                self.registered
                    .matches(&unmarked)
                    .into_iter()
                    .filter(touches),
            );
        }
        match unmarked {
            Cow::Borrowed(text) => replace(text, ranges),
            Cow::Owned(text) => Cow::Owned(replace(&text, ranges).into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let mut m = Masker::new();
        for v in values {
            m.add(v);
        }
        m
    }

    #[test]
    fn nothing_registered_or_no_match_borrows() {
        let m = Masker::new();
        assert!(m.is_empty());
        assert!(matches!(m.mask("plain"), Cow::Borrowed("plain")));
        let m = masker(&["secret"]);
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(m.mask(""), Cow::Borrowed("")));
    }

    #[test]
    fn blank_values_are_ignored() {
        let m = masker(&["", "   ", "\n\t\r\n"]);
        assert!(m.is_empty());
        assert_eq!(m.mask("a b"), "a b");
    }

    #[test]
    fn single_and_repeated_values() {
        let m = masker(&["hunter2"]);
        assert_eq!(m.mask("pw=hunter2"), "pw=***");
        assert_eq!(m.mask("hunter2 and hunter2!"), "*** and ***!");
        // Adjacent, non-overlapping occurrences are masked one by one.
        assert_eq!(m.mask("hunter2hunter2"), "******");
    }

    #[test]
    fn value_containing_another_is_masked_whole() {
        for order in [["abc", "xabcx"], ["xabcx", "abc"]] {
            let m = masker(&order);
            assert_eq!(m.mask("1 xabcx 2 abc"), "1 *** 2 ***");
        }
    }

    #[test]
    fn overlapping_matches_are_merged() {
        let m = masker(&["abcd", "cdef"]);
        assert_eq!(m.mask("-abcdef-"), "-***-");
        let m = masker(&["aa"]);
        assert_eq!(m.mask("baaab"), "b***b");
        let m = masker(&["abab"]);
        assert_eq!(m.mask("ababab."), "***.");
    }

    #[test]
    fn multi_line_secret_masks_each_line() {
        let m = masker(&["-----BEGIN-----\r\n  line two  \n\nEND"]);
        assert_eq!(m.mask("got -----BEGIN-----"), "got ***");
        assert_eq!(m.mask("x line two y"), "x *** y");
        // Issue 20: a line too short to mask on its own is masked only
        // inside the whole value, not wherever it appears.
        assert_eq!(m.mask("END of line"), "END of line");
        assert_eq!(m.mask("-----BEGIN-----\r\n  line two  \n\nEND"), "***");
    }

    #[test]
    fn utf8_around_and_inside_matches() {
        let m = masker(&["pässwörd", "é"]);
        assert_eq!(m.mask("→pässwörd← café"), "→***← caf***");
        assert_eq!(m.mask("日本語"), "日本語");
    }

    #[test]
    fn long_self_overlapping_secret_stays_linear() {
        let secret = "a".repeat(1000);
        let m = masker(&[&secret, "b"]);
        let line = "a".repeat(200_000) + "b";
        assert_eq!(m.mask(&line), "******");
    }

    /// 100,000 values over a megabyte of text: one automaton scans the text
    /// once. (Searching value by value took minutes for this.)
    #[test]
    fn many_values_are_searched_in_one_pass() {
        let mut masker = Masker::new();
        for i in 0..100_000 {
            masker.add(&format!("token-{i:06}"));
            if i % 1000 == 0 {
                // Masking between additions, as a step's log does.
                assert_eq!(masker.mask("a line"), "a line");
            }
        }
        let mut text = "x".repeat(1 << 20);
        text.push_str("token-099999 and token-000042");
        let masked = masker.mask(&text);
        assert!(
            masked.ends_with("*** and ***"),
            "{}",
            &masked[masked.len() - 40..]
        );
        assert_eq!(masker.longest(), "token-000000".len());
    }

    #[test]
    fn debug_output_hides_values() {
        let m = masker(&["topsecret"]);
        assert!(!format!("{m:?}").contains("topsecret"));
    }

    fn masks(secrets: &[&str], registered: &[&str]) -> Masks {
        let mut m = Masks::new(masker(secrets));
        for v in registered {
            m.register(v).unwrap();
        }
        m
    }

    #[test]
    fn secrets_hide_gantry_words_too_registered_masks_only_step_text() {
        let m = masks(&["status"], &["failed", "opensesame"]);
        // A secret is hidden wherever it is.
        assert_eq!(m.message("exited with status 1"), "exited with *** 1");
        // A registered value leaves gantry's own words alone...
        let text = format!("the step failed: heredoc `{}`", step_text("failed"));
        assert_eq!(m.message(&text), "the step failed: heredoc `***`");
        // ...and reaches step-controlled text whole.
        assert_eq!(m.step("it failed, opensesame"), "it ***, ***");
    }

    #[test]
    fn a_registered_value_straddling_a_mark_is_hidden_whole() {
        let m = masks(&[], &["abc:def"]);
        let text = format!("abc:{} tail", step_text("def"));
        assert_eq!(m.message(&text), "*** tail");
    }

    #[test]
    fn marks_cannot_be_forged_and_never_survive() {
        let m = masks(&[], &["failed"]);
        let forged = step_text("x\u{E001} failed \u{E000}y");
        let shown = m.message(&format!("step says {forged}")).into_owned();
        assert_eq!(shown, "step says x\u{FFFD} *** \u{FFFD}y");
        assert_eq!(plain(&step_text("v")), "v");
        // An unclosed span runs to the end.
        assert_eq!(m.message("a \u{E000}failed"), "a ***");
    }

    #[test]
    fn short_registered_values_are_refused() {
        let mut m = Masks::new(Masker::new());
        for short in ["a", "abc", "  ab  ", "", "日本語"] {
            assert_eq!(m.register(short), Err(MaskRefused::TooShort), "{short:?}");
        }
        assert!(m.register("abcd").is_ok());
        // Line by line, only the long enough lines are registered too.
        assert!(m.register("key-one\nab\nkey-two").is_ok());
        assert_eq!(m.step("ab key-two abcd"), "ab *** ***");
    }
}
