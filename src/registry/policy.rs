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
#[derive(Debug, Clone, PartialEq)]
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

impl NamespaceRule {
    /// The registry and repository globs as written.
    pub fn globs(&self) -> [String; 2] {
        [self.registry.to_string(), self.repository.to_string()]
    }
}

impl Action {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::Pass => "pass",
            Self::Deny => "deny",
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

/// Content that eviction never removes: `registry/repository[:tag]` globs. Without a tag every tag
/// of the repository and every blob seen in it is pinned; with one, the manifests the matching tags
/// point at and everything they refer to. A registry without a port means port 443.
#[derive(Debug, Clone, PartialEq)]
pub struct PinRule {
    text: String,
    registry: WildMatch,
    repository: WildMatch,
    tag: Option<WildMatch>,
}

impl PinRule {
    /// Parses `registry[:port]/repository[:tag]` (globs allowed in each part).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("pin {text:?} is not REGISTRY/REPOSITORY[:TAG] (globs allowed)");
        let (registry, rest) = text.trim().split_once('/').ok_or_else(bad)?;
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (rest, None),
        };
        if registry.is_empty()
            || repository.is_empty()
            || tag.is_some_and(|t| t.is_empty() || t.contains('/'))
        {
            return Err(bad());
        }
        let registry = super::reference::registry_glob(registry);
        Ok(Self {
            text: text.trim().to_string(),
            registry: WildMatch::new(&registry),
            repository: WildMatch::new(repository),
            tag: tag.map(WildMatch::new),
        })
    }

    /// Whether everything seen in `registry/repository` is pinned (a rule without a tag).
    pub fn pins_scope(&self, registry: &str, repository: &str) -> bool {
        self.tag.is_none() && self.registry.matches(registry) && self.repository.matches(repository)
    }

    /// Whether what `registry/repository:tag` points at is pinned.
    pub fn pins_tag(&self, registry: &str, repository: &str, tag: &str) -> bool {
        self.registry.matches(registry)
            && self.repository.matches(repository)
            && self.tag.as_ref().is_none_or(|t| t.matches(tag))
    }
}

impl fmt::Display for PinRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
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

    #[test]
    fn pin_rules_name_scopes_or_tags() {
        let scope = PinRule::parse("registry.test:5000/team/*").unwrap();
        assert!(scope.pins_scope("registry.test:5000", "team/app"));
        assert!(scope.pins_tag("registry.test:5000", "team/app", "anything"));
        assert!(!scope.pins_scope("registry.test:5001", "team/app"));
        let tag = PinRule::parse("ghcr.io/org/app:v1.*").unwrap();
        assert!(!tag.pins_scope("ghcr.io:443", "org/app"), "a tag rule pins what tags point at only");
        assert!(tag.pins_tag("ghcr.io:443", "org/app", "v1.2"));
        assert!(!tag.pins_tag("ghcr.io:443", "org/app", "v2.0"));
        assert!(PinRule::parse("*/library/*").unwrap().pins_scope("docker.io:443", "library/alpine"));
        let hub = PinRule::parse("docker.io/library/alpine").unwrap();
        assert!(hub.pins_scope("registry-1.docker.io:443", "library/alpine"), "Docker Hub by its usual name");
        for bad in ["", "alpine", "ghcr.io/", "/app", "ghcr.io/app:"] {
            assert!(PinRule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
