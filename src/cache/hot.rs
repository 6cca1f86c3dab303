//! Small content and records read in the last second, kept in memory: a hit on a hot manifest or
//! tag is answered without a trip to the blocking pool (the cost that dominated a cached
//! manifest's answer). This process's own writes, evictions and purges drop a copy at once; what
//! another process changes on disk (`pantry cache purge`) is seen within [`FRESH_FOR`].

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use moka::sync::Cache;

use super::blob_meta::BlobMeta;
use crate::registry::digest::Digest;

/// How long a copy read from disk answers before the disk is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Bytes of small content kept at most (only what was asked for within [`FRESH_FOR`] stays).
const MAX_BYTES: u64 = 8 << 20;

/// What a lookup of small content found on disk.
#[derive(Debug)]
pub struct HotBlob {
    /// Its content file (for what a [`super::blob::CachedBlob`] carries; never read for it).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its metadata as the lookup read it.
    pub meta: BlobMeta,
    /// The content, verified against its digest when it was read.
    pub small: Bytes,
}

/// The in-memory copies.
pub struct Hot {
    blobs: Cache<Digest, Arc<HotBlob>>,
    records: Cache<String, Arc<serde_json::Value>>,
    /// Counts the drops: a copy read before a drop is not kept after it (`keep_*` compare under
    /// this lock, so a write that lands while a lookup reads the old state is never hidden).
    epoch: Mutex<u64>,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot")
            .field("blobs", &self.blobs.entry_count())
            .field("records", &self.records.entry_count())
            .finish()
    }
}

impl Default for Hot {
    fn default() -> Self {
        Self {
            blobs: Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|_, blob: &Arc<HotBlob>| u32::try_from(blob.small.len()).unwrap_or(u32::MAX).max(1))
                .time_to_live(FRESH_FOR)
                .build(),
            records: Cache::builder().max_capacity(16_384).time_to_live(FRESH_FOR).build(),
            epoch: Mutex::new(0),
        }
    }
}

impl Hot {
    /// The drop count now: read it before reading the disk, hand it to `keep_*` after.
    pub fn epoch(&self) -> u64 {
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The copy of the small content `digest`, if one was read within [`FRESH_FOR`].
    pub fn blob(&self, digest: &Digest) -> Option<Arc<HotBlob>> {
        self.blobs.get(digest)
    }

    /// The copy of the record `key`, if one was read within [`FRESH_FOR`].
    pub fn record(&self, key: &str) -> Option<Arc<serde_json::Value>> {
        self.records.get(key)
    }

    /// Keeps what a lookup read from disk, unless something was dropped since `epoch`.
    pub fn keep_blob(&self, epoch: u64, digest: Digest, blob: HotBlob) {
        let now = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        if *now == epoch {
            self.blobs.insert(digest, Arc::new(blob));
        }
    }

    /// Keeps a record as read from disk, unless something was dropped since `epoch`.
    pub fn keep_record(&self, epoch: u64, key: String, value: serde_json::Value) {
        let now = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        if *now == epoch {
            self.records.insert(key, Arc::new(value));
        }
    }

    /// Drops the copy of `digest` (its content or metadata is about to change or just did).
    pub fn drop_blob(&self, digest: &Digest) {
        let mut now = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        *now += 1;
        self.blobs.invalidate(digest);
    }

    /// Drops the copy of the record `key`.
    pub fn drop_record(&self, key: &str) {
        let mut now = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        *now += 1;
        self.records.invalidate(key);
    }

    /// Drops every copy (an eviction pass or a purge removed files).
    pub fn drop_all(&self) {
        let mut now = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        *now += 1;
        self.blobs.invalidate_all();
        self.records.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::Algorithm;

    fn copy(bytes: &'static [u8]) -> HotBlob {
        HotBlob {
            path: PathBuf::new(),
            size: bytes.len() as u64,
            meta: BlobMeta::default(),
            small: bytes.into(),
        }
    }

    #[test]
    fn a_read_that_raced_a_drop_is_not_kept() {
        let hot = Hot::default();
        let digest = Digest::of(Algorithm::Sha256, b"old");
        // a lookup reads the old state, a write lands and drops, then the lookup keeps its read
        let before = hot.epoch();
        hot.drop_blob(&digest);
        hot.keep_blob(before, digest.clone(), copy(b"old"));
        assert!(hot.blob(&digest).is_none(), "the stale read would hide the write");
        hot.keep_record(before, "tag".into(), serde_json::json!(1));
        assert!(hot.record("tag").is_none());
        // a read begun after the drop is kept
        let after = hot.epoch();
        hot.keep_blob(after, digest.clone(), copy(b"old"));
        assert_eq!(hot.blob(&digest).unwrap().small, &b"old"[..]);
        hot.drop_all();
        assert!(hot.blob(&digest).is_none());
    }
}
