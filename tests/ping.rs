//! The version check (`GET /v2/`): an anonymous answer is remembered per registry for the tag TTL,
//! given stale when upstream is down or pantry is offline; a ping with credentials always goes up.
//! Time is a manual clock, moved by the tests.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use common::{registry::FakeRegistry, request, start_pantry, TestPantry};
use http::Method;
use pantry::{clock::Clock, config::Config};

const MINUTE: Duration = Duration::from_secs(60);

struct Setup {
    registry: FakeRegistry,
    pantry: TestPantry,
    clock: Clock,
    config: Config,
}

async fn setup() -> Setup {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let mut config = None;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
        config = Some(c.clone());
    })
    .await;
    Setup { registry, pantry, clock, config: config.unwrap() }
}

async fn ping(s: &Setup, method: Method, headers: &[(&str, &str)]) -> http::Response<()> {
    let (response, body) = request(&s.pantry, &s.registry.host(), method, "/v2/", headers).await;
    body.expect("the ping's body arrives whole");
    response
}

#[tokio::test]
async fn a_second_ping_within_the_ttl_costs_no_upstream_request() {
    let s = setup().await;
    let first = ping(&s, Method::GET, &[]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-status"], "pantry; fwd=miss");
    s.clock.advance(9 * MINUTE);
    let second = ping(&s, Method::GET, &[]).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["cache-status"], "pantry; hit");
    let head = ping(&s, Method::HEAD, &[]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["cache-status"], "pantry; hit");
    assert_eq!(s.registry.state.count("GET ping"), 1, "one upstream ping for three");

    s.clock.advance(2 * MINUTE); // the default tag TTL is 10 minutes
    let later = ping(&s, Method::GET, &[]).await;
    assert_eq!(later.headers()["cache-status"], "pantry; fwd=miss");
    assert_eq!(s.registry.state.count("GET ping"), 2, "an old answer is asked again");
}

#[tokio::test]
async fn a_ping_with_credentials_always_goes_upstream() {
    let s = setup().await;
    ping(&s, Method::GET, &[]).await;
    for _ in 0..2 {
        let checked = ping(&s, Method::GET, &[("authorization", "Basic dXNlcjpwYXNz")]).await;
        assert_eq!(checked.status(), 200);
        assert_eq!(checked.headers()["cache-status"], "pantry; fwd=uri-miss");
    }
    assert_eq!(s.registry.state.count("GET ping"), 3, "login checks are the registry's to answer");
}

#[tokio::test]
async fn upstream_down_gets_the_last_answer_marked_stale_and_no_answer_an_error() {
    let s = setup().await;
    s.registry.state.down.store(true, Ordering::SeqCst);
    let unknown = ping(&s, Method::GET, &[]).await;
    assert_eq!(unknown.status(), 502, "nothing to fall back on: the upstream failure is reported");
    assert!(unknown.headers()["proxy-status"].to_str().unwrap().contains("503"), "{:?}", unknown.headers());

    s.registry.state.down.store(false, Ordering::SeqCst);
    assert_eq!(ping(&s, Method::GET, &[]).await.status(), 200);
    s.registry.state.down.store(true, Ordering::SeqCst);
    s.clock.advance(30 * MINUTE);
    let stale = ping(&s, Method::GET, &[]).await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()["cache-status"], "pantry; hit; detail=stale");
    assert!(stale.headers().contains_key("warning"));
    assert_eq!(s.registry.state.count("GET down"), 2, "pantry still asks once the answer is old");
}

#[tokio::test]
async fn offline_answers_from_the_last_ping_without_asking() {
    let s = setup().await;
    assert_eq!(ping(&s, Method::GET, &[]).await.status(), 200);
    let mut offline = s.config.clone();
    offline.live.offline = true;
    s.pantry.pantry.reload(offline).unwrap();
    s.clock.advance(60 * MINUTE);
    let answer = ping(&s, Method::GET, &[]).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-status"], "pantry; hit; detail=stale");
    assert_eq!(s.registry.state.count("GET ping"), 1);
}

#[tokio::test]
async fn a_restarted_pantry_answers_from_the_last_ping_while_upstream_is_down() {
    let mut s = setup().await;
    assert_eq!(ping(&s, Method::GET, &[]).await.status(), 200);
    s.pantry.stop().await.unwrap();
    s.registry.state.down.store(true, Ordering::SeqCst);
    s.clock.advance(30 * MINUTE);
    let cache_dir = s.config.startup.cache_dir.clone();
    for offline in [false, true] {
        let restarted = start_pantry(|c| {
            s.registry.configure(c);
            c.clock = s.clock.clone();
            c.startup.cache_dir = cache_dir.clone();
            c.live.offline = offline;
        })
        .await;
        let (answer, body) = request(&restarted, &s.registry.host(), Method::GET, "/v2/", &[]).await;
        body.expect("the remembered body arrives whole");
        assert_eq!(answer.status(), 200, "offline = {offline}");
        assert_eq!(answer.headers()["cache-status"], "pantry; hit; detail=stale");
    }
    assert_eq!(s.registry.state.count("GET down"), 1, "offline asks nobody");
}

#[tokio::test]
async fn without_a_kept_answer_cached_content_still_gets_a_plain_200_during_an_outage() {
    let mut s = setup().await;
    let manifest = s.registry.state.add_blob("{\"layers\":[]}", common::registry::MANIFEST_TYPE);
    s.registry.state.tag("app", "v1", &manifest);
    let accept = ("accept", common::registry::MANIFEST_TYPE);
    let (pulled, _) =
        request(&s.pantry, &s.registry.host(), Method::GET, "/v2/app/manifests/v1", &[accept]).await;
    assert_eq!(pulled.status(), 200);
    s.pantry.stop().await.unwrap();
    // No version check was ever answered through this store (a prefetch filled it, say).
    let ping_key = format!("pantry/ping/{}", s.registry.host());
    assert!(!pantry::cache::records::remove(&s.config.startup.cache_dir, &ping_key), "no ping was made");
    s.registry.state.down.store(true, Ordering::SeqCst);
    let restarted = start_pantry(|c| {
        s.registry.configure(c);
        c.clock = s.clock.clone();
        c.startup.cache_dir = s.config.startup.cache_dir.clone();
    })
    .await;
    let (answer, body) = request(&restarted, &s.registry.host(), Method::GET, "/v2/", &[]).await;
    assert_eq!((answer.status().as_u16(), body.unwrap().as_ref()), (200, &b"{}"[..]));
    assert_eq!(answer.headers()["docker-distribution-api-version"], "registry/2.0");
    let (tag, _) =
        request(&restarted, &s.registry.host(), Method::GET, "/v2/app/manifests/v1", &[accept]).await;
    assert_eq!(tag.status(), 200, "and the cached image follows");

    // A registry pantry holds nothing of is not pretended to be up.
    let other = FakeRegistry::start().await;
    other.state.down.store(true, Ordering::SeqCst);
    let fresh = start_pantry(|c| {
        other.configure(c);
        c.startup.cache_dir = s.config.startup.cache_dir.clone();
    })
    .await;
    let (refused, _) = request(&fresh, &other.host(), Method::GET, "/v2/", &[]).await;
    assert_ne!(refused.status(), 200);
}
