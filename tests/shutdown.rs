//! Graceful shutdown: no new connections after the signal, in-flight transfers finish, and those
//! still running after the grace period are aborted.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{start_pantry, upstream::FakeUpstream};
use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

async fn gated_response(proxy: std::net::SocketAddr, port: u16) -> hyper::body::Incoming {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let uri = format!("http://127.0.0.1:{port}/gated");
    let request = Request::get(uri).body(http_body_util::Empty::<Bytes>::new()).unwrap();
    let mut body = sender.send_request(request).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first chunk\n");
    body
}

#[tokio::test]
async fn in_flight_transfer_finishes_after_the_signal() {
    let upstream = FakeUpstream::start("127.0.0.1:0", false).await;
    let mut pantry = start_pantry(|c| {
        c.live.shutdown_grace = Duration::from_secs(30);
        common::reach_loopback(c, &[upstream.port()]);
    })
    .await;
    let body = gated_response(pantry.addr, upstream.port()).await;
    let addr = pantry.addr;
    let serving = pantry.stop();
    let refused = async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused).await.expect("no new connections once draining");
    assert!(!serving.is_finished(), "waits for the in-flight transfer");
    upstream.observed.gate.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "rest\n");
    tokio::time::timeout(Duration::from_secs(10), serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn transfers_still_running_after_the_grace_period_are_aborted() {
    let upstream = FakeUpstream::start("127.0.0.1:0", false).await;
    let mut pantry = start_pantry(|c| {
        c.live.shutdown_grace = Duration::from_millis(200);
        common::reach_loopback(c, &[upstream.port()]);
    })
    .await;
    let body = gated_response(pantry.addr, upstream.port()).await;
    tokio::time::timeout(Duration::from_secs(10), pantry.stop()).await.unwrap().unwrap();
    assert!(body.collect().await.is_err(), "an aborted transfer ends with an error, not a clean end");
}

#[tokio::test]
async fn a_fetch_its_client_left_is_stored_before_the_drain_ends() {
    use common::{intercepted, registry::FakeRegistry, Sender};
    use std::sync::atomic::Ordering;
    let registry = FakeRegistry::start().await;
    let mut pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.finish_abandoned_fetches = true;
        c.live.shutdown_grace = Duration::from_secs(30);
    })
    .await;
    let digest = registry.state.add_blob(vec![7u8; 4 * 1024 * 1024], "application/octet-stream");
    registry.state.gated.store(true, Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/app/blobs/{digest}"));
    let mut sender = Sender::h1(intercepted(&pantry, &host, &[b"http/1.1"]).await).await;
    let request =
        Request::get(&path).header("host", &host).body(http_body_util::Full::new(Bytes::new())).unwrap();
    let mut body = sender.send(request).await.into_body();
    body.frame().await.unwrap().unwrap();
    drop((body, sender)); // the only client leaves; the fetch runs on
    let serving = pantry.stop();
    let early = tokio::time::timeout(Duration::from_millis(300), &mut *serving).await;
    assert!(early.is_err(), "the drain waits for the fetch its client left");
    registry.state.gate.notify_one();
    tokio::time::timeout(Duration::from_secs(10), serving).await.unwrap().unwrap();
    let stored = pantry.pantry.proxy().store().lookup(&digest.parse().unwrap()).await.unwrap();
    assert!(stored.is_some(), "the fetch finished and was stored before pantry stopped");
}
