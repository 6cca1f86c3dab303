//! Why the store failed: a file operation or cacache's index.

use std::path::PathBuf;

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
