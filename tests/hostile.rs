//! Hostile clients are bounded and pantry stays healthy: slowloris and idle connections are closed
//! after `client_header_timeout` (10,000 idle ones in bounded memory), oversized header lines and
//! header floods are refused, pipelined requests are answered in order, h2 rapid resets end the
//! connection, and `max_connections` caps how many clients are served at once. Each test records
//! its row of docs/RELIABILITY.md.

mod common;

use std::time::{Duration, Instant};

use common::{
    reliability::{record, Outcome},
    start_pantry, Sender, TestPantry,
};
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
    c.live.client_header_timeout = Duration::from_millis(400);
}

#[tokio::test]
async fn slowloris_and_idle_clients_are_closed() {
    let pantry = start_pantry(short_header_timeout).await;
    let started = Instant::now();
    let idle = TcpStream::connect(pantry.addr).await.unwrap();
    let (slow_reader, mut slow) = TcpStream::connect(pantry.addr).await.unwrap().into_split();
    // when each connection ends, seen from its reading side (pantry closing it)
    let closed_after = |mut reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>| {
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut sink)).await;
            started.elapsed()
        })
    };
    let idle_closed = closed_after(Box::new(idle));
    let slow_closed = closed_after(Box::new(slow_reader));
    let dripping = async {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: pantry\r\n".iter().cycle().take(200) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), dripping).await.expect("the dribbling client is cut off");
    let timeout = Duration::from_millis(400);
    for (which, closed) in [("idle", idle_closed.await.unwrap()), ("dribbling", slow_closed.await.unwrap())] {
        assert!(
            closed >= timeout,
            "the {which} connection was closed before client_header_timeout: {closed:?}"
        );
        assert!(closed < Duration::from_secs(10), "the {which} connection was not closed: {closed:?}");
    }
    assert!(healthy(&pantry).await);
    record(Outcome {
        area: "client",
        fault: "slowloris (a header byte every 50 ms) and an idle connection",
        client:
            "both closed once client_header_timeout (here 400 ms) ran out, neither before it, within 10 s"
                .into(),
        stored: "nothing".into(),
        after: "pantry answered the next client".into(),
        lost: Vec::new(),
    });
}

#[tokio::test]
async fn oversized_headers_and_header_floods_are_refused() {
    let pantry = start_pantry(|_| {}).await;
    let long_line =
        format!("GET /healthz HTTP/1.1\r\nHost: p\r\nX-Long: {}\r\n\r\n", "a".repeat(2 * 1024 * 1024));
    let flood: String = (0..5000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let flood = format!("GET /healthz HTTP/1.1\r\nHost: p\r\n{flood}\r\n");
    for (fault, request) in [("a 2 MiB header line", long_line), ("a flood of 5,000 headers", flood)] {
        let mut stream = TcpStream::connect(pantry.addr).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let (answer, _) = until_closed(&mut stream).await;
        let client = match answer.lines().next() {
            None => "the connection closed unanswered".to_string(),
            Some(line) => format!("{line}, then the connection closed"),
        };
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "refused: {client}");
        let after = if healthy(&pantry).await { "pantry answered the next client" } else { "" };
        let lost = if after.is_empty() { vec!["pantry stopped answering".into()] } else { Vec::new() };
        record(Outcome {
            area: "client",
            fault,
            client,
            stored: "nothing".into(),
            after: after.into(),
            lost,
        });
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let pantry = start_pantry(|_| {}).await;
    let mut stream = TcpStream::connect(pantry.addr).await.unwrap();
    let mut requests = b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n".repeat(500);
    requests.extend_from_slice(b"GET /nothing-here HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
    stream.write_all(&requests).await.unwrap();
    let (answers, _) = until_closed(&mut stream).await;
    let answered = answers.matches("HTTP/1.1 200").count();
    assert_eq!(answered, 500);
    let last_is_404 = answers.trim_end().ends_with("/ca.pem, /healthz, /metrics");
    assert!(last_is_404, "the last answer is the 404 page");
    record(Outcome {
        area: "client",
        fault: "501 pipelined requests in one write",
        client: format!(
            "{answered} answers then {}, in order, then the connection closed as asked",
            if last_is_404 { "the 404" } else { "no 404" }
        ),
        stored: "nothing".into(),
        after: "the connection was served like any other".into(),
        lost: Vec::new(),
    });
}

#[tokio::test]
async fn max_connections_caps_the_clients_served_at_once() {
    let pantry = start_pantry(|c| c.startup.max_connections = 8).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(pantry.addr).await.unwrap());
    }
    let ninth = tokio::time::timeout(Duration::from_millis(500), healthy(&pantry)).await;
    assert!(ninth.is_err(), "a ninth client waits while eight are connected");
    drop(held.pop());
    let served = tokio::time::timeout(Duration::from_secs(5), healthy(&pantry)).await;
    assert_eq!(served, Ok(true), "served once a connection closes");
    record(Outcome {
        area: "client",
        fault: "more clients than max_connections (9 for 8)",
        client: "the ninth waited, unanswered, until one of the eight closed; then it was served".into(),
        stored: "nothing".into(),
        after: "pantry stayed healthy".into(),
        lost: Vec::new(),
    });
}

