//! Content a response is reading, by digest: what eviction must not remove. A hold is taken when
//! the store looks a blob up (before it reads the index) and travels with the `CachedBlob` to the
//! end of the response, so content found is content that can still be sent; eviction checks and
//! removes under the same lock, so a removal and a new hold never cross.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use crate::registry::digest::Digest;

/// The digests held, with how many holds each.
#[derive(Debug, Default)]
pub struct InUse(Mutex<HashMap<String, usize>>);

/// Keeps one digest from eviction while it lives.
#[derive(Debug)]
pub struct InUseGuard {
    in_use: Arc<InUse>,
    digest: String,
}

impl InUse {
    fn map(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `digest` until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>, digest: &Digest) -> InUseGuard {
        self.hold_named(digest.to_string())
    }

    fn hold_named(self: &Arc<Self>, digest: String) -> InUseGuard {
        *self.map().entry(digest.clone()).or_default() += 1;
        InUseGuard { in_use: Arc::clone(self), digest }
    }

    /// Whether `digest` is held.
    pub fn contains(&self, digest: &str) -> bool {
        self.map().contains_key(digest)
    }

    /// Removes `path` (the content of `digest`) unless `digest` is held, with no hold taken in
    /// between (blocking: an unlink under the lock). Whether it was removed.
    pub fn remove_unless_held(&self, digest: &str, path: &Path) -> bool {
        let map = self.map();
        !map.contains_key(digest) && std::fs::remove_file(path).is_ok()
    }
}

impl Clone for InUseGuard {
    fn clone(&self) -> Self {
        self.in_use.hold_named(self.digest.clone())
    }
}

impl Drop for InUseGuard {
    fn drop(&mut self) {
        let mut map = self.in_use.map();
        if let Some(count) = map.get_mut(&self.digest) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.digest);
            }
        }
    }
}
