//! `pantry cache ls|stats|gc|purge` on a cache a pantry filled: listing, totals, verification that
//! finds corrupt content, removal of leftovers, purging by digest and by tag.

mod common;

use std::{path::Path, process::Command};

use common::{
    registry::{FakeRegistry, MANIFEST_TYPE},
    request, start_pantry,
};
use http::Method;

fn cache(args: &[&str], dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pantry"))
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(dir)
        .env_remove("PANTRY_CACHE_DIR")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn list_verify_and_purge_a_filled_cache() {
    let registry = FakeRegistry::start().await;
    let mut pantry = start_pantry(|c| registry.configure(c)).await;
    let dir = pantry.dir.path().join("cache");
    let host = registry.host();
    let a = registry.state.add_blob(vec![1u8; 3000], "application/octet-stream");
    let b = registry.state.add_blob(vec![2u8; 5000], "application/octet-stream");
    let manifest = registry.state.add_blob("{\"layers\":[]}", MANIFEST_TYPE);
    registry.state.tag("app", "v1", &manifest);
    for path in [format!("/v2/app/blobs/{a}"), format!("/v2/app/blobs/{b}"), "/v2/app/manifests/v1".into()] {
        request(&pantry, &host, Method::GET, &path, &[("accept", MANIFEST_TYPE)]).await.1.unwrap();
    }
    request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{a}"), &[]).await.1.unwrap();

    let (ok, ls) = cache(&["ls"], &dir);
    assert!(ok, "{ls}");
    for digest in [&a, &b, &manifest] {
        assert!(ls.contains(digest.as_str()), "{digest} missing from:\n{ls}");
    }
    assert!(ls.contains(MANIFEST_TYPE) && ls.contains(&format!("{host}/app")), "{ls}");
    let (_, stats) = cache(&["stats"], &dir);
    let expected_bytes = 3000 + 5000 + "{\"layers\":[]}".len();
    assert!(
        stats.contains("blobs and manifests: 3")
            && stats.contains(&format!("bytes stored:        {expected_bytes} ")),
        "{stats}"
    );
    assert!(stats.contains("tags remembered:     1"), "{stats}");

    // Corrupt B on disk and leave a spool of a process that is gone.
    let b_hex = b.trim_start_matches("sha256:");
    let b_path = dir.join("content-v2/sha256").join(&b_hex[..2]).join(&b_hex[2..4]).join(&b_hex[4..]);
    std::fs::write(&b_path, vec![9u8; 5000]).unwrap();
    std::fs::write(dir.join("tmp/spool-999999999-0"), b"partial").unwrap();
    let (ok, gc) = cache(&["gc"], &dir);
    assert!(ok, "{gc}");
    assert!(gc.contains("corrupt:        1") && gc.contains(&format!("removed corrupt {b}")), "{gc}");
    assert!(gc.contains("stale spools:   1"), "{gc}");
    assert!(!dir.join("tmp/spool-999999999-0").exists());
    let (_, gc_again) = cache(&["gc"], &dir);
    assert!(gc_again.contains("corrupt:        0"), "{gc_again}");
    // The running pantry no longer has B: the next pull fetches it again, verified.
    let (again, body) = request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{b}"), &[]).await;
    assert_eq!(again.headers()["cache-status"], "pantry; fwd=miss; stored");
    assert_eq!(body.unwrap(), vec![2u8; 5000]);

    let (ok, purged) = cache(&["purge", &a], &dir);
    assert!(ok && purged.contains("removed 1 entry"), "{purged}");
    let (ok, purged) = cache(&["purge", &format!("{host}/app:v1")], &dir);
    assert!(ok && purged.contains("removed 1 entry"), "{purged}");
    let (_, stats) = cache(&["stats"], &dir);
    assert!(stats.contains("blobs and manifests: 2") && stats.contains("tags remembered:     0"), "{stats}");
    let (ok, bad) = cache(&["purge", "nonsense"], &dir);
    assert!(!ok && bad.contains("neither a digest"), "{bad}");

    // A pantry that stops writes its lifetime statistics: 3 misses, 1 hit of A, B fetched again.
    pantry.stop().await.unwrap();
    let (_, stats) = cache(&["stats"], &dir);
    assert!(stats.contains("hit ratio:           20.0 % (1 hits, 4 misses)"), "{stats}");
    assert!(stats.contains("bytes saved:         3000 "), "{stats}");
    assert!(stats.contains(&format!("bytes fetched:       {} ", expected_bytes + 5000)), "{stats}");
}

#[test]
fn a_directory_without_a_cache_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = cache(&["ls"], &dir.path().join("nothing-here"));
    assert!(!ok && text.contains("holds no pantry cache"), "{text}");
}

#[tokio::test]
async fn ls_and_stats_speak_json_and_filter_by_repository_and_size() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let dir = pantry.dir.path().join("cache");
    let host = registry.host();
    let small = registry.state.add_blob(vec![1u8; 1000], "application/octet-stream");
    let large = registry.state.add_blob(vec![2u8; 200_000], "application/octet-stream");
    for (repository, digest) in [("team/app", &small), ("other/db", &large)] {
        request(&pantry, &host, Method::GET, &format!("/v2/{repository}/blobs/{digest}"), &[])
            .await
            .1
            .unwrap();
    }
    let json = |args: &[&str]| {
        let (ok, text) = cache(args, &dir);
        assert!(ok, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let all = json(&["ls", "--json", "--sort", "size"]);
    let digests: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [large.as_str(), small.as_str()], "largest first");
    assert_eq!(all[0]["size"], 200_000);
    assert_eq!(all[0]["repositories"][0], format!("{host}/other/db"));
    assert!(all[0]["last_access"].as_str().unwrap().ends_with('Z'));
    let team = json(&["ls", "--json", "--repository", "team/*"]);
    assert_eq!(team.as_array().unwrap().len(), 1);
    assert_eq!(team[0]["digest"], small.as_str());
    let big = json(&["ls", "--json", "--larger-than", "100KiB"]);
    assert_eq!(big.as_array().unwrap().len(), 1);
    assert_eq!(big[0]["digest"], large.as_str());
    let old = json(&["ls", "--json", "--older-than", "1d"]);
    assert_eq!(old.as_array().unwrap().len(), 0, "both were used just now");
    let stats = json(&["stats", "--json"]);
    assert_eq!((stats["blobs"].as_u64(), stats["bytes"].as_u64()), (Some(2), Some(201_000)));
    let (ok, text) = cache(&["ls", "--larger-than", "lots"], &dir);
    assert!(!ok && text.contains("lots"), "{text}");
}
