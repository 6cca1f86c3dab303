//! Registry-mirror mode: the registry API served on a second port, `?ns=` naming the registry and
//! the configured default without it, the same store and rules as the proxy (hits across modes),
//! challenges relayed, TLS with a leaf from pantry's CA.

mod common;

use bytes::Bytes;
use common::{registry::FakeRegistry, request, start_pantry, tls, Sender, TestPantry};
use http::{Method, Request};
use http_body_util::Full;
use tokio::net::TcpStream;

async fn mirror(pantry: &TestPantry) -> Sender {
    Sender::h1(TcpStream::connect(pantry.mirror.unwrap()).await.unwrap()).await
}

async fn get(pantry: &TestPantry, uri: &str) -> (http::Response<()>, Bytes) {
    mirror(pantry).await.get(uri, "pantry.local").await
}

async fn start(registry: &FakeRegistry, default: Option<String>) -> TestPantry {
    start_pantry(|c| {
        registry.configure(c);
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        if let Some(default) = default {
            c.live.mirror_default = default;
        }
    })
    .await
}

#[tokio::test]
async fn ns_selects_the_registry_and_hits_cross_modes() {
    let registry = FakeRegistry::start().await;
    let pantry = start(&registry, None).await;
    let host = registry.host();
    let a = registry.state.add_blob(vec![1u8; 50_000], "application/octet-stream");
    let b = registry.state.add_blob(vec![2u8; 60_000], "application/octet-stream");

    // Mirror first, then the proxy: one upstream GET, a hit through the proxy.
    let (response, body) = get(&pantry, &format!("/v2/app/blobs/{a}?ns={host}")).await;
    assert_eq!((response.status().as_u16(), body.len()), (200, 50_000));
    assert_eq!(response.headers()["cache-status"], "pantry; fwd=miss; stored");
    let (response, body) = request(&pantry, &host, Method::GET, &format!("/v2/app/blobs/{a}"), &[]).await;
    assert_eq!(response.headers()["cache-status"], "pantry; hit");
    assert_eq!(body.unwrap().len(), 50_000);

    // Proxy first, then the mirror.
    request(&pantry, &host, Method::GET, &format!("/v2/other/blobs/{b}"), &[]).await.1.unwrap();
    let (response, body) = get(&pantry, &format!("/v2/other/blobs/{b}?ns={host}")).await;
    assert_eq!(response.headers()["cache-status"], "pantry; hit");
    assert_eq!(body, vec![2u8; 60_000]);
    assert_eq!(registry.state.count("GET blob"), 2, "each blob fetched once across both modes");
}

#[tokio::test]
async fn without_ns_the_default_registry_answers_and_tags_work() {
    let registry = FakeRegistry::start().await;
    let pantry = start(&registry, Some(registry.host())).await;
    let manifest = registry.state.add_blob("{\"layers\":[]}", common::registry::MANIFEST_TYPE);
    registry.state.tag("team/app", "v1", &manifest);
    let (ping, _) = get(&pantry, "/v2/").await;
    assert_eq!(ping.status(), 200);
    assert_eq!(ping.headers()["docker-distribution-api-version"], "registry/2.0");
    let (response, body) = get(&pantry, "/v2/team/app/manifests/v1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["docker-content-digest"], manifest.as_str());
    assert_eq!(&body[..], b"{\"layers\":[]}");
    let (again, _) = get(&pantry, "/v2/team/app/manifests/v1").await;
    assert_eq!(again.headers()["cache-status"], "pantry; hit");
    assert_eq!(registry.state.count("GET manifest-tag"), 1);
}

#[tokio::test]
async fn challenges_are_relayed_and_other_paths_are_not_found() {
    let registry = FakeRegistry::start().await;
    let pantry = start(&registry, Some(registry.host())).await;
    registry.state.make_private("secret");
    let blob = registry.state.add_blob(vec![3u8; 1000], "application/octet-stream");
    let (response, _) = get(&pantry, &format!("/v2/secret/blobs/{blob}")).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer realm="));
    let mut sender = mirror(&pantry).await;
    let authorized = Request::get(format!("/v2/secret/blobs/{blob}"))
        .header("host", "pantry.local")
        .header("authorization", common::registry::TOKEN)
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(sender.send(authorized).await.status(), 200);
    for path in ["/", "/v1/_ping", "/v2/x/blobs/y?ns=bad%20host"] {
        let (response, _) = get(&pantry, path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_mirror_speaks_tls_with_a_leaf_from_pantrys_ca() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.mirror_tls = true;
        c.live.mirror_names = vec!["pantry.local".into()];
        c.live.mirror_default = registry.host();
    })
    .await;
    let blob = registry.state.add_blob(vec![4u8; 2000], "application/octet-stream");
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let stream = TcpStream::connect(pantry.mirror.unwrap()).await.unwrap();
        let stream = tls(stream, "pantry.local", pantry.roots(), &[alpn]).await.unwrap();
        let mut sender = if alpn == b"h2" { Sender::h2(stream).await } else { Sender::h1(stream).await };
        let (response, body) =
            sender.get(&format!("https://pantry.local/v2/app/blobs/{blob}"), "pantry.local").await;
        assert_eq!((response.status().as_u16(), body.len()), (200, 2000));
    }
}

