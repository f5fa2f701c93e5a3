//! Content digests: the compact [`Digest`] type (sha256 only, 32 bytes) and
//! [`Hasher`], which hashes bytes as they stream past and checks the result.
//!
//! Every blob and manifest the registry layer reads or writes goes through a
//! `Hasher`; this module does no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use super::reference::ParseNameError;

/// A `sha256:<64 lowercase hex>` content digest, stored as its 32 raw bytes.
///
/// Other algorithms (`sha512:`) are refused when parsing: no registry the
/// promoter targets uses them for images, and refusing keeps the type
/// `Copy` and cheap to hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The tag under which the OCI tag-schema fallback stores referrers of
    /// this digest: `sha256-<hex>`.
    pub fn referrers_tag(&self) -> String {
        format!("sha256-{}", self.hex())
    }
}

/// Why `value` is not `sha256:` and 64 lowercase hex digits (`^sha256:[0-9a-f]{64}$`,
/// as kpromo requires), in words a user can act on. The one copy of this
/// grammar: [`Digest`] parses with it, and `check` reports with it (M201).
///
/// # Errors
///
/// The reason, when `value` is not a digest.
pub fn check(value: &str) -> Result<(), String> {
    let Some(hex) = value.strip_prefix("sha256:") else {
        return Err(match value.split_once(':') {
            Some((algorithm, _)) => {
                format!("algorithm `{algorithm}` is not supported; only `sha256` is")
            }
            None => "a digest starts with `sha256:`".to_string(),
        });
    };
    // Fast path: almost every digest is well formed.
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Ok(());
    }
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("`{c}` is not a hex digit"));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("hex digits must be lowercase".to_string());
    }
    if hex.len() != 64 {
        return Err(format!(
            "it has {} hex digits; a sha256 digest has 64",
            hex.len()
        ));
    }
    Ok(())
}

impl FromStr for Digest {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Digest, ParseNameError> {
        let err = || ParseNameError::Digest(s.chars().take(100).collect());
        // `hex::decode` accepts uppercase; registries and the OCI spec do
        // not, and neither does `check`.
        check(s).map_err(|_| err())?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(&s["sha256:".len()..], &mut raw).map_err(|_| err())?;
        Ok(Digest(raw))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 over a stream of chunks, counting bytes as it goes.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Feed the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// How many bytes have been fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no bytes have been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest(self.sha.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays_round_trip() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of(b""));
        assert_eq!(
            d.referrers_tag(),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn refuses_malformed_digests() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            // 63 hex digits: a real quirk of the k8s.io corpus.
            "sha256:3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn hasher_matches_one_shot_digest() {
        let mut h = Hasher::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.len(), 11);
        assert_eq!(h.finish(), Digest::of(b"hello world"));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
