//! The admin API for pipelines: a prefetch started with one call (and waited for with `?wait=1`),
//! its progress by id, a purge by digest or reference; a bearer token on every call once
//! `admin_token_file` is set, and no API beyond loopback without one.

mod common;

use std::net::SocketAddr;

use common::{registry::FakeRegistry, registry::MANIFEST_TYPE, start_pantry};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const TOKEN: &str = "admin-token-6c0f2a";

/// One API call: the status and the JSON answer.
async fn call(
    admin: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:{}\r\n{authorization}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        admin.port(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(json.trim()).unwrap_or(serde_json::Value::Null))
}

/// A registry holding `team/app:v1` (a manifest and its 3000-byte config blob).
async fn registry_with_image() -> (FakeRegistry, String, String) {
    let registry = FakeRegistry::start().await;
    let blob = registry.state.add_blob(vec![4u8; 3000], "application/octet-stream");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"digest":"{blob}","size":3000}},"layers":[]}}"#
    );
    let manifest = registry.state.add_blob(manifest.into_bytes(), MANIFEST_TYPE);
    registry.state.tag("team/app", "v1", &manifest);
    (registry, blob, manifest)
}

#[tokio::test]
async fn a_pipeline_warms_the_cache_and_purges_with_a_token() {
    let (registry, blob, _) = registry_with_image().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        common::admin_token(c, TOKEN);
    })
    .await;
    let admin = pantry.admin.unwrap();
    let image = format!("{}/team/app:v1", registry.host());
    let body = serde_json::json!({ "images": [image] }).to_string();
    for token in [None, Some("wrong")] {
        let (status, _) = call(admin, "POST", "/api/prefetch", token, &body).await;
        assert_eq!(status, 401, "{token:?}");
    }
    assert_eq!(registry.state.count("GET blob"), 0, "nothing started without the token");

    let (status, done) = call(admin, "POST", "/api/prefetch?wait=1", Some(TOKEN), &body).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "done");
    assert_eq!(done["images"][0]["fetched"], 1);
    assert_eq!(done["images"][0]["bytes"], 3000);
    assert_eq!(done["bytes_received"], 3000);
    assert!(pantry.pantry.proxy().store().blob(&blob.parse().unwrap()).await.is_some());
    let id = done["id"].as_str().unwrap().to_string();
    let (status, again) = call(admin, "GET", &format!("/api/prefetch/{id}"), Some(TOKEN), "").await;
    assert_eq!((status, again["state"].as_str()), (200, Some("done")));

    // Without ?wait: accepted at once, with an id to ask about.
    let (status, accepted) = call(admin, "POST", "/api/prefetch", Some(TOKEN), &body).await;
    assert_eq!(status, 202);
    let id = accepted["id"].as_str().unwrap();
    let (status, progress) = call(admin, "GET", &format!("/api/prefetch/{id}"), Some(TOKEN), "").await;
    assert_eq!(status, 200);
    assert!(["running", "done"].contains(&progress["state"].as_str().unwrap()), "{progress}");

    let purge = serde_json::json!({ "digest": blob }).to_string();
    let (status, purged) = call(admin, "POST", "/api/purge", Some(TOKEN), &purge).await;
    assert_eq!((status, purged["removed"].as_u64()), (200, Some(1)), "{purged}");
    let (status, missing) = call(admin, "GET", "/api/prefetch/p999", Some(TOKEN), "").await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test]
