//! The store against a real directory: commits readable by cacache, leftovers removed, the byte
//! count kept true to the disk, and files private to their owner.

use super::*;
use crate::registry::digest::Algorithm;

#[tokio::test]
async fn committed_blob_is_readable_by_cacache_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    let bytes = b"layer bytes".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    assert!(store.blob(&digest).await.is_none());
    let (_, spool) = store.new_spool().unwrap();
    tokio::fs::write(&spool, &bytes).await.unwrap();
    let meta = BlobMeta { media_type: Some("application/octet-stream".into()), ..BlobMeta::default() };
    store.commit(&digest, &spool, bytes.len() as u64, &meta).await.unwrap();
    let blob = store.blob(&digest).await.unwrap();
    assert!(blob.meta.mtime_ns.is_some(), "the commit's mtime is recorded");
    assert_eq!((blob.size, BlobMeta { mtime_ns: None, ..blob.meta }), (bytes.len() as u64, meta));
    // cacache verifies the content against the integrity while reading it back.
    assert_eq!(cacache::read_hash(dir.path(), &integrity(&digest)).await.unwrap(), bytes);
    assert_eq!(cacache::read(dir.path(), blob_key(&digest)).await.unwrap(), bytes);
}

#[tokio::test]
async fn leftover_spools_are_removed_and_truncated_content_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    // A spool of a process that is gone, and one of a live process (this one) sharing the directory.
    let leftover = dir.path().join("tmp/spool-999999999-0");
    tokio::fs::write(&leftover, b"partial").await.unwrap();
    let (_, live) = store.new_spool().unwrap();
    tokio::fs::write(&live, b"being written").await.unwrap();
    let bytes = b"0123456789".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    let (_, spool) = store.new_spool().unwrap();
    tokio::fs::write(&spool, &bytes).await.unwrap();
    store.commit(&digest, &spool, 10, &BlobMeta::default()).await.unwrap();
    let blob = store.blob(&digest).await.unwrap();
    std::fs::write(&blob.path, b"01234").unwrap();
    // the verified copy read a moment ago answers until it is a second old
    store.forget_copies();
    assert!(store.blob(&digest).await.is_none(), "a size mismatch is a miss, never served");
    let _ = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    assert!(!leftover.exists());
    assert!(live.exists(), "a running process's spool is left alone");
}

#[tokio::test]
async fn the_stored_count_follows_the_disk_after_content_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1000, Clock::System).await.unwrap();
    let put = |n: usize, byte: u8| {
        let bytes = vec![byte; n];
        (Digest::of(Algorithm::Sha256, &bytes), bytes)
    };
    let (gone, bytes) = put(800, 1);
    store.put(&gone, &bytes, &BlobMeta::default()).await.unwrap();
    // Removed behind the store's back (a purge by another process, a corrupt file removed).
    std::fs::remove_file(store.blob(&gone).await.unwrap().path).unwrap();
    let (kept, bytes) = put(500, 2);
    store.put(&kept, &bytes, &BlobMeta::default()).await.unwrap();
    assert_eq!(store.stored_bytes(), 1300, "counted, not read from disk");
    let run = store.evict_once().await;
    assert_eq!((run.scanned, run.freed), (500, 0), "nothing to evict: the disk holds 500 bytes");
    assert_eq!(store.stored_bytes(), 500, "so the store is under its cap again, and stays quiet");
}

#[tokio::test]
async fn content_found_by_a_lookup_stays_until_the_lookup_s_blob_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1000, Clock::System).await.unwrap();
    let bytes = vec![7u8; 1500];
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    store.put(&digest, &bytes, &BlobMeta::default()).await.unwrap();
    // Found, then (while the access check asks upstream, say) the store goes over its cap.
    let found = store.blob(&digest).await.unwrap();
    let copy = found.clone();
    drop(found);
    let run = store.evict_once().await;
    assert_eq!((run.scanned, run.freed), (1500, 0), "held since the lookup: not evicted");
    assert_eq!(std::fs::read(&copy.path).unwrap(), bytes, "still there to be sent");
    drop(copy);
    let run = store.evict_once().await;
    assert_eq!(run.freed, 1500, "no longer held: evicted");
    assert!(store.blob(&digest).await.is_none());
}

#[tokio::test]
async fn a_new_store_is_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("new/cache");
    Store::open(&root, u64::MAX, Clock::System).await.unwrap();
    for created in [root.clone(), root.join("tmp")] {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&created).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o700, "{}", created.display());
    }
}

#[tokio::test]
async fn spools_are_private_and_never_follow_a_planted_link() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    // Plant links at every name the old, predictable scheme would have used next.
    for n in 0..64 {
        let planted = dir.path().join(format!("tmp/spool-{}-{n}", std::process::id()));
        std::os::unix::fs::symlink(&victim, planted).unwrap();
    }
    // Created 0600: a umask can only narrow that.
    let (mut file, path) = store.new_spool().unwrap();
    std::io::Write::write_all(&mut file, b"spooled").unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me", "the link's target is untouched");
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file(), "a file of its own, not a link");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);
}