#[tokio::test]
async fn the_mirror_presents_a_supplied_certificate() {
    let registry = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["mirror.example".to_string()]).unwrap().self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.path().join("mirror.pem"), dir.path().join("mirror.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let args = pantry::config::RunArgs {
        mirror_cert: Some(cert_file),
        mirror_key: Some(key_file),
        ..Default::default()
    };
    let loaded = pantry::configuration(&args).unwrap().config;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.mirror_default = registry.host();
        c.live.mirror_tls = loaded.live.mirror_tls;
        c.live.mirror_cert = loaded.live.mirror_cert.clone();
    })
    .await;
    let blob = registry.state.add_blob(vec![6u8; 3000], "application/octet-stream");
    let stream = TcpStream::connect(pantry.mirror.unwrap()).await.unwrap();
    let roots = common::roots_from_pem(&cert.pem());
    let stream =
        tls(stream, "mirror.example", roots, &[b"http/1.1"]).await.expect("the supplied certificate");
    let (response, body) =
        Sender::h1(stream).await.get(&format!("/v2/app/blobs/{blob}"), "mirror.example").await;
    assert_eq!((response.status().as_u16(), body.len()), (200, 3000));
    let stream = TcpStream::connect(pantry.mirror.unwrap()).await.unwrap();
    assert!(tls(stream, "mirror.example", pantry.roots(), &[b"http/1.1"]).await.is_err(), "not pantry's CA");

    let mismatched = pantry::config::RunArgs {
        mirror_cert: Some(dir.path().join("mirror.pem")),
        mirror_key: Some(dir.path().join("missing.key")),
        ..Default::default()
    };
    let errors = pantry::configuration(&mismatched).unwrap_err().0;
    assert!(errors[0].contains("mirror_cert") && errors[0].contains("missing.key"), "{errors:?}");
}

#[tokio::test]
async fn mirror_clients_pull_with_pantrys_credentials_for_a_whole_registry() {
    use common::login::Scheme;
    use std::os::unix::fs::PermissionsExt;
    let registry = FakeRegistry::start().await;
    let clock = pantry::clock::Clock::manual(1_700_000_000_000);
    registry.state.logins.require(Scheme::Bearer, "ci", "mirror-pw", 300, clock.clone(), &["team/app"]);
    let digest = registry.state.add_blob(vec![8u8; 2000], "application/octet-stream");
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "mirror-pw").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let host = registry.host();
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.clock = clock.clone();
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.mirror_default = host.clone();
        let source = pantry::config::SecretSource::Password {
            username: "ci".into(),
            password: pantry::config::PasswordFrom::File(password),
        };
        c.live.upstream_credentials = vec![pantry::config::CredentialEntry::new(&host, &[], source)];
    })
    .await;
    // The version check says no credentials are needed, so the mirror's clients send none.
    let (ping, _) = get(&pantry, "/v2/").await;
    assert_eq!(ping.status(), 200);
    let (blob, body) = get(&pantry, &format!("/v2/team/app/blobs/{digest}")).await;
    assert_eq!((blob.status().as_u16(), body.len()), (200, 2000));
}
