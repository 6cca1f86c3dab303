//! Secrets stay secret: after authenticated pulls (a bearer token from the client, Basic
//! credentials pantry's prefetch sends to a token endpoint) neither the token nor the password
//! appears in the cache directory, in the logs at any level (pantry's and its libraries'), or in
//! the metrics; the CA key is mode 0600 and never served.

mod common;

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    sync::{Arc, Mutex},
};

use base64::Engine;
use common::{plain_get, registry::FakeRegistry, registry::TOKEN, request, start_pantry};
use http::Method;
use pantry::{
    prefetch::{Prefetcher, Quiet},
    registry::reference::ImageRef,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_password_in_the_cache_the_logs_or_the_metrics() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| registry.configure(c)).await;
    let host = registry.host();
    registry.state.make_private("private/app");
    let blob = registry.state.add_blob(vec![3u8; 70_000], "application/octet-stream");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{blob}","size":70000}},"layers":[]}}"#
    );
    let manifest =
        registry.state.add_blob(manifest.into_bytes(), "application/vnd.oci.image.manifest.v1+json");
    registry.state.tag("private/app", "v1", &manifest);
    let auth = [("authorization", TOKEN), ("accept", "application/vnd.oci.image.manifest.v1+json")];
    for path in ["/v2/private/app/manifests/v1".to_string(), format!("/v2/private/app/blobs/{blob}")] {
        for _ in 0..2 {
            let (response, body) = request(&pantry, &host, Method::GET, &path, &auth).await;
            assert_eq!(response.status(), 200, "{path}");
            body.unwrap();
        }
    }
    registry.state.require_token("tokened/app");
    registry.state.tag("tokened/app", "v1", &manifest);
    let image: ImageRef = format!("{host}/tokened/app:v1").parse().unwrap();
    let user = "alice:hunter2-pw-91b7";
    let prefetcher = Prefetcher::new(pantry.pantry.proxy().clone(), None, Some(user.into()));
    prefetcher.image(&image, &Quiet).await.unwrap();

    let token = TOKEN.trim_start_matches("Bearer ");
    let basic = base64::engine::general_purpose::STANDARD.encode(user);
    let needles = [token, "hunter2-pw-91b7", basic.as_str()];
    let mut found = Vec::new();
    common::files_containing(pantry.dir.path(), &needles, &mut found);
    let mut leaked: Vec<String> = found.iter().map(|f| format!("a secret in {f:?}")).collect();

    let metrics = plain_get(pantry.addr, "/metrics").await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the capture saw verbose logs");
    for needle in needles {
        if metrics.contains(needle) {
            leaked.push(format!("metrics hold {needle:?}"));
        }
        if logs.contains(needle) {
            leaked.push(format!("logs hold {needle:?}"));
        }
    }

    let key = pantry.dir.path().join("certs/ca.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    if mode != 0o600 {
        leaked.push(format!("the CA key has mode {mode:o}"));
    }
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();
    for path in ["/ca.pem", "/ca.key", "/certs/ca.key", "/../certs/ca.key"] {
        let answer = plain_get(pantry.addr, path).await;
        if answer.contains("PRIVATE KEY") || answer.contains(key_body) {
            leaked.push(format!("{path} served the CA key"));
        }
    }
    common::reliability::record(common::reliability::Outcome {
        area: "secrets",
        fault: "authenticated pulls (Bearer, Basic, token auth) with trace logging",
        client: "every pull answered".into(),
        stored: "no token, password or Basic credential in any file under the cache and certs dirs".into(),
        after: "none in the logs at trace level or in /metrics; the CA key stays 0600 and is never served"
            .into(),
        lost: leaked,
    });
}
