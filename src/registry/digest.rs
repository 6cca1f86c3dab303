//! OCI content digests (`algorithm:hex`) and streaming verification of bytes against them.
//!
//! Owns the parsing rules of the OCI image-spec descriptor digest for the two registered algorithms, sha256 and
//! sha512, with lowercase hex only. Hashing uses `ring`. Pure: no I/O, no knowledge of the cache or of HTTP.

use std::fmt;
use std::str::FromStr;

use ring::digest as ring_digest;

/// A hash algorithm that registries use to name content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters; what every registry uses today.
    Sha256,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The name used before the `:` in a digest, e.g. `"sha256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn ring(self) -> &'static ring_digest::Algorithm {
        match self {
            Algorithm::Sha256 => &ring_digest::SHA256,
            Algorithm::Sha512 => &ring_digest::SHA512,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated OCI digest such as `sha256:e3b0c442…`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Digest {
    algorithm: Algorithm,
    /// The whole digest, `algorithm:hex`, kept in one string so `as_str` can borrow it.
    text: String,
}

impl Digest {
    /// Computes the digest of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Self {
        Self::from_ring(algorithm, ring_digest::digest(algorithm.ring(), bytes))
    }

    /// The algorithm part, before the `:`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part, after the `:`.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    /// The whole digest as text, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A streaming checker that tells whether the bytes fed to it hash to this digest.
    pub fn verifier(&self) -> Verifier {
        Verifier { expected: self.clone(), context: ring_digest::Context::new(self.algorithm.ring()) }
    }

    fn from_ring(algorithm: Algorithm, hash: ring_digest::Digest) -> Self {
        let mut text = String::with_capacity(algorithm.as_str().len() + 1 + algorithm.hex_len());
        text.push_str(algorithm.as_str());
        text.push(':');
        for byte in hash.as_ref() {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Digest { algorithm, text }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, hex) = s.split_once(':').ok_or(DigestError::MissingSeparator)?;
        let algorithm =
            Algorithm::from_name(name).ok_or_else(|| DigestError::UnsupportedAlgorithm(name.to_owned()))?;
        if let Some((position, found)) =
            hex.chars().enumerate().find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(DigestError::InvalidCharacter { algorithm, found, position });
        }
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::WrongLength {
                algorithm,
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        Ok(Digest { algorithm, text: s.to_owned() })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a string is not a digest pantry accepts.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DigestError {
    /// There is no `:` between algorithm and hex.
    #[error("digest has no ':' between algorithm and hex")]
    MissingSeparator,
    /// The algorithm is neither `sha256` nor `sha512`.
    #[error("unsupported digest algorithm {0:?} (expected \"sha256\" or \"sha512\")")]
    UnsupportedAlgorithm(String),
    /// The hex part contains something other than `0-9` and `a-f`.
    #[error("{algorithm} digest has {found:?} at hex position {position}; only lowercase hex (0-9, a-f) is allowed")]
    InvalidCharacter {
        /// The digest's algorithm.
        algorithm: Algorithm,
        /// The first offending character.
        found: char,
        /// Its index (in characters) within the hex part.
        position: usize,
    },
    /// The hex part has the wrong length for its algorithm.
    #[error("{algorithm} digest must have {expected} hex characters, found {actual}")]
    WrongLength {
        /// The digest's algorithm.
        algorithm: Algorithm,
        /// The length the algorithm requires.
        expected: usize,
        /// The length found.
        actual: usize,
    },
}

/// Hashes bytes as they stream past and compares the result with an expected digest.
#[derive(Clone)]
pub struct Verifier {
    expected: Digest,
    context: ring_digest::Context,
}

impl Verifier {
    /// Feeds the next chunk of content.
    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
    }

    /// Ends the stream: `Ok` if the content hashed to the expected digest.
    pub fn finish(self) -> Result<(), Mismatch> {
        let actual = Digest::from_ring(self.expected.algorithm, self.context.finish());
        if actual == self.expected {
            Ok(())
        } else {
            Err(Mismatch { expected: self.expected, actual })
        }
    }
}

/// Computes the SHA-256 digest of content fed in chunks (content whose digest nobody announced).
pub struct Hasher(ring_digest::Context);

impl Default for Hasher {
    fn default() -> Self {
        Self(ring_digest::Context::new(Algorithm::Sha256.ring()))
    }
}

impl Hasher {
    /// Feeds the next chunk of content.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest::from_ring(Algorithm::Sha256, self.0.finish())
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(sha256)")
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("expected", &self.expected).finish_non_exhaustive()
    }
}

/// Content did not hash to the digest it was fetched by.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("digest mismatch: expected {expected}, content hashes to {actual}")]
pub struct Mismatch {
    /// The digest the content was requested by.
    pub expected: Digest,
    /// The digest of the content actually received.
    pub actual: Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const EMPTY_512: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
                             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
    const ABC_256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    const AB_256: &str = "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603";
    const ABC_512: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                           2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    /// Expected digest, chunks fed to the verifier, and the actual digest when they must not match.
    type VerifyCase<'a> = (&'a str, &'a [&'a [u8]], Option<&'a str>);

    fn sha256(hex: &str) -> String {
        format!("sha256:{hex}")
    }

    #[test]
    fn parse_accepts_valid_digests() {
        let cases = [
            (sha256(EMPTY_256), Algorithm::Sha256, EMPTY_256),
            (sha256(ABC_256), Algorithm::Sha256, ABC_256),
            (format!("sha512:{EMPTY_512}"), Algorithm::Sha512, EMPTY_512),
        ];
        for (input, algorithm, hex) in cases {
            let digest: Digest = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(digest.algorithm(), algorithm, "{input}");
            assert_eq!(digest.hex(), hex, "{input}");
            assert_eq!(digest.as_str(), input, "{input}");
            assert_eq!(digest.to_string(), input, "round trip of {input}");
        }
    }

    #[test]
    fn parse_rejects_invalid_digests() {
        use DigestError::*;
        let upper = EMPTY_256.to_uppercase();
        let cases = [
            (String::new(), MissingSeparator),
            (EMPTY_256.to_owned(), MissingSeparator),
            (format!("sha384:{EMPTY_256}"), UnsupportedAlgorithm("sha384".into())),
            (format!("SHA256:{EMPTY_256}"), UnsupportedAlgorithm("SHA256".into())),
            (format!(":{EMPTY_256}"), UnsupportedAlgorithm(String::new())),
            (format!(" sha256:{EMPTY_256}"), UnsupportedAlgorithm(" sha256".into())),
            (sha256(&upper), InvalidCharacter { algorithm: Algorithm::Sha256, found: 'E', position: 0 }),
            (
                sha256(&format!("{}G", &EMPTY_256[..63])),
                InvalidCharacter { algorithm: Algorithm::Sha256, found: 'G', position: 63 },
            ),
            (
                sha256(&format!("{EMPTY_256}\n")),
                InvalidCharacter { algorithm: Algorithm::Sha256, found: '\n', position: 64 },
            ),
            (
                format!("sha256:sha256:{EMPTY_256}"),
                InvalidCharacter { algorithm: Algorithm::Sha256, found: 's', position: 0 },
            ),
            (
                sha256(&format!("é{}", &EMPTY_256[1..])),
                InvalidCharacter { algorithm: Algorithm::Sha256, found: 'é', position: 0 },
            ),
            (sha256(""), WrongLength { algorithm: Algorithm::Sha256, expected: 64, actual: 0 }),
            (
                sha256(&EMPTY_256[..63]),
                WrongLength { algorithm: Algorithm::Sha256, expected: 64, actual: 63 },
            ),
            (
                sha256(&format!("{EMPTY_256}0")),
                WrongLength { algorithm: Algorithm::Sha256, expected: 64, actual: 65 },
            ),
            (
                format!("sha512:{EMPTY_256}"),
                WrongLength { algorithm: Algorithm::Sha512, expected: 128, actual: 64 },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Digest>(), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("md5:abc", "unsupported digest algorithm \"md5\""),
            ("sha256:ABC", "'A' at hex position 0"),
            ("sha256:abc", "must have 64 hex characters, found 3"),
            ("nocolon", "no ':'"),
        ];
        for (input, fragment) in cases {
            let message = input.parse::<Digest>().unwrap_err().to_string();
            assert!(message.contains(fragment), "{input:?}: {message:?} lacks {fragment:?}");
        }
    }

    #[test]
    fn of_computes_known_digests() {
        let cases: [(Algorithm, &[u8], String); 3] = [
            (Algorithm::Sha256, b"", sha256(EMPTY_256)),
            (Algorithm::Sha256, b"abc", sha256(ABC_256)),
            (Algorithm::Sha512, b"", format!("sha512:{EMPTY_512}")),
        ];
        for (algorithm, bytes, expected) in cases {
            assert_eq!(Digest::of(algorithm, bytes).as_str(), expected);
        }
    }

    #[test]
    fn verifier_accepts_matching_and_reports_mismatching_content() {
        let abc = sha256(ABC_256);
        let empty512 = format!("sha512:{EMPTY_512}");
        let abc_512 = format!("sha512:{ABC_512}");
        let cases: [VerifyCase; 6] = [
            (&abc, &[b"abc"], None),
            (&abc, &[b"a", b"", b"bc"], None),
            (&abc, &[b"ab"], Some(&sha256(AB_256))),
            (&abc, &[], Some(&sha256(EMPTY_256))),
            (&empty512, &[], None),
            (&empty512, &[b"abc"], Some(&abc_512)),
        ];
        for (expected, chunks, mismatch) in cases {
            let digest: Digest = expected.parse().unwrap();
            let mut verifier = digest.verifier();
            for chunk in chunks {
                verifier.update(chunk);
            }
            let result = verifier.finish();
            match mismatch {
                None => assert_eq!(result, Ok(()), "{expected} {chunks:?}"),
                Some(actual) => {
                    let err = result.unwrap_err();
                    assert_eq!(err.expected, digest);
                    assert_eq!(err.actual.as_str(), actual);
                    assert!(err.to_string().contains(actual));
                }
            }
        }
    }
}
