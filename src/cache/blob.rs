//! A stored blob as a lookup finds it: what the store knows of it besides its bytes (media type,
//! the scopes it was fetched and seen in, the mtime of its commit) and where its content is. A
//! lookup checks what it can cheaply: the size always, small content against its digest on every
//! read, large content whose mtime moved since its commit before it is served again.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{
    blob_meta::BlobMeta, content, in_use::InUseGuard, index, layout::content_path, store_error::StoreError,
};
use crate::registry::digest::Digest;

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
    let Some(entry) = index::blob(root, &digest)? else { return Ok(None) };
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
    if size != entry.size || small.as_ref().is_some_and(|b| b.len() as u64 != size) {
        return Ok(None);
    }
    let mut meta: BlobMeta = entry.meta;
    // Small content (manifests, configs) is read whole anyway: it is verified on every lookup
    // that reads the disk (cache::hot keeps the result for a second), and a file that no longer matches its digest is removed (the next fetch stores it anew).
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
        let _ = index::put_blob(root, &digest, size, &meta)
            .map_err(|error| tracing::warn!(%digest, %error, "cannot record the verified content's mtime"));
    }
    Ok(Some(CachedBlob { digest, path, size, meta, small, held }))
}
