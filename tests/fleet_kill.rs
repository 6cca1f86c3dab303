//! A fleet of three pantry processes, one of which is killed with SIGKILL while it streams a blob
//! to another: the other node's client sees a broken transfer, never a clean wrong body, and the
//! next pull through a survivor works with at most one more origin fetch.

mod common;

use std::{
    process::{Child, Command},
    sync::atomic::Ordering,
    time::Duration,
};

use bytes::Bytes;
use common::{
    registry::{sha256, FakeRegistry},
    roots_from_pem, Sender,
};
use http::Request;
use http_body_util::{BodyExt, Full};

/// A port free now (the processes bind it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Node {
    child: Child,
    proxy: std::net::SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(
    registry: &FakeRegistry,
    certs: &std::path::Path,
    cache: &std::path::Path,
    fleet: u16,
    peers: &str,
) -> Node {
    let port = registry.addr.port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pantry"));
    command
        .args(["--listen", "127.0.0.1:0", "--intercept", &format!("registry.test:{port}")])
        .args(["--resolve", &format!("registry.test:{port}:127.0.0.1")])
        .args(["--fleet-listen", &format!("127.0.0.1:{fleet}"), "--peers", peers])
        .arg("--upstream-ca")
        .arg(&registry.ca.ca_file)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--certs-dir")
        .arg(certs);
    let (child, addr) = common::spawn_listening(command);
    Node { child, proxy: addr.parse().unwrap() }
}

/// A GET through `node` for `path` of the registry; the response with its body still streaming.
async fn open(node: &Node, host: &str, ca: &str, path: &str) -> http::Response<hyper::body::Incoming> {
    let (stream, head) = common::connect(node.proxy, host, "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let tls = common::tls(stream, "registry.test", roots_from_pem(ca), &[b"http/1.1"]).await.unwrap();
    let mut sender = Sender::h1(tls).await;
    sender.send(Request::get(path).header("host", host).body(Full::new(Bytes::new())).unwrap()).await
}

#[tokio::test]
async fn an_owner_killed_mid_transfer_breaks_it_off_and_the_next_pull_works() {
    let registry = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let ca = pantry::mitm::Authority::load_or_create(&certs).unwrap().ca_pem().to_string();
    let ports = [free_port(), free_port(), free_port()];
    let urls: Vec<String> = ports.iter().map(|p| format!("https://127.0.0.1:{p}")).collect();
    let peers = urls.join(",");
    let mut nodes: Vec<Option<Node>> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Some(start(&registry, &certs, &dir.path().join(format!("cache-{i}")), *port, &peers))
        })
        .collect();
    let digest = registry
        .state
        .add_blob((0..8 << 20).map(|i| (i % 241) as u8).collect::<Vec<u8>>(), "application/octet-stream");
    let rank: Vec<usize> = pantry::fleet::rendezvous::ranked(&urls, &digest)
        .iter()
        .map(|url| urls.iter().position(|u| u == *url).unwrap())
        .collect();
    let (owner, asker) = (rank[0], rank[1]);
    let (host, path) = (registry.host(), format!("/v2/lib/app/blobs/{digest}"));
    registry.state.gated.store(true, Ordering::SeqCst);
    let response = open(nodes[asker].as_ref().unwrap(), &host, &ca, &path).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = body.frame().await.unwrap().unwrap().into_data().unwrap().len();
    assert_eq!(registry.state.count("GET blob"), 1, "the owner fetches, the asker streams from it");
    // SIGKILL: no drain, no goodbye; the owner's sockets close with the process.
    drop(nodes[owner].take());
    registry.state.gate.notify_one();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(20), body.frame()).await.expect("the transfer ends") {
            Some(Ok(frame)) => received += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => break "broken",
            None => break "complete",
        }
    };
    assert_eq!(ended, "broken", "never a clean end of a short body ({received} of {} bytes)", 8 << 20);
    let content = |node: usize| {
        let cache = dir.path().join(format!("cache-{node}"));
        pantry::cache::store::content_path(&cache, &digest.parse().unwrap()).exists()
    };
    let kept_broken = content(asker);
    assert!(!kept_broken, "the asking member stored nothing of the broken transfer");
    registry.state.gated.store(false, Ordering::SeqCst);
    let mut whole = 0;
    for survivor in [asker, rank[2]] {
        let response = open(nodes[survivor].as_ref().unwrap(), &host, &ca, &path).await;
        assert_eq!(response.status(), 200);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(sha256(&bytes), digest, "node {survivor} serves the blob whole");
        whole += 1;
    }
    let gets = registry.state.count("GET blob");
    assert!(gets <= 2, "at most one more origin fetch: {gets}");
    common::reliability::record(common::reliability::Outcome {
        area: "process",
        fault: "kill -9 of a fleet member while it streams a blob to another member",
        client: format!("the other member's client saw a {ended} transfer, never a clean short or wrong body"),
        stored: format!(
            "{} on the asking member after the broken transfer; a whole, verified copy once it was pulled again",
            if kept_broken { "a copy" } else { "nothing" }
        ),
        after: format!(
            "the dead member was skipped; {whole} of 2 survivors served the blob whole, with {gets} origin fetch{} in all",
            if gets == 1 { "" } else { "es" }
        ),
        lost: Vec::new(),
    });
}