/// A process's resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The value of `pantry_active_connections` on pantry's /metrics at `addr`.
async fn active_connections(addr: std::net::SocketAddr) -> usize {
    let metrics = common::plain_get(addr, "/metrics").await;
    let line = metrics.lines().find(|l| l.starts_with("pantry_active_connections ")).unwrap_or_default();
    line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as usize
}

/// Waits (up to 60 s) until `pantry_active_connections` satisfies `done`.
async fn until_active(addr: std::net::SocketAddr, done: impl Fn(usize) -> bool) {
    let wait = async {
        while !done(active_connections(addr).await) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("the connection count settles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_take_bounded_memory_and_are_closed() {
    const IDLE: usize = 10_000;
    const BOUND_KIB: u64 = 48; // per idle connection, at the peak
    const TIMEOUT: Duration = Duration::from_secs(15);
    const CLOSED_WITHIN: Duration = Duration::from_secs(40);
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(limit as usize > IDLE + 200, "the test needs {IDLE} descriptors; the open-file limit is {limit}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pantry.toml");
    // The header timeout is long enough that the first connections outlive the opening of the
    // last, even on a loaded machine.
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nmax_connections = 12000\nclient_header_timeout = \"{}s\"\n\
         cache_dir = {:?}\ncerts_dir = {:?}\n",
        TIMEOUT.as_secs(),
        dir.path().join("cache"),
        dir.path().join("certs")
    );
    std::fs::write(&config, toml).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pantry"));
    command.arg("--config").arg(&config);
    let (mut child, addr) = common::spawn_listening(command);
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert!(common::plain_get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    let before = rss_kib(child.id());

    let opened = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    until_active(addr, |n| n > IDLE).await;
    let peak = rss_kib(child.id());
    let served = common::plain_get(addr, "/healthz").await.starts_with("HTTP/1.1 200");
    let per_connection = peak.saturating_sub(before) / IDLE as u64;
    eprintln!("RSS {before} KiB before, {peak} KiB with {IDLE} idle connections: {per_connection} KiB each");

    let closing = async {
        for stream in &mut idle {
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), closing).await.expect("pantry closes idle connections");
    let closed_after = opened.elapsed();
    assert!(closed_after < CLOSED_WITHIN, "idle connections lingered: {closed_after:?}");
    until_active(addr, |n| n <= 1).await;
    let after = rss_kib(child.id());
    eprintln!("all closed after {closed_after:?}; RSS {after} KiB");
    let _ = child.kill();
    let _ = child.wait();

    let mut lost = Vec::new();
    if per_connection > BOUND_KIB {
        lost.push(format!("{per_connection} KiB of memory per idle connection"));
    }
    if !served {
        lost.push("a client was refused while the idle connections were open".into());
    }
    // What was seen: none closed before the timeout, the last well within the test's bound.
    if closed_after < TIMEOUT {
        lost.push(format!(
            "idle connections were closed after {closed_after:?}, before the {TIMEOUT:?} timeout"
        ));
    }
    record(Outcome {
        area: "client",
        fault: "10,000 idle connections",
        client: format!(
            "none closed before client_header_timeout ({} s) ran out, all within {} s; a real client was served meanwhile",
            TIMEOUT.as_secs(),
            CLOSED_WITHIN.as_secs()
        ),
        stored: "nothing".into(),
        after: format!(
            "resident memory stayed under {BOUND_KIB} KiB per idle connection (measured from /proc)"
        ),
        lost,
    });
}

/// How a rapid-reset connection went: streams opened before pantry ended the connection, whether
/// it ended within 10 s of the last, and whether the client was told by a GOAWAY from pantry.
struct Reset {
    opened: usize,
    ended: bool,
    goaway: bool,
}

/// Opens up to `streams` h2 streams for `path` on one intercepted connection and cancels each,
/// `pause` after sending it (none: in the same write).
async fn rapid_reset(pantry: &TestPantry, host: &str, path: &str, streams: usize, pause: Duration) -> Reset {
    let stream = common::intercepted(pantry, host, &[b"h2"]).await;
    let (mut client, connection) = h2::client::handshake(stream).await.unwrap();
    let connection = tokio::spawn(connection);
    let (mut opened, mut refusal) = (0, None);
    while opened < streams {
        let mut ready = match client.ready().await {
            Ok(ready) => ready,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        };
        let request = http::Request::get(format!("https://{host}{path}")).body(()).unwrap();
        let mut send = match ready.send_request(request, false) {
            Ok((_, send)) => send,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        };
        tokio::task::yield_now().await; // lets the connection task put the frames on the wire
        tokio::time::sleep(pause).await;
        send.send_reset(h2::Reason::CANCEL);
        opened += 1;
        client = ready;
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    let ended_by = match &ended {
        Ok(Ok(Err(e))) => Some(e),
        _ => None,
    };
    let goaway = refusal.iter().chain(ended_by).any(|e| e.is_go_away() && e.is_remote());
    Reset { opened, ended: ended.is_ok(), goaway }
}

/// Runs [`rapid_reset`] against a fresh pantry and records its row from what was observed.
async fn rapid_reset_row(fault: &str, pause: Duration) {
    const STREAMS: usize = 10_000;
    let registry = common::registry::FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let digest = registry.state.add_blob(vec![9u8; 100_000], "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    let reset = rapid_reset(&pantry, &registry.host(), &path, STREAMS, pause).await;
    let fetched = registry.state.count("GET blob");
    eprintln!(
        "{fault}: {} streams opened and reset; ended: {}; GOAWAY from pantry: {}; {fetched} upstream GETs",
        reset.opened, reset.ended, reset.goaway
    );
    let mut lost = Vec::new();
    if reset.opened == STREAMS || !reset.ended {
        lost.push(format!("pantry took all {STREAMS} cancelled streams"));
    }
    if fetched > reset.opened / 10 {
        lost.push(format!("{fetched} upstream fetches for {} cancelled requests", reset.opened));
    }
    if !healthy(&pantry).await {
        lost.push("pantry stopped answering".into());
    }
    // The row says only what this run saw, in words that do not change from run to run.
    let how =
        if reset.goaway { "pantry sent GOAWAY" } else { "pantry closed the connection (no GOAWAY seen)" };
    let when = if reset.opened <= STREAMS / 10 {
        format!("within the first tenth of {STREAMS} streams")
    } else {
        format!("before {STREAMS} streams")
    };
    record(Outcome {
        area: "client",
        fault,
        client: format!("{how} {when}"),
        stored: "nothing".into(),
        after: "upstream fetches stayed under a tenth of the streams; pantry answered the next client".into(),
        lost,
    });
}

#[tokio::test]
async fn h2_rapid_reset_in_bursts_ends_the_connection() {
    rapid_reset_row("h2 rapid reset, streams cancelled in the same write", Duration::ZERO).await;
}

#[tokio::test]
async fn h2_rapid_reset_after_each_request_is_taken_up_ends_the_connection() {
    rapid_reset_row("h2 rapid reset, each stream cancelled 2 ms after it was sent", Duration::from_millis(2))
        .await;
}

/// A client that keeps one connection busy with many small cached answers (HTTP/1.1 keep-alive
/// and h2) is served to the end: finished answers are never taken for cancelled ones.
#[tokio::test]
async fn a_busy_keep_alive_connection_is_served_to_the_end() {
    const REQUESTS: usize = 3 * pantry::connection::cancels::FLOOR;
    let registry = common::registry::FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let host = registry.host();
    let digest = registry.state.add_blob(vec![7u8; 10_000], "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let stream = common::intercepted(&pantry, &host, &[alpn]).await;
        let mut sender = if alpn == b"h2" { Sender::h2(stream).await } else { Sender::h1(stream).await };
        for i in 0..REQUESTS {
            let (response, body) = sender.get(&path, &host).await;
            assert_eq!((response.status().as_u16(), body.len()), (200, 10_000), "request {i} over {alpn:?}");
        }
    }
    assert_eq!(registry.state.count("GET blob"), 1);
}
