//! Digest parsing: never panics; a parsed digest prints back to the same text (lower case) and
//! its verifier accepts exactly the bytes whose hash it names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::registry::digest::{Algorithm, Digest};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(digest) = text.parse::<Digest>() {
            assert_eq!(digest.to_string().parse::<Digest>().unwrap(), digest);
        }
    }
    let digest = Digest::of(Algorithm::Sha256, data);
    let mut verifier = digest.verifier();
    verifier.update(data);
    assert!(verifier.finish().is_ok());
});
