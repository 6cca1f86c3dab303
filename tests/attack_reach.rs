//! Attacks on pantry's own host: a proxy client names a local service (the admin port, a database
//! on loopback) in every spelling of the address and through every way in, names a port no rule
//! opens, or uses the mirror and `/metrics` without the proxy credentials the proxy port asks for.
//! (docs/SECURITY.md lists each attack and what defends it.)

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use base64::Engine;
use common::{connect, registry::FakeRegistry, start_pantry};
use pantry::config::{Destination, ResolveRule};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A local service holding a secret: every connection it accepts is counted.
async fn local_secret() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET").await;
            });
        }
    });
    (addr, accepted)
}

/// Everything `addr` answers to `request` (sent as is; it should ask to close).
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(url: &str, extra: &str) -> String {
    format!("GET {url} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
}

fn basic(user_password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
}

#[tokio::test]
async fn loopback_in_every_spelling_is_refused_on_every_way_in() {
    let (secret, accepted) = local_secret().await;
    let port = secret.port();
    let pantry = start_pantry(|c| {
        // The port is open, so only the destination rule stands between the client and the secret.
        c.live.allow_ports = vec![port];
        c.startup.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = pantry.admin.unwrap().port();
    let spellings =
        ["127.0.0.1", "2130706433", "127.1", "0", "0.0.0.0", "[::ffff:127.0.0.1]", "localhost", "[::1]"];
    for host in spellings {
        for url in [format!("http://{host}:{port}/"), format!("https://{host}:{port}/")] {
            let answer = exchange(pantry.addr, &get(&url, "")).await;
            assert!(answer.starts_with("HTTP/1.1 403"), "{url}: {answer}");
            assert!(!answer.contains("SECRET"), "{url}: {answer}");
            if host == "localhost" {
                assert!(
                    !answer.contains("127.0.0.1") && !answer.contains("::1"),
                    "names, not addresses: {answer}"
                );
            }
        }
        let (_, head) = connect(pantry.addr, &format!("{host}:{port}"), "HTTP/1.1").await;
        assert!(head.starts_with("HTTP/1.1 403"), "CONNECT {host}:{port}: {head}");
        let ns = format!("/v2/?ns={host}:{port}");
        let answer = exchange(pantry.mirror.unwrap(), &get(&ns, "")).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "mirror {ns}: {answer}");
        // pantry's own admin port, through its proxy port
        let answer = exchange(pantry.addr, &get(&format!("http://{host}:{admin}/metrics"), "")).await;
        assert!(
            answer.starts_with("HTTP/1.1 403") && !answer.contains("pantry_"),
            "{host}:{admin}: {answer}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing reached the local service");
}

#[tokio::test]
async fn only_an_explicit_name_or_allow_entry_opens_loopback() {
    let (secret, accepted) = local_secret().await;
    let port = secret.port();
    let pantry = start_pantry(|c| {
        c.startup.resolve = vec![ResolveRule::parse(&format!("svc.test:{port}:127.0.0.1")).unwrap()];
        c.startup.allow_destinations = vec![Destination::parse(&format!("localhost:{port}")).unwrap()];
        // an operator's own range: added to the built-in ones, never replacing them
        c.startup.deny_destinations = vec!["203.0.113.0/24".parse().unwrap()];
    })
    .await;
    for url in [format!("http://svc.test:{port}/"), format!("http://localhost:{port}/")] {
        let answer = exchange(pantry.addr, &get(&url, "")).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("SECRET"), "{url}: {answer}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    let answer = exchange(pantry.addr, &get(&format!("http://127.0.0.1:{port}/"), "")).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "the address itself stays shut: {answer}");
    for denied in ["169.254.169.254:443", "[fe80::1]:443", "203.0.113.5:443"] {
        let (_, head) = connect(pantry.addr, denied, "HTTP/1.1").await;
        assert!(head.starts_with("HTTP/1.1 403"), "{denied}: {head}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_port_no_rule_opens_is_refused_on_every_way_in() {
    let (secret, accepted) = local_secret().await;
    let port = secret.port();
    let pantry = start_pantry(|c| {
        // The address is open (no port given), so only the port rule stands in the way.
        c.startup.allow_destinations = vec![Destination::parse("127.0.0.1").unwrap()];
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    for url in [format!("http://127.0.0.1:{port}/"), format!("https://127.0.0.1:{port}/")] {
        let answer = exchange(pantry.addr, &get(&url, "")).await;
        assert!(
            answer.starts_with("HTTP/1.1 403") && answer.contains(&format!("port {port}")),
            "{url}: {answer}"
        );
    }
    let (_, head) = connect(pantry.addr, &format!("127.0.0.1:{port}"), "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let answer = exchange(pantry.mirror.unwrap(), &get(&format!("/v2/?ns=127.0.0.1:{port}"), "")).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

/// An htpasswd file with `ci:runner-pw` at bcrypt cost `cost`.
fn htpasswd(dir: &std::path::Path, cost: u32) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("ci:{}\n", bcrypt::hash("runner-pw", cost).unwrap())).unwrap();
    path
}

fn with_auth(c: &mut pantry::config::Config, path: &std::path::Path) {
    c.live.proxy_auth_file = Some(path.to_path_buf());
}

/// A registry and a pantry with proxy credentials and a mirror for that registry, admitting
/// `admitted` mirror clients without them.
async fn mirror_with_auth(admitted: &[&str]) -> (tempfile::TempDir, FakeRegistry, common::TestPantry) {
    let dir = tempfile::tempdir().unwrap();
    let path = htpasswd(dir.path(), 4);
    let registry = FakeRegistry::start().await;
    let pantry = start_pantry(|c| {
        registry.configure(c);
        with_auth(c, &path);
        c.startup.mirror_listen = Some("127.0.0.1:0".parse().unwrap());
        c.live.mirror_default = registry.host();
        c.live.mirror_allow_clients = admitted.iter().map(|n| n.parse().unwrap()).collect();
    })
    .await;
    (dir, registry, pantry)
}

#[tokio::test]
async fn the_mirror_and_metrics_ask_for_the_proxy_credentials() {
    let (_dir, registry, pantry) = mirror_with_auth(&[]).await;
    let mirror = pantry.mirror.unwrap();
    let blob = registry.state.add_blob(vec![7u8; 100], "application/octet-stream");
    let path_of_blob = format!("/v2/app/blobs/{blob}");
    for extra in [String::new(), format!("Proxy-Authorization: {}\r\n", basic("ci:guess"))] {
        let answer = exchange(mirror, &get(&path_of_blob, &extra)).await;
        assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("\"DENIED\""), "{answer}");
    }
    // Basic on the registry's own header is not pantry's credential: it would be sent on upstream.
    let answer =
        exchange(mirror, &get(&path_of_blob, &format!("Authorization: {}\r\n", basic("ci:runner-pw")))).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(registry.state.count("GET blob"), 0, "nothing was fetched for a refused client");
    let answer =
        exchange(mirror, &get(&path_of_blob, &format!("Proxy-Authorization: {}\r\n", basic("ci:runner-pw"))))
            .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(exchange(mirror, &get("/healthz", "")).await.starts_with("HTTP/1.1 200"));

    let answer = exchange(pantry.addr, &get("/metrics", "")).await;
    assert!(answer.starts_with("HTTP/1.1 401") && answer.contains("Basic realm=\"pantry\""), "{answer}");
    assert!(!answer.contains("pantry_"), "{answer}");
    let answer =
        exchange(pantry.addr, &get("/metrics", &format!("Authorization: {}\r\n", basic("ci:runner-pw"))))
            .await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("pantry_"), "{answer}");
    for open in ["/healthz", "/ca.pem"] {
        assert!(exchange(pantry.addr, &get(open, "")).await.starts_with("HTTP/1.1 200"), "{open}");
    }
}

#[tokio::test]
async fn mirror_allow_clients_admits_listed_addresses_without_credentials() {
    let (_dir, registry, pantry) = mirror_with_auth(&["127.0.0.0/8"]).await;
    let blob = registry.state.add_blob(vec![8u8; 100], "application/octet-stream");
    let answer = exchange(pantry.mirror.unwrap(), &get(&format!("/v2/app/blobs/{blob}"), "")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The median time pantry takes to refuse `credentials` on the proxy port.
async fn refusal_time(proxy: SocketAddr, credentials: &str) -> Duration {
    let mut times = Vec::new();
    for _ in 0..7 {
        let request =
            get("http://example.invalid/", &format!("Proxy-Authorization: {}\r\n", basic(credentials)));
        let started = Instant::now();
        let answer = exchange(proxy, &request).await;
        times.push(started.elapsed());
        assert!(answer.starts_with("HTTP/1.1 407"), "{answer}");
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test]
async fn an_unknown_user_is_refused_as_slowly_as_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = htpasswd(dir.path(), 9);
    let pantry = start_pantry(|c| with_auth(c, &path)).await;
    let wrong_password = refusal_time(pantry.addr, "ci:guess").await;
    let unknown_user = refusal_time(pantry.addr, "nobody:guess").await;
    let ratio = unknown_user.as_secs_f64() / wrong_password.as_secs_f64();
    assert!(ratio > 0.5, "unknown {unknown_user:?} vs known {wrong_password:?}: the time tells names apart");
}
