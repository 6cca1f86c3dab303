//! Attacks on pantry's promises, made the way an attacker would make them: a grant cannot be
//! borrowed by naming another host, another scheme or another repository for the same digest.
//! (docs/SECURITY.md lists each attack and what defends it.)

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use common::{
    registry::{sha256, FakeRegistry, TOKEN},
    request, start_pantry, TestPantry,
};
use http::Method;
use pantry::config::ResolveRule;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A plain-HTTP host of the attacker's that answers `200 OK` (and nothing) to every request.
async fn yes_man() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: application/octet-stream\r\n\r\n";
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, asked)
}

/// A registry where alice's `private/app` holds a layer she has pulled through pantry, and an
/// attacker's host `evil.test` that says yes to everything.
async fn alice_pulled() -> (FakeRegistry, TestPantry, String, Vec<u8>, SocketAddr, Arc<AtomicUsize>) {
    let registry = FakeRegistry::start().await;
    let (evil, asked) = yes_man().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.resolve.push(ResolveRule::parse(&format!("evil.test:{}:127.0.0.1", evil.port())).unwrap());
        // Listed as a plain registry, so the attack reaches the grant check instead of being
        // refused for its cleartext (see a_tag_fetched_in_cleartext_is_never_the_answer_over_tls).
        let evil = pantry::config::HostPattern::parse(&format!("evil.test:{}", evil.port())).unwrap();
        c.live.insecure_registries.push(evil);
    })
    .await;
    let (digest, layer) = alice_pulls(&registry, &pantry, 7).await;
    (registry, pantry, digest, layer, evil, asked)
}

/// Alice pulls a private layer (its bytes vary with `seed`) of `private/app` through `pantry`.
async fn alice_pulls(registry: &FakeRegistry, pantry: &TestPantry, seed: u32) -> (String, Vec<u8>) {
    registry.state.make_private("private/app");
    let layer: Vec<u8> = (0..40_000u32).map(|i| (i * seed % 251) as u8).collect();
    let digest = registry.state.add_blob(layer.clone(), "application/octet-stream");
    let path = format!("/v2/private/app/blobs/{digest}");
    let (response, body) =
        request(pantry, &registry.host(), Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sha256(&body.unwrap()), digest);
    (digest, layer)
}

#[tokio::test]
async fn a_private_digest_named_through_another_host_is_not_served() {
    let (_registry, pantry, digest, layer, evil, asked) = alice_pulled().await;
    for method in ["GET", "HEAD"] {
        let url = format!("http://evil.test:{}/v2/x/blobs/{digest}", evil.port());
        let answer = raw(pantry.addr, method, &url, "").await;
        assert!(!answer.to_ascii_lowercase().contains("cache-status: pantry; hit"), "{method}: {answer}");
        let bytes = answer.as_bytes();
        assert!(!bytes.windows(64).any(|w| w == &layer[..64]), "{method}: alice's bytes were served");
    }
    assert!(asked.load(Ordering::SeqCst) >= 1, "the attacker's host is asked for its own content");
}

#[tokio::test]
async fn a_private_digest_named_in_another_repository_needs_that_repository_s_yes() {
    let (registry, pantry, digest, layer, _, _) = alice_pulled().await;
    registry.state.make_private("other/app");
    let path = format!("/v2/other/app/blobs/{digest}");
    for headers in [vec![], vec![("authorization", "Bearer stolen")]] {
        let (refused, body) = request(&pantry, &registry.host(), Method::GET, &path, &headers).await;
        assert_eq!(refused.status(), 401, "{headers:?}");
        assert!(!body.unwrap().windows(64).any(|w| w == &layer[..64]), "alice's bytes were served");
    }
    let heads = registry.state.count("HEAD blob");
    assert!(heads >= 2, "the registry the bytes came from was asked each time ({heads})");
}

