//! Attacks on pantry's connection slots: clients that connect and then say nothing — before the
//! ClientHello of an intercepted CONNECT, after the TLS handshake before the first request
//! (HTTP/1.1 and h2), after the h2 preface, on the mirror port, on the admin port — hold every one
//! of a small `max_connections` and must be sent away within `client_header_timeout`, so that the
//! next client is served.
//! (docs/SECURITY.md lists each attack and what defends it.)

mod common;

use std::time::{Duration, Instant};

use common::{connect, intercepted, registry::FakeRegistry, start_pantry};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const LIMIT: Duration = Duration::from_millis(500);

/// Waits for the peer to close `stream`; how long that took (or `None` after 10 s).
async fn closed_within<S: AsyncRead + Unpin>(mut stream: S, since: Instant) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a GOAWAY, an alert: wait for the close itself
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.ok().map(|()| since.elapsed())
}

#[tokio::test]
async fn silent_holders_are_sent_away_and_the_next_client_is_served() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.max_connections = 6;
        c.live.client_header_timeout = LIMIT;
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let host = registry.host();
    let since = Instant::now();
    // 1. CONNECT to an intercepted host, then no ClientHello.
    let (no_hello, head) = connect(pantry.addr, &host, "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // 2. and 3. TLS done (HTTP/1.1, h2), then no request.
    let no_request_h1 = intercepted(&pantry, &host, &[b"http/1.1"]).await;
    let no_request_h2 = intercepted(&pantry, &host, &[b"h2"]).await;
    // 4. h2: the preface and nothing more.
    let mut preface_only = intercepted(&pantry, &host, &[b"h2"]).await;
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // 5. the mirror port and 6. the admin port, silent.
    let mirror_silent = TcpStream::connect(pantry.mirror.unwrap()).await.unwrap();
    let admin_silent = TcpStream::connect(pantry.admin.unwrap()).await.unwrap();

    // Every slot is taken: the next client waits until the silent ones are sent away.
    let next =
        tokio::time::timeout(Duration::from_secs(10), common::plain_get(pantry.addr, "/healthz")).await;
    assert!(
        next.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "the next client was served: {next:?}"
    );

    let bound = LIMIT * 6;
    let closes = [
        ("CONNECT without a ClientHello", closed_within(no_hello, since).await),
        ("TLS without a request (HTTP/1.1)", closed_within(no_request_h1, since).await),
        ("TLS without a request (h2)", closed_within(no_request_h2, since).await),
        ("h2 preface without a request", closed_within(preface_only, since).await),
        ("silent mirror connection", closed_within(mirror_silent, since).await),
        ("silent admin connection", closed_within(admin_silent, since).await),
    ];
    for (holder, closed) in closes {
        assert!(closed.is_some_and(|d| d < bound), "{holder}: closed after {closed:?} (limit {LIMIT:?})");
    }
}

#[tokio::test]
async fn a_long_transfer_is_not_idle() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.client_header_timeout = LIMIT;
    })
    .await;
    let host = registry.host();
    let digest = registry.state.add_blob(vec![9u8; 64 * 1024 * 1024], "application/octet-stream");
    let stream = intercepted(&pantry, &host, &[b"h2"]).await;
    let mut sender = common::Sender::h2(stream).await;
    let request = http::Request::get(format!("https://{host}/v2/app/blobs/{digest}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send(request).await;
    assert_eq!(response.status(), 200);
    // Read slowly: the transfer outlasts the idle limit several times over.
    let mut body = response.into_body();
    let (mut read, started) = (0usize, Instant::now());
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        read += frame.unwrap().into_data().map(|d| d.len()).unwrap_or(0);
        if started.elapsed() < LIMIT * 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(read, 64 * 1024 * 1024, "the whole body arrived");
    assert!(started.elapsed() > LIMIT * 2, "the transfer outlasted the idle limit");
}
