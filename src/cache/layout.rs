//! The store's disk format, spelled in one place: cacache's directories under the cache root, where
//! a digest's content lives in them, the index key and entry of a blob, the keys and records of
//! tags and version-check answers, where mutable records and the lifetime totals live, and the
//! temp files of pantry processes under `tmp/`. Everything that reads or writes the cache
//! directory (the store, eviction, pinning, records, the tally, the inventory tools) names paths
//! and keys through here.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use cacache::{Algorithm as SriAlgorithm, Integrity, WriteOpts};
use serde::{Deserialize, Serialize};

use super::blob_meta::BlobMeta;
use crate::registry::digest::{Algorithm, Digest};

/// cacache's content directory under the root (`content-v2/ALGORITHM/xx/yy/rest`).
pub const CONTENT_DIR: &str = "content-v2";
/// cacache's index directory under the root.
pub const INDEX_DIR: &str = "index-v5";

/// Where mutable records (tags, HTTP-cache policies, version-check answers) live under `root`,
/// one file per key.
pub fn records_dir(root: &Path) -> PathBuf {
    root.join("records")
}
/// The lifetime totals (`cache::tally`).
pub const STATS_FILE: &str = "pantry-stats.json";

/// Where spools and other temp files of running pantry processes live under `root`.
pub fn tmp_dir(root: &Path) -> PathBuf {
    root.join("tmp")
}

/// Where the record for `key` lives under `root` (`records/<2 hex>/<62 hex>` of the key's SHA-256).
pub fn record_path(root: &Path, key: &str) -> PathBuf {
    let hashed = Digest::of(Algorithm::Sha256, key.as_bytes());
    let hex = hashed.hex();
    records_dir(root).join(&hex[0..2]).join(&hex[2..])
}

/// Whether `root` holds a store at all (content or index).
pub fn exists(root: &Path) -> bool {
    root.join(CONTENT_DIR).exists() || root.join(INDEX_DIR).exists()
}

/// Where cacache keeps the content of `digest` under `root` (its content-v2 layout).
pub fn content_path(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    root.join(CONTENT_DIR).join(digest.algorithm().as_str()).join(&hex[0..2]).join(&hex[2..4]).join(&hex[4..])
}

/// One stored content file.
#[derive(Debug, Clone)]
pub struct ContentFile {
    /// Its path under `content-v2/`.
    pub path: PathBuf,
    /// The digest its path encodes.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its last access (atime).
    pub accessed: SystemTime,
}

/// Every content file under `root/content-v2`, its digest read back from its path (blocking: run
/// it off the async threads).
pub fn scan(root: &Path) -> Vec<ContentFile> {
    let mut files = Vec::new();
    walk(root, &mut |file| files.push(file));
    files
}

/// How many content files there are under `root/content-v2` and their bytes, holding none of
/// them in memory (blocking).
pub fn count(root: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    walk(root, &mut |file| {
        files += 1;
        bytes += file.size;
    });
    (files, bytes)
}

fn walk(root: &Path, visit: &mut dyn FnMut(ContentFile)) {
    let content = root.join(CONTENT_DIR);
    let Ok(algorithms) = std::fs::read_dir(&content) else { return };
    for algorithm in algorithms.flatten() {
        let name = algorithm.file_name().to_string_lossy().into_owned();
        collect(&algorithm.path(), &name, String::new(), 0, visit);
    }
}

fn collect(dir: &Path, algorithm: &str, prefix: String, depth: usize, visit: &mut dyn FnMut(ContentFile)) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && depth < 2 {
            collect(&entry.path(), algorithm, format!("{prefix}{name}"), depth + 1, visit);
        } else if meta.is_file() && depth == 2 {
            visit(ContentFile {
                path: entry.path(),
                digest: format!("{algorithm}:{prefix}{name}"),
                size: meta.len(),
                accessed: meta.accessed().unwrap_or(UNIX_EPOCH),
            });
        }
    }
}

