//! `pantry cache ls|stats|gc|purge`: printing what `cache::inventory` finds and does.

use std::{path::Path, time::Duration};

use anyhow::Context;
use pantry::cache::{
    inventory::{self, Purge},
    tally::Tally,
};

/// One of the cache tools.
pub enum Tool {
    Ls,
    Stats,
    Gc,
    Purge(String),
}

/// Runs `tool` on the cache in `root`.
pub fn run(root: &Path, tool: Tool) -> anyhow::Result<()> {
    if !pantry::cache::store::exists(root) {
        anyhow::bail!(
            "{} holds no pantry cache (nothing stored yet, or a wrong --cache-dir)",
            root.display()
        );
    }
    match tool {
        Tool::Ls => {
            println!(
                "{:<71}  {:>12}  {:<20}  {:<45}  public in",
                "digest", "bytes", "last access", "media type"
            );
            for entry in inventory::list(root) {
                let accessed = std::time::UNIX_EPOCH + Duration::from_secs(entry.accessed);
                println!(
                    "{:<71}  {:>12}  {:<20}  {:<45}  {}",
                    entry.digest,
                    entry.size,
                    humantime::format_rfc3339_seconds(accessed).to_string(),
                    entry.media_type,
                    entry.public_in.join(",")
                );
            }
        }
        Tool::Stats => {
            let stats = inventory::stats(root);
            println!("blobs and manifests: {}", stats.blobs);
            println!("bytes stored:        {} ({})", stats.bytes, bytesize::ByteSize::b(stats.bytes));
            println!("tags remembered:     {}", stats.tags);
            let tally = Tally::load(root);
            let ratio = tally.hit_ratio().map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0));
            println!("hit ratio:           {ratio} ({} hits, {} misses)", tally.hits, tally.misses);
            let size = |bytes| bytesize::ByteSize::b(bytes);
            println!(
                "bytes saved:         {} ({}) served from the cache",
                tally.served_bytes,
                size(tally.served_bytes)
            );
            println!(
                "bytes fetched:       {} ({}) from upstreams",
                tally.fetched_bytes,
                size(tally.fetched_bytes)
            );
            println!("(lifetime totals of this cache directory; a running pantry writes them every 10 s)");
        }
        Tool::Gc => {
            let report = inventory::gc(root).context("cannot read the cache")?;
            println!("checked:        {}", report.checked);
            println!("corrupt:        {}", report.corrupt.len());
            for digest in &report.corrupt {
                println!("  removed corrupt {digest}");
            }
            println!("orphan content: {}", report.orphan_content);
            println!("orphan entries: {}", report.orphan_entries);
            println!("stale spools:   {}", report.stale_spools);
        }
        Tool::Purge(target) => {
            let what = Purge::parse(&target).map_err(anyhow::Error::msg)?;
            let removed = inventory::purge(root, &what);
            println!("removed {removed} entr{}", if removed == 1 { "y" } else { "ies" });
        }
    }
    Ok(())
}
