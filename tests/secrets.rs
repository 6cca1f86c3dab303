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
    clock::Clock,
    config::{CredentialEntry, PasswordFrom, SecretSource},
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

    // pantry's own credentials: an anonymous client pulls through a pantry holding them.
    let locked = FakeRegistry::start().await;
    let own_password = "pw-of-pantry-3c9e";
    let scheme = common::login::Scheme::Bearer;
    locked.state.logins.require(scheme, "ci", own_password, 300, Clock::System, &["private/app"]);
    let locked_blob = locked.state.add_blob(vec![5u8; 20_000], "application/octet-stream");
    let secret_dir = tempfile::tempdir().unwrap();
    let password_file = secret_dir.path().join("password");
    std::fs::write(&password_file, own_password).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let holder = start_pantry(|c| {
        locked.configure(c);
        let source =
            SecretSource::Password { username: "ci".into(), password: PasswordFrom::File(password_file) };
        c.live.upstream_credentials = vec![CredentialEntry::new(&locked.host(), &[], source)];
    })
    .await;
    let locked_host = locked.host();
    request(&holder, &locked_host, Method::GET, "/v2/", &[]).await.1.unwrap();
    let scope = "/token?service=registry.test&scope=repository%3Aprivate%2Fapp%3Apull";
    let stand_in: serde_json::Value =
        serde_json::from_slice(&request(&holder, &locked_host, Method::GET, scope, &[]).await.1.unwrap())
            .unwrap();
    let bearer = format!("Bearer {}", stand_in["token"].as_str().unwrap());
    let path = format!("/v2/private/app/blobs/{locked_blob}");
    let (pulled, _) = request(&holder, &locked_host, Method::GET, &path, &[("authorization", &bearer)]).await;
    assert_eq!(pulled.status(), 200);
    let issued: Vec<String> = locked.state.logins.seen.lock().unwrap().iter().flatten().cloned().collect();
    assert!(!issued.is_empty());

    let token = TOKEN.trim_start_matches("Bearer ");
    let basic = base64::engine::general_purpose::STANDARD.encode(user);
    let own_basic = base64::engine::general_purpose::STANDARD.encode(format!("ci:{own_password}"));
    let issued: Vec<&str> = issued.iter().map(|t| t.trim_start_matches("Bearer ")).collect();
    let mut needles = vec![token, "hunter2-pw-91b7", basic.as_str(), own_password, own_basic.as_str()];
    needles.extend(issued);
    let mut found = Vec::new();
    common::files_containing(pantry.dir.path(), &needles, &mut found);
    common::files_containing(holder.dir.path(), &needles, &mut found);
    let mut leaked: Vec<String> = found.iter().map(|f| format!("a secret in {f:?}")).collect();

    let metrics = plain_get(pantry.addr, "/metrics").await + &plain_get(holder.addr, "/metrics").await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the capture saw verbose logs");
    for needle in needles.iter().copied() {
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
        fault: "authenticated pulls (Bearer, Basic, token auth, pantry's own upstream credentials) with trace logging",
        client: "every pull answered".into(),
        stored: "no token, password or Basic credential in any file under the cache and certs dirs".into(),
        after: "none in the logs at trace level or in /metrics; the CA key stays 0600 and is never served"
            .into(),
        lost: leaked,
    });
}
