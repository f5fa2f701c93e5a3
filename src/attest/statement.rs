//! The two in-toto Statement v1 documents written for each promoted digest,
//! and the field checks a reader applies to them (and to provenance found
//! on staging images).
//!
//! - The promotion record (predicate type [`PROMOTION_PREDICATE`]): what
//!   this run did with the digest: its source, every destination and the
//!   tags written there, when, by which promoter, from which manifest line
//!   and commit, in which workflow run.
//! - SLSA provenance v1 ([`SLSA_PREDICATE`]): the promotion described as a
//!   build whose only input is the source image by digest
//!   ([`PROMOTION_BUILD_TYPE`]); the builder is the workflow identity that
//!   signs, `runDetails.metadata.invocationId` the workflow run.
//!
//! Pure data: nothing here reads a registry or signs.

use serde_json::{Map, Value, json};

use crate::registry::Digest;

/// in-toto Statement v1's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v1.
pub const SLSA_PREDICATE: &str = "https://slsa.dev/provenance/v1";
/// The promotion record's predicate type. A URN rather than a URL: it names
/// the schema documented in docs/attestations.md without pointing at
/// a host this project does not own.
pub const PROMOTION_PREDICATE: &str = "urn:promoter:attestation:promotion:v1";
/// SLSA `buildType` of a promotion (the same page).
pub const PROMOTION_BUILD_TYPE: &str = "urn:promoter:buildtype:promotion:v1";

/// What one run did with one digest.
#[derive(Clone, Debug)]
pub struct Promotion {
    /// The image's public name (the statements' subject name).
    pub public_name: String,
    /// The promoted digest.
    pub digest: Digest,
    /// The staging repository, `host/path`.
    pub source: String,
    /// Each destination repository, `host/path`, with the tags this run
    /// wrote there (empty: by digest only, or the tags were already there).
    pub destinations: Vec<(String, Vec<String>)>,
    /// The manifest file that lists the digest, and the line.
    pub manifest: Option<(String, u32)>,
}

/// What the statements say about the run, the same for every digest.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    /// The builder: the workflow identity that signs (the certificate's
    /// SAN), else the workflow, else [`LOCAL_BUILDER`].
    pub builder_id: String,
    /// The git commit of the manifests (`GITHUB_SHA`, else `git rev-parse`).
    pub commit: Option<String>,
    /// The repository holding the manifests, as a URL.
    pub repository: Option<String>,
    /// The workflow run's URL (with its attempt).
    pub run_url: Option<String>,
    /// When the run started, RFC 3339.
    pub started_on: String,
    /// When this digest was promoted, RFC 3339.
    pub promoted_on: String,
}

/// The builder id of a run outside any CI system.
pub const LOCAL_BUILDER: &str = "urn:promoter:builder:local";

fn subject(p: &Promotion) -> Value {
    json!([{"name": p.public_name, "digest": {"sha256": p.digest.hex()}}])
}

fn statement(p: &Promotion, predicate_type: &str, predicate: Value) -> Vec<u8> {
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject(p),
        "predicateType": predicate_type,
        "predicate": predicate,
    })
    .to_string()
    .into_bytes()
}

/// Insert `value` under `key` when there is one.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

/// The manifest file and commit, as both statements name them.
fn manifest_facts(p: &Promotion, run: &RunFacts) -> Value {
    let mut m = Map::new();
    if let Some((path, line)) = &p.manifest {
        m.insert("path".into(), json!(path));
        m.insert("line".into(), json!(line));
    }
    put(&mut m, "commit", run.commit.clone());
    put(&mut m, "repository", run.repository.clone());
    Value::Object(m)
}

/// The promotion record statement.
pub fn promotion_record(p: &Promotion, run: &RunFacts) -> Vec<u8> {
    let digest = p.digest.to_string();
    let destinations: Vec<Value> = p
        .destinations
        .iter()
        .map(|(repo, tags)| json!({"reference": format!("{repo}@{digest}"), "tags": tags}))
        .collect();
    let mut workflow = Map::new();
    workflow.insert("builderId".into(), json!(run.builder_id));
    put(&mut workflow, "runUrl", run.run_url.clone());
    statement(
        p,
        PROMOTION_PREDICATE,
        json!({
            "digest": digest,
            "source": format!("{}@{digest}", p.source),
            "destinations": destinations,
            "promotedOn": run.promoted_on,
            "promoter": {"name": "promoter", "version": env!("CARGO_PKG_VERSION")},
            "manifest": manifest_facts(p, run),
            "workflow": workflow,
        }),
    )
}

