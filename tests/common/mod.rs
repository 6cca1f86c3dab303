//! Shared test harness: a pantry on port 0 with temp dirs, a fake TLS upstream with its own CA,
//! and a client that speaks CONNECT, TLS and HTTP/1.1 or h2 through pantry.
#![allow(dead_code)]

pub mod faulty;
pub mod login;
pub mod registry;
pub mod reliability;
pub mod seaweed;
pub mod upstream;

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pantry::{config::Config, Pantry};
use rustls::{pki_types::ServerName, ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tokio_rustls::{client::TlsStream, TlsConnector};

/// A running pantry and the temp dirs it owns.
pub struct TestPantry {
    pub addr: SocketAddr,
    /// The registry-mirror port, when the config asked for one.
    pub mirror: Option<SocketAddr>,
    /// The admin port, when the config asked for one.
    pub admin: Option<SocketAddr>,
    /// The transparent port, when the config asked for one (bound where it said, port 0 allowed).
    pub transparent: Option<SocketAddr>,
    /// The fleet port, when the test handed one over ([`start_pantry_with_fleet`]).
    pub fleet: Option<SocketAddr>,
    pub pantry: Arc<Pantry>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl TestPantry {
    /// pantry's CA as a root store (what a client that trusts pantry has).
    pub fn roots(&self) -> RootCertStore {
        roots_from_pem(self.pantry.authority().ca_pem())
    }

    /// Signals shutdown and returns the serving task to await.
    pub fn stop(&mut self) -> &mut tokio::task::JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        &mut self.task
    }

    /// The value of the first metric line starting with `line_start` (a name, or a name and its
    /// labels' start), 0 when no such line was rendered yet.
    pub fn metric(&self, line_start: &str) -> u64 {
        let text = self.pantry.proxy().metrics().render(Default::default());
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
    }
}

/// Lets pantry reach loopback (denied by default) at `ports`, by address: what tests that dial
/// their fake upstreams as `127.0.0.1:PORT` or `[::1]:PORT` need. Opens those ports too.
pub fn reach_loopback(config: &mut Config, ports: &[u16]) {
    for port in ports {
        for host in ["127.0.0.1", "[::1]"] {
            let entry = pantry::config::Destination::parse(&format!("{host}:{port}")).unwrap();
            config.startup.allow_destinations.push(entry);
        }
    }
}

/// Writes `token` to a file only its owner may read, beside the pantry's cache, and names it as
/// the admin token file.
pub fn admin_token(config: &mut Config, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = config.startup.cache_dir.with_file_name("admin-token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    config.live.admin_token_file = Some(path);
}

/// Starts pantry on 127.0.0.1:0 with temp cache/certs dirs; `adjust` edits the config first.
pub async fn start_pantry(adjust: impl FnOnce(&mut Config)) -> TestPantry {
    start_pantry_with_fleet(adjust, None).await
}

/// [`start_pantry`], serving the fleet port on `fleet` (bound by the test, so that every member's
/// address is known before any starts; `adjust` sets `fleet_listen`, `peers` and `advertise`).
pub async fn start_pantry_with_fleet(
    adjust: impl FnOnce(&mut Config),
    fleet: Option<TcpListener>,
) -> TestPantry {
    let fleet_addr = fleet.as_ref().map(|l| l.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.startup.cache_dir = dir.path().join("cache");
    config.startup.certs_dir = dir.path().join("certs");
    adjust(&mut config);
    let mirror_listener = match config.startup.mirror_listen {
        Some(_) => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
        None => None,
    };
    let mirror = mirror_listener.as_ref().map(|l| l.local_addr().unwrap());
    config.startup.mirror_listen = mirror;
    // On the configured address (a wildcard one is what some tests are about), any free port.
    let admin_listener = match config.startup.admin_listen {
        Some(addr) => Some(TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await.unwrap()),
        None => None,
    };
    let admin = admin_listener.as_ref().map(|l| l.local_addr().unwrap());
    config.startup.admin_listen = admin;
    let transparent_listener = match config.startup.transparent {
        Some(addr) => Some(TcpListener::bind(addr).await.unwrap()),
        None => None,
    };
    let transparent = transparent_listener.as_ref().map(|l| l.local_addr().unwrap());
    config.startup.transparent = transparent;
    let pantry = Arc::new(Pantry::new(config).await.unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = Arc::clone(&pantry);
    let task = tokio::spawn(async move {
        serving
            .serve_sockets(
                pantry::Sockets {
                    proxy: listener,
                    mirror: mirror_listener,
                    admin: admin_listener,
                    transparent: transparent_listener,
                    fleet,
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await
    });
    TestPantry { addr, mirror, admin, transparent, fleet: fleet_addr, pantry, dir, stop: Some(stop), task }
}

pub fn roots_from_pem(pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// Sends `CONNECT target` with the given HTTP version; returns the stream and the response head.
pub async fn connect(proxy: SocketAddr, target: &str, version: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!("CONNECT {target} {version}\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    (stream, head)
}

/// Sends raw bytes and reads one response head.
pub async fn raw_request(stream: &mut TcpStream, bytes: &[u8]) -> String {
    stream.write_all(bytes).await.unwrap();
    read_head(stream).await
}

/// Reads a response head byte by byte (so no tunnel byte is consumed).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// TLS over an open tunnel, trusting `roots`, offering `alpn`.
pub async fn tls<S>(
    stream: S,
    name: &str,
    roots: RootCertStore,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(name.to_string()).unwrap();
    TlsConnector::from(Arc::new(config)).connect(name, stream).await
}

/// An HTTP/1.1 or h2 sender over any stream.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    pub async fn h1<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S) -> Self {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Self::H1(send)
    }

    pub async fn h2<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(stream: S) -> Self {
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Self::H2(send)
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Response<Incoming> {
        match self {
            Self::H1(send) => send.send_request(request).await.unwrap(),
            Self::H2(send) => send.send_request(request).await.unwrap(),
        }
    }

    /// GET `uri` with a Host header and returns status and body.
    pub async fn get(&mut self, uri: &str, host: &str) -> (Response<()>, Bytes) {
        let mut request = Request::get(uri);
        if matches!(self, Self::H1(_)) {
            request = request.header("host", host);
        }
        let response = self.send(request.body(Full::new(Bytes::new())).unwrap()).await;
        let (parts, body) = response.into_parts();
        (Response::from_parts(parts, ()), body.collect().await.unwrap().to_bytes())
    }
}

/// CONNECT to `target` through pantry and open TLS trusting pantry's CA.
pub async fn intercepted(pantry: &TestPantry, target: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let (stream, head) = connect(pantry.addr, target, "HTTP/1.1").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let host = target.rsplit_once(':').unwrap().0.trim_start_matches('[').trim_end_matches(']');
    tls(stream, host, pantry.roots(), alpn).await.unwrap()
}

/// One request through a fresh intercepted HTTP/1.1 connection to `host` (`name:port`); the body
/// is read to the end, and a transfer that breaks off is an `Err`.
pub async fn request(
    pantry: &TestPantry,
    host: &str,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (Response<()>, Result<Bytes, String>) {
    let stream = intercepted(pantry, host, &[b"http/1.1"]).await;
    let mut sender = Sender::h1(stream).await;
    let mut builder = Request::builder().method(method).uri(path).header("host", host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender.send(builder.body(Full::new(Bytes::new())).unwrap()).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).map_err(|e| e.to_string());
    (Response::from_parts(parts, ()), body)
}

/// Spawns the pantry binary (`command` with its arguments) and returns it with the address it
/// listens on, read from its start-up log; its stderr is drained in the background afterwards.
pub fn spawn_listening(command: std::process::Command) -> (std::process::Child, String) {
    let (child, addr, _log) = spawn_listening_logged(command);
    (child, addr)
}

/// Like [`spawn_listening`], and every later log line arrives on the returned channel.
pub fn spawn_listening_logged(
    mut command: std::process::Command,
) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = command.env("PANTRY_LOG", "info").stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "pantry exited before listening");
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let (sender, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    (child, addr, log)
}

/// A plain HTTP/1.1 request for `target` (a path or an absolute URL) sent to `addr` with
/// `Connection: close`; everything the server sent back (empty if it closed without answering).
pub async fn plain_get(addr: SocketAddr, target: &str) -> String {
    use tokio::io::AsyncReadExt;
    let Ok(mut stream) = TcpStream::connect(addr).await else { return String::new() };
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text).await;
    text
}

/// Every file under `dir` holding one of `needles`, as "PATH holds NEEDLE" (secrets checks).
pub fn files_containing(dir: &std::path::Path, needles: &[&str], found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_containing(&path, needles, found);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            for needle in needles {
                if text.contains(needle) {
                    found.push(format!("{} holds {needle:?}", path.display()));
                }
            }
        }
    }
}

/// A test that cannot run here (no root, no namespaces, no tool): it fails when
/// `PANTRY_REQUIRE_PRIVILEGED=1` (CI sets it), so CI never passes a test that did not run;
/// elsewhere it says so and returns.
pub fn cannot_run(reason: &str) {
    if std::env::var("PANTRY_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1") {
        panic!("cannot run with PANTRY_REQUIRE_PRIVILEGED=1: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}
