//! Absolute-form plain HTTP: forwarded with hop-by-hop headers stripped, bodies streamed both ways.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{start_pantry, upstream::FakeUpstream};
use futures_util::StreamExt;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type StreamedBody =
    StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>>>;

async fn proxy_sender<B>(proxy: std::net::SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn absolute_form_is_forwarded_without_hop_by_hop_headers() {
    let upstream = FakeUpstream::start("127.0.0.1:0", false).await;
    let pantry = start_pantry(|c| common::reach_loopback(c, &[upstream.port()])).await;
    let mut sender = proxy_sender(pantry.addr).await;
    let uri = format!("http://127.0.0.1:{}/echo?x=1", upstream.port());
    let request = Request::get(&uri)
        .header("host", format!("127.0.0.1:{}", upstream.port()))
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("connection", "keep-alive, x-client-hop")
        .header("x-client-hop", "private")
        .header("x-end-to-end", "kept")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-hop").is_none());
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=uri-miss; detail=not-storable");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert!(echo.starts_with("get /echo?x=1"), "{echo}");
    assert!(echo.contains("x-end-to-end: kept"), "{echo}");
    for leaked in ["proxy-authorization", "x-client-hop", "keep-alive"] {
        assert!(!echo.contains(leaked), "{leaked} reached the upstream: {echo}");
    }
}

#[tokio::test]
async fn response_bodies_stream_before_the_upstream_finishes() {
    let upstream = FakeUpstream::start("127.0.0.1:0", false).await;
    let pantry = start_pantry(|c| common::reach_loopback(c, &[upstream.port()])).await;
    let mut sender = proxy_sender(pantry.addr).await;
    let uri = format!("http://127.0.0.1:{}/gated", upstream.port());
    let request = Request::get(&uri).body(http_body_util::Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first chunk\n", "first bytes arrive while upstream is held");
    upstream.observed.gate.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "rest\n");
}

#[tokio::test]
async fn request_bodies_stream_before_the_client_finishes() {
    let upstream = FakeUpstream::start("127.0.0.1:0", false).await;
    let pantry = start_pantry(|c| common::reach_loopback(c, &[upstream.port()])).await;
    let mut sender = proxy_sender::<StreamedBody>(pantry.addr).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let uri = format!("http://127.0.0.1:{}/upload", upstream.port());
    let request = Request::post(&uri).body(StreamBody::new(stream.boxed())).unwrap();
    let response = tokio::spawn(async move { sender.send_request(request).await });
    tx.send(Ok(Frame::data(Bytes::from(vec![7u8; 1000])))).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), upstream.observed.upload_started.notified())
        .await
        .expect("upstream saw the first upload bytes while the client was still sending");
    tx.send(Ok(Frame::data(Bytes::from(vec![7u8; 24])))).await.unwrap();
    drop(tx);
    let response = response.await.unwrap().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "received 1024");
}

#[tokio::test]
async fn large_body_passes_through_intact() {
    const LEN: u64 = 256 * 1024 * 1024;
    let upstream = FakeUpstream::start("127.0.0.1:0", false).await;
    let pantry = start_pantry(|c| common::reach_loopback(c, &[upstream.port()])).await;
    let mut sender = proxy_sender(pantry.addr).await;
    let uri = format!("http://127.0.0.1:{}/bytes/{LEN}", upstream.port());
    let request = Request::get(&uri).body(http_body_util::Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.headers()["content-length"], LEN.to_string().as_str());
    let mut body = response.into_body();
    let (mut total, mut mismatches) = (0u64, 0u64);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            for (i, byte) in data.iter().enumerate() {
                let offset = total + i as u64;
                mismatches += u64::from(*byte != ((offset % (64 * 1024)) % 251) as u8);
            }
            total += data.len() as u64;
        }
    }
    assert_eq!((total, mismatches), (LEN, 0));
}