/// The SLSA provenance v1 statement.
pub fn slsa_provenance(p: &Promotion, run: &RunFacts) -> Vec<u8> {
    let digest = p.digest.to_string();
    let mut metadata = Map::new();
    put(&mut metadata, "invocationId", run.run_url.clone());
    metadata.insert("startedOn".into(), json!(run.started_on));
    metadata.insert("finishedOn".into(), json!(run.promoted_on));
    let destinations: Vec<String> = p.destinations.iter().map(|(r, _)| r.clone()).collect();
    statement(
        p,
        SLSA_PREDICATE,
        json!({
            "buildDefinition": {
                "buildType": PROMOTION_BUILD_TYPE,
                "externalParameters": {
                    "manifest": manifest_facts(p, run),
                    "source": format!("{}@{digest}", p.source),
                    "destinations": destinations,
                },
                "internalParameters": {"promoterVersion": env!("CARGO_PKG_VERSION")},
                "resolvedDependencies": [{
                    "name": p.source,
                    "uri": format!("oci://{}@{digest}", p.source),
                    "digest": {"sha256": p.digest.hex()},
                }],
            },
            "runDetails": {
                "builder": {"id": run.builder_id},
                "metadata": metadata,
            },
        }),
    )
}

/// A statement that passed [`check_statement`].
#[derive(Clone, Debug)]
pub struct Checked {
    /// Its predicate type.
    pub predicate_type: String,
    /// Its predicate (an object).
    pub predicate: Map<String, Value>,
    /// The subjects' SHA-256 digests (hex).
    pub subject_sha256: Vec<String>,
}

/// Check `payload` against in-toto Statement v1's field requirements: the
/// `_type`, at least one subject and a digest in each, lowercase-hex
/// SHA-256 digests, a predicate type, an object predicate.
pub fn check_statement(payload: &[u8]) -> Result<Checked, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("the statement is not a JSON object")?;
    if obj.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE) {
        return Err(format!("`_type` is not {STATEMENT_TYPE}"));
    }
    let subjects = obj
        .get("subject")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or("`subject` must list at least one artifact")?;
    let mut subject_sha256 = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let digest = s
            .get("digest")
            .and_then(Value::as_object)
            .filter(|d| !d.is_empty())
            .ok_or(format!("subject {i} has no digest"))?;
        for (algorithm, value) in digest {
            let value = value
                .as_str()
                .ok_or(format!("subject {i}: digest `{algorithm}` is not a string"))?;
            if algorithm == "sha256" {
                if value.len() != 64
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(format!(
                        "subject {i}: `{value}` is not a lowercase hex SHA-256"
                    ));
                }
                subject_sha256.push(value.to_owned());
            }
        }
        if let Some(name) = s.get("name")
            && !name.is_string()
        {
            return Err(format!("subject {i}: `name` is not a string"));
        }
    }
    let predicate_type = obj
        .get("predicateType")
        .and_then(Value::as_str)
        .filter(|t| is_uri(t))
        .ok_or("`predicateType` must be a URI")?
        .to_owned();
    let predicate = match obj.get("predicate") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err("`predicate` is not an object".into()),
    };
    Ok(Checked {
        predicate_type,
        predicate,
        subject_sha256,
    })
}

/// A URI as in-toto's TypeURI and SLSA's ids need: a scheme, then more.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a Map<String, Value>, String> {
    m.get(key)
        .and_then(Value::as_object)
        .ok_or(format!("`{at}{key}` is required and must be an object"))
}

fn optional_object(m: &Map<String, Value>, key: &str, at: &str) -> Result<(), String> {
    match m.get(key) {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(format!("`{at}{key}` must be an object")),
    }
}

fn resource_descriptors(m: &Map<String, Value>, key: &str, at: &str) -> Result<(), String> {
    let Some(list) = m.get(key) else {
        return Ok(());
    };
    let list = list
        .as_array()
        .ok_or(format!("`{at}{key}` must be a list"))?;
    for (i, rd) in list.iter().enumerate() {
        let has = |k: &str| rd.get(k).is_some_and(|v| !v.is_null());
        if !has("uri") && !has("digest") && !has("content") {
            return Err(format!(
                "`{at}{key}[{i}]` needs one of `uri`, `digest` or `content`"
            ));
        }
    }
    Ok(())
}

