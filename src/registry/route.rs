//! Classification of a request to the OCI distribution API (`/v2/...`) into a [`Route`].
//!
//! Owns the path grammar of the distribution spec; the names and tags in it are validated by `registry::name`.
//! Pure: no I/O, no policy, never panics; anything it does not recognise or cannot validate is [`Route::Other`],
//! which the proxy forwards untouched.

use http::Method;

use super::digest::Digest;
pub use super::name::{NameError, Repository, Tag};

/// What a registry request asks for, as far as caching is concerned.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Route {
    /// `GET`/`HEAD /v2/`: API version check.
    Ping,
    /// `GET`/`HEAD /v2/_catalog`: list of repositories.
    Catalog,
    /// `GET`/`HEAD /v2/<name>/tags/list`: tags of a repository.
    TagsList {
        /// The repository.
        name: Repository,
    },
    /// `GET`/`HEAD /v2/<name>/blobs/<digest>`: immutable content.
    BlobByDigest {
        /// The repository.
        name: Repository,
        /// The blob's digest.
        digest: Digest,
    },
    /// `GET`/`HEAD /v2/<name>/manifests/<digest>`: an immutable manifest.
    ManifestByDigest {
        /// The repository.
        name: Repository,
        /// The manifest's digest.
        digest: Digest,
    },
    /// `GET`/`HEAD /v2/<name>/manifests/<tag>`: a mutable pointer to a manifest.
    ManifestByTag {
        /// The repository.
        name: Repository,
        /// The tag.
        tag: Tag,
    },
    /// `GET`/`HEAD /v2/<name>/referrers/<digest>`: manifests that refer to a digest.
    Referrers {
        /// The repository.
        name: Repository,
        /// The digest referred to.
        digest: Digest,
    },
    /// A write or delete (push, upload session, manifest put, blob or manifest delete), including upload status.
    Upload {
        /// The repository written to.
        name: Repository,
    },
    /// Anything else, including invalid names, tags and digests.
    Other,
}

impl Route {
    /// A short fixed name for logs and metrics, e.g. `"blob"` or `"manifest-tag"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Route::Ping => "ping",
            Route::Catalog => "catalog",
            Route::TagsList { .. } => "tags-list",
            Route::BlobByDigest { .. } => "blob",
            Route::ManifestByDigest { .. } => "manifest-digest",
            Route::ManifestByTag { .. } => "manifest-tag",
            Route::Referrers { .. } => "referrers",
            Route::Upload { .. } => "upload",
            Route::Other => "other",
        }
    }

    /// The repository the request is about, if any.
    pub fn repository(&self) -> Option<&Repository> {
        match self {
            Route::TagsList { name }
            | Route::BlobByDigest { name, .. }
            | Route::ManifestByDigest { name, .. }
            | Route::ManifestByTag { name, .. }
            | Route::Referrers { name, .. }
            | Route::Upload { name } => Some(name),
            Route::Ping | Route::Catalog | Route::Other => None,
        }
    }

    /// True when the answer is content addressed and can be cached forever once verified.
    pub fn is_immutable(&self) -> bool {
        matches!(self, Route::BlobByDigest { .. } | Route::ManifestByDigest { .. })
    }
}

/// Classifies a request by method and path (`uri.path()`, not decoded); never fails, unknown is [`Route::Other`].
///
/// The query only matters for pagination of tags lists and the catalog, which the proxy forwards as is, so it does
/// not change the classification.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Route {
    let _ = query;
    let read = match path {
        "/v2" | "/v2/" => Some(Route::Ping),
        "/v2/_catalog" => Some(Route::Catalog),
        _ => path.strip_prefix("/v2/").and_then(resource),
    };
    match read {
        Some(route) => by_method(method, route),
        None => Route::Other,
    }
}

/// Classifies a request the way the registry will read it: distribution decodes percent-escapes
/// (`%2F` is a `/`), so policy must see the decoded name. A path under `/v2/` whose escapes decode
/// to no valid registry route (a name the distribution spec does not allow, a stray escape) is an
/// error, answered 400: no rule could be decided for it.
pub fn classify_escaped(method: &Method, path: &str, query: Option<&str>) -> Result<Route, String> {
    if !path.contains('%') {
        return Ok(classify(method, path, query));
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| format!("{path} is not UTF-8 once decoded"))?;
    let route = classify(method, &decoded, query);
    if route == Route::Other && (decoded.starts_with("/v2/") || decoded == "/v2") {
        return Err(format!("{decoded} names no valid repository and registry route"));
    }
    Ok(route)
}

