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
#[derive(Clone, Default)]
pub struct Masker {
    secrets: Vec<Secret>,
}

/// A value plus its prefix table, so overlapping matches are found in one
/// linear pass over the text (Knuth–Morris–Pratt).
#[derive(Clone)]
struct Secret {
    value: String,
    /// `fallback[i]`: length of the longest proper prefix of `value[..=i]`
    /// that is also its suffix.
    fallback: Vec<usize>,
}

// Hand-written so that debug output never prints a secret.
impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("secrets", &self.secrets.len())
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
        self.secrets.is_empty()
    }

    /// Registers a secret. Empty and whitespace-only values are ignored
    /// (masking them would wreck every line). A multi-line value is also
    /// registered line by line, trimmed, since tools often print one line of
    /// a key or certificate at a time.
    pub fn add(&mut self, value: &str) {
        if value.trim().is_empty() {
            return;
        }
        self.register(value);
        if value.contains(['\n', '\r']) {
            for line in value.split(['\n', '\r']) {
                let line = line.trim();
                if !line.is_empty() {
                    self.register(line);
                }
            }
        }
    }

    fn register(&mut self, value: &str) {
        if self.secrets.iter().any(|s| s.value == value) {
            return;
        }
        let fallback = prefix_table(value.as_bytes());
        self.secrets.push(Secret {
            value: value.to_owned(),
            fallback,
        });
    }

    /// Returns `text` with every registered value replaced by `***`. Borrows
    /// when nothing matches. Cost is linear in the text per registered value.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        replace(text, self.matches(text))
    }

    /// The byte range of every occurrence of every value in `text`,
    /// overlapping ones included, each on char boundaries; unordered.
    pub fn matches(&self, text: &str) -> Vec<(usize, usize)> {
        let mut ranges = Vec::new();
        for secret in &self.secrets {
            // The std substring search is fast and usually says "absent";
            // only then is the overlapping-match scan worth running.
            if let Some(first) = text.find(&secret.value) {
                secret.find_all(text.as_bytes(), first, &mut ranges);
            }
        }
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
        self.secrets
            .iter()
            .map(|s| s.value.len())
            .max()
            .unwrap_or(0)
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

impl Secret {
    /// Pushes the byte range of every match in `text[from..]`, overlapping
    /// ones included.
    fn find_all(&self, text: &[u8], from: usize, out: &mut Vec<(usize, usize)>) {
        let needle = self.value.as_bytes();
        let mut matched = 0;
        for (i, &byte) in text.iter().enumerate().skip(from) {
            while matched > 0 && needle[matched] != byte {
                matched = self.fallback[matched - 1];
            }
            if needle[matched] == byte {
                matched += 1;
            }
            if matched == needle.len() {
                out.push((i + 1 - matched, i + 1));
                matched = self.fallback[matched - 1];
            }
        }
    }
}

fn prefix_table(needle: &[u8]) -> Vec<usize> {
    let mut table = vec![0; needle.len()];
    let mut k = 0;
    for (i, &byte) in needle.iter().enumerate().skip(1) {
        while k > 0 && needle[k] != byte {
            k = table[k - 1];
        }
        if needle[k] == byte {
            k += 1;
        }
        table[i] = k;
    }
    table
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
        assert_eq!(m.mask("END"), "***");
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
