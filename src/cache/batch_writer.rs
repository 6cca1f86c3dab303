//! Writes a fetch's bytes to its spool file in batches: one batch goes to disk on the blocking
//! pool while the next one fills, so the leader keeps reading the upstream socket while the disk
//! works (an upstream that paces itself, like nginx's `limit_rate`, loses every moment its reader
//! is late), and followers are woken once per batch instead of once per network frame.

use std::{io, os::unix::fs::FileExt, sync::Arc};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered before they are written (and published to followers) together.
pub const BATCH: usize = 256 * 1024;

/// A spool file being written batch by batch.
pub struct BatchWriter {
    file: Arc<std::fs::File>,
    batch: Vec<Bytes>,
    batch_len: usize,
    /// Where the batch being gathered starts in the file.
    offset: u64,
    /// The batch on its way to disk, and where it ends.
    writing: Option<(u64, JoinHandle<io::Result<()>>)>,
}

impl BatchWriter {
    /// Writes into `file` from its start.
    pub fn new(file: std::fs::File) -> Self {
        Self { file: Arc::new(file), batch: Vec::new(), batch_len: 0, offset: 0, writing: None }
    }

    /// Adds `data`. When a batch is full it waits for the previous write and starts this one;
    /// then it returns how many bytes from the start are on disk (they may be published).
    pub async fn push(&mut self, data: Bytes) -> io::Result<Option<u64>> {
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len < BATCH {
            return Ok(None);
        }
        let on_disk = self.settle().await?;
        self.start();
        Ok(on_disk)
    }

    /// Writes what is left, waits for it and syncs the file; the total size.
    pub async fn finish(mut self) -> io::Result<u64> {
        self.settle().await?;
        self.start();
        self.settle().await?;
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other)??;
        Ok(self.offset)
    }

    /// Waits for the write in progress; where it ended, if there was one.
    async fn settle(&mut self) -> io::Result<Option<u64>> {
        let Some((end, write)) = self.writing.take() else { return Ok(None) };
        write.await.map_err(io::Error::other)??;
        Ok(Some(end))
    }

    /// Sends the gathered batch to disk.
    fn start(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let (batch, start) = (std::mem::take(&mut self.batch), self.offset);
        self.offset += std::mem::take(&mut self.batch_len) as u64;
        let file = Arc::clone(&self.file);
        let write = tokio::task::spawn_blocking(move || {
            let mut at = start;
            for chunk in batch {
                file.write_all_at(&chunk, at)?;
                at += chunk.len() as u64;
            }
            Ok(())
        });
        self.writing = Some((self.offset, write));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_land_in_order_and_report_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut writer = BatchWriter::new(std::fs::File::create(&path).unwrap());
        let chunk = Bytes::from(vec![7u8; 100 * 1024]);
        let mut published = Vec::new();
        for i in 0..7u8 {
            let data = Bytes::from(vec![i; chunk.len()]);
            if let Some(on_disk) = writer.push(data).await.unwrap() {
                published.push(on_disk);
            }
        }
        assert_eq!(writer.finish().await.unwrap(), 7 * 100 * 1024);
        assert_eq!(published, [300 * 1024], "the first batch was on disk when the third one filled");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 7 * 100 * 1024);
        for (i, block) in bytes.chunks(100 * 1024).enumerate() {
            assert!(block.iter().all(|b| *b == i as u8), "block {i} in place");
        }
    }
}
