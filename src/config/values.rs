//! Plain values the configuration holds for other modules: registry mirrors (used by
//! `upstream::mirrors`) and the images kept warm (`prefetch`'s scheduled refresh).

use std::time::Duration;

use crate::{
    registry::{manifest::Platform, reference::ImageRef},
    target::Target,
};

/// One mirror of one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry (`host:port`) this mirror stands in for.
    pub registry: String,
    /// Where the mirror is.
    pub target: Target,
    /// Lower is tried first.
    pub priority: u32,
}

/// Images to keep warm: prefetched at start and every `every`.
#[derive(Debug, Clone, PartialEq)]
pub struct Refresh {
    /// The images.
    pub images: Vec<ImageRef>,
    /// How often.
    pub every: Duration,
    /// One platform, or all of an index.
    pub platform: Option<Platform>,
}
