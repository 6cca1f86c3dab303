//! The shared store's HTTP: object_store's requests sent by pantry's own hyper client (rustls with
//! ring, the system roots plus `--upstream-ca`, `--resolve` overrides), so the S3 client brings no
//! second TLS stack. Its timeouts are pantry's: connect and response headers.

use std::{path::PathBuf, time::Duration};

use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};

use crate::{
    config::ResolveRule,
    upstream::{client::UpstreamSetupError, Dialer},
};

/// Builds the client object_store sends its requests through.
#[derive(Debug, Clone)]
pub struct Connector {
    client: Client<HttpsConnector<Dialer>, HttpRequestBody>,
    response_timeout: Duration,
}

impl Connector {
    /// A client trusting the system roots and `extra_roots`, dialing with `resolve`'s overrides.
    pub fn new(
        resolve: &[ResolveRule],
        extra_roots: &[PathBuf],
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, UpstreamSetupError> {
        let connector =
            crate::upstream::client::https_connector(Dialer::new(resolve, connect_timeout), extra_roots)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self { client, response_timeout })
    }
}

impl HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.clone()))
    }
}

#[async_trait::async_trait]
impl HttpService for Connector {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response.map(|body| {
                use http_body_util::BodyExt;
                HttpResponseBody::new(body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e)))
            })),
            Ok(Err(error)) => {
                let kind = if error.is_connect() { HttpErrorKind::Connect } else { HttpErrorKind::Request };
                Err(HttpError::new(kind, error))
            }
            Err(elapsed) => Err(HttpError::new(HttpErrorKind::Timeout, elapsed)),
        }
    }
}