/// The route a read of `rest` (the path after `/v2/`, `<name>/<kind>/<reference>`) would take. Split from the right
/// because names may contain components called `blobs`, `manifests` and so on.
fn resource(rest: &str) -> Option<Route> {
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    let route = match (kind, last) {
        ("tags", "list") => Route::TagsList { name: name.parse().ok()? },
        ("uploads", _) => {
            // `<name>/blobs/uploads/` or `<name>/blobs/uploads/<id>`; the id is opaque.
            let (name, blobs) = name.rsplit_once('/')?;
            if blobs != "blobs" {
                return None;
            }
            Route::Upload { name: name.parse().ok()? }
        }
        ("blobs", "uploads") => Route::Upload { name: name.parse().ok()? },
        ("blobs", reference) => {
            Route::BlobByDigest { name: name.parse().ok()?, digest: reference.parse().ok()? }
        }
        // A tag cannot contain ':', a digest must.
        ("manifests", reference) if reference.contains(':') => {
            Route::ManifestByDigest { name: name.parse().ok()?, digest: reference.parse().ok()? }
        }
        ("manifests", reference) => {
            Route::ManifestByTag { name: name.parse().ok()?, tag: reference.parse().ok()? }
        }
        ("referrers", reference) => {
            Route::Referrers { name: name.parse().ok()?, digest: reference.parse().ok()? }
        }
        _ => return None,
    };
    Some(route)
}

