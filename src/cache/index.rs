//! cacache's index, called from here only: a blob's entry (key [`blob_key`], its integrity, size
//! and [`BlobMeta`]) is found, replaced and removed through these functions, and the tools and
//! pinning read the index through [`blob_entries`] and [`entries`]. Which keys and paths exist
//! is `layout`'s; how the index is read and written is this module's. Blocking, except
//! [`put_blob_async`].

use std::path::Path;

use super::{
    blob_meta::BlobMeta,
    layout::{blob_key, index_entry, BLOB_PREFIX},
};
use crate::registry::digest::Digest;

/// The entry of a stored blob: its size and what pantry knows of it.
#[derive(Debug, Clone)]
pub struct BlobEntry {
    /// The size the entry records.
    pub size: u64,
    /// Its metadata (the default when the entry holds none pantry can read).
    pub meta: BlobMeta,
}

/// The entry of the blob named `digest` (a [`Digest`] or its text), if there is one.
pub fn blob(root: &Path, digest: &impl std::fmt::Display) -> Result<Option<BlobEntry>, cacache::Error> {
    Ok(cacache::index::find(root, &blob_key(digest))?.map(|entry| BlobEntry {
        size: entry.size as u64,
        meta: serde_json::from_value(entry.metadata).unwrap_or_default(),
    }))
}

/// Records (or replaces) the entry of a stored blob.
pub fn put_blob(root: &Path, digest: &Digest, size: u64, meta: &BlobMeta) -> Result<(), cacache::Error> {
    cacache::index::insert(root, &blob_key(digest), index_entry(digest, size, meta)).map(|_| ())
}

/// [`put_blob`] on the async threads (cacache's own async writer).
pub async fn put_blob_async(
    root: &Path,
    digest: &Digest,
    size: u64,
    meta: &BlobMeta,
) -> Result<(), cacache::Error> {
    cacache::index::insert_async(root, &blob_key(digest), index_entry(digest, size, meta)).await.map(|_| ())
}

/// Removes the entry under `key` (a blob's, or a record an earlier version kept in the index).
pub fn remove(root: &Path, key: &str) -> Result<(), cacache::Error> {
    cacache::index::delete(root, key)
}

/// Removes the entry of the blob named `digest`.
pub fn remove_blob(root: &Path, digest: &impl std::fmt::Display) -> Result<(), cacache::Error> {
    remove(root, &blob_key(digest))
}

/// Every blob's entry as `(digest text, metadata)`, one per blob (its latest), the whole index
/// read once (pinning, `cache gc`); metadata pantry cannot read is the default.
#[allow(clippy::unnecessary_to_owned)] // owned: the iterator may outlive the borrow of `root`
pub fn blob_entries(root: &Path) -> impl Iterator<Item = (String, BlobMeta)> {
    cacache::list_sync(root.to_path_buf()).flatten().filter_map(|entry| {
        let digest = entry.key.strip_prefix(BLOB_PREFIX)?.to_string();
        Some((digest, serde_json::from_value(entry.metadata).unwrap_or_default()))
    })
}

/// Every entry but blobs' as `(key, metadata)`, one per key (its latest): the records an earlier
/// version kept in the index.
#[allow(clippy::unnecessary_to_owned)] // owned: the iterator may outlive the borrow of `root`
pub fn other_entries(root: &Path) -> impl Iterator<Item = (String, serde_json::Value)> {
    cacache::list_sync(root.to_path_buf())
        .flatten()
        .filter(|entry| !entry.key.starts_with(BLOB_PREFIX))
        .map(|entry| (entry.key, entry.metadata))
}
