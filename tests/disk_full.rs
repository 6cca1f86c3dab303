//! A full disk never fails a pull: with the cache on a small tmpfs, content that does not fit is
//! passed through uncached (and still verified against its digest), what fits is stored, and
//! caching resumes once space returns. Mounting needs root (CI runs as root); elsewhere the test
//! says it was skipped.

mod common;

use std::{path::Path, process::Command, sync::atomic::Ordering};

use common::{registry::FakeRegistry, request, start_pantry};
use http::Method;

struct Mount(tempfile::TempDir);

impl Mount {
    fn tmpfs(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .ok()?;
        status.success().then_some(Self(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test]
async fn a_full_disk_passes_content_through_and_caching_resumes() {
    let Some(mount) = is_root().then(|| Mount::tmpfs("4m")).flatten() else {
        return common::cannot_run("mounting a 4 MiB tmpfs needs root");
    };
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.cache_dir = mount.path().join("cache");
    })
    .await;
    let host = registry.host();
    let store = pantry.pantry.proxy().store();
    let big = vec![1u8; 6 * 1024 * 1024];
    let big_digest = registry.state.add_blob(big.clone(), "application/octet-stream");
    let (response, body) =
        request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{big_digest}"), &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=miss", "passed through, not stored");
    assert_eq!(response.headers()["docker-content-digest"], big_digest.as_str());
    let got = body.unwrap();
    assert_eq!(got, big, "the client gets every byte");
    let passed = (
        got.len() as f64 / (1024.0 * 1024.0),
        response.headers()["cache-status"].to_str().unwrap().to_string(),
    );
    assert!(store.blob(&big_digest.parse().unwrap()).await.is_none());

    // What fits is stored; a filler then leaves no room, and freeing it lets caching resume.
    let small = vec![2u8; 300_000];
    let small_digest = registry.state.add_blob(small.clone(), "application/octet-stream");
    let filler = mount.path().join("filler");
    std::fs::write(&filler, vec![0u8; 3 * 1024 * 1024]).unwrap();
    let path = format!("/v2/app/blobs/{small_digest}");
    let (full, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    assert_eq!(
        (full.headers()["cache-status"].to_str().unwrap(), body.unwrap()),
        ("pantry; fwd=miss", small.clone().into())
    );
    std::fs::remove_file(&filler).unwrap();
    let (resumed, body) = request(&pantry, &host, Method::GET, &path, &[]).await;
    let resumed = resumed.headers()["cache-status"].to_str().unwrap().to_string();
    assert_eq!(resumed, "pantry; fwd=miss; stored", "caching resumes");
    assert_eq!(body.unwrap(), small);
    let stored_small = store.blob(&small_digest.parse().unwrap()).await.is_some();

    // Passed-through content is still checked against its digest.
    std::fs::write(&filler, vec![0u8; 3 * 1024 * 1024]).unwrap();
    let lied = registry.state.add_blob(vec![3u8; 3 * 1024 * 1024], "application/octet-stream");
    registry.state.lie.store(true, Ordering::SeqCst);
    let (_, body) = request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{lied}"), &[]).await;
    let lie_broke = body.is_err();
    assert!(lie_broke, "a lying upstream breaks the passed-through transfer");
    let spools = std::fs::read_dir(mount.path().join("cache/tmp")).unwrap().count();
    assert_eq!(spools, 0, "no spool left");
    let partial = [&big_digest, &lied]
        .iter()
        .filter(|d| {
            pantry::cache::store::content_path(&mount.path().join("cache"), &d.parse().unwrap()).exists()
        })
        .count();
    common::reliability::record(common::reliability::Outcome {
        area: "disk",
        fault: "cache directory full (4 MiB tmpfs)",
        client: format!(
            "every byte of a {:.0} MiB blob, passed through uncached (`{}`); a lying upstream's {}",
            passed.0,
            passed.1,
            if lie_broke { "transfer broke off" } else { "transfer ended cleanly" }
        ),
        stored: format!(
            "what fitted ({}); {partial} partial files, {spools} spools left",
            if stored_small { "the 0.3 MiB blob" } else { "nothing" }
        ),
        after: format!("caching resumed as soon as space returned (`{resumed}`)"),
        lost: Vec::new(),
    });
}