async fn bad_requests_are_clear_errors() {
    let pantry = start_pantry(|c| c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = pantry.admin.unwrap();
    for (body, expected) in [
        ("not json", "request body"),
        (r#"{"images": []}"#, "1 to"),
        (r#"{"images": ["UPPER/Case"]}"#, "image"),
        (r#"{"images": ["alpine"], "platform": "not a platform/x/y/z"}"#, "platform"),
        (r#"{"images": ["alpine"], "extra": 1}"#, "unknown field"),
    ] {
        let (status, answer) = call(admin, "POST", "/api/prefetch", None, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(expected), "{body}: {answer}");
    }
    let (status, answer) = call(admin, "POST", "/api/purge", None, r#"{"digest":"sha256:zz"}"#).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn without_a_token_the_api_answers_only_on_a_loopback_admin_port() {
    let pantry = start_pantry(|c| c.startup.admin_listen = Some("0.0.0.0:0".parse().unwrap())).await;
    let admin = SocketAddr::from(([127, 0, 0, 1], pantry.admin.unwrap().port()));
    let (status, answer) = call(admin, "POST", "/api/purge", None, r#"{"reference":"r.test/x"}"#).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("admin_token_file"));
    let page = common::plain_get(admin, "/").await;
    assert!(page.starts_with("HTTP/1.1 403"), "the status page too: {page}");
    assert!(common::plain_get(admin, "/healthz").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_status_page_and_its_json_show_what_pantry_is_doing() {
    let (registry, blob, _) = registry_with_image().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = pantry.admin.unwrap();
    registry.state.gated.store(true, std::sync::atomic::Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/team/app/blobs/{blob}"));
    let client = common::request(&pantry, &host, http::Method::GET, &path, &[]);
    // While the blob is held at the gate its fetch is in flight with one client.
    let watch = async {
        loop {
            let (_, status) = call(admin, "GET", "/api/status", None, "").await;
            let streaming =
                status["in_flight"].as_array().and_then(|a| a.first()).filter(|f| f["size"].is_u64());
            if let Some(flight) = streaming {
                assert_eq!(flight["digest"], blob.as_str());
                assert_eq!(flight["size"], 3000);
                assert_eq!(flight["repository"], format!("{host}/team/app").as_str());
                assert!(flight["clients"].as_u64().unwrap() >= 1, "{flight}");
                let page = plain_page(admin).await;
                assert!(page.contains(&blob) && page.contains("class=\"bar\""), "{page}");
                registry.state.gate.notify_waiters();
                return status;
            }
            tokio::task::yield_now().await;
        }
    };
    let ((response, body), seen) = tokio::join!(client, watch);
    assert_eq!(response.status(), 200);
    assert_eq!(body.unwrap().len(), 3000);
    assert!(seen["configuration"].as_str().unwrap().contains("listen = "));
    let (_, after) = call(admin, "GET", "/api/status", None, "").await;
    assert_eq!(after["since_start"]["misses"], 1);
    assert_eq!(after["store"]["bytes"], 3000);
    assert_eq!(after["store"]["entries"], 1);
    let top = &after["top_repositories"][0];
    assert_eq!(
        (top["repository"].as_str(), top["bytes"].as_u64()),
        (Some(format!("{host}/team/app").as_str()), Some(3000)),
        "{after}"
    );
    let page = plain_page(admin).await;
    assert!(page.contains("<h2>Traffic</h2>") && page.contains("<svg id=\"chart\""), "{page}");
    assert!(
        page.contains("<noscript><meta http-equiv=\"refresh\""),
        "reloads itself without JavaScript: {page}"
    );
    assert!(page.contains(&format!("<td>{host}/team/app</td>")), "most served repositories: {page}");
    let upstream =
        after["registries"].as_array().unwrap().iter().find(|r| r["origin"] == host.as_str()).cloned();
    assert_eq!(upstream.as_ref().map(|u| u["last_status"].clone()), Some(200.into()), "{after}");

    // An outage shows as the upstream's last answer and as a recent error with pantry's Proxy-Status.
    registry.state.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let offline = start_pantry(|c| {
        registry.configure(c);
        c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.offline = true;
    })
    .await;
    let missing = format!("/v2/team/app/blobs/sha256:{}", "0".repeat(64));
    let (refused, _) = common::request(&offline, &host, http::Method::GET, &missing, &[]).await;
    assert_eq!(refused.status(), 504);
    let (_, status) = call(offline.admin.unwrap(), "GET", "/api/status", None, "").await;
    let error = &status["recent_errors"][0];
    assert_eq!(
        (error["status"].as_u64(), error["path"].as_str()),
        (Some(504), Some(missing.as_str())),
        "{status}"
    );
    assert!(error["proxy_status"].as_str().unwrap().contains("destination_unavailable"), "{error}");
    assert!(plain_page(offline.admin.unwrap()).await.contains("Recent errors"));
}

/// The documented shape of `/api/status` (docs/OPERATIONS.md): every key, with its JSON type.
#[tokio::test]
async fn the_status_json_keeps_its_documented_shape() {
    let (registry, _, manifest) = registry_with_image().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.pin = vec![pantry::registry::policy::PinRule::parse("r.test/team/*").unwrap()];
    })
    .await;
    let path = format!("/v2/team/app/manifests/{manifest}");
    let (response, _) = common::request(&pantry, &registry.host(), http::Method::GET, &path, &[]).await;
    assert_eq!(response.status(), 200);
    let (_, status) = call(pantry.admin.unwrap(), "GET", "/api/status", None, "").await;
    use serde_json::Value;
    let number = |v: &Value| v.is_u64();
    let text = |v: &Value| v.is_string();
    let list = |v: &Value| v.is_array();
    let ratio = |v: &Value| v.is_null() || v.as_f64().is_some_and(|r| (0.0..=1.0).contains(&r));
    let now = |v: &Value| v.is_null() || v["seconds"].is_f64() && v["served_bytes_per_second"].is_f64();
    type Check<'a> = &'a dyn Fn(&Value) -> bool;
    let shape: &[(&str, Check)] = &[
        ("/version", &text),
        ("/uptime_seconds", &number),
        ("/since_start/hits", &number),
        ("/since_start/misses", &number),
        ("/since_start/hit_ratio", &ratio),
        ("/since_start/served_from_cache_bytes", &number),
        ("/since_start/fetched_upstream_bytes", &number),
        ("/now", &now),
        ("/history", &list),
        ("/history/0/at_ms", &number),
        ("/history/0/served_bytes", &number),
        ("/history/0/fetched_bytes", &number),
        ("/history/0/hits", &number),
        ("/history/0/misses", &number),
        ("/store/bytes", &number),
        ("/store/max_bytes", &number),
        ("/store/entries", &number),
        ("/store/evicted_bytes", &number),
        ("/store/counted", &|v: &Value| v.is_boolean()),
        ("/store/pins/0", &text),
        ("/in_flight", &list),
        ("/top_repositories/0/repository", &text),
        ("/top_repositories/0/bytes", &number),
        ("/top_repositories/0/manifests", &number),
        ("/top_repositories/0/blobs", &number),
        ("/rate_limits", &list),
        ("/registries/0/origin", &text),
        ("/registries/0/last_status", &number),
        ("/registries/0/last_at_ms", &number),
        ("/registries/0/answers", &number),
        ("/registries/0/errors", &number),
        ("/mirrors", &list),
        ("/recent_errors", &list),
        ("/certificates_minted", &number),
        ("/configuration", &text),
    ];
    for (pointer, check) in shape {
        let value = status.pointer(pointer).unwrap_or(&Value::Null);
        assert!(check(value), "{pointer} is {value}: {status}");
    }
    assert_eq!(status["top_repositories"][0]["manifests"], 1);
}

/// The status page on the proxy port, for loopback clients; with an admin token a browser is asked
/// for it (Basic, the token as the password), and a Bearer token works too.
#[tokio::test]
async fn the_proxy_port_shows_the_page_to_loopback_clients_under_the_token_rule() {
    let open = start_pantry(|_| {}).await;
    let page = common::plain_get(open.addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<h2>Traffic</h2>"), "{page}");
    assert!(page.to_ascii_lowercase().contains("cache-control: no-store"), "{page}");

    let guarded = start_pantry(|c| common::admin_token(c, TOKEN)).await;
    let page = common::plain_get(guarded.addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 401"), "{page}");
    assert!(page.to_ascii_lowercase().contains("www-authenticate: basic realm="), "a browser asks: {page}");
    let basic = |password: &str| {
        let encoded =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("me:{password}"));
        format!("Basic {encoded}")
    };
    for (authorization, expected) in [
        (basic(TOKEN), "200"),
        (format!("Bearer {TOKEN}"), "200"),
        (basic("wrong"), "401"),
        (format!("Basic {TOKEN}"), "401"),
        (format!("Bearer {TOKEN}x"), "401"),
    ] {
        let answer = get_with(guarded.addr, "/", &authorization).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {expected}")), "{authorization}: {answer}");
    }
}

/// A page in a local browser cannot use the API or read the status: not through a name of its
/// own that resolves to loopback (DNS rebinding: its Host is that name), not with a form POST
/// (no JSON content type without asking first).
#[tokio::test]
async fn pages_of_other_sites_in_a_local_browser_get_nothing() {
    let pantry = start_pantry(|c| c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = pantry.admin.unwrap();
    for (addr, path) in [(admin, "/"), (admin, "/api/status"), (pantry.addr, "/")] {
        let answer = raw(
            addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: rebound.example:{}\r\nConnection: close\r\n\r\n",
                addr.port()
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{addr}{path}: {answer}");
        for host in [format!("localhost:{}", addr.port()), addr.to_string(), format!("[::1]:{}", addr.port())]
        {
            let answer =
                raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{host}{path}: {answer}");
        }
    }
    let form = "reference=r.test/x";
    let answer = raw(admin, &format!("POST /api/purge HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}", form.len())).await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    let plain = r#"{"reference":"r.test/x"}"#;
    let answer = raw(admin, &format!("POST /api/purge HTTP/1.1\r\nHost: {admin}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{plain}", plain.len())).await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
}

async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn get_with(addr: SocketAddr, path: &str, authorization: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    );
    raw(addr, &request).await
}

async fn plain_page(admin: SocketAddr) -> String {
    common::plain_get(admin, "/").await
}
