//! `Accept` normalisation (part of tag cache keys): never panics, and is insensitive to the order
//! and repetition of media types.
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use pantry::registry::tags::normalize_accept;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, value.clone());
    let once = normalize_accept(&headers);
    headers.append(header::ACCEPT, value);
    assert_eq!(normalize_accept(&headers), once, "repeating the header changes nothing");
});
