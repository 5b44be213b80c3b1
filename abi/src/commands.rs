//! Escaping in workflow commands, GitHub's rules: in a message `%`, CR and
//! LF are written `%25`, `%0D`, `%0A`; in a property value also `:` and `,`
//! (`%3A`, `%2C`), which would otherwise end the value.

/// Escapes a command's message.
///
/// ```
/// assert_eq!(gantry_abi::commands::escape_data("100%\nok"), "100%25%0Aok");
/// ```
pub fn escape_data(text: &str) -> String {
    escape(text, false)
}

/// Escapes a property value.
///
/// ```
/// assert_eq!(gantry_abi::commands::escape_property("a:b,c%"), "a%3Ab%2Cc%25");
/// ```
pub fn escape_property(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, property: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape_data`]. Hex digits may be either case; any other `%`
/// is literal.
pub fn unescape_data(text: &str) -> String {
    unescape(text, false)
}

/// Undoes [`escape_property`].
pub fn unescape_property(text: &str) -> String {
    unescape(text, true)
}

fn unescape(s: &str, property: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let decoded = match after.as_bytes() {
            [a, b, ..] => match (a.to_ascii_uppercase(), b.to_ascii_uppercase()) {
                (b'2', b'5') => Some('%'),
                (b'0', b'D') => Some('\r'),
                (b'0', b'A') => Some('\n'),
                (b'3', b'A') if property => Some(':'),
                (b'2', b'C') if property => Some(','),
                _ => None,
            },
            _ => None,
        };
        out.push(decoded.unwrap_or('%'));
        // A decoded escape is three ASCII bytes, so `2` is a char boundary.
        rest = if decoded.is_some() {
            &after[2..]
        } else {
            after
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn messages_round_trip(text in any::<String>()) {
            prop_assert_eq!(unescape_data(&escape_data(&text)), text);
        }

        #[test]
        fn properties_round_trip(text in any::<String>()) {
            let escaped = escape_property(&text);
            prop_assert!(!escaped.contains([',', ':', '\n', '\r']));
            prop_assert_eq!(unescape_property(&escaped), text);
        }
    }

    #[test]
    fn unknown_and_partial_escapes_stay_literal() {
        assert_eq!(unescape_data("50% done %zz %2"), "50% done %zz %2");
        assert_eq!(unescape_data("%0a%0D"), "\n\r");
        assert_eq!(unescape_data("a%3Ab"), "a%3Ab");
        assert_eq!(unescape_property("a%3Ab%2c"), "a:b,");
    }
}
