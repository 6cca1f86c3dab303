//! Recent upstream answers "this client may read this repository" (see `proxy::access` for the
//! rule they serve). Credentials are kept only as keyed hashes, in memory, never on disk or in
//! logs; an anonymous client's answers are kept under `None`.

use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};

use http::{header, HeaderMap};

/// How long an upstream "yes" for a credential and scope is trusted.
pub const GRANT_TTL: Duration = Duration::from_secs(60);

/// A keyed, process-local hash of a client's `Authorization` header.
pub type Credential = u64;

/// Recent upstream answers "this credential may read this scope".
#[derive(Debug)]
pub struct Grants {
    hasher: RandomState,
    granted: moka::sync::Cache<(Option<Credential>, String), ()>,
}

impl Default for Grants {
    fn default() -> Self {
        Self::new(GRANT_TTL)
    }
}

impl Grants {
    /// Grants remembered for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            hasher: RandomState::new(),
            granted: moka::sync::Cache::builder().time_to_live(ttl).max_capacity(100_000).build(),
        }
    }

    /// The credential a request carries, if any.
    pub fn credential(&self, headers: &HeaderMap) -> Option<Credential> {
        let value = headers.get(header::AUTHORIZATION)?;
        Some(self.key(value.as_bytes()))
    }

    /// The keyed hash of `identity` (a header's bytes, or what names pantry's own credential).
    pub fn key(&self, identity: &[u8]) -> Credential {
        self.hasher.hash_one(identity)
    }

    /// Whether upstream recently allowed `credential` (`None`: anonymous) to read `scope`.
    pub fn allows(&self, credential: Option<Credential>, scope: &str) -> bool {
        self.granted.contains_key(&(credential, scope.to_string()))
    }

    /// Records that upstream allowed `credential` (`None`: anonymous) to read `scope`.
    pub fn grant(&self, credential: Option<Credential>, scope: &str) {
        self.granted.insert((credential, scope.to_string()), ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_per_credential_and_scope() {
        let grants = Grants::default();
        let mut headers = HeaderMap::new();
        assert_eq!(grants.credential(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer a".parse().unwrap());
        let a = grants.credential(&headers);
        headers.insert(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        let b = grants.credential(&headers);
        assert_ne!(a, b);
        grants.grant(a, "registry.test:5000/private");
        assert!(grants.allows(a, "registry.test:5000/private"));
        assert!(!grants.allows(b, "registry.test:5000/private"));
        assert!(!grants.allows(a, "registry.test:5000/other"));
        assert!(!grants.allows(None, "registry.test:5000/private"), "anonymous is a client of its own");
    }
}
