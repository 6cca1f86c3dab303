//! Single byte-range requests (RFC 9110 §14): parsed against a known size. Anything pantry does not
//! serve as a range (several ranges, other units, bad syntax) means "send it all", which RFC 9110
//! allows; only a well-formed range outside the content is unsatisfiable.

/// What to send for a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole representation (200).
    Full,
    /// Bytes `start..=end` (206).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// Nothing in the content matches (416).
    Unsatisfiable,
}

impl ByteRange {
    /// Interprets an optional `Range` header value for content of `size` bytes.
    pub fn parse(header: Option<&str>, size: u64) -> Self {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Self::Full };
        if spec.contains(',') {
            return Self::Full;
        }
        let Some((first, last)) = spec.trim().split_once('-') else { return Self::Full };
        let number = |text: &str| text.trim().parse::<u64>().ok();
        match (first.trim().is_empty(), number(first), number(last)) {
            (true, _, Some(0)) => Self::Unsatisfiable,
            (true, _, Some(suffix)) if size > 0 => {
                Self::Partial { start: size.saturating_sub(suffix), end: size - 1 }
            }
            (true, _, _) => Self::Unsatisfiable,
            (false, Some(start), _) if start >= size => Self::Unsatisfiable,
            (false, Some(start), None) if last.trim().is_empty() => Self::Partial { start, end: size - 1 },
            (false, Some(start), Some(end)) if end >= start => {
                Self::Partial { start, end: end.min(size - 1) }
            }
            _ => Self::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ByteRange::*, *};

    #[test]
    fn range_table() {
        let cases = [
            (None, 100, Full),
            (Some("bytes=0-9"), 100, Partial { start: 0, end: 9 }),
            (Some("bytes=90-"), 100, Partial { start: 90, end: 99 }),
            (Some("bytes=90-200"), 100, Partial { start: 90, end: 99 }),
            (Some("bytes=-10"), 100, Partial { start: 90, end: 99 }),
            (Some("bytes=-500"), 100, Partial { start: 0, end: 99 }),
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=100-200"), 100, Unsatisfiable),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=-5"), 0, Unsatisfiable),
            (Some("bytes=5-1"), 100, Full),
            (Some("bytes=0-1,5-6"), 100, Full),
            (Some("items=0-1"), 100, Full),
            (Some("bytes=x-y"), 100, Full),
            (Some("bytes=5"), 100, Full),
        ];
        for (header, size, expected) in cases {
            assert_eq!(ByteRange::parse(header, size), expected, "{header:?} of {size}");
        }
    }
}
