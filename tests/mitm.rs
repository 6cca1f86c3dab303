//! TLS interception: the client sees a leaf for the exact host from pantry's CA, requests reach
//! the upstream over pantry's own TLS, leaves are minted once per host.

mod common;

use std::sync::Arc;

use common::{connect, intercepted, start_pantry, tls, upstream::FakeUpstream, Sender, TestPantry};
use x509_parser::prelude::*;

/// pantry intercepting registry.test:PORT, resolved to the fake upstream and trusting its CA.
async fn intercepting(upstream: &FakeUpstream, trust_upstream: bool) -> TestPantry {
    let port = upstream.port();
    let ca = upstream.ca.ca_file.clone();
    start_pantry(move |c| {
        c.live.intercept =
            vec![pantry::config::HostPattern::parse(&format!("registry.test:{port}")).unwrap()];
        c.startup.resolve =
            vec![pantry::config::ResolveRule::parse(&format!("registry.test:{port}:127.0.0.1")).unwrap()];
        if trust_upstream {
            c.startup.upstream_ca = vec![ca];
        }
    })
    .await
}

#[tokio::test]
async fn intercepted_round_trip_with_exact_host_leaf() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let pantry = intercepting(&upstream, true).await;
    let target = format!("registry.test:{}", upstream.port());
    let stream = intercepted(&pantry, &target, &[b"http/1.1"]).await;

    let (_, session) = stream.get_ref();
    let chain = session.peer_certificates().unwrap();
    assert_eq!(chain.len(), 1, "pantry presents only the leaf");
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san.value.general_names.iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["DNSName(registry.test)"]);
    assert!(!leaf.is_ca());
    let validity = leaf.validity();
    assert!(validity.not_after.timestamp() - validity.not_before.timestamp() <= 31 * 86400);

    let mut sender = Sender::h1(stream).await;
    let (response, body) = sender.get("/echo", &target).await;
    assert_eq!(response.status(), 200);
    let body = String::from_utf8_lossy(&body);
    assert!(body.starts_with(&format!("GET https://{target}/echo")), "{body}");
    assert_eq!(response.headers()["x-origin"], "fake");
    assert!(response.headers().get("x-hop").is_none(), "hop-by-hop header leaked");
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=uri-miss; detail=not-storable");
    // The upstream speaks h2 to pantry when it can, whatever the client spoke.
    assert_eq!(upstream.observed.versions.lock().unwrap().as_slice(), [http::Version::HTTP_2]);
}

#[tokio::test]
async fn concurrent_first_connects_mint_one_leaf() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let pantry = Arc::new(intercepting(&upstream, true).await);
    let target = format!("registry.test:{}", upstream.port());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (pantry, target) = (Arc::clone(&pantry), target.clone());
        tasks.push(tokio::spawn(async move {
            let stream = intercepted(&pantry, &target, &[b"http/1.1"]).await;
            Sender::h1(stream).await.get("/echo", &target).await.0.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(pantry.pantry.authority().minted(), 1);
}

#[tokio::test]
async fn h2_inside_an_intercepted_tunnel() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let pantry = intercepting(&upstream, true).await;
    let target = format!("registry.test:{}", upstream.port());
    let stream = intercepted(&pantry, &target, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut sender = Sender::h2(stream).await;
    let uri = format!("https://{target}/echo");
    let (response, body) = sender.get(&uri, &target).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert!(String::from_utf8_lossy(&body).starts_with(&format!("GET {uri}")));
    let (second, _) = sender.get(&uri, &target).await;
    assert_eq!(second.status(), 200, "streams multiplex on one connection");
}

#[tokio::test]
async fn untrusted_upstream_certificate_is_502_with_proxy_status() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let pantry = intercepting(&upstream, false).await;
    let target = format!("registry.test:{}", upstream.port());
    let stream = intercepted(&pantry, &target, &[b"http/1.1"]).await;
    let (response, _) = Sender::h1(stream).await.get("/echo", &target).await;
    assert_eq!(response.status(), 502);
    let status = response.headers()["proxy-status"].to_str().unwrap();
    assert!(status.starts_with("pantry;error=tls_certificate_error"), "{status}");
    assert_eq!(upstream.observed.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn client_that_does_not_trust_pantry_fails_tls() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let pantry = intercepting(&upstream, true).await;
    let target = format!("registry.test:{}", upstream.port());
    let (stream, head) = connect(pantry.addr, &target, "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"));
    let upstream_roots = common::roots_from_pem(&upstream.ca.ca_pem);
    let error = tls(stream, "registry.test", upstream_roots, &[b"http/1.1"]).await.unwrap_err();
    assert!(error.to_string().contains("invalid peer certificate"), "{error}");
}

#[tokio::test]
async fn sni_for_another_host_is_refused() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let pantry = intercepting(&upstream, true).await;
    let target = format!("registry.test:{}", upstream.port());
    let (stream, _) = connect(pantry.addr, &target, "HTTP/1.1").await;
    assert!(tls(stream, "other.test", pantry.roots(), &[b"http/1.1"]).await.is_err());
    assert_eq!(pantry.pantry.authority().minted(), 0);
}
