//! The store's mutable records (tags, HTTP-cache policies, version-check answers) as the
//! request path reads and writes them: one small file per key (`cache::records`), kept in memory
//! for a second (`cache::hot`), and a tag's record looked up with the manifest it names in one
//! trip to the blocking pool.

use std::{path::Path, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{blob, record_path, records, records_dir, CachedBlob, Store, StoreError};
use crate::registry::digest::Digest;

/// [`records::get`] as JSON, its error naming the record's file (blocking).
fn read_record(root: &Path, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
    records::get(root, key).map_err(|source| StoreError::Io { path: record_path(root, key), source })
}

impl Store {
    /// The record under `key` and the blob it names (`digest_of`), looked up in one trip to the
    /// blocking pool (a tag's answer: which manifest, and the manifest). `Ok(None)` when either is
    /// missing or the record is not a `T`; an error when the store could not be read.
    pub async fn record_and_blob<T>(
        &self,
        key: &str,
        digest_of: fn(&T) -> Option<Digest>,
    ) -> Result<Option<(T, CachedBlob)>, StoreError>
    where
        T: for<'de> Deserialize<'de> + Send + 'static,
    {
        if let Some(value) = self.hot.record(key) {
            if let Ok(record) = T::deserialize(&*value) {
                if let Some(blob) = digest_of(&record).and_then(|digest| self.hot_blob(&digest)) {
                    return Ok(Some((record, blob)));
                }
            }
        }
        let epoch = self.hot.epoch();
        let (root, owned_key, in_use) = (self.root.clone(), key.to_string(), Arc::clone(&self.in_use));
        let found = tokio::task::spawn_blocking(move || {
            let Some(value) = read_record(&root, &owned_key)? else { return Ok(None) };
            let Some(record) = T::deserialize(&value).ok() else { return Ok(None) };
            let Some(digest) = digest_of(&record) else { return Ok(None) };
            let held = in_use.hold(&digest);
            Ok(blob::lookup(&root, digest, held)?.map(|blob| (value, record, blob)))
        })
        .await
        .unwrap_or_else(|e| Err(self.join_error(e)));
        let Some((value, record, blob)) = found? else { return Ok(None) };
        self.hot.keep_record(epoch, key.to_string(), value);
        self.keep_hot(epoch, &blob);
        Ok(Some((record, blob)))
    }

    /// Reads a small mutable record (tags, HTTP-cache policies) stored under `key`: `Ok(None)`
    /// when there is none or it is not a `T`, an error when the store could not be read.
    pub async fn record<T: for<'de> Deserialize<'de> + Send + 'static>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        if let Some(value) = self.hot.record(key) {
            return Ok(T::deserialize(&*value).ok());
        }
        let epoch = self.hot.epoch();
        let (root, owned_key) = (self.root.clone(), key.to_string());
        let found = tokio::task::spawn_blocking(move || read_record(&root, &owned_key))
            .await
            .unwrap_or_else(|e| Err(self.join_error(e)));
        let Some(value) = found? else { return Ok(None) };
        let record = T::deserialize(&value).ok();
        self.hot.keep_record(epoch, key.to_string(), value);
        Ok(record)
    }

    /// Whether some record's key starts with `prefix` (e.g. any tag of a registry).
    pub async fn has_record_under(&self, prefix: &str) -> bool {
        let (root, prefix) = (self.root.clone(), prefix.to_string());
        tokio::task::spawn_blocking(move || records::any(&root, &prefix)).await.unwrap_or(false)
    }

    /// Replaces the small mutable record under `key` (one file, however often it changes).
    pub async fn put_record<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let root = self.root.clone();
        let value = serde_json::to_value(value).unwrap_or_default();
        let path = records_dir(&root);
        let owned_key = key.to_string();
        let written = tokio::task::spawn_blocking(move || records::put(&root, &owned_key, &value))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|written| written)
            .map_err(|source| StoreError::Io { path, source });
        self.hot.drop_record(key);
        written
    }
}
