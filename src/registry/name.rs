//! Repository names and tags as the distribution spec allows them: validated once, so every
//! later rule and key works on a name that is known to be well formed.

use std::{fmt, str::FromStr};

/// A repository name that satisfies the distribution spec, e.g. `library/alpine`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Repository(String);

/// The longest repository name accepted.
const MAX_REPOSITORY_LEN: usize = 255;

impl Repository {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Repository {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_REPOSITORY_LEN || !s.split('/').all(is_path_component) {
            return Err(NameError::Repository);
        }
        Ok(Repository(s.to_owned()))
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, by hand.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let run = bytes[i..].iter().take_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9')).count();
        if run == 0 {
            return false;
        }
        i += run;
        let separator = match bytes.get(i) {
            None => return true,
            Some(b'.') => 1,
            Some(b'_') if bytes.get(i + 1) == Some(&b'_') => 2,
            Some(b'_') => 1,
            Some(b'-') => bytes[i..].iter().take_while(|&&b| b == b'-').count(),
            Some(_) => return false,
        };
        i += separator;
    }
}

/// A tag that satisfies the distribution spec, e.g. `3.20` or `latest`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Tag(String);

/// The longest tag accepted.
const MAX_TAG_LEN: usize = 128;

impl Tag {
    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    /// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let valid = match bytes.split_first() {
            Some((first, rest)) => {
                bytes.len() <= MAX_TAG_LEN
                    && (first.is_ascii_alphanumeric() || *first == b'_')
                    && rest.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
            None => false,
        };
        if valid {
            Ok(Tag(s.to_owned()))
        } else {
            Err(NameError::Tag)
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository name or tag that the distribution spec does not allow.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum NameError {
    /// Not a valid repository name.
    #[error(
        "invalid repository name: components must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*, \
         joined by '/', at most 255 characters"
    )]
    Repository,
    /// Not a valid tag.
    #[error("invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    Tag,
}
