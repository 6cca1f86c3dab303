//! The status page: one self-contained HTML document drawn on the server from a
//! `server::status` snapshot (no external assets). Its numbers are there in the first paint, so it
//! works without JavaScript (then a `<noscript>` refresh reloads it every 2 s); with JavaScript a
//! few lines fetch the page again every 2 s and swap its live part in place, so there is one
//! renderer, here, and no second one in the browser.

use std::fmt::Write;

use serde_json::Value;

/// How often the page updates itself, in seconds.
const EVERY_SECONDS: u32 = 2;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;max-width:72em;color:#222}\
     table{border-collapse:collapse;margin-bottom:1em}td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}\
     .bar{background:#eee;width:12em;height:.8em}.bar div{background:#3a7;height:100%}\
     .numbers td{font-variant-numeric:tabular-nums}svg{background:#fafafa;border:1px solid #ddd}\
     .served{stroke:#3a7}.fetched{stroke:#888}.legend span{display:inline-block;width:1em;height:.3em;margin:0 .3em}\
     pre{background:#f6f6f6;padding:1em;overflow:auto}";

/// Swaps `#live` for the same element of a freshly fetched page; errors leave the old one.
const SCRIPT: &str = "setInterval(async()=>{try{const r=await fetch(location.href,{cache:'no-store'});\
     if(!r.ok)return;const d=new DOMParser().parseFromString(await r.text(),'text/html');\
     const n=d.getElementById('live');if(n)document.getElementById('live').replaceWith(n);}catch(e){}},";

/// The status page for `status` (a `server::status::snapshot`).
pub fn render(status: &Value) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>pantry</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"{EVERY_SECONDS}\"></noscript><style>{STYLE}</style></head><body>\
         <h1>pantry {}</h1><p><a href=\"/ca.pem\">CA certificate</a> · <a href=\"/metrics\">metrics</a> · \
         <a href=\"/api/status\">JSON</a></p><div id=\"live\">",
        escape(status["version"].as_str().unwrap_or(""))
    );
    let _ = write!(html, "<p>up {} s</p>", status["uptime_seconds"]);
    traffic(&mut html, status);
    store(&mut html, &status["store"]);
    flights(&mut html, status);
    let list = |key: &str| items(&status[key]);
    let text = |v: &Value| escape(v.as_str().unwrap_or(""));
    let top = list("top_repositories")
        .iter()
        .map(|r| {
            vec![
                text(&r["repository"]),
                size(&r["bytes"]),
                r["manifests"].to_string(),
                r["blobs"].to_string(),
            ]
        })
        .collect();
    table(
        &mut html,
        Some("Most served repositories"),
        &["repository", "bytes served", "manifests", "blobs"],
        top,
    );
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
    let mirrors = list("mirrors")
        .iter()
        .map(|m| {
            let state = m["skipped_for_seconds"]
                .as_u64()
                .map_or("tried".to_string(), |s| format!("skipped for {s} s after a failure"));
            vec![text(&m["registry"]), text(&m["mirror"]), m["priority"].to_string(), state]
        })
        .collect();
    table(&mut html, Some("Mirrors"), &["registry", "mirror", "priority", "state"], mirrors);
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
    let _ = write!(
        html,
        "<h2>Configuration in force</h2><pre>{}</pre></div><script>{SCRIPT}{}000);</script></body></html>",
        escape(status["configuration"].as_str().unwrap_or("")),
        EVERY_SECONDS
    );
    html
}

/// Hit ratio and bytes, now (the last interval) and since start, and the last hour's chart.
fn traffic(html: &mut String, status: &Value) {
    let since = &status["since_start"];
    let now = &status["now"];
    let percent = |v: &Value| v.as_f64().map_or("–".to_string(), |r| format!("{:.1} %", r * 100.0));
    let rate = |v: &Value| format!("{}/s", bytesize::ByteSize::b(v.as_f64().unwrap_or(0.0) as u64));
    let _ = write!(
        html,
        "<h2>Traffic</h2><table class=\"numbers\"><tr><th></th><th>now</th><th>since start</th></tr>\
         <tr><th>hit ratio</th><td id=\"hit-ratio-now\">{}</td><td id=\"hit-ratio\">{}</td></tr>\
         <tr><th>hits / misses</th><td></td><td>{} / {}</td></tr>\
         <tr><th>served from the cache</th><td>{}</td><td>{}</td></tr>\
         <tr><th>fetched upstream</th><td>{}</td><td>{}</td></tr></table>",
        percent(&now["hit_ratio"]),
        percent(&since["hit_ratio"]),
        since["hits"],
        since["misses"],
        rate(&now["served_bytes_per_second"]),
        size(&since["served_from_cache_bytes"]),
        rate(&now["fetched_bytes_per_second"]),
        size(&since["fetched_upstream_bytes"]),
    );
    // the kept points, then the totals now: the newest interval is drawn while it fills
    let mut points = items(&status["history"]).to_vec();
    points.push(serde_json::json!({
        "served_bytes": since["served_from_cache_bytes"],
        "fetched_bytes": since["fetched_upstream_bytes"],
    }));
    html.push_str(&chart(&points));
}

/// An SVG chart of the bytes served from the cache and fetched upstream per interval over
/// `points` (cumulative totals, so each interval is a difference), the newest at the right edge.
fn chart(points: &[Value]) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 120.0;
    let series = |key: &str| -> Vec<u64> {
        points
            .windows(2)
            .map(|w| w[1][key].as_u64().unwrap_or(0).saturating_sub(w[0][key].as_u64().unwrap_or(0)))
            .collect()
    };
    let (served, fetched) = (series("served_bytes"), series("fetched_bytes"));
    let top = served.iter().chain(&fetched).copied().max().unwrap_or(0).max(1) as f64;
    let slots = crate::metrics::history::POINTS as f64;
    let line = |values: &[u64]| -> String {
        // right-aligned: the newest interval at the right edge
        let offset = slots - values.len() as f64;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = (offset + i as f64 + 1.0) / slots * WIDTH;
                format!("{x:.1},{:.1}", HEIGHT - *v as f64 / top * (HEIGHT - 4.0))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "<p class=\"legend\">last hour, per 10 s (peak {}): <span style=\"background:#3a7\"></span>served from the \
         cache <span style=\"background:#888\"></span>fetched upstream</p>\
         <svg id=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"bytes per 10 s over the last hour\"><polyline class=\"served\" fill=\"none\" stroke-width=\"2\" \
         points=\"{}\"/><polyline class=\"fetched\" fill=\"none\" stroke-width=\"2\" points=\"{}\"/></svg>",
        bytesize::ByteSize::b(top as u64),
        line(&served),
        line(&fetched)
    )
}

fn store(html: &mut String, store: &Value) {
    let pins: Vec<String> = items(&store["pins"]).iter().map(|v| escape(v.as_str().unwrap_or(""))).collect();
    let _ = write!(
        html,
        "<h2>Store</h2><p>{}{} of {} · {} entries · {} evicted since start · pinned: {}</p>{}",
        if store["counted"] == false { "still counting: " } else { "" },
        size(&store["bytes"]),
        size(&store["max_bytes"]),
        store["entries"],
        size(&store["evicted_bytes"]),
        if pins.is_empty() { "nothing".to_string() } else { pins.join(", ") },
        bar(store["bytes"].as_u64().unwrap_or(0), store["max_bytes"].as_u64())
    );
}

fn flights(html: &mut String, status: &Value) {
    let text = |v: &Value| escape(v.as_str().unwrap_or(""));
    let rows: Vec<Vec<String>> = items(&status["in_flight"])
        .iter()
        .map(|flight| {
            let received = flight["received"].as_u64().unwrap_or(0);
            let rate = received as f64 / flight["seconds"].as_f64().unwrap_or(0.0).max(0.001);
            let total =
                flight["size"].as_u64().map_or("?".to_string(), |s| bytesize::ByteSize::b(s).to_string());
            vec![
                format!("<code>{}</code>", text(&flight["digest"])),
                text(&flight["repository"]),
                bar(received, flight["size"].as_u64()),
                format!("{} / {total}", size(&flight["received"])),
                flight["clients"].to_string(),
                format!("{}/s", bytesize::ByteSize::b(rate as u64)),
            ]
        })
        .collect();
    html.push_str("<h2>Fetches in flight</h2>");
    if rows.is_empty() {
        html.push_str("<p>none</p>");
    }
    table(html, None, &["digest", "repository", "progress", "bytes", "clients", "rate"], rows);
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

/// The elements of a JSON array (none when `v` is not one).
fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn size(v: &Value) -> String {
    bytesize::ByteSize::b(v.as_u64().unwrap_or(0)).to_string()
}

/// A progress bar for `done` of `total` (empty when the total is unknown).
fn bar(done: u64, total: Option<u64>) -> String {
    let percent = total.filter(|t| *t > 0).map_or(0.0, |t| (done as f64 / t as f64 * 100.0).min(100.0));
    format!(
        "<div class=\"bar\" role=\"progressbar\" aria-valuenow=\"{percent:.0}\" aria-valuemin=\"0\" \
         aria-valuemax=\"100\"><div style=\"width:{percent:.1}%\"></div></div>"
    )
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_escapes_what_it_shows_and_draws_progress_and_the_chart() {
        let status = json!({
            "version": "1.0", "uptime_seconds": 5,
            "since_start": { "hits": 3, "misses": 1, "hit_ratio": 0.75, "served_from_cache_bytes": 2048, "fetched_upstream_bytes": 1024 },
            "now": { "hit_ratio": 0.5, "served_bytes_per_second": 100.0, "fetched_bytes_per_second": 0.0, "seconds": 10.0 },
            "history": [
                { "at_ms": 0, "hits": 0, "misses": 0, "served_bytes": 0, "fetched_bytes": 0 },
                { "at_ms": 10000, "hits": 3, "misses": 1, "served_bytes": 2048, "fetched_bytes": 1024 },
            ],
            "store": { "bytes": 50, "max_bytes": 100, "entries": 7, "evicted_bytes": 0, "pins": ["r.test/app:*"] },
            "in_flight": [{ "digest": "sha256:ab", "repository": "<script>", "received": 25, "size": 100, "clients": 2, "seconds": 1.0 }],
            "top_repositories": [{ "repository": "r.test:443/app", "bytes": 2048, "manifests": 1, "blobs": 2 }],
            "rate_limits": [{ "registry": "registry-1.docker.io:443", "remaining": 42 }],
            "mirrors": [{ "registry": "r.test:443", "mirror": "m.test:443", "priority": 0, "skipped_for_seconds": 12 }],
            "configuration": "upstream_proxy = \"http://***@p\" <b>",
        });
        let html = render(&status);
        assert!(html.contains("75.0 %") && html.contains("50.0 %"), "{html}");
        assert!(
            html.contains("width:25.0%") && html.contains("width:50.0%"),
            "flight and store bars: {html}"
        );
        assert!(
            !html.contains("<script>\"") && html.contains("&lt;script&gt;") && html.contains("&lt;b&gt;")
        );
        assert!(html.contains("registry-1.docker.io:443</td><td>42"));
        assert!(html.contains("r.test:443/app</td><td>2.0 KiB</td><td>1</td><td>2"), "{html}");
        assert!(
            html.contains("skipped for 12 s") && html.contains("7 entries") && html.contains("r.test/app:*")
        );
        // two intervals (the kept one, then the one filling now, empty): the served line peaks at
        // the top, the fetched one half way up, both end at the bottom right
        assert!(html.contains("points=\"718.0,4.0 720.0,120.0\""), "{html}");
        assert!(html.contains("points=\"718.0,62.0 720.0,120.0\""), "{html}");
        assert_eq!(html.matches("<script>").count(), 1, "only the page's own script");
    }

    #[test]
    fn an_empty_snapshot_still_renders() {
        let html = render(&json!({}));
        assert!(html.contains("<h2>Traffic</h2>") && html.contains("none"));
    }
}
