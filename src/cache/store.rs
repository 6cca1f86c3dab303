//! The one wrapper around cacache. Content is keyed by the OCI digest (as an ssri `Integrity`), so a
//! blob seen in two repositories or registries is stored once; metadata (media type, where it is
//! public) lives in cacache's index under `pantry/blob/<digest>`.
//!
//! Content is written to a spool file under `tmp/`, hashed while written, and renamed into
//! cacache's content directory only once it matches its digest: the store never holds a partial
//! or unverified blob.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use bytes::Bytes;
use cacache::{Algorithm as SriAlgorithm, Integrity, WriteOpts};
use serde::{Deserialize, Serialize};

use tokio::sync::Notify;

use super::{
    content,
    evict::{self, InUse, InUseGuard},
    records,
};
use crate::{
    clock::Clock,
    metrics::Metrics,
    registry::{
        digest::{Algorithm, Digest},
        policy::PinRule,
    },
};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("cache {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The index could not be read or written.
    #[error("cache index: {0}")]
    Index(#[from] cacache::Error),
}

/// What the store knows about a blob besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// `Content-Type` as upstream sent it (manifests need it back exactly).
    pub media_type: Option<String>,
    /// Scopes (`registry/repository`) where an earlier version saw it served without
    /// credentials: honoured for that exact scope only, never written any more.
    #[serde(default)]
    pub public_in: BTreeSet<String>,
    /// Scopes (`registry/repository`) it was served in (pinning by repository uses them).
    #[serde(default)]
    pub seen_in: BTreeSet<String>,
    /// Scopes whose registry sent these very bytes (verified) or, being such a registry, said
    /// this repository holds them: only these registries are asked whether a client may read it.
    #[serde(default)]
    pub fetched_in: BTreeSet<String>,
    /// Scopes where these bytes were fetched without credentials: public, for every client.
    #[serde(default)]
    pub anonymous_in: BTreeSet<String>,
    /// The content file's mtime (ns) when it was committed or last verified: a file whose mtime
    /// differs was changed since, and is verified again before it is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
}

impl BlobMeta {
    /// Adds what `other` knows.
    pub fn merge(&mut self, other: BlobMeta) {
        if self.media_type.is_none() {
            self.media_type = other.media_type;
        }
        self.public_in.extend(other.public_in);
        self.seen_in.extend(other.seen_in);
        self.fetched_in.extend(other.fetched_in);
        self.anonymous_in.extend(other.anonymous_in);
        self.mtime_ns = self.mtime_ns.or(other.mtime_ns);
    }
}

/// A blob present in the store.
#[derive(Debug, Clone)]
pub struct CachedBlob {
    /// Its digest.
    pub digest: Digest,
    /// The content file (read-only; never modified in place).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its metadata.
    pub meta: BlobMeta,
    /// The whole content, when it is small enough to be read with the lookup ([`SMALL`] bytes):
    /// manifests and configs are answered without another trip to the file system.
    pub small: Option<Bytes>,
}

/// Content up to this size is read whole when it is looked up.
pub const SMALL: u64 = 64 * 1024;

/// The content-addressed store in `--cache-dir`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    next_spool: AtomicU64,
    max_size: u64,
    stored: AtomicU64,
    over_cap: Notify,
    in_use: Arc<InUse>,
    pins: ArcSwap<Vec<PinRule>>,
    /// When this process last touched each blob (pantry's clock, ms): a hot blob costs no file
    /// system call per read.
    touched: Mutex<HashMap<Digest, u64>>,
    clock: Clock,
    /// Whether whole reads of large content are verified while they stream (`verify_reads`).
    verify_reads: std::sync::atomic::AtomicBool,
}

/// Accesses closer together than this update a blob's last-access time once.
const TOUCH_RESOLUTION: Duration = Duration::from_secs(60);
/// Blobs whose last touch is remembered in memory (then the memory starts over).
const TOUCHED_MAX: usize = 100_000;

