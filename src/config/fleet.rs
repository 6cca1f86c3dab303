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

/// The bucket a fleet shares (`--shared-store s3://BUCKET[/PREFIX]`) and how to reach it. The
/// keys themselves are read when pantry starts (from the credentials file or the environment),
/// never kept in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStore {
    /// The bucket.
    pub bucket: String,
    /// Where in the bucket pantry's objects go (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// The S3 endpoint, for stores that are not AWS.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// A credentials file, instead of the environment.
    pub credentials: Option<std::path::PathBuf>,
}

impl SharedStore {
    /// `s3://BUCKET[/PREFIX]`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The shared store from what was given; problems are pushed.
pub(super) fn shared_store(
    url: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    credentials: Option<std::path::PathBuf>,
    problems: &mut Vec<String>,
) -> Option<SharedStore> {
    let Some(url) = url else {
        if endpoint.is_some() || region.is_some() || credentials.is_some() {
            problems.push(
                "shared_store_endpoint, shared_store_region and shared_store_credentials need shared_store"
                    .into(),
            );
        }
        return None;
    };
    let Some((bucket, prefix)) =
        url.strip_prefix("s3://").map(|rest| rest.split_once('/').unwrap_or((rest, "")))
    else {
        problems.push(format!("shared_store: {url:?} is not s3://BUCKET[/PREFIX]"));
        return None;
    };
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !valid_bucket {
        problems
            .push(format!("shared_store: {bucket:?} is not a bucket name (3 to 63 of a-z, 0-9, '-', '.')"));
    }
    if let Some(endpoint) = &endpoint {
        let scheme = endpoint.parse::<http::Uri>().ok().and_then(|u| u.scheme_str().map(String::from));
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            problems.push(format!("shared_store_endpoint: {endpoint:?} is not an http:// or https:// URL"));
        }
    }
    if let Some(file) = &credentials {
        if let Err(e) = super::private_file(file) {
            problems.push(format!("shared_store_credentials: {e}"));
        }
    }
    Some(SharedStore {
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
        endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        region: region.unwrap_or_else(|| "us-east-1".into()),
        credentials,
    })
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
    fn a_shared_store_is_an_s3_url_with_its_endpoint() {
        let mut problems = Vec::new();
        let store = shared_store(
            Some("s3://pantry-cache/fleet/a/".into()),
            Some("http://127.0.0.1:8333/".into()),
            None,
            None,
            &mut problems,
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (store.bucket.as_str(), store.prefix.as_str(), store.region.as_str()),
            ("pantry-cache", "fleet/a", "us-east-1")
        );
        assert_eq!(store.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(store.url(), "s3://pantry-cache/fleet/a");
        for (url, endpoint) in
            [("pantry-cache", None), ("s3://Bad_Bucket", None), ("s3://ok-bucket", Some("ftp://x"))]
        {
            let mut problems = Vec::new();
            shared_store(Some(url.into()), endpoint.map(String::from), None, None, &mut problems);
            assert_eq!(problems.len(), 1, "{url} {endpoint:?}: {problems:?}");
        }
        let mut problems = Vec::new();
        assert!(shared_store(None, Some("http://x".into()), None, None, &mut problems).is_none());
        assert!(problems[0].contains("need shared_store"));
    }

    #[test]
    fn a_bound_listen_address_is_advertised_when_none_is_given() {
        let mut problems = Vec::new();
        let (_, _, _, advertise) = merge(Some("127.0.0.1:3129".into()), None, None, None, &mut problems);
        assert_eq!(advertise.unwrap().host_port(), "127.0.0.1:3129");
    }
}
