//! One destination a step may reach: `scheme://host[:port]`, as written in
//! `permissions.network`.
//!
//! The grammar is deliberately small, so a grant means one thing:
//! - the scheme is `http`, `https` or `tcp`; the port defaults from the
//!   scheme (80, 443) and must be given for `tcp`;
//! - the host is a DNS name, `localhost`, an IP address (IPv6 in
//!   brackets), or `*.` followed by a name: one leading wildcard label,
//!   standing for exactly one label, never for the apex (`*.example.com`
//!   matches `a.example.com`, not `example.com` nor `a.b.example.com`, as
//!   a TLS certificate's wildcard does);
//! - nothing else: no path, query, user or trailing garbage, which would
//!   suggest a narrower grant than the one that holds.

use std::fmt;
use std::net::IpAddr;

/// How a destination is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
    /// A raw TCP connection through `wasi:sockets`.
    Tcp,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tcp => "tcp",
        }
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Tcp => None,
        }
    }
}

/// The host part of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-cased, without a trailing dot.
    Name(String),
    /// `*.suffix`: any name of one more label than `suffix`.
    Wildcard(String),
    Ip(IpAddr),
}

impl Host {
    /// Whether this grant names `host` (a name, lower-cased, or an IP
    /// address as text).
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Host::Name(name) => name == host,
            Host::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
            Host::Ip(ip) => parse_ip(host) == Some(*ip),
        }
    }

    /// Whether internal addresses are granted by this host as written:
    /// only an address named literally, or `localhost` (for loopback).
    pub fn names_localhost(&self) -> bool {
        matches!(self, Host::Name(name) if name == "localhost")
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Wildcard(suffix) => write!(f, "*.{suffix}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
        }
    }
}

/// One granted destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkGrant {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for NetworkGrant {
    /// The canonical form: scheme, host and port, always with the port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

impl NetworkGrant {
    /// Reads a grant as written in a manifest or in plugin metadata.
    pub fn parse(text: &str) -> Result<NetworkGrant, String> {
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            format!("`{text}` is not a destination: write `scheme://host[:port]`, e.g. `https://api.example.com`")
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "tcp" => Scheme::Tcp,
            other => {
                return Err(format!(
                    "`{text}`: the scheme `{other}` is not one gantry grants; use `https`, `http` or `tcp`"
                ));
            }
        };
        // A single trailing slash is how people write an origin; anything
        // after it would be a path, which a grant cannot narrow to.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(bad) = authority
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@'))
        {
            return Err(format!(
                "`{text}`: a grant is `scheme://host[:port]` only; remove everything from `{bad}` (grants cannot name a path, a query or a user)"
            ));
        }
        let (host, port) = split_port(authority).map_err(|why| format!("`{text}`: {why}"))?;
        let port = match (port, scheme.default_port()) {
            (Some(port), _) => port,
            (None, Some(port)) => port,
            (None, None) => {
                return Err(format!(
                    "`{text}`: a `tcp://` grant must name its port, e.g. `tcp://db.internal:5432`"
                ));
            }
        };
        let host = parse_host(host).map_err(|why| format!("`{text}`: {why}"))?;
        if scheme == Scheme::Tcp && matches!(host, Host::Wildcard(_)) {
            return Err(format!(
                "`{text}`: a `tcp://` grant names one host; a wildcard is only for `http` and `https`"
            ));
        }
        Ok(NetworkGrant { scheme, host, port })
    }

    /// Whether a connection by `scheme` to `host` (lower-cased) and `port`
    /// is within this grant.
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        self.scheme == scheme && self.port == port && self.host.matches(host)
    }

    /// Whether `other` is within this grant: what a step must grant for a
    /// plugin that declares it needs `other`.
    pub fn covers(&self, other: &NetworkGrant) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        match (&self.host, &other.host) {
            (Host::Wildcard(mine), Host::Wildcard(theirs)) => mine == theirs,
            (_, Host::Wildcard(_)) => false,
            (mine, theirs) => mine.matches(&theirs.to_string()),
        }
    }
}

