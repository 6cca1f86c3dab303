//! Mutable records: what a tag pointed at, an HTTP-cache policy, the registry's last version-check
//! answer. They change with every revalidation, so they do not live in cacache's index (an
//! append-only log per key, read whole on every lookup: a tag revalidated 20,000 times made a hit
//! 339× slower). Each key is one small JSON file under `records/`, named by the SHA-256 of the key
//! and replaced atomically (written to a temporary file beside it, then renamed over it): a lookup
//! reads one file however often the record changed, and a crash leaves the old record or the new.
//!
//! The file holds the key as well, so a listing (pinning, `cache stats`, `cache purge`) needs no
//! other index. Blocking code: callers run it on the blocking pool.

use std::{io::Write, path::Path};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{
    index,
    layout::{record_path, records_dir},
};

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    key: String,
    value: T,
}

/// The record under `key`: `Ok(None)` when there is none, or when its file holds no record of
/// `key` (torn by a crash of an older version, or copied from elsewhere; logged, and the next
/// write replaces it); an error when the file is there but cannot be read.
pub fn get<T: DeserializeOwned>(root: &Path, key: &str) -> std::io::Result<Option<T>> {
    let path = record_path(root, key);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    match serde_json::from_slice::<Stored<T>>(&bytes) {
        Ok(stored) if stored.key == key => Ok(Some(stored.value)),
        _ => {
            tracing::warn!(key, path = %path.display(), "a record file holds no record of its key; ignored");
            Ok(None)
        }
    }
}

/// Replaces the record under `key` with `value`.
pub fn put<T: Serialize>(root: &Path, key: &str, value: &T) -> std::io::Result<()> {
    let target = record_path(root, key);
    let dir = target.parent().expect("a record path has a parent");
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec(&Stored { key: key.to_string(), value })?;
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(&json)?;
    file.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

/// Removes the record under `key`; whether there was one.
pub fn remove(root: &Path, key: &str) -> bool {
    std::fs::remove_file(record_path(root, key)).is_ok()
}

/// Every record whose key starts with `prefix`, as raw JSON values.
pub fn list(root: &Path, prefix: &str) -> Vec<(String, serde_json::Value)> {
    let mut found = Vec::new();
    visit(root, prefix, |key, value| {
        found.push((key, value));
        true
    });
    found
}

/// Whether some record's key starts with `prefix` (reads records until one does).
pub fn any(root: &Path, prefix: &str) -> bool {
    let mut seen = false;
    visit(root, prefix, |_, _| {
        seen = true;
        false
    });
    seen
}

/// Calls `found` with each record whose key starts with `prefix` while it returns true.
fn visit(root: &Path, prefix: &str, mut found: impl FnMut(String, serde_json::Value) -> bool) {
    let Ok(shards) = std::fs::read_dir(records_dir(root)) else { return };
    for shard in shards.flatten() {
        let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
        for file in files.flatten() {
            if file.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let Ok(bytes) = std::fs::read(file.path()) else { continue };
            if let Ok(stored) = serde_json::from_slice::<Stored<serde_json::Value>>(&bytes) {
                if stored.key.starts_with(prefix) && !found(stored.key, stored.value) {
                    return;
                }
            }
        }
    }
}

/// Moves the records an earlier version kept in cacache's index (every key but blobs') into
/// `records/`, once: when `records/` does not exist yet. Blocking.
pub fn migrate_from_index(root: &Path) -> std::io::Result<usize> {
    if records_dir(root).exists() {
        return Ok(0);
    }
    let latest: std::collections::BTreeMap<String, serde_json::Value> = index::other_entries(root).collect();
    let mut moved = 0;
    for (key, value) in &latest {
        if value.is_null() {
            continue;
        }
        put(root, key, value)?;
        moved += 1;
    }
    std::fs::create_dir_all(records_dir(root))?;
    for key in latest.keys() {
        if let Err(error) = index::remove(root, key) {
            // moved already: the copy left in the index is never read again
            tracing::warn!(key, %error, "a record moved out of the cache index stays in it too");
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_rewritten_ten_thousand_times_stays_one_small_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = "pantry/tag/registry.test:5000/app:latest#";
        for n in 0..10_000u64 {
            put(dir.path(), key, &n).unwrap();
        }
        assert_eq!(get::<u64>(dir.path(), key).unwrap(), Some(9_999));
        let file = record_path(dir.path(), key);
        assert!(std::fs::metadata(&file).unwrap().len() < 100, "one record, not a log");
        let files: usize = walk(&records_dir(dir.path()));
        assert_eq!(files, 1, "no temporary files left behind");
        assert_eq!(list(dir.path(), "pantry/tag/"), vec![(key.to_string(), serde_json::json!(9_999))]);
        assert!(remove(dir.path(), key));
        assert_eq!(get::<u64>(dir.path(), key).unwrap(), None);
    }

    #[test]
    fn a_torn_or_foreign_file_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "a", &1u32).unwrap();
        std::fs::write(record_path(dir.path(), "a"), b"{\"key\":\"a\",\"va").unwrap();
        assert_eq!(get::<u32>(dir.path(), "a").unwrap(), None);
        // a file under another key's name (a hash collision cannot happen; a copied file can)
        put(dir.path(), "c", &3u32).unwrap();
        std::fs::copy(record_path(dir.path(), "c"), record_path(dir.path(), "a")).unwrap();
        assert_eq!(get::<u32>(dir.path(), "a").unwrap(), None, "the key inside must match");
    }

    #[test]
    fn a_record_that_cannot_be_read_is_an_error_not_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        // a directory where the file should be: reading it fails with EISDIR, not NotFound
        std::fs::create_dir_all(record_path(dir.path(), "a")).unwrap();
        assert!(get::<u32>(dir.path(), "a").is_err());
        assert_eq!(get::<u32>(dir.path(), "b").unwrap(), None, "no file is no record");
    }

    #[test]
    fn records_of_the_index_move_once_and_blobs_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let opts = || {
            cacache::WriteOpts::new()
                .integrity("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".parse().unwrap())
        };
        for n in 0..3 {
            let opts = opts().metadata(serde_json::json!({ "n": n }));
            cacache::index::insert(root, "pantry/tag/r/a:v1#", opts).unwrap();
        }
        let blob_key = format!("{}sha256:00", super::super::layout::BLOB_PREFIX);
        cacache::index::insert(root, &blob_key, opts().metadata(serde_json::json!({}))).unwrap();
        assert_eq!(migrate_from_index(root).unwrap(), 1);
        assert_eq!(
            get::<serde_json::Value>(root, "pantry/tag/r/a:v1#").unwrap(),
            Some(serde_json::json!({ "n": 2 }))
        );
        assert!(cacache::index::find(root, "pantry/tag/r/a:v1#").unwrap().is_none());
        assert!(cacache::index::find(root, &blob_key).unwrap().is_some());
        put(root, "pantry/tag/r/a:v1#", &serde_json::json!({ "n": 5 })).unwrap();
        assert_eq!(migrate_from_index(root).unwrap(), 0, "only once");
        assert_eq!(
            get::<serde_json::Value>(root, "pantry/tag/r/a:v1#").unwrap(),
            Some(serde_json::json!({ "n": 5 }))
        );
    }

    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
            .sum()
    }
}
