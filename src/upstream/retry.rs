//! Sending a body-less request again when it failed before any answer. A pooled connection can
//! end as a request goes out: an h2 server going away (GOAWAY, RFC 9113 §6.8: streams past its
//! last stream id were not processed) or refusing a stream, an HTTP/1.1 server closing a
//! kept-alive connection before it answered (the request may have been processed, but GET and
//! HEAD are idempotent, RFC 9110 §9.2.2). Servers do this routinely (nginx ends a connection after
//! `keepalive_requests`), so such a request is sent once more instead of answering the client
//! 502. A request with a body is never sent again.

use http::{Method, Request};
use http_body::Body as _;

use crate::body::{self, Body};

/// A copy of `request` to send again, if it has no body (GET, HEAD) and can be resent.
pub fn resendable(request: &Request<Body>) -> Option<Request<Body>> {
    let idempotent = matches!(*request.method(), Method::GET | Method::HEAD);
    if !idempotent || !request.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// Whether `error` says the request failed before any answer, in a way that sending a GET or
/// HEAD again is safe (see the module's text).
pub fn unprocessed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_canceled() || hyper.is_incomplete_message() {
                return true;
            }
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            let reason = h2.reason();
            if reason == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.is_remote() && reason == Some(h2::Reason::NO_ERROR))
            {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_body_less_get_and_head_are_resent_whole() {
        let get = Request::get("https://r.test/v2/").header("accept", "x").body(body::empty()).unwrap();
        let copy = resendable(&get).expect("a GET without a body");
        assert_eq!(
            (copy.method(), copy.uri(), &copy.headers()["accept"]),
            (&Method::GET, get.uri(), &"x".parse::<http::HeaderValue>().unwrap())
        );
        assert!(resendable(&Request::head("https://r.test/").body(body::empty()).unwrap()).is_some());
        assert!(resendable(&Request::post("https://r.test/").body(body::empty()).unwrap()).is_none());
        assert!(resendable(&Request::get("https://r.test/").body(body::full("x")).unwrap()).is_none());
    }

    #[test]
    fn a_refused_stream_was_not_processed_other_errors_may_have_been() {
        assert!(unprocessed(&h2::Error::from(h2::Reason::REFUSED_STREAM)));
        assert!(!unprocessed(&h2::Error::from(h2::Reason::INTERNAL_ERROR)));
        assert!(!unprocessed(&std::io::Error::other("reset")));
    }
}
