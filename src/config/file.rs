//! The TOML file's tables, as written: `[refresh]`, `[[mirrors]]`, `[[repositories]]`,
//! `[[tag_rules]]` (its plain keys are `RunArgs`'s fields).

use serde::Deserialize;

/// The `[refresh]` table: images kept warm, how often (default 1h), one platform or all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRefresh {
    pub(super) images: Vec<String>,
    pub(super) every: Option<String>,
    pub(super) platform: Option<String>,
}

/// A `[[mirrors]]` entry: the registry it stands in for, its URL, its priority (lower first).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMirror {
    pub(super) registry: String,
    pub(super) url: String,
    pub(super) priority: Option<u32>,
}

/// A `[[repositories]]` entry: globs (default `*`), `action` (cache, pass, deny), `push` (bool).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNamespaceRule {
    pub(super) registry: Option<String>,
    pub(super) repository: Option<String>,
    pub(super) action: Option<String>,
    pub(super) push: Option<bool>,
}

/// A `[[tag_rules]]` entry: globs (default `*`) and a TTL (`10m`, `0`, `immutable`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTagRule {
    pub(super) registry: Option<String>,
    pub(super) repository: Option<String>,
    pub(super) tag: Option<String>,
    pub(super) ttl: String,
}
