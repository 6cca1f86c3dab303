//! A fleet of pantries in one process: one origin fetch per blob for all members, streamed to the
//! clients of every node while it arrives; a member that stops is skipped; the fleet port admits
//! only members (a leaf from the shared CA with client-auth) and serves only content by digest.

mod common;

use std::{net::SocketAddr, sync::atomic::Ordering, sync::Arc, time::Duration};

use bytes::Bytes;
use common::{
    intercepted,
    registry::{sha256, FakeRegistry, TOKEN},
    request, start_pantry_with_fleet, Sender, TestPantry,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use pantry::config::member_url;
use rustls::{client::ResolvesClientCert, pki_types::ServerName, sign::CertifiedKey, ClientConfig};
use tokio::net::{TcpListener, TcpStream};

/// Members started against one registry, sharing one CA (as a fleet's nodes do).
struct Fleet {
    nodes: Vec<TestPantry>,
    urls: Vec<String>,
    _ca: tempfile::TempDir,
}

impl Fleet {
    async fn start(
        registry: &FakeRegistry,
        size: usize,
        adjust: impl Fn(&mut pantry::config::Config),
    ) -> Self {
        let ca = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        for _ in 0..size {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let urls: Vec<String> = addrs.iter().map(|a| format!("https://{a}")).collect();
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let node = start_pantry_with_fleet(
                |c| {
                    registry.configure(c);
                    c.startup.certs_dir = ca.path().to_path_buf();
                    c.startup.fleet_listen = Some(addrs[i]);
                    c.startup.peers = urls.iter().map(|u| member_url(u).unwrap()).collect();
                    c.startup.advertise = Some(member_url(&urls[i]).unwrap());
                    adjust(c);
                },
                Some(listener),
            )
            .await;
            nodes.push(node);
        }
        Self { nodes, urls, _ca: ca }
    }

    /// The members ranked for `digest`, by index: the owner first (as every member ranks them).
    fn ranked(&self, digest: &str) -> Vec<usize> {
        let ranked = pantry::fleet::rendezvous::ranked(&self.urls, digest);
        ranked.iter().map(|url| self.urls.iter().position(|u| u == *url).unwrap()).collect()
    }
}

/// Sends a GET and returns the response with its body still streaming.
async fn open(
    node: &TestPantry,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<Incoming> {
    let stream = intercepted(node, host, &[b"http/1.1"]).await;
    let mut sender = Sender::h1(stream).await;
    let mut builder = Request::get(path).header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    sender.send(builder.body(Full::new(Bytes::new())).unwrap()).await
}

fn blob(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[tokio::test]
async fn clients_of_every_node_share_one_origin_fetch_while_it_arrives() {
    let registry = FakeRegistry::start().await;
    let fleet = Fleet::start(&registry, 3, |_| {}).await;
    let digest = registry.state.add_blob(blob(8 << 20, 1), "application/octet-stream");
    registry.state.gated.store(true, Ordering::SeqCst);
    let (host, path) = (registry.host(), format!("/v2/lib/app/blobs/{digest}"));
    let mut bodies = Vec::new();
    for node in &fleet.nodes {
        for _ in 0..4 {
            let response = open(node, &host, &path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK);
            let mut body = response.into_body();
            let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("bytes reach every node's clients while the origin still holds the rest")
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap();
            bodies.push((first, body));
        }
    }
    assert_eq!(registry.state.count("GET blob"), 1, "one origin fetch for the whole fleet");
    registry.state.gate.notify_one();
    for (first, body) in bodies {
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(sha256(&[first.as_ref(), rest.as_ref()].concat()), digest, "every body is the blob");
    }
    assert_eq!(registry.state.count("GET blob"), 1);
    let owner = fleet.ranked(&digest)[0];
    for (i, node) in fleet.nodes.iter().enumerate() {
        assert!(
            node.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_some(),
            "node {i} keeps a copy"
        );
        let asked = node.metric("pantry_peer_requests_total{result=\"ok\"}");
        let from_peers = node.metric("pantry_peer_fetched_bytes_total");
        if i == owner {
            assert_eq!((asked, from_peers), (0, 0), "the owner fetched from the origin");
        } else {
            assert_eq!(
                (asked, from_peers),
                (1, 8 << 20),
                "node {i} asked its owner once for all its clients"
            );
        }
    }
    // From now on every node answers from its own store.
    for node in &fleet.nodes {
        let (response, body) = request(node, &host, Method::GET, &path, &[]).await;
        assert_eq!(response.headers()["cache-status"], "pantry; hit");
        assert_eq!(sha256(&body.unwrap()), digest);
    }
    assert_eq!(registry.state.count("GET blob"), 1);
}

#[tokio::test]
async fn a_member_that_is_down_is_skipped_and_its_keys_go_to_the_next() {
    let registry = FakeRegistry::start().await;
    let mut fleet = Fleet::start(&registry, 3, |_| {}).await;
    let (host, data) = (registry.host(), blob(256 << 10, 2));
    let digest = registry.state.add_blob(data, "application/octet-stream");
    let ranked = fleet.ranked(&digest);
    let (owner, asker) = (ranked[0], ranked[2]);
    fleet.nodes[owner].stop().await.unwrap();
    let path = format!("/v2/lib/app/blobs/{digest}");
    let (response, body) = request(&fleet.nodes[asker], &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sha256(&body.unwrap()), digest);
    assert_eq!(registry.state.count("GET blob"), 1, "the next member in rank fetched it once");
    let node = &fleet.nodes[asker];
    assert_eq!(node.metric("pantry_peer_requests_total{result=\"unreachable\"}"), 1);
    assert_eq!(node.metric("pantry_peer_requests_total{result=\"ok\"}"), 1, "the second in rank answered");
    assert!(node.metric("pantry_fleet_owner_changes_total") >= 1);
    let states = node.pantry.proxy().fleet().unwrap().members().states();
    assert!(states.iter().any(|s| s.url == fleet.urls[owner] && s.cooling), "{states:?}");
    // Another blob the stopped member owned: not asked again during its cool-down.
    let other = (0u8..)
        .map(|seed| blob(1024, seed.wrapping_add(10)))
        .find(|b| fleet.ranked(&sha256(b))[0] == owner)
        .unwrap();
    let other = registry.state.add_blob(other, "application/octet-stream");
    let (response, _) = request(node, &host, Method::GET, &format!("/v2/lib/app/blobs/{other}"), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(node.metric("pantry_peer_requests_total{result=\"unreachable\"}"), 1, "skipped while cooling");
}

#[tokio::test]
async fn an_owner_that_dies_mid_answer_breaks_the_transfer_and_the_next_pull_works() {
    let registry = FakeRegistry::start().await;
    let mut fleet = Fleet::start(&registry, 3, |c| c.live.shutdown_grace = Duration::ZERO).await;
    let digest = registry.state.add_blob(blob(4 << 20, 3), "application/octet-stream");
    let (host, path) = (registry.host(), format!("/v2/lib/app/blobs/{digest}"));
    let ranked = fleet.ranked(&digest);
    let (owner, asker) = (ranked[0], ranked[1]);
    registry.state.gated.store(true, Ordering::SeqCst);
    let response = open(&fleet.nodes[asker], &host, &path, &[]).await;
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    // The owner goes away with the transfer half done (its connections aborted at once).
    fleet.nodes[owner].stop().await.unwrap();
    registry.state.gate.notify_one();
    let mut received = first.len();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), body.frame()).await.expect("the transfer ends") {
            Some(Ok(frame)) => received += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => break "broken",
            None => break "complete",
        }
    };
    assert_eq!(ended, "broken", "a client never sees a clean end of a short body ({received} bytes)");
    assert!(received < 4 << 20);
    let asking = &fleet.nodes[asker];
    assert!(asking.pantry.proxy().store().blob(&digest.parse().unwrap()).await.is_none(), "nothing stored");
    registry.state.gated.store(false, Ordering::SeqCst);
    let (response, body) = request(asking, &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sha256(&body.unwrap()), digest);
    assert_eq!(registry.state.count("GET blob"), 2, "at most one more origin fetch");
    assert_eq!(asking.metric("pantry_peer_requests_total{result=\"broken\"}"), 1);
}

#[tokio::test]
async fn private_content_is_judged_by_the_registry_on_every_node() {
    let registry = FakeRegistry::start().await;
    let fleet = Fleet::start(&registry, 3, |_| {}).await;
    let digest = registry.state.add_blob(blob(64 << 10, 4), "application/octet-stream");
    registry.state.make_private("private/app");
    let (host, path) = (registry.host(), format!("/v2/private/app/blobs/{digest}"));
    let ranked = fleet.ranked(&digest);
    let (owner, first, second) = (ranked[0], ranked[1], ranked[2]);
    // Without the token: the registry's refusal, through the owner.
    let (response, _) = request(&fleet.nodes[first], &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // With it: served, fetched once by the owner.
    let (response, body) =
        request(&fleet.nodes[first], &host, Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sha256(&body.unwrap()), digest);
    let fetched = |node: usize| fleet.nodes[node].metric("pantry_upstream_fetched_bytes_total");
    let from_peers = |node: usize| fleet.nodes[node].metric("pantry_peer_fetched_bytes_total");
    assert_eq!((fetched(owner), from_peers(first)), (64 << 10, 64 << 10), "fetched by the owner, once");
    // Another node, no token: the owner holds it, but the registry says no to this client.
    let (response, body) = request(&fleet.nodes[second], &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(sha256(&body.unwrap_or_default()) != digest);
    // The node that got it with a token refuses a client without one (asking the registry).
    let (response, _) = request(&fleet.nodes[first], &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // And the owner's own clients the same.
    let (response, _) = request(&fleet.nodes[owner], &host, Method::GET, &path, &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (response, body) =
        request(&fleet.nodes[second], &host, Method::GET, &path, &[("authorization", TOKEN)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sha256(&body.unwrap()), digest);
    assert_eq!(
        (fetched(owner), from_peers(second)),
        (64 << 10, 64 << 10),
        "held by the owner, not fetched again"
    );
}

/// A client certificate resolver that always presents `key`.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A request to `node`'s fleet port presenting `leaf` (or none): the status, or the error that
/// ended the connection.
async fn ask_fleet_port(
    node: &TestPantry,
    leaf: Option<Arc<CertifiedKey>>,
    method: Method,
    path: &str,
    origin: Option<&str>,
) -> Result<StatusCode, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(node.roots());
    let config = match leaf {
        Some(leaf) => builder.with_client_cert_resolver(Arc::new(Present(leaf))),
        None => builder.with_no_client_auth(),
    };
    let stream = TcpStream::connect(node.fleet.unwrap()).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = Request::builder().method(method).uri(path).header("host", "fleet");
    if let Some(origin) = origin {
        request = request.header("pantry-origin", origin);
    }
    let response =
        send.send_request(request.body(Full::new(Bytes::new())).unwrap()).await.map_err(|e| e.to_string())?;
    Ok(response.status())
}

#[tokio::test]
async fn the_fleet_port_admits_members_only_and_serves_only_what_a_pull_reads() {
    let registry = FakeRegistry::start().await;
    let fleet = Fleet::start(&registry, 2, |_| {}).await;
    let node = &fleet.nodes[0];
    let digest = registry.state.add_blob(blob(1024, 5), "application/octet-stream");
    let origin = format!("https://{}", registry.host());
    let path = format!("/v2/lib/app/blobs/{digest}");
    let member = Arc::new(node.pantry.authority().fleet_leaf("127.0.0.2").unwrap());
    assert_eq!(
        ask_fleet_port(node, Some(Arc::clone(&member)), Method::GET, &path, Some(&origin)).await,
        Ok(StatusCode::OK)
    );
    // No certificate, one from another CA, and a leaf of this very CA minted for an intercepted
    // host (server-only): none is a member.
    assert!(ask_fleet_port(node, None, Method::GET, &path, Some(&origin)).await.is_err());
    let stranger =
        pantry::mitm::Authority::load_or_create(&tempfile::tempdir().unwrap().path().join("other")).unwrap();
    let foreign = Arc::new(stranger.fleet_leaf("127.0.0.1").unwrap());
    assert!(ask_fleet_port(node, Some(foreign), Method::GET, &path, Some(&origin)).await.is_err());
    let intercept_leaf = node.pantry.authority().leaf("registry.test").await.unwrap();
    assert!(ask_fleet_port(node, Some(intercept_leaf), Method::GET, &path, Some(&origin)).await.is_err());
    // A member asks for content by digest of a named origin, nothing else.
    let ask = |method, path: String, origin: Option<String>| {
        let member = Arc::clone(&member);
        async move { ask_fleet_port(node, Some(member), method, &path, origin.as_deref()).await.unwrap() }
    };
    assert_eq!(ask(Method::GET, "/v2/_catalog".into(), Some(origin.clone())).await, StatusCode::NOT_FOUND);
    assert_eq!(
        ask(Method::GET, "/v2/lib/app/tags/list".into(), Some(origin.clone())).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ask(Method::GET, "/v2/lib/app/blobs/uploads/".into(), Some(origin.clone())).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ask(Method::GET, "/v2/?last=x".into(), Some(origin.clone())).await, StatusCode::NOT_FOUND);
    assert_eq!(
        ask(Method::GET, "/v2/".into(), Some(origin.clone())).await,
        StatusCode::OK,
        "the anonymous version check"
    );
    assert_eq!(ask(Method::POST, path.clone(), Some(origin.clone())).await, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(ask(Method::GET, path.clone(), None).await, StatusCode::BAD_REQUEST);
    assert_eq!(ask(Method::GET, path.clone(), Some(format!("{origin}/v2/x"))).await, StatusCode::BAD_REQUEST);
    assert_eq!(ask(Method::GET, format!("{path}?x=1"), Some(origin.clone())).await, StatusCode::NOT_FOUND);
    assert_eq!(registry.state.count("GET blob"), 1);
}

/// A pull's reads: the version check, the tag, the manifest by digest and its one layer.
async fn pull(node: &TestPantry, host: &str, manifest: &str, layer: &str) -> Vec<(u16, String)> {
    let accept = ("accept", common::registry::MANIFEST_TYPE);
    let mut seen = Vec::new();
    for path in [
        "/v2/".to_string(),
        "/v2/lib/app/manifests/v1".into(),
        format!("/v2/lib/app/manifests/{manifest}"),
        format!("/v2/lib/app/blobs/{layer}"),
    ] {
        let (response, body) = request(node, host, Method::GET, &path, &[accept]).await;
        let body = body.unwrap();
        let ok = path.ends_with("/v2/") || sha256(&body) == manifest || sha256(&body) == layer;
        assert!(ok, "{path}: {} {:?}", response.status(), String::from_utf8_lossy(&body));
        seen.push((
            response.status().as_u16(),
            response
                .headers()
                .get("cache-status")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
        ));
    }
    seen
}

fn image(registry: &FakeRegistry) -> (String, String) {
    let layer = registry.state.add_blob(blob(128 << 10, 6), "application/vnd.oci.image.layer.v1.tar");
    let manifest = format!(r#"{{"schemaVersion":2,"layers":[{{"digest":"{layer}","size":131072}}]}}"#);
    let manifest = registry.state.add_blob(manifest, common::registry::MANIFEST_TYPE);
    registry.state.tag("lib/app", "v1", &manifest);
    (manifest, layer)
}

#[tokio::test]
async fn tags_and_the_version_check_are_asked_once_for_the_fleet() {
    let registry = FakeRegistry::start().await;
    let fleet = Fleet::start(&registry, 3, |_| {}).await;
    let (manifest, layer) = image(&registry);
    for node in &fleet.nodes {
        for (status, _) in pull(node, &registry.host(), &manifest, &layer).await {
            assert_eq!(status, 200);
        }
    }
    assert_eq!(registry.state.count("GET ping"), 1, "one version check for the fleet");
    assert_eq!(registry.state.count("GET manifest-tag"), 1, "one tag lookup for the fleet");
    assert_eq!(
        registry.state.count("GET manifest"),
        0,
        "the tag's answer was the manifest, stored by digest"
    );
    assert_eq!(registry.state.count("GET blob"), 1);
}

#[tokio::test]
async fn a_node_started_empty_while_the_registry_is_down_pulls_what_the_fleet_had() {
    let registry = FakeRegistry::start().await;
    let mut fleet = Fleet::start(&registry, 4, |_| {}).await;
    let (manifest, layer) = image(&registry);
    // Three members pull; the fourth has never seen the image.
    let newcomer = fleet.nodes.pop().unwrap();
    for node in &fleet.nodes {
        pull(node, &registry.host(), &manifest, &layer).await;
    }
    registry.state.down.store(true, Ordering::SeqCst);
    let seen = pull(&newcomer, &registry.host(), &manifest, &layer).await;
    assert!(seen.iter().all(|(status, _)| *status == 200), "{seen:?}");
    assert!(newcomer.pantry.proxy().store().blob(&layer.parse().unwrap()).await.is_some(), "kept a copy");
    // And it keeps serving it: from its own store now.
    let seen = pull(&newcomer, &registry.host(), &manifest, &layer).await;
    assert!(seen.iter().all(|(status, _)| *status == 200), "{seen:?}");
}

#[tokio::test]
async fn a_member_serves_no_registry_content_it_never_sent() {
    let (registry, other) = (FakeRegistry::start().await, FakeRegistry::start().await);
    let fleet = Fleet::start(&registry, 3, |c| {
        let mut more = pantry::config::Config::default();
        other.configure(&mut more);
        c.live.intercept.extend(more.live.intercept);
        c.startup.resolve.extend(more.startup.resolve);
        c.startup.upstream_ca.extend(more.startup.upstream_ca);
    })
    .await;
    registry.state.make_private("private/app");
    let digest = registry.state.add_blob(blob(64 << 10, 7), "application/octet-stream");
    let ranked = fleet.ranked(&digest);
    let path = format!("/v2/private/app/blobs/{digest}");
    let (response, _) =
        request(&fleet.nodes[ranked[0]], &registry.host(), Method::GET, &path, &[("authorization", TOKEN)])
            .await;
    assert_eq!(response.status(), StatusCode::OK, "the owner holds it, fetched with the token");
    // Through another node, named under a registry that never had it: that registry's answer.
    for name in ["private/app", "public/x"] {
        let path = format!("/v2/{name}/blobs/{digest}");
        let (response, body) = request(&fleet.nodes[ranked[1]], &other.host(), Method::GET, &path, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}");
        assert_ne!(sha256(&body.unwrap_or_default()), digest);
    }
    assert_eq!(other.state.count("GET blob"), 2, "asked of the registry the client named");
}
