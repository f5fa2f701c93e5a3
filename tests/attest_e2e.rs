//! End to end: provenance attestations. Two images are promoted from a
//! source registry to three destinations with keyless signing against the
//! offline sigstore services; each promoted digest gets a promotion record
//! and SLSA provenance v1, checked here as a consumer would: present and
//! byte-identical in every destination, accepted by sigstore-python
//! (offline, custom trusted root, identity and issuer) and by the in-toto
//! framework's own bindings (in-toto-attestation), accepted by `promoter
//! verify --attestations`, rejected once tampered with, repaired by
//! `--fix`, and written once: a second run writes nothing. Then the other
//! direction: SLSA provenance on staging images is verified before
//! promotion (`--allowed-builder`, `--require-provenance`).

#[path = "support/sigstore/mod.rs"]
mod sigstore;
mod support;
#[path = "support/sigstore/world.rs"]
mod world;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Reference};
use sigstore::{IDENTITY, ISSUER, REQUEST_TOKEN};
use support::promote::line_of;
use world::{World, bundle_of, repo, sigstore_python, statement_of, tamper_bundle, text};

const RECORD: &str = "urn:promoter:attestation:promotion:v1";
const SLSA: &str = "https://slsa.dev/provenance/v1";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const RUN_URL: &str = "https://github.com/example/promotions/actions/runs/42/attempts/2";

/// The environment of a GitHub Actions run of the example repository.
fn actions_env(world: &World) -> Vec<(&'static str, String)> {
    vec![
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            world.sigstore.token_request_url(),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_owned()),
        ("GITHUB_SHA", COMMIT.to_owned()),
        ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
        ("GITHUB_REPOSITORY", "example/promotions".to_owned()),
        ("GITHUB_RUN_ID", "42".to_owned()),
        ("GITHUB_RUN_ATTEMPT", "2".to_owned()),
    ]
}

/// `validate_statement.py` (in-toto-attestation) on a bundle file.
fn in_toto_validate(bundle: &std::path::Path) -> Output {
    let python = sigstore::dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/run",
        python.display()
    );
    Command::new(python)
        .arg(sigstore::dir().join("validate_statement.py"))
        .arg(bundle)
        .output()
        .expect("run validate_statement.py")
}

