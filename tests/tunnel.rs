//! Blind tunnels and CONNECT policy: round trip, HTTP/1.0, IPv6, port policy, malformed requests,
//! unresolvable hosts.

mod common;

use common::{
    connect, raw_request, reach_loopback, roots_from_pem, start_pantry, tls, upstream::FakeUpstream, Sender,
};
use tokio::net::TcpStream;

#[tokio::test]
async fn tunnel_round_trip_is_not_intercepted() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let port = upstream.port();
    let pantry = start_pantry(|c| reach_loopback(c, &[port])).await;
    let (stream, head) = connect(pantry.addr, &format!("127.0.0.1:{port}"), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The client trusts only the upstream's own CA: the handshake succeeds only if untouched.
    let stream = tls(stream, "127.0.0.1", roots_from_pem(&upstream.ca.ca_pem), &[b"http/1.1"]).await.unwrap();
    let mut sender = Sender::h1(stream).await;
    let (response, body) = sender.get("/echo", "127.0.0.1").await;
    assert_eq!(response.status(), 200);
    assert!(String::from_utf8_lossy(&body).starts_with("GET /echo"), "{body:?}");
    assert_eq!(response.headers()["x-hop"], "must not reach the client", "a tunnel changes nothing");
    assert_eq!(pantry.pantry.authority().minted(), 0);
}

#[tokio::test]
async fn http_1_0_connect_opens_a_tunnel() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let port = upstream.port();
    let pantry = start_pantry(|c| reach_loopback(c, &[port])).await;
    let (stream, head) = connect(pantry.addr, &format!("127.0.0.1:{port}"), "HTTP/1.0").await;
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200"), "{head}");
    let stream = tls(stream, "127.0.0.1", roots_from_pem(&upstream.ca.ca_pem), &[b"http/1.1"]).await.unwrap();
    let (response, _) = Sender::h1(stream).await.get("/echo", "127.0.0.1").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ipv6_literal_target() {
    let upstream = FakeUpstream::start("[::1]:0", true).await;
    let port = upstream.port();
    let pantry = start_pantry(|c| reach_loopback(c, &[port])).await;
    let (stream, head) = connect(pantry.addr, &format!("[::1]:{port}"), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stream = tls(stream, "::1", roots_from_pem(&upstream.ca.ca_pem), &[b"http/1.1"]).await.unwrap();
    let (response, _) = Sender::h1(stream).await.get("/echo", "[::1]").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn disallowed_port_is_refused_with_a_reason() {
    let pantry = start_pantry(|_| {}).await;
    let (_, head) = connect(pantry.addr, "127.0.0.1:22", "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(head.to_ascii_lowercase().contains("proxy-status: pantry;error=http_request_denied"), "{head}");
}

#[tokio::test]
async fn malformed_requests_get_400_and_others_are_still_served() {
    let pantry = start_pantry(|_| {}).await;
    let cases: [&[u8]; 4] = [
        b"\x16\x03\x01garbage that is not HTTP\r\n\r\n",
        b"CONNECT example.com HTTP/1.1\r\n\r\n",
        b"CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
        b"CONNECT bad_host!:443 HTTP/1.1\r\n\r\n",
    ];
    for case in cases {
        let mut stream = TcpStream::connect(pantry.addr).await.unwrap();
        let head = raw_request(&mut stream, case).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{:?} → {head}", String::from_utf8_lossy(case));
    }
    let mut stream = TcpStream::connect(pantry.addr).await.unwrap();
    let head = raw_request(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn unresolvable_host_is_502_with_proxy_status() {
    let pantry = start_pantry(|_| {}).await;
    for target in ["nonexistent.invalid:443", "ghcr.invalid:443"] {
        let (_, head) = connect(pantry.addr, target, "HTTP/1.1").await;
        assert!(head.starts_with("HTTP/1.1 502"), "{head}");
        assert!(head.to_ascii_lowercase().contains("proxy-status: pantry;error=dns_error"), "{head}");
    }
}

#[tokio::test]
async fn refused_upstream_is_502_with_proxy_status() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pantry = start_pantry(|c| reach_loopback(c, &[port])).await;
    let (_, head) = connect(pantry.addr, &format!("127.0.0.1:{port}"), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(head.contains("error=connection_refused"), "{head}");
}

#[tokio::test]
async fn a_tunnel_holds_its_connection_slot_until_it_closes() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let port = upstream.port();
    let pantry = start_pantry(|c| {
        reach_loopback(c, &[port]);
        c.startup.max_connections = 1;
    })
    .await;
    let (tunnel, head) = connect(pantry.addr, &format!("127.0.0.1:{port}"), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut waiting = TcpStream::connect(pantry.addr).await.unwrap();
    let health =
        tokio::spawn(
            async move { raw_request(&mut waiting, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await },
        );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!health.is_finished(), "a second client waits while the tunnel uses the only slot");
    drop(tunnel);
    let head = tokio::time::timeout(std::time::Duration::from_secs(10), health).await.unwrap().unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn a_bypassed_destination_is_tunnelled_even_when_it_would_be_intercepted() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let port = upstream.port();
    let pantry = start_pantry(|c| {
        c.live.intercept =
            vec![pantry::config::HostPattern::parse(&format!("registry.test:{port}")).unwrap()];
        c.startup.resolve =
            vec![pantry::config::ResolveRule::parse(&format!("registry.test:{port}:127.0.0.1")).unwrap()];
        c.live.bypass = vec![pantry::config::Destination::parse("test").unwrap()];
        // `test` and all under it
    })
    .await;
    let (stream, head) = connect(pantry.addr, &format!("registry.test:{port}"), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stream =
        tls(stream, "registry.test", roots_from_pem(&upstream.ca.ca_pem), &[b"http/1.1"]).await.unwrap();
    let (response, _) = Sender::h1(stream).await.get("/echo", "registry.test").await;
    assert_eq!(response.headers()["x-hop"], "must not reach the client", "tunnelled untouched");
    assert_eq!(pantry.pantry.authority().minted(), 0, "no leaf minted for a bypassed host");
}
