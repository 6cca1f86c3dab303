//! Image references as people write them (`alpine`, `ghcr.io/org/app:v1`,
//! `registry.test:5000/team/app@sha256:…`), resolved like docker does: no registry means Docker Hub
//! (`registry-1.docker.io`, official images under `library/`), no tag means `latest`.

use std::{fmt, str::FromStr};

use super::{
    digest::Digest,
    route::{NameError, Repository, Tag},
};

/// Docker Hub's registry API host.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A mutable tag.
    Tag(Tag),
    /// An immutable digest.
    Digest(Digest),
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` of the registry API.
    pub registry: String,
    /// The repository.
    pub repository: Repository,
    /// The tag or digest.
    pub reference: Reference,
}

/// A registry name or glob as rules compare it with a request's `host:port`: lower case, Docker
/// Hub's aliases (`docker.io`, `index.docker.io`) as its API host, port 443 when none is given
/// (`*` and globs with a port are kept).
pub fn registry_glob(text: &str) -> String {
    let text = text.trim().to_ascii_lowercase();
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if port == "*" || port.parse::<u16>().is_ok() => (host.to_string(), Some(port)),
        _ => (text.clone(), None),
    };
    let host = match host.as_str() {
        "docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    };
    match port {
        _ if text == "*" => text,
        Some(port) => format!("{host}:{port}"),
        None => format!("{host}:443"),
    }
}

impl ImageRef {
    /// The manifest path of this reference.
    pub fn manifest_path(&self) -> String {
        let reference = match &self.reference {
            Reference::Tag(tag) => tag.to_string(),
            Reference::Digest(digest) => digest.to_string(),
        };
        format!("/v2/{}/manifests/{reference}", self.repository)
    }
}

impl FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?} is not an image reference: {why}");
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest.parse::<Digest>().map_err(|e| bad(&e.to_string()))?)),
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first, rest.to_string())
            }
            _ if name.contains('/') => (DOCKER_HUB, name.to_string()),
            _ => (DOCKER_HUB, format!("library/{name}")),
        };
        let registry = match registry.to_ascii_lowercase().as_str() {
            "docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
            other => other.to_string(),
        };
        let repository = path.parse::<Repository>().map_err(|e| bad(&e.to_string()))?;
        let reference = match (digest, tag) {
            (Some(digest), _) => Reference::Digest(digest),
            (None, Some(tag)) => Reference::Tag(tag.parse().map_err(|e: NameError| bad(&e.to_string()))?),
            (None, None) => Reference::Tag("latest".parse().map_err(|e: NameError| bad(&e.to_string()))?),
        };
        Ok(Self { registry, repository, reference })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(tag) => write!(f, "{}/{}:{tag}", self.registry, self.repository),
            Reference::Digest(digest) => write!(f, "{}/{}@{digest}", self.registry, self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn references_resolve_like_docker() {
        let cases = [
            ("alpine", "registry-1.docker.io/library/alpine:latest"),
            ("alpine:3.20", "registry-1.docker.io/library/alpine:3.20"),
            ("docker.io/bitnami/redis", "registry-1.docker.io/bitnami/redis:latest"),
            ("bitnami/redis:7", "registry-1.docker.io/bitnami/redis:7"),
            ("ghcr.io/org/team/app:v1.2", "ghcr.io/org/team/app:v1.2"),
            ("registry.test:5000/app", "registry.test:5000/app:latest"),
            ("localhost/app:dev", "localhost/app:dev"),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<ImageRef>().unwrap().to_string(), want, "{text}");
        }
        let pinned: ImageRef = format!("registry.test:5000/app:v1@{D}").parse().unwrap();
        assert_eq!(pinned.reference, Reference::Digest(D.parse().unwrap()), "a digest wins over a tag");
        assert_eq!(pinned.manifest_path(), format!("/v2/app/manifests/{D}"));
    }

    #[test]
    fn registry_globs_compare_like_request_hosts() {
        let cases = [
            ("ghcr.io", "ghcr.io:443"),
            ("GHCR.io:443", "ghcr.io:443"),
            ("docker.io", "registry-1.docker.io:443"),
            ("index.docker.io:443", "registry-1.docker.io:443"),
            ("registry.test:5000", "registry.test:5000"),
            ("*.pkg.dev", "*.pkg.dev:443"),
            ("registry.internal:*", "registry.internal:*"),
            ("*", "*"),
        ];
        for (text, want) in cases {
            assert_eq!(registry_glob(text), want, "{text}");
        }
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["", "UPPER/case", "app@sha256:xyz", "app:", "app:bad tag", "ghcr.io/"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?}");
        }
    }
}
