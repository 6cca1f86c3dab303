//! A parent proxy's address and credentials (`--upstream-proxy http://[user:pass@]host:port`), as
//! configuration: parsed and checked here, used by `upstream::parent` to open tunnels.

use std::fmt;

use base64::Engine;

/// Where the parent proxy is and how to authenticate to it.
#[derive(Clone, PartialEq, Eq)]
pub struct ParentProxy {
    /// Host name or IP literal (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `Proxy-Authorization` value, if the URL had user info.
    pub(crate) authorization: Option<String>,
}

impl fmt::Debug for ParentProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials are never printed.
        write!(f, "ParentProxy({}:{}, auth: {})", self.host, self.port, self.authorization.is_some())
    }
}

impl ParentProxy {
    /// `http://host:port`, with `***@` where the URL had credentials (never printed).
    pub fn redacted_url(&self) -> String {
        let credentials = if self.authorization.is_some() { "***@" } else { "" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("http://{credentials}{host}:{}", self.port)
    }

    /// Parses `http://[user:pass@]host[:port]` (port 3128 by default).
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("upstream proxy {}: {why}", redact(url));
        let rest = url.strip_prefix("http://").ok_or_else(|| bad("must start with http://"))?;
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let authority: http::uri::Authority = hostport.parse().map_err(|_| bad("bad host:port"))?;
        let host = crate::target::bare(authority.host()).to_string();
        if host.is_empty() || hostport.contains('/') {
            return Err(bad("bad host:port"));
        }
        let authorization = userinfo
            .map(|u| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(u.as_bytes())));
        Ok(Self { host, port: authority.port_u16().unwrap_or(3128), authorization })
    }
}

/// The URL without its user info, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?.1))) {
        Some((scheme, hostport)) => format!("{scheme}://***@{hostport}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_parent_urls() {
        let plain = ParentProxy::parse("http://proxy.corp:8080").unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.authorization.is_none()),
            ("proxy.corp", 8080, true)
        );
        assert_eq!(ParentProxy::parse("http://proxy.corp/").unwrap().port, 3128);
        assert_eq!(ParentProxy::parse("http://[::1]:3128").unwrap().host, "::1");
        let with_auth = ParentProxy::parse("http://alice:s3cret@proxy.corp:8080").unwrap();
        assert_eq!(with_auth.authorization.as_deref(), Some("Basic YWxpY2U6czNjcmV0"));
        assert!(!format!("{with_auth:?}").contains("s3cret"));
        for bad in ["https://proxy:1", "proxy:1", "http://", "http://a b:1", "http://h:1/path"] {
            let error = ParentProxy::parse(bad).unwrap_err();
            assert!(!error.contains("s3cret"), "{error}");
        }
        assert!(!ParentProxy::parse("ftp://alice:s3cret@x").unwrap_err().contains("s3cret"));
    }
}
