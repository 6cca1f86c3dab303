//! What a redirected connection speaks, from its first bytes (transparent mode) and the
//! NO_PROXY-style destination patterns: never panics; more bytes never turn a decided answer into
//! "undecided", and a ClientHello's server name is a valid host name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::{
    config::Destination,
    ingress::transparent::{classify, Speaks},
};

fuzz_target!(|data: &[u8]| {
    if let Some(Speaks::Tls(Some(name))) = classify(data) {
        assert!(!name.is_empty());
    }
    for cut in [data.len() / 2, data.len().saturating_sub(1)] {
        if classify(&data[..cut]).is_some() {
            assert!(classify(data).is_some(), "decided on a prefix, undecided on more bytes");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(pattern) = Destination::parse(text) {
            let _ = pattern.matches("registry.test", 443);
            let _ = pattern.matches("10.1.2.3", 80);
            let _ = pattern.matches("[fd00::1]", 5000);
        }
    }
});