fn timestamp(m: &Map<String, Value>, key: &str, at: &str) -> Result<(), String> {
    match m.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if is_rfc3339(s) => Ok(()),
        Some(_) => Err(format!("`{at}{key}` must be an RFC 3339 timestamp")),
    }
}

fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .into_iter()
            .all(|r| b[r].iter().all(u8::is_ascii_digit))
        && (s.ends_with('Z') || s.ends_with('z') || s[19..].contains(['+', '-']))
}

/// Check a SLSA provenance v1 predicate's field requirements: a
/// `buildDefinition` with a `buildType` URI and an `externalParameters`
/// object, resource descriptors that name something, a `runDetails.builder`
/// with an `id` URI, RFC 3339 times. Returns the builder id.
pub fn check_slsa(predicate: &Map<String, Value>) -> Result<String, String> {
    let definition = object(predicate, "buildDefinition", "")?;
    if !definition
        .get("buildType")
        .and_then(Value::as_str)
        .is_some_and(is_uri)
    {
        return Err("`buildDefinition.buildType` must be a URI".into());
    }
    object(definition, "externalParameters", "buildDefinition.")?;
    optional_object(definition, "internalParameters", "buildDefinition.")?;
    resource_descriptors(definition, "resolvedDependencies", "buildDefinition.")?;
    let details = object(predicate, "runDetails", "")?;
    let builder = object(details, "builder", "runDetails.")?;
    let id = builder
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_uri(id))
        .ok_or("`runDetails.builder.id` must be a URI")?;
    resource_descriptors(builder, "builderDependencies", "runDetails.builder.")?;
    if let Some(metadata) = details.get("metadata") {
        let metadata = metadata
            .as_object()
            .ok_or("`runDetails.metadata` must be an object")?;
        if metadata.get("invocationId").is_some_and(|v| !v.is_string()) {
            return Err("`runDetails.metadata.invocationId` must be a string".into());
        }
        timestamp(metadata, "startedOn", "runDetails.metadata.")?;
        timestamp(metadata, "finishedOn", "runDetails.metadata.")?;
    }
    resource_descriptors(details, "byproducts", "runDetails.")?;
    Ok(id.to_owned())
}

