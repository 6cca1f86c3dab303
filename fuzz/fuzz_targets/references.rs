//! Image references and manifests from the network: never panic; a parsed image reference prints
//! into a reference that parses to the same image.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::registry::{manifest, reference::ImageRef};

fuzz_target!(|data: &[u8]| {
    let _ = manifest::references(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(image) = text.parse::<ImageRef>() {
        let again: ImageRef = image.to_string().parse().expect("a printed reference parses");
        assert_eq!(again, image);
    }
});
