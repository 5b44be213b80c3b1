//! Hiding secret values in log text.

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
        let mut ranges = Vec::new();
        for secret in &self.secrets {
            // The std substring search is fast and usually says "absent";
            // only then is the overlapping-match scan worth running.
            if let Some(first) = text.find(&secret.value) {
                secret.find_all(text.as_bytes(), first, &mut ranges);
            }
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        // A valid UTF-8 needle only matches on char boundaries; rounding
        // outward anyway makes the slicing below unable to panic.
        for r in &mut ranges {
            *r = (text.floor_char_boundary(r.0), text.ceil_char_boundary(r.1));
        }
        ranges.sort_unstable();

        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                // Overlapping matches become one mask; adjacent ones stay separate.
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut done = 0; // bytes of `text` already emitted or masked
        for (start, end) in merged {
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = end;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
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
}
