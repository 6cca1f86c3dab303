//! A fault-injecting registry that writes raw HTTP/1.1 over TLS, so it can say what a well-behaved
//! server library never would: a Content-Length that is too large or too small, a body dripping one
//! byte at a time, a storm of 5xx answers, silence before the headers. It serves one blob at
//! `/v2/<repo>/blobs/<digest>` and the `/v2/` ping; every request is counted.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
};

use super::{registry::sha256, upstream::TestCa};

/// What the registry does to blob GETs (other requests are answered correctly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers correctly.
    None,
    /// Sends half the body, then resets the connection.
    Reset,
    /// Sends half the body, then nothing more.
    StallBody,
    /// Sends other bytes than the digest says.
    WrongDigest,
    /// Declares more bytes than it sends, then closes.
    LongLength,
    /// Declares fewer bytes than it sends (the rest spills onto the connection).
    ShortLength,
    /// Sends the body one byte every `every`.
    Drip { every: Duration },
    /// Answers 503 to every request.
    Storm,
    /// Accepts the request and never answers.
    StallHeaders,
}

pub struct FaultyRegistry {
    pub addr: SocketAddr,
    pub ca: TestCa,
    pub blob: Bytes,
    pub digest: String,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<AtomicUsize>,
}

impl FaultyRegistry {
    /// Starts the registry serving `blob`.
    pub async fn start(blob: impl Into<Bytes>) -> Self {
        let (blob, ca) = (blob.into(), TestCa::new());
        let digest = sha256(&blob);
        let mut tls = (*ca.server_config()).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, requests) = (Arc::new(Mutex::new(Fault::None)), Arc::new(AtomicUsize::new(0)));
        let shared = (blob.clone(), digest.clone(), Arc::clone(&fault), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(stream).await else { return };
                    let (blob, digest, fault, requests) = shared;
                    while let Some(path) = read_request(&mut stream).await {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let fault = *fault.lock().unwrap();
                        if !answer(&mut stream, &path, &blob, &digest, fault).await {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, ca, blob, digest, fault, requests }
    }

    /// `registry.test:PORT`, as clients name it.
    pub fn host(&self) -> String {
        format!("registry.test:{}", self.addr.port())
    }

    pub fn blob_path(&self) -> String {
        format!("/v2/app/blobs/{}", self.digest)
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Configures pantry to intercept and resolve the registry and trust its CA.
    pub fn configure(&self, config: &mut pantry::config::Config) {
        use pantry::config::{HostPattern, ResolveRule};
        let port = self.addr.port();
        config.live.intercept = vec![HostPattern::parse(&format!("registry.test:{port}")).unwrap()];
        config.startup.resolve =
            vec![ResolveRule::parse(&format!("registry.test:{port}:127.0.0.1")).unwrap()];
        config.startup.upstream_ca = vec![self.ca.ca_file.clone()];
    }
}

/// Reads one request head; its method and path (`None` when the peer closed or sent garbage).
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_string();
    let mut parts = line.split(' ');
    Some(format!("{} {}", parts.next()?, parts.next()?))
}

/// Writes the answer to `request` (`METHOD PATH`); whether the connection may be reused.
async fn answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
    blob: &Bytes,
    digest: &str,
    fault: Fault,
) -> bool {
    let (method, path) = request.split_once(' ').unwrap();
    if fault == Fault::StallHeaders {
        std::future::pending::<()>().await;
    }
    if fault == Fault::Storm {
        let head = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        return stream.write_all(head.as_bytes()).await.is_ok();
    }
    if path == "/v2/" {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        return stream.write_all(head.as_bytes()).await.is_ok();
    }
    if !path.ends_with(&format!("/blobs/{digest}")) {
        let head = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        return stream.write_all(head.as_bytes()).await.is_ok();
    }
    let declared = match fault {
        Fault::LongLength => blob.len() + 1000,
        Fault::ShortLength => blob.len() - 1000,
        _ => blob.len(),
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\
         Docker-Content-Digest: {digest}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    if method == "HEAD" {
        return true;
    }
    let half = blob.len() / 2;
    match fault {
        Fault::Reset => {
            let _ = stream.write_all(&blob[..half]).await;
            let _ = stream.flush().await;
            false // dropped without a TLS close: the peer sees the connection end mid-body
        }
        Fault::StallBody => {
            let _ = stream.write_all(&blob[..half]).await;
            let _ = stream.flush().await;
            std::future::pending::<bool>().await
        }
        Fault::WrongDigest => {
            let mut forged = blob.to_vec();
            forged[half] ^= 0xff;
            stream.write_all(&forged).await.is_ok() && stream.flush().await.is_ok()
        }
        Fault::Drip { every } => {
            for byte in blob.iter() {
                if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
                    return false;
                }
                tokio::time::sleep(every).await;
            }
            true
        }
        Fault::LongLength => {
            let _ = stream.write_all(blob).await;
            let _ = stream.shutdown().await;
            false
        }
        _ => stream.write_all(blob).await.is_ok() && stream.flush().await.is_ok(),
    }
}
