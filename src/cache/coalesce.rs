//! Single flight per digest: the first miss leads one upstream fetch into a spool file; everyone
//! asking for the same digest meanwhile follows it, reading the spool up to a published watermark.
//!
//! The spool is written in batches (`batch_writer`), and the watermark is what is on disk, never
//! the last byte until the digest is verified, so no client can receive a complete body that fails
//! verification: a mismatch or upstream error aborts every follower's body with an error and
//! nothing is stored. The fetch runs in its own task, so it goes on when the client that started it
//! leaves. Memory per transfer is two batches for the leader and one chunk per reader.

use std::{io, path::PathBuf, sync::Arc};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::watch;

use super::{
    batch_writer::BatchWriter,
    store::{BlobMeta, Store},
};
use crate::{
    body::{Body, Pace},
    metrics::Metrics,
    registry::digest::Digest,
    shutdown::Shutdown,
    single_flight::{InProgress, Joined},
};

mod failure;
pub use failure::{FailedBy, Failure};

/// Reads from the spool in chunks of at most this size: one batch (see `batch_writer`), so a
/// follower that keeps up reads each batch with one call to the blocking pool.
const READ_CHUNK: u64 = super::batch_writer::BATCH as u64;

/// What a flight's followers can see.
#[derive(Debug, Clone)]
pub enum FlightState {
    /// The leader is asking upstream.
    Starting,
    /// Bytes `0..sendable` of the spool may be sent.
    Streaming {
        /// The spool and what upstream said about it.
        spool: Arc<Spool>,
        /// Verified-safe prefix length.
        sendable: u64,
    },
    /// All `size` bytes arrived and matched the digest.
    Done {
        /// The spool (renamed into the store if that worked; the open handle stays valid).
        spool: Arc<Spool>,
        /// Total bytes.
        size: u64,
    },
    /// The fetch failed after it started; followers must abort.
    Failed(Failure),
    /// Upstream did not answer 200; followers should ask again themselves.
    Declined,
}

/// The spool file of a flight and the response metadata upstream sent.
#[derive(Debug)]
pub struct Spool {
    file: Arc<std::fs::File>,
    /// `Content-Length` upstream announced, if any.
    pub size: Option<u64>,
    /// `Content-Type` upstream sent.
    pub media_type: Option<String>,
}

/// One fetch of one digest.
#[derive(Debug)]
pub struct Flight {
    /// The digest being fetched.
    pub digest: Digest,
    /// Hash of the credential the leader fetched with (`None`: anonymous).
    pub credential: Option<u64>,
    /// The origin the leader fetches from (a `Target::key_name`).
    pub origin: String,
    /// The repository it was asked for (`origin/name`, for the status page).
    pub repository: String,
    pub(super) state: watch::Sender<FlightState>,
    pub(super) started: std::time::Instant,
}

impl Flight {
    /// Watches the flight's state.
    pub fn subscribe(&self) -> watch::Receiver<FlightState> {
        self.state.subscribe()
    }

    /// Waits until the leader has an answer from upstream; the receiver it returns counts as a
    /// reader of the flight until dropped (hand it to [`follow`]).
    pub async fn started(&self) -> (FlightState, watch::Receiver<FlightState>) {
        let mut receiver = self.subscribe();
        let state = match receiver.wait_for(|s| !matches!(s, FlightState::Starting)).await {
            Ok(state) => state.clone(),
            Err(_) => FlightState::Declined,
        };
        (state, receiver)
    }
}

/// The in-flight fetches, by digest.
#[derive(Debug)]
pub struct Flights {
    pub(super) active: InProgress<Digest, Flight>,
    metrics: Arc<Metrics>,
    finish_abandoned: bool,
    pace: Pace,
    shutdown: Shutdown,
}

/// The caller's part in a fetch.
#[derive(Debug)]
pub enum FetchRole {
    /// Ask upstream, then [`Lead::stream`] or [`Lead::decline`].
    Lead(Lead),
    /// Someone else is fetching; follow it.
    Follow(Arc<Flight>),
}

impl Flights {
    /// No fetches yet; counts into `metrics`. With `finish_abandoned`, a fetch every client left
    /// runs to the end (and is stored); otherwise it stops. An upstream body silent for
    /// slower than `pace` aborts its fetch.
    pub fn new(metrics: Arc<Metrics>, finish_abandoned: bool, pace: Pace, shutdown: Shutdown) -> Self {
        Self { active: InProgress::default(), metrics, finish_abandoned, pace, shutdown }
    }

