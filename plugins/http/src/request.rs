//! What the inputs ask to send, checked before anything leaves the step:
//! the method, the URL, the headers and the statuses that count as
//! success (`expect`).
//!
//! Header values may be secrets, so no error here ever quotes one: a bad
//! header line is named by its number and, when it has one, its name.

use std::fmt;

/// `http` or `https`: the only schemes `wasi:http` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// An absolute `http(s)://` URL, split the way `wasi:http` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// `host[:port]`, IPv6 hosts in brackets, as written.
    pub authority: String,
    /// The path, starting with `/`, and the query, if any. A fragment is
    /// never sent, so it is dropped.
    pub path_and_query: String,
}

impl Url {
    /// Parses `text`. Credentials in the URL (`user:pass@host`) are
    /// refused: `wasi:http` has no place for them, and a URL is printed in
    /// the log, so they belong in a header (`headers`, from a secret).
    pub fn parse(text: &str) -> Result<Url, String> {
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an absolute URL (`http://host/path`)"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(format!("the scheme `{other}` is not `http` or `https`")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(
                "credentials in a URL are refused: send them in a header (`headers`, from a secret)"
                    .into(),
            );
        }
        check_authority(authority)?;
        let tail = tail.split('#').next().unwrap_or_default();
        if let Some(bad) = tail.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the URL's path holds {bad:?}: percent-encode it (a space is `%20`)"
            ));
        }
        let path_and_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Url {
            scheme,
            authority: authority.to_owned(),
            path_and_query,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_and_query
        )
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with a port in 1..=65535.
fn check_authority(authority: &str) -> Result<(), String> {
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{authority}`: an IPv6 address lacks its `]`"))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                format!("`{authority}`: only `:port` may follow an IPv6 address")
            })?),
        };
        (inside, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    if !host_ok {
        return Err(format!("`{authority}` is not a valid host"));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.chars().all(|c| c.is_ascii_digit()) => {}
            _ => return Err(format!("`{port}` is not a port number (1 to 65535)")),
        }
    }
    Ok(())
}

/// Whether `text` is an HTTP token (RFC 9110 `tchar`s), as method and
/// header names must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// The method, upper-cased (every registered method is upper-case, so
/// `put` in a manifest means `PUT`).
pub fn parse_method(text: &str) -> Result<String, String> {
    let method = text.trim().to_ascii_uppercase();
    if !is_token(&method) {
        return Err(format!("`{}` is not an HTTP method", text.trim()));
    }
    Ok(method)
}

/// One request header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Never shows the value: it may be a secret.
impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <{} bytes>", self.name, self.value.len())
    }
}

/// Parses `Name: value` lines; blank lines are skipped, a name may repeat.
pub fn parse_headers(text: &str) -> Result<Vec<Header>, String> {
    let mut headers = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "header line {number} has no `:` (expected `Name: value`)"
            ));
        };
        let name = name.trim();
        if !is_token(name) {
            return Err(format!(
                "header line {number}: the name is not a valid header name"
            ));
        }
        let value = value.trim();
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "header `{name}` (line {number}): its value holds a control character"
            ));
        }
        headers.push(Header {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(headers)
}

/// Whether a header's value is likely a credential, by its name. Such
/// values are registered as masks before anything is printed, so a server
/// that echoes one back (in a body turned into an output, say) does not
/// show it in the log.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || [
        "token",
        "key",
        "secret",
        "password",
        "auth",
        "session",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// What to register as masks for a sensitive header's value: the value,
/// and for `Scheme credentials` (`Bearer abc…`) the credentials alone too,
/// which is what a server would echo.
pub fn mask_values(header: &Header) -> Vec<&str> {
    let mut values = vec![header.value.as_str()];
    if let Some((_, credentials)) = header.value.split_once(' ') {
        let credentials = credentials.trim();
        if !credentials.is_empty() {
            values.push(credentials);
        }
    }
    values
}

/// The statuses that count as success: codes (`204`), classes (`2xx`)
/// and ranges (`200-299`), comma- or space-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl Expect {
    pub fn parse(text: &str) -> Result<Expect, String> {
        let mut ranges = Vec::new();
        for item in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
        {
            ranges.push(parse_status_item(item)?);
        }
        if ranges.is_empty() {
            return Err("no status given (e.g. `200,201` or `2xx`)".into());
        }
        let text = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Expect { ranges, text })
    }

    pub fn accepts(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_status_item(item: &str) -> Result<(u16, u16), String> {
    let status = |text: &str| match text.parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) && text.len() == 3 => Ok(code),
        _ => Err(format!(
            "`{item}` is not a status (100 to 599), a class (`2xx`) or a range (`200-299`)"
        )),
    };
    let lower = item.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let low = status(&format!("{class}00"))?;
        return Ok((low, low + 99));
    }
    if let Some((low, high)) = item.split_once('-') {
        let (low, high) = (status(low)?, status(high)?);
        if low > high {
            return Err(format!("`{item}`: the range is empty"));
        }
        return Ok((low, high));
    }
    let code = status(item)?;
    Ok((code, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_wasi_http_takes_them() {
        let url = Url::parse(" https://Example.com:8443/a/b?x=1#frag ").unwrap();
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.authority, "Example.com:8443");
        assert_eq!(url.path_and_query, "/a/b?x=1");
        assert_eq!(url.to_string(), "https://Example.com:8443/a/b?x=1");
        assert_eq!(
            Url::parse("HTTP://127.0.0.1").unwrap().to_string(),
            "http://127.0.0.1/"
        );
        assert_eq!(Url::parse("http://h?q=1").unwrap().path_and_query, "/?q=1");
        assert_eq!(
            Url::parse("http://[::1]:80/x").unwrap().authority,
            "[::1]:80"
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("example.com/x", "not an absolute URL"),
            ("ftp://example.com/", "`ftp` is not `http` or `https`"),
            ("http:///x", "no host"),
            ("http://user:pw@example.com/", "credentials in a URL"),
            ("http://example.com:0/", "not a port"),
            ("http://example.com:99999/", "not a port"),
            ("http://example.com:8a/", "not a port"),
            ("http://exa mple.com/", "not a valid host"),
            ("http://[::1/", "lacks its `]`"),
            ("http://example.com/a b", "percent-encode"),
        ] {
            let error = Url::parse(url).unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
        }
        // The password is never part of the message.
        assert!(
            !Url::parse("http://u:hunter22@h/")
                .unwrap_err()
                .contains("hunter22")
        );
    }

    #[test]
    fn methods_are_tokens_upper_cased() {
        assert_eq!(parse_method("put").unwrap(), "PUT");
        assert_eq!(parse_method(" PROPFIND ").unwrap(), "PROPFIND");
        assert!(parse_method("GET /").is_err());
        assert!(parse_method("").is_err());
    }

    #[test]
    fn headers_parse_without_ever_quoting_a_value() {
        let headers =
            parse_headers("Content-Type: text/html\n\nAuthorization: Bearer s3cr3t\nX-A: b:c\n")
                .unwrap();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Content-Type", "text/html"),
                ("Authorization", "Bearer s3cr3t"),
                ("X-A", "b:c")
            ]
        );
        assert!(!format!("{headers:?}").contains("s3cr3t"));

        let error = parse_headers("A: 1\nBearer s3cr3t").unwrap_err();
        assert!(error.contains("line 2 has no `:`"), "{error}");
        assert!(!error.contains("s3cr3t"));
        let error = parse_headers("Bad Name: s3cr3t").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        assert!(!error.contains("s3cr3t"));
    }

    #[test]
    fn credentials_are_recognised_by_header_name() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key",
            "X-Auth-Token",
            "X-Session-Id",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["Content-Type", "Accept", "If-None-Match", "Depth"] {
            assert!(!is_sensitive(name), "{name}");
        }
        let bearer = Header {
            name: "Authorization".into(),
            value: "Bearer abc123".into(),
        };
        assert_eq!(mask_values(&bearer), ["Bearer abc123", "abc123"]);
        let key = Header {
            name: "X-Api-Key".into(),
            value: "k3y".into(),
        };
        assert_eq!(mask_values(&key), ["k3y"]);
    }

    #[test]
    fn expect_takes_codes_classes_and_ranges() {
        let expect = Expect::parse("200, 201 204").unwrap();
        assert!(expect.accepts(201) && expect.accepts(204));
        assert!(!expect.accepts(202));
        assert_eq!(expect.to_string(), "200,201,204");
        let class = Expect::parse("2xx,404").unwrap();
        assert!(class.accepts(200) && class.accepts(299) && class.accepts(404));
        assert!(!class.accepts(300) && !class.accepts(199));
        let range = Expect::parse("200-204").unwrap();
        assert!(range.accepts(204) && !range.accepts(205));
        for bad in ["", "abc", "600", "99", "2000", "7xx", "204-200", "0200"] {
            assert!(Expect::parse(bad).is_err(), "{bad}");
        }
    }
}
