//! The fleet's shared store as the last resort for mutable answers: tag records and version-check
//! answers are shared when the registry gives them, and read back by a node that has none when
//! neither the registry nor the other members can answer (a node that starts empty during an
//! outage). Content shared this way is verified against its digest like any other.

use serde::{de::DeserializeOwned, Serialize};

use super::Proxy;
use crate::{
    cache::layout::TagRecord,
    registry::{digest::Digest, manifest::MAX_MANIFEST_SIZE},
};

/// Shares `record` under `key` in the background (tracked: a drain waits for it).
pub(super) fn share<T: Serialize + Send + Sync + 'static>(proxy: &Proxy, key: &str, record: T) {
    let Some(shared) = proxy.shared.clone() else { return };
    let key = key.to_string();
    proxy.shutdown.spawn_work(async move { shared.put_record(&key, &record).await });
}

/// Writes stored content behind to the shared store in the background.
pub(super) fn share_content(proxy: &Proxy, digest: &Digest) {
    let (Some(shared), store) = (proxy.shared.clone(), proxy.store.clone()) else { return };
    let digest = digest.clone();
    proxy.shutdown.spawn_work(async move { shared.write_behind(&store, &digest).await });
}

/// The record the fleet shared under `key`, if there is a shared store and it has one.
pub(super) async fn record<T: DeserializeOwned>(proxy: &Proxy, key: &str) -> Option<T> {
    proxy.shared.as_ref()?.record(key).await
}

/// Copies the fleet's record of a tag (`key`) and the manifest it points to into the local store;
/// whether it did. The manifest is verified against its digest first.
pub(super) async fn import_tag(proxy: &Proxy, key: &str) -> bool {
    let Some(shared) = &proxy.shared else { return false };
    let Some(record) = shared.record::<TagRecord>(key).await else { return false };
    let Ok(digest) = record.digest.parse::<Digest>() else { return false };
    if proxy.store.blob(&digest).await.is_none() {
        let (Some(meta), Some(bytes)) =
            (shared.meta(&digest).await, shared.small_blob(&digest, MAX_MANIFEST_SIZE).await)
        else {
            return false;
        };
        let mut verifier = digest.verifier();
        verifier.update(&bytes);
        if let Err(mismatch) = verifier.finish() {
            tracing::warn!(%digest, actual = %mismatch.actual, "shared store holds other bytes than the digest says; ignored");
            return false;
        }
        if let Err(error) = proxy.store.put(&digest, &bytes, &meta).await {
            tracing::warn!(%digest, %error, "cannot store a manifest from the shared store");
            return false;
        }
    }
    match proxy.store.put_record(key, &record).await {
        Ok(()) => {
            tracing::info!(key, "tag record taken from the shared store");
            true
        }
        Err(error) => {
            tracing::warn!(%error, "cannot record a tag from the shared store");
            false
        }
    }
}
