//! Which resolved addresses a grant by name may reach.
//!
//! A name is resolved by the host, and the address it resolves to is
//! checked before any connection: a grant of `https://api.example.com`
//! must not become a way into the machine's own services or the private
//! network when that name (or a rebinding DNS server) answers with an
//! internal address. Internal addresses are reachable only through a grant
//! that names the address itself, or `localhost` for loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::grant::Host;

/// Why an address is internal, in words for the warning; `None` for a
/// public address.
pub fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if a == 100 && (64..128).contains(&b) {
        // 100.64.0.0/10, carrier-grade NAT: a provider's internal network.
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// Whether a connection to `ip` is allowed under a grant of `host`:
/// a public address always; an internal one only when the grant names it
/// literally, or names `localhost` and it is loopback. `Err` says why not.
pub fn permitted(host: &Host, ip: IpAddr) -> Result<(), String> {
    let Some(kind) = internal(ip) else {
        return Ok(());
    };
    match host {
        Host::Ip(granted) if *granted == ip => Ok(()),
        _ if host.names_localhost() && kind == "loopback" => Ok(()),
        _ => Err(format!(
            "it resolves to {ip}, a {kind} address, which only a grant naming that address (or `localhost`, for loopback) may reach"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_ranges_are_recognised_in_both_families() {
        for internal_address in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.1.1",
        ] {
            assert!(
                internal(ip(internal_address)).is_some(),
                "{internal_address}"
            );
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(internal(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn only_a_literal_grant_or_localhost_reaches_an_internal_address() {
        let name = Host::Name("service.example".into());
        assert!(permitted(&name, ip("93.184.216.34")).is_ok());
        let refused = permitted(&name, ip("127.0.0.1")).unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        assert!(permitted(&name, ip("10.0.0.8")).is_err());

        assert!(permitted(&Host::Ip(ip("127.0.0.1")), ip("127.0.0.1")).is_ok());
        assert!(permitted(&Host::Ip(ip("127.0.0.1")), ip("127.0.0.2")).is_err());
        let localhost = Host::Name("localhost".into());
        assert!(permitted(&localhost, ip("127.0.0.1")).is_ok());
        assert!(permitted(&localhost, ip("::1")).is_ok());
        assert!(permitted(&localhost, ip("10.0.0.1")).is_err());
    }
}
