//! Attacks through the mirror port: a TLS mirror asked for a foreign name (a leaf minted for it
//! would let the mirror's clients be served another host's bytes under that name), `?ns=` used to
//! fetch a page that is no registry API route, and the mirror's cookies sent on to the host `?ns=`
//! names. (docs/SECURITY.md lists each attack and what defends it.)

mod common;

use common::{registry::FakeRegistry, start_pantry, tls, Sender};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[tokio::test]
async fn a_tls_mirror_mints_only_for_the_names_it_serves() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.mirror_tls = true;
        c.live.mirror_names = vec!["mirror.test".into()];
        c.live.mirror_default = registry.host();
    })
    .await;
    let mirror = pantry.mirror.unwrap();
    let minted = pantry.pantry.authority().minted();
    for foreign in ["registry.test", "ghcr.io", "evil.test", "localhost"] {
        let stream = TcpStream::connect(mirror).await.unwrap();
        let refused = tls(stream, foreign, pantry.roots(), &[b"http/1.1"]).await;
        assert!(refused.is_err(), "{foreign}: a handshake for a name the mirror does not serve");
    }
    assert_eq!(pantry.pantry.authority().minted(), minted, "no leaf minted for a foreign name");
    let stream = TcpStream::connect(mirror).await.unwrap();
    let stream = tls(stream, "mirror.test", pantry.roots(), &[b"http/1.1"]).await.unwrap();
    let (response, _) = Sender::h1(stream).await.get("/v2/", "mirror.test").await;
    assert_eq!(response.status(), 200);
    // A client that dialled the address (no SNI) gets a leaf for that address.
    let stream = TcpStream::connect(mirror).await.unwrap();
    let stream = tls(stream, "127.0.0.1", pantry.roots(), &[b"http/1.1"]).await.unwrap();
    let (response, _) = Sender::h1(stream).await.get("/v2/", "127.0.0.1").await;
    assert_eq!(response.status(), 200);
}

/// Everything the mirror answers to `request` (sent as is, asking to close).
async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn ns_reaches_only_registry_routes_and_never_carries_cookies() {
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let mirror = pantry.mirror.unwrap();
    let host = registry.host();
    for path in ["/v2/login.html", "/v2/app/secrets/x", "/v2/app/manifests/", "/v2/a/../b/manifests/v1"] {
        let request = format!("GET {path}?ns={host} HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n");
        let answer = exchange(mirror, &request).await;
        assert!(answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    let request = format!(
        "GET /v2/?ns={host} HTTP/1.1\r\nHost: mirror\r\nCookie: session=alice\r\nConnection: close\r\n\r\n"
    );
    let answer = exchange(mirror, &request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(registry.state.count("GET ping"), 1, "the registry was asked");
    assert!(registry.state.cookies.lock().unwrap().is_empty(), "no cookie went upstream");
}
