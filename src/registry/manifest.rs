//! What a manifest refers to: an image manifest names its config and layers, an index (or a Docker
//! manifest list) names one manifest per platform. Pure: used by pinning and by prefetch.

use serde::Deserialize;

use super::digest::Digest;

/// The largest manifest pantry stores or reads for references: the distribution spec's limit
/// (registries refuse larger ones). Larger manifests are passed through uncached.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// One platform a child of an index is for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Platform {
    /// `linux`, `windows`…
    #[serde(default)]
    pub os: String,
    /// `amd64`, `arm64`…
    #[serde(default)]
    pub architecture: String,
    /// `v8`, `v7`… (may be empty).
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/architecture[/variant]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.filter(|v| !v.is_empty()).map(String::from),
            }),
            _ => Err(format!("{text:?} is not a platform like linux/amd64 or linux/arm64/v8")),
        }
    }

    /// Whether a child for `other` serves this platform (no variant asked: any variant).
    pub fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// A manifest named by an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Its digest.
    pub digest: Digest,
    /// Its media type, if the index says.
    pub media_type: Option<String>,
    /// The platform it is for, if the index says.
    pub platform: Option<Platform>,
}

/// A blob an image manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its digest.
    pub digest: Digest,
    /// Its size, if the manifest says.
    pub size: Option<u64>,
}

/// What a manifest refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum References {
    /// An image: its config and layers.
    Image(Vec<Blob>),
    /// An index or manifest list: its child manifests.
    Index(Vec<Child>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    /// Docker schema 1 (no longer pushed, still served by old registries).
    #[serde(default)]
    fs_layers: Vec<SchemaOneLayer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    digest: String,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaOneLayer {
    blob_sum: String,
}

/// Parses a manifest body. Descriptors with invalid digests are an error: such a manifest is not
/// one pantry can act on.
pub fn references(body: &[u8]) -> Result<References, String> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("not a manifest: {e}"))?;
    let parse = |text: &str| text.parse::<Digest>().map_err(|e| format!("manifest names {text:?}: {e}"));
    if let Some(manifests) = raw.manifests {
        let children = manifests
            .into_iter()
            .map(|d| Ok(Child { digest: parse(&d.digest)?, media_type: d.media_type, platform: d.platform }))
            .collect::<Result<_, String>>()?;
        return Ok(References::Index(children));
    }
    let mut blobs = Vec::new();
    for descriptor in raw.config.iter().chain(&raw.layers) {
        blobs.push(Blob { digest: parse(&descriptor.digest)?, size: descriptor.size });
    }
    for layer in &raw.fs_layers {
        let digest = parse(&layer.blob_sum)?;
        if !blobs.iter().any(|b| b.digest == digest) {
            blobs.push(Blob { digest, size: None });
        }
    }
    Ok(References::Image(blobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn image_manifest_names_config_and_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{A}","size":1}},
            "layers":[{{"digest":"{B}","size":2}},{{"digest":"{C}","size":3}}]}}"#
        );
        let blob = |d: &str, size| Blob { digest: d.parse().unwrap(), size: Some(size) };
        let want = References::Image(vec![blob(A, 1), blob(B, 2), blob(C, 3)]);
        assert_eq!(references(body.as_bytes()).unwrap(), want);
    }

    #[test]
    fn index_names_children_with_platforms() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"digest":"{A}","mediaType":"application/vnd.oci.image.manifest.v1+json",
              "platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"digest":"{B}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let References::Index(children) = references(body.as_bytes()).unwrap() else { panic!("an index") };
        assert_eq!(children.len(), 2);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(arm.accepts(children[1].platform.as_ref().unwrap()));
        assert!(!arm.accepts(children[0].platform.as_ref().unwrap()));
        assert!(!Platform::parse("linux/arm64/v7").unwrap().accepts(children[1].platform.as_ref().unwrap()));
    }

    #[test]
    fn garbage_and_bad_digests_are_errors() {
        assert!(references(b"not json").is_err());
        assert!(references(br#"{"layers":[{"digest":"sha256:xyz"}]}"#).is_err());
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
        assert_eq!(references(b"{}").unwrap(), References::Image(vec![]));
    }
}