/// The descriptors of every bundle referrer of every promoted digest.
async fn referrers(world: &World) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (reg, repo, digest) in world.places() {
        let mut list: Vec<String> = reg
            .list_referrers(&repo, &digest)
            .await
            .unwrap()
            .iter()
            .map(|d| d.digest.to_string())
            .collect();
        list.sort();
        out.push(list);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_promoted_digest_is_attested_verifiably_once() {
    let world = World::new(&[]).await;
    let out = world.run_with(&["--format", "json"], &actions_env(&world));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("wrote 4 attestation(s)"),
        "{}",
        text(&out)
    );
    // The JSON report counts them too.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&stdout[stdout.find("\n{").unwrap()..]).unwrap();
    assert_eq!(report["signing"]["attested"], 4, "{report}");
    assert_eq!(report["signing"]["rekor"], 2 + 2 + 4, "{report}");
    // Per digest: one dsse entry for the signature bundle, one per
    // attestation; one certificate for the whole run.
    let stats = world.sigstore.stats();
    assert_eq!((stats.fulcio, stats.dsse), (1, 2 + 2 * 2), "{stats:?}");

    let yaml = std::fs::read_to_string(world.manifest()).unwrap();
    let destinations = world.destination_names();
    let dir = tempfile::tempdir().unwrap();
    let mut first_copy: BTreeMap<(Digest, &str), Vec<u8>> = BTreeMap::new();
    for (i, (reg, repo, digest)) in world.places().into_iter().enumerate() {
        let name = world
            .digests
            .iter()
            .find(|(_, d)| *d == digest)
            .map(|(n, _)| n.clone())
            .unwrap();
        for predicate in [RECORD, SLSA] {
            let bundle = bundle_of(reg.as_ref(), &repo, &digest, predicate).await;
            // Replicated byte for byte.
            let first = first_copy
                .entry((digest, predicate))
                .or_insert_with(|| bundle.clone());
            assert_eq!(*first, bundle, "{repo}: not byte for byte");
            let statement = statement_of(&bundle);
            assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
            assert_eq!(statement["predicateType"], predicate);
            assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.hex());
            assert_eq!(
                statement["subject"][0]["name"],
                format!("registry.example/{name}")
            );
            let p = &statement["predicate"];
            let source = format!("{}/staging/{name}@{digest}", world.source);
            let manifest = if predicate == RECORD {
                assert_eq!(p["digest"], digest.to_string());
                assert_eq!(p["source"], source);
                let listed: Vec<&str> = p["destinations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["reference"].as_str().unwrap())
                    .collect();
                let wanted: Vec<String> = destinations
                    .iter()
                    .map(|d| format!("{d}/{name}@{digest}"))
                    .collect();
                assert_eq!(listed, wanted);
                assert_eq!(p["destinations"][0]["tags"], serde_json::json!(["v1"]));
                assert_eq!(p["promoter"]["version"], env!("CARGO_PKG_VERSION"));
                assert_eq!(p["workflow"]["builderId"], IDENTITY);
                assert_eq!(p["workflow"]["runUrl"], RUN_URL);
                assert!(p["promotedOn"].as_str().unwrap().ends_with('Z'), "{p}");
                &p["manifest"]
            } else {
                let definition = &p["buildDefinition"];
                assert_eq!(
                    definition["buildType"],
                    "urn:promoter:buildtype:promotion:v1"
                );
                assert_eq!(definition["externalParameters"]["source"], source);
                let dependency = &definition["resolvedDependencies"][0];
                assert_eq!(dependency["digest"]["sha256"], digest.hex());
                assert_eq!(p["runDetails"]["builder"]["id"], IDENTITY);
                assert_eq!(p["runDetails"]["metadata"]["invocationId"], RUN_URL);
                &definition["externalParameters"]["manifest"]
            };
            assert_eq!(manifest["path"], world.manifest());
            assert_eq!(manifest["line"], line_of(&yaml, &digest.to_string()));
            assert_eq!(manifest["commit"], COMMIT);
            assert_eq!(
                manifest["repository"],
                "https://github.com/example/promotions"
            );

            // Independent checks: the in-toto framework's bindings accept
            // the statement; sigstore-python verifies the DSSE bundle.
            let path = dir.path().join(format!("{i}-{}.json", predicate.len()));
            std::fs::write(&path, &bundle).unwrap();
            let out = in_toto_validate(&path);
            assert!(out.status.success(), "{repo}: {}", text(&out));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), predicate);
            let out = sigstore_python(&world, &path, &digest, IDENTITY, ISSUER);
            assert!(
                out.status.success(),
                "sigstore-python rejected the {predicate} in {repo}: {}",
                text(&out)
            );
            if i == 0 {
                let out = sigstore_python(&world, &path, &digest, "https://github.com/x", ISSUER);
                assert!(!out.status.success(), "wrong identity accepted");
                let other = world.digests.iter().find(|(_, d)| *d != digest).unwrap().1;
                let out = sigstore_python(&world, &path, &other, IDENTITY, ISSUER);
                assert!(!out.status.success(), "another digest accepted");
            }
        }
    }

    // Our verify: every destination carries both, for this identity only.
    let policy = [
        "--attestations",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let ok = world.verify(&policy);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("all 6 destination image(s) carry valid signatures and attestations"),
        "{}",
        text(&ok)
    );
    let bad = world.verify(&[
        "--attestations",
        "--certificate-identity",
        "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));

    // A tampered provenance (another builder written into the signed
    // statement) is rejected by us and by sigstore-python; --fix copies the
    // valid one over from another destination.
    let (reg, repo, digest) = world.places().pop().unwrap();
    tamper_bundle(
        reg.as_ref(),
        &repo,
        &digest,
        SLSA,
        IDENTITY,
        "https://github.com/evil/builder",
    )
    .await;
    let tampered = dir.path().join("tampered.json");
    std::fs::write(
        &tampered,
        bundle_of(reg.as_ref(), &repo, &digest, SLSA).await,
    )
    .unwrap();
    let out = sigstore_python(&world, &tampered, &digest, IDENTITY, ISSUER);
    assert!(!out.status.success(), "tampered accepted: {}", text(&out));
    let bad = world.verify(&policy);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let table = text(&bad);
    let row = table
        .lines()
        .find(|l| l.contains(&format!("{}/{repo}", reg.name())))
        .unwrap_or_else(|| panic!("no row for {repo}:\n{table}"));
    assert!(
        row.contains("invalid: the signature does not verify"),
        "{table}"
    );
    assert!(
        table.contains("1 of 6 destination image(s) lack"),
        "{table}"
    );
    let mut fix = policy.to_vec();
    fix.push("--fix");
    let fixed = world.verify(&fix);
    assert!(fixed.status.success(), "{}", text(&fixed));
    assert!(text(&fixed).contains("fixed:"), "{}", text(&fixed));

    // A second run, with a new tag so that every image has work: the
    // signatures and attestations are there, so nothing is signed, logged
    // or written besides the tags.
    let before_stats = world.sigstore.stats();
    let before = referrers(&world).await;
    let yaml = yaml.replace("[\"v1\"]", "[\"v1\", \"v1.0\"]");
    std::fs::write(world.manifest(), &yaml).unwrap();
    let again = world.run_with(&[], &actions_env(&world));
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("signed 0 digest(s), wrote 0 attestation(s)"),
        "{}",
        text(&again)
    );
    let after_stats = world.sigstore.stats();
    assert_eq!(
        (after_stats.fulcio, after_stats.rekor),
        (before_stats.fulcio, before_stats.rekor),
        "{}",
        text(&again)
    );
    assert_eq!(referrers(&world).await, before);
    for (reg, repo, digest) in world.places() {
        let tag = Reference::tag("v1.0").unwrap();
        let head = reg.head_manifest(&repo, &tag).await.unwrap();
        assert_eq!(head.map(|d| d.digest), Some(digest), "{repo}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_provenance_is_verified_before_promotion() {
    let world = World::new(&[]).await;
    let env = actions_env(&world);
    // Give the staging images SLSA provenance: promote them within the
    // source registry (staging -> built), attested.
    let built = format!("{}/built", world.source);
    let pre = world.manifest_for(
        &format!("{}/staging", world.source),
        std::slice::from_ref(&built),
    );
    let out = world.run_manifest(pre.path().to_str().unwrap(), &[], &env);
    assert!(out.status.success(), "{}", text(&out));
    // Break the provenance of the second image there.
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let source = registry::open(&world.source, &client).unwrap();
    let (bad_name, bad_digest) = world.digests[1].clone();
    tamper_bundle(
        source.as_ref(),
        &repo(&format!("built/{bad_name}")),
        &bad_digest,
        SLSA,
        "urn:promoter:buildtype:promotion:v1",
        "https://evil.example/build/v1",
    )
    .await;

    let destinations = world.destination_names();
    let main = world.manifest_for(&built, &destinations);
    let main = main.path().to_str().unwrap();
    // A builder not allowed: both images stop before anything is written.
    let out = world.run_manifest(main, &["--allowed-builder", "https://ci.example/*"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(text(&out).matches("P105").count(), 2, "{}", text(&out));
    assert!(
        text(&out).contains(&format!("builder {IDENTITY} is not allowed")),
        "{}",
        text(&out)
    );
    for (_, digest) in &world.digests {
        assert_eq!(promoted(&world, *digest).await, vec![false; 3]);
    }

    // The builder allowed: the good image goes, with its staging provenance
    // alongside ours; the tampered one stops, named at its manifest line.
    let out = world.run_manifest(
        main,
        &["--allowed-builder", "https://github.com/example/*"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert_eq!(all.matches("P105").count(), 1, "{all}");
    assert!(all.contains("SLSA provenance does not verify"), "{all}");
    assert!(all.contains(&bad_digest.to_string()), "{all}");
    let good = world.digests[0].1;
    assert_eq!(promoted(&world, good).await, vec![true; 3]);
    assert_eq!(promoted(&world, bad_digest).await, vec![false; 3]);
    for (reg, repo, digest) in world.places() {
        if digest != good {
            continue;
        }
        let slsa = reg
            .list_referrers(&repo, &digest)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| {
                d.annotations
                    .as_ref()
                    .and_then(|a| a.get("dev.sigstore.bundle.predicateType"))
                    .is_some_and(|p| p == SLSA)
            })
            .count();
        assert_eq!(slsa, 2, "staging's and ours in {repo}");
    }
    // Ours verifies in every destination although staging's is there too.
    let ok = world.verify(&[
        "--attestations",
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    let ok_text = text(&ok);
    assert_eq!(ok.status.code(), Some(1), "{ok_text}");
    assert!(
        ok_text.contains("3 of 6 destination image(s) lack"),
        "only the stopped image's three: {ok_text}"
    );

    // --require-provenance: staging images without any are refused.
    let unattested = world.manifest_for(
        &format!("{}/staging", world.source),
        &[format!("{}/other", world.destinations[0].0)],
    );
    let out = world.run_manifest(
        unattested.path().to_str().unwrap(),
        &["--require-provenance", "--sign=false"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert_eq!(
        all.matches("carries no SLSA provenance v1").count(),
        2,
        "{all}"
    );
    let dest = registry::open(&world.destinations[0].0, &client).unwrap();
    for (name, digest) in &world.digests {
        let head = dest
            .head_manifest(&repo(&format!("other/{name}")), &Reference::Digest(*digest))
            .await
            .unwrap();
        assert!(head.is_none(), "{name} was promoted");
    }
}

/// Whether `digest` is in each destination.
async fn promoted(world: &World, digest: Digest) -> Vec<bool> {
    let mut found = Vec::new();
    for (reg, repo, d) in world.places() {
        if d == digest {
            let head = reg
                .head_manifest(&repo, &Reference::Digest(d))
                .await
                .unwrap();
            found.push(head.is_some());
        }
    }
    found
}

/// Copy the directory tree `from` to `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn key_signed_attestations_between_image_layouts() {
    // The quickstart's layouts, signed with a key (no Fulcio, no Rekor): the
    // attestations name the layout places as `verify` names them.
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let quickstart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    copy_tree(&quickstart.join("staging"), &root.join("staging"));
    let yaml = std::fs::read_to_string(quickstart.join("promoter.yaml"))
        .unwrap()
        .replace(
            "oci:examples/quickstart/",
            &format!("oci:{}/", root.display()),
        );
    let manifest = root.join("promoter.yaml");
    std::fs::write(&manifest, &yaml).unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    let (private, public) = (root.join("key.pem"), root.join("key.pub"));
    std::fs::write(
        &private,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(&public, public_pem).unwrap();
    let manifest = manifest.to_str().unwrap();
    let run = || {
        world::promoter(
            &[
                "run",
                "--manifest",
                manifest,
                "--confirm",
                "--signing-key",
                private.to_str().unwrap(),
            ],
            &[],
        )
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("signed 2 digest(s), wrote 4 attestation(s)"),
        "{}",
        text(&out)
    );
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--manifest",
            manifest,
            "--public-key",
            public.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        world::promoter(&args, &[])
    };
    let ok = verify(&["--attestations"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("all 4 destination image(s) carry valid signatures and attestations"),
        "{}",
        text(&ok)
    );
    // Another key: every attestation is a gap.
    let stranger = p256::ecdsa::SigningKey::from_slice(&[10u8; 32]).unwrap();
    let stranger_pem = stranger
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(&public, stranger_pem).unwrap();
    let bad = verify(&["--attestations"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("4 of 4"), "{}", text(&bad));
    // The same verdict as JSON: every gap, each format's status.
    let json = verify(&["--attestations", "--format", "json"]);
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON object");
    assert_eq!(report["schema_version"], 1, "{report}");
    assert_eq!(report["total"], 4, "{report}");
    let gaps = report["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 4, "{report}");
    for gap in gaps {
        assert!(gap["digest"].as_str().unwrap().starts_with("sha256:"), "{gap}");
        assert_eq!(gap["legacy"]["status"], "invalid", "{gap}");
        assert!(gap["legacy"]["reason"].is_string(), "{gap}");
        assert_eq!(gap["provenance"]["status"], "invalid", "{gap}");
    }
    // Nothing left to do: a second run signs and attests nothing.
    let again = run();
    assert!(again.status.success(), "{}", text(&again));
    assert!(!text(&again).contains("attestation(s)"), "{}", text(&again));
}
