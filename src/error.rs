//! What can go wrong while proxying a request, which side caused it, and how the client is told.
//!
//! Every error maps to one HTTP status and one `Proxy-Status` (RFC 9209) value here, in one place.

use http::{header::HeaderValue, Response, StatusCode};

use crate::body::{self, Body};

/// A registry-style JSON error (`{"errors":[{"code":…,"message":…}]}`), as distribution answers.
pub fn registry_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let text = serde_json::json!({ "errors": [{ "code": code, "message": message }] }).to_string() + "\n";
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The name pantry uses for itself in `Proxy-Status` and `Cache-Status`.
pub const PROXY_NAME: &str = "pantry";

/// Which side of the proxy caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something pantry refuses or cannot parse.
    Client,
    /// The upstream (DNS, TCP, TLS or HTTP) failed.
    Upstream,
    /// pantry itself failed.
    Internal,
    /// pantry's own configuration decided (offline mode): nobody failed.
    Configured,
}

/// An error answered to the client instead of an upstream response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Policy refuses the request.
    #[error("denied: {0}")]
    Denied(String),
    /// The upstream name does not resolve.
    #[error("cannot resolve {host}: {detail}")]
    Dns {
        /// Host that failed to resolve.
        host: String,
        /// Resolver message.
        detail: String,
    },
    /// The upstream refused the TCP connection.
    #[error("connection to {target} refused")]
    ConnectionRefused {
        /// host:port that refused.
        target: String,
    },
    /// The upstream did not answer in time.
    #[error("connection to {target} timed out")]
    ConnectionTimeout {
        /// host:port that timed out.
        target: String,
    },
    /// The upstream's TLS certificate was not accepted.
    #[error("TLS certificate of {target} rejected: {detail}")]
    TlsCertificate {
        /// host:port whose certificate was rejected.
        target: String,
        /// Why it was rejected.
        detail: String,
    },
    /// The TLS handshake with the upstream failed for another reason.
    #[error("TLS handshake with {target} failed: {detail}")]
    TlsProtocol {
        /// host:port of the failed handshake.
        target: String,
        /// Handshake failure.
        detail: String,
    },
    /// The upstream failed after connecting (reset, protocol error).
    #[error("upstream {target} failed: {detail}")]
    Upstream {
        /// host:port of the upstream.
        target: String,
        /// What failed.
        detail: String,
    },
    /// The upstream answered 429 and its `Retry-After` has not passed: it was not asked.
    #[error("{target} is rate limiting pantry: not asked again for {retry_after} s")]
    RateLimited {
        /// host:port of the upstream.
        target: String,
        /// Seconds until it may be asked again.
        retry_after: u64,
    },
    /// Offline mode and the answer is not cached.
    #[error("offline: {0}")]
    Offline(String),
    /// pantry failed on its own.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    /// Which side caused the error.
    pub fn side(&self) -> Side {
        match self {
            Self::BadRequest(_) | Self::Denied(_) => Side::Client,
            Self::Offline(_) => Side::Configured,
            Self::Internal(_) => Side::Internal,
            _ => Side::Upstream,
        }
    }

    /// The status answered to the client.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::ConnectionTimeout { .. } | Self::Offline(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The RFC 9209 error type.
    pub fn proxy_status_error(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "http_request_error",
            Self::Denied(_) => "http_request_denied",
            Self::Dns { .. } => "dns_error",
            Self::ConnectionRefused { .. } => "connection_refused",
            Self::ConnectionTimeout { .. } => "connection_timeout",
            Self::TlsCertificate { .. } => "tls_certificate_error",
            Self::TlsProtocol { .. } => "tls_protocol_error",
            Self::Upstream { .. } | Self::Offline(_) | Self::RateLimited { .. } => "destination_unavailable",
            Self::Internal(_) => "proxy_internal_error",
        }
    }

    /// The full `Proxy-Status` header value (RFC 9209), e.g. `pantry;error=dns_error;details="..."`.
    pub fn proxy_status(&self) -> String {
        // Both conversions hold by construction (the kinds are RFC 9209 tokens, `printable` leaves
        // only what a string may hold); the fallbacks keep a header even if one ever did not.
        let error = sfv::TokenRef::from_str(self.proxy_status_error())
            .unwrap_or(sfv::token_ref("proxy_internal_error"));
        let details = printable(&self.to_string());
        let details = sfv::StringRef::from_str(&details).unwrap_or(sfv::string_ref(""));
        sfv::ItemSerializer::new()
            .bare_item(sfv::token_ref(PROXY_NAME))
            .parameter(sfv::key_ref("error"), error)
            .parameter(sfv::key_ref("details"), details)
            .finish()
    }

    /// A complete response telling the client what went wrong.
    pub fn into_response(self) -> Response<Body> {
        let mut response = Response::new(body::full(format!("pantry: {self}\n")));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if let Ok(value) = HeaderValue::from_str(&self.proxy_status()) {
            headers.insert("proxy-status", value);
        }
        if let Self::RateLimited { retry_after, .. } = self {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// `text` with every character a structured-field string cannot hold (RFC 8941 §3.3.3: printable
/// ASCII only) replaced by `?`.
fn printable(text: &str) -> String {
    text.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_proxy_status_per_error() {
        let cases = [
            (ProxyError::BadRequest("x".into()), 400, "http_request_error"),
            (ProxyError::Denied("x".into()), 403, "http_request_denied"),
            (ProxyError::Dns { host: "h".into(), detail: "d".into() }, 502, "dns_error"),
            (ProxyError::ConnectionTimeout { target: "h:1".into() }, 504, "connection_timeout"),
            (ProxyError::Internal("x".into()), 500, "proxy_internal_error"),
            (
                ProxyError::RateLimited { target: "h:1".into(), retry_after: 30 },
                429,
                "destination_unavailable",
            ),
        ];
        for (error, status, kind) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.proxy_status_error(), kind);
            assert!(error.proxy_status().starts_with("pantry;error="));
        }
        let offline = ProxyError::Offline("x".into());
        assert_eq!(offline.side(), Side::Configured, "offline is pantry's choice, no upstream's failure");
        assert_eq!(offline.status().as_u16(), 504);
    }

    #[test]
    fn proxy_status_is_a_structured_item_whose_details_survive_quotes_and_non_ascii() {
        let error = ProxyError::BadRequest(r#"a "b" \ é"#.into());
        let header = error.proxy_status();
        let item: sfv::Item = sfv::Parser::new(&header).parse().unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(item.bare_item, sfv::BareItem::Token(sfv::token_ref(PROXY_NAME).to_owned()));
        let param = |name: &str| {
            item.params.iter().find(|(key, _)| key.as_str() == name).map(|(_, value)| value.clone())
        };
        assert_eq!(
            param("error"),
            Some(sfv::BareItem::Token(sfv::token_ref("http_request_error").to_owned()))
        );
        let details = param("details").expect("details");
        assert_eq!(
            details.as_string().map(|s| s.as_str()),
            Some(format!("{error}").replace('é', "?").as_str())
        );
    }
}
