//! The one single-flight primitive: work in progress by key. The first caller for a key starts an
//! entry and leads; callers that come while it runs join that entry; the leader removes it when
//! done (only its own: a key started again meanwhile keeps its new entry). Built on it:
//! `cache::coalesce::Flights` (a blob fetch, whose entry streams to the clients that joined) and
//! [`call::SingleCall`] (one async call whose cloned result every joined caller gets: tag
//! revalidations, tokens, credential helpers, CA leaves).

pub mod call;

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
};

pub use call::SingleCall;

/// Entries in progress, by key.
#[derive(Debug)]
pub struct InProgress<K, T> {
    running: Mutex<HashMap<K, Arc<T>>>,
}

impl<K, T> Default for InProgress<K, T> {
    fn default() -> Self {
        Self { running: Mutex::new(HashMap::new()) }
    }
}

/// A caller's part in the entry of its key.
#[derive(Debug)]
pub enum Joined<T> {
    /// It started the entry: it runs the work and then [`InProgress::finish`]es it.
    Leads(Arc<T>),
    /// The entry was running: it follows.
    Follows(Arc<T>),
}

impl<K: Eq + Hash + Clone, T> InProgress<K, T> {
    fn running(&self) -> MutexGuard<'_, HashMap<K, Arc<T>>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins the entry of `key`, or starts one with `start` when none is running.
    pub fn join(&self, key: &K, start: impl FnOnce() -> T) -> Joined<T> {
        let mut running = self.running();
        if let Some(entry) = running.get(key) {
            return Joined::Follows(Arc::clone(entry));
        }
        let entry = Arc::new(start());
        running.insert(key.clone(), Arc::clone(&entry));
        Joined::Leads(entry)
    }

    /// The running entry of `key`, without joining it.
    pub fn get(&self, key: &K) -> Option<Arc<T>> {
        self.running().get(key).cloned()
    }

    /// How many entries are running.
    pub fn len(&self) -> usize {
        self.running().len()
    }

    /// Whether none is running.
    pub fn is_empty(&self) -> bool {
        self.running().is_empty()
    }

    /// Every running entry.
    pub fn entries(&self) -> Vec<Arc<T>> {
        self.running().values().cloned().collect()
    }

    /// Ends `entry` under `key`, unless another entry took the key since.
    pub fn finish(&self, key: &K, entry: &Arc<T>) {
        let mut running = self.running();
        if running.get(key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            running.remove(key);
        }
    }
}
