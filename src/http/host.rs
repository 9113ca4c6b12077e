//! The `Host` allowlist, against DNS rebinding: a page on `evil.example` whose name later
//! resolves to this machine talks to unitdeck "same-origin" with `Host: evil.example`.
//! Only hosts that name this machine are answered: an IP literal of one of its own
//! addresses, `localhost`, its hostname, or what `UNITDECK_ALLOWED_HOSTS` lists. Anything
//! else gets 421 before authentication or any other work.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::machine::{hostname, interface_addresses};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Own addresses are read again at most this often when a Host names an unknown one (an
/// address added since, e.g. by DHCP).
const REREAD_EVERY: Duration = Duration::from_secs(5);

pub struct HostAllowlist {
    /// `UNITDECK_ALLOWED_HOSTS`, lower case; `*.domain` entries match its subdomains.
    extra: Vec<String>,
    hostname: Option<String>,
    own: RwLock<OwnAddresses>,
}

struct OwnAddresses {
    addresses: HashSet<IpAddr>,
    read_at: Instant,
}

impl HostAllowlist {
    pub fn new(extra: Vec<String>) -> Self {
        Self {
            extra,
            hostname: hostname().map(|h| h.to_ascii_lowercase()),
            own: RwLock::new(OwnAddresses {
                addresses: interface_addresses(),
                read_at: Instant::now(),
            }),
        }
    }

    /// Whether a request's `Host` (with or without a port) names this machine.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        if let Some(ip) = parse_ip(&name) {
            return ip.is_loopback() || self.is_own(ip) || self.listed(&name);
        }
        name == "localhost" || self.hostname.as_deref() == Some(&name) || self.listed(&name)
    }

    fn listed(&self, name: &str) -> bool {
        self.extra
            .iter()
            .any(|entry| match entry.strip_prefix("*.") {
                Some(domain) => name
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => parse_ip(entry).map_or(entry == name, |ip| parse_ip(name) == Some(ip)),
            })
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        {
            let own = self.own.read().unwrap();
            if own.addresses.contains(&ip) || own.read_at.elapsed() < REREAD_EVERY {
                return own.addresses.contains(&ip);
            }
        }
        let mut own = self.own.write().unwrap();
        if own.read_at.elapsed() >= REREAD_EVERY {
            own.addresses = interface_addresses();
            own.read_at = Instant::now();
        }
        own.addresses.contains(&ip)
    }
}

/// The host part of a `Host` header, lower case, without port, brackets or trailing dot;
/// None when it is not a host at all (user info, a path, spaces, an empty name).
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || port_ok(after.strip_prefix(':')?)) {
            return None;
        }
        inside
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port_ok(port) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'%'));
    ok.then_some(name)
}

fn port_ok(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// An address as browsers send it: IPv4 dotted quad, or IPv6 (brackets already gone).
fn parse_ip(name: &str) -> Option<IpAddr> {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    // A zone (fe80::1%eth0) does not change which machine it is.
    let name = name.split_once('%').map_or(name, |(addr, _)| addr);
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(extra: &[&str]) -> HostAllowlist {
        HostAllowlist::new(extra.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn this_machine_is_allowed_under_its_names() {
        let hosts = list(&[]);
        for ok in [
            "localhost",
            "LOCALHOST:8035",
            "localhost.:8035",
            "127.0.0.1:8035",
            "127.0.0.2",
            "[::1]:8035",
            "[::1]",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        if let Some(name) = hostname() {
            assert!(hosts.allows(&format!("{name}:8035")));
        }
        // Every address of an interface here (a phone on the LAN uses one).
        for ip in interface_addresses() {
            let host = match ip {
                IpAddr::V4(v4) => format!("{v4}:8035"),
                IpAddr::V6(v6) => format!("[{v6}]:8035"),
            };
            assert!(hosts.allows(&host), "{host}");
        }
    }

    #[test]
    fn foreign_and_malformed_hosts_are_refused() {
        let hosts = list(&[]);
        for bad in [
            "evil.example:8035",
            "evil.example",
            "localhost.evil.example",
            "192.0.2.77:8035",
            "[2001:db8::77]:8035",
            "",
            "localhost:80:80",
            "user@localhost",
            "localhost/x",
            "local host",
            "[::1]x",
            "localhost:http",
        ] {
            assert!(!hosts.allows(bad), "{bad:?}");
        }
    }

    #[test]
    fn listed_hosts_and_domains_are_allowed() {
        let hosts = list(&["box.example", "*.dev.example", "192.0.2.77", "2001:db8::77"]);
        assert!(hosts.allows("Box.Example:8035"));
        assert!(hosts.allows("a.dev.example"));
        assert!(hosts.allows("a.b.dev.example:443"));
        assert!(!hosts.allows("dev.example"));
        assert!(!hosts.allows("evildev.example"));
        assert!(hosts.allows("192.0.2.77:8035"));
        assert!(hosts.allows("[2001:db8:0::77]:8035"));
        assert!(!hosts.allows("box.example.evil"));
    }
}