/// Check a promotion record's predicate: it names `digest` and lists
/// `destination` (`host/path`) among the places it was promoted to.
pub fn check_record(
    predicate: &Map<String, Value>,
    digest: &Digest,
    destination: &str,
) -> Result<(), String> {
    let digest = digest.to_string();
    if predicate.get("digest").and_then(Value::as_str) != Some(digest.as_str()) {
        return Err("the promotion record names another digest".into());
    }
    let wanted = format!("{destination}@{digest}");
    let listed = predicate
        .get("destinations")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .any(|d| d.get("reference").and_then(Value::as_str) == Some(wanted.as_str()))
        });
    if !listed {
        return Err(format!("the promotion record does not list {destination}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promotion() -> Promotion {
        Promotion {
            public_name: "registry.example/app".into(),
            digest: Digest::of(b"image"),
            source: "staging.example/staging/app".into(),
            destinations: vec![
                ("a.example/prod/app".into(), vec!["v1".into()]),
                ("b.example/prod/app".into(), Vec::new()),
            ],
            manifest: Some(("images/app.yaml".into(), 7)),
        }
    }

    fn facts() -> RunFacts {
        RunFacts {
            builder_id: "https://github.com/o/r/.github/workflows/p.yml@refs/heads/main".into(),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            repository: Some("https://github.com/o/r".into()),
            run_url: Some("https://github.com/o/r/actions/runs/1/attempts/1".into()),
            started_on: "2026-11-25T10:00:00Z".into(),
            promoted_on: "2026-11-25T10:00:05Z".into(),
        }
    }

    #[test]
    fn both_statements_meet_the_field_requirements() {
        let p = promotion();
        let record = check_statement(&promotion_record(&p, &facts())).unwrap();
        assert_eq!(record.predicate_type, PROMOTION_PREDICATE);
        assert_eq!(record.subject_sha256, vec![p.digest.hex()]);
        check_record(&record.predicate, &p.digest, "b.example/prod/app").unwrap();
        let err = check_record(&record.predicate, &p.digest, "c.example/prod/app").unwrap_err();
        assert!(err.contains("does not list c.example/prod/app"), "{err}");
        assert!(check_record(&record.predicate, &Digest::of(b"x"), "a.example/prod/app").is_err());

        let slsa = check_statement(&slsa_provenance(&p, &facts())).unwrap();
        assert_eq!(slsa.predicate_type, SLSA_PREDICATE);
        assert_eq!(check_slsa(&slsa.predicate).unwrap(), facts().builder_id);
        let deps = &slsa.predicate["buildDefinition"]["resolvedDependencies"][0];
        assert_eq!(deps["digest"]["sha256"], p.digest.hex());
        assert_eq!(
            slsa.predicate["buildDefinition"]["externalParameters"]["manifest"]["path"],
            "images/app.yaml"
        );
    }

    #[test]
    fn a_local_run_still_meets_them() {
        let mut p = promotion();
        p.manifest = None;
        let run = RunFacts {
            builder_id: LOCAL_BUILDER.into(),
            started_on: "2026-11-25T10:00:00Z".into(),
            promoted_on: "2026-11-25T10:00:00Z".into(),
            ..RunFacts::default()
        };
        let slsa = check_statement(&slsa_provenance(&p, &run)).unwrap();
        assert_eq!(check_slsa(&slsa.predicate).unwrap(), LOCAL_BUILDER);
        check_statement(&promotion_record(&p, &run)).unwrap();
    }

    #[test]
    fn broken_statements_are_named() {
        let bad = |v: Value| check_statement(v.to_string().as_bytes()).unwrap_err();
        let sub = json!([{"digest": {"sha256": "a".repeat(64)}}]);
        assert!(
            bad(json!({"_type": "x", "subject": sub, "predicateType": "a:b"})).contains("_type")
        );
        assert!(
            bad(json!({"_type": STATEMENT_TYPE, "subject": [], "predicateType": "a:b"}))
                .contains("at least one")
        );
        assert!(
            bad(
                json!({"_type": STATEMENT_TYPE, "subject": [{"name": "x"}], "predicateType": "a:b"})
            )
            .contains("no digest")
        );
        assert!(
            bad(json!({"_type": STATEMENT_TYPE, "subject": [{"digest": {"sha256": "ABC"}}], "predicateType": "a:b"}))
                .contains("lowercase hex")
        );
        assert!(
            bad(json!({"_type": STATEMENT_TYPE, "subject": sub, "predicateType": "nope"}))
                .contains("predicateType")
        );
        assert!(
            bad(json!({"_type": STATEMENT_TYPE, "subject": sub, "predicateType": "a:b", "predicate": 1}))
                .contains("not an object")
        );
    }

    #[test]
    fn broken_provenance_is_named() {
        let slsa = |p: Value| check_slsa(p.as_object().unwrap());
        let builder = json!({"builder": {"id": "https://ci.example/b"}});
        let err = slsa(json!({"runDetails": builder})).unwrap_err();
        assert!(err.contains("buildDefinition"), "{err}");
        let def = json!({"buildType": "https://t.example/v1", "externalParameters": {}});
        assert_eq!(
            slsa(json!({"buildDefinition": def, "runDetails": builder})).unwrap(),
            "https://ci.example/b"
        );
        let err = slsa(json!({"buildDefinition": {"buildType": "x"}, "runDetails": builder}))
            .unwrap_err();
        assert!(err.contains("buildType"), "{err}");
        let err = slsa(json!({"buildDefinition": def, "runDetails": {"builder": {}}})).unwrap_err();
        assert!(err.contains("builder.id"), "{err}");
        let mut def2 = def.clone();
        def2["resolvedDependencies"] = json!([{"name": "only a name"}]);
        let err = slsa(json!({"buildDefinition": def2, "runDetails": builder})).unwrap_err();
        assert!(err.contains("resolvedDependencies[0]"), "{err}");
        let details = json!({"builder": {"id": "https://ci.example/b"}, "metadata": {"startedOn": "yesterday"}});
        let err = slsa(json!({"buildDefinition": def, "runDetails": details})).unwrap_err();
        assert!(err.contains("startedOn"), "{err}");
    }
}
