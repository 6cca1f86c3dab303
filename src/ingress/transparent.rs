//! Transparent mode: connections redirected to pantry by the kernel (iptables/nftables REDIRECT or
//! DNAT to the `--transparent` port) from clients that know nothing of a proxy. The destination
//! the client meant comes from `SO_ORIGINAL_DST`; the first bytes, peeked without consuming them,
//! say what it speaks: TLS (the ClientHello's SNI names the host, and the same intercept-or-tunnel
//! decision as CONNECT follows), plain HTTP (served like absolute-form requests, the Host header
//! naming the host), or anything else (tunnelled to the original destination untouched).
//!
//! A connection whose original destination is pantry's own listening address was not redirected
//! or was redirected back to pantry (a loop): it is refused and logged. Pantry's own upstream
//! traffic must be left out of the redirect rules (examples/transparent/ shows how).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::{header, Request};
use hyper::body::Incoming;
use tokio::net::TcpStream;

use super::{intercept, tunnel, Ingress};
use crate::{connection::serve_http, shutdown::ConnectionPermit, target::Target};

/// What the client's first bytes say it speaks.
#[derive(Debug, PartialEq, Eq)]
pub enum Speaks {
    /// A TLS ClientHello, with its server name if it sent one.
    Tls(Option<String>),
    /// An HTTP/1.x request line.
    Http,
    /// Something else, or nothing within the sniffing time (server-first protocols).
    Other,
}

/// The most a ClientHello may take before pantry gives up reading it (several records).
const MAX_HELLO: usize = 64 * 1024;

/// Serves one redirected connection; `own` are pantry's listening addresses (loop detection).
pub async fn serve_redirected(
    stream: TcpStream,
    ingress: Arc<Ingress>,
    permit: ConnectionPermit,
    own: Arc<[SocketAddr]>,
) {
    let _permit = permit;
    let original = match original_destination(&stream) {
        Ok(original) => original,
        Err(error) => {
            return tracing::info!(%error, "refused: no original destination (was the connection redirected?)")
        }
    };
    let local = stream.local_addr().ok();
    if local.is_some_and(|l| same(l, original)) || own.iter().any(|o| same(*o, original)) {
        return tracing::warn!(
            %original,
            "refused: the connection's destination is pantry itself (not redirected, or a redirect loop)"
        );
    }
    let sniff_time = ingress.config.load().live.client_header_timeout.min(Duration::from_secs(2));
    match sniff(&stream, sniff_time).await {
        Speaks::Tls(name) => tls(stream, &ingress, original, name).await,
        Speaks::Http => http(stream, &ingress, original).await,
        Speaks::Other => opaque(stream, &ingress, original).await,
    }
}

/// Whether two addresses are the same, IPv4-mapped IPv6 counting as IPv4.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// The address the client connected to before the kernel redirected it. An IPv4 client of a
/// dual-stack (`[::]`) listener arrives as an IPv4-mapped address and has an IPv4 original.
/// Linux (netfilter's `SO_ORIGINAL_DST`) only.
#[cfg(target_os = "linux")]
pub fn original_destination(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    use nix::sys::socket::{getsockopt, sockopt, SockaddrIn, SockaddrIn6};
    let v4 = |stream: &TcpStream| -> std::io::Result<SocketAddr> {
        let raw = getsockopt(stream, sockopt::OriginalDst)?;
        Ok(SocketAddr::V4(SockaddrIn::from(raw).into()))
    };
    match stream.local_addr()? {
        SocketAddr::V6(local) if local.ip().to_ipv4_mapped().is_none() => {
            let raw = getsockopt(stream, sockopt::Ip6tOriginalDst)?;
            Ok(SocketAddr::V6(SockaddrIn6::from(raw).into()))
        }
        _ => v4(stream),
    }
}

