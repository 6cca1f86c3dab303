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

/// `pantry cache gc` checked `blobs` entries and found none corrupt.
/// Runs `pantry cache gc` and asserts it checked `blobs` and found none corrupt; what it reported
/// (checked, corrupt).
fn assert_gc_clean(dir: &Path, blobs: usize) -> (usize, usize) {
    let gc = Command::new(env!("CARGO_BIN_EXE_pantry"))
        .args(["cache", "gc", "--cache-dir"])
        .arg(dir.join("cache"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&gc.stdout);
    let field = |name: &str| -> usize {
        let line = report.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'));
        line.and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no {name} in: {report}"))
    };
    let (checked, corrupt) = (field("checked"), field("corrupt"));
    assert_eq!((checked, corrupt), (blobs, 0), "{report}");
    (checked, corrupt)
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
    assert_gc_clean(dir.path(), 3);
}

/// GETs `path` through pantry; the body's bytes, or why the transfer failed.
async fn fetch(addr: &str, dir: &Path, host: &str, path: &str) -> Result<Bytes, String> {
    let response = get(addr, dir, host, path).await;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    response.into_body().collect().await.map(|b| b.to_bytes()).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_of_100_concurrent_cold_pulls() {
    const ROUNDS: u64 = 20;
    const PULLS: usize = 100;
    let registry = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    // A small xorshift: random but repeatable moments, printed on failure.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut wrong, mut served_after) = (Vec::new(), 0);
    for round in 0..ROUNDS {
        let blobs: Vec<(String, Vec<u8>)> = (0..PULLS)
            .map(|i| {
                let bytes: Vec<u8> = (0..200_000u32 + i as u32 * 997)
                    .map(|b| (b ^ (round as u32 * 31 + i as u32)) as u8)
                    .collect();
                (registry.state.add_blob(bytes.clone(), "application/octet-stream"), bytes)
            })
            .collect();
        let (mut child, addr) = start(&registry, dir.path());
        let pulls: Vec<_> = blobs
            .iter()
            .map(|(digest, _)| {
                let (addr, dir, host) = (addr.clone(), dir.path().to_path_buf(), host.clone());
                let path = format!("/v2/app/blobs/{digest}");
                tokio::spawn(async move { fetch(&addr, &dir, &host, &path).await })
            })
            .collect();
        let moment = random() % 400;
        tokio::time::sleep(std::time::Duration::from_millis(moment)).await;
        child.kill().unwrap(); // SIGKILL, wherever the pulls are
        child.wait().unwrap();
        for (pull, (digest, bytes)) in pulls.into_iter().zip(&blobs) {
            if let Ok(Ok(body)) = pull.await {
                if body[..] != bytes[..] {
                    wrong.push(format!("round {round} (kill at {moment} ms): {digest} came back wrong"));
                }
            }
        }

        let (mut child, addr) = start(&registry, dir.path());
        for (digest, bytes) in &blobs {
            let body = fetch(&addr, dir.path(), &host, &format!("/v2/app/blobs/{digest}")).await;
            assert_eq!(
                body.as_deref(),
                Ok(&bytes[..]),
                "round {round} (kill at {moment} ms): {digest} after restart"
            );
            served_after += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let (checked, corrupt) = assert_gc_clean(dir.path(), ROUNDS as usize * PULLS);
    common::reliability::record(common::reliability::Outcome {
        area: "process",
        fault: "kill -9 at random moments of 100 concurrent cold pulls (20 rounds)",
        client: format!("broken transfers at the kill; {} completed bodies were wrong", wrong.len()),
        stored: format!(
            "only verified content: `pantry cache gc` checked {checked} blobs, {corrupt} corrupt"
        ),
        after: format!(
            "after the restarts {served_after} of {} blobs were served right",
            ROUNDS as usize * PULLS
        ),
        lost: wrong,
    });
}
