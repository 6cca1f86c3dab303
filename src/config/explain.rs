//! `pantry check-config --explain IMAGE`: which rules of the configuration apply to one image
//! reference — its upstream credentials (the entry, never its secret), namespace policy and tag
//! TTL — in the order pantry tries them.

use super::{Config, SecretSource};
use crate::registry::{
    policy::rule_for,
    reference::{registry_glob, ImageRef, Reference},
    tags::ttl_for,
};

impl Config {
    /// What applies to `image`, as lines of text.
    pub fn explain(&self, image: &ImageRef) -> String {
        let registry = registry_glob(&image.registry);
        let repository = image.repository.as_str();
        let mut lines = vec![format!("{image}: registry {registry}, repository {repository}")];
        let entries = self.credential_entries();
        match entries.iter().find(|e| e.covers(&registry, repository)) {
            Some(entry) => {
                let source = match &entry.source {
                    SecretSource::Password { username, .. } => {
                        format!("user {username}, password from {}", entry.source.kind())
                    }
                    SecretSource::Helper(name) => format!("helper docker-credential-{name}"),
                    SecretSource::DockerConfig(path) => format!("docker config {}", path.display()),
                };
                lines.push(format!(
                    "upstream credentials: entry {entry} ({source}); used for requests that carry no credentials of their own"
                ));
                for later in entries.iter().filter(|e| e.covers(&registry, repository)).skip(1) {
                    lines
                        .push(format!("  also matches (tried when the first holds nothing for it): {later}"));
                }
            }
            None => lines.push(
                "upstream credentials: none apply; requests go with the client's own credentials or none"
                    .into(),
            ),
        }
        match rule_for(&self.live.repositories, &registry, repository) {
            Some(rule) => lines.push(format!("namespace policy: {rule} → {}", rule.action.as_str())),
            None => lines.push("namespace policy: no rule matches → cache".into()),
        }
        if let Reference::Tag(tag) = &image.reference {
            let ttl = ttl_for(&self.live.tag_rules, self.live.tag_ttl, &registry, repository, tag.as_str());
            lines.push(format!("tag {tag}: TTL {ttl}"));
        }
        lines.join("\n") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_which_entry_applies_without_its_secret() {
        std::env::set_var("PANTRY_TEST_EXPLAIN_PW", "hunter2-explained");
        let config = Config::from_toml(
            "[[upstream_credentials]]\nregistry = \"docker.io\"\nrepositories = [\"myorg/*\"]\nusername = \"ci\"\npassword_env = \"PANTRY_TEST_EXPLAIN_PW\"\n",
        )
        .unwrap();
        let covered = config.explain(&"docker.io/myorg/app:v1".parse().unwrap());
        assert!(covered.contains("entry registry-1.docker.io:443/{myorg/*}"), "{covered}");
        assert!(covered.contains("user ci, password from password_env"), "{covered}");
        assert!(!covered.contains("hunter2"), "{covered}");
        let other = config.explain(&"docker.io/partner/app".parse().unwrap());
        assert!(other.contains("none apply"), "{other}");
    }
}