impl Store {
    /// Opens (creating if needed) the store capped at `max_size` bytes, removes spool files a
    /// previous run left behind and counts what is stored.
    pub async fn open(root: &Path, max_size: u64, clock: Clock) -> Result<Self, StoreError> {
        let tmp = root.join("tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        // Private whatever the umask: the store holds content some clients may not see.
        let mut private = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(private.recursive(true), 0o700);
        private.create(&tmp).map_err(io(&tmp))?;
        if let Ok(meta) = std::fs::metadata(root) {
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %root.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the cache directory is open to other users of this machine: `chmod 700` it"
                );
            }
        }
        let scan_root = root.to_path_buf();
        let (files, migrated) = tokio::task::spawn_blocking(move || {
            remove_stale_temp(&scan_root);
            (evict::scan(&scan_root), records::migrate_from_index(&scan_root))
        })
        .await
        .unwrap_or_else(|_| (Vec::new(), Ok(0)));
        match migrated {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "moved tag and HTTP-cache records out of the index"),
            Err(source) => return Err(StoreError::Io { path: root.join(records::DIR), source }),
        }
        let stored = files.iter().map(|f| f.size).sum();
        Ok(Self {
            root: root.to_path_buf(),
            next_spool: AtomicU64::new(0),
            max_size,
            stored: AtomicU64::new(stored),
            over_cap: Notify::new(),
            in_use: Arc::default(),
            pins: ArcSwap::default(),
            touched: Mutex::default(),
            clock,
            verify_reads: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The size cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_size
    }

    /// Bytes of content stored.
    pub fn stored_bytes(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// One eviction run; afterwards the stored-bytes count is resynced with what is on disk (a
    /// purge, a removed corrupt file or another process may have changed it), plus what was
    /// committed while the run went on.
    pub async fn evict_once(&self) -> evict::Evicted {
        let pins = self.pins.load_full();
        let before = self.stored_bytes();
        let run = evict::run(&self.root, self.max_size, &self.in_use, &pins).await;
        let _ = self.stored.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            Some((run.scanned - run.freed).saturating_add(now.saturating_sub(before)))
        });
        run
    }

    /// Runs eviction in the background whenever a write takes the store over its cap.
    pub fn spawn_evictor(self: &Arc<Self>, metrics: Arc<Metrics>) {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if store.stored_bytes() <= store.max_size {
                    // notify_one keeps a permit when nobody waits, so no wake-up is lost here.
                    store.over_cap.notified().await;
                    continue;
                }
                metrics.evicted(store.evict_once().await.freed);
                if store.stored_bytes() > store.max_size {
                    tracing::warn!(
                        stored = store.stored_bytes(),
                        max = store.max_size,
                        "cache over its cap: the rest is in use or pinned"
                    );
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        });
    }

    /// Sets the `--pin` rules eviction obeys from its next run on.
    pub fn set_pins(&self, pins: Vec<PinRule>) {
        self.pins.store(Arc::new(pins));
    }

    /// Keeps `digest` from eviction while the returned guard lives.
    pub fn hold(&self, digest: &Digest) -> InUseGuard {
        self.in_use.hold(digest)
    }

    /// Records a read of `blob` as its last access (on disk at most once per [`TOUCH_RESOLUTION`]).
    pub async fn touch(&self, blob: &CachedBlob) {
        let now = self.clock.now_ms();
        {
            let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
            let recent = touched
                .get(&blob.digest)
                .is_some_and(|&at| Duration::from_millis(now.saturating_sub(at)) < TOUCH_RESOLUTION);
            if recent {
                return;
            }
            if touched.len() >= TOUCHED_MAX {
                touched.clear();
            }
            touched.insert(blob.digest.clone(), now);
        }
        evict::touch(blob.path.clone(), self.now(), TOUCH_RESOLUTION).await;
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.clock.now_ms())
    }

    /// The blob with `digest`, if its index entry and complete content are present.
    pub async fn blob(&self, digest: &Digest) -> Option<CachedBlob> {
        let (root, digest) = (self.root.clone(), digest.clone());
        // one trip to the blocking pool for the index entry, the content's size and small content
        tokio::task::spawn_blocking(move || blob_sync(&root, digest)).await.ok()?
    }

    /// The record under `key` and the blob it names (`digest_of`), looked up in one trip to the
    /// blocking pool (a tag's answer: which manifest, and the manifest).
    pub async fn record_and_blob<T>(
        &self,
        key: &str,
        digest_of: fn(&T) -> Option<Digest>,
    ) -> Option<(T, CachedBlob)>
    where
        T: for<'de> Deserialize<'de> + Send + 'static,
    {
        let (root, key) = (self.root.clone(), key.to_string());
        tokio::task::spawn_blocking(move || {
            let record: T = records::get(&root, &key)?;
            let blob = blob_sync(&root, digest_of(&record)?)?;
            Some((record, blob))
        })
        .await
        .ok()?
    }

    /// Whether the cache's file system has room for a blob of `size` bytes (unknown: a minimum)
    /// plus a margin; a full disk then passes content through uncached instead of failing it.
    pub fn room_for(&self, size: Option<u64>) -> std::io::Result<()> {
        const MARGIN: u64 = 1024 * 1024;
        let available = fs4::available_space(self.root.join("tmp"))?;
        let needed = size.unwrap_or(0) + MARGIN;
        if available < needed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("{} has {available} bytes free, {needed} needed", self.root.display()),
            ));
        }
        Ok(())
    }

    /// Sets whether whole reads of large content are verified while they stream.
    pub fn set_verify_reads(&self, verify: bool) {
        self.verify_reads.store(verify, Ordering::Relaxed);
    }

    /// Whether whole reads of large content are verified while they stream.
    pub fn verifies_reads(&self) -> bool {
        self.verify_reads.load(Ordering::Relaxed)
    }

    /// A new, empty spool file under `tmp/`, open for writing: a random name, created exclusively
    /// (`O_EXCL`: a file or symlink planted there is never opened or followed) and readable by
    /// its owner only, whatever the umask. Blocking (one `open`).
    pub fn new_spool(&self) -> std::io::Result<(std::fs::File, PathBuf)> {
        let n = self.next_spool.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("spool-{}-{n}-", std::process::id());
        let spool =
            tempfile::Builder::new().prefix(&prefix).rand_bytes(8).tempfile_in(self.root.join("tmp"))?;
        spool.keep().map_err(|e| e.error)
    }

    /// Moves a verified spool file into the store as `digest` and records its metadata.
    pub async fn commit(
        &self,
        digest: &Digest,
        spool: &Path,
        size: u64,
        meta: &BlobMeta,
    ) -> Result<(), StoreError> {
        let target = self.content_path(digest);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| StoreError::Io { path: parent.to_path_buf(), source })?;
        }
        if tokio::fs::metadata(&target).await.is_ok_and(|m| m.len() == size) {
            // Already stored (same digest, so same bytes): keep the file, merge the metadata.
            let _ = tokio::fs::remove_file(spool).await;
            let mut merged = meta.clone();
            if let Some(old) = self.blob(digest).await {
                merged.merge(old.meta);
            }
            return self.write_meta(digest, size, &merged).await;
        }
        tokio::fs::rename(spool, &target)
            .await
            .map_err(|source| StoreError::Io { path: target.clone(), source })?;
        let mut meta = meta.clone();
        meta.mtime_ns = tokio::fs::metadata(&target).await.ok().map(|m| content::mtime_ns(&m));
        evict::touch(target, self.now(), Duration::ZERO).await;
        self.write_meta(digest, size, &meta).await?;
        if self.stored.fetch_add(size, Ordering::Relaxed) + size > self.max_size {
            self.over_cap.notify_one();
        }
        Ok(())
    }

    /// Stores small content already in memory and verified against `digest` (manifests).
    pub async fn put(&self, digest: &Digest, bytes: &[u8], meta: &BlobMeta) -> Result<(), StoreError> {
        let (file, spool) =
            self.new_spool().map_err(|source| StoreError::Io { path: self.root.join("tmp"), source })?;
        let written = async {
            let mut file = tokio::fs::File::from_std(file);
            tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
            file.sync_data().await
        }
        .await;
        if let Err(source) = written {
            let _ = tokio::fs::remove_file(&spool).await;
            return Err(StoreError::Io { path: spool, source });
        }
        self.commit(digest, &spool, bytes.len() as u64, meta).await
    }

    /// Replaces the metadata of a stored blob (e.g. a scope became known as public).
    pub async fn write_meta(&self, digest: &Digest, size: u64, meta: &BlobMeta) -> Result<(), StoreError> {
        let opts = WriteOpts::new()
            .integrity(integrity(digest))
            .size(size as usize)
            .metadata(serde_json::to_value(meta).unwrap_or_default());
        cacache::index::insert_async(&self.root, &blob_key(digest), opts).await?;
        Ok(())
    }

    /// Reads a small mutable record (tags, HTTP-cache policies) stored under `key`.
    pub async fn record<T: for<'de> Deserialize<'de> + Send + 'static>(&self, key: &str) -> Option<T> {
        let (root, key) = (self.root.clone(), key.to_string());
        tokio::task::spawn_blocking(move || records::get(&root, &key)).await.ok()?
    }

    /// Whether some record's key starts with `prefix` (e.g. any tag of a registry).
    pub async fn has_record_under(&self, prefix: &str) -> bool {
        let (root, prefix) = (self.root.clone(), prefix.to_string());
        tokio::task::spawn_blocking(move || records::any(&root, &prefix)).await.unwrap_or(false)
    }

    /// Replaces the small mutable record under `key` (one file, however often it changes).
    pub async fn put_record<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let (root, key) = (self.root.clone(), key.to_string());
        let value = serde_json::to_value(value).unwrap_or_default();
        let path = root.join(records::DIR);
        tokio::task::spawn_blocking(move || records::put(&root, &key, &value))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|written| written)
            .map_err(|source| StoreError::Io { path, source })
    }

    fn content_path(&self, digest: &Digest) -> PathBuf {
        content_path(&self.root, digest)
    }
}

