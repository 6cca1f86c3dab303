//! Which destinations pantry may connect to on a client's behalf. Refused: the built-in ranges
//! (loopback, the unspecified address, link-local — cloud metadata lives at 169.254.169.254),
//! the operator's `deny_destinations` (added to the built-in ones), and pantry's own listening
//! addresses (a request through pantry to pantry is a loop, or a way into its admin pages).
//! Opened again only by name: a `--resolve` rule, or an `allow_destinations` entry (a host, domain
//! or glob matches the name the client gave; a network matches the address it resolved to).
//!
//! The check runs on resolved addresses, so every spelling of an address — `localhost`,
//! `2130706433`, `127.1`, `0`, `::ffff:127.0.0.1` — is refused like the address itself.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use arc_swap::ArcSwap;
use ipnet::IpNet;

use crate::config::Destination;

/// The destination rules a dialer applies; cheap to clone (the listening addresses are shared, so
/// they can be filled in once the sockets are bound).
#[derive(Debug, Clone, Default)]
pub struct Reach {
    denied: Arc<[IpNet]>,
    allowed: Arc<[Destination]>,
    own: Arc<ArcSwap<Vec<SocketAddr>>>,
}

impl Reach {
    /// Refuses `denied` networks and opens `allowed` destinations.
    pub fn new(denied: &[IpNet], allowed: &[Destination]) -> Self {
        Self { denied: denied.into(), allowed: allowed.into(), own: Arc::default() }
    }

    /// Sets pantry's own listening addresses (refused as destinations).
    pub fn set_own(&self, addresses: Vec<SocketAddr>) {
        self.own.store(Arc::new(addresses));
    }

    /// Whether the operator opened `host:port` by name (so its addresses are not checked).
    pub fn opens_name(&self, host: &str, port: u16) -> bool {
        host.parse::<IpAddr>().is_err() && self.allowed.iter().any(|d| d.matches(host, port))
    }

    /// Why `addr` may not be connected to, or `None` when it may.
    pub fn refusal(&self, addr: SocketAddr) -> Option<&'static str> {
        let ip = addr.ip().to_canonical();
        if self.allowed.iter().any(|d| d.matches(&ip.to_string(), addr.port())) {
            return None;
        }
        if self.is_own(ip, addr.port()) {
            return Some("pantry's own listening address");
        }
        self.denied.iter().any(|net| net.contains(&ip)).then_some("a denied range")
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        self.own.load().iter().any(|own| {
            own.port() == port
                && if own.ip().is_unspecified() { is_local(ip) } else { own.ip().to_canonical() == ip }
        })
    }
}

/// Whether `ip` is one of this machine's addresses: binding a socket to it succeeds only then.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(denied: &[&str], allowed: &[&str]) -> Reach {
        let denied: Vec<IpNet> = denied.iter().map(|n| n.parse().unwrap()).collect();
        let allowed: Vec<Destination> = allowed.iter().map(|d| Destination::parse(d).unwrap()).collect();
        Reach::new(&denied, &allowed)
    }

    #[test]
    fn denied_ranges_refuse_every_spelling_and_allowed_entries_reopen() {
        let r = reach(&["127.0.0.0/8", "::1/128"], &[]);
        for addr in ["127.0.0.1:80", "127.9.9.9:1", "[::1]:443", "[::ffff:127.0.0.1]:80"] {
            assert!(r.refusal(addr.parse().unwrap()).is_some(), "{addr}");
        }
        assert!(r.refusal("10.0.0.1:80".parse().unwrap()).is_none());
        let open = reach(&["127.0.0.0/8"], &["127.0.0.1:8080", "localhost"]);
        assert!(open.refusal("127.0.0.1:8080".parse().unwrap()).is_none(), "network entry with its port");
        assert!(open.refusal("127.0.0.1:8081".parse().unwrap()).is_some(), "another port stays shut");
        assert!(open.opens_name("LocalHost", 1), "a name entry opens the name");
        assert!(!open.opens_name("127.0.0.1", 1), "an address is never opened by a name entry");
    }

    #[test]
    fn own_addresses_are_refused_whatever_the_listener_is_bound_to() {
        let r = reach(&[], &[]);
        r.set_own(vec!["192.0.2.7:3128".parse().unwrap(), "0.0.0.0:9090".parse().unwrap()]);
        assert!(r.refusal("192.0.2.7:3128".parse().unwrap()).is_some());
        assert!(r.refusal("192.0.2.7:3129".parse().unwrap()).is_none());
        assert!(
            r.refusal("127.0.0.1:9090".parse().unwrap()).is_some(),
            "a wildcard listener: any local address"
        );
        assert!(r.refusal("192.0.2.8:9090".parse().unwrap()).is_none(), "not this machine's address");
    }
}