#[tokio::test]
async fn a_refused_client_cannot_tell_whether_a_private_digest_is_cached() {
    let (registry, pantry, cached, _, _, _) = alice_pulled().await;
    let absent = registry.state.add_blob(vec![5u8; 30_000], "application/octet-stream");
    let answer = |digest: String, method: Method| {
        let (pantry, host) = (&pantry, registry.host());
        async move {
            let path = format!("/v2/private/app/blobs/{digest}");
            let (response, body) = request(pantry, &host, method, &path, &[]).await;
            let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
            (response.status(), header("cache-status"), header("www-authenticate"), body.unwrap())
        }
    };
    for method in [Method::GET, Method::HEAD] {
        let seen = answer(cached.clone(), method.clone()).await;
        let unseen = answer(absent.clone(), method.clone()).await;
        assert_eq!(seen.0, 401, "{method}");
        assert_eq!(seen, unseen, "{method}: cached and not cached look the same to a refused client");
    }
}

/// One port that speaks TLS (relayed to the real registry) and, to cleartext, a forger's HTTP:
/// what someone on the path to a registry can do to anything pantry asks in cleartext.
async fn tls_or_forger(registry: SocketAddr, forged: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if client.peek(&mut first).await.is_err() {
                    return;
                }
                if first[0] == 0x16 {
                    let mut upstream = tokio::net::TcpStream::connect(registry).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    return;
                }
                let mut buf = vec![0u8; 8192];
                let _ = client.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    sha256(forged),
                    forged.len()
                );
                let _ = client.write_all(head.as_bytes()).await;
                let _ = client.write_all(forged).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_tag_fetched_in_cleartext_is_never_the_answer_over_tls() {
    use pantry::config::HostPattern;
    let registry = FakeRegistry::start().await;
    let real = registry.state.add_blob("{\"real\":true}", common::registry::MANIFEST_TYPE);
    registry.state.tag("app", "v1", &real);
    let forged: &'static [u8] = b"{\"forged\":true}";
    let dual = tls_or_forger(registry.addr, forged).await;
    let name = format!("registry.test:{}", dual.port());
    let configure = |c: &mut pantry::config::Config| {
        registry.configure(c);
        c.live.intercept.push(HostPattern::parse(&name).unwrap());
        c.startup.resolve.push(ResolveRule::parse(&format!("{name}:127.0.0.1")).unwrap());
    };
    let url = format!("http://{name}/v2/app/manifests/v1");
    let accept_header = format!("Accept: {}\r\n", common::registry::MANIFEST_TYPE);
    // By default a registry request in cleartext is not even made.
    let strict = start_pantry(configure).await;
    let refused = raw(strict.addr, "GET", &url, &accept_header).await;
    assert!(refused.starts_with("HTTP/1.1 403") && refused.contains("insecure_registries"), "{refused}");
    assert!(!refused.contains("forged"), "{refused}");
    // Listed as a plain registry, it is spoken to in cleartext, and still never feeds TLS clients.
    let pantry = start_pantry(|c| {
        configure(c);
        c.live.insecure_registries.push(HostPattern::parse(&name).unwrap());
    })
    .await;
    let planted = raw(pantry.addr, "GET", &url, &accept_header).await;
    assert!(planted.contains("forged"), "the forger answered the cleartext request: {planted}");
    let accept = ("accept", common::registry::MANIFEST_TYPE);
    let (response, body) = request(&pantry, &name, Method::GET, "/v2/app/manifests/v1", &[accept]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sha256(&body.unwrap()), real, "a client that verified TLS got what cleartext planted");
    assert_eq!(response.headers()["docker-content-digest"], real.as_str());
}

