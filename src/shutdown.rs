//! Graceful shutdown shared by every task pantry spawns: stop accepting, let in-flight transfers
//! finish for a grace period, then abort what is left.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::ConnectionGauge;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Tracks connection and tunnel tasks and tells them when to drain and when to stop.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    tracker: TaskTracker,
    draining: CancellationToken,
    abort: CancellationToken,
}

impl Shutdown {
    /// Spawns a task that shutdown waits for.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Spawns a background loop (eviction, statistics, scheduled refresh) that ends when draining
    /// begins; tracked like every task, so nothing pantry started outlives its shutdown.
    pub fn spawn_background<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_until(self.draining.clone(), task);
    }

    /// Spawns work a request started that may outlive its connection (a fetch storing what it
    /// streams, the HTTP cache writing an answer): tracked, so a drain lets it finish within the
    /// grace period, and dropped at abort.
    pub fn spawn_work<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_until(self.abort.clone(), task);
    }

    /// Spawns `task`, tracked, and drops it once `stop` is cancelled.
    fn spawn_until<F>(&self, stop: CancellationToken, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop.cancelled() => {}
            }
        });
    }

    /// Completes when tasks should finish their current work and take no more.
    pub async fn draining(&self) {
        self.draining.cancelled().await
    }

    /// Completes when tasks must stop at once.
    pub async fn aborted(&self) {
        self.abort.cancelled().await
    }

    /// Drives a client connection to its end; on draining, or once `unwelcome` completes (the
    /// client misbehaves), asks it to finish gracefully (with `graceful`, e.g. hyper's
    /// `graceful_shutdown`), and on abort drops it.
    pub async fn drive<C, E>(
        &self,
        connection: C,
        graceful: impl FnOnce(std::pin::Pin<&mut C>),
        unwelcome: impl Future<Output = ()>,
    ) -> Result<(), E>
    where
        C: Future<Output = Result<(), E>>,
    {
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => result,
            () = async { tokio::select! { () = self.draining() => {}, () = unwelcome => {} } } => {
                graceful(connection.as_mut());
                tokio::select! {
                    result = connection => result,
                    () = self.aborted() => Ok(()),
                }
            }
        }
    }

    /// Signals draining, waits up to `grace` for tasks, then aborts the rest. True if all finished.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tracker.close();
        self.draining.cancel();
        let finished = tokio::time::timeout(grace, self.tracker.wait()).await.is_ok();
        self.abort.cancel();
        self.tracker.wait().await;
        finished
    }
}

/// A client connection's slot under `max_connections`; held by whatever serves the connection,
/// including a tunnel it turned into.
#[derive(Clone, Debug)]
pub struct ConnectionPermit(#[allow(dead_code)] Arc<(OwnedSemaphorePermit, ConnectionGauge)>);

impl ConnectionPermit {
    /// Wraps a semaphore permit and the connection's place in the active-connections gauge.
    pub fn new(permit: OwnedSemaphorePermit, gauge: ConnectionGauge) -> Self {
        Self(Arc::new((permit, gauge)))
    }
}
