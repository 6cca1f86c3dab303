//! Attacks on the store: content changed on disk after it was verified and committed (a disk
//! that rots, another process or user writing the same bytes' file) must not reach a client as
//! the digest it claims. Small content (manifests, configs) is verified on every read from disk
//! (a verified copy answers from memory for up to a second after it was read); a large
//! file whose mtime moved since its commit is verified again before it is served; with
//! `verify_reads` every whole read of large content is verified too (rot that keeps the mtime),
//! and a mismatch breaks the transfer off before its end. (docs/SECURITY.md lists each attack and what defends it.)

mod common;

use common::{
    registry::{sha256, FakeRegistry},
    request, start_pantry, TestPantry,
};
use http::Method;

async fn with_verify_reads(registry: &FakeRegistry, verify: bool) -> TestPantry {
    start_pantry(|c| {
        registry.configure(c);
        c.live.verify_reads = verify;
    })
    .await
}

/// Flips one byte of the stored copy of `digest`, keeping its size, and lets the store's copy
/// in memory go (as a second later): the attack is on the disk.
async fn corrupt(pantry: &TestPantry, digest: &str) {
    let store = pantry.pantry.proxy().store();
    let blob = store.blob(&digest.parse().unwrap()).await.expect("stored");
    let mut bytes = std::fs::read(&blob.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&blob.path, bytes).unwrap();
    store.forget_copies();
}

/// [`corrupt`], then puts the file's mtime back: what rot on the disk looks like.
async fn rot(pantry: &TestPantry, digest: &str) {
    let blob = pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.expect("stored");
    let mtime = std::fs::metadata(&blob.path).unwrap().modified().unwrap();
    corrupt(pantry, digest).await;
    std::fs::File::options().write(true).open(&blob.path).unwrap().set_modified(mtime).unwrap();
}

#[tokio::test]
async fn corrupt_small_content_is_never_served_and_is_fetched_again() {
    let registry = FakeRegistry::start().await;
    let pantry = with_verify_reads(&registry, false).await;
    let digest = registry.state.add_blob(vec![3u8; 2_000], "application/vnd.oci.image.config.v1+json");
    let path = format!("/v2/app/blobs/{digest}");
    let (first, _) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(first.status(), 200);
    corrupt(&pantry, &digest).await;
    let (again, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(sha256(&body.unwrap()), digest, "the bytes the digest names, not the corrupt copy");
    assert_ne!(again.headers()["cache-status"], "pantry; hit");
    assert_eq!(registry.state.count("GET blob"), 2, "fetched again");
    let (third, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(
        (third.headers()["cache-status"].to_str().unwrap(), sha256(&body.unwrap())),
        ("pantry; hit", digest)
    );
}

#[tokio::test]
async fn small_content_corrupted_a_moment_after_a_read_answers_with_the_verified_copy() {
    let registry = FakeRegistry::start().await;
    let pantry = with_verify_reads(&registry, false).await;
    let digest = registry.state.add_blob(vec![4u8; 2_000], "application/vnd.oci.image.config.v1+json");
    let path = format!("/v2/app/blobs/{digest}");
    let (first, _) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(first.status(), 200);
    let blob = pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.expect("stored");
    std::fs::write(&blob.path, vec![5u8; 2_000]).unwrap();
    let (hit, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(hit.headers()["cache-status"], "pantry; hit");
    assert_eq!(sha256(&body.unwrap()), digest, "the bytes verified when read, never the disk's new ones");
}

#[tokio::test]
async fn with_verify_reads_corrupt_large_content_breaks_off_before_its_end() {
    let registry = FakeRegistry::start().await;
    let pantry = with_verify_reads(&registry, true).await;
    let layer: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = registry.state.add_blob(layer.clone(), "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    let (first, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!((first.status().as_u16(), body.unwrap().len()), (200, layer.len()));
    let (hit, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(hit.headers()["cache-status"], "pantry; hit");
    assert_eq!(body.unwrap().len(), layer.len(), "intact content passes verification");

    rot(&pantry, &digest).await;
    let (broken, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(broken.status(), 200, "the head went out before the content was read");
    assert!(body.is_err(), "the transfer is broken off, never complete with the wrong bytes");
    let (again, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_ne!(again.headers()["cache-status"], "pantry; hit", "the corrupt file was removed");
    assert_eq!(sha256(&body.unwrap()), digest);
}

#[tokio::test]
async fn a_large_file_changed_after_its_commit_is_verified_again_before_it_is_served() {
    let registry = FakeRegistry::start().await;
    let pantry = with_verify_reads(&registry, false).await;
    let layer: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    let digest = registry.state.add_blob(layer.clone(), "application/octet-stream");
    let path = format!("/v2/app/blobs/{digest}");
    request(&pantry, &registry.host(), Method::GET, &path, &[]).await.1.unwrap();
    let (hit, _) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(hit.headers()["cache-status"], "pantry; hit");

    // Touched but intact (a backup tool restoring it, say): verified, still a hit.
    let stored = pantry.pantry.proxy().store().blob(&digest.parse().unwrap()).await.unwrap();
    let file = std::fs::File::options().write(true).open(&stored.path).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    let (intact, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(
        (intact.headers()["cache-status"].to_str().unwrap(), sha256(&body.unwrap())),
        ("pantry; hit", digest.clone())
    );

    // Rewritten with other bytes of the same size: never served, fetched again.
    corrupt(&pantry, &digest).await;
    let (again, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_ne!(again.headers()["cache-status"], "pantry; hit");
    assert_eq!(sha256(&body.unwrap()), digest, "the registry's bytes, not the changed file's");
    assert_eq!(registry.state.count("GET blob"), 2);
}