/// Applies the method to the route of a resource: `GET`/`HEAD` read it; `POST`, `PUT`, `PATCH`, `DELETE` on a blob,
/// manifest or upload are an `Upload`; anything else is `Other`.
fn by_method(method: &Method, resource: Route) -> Route {
    match *method {
        Method::GET | Method::HEAD => resource,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => match resource {
            Route::BlobByDigest { name, .. }
            | Route::ManifestByDigest { name, .. }
            | Route::ManifestByTag { name, .. }
            | Route::Upload { name } => Route::Upload { name },
            _ => Route::Other,
        },
        _ => Route::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const D512: &str = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
                        47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
    const D256_UPPER: &str = "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";

    fn repo(name: &str) -> Repository {
        name.parse().unwrap()
    }

    fn digest(text: &str) -> Digest {
        text.parse().unwrap()
    }

    fn blob(name: &str) -> Route {
        Route::BlobByDigest { name: repo(name), digest: digest(D256) }
    }

    fn by_digest(name: &str, text: &str) -> Route {
        Route::ManifestByDigest { name: repo(name), digest: digest(text) }
    }

    fn by_tag(name: &str, tag: &str) -> Route {
        Route::ManifestByTag { name: repo(name), tag: tag.parse().unwrap() }
    }

    fn upload(name: &str) -> Route {
        Route::Upload { name: repo(name) }
    }

    #[test]
    fn classify_table() {
        let long_tag = "t".repeat(129);
        let max_tag = "t".repeat(128);
        let long_name = format!("{}/{}", "a".repeat(127), "b".repeat(128));
        let max_name = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        let get = Method::GET;
        let head = Method::HEAD;
        let put = Method::PUT;
        let post = Method::POST;
        let patch = Method::PATCH;
        let delete = Method::DELETE;
        let options = Method::OPTIONS;
        let cases: Vec<(&Method, String, Route)> = vec![
            // ping and catalog
            (&get, "/v2/".into(), Route::Ping),
            (&head, "/v2".into(), Route::Ping),
            (&post, "/v2/".into(), Route::Other),
            (&get, "/v2/_catalog".into(), Route::Catalog),
            (&delete, "/v2/_catalog".into(), Route::Other),
            (&get, "/".into(), Route::Other),
            (&get, "/v1/".into(), Route::Other),
            (&get, "/v2x/foo/tags/list".into(), Route::Other),
            (&get, "".into(), Route::Other),
            // tags list
            (&get, "/v2/library/alpine/tags/list".into(), Route::TagsList { name: repo("library/alpine") }),
            (&head, "/v2/a/tags/list".into(), Route::TagsList { name: repo("a") }),
            (&put, "/v2/a/tags/list".into(), Route::Other),
            (&get, "/v2/tags/list".into(), Route::Other),
            (&get, "/v2/a/tags/list/".into(), Route::Other),
            // blobs
            (&get, format!("/v2/library/alpine/blobs/{D256}"), blob("library/alpine")),
            (&head, format!("/v2/a/b/c/blobs/{D256}"), blob("a/b/c")),
            (&get, format!("/v2/foo/manifests/blobs/{D256}"), blob("foo/manifests")),
            (&get, format!("/v2/blobs/blobs/{D256}"), blob("blobs")),
            (&get, format!("/v2/foo/blobs/uploads/blobs/{D256}"), blob("foo/blobs/uploads")),
            (&get, format!("/v2/{max_name}/blobs/{D256}"), blob(&max_name)),
            (&get, format!("/v2/{long_name}/blobs/{D256}"), Route::Other),
            (&get, format!("/v2/a/blobs/{D256_UPPER}"), Route::Other),
            (&get, format!("/v2/a/blobs/{D256}/"), Route::Other),
            (&get, "/v2/a/blobs/sha256:abc".into(), Route::Other),
            (&get, "/v2/a/blobs/latest".into(), Route::Other),
            (&get, format!("/v2/blobs/{D256}"), Route::Other),
            (&get, format!("/v2/Library/alpine/blobs/{D256}"), Route::Other),
            (&delete, format!("/v2/a/blobs/{D256}"), upload("a")),
            (&options, format!("/v2/a/blobs/{D256}"), Route::Other),
            // manifests
            (&get, format!("/v2/library/alpine/manifests/{D256}"), by_digest("library/alpine", D256)),
            (&head, format!("/v2/x/manifests/{D512}"), by_digest("x", D512)),
            (&get, "/v2/library/alpine/manifests/3.20".into(), by_tag("library/alpine", "3.20")),
            (&head, "/v2/a/blobs/manifests/latest".into(), by_tag("a/blobs", "latest")),
            (&get, format!("/v2/a/manifests/{max_tag}"), by_tag("a", &max_tag)),
            (&get, format!("/v2/a/manifests/{long_tag}"), Route::Other),
            (&get, "/v2/a/manifests/-latest".into(), Route::Other),
            (&get, "/v2/a/manifests/".into(), Route::Other),
            (&get, format!("/v2/a/manifests/{D256_UPPER}"), Route::Other),
            (&get, "/v2/a/manifests/md5:abc".into(), Route::Other),
            (&put, "/v2/a/manifests/latest".into(), upload("a")),
            (&delete, format!("/v2/a/manifests/{D256}"), upload("a")),
            (&put, "/v2/a/manifests/bad tag".into(), Route::Other),
            // referrers
            (
                &get,
                format!("/v2/a/b/referrers/{D256}"),
                Route::Referrers { name: repo("a/b"), digest: digest(D256) },
            ),
            (&post, format!("/v2/a/referrers/{D256}"), Route::Other),
            (&get, "/v2/a/referrers/latest".into(), Route::Other),
            // uploads
            (&post, "/v2/library/alpine/blobs/uploads/".into(), upload("library/alpine")),
            (&post, "/v2/a/blobs/uploads".into(), upload("a")),
            (&patch, "/v2/a/blobs/uploads/3f1c-uuid".into(), upload("a")),
            (&put, "/v2/a/blobs/uploads/3f1c-uuid".into(), upload("a")),
            (&get, "/v2/a/blobs/uploads/3f1c-uuid".into(), upload("a")),
            (&delete, "/v2/a/blobs/uploads/3f1c-uuid".into(), upload("a")),
            (&post, "/v2/foo/manifests/blobs/uploads/".into(), upload("foo/manifests")),
            (&post, "/v2/blobs/uploads/".into(), Route::Other),
            (&options, "/v2/a/blobs/uploads/".into(), Route::Other),
            (&post, "/v2/a/x/uploads/".into(), Route::Other),
            // invalid names: case, separators, empty components, traversal, encoding
            (&get, "/v2/Alpine/manifests/latest".into(), Route::Other),
            (&get, "/v2/a__b/manifests/latest".into(), by_tag("a__b", "latest")),
            (&get, "/v2/a---b.c_d/manifests/latest".into(), by_tag("a---b.c_d", "latest")),
            (&get, "/v2/a___b/manifests/latest".into(), Route::Other),
            (&get, "/v2/a..b/manifests/latest".into(), Route::Other),
            (&get, "/v2/a._b/manifests/latest".into(), Route::Other),
            (&get, "/v2/-a/manifests/latest".into(), Route::Other),
            (&get, "/v2/a-/manifests/latest".into(), Route::Other),
            (&get, "/v2//a/manifests/latest".into(), Route::Other),
            (&get, "/v2/a//b/manifests/latest".into(), Route::Other),
            (&get, "/v2/a/../b/manifests/latest".into(), Route::Other),
            (&get, "/v2/../a/manifests/latest".into(), Route::Other),
            (&get, "/v2/a%2Fb/manifests/latest".into(), Route::Other),
            (&get, "/v2/a/manifests/sha256%3Aabc".into(), Route::Other),
            (&get, "/v2/é/manifests/latest".into(), Route::Other),
            (&get, "/v2/a/manifests/latest?x=1".into(), Route::Other),
            (&get, "/v2/a/unknown/latest".into(), Route::Other),
        ];
        assert!(cases.len() >= 30);
        for (method, path, expected) in cases {
            assert_eq!(classify(method, &path, None), expected, "{method} {path}");
        }
    }

    #[test]
    fn query_does_not_change_classification() {
        let cases = [
            ("/v2/a/tags/list", "n=10&last=v1", Route::TagsList { name: repo("a") }),
            ("/v2/_catalog", "n=100", Route::Catalog),
            ("/v2/a/manifests/latest", "ns=docker.io", by_tag("a", "latest")),
        ];
        for (path, query, expected) in cases {
            assert_eq!(classify(&Method::GET, path, Some(query)), expected, "{path}?{query}");
        }
    }

    #[test]
    fn route_names_and_immutability() {
        let cases = [
            (Route::Ping, "ping", false),
            (Route::Catalog, "catalog", false),
            (Route::TagsList { name: repo("a") }, "tags-list", false),
            (blob("a"), "blob", true),
            (by_digest("a", D256), "manifest-digest", true),
            (by_tag("a", "latest"), "manifest-tag", false),
            (Route::Referrers { name: repo("a"), digest: digest(D256) }, "referrers", false),
            (upload("a"), "upload", false),
            (Route::Other, "other", false),
        ];
        for (route, name, immutable) in cases {
            assert_eq!(route.as_str(), name, "{route:?}");
            assert_eq!(route.is_immutable(), immutable, "{route:?}");
        }
    }

    #[test]
    fn names_and_tags_parse_and_display() {
        let names = [
            ("a", true),
            ("library/alpine", true),
            ("a0/b-1/c.d/e_f/g__h", true),
            ("", false),
            ("a/", false),
            ("/a", false),
            ("a_", false),
            ("a.", false),
            ("_a", false),
            ("A", false),
        ];
        for (text, valid) in names {
            let parsed = text.parse::<Repository>();
            assert_eq!(parsed.is_ok(), valid, "{text:?}");
            if let Ok(name) = parsed {
                assert_eq!((name.as_str(), name.to_string().as_str()), (text, text));
            }
        }
        let tags = [
            ("latest", true),
            ("_x", true),
            ("V1.2.3-rc_1", true),
            ("", false),
            (".x", false),
            ("-x", false),
            ("a:b", false),
            ("a/b", false),
        ];
        for (text, valid) in tags {
            let parsed = text.parse::<Tag>();
            assert_eq!(parsed.is_ok(), valid, "{text:?}");
            if let Ok(tag) = parsed {
                assert_eq!((tag.as_str(), tag.to_string().as_str()), (text, text));
            }
        }
    }

    #[test]
    fn escaped_names_are_classified_decoded_and_bad_escapes_refused() {
        let get = Method::GET;
        let route = classify_escaped(&get, "/v2/private%2Fapp/manifests/v1", None).unwrap();
        assert_eq!(route.repository().map(|r| r.as_str()), Some("private/app"));
        assert!(matches!(route, Route::ManifestByTag { .. }));
        let route = classify_escaped(&Method::POST, "/v2/public%2fbase/blobs/uploads/", None).unwrap();
        assert!(matches!(route, Route::Upload { .. }), "{route:?}");
        assert_eq!(route.repository().map(|r| r.as_str()), Some("public/base"));
        for bad in [
            "/v2/Private%2FApp/manifests/v1",
            "/v2/a%2F%2Fb/manifests/v1",
            "/v2/a%FF/manifests/v1",
            "/v2/%2e%2e/x",
        ] {
            assert!(classify_escaped(&get, bad, None).is_err(), "{bad}");
        }
        assert_eq!(
            classify_escaped(&get, "/v2/app/manifests/v1", None).unwrap(),
            classify(&get, "/v2/app/manifests/v1", None)
        );
        assert_eq!(
            classify_escaped(&get, "/other%20page", None).unwrap(),
            Route::Other,
            "not a registry path"
        );
    }
}