    /// Joins the fetch of `digest`, or starts one (as its leader, fetching from `origin` with
    /// `credential`, for `repository`) if there is none.
    pub fn join(
        self: &Arc<Self>,
        digest: &Digest,
        credential: Option<u64>,
        (origin, repository): (&str, &str),
    ) -> FetchRole {
        let start = || Flight {
            digest: digest.clone(),
            credential,
            origin: origin.to_string(),
            repository: repository.to_string(),
            state: watch::channel(FlightState::Starting).0,
            started: std::time::Instant::now(),
        };
        match self.active.join(digest, start) {
            Joined::Follows(flight) => {
                self.metrics.coalesced();
                FetchRole::Follow(flight)
            }
            Joined::Leads(flight) => {
                FetchRole::Lead(Lead { flights: Arc::clone(self), flight, settled: false })
            }
        }
    }

    /// The running fetch of `digest`, if any, without joining it.
    pub fn peek(&self, digest: &Digest) -> Option<Arc<Flight>> {
        self.active.get(digest)
    }

    /// How many fetches are running.
    pub fn in_flight(&self) -> usize {
        self.active.len()
    }

    fn finish(&self, flight: &Arc<Flight>) {
        self.active.finish(&flight.digest, flight);
    }
}

/// The leader's handle: dropping it unsettled declines the flight so followers retry.
#[derive(Debug)]
pub struct Lead {
    flights: Arc<Flights>,
    flight: Arc<Flight>,
    settled: bool,
}

impl Lead {
    /// The flight this leader runs.
    pub fn flight(&self) -> Arc<Flight> {
        Arc::clone(&self.flight)
    }

    /// Upstream did not answer 200: nothing to fetch; followers ask again.
    pub fn decline(mut self) {
        self.settle(FlightState::Declined);
    }

    /// Streams `body` into a spool in the background, committing it to `store` once verified;
    /// returns the flight and the leader's own receiver (a reader from the start). If no spool can
    /// be created, the body is handed back (to pass it through uncached).
    pub fn stream(
        self,
        store: Arc<Store>,
        body: Body,
        size: Option<u64>,
        meta: BlobMeta,
    ) -> Result<(Arc<Flight>, watch::Receiver<FlightState>), (io::Error, Body)> {
        if let Err(error) = store.room_for(size) {
            return Err((error, body));
        }
        let (writer, path) = match store.new_spool() {
            Ok(spool) => spool,
            Err(error) => return Err((error, body)),
        };
        let reader = match super::content::open(&path) {
            Ok(reader) => reader,
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                return Err((error, body));
            }
        };
        let spool = Arc::new(Spool { file: Arc::new(reader), size, media_type: meta.media_type.clone() });
        self.flight.state.send_replace(FlightState::Streaming { spool: Arc::clone(&spool), sendable: 0 });
        let (flight, receiver) = (self.flight(), self.flight.subscribe());
        let shutdown = self.flights.shutdown.clone();
        shutdown.spawn_work(pump(self, store, path, BatchWriter::new(writer), spool, body, meta));
        Ok((flight, receiver))
    }

    fn settle(&mut self, state: FlightState) {
        self.settled = true;
        self.flight.state.send_replace(state);
        self.flights.finish(&self.flight);
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if !self.settled {
            self.settle(FlightState::Declined);
        }
    }
}

