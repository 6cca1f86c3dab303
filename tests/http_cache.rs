//! RFC 9111 caching of plain HTTP (and, the same code, intercepted non-registry hosts) against an
//! origin whose answers each test chooses: fresh hits under max-age, revalidation with 304 once
//! stale, Vary on Accept-Encoding, no-store and private never stored (nor answers that say nothing
//! of their lifetime, such as token endpoints), a request with
//! Authorization stored only when the answer is public (and then without the credentials), an
//! answer varying on Cookie or Authorization never stored, and a
//! body that breaks off stores nothing.

mod common;

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{start_pantry, TestPantry};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pantry::{body, clock::Clock};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// An origin that answers each path as the test says and counts the requests per path.
#[derive(Clone, Default)]
struct Origin {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Origin {
    async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let origin = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let origin = origin.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let origin = origin.clone();
                        async move { Ok::<_, Infallible>(origin.answer(request)) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn answer(&self, request: Request<Incoming>) -> Response<pantry::body::Body> {
        let path = request.uri().path().to_string();
        *self.counts.lock().unwrap().entry(path.clone()).or_default() += 1;
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let ok = |cache_control: &str, text: String| {
            Response::builder().header("cache-control", cache_control).body(body::full(text)).unwrap()
        };
        match path.as_str() {
            "/fresh" => ok("max-age=60", "fresh body".into()),
            "/etag" if header("if-none-match") == "\"v1\"" => {
                Response::builder().status(304).header("etag", "\"v1\"").body(body::empty()).unwrap()
            }
            "/etag" => Response::builder()
                .header("cache-control", "max-age=60")
                .header("etag", "\"v1\"")
                .body(body::full("validated body"))
                .unwrap(),
            "/vary" => Response::builder()
                .header("cache-control", "max-age=60")
                .header("vary", "Accept-Encoding")
                .body(body::full(format!("encoded as {:?}", header("accept-encoding"))))
                .unwrap(),
            "/vary-cookie" | "/vary-authorization" | "/vary-star" => {
                let on = match path.as_str() {
                    "/vary-cookie" => "Accept-Encoding, Cookie",
                    "/vary-authorization" => "authorization",
                    _ => "*",
                };
                let who = format!("page of {:?}", header(on.rsplit(", ").next().unwrap_or(on)));
                Response::builder()
                    .header("cache-control", "public, max-age=300")
                    .header("vary", on)
                    .body(body::full(who))
                    .unwrap()
            }
            "/no-store" => ok("no-store", "never stored".into()),
            "/token" => Response::builder().body(body::full("{\"token\":\"secret\"}")).unwrap(),
            "/private" => ok("private, max-age=60", "for one user".into()),
            "/authorized" => ok("max-age=60", "for the holder of the token".into()),
            "/public" => Response::builder()
                .header("cache-control", "public, max-age=60")
                .header("set-cookie", "session=cookie-secret-5a1")
                .body(body::full("public although asked with a token"))
                .unwrap(),
            "/broken" => {
                // The head and the first bytes go out; the connection is lost a moment later.
                let body =
                    http_body_util::StreamBody::new(futures_util::stream::unfold(0, |step| async move {
                        let frame: Result<hyper::body::Frame<bytes::Bytes>, pantry::body::BoxError> =
                            match step {
                                0 => Ok(hyper::body::Frame::data("only a few bytes".into())),
                                1 => {
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    Err("connection lost".into())
                                }
                                _ => return None,
                            };
                        Some((frame, step + 1))
                    }));
                Response::builder()
                    .header("cache-control", "max-age=60")
                    .header("content-length", "1000")
                    .body(http_body_util::BodyExt::boxed(body))
                    .unwrap()
            }
            _ => Response::builder().status(404).body(body::empty()).unwrap(),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const TOKEN: &str = "Bearer http-cache-token-77c1";

struct Setup {
    origin: Origin,
    addr: SocketAddr,
    pantry: TestPantry,
    clock: Clock,
}

async fn setup() -> Setup {
    let origin = Origin::default();
    let addr = origin.start().await;
    let clock = Clock::manual(1_700_000_000_000);
    let pantry = start_pantry(|c| {
        c.clock = clock.clone();
        common::reach_loopback(c, &[addr.port()]);
    })
    .await;
    Setup { origin, addr, pantry, clock }
}

/// The answer (head and body, as text) to a plain HTTP GET of `path` through pantry.
async fn get(s: &Setup, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    let mut stream = TcpStream::connect(s.pantry.addr).await.unwrap();
    let mut request =
        format!("GET http://{}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", s.addr, s.addr);
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = Vec::new();
    let _ = stream.read_to_end(&mut text).await;
    let text = String::from_utf8_lossy(&text).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

fn cache_status(head: &str) -> &str {
    head.lines().find_map(|l| l.strip_prefix("cache-status: ")).unwrap_or("")
}

#[tokio::test]
async fn a_fresh_answer_is_served_from_the_store_until_max_age() {
    let s = setup().await;
    let (head, body) = get(&s, "/fresh", &[]).await;
    assert_eq!((cache_status(&head), body.as_str()), ("pantry; fwd=miss; stored", "fresh body"));
    let (head, body) = get(&s, "/fresh", &[]).await;
    assert_eq!((cache_status(&head), body.as_str()), ("pantry; hit", "fresh body"));
    assert!(head.contains("\r\nage: "), "a hit says its age: {head}");
    assert_eq!(s.origin.count("/fresh"), 1);
    s.clock.advance(2 * MINUTE);
    let (head, _) = get(&s, "/fresh", &[]).await;
    assert_eq!(cache_status(&head), "pantry; fwd=miss; stored", "stale without a validator: fetched again");
    assert_eq!(s.origin.count("/fresh"), 2);
}

#[tokio::test]
async fn a_stale_answer_with_an_etag_is_revalidated_with_a_304() {
    let s = setup().await;
    get(&s, "/etag", &[]).await;
    s.clock.advance(2 * MINUTE);
    let (head, body) = get(&s, "/etag", &[]).await;
    assert_eq!(cache_status(&head), "pantry; fwd=stale; fwd-status=304");
    assert_eq!(body, "validated body", "the stored body, revalidated");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (head, _) = get(&s, "/etag", &[]).await;
    assert_eq!(cache_status(&head), "pantry; hit", "fresh again after the 304");
    assert_eq!(s.origin.count("/etag"), 2);
}

#[tokio::test]
async fn vary_on_accept_encoding_keeps_variants_apart() {
    let s = setup().await;
    let (_, gzip) = get(&s, "/vary", &[("accept-encoding", "gzip")]).await;
    let (head, plain) = get(&s, "/vary", &[]).await;
    assert_eq!(gzip, "encoded as \"gzip\"");
    assert_eq!(plain, "encoded as \"\"", "another Accept-Encoding never gets the gzip variant");
    assert_eq!(cache_status(&head), "pantry; fwd=miss; stored");
    let (head, again) = get(&s, "/vary", &[]).await;
    assert_eq!((cache_status(&head), again.as_str()), ("pantry; hit", "encoded as \"\""));
}

#[tokio::test]
async fn an_answer_that_varies_on_a_header_the_store_drops_is_not_stored() {
    let s = setup().await;
    let cases = [
        ("/vary-cookie", ("cookie", "session=alice-4d2")),
        ("/vary-authorization", ("authorization", TOKEN)),
        ("/vary-star", ("cookie", "session=alice-4d2")),
    ];
    for (path, alice) in cases {
        let (head, _) = get(&s, path, &[alice]).await;
        assert_eq!(cache_status(&head), "pantry; fwd=miss", "{path}: stored with alice's header dropped");
        let (head, body) = get(&s, path, &[]).await;
        assert!(!body.contains("alice") && !body.contains("77c1"), "{path}: another user's page: {body}");
        assert_ne!(cache_status(&head), "pantry; hit", "{path}");
        assert_eq!(s.origin.count(path), 2, "{path}");
    }
}

#[tokio::test]
async fn no_store_private_and_silent_answers_are_never_stored() {
    let s = setup().await;
    for path in ["/no-store", "/private", "/token"] {
        for _ in 0..2 {
            let (head, _) = get(&s, path, &[]).await;
            assert_eq!(cache_status(&head), "pantry; fwd=uri-miss; detail=not-storable", "{path}");
        }
        assert_eq!(s.origin.count(path), 2, "{path}");
    }
}

#[tokio::test]
async fn an_authorized_request_is_stored_only_when_public_and_without_credentials() {
    let s = setup().await;
    for _ in 0..2 {
        let (head, _) = get(&s, "/authorized", &[("authorization", TOKEN)]).await;
        assert_eq!(cache_status(&head), "pantry; fwd=uri-miss; detail=not-storable");
    }
    let (head, _) = get(&s, "/public", &[("authorization", TOKEN)]).await;
    assert_eq!(cache_status(&head), "pantry; fwd=miss; stored");
    let (head, body) = get(&s, "/public", &[]).await;
    assert_eq!((cache_status(&head), body.as_str()), ("pantry; hit", "public although asked with a token"));
    assert!(!head.contains("set-cookie"), "a shared cache never hands out another client's cookie");
    let mut leaks = Vec::new();
    common::files_containing(
        s.pantry.dir.path(),
        &["http-cache-token-77c1", "cookie-secret-5a1"],
        &mut leaks,
    );
    assert!(leaks.is_empty(), "credentials in the store: {leaks:?}");
}

#[tokio::test]
async fn a_body_that_breaks_off_is_not_stored() {
    let s = setup().await;
    let (head, body) = get(&s, "/broken", &[]).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.len() < 1000, "the transfer broke off short of its Content-Length: {body:?}");
    let (head, _) = get(&s, "/broken", &[]).await;
    assert_eq!(cache_status(&head), "pantry; fwd=miss; stored", "fetched again, nothing was stored: {head}");
    assert_eq!(s.origin.count("/broken"), 2);
}

#[tokio::test]
async fn intercepted_http_1_1_and_h2_requests_share_one_entry() {
    let upstream = common::upstream::FakeUpstream::start("127.0.0.1:0", true).await;
    let port = upstream.port();
    let pantry = start_pantry(|c| {
        c.live.intercept = vec![pantry::config::HostPattern::parse(&format!("cdn.test:{port}")).unwrap()];
        c.startup.resolve =
            vec![pantry::config::ResolveRule::parse(&format!("cdn.test:{port}:127.0.0.1")).unwrap()];
        c.startup.upstream_ca = vec![upstream.ca.ca_file.clone()];
    })
    .await;
    let target = format!("cdn.test:{port}");
    let h1 = common::intercepted(&pantry, &target, &[b"http/1.1"]).await;
    let (first, body) = common::Sender::h1(h1).await.get("/cacheable", &target).await;
    assert_eq!(first.headers()["cache-status"], "pantry; fwd=miss; stored", "{first:?} {body:?}");
    let h2 = common::intercepted(&pantry, &target, &[b"h2"]).await;
    let (second, again) =
        common::Sender::h2(h2).await.get(&format!("https://{target}/cacheable"), &target).await;
    assert_eq!(second.version(), http::Version::HTTP_2);
    assert_eq!(
        second.headers()["cache-status"],
        "pantry; hit",
        "the h2 request found the HTTP/1.1 one's entry"
    );
    assert_eq!(again, body);
    assert_eq!(upstream.observed.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}
