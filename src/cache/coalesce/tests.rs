//! A fetch's failure knows its side: the upstream's body that lies, pantry's disk that fills.

use super::*;
use crate::{
    clock::Clock,
    registry::digest::{Algorithm, Digest},
    shutdown::Shutdown,
};

/// Pumps `body` for the digest of `content` into a spool whose writes go to `writer`, and
/// returns how the flight settled.
async fn settle_with(content: &[u8], body: Vec<u8>, writer: std::fs::File) -> FlightState {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap());
    let pace = crate::body::Pace { idle: std::time::Duration::from_secs(30), min_rate: 0 };
    let flights = Arc::new(Flights::new(Arc::default(), true, pace, Shutdown::default()));
    let digest = Digest::of(Algorithm::Sha256, content);
    let FetchRole::Lead(lead) = flights.join(&digest, None, ("r.test:443", "r.test:443/app")) else {
        panic!("the first to join leads")
    };
    let (_, path) = store.new_spool().unwrap();
    let spool =
        Arc::new(Spool { file: Arc::new(std::fs::File::open(&path).unwrap()), size: None, media_type: None });
    let flight = lead.flight();
    let mut state = flight.subscribe();
    pump(lead, store, path, BatchWriter::new(writer), spool, crate::body::full(body), BlobMeta::default())
        .await;
    let settled = state.borrow_and_update().clone();
    settled
}

#[tokio::test]
async fn a_spool_that_cannot_be_written_is_pantry_s_failure_not_the_upstream_s() {
    let content = vec![7u8; 3 * crate::cache::batch_writer::BATCH];
    // /dev/full: every write fails with ENOSPC, as on a full cache disk
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    match settle_with(&content, content.clone(), full).await {
        FlightState::Failed(failure) => {
            assert_eq!(failure.by, FailedBy::Disk, "{failure}");
            assert!(failure.reason.contains("spool write failed"), "{failure}");
        }
        other => panic!("settled as {other:?}"),
    }
}

#[tokio::test]
async fn content_that_is_not_the_digest_s_is_the_upstream_s_failure() {
    let dir = tempfile::tempdir().unwrap();
    let writer = std::fs::File::create(dir.path().join("spool")).unwrap();
    match settle_with(b"what was asked for", b"something else".to_vec(), writer).await {
        FlightState::Failed(failure) => assert_eq!(failure.by, FailedBy::Upstream, "{failure}"),
        other => panic!("settled as {other:?}"),
    }
}