/// Copies upstream bytes into the spool, publishing a watermark; verifies, commits, settles.
async fn pump(
    mut lead: Lead,
    store: Arc<Store>,
    path: PathBuf,
    mut file: BatchWriter,
    spool: Arc<Spool>,
    body: Body,
    meta: BlobMeta,
) {
    let digest = lead.flight.digest.clone();
    let mut verifier = digest.verifier();
    let mut written = 0u64;
    let finish_abandoned = lead.flights.finish_abandoned;
    let mut body = crate::body::paced(body, lead.flights.pace);
    let flight = Arc::clone(&lead.flight);
    let upstream = |reason: String| Failure::new(FailedBy::Upstream, reason);
    let disk = |e: io::Error| Failure::new(FailedBy::Disk, format!("spool write failed: {e}"));
    let outcome: Result<BatchWriter, Failure> = async {
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = flight.state.closed(), if !finish_abandoned => {
                    let reason = "every client left; fetch stopped (finish_abandoned_fetches = false)";
                    return Err(Failure::new(FailedBy::Abandoned, reason));
                }
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| upstream(format!("upstream body failed: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            if data.is_empty() {
                continue; // an empty frame would publish the whole body before it is verified
            }
            verifier.update(&data);
            lead.flights.metrics.fetched_upstream(data.len() as u64);
            written += data.len() as u64;
            if spool.size.is_some_and(|size| written > size) {
                return Err(upstream(format!(
                    "upstream sent more than its Content-Length {}",
                    spool.size.unwrap_or(0)
                )));
            }
            let on_disk = file.push(data).await.map_err(disk)?;
            // Publish what is on disk (the newest batches are not), and never the last byte: the
            // end is released only once verified (a reader that got every byte would see a clean end).
            if let Some(on_disk) = on_disk {
                let sendable = spool.size.map_or(on_disk, |size| on_disk.min(size.saturating_sub(1)));
                lead.flight
                    .state
                    .send_replace(FlightState::Streaming { spool: Arc::clone(&spool), sendable });
            }
        }
        if let Some(size) = spool.size.filter(|size| *size != written) {
            return Err(upstream(format!("upstream sent {written} bytes, Content-Length said {size}")));
        }
        verifier
            .finish()
            .map_err(|mismatch| upstream(format!("upstream sent content with digest {}", mismatch.actual)))?;
        Ok(file)
    }
    .await;
    let outcome = match outcome {
        Ok(file) => file.finish().await.map(drop).map_err(disk),
        Err(reason) => Err(reason),
    };
    match outcome {
        Ok(()) => {
            if let Err(error) = store.commit(&digest, &path, written, &meta).await {
                tracing::warn!(%digest, %error, "verified blob could not be stored; served without caching");
                let _ = tokio::fs::remove_file(&path).await;
            } else {
                tracing::info!(%digest, size = written, "stored");
            }
            lead.settle(FlightState::Done { spool, size: written });
        }
        Err(failure) => {
            match failure.by {
                FailedBy::Disk => {
                    tracing::error!(%digest, reason = %failure, "fetch aborted; nothing stored")
                }
                _ => tracing::warn!(%digest, reason = %failure, "fetch aborted; nothing stored"),
            }
            lead.flights.metrics.fetch_aborted();
            let _ = tokio::fs::remove_file(&path).await;
            lead.settle(FlightState::Failed(failure));
        }
    }
}

/// A follower's body: bytes `start..end` (end `None` = to the end) of the flight watched by
/// `state`, as they arrive.
pub fn follow(state: watch::Receiver<FlightState>, start: u64, end: Option<u64>) -> Body {
    let reader = Follower { state, pos: start, end };
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        match reader.next().await {
            Ok(Some(bytes)) => Some((Ok(hyper::body::Frame::data(bytes)), reader)),
            Ok(None) => None,
            Err(error) => Some((Err(error.into()), reader.finished())),
        }
    });
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

struct Follower {
    state: watch::Receiver<FlightState>,
    pos: u64,
    end: Option<u64>,
}

impl Follower {
    /// After an error, the stream ends.
    fn finished(mut self) -> Self {
        self.end = Some(self.pos);
        self
    }

    async fn next(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.end.is_some_and(|end| self.pos >= end) {
                return Ok(None);
            }
            let state = self.state.borrow_and_update().clone();
            let (spool, available, complete) = match state {
                FlightState::Streaming { spool, sendable } => (spool, sendable, false),
                FlightState::Done { spool, size } => (spool, size, true),
                FlightState::Failed(reason) => return Err(io::Error::other(reason.to_string())),
                FlightState::Declined => return Err(io::Error::other("fetch was abandoned")),
                FlightState::Starting => {
                    if self.state.changed().await.is_err() {
                        return Err(io::Error::other("fetch ended without an outcome"));
                    }
                    continue;
                }
            };
            let limit = self.end.map_or(available, |end| end.min(available));
            if self.pos < limit {
                let len = (limit - self.pos).min(READ_CHUNK);
                let bytes = read_at(Arc::clone(&spool.file), self.pos, len).await?;
                self.pos += bytes.len() as u64;
                return Ok(Some(bytes));
            }
            if complete {
                return Ok(None);
            }
            if self.state.changed().await.is_err() {
                return Err(io::Error::other("fetch ended without an outcome"));
            }
        }
    }
}

/// Reads exactly `len` bytes at `offset` (all of them were written and flushed before publishing).
async fn read_at(file: Arc<std::fs::File>, offset: u64, len: u64) -> io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len as usize];
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, offset)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests;
