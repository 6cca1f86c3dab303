//! `[[upstream_credentials]]` and `--docker-config`: the registries (and repositories) pantry asks
//! with its own credentials, and where each secret comes from. Only names, paths and globs are
//! kept here; the secrets are read where they are used (`crate::credentials`), so a changed
//! secret file needs no reload. Files holding secrets must not be readable by group or others.

use std::{fmt, path::PathBuf};

use serde::Deserialize;
use wildmatch::WildMatch;

use crate::registry::reference::registry_glob;

/// A secret held in memory: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where an entry's password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordFrom {
    /// A file (read at each use; one trailing newline dropped).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// Written in the configuration file (only accepted when that file is private to its owner).
    Inline(Secret),
}

/// Where an entry's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A user name and a password.
    Password {
        /// The user name.
        username: String,
        /// The password's source.
        password: PasswordFrom,
    },
    /// A docker credential helper (`docker-credential-NAME get`).
    Helper(String),
    /// A docker `config.json`: `auths`, `credHelpers`, `credsStore` as docker reads them.
    DockerConfig(PathBuf),
}

/// One `[[upstream_credentials]]` entry.
#[derive(Debug, Clone)]
pub struct CredentialEntry {
    registry: WildMatch,
    repositories: Vec<WildMatch>,
    /// Where its secret comes from.
    pub source: SecretSource,
}

impl PartialEq for CredentialEntry {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string() && self.source == other.source
    }
}

impl CredentialEntry {
    /// An entry for `registry` (a glob as in other rules; `docker.io` is Docker Hub; no port means
    /// 443) and `repositories` (globs; empty: every repository).
    pub fn new(registry: &str, repositories: &[String], source: SecretSource) -> Self {
        Self {
            registry: WildMatch::new(&registry_glob(registry)),
            repositories: repositories.iter().map(|r| WildMatch::new(r)).collect(),
            source,
        }
    }

    /// Whether this entry applies to `repository` of `registry` (`host:port`).
    pub fn covers(&self, registry: &str, repository: &str) -> bool {
        self.registry.matches(registry)
            && (self.repositories.is_empty() || self.repositories.iter().any(|r| r.matches(repository)))
    }

    /// Whether this entry applies to every repository of `registry` (it lists none).
    pub fn covers_every_repository(&self, registry: &str) -> bool {
        self.registry.matches(registry) && self.repositories.is_empty()
    }

    /// Whether this entry applies to some repository of `registry`.
    pub fn covers_registry(&self, registry: &str) -> bool {
        self.registry.matches(registry)
    }

    /// The repository globs as written (empty: every repository).
    pub fn repositories(&self) -> Vec<String> {
        self.repositories.iter().map(|r| r.to_string()).collect()
    }
}

impl fmt::Display for CredentialEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.registry)?;
        if !self.repositories.is_empty() {
            write!(f, "/{{{}}}", self.repositories().join(","))?;
        }
        Ok(())
    }
}

/// An `[[upstream_credentials]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCredential {
    registry: String,
    #[serde(default)]
    repositories: Vec<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    password: Option<String>,
    helper: Option<String>,
    docker_config: Option<PathBuf>,
}

impl FileCredential {
    /// The entry, or what is wrong with it. `file_private`: the configuration file is readable by
    /// its owner only (an inline password is accepted only then).
    pub(super) fn entry(self, file_private: bool) -> Result<CredentialEntry, String> {
        let at = format!("upstream_credentials for {:?}", self.registry);
        if self.registry.trim().is_empty() {
            return Err("upstream_credentials: registry is empty".into());
        }
        for repository in &self.repositories {
            if repository.is_empty() || repository.starts_with('/') {
                return Err(format!("{at}: repository glob {repository:?} is not like \"myorg/*\""));
            }
        }
        let passwords = [self.password_file.is_some(), self.password_env.is_some(), self.password.is_some()];
        let sources = passwords.iter().filter(|p| **p).count()
            + usize::from(self.helper.is_some())
            + usize::from(self.docker_config.is_some());
        if sources != 1 {
            return Err(format!(
                "{at}: give exactly one of password_file, password_env, password, helper, docker_config"
            ));
        }
        let has_username = self.username.is_some();
        let source = if let Some(helper) = self.helper {
            if helper.is_empty() || helper.contains(|c: char| c == '/' || c.is_whitespace()) {
                return Err(format!("{at}: helper {helper:?} is not a name like \"ecr-login\""));
            }
            SecretSource::Helper(helper)
        } else if let Some(path) = self.docker_config {
            private_file(&path).map_err(|e| format!("{at}: {e}"))?;
            SecretSource::DockerConfig(path)
        } else {
            let username = self.username.filter(|u| !u.is_empty());
            let username = username.ok_or_else(|| format!("{at}: a password needs a username"))?;
            let password = if let Some(path) = self.password_file {
                private_file(&path).map_err(|e| format!("{at}: {e}"))?;
                PasswordFrom::File(path)
            } else if let Some(name) = self.password_env {
                if std::env::var_os(&name).is_none_or(|v| v.is_empty()) {
                    return Err(format!("{at}: environment variable {name} is not set"));
                }
                PasswordFrom::Env(name)
            } else {
                if !file_private {
                    return Err(format!(
                        "{at}: an inline password needs a configuration file only its owner can read (chmod 600), or use password_file / password_env"
                    ));
                }
                PasswordFrom::Inline(Secret::new(self.password.unwrap_or_default()))
            };
            SecretSource::Password { username, password }
        };
        if has_username && !matches!(source, SecretSource::Password { .. }) {
            return Err(format!("{at}: username goes with a password, not with {}", source.kind()));
        }
        Ok(CredentialEntry::new(&self.registry, &self.repositories, source))
    }
}

