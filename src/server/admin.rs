//! Admin pages served on the proxy port to origin-form requests: `/ca.pem`, `/healthz`.
//!
//! Serves the CA certificate only, never its key.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::body::{self, Body};

/// Answers admin requests.
#[derive(Debug, Clone)]
pub struct Admin {
    ca_pem: String,
}

impl Admin {
    /// Admin pages serving `ca_pem` as the CA certificate.
    pub fn new(ca_pem: String) -> Self {
        Self { ca_pem }
    }

    /// Answers one origin-form request.
    pub fn handle<B>(&self, request: &Request<B>) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n");
        }
        match request.uri().path() {
            "/ca.pem" => {
                let mut response = Response::new(body::full(self.ca_pem.clone()));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file"));
                response
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            _ => text(
                StatusCode::NOT_FOUND,
                "pantry is a proxy: send proxy requests (CONNECT host:port or GET http://host/path); \
                 admin pages: /ca.pem, /healthz\n",
            ),
        }
    }
}

fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(message));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
