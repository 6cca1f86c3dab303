//! Following registry redirects (to blob storage or a CDN) on pantry's side: which responses are
//! redirects, where they lead, and which request headers may follow to another origin.

use http::{header, HeaderMap, StatusCode, Uri};

/// Redirects followed at most per request.
pub const MAX_REDIRECTS: usize = 5;

/// The next URI if `status` is a redirect with a usable `Location`, resolved against `current`
/// as RFC 3986 says (`url::Url::join`: absolute, scheme-relative, absolute-path, relative with
/// `../` and `./`).
pub fn next_hop(current: &Uri, status: StatusCode, headers: &HeaderMap) -> Option<Uri> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let base = url::Url::parse(&current.to_string()).ok()?;
    let next = base.join(location).ok()?;
    if !matches!(next.scheme(), "http" | "https") {
        return None;
    }
    next.as_str().parse().ok()
}

/// Whether two URIs share scheme, host and port (credentials may follow only then).
pub fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| u.port_u16().unwrap_or(if u.scheme_str() == Some("http") { 80 } else { 443 });
    a.scheme_str() == b.scheme_str()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

/// Removes what must not reach another origin.
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::COOKIE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn redirect_targets() {
        let current: Uri = "https://registry.test:5000/v2/a/blobs/sha256:1".parse().unwrap();
        let cases = [
            (307, "https://cdn.test:5443/x?sig=1", Some("https://cdn.test:5443/x?sig=1")),
            (302, "/other/path", Some("https://registry.test:5000/other/path")),
            (301, "relative", Some("https://registry.test:5000/v2/a/blobs/relative")),
            (308, "//cdn.test/y", Some("https://cdn.test/y")),
            (307, "../../b/blobs/x", Some("https://registry.test:5000/v2/b/blobs/x")),
            (307, "./x?a=1", Some("https://registry.test:5000/v2/a/blobs/x?a=1")),
            (302, "ftp://cdn.test/x", None),
            (200, "https://cdn.test/x", None),
            (304, "https://cdn.test/x", None),
        ];
        for (status, to, expected) in cases {
            let next = next_hop(&current, StatusCode::from_u16(status).unwrap(), &location(to));
            assert_eq!(next.map(|u| u.to_string()), expected.map(String::from), "{status} {to}");
        }
        assert_eq!(next_hop(&current, StatusCode::FOUND, &HeaderMap::new()), None);
    }

    #[test]
    fn origins() {
        let a: Uri = "https://registry.test:443/a".parse().unwrap();
        assert!(same_origin(&a, &"https://REGISTRY.test/b".parse().unwrap()));
        assert!(!same_origin(&a, &"https://cdn.test/b".parse().unwrap()));
        assert!(!same_origin(&a, &"http://registry.test:443/b".parse().unwrap()));
        assert!(!same_origin(&a, &"https://registry.test:5000/b".parse().unwrap()));
    }
}
