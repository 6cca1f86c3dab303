//! pantry's own upstream credentials: anonymous clients pull what an entry covers (clients that do
//! the token dance get a stand-in token, clients that send nothing are covered as they are), and
//! nothing else; tokens are cached and refreshed; helpers are asked again when their answer
//! expires or is refused; what pantry fetched with its credentials is served while the registry
//! is down, to covered clients only.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use common::{
    login::Scheme,
    registry::{FakeRegistry, MANIFEST_TYPE},
    request, start_pantry, TestPantry,
};
use http::Method;
use pantry::{
    clock::Clock,
    config::{CredentialEntry, PasswordFrom, SecretSource},
};

const PASSWORD: &str = "s3cret-pw-9f2c";

fn password_file(dir: &Path, password: &str) -> std::path::PathBuf {
    let path = dir.join("password");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn pantry_for(registry: &FakeRegistry, clock: &Clock, entry: CredentialEntry) -> TestPantry {
    let clock = clock.clone();
    start_pantry(move |c| {
        registry.configure(c);
        c.clock = clock;
        c.live.upstream_credentials = vec![entry];
    })
    .await
}

fn entry(registry: &FakeRegistry, repositories: &[&str], source: SecretSource) -> CredentialEntry {
    let repositories: Vec<String> = repositories.iter().map(|r| r.to_string()).collect();
    CredentialEntry::new(&registry.host(), &repositories, source)
}

fn ci_password(file: std::path::PathBuf) -> SecretSource {
    SecretSource::Password { username: "ci".into(), password: PasswordFrom::File(file) }
}

fn token_in(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["token"].as_str().unwrap().to_string()
}

async fn get(
    pantry: &TestPantry,
    registry: &FakeRegistry,
    path: &str,
    bearer: Option<&str>,
) -> (http::Response<()>, Vec<u8>) {
    let authorization = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
    let (response, body) = request(pantry, &registry.host(), Method::GET, path, &headers).await;
    (response, body.unwrap().to_vec())
}

/// A fake registry whose `repos` only the `ci` account may read (`scheme`; tokens live
/// `lifetime_s` on a manual clock), and a pantry holding that account's password for `globs`.
struct Locked {
    registry: FakeRegistry,
    clock: Clock,
    pantry: TestPantry,
    _secrets: tempfile::TempDir,
}

async fn locked(scheme: Scheme, lifetime_s: u64, repos: &[&str], globs: &[&str]) -> Locked {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    registry.state.logins.require(scheme, "ci", PASSWORD, lifetime_s, clock.clone(), repos);
    let secrets = tempfile::tempdir().unwrap();
    let source = ci_password(password_file(secrets.path(), PASSWORD));
    let pantry = pantry_for(&registry, &clock, entry(&registry, globs, source)).await;
    Locked { registry, clock, pantry, _secrets: secrets }
}

#[tokio::test]
async fn anonymous_clients_pull_what_an_entry_covers_and_nothing_else() {
    let Locked { registry, pantry, _secrets, .. } =
        locked(Scheme::Bearer, 300, &["private/app", "other/app"], &["private/*"]).await;
    let digest = registry.state.add_blob(vec![7u8; 4096], "application/octet-stream");

    // What docker and skopeo do: the version check (the registry's challenge comes through), a
    // token without credentials, then the request with that token.
    let (ping, _) = get(&pantry, &registry, "/v2/", None).await;
    assert_eq!(ping.status(), 401);
    assert!(ping.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer realm="));
    let scope = "/token?service=registry.test&scope=repository%3Aprivate%2Fapp%3Apull";
    let (answer, body) = get(&pantry, &registry, scope, None).await;
    assert_eq!(answer.status(), 200);
    let stand_in = token_in(&body);
    assert!(stand_in.starts_with("pantry-stand-in."), "{stand_in}");
    let blob = format!("/v2/private/app/blobs/{digest}");
    let (pulled, bytes) = get(&pantry, &registry, &blob, Some(&stand_in)).await;
    assert_eq!(pulled.status(), 200);
    assert_eq!(bytes, vec![7u8; 4096]);
    // Upstream saw pantry's token, never the stand-in; the realm was asked once, with pantry's login.
    let seen = registry.state.logins.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|a| a.as_deref().is_some_and(|a| a.starts_with("Bearer L"))), "{seen:?}");
    let asked = registry.state.logins.token_requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].as_deref().is_some_and(|a| a.starts_with("Basic ")));

    // A client that sends nothing at all (containerd asks before any version check) is covered too,
    // and what pantry fetched with its credentials is served to it from the store.
    let (again, bytes) = get(&pantry, &registry, &blob, None).await;
    assert_eq!(
        (again.status().as_u16(), again.headers()["cache-status"].to_str().unwrap()),
        (200, "pantry; hit")
    );
    assert_eq!(bytes.len(), 4096);
    assert_eq!(registry.state.count("GET blob"), 1);

    // Outside the entry's repositories: the realm's own anonymous token, and the registry's own 401.
    let other_scope = "/token?service=registry.test&scope=repository%3Aother%2Fapp%3Apull";
    let (answer, body) = get(&pantry, &registry, other_scope, None).await;
    assert_eq!(answer.status(), 200);
    let anonymous = token_in(&body);
    assert!(anonymous.starts_with('A'), "relayed to the realm: {anonymous}");
    let other = format!("/v2/other/app/blobs/{digest}");
    for bearer in [Some(anonymous.as_str()), None, Some(stand_in.as_str())] {
        let (refused, _) = get(&pantry, &registry, &other, bearer).await;
        assert_eq!(refused.status(), 401, "{bearer:?}");
        assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("other/app"));
    }
    // A push scope is never stood in for.
    let push = "/token?service=registry.test&scope=repository%3Aprivate%2Fapp%3Apull%2Cpush";
    let (_, body) = get(&pantry, &registry, push, None).await;
    assert!(!token_in(&body).starts_with("pantry-stand-in."));
}

