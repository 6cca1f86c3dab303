//! Configuration files: any text either loads or is refused with a list of problems, never a
//! panic; what loads prints (check-config) into a file that loads to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml(text) {
        Ok(config) => {
            let printed = config.effective_toml();
            let again = Config::from_toml(&printed).expect("the printed configuration loads");
            assert_eq!(again.effective_toml(), printed);
        }
        Err(errors) => assert!(!errors.0.is_empty()),
    }
});
