//! Namespace policy: per registry and repository globs, whether pantry caches, passes through
//! uncached, or denies reads, and whether pushes are allowed. First matching rule wins; without a
//! match pantry caches and allows pushes.

use std::fmt;

use wildmatch::WildMatch;

/// What pantry does with reads of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Serve from and store into the cache.
    Cache,
    /// Forward untouched, store nothing.
    Pass,
    /// Refuse with 403.
    Deny,
}

impl Action {
    /// Parses `cache`, `pass` or `deny`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "cache" => Ok(Self::Cache),
            "pass" => Ok(Self::Pass),
            "deny" => Ok(Self::Deny),
            other => Err(format!("{other:?} is not one of cache, pass, deny")),
        }
    }
}

/// One rule of the namespace policy.
#[derive(Debug, Clone)]
pub struct NamespaceRule {
    registry: WildMatch,
    repository: WildMatch,
    text: String,
    /// What to do with reads.
    pub action: Action,
    /// Whether uploads (pushes, deletes) pass.
    pub push: bool,
}

impl NamespaceRule {
    /// A rule over `registry` (`host[:port]` glob) and `repository` (glob).
    pub fn new(registry: &str, repository: &str, action: Action, push: bool) -> Self {
        let text = format!("{registry}/{repository}");
        Self {
            registry: WildMatch::new(registry),
            repository: WildMatch::new(repository),
            text,
            action,
            push,
        }
    }
}

impl fmt::Display for NamespaceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The first rule matching `registry` and `repository`, if any.
pub fn rule_for<'a>(
    rules: &'a [NamespaceRule],
    registry: &str,
    repository: &str,
) -> Option<&'a NamespaceRule> {
    rules.iter().find(|r| r.registry.matches(registry) && r.repository.matches(repository))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_decides() {
        let rules = vec![
            NamespaceRule::new("*", "secret/*", Action::Deny, false),
            NamespaceRule::new("registry.test:5000", "ci/*", Action::Pass, true),
            NamespaceRule::new("ghcr.io", "*", Action::Cache, false),
        ];
        let cases = [
            ("ghcr.io", "secret/x", Some((Action::Deny, false))),
            ("registry.test:5000", "ci/build", Some((Action::Pass, true))),
            ("registry.test:5001", "ci/build", None),
            ("ghcr.io", "org/app", Some((Action::Cache, false))),
            ("quay.io", "org/app", None),
        ];
        for (registry, repository, expected) in cases {
            let found = rule_for(&rules, registry, repository).map(|r| (r.action, r.push));
            assert_eq!(found, expected, "{registry}/{repository}");
        }
        assert!(Action::parse("cache").is_ok() && Action::parse("skip").is_err());
    }
}
