//! A fake origin for tests: TLS (its own test CA, ALPN h2 + http/1.1) or plain HTTP, with routes
//! that echo requests, stream large bodies and gate a response to prove streaming.

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use pantry::body::{self, Body, BoxError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::{net::TcpListener, sync::Notify};

/// A test CA and a server certificate for registry.test, localhost, 127.0.0.1 and ::1.
pub struct TestCa {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    server: Arc<ServerConfig>,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// The server side TLS configuration (certificate for the test names, ALPN h2 + http/1.1).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server)
    }

    pub fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test upstream CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let names = ["registry.test", "cdn.test", "localhost", "127.0.0.1", "::1"].map(String::from);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(names.to_vec()).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Self { ca_pem: ca.pem(), ca_file, server: Arc::new(server), _dir: dir }
    }
}

/// What the fake upstream saw, and handles to steer it.
#[derive(Default)]
pub struct Observed {
    pub requests: AtomicUsize,
    pub versions: Mutex<Vec<Version>>,
    /// Released by the test to let `/gated` finish its body.
    pub gate: Notify,
    /// Notified when `/upload` has received its first bytes.
    pub upload_started: Notify,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub ca: Arc<TestCa>,
    pub observed: Arc<Observed>,
}

impl FakeUpstream {
    /// Starts on `bind` (e.g. "127.0.0.1:0"); TLS when `tls`.
    pub async fn start(bind: &str, tls: bool) -> Self {
        let ca = Arc::new(TestCa::new());
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let observed = Arc::new(Observed::default());
        let (server_config, seen) = (Arc::clone(&ca.server), Arc::clone(&observed));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (config, seen) = (Arc::clone(&server_config), Arc::clone(&seen));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let seen = Arc::clone(&seen);
                        async move { Ok::<_, Infallible>(route(request, seen).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    if tls {
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await else {
                            return;
                        };
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    } else {
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    }
                });
            }
        });
        Self { addr, ca, observed }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

async fn route(request: Request<Incoming>, seen: Arc<Observed>) -> Response<Body> {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    seen.versions.lock().unwrap().push(request.version());
    let path = request.uri().path().to_string();
    match path.as_str() {
        "/echo" => echo(&request),
        "/cacheable" => Response::builder()
            .header("cache-control", "max-age=600")
            .body(body::full(format!("cacheable, first asked over {:?}", request.version())))
            .unwrap(),
        "/gated" => gated(Arc::clone(&seen)).await,
        "/upload" => upload(request, &seen).await,
        p if p.starts_with("/bytes/") => stream_bytes(p["/bytes/".len()..].parse().unwrap()),
        _ => Response::builder().status(404).body(body::full("no such route")).unwrap(),
    }
}

/// Echoes method, path, version and headers; adds a hop-by-hop header pantry must strip.
fn echo(request: &Request<Incoming>) -> Response<Body> {
    let mut text = format!("{} {} {:?}\n", request.method(), request.uri(), request.version());
    for (name, value) in request.headers() {
        text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
    }
    Response::builder()
        .header("connection", "x-hop")
        .header("x-hop", "must not reach the client")
        .header("x-origin", "fake")
        .body(body::full(text))
        .unwrap()
}

/// Sends a first chunk, then waits for the test to open the gate before finishing.
async fn gated(seen: Arc<Observed>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
    tx.send(Ok(Frame::data(Bytes::from_static(b"first chunk\n")))).await.unwrap();
    let task = async move {
        seen.gate.notified().await;
        let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"rest\n")))).await;
    };
    tokio::spawn(task);
    let stream = tokio_stream_from(rx);
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send + Sync + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Streams `len` bytes of a repeating pattern in 64 KiB chunks, generated on the fly.
fn stream_bytes(len: u64) -> Response<Body> {
    const CHUNK: u64 = 64 * 1024;
    let chunk = Bytes::from((0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let stream = futures_util::stream::iter((0..len.div_ceil(CHUNK)).map(move |i| {
        let size = CHUNK.min(len - i * CHUNK) as usize;
        Ok::<_, BoxError>(Frame::data(chunk.slice(..size)))
    }));
    Response::builder().header("content-length", len).body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}

/// Counts the uploaded bytes as they arrive; tells the test when the first ones did.
async fn upload(request: Request<Incoming>, seen: &Observed) -> Response<Body> {
    let mut body = request.into_body().into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        if total == 0 && !chunk.is_empty() {
            seen.upload_started.notify_one();
        }
        total += chunk.len();
    }
    Response::new(body::full(format!("received {total}")))
}
