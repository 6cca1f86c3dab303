//! `pantry cache ls|stats|gc|purge`: printing what `cache::inventory` finds and does (`ls` and
//! `stats` in `listing`).

use std::path::Path;

use anyhow::Context;
use pantry::cache::inventory::{self, Purge};

/// One of the cache tools.
pub enum Tool {
    Ls(crate::listing::LsArgs),
    Stats { json: bool },
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
        Tool::Ls(list) => crate::listing::ls(root, &list)?,
        Tool::Stats { json } => crate::listing::stats(root, json)?,
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