#[tokio::test]
async fn a_large_store_opens_without_reading_its_content_and_is_counted_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 files of 1 GiB each, sparse: reading any of them would take far longer than the test.
    const FILES: u64 = 3_000;
    const SIZE: u64 = 1 << 30;
    for i in 0..FILES {
        let digest = Digest::of(Algorithm::Sha256, &i.to_le_bytes());
        let path = content_path(dir.path(), &digest);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();
    }
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    assert!(!store.counted(), "opening does not walk the store");
    assert_eq!((store.entries(), store.stored_bytes()), (0, 0));
    // what this process committed before the count is counted once
    store.put(&Digest::of(Algorithm::Sha256, b"new"), b"new", &BlobMeta::default()).await.unwrap();
    store.count().await;
    assert!(store.counted());
    assert_eq!((store.entries(), store.stored_bytes()), (FILES + 1, FILES * SIZE + 3));
}

#[tokio::test]
async fn a_store_that_cannot_be_read_is_an_error_and_serving_treats_it_as_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    let bytes = b"a manifest".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    store.put(&digest, &bytes, &BlobMeta::default()).await.unwrap();
    assert!(store.lookup(&digest).await.unwrap().is_some());
    // the content file replaced by something that cannot be read as one (EISDIR)
    let path = content_path(dir.path(), &digest);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    store.forget_copies();
    let error = store.lookup(&digest).await.expect_err("an unreadable store is an error, not a miss");
    assert!(error.to_string().contains(&digest.hex()[4..]), "names the file: {error}");
    assert!(store.blob(&digest).await.is_none(), "serving fetches it again");
    // gone entirely: a plain miss
    std::fs::remove_dir(&path).unwrap();
    assert!(store.lookup(&digest).await.unwrap().is_none());
}

#[tokio::test]
async fn small_content_read_a_moment_ago_answers_from_memory_and_changes_are_seen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    let bytes = b"a manifest".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    store.put(&digest, &bytes, &BlobMeta::default()).await.unwrap();
    let first = store.lookup(&digest).await.unwrap().unwrap();
    // this process's own metadata write is visible to the next lookup
    let meta =
        BlobMeta { media_type: Some("application/vnd.oci.image.manifest.v1+json".into()), ..first.meta };
    store.write_meta(&digest, bytes.len() as u64, &meta).await.unwrap();
    let copy = store.lookup(&digest).await.unwrap().unwrap();
    assert_eq!(copy.meta.media_type, meta.media_type);
    // the disk changes behind the store: the verified copy still answers, with the right bytes
    std::fs::write(&first.path, b"0123456789").unwrap();
    assert_eq!(store.lookup(&digest).await.unwrap().unwrap().small.as_deref(), Some(&bytes[..]));
    // once the copy is gone the changed file is read, fails its digest and is a miss
    store.forget_copies();
    assert!(store.blob(&digest).await.is_none(), "changed content is never served from disk");
}

#[tokio::test]
async fn a_copy_in_memory_is_read_from_disk_again_within_a_second_or_two() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    let bytes = b"a config".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    store.put(&digest, &bytes, &BlobMeta::default()).await.unwrap();
    let path = store.lookup(&digest).await.unwrap().unwrap().path;
    // another process's purge: seen without any call into this store
    let removed = std::time::Instant::now();
    std::fs::remove_file(&path).unwrap();
    while store.lookup(&digest).await.unwrap().is_some() {
        assert!(removed.elapsed() < super::super::hot::FRESH_FOR * 3, "the copy outlived its second");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(removed.elapsed() <= super::super::hot::FRESH_FOR * 3);
}

#[tokio::test]
async fn a_record_written_is_read_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    store.put_record("tag/x", &serde_json::json!({ "v": 1 })).await.unwrap();
    assert_eq!(
        store.record::<serde_json::Value>("tag/x").await.unwrap(),
        Some(serde_json::json!({ "v": 1 }))
    );
    store.put_record("tag/x", &serde_json::json!({ "v": 2 })).await.unwrap();
    assert_eq!(
        store.record::<serde_json::Value>("tag/x").await.unwrap(),
        Some(serde_json::json!({ "v": 2 }))
    );
}

#[tokio::test]
async fn an_unreadable_record_is_an_error_and_serving_counts_it_as_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), u64::MAX, Clock::System).await.unwrap();
    let bytes = b"{\"manifest\":1}".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    store.put(&digest, &bytes, &BlobMeta::default()).await.unwrap();
    let tag: fn(&serde_json::Value) -> Option<Digest> = |record| record["digest"].as_str()?.parse().ok();
    // a directory where the record's file should be: the disk answers, but not with a record
    std::fs::create_dir_all(record_path(dir.path(), "tag/broken")).unwrap();
    let error = store.record::<serde_json::Value>("tag/broken").await.unwrap_err();
    assert!(error.to_string().contains("records/"), "{error}");
    assert!(store.record_and_blob("tag/broken", tag).await.is_err(), "not a silent miss");
    assert_eq!(store.read_errors(), 0, "the store reports; serving decides");
    assert!(store.or_miss("tag/broken", store.record_and_blob("tag/broken", tag).await).is_none());
    assert_eq!(store.read_errors(), 1, "counted for pantry_store_read_errors_total");
    // a missing record is no error, and a good one is found with its blob
    assert!(store.record_and_blob("tag/none", tag).await.unwrap().is_none());
    store.put_record("tag/ok", &serde_json::json!({ "digest": digest.to_string() })).await.unwrap();
    let (_, blob) = store.record_and_blob("tag/ok", tag).await.unwrap().unwrap();
    assert_eq!(blob.small.as_deref(), Some(&bytes[..]));
}