/// Sends one request (with `extra` header lines) through the proxy and reads the whole answer.
async fn raw(proxy: SocketAddr, method: &str, url: &str, extra: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let request = format!("{method} {url} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn escaped_slashes_do_not_walk_past_repository_policy() {
    use pantry::registry::policy::{Action, NamespaceRule};
    let registry = FakeRegistry::start().await;
    let host = registry.host();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.live.repositories = vec![
            NamespaceRule::new("*", "private/*", Action::Deny, false),
            NamespaceRule::new("*", "public/*", Action::Cache, false),
        ];
    })
    .await;
    let manifest = registry.state.add_blob("{\"private\":true}", common::registry::MANIFEST_TYPE);
    registry.state.tag("private/app", "v1", &manifest);
    let accept = ("accept", common::registry::MANIFEST_TYPE);
    let by_digest = format!("/v2/private%2Fapp/blobs/{manifest}");
    for path in ["/v2/private%2Fapp/manifests/v1", "/v2/private%2fapp/manifests/v1", by_digest.as_str()] {
        let (answer, _) = request(&pantry, &host, Method::GET, path, &[accept]).await;
        assert_eq!(answer.status(), 403, "{path}");
    }
    for path in ["/v2/public%2Fbase/blobs/uploads/", "/v2/public%2fbase/blobs/uploads/"] {
        let (answer, _) = request(&pantry, &host, Method::POST, path, &[]).await;
        assert_eq!(answer.status(), 403, "{path}");
    }
    for path in [
        "/v2/Private%2FApp/manifests/v1",
        "/v2/private%2F%2Fapp/manifests/v1",
        "/v2/private%FFapp/manifests/v1",
    ] {
        let (answer, body) = request(&pantry, &host, Method::GET, path, &[accept]).await;
        assert_eq!(answer.status(), 400, "{path}");
        assert!(String::from_utf8_lossy(&body.unwrap()).contains("NAME_INVALID"), "{path}");
    }
    assert_eq!(registry.state.count("GET manifest-tag") + registry.state.count("POST upload"), 0);
}

/// A second registry of the attacker's (another port of `registry.test`: another origin),
/// intercepted and resolved like the real one.
async fn evil_registry(pantry_config: &mut pantry::config::Config, evil: &FakeRegistry) {
    use pantry::config::HostPattern;
    let port = evil.addr.port();
    pantry_config.live.intercept.push(HostPattern::parse(&format!("registry.test:{port}")).unwrap());
    pantry_config
        .startup
        .resolve
        .push(ResolveRule::parse(&format!("registry.test:{port}:127.0.0.1")).unwrap());
    pantry_config.startup.upstream_ca.push(evil.ca.ca_file.clone());
}

#[tokio::test]
async fn a_private_digest_named_through_the_mirror_for_another_registry_is_not_served() {
    let registry = FakeRegistry::start().await;
    let evil = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        futures_util::FutureExt::now_or_never(evil_registry(c, &evil)).unwrap();
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (digest, layer) = alice_pulls(&registry, &pantry, 11).await;
    // The attacker's registry says it has the digest (HEAD 200, the right size) and serves other bytes.
    evil.state.add_blob(layer.clone(), "application/octet-stream");
    evil.state.lie.store(true, Ordering::SeqCst);
    let ns = evil.host();
    let mut stream = tokio::net::TcpStream::connect(pantry.mirror.unwrap()).await.unwrap();
    let request_text =
        format!("GET /v2/x/app/blobs/{digest}?ns={ns} HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n");
    stream.write_all(request_text.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.to_ascii_lowercase().contains("cache-status: pantry; hit"), "{text}");
    assert!(!answer.windows(64).any(|w| w == &layer[..64]), "alice's bytes were served through the mirror");
    assert!(
        evil.state.count("GET blob") >= 1,
        "the registry ?ns= named is asked for its own content: {text}"
    );
}