#[tokio::test]
async fn admin_pages_and_unknown_origin_form() {
    let pantry = start_pantry(|_| {}).await;
    let mut sender = proxy_sender(pantry.addr).await;
    let get = |path: &str| {
        Request::get(path).header("host", "pantry").body(http_body_util::Empty::<Bytes>::new()).unwrap()
    };
    let ca = sender.send_request(get("/ca.pem")).await.unwrap();
    assert_eq!(ca.status(), 200);
    let pem = ca.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(pem, pantry.pantry.authority().ca_pem().as_bytes());
    assert!(!String::from_utf8_lossy(&pem).contains("PRIVATE KEY"));
    let health = sender.send_request(get("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let _ = health.into_body().collect().await;
    let missing = sender.send_request(get("/ca.key")).await.unwrap();
    assert_eq!(missing.status(), 404);
}

/// An upstream whose first `closes` connections end once a request arrives, unanswered (a server
/// closing a kept-alive connection as a request goes out); later ones answer 200 "ok". Returns
/// its port and the number of requests it saw.
async fn closing_upstream(closes: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{atomic::Ordering, Arc};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if counted.fetch_add(1, Ordering::SeqCst) < closes {
                continue; // dropped: closed without an answer
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncache-control: no-store\r\n\r\nok")
                .await;
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_get_the_upstream_closed_on_unanswered_is_sent_once_more_a_post_is_not() {
    use std::sync::atomic::Ordering;
    let (port, seen) = closing_upstream(1).await;
    let pantry = start_pantry(|c| common::reach_loopback(c, &[port])).await;
    let mut sender = proxy_sender(pantry.addr).await;
    let get = Request::get(format!("http://127.0.0.1:{port}/x"))
        .header("host", format!("127.0.0.1:{port}"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(get).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "sent twice: once closed on, once answered");

    let (port, seen) = closing_upstream(1).await;
    let pantry = start_pantry(|c| common::reach_loopback(c, &[port])).await;
    let mut sender = proxy_sender(pantry.addr).await;
    let post = Request::post(format!("http://127.0.0.1:{port}/x"))
        .header("host", format!("127.0.0.1:{port}"))
        .body(http_body_util::Full::new(Bytes::from_static(b"data")))
        .unwrap();
    let response = sender.send_request(post).await.unwrap();
    assert_eq!(response.status(), 502, "a request with a body may have been processed: not sent again");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// An h2 upstream (TLS, ALPN h2) whose first connection sends GOAWAY (NO_ERROR, last stream 0)
/// before it takes any stream, as a server ending a kept-alive connection does; later connections
/// answer 200 "ok". Returns its port and how many connections it accepted.
async fn going_away_h2_upstream(
    ca: &common::upstream::TestCa,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{atomic::Ordering, Arc};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut connection) = h2::server::handshake(tls).await else { return };
                if first {
                    connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                    while connection.accept().await.is_some() {}
                    return;
                }
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    let response = http::Response::builder().status(200).header("cache-control", "no-store");
                    let mut send = respond.send_response(response.body(()).unwrap(), false).unwrap();
                    let _ = send.send_data(Bytes::from_static(b"ok"), true);
                }
            });
        }
    });
    (port, connections)
}

#[tokio::test]
async fn a_get_refused_by_an_h2_goaway_is_sent_again_on_a_new_connection() {
    use std::sync::atomic::Ordering;
    let ca = common::upstream::TestCa::new();
    let (port, connections) = going_away_h2_upstream(&ca).await;
    let pantry = start_pantry(|c| {
        common::reach_loopback(c, &[port]);
        c.live.intercept =
            vec![pantry::config::HostPattern::parse(&format!("registry.test:{port}")).unwrap()];
        c.startup.resolve =
            vec![pantry::config::ResolveRule::parse(&format!("registry.test:{port}:127.0.0.1")).unwrap()];
        c.startup.upstream_ca = vec![ca.ca_file.clone()];
    })
    .await;
    let host = format!("registry.test:{port}");
    let stream = common::intercepted(&pantry, &host, &[b"http/1.1"]).await;
    let mut sender = common::Sender::h1(stream).await;
    let request = Request::get("/anything")
        .header("host", &host)
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send(request).await;
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
    assert_eq!(connections.load(Ordering::SeqCst), 2, "the refused request went again, on a new connection");
}
