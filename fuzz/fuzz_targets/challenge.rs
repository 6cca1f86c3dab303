//! What upstreams say about authentication, which pantry parses to get its own tokens: a
//! `WWW-Authenticate` challenge and a token endpoint's JSON never panic; a Bearer challenge gives
//! a token URL that starts with its realm; a token request's pull scopes name only repositories.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pantry::credentials::{
    challenge::{token_answer, Challenge},
    realms::pull_scopes,
};

fuzz_target!(|data: &[u8]| {
    let _ = token_answer(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(challenge @ Challenge::Bearer { .. }) = Challenge::parse(text) {
        let Challenge::Bearer { realm, .. } = &challenge else { unreachable!() };
        assert!(challenge.token_url().unwrap().starts_with(realm.as_str()));
        assert!(challenge.token_url_for(Some("repository:a:pull")).unwrap().contains("scope=repository%3Aa%3Apull"));
    }
    if let Some(repositories) = pull_scopes(Some(text)) {
        assert!(!repositories.is_empty() && repositories.iter().all(|r| !r.is_empty()));
    }
});
