//! Where a request goes: scheme, host and port, parsed from CONNECT authority-form or absolute-form
//! URIs and validated (no user-info, no stray characters, IPv6 in brackets).

use std::{fmt, net::Ipv6Addr};

use http::{uri::Scheme, Uri};

/// An upstream origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `https` for intercepted tunnels, `http` for plain requests.
    pub https: bool,
    /// Host name (lower case) or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Target {
    /// Parses the authority-form target of a CONNECT request (`host:port`, `[v6]:port`).
    pub fn from_connect(uri: &Uri) -> Result<Self, String> {
        if uri.scheme().is_some() || uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(format!("CONNECT target must be host:port, not {uri}"));
        }
        let authority = uri.authority().ok_or("CONNECT target must be host:port")?;
        if authority.as_str().contains('@') {
            return Err("CONNECT target must not contain user info".into());
        }
        let port = authority.port_u16().ok_or("CONNECT target must name a port")?;
        Self::new(true, authority.host(), port)
    }

    /// Parses an absolute-form request URI (`http://host[:port]/path`).
    pub fn from_absolute(uri: &Uri) -> Result<Self, String> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => false,
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) => return Err(format!("unsupported scheme {s}")),
            None => return Err("request target must be an absolute URI".into()),
        };
        let authority = uri.authority().ok_or("request URI has no host")?;
        if authority.as_str().contains('@') {
            return Err("request URI must not contain user info".into());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Self::new(https, authority.host(), port)
    }

    /// A validated target from its parts (IPv6 with or without brackets).
    pub fn new(https: bool, host: &str, port: u16) -> Result<Self, String> {
        if port == 0 {
            return Err("port 0 is not a valid destination".into());
        }
        let host = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or("unterminated IPv6 literal")?;
            let ip = inner.parse::<Ipv6Addr>().map_err(|_| format!("{inner:?} is not an IPv6 address"))?;
            // `[::ffff:127.0.0.1]` is 127.0.0.1: one spelling per address for every rule.
            ip.to_ipv4_mapped().map_or_else(|| inner.to_ascii_lowercase(), |v4| v4.to_string())
        } else if is_host_name(host) {
            numeric_ipv4(host).unwrap_or_else(|| host.to_ascii_lowercase())
        } else {
            return Err(format!("{host:?} is not a valid host name"));
        };
        Ok(Self { https, host, port })
    }

    /// The name the cache keys this origin by: `host:port` over TLS, `http://host:port` in
    /// cleartext, so nothing fetched in cleartext is ever found by a client that asked over TLS.
    pub fn key_name(&self) -> String {
        if self.https {
            self.host_port()
        } else {
            format!("http://{}", self.host_port())
        }
    }

    /// `host:port` with IPv6 in brackets, as used in logs and errors.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.uri_host(), self.port)
    }

    /// The host as written in a URI (IPv6 in brackets).
    pub fn uri_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The absolute upstream URI for a path and query.
    pub fn url(&self, path_and_query: &str) -> Result<Uri, String> {
        let scheme = if self.https { "https" } else { "http" };
        let path = if path_and_query.starts_with('/') { path_and_query } else { "/" };
        format!("{scheme}://{}{path}", self.host_port())
            .parse()
            .map_err(|e| format!("cannot build upstream URI: {e}"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host_port())
    }
}

/// The dotted-quad form of a host written as an IPv4 number the way resolvers read it
/// (`2130706433`, `127.1`, `0x7f.0.0.1`, `0`), per the WHATWG URL host parser; `None` for names.
fn numeric_ipv4(host: &str) -> Option<String> {
    let last = host.trim_end_matches('.').rsplit('.').next()?;
    let numeric = |label: &str| {
        label.bytes().all(|b| b.is_ascii_digit())
            || label
                .strip_prefix("0x")
                .or(label.strip_prefix("0X"))
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !numeric(last) {
        return None;
    }
    match url::Host::parse(host) {
        Ok(url::Host::Ipv4(ip)) => Some(ip.to_string()),
        _ => None,
    }
}

/// `host` without the brackets of an IPv6 literal (`[::1]` → `::1`); names and IPv4 unchanged.
pub fn bare(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// A DNS name (letters, digits, `-`, `_`, dots; labels ≤ 63, total ≤ 253) or an IPv4 literal.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_targets() {
        let good = [
            ("example.com:443", "example.com", 443),
            ("Registry.Test:5000", "registry.test", 5000),
            ("127.0.0.1:8443", "127.0.0.1", 8443),
            ("[::1]:443", "::1", 443),
            ("[2001:db8::1]:5000", "2001:db8::1", 5000),
        ];
        for (text, host, port) in good {
            let target = Target::from_connect(&text.parse().unwrap()).unwrap();
            assert_eq!((target.host.as_str(), target.port), (host, port), "{text}");
        }
        let bad = [
            "example.com",
            "example.com:0",
            "user@example.com:443",
            "http://example.com:443",
            "[::1x]:443",
            "exa mple.com:443",
            "a..b:443",
            "example.com:443/path",
        ];
        for text in bad {
            if let Ok(uri) = text.parse::<Uri>() {
                assert!(Target::from_connect(&uri).is_err(), "{text} should be rejected");
            }
        }
    }

    #[test]
    fn every_spelling_of_an_ipv4_address_is_one_target() {
        for spelling in ["127.0.0.1", "2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1", "[::ffff:127.0.0.1]"]
        {
            let target = Target::new(false, spelling, 80).unwrap();
            assert_eq!(target.host, "127.0.0.1", "{spelling}");
        }
        assert_eq!(Target::new(false, "0", 80).unwrap().host, "0.0.0.0");
        assert_eq!(Target::new(false, "[::1]", 80).unwrap().host, "::1");
        for name in ["registry.test", "1password.com", "123.example", "1.2.3.256"] {
            assert_eq!(Target::new(false, name, 80).unwrap().host, name, "a name stays a name");
        }
    }

    #[test]
    fn absolute_targets_and_urls() {
        let target = Target::from_absolute(&"http://Example.com/a?b=c".parse().unwrap()).unwrap();
        assert_eq!((target.https, target.host.as_str(), target.port), (false, "example.com", 80));
        assert_eq!(target.url("/a?b=c").unwrap().to_string(), "http://example.com:80/a?b=c");
        let v6 = Target::from_connect(&"[::1]:8443".parse().unwrap()).unwrap();
        assert_eq!(v6.url("/v2/").unwrap().to_string(), "https://[::1]:8443/v2/");
        assert!(Target::from_absolute(&"/relative".parse().unwrap()).is_err());
        assert!(Target::from_absolute(&"ftp://x/".parse().unwrap()).is_err());
    }
}
