//! Hostile clients are bounded and pantry stays healthy: slowloris and idle connections are closed
//! after `client_header_timeout`, oversized header lines and header floods are refused, pipelined
//! requests are answered in order, and `max_connections` caps how many clients are served at once.

mod common;

use std::time::{Duration, Instant};

use common::{start_pantry, TestPantry};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn healthy(pantry: &TestPantry) -> bool {
    let Ok(mut stream) = TcpStream::connect(pantry.addr).await else { return false };
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n").await;
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text).await;
    text.starts_with("HTTP/1.1 200")
}

/// Reads until the peer closes (or 10 s pass); what it sent.
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut text)).await;
    (String::from_utf8_lossy(&text).into_owned(), started.elapsed())
}

fn short_header_timeout(c: &mut pantry::config::Config) {
    c.client_header_timeout = Duration::from_millis(400);
}

#[tokio::test]
async fn slowloris_and_idle_clients_are_closed() {
    let pantry = start_pantry(short_header_timeout).await;
    let mut idle = TcpStream::connect(pantry.addr).await.unwrap();
    let mut slow = TcpStream::connect(pantry.addr).await.unwrap();
    let dripping = async {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: pantry\r\n".iter().cycle().take(200) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), dripping).await.expect("the dribbling client is cut off");
    let (_, waited) = until_closed(&mut idle).await;
    assert!(waited < Duration::from_secs(5), "an idle connection is closed: {waited:?}");
    assert!(healthy(&pantry).await);
}

#[tokio::test]
async fn oversized_headers_and_header_floods_are_refused() {
    let pantry = start_pantry(|_| {}).await;
    let long_line =
        format!("GET /healthz HTTP/1.1\r\nHost: p\r\nX-Long: {}\r\n\r\n", "a".repeat(2 * 1024 * 1024));
    let flood: String = (0..5000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let flood = format!("GET /healthz HTTP/1.1\r\nHost: p\r\n{flood}\r\n");
    for request in [long_line, flood] {
        let mut stream = TcpStream::connect(pantry.addr).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let (answer, _) = until_closed(&mut stream).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "refused: {}",
            &answer[..answer.len().min(80)]
        );
    }
    assert!(healthy(&pantry).await);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let pantry = start_pantry(|_| {}).await;
    let mut stream = TcpStream::connect(pantry.addr).await.unwrap();
    let mut requests = b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n".repeat(500);
    requests.extend_from_slice(b"GET /nothing-here HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
    stream.write_all(&requests).await.unwrap();
    let (answers, _) = until_closed(&mut stream).await;
    assert_eq!(answers.matches("HTTP/1.1 200").count(), 500);
    assert!(answers.trim_end().ends_with("/ca.pem, /healthz, /metrics"), "the last answer is the 404 page");
}

#[tokio::test]
async fn max_connections_caps_the_clients_served_at_once() {
    let pantry = start_pantry(|c| c.max_connections = 8).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(pantry.addr).await.unwrap());
    }
    let ninth = tokio::time::timeout(Duration::from_millis(500), healthy(&pantry)).await;
    assert!(ninth.is_err(), "a ninth client waits while eight are connected");
    drop(held.pop());
    let served = tokio::time::timeout(Duration::from_secs(5), healthy(&pantry)).await;
    assert_eq!(served, Ok(true), "served once a connection closes");
}
