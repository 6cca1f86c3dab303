//! kill -9 in the middle of a fetch: after a restart pantry serves only complete, verified content,
//! removes the dead process's spool, and `pantry cache gc` finds nothing corrupt. Runs the binary.

mod common;

use std::{
    path::Path,
    process::{Child, Command},
    sync::atomic::Ordering,
};

use bytes::Bytes;
use common::{connect, registry::FakeRegistry, roots_from_pem, tls, Sender};
use http::Request;
use http_body_util::{BodyExt, Full};

/// Starts the binary and returns it with the address it listens on.
fn start(registry: &FakeRegistry, dir: &Path) -> (Child, String) {
    let port = registry.addr.port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pantry"));
    command
        .args(["--listen", "127.0.0.1:0", "--intercept", &format!("registry.test:{port}")])
        .args(["--resolve", &format!("registry.test:{port}:127.0.0.1")])
        .arg("--upstream-ca")
        .arg(&registry.ca.ca_file)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--certs-dir")
        .arg(dir.join("certs"));
    common::spawn_listening(command)
}

async fn get(addr: &str, dir: &Path, host: &str, path: &str) -> http::Response<hyper::body::Incoming> {
    let (stream, head) = connect(addr.parse().unwrap(), host, "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ca = std::fs::read_to_string(dir.join("certs/ca.pem")).unwrap();
    let stream = tls(stream, "registry.test", roots_from_pem(&ca), &[b"http/1.1"]).await.unwrap();
    let mut sender = Sender::h1(stream).await;
    sender.send(Request::get(path).header("host", host).body(Full::new(Bytes::new())).unwrap()).await
}

fn spools(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("cache/tmp")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn kill_9_mid_fetch_leaves_nothing_corrupt_behind() {
    let registry = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    for round in 0..3u8 {
        let bytes: Vec<u8> = (0..6_000_000u32).map(|i| (i as u8).wrapping_add(round)).collect();
        let digest = registry.state.add_blob(bytes.clone(), "application/octet-stream");
        let path = format!("/v2/app/blobs/{digest}");
        registry.state.gated.store(true, Ordering::SeqCst);
        let (mut child, addr) = start(&registry, dir.path());
        let mut body = get(&addr, dir.path(), &host, &path).await.into_body();
        body.frame().await.unwrap().unwrap();
        assert_eq!(spools(dir.path()), 1, "a fetch is being spooled");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(body.collect().await.is_err(), "the client sees the transfer break");
        // No notify: nobody waits at the gate any more, and a stored permit would ungate the next round.
        registry.state.gated.store(false, Ordering::SeqCst);

        let (mut child, addr) = start(&registry, dir.path());
        assert_eq!(spools(dir.path()), 0, "the dead process's spool is removed at start");
        let response = get(&addr, dir.path(), &host, &path).await;
        assert_eq!(
            response.headers()["cache-status"],
            "pantry; fwd=miss; stored",
            "nothing partial was stored"
        );
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), bytes);
        let response = get(&addr, dir.path(), &host, &path).await;
        assert_eq!(response.headers()["cache-status"], "pantry; hit");
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let gc = Command::new(env!("CARGO_BIN_EXE_pantry"))
        .args(["cache", "gc", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&gc.stdout);
    assert!(report.contains("checked:        3") && report.contains("corrupt:        0"), "{report}");
}
