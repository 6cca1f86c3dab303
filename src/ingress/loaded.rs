//! The files the live settings name, read: the proxy users (`proxy_auth_file`), the admin token
//! (`admin_token_file`) and the mirror's supplied certificate (`mirror_cert`, `mirror_key`). Read
//! at start and again on every reload, beside the settings they come from, so that `config` holds
//! plain values only. A reload whose files cannot be read changes nothing.

use std::sync::Arc;

use crate::{
    config::{private_file, Live, Secret},
    proxy_auth::ProxyAuth,
};

/// What the live settings' files hold.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The users proxy clients authenticate as, with their verification cache.
    pub proxy_auth: Option<Arc<ProxyAuth>>,
    /// The token the admin API and the status page need.
    pub admin_token: Option<Secret>,
    /// TLS with the mirror's supplied certificate.
    pub mirror_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Loaded {
    /// Reads every file `live` names; every problem at once, each prefixed with its setting.
    pub fn read(live: &Live) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let proxy_auth =
            live.proxy_auth_file.as_deref().and_then(|p| kept(ProxyAuth::load(p), &mut problems));
        let admin_token = live.admin_token_file.as_deref().and_then(|p| kept(token(p), &mut problems));
        let mirror_tls = live.mirror_cert.as_ref().and_then(|(cert, key)| {
            let tls =
                crate::mitm::supplied::server_config(cert, key).map_err(|e| format!("mirror_cert: {e}"));
            kept(tls, &mut problems)
        });
        match problems.is_empty() {
            true => Ok(Self {
                proxy_auth: proxy_auth.map(Arc::new),
                admin_token,
                mirror_tls: mirror_tls.map(Arc::new),
            }),
            false => Err(problems),
        }
    }
}

/// The value, or `None` with the problem noted.
fn kept<T>(result: Result<T, String>, problems: &mut Vec<String>) -> Option<T> {
    result.map_err(|e| problems.push(e)).ok()
}

/// The admin token in `path`: a file only its owner may read, not empty.
fn token(path: &std::path::Path) -> Result<Secret, String> {
    let read = private_file(path).and_then(|()| {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let token = text.trim().to_string();
        (!token.is_empty()).then_some(token).ok_or_else(|| format!("{} is empty", path.display()))
    });
    read.map(Secret::new).map_err(|e| format!("admin_token_file: {e}"))
}

#[cfg(test)]
mod tests {
    use crate::config::RunArgs;

    #[test]
    fn the_files_problems_are_listed_with_the_settings_ones() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("htpasswd");
        std::fs::write(&users, "ci:plain-text-password\n").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t\n").unwrap();
        let args = RunArgs {
            listen: Some("not an address".into()),
            proxy_auth_file: Some(users),
            admin_token_file: Some(token),
            mirror_cert: Some(dir.path().join("missing.pem")),
            mirror_key: Some(dir.path().join("missing.key")),
            ..RunArgs::default()
        };
        let problems = crate::configuration(&args).unwrap_err().0;
        let named = |what: &str| problems.iter().any(|p| p.starts_with(what));
        assert!(named("listen") && named("proxy_auth_file") && named("mirror_cert"), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("admin_token_file") && p.contains("chmod 600")));
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