/// Peeks at the first bytes (never consuming them) until they tell what the client speaks; gives
/// up after `wait` without a complete answer.
pub async fn sniff(stream: &TcpStream, wait: Duration) -> Speaks {
    let mut buffer = vec![0u8; MAX_HELLO];
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = 0;
    loop {
        let peeked = tokio::select! {
            peeked = stream.peek(&mut buffer) => peeked,
            () = tokio::time::sleep_until(deadline) => return Speaks::Other,
        };
        let Ok(n) = peeked else { return Speaks::Other };
        if n == 0 {
            return Speaks::Other;
        }
        if let Some(speaks) = classify(&buffer[..n]) {
            return speaks;
        }
        if n == seen || n == buffer.len() {
            if n == buffer.len() {
                return Speaks::Other;
            }
            // Nothing new yet: peek answers at once while old bytes wait, so pause briefly.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen = n;
    }
}

/// What `bytes` (the start of a connection) speak, or `None` while they are too few to tell.
pub fn classify(bytes: &[u8]) -> Option<Speaks> {
    match bytes.first()? {
        0x16 => client_hello(bytes),
        b'A'..=b'Z' => {
            let method_end = bytes.iter().position(|b| !b.is_ascii_uppercase());
            match method_end {
                None if bytes.len() < 16 => None,
                Some(end) if end > 0 && bytes[end] == b' ' => Some(Speaks::Http),
                _ => Some(Speaks::Other),
            }
        }
        _ => Some(Speaks::Other),
    }
}

/// Reads a ClientHello with rustls (on a copy of the bytes): its server name once complete.
fn client_hello(bytes: &[u8]) -> Option<Speaks> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut reader = bytes;
    while !reader.is_empty() {
        if acceptor.read_tls(&mut reader).is_err() {
            return Some(Speaks::Other);
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Some(Speaks::Tls(accepted.client_hello().server_name().map(str::to_string))),
        Ok(None) => None,
        Err(_) => Some(Speaks::Other),
    }
}

/// TLS: intercepted when the name (SNI, else the original address) is one pantry intercepts,
/// tunnelled to the original destination otherwise.
async fn tls(stream: TcpStream, ingress: &Arc<Ingress>, original: SocketAddr, name: Option<String>) {
    let host = name.unwrap_or_else(|| original.ip().to_string());
    let target = match Target::new(true, &host, original.port()) {
        Ok(target) => target,
        Err(reason) => return tracing::info!(%original, %reason, "refused: unusable server name"),
    };
    let config = ingress.config.load();
    if ingress.intercepts(&config, &target) {
        tracing::debug!(%target, %original, "transparent: intercepting");
        return intercept::serve_intercepted(ingress, stream, target).await;
    }
    if config.live.offline {
        return tracing::info!(%target, "refused: cannot tunnel while offline");
    }
    drop(config);
    opaque(stream, ingress, original).await;
}

/// Anything pantry does not intercept: bytes copied to and from the original destination.
async fn opaque(stream: TcpStream, ingress: &Arc<Ingress>, original: SocketAddr) {
    let host = original.ip().to_string();
    match ingress.dialer.connect(&host, original.port()).await {
        Ok(upstream) => {
            let target = Target::new(true, &host, original.port()).expect("an IP literal is a valid host");
            tunnel::relay(ingress, stream, upstream, &target).await;
        }
        Err(error) => tracing::info!(%original, %error, "transparent tunnel refused"),
    }
}

/// Plain HTTP: requests in origin form, each sent to the host its Host header names (the
/// original destination when it has none), through the proxy core like absolute-form requests.
async fn http(stream: TcpStream, ingress: &Arc<Ingress>, original: SocketAddr) {
    let for_requests = Arc::clone(ingress);
    let answer = move |request: Request<Incoming>| {
        let ingress = Arc::clone(&for_requests);
        async move {
            match target_of(&request, original) {
                // The port the kernel redirected is one the operator chose; others are checked.
                Ok(target) if target.port == original.port() => {
                    ingress.proxy.handle(request.map(crate::body::incoming), &target).await
                }
                Ok(target) => ingress.answer(request.map(crate::body::incoming), &target).await,
                Err(reason) => crate::error::ProxyError::BadRequest(reason).into_response(),
            }
        }
    };
    let header_timeout = ingress.config.load().live.client_header_timeout;
    if let Err(error) = serve_http(stream, header_timeout, &ingress.shutdown, answer).await {
        tracing::debug!(%error, "transparent HTTP connection ended with an error");
    }
}

/// Where a transparently received plain HTTP request goes: its Host header, else the original
/// destination.
fn target_of(request: &Request<Incoming>, original: SocketAddr) -> Result<Target, String> {
    let Some(host) = request.headers().get(header::HOST) else {
        return Target::new(false, &original.ip().to_string(), original.port());
    };
    let authority: http::uri::Authority =
        host.to_str().ok().and_then(|h| h.parse().ok()).ok_or("the Host header is not a valid authority")?;
    Target::new(false, authority.host(), authority.port_u16().unwrap_or(original.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_lines_are_told_apart_from_other_protocols() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Speaks::Http));
        assert_eq!(classify(b"PROPFIND /x HTTP/1.1"), Some(Speaks::Http));
        assert_eq!(classify(b"GE"), None, "too few bytes to tell");
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.2"), Some(Speaks::Other));
        assert_eq!(classify(b"\x00\x01binary"), Some(Speaks::Other));
        assert_eq!(classify(b""), None);
    }

    #[test]
    fn a_client_hello_gives_its_server_name_once_complete() {
        let hello = client_hello_bytes("registry.test");
        assert_eq!(classify(&hello), Some(Speaks::Tls(Some("registry.test".into()))));
        assert_eq!(classify(&hello[..hello.len() / 2]), None, "half a ClientHello: wait for more");
        let mut broken = hello.clone();
        broken[5] = 0x02; // a ServerHello type where the ClientHello should be
        assert_eq!(classify(&broken), Some(Speaks::Other));
    }

    /// The first flight of a rustls client connecting to `name`.
    fn client_hello_bytes(name: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        bytes
    }
}