#[tokio::test]
async fn tokens_are_cached_until_they_expire_then_renewed() {
    let Locked { registry, clock, pantry, _secrets } = locked(Scheme::Bearer, 5, &["private/app"], &[]).await;
    let digests: Vec<String> =
        (0..16u8).map(|i| registry.state.add_blob(vec![i; 1024], "application/octet-stream")).collect();
    // Within one token's life: one token for many fetches.
    for digest in &digests[..4] {
        let (response, _) = get(&pantry, &registry, &format!("/v2/private/app/blobs/{digest}"), None).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(registry.state.logins.token_requests.lock().unwrap().len(), 1);
    // A minute of pulls with 5-second tokens: every fetch works, a new token every 5 s.
    for digest in &digests[4..] {
        clock.advance(Duration::from_secs(5));
        let (response, _) = get(&pantry, &registry, &format!("/v2/private/app/blobs/{digest}"), None).await;
        assert_eq!(response.status(), 200, "{digest}");
    }
    assert_eq!(registry.state.logins.token_requests.lock().unwrap().len(), 1 + 12);
}

#[tokio::test]
async fn basic_registries_are_answered_with_pantrys_password() {
    let Locked { registry, pantry, _secrets, .. } =
        locked(Scheme::Basic, 300, &["private/app", "other/app"], &["private/*"]).await;
    let digest = registry.state.add_blob(vec![3u8; 2048], "application/octet-stream");
    // Clients without credentials would stop at a Basic challenge: pantry says none are needed.
    let (ping, _) = get(&pantry, &registry, "/v2/", None).await;
    assert_eq!(ping.status(), 200);
    let (pulled, bytes) = get(&pantry, &registry, &format!("/v2/private/app/blobs/{digest}"), None).await;
    assert_eq!((pulled.status().as_u16(), bytes.len()), (200, 2048));
    let (refused, _) = get(&pantry, &registry, &format!("/v2/other/app/blobs/{digest}"), None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Basic realm=\"fake\"");
    let seen = registry.state.logins.seen.lock().unwrap().clone();
    assert!(seen[0].as_deref().is_some_and(|a| a.starts_with("Basic ")), "{seen:?}");
    assert_eq!(seen.last().unwrap(), &None, "other/app went without pantry's password");
}

#[tokio::test]
async fn a_realm_on_another_host_is_intercepted_once_the_registry_names_it() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let realm_host = format!("cdn.test:{}", registry.cdn.port());
    registry.state.set_realm(&format!("https://{realm_host}/token"));
    registry.state.logins.require(Scheme::Bearer, "ci", PASSWORD, 300, clock.clone(), &["private/app"]);
    let dir = tempfile::tempdir().unwrap();
    let file = password_file(dir.path(), PASSWORD);
    let host = registry.host();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.intercept.retain(|p| p.to_string().starts_with("registry.test"));
        c.clock = clock.clone();
        c.live.upstream_credentials =
            vec![CredentialEntry::new(&host, &["private/*".to_string()], ci_password(file))];
    })
    .await;
    let (ping, _) = get(&pantry, &registry, "/v2/", None).await;
    assert_eq!(ping.status(), 401);
    let scope = "/token?service=registry.test&scope=repository%3Aprivate%2Fapp%3Apull";
    let (answer, body) = request(&pantry, &realm_host, Method::GET, scope, &[]).await;
    assert_eq!(answer.status(), 200, "the realm's TLS was terminated by pantry");
    assert!(token_in(&body.unwrap()).starts_with("pantry-stand-in."));
}

