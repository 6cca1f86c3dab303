//! Who may use pantry and where it may go: clients outside `allow_clients` are disconnected
//! unanswered, and link-local destinations (cloud metadata) are refused with 403 unless a
//! `--resolve` rule names them explicitly.

mod common;

use common::{connect, plain_get, start_pantry};
use pantry::config::ResolveRule;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[tokio::test]
async fn cloud_metadata_is_never_a_destination() {
    let pantry = start_pantry(|c| {
        c.startup.resolve = vec![ResolveRule::parse("metadata.test:443:169.254.169.254").unwrap()];
    })
    .await;
    let (_, head) = connect(pantry.addr, "169.254.169.254:443", "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 403") && head.contains("deny_destinations"), "{head}");
    assert!(head.contains("error=http_request_denied"), "{head}");
    let answer = plain_get(pantry.addr, "http://169.254.169.254/latest/meta-data/").await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let answer = plain_get(pantry.addr, "http://[fe80::1]/").await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // Named explicitly with --resolve: allowed (nothing answers there, so the dial fails instead).
    let (_, head) = connect(pantry.addr, "metadata.test:443", "HTTP/1.1").await;
    assert!(!head.starts_with("HTTP/1.1 403"), "{head}");
}

#[tokio::test]
async fn clients_outside_the_allow_list_are_disconnected() {
    let open = start_pantry(|_| {}).await;
    assert!(
        plain_get(open.addr, "/healthz").await.starts_with("HTTP/1.1 200"),
        "loopback is allowed by default"
    );
    let closed = start_pantry(|c| c.live.allow_clients = vec!["10.0.0.0/8".parse().unwrap()]).await;
    assert_eq!(plain_get(closed.addr, "/healthz").await, "", "disconnected without an answer");
}

/// What pantry answers a proxied GET sent with `Proxy-Authorization: Basic` for `user:password`.
async fn get_as(proxy: std::net::SocketAddr, user_password: &str) -> String {
    use base64::Engine;
    let credentials = base64::engine::general_purpose::STANDARD.encode(user_password);
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!(
        "GET http://closed.invalid/ HTTP/1.1\r\nHost: closed.invalid\r\nProxy-Authorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn proxy_clients_authenticate_and_admin_pages_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("ci:{}\n", bcrypt::hash("runner-pw", 4).unwrap())).unwrap();
    let pantry = start_pantry(|c| {
        c.live.proxy_auth_file = Some(htpasswd.clone());
    })
    .await;
    let answer = plain_get(pantry.addr, "http://127.0.0.1:1/").await;
    assert!(answer.starts_with("HTTP/1.1 407") && answer.contains("Basic realm=\"pantry\""), "{answer}");
    let (_, head) = connect(pantry.addr, "registry.test:443", "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 407"), "{head}");

    let answer = get_as(pantry.addr, "ci:guessed").await;
    assert!(answer.starts_with("HTTP/1.1 407"), "a wrong password is refused like none: {answer}");
    let answer = get_as(pantry.addr, "ci:runner-pw").await;
    assert!(answer.starts_with("HTTP/1.1 502"), "authenticated: on to the (unresolvable) upstream: {answer}");
    assert!(
        plain_get(pantry.addr, "/healthz").await.starts_with("HTTP/1.1 200"),
        "admin pages need no credentials"
    );
}
