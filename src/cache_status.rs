//! `Cache-Status` (RFC 9211) as pantry sends it: one enum, rendered to its header text here and
//! read back here (exactly, never by substring), and the outcome the metrics count it as. The texts
//! are constants; a test parses each with `sfv` to hold them to RFC 8941's grammar.

use http::{HeaderMap, HeaderValue, Response};

/// The header's name.
pub const NAME: &str = "cache-status";

/// How pantry answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the store.
    Hit,
    /// Fetched now, streamed, and stored once verified.
    MissStored,
    /// Joined a fetch another client started.
    Collapsed,
    /// Asked upstream; not something pantry stores (or a refusal relayed).
    Miss,
    /// A tag answered from the store after upstream confirmed where it points.
    Revalidated,
    /// Upstream could not be asked; the last known answer is served.
    Stale,
    /// Not a cacheable route: forwarded as is.
    Forwarded,
    /// Stored HTTP content upstream confirmed with a 304 (RFC 9111 revalidation).
    NotModified,
    /// An answer the origin does not let a shared cache keep (or says nothing of its lifetime).
    NotStorable,
    /// pantry answered with an error of its own (see `Proxy-Status`).
    Error,
}

const ALL: [CacheStatus; 10] = [
    CacheStatus::Hit,
    CacheStatus::MissStored,
    CacheStatus::Collapsed,
    CacheStatus::Miss,
    CacheStatus::Revalidated,
    CacheStatus::Stale,
    CacheStatus::Forwarded,
    CacheStatus::NotModified,
    CacheStatus::NotStorable,
    CacheStatus::Error,
];

impl CacheStatus {
    /// The header's value.
    pub const fn text(self) -> &'static str {
        match self {
            Self::Hit => "pantry; hit",
            Self::MissStored => "pantry; fwd=miss; stored",
            Self::Collapsed => "pantry; fwd=miss; collapsed",
            Self::Miss => "pantry; fwd=miss",
            Self::Revalidated => "pantry; fwd=stale; fwd-status=200",
            Self::Stale => "pantry; hit; detail=stale",
            Self::Forwarded => "pantry; fwd=uri-miss",
            Self::NotModified => "pantry; fwd=stale; fwd-status=304",
            Self::NotStorable => "pantry; fwd=uri-miss; detail=not-storable",
            Self::Error => "pantry; detail=error",
        }
    }

    /// Sets the header of `response` and marks it as pantry's answer with this status (the mark,
    /// not the header's text, is what [`Self::marked`] and the metrics read: an upstream that sends
    /// `pantry; hit` itself, another pantry, is not counted as this one's hit).
    pub fn set<B>(self, response: &mut Response<B>) {
        response.headers_mut().insert(NAME, HeaderValue::from_static(self.text()));
        response.extensions_mut().insert(self);
    }

    /// The status pantry answered `response` with ([`Self::set`]); `None` for an answer passed on
    /// as it came.
    pub fn marked<B>(response: &Response<B>) -> Option<Self> {
        response.extensions().get::<Self>().copied()
    }

    /// The status an answer's headers carry, if it is one pantry sends (what a client reads).
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(NAME)?.as_bytes();
        ALL.into_iter().find(|status| status.text().as_bytes() == value)
    }

    /// The `cache` label of `pantry_requests_total`.
    pub const fn outcome(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Stale => "stale",
            Self::Collapsed => "collapsed",
            Self::Revalidated | Self::NotModified => "revalidated",
            Self::MissStored | Self::Miss => "miss",
            Self::Forwarded | Self::NotStorable => "forwarded",
            Self::Error => "error",
        }
    }

    /// Whether the content came from the store (for the lifetime hit ratio).
    pub const fn is_hit(self) -> bool {
        matches!(self, Self::Hit | Self::Collapsed | Self::Revalidated | Self::Stale | Self::NotModified)
    }

    /// Whether the content was fetched upstream (for the lifetime hit ratio).
    pub const fn is_miss(self) -> bool {
        matches!(self, Self::MissStored | Self::Miss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_as_itself_and_nothing_else_does() {
        for status in ALL {
            let mut response = Response::new(());
            assert_eq!(CacheStatus::marked(&response), None, "an answer passed on as it came");
            status.set(&mut response);
            assert_eq!(CacheStatus::of(response.headers()), Some(status));
            assert_eq!(CacheStatus::marked(&response), Some(status), "the mark the metrics read");
        }
        let mut headers = HeaderMap::new();
        headers.insert(NAME, HeaderValue::from_static("other-cache; hit"));
        assert_eq!(CacheStatus::of(&headers), None, "an upstream cache's own status is not pantry's");
        assert_eq!(CacheStatus::of(&HeaderMap::new()), None);
    }

    #[test]
    fn every_status_is_an_rfc_9211_list_member_with_only_its_parameters() {
        const PARAMETERS: [&str; 8] =
            ["hit", "fwd", "fwd-status", "ttl", "stored", "collapsed", "key", "detail"];
        for status in ALL {
            let list: sfv::List =
                sfv::Parser::new(status.text()).parse().unwrap_or_else(|e| panic!("{status:?}: {e}"));
            let [sfv::ListEntry::Item(item)] = list.as_slice() else { panic!("{status:?}: one member") };
            assert_eq!(
                item.bare_item,
                sfv::BareItem::Token(sfv::token_ref("pantry").to_owned()),
                "{status:?}"
            );
            for (key, _) in &item.params {
                assert!(
                    PARAMETERS.contains(&key.as_str()),
                    "{status:?}: {key:?} is not an RFC 9211 parameter"
                );
            }
            // The text is the canonical serialization but for the space after each `;` that the
            // RFC's own examples carry.
            let mut serializer = sfv::ListSerializer::new();
            serializer.members(&list);
            let canonical = serializer.finish().expect("one member");
            assert_eq!(canonical, status.text().replace("; ", ";"), "{status:?}");
        }
    }
}
