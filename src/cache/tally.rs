//! The cache's lifetime statistics (`pantry cache stats`): hits, misses and bytes served from the
//! store or fetched upstream, summed over every run of pantry on this cache directory. A running
//! pantry adds its own counts to what the file held at its start and rewrites the file (atomically)
//! every few seconds and when it stops.

use std::{path::Path, sync::atomic::Ordering};

use serde::{Deserialize, Serialize};

use super::layout::{tmp_dir, STATS_FILE};
use crate::metrics::Totals;

/// Lifetime counts of a cache directory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Registry reads answered without fetching the content upstream.
    pub hits: u64,
    /// Registry reads that fetched upstream.
    pub misses: u64,
    /// Bytes sent to clients from the store (bytes saved upstream).
    pub served_bytes: u64,
    /// Bytes fetched into the store, from wherever they came.
    pub fetched_bytes: u64,
    /// Of those, the bytes fleet members sent (absent from files written before fleets).
    #[serde(default)]
    pub peer_bytes: u64,
    /// Of those, the bytes read from the fleet's shared store.
    #[serde(default)]
    pub shared_bytes: u64,
}

impl Tally {
    /// The tally stored under `root` (zero when there is none or it is unreadable).
    pub fn load(root: &Path) -> Self {
        std::fs::read(root.join(STATS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// This tally plus what `totals` counted since it was loaded.
    pub fn plus(self, totals: &Totals) -> Self {
        Self {
            hits: self.hits + totals.hits.load(Ordering::Relaxed),
            misses: self.misses + totals.misses.load(Ordering::Relaxed),
            served_bytes: self.served_bytes + totals.served_bytes.load(Ordering::Relaxed),
            fetched_bytes: self.fetched_bytes + totals.fetched_bytes.load(Ordering::Relaxed),
            peer_bytes: self.peer_bytes + totals.peer_bytes.load(Ordering::Relaxed),
            shared_bytes: self.shared_bytes + totals.shared_bytes.load(Ordering::Relaxed),
        }
    }

    /// The fetched bytes that came from the origins (registries and their mirrors).
    pub fn origin_bytes(&self) -> u64 {
        self.fetched_bytes.saturating_sub(self.peer_bytes + self.shared_bytes)
    }

    /// Hits over all registry reads, if there were any.
    pub fn hit_ratio(&self) -> Option<f64> {
        let all = self.hits + self.misses;
        (all > 0).then(|| self.hits as f64 / all as f64)
    }

    /// Writes the tally under `root`: a temp file of a random name (created exclusively, 0600)
    /// renamed over the old one, so it is never half written and never written through a link.
    pub async fn save(&self, root: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        let root = root.to_path_buf();
        let write = move || {
            let prefix = format!("stats-{}-", std::process::id());
            let mut temp = tempfile::Builder::new().prefix(&prefix).tempfile_in(tmp_dir(&root))?;
            std::io::Write::write_all(&mut temp, &bytes)?;
            temp.persist(root.join(STATS_FILE)).map(drop).map_err(|e| e.error)
        };
        tokio::task::spawn_blocking(write).await.map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survives_a_restart_and_adds_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        assert_eq!(Tally::load(dir.path()), Tally::default());
        let totals = Totals::default();
        totals.hits.store(3, Ordering::Relaxed);
        totals.misses.store(1, Ordering::Relaxed);
        totals.served_bytes.store(300, Ordering::Relaxed);
        Tally::default().plus(&totals).save(dir.path()).await.unwrap();
        let second_run = Tally::load(dir.path()).plus(&totals);
        assert_eq!(second_run, Tally { hits: 6, misses: 2, served_bytes: 600, ..Tally::default() });
        assert_eq!(second_run.hit_ratio(), Some(0.75));
        std::fs::write(dir.path().join(STATS_FILE), b"{garbage").unwrap();
        assert_eq!(Tally::load(dir.path()), Tally::default(), "an unreadable file starts over");
    }

    #[test]
    fn a_file_from_before_fleets_keeps_its_counts_and_fetches_split_by_source() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"hits": 5, "misses": 2, "served_bytes": 10, "fetched_bytes": 900}"#;
        std::fs::write(dir.path().join(STATS_FILE), old).unwrap();
        let tally = Tally::load(dir.path());
        assert_eq!((tally.hits, tally.fetched_bytes, tally.origin_bytes()), (5, 900, 900));
        let totals = Totals::default();
        totals.fetched_bytes.store(100, Ordering::Relaxed);
        totals.peer_bytes.store(60, Ordering::Relaxed);
        totals.shared_bytes.store(30, Ordering::Relaxed);
        let now = tally.plus(&totals);
        assert_eq!((now.peer_bytes, now.shared_bytes, now.origin_bytes()), (60, 30, 910));
    }
}
