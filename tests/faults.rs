//! Upstream faults with nothing lost: for each fault a fault-injecting registry can produce, the
//! client sees a prompt error (never a clean short or wrong body), nothing is stored and no spool
//! is left, pantry stays healthy, and once the fault ends the next request fetches, verifies and
//! stores the blob. Each test records its row of docs/RELIABILITY.md.

mod common;

use std::time::{Duration, Instant};

use common::{
    faulty::{Fault, FaultyRegistry},
    registry::FakeRegistry,
    reliability::{record, within, Outcome},
    request, start_pantry, TestPantry,
};
use http::Method;

/// What one client saw of a GET for the blob under `fault`, in at most `bound`; and what of that
/// was lost (a body that ended cleanly but was not the blob).
async fn inject(
    pantry: &TestPantry,
    registry: &FaultyRegistry,
    fault: Fault,
    bound: Duration,
) -> (String, Vec<String>) {
    registry.set(fault);
    let started = Instant::now();
    let (response, body) = request(pantry, &registry.host(), Method::GET, &registry.blob_path(), &[]).await;
    let elapsed = started.elapsed();
    assert!(elapsed < bound, "{fault:?}: answered in {elapsed:?}, not within {bound:?}");
    let status = response.status().as_u16();
    let mut lost = Vec::new();
    let client = match body {
        Err(_) => format!("{status}, then the transfer broke off, within {}", within(bound)),
        Ok(bytes) if status == 200 && bytes == registry.blob => {
            format!("{status} and the whole blob, within {}", within(bound))
        }
        Ok(bytes) if status == 200 => {
            lost.push(format!("the client took {} wrong bytes for the blob", bytes.len()));
            format!("{status} and a body that is not the blob")
        }
        Ok(_) => format!("{status}, within {}", within(bound)),
    };
    (client, lost)
}

/// Files left in the cache's spool directory.
fn spools(pantry: &TestPantry) -> usize {
    std::fs::read_dir(pantry.dir.path().join("cache/tmp")).map(|d| d.count()).unwrap_or(0)
}

/// What the fault left in the store, and what happened once it ended: the fault is cleared, the
/// blob is fetched, verified and stored, and a second request is a hit. Adds anything lost.
async fn aftermath(
    pantry: &TestPantry,
    registry: &FaultyRegistry,
    lost: &mut Vec<String>,
) -> (String, String) {
    let digest = registry.digest.parse().unwrap();
    let stored = match (pantry.pantry.proxy().store().blob(&digest).await.is_some(), spools(pantry)) {
        (false, 0) => "nothing".to_string(),
        (true, _) => {
            lost.push("content stored from a failed transfer".into());
            "content from the failed transfer".to_string()
        }
        (false, n) => {
            lost.push(format!("{n} spool files left behind"));
            format!("{n} spool files")
        }
    };
    registry.set(Fault::None);
    let (host, path) = (registry.host(), registry.blob_path());
    let (first, body) = request(pantry, &host, Method::GET, &path, &[]).await;
    let (second, again) = request(pantry, &host, Method::GET, &path, &[]).await;
    let fetched = first.headers()["cache-status"] == "pantry; fwd=miss; stored"
        && body.is_ok_and(|b| b == registry.blob);
    let hit = second.headers()["cache-status"] == "pantry; hit" && again.is_ok_and(|b| b == registry.blob);
    if !(fetched && hit) {
        lost.push(format!("after the fault: {:?} then {:?}", first.headers(), second.headers()));
    }
    (stored, "the next request fetched, verified and stored the blob; the one after was a hit".to_string())
}

/// Runs `fault` against a fresh pantry (configured by `adjust`) and records its row.
async fn run(name: &str, fault: Fault, bound: Duration, adjust: impl FnOnce(&mut pantry::config::Config)) {
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let registry = FaultyRegistry::start(blob).await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        adjust(c);
    })
    .await;
    let (client, mut lost) = inject(&pantry, &registry, fault, bound).await;
    let (stored, after) = aftermath(&pantry, &registry, &mut lost).await;
    record(Outcome { area: "upstream", fault: name, client, stored, after, lost });
}

