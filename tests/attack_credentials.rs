//! Attacks on pantry's own upstream credentials: that they never cross the network in the clear,
//! that a client cannot make pantry intercept a host by naming it as a realm, and that 401s a
//! client provokes cost no more than one token per repository and flush nothing else.

mod common;

use std::{
    os::unix::fs::PermissionsExt,
    sync::{Arc, Mutex},
};

use common::{login::Scheme, plain_get, registry::FakeRegistry, request, start_pantry};
use http::Method;
use pantry::{
    clock::Clock,
    config::{CredentialEntry, HostPattern, PasswordFrom, ResolveRule, SecretSource},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

const PASSWORD: &str = "never-in-clear-51f0";

fn password_source(dir: &std::path::Path) -> SecretSource {
    let path = dir.join("password");
    std::fs::write(&path, PASSWORD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    SecretSource::Password { username: "ci".into(), password: PasswordFrom::File(path) }
}

/// A plain-HTTP "registry" that answers every request 401 with a cleartext Bearer realm on
/// itself, and keeps every request it receives.
async fn cleartext_registry() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                kept.lock().unwrap().push(String::from_utf8_lossy(&buffer[..n]).into_owned());
                let answer = format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://plain.test:{port}/token\",service=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn pantrys_credentials_never_go_in_cleartext() {
    let (port, seen) = cleartext_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let name = format!("plain.test:{port}");
    let pantry = start_pantry(|c| {
        c.startup.resolve.push(ResolveRule::parse(&format!("{name}:127.0.0.1")).unwrap());
        c.live.insecure_registries.push(HostPattern::parse(&name).unwrap());
        c.live.upstream_credentials = vec![CredentialEntry::new(&name, &[], password_source(dir.path()))];
    })
    .await;
    for path in ["/v2/team/app/manifests/v1", "/v2/", "/token?scope=repository%3Ateam%2Fapp%3Apull"] {
        plain_get(pantry.addr, &format!("http://{name}{path}")).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the cleartext registry was asked");
    for request in &seen {
        assert!(!request.to_ascii_lowercase().contains("authorization:"), "{request}");
    }
}

#[tokio::test]
async fn a_realm_named_by_a_registry_pantry_holds_no_login_for_is_not_intercepted() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let victim = format!("cdn.test:{}", registry.cdn.port());
    registry.state.set_realm(&format!("https://{victim}/token"));
    registry.state.logins.require(Scheme::Bearer, "ci", PASSWORD, 300, clock.clone(), &["team/app"]);
    // A docker config that holds a login for another registry only: it covers every registry,
    // but has nothing for this one.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"auths":{"elsewhere.test":{"auth":"Y2k6cHc="}}}"#).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.intercept.retain(|p| p.to_string().starts_with("registry.test"));
        c.clock = clock.clone();
        c.live.docker_config = Some(config);
    })
    .await;
    let (ping, _) = request(&pantry, &registry.host(), Method::GET, "/v2/team/app/manifests/v1", &[]).await;
    assert_eq!(ping.status(), 401, "no login: the registry's own answer");
    let port = registry.cdn.port();
    assert!(!pantry.pantry.proxy().credentials().intercepts("cdn.test", port), "{victim} stays tunnelled");
    let (version, _) = request(&pantry, &registry.host(), Method::GET, "/v2/", &[]).await;
    assert_eq!(version.status(), 401, "no login: the version check is not answered for the client");
}

#[tokio::test]
async fn refusals_a_client_provokes_cost_one_token_per_repository_and_flush_nothing() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    registry.state.logins.require(Scheme::Bearer, "ci", PASSWORD, 300, clock.clone(), &["private/app"]);
    registry.state.logins.deny("private/missing");
    let digest = registry.state.add_blob(vec![1u8; 500], "application/octet-stream");
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
        c.live.upstream_credentials = vec![CredentialEntry::new(&host, &[], password_source(dir.path()))];
    })
    .await;
    let get = |path: String| {
        let (pantry, host) = (&pantry, host.clone());
        async move { request(pantry, &host, Method::GET, &path, &[]).await.0.status().as_u16() }
    };
    assert_eq!(get(format!("/v2/private/app/blobs/{digest}")).await, 200);
    // A repository pantry's account cannot read (or that does not exist), asked again and again.
    for _ in 0..5 {
        assert_eq!(get(format!("/v2/private/missing/blobs/{digest}")).await, 401);
    }
    let other = registry.state.add_blob(vec![2u8; 500], "application/octet-stream");
    assert_eq!(get(format!("/v2/private/app/blobs/{other}")).await, 200);
    let asked = registry.state.logins.token_requests.lock().unwrap().len();
    assert_eq!(asked, 2, "one token for private/app, one for private/missing: the 401s flushed nothing");
}
