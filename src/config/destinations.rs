//! NO_PROXY-style destination patterns, as curl and most tools read `NO_PROXY`: `corp.example` (or
//! `.corp.example`) is that host and every name under it, `*.corp.example` a glob, `10.0.0.0/8` a
//! network (for destinations given as IP literals), `*` everything; any of them may end in `:PORT`.
//! They name the destinations pantry never intercepts (`bypass`), those it may reach despite the
//! deny lists (`allow_destinations`), and pick a parent proxy per destination
//! (`upstream_proxy_for`, `PATTERN=URL` or `PATTERN=direct`).

use std::{fmt, net::IpAddr};

use ipnet::IpNet;
use wildmatch::WildMatch;

use super::ParentProxy;

/// One NO_PROXY-style pattern.
#[derive(Debug, Clone)]
pub struct Destination {
    text: String,
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum HostMatch {
    Any,
    Network(IpNet),
    /// The name itself and every name under it.
    Domain(String),
    Glob(WildMatch),
}

impl Destination {
    /// Parses a pattern (see the module docs).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("destination pattern {text:?}: {why}");
        let lower = text.trim().to_ascii_lowercase();
        let (host, port) = split_port(&lower).map_err(|why| bad(&why))?;
        let host = if host == "*" {
            HostMatch::Any
        } else if let Ok(net) = host.parse::<IpNet>() {
            HostMatch::Network(net)
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostMatch::Network(IpNet::from(ip))
        } else if host.contains('*') || host.contains('?') {
            HostMatch::Glob(WildMatch::new(host))
        } else {
            let name = host.trim_start_matches('.');
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
                return Err(bad("not a host name, domain, glob or network"));
            }
            HostMatch::Domain(name.to_string())
        };
        Ok(Self { text: text.trim().to_string(), host, port })
    }

    /// The port the pattern names, if it names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether `host:port` (a name or an IP literal, IPv6 with or without brackets) matches.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = crate::target::bare(host).trim_end_matches('.').to_ascii_lowercase();
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Network(net) => {
                host.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip.to_canonical()))
            }
            HostMatch::Domain(name) => {
                host == *name || host.strip_suffix(name.as_str()).is_some_and(|rest| rest.ends_with('.'))
            }
            HostMatch::Glob(glob) => glob.matches(&host),
        }
    }
}

/// `HOST[:PORT]`, where HOST may be `[v6]`, a bare IPv6 address or a network (no port then).
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |port: &str| match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(Some(p)),
        _ => Err(format!("bad port {port:?}")),
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unterminated [")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected {after:?} after ]")),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, parse_port(port)?)),
        _ => Ok((text, None)),
    }
}

/// Two patterns are the same when they are written the same.
impl PartialEq for Destination {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `PATTERN=URL` or `PATTERN=direct`: the parent proxy for matching destinations, or none.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentRule {
    /// Which destinations the rule is for.
    pub destination: Destination,
    /// Their parent proxy; `None` connects directly.
    pub parent: Option<ParentProxy>,
}

impl ParentRule {
    /// Parses `PATTERN=URL` or `PATTERN=direct`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (pattern, via) = text
            .split_once('=')
            .ok_or_else(|| format!("upstream_proxy_for {text:?}: expected PATTERN=URL or PATTERN=direct"))?;
        let destination = Destination::parse(pattern)?;
        let parent = match via.trim() {
            "direct" | "DIRECT" => None,
            url => Some(ParentProxy::parse(url)?),
        };
        Ok(Self { destination, parent })
    }

    /// The rule as it can be written back (credentials masked).
    pub fn redacted(&self) -> String {
        let via = self.parent.as_ref().map_or_else(|| "direct".to_string(), ParentProxy::redacted_url);
        format!("{}={via}", self.destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_no_proxy() {
        let cases = [
            ("corp.example", "corp.example", 443, true),
            ("corp.example", "git.corp.example", 443, true),
            ("corp.example", "GIT.Corp.Example.", 80, true),
            ("corp.example", "notcorp.example", 443, false),
            (".corp.example", "a.b.corp.example", 443, true),
            ("*.corp.example", "a.corp.example", 443, true),
            ("*.corp.example", "corp.example", 443, false),
            ("corp.example:8443", "corp.example", 8443, true),
            ("corp.example:8443", "corp.example", 443, false),
            ("10.0.0.0/8", "10.1.2.3", 443, true),
            ("10.0.0.0/8", "11.1.2.3", 443, false),
            ("10.0.0.0/8", "ten.example", 443, false),
            ("192.168.1.5", "192.168.1.5", 22, true),
            ("::1", "[::1]", 443, true),
            ("[fd00::]:5000", "fd00::", 5000, true),
            ("fd00::/8", "fd12::1", 443, true),
            ("*", "anything.example", 1, true),
        ];
        for (pattern, host, port, expected) in cases {
            let p = Destination::parse(pattern).unwrap();
            assert_eq!(p.matches(host, port), expected, "{pattern} vs {host}:{port}");
        }
        for bad in ["", "host:0", "host:x", "a b", "[::1", "[::1]x"] {
            assert!(Destination::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn parent_rules_name_a_proxy_or_direct() {
        let rule = ParentRule::parse("*.cn.example=http://user:pw@proxy-cn:3128").unwrap();
        assert!(rule.destination.matches("registry.cn.example", 443));
        assert_eq!(rule.parent.as_ref().unwrap().host, "proxy-cn");
        assert!(!rule.redacted().contains("pw"), "{}", rule.redacted());
        assert!(ParentRule::parse("corp.example=direct").unwrap().parent.is_none());
        assert!(ParentRule::parse("corp.example").is_err());
        assert!(ParentRule::parse("corp.example=ftp://x").is_err());
    }
}
