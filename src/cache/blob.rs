//! A stored blob as a lookup finds it: what the store knows of it besides its bytes (media type,
//! the scopes it was fetched and seen in, the mtime of its commit) and where its content is. A
//! lookup checks what it can cheaply: the size always, small content against its digest on every
//! read, large content whose mtime moved since its commit before it is served again.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    content,
    in_use::InUseGuard,
    layout::{blob_key, content_path, index_entry},
    store::StoreError,
};
use crate::registry::digest::Digest;

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

/// A blob present in the store.
#[derive(Debug, Clone)]
pub struct CachedBlob {
    /// Its digest.
    pub digest: Digest,
    /// The content file (read-only; never modified in place).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its metadata.
    pub meta: BlobMeta,
    /// The whole content, when it is small enough to be read with the lookup ([`SMALL`] bytes):
    /// manifests and configs are answered without another trip to the file system.
    pub small: Option<Bytes>,
    /// Keeps it from eviction from before its lookup until the last clone is dropped (the end of
    /// the responses sending it).
    pub held: InUseGuard,
}

/// Content up to this size is read whole when it is looked up.
pub const SMALL: u64 = 64 * 1024;

/// The blob stored under `digest` in the cache at `root`, if its content is there, whole and
/// (as far as it is checked on lookup) unchanged: `Ok(None)` when it is not (no entry, no
/// content, a truncated or corrupt file), an error when the store could not be read. Blocking: the
/// store runs it on the blocking pool.
pub fn lookup(root: &Path, digest: Digest, held: InUseGuard) -> Result<Option<CachedBlob>, StoreError> {
    let Some(entry) = cacache::metadata_sync(root, blob_key(&digest))? else { return Ok(None) };
    let path = content_path(root, &digest);
    let io = |source: std::io::Error| StoreError::Io { path: path.clone(), source };
    let on_disk = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let size = on_disk.len();
    let small = if size <= SMALL {
        match content::read(&path) {
            Ok(bytes) => Some(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        }
    } else {
        None
    };
    if size != entry.size as u64 || small.as_ref().is_some_and(|b| b.len() as u64 != size) {
        return Ok(None);
    }
    let mut meta: BlobMeta = serde_json::from_value(entry.metadata).unwrap_or_default();
    // Small content (manifests, configs) is read whole anyway: it is verified on every lookup,
    // and a file that no longer matches its digest is removed (the next fetch stores it anew).
    let corrupt = |why: &str| {
        tracing::warn!(%digest, path = %path.display(), "stored content {why}; removed");
        let _ = std::fs::remove_file(&path);
    };
    if let Some(bytes) = &small {
        if Digest::of(digest.algorithm(), bytes) != digest {
            corrupt("does not match its digest");
            return Ok(None);
        }
    }
    // A large file changed since it was committed (its mtime moved) is verified before it is
    // served again; if it still matches, the new mtime is recorded.
    let mtime = Some(content::mtime_ns(&on_disk));
    if small.is_none() && meta.mtime_ns.is_some() && mtime != meta.mtime_ns {
        if !content::matches(&path, &digest).map_err(io)? {
            corrupt("was changed after it was committed and no longer matches its digest");
            return Ok(None);
        }
        meta.mtime_ns = mtime;
        let _ = cacache::index::insert(root, &blob_key(&digest), index_entry(&digest, size, &meta))
            .map_err(|error| tracing::warn!(%digest, %error, "cannot record the verified content's mtime"));
    }
    Ok(Some(CachedBlob { digest, path, size, meta, small, held }))
}
