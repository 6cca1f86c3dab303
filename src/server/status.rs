//! What pantry is doing now, for people and scripts: `/api/status` (JSON) and the status page at
//! `/` on the admin port, a self-contained HTML page rendered on the server (no JavaScript, no
//! external assets) that reloads itself every 2 s. Both show the same snapshot: requests and
//! bytes since start with the hit ratio, the store against its cap, the fetches in flight with
//! their progress and clients, the registries' rate limits, each upstream's last answer and error
//! count, the most recent errors with their `Proxy-Status`, and the configuration in force
//! (secrets masked).

use std::{fmt::Write, time::Instant};

use serde_json::{json, Value};

use crate::ingress::Ingress;

/// When this process started (for the uptime).
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Notes the start time (called when the admin port is set up).
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
        "store": {
            "bytes": proxy.store().stored_bytes(),
            "max_bytes": proxy.store().max_bytes(),
        },
        "in_flight": proxy.flights().views(),
        "rate_limits": limits,
        "registries": proxy.activity().origins().into_iter().map(|(origin, state)| {
            let mut value = json!(state);
            value["origin"] = json!(origin);
            value
        }).collect::<Vec<_>>(),
        "recent_errors": proxy.activity().errors(),
        "certificates_minted": ingress.authority.minted(),
        "configuration": ingress.config.load().effective_toml(),
    })
}

/// The status page for `status` (a [`snapshot`]).
pub fn page(status: &Value) -> String {
    let size = |v: &Value| bytesize::ByteSize::b(v.as_u64().unwrap_or(0)).to_string();
    let since = &status["since_start"];
    let ratio = since["hit_ratio"].as_f64().map_or("–".to_string(), |r| format!("{:.1} %", r * 100.0));
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\
         <title>pantry</title><style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}\
         table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}\
         .bar{background:#eee;width:12em;height:.8em}.bar div{background:#3a7;height:100%}\
         pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>pantry {}</h1><p>up {} s · <a href=\"/ca.pem\">CA certificate</a> · <a href=\"/metrics\">metrics</a> · \
         <a href=\"/api/status\">JSON</a></p>",
        escape(status["version"].as_str().unwrap_or("")),
        status["uptime_seconds"]
    );
    let _ = write!(
        html,
        "<h2>Since start</h2><table><tr><th>hit ratio</th><td>{ratio}</td></tr>\
         <tr><th>hits / misses</th><td>{} / {}</td></tr><tr><th>served from the cache</th><td>{}</td></tr>\
         <tr><th>fetched upstream</th><td>{}</td></tr></table>",
        since["hits"],
        since["misses"],
        size(&since["served_from_cache_bytes"]),
        size(&since["fetched_upstream_bytes"])
    );
    let store = &status["store"];
    let _ = write!(
        html,
        "<h2>Store</h2><p>{} of {}</p>{}",
        size(&store["bytes"]),
        size(&store["max_bytes"]),
        bar(store["bytes"].as_u64().unwrap_or(0), store["max_bytes"].as_u64())
    );
    let list = |key: &str| status[key].as_array().cloned().unwrap_or_default();
    let text = |v: &Value| escape(v.as_str().unwrap_or(""));
    let flights: Vec<Vec<String>> = list("in_flight")
        .iter()
        .map(|flight| {
            let received = flight["received"].as_u64().unwrap_or(0);
            let rate = received as f64 / flight["seconds"].as_f64().unwrap_or(0.0).max(0.001);
            let total =
                flight["size"].as_u64().map_or("?".to_string(), |s| bytesize::ByteSize::b(s).to_string());
            vec![
                format!("<code>{}</code>", text(&flight["digest"])),
                text(&flight["origin"]),
                bar(received, flight["size"].as_u64()),
                format!("{} / {total}", size(&flight["received"])),
                flight["clients"].to_string(),
                format!("{}/s", bytesize::ByteSize::b(rate as u64)),
            ]
        })
        .collect();
    html.push_str("<h2>Fetches in flight</h2>");
    if flights.is_empty() {
        html.push_str("<p>none</p>");
    }
    table(&mut html, None, &["digest", "from", "progress", "bytes", "clients", "rate"], flights);
    let limits =
        list("rate_limits").iter().map(|l| vec![text(&l["registry"]), l["remaining"].to_string()]).collect();
    table(&mut html, Some("Registries' rate limits"), &["registry", "remaining"], limits);
    let upstreams = list("registries")
        .iter()
        .map(|r| {
            let cell = |k: &str| r[k].to_string();
            vec![text(&r["origin"]), cell("last_status"), cell("answers"), cell("errors")]
        })
        .collect();
    table(&mut html, Some("Upstreams"), &["origin", "last answer", "answers", "errors"], upstreams);
    let errors = list("recent_errors")
        .iter()
        .map(|e| {
            let at =
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(e["at_ms"].as_u64().unwrap_or(0));
            let proxy_status = e["proxy_status"].as_str().map_or("–".to_string(), escape);
            vec![
                humantime::format_rfc3339_seconds(at).to_string(),
                format!("{}{}", text(&e["origin"]), text(&e["path"])),
                e["status"].to_string(),
                proxy_status,
            ]
        })
        .collect();
    table(&mut html, Some("Recent errors"), &["when", "request", "status", "Proxy-Status"], errors);
    let _ = writeln!(
        html,
        "<h2>Configuration in force</h2><pre>{}</pre></body></html>",
        escape(status["configuration"].as_str().unwrap_or(""))
    );
    html
}

/// A table of `rows` (HTML cells) under `title`, or nothing when there are no rows.
fn table(html: &mut String, title: Option<&str>, columns: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        return;
    }
    if let Some(title) = title {
        let _ = write!(html, "<h2>{title}</h2>");
    }
    html.push_str("<table><tr>");
    for column in columns {
        let _ = write!(html, "<th>{column}</th>");
    }
    html.push_str("</tr>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{cell}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
}

/// A progress bar for `done` of `total` (empty when the total is unknown).
fn bar(done: u64, total: Option<u64>) -> String {
    let percent = total.filter(|t| *t > 0).map_or(0.0, |t| (done as f64 / t as f64 * 100.0).min(100.0));
    format!("<div class=\"bar\"><div style=\"width:{percent:.1}%\"></div></div>")
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows_and_draws_progress() {
        let status = json!({
            "version": "1.0", "uptime_seconds": 5,
            "since_start": { "hits": 3, "misses": 1, "hit_ratio": 0.75, "served_from_cache_bytes": 2048, "fetched_upstream_bytes": 1024 },
            "store": { "bytes": 50, "max_bytes": 100 },
            "in_flight": [{ "digest": "sha256:ab", "origin": "<script>", "received": 25, "size": 100, "clients": 2, "seconds": 1.0 }],
            "rate_limits": [{ "registry": "registry-1.docker.io:443", "remaining": 42 }],
            "configuration": "upstream_proxy = \"http://***@p\" <b>",
        });
        let html = page(&status);
        assert!(
            html.contains("75.0 %") && html.contains("width:25.0%") && html.contains("width:50.0%"),
            "{html}"
        );
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;") && html.contains("&lt;b&gt;"));
        assert!(html.contains("registry-1.docker.io:443</td><td>42"));
    }
}
