//! CONNECT authority and absolute-form request targets: parsing never panics, and what parses
//! names a valid host and a non-zero port that format back into a URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::target::Target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(uri) = text.parse::<http::Uri>() else { return };
    for target in [Target::from_connect(&uri), Target::from_absolute(&uri)].into_iter().flatten() {
        assert_ne!(target.port, 0);
        assert!(!target.host.is_empty());
        target.url("/v2/").expect("a parsed target formats into a URI");
    }
});