#[tokio::test]
async fn what_pantry_fetched_with_its_credentials_pulls_while_the_registry_is_down() {
    let Locked { registry, clock, pantry, _secrets } =
        locked(Scheme::Bearer, 60, &["private/app"], &["private/*"]).await;
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    let digest = registry.state.add_blob(manifest.to_vec(), MANIFEST_TYPE);
    registry.state.tag("private/app", "v1", &digest);
    let (pulled, _) = get(&pantry, &registry, "/v2/private/app/manifests/v1", None).await;
    assert_eq!(pulled.status(), 200);
    registry.state.down.store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(3600)); // the token, the grants and the tag's TTL have all run out
    let (by_tag, body) = get(&pantry, &registry, "/v2/private/app/manifests/v1", None).await;
    assert_eq!(by_tag.status(), 200);
    assert_eq!(body, manifest.to_vec());
    let (by_digest, _) = get(&pantry, &registry, &format!("/v2/private/app/manifests/{digest}"), None).await;
    assert_eq!(by_digest.status(), 200);
    // Another repository of that registry, or the same repository named at another registry: not covered.
    let (elsewhere, _) = get(&pantry, &registry, &format!("/v2/public/app/manifests/{digest}"), None).await;
    assert_ne!(elsewhere.status(), 200);
}

/// A credential helper speaking docker's protocol: `get` with the server on stdin, JSON out; it
/// records each server it was asked for and answers what the test last wrote.
fn install_helper(dir: &Path) {
    let script = dir.join("docker-credential-pantrytest");
    let text = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {dir}/asked\ncat {dir}/answer.json\n",
        dir = dir.display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", dir.display()));
}

fn helper_answers(dir: &Path, secret: &str, expires_ms: u64) {
    let expires =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(expires_ms));
    let answer = serde_json::json!({"ServerURL": "x", "Username": "ci", "Secret": secret, "ExpiresAt": expires.to_string()});
    std::fs::write(dir.join("answer.json"), answer.to_string()).unwrap();
}

fn helper_runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("asked")).map_or(0, |t| t.lines().count())
}