/// cacache's content directory under the root (`content-v2/ALGORITHM/xx/yy/rest`).
pub const CONTENT_DIR: &str = "content-v2";
/// cacache's index directory under the root.
pub const INDEX_DIR: &str = "index-v5";

/// Whether `root` holds a store at all (content or index).
pub fn exists(root: &Path) -> bool {
    root.join(CONTENT_DIR).exists() || root.join(INDEX_DIR).exists()
}

/// Where cacache keeps the content of `digest` under `root` (its content-v2 layout).
pub fn content_path(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    root.join(CONTENT_DIR).join(digest.algorithm().as_str()).join(&hex[0..2]).join(&hex[2..4]).join(&hex[4..])
}

/// Removes temp files (`spool-<pid>-<n>`, `stats-<pid>-<n>`) of processes that are gone, never
/// those of a pantry (or `pantry prefetch`) still running on this directory; returns how many.
/// Blocking.
pub fn remove_stale_temp(root: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(root.join("tmp")) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("spool-").or_else(|| name.strip_prefix("stats-"));
        let pid = pid.and_then(|rest| rest.split('-').next()).filter(|p| p.parse::<u32>().is_ok());
        let alive = pid.is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if pid.is_some() && !alive && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// [`Store::blob`], blocking.
fn blob_sync(root: &Path, digest: Digest) -> Option<CachedBlob> {
    let entry = cacache::metadata_sync(root, blob_key(&digest)).ok()??;
    let path = content_path(root, &digest);
    let size = std::fs::metadata(&path).ok()?.len();
    let small = if size <= SMALL { Some(Bytes::from(content::read(&path).ok()?)) } else { None };
    if size != entry.size as u64 || small.as_ref().is_some_and(|b| b.len() as u64 != size) {
        return None;
    }
    let mut meta: BlobMeta = serde_json::from_value(entry.metadata).unwrap_or_default();
    // Small content (manifests, configs) is read whole anyway: it is verified on every lookup,
    // and a file that no longer matches its digest is removed (the next fetch stores it anew).
    let corrupt = |why: &str| {
        tracing::warn!(%digest, path = %path.display(), "stored content {why}; removed");
        let _ = std::fs::remove_file(&path);
    };
    if let Some(bytes) = &small {
        if Digest::of(digest.algorithm(), bytes) != digest {
            corrupt("does not match its digest");
            return None;
        }
    }
    // A large file changed since it was committed (its mtime moved) is verified before it is
    // served again; if it still matches, the new mtime is recorded.
    let mtime = std::fs::metadata(&path).ok().map(|m| content::mtime_ns(&m));
    if small.is_none() && meta.mtime_ns.is_some() && mtime != meta.mtime_ns {
        if !content::matches(&path, &digest).unwrap_or(false) {
            corrupt("was changed after it was committed and no longer matches its digest");
            return None;
        }
        meta.mtime_ns = mtime;
        let opts = WriteOpts::new()
            .integrity(integrity(&digest))
            .size(size as usize)
            .metadata(serde_json::to_value(&meta).unwrap_or_default());
        let _ = cacache::index::insert(root, &blob_key(&digest), opts)
            .map_err(|error| tracing::warn!(%digest, %error, "cannot record the verified content's mtime"));
    }
    Some(CachedBlob { digest, path, size, meta, small })
}

/// The prefix of blobs' keys in cacache's index (`pantry/blob/<digest>`).
pub const BLOB_PREFIX: &str = "pantry/blob/";

/// The index key of `digest`'s entry (a [`Digest`] or its text).
pub fn blob_key(digest: &impl std::fmt::Display) -> String {
    format!("{BLOB_PREFIX}{digest}")
}

/// The ssri form of a digest (same algorithm, same bytes).
pub fn integrity(digest: &Digest) -> Integrity {
    let algorithm = match digest.algorithm() {
        Algorithm::Sha256 => SriAlgorithm::Sha256,
        Algorithm::Sha512 => SriAlgorithm::Sha512,
    };
    // A parsed Digest holds valid lowercase hex of the right length, which from_hex accepts.
    Integrity::from_hex(digest.hex(), algorithm).expect("a valid digest is valid hex")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
