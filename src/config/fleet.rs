//! The fleet settings: the peer port, who the members are (a static list, a DNS name) and how
//! the others name this node. Parsed and checked together, since each needs the others.

use std::net::SocketAddr;

use crate::target::Target;

/// A DNS name whose A/AAAA records are the fleet's members, all on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeersDns {
    /// The name (a headless Service's, say).
    pub name: String,
    /// The members' fleet port.
    pub port: u16,
}

impl std::fmt::Display for PeersDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.port)
    }
}

/// A member's fleet URL (`https://host[:port]`, nothing after the authority) as a target.
pub fn member_url(text: &str) -> Result<Target, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let uri: http::Uri =
        trimmed.parse().map_err(|_| format!("{text:?} is not a URL like https://pantry-0:3129"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("{text:?}: fleet members speak https:// (mTLS) only"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty()) {
        return Err(format!("{text:?}: a member URL names a host and port, no path"));
    }
    Target::from_absolute(&uri).map_err(|e| format!("{text:?}: {e}"))
}

/// The fleet settings from what was given, checked together; problems are pushed.
pub(super) fn merge(
    listen: Option<String>,
    peers: Option<Vec<String>>,
    peers_dns: Option<String>,
    advertise: Option<String>,
    problems: &mut Vec<String>,
) -> (Option<SocketAddr>, Vec<Target>, Option<PeersDns>, Option<Target>) {
    let listen = listen.and_then(|text| {
        text.parse::<SocketAddr>()
            .map_err(|_| problems.push(format!("fleet_listen: {text:?} is not an address like 0.0.0.0:3129")))
            .ok()
    });
    let peers: Vec<Target> = peers
        .unwrap_or_default()
        .iter()
        .filter(|p| !p.trim().is_empty())
        .filter_map(|p| member_url(p).map_err(|e| problems.push(format!("peers: {e}"))).ok())
        .collect();
    let peers_dns = peers_dns.and_then(|text| {
        let parsed = text.rsplit_once(':').and_then(|(name, port)| {
            let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            valid.then_some(PeersDns { name, port })
        });
        if parsed.is_none() {
            problems
                .push(format!("peers_dns: {text:?} is not NAME:PORT like pantry.ci.svc.cluster.local:3129"));
        }
        parsed
    });
    let mut advertise = advertise
        .and_then(|text| member_url(&text).map_err(|e| problems.push(format!("advertise: {e}"))).ok());
    match listen {
        None if !peers.is_empty() || peers_dns.is_some() || advertise.is_some() => {
            problems.push(
                "peers, peers_dns and advertise need fleet_listen (the port the members reach each other on)"
                    .into(),
            );
        }
        Some(addr) if advertise.is_none() => {
            if addr.ip().is_unspecified() {
                problems.push(format!(
                    "advertise: needed when fleet_listen ({addr}) binds every address: the URL the other members reach this one at, e.g. https://pantry-0.pantry:{}",
                    addr.port()
                ));
            } else {
                advertise = Target::new(true, &addr.ip().to_string(), addr.port()).ok();
            }
        }
        _ => {}
    }
    (listen, peers, peers_dns, advertise)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(
        listen: Option<&str>,
        peers: &[&str],
        dns: Option<&str>,
        advertise: Option<&str>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        merge(
            listen.map(String::from),
            strings(peers),
            dns.map(String::from),
            advertise.map(String::from),
            &mut problems,
        );
        problems
    }

    #[test]
    fn member_urls_are_https_authorities() {
        let member = member_url("https://Pantry-0.pantry:3129/").unwrap();
        assert_eq!((member.host.as_str(), member.port, member.https), ("pantry-0.pantry", 3129, true));
        assert_eq!(member_url("https://[::1]:3129").unwrap().host, "::1");
        assert_eq!(member_url("https://node.test").unwrap().port, 443);
        for bad in ["http://node:3129", "node:3129", "https://node:3129/v2/", "https://user@node:1"] {
            assert!(member_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_settings_are_checked_together() {
        assert!(given(None, &[], None, None).is_empty());
        assert!(given(Some("127.0.0.1:3129"), &["https://127.0.0.1:3130"], None, None).is_empty());
        assert!(given(None, &["https://a:1"], None, None)[0].contains("need fleet_listen"));
        assert!(given(Some("0.0.0.0:3129"), &[], Some("pantry.svc:3129"), None)[0].starts_with("advertise"));
        assert!(given(Some("0.0.0.0:3129"), &[], Some("pantry.svc:3129"), Some("https://10.0.0.5:3129"))
            .is_empty());
        assert!(given(Some("127.0.0.1:3129"), &[], Some("pantry.svc"), None)[0].starts_with("peers_dns"));
        assert!(given(Some("nowhere"), &[], None, None)[0].starts_with("fleet_listen"));
    }

    #[test]
    fn a_bound_listen_address_is_advertised_when_none_is_given() {
        let mut problems = Vec::new();
        let (_, _, _, advertise) = merge(Some("127.0.0.1:3129".into()), None, None, None, &mut problems);
        assert_eq!(advertise.unwrap().host_port(), "127.0.0.1:3129");
    }
}
