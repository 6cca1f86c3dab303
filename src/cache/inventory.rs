//! The `pantry cache` tools over a cache directory: list, summarise, verify and clean (`gc`), and
//! purge entries. They work on the directory itself, so they run whether or not a pantry is
//! serving it; a running pantry's size accounting catches up at its next start.
//!
//! Blocking code: these are command-line tools, not request paths.

use std::{collections::HashSet, path::Path, time::UNIX_EPOCH};

use super::{
    index,
    layout::{content_path, remove_stale_temp, scan, ContentFile, TagRecord, TAG_PREFIX},
    records,
};
use crate::registry::digest::Digest;

/// One stored blob as `pantry cache ls` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Media type upstream gave.
    pub media_type: String,
    /// Last access, seconds since the epoch.
    pub accessed: u64,
    /// Scopes where it is known to be public.
    pub public_in: Vec<String>,
    /// Scopes (`registry/repository`) it was served in.
    pub repositories: Vec<String>,
}

/// Every stored blob, most recently used first.
pub fn list(root: &Path) -> Vec<Entry> {
    // each file's own index entry (one bucket read), not the whole index held in memory at once
    let mut entries: Vec<Entry> = scan(root)
        .into_iter()
        .map(|file| {
            let meta =
                index::blob(root, &file.digest).ok().flatten().map(|entry| entry.meta).unwrap_or_default();
            Entry {
                accessed: file.accessed.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                digest: file.digest,
                size: file.size,
                media_type: meta.media_type.unwrap_or_else(|| "-".into()),
                public_in: meta.anonymous_in.into_iter().chain(meta.public_in).collect(),
                repositories: meta.seen_in.into_iter().collect(),
            }
        })
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.accessed));
    entries
}

/// Totals for `pantry cache stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Stored blobs and manifests.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Remembered tags.
    pub tags: u64,
}

/// Counts what the directory holds.
pub fn stats(root: &Path) -> Stats {
    let files = scan(root);
    migrate(root);
    let tags = records::list(root, TAG_PREFIX).len() as u64;
    Stats { blobs: files.len() as u64, bytes: files.iter().map(|f| f.size).sum(), tags }
}

/// Moves an older store's records out of the index first, as a starting pantry would.
fn migrate(root: &Path) {
    if let Err(error) = records::migrate_from_index(root) {
        tracing::warn!(%error, "cannot move the records out of the cache index");
    }
}

/// What `pantry cache gc` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Content files checked.
    pub checked: u64,
    /// Content whose bytes did not match its digest (removed).
    pub corrupt: Vec<String>,
    /// Content without an index entry (removed).
    pub orphan_content: u64,
    /// Index entries without content (removed).
    pub orphan_entries: u64,
    /// Spool files of processes no longer running (removed).
    pub stale_spools: u64,
}

/// Verifies every content file against its digest and removes what is corrupt or orphaned.
pub fn gc(root: &Path) -> std::io::Result<GcReport> {
    let mut report = GcReport::default();
    let indexed: HashSet<String> = index::blob_entries(root).map(|(digest, _)| digest).collect();
    let mut present = HashSet::new();
    for file in scan(root) {
        report.checked += 1;
        if !verifies(&file)? {
            // reported as found; a removal that failed is logged by `remove`
            remove(root, &file.path, &file.digest);
            report.corrupt.push(file.digest.clone());
        } else if !indexed.contains(&file.digest) {
            report.orphan_content += u64::from(remove(root, &file.path, &file.digest));
        } else {
            present.insert(file.digest);
        }
    }
    for digest in indexed.difference(&present) {
        report.orphan_entries += u64::from(delete_entry(root, digest));
    }
    report.stale_spools = remove_stale_temp(root);
    Ok(report)
}

fn verifies(file: &ContentFile) -> std::io::Result<bool> {
    let Ok(digest) = file.digest.parse::<Digest>() else { return Ok(false) };
    super::content::matches(&file.path, &digest)
}

/// Removes a content file and its index entry; true if the file went (a failure is logged).
fn remove(root: &Path, path: &Path, digest: &str) -> bool {
    let removed = match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove a content file");
            false
        }
    };
    delete_entry(root, digest);
    removed
}

/// Deletes a blob's index entry; true if it was deleted (a failure is logged).
fn delete_entry(root: &Path, digest: &str) -> bool {
    index::remove_blob(root, &digest)
        .map_err(|error| tracing::warn!(digest, %error, "cannot delete a cache index entry"))
        .is_ok()
}

/// What `pantry cache purge` removes: a digest's content, or the remembered tags of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purge {
    /// `sha256:…`: the content and its index entry.
    Digest(Digest),
    /// `registry/repository[:tag]`: tag records (the manifests stay, by digest).
    Tags(String),
}

impl Purge {
    /// Parses a digest or `registry/repository[:tag]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(digest) = text.parse::<Digest>() {
            return Ok(Self::Digest(digest));
        }
        if !text.contains('/') {
            return Err(format!("{text:?} is neither a digest nor REGISTRY/REPOSITORY[:TAG]"));
        }
        Ok(Self::Tags(text.to_string()))
    }
}

/// Removes what `what` names; returns how many entries went.
pub fn purge(root: &Path, what: &Purge) -> usize {
    match what {
        Purge::Digest(digest) => {
            let had_entry = index::blob(root, digest).ok().flatten().is_some();
            let removed = remove(root, &content_path(root, digest), digest.as_str());
            usize::from(removed || had_entry)
        }
        Purge::Tags(scope) => {
            migrate(root);
            let prefix = format!("{TAG_PREFIX}{scope}");
            let keys: Vec<String> = records::list(root, &prefix)
                .into_iter()
                .filter(|(key, value)| {
                    key[prefix.len()..].starts_with([':', '#'])
                        && serde_json::from_value::<TagRecord>(value.clone()).is_ok()
                })
                .map(|(key, _)| key)
                .collect();
            keys.iter().filter(|key| records::remove(root, key)).count()
        }
    }
}