#[tokio::test]
async fn a_helper_is_asked_again_when_its_answer_expires_or_is_refused() {
    let registry = FakeRegistry::start().await;
    let start = 1_700_000_000_000;
    let clock = Clock::manual(start);
    registry.state.logins.require(Scheme::Bearer, "ci", "first-pw", 30, clock.clone(), &["private/app"]);
    let digests: Vec<String> =
        (0..4u8).map(|i| registry.state.add_blob(vec![i; 512], "application/octet-stream")).collect();
    let dir = tempfile::tempdir().unwrap();
    install_helper(dir.path());
    helper_answers(dir.path(), "first-pw", start + 60_000);
    let pantry =
        pantry_for(&registry, &clock, entry(&registry, &[], SecretSource::Helper("pantrytest".into()))).await;
    let blob = |i: usize| format!("/v2/private/app/blobs/{}", digests[i]);
    let (first, _) = get(&pantry, &registry, &blob(0), None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(helper_runs(dir.path()), 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("asked")).unwrap().trim(), registry.host());

    // The secret rotates; once the helper's answer has expired, the new one is used.
    registry.state.logins.set_password("second-pw");
    helper_answers(dir.path(), "second-pw", start + 600_000);
    clock.advance(Duration::from_secs(61));
    let (second, _) = get(&pantry, &registry, &blob(1), None).await;
    assert_eq!(second.status(), 200);
    assert_eq!(helper_runs(dir.path()), 2);

    // It rotates again before the answer expires: the realm refuses the old secret, and the
    // helper is asked again at once (the client sees no failure).
    registry.state.logins.set_password("third-pw");
    helper_answers(dir.path(), "third-pw", start + 600_000);
    clock.advance(Duration::from_secs(31)); // the token has expired, the helper's answer has not
    let (third, _) = get(&pantry, &registry, &blob(2), None).await;
    assert_eq!(third.status(), 200);
    assert_eq!(helper_runs(dir.path()), 3);
    // A token the registry refuses after it had worked a while (revoked early) is dropped after
    // that one 401.
    clock.advance(Duration::from_secs(11));
    registry.state.logins.revoke_all();
    let (revoked, _) = get(&pantry, &registry, &blob(3), None).await;
    assert_eq!(revoked.status(), 401);
    let (renewed, _) = get(&pantry, &registry, &blob(3), None).await;
    assert_eq!(renewed.status(), 200);
}

#[tokio::test]
async fn prefetch_uses_pantrys_credentials() {
    let Locked { registry, pantry, _secrets, .. } =
        locked(Scheme::Bearer, 300, &["private/app"], &["private/*"]).await;
    let layer = registry.state.add_blob(vec![4u8; 3000], "application/octet-stream");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"digest":"{layer}","size":3000}},"layers":[]}}"#
    );
    let manifest = registry.state.add_blob(manifest.into_bytes(), MANIFEST_TYPE);
    registry.state.tag("private/app", "v1", &manifest);
    let image: pantry::registry::reference::ImageRef =
        format!("{}/private/app:v1", registry.host()).parse().unwrap();
    let prefetcher = pantry::prefetch::Prefetcher::new(pantry.pantry.proxy().clone(), None, None);
    let summary = prefetcher.image(&image, &pantry::prefetch::Quiet).await.unwrap();
    assert_eq!((summary.manifests, summary.fetched, summary.bytes), (1, 1, 3000));
    let asked = registry.state.logins.token_requests.lock().unwrap().clone();
    assert!(asked.iter().all(|a| a.as_deref().is_some_and(|a| a.starts_with("Basic "))), "{asked:?}");
}

#[tokio::test]
async fn an_identity_token_from_a_helper_is_exchanged_at_the_realm() {
    let registry = FakeRegistry::start().await;
    let clock = Clock::manual(1_700_000_000_000);
    registry.state.logins.require(Scheme::Bearer, "ci", "unused-pw", 300, clock.clone(), &["private/app"]);
    registry.state.logins.accept_identity_token("refresh-7d1e");
    let digest = registry.state.add_blob(vec![2u8; 800], "application/octet-stream");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let text = serde_json::json!({"auths": {registry.host(): {"identitytoken": "refresh-7d1e"}}});
    std::fs::write(&config, text.to_string()).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pantry =
        pantry_for(&registry, &clock, entry(&registry, &[], SecretSource::DockerConfig(config))).await;
    let (pulled, body) = get(&pantry, &registry, &format!("/v2/private/app/blobs/{digest}"), None).await;
    assert_eq!((pulled.status().as_u16(), body.len()), (200, 800));
    let asked = registry.state.logins.token_requests.lock().unwrap().clone();
    assert_eq!(asked, vec![Some("POST refresh_token".to_string())]);
}