impl SecretSource {
    /// The source's kind as the configuration names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Password { password: PasswordFrom::File(_), .. } => "password_file",
            Self::Password { password: PasswordFrom::Env(_), .. } => "password_env",
            Self::Password { password: PasswordFrom::Inline(_), .. } => "password",
            Self::Helper(_) => "helper",
            Self::DockerConfig(_) => "docker_config",
        }
    }
}

/// Checks that `path` is a readable file that neither group nor others may read.
pub fn private_file(path: &std::path::Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if open_to_others(&meta) {
        return Err(format!(
            "{} holds a secret but group or others may read it (chmod 600 it; for a Kubernetes Secret set defaultMode: 0400)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn open_to_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 != 0
}

#[cfg(not(unix))]
fn open_to_others(_: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, private: bool) -> Result<CredentialEntry, String> {
        let entry: FileCredential = toml::from_str(text).map_err(|e| e.to_string())?;
        entry.entry(private)
    }

    #[test]
    fn entries_cover_their_registry_and_repositories() {
        std::env::set_var("PANTRY_TEST_CREDENTIAL_PASSWORD", "pw");
        let entry = parse(
            "registry = \"docker.io\"\nrepositories = [\"myorg/*\"]\nusername = \"ci\"\npassword_env = \"PANTRY_TEST_CREDENTIAL_PASSWORD\"",
            false,
        )
        .unwrap();
        assert!(entry.covers("registry-1.docker.io:443", "myorg/app"));
        assert!(!entry.covers("registry-1.docker.io:443", "partner/app"));
        assert!(!entry.covers("ghcr.io:443", "myorg/app"));
        assert!(entry.covers_registry("registry-1.docker.io:443"));
        let all = parse("registry = \"registry.test:5000\"\nhelper = \"pass\"", false).unwrap();
        assert!(all.covers("registry.test:5000", "anything/at/all"));
        assert!(!all.covers("registry.test:5001", "anything"));
    }

    #[test]
    fn sources_are_exactly_one_and_secrets_stay_private() {
        let both = parse("registry = \"r.test\"\nhelper = \"x\"\ndocker_config = \"/nonexistent\"", false);
        assert!(both.unwrap_err().contains("exactly one"));
        let none = parse("registry = \"r.test\"", false);
        assert!(none.unwrap_err().contains("exactly one"));
        let inline = "registry = \"r.test\"\nusername = \"u\"\npassword = \"hunter2\"";
        let refused = parse(inline, false).unwrap_err();
        assert!(refused.contains("chmod 600") && !refused.contains("hunter2"), "{refused}");
        let accepted = parse(inline, true).unwrap();
        assert!(!format!("{accepted:?}").contains("hunter2"));
        let no_user = parse("registry = \"r.test\"\npassword_env = \"HOME\"", false);
        assert!(no_user.unwrap_err().contains("username"));
        let unset =
            parse("registry = \"r.test\"\nusername = \"u\"\npassword_env = \"PANTRY_TEST_UNSET_X\"", false);
        assert!(unset.unwrap_err().contains("not set"));
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "pw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "registry = \"r.test\"\nusername = \"u\"\npassword_file = {:?}",
            file.display().to_string()
        );
        assert!(parse(&text, false).unwrap_err().contains("group or others"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(parse(&text, false).is_ok());
    }
}