/// Removes temp files (`spool-<pid>-<n>`, `stats-<pid>-<n>`) of processes that are gone, never
/// those of a pantry (or `pantry prefetch`) still running on this directory; returns how many.
/// Blocking.
pub fn remove_stale_temp(root: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(tmp_dir(root)) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("spool-").or_else(|| name.strip_prefix("stats-"));
        let pid = pid.and_then(|rest| rest.split('-').next()).filter(|p| p.parse::<u32>().is_ok());
        let alive = pid.is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if pid.is_some() && !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The prefix of blobs' keys in cacache's index (`pantry/blob/<digest>`).
pub const BLOB_PREFIX: &str = "pantry/blob/";

/// The index key of `digest`'s entry (a [`Digest`] or its text).
pub fn blob_key(digest: &impl std::fmt::Display) -> String {
    format!("{BLOB_PREFIX}{digest}")
}

/// The prefix of tags' record keys.
pub const TAG_PREFIX: &str = "pantry/tag/";

/// The record key of a tag as asked with one `Accept` (normalized).
pub fn tag_key(registry: &str, repository: &str, tag: &str, accept: &str) -> String {
    format!("{TAG_PREFIX}{registry}/{repository}:{tag}#{accept}")
}

/// A tag key without [`TAG_PREFIX`], `registry/repository:tag#accept`, → its three parts (registry has no `/`, a tag no `:` or `/`).
pub fn split_tag_key(rest: &str) -> Option<(&str, &str, &str)> {
    let (reference, _accept) = rest.split_once('#')?;
    let reference = reference.strip_prefix("http://").unwrap_or(reference);
    let (registry, name) = reference.split_once('/')?;
    let (repository, tag) = name.rsplit_once(':')?;
    Some((registry, repository, tag))
}

/// What a tag pointed at when it was last checked (the record under its [`tag_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    /// The manifest's digest.
    pub digest: String,
    /// When upstream last confirmed it (ms since the epoch, pantry's clock).
    pub checked_at_ms: u64,
}

/// The prefix of registries' version-check answers.
pub const PING_PREFIX: &str = "pantry/ping/";

/// The record key of a registry's version-check answer.
pub fn ping_key(registry: &str) -> String {
    format!("{PING_PREFIX}{registry}")
}

/// The record key of an HTTP-cache entry (its policy and the content it names) for `uri`.
pub fn http_cache_key(uri: &impl std::fmt::Display) -> String {
    format!("http-cache:{uri}")
}

/// The ssri form of a digest (same algorithm, same bytes).
pub fn integrity(digest: &Digest) -> Integrity {
    let algorithm = match digest.algorithm() {
        Algorithm::Sha256 => SriAlgorithm::Sha256,
        Algorithm::Sha512 => SriAlgorithm::Sha512,
    };
    // A parsed Digest holds valid lowercase hex of the right length, which from_hex accepts.
    Integrity::from_hex(digest.hex(), algorithm).expect("a valid digest is valid hex")
}

/// The index entry of a stored blob: its integrity, size and metadata.
pub fn index_entry(digest: &Digest, size: u64, meta: &BlobMeta) -> WriteOpts {
    WriteOpts::new()
        .integrity(integrity(digest))
        .size(size as usize)
        .metadata(serde_json::to_value(meta).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_lives_under_the_sha256_of_its_key() {
        let path = record_path(Path::new("/c"), "a"); // SHA-256("a") = ca978112…48bb
        assert_eq!(
            path,
            Path::new("/c/records/ca/978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")
        );
    }

    #[test]
    fn tag_keys_split_into_registry_repository_and_tag() {
        assert_eq!(
            split_tag_key("registry.test:5000/team/app:v1#application/json"),
            Some(("registry.test:5000", "team/app", "v1"))
        );
        assert_eq!(split_tag_key("no-accept"), None);
        assert_eq!(
            split_tag_key("http://registry.test:5000/app:v1#"),
            Some(("registry.test:5000", "app", "v1")),
            "a cleartext registry's tags pin by its host too"
        );
    }
}
