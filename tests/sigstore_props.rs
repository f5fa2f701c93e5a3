//! Property tests of the Sigstore parsers: whatever bytes arrive as a bundle,
//! a trusted root, a PEM or a certificate, the verifier answers with a
//! verdict or an error, never a panic; a bundle changed in any byte that
//! carries something signed no longer verifies.

use std::sync::OnceLock;

use promoter::sign::crypto;
use promoter::sign::trust::TrustedRoot;
use promoter::sign::verifier::{self, Artifact, Matcher, Options, Policy};
use proptest::prelude::*;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn case(name: &str, file: &str) -> Vec<u8> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sigstore-conformance/bundle-verify"
    );
    std::fs::read(format!("{dir}/{name}/{file}")).unwrap()
}

fn trust() -> &'static TrustedRoot {
    static ROOT: OnceLock<TrustedRoot> = OnceLock::new();
    ROOT.get_or_init(|| TrustedRoot::load(None).unwrap())
}

fn policy() -> Policy {
    Policy {
        identity: Matcher::Exact(IDENTITY.into()),
        issuer: Matcher::Exact(ISSUER.into()),
        public_key: None,
    }
}

fn artifact() -> Vec<u8> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sigstore-conformance/bundle-verify"
    );
    std::fs::read(format!("{dir}/a.txt")).unwrap()
}

fn check(bundle: &[u8]) -> Result<(), verifier::Failure> {
    let a = artifact();
    verifier::verify(
        bundle,
        Artifact::Bytes(&a),
        &policy(),
        trust(),
        Options::default(),
    )
    .map(|_| ())
}

/// Why changing byte `at` of the happy-path bundle to `to` may leave a
/// bundle that still verifies: the byte carries nothing signed and nothing
/// the verifier relies on. Every other change must be refused.
fn unsigned_change(bundle: &[u8], at: usize, to: u8) -> Option<&'static str> {
    let starts =
        |text: &'static [u8]| (0..bundle.len()).filter(move |&s| bundle[s..].starts_with(text));
    // Within `text` itself.
    let on = |text: &'static [u8]| starts(text).any(|s| (s..s + text.len()).contains(&at));
    // Between `start` and the next `end`.
    let after = |start: &'static [u8], end: u8| {
        starts(start).map(|s| s + start.len()).any(|from| {
            let len = bundle[from..].iter().position(|&b| b == end);
            len.is_some_and(|len| (from..from + len).contains(&at))
        })
    };
    if bundle[at].is_ascii_whitespace() || to.is_ascii_whitespace() {
        Some("whitespace between JSON tokens")
    } else if on(b"mediaType") {
        // A renamed key leaves the bundle without one, which sigstore-verify
        // reads as v0.1 (cosign v1 bundles carry none); this bundle holds
        // everything v0.1 asks for.
        Some("the mediaType key")
    } else if after(b"version=0.", b'"') && b"12".contains(&to) {
        // The same content is a valid v0.1 or v0.2 bundle.
        Some("the bundle version, lowered")
    } else if after(b"\\u2014 ", b' ') {
        // A checkpoint signature is found by its key hint, the first four
        // bytes of SHA-256 of the log's DER key, which does not commit to
        // the signer name on the line: sigstore-verify 0.15
        // (`signatures_by_key_hint`) and sigstore-python 4.5
        // (`SignedNote.verify`) match on the hint alone.
        Some("the checkpoint's signer name")
    } else if on(b"messageDigest") {
        // protobuf-specs: the message digest identifies the artifact, and
        // clients must not use it to verify the signature.
        Some("the messageDigest key")
    } else {
        None
    }
}

#[test]
fn every_signed_byte_changed_fails_to_verify() {
    let bundle = case("happy-path-v0.3", "bundle.sigstore.json");
    let (mut checked, mut verified) = (0, Vec::new());
    for at in 0..bundle.len() {
        for to in [bundle[at] ^ 1, b'#', b'0'] {
            if to == bundle[at] || unsigned_change(&bundle, at, to).is_some() {
                continue;
            }
            let mut changed = bundle.clone();
            changed[at] = to;
            checked += 1;
            if check(&changed).is_ok() {
                verified.push(format!("byte {at} to {:?}", to as char));
            }
        }
    }
    assert!(checked > 25_000, "only {checked} changes were checked");
    assert!(
        verified.is_empty(),
        "these changes still verify: {verified:?}"
    );
}

#[test]
fn the_unchanged_bundle_verifies() {
    check(&case("happy-path-v0.3", "bundle.sigstore.json")).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(check(&bytes).is_err());
        let _ = TrustedRoot::from_json(&String::from_utf8_lossy(&bytes));
        let _ = crypto::pem_blocks(&String::from_utf8_lossy(&bytes));
        let _ = crypto::cert_facts(&bytes);
    }

    #[test]
    fn a_bundle_changed_in_one_byte_does_not_verify(at in any::<prop::sample::Index>(), to in any::<u8>()) {
        let mut bundle = case("happy-path-v0.3", "bundle.sigstore.json");
        let i = at.index(bundle.len());
        prop_assume!(bundle[i] != to);
        prop_assume!(unsigned_change(&bundle, i, to).is_none());
        bundle[i] = to;
        prop_assert!(check(&bundle).is_err(), "byte {} changed to {:?} still verifies", i, to as char);
    }

    #[test]
    fn a_truncated_bundle_or_root_is_refused(cut in 0usize..4000) {
        let bundle = case("rekor2-happy-path", "bundle.sigstore.json");
        let cut = cut.min(bundle.len().saturating_sub(1));
        prop_assert!(check(&bundle[..cut]).is_err());
        let root = case("rekor2-happy-path", "trusted_root.json");
        let cut = cut.min(root.len().saturating_sub(1));
        prop_assert!(TrustedRoot::from_json(&String::from_utf8_lossy(&root[..cut])).is_err());
    }

    #[test]
    fn a_changed_signature_does_not_verify(at in 0usize..60, to in "[A-Za-z0-9+/]") {
        let text = String::from_utf8(case("happy-path-v0.3", "bundle.sigstore.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sig = value["messageSignature"]["signature"].as_str().unwrap().to_owned();
        let at = at.min(sig.len() - 4);
        prop_assume!(sig[at..=at] != to);
        let changed = format!("{}{}{}", &sig[..at], to, &sig[at + 1..]);
        let tampered = text.replace(&sig, &changed);
        prop_assert!(check(tampered.as_bytes()).is_err());
    }
}
