//! Which registry a mirror request is for: `?ns=<registry>` (containerd's hosts.toml and podman's
//! registries.conf mirrors send it), otherwise the configured default (Docker Hub, for dockerd's
//! `registry-mirrors`). Docker Hub's official images live under `library/`, which dockerd leaves
//! out of mirror requests. Pure.

use http::Uri;

use crate::{registry::reference::DOCKER_HUB, target::Target};

/// Where a mirror request goes: the registry and the path to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The registry.
    pub target: Target,
    /// The path (and the query without `ns`) to request there.
    pub path_and_query: String,
}

/// The registry and path for a mirror request `uri`, `default` (`host[:port]`) when it names none.
pub fn upstream_of(uri: &Uri, default: &str) -> Result<Upstream, String> {
    let path = uri.path();
    if path != "/v2" && !path.starts_with("/v2/") {
        return Err(format!("{path} is not a registry API path (/v2/…)"));
    }
    let mut ns = None;
    let mut rest = Vec::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("ns=") {
            Some(value) => ns = Some(percent_decoded(value)?.to_ascii_lowercase()),
            None => rest.push(pair),
        }
    }
    let registry = match ns.as_deref().unwrap_or(default) {
        "docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    };
    let target = format!("https://{registry}/")
        .parse::<Uri>()
        .map_err(|e| e.to_string())
        .and_then(|u| Target::from_absolute(&u))
        .map_err(|e| format!("ns={registry:?} is not a registry host: {e}"))?;
    let path = if registry == DOCKER_HUB { with_library(path) } else { path.to_string() };
    let path_and_query = if rest.is_empty() { path } else { format!("{path}?{}", rest.join("&")) };
    Ok(Upstream { target, path_and_query })
}

/// `registry.test%3A5000` → `registry.test:5000` (containerd encodes the `:` of a port).
fn percent_decoded(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("ns={value:?} has a bad %-escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("ns={value:?} is not UTF-8"))
}

/// `/v2/alpine/manifests/3` → `/v2/library/alpine/manifests/3`: one-component names on Docker Hub.
fn with_library(path: &str) -> String {
    let Some(rest) = path.strip_prefix("/v2/") else { return path.to_string() };
    let markers = ["/manifests/", "/blobs/", "/tags/", "/referrers/"];
    let name_end = markers.iter().filter_map(|m| rest.find(m)).min();
    match name_end {
        Some(end) if !rest[..end].contains('/') => format!("/v2/library/{rest}"),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(uri: &str) -> (String, String) {
        let upstream = upstream_of(&uri.parse().unwrap(), DOCKER_HUB).unwrap();
        (upstream.target.to_string(), upstream.path_and_query)
    }

    #[test]
    fn ns_names_the_registry_and_docker_hub_is_the_default() {
        let d = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let cases = [
            ("/v2/", "registry-1.docker.io:443", "/v2/"),
            ("/v2/alpine/manifests/3.20", "registry-1.docker.io:443", "/v2/library/alpine/manifests/3.20"),
            ("/v2/bitnami/redis/manifests/7", "registry-1.docker.io:443", "/v2/bitnami/redis/manifests/7"),
            (
                "/v2/alpine/manifests/3?ns=docker.io",
                "registry-1.docker.io:443",
                "/v2/library/alpine/manifests/3",
            ),
            ("/v2/org/app/blobs/x?ns=ghcr.io", "ghcr.io:443", "/v2/org/app/blobs/x"),
            ("/v2/app/tags/list?n=10&ns=registry.test:5000", "registry.test:5000", "/v2/app/tags/list?n=10"),
            ("/v2/app/manifests/v1?ns=registry.test:5000", "registry.test:5000", "/v2/app/manifests/v1"),
            ("/v2/app/manifests/v1?ns=registry.test%3A5000", "registry.test:5000", "/v2/app/manifests/v1"),
        ];
        for (uri, target, path) in cases {
            assert_eq!(route(uri), (target.to_string(), path.to_string()), "{uri}");
        }
        assert_eq!(route(&format!("/v2/alpine/blobs/{d}")).1, format!("/v2/library/alpine/blobs/{d}"));
    }

    #[test]
    fn other_paths_and_bad_registries_are_errors() {
        for uri in [
            "/",
            "/v1/_ping",
            "/v2x",
            "/v2/app/manifests/v1?ns=bad%20host",
            "/v2/?ns=a:b:c",
            "/v2/?ns=x%3",
            "/v2/?ns=%ff",
        ] {
            assert!(upstream_of(&uri.parse().unwrap(), DOCKER_HUB).is_err(), "{uri}");
        }
    }
}
