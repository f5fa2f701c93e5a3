//! End to end: promote two images from a source registry to three
//! destinations with keyless signing against the offline sigstore services
//! (tests/support/sigstore), then check the signatures three ways: our own
//! `promoter verify`, sigstore-python as a separate process, and the
//! negative cases (tampered payload, wrong identity, wrong issuer). A second
//! run signs and pushes nothing.

#[path = "support/sigstore/mod.rs"]
mod sigstore;
mod support;
#[path = "support/sigstore/world.rs"]
mod world;

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{self, Digest, Reference, Registry, RepoName};
use sigstore::{IDENTITY, ISSUER};
use world::{
    SIGN_PREDICATE, World, base64_decode, base64_encode, bundle_of, promoter, read_blob, repo,
    sigstore_python, text,
};

#[tokio::test(flavor = "multi_thread")]
async fn keyless_sign_replicate_and_verify_three_ways() {
    // The token endpoint fails once (retried) and issues `aud` as an array.
    let world = World::new(&[("OIDC_FAILURES", "1"), ("OIDC_AUD_ARRAY", "1")]).await;

    let out = world.run();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The token is masked before anything else prints it.
    let mask = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("::add-mask::")
                .filter(|t| t.starts_with("eyJ"))
        })
        .unwrap_or_else(|| panic!("no ::add-mask:: of the token\n{}", text(&out)));
    let all = text(&out);
    assert_eq!(all.matches(mask).count(), 1, "the token leaked:\n{all}");

    // One certificate per run; per digest one hashedrekord (legacy) and one
    // dsse (bundle) entry, plus one dsse entry for each of its two
    // attestations (tests/attest_e2e.rs), whatever the number of
    // destinations.
    let stats = world.sigstore.stats();
    assert_eq!(stats.fulcio, 1, "{stats:?}");
    assert_eq!(stats.hashedrekord, 2, "{stats:?}");
    assert_eq!(stats.dsse, 2 + 2 * 2, "{stats:?}");
    assert_eq!(stats.oidc, 2, "one failure, one retry: {stats:?}");

    // Every destination holds byte-identical signature artifacts.
    let mut sig_digests = std::collections::BTreeMap::new();
    for (reg, repo, digest) in world.places() {
        let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
        let sig = reg.get_manifest(&repo, &tag).await.unwrap();
        let m: serde_json::Value = serde_json::from_slice(sig.bytes()).unwrap();
        let layer = &m["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        for key in [
            "dev.cosignproject.cosign/signature",
            "dev.sigstore.cosign/certificate",
            "dev.sigstore.cosign/chain",
            "dev.sigstore.cosign/bundle",
        ] {
            assert!(layer["annotations"][key].is_string(), "{key} missing: {m}");
        }
        let payload: Digest = layer["digest"].as_str().unwrap().parse().unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&read_blob(reg.as_ref(), &repo, &payload).await).unwrap();
        assert_eq!(
            payload["critical"]["image"]["docker-manifest-digest"],
            digest.to_string()
        );
        assert_eq!(
            payload["critical"]["type"],
            "cosign container image signature"
        );
        assert!(
            payload["critical"]["identity"]["docker-reference"]
                .as_str()
                .unwrap()
                .starts_with("registry.example/"),
            "{payload}"
        );
        assert_eq!(
            payload["optional"]["manifest-commit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        let previous = sig_digests.insert((digest, "legacy"), sig.digest());
        assert!(
            previous.is_none_or(|p| p == sig.digest()),
            "not byte for byte"
        );
        let bundle = bundle_of(reg.as_ref(), &repo, &digest, SIGN_PREDICATE).await;
        let previous = sig_digests.insert((digest, "bundle"), Digest::of(&bundle));
        assert!(
            previous.is_none_or(|p| p == Digest::of(&bundle)),
            "not byte for byte"
        );
    }

    // 1. Our verify: exact and regexp identity pass.
    let ok = world.verify(&[
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    let ok = world.verify(&[
        "--certificate-identity-regexp",
        "https://github.com/example/promotions/.*",
        "--certificate-oidc-issuer-regexp",
        "https://token\\.actions\\.githubusercontent\\.com",
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    // Wrong identity, wrong issuer: exit 1 with a table.
    let bad = world.verify(&[
        "--certificate-identity",
        "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
        "--certificate-oidc-issuer",
        ISSUER,
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("does not match"), "{}", text(&bad));
    let bad = world.verify(&[
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        "https://accounts.google.com",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));

    // 2. sigstore-python, an independent verifier, accepts every bundle,
    // and rejects a wrong identity, a wrong issuer, another digest and a
    // tampered payload.
    let dir = tempfile::tempdir().unwrap();
    for (i, (reg, repo, digest)) in world.places().into_iter().enumerate() {
        let bundle = bundle_of(reg.as_ref(), &repo, &digest, SIGN_PREDICATE).await;
        let path = python_accepts(&world, dir.path(), i, &repo, &digest, &bundle);
        if i > 0 {
            continue;
        }
        let out = sigstore_python(&world, &path, &digest, "https://github.com/x", ISSUER);
        assert!(!out.status.success(), "{}", text(&out));
        let out = sigstore_python(
            &world,
            &path,
            &digest,
            IDENTITY,
            "https://accounts.google.com",
        );
        assert!(!out.status.success(), "{}", text(&out));
        let other = world.digests.iter().find(|(_, d)| *d != digest).unwrap().1;
        let out = sigstore_python(&world, &path, &other, IDENTITY, ISSUER);
        assert!(!out.status.success(), "{}", text(&out));
        let mut b: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
        let payload = b["dsseEnvelope"]["payload"].as_str().unwrap().to_owned();
        let statement = String::from_utf8(base64_decode(&payload))
            .unwrap()
            .replace("registry.example", "registry.evil");
        b["dsseEnvelope"]["payload"] = base64_encode(statement.as_bytes()).into();
        let tampered = dir.path().join("tampered.json");
        std::fs::write(&tampered, b.to_string()).unwrap();
        let out = sigstore_python(&world, &tampered, &digest, IDENTITY, ISSUER);
        assert!(
            !out.status.success(),
            "tampered bundle accepted: {}",
            text(&out)
        );
    }

    // 3. sigstore-js (@sigstore/verify), a third implementation: every
    // bundle, and every legacy `.sig` layer turned into a v0.1
    // message-signature bundle (certificate, signature, Rekor entry with its
    // SET, all from the layer's annotations) over the payload.
    let root = world.sigstore.trusted_root();
    for (i, (reg, repo, digest)) in world.places().into_iter().enumerate() {
        let bundle = dir.path().join(format!("bundle-{i}.json"));
        let out = sigstore::sigstore_js(&root, &bundle, IDENTITY, ISSUER, None);
        assert!(
            out.status.success(),
            "sigstore-js rejected {repo}: {}",
            text(&out)
        );
        let (legacy, payload) = legacy_as_bundle(reg.as_ref(), &repo, &digest).await;
        let legacy_path = dir.path().join(format!("legacy-{i}.json"));
        let payload_path = dir.path().join(format!("payload-{i}.json"));
        std::fs::write(&legacy_path, legacy.to_string()).unwrap();
        std::fs::write(&payload_path, &payload).unwrap();
        let out = sigstore::sigstore_js(&root, &legacy_path, IDENTITY, ISSUER, Some(&payload_path));
        assert!(
            out.status.success(),
            "sigstore-js rejected the legacy signature in {repo}: {}",
            text(&out)
        );
        if i > 0 {
            continue;
        }
        let out = sigstore::sigstore_js(
            &root,
            &legacy_path,
            "https://github.com/x",
            ISSUER,
            Some(&payload_path),
        );
        assert!(!out.status.success(), "{}", text(&out));
        let out = sigstore::sigstore_js(
            &root,
            &legacy_path,
            IDENTITY,
            "https://accounts.google.com",
            Some(&payload_path),
        );
        assert!(!out.status.success(), "{}", text(&out));
        let evil = dir.path().join("evil-payload.json");
        std::fs::write(
            &evil,
            String::from_utf8(payload)
                .unwrap()
                .replace("registry.example", "registry.evil"),
        )
        .unwrap();
        let out = sigstore::sigstore_js(&root, &legacy_path, IDENTITY, ISSUER, Some(&evil));
        assert!(
            !out.status.success(),
            "tampered payload accepted: {}",
            text(&out)
        );
        let out = sigstore::sigstore_js(
            &root,
            &dir.path().join("tampered.json"),
            IDENTITY,
            ISSUER,
            None,
        );
        assert!(
            !out.status.success(),
            "tampered bundle accepted: {}",
            text(&out)
        );
    }

    // 4. A tampered legacy payload in one destination is a gap; --fix
    // copies a valid signature over (keeping the bad layer: never drop).
    let (reg, repo, digest) = world.places().pop().unwrap();
    let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
    let evil_digest = tamper_legacy(reg.as_ref(), &repo, &digest).await;
    let policy = [
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let bad = world.verify(&policy);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        text(&bad).contains("invalid: the signature does not verify"),
        "{}",
        text(&bad)
    );
    assert!(
        text(&bad).contains(&format!("{}/{repo}", reg.name())),
        "{}",
        text(&bad)
    );
    let mut fix = policy.to_vec();
    fix.push("--fix");
    let fixed = world.verify(&fix);
    assert!(fixed.status.success(), "{}", text(&fixed));
    let after = reg.get_manifest(&repo, &tag).await.unwrap();
    let after: serde_json::Value = serde_json::from_slice(after.bytes()).unwrap();
    assert_eq!(after["layers"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after["layers"][0]["digest"], evil_digest.to_string());

    // A second run: nothing to promote, nothing signed, nothing pushed.
    let before = world.sigstore.stats();
    let mut tags_before = Vec::new();
    for (reg, repo, _) in world.places() {
        tags_before.push(reg.list_tags(&repo).await.unwrap());
    }
    let again = world.run();
    assert!(again.status.success(), "{}", text(&again));
    let after = world.sigstore.stats();
    assert_eq!(
        (after.fulcio, after.rekor),
        (before.fulcio, before.rekor),
        "{}",
        text(&again)
    );
    let mut tags_after = Vec::new();
    for (reg, repo, _) in world.places() {
        tags_after.push(reg.list_tags(&repo).await.unwrap());
    }
    assert_eq!(tags_before, tags_after);
}

/// Replace the payload of the first `.sig` layer of `digest` by an altered
/// one (annotations kept). Returns the new payload's digest.
async fn tamper_legacy(reg: &dyn Registry, repo: &RepoName, digest: &Digest) -> Digest {
    let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
    let sig = reg.get_manifest(repo, &tag).await.unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(sig.bytes()).unwrap();
    let payload: Digest = m["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let evil = String::from_utf8(read_blob(reg, repo, &payload).await)
        .unwrap()
        .replace("registry.example", "registry.evil")
        .into_bytes();
    let evil_digest = Digest::of(&evil);
    reg.push_blob(
        repo,
        &evil_digest,
        evil.len() as u64,
        registry::stream::stream_from_bytes(evil.into()),
    )
    .await
    .unwrap();
    m["layers"][0]["digest"] = evil_digest.to_string().into();
    let tampered = registry::Manifest::new(
        Some("application/vnd.oci.image.manifest.v1+json"),
        m.to_string().into(),
    )
    .unwrap();
    reg.push_manifest(repo, &tag, &tampered).await.unwrap();
    evil_digest
}

/// The first legacy `.sig` layer of `digest` as a sigstore bundle v0.1
/// (message signature), built from its annotations alone, and its payload.
async fn legacy_as_bundle(
    reg: &dyn Registry,
    repo: &RepoName,
    digest: &Digest,
) -> (serde_json::Value, Vec<u8>) {
    let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
    let sig = reg.get_manifest(repo, &tag).await.unwrap();
    let m: serde_json::Value = serde_json::from_slice(sig.bytes()).unwrap();
    let layer = &m["layers"][0];
    let payload_digest: Digest = layer["digest"].as_str().unwrap().parse().unwrap();
    let payload = read_blob(reg, repo, &payload_digest).await;
    let a = &layer["annotations"];
    let cert_pem = a["dev.sigstore.cosign/certificate"].as_str().unwrap();
    let cert_b64: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let rekor: serde_json::Value =
        serde_json::from_str(a["dev.sigstore.cosign/bundle"].as_str().unwrap()).unwrap();
    let p = &rekor["Payload"];
    let log_id = hex_decode(p["logID"].as_str().unwrap());
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": cert_b64}]},
            "tlogEntries": [{
                "logIndex": p["logIndex"].to_string(),
                "logId": {"keyId": base64_encode(&log_id)},
                "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                "integratedTime": p["integratedTime"].to_string(),
                "inclusionPromise": {"signedEntryTimestamp": rekor["SignedEntryTimestamp"]},
                "canonicalizedBody": p["body"],
            }],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": base64_encode(Digest::of(&payload).as_bytes())},
            "signature": a["dev.cosignproject.cosign/signature"],
        },
    });
    (bundle, payload)
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_identity_promotes_unsigned_with_a_note() {
    let world = World::new(&[]).await;
    let out = world.run_with(&[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("promoted unsigned"), "{}", text(&out));
    assert_eq!(world.signed_everywhere().await, vec![false; 6]);
    assert_eq!(world.sigstore.stats().fulcio, 0);
    // --sign without an identity is an error, not a silent skip.
    let world = World::new(&[]).await;
    let out = world.run_with(&["--sign"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("--sign needs an identity"),
        "{}",
        text(&out)
    );
    // --sign=false: off, even with an identity, and quiet about it.
    let world = World::new(&[]).await;
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), world.sigstore.token()).unwrap();
    let out = world.run_with(
        &[
            "--sign=false",
            "--identity-token-file",
            token.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("promoted unsigned"), "{}", text(&out));
    assert_eq!(world.signed_everywhere().await, vec![false; 6]);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_file_with_string_audience_and_legacy_format_only() {
    let world = World::new(&[]).await;
    let token = world.sigstore.token();
    let claims = token.split('.').nth(1).unwrap();
    assert!(
        claims.contains('-') || claims.contains('_'),
        "want URL-safe characters in {claims}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{token}\n")).unwrap();
    let out = world.run_with(
        &[
            "--identity-token-file",
            file.path().to_str().unwrap(),
            "--signature-format",
            "legacy",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains(&token),
        "the token leaked:\n{}",
        text(&out)
    );
    // No signature bundles; the attestations (two per digest) are bundles
    // whatever the signature format.
    let stats = world.sigstore.stats();
    assert_eq!(
        (stats.fulcio, stats.hashedrekord, stats.dsse),
        (1, 2, 4),
        "{stats:?}"
    );
    assert_eq!(world.signed_everywhere().await, vec![true; 6]);
    let policy = [
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
    ];
    let mut legacy = policy.to_vec();
    legacy.extend(["--signature-format", "legacy"]);
    let ok = world.verify(&legacy);
    assert!(ok.status.success(), "{}", text(&ok));
    // Asking for bundles too: each destination image is a gap.
    let gaps = world.verify(&policy);
    assert_eq!(gaps.status.code(), Some(1), "{}", text(&gaps));
    assert!(text(&gaps).contains("6 of 6"), "{}", text(&gaps));
    assert!(text(&gaps).contains("missing"), "{}", text(&gaps));
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_key_for_air_gapped_use() {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let world = World::new(&[]).await;
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("key.pem");
    let public = dir.path().join("key.pub");
    std::fs::write(
        &private,
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    std::fs::write(
        &public,
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let out = promoter(
        &[
            "run",
            "--manifest",
            world.manifest(),
            "--confirm",
            "--signing-key",
            private.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    // No Fulcio, no Rekor: nothing left the machine.
    let stats = world.sigstore.stats();
    assert_eq!((stats.fulcio, stats.rekor), (0, 0), "{stats:?}");
    assert_eq!(world.signed_everywhere().await, vec![true; 6]);
    let ok = world.verify(&["--public-key", public.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", text(&ok));
    let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    std::fs::write(
        &public,
        other
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let bad = world.verify(&["--public-key", public.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_signatures_are_checked_before_the_image_is_promoted() {
    let world = World::new(&[]).await;
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), world.sigstore.token()).unwrap();
    let token_args = ["--identity-token-file", token.path().to_str().unwrap()];
    let run = |manifest: &str, extra: &[&str]| {
        let mut args = token_args.to_vec();
        args.extend_from_slice(extra);
        world.run_manifest(manifest, &args, &[])
    };
    // Sign the staging images: promote staging -> signed in the source
    // registry, with signing.
    let pre = world.manifest_for(
        &format!("{}/staging", world.source),
        &[format!("{}/signed", world.source)],
    );
    let out = run(pre.path().to_str().unwrap(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    // Break the legacy signature of the second image there.
    let client = HttpClient::new(HttpOptions::default()).unwrap();
    let source = registry::open(&world.source, &client).unwrap();
    let (bad_name, bad_digest) = world.digests[1].clone();
    tamper_legacy(
        source.as_ref(),
        &repo(&format!("signed/{bad_name}")),
        &bad_digest,
    )
    .await;
    // Promote from there with a source policy: the good image travels with
    // its signatures, the tampered one is stopped.
    let destinations = world.destination_names();
    let main = world.manifest_for(&format!("{}/signed", world.source), &destinations);
    let out = run(
        main.path().to_str().unwrap(),
        &[
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "--require-signed-source",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("staging image's legacy signature is invalid"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("P104"), "{}", text(&out));
    for (reg, repo, digest) in world.places() {
        let tag = Reference::tag(&format!("sha256-{}.sig", digest.hex())).unwrap();
        let signed = reg.head_manifest(&repo, &tag).await.unwrap().is_some();
        assert_eq!(signed, digest != bad_digest, "{repo}");
        // The stopped image is not promoted at all: nothing of it is written.
        let copied = reg
            .head_manifest(&repo, &Reference::from(digest))
            .await
            .unwrap()
            .is_some();
        assert_eq!(copied, digest != bad_digest, "{repo}");
    }
}

/// Writes `bundle` (the `i`-th, of `repo@digest`) into `dir` and asserts
/// that sigstore-python accepts it for the run's identity; its path.
fn python_accepts(
    world: &World,
    dir: &std::path::Path,
    i: usize,
    repo: &RepoName,
    digest: &Digest,
    bundle: &[u8],
) -> std::path::PathBuf {
    let path = dir.join(format!("bundle-{i}.json"));
    std::fs::write(&path, bundle).unwrap();
    let out = sigstore_python(world, &path, digest, IDENTITY, ISSUER);
    assert!(
        out.status.success(),
        "sigstore-python rejected {repo}: {}",
        text(&out)
    );
    path
}

/// A signing config in place of `--fulcio-url` and `--rekor-url`: the run
/// signs with the Fulcio and the Rekor v1 log it selects (a Rekor v2 log,
/// a retired log and a not-yet-valid CA are passed over), timestamps each
/// bundle at the timestamp authority it selects (a retired one is passed
/// over), and a malformed config stops the run naming the file and the
/// field.
#[tokio::test(flavor = "multi_thread")]
async fn a_signing_config_selects_fulcio_and_rekor() {
    let world = World::new(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let service = |url: &str, version: u32, start: &str, end: Option<&str>| {
        let mut valid_for = serde_json::json!({ "start": start });
        if let Some(end) = end {
            valid_for["end"] = end.into();
        }
        serde_json::json!({
            "url": url, "majorApiVersion": version, "validFor": valid_for, "operator": "test",
        })
    };
    let nowhere = "http://127.0.0.1:9";
    let config = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [
            service(nowhere, 1, "2999-01-01T00:00:00Z", None),
            service(&world.sigstore.url, 1, "2023-01-01T00:00:00Z", None),
        ],
        "rekorTlogUrls": [
            service(nowhere, 2, "2025-01-01T00:00:00Z", None),
            service(nowhere, 1, "2020-01-01T00:00:00Z", Some("2022-01-01T00:00:00Z")),
            service(&world.sigstore.url, 1, "2023-01-01T00:00:00Z", None),
        ],
        "rekorTlogConfig": { "selector": "ANY" },
        "tsaUrls": [
            service(&format!("{nowhere}/api/v1/timestamp"), 1, "2020-01-01T00:00:00Z", Some("2022-01-01T00:00:00Z")),
            service(&format!("{}/api/v1/timestamp", world.sigstore.url), 1, "2023-01-01T00:00:00Z", None),
        ],
        "tsaConfig": { "selector": "ANY" },
    });
    let path = dir.path().join("signing_config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let out = world.run_with_signing_config(&path, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stats = world.sigstore.stats();
    assert_eq!(stats.fulcio, 1, "{stats:?}");
    assert!(stats.hashedrekord > 0, "{stats:?}");
    assert_eq!(world.signed_everywhere().await, vec![true; 6]);
    // One timestamp per bundle made (a signature and two attestations per
    // digest), carried by every copy, and checked by sigstore-python and by
    // `verify` against the trusted root's timestamp authority.
    assert_eq!(stats.tsa, stats.dsse, "{stats:?}");
    assert!(stats.tsa >= 3, "{stats:?}");
    let dir = tempfile::tempdir().unwrap();
    for (i, (reg, repo, digest)) in world.places().into_iter().enumerate() {
        let bundle = bundle_of(reg.as_ref(), &repo, &digest, SIGN_PREDICATE).await;
        let value: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
        let timestamps = &value["verificationMaterial"]["timestampVerificationData"];
        assert_eq!(
            timestamps["rfc3161Timestamps"].as_array().map(Vec::len),
            Some(1),
            "{value}"
        );
        python_accepts(&world, dir.path(), i, &repo, &digest, &bundle);
    }
    let verified = world.verify(&[
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--attestations",
    ]);
    assert!(verified.status.success(), "{}", text(&verified));

    // Only a Rekor v2 log: refused before anything is copied.
    let mut v2_only = config.clone();
    v2_only["rekorTlogUrls"] =
        serde_json::json!([service(nowhere, 2, "2025-01-01T00:00:00Z", None)]);
    std::fs::write(&path, v2_only.to_string()).unwrap();
    let out = world.run_with_signing_config(&path, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for want in [
        path.to_str().unwrap(),
        "rekorTlogUrls: only the Rekor v2 log http://127.0.0.1:9 is valid now, and the legacy `.sig` format carries Rekor v1 entries only: pass --signature-format bundle, or --rekor-url for a v1 log",
    ] {
        assert!(text(&out).contains(want), "want {want:?}: {}", text(&out));
    }
    // A service without its URL.
    std::fs::write(
        &path,
        r#"{"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [{"majorApiVersion": 1, "validFor": {"start": "2023-01-01T00:00:00Z"}}]}"#,
    )
    .unwrap();
    let out = world.run_with_signing_config(&path, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for want in [path.to_str().unwrap(), "missing field `url`"] {
        assert!(text(&out).contains(want), "want {want:?}: {}", text(&out));
    }
}

/// The signing config of a Rekor v2 world: this server's Fulcio, its Rekor
/// v1 and v2 logs (one operator), and its timestamp authority.
fn v2_signing_config(world: &World) -> serde_json::Value {
    let service = |url: String, version: u32| {
        serde_json::json!({
            "url": url, "majorApiVersion": version,
            "validFor": {"start": "2023-01-01T00:00:00Z"}, "operator": "test",
        })
    };
    let base = &world.sigstore.url;
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [service(base.clone(), 1)],
        "rekorTlogUrls": [service(base.clone(), 1), service(base.clone(), 2)],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaUrls": [service(format!("{base}/api/v1/timestamp"), 1)],
        "tsaConfig": {"selector": "ANY"},
    })
}

/// With bundles only, a signing config that lists a Rekor v2 log beside a
/// v1 one of the same operator selects v2, as protobuf-specs says (the
/// highest version spoken). Every bundle (signature and attestations)
/// carries a `hashedrekord` v0.0.2 entry with an inclusion proof and
/// checkpoint and no SET, plus an RFC 3161 timestamp; sigstore-python,
/// sigstore-js and `verify --attestations` accept them.
#[tokio::test(flavor = "multi_thread")]
async fn a_rekor_v2_log_signs_bundles_that_three_verifiers_accept() {
    let world = World::new(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing_config.json");
    std::fs::write(&path, v2_signing_config(&world).to_string()).unwrap();
    let out = world.run_with_signing_config(&path, &["--signature-format", "bundle"]);
    assert!(out.status.success(), "{}", text(&out));
    let stats = world.sigstore.stats();
    assert_eq!(stats.rekor, 0, "no Rekor v1 entry: {stats:?}");
    // A signature and two attestations per digest, each logged and
    // timestamped once.
    assert_eq!(stats.rekor_v2, 6, "{stats:?}");
    assert_eq!(stats.tsa, stats.rekor_v2, "{stats:?}");
    let root = world.sigstore.trusted_root();
    for (i, (reg, repo, digest)) in world.places().into_iter().enumerate() {
        let bundle = bundle_of(reg.as_ref(), &repo, &digest, SIGN_PREDICATE).await;
        let value: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
        let material = &value["verificationMaterial"];
        let entries = material["tlogEntries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{value}");
        assert_eq!(
            entries[0]["kindVersion"],
            serde_json::json!({"kind": "hashedrekord", "version": "0.0.2"})
        );
        assert!(entries[0].get("inclusionPromise").is_none(), "{value}");
        assert!(entries[0]["inclusionProof"]["checkpoint"]["envelope"].is_string());
        let timestamps = &material["timestampVerificationData"]["rfc3161Timestamps"];
        assert_eq!(timestamps.as_array().map(Vec::len), Some(1), "{value}");
        let path = python_accepts(&world, dir.path(), i, &repo, &digest, &bundle);
        let js = sigstore::sigstore_js(&root, &path, IDENTITY, ISSUER, None);
        assert!(
            js.status.success(),
            "sigstore-js rejected {repo}: {}",
            text(&js)
        );
    }
    let verified = world.verify(&[
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--signature-format",
        "bundle",
        "--attestations",
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
}

/// What a Rekor v2 log cannot give is refused before anything is written:
/// with the legacy `.sig` asked for, a v2-only config stops the run (exit
/// 2); with no timestamp authority, too; and a v2 log whose checkpoint is
/// signed by a key the trusted root does not list fails each digest's
/// signing (exit 1), with no bundle stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_rekor_v2_log_is_refused_where_its_entries_would_not_verify() {
    let world = World::new(&[("REKOR_V2_ROGUE", "1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing_config.json");
    let mut config = v2_signing_config(&world);
    config["rekorTlogUrls"] = serde_json::json!([config["rekorTlogUrls"][1]]);
    std::fs::write(&path, config.to_string()).unwrap();
    let out = world.run_with_signing_config(&path, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let want =
        "the legacy `.sig` format carries Rekor v1 entries only: pass --signature-format bundle";
    assert!(text(&out).contains(want), "{}", text(&out));

    let mut no_tsa = config.clone();
    no_tsa["tsaUrls"] = serde_json::json!([]);
    std::fs::write(&path, no_tsa.to_string()).unwrap();
    let out = world.run_with_signing_config(&path, &["--signature-format", "bundle"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let want = "whose entries carry no signing time, and tsaUrls selects no timestamp authority";
    assert!(text(&out).contains(want), "{}", text(&out));
    assert_eq!(world.sigstore.stats().rekor_v2, 0);

    std::fs::write(&path, config.to_string()).unwrap();
    let out = world.run_with_signing_config(&path, &["--signature-format", "bundle"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let want = "the bundle with the Rekor v2 entry does not verify: the log checkpoint does not verify [checkpoint check]";
    assert!(text(&out).contains(want), "{}", text(&out));
    assert!(world.sigstore.stats().rekor_v2 > 0);
    for (reg, repo, digest) in world.places() {
        let referrers = reg.list_referrers(&repo, &digest).await.unwrap_or_default();
        assert!(referrers.is_empty(), "{repo}: {referrers:?}");
    }
}

/// A service on 127.0.0.1 that answers every request with 200 and a body
/// that never ends: chunked, or announced as `length` bytes and then sent
/// for as long as the client reads. Returns its base URL.
fn endless_service(length: Option<u64>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut request = [0u8; 16 * 1024];
                let _ = stream.read(&mut request);
                let head = match length {
                    Some(n) => format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n"),
                    None => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
                };
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let block = vec![b'['; 64 * 1024];
                loop {
                    let sent = match length {
                        Some(_) => stream.write_all(&block),
                        None => stream
                            .write_all(format!("{:x}\r\n", block.len()).as_bytes())
                            .and_then(|()| stream.write_all(&block))
                            .and_then(|()| stream.write_all(b"\r\n")),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// Fulcio, Rekor and the timestamp authority are read at most 1 MiB deep:
/// an answer that never ends (chunked), or that announces 8 GiB, fails the
/// signing with a message that says so, instead of filling memory until
/// the 60 s client timeout.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_answer_from_a_signing_service_is_cut_off() {
    let world = World::new(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing_config.json");
    let mut config = v2_signing_config(&world);
    let endless = endless_service(None);
    config["caUrls"][0]["url"] = endless.clone().into();
    config["rekorTlogUrls"] = serde_json::json!([config["rekorTlogUrls"][0]]);
    std::fs::write(&path, config.to_string()).unwrap();
    let started = std::time::Instant::now();
    let out = world.run_with_signing_config(&path, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let want = format!(
        "request to {endless}/api/v2/signingCert failed: the answer is larger than 1024 KiB, far more than this service sends; refused unread"
    );
    assert!(text(&out).contains(&want), "{}", text(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    let huge = endless_service(Some(8 << 30));
    let tsa = format!("{huge}/api/v1/timestamp");
    let token = dir.path().join("token");
    std::fs::write(&token, world.sigstore.token()).unwrap();
    let token = token.to_str().unwrap();
    let out = world.run_with(
        &[
            "--timestamp-server-url",
            &tsa,
            "--identity-token-file",
            token,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the answer is larger than 1024 KiB"),
        "{}",
        text(&out)
    );
    assert_eq!(world.sigstore.stats().tsa, 0);
}
