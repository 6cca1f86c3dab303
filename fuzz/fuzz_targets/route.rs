//! Registry route classification and mirror routing: any path and query, any method, no panic;
//! a classified repository name (escaped or not) is valid per the distribution spec.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::registry::route::{classify, classify_escaped, Repository};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    for method in [http::Method::GET, http::Method::HEAD, http::Method::PUT, http::Method::DELETE] {
        let route = classify(&method, path, query);
        if let Some(name) = route.repository() {
            assert!(name.as_str().parse::<Repository>().is_ok(), "{name}");
        }
        if let Ok(decoded) = classify_escaped(&method, path, query) {
            if let Some(name) = decoded.repository() {
                assert!(name.as_str().parse::<Repository>().is_ok(), "{name}");
            }
        }
    }
    if let Ok(uri) = text.parse::<http::Uri>() {
        let _ = pantry::mirror::route::upstream_of(&uri, "registry-1.docker.io");
    }
});
