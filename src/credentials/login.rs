//! What pantry presents to a registry as itself (a login), and the name docker tools give a
//! registry when they look one up; shared by the docker config reader and the secret sources.

use base64::Engine;

use crate::{config::Secret, registry::reference::DOCKER_HUB};

/// What pantry presents to a registry (or its token realm) as itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A user name and a password (HTTP Basic; a token realm's Basic).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An identity (refresh) token, exchanged at the realm for access tokens (OAuth2).
    IdentityToken(Secret),
}

impl Login {
    /// A process-local fingerprint of the login (to tell a rotated secret from the old one).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        let mut hasher = KEY.get_or_init(std::hash::RandomState::new).build_hasher();
        match self {
            Self::Basic { username, password } => {
                hasher.write(username.as_bytes());
                hasher.write_u8(0);
                hasher.write(password.expose().as_bytes());
            }
            Self::IdentityToken(token) => hasher.write(token.expose().as_bytes()),
        }
        hasher.finish()
    }

    /// `Authorization: Basic …` for a user and password.
    pub fn basic_header(&self) -> Option<String> {
        let Self::Basic { username, password } = self else { return None };
        let pair = format!("{username}:{}", password.expose());
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
    }
}

/// The name docker tools give `registry` (`host:port`) when they ask a helper or a config file:
/// Docker Hub is `https://index.docker.io/v1/`, port 443 is left out.
pub fn server_name(registry: &str) -> String {
    if registry == format!("{DOCKER_HUB}:443") {
        return "https://index.docker.io/v1/".to_string();
    }
    registry.strip_suffix(":443").unwrap_or(registry).to_string()
}