#[tokio::test]
async fn a_prefetch_of_the_attacker_s_image_does_not_make_a_private_digest_public() {
    use pantry::{
        prefetch::{Prefetcher, Quiet},
        registry::reference::ImageRef,
    };
    let registry = FakeRegistry::start().await;
    let evil = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        futures_util::FutureExt::now_or_never(evil_registry(c, &evil)).unwrap();
    })
    .await;
    let (digest, layer) = alice_pulls(&registry, &pantry, 13).await;
    let path = format!("/v2/private/app/blobs/{digest}");
    // The attacker's public image names alice's layer (which the attacker's registry does not have).
    let config = evil.state.add_blob(b"{\"architecture\":\"amd64\"}".to_vec(), "application/octet-stream");
    let image_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{image_type}","config":{{"digest":"{config}","size":24}},"layers":[{{"digest":"{digest}","size":{}}}]}}"#,
        layer.len()
    );
    let manifest = evil.state.add_blob(manifest.into_bytes(), image_type);
    evil.state.tag("public/bait", "v1", &manifest);
    let image: ImageRef = format!("{}/public/bait:v1", evil.host()).parse().unwrap();
    let outcome = Prefetcher::new(pantry.pantry.proxy().clone(), None, None).image(&image, &Quiet).await;
    let summary = outcome.expect("the bait prefetches");
    assert_eq!(summary.already, 1, "the bait's layer is found in the store: the shortcut under attack");
    // Neither the private repository nor the bait's hands alice's layer to an anonymous client.
    let (refused, body) = request(&pantry, &registry.host(), Method::GET, &path, &[]).await;
    assert_eq!(refused.status(), 401);
    assert!(!body.unwrap().windows(64).any(|w| w == &layer[..64]));
    let bait = evil.host();
    let (through_bait, body) =
        request(&pantry, &bait, Method::GET, &format!("/v2/public/bait/blobs/{digest}"), &[]).await;
    assert_ne!(through_bait.headers().get("cache-status").map(|v| v.to_str().unwrap()), Some("pantry; hit"));
    assert!(
        !body.unwrap_or_default().windows(64).any(|w| w == &layer[..64]),
        "alice's bytes through the bait"
    );
}

#[tokio::test]
async fn a_tag_moved_to_a_private_digest_on_another_registry_does_not_unlock_it() {
    use common::registry::{MANIFEST_TYPE, TOKEN};
    let alice = FakeRegistry::start().await;
    let evil = FakeRegistry::start().await;
    let clock = pantry::clock::Clock::manual(1_700_000_000_000);
    let private = br#"{"schemaVersion":2,"layers":["alice-private-8c1e"]}"#.to_vec();
    let digest = alice.state.add_blob(private.clone(), MANIFEST_TYPE);
    alice.state.tag("private/app", "v1", &digest);
    alice.state.make_private("private/app");
    let innocuous = evil.state.add_blob(br#"{"schemaVersion":2,"layers":[]}"#.to_vec(), MANIFEST_TYPE);
    evil.state.tag("evil/app", "v1", &innocuous);
    let pantry = start_pantry(|c| {
        evil.configure(c);
        let mut other = pantry::config::Config::default();
        alice.configure(&mut other);
        c.live.intercept.extend(other.live.intercept);
        c.startup.resolve.extend(other.startup.resolve);
        c.startup.upstream_ca.extend(other.startup.upstream_ca);
        c.clock = clock.clone();
    })
    .await;
    let accept = ("accept", MANIFEST_TYPE);
    let (pulled, _) = request(
        &pantry,
        &alice.host(),
        Method::GET,
        "/v2/private/app/manifests/v1",
        &[("authorization", TOKEN), accept],
    )
    .await;
    assert_eq!(pulled.status(), 200);
    let (innocent, _) =
        request(&pantry, &evil.host(), Method::GET, "/v2/evil/app/manifests/v1", &[accept]).await;
    assert_eq!(innocent.status(), 200);
    // The attacker's registry now says its tag points at alice's digest (and cannot send its bytes).
    evil.state.add_blob(private.clone(), MANIFEST_TYPE);
    evil.state.lie.store(true, Ordering::SeqCst);
    evil.state.tag("evil/app", "v1", &digest);
    clock.advance(std::time::Duration::from_secs(3600));
    let (answer, body) =
        request(&pantry, &evil.host(), Method::GET, "/v2/evil/app/manifests/v1", &[accept]).await;
    let body = body.unwrap_or_default();
    assert!(
        !body.windows(18).any(|w| w == b"alice-private-8c1e"),
        "{}: alice's manifest was served",
        answer.status()
    );
    assert_ne!(answer.status(), 200);
    assert!(evil.state.count("GET manifest-tag") >= 2, "the tag was fetched from the registry that named it");
}
