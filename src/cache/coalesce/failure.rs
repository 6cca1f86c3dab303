//! Why a fetch failed once it had started, and whose failure it was: what a client joined to it is
//! answered (the upstream's 502, or pantry's own 500).

use std::sync::Arc;

/// Why a fetch failed after it started, and whose failure it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Whose failure it was.
    pub by: FailedBy,
    /// What happened.
    pub reason: Arc<str>,
}

/// The side of a failed fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedBy {
    /// The upstream's body broke off, was too long or too short, or was not the digest's content.
    Upstream,
    /// pantry could not write the spool (its cache disk).
    Disk,
    /// Every client left and `finish_abandoned_fetches` is off.
    Abandoned,
}

impl Failure {
    pub(super) fn new(by: FailedBy, reason: impl Into<Arc<str>>) -> Self {
        Self { by, reason: reason.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}
