//! What a registry's `401` asks for (`WWW-Authenticate`: a `Bearer` token from a realm, or `Basic`)
//! and what a token endpoint answers: the pieces of the distribution spec's token dance that
//! pantry's own requests (credentials, prefetch) need.

use base64::Engine;

/// A `WWW-Authenticate` challenge pantry can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="…",service="…",scope="…"`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
        /// `scope` parameter, if any.
        scope: Option<String>,
    },
    /// `Basic realm="…"`.
    Basic,
}

impl Challenge {
    /// Parses the value of a `WWW-Authenticate` header.
    pub fn parse(value: &str) -> Option<Self> {
        let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Self::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get =
            |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        Some(Self::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
    }

    /// The token endpoint URL with its query (`service`, `scope`) for a Bearer challenge.
    pub fn token_url(&self) -> Option<String> {
        let Self::Bearer { scope, .. } = self else { return None };
        self.token_url_for(scope.as_deref())
    }

    /// The token endpoint URL of a Bearer challenge asking for `scope` instead of its own.
    pub fn token_url_for(&self, scope: Option<&str>) -> Option<String> {
        let Self::Bearer { realm, service, .. } = self else { return None };
        let scope = scope.map(str::to_string);
        let scope = &scope;
        let mut query = Vec::new();
        for (name, value) in [("service", service), ("scope", scope)] {
            if let Some(value) = value {
                query.push(format!("{name}={}", encode(value)));
            }
        }
        let separator = if realm.contains('?') { '&' } else { '?' };
        Some(if query.is_empty() { realm.clone() } else { format!("{realm}{separator}{}", query.join("&")) })
    }
}

/// `Authorization: Basic …` for `user:password`.
pub fn basic(user: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user))
}

/// The token in a token endpoint's JSON answer (`token` or `access_token`).
pub fn token_from(body: &[u8]) -> Option<String> {
    token_answer(body).map(|(token, _)| token)
}

/// The token in a token endpoint's JSON answer and its lifetime in seconds, if it says one
/// (`expires_in`).
pub fn token_answer(body: &[u8]) -> Option<(String, Option<u64>)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = value.get("token").or_else(|| value.get("access_token"))?.as_str()?;
    let expires_in = value.get("expires_in").and_then(serde_json::Value::as_u64);
    (!token.is_empty()).then(|| (token.to_string(), expires_in))
}

/// `k="v", k2=v2` → pairs (RFC 9110 auth-params: quoted values may hold commas and `\"` escapes).
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some((name, after)) = rest.split_once('=') {
        let name = name.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted),
            None => {
                let (value, remainder) = after.split_once(',').map_or((after, ""), |(v, r)| (v, r));
                (value.trim().to_string(), remainder)
            }
        };
        params.push((name, value));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    params
}

/// A quoted-string's value (after its opening quote) and the text after its closing quote.
fn unquote(quoted: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &quoted[at + 1..]),
            c => value.push(c),
        }
    }
    (value, "")
}

/// Everything but RFC 3986's unreserved characters is encoded in a query value.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(encode("repository:a/b-c_d.e~f:pull, é"), "repository%3Aa%2Fb-c_d.e~f%3Apull%2C%20%C3%A9");
    }

    #[test]
    fn bearer_challenges_become_token_urls() {
        let challenge = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        )
        .unwrap();
        assert_eq!(
            challenge.token_url().unwrap(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull"
        );
        let bare = Challenge::parse("bearer realm=https://r.test/t").unwrap();
        assert_eq!(bare.token_url().unwrap(), "https://r.test/t");
        assert_eq!(Challenge::parse(r#"Basic realm="x""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("Bearer service=x"), None, "no realm");
        assert_eq!(Challenge::parse("Negotiate"), None);
        let escaped = Challenge::parse(r#"Bearer realm="https://r.test/t?a=\"b\"",scope="x,y""#).unwrap();
        assert_eq!(
            escaped,
            Challenge::Bearer {
                realm: "https://r.test/t?a=\"b\"".into(),
                service: None,
                scope: Some("x,y".into())
            }
        );
    }

    #[test]
    fn tokens_and_basic_credentials() {
        assert_eq!(token_from(br#"{"token":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(token_from(br#"{"access_token":"xyz","expires_in":60}"#).as_deref(), Some("xyz"));
        assert_eq!(token_from(b"{}"), None);
        assert_eq!(basic("user:pass"), "Basic dXNlcjpwYXNz");
    }
}
