//! One call for many: concurrent callers with the same key share one run of an async call and
//! all receive its (cloned) result; the next caller after it finished runs it again. Used for tag
//! revalidations (one HEAD for many askers), tokens, credential helpers and CA leaves.

use std::{future::Future, hash::Hash};

use tokio::sync::OnceCell;

use super::{InProgress, Joined};

/// Calls in progress, by key.
#[derive(Debug)]
pub struct SingleCall<K, V> {
    running: InProgress<K, OnceCell<V>>,
}

impl<K, V> Default for SingleCall<K, V> {
    fn default() -> Self {
        Self { running: InProgress::default() }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleCall<K, V> {
    /// Runs `call` unless a call with `key` is running, in which case `on_join` is called at once
    /// and that call's result is shared. Returns the result and whether it was shared. If the
    /// running caller is cancelled, a waiting one runs its own `call` instead.
    pub async fn run<F, Fut>(&self, key: K, call: F, on_join: impl FnOnce()) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let (cell, joined) = match self.running.join(&key, OnceCell::new) {
            Joined::Leads(cell) => (cell, false),
            Joined::Follows(cell) => (cell, true),
        };
        if joined {
            on_join();
        }
        let value = cell.get_or_init(call).await.clone();
        self.running.finish(&key, &cell);
        (value, joined)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_one_run_and_later_ones_run_again() {
        let calls = Arc::new(SingleCall::<&str, usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (calls, runs, gate) = (Arc::clone(&calls), Arc::clone(&runs), Arc::clone(&gate));
            tasks.push(tokio::spawn(async move {
                calls
                    .run(
                        "tag",
                        || async move {
                            gate.notified().await;
                            runs.fetch_add(1, Ordering::SeqCst) + 1
                        },
                        || {},
                    )
                    .await
            }));
        }
        while calls.running.is_empty() {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await; // let every task reach the shared call
        }
        gate.notify_one();
        let results: Vec<(usize, bool)> =
            futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
        assert!(results.iter().all(|(value, _)| *value == 1), "{results:?}");
        assert_eq!(results.iter().filter(|(_, joined)| !joined).count(), 1);
        gate.notify_one();
        assert_eq!(
            calls.run("tag", || async { 2 }, || {}).await,
            (2, false),
            "a finished call is not cached"
        );
    }
}
