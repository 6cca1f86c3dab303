//! A parent proxy: every upstream connection of pantry goes through another proxy's CONNECT
//! (here a second pantry that only tunnels), for tunnels and intercepted requests alike.

mod common;

use common::{connect, registry::FakeRegistry, request, roots_from_pem, start_pantry, tls, Sender};
use http::Method;
use pantry::{config::ParentRule, upstream::parent::ParentProxy};

#[tokio::test]
async fn intercepted_and_tunnelled_traffic_goes_through_the_parent() {
    let registry = FakeRegistry::start().await;
    let port = registry.addr.port();
    let mut parent = start_pantry(|c| {
        c.live.intercept = Vec::new();
        common::reach_loopback(c, &[port, registry.cdn.port()]);
        c.live.shutdown_grace = std::time::Duration::from_millis(100); // the child's pooled tunnels stay open
    })
    .await;
    let parent_url = format!("http://{}", parent.addr);
    let child = start_pantry(|c| {
        registry.configure(c);
        common::reach_loopback(c, &[registry.cdn.port()]);
        c.startup.upstream_proxy = Some(ParentProxy::parse(&parent_url).unwrap());
    })
    .await;
    let digest = registry.state.add_blob(vec![3u8; 5000], "application/octet-stream");
    let (response, body) =
        request(&child, &registry.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!((response.status().as_u16(), body.unwrap().len()), (200, 5000));

    // A tunnelled destination (an IP literal, not in the intercept list) also goes via the parent.
    let (stream, head) = connect(child.addr, &format!("127.0.0.1:{}", registry.cdn.port()), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stream = tls(stream, "127.0.0.1", roots_from_pem(&registry.ca.ca_pem), &[b"http/1.1"]).await.unwrap();
    let (cdn, _) = Sender::h1(stream).await.get(&format!("/content/{digest}"), "127.0.0.1").await;
    assert_eq!(cdn.status(), 200);

    // Without the parent, nothing reaches upstream: the child reports the parent as the failure.
    parent.stop().await.unwrap();
    let other = registry.state.add_blob(vec![4u8; 10], "application/octet-stream");
    let (failed, _) =
        request(&child, &registry.host(), Method::GET, &format!("/v2/app/blobs/{other}"), &[]).await;
    assert_eq!(failed.status(), 502);
}

#[tokio::test]
async fn a_parent_that_refuses_is_reported_with_its_answer() {
    let registry = FakeRegistry::start().await;
    let parent = start_pantry(|c| c.live.intercept = Vec::new()).await; // port not allowed there
    let parent_url = format!("http://{}", parent.addr);
    let child = start_pantry(|c| {
        registry.configure(c);
        c.startup.upstream_proxy = Some(ParentProxy::parse(&parent_url).unwrap());
    })
    .await;
    let digest = registry.state.add_blob(vec![3u8; 50], "application/octet-stream");
    let (response, body) =
        request(&child, &registry.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!(response.status(), 502);
    let status = response.headers()["proxy-status"].to_str().unwrap().to_string();
    assert!(status.contains("parent proxy refused"), "{status}");
    assert!(String::from_utf8_lossy(&body.unwrap()).contains("403"));
}

#[tokio::test]
async fn per_destination_rules_pick_the_parent_or_a_direct_connection() {
    let registry = FakeRegistry::start().await;
    let port = registry.addr.port();
    let mut parent = start_pantry(|c| {
        c.live.intercept = Vec::new();
        common::reach_loopback(c, &[port]);
        c.live.shutdown_grace = std::time::Duration::from_millis(100); // the child's pooled tunnels stay open
    })
    .await;
    let parent_url = format!("http://{}", parent.addr);
    let dead_parent = "http://127.0.0.1:9".to_string(); // nothing listens on the discard port
    let child = start_pantry(|c| {
        registry.configure(c);
        c.startup.upstream_proxy = Some(ParentProxy::parse(&dead_parent).unwrap());
        common::reach_loopback(c, &[registry.cdn.port()]);
        c.startup.upstream_proxy_for = vec![
            ParentRule::parse(&format!("registry.test:{port}={parent_url}")).unwrap(),
            ParentRule::parse("cdn.test=direct").unwrap(),
        ];
    })
    .await;
    let digest = registry.state.add_blob(vec![3u8; 5000], "application/octet-stream");
    let (response, body) =
        request(&child, &registry.host(), Method::GET, &format!("/v2/app/blobs/{digest}"), &[]).await;
    assert_eq!((response.status().as_u16(), body.unwrap().len()), (200, 5000), "through the rule's parent");

    registry.state.redirect.store(true, std::sync::atomic::Ordering::SeqCst);
    let other = registry.state.add_blob(vec![4u8; 700], "application/octet-stream");
    let (redirected, body) =
        request(&child, &registry.host(), Method::GET, &format!("/v2/app/blobs/{other}"), &[]).await;
    assert_eq!((redirected.status().as_u16(), body.unwrap().len()), (200, 700), "the CDN directly");

    let (stream, head) = connect(child.addr, &format!("127.0.0.1:{}", registry.cdn.port()), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 502"), "other destinations take the (dead) default parent: {head}");
    drop(stream);

    // The registry's rule named the live parent: without it, the registry is out of reach.
    parent.stop().await.unwrap();
    registry.state.redirect.store(false, std::sync::atomic::Ordering::SeqCst);
    let last = registry.state.add_blob(vec![5u8; 10], "application/octet-stream");
    let (failed, _) =
        request(&child, &registry.host(), Method::GET, &format!("/v2/app/blobs/{last}"), &[]).await;
    assert_eq!(failed.status(), 502);
}
