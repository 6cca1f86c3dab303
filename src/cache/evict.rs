//! Keeping the store under `--max-size`: least recently used content goes first, down to 90 % of
//! the cap, never content a response is still reading nor content `--pin` rules pin. Last access is the content file's atime
//! (set by pantry, whose own reads do not change it: `content::open`), so it survives restarts;
//! index entries of evicted content are removed with it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{
    in_use::InUse,
    layout::{scan, ContentFile},
    pinning::pinned,
};
use crate::registry::policy::PinRule;

/// Which files to remove so that the rest fit in `target` bytes: oldest access first, skipping
/// pinned ones. Pure, for testing; `total` is the size of all files.
pub fn choose(
    mut files: Vec<ContentFile>,
    total: u64,
    target: u64,
    pinned: impl Fn(&str) -> bool,
) -> Vec<ContentFile> {
    files.sort_by_key(|f| f.accessed);
    let mut remaining = total;
    let mut chosen = Vec::new();
    for file in files {
        if remaining <= target {
            break;
        }
        if pinned(&file.digest) {
            continue;
        }
        remaining = remaining.saturating_sub(file.size);
        chosen.push(file);
    }
    chosen
}

/// Removes least recently used content until the store fits in 90 % of `max`, never what `pins`
/// pin; says how much was on disk and how much it freed.
/// `None` when the scan could not run.
pub async fn run(root: &Path, max: u64, in_use: &Arc<InUse>, pins: &Arc<Vec<PinRule>>) -> Option<Evicted> {
    let (scan_root, pins) = (root.to_path_buf(), Arc::clone(pins));
    let (files, pinned) =
        super::idle_work::run("pantry-evict", move || (scan(&scan_root), pinned(&scan_root, &pins))).await?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let count = files.len() as u64;
    if total <= max {
        return Some(Evicted { scanned: total, files: count, ..Evicted::default() });
    }
    let target = max / 10 * 9;
    let chosen = choose(files, total, target, |d| pinned.contains(d) || in_use.contains(d));
    let (root, in_use) = (root.to_path_buf(), Arc::clone(in_use));
    let removal = tokio::task::spawn_blocking(move || {
        let (mut freed, mut removed) = (0, 0);
        for file in chosen {
            // held since the scan: a response found it and is reading it
            if in_use.remove_unless_held(&file.digest, &file.path) {
                if let Err(error) = super::index::remove_blob(&root, &file.digest) {
                    // the content is gone: a lookup of the entry finds no file and misses
                    tracing::warn!(digest = %file.digest, %error, "evicted, but its index entry stays");
                }
                freed += file.size;
                removed += 1;
                tracing::debug!(digest = %file.digest, size = file.size, "evicted");
            }
        }
        (freed, removed)
    });
    let (freed, removed) = removal.await.unwrap_or_default();
    Some(Evicted { scanned: total, freed, files: count, removed })
}

/// What an eviction run found and did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evicted {
    /// Bytes of content on disk when the run scanned the store.
    pub scanned: u64,
    /// Bytes it removed.
    pub freed: u64,
    /// Content files on disk when it scanned.
    pub files: u64,
    /// Files it removed.
    pub removed: u64,
}

/// Records an access as the file's atime, at most once per `resolution`, and waits for it. The
/// mtime stays what the commit left, so that a change of the file shows (`store::blob`).
pub async fn touch(path: PathBuf, now: SystemTime, resolution: Duration) {
    let _ = tokio::task::spawn_blocking(move || touch_blocking(&path, now, resolution)).await;
}

/// [`touch`] on the calling thread (blocking).
pub fn touch_blocking(path: &Path, now: SystemTime, resolution: Duration) -> std::io::Result<()> {
    let file = super::content::open(path)?;
    let old = file.metadata()?.accessed()?;
    if now.duration_since(old).unwrap_or_default() >= resolution {
        file.set_times(std::fs::FileTimes::new().set_accessed(now))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn file(digest: &str, size: u64, age_s: u64) -> ContentFile {
        ContentFile {
            path: PathBuf::from(digest),
            digest: digest.into(),
            size,
            accessed: UNIX_EPOCH + Duration::from_secs(1_000_000 - age_s),
        }
    }

    #[test]
    fn least_recently_used_first_and_pinned_never() {
        let files =
            vec![file("new", 40, 10), file("old", 40, 1000), file("mid", 40, 100), file("pinned", 40, 5000)];
        let chosen = choose(files, 160, 90, |d| d == "pinned");
        let names: Vec<_> = chosen.iter().map(|f| f.digest.as_str()).collect();
        assert_eq!(names, ["old", "mid"]);
        assert!(choose(vec![file("a", 10, 1)], 10, 90, |_| false).is_empty(), "under the target: nothing");
    }
}
