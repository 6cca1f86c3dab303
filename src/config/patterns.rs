//! Host patterns (`--intercept HOST[:PORT]`) and name overrides (`--resolve HOST:PORT:ADDR`).

use std::{fmt, net::IpAddr};

use wildmatch::WildMatch;

/// A `HOST[:PORT]` pattern with globs in the host (`*.example.com`); no port means 443, `*` any port.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPattern {
    text: String,
    host: WildMatch,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `HOST[:PORT]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (host, port) = match lower.rsplit_once(':') {
            Some((host, "*")) => (host.to_string(), None),
            Some((host, port)) if !host.ends_with(':') && !host.is_empty() => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("intercept pattern {text:?}: bad port {port:?}"))?;
                (host.to_string(), Some(port))
            }
            _ => (lower.clone(), Some(443)),
        };
        let host = crate::target::bare(&host).to_string();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(format!("intercept pattern {text:?}: bad host"));
        }
        Ok(Self { text: text.trim().to_string(), host: WildMatch::new(&host), port })
    }

    /// Whether `host:port` matches (host compared case-insensitively, IPv6 without brackets).
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.host.matches(&host.to_ascii_lowercase())
    }

    /// The explicit port of this pattern, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A `--resolve HOST:PORT:ADDR` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    /// Host name, lower case.
    pub host: String,
    /// Port the rule applies to.
    pub port: u16,
    /// Address connected to instead.
    pub addr: IpAddr,
}

impl ResolveRule {
    /// Parses `HOST:PORT:ADDR` (ADDR may be `[v6]` or bare v6).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("resolve rule {text:?}: expected HOST:PORT:ADDR");
        let (host, rest) = text.split_once(':').ok_or_else(bad)?;
        let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let addr = crate::target::bare(addr);
        let addr = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("resolve rule {text:?}: {addr:?} is not an IP address"))?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self { host: host.to_ascii_lowercase(), port, addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let cases = [
            ("ghcr.io", "ghcr.io", 443, true),
            ("ghcr.io", "GHCR.IO", 443, true),
            ("ghcr.io", "ghcr.io", 8443, false),
            ("*.gcr.io", "eu.gcr.io", 443, true),
            ("*.gcr.io", "gcr.io", 443, false),
            ("registry.test:5000", "registry.test", 5000, true),
            ("registry.test:5000", "registry.test", 443, false),
            ("registry.test:*", "registry.test", 1234, true),
            ("[::1]:8443", "::1", 8443, true),
        ];
        for (pattern, host, port, expected) in cases {
            let p = HostPattern::parse(pattern).unwrap();
            assert_eq!(p.matches(host, port), expected, "{pattern} vs {host}:{port}");
        }
        for bad in ["", "host:0", "host:99999", "host:x", "a b"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn resolve_rules() {
        let r = ResolveRule::parse("Registry.test:5000:127.0.0.1").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("registry.test", 5000));
        assert_eq!(ResolveRule::parse("h:443:[::1]").unwrap().addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(ResolveRule::parse("h:443:::1").unwrap().addr, "::1".parse::<IpAddr>().unwrap());
        for bad in ["h", "h:1", "h:x:127.0.0.1", ":1:127.0.0.1", "h:1:not-ip"] {
            assert!(ResolveRule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