fn quick_timeouts(c: &mut pantry::config::Config) {
    c.startup.upstream_response_timeout = Duration::from_millis(500);
    c.startup.upstream_body_timeout = Duration::from_millis(500);
}

#[tokio::test]
async fn a_reset_mid_body_breaks_the_transfer_and_stores_nothing() {
    run("connection reset mid-body", Fault::Reset, Duration::from_secs(2), |_| {}).await;
}

#[tokio::test]
async fn a_stall_before_the_headers_is_a_prompt_gateway_timeout() {
    run("stall before the headers", Fault::StallHeaders, Duration::from_secs(2), quick_timeouts).await;
}

#[tokio::test]
async fn a_stall_mid_body_is_broken_off_after_the_body_timeout() {
    run("stall mid-body", Fault::StallBody, Duration::from_secs(2), quick_timeouts).await;
}

#[tokio::test]
async fn a_content_length_larger_than_the_body_breaks_the_transfer() {
    run("Content-Length larger than the body", Fault::LongLength, Duration::from_secs(2), |_| {}).await;
}

#[tokio::test]
async fn a_content_length_smaller_than_the_body_breaks_the_transfer() {
    run("Content-Length smaller than the body", Fault::ShortLength, Duration::from_secs(2), |_| {}).await;
}

#[tokio::test]
async fn a_body_with_the_wrong_digest_breaks_the_transfer() {
    run("body does not match its digest", Fault::WrongDigest, Duration::from_secs(2), |_| {}).await;
}

#[tokio::test]
async fn a_drip_slower_than_the_minimum_rate_is_broken_off() {
    let drip = Fault::Drip { every: Duration::from_millis(10) }; // 100 bytes a second
    run("slow drip (100 bytes a second)", drip, Duration::from_secs(3), |c| {
        c.startup.upstream_body_timeout = Duration::from_millis(500);
        c.startup.upstream_min_rate = 1024;
    })
    .await;
}

#[tokio::test]
async fn a_5xx_storm_is_passed_on_without_retries_and_ends_cleanly() {
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let registry = FaultyRegistry::start(blob).await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let mut answers = Vec::new();
    let mut lost = Vec::new();
    for _ in 0..20 {
        let (client, mut more) = inject(&pantry, &registry, Fault::Storm, Duration::from_secs(2)).await;
        answers.push(client);
        lost.append(&mut more);
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "every request saw the same: {answers:?}");
    let upstream = registry.requests();
    assert!(upstream <= 20, "pantry multiplied the storm: {upstream} upstream requests for 20");
    let client = format!("20 requests: each {}; {upstream} upstream requests, no retries", answers[0]);
    let (stored, after) = aftermath(&pantry, &registry, &mut lost).await;
    record(Outcome { area: "upstream", fault: "5xx storm", client, stored, after, lost });
}

#[tokio::test]
async fn a_forwarded_body_that_stalls_is_broken_off_too() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.upstream_body_timeout = Duration::from_millis(300);
        c.live.repositories = vec![pantry::registry::policy::NamespaceRule::new(
            "*",
            "uncached/*",
            pantry::registry::policy::Action::Pass,
            true,
        )];
    })
    .await;
    let digest = registry.state.add_blob(vec![1u8; 100_000], "application/octet-stream");
    registry.state.gated.store(true, std::sync::atomic::Ordering::SeqCst);
    let (response, body) =
        request(&pantry, &registry.host(), Method::GET, &format!("/v2/uncached/app/blobs/{digest}"), &[])
            .await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=uri-miss", "passed through, not cached");
    assert!(body.is_err(), "a stalled pass-through body ends in an error, not a hang");
}