/// Splits `host[:port]`, the host of an IPv6 address in brackets.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("only `:port` may follow an IPv6 address")?,
            ),
        };
        (inside, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(format!("`{text}` is not a port (1 to 65535)")),
        },
    };
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("the host is missing".into());
    }
    if let Some(ip) = parse_ip(host) {
        return Ok(Host::Ip(ip));
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    let (wildcard, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(format!(
            "`{host}` is not a host name (letters, digits, `-` and dots; a wildcard only as the whole first label, `*.example.com`)"
        ));
    }
    if wildcard {
        Ok(Host::Wildcard(name.to_owned()))
    } else {
        Ok(Host::Name(name.to_owned()))
    }
}

/// An IP address as a host: IPv4 dotted, or IPv6 with or without brackets.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(text: &str) -> NetworkGrant {
        NetworkGrant::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn ports_default_from_the_scheme_and_print_canonically() {
        assert_eq!(
            grant("https://API.example.com").to_string(),
            "https://api.example.com:443"
        );
        assert_eq!(
            grant("http://example.com/").to_string(),
            "http://example.com:80"
        );
        assert_eq!(
            grant("tcp://db.internal:5432").to_string(),
            "tcp://db.internal:5432"
        );
        assert_eq!(grant("http://[::1]:8080").to_string(), "http://[::1]:8080");
        assert_eq!(
            grant("http://127.0.0.1:9").host,
            Host::Ip("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn malformed_grants_say_what_to_write() {
        for (text, needle) in [
            ("api.example.com", "scheme://host"),
            ("ftp://example.com", "`ftp`"),
            ("https://example.com/path", "path"),
            ("https://user@example.com", "user"),
            ("https://example.com:0", "not a port"),
            ("https://example.com:99999", "not a port"),
            ("tcp://db.internal", "must name its port"),
            ("tcp://*.internal:5432", "wildcard"),
            ("https://a.*.example.com", "not a host name"),
            ("https://*", "not a host name"),
            ("https://", "host is missing"),
            ("http://[::1", "closing"),
        ] {
            let error = NetworkGrant::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn a_grant_allows_its_scheme_host_and_port_only() {
        let api = grant("https://api.example.com");
        assert!(api.allows(Scheme::Https, "api.example.com", 443));
        assert!(!api.allows(Scheme::Http, "api.example.com", 443));
        assert!(!api.allows(Scheme::Https, "api.example.com", 8443));
        assert!(!api.allows(Scheme::Https, "evil.example.com", 443));
        assert!(!api.allows(Scheme::Https, "api.example.com.evil.net", 443));
    }

    #[test]
    fn a_wildcard_stands_for_one_label_and_never_the_apex() {
        let cdn = grant("https://*.cdn.example.com");
        assert!(cdn.allows(Scheme::Https, "eu.cdn.example.com", 443));
        assert!(!cdn.allows(Scheme::Https, "cdn.example.com", 443));
        assert!(!cdn.allows(Scheme::Https, "a.eu.cdn.example.com", 443));
        assert!(!cdn.allows(Scheme::Https, "xcdn.example.com", 443));
        assert!(!cdn.allows(Scheme::Https, ".cdn.example.com", 443));
    }

    #[test]
    fn ip_grants_match_the_address_however_written() {
        let v6 = grant("http://[::1]:8080");
        assert!(v6.allows(Scheme::Http, "[::1]", 8080));
        assert!(v6.allows(Scheme::Http, "::1", 8080));
        assert!(v6.allows(Scheme::Http, "[0:0:0:0:0:0:0:1]", 8080));
        assert!(!v6.allows(Scheme::Http, "127.0.0.1", 8080));
    }

    #[test]
    fn a_step_grant_covers_what_a_plugin_needs() {
        let step = grant("https://*.example.com");
        assert!(step.covers(&grant("https://api.example.com")));
        assert!(step.covers(&grant("https://*.example.com")));
        assert!(!step.covers(&grant("https://example.com")));
        assert!(!step.covers(&grant("http://api.example.com")));
        assert!(!grant("https://api.example.com").covers(&grant("https://*.example.com")));
    }
}
