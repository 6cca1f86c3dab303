//! `pantry cache ls` and `pantry cache stats`: what the store holds, as a table or as JSON for
//! scripts, and the questions operators ask when the disk fills — which repository, how old, how
//! large — as filters and a sort order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantry::cache::{inventory, tally::Tally};
use wildmatch::WildMatch;

/// How `cache ls` orders entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Sort {
    /// Most recently used first.
    #[default]
    Accessed,
    /// Largest first.
    Size,
}

/// The filters and format of `cache ls`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LsArgs {
    /// Print JSON (an array of entries) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only entries seen in a repository matching this glob: `team/*`, or with its registry, `ghcr.io:443/team/*`.
    #[arg(long, value_name = "GLOB")]
    pub repository: Option<String>,
    /// Only entries not used for this long, e.g. 30d.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Only entries larger than this, e.g. 100MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub larger_than: Option<u64>,
    /// Order: most recently used first (accessed) or largest first (size).
    #[arg(long, value_enum, default_value_t = Sort::Accessed)]
    pub sort: Sort,
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>().map(|s| s.as_u64()).map_err(|e| format!("{text:?}: {e}"))
}

/// The entries of `entries` that `args` keeps, in its order.
pub fn select(mut entries: Vec<inventory::Entry>, args: &LsArgs, now: SystemTime) -> Vec<inventory::Entry> {
    let glob = args.repository.as_deref().map(WildMatch::new);
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    entries.retain(|entry| {
        let in_repository = glob.as_ref().is_none_or(|glob| {
            entry.repositories.iter().any(|scope| {
                let repository = scope.split_once('/').map_or(scope.as_str(), |(_, r)| r);
                glob.matches(scope) || glob.matches(repository)
            })
        });
        let old = args.older_than.is_none_or(|age| now_s.saturating_sub(entry.accessed) >= age.as_secs());
        let large = args.larger_than.is_none_or(|size| entry.size > size);
        in_repository && old && large
    });
    if args.sort == Sort::Size {
        entries.sort_by_key(|e| std::cmp::Reverse(e.size));
    }
    entries
}

/// Prints `cache ls`.
pub fn ls(root: &std::path::Path, args: &LsArgs) -> anyhow::Result<()> {
    let entries = select(inventory::list(root), args, SystemTime::now());
    if args.json {
        let rows: Vec<serde_json::Value> = entries.iter().map(json_entry).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<71}  {:>12}  {:<20}  {:<45}  repositories", "digest", "bytes", "last access", "media type");
    for entry in &entries {
        println!(
            "{:<71}  {:>12}  {:<20}  {:<45}  {}",
            entry.digest,
            entry.size,
            rfc3339(entry.accessed),
            entry.media_type,
            entry.repositories.join(",")
        );
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    // On stderr, so that the rows alone are what a script reads.
    eprintln!("{} entries, {} ({total} bytes)", entries.len(), bytesize::ByteSize::b(total));
    Ok(())
}

fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

fn json_entry(entry: &inventory::Entry) -> serde_json::Value {
    serde_json::json!({
        "digest": entry.digest,
        "size": entry.size,
        "media_type": entry.media_type,
        "last_access": rfc3339(entry.accessed),
        "last_access_unix": entry.accessed,
        "repositories": entry.repositories,
        "public_in": entry.public_in,
    })
}

/// Prints `cache stats`.
pub fn stats(root: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let stats = inventory::stats(root);
    let tally = Tally::load(root);
    if json {
        let value = serde_json::json!({
            "blobs": stats.blobs,
            "bytes": stats.bytes,
            "tags": stats.tags,
            "hits": tally.hits,
            "misses": tally.misses,
            "hit_ratio": tally.hit_ratio(),
            "served_bytes": tally.served_bytes,
            "fetched_bytes": tally.fetched_bytes,
            "fetched_from_origin_bytes": tally.origin_bytes(),
            "fetched_from_peers_bytes": tally.peer_bytes,
            "fetched_from_shared_store_bytes": tally.shared_bytes,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let size = |bytes| bytesize::ByteSize::b(bytes);
    println!("blobs and manifests: {}", stats.blobs);
    println!("bytes stored:        {} ({})", stats.bytes, size(stats.bytes));
    println!("tags remembered:     {}", stats.tags);
    let ratio = tally.hit_ratio().map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
    println!("hit ratio:           {ratio} ({} hits, {} misses)", tally.hits, tally.misses);
    println!(
        "bytes saved:         {} ({}) served from the cache",
        tally.served_bytes,
        size(tally.served_bytes)
    );
    println!("bytes fetched:       {} ({})", tally.fetched_bytes, size(tally.fetched_bytes));
    println!("  from the origins:  {} ({})", tally.origin_bytes(), size(tally.origin_bytes()));
    if tally.peer_bytes + tally.shared_bytes > 0 {
        println!("  from fleet members: {} ({})", tally.peer_bytes, size(tally.peer_bytes));
        println!("  from the shared store: {} ({})", tally.shared_bytes, size(tally.shared_bytes));
    }
    println!("(lifetime totals of this cache directory; a running pantry writes them every 10 s)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, size: u64, accessed: u64, repositories: &[&str]) -> inventory::Entry {
        inventory::Entry {
            digest: digest.into(),
            size,
            media_type: "-".into(),
            accessed,
            public_in: Vec::new(),
            repositories: repositories.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn filters_and_sorting() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let all = vec![
            entry("a", 10, 99 * 86_400, &["ghcr.io:443/team/app"]),
            entry("b", 5_000_000, 10 * 86_400, &["ghcr.io:443/team/db"]),
            entry("c", 300, 50 * 86_400, &["registry-1.docker.io:443/library/alpine"]),
        ];
        let digests =
            |args: LsArgs| select(all.clone(), &args, now).into_iter().map(|e| e.digest).collect::<Vec<_>>();
        assert_eq!(digests(LsArgs::default()), ["a", "b", "c"]);
        assert_eq!(digests(LsArgs { sort: Sort::Size, ..LsArgs::default() }), ["b", "c", "a"]);
        assert_eq!(digests(LsArgs { repository: Some("team/*".into()), ..LsArgs::default() }), ["a", "b"]);
        let with_registry =
            LsArgs { repository: Some("registry-1.docker.io:443/*".into()), ..LsArgs::default() };
        assert_eq!(digests(with_registry), ["c"]);
        let old = LsArgs { older_than: Some(Duration::from_secs(30 * 86_400)), ..LsArgs::default() };
        assert_eq!(digests(old), ["b", "c"]);
        assert_eq!(digests(LsArgs { larger_than: Some(1000), ..LsArgs::default() }), ["b"]);
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert!(parse_size("lots").is_err());
    }
}
