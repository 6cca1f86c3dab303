//! Content a response is reading, by digest: what eviction must not remove. A hold is taken when
//! the store looks a blob up (before it reads the index) and travels with the `CachedBlob` to the
//! end of the response, so content found is content that can still be sent. Eviction marks a
//! digest as being removed under the lock and unlinks outside it: a hold asked for meanwhile waits
//! for that one removal (and then finds the content gone), while holds of every other digest are
//! never kept waiting behind an unlink, however slow the file system is.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Condvar, Mutex, MutexGuard},
};

use crate::registry::digest::Digest;

/// Holds by digest, and the digests being removed.
#[derive(Debug, Default)]
pub struct InUse {
    map: Mutex<HashMap<String, State>>,
    removed: Condvar,
}

#[derive(Debug)]
enum State {
    /// Held this many times.
    Held(usize),
    /// Eviction is unlinking its content.
    Removing,
}

/// Keeps one digest from eviction while it lives.
#[derive(Debug)]
pub struct InUseGuard {
    in_use: Arc<InUse>,
    digest: String,
}

impl InUse {
    fn map(&self) -> MutexGuard<'_, HashMap<String, State>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `digest` until the returned guard is dropped; waits while eviction removes it
    /// (blocking: call it off the async threads).
    pub fn hold(self: &Arc<Self>, digest: &Digest) -> InUseGuard {
        self.hold_named(digest.to_string())
    }

    fn hold_named(self: &Arc<Self>, digest: String) -> InUseGuard {
        let mut map = self.map();
        loop {
            match map.get_mut(&digest) {
                Some(State::Removing) => map = self.removed.wait(map).unwrap_or_else(|p| p.into_inner()),
                Some(State::Held(count)) => {
                    *count += 1;
                    break;
                }
                None => {
                    map.insert(digest.clone(), State::Held(1));
                    break;
                }
            }
        }
        InUseGuard { in_use: Arc::clone(self), digest }
    }

    /// Whether `digest` is held (or being removed).
    pub fn contains(&self, digest: &str) -> bool {
        self.map().contains_key(digest)
    }

    /// Removes `path` (the content of `digest`) unless `digest` is held, with no hold taken until
    /// it is gone (blocking: an unlink). Whether it was removed.
    pub fn remove_unless_held(&self, digest: &str, path: &Path) -> bool {
        {
            let mut map = self.map();
            if map.contains_key(digest) {
                return false;
            }
            map.insert(digest.to_string(), State::Removing);
        }
        let removed = std::fs::remove_file(path).is_ok();
        self.map().remove(digest);
        self.removed.notify_all();
        removed
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
        if let Some(State::Held(count)) = map.get_mut(&self.digest) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().unwrap()
    }

    #[test]
    fn held_content_is_not_removed_and_released_content_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"x").unwrap();
        let in_use = Arc::new(InUse::default());
        let a = digest(1);
        let held = in_use.hold(&a);
        assert!(!in_use.remove_unless_held(a.as_str(), &path));
        assert!(path.exists());
        drop(held);
        assert!(in_use.remove_unless_held(a.as_str(), &path));
        assert!(!path.exists() && !in_use.contains(a.as_str()));
        drop(in_use.hold(&a)); // no removal left behind to wait for
    }

    #[test]
    fn a_hold_waits_only_for_the_removal_of_its_own_digest() {
        let in_use = Arc::new(InUse::default());
        let (removing, other) = (digest(1), digest(2));
        in_use.map().insert(removing.to_string(), State::Removing);
        let (sent, got) = std::sync::mpsc::channel();
        let (asking, asked) = std::sync::mpsc::channel();
        let waiting = {
            let (in_use, removing) = (Arc::clone(&in_use), removing.clone());
            std::thread::spawn(move || {
                asking.send(()).unwrap();
                sent.send(in_use.hold(&removing)).unwrap()
            })
        };
        asked.recv().unwrap(); // the thread is about to ask for its hold
        drop(in_use.hold(&other)); // another digest: at once
        assert!(got.recv_timeout(Duration::from_millis(100)).is_err(), "waits while its content is removed");
        in_use.map().remove(removing.as_str());
        in_use.removed.notify_all();
        let guard = got.recv_timeout(Duration::from_secs(10)).expect("held once the removal ended");
        assert!(in_use.contains(removing.as_str()));
        drop(guard);
        waiting.join().unwrap();
        assert!(!in_use.contains(removing.as_str()));
    }
}
