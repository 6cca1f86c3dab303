//! The store: pantry's one door to the cache directory. Content is keyed by the OCI digest (as an ssri `Integrity`), so a
//! blob seen in two repositories or registries is stored once; metadata (media type, where it is
//! public) lives in cacache's index under `pantry/blob/<digest>`. The disk format is spelled in
//! `cache::layout`, cacache's index is read and written by `cache::index`; what a lookup returns,
//! and what it checks, in `cache::blob`.
//!
//! Content is written to a spool file under `tmp/`, hashed while written, and renamed into
//! cacache's content directory only once it matches its digest: the store never holds a partial
//! or unverified blob.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;

use tokio::sync::Notify;

pub use super::blob::{CachedBlob, SMALL};
pub use super::layout::{
    blob_key, content_path, exists, integrity, remove_stale_temp, tmp_dir, BLOB_PREFIX, CONTENT_DIR,
    INDEX_DIR,
};
use super::{
    blob, content, evict,
    hot::{Hot, HotBlob},
    in_use::InUse,
    index,
    layout::{record_path, records_dir},
    records,
};
pub use super::{blob_meta::BlobMeta, store_error::StoreError};
use crate::{
    clock::Clock,
    metrics::Metrics,
    registry::{digest::Digest, policy::PinRule},
};

/// The content-addressed store in `--cache-dir`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    next_spool: AtomicU64,
    max_size: u64,
    stored: AtomicU64,
    entries: AtomicU64,
    /// Whether `stored` and `entries` include what was on disk at open (counted in the background,
    /// so that a large store does not delay the first request).
    counted: AtomicBool,
    over_cap: Notify,
    /// Lookups that failed because the store could not be read (`pantry_store_read_errors_total`).
    read_errors: AtomicU64,
    in_use: Arc<InUse>,
    pins: ArcSwap<Vec<PinRule>>,
    /// When this process last touched each blob (pantry's clock, ms): a hot blob costs no file
    /// system call per read.
    touched: Mutex<HashMap<Digest, u64>>,
    clock: Clock,
    /// Whether whole reads of large content are verified while they stream (`verify_reads`).
    verify_reads: AtomicBool,
    /// Small content and records read within the last second.
    hot: Hot,
}

/// Accesses closer together than this update a blob's last-access time once.
const TOUCH_RESOLUTION: Duration = Duration::from_secs(60);
/// Blobs whose last touch is remembered in memory (then the memory starts over).
const TOUCHED_MAX: usize = 100_000;

impl Store {
    /// Opens (creating if needed) the store capped at `max_size` bytes and removes spool files a
    /// previous run left behind. What is stored is counted later ([`Self::count`], the evictor's
    /// first job), so the time to the first request does not grow with the store.
    pub async fn open(root: &Path, max_size: u64, clock: Clock) -> Result<Self, StoreError> {
        let tmp = tmp_dir(root);
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
        let migrated = tokio::task::spawn_blocking(move || {
            remove_stale_temp(&scan_root);
            records::migrate_from_index(&scan_root)
        })
        .await
        .unwrap_or(Ok(0));
        match migrated {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "moved tag and HTTP-cache records out of the index"),
            Err(source) => return Err(StoreError::Io { path: records_dir(root), source }),
        }
        Ok(Self {
            root: root.to_path_buf(),
            next_spool: AtomicU64::new(0),
            max_size,
            stored: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            counted: AtomicBool::new(false),
            over_cap: Notify::new(),
            read_errors: AtomicU64::new(0),
            in_use: Arc::default(),
            pins: ArcSwap::default(),
            touched: Mutex::default(),
            clock,
            verify_reads: AtomicBool::new(false),
            hot: Hot::default(),
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

    /// Content files in the store (as of the last scan, plus what was committed since).
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Whether the byte and entry counts include what was stored before this process opened it.
    pub fn counted(&self) -> bool {
        self.counted.load(Ordering::Relaxed)
    }

    /// Counts what is on disk (blocking work off the async threads) into the byte and entry
    /// counts, which until then hold only what this process committed.
    /// False when the walk could not run (no thread, or it failed): the counts stay as they were.
    pub async fn count(&self) -> bool {
        let (before, began) = (self.counts(), tokio::time::Instant::now());
        let root = self.root.clone();
        let Some((files, bytes)) =
            super::idle_work::run("pantry-count", move || super::layout::count(&root)).await
        else {
            return false;
        };
        self.resync(before, (bytes, files));
        let ms = began.elapsed().as_millis() as u64;
        tracing::info!(files, bytes, ms, "counted the store");
        true
    }

    /// The byte and entry counts now.
    fn counts(&self) -> (u64, u64) {
        (self.stored_bytes(), self.entries())
    }

    /// Sets the byte and entry counts to what a scan found on disk plus what was committed since
    /// it began (the counts were `before` then); from now on they include the whole store.
    fn resync(&self, before: (u64, u64), on_disk: (u64, u64)) {
        for (count, on_disk, before) in
            [(&self.stored, on_disk.0, before.0), (&self.entries, on_disk.1, before.1)]
        {
            let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(on_disk.saturating_add(now.saturating_sub(before)))
            });
        }
        self.counted.store(true, Ordering::Relaxed);
    }

    /// One eviction run; afterwards the stored-bytes and entry counts are resynced with what is on
    /// disk (a purge, a removed corrupt file or another process may have changed them), plus what
    /// was committed while the run went on.
    pub async fn evict_once(&self) -> evict::Evicted {
        let pins = self.pins.load_full();
        let (before, began) = (self.counts(), tokio::time::Instant::now());
        // a scan that could not run leaves the counts as they were (the evictor tries again)
        let Some(run) = evict::run(&self.root, self.max_size, &self.in_use, &pins).await else {
            return evict::Evicted::default();
        };
        self.resync(before, (run.scanned - run.freed, run.files - run.removed));
        if run.removed > 0 {
            self.hot.drop_all();
        }
        let ms = began.elapsed().as_millis() as u64;
        tracing::info!(files = run.files, removed = run.removed, freed = run.freed, ms, "eviction pass");
        run
    }

