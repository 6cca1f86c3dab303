//! Tags are mutable: what a tag pointed at is remembered per registry + repository + tag +
//! normalised `Accept`, and trusted for as long as the first matching TTL rule says.
//!
//! Pure rules and keys; the flow (revalidation, stale answers) is in `proxy::by_tag`.

use std::time::Duration;

use http::{header, HeaderMap};
use wildmatch::WildMatch;

/// How long a tag's answer is trusted without asking upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// For this long (zero: always revalidate).
    For(Duration),
    /// Forever: the tag never moves (e.g. release tags by policy).
    Immutable,
}

impl Ttl {
    /// Parses `10m`, `0`, `immutable`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "immutable" => Ok(Self::Immutable),
            "0" => Ok(Self::For(Duration::ZERO)),
            other => humantime::parse_duration(other)
                .map(Self::For)
                .map_err(|_| format!("{other:?} is not a TTL like 10m, 0 or immutable")),
        }
    }

    /// Whether an answer checked `age` ago is still fresh.
    pub fn is_fresh(self, age: Duration) -> bool {
        match self {
            Self::Immutable => true,
            Self::For(ttl) => age < ttl,
        }
    }
}

impl std::fmt::Display for Ttl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Immutable => f.write_str("immutable"),
            Self::For(ttl) if ttl.is_zero() => f.write_str("0"),
            Self::For(ttl) => write!(f, "{}", humantime::format_duration(*ttl)),
        }
    }
}

/// One TTL rule: globs over registry (`host[:port]`), repository and tag.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRule {
    registry: WildMatch,
    repository: WildMatch,
    tag: WildMatch,
    /// The TTL when the rule matches.
    pub ttl: Ttl,
}

impl TagRule {
    /// A rule from its three globs and a TTL.
    pub fn new(registry: &str, repository: &str, tag: &str, ttl: Ttl) -> Self {
        Self {
            registry: WildMatch::new(registry),
            repository: WildMatch::new(repository),
            tag: WildMatch::new(tag),
            ttl,
        }
    }

    /// The registry, repository and tag globs as written.
    pub fn globs(&self) -> [String; 3] {
        [self.registry.to_string(), self.repository.to_string(), self.tag.to_string()]
    }

    fn matches(&self, registry: &str, repository: &str, tag: &str) -> bool {
        self.registry.matches(registry) && self.repository.matches(repository) && self.tag.matches(tag)
    }
}

/// The TTL for a tag: the first matching rule's, else `default`.
pub fn ttl_for(rules: &[TagRule], default: Ttl, registry: &str, repository: &str, tag: &str) -> Ttl {
    rules.iter().find(|r| r.matches(registry, repository, tag)).map_or(default, |r| r.ttl)
}

/// The built-in rules: `latest` moves often.
pub fn default_rules() -> Vec<TagRule> {
    vec![TagRule::new("*", "*", "latest", Ttl::For(Duration::from_secs(60)))]
}

/// `Accept` reduced to what selects a manifest: media types, lower case, sorted, without params.
pub fn normalize_accept(headers: &HeaderMap) -> String {
    let mut types: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    types.sort();
    types.dedup();
    types.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins() {
        let rules = vec![
            TagRule::new("*", "*", "*-SNAPSHOT", Ttl::For(Duration::ZERO)),
            TagRule::new("ghcr.io", "org/*", "v*", Ttl::Immutable),
            TagRule::new("*", "*", "latest", Ttl::For(Duration::from_secs(60))),
        ];
        let default = Ttl::For(Duration::from_secs(600));
        let cases = [
            ("ghcr.io", "org/app", "1.0-SNAPSHOT", Ttl::For(Duration::ZERO)),
            ("ghcr.io", "org/app", "v1.2", Ttl::Immutable),
            ("quay.io", "org/app", "v1.2", default),
            ("quay.io", "x", "latest", Ttl::For(Duration::from_secs(60))),
            ("quay.io", "x", "stable", default),
        ];
        for (registry, repository, tag, expected) in cases {
            assert_eq!(ttl_for(&rules, default, registry, repository, tag), expected, "{repository}:{tag}");
        }
    }

    #[test]
    fn ttl_parsing_and_freshness() {
        assert_eq!(Ttl::parse("immutable").unwrap(), Ttl::Immutable);
        assert_eq!(Ttl::parse("0").unwrap(), Ttl::For(Duration::ZERO));
        assert_eq!(Ttl::parse("90s").unwrap(), Ttl::For(Duration::from_secs(90)));
        assert!(Ttl::parse("soon").is_err());
        assert!(!Ttl::For(Duration::ZERO).is_fresh(Duration::ZERO));
        assert!(Ttl::For(Duration::from_secs(60)).is_fresh(Duration::from_secs(59)));
        assert!(!Ttl::For(Duration::from_secs(60)).is_fresh(Duration::from_secs(60)));
        assert!(Ttl::Immutable.is_fresh(Duration::MAX));
    }

    #[test]
    fn accept_is_normalised() {
        let mut a = HeaderMap::new();
        a.append(header::ACCEPT, "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.9".parse().unwrap());
        let mut b = HeaderMap::new();
        b.append(header::ACCEPT, "Application/VND.docker.distribution.manifest.v2+json".parse().unwrap());
        b.append(header::ACCEPT, "application/vnd.oci.image.index.v1+json".parse().unwrap());
        assert_eq!(normalize_accept(&a), normalize_accept(&b));
        assert_eq!(normalize_accept(&HeaderMap::new()), "");
    }
}
