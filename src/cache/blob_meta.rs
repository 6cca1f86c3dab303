//! What the store's index keeps about a blob besides its bytes: its media type and the scopes
//! it was seen, fetched and granted in (the access model reads them).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What the store knows about a blob besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// `Content-Type` as upstream sent it (manifests need it back exactly).
    pub media_type: Option<String>,
    /// Scopes (`registry/repository`) where an earlier version saw it served without
    /// credentials: honoured for that exact scope only, never written any more.
    #[serde(default)]
    pub public_in: BTreeSet<String>,
    /// Scopes (`registry/repository`) it was served in (pinning by repository uses them).
    #[serde(default)]
    pub seen_in: BTreeSet<String>,
    /// Scopes whose registry sent these very bytes (verified) or, being such a registry, said
    /// this repository holds them: only these registries are asked whether a client may read it.
    #[serde(default)]
    pub fetched_in: BTreeSet<String>,
    /// Scopes where these bytes were fetched without credentials: public, for every client.
    #[serde(default)]
    pub anonymous_in: BTreeSet<String>,
    /// Scopes where pantry fetched these bytes with its own credentials (`upstream_credentials`):
    /// served without asking to the clients whose requests those credentials cover there.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub granted_in: BTreeSet<String>,
    /// The content file's mtime (ns) when it was committed or last verified: a file whose mtime
    /// differs was changed since, and is verified again before it is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
}

impl BlobMeta {
    /// Adds what `other` knows.
    pub fn merge(&mut self, other: BlobMeta) {
        if self.media_type.is_none() {
            self.media_type = other.media_type;
        }
        self.public_in.extend(other.public_in);
        self.seen_in.extend(other.seen_in);
        self.fetched_in.extend(other.fetched_in);
        self.anonymous_in.extend(other.anonymous_in);
        self.granted_in.extend(other.granted_in);
        self.mtime_ns = self.mtime_ns.or(other.mtime_ns);
    }
}