    /// Runs eviction in the background whenever a write takes the store over its cap.
    pub fn spawn_evictor(self: &Arc<Self>, metrics: Arc<Metrics>, shutdown: &crate::shutdown::Shutdown) {
        let store = Arc::clone(self);
        shutdown.spawn_background(async move {
            while !store.count().await {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
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

    /// Records a read of `blob` as its last access (on disk at most once per [`TOUCH_RESOLUTION`]),
    /// off the response's path: the answer does not wait for the file's metadata write (the blob
    /// is held from eviction until its response ends anyway).
    pub fn touch(&self, blob: &CachedBlob) {
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
        let (path, now) = (blob.path.clone(), self.now());
        drop(tokio::task::spawn_blocking(move || evict::touch_blocking(&path, now, TOUCH_RESOLUTION)));
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.clock.now_ms())
    }

    /// The blob with `digest`, if its index entry and complete content are present; an error
    /// when the store could not be read.
    pub async fn lookup(&self, digest: &Digest) -> Result<Option<CachedBlob>, StoreError> {
        if let Some(hot) = self.hot_blob(digest) {
            return Ok(Some(hot));
        }
        let epoch = self.hot.epoch();
        let (root, digest, in_use) = (self.root.clone(), digest.clone(), Arc::clone(&self.in_use));
        // one trip to the blocking pool for the hold, the index entry, the content's size and
        // small content
        let found = tokio::task::spawn_blocking(move || {
            let held = in_use.hold(&digest);
            blob::lookup(&root, digest, held)
        })
        .await
        .unwrap_or_else(|e| Err(self.join_error(e)));
        if let Ok(Some(blob)) = &found {
            self.keep_hot(epoch, blob);
        }
        found
    }

    /// The in-memory copy of small content `digest`, held from eviction like a lookup's.
    fn hot_blob(&self, digest: &Digest) -> Option<CachedBlob> {
        let hot = self.hot.blob(digest)?;
        Some(CachedBlob {
            digest: digest.clone(),
            path: hot.path.clone(),
            size: hot.size,
            meta: hot.meta.clone(),
            small: Some(hot.small.clone()),
            held: self.in_use.hold(digest),
        })
    }

    /// Keeps small content a lookup read (large content is streamed from its file anyway).
    fn keep_hot(&self, epoch: u64, blob: &CachedBlob) {
        if let Some(small) = &blob.small {
            let copy = HotBlob {
                path: blob.path.clone(),
                size: blob.size,
                meta: blob.meta.clone(),
                small: small.clone(),
            };
            self.hot.keep_blob(epoch, blob.digest.clone(), copy);
        }
    }

    /// Forgets every in-memory copy: files were removed behind the store (a purge).
    pub fn forget_copies(&self) {
        self.hot.drop_all();
    }

    /// [`Self::lookup`] for serving ([`Self::or_miss`]): an unreadable store fails no pull.
    pub async fn blob(&self, digest: &Digest) -> Option<CachedBlob> {
        let found = self.lookup(digest).await;
        self.or_miss(digest, found)
    }

    /// A lookup's answer for serving: a store that cannot be read is logged as an error, counted
    /// ([`Self::read_errors`]) and is a miss, so the content is asked of the upstream again (and
    /// verified) instead of failing the pull.
    pub fn or_miss<T>(
        &self,
        what: impl std::fmt::Display,
        found: Result<Option<T>, StoreError>,
    ) -> Option<T> {
        found.unwrap_or_else(|error| {
            self.read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%what, %error, "cannot read the store; asking upstream instead");
            None
        })
    }

    /// How many lookups failed because the store could not be read, since start.
    pub fn read_errors(&self) -> u64 {
        self.read_errors.load(Ordering::Relaxed)
    }

    fn join_error(&self, error: tokio::task::JoinError) -> StoreError {
        StoreError::Io { path: self.root.clone(), source: std::io::Error::other(error) }
    }

    /// Whether the cache's file system has room for a blob of `size` bytes (unknown: a minimum)
    /// plus a margin; a full disk then passes content through uncached instead of failing it.
    pub fn room_for(&self, size: Option<u64>) -> std::io::Result<()> {
        const MARGIN: u64 = 1024 * 1024;
        let available = fs4::available_space(tmp_dir(&self.root))?;
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
            tempfile::Builder::new().prefix(&prefix).rand_bytes(8).tempfile_in(tmp_dir(&self.root))?;
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
        self.entries.fetch_add(1, Ordering::Relaxed);
        if self.stored.fetch_add(size, Ordering::Relaxed) + size > self.max_size {
            self.over_cap.notify_one();
        }
        Ok(())
    }

    /// Stores small content already in memory and verified against `digest` (manifests).
    pub async fn put(&self, digest: &Digest, bytes: &[u8], meta: &BlobMeta) -> Result<(), StoreError> {
        let (file, spool) =
            self.new_spool().map_err(|source| StoreError::Io { path: tmp_dir(&self.root), source })?;
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
        let written = index::put_blob_async(&self.root, digest, size, meta).await;
        self.hot.drop_blob(digest);
        written?;
        Ok(())
    }

    fn content_path(&self, digest: &Digest) -> PathBuf {
        content_path(&self.root, digest)
    }
}

mod record_access;
#[cfg(test)]
mod tests;
