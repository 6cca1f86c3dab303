//! What pantry is doing now, for people and scripts: the snapshot `/api/status` answers (JSON,
//! documented in docs/OPERATIONS.md) and the status page (`server::page`) draws: requests and
//! bytes now (the last interval) and since start with the hit ratio, the last hour of totals, the
//! store against its cap, the fetches in flight with their progress and clients, the most served
//! repositories, the registries' rate limits, each upstream's last answer and error count, the
//! mirrors and which are skipped, the most recent errors with their `Proxy-Status`, and the
//! configuration in force (secrets masked).

use std::time::Instant;

use serde_json::{json, Value};

use crate::{ingress::Ingress, metrics::history::Point};

/// Repositories the snapshot lists, most served first.
const TOP: usize = 10;

/// When this process started (for the uptime).
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Notes the start time (called when pantry starts serving).
pub fn started() {
    STARTED.get_or_init(Instant::now);
}

/// The snapshot `/api/status` answers.
pub fn snapshot(ingress: &Ingress) -> Value {
    let proxy = &ingress.proxy;
    let totals = &proxy.metrics().totals;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let (hits, misses) = (load(&totals.hits), load(&totals.misses));
    let ratio = (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64);
    let config = ingress.config.load();
    let history = &proxy.metrics().history;
    let current = Point::of(totals, config.clock.now_ms());
    let mut limits: Vec<Value> = proxy
        .upstream_rate_limits()
        .remaining()
        .into_iter()
        .map(|(registry, remaining)| json!({ "registry": registry, "remaining": remaining }))
        .collect();
    limits.sort_by(|a, b| a["registry"].as_str().cmp(&b["registry"].as_str()));
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": STARTED.get().map_or(0, |t| t.elapsed().as_secs()),
        "since_start": {
            "hits": hits,
            "misses": misses,
            "hit_ratio": ratio,
            "served_from_cache_bytes": load(&totals.served_bytes),
            "fetched_upstream_bytes": load(&totals.fetched_bytes),
        },
        "now": history.now(&current),
        "history": history.points(),
        "store": {
            "bytes": proxy.store().stored_bytes(),
            "max_bytes": proxy.store().max_bytes(),
            "entries": proxy.store().entries(),
            "counted": proxy.store().counted(),
            "evicted_bytes": load(&totals.evicted_bytes),
            "pins": config.live.pin.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "in_flight": proxy.flights().views(),
        "top_repositories": named("repository", proxy.activity().top_repositories(TOP)),
        "mirrors": proxy.mirror_states(),
        "rate_limits": limits,
        "registries": named("origin", proxy.activity().origins()),
        "recent_errors": proxy.activity().errors(),
        "certificates_minted": ingress.authority.minted(),
        "configuration": config.effective_toml(),
    })
}

/// Each `(name, value)` as the value's JSON object with the name added under `key`.
fn named<T: serde::Serialize>(key: &str, items: Vec<(String, T)>) -> Vec<Value> {
    items
        .into_iter()
        .map(|(name, item)| {
            let mut value = json!(item);
            value[key] = json!(name);
            value
        })
        .collect()
}
