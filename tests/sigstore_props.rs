//! Property tests of the Sigstore parsers: whatever bytes arrive as a bundle,
//! a trusted root, a PEM or a certificate, the verifier answers with a
//! verdict or an error, never a panic; a bundle changed anywhere no longer
//! verifies.

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
        // Whitespace between JSON tokens carries nothing signed.
        prop_assume!(!bundle[i].is_ascii_whitespace() && !to.is_ascii_whitespace());
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
