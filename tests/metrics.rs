//! `/metrics` on the proxy port (or only on the admin port when there is one): requests by route and
//! cache outcome, bytes from cache and from upstream, store size, leaves minted, in Prometheus text
//! format.

mod common;

use common::{plain_get, registry::FakeRegistry, request, start_pantry, TestPantry};
use http::Method;

async fn scrape(pantry: &TestPantry) -> String {
    let text = plain_get(pantry.addr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

#[tokio::test]
async fn an_admin_port_serves_the_metrics_and_the_proxy_port_no_longer_does() {
    let pantry = start_pantry(|c| c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = pantry.admin.unwrap();
    let metrics = plain_get(admin, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200") && metrics.contains("pantry_store_max_bytes"), "{metrics}");
    assert!(plain_get(pantry.addr, "/metrics").await.starts_with("HTTP/1.1 404"));
    for addr in [admin, pantry.addr] {
        assert!(plain_get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(plain_get(addr, "/ca.pem").await.contains("BEGIN CERTIFICATE"));
    }
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

#[tokio::test]
async fn pulls_show_up_in_the_metrics() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let digest = registry.state.add_blob(vec![9u8; 12_345], "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    for _ in 0..3 {
        request(&pantry, &registry.host(), Method::GET, &path, &[]).await.1.unwrap();
    }
    let text = scrape(&pantry).await;
    assert_eq!(value(&text, "pantry_requests_total{route=\"blob\",cache=\"miss\"}"), 1.0);
    assert_eq!(value(&text, "pantry_requests_total{route=\"blob\",cache=\"hit\"}"), 2.0);
    assert_eq!(value(&text, "pantry_upstream_fetched_bytes_total"), 12_345.0);
    assert_eq!(value(&text, "pantry_cache_served_bytes_total"), 2.0 * 12_345.0);
    assert_eq!(value(&text, "pantry_store_bytes"), 12_345.0);
    assert_eq!(value(&text, "pantry_leaf_certificates_minted"), 1.0);
    assert_eq!(value(&text, "pantry_fetches_in_flight"), 0.0);
    assert!(value(&text, "pantry_active_connections") >= 1.0, "the scrape itself is a connection");
}

#[tokio::test]
async fn pantrys_own_errors_are_counted_as_errors_not_as_forwarded() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let digest = registry.state.add_blob(vec![1u8; 100], "application/octet-stream");
    registry.state.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (down, _) =
        request(&pantry, &registry.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!(down.status(), 503, "the registry's own 503 is relayed");
    let text = scrape(&pantry).await;
    assert!(!text.contains("cache=\"other\""), "{text}");
    assert_eq!(value(&text, "pantry_requests_total{route=\"blob\",cache=\"miss\"}"), 1.0);
    let offline = start_pantry(|c| {
        registry.configure(c);
        c.live.offline = true;
    })
    .await;
    let (refused, _) =
        request(&offline, &registry.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!(refused.status(), 504);
    assert_eq!(refused.headers()["cache-status"], "pantry; detail=error");
    let text = scrape(&offline).await;
    assert_eq!(value(&text, "pantry_requests_total{route=\"blob\",cache=\"error\"}"), 1.0);
}

#[tokio::test]
async fn an_upstream_that_says_pantry_hit_is_not_counted_as_this_pantrys_hit() {
    // another pantry (or anything that spells its Cache-Status the same) upstream
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    *registry.state.cache_status.lock().unwrap() = Some("pantry; hit".into());
    let (answer, _) = request(&pantry, &registry.host(), Method::POST, "/v2/app/blobs/uploads/", &[]).await;
    assert_eq!(answer.status(), 202);
    let members: Vec<_> = answer.headers().get_all("cache-status").iter().collect();
    assert_eq!(
        members,
        ["pantry; hit", "pantry; fwd=uri-miss"],
        "the upstream's member stays, this one follows"
    );
    let text = scrape(&pantry).await;
    assert_eq!(value(&text, "pantry_requests_total{route=\"upload\",cache=\"forwarded\"}"), 1.0);
    assert!(!text.contains("cache=\"hit\""), "{text}");
}
