//! Which stored digests eviction must keep (`--pin`): the manifests that pinned tags point at and
//! everything those manifests refer to (recursively through indexes), and every blob seen in a
//! pinned repository. Computed from the index and the stored manifests at each eviction run
//! (blocking: run it off the async threads).

use std::{
    collections::{HashSet, VecDeque},
    path::Path,
};

use super::{
    index,
    layout::{content_path, split_tag_key, TagRecord, TAG_PREFIX},
    records,
};
use crate::registry::{
    digest::Digest,
    manifest::{self, References, MAX_MANIFEST_SIZE},
    policy::PinRule,
};

/// The digests `rules` pin in the cache at `root`.
pub fn pinned(root: &Path, rules: &[PinRule]) -> HashSet<String> {
    let mut roots: VecDeque<(String, bool)> = VecDeque::new();
    if rules.is_empty() {
        return HashSet::new();
    }
    for (digest, meta) in index::blob_entries(root) {
        let in_pinned_scope = meta.seen_in.iter().any(|scope| {
            let scope = scope.strip_prefix("http://").unwrap_or(scope);
            scope
                .split_once('/')
                .is_some_and(|(registry, repo)| rules.iter().any(|r| r.pins_scope(registry, repo)))
        });
        if in_pinned_scope {
            let manifest_like = meta.media_type.as_deref().is_some_and(is_manifest_type);
            roots.push_back((digest, manifest_like));
        }
    }
    for (key, value) in records::list(root, TAG_PREFIX) {
        let Some((registry, repository, tag)) = key.strip_prefix(TAG_PREFIX).and_then(split_tag_key) else {
            continue;
        };
        if rules.iter().any(|r| r.pins_tag(registry, repository, tag)) {
            if let Ok(record) = serde_json::from_value::<TagRecord>(value) {
                roots.push_back((record.digest, true));
            }
        }
    }
    let mut pinned = HashSet::new();
    while let Some((digest, manifest_like)) = roots.pop_front() {
        if !pinned.insert(digest.clone()) || !manifest_like {
            continue;
        }
        let Ok(parsed) = digest.parse::<Digest>() else { continue };
        match read_manifest(root, &parsed).map(|body| manifest::references(&body)) {
            Some(Ok(References::Image(blobs))) => {
                roots.extend(blobs.into_iter().map(|b| (b.digest.to_string(), false)))
            }
            Some(Ok(References::Index(children))) => {
                roots.extend(children.into_iter().map(|c| (c.digest.to_string(), true)))
            }
            _ => {}
        }
    }
    pinned
}

fn is_manifest_type(media_type: &str) -> bool {
    media_type.contains("manifest") || media_type.contains("index")
}

fn read_manifest(root: &Path, digest: &Digest) -> Option<Vec<u8>> {
    let path = content_path(root, digest);
    let size = std::fs::metadata(&path).ok()?.len();
    (size <= MAX_MANIFEST_SIZE as u64).then(|| super::content::read(&path).ok()).flatten()
}
