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

    /// Parses `http://[user:pass@]host[:port]` (port 3128 by default) as a URL: user and
    /// password may be percent-encoded (`p%40ss` is `p@ss`), as curl and other clients accept them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("upstream proxy {}: {why}", redact(text));
        let url = url::Url::parse(text).map_err(|_| bad("not a URL like http://host:port"))?;
        if url.scheme() != "http" {
            return Err(bad("must start with http://"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a parent proxy URL has no path"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("no host")),
        };
        // `Url` drops a port equal to http's default; 3128 applies only when none was written.
        let written = text.split('/').nth(2).and_then(|a| a.parse::<http::uri::Authority>().ok());
        let port = url.port().or(written.and_then(|a| a.port_u16())).unwrap_or(3128);
        let decode = |part: &str| percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned();
        let authorization = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let user = format!("{}:{}", decode(url.username()), decode(url.password().unwrap_or_default()));
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user.as_bytes()))
        });
        Ok(Self { host, port, authorization })
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
        let encoded = ParentProxy::parse("http://ci%40corp:p%40ss%3Aword@proxy.corp").unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode("ci@corp:p@ss:word");
        assert_eq!(encoded.authorization, Some(format!("Basic {basic}")), "percent-decoded, like curl");
        assert_eq!(ParentProxy::parse("http://proxy.corp:80").unwrap().port, 80, "a written :80 stays");
        assert_eq!(ParentProxy::parse("http://user@proxy.corp:80/").unwrap().port, 80);
    }
}
