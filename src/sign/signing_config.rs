//! `--signing-config FILE`: a Sigstore `signing_config` v0.2 (media type
//! `application/vnd.dev.sigstore.signingconfig.v0.2+json`), read with
//! sigstore-trust-root's types, and the services it selects for this
//! signer, as protobuf-specs' `SigningConfig` says to select them:
//!
//! - only services within their `validFor` window now, of an API version
//!   this signer speaks (Fulcio v1, Rekor v1 and v2, timestamp authorities
//!   v1); Rekor v2 only when no legacy `.sig` is written, since cosign's
//!   `.sig` annotations carry Rekor v1 entries only;
//! - Fulcio: one, the highest version, then the newest `validFor.start`;
//! - Rekor: at most one per `operator` (its highest version, then newest),
//!   then as many as `rekorTlogConfig.selector` asks (`ANY`: one, `ALL`:
//!   all, `EXACT`: `count`). This signer writes one log entry, so a
//!   selection of more than one log is refused. A Rekor v2 log needs a
//!   timestamp authority (its entries carry no signing time).
//!
//! What cannot be followed is an error naming the file and the field, with
//! the flag that gets around it.

use std::path::Path;

use super::rekor::Log;
use sigstore_verify::trust_root::{
    ServiceConfiguration, ServiceEndpoint, ServiceSelector, SigningConfig,
};

/// The only media type read.
const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";

/// What a signing config selects for this signer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selected {
    /// Fulcio's base URL, when the config lists CAs.
    pub fulcio: Option<String>,
    /// The Rekor log, when the config lists logs.
    pub rekor: Option<Log>,
    /// The timestamp authorities the config selects (`tsaConfig`); the
    /// signer asks the first, and a run names the others.
    pub tsas: Vec<String>,
}

/// What the flags settle already. The services a flag names
/// (`--fulcio-url`, `--rekor-url`) are then neither selected nor checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Given {
    /// `--fulcio-url`.
    pub fulcio: bool,
    /// `--rekor-url`.
    pub rekor: bool,
    /// `--timestamp-server-url`.
    pub tsa: bool,
    /// The run writes cosign's legacy `.sig` (`--signature-format legacy`
    /// or `both`), which carries Rekor v1 entries only.
    pub legacy: bool,
}

/// Read and select from the signing config at `path`.
pub fn load(path: &Path, given: Given) -> Result<Selected, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --signing-config {}: {e}", path.display()))?;
    select(&text, jiff::Timestamp::now(), given)
        .map_err(|why| format!("--signing-config {}: {why}", path.display()))
}

/// Select from a signing config's text at time `now`.
pub fn select(text: &str, now: jiff::Timestamp, given: Given) -> Result<Selected, String> {
    let config: SigningConfig =
        serde_json::from_str(text).map_err(|e| format!("not a signing config: {e}"))?;
    if config.media_type != MEDIA_TYPE {
        return Err(format!(
            "mediaType is `{}`; only `{MEDIA_TYPE}` (signing config v0.2) is read",
            config.media_type
        ));
    }
    let selected = Selected {
        fulcio: match given.fulcio {
            true => None,
            false => fulcio(&config.ca_urls, now)?,
        },
        rekor: match given.rekor {
            true => None,
            false => rekor(
                &config.rekor_tlog_urls,
                &config.rekor_tlog_config,
                now,
                given.legacy,
            )?,
        },
        tsas: tsas(&config.tsa_urls, &config.tsa_config, now)?,
    };
    if let Some(log) = selected.rekor.as_ref().filter(|l| l.v2)
        && selected.tsas.is_empty()
        && !given.tsa
    {
        return Err(format!(
            "rekorTlogUrls: the Rekor v2 log {} is selected, whose entries carry no signing time, and tsaUrls selects no timestamp authority: list one, or pass --timestamp-server-url",
            log.url
        ));
    }
    Ok(selected)
}

/// Services valid at `now`, best first: highest API version, then newest
/// start.
fn current(services: &[ServiceEndpoint], now: jiff::Timestamp) -> Vec<&ServiceEndpoint> {
    let mut valid: Vec<_> = services
        .iter()
        .filter(|s| s.valid_for.contains(now))
        .collect();
    valid.sort_by(|a, b| {
        (b.major_api_version, b.valid_for.start).cmp(&(a.major_api_version, a.valid_for.start))
    });
    valid
}

fn fulcio(cas: &[ServiceEndpoint], now: jiff::Timestamp) -> Result<Option<String>, String> {
    if cas.is_empty() {
        return Ok(None);
    }
    let valid = current(cas, now);
    match valid.iter().find(|s| s.major_api_version == 1) {
        Some(ca) => Ok(Some(ca.url.clone())),
        None if valid.is_empty() => {
            Err("caUrls: no Fulcio URL is within its validFor window now".into())
        }
        None => Err(format!(
            "caUrls: no Fulcio URL with majorApiVersion 1 is valid now (found {}); pass --fulcio-url",
            versions(&valid)
        )),
    }
}

/// How many services a selector asks for, of `available`.
fn wanted(field: &str, config: &ServiceConfiguration, available: usize) -> Result<usize, String> {
    match config.selector {
        ServiceSelector::Any => Ok(available.min(1)),
        ServiceSelector::All => Ok(available),
        ServiceSelector::Exact => match config.count {
            Some(n) if n as usize <= available => Ok(n as usize),
            Some(n) => Err(format!(
                "{field}: selector EXACT asks for {n} services, and only {available} (one per operator) are usable now"
            )),
            None => Err(format!("{field}: selector EXACT needs a count")),
        },
        _ => Err(format!(
            "{field}: selector is undefined; give ANY, ALL or EXACT"
        )),
    }
}

/// Each operator's best service (unnamed operators count as one each).
fn per_operator<'a>(valid: &[&'a ServiceEndpoint]) -> Vec<&'a ServiceEndpoint> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for service in valid {
        match service.operator.as_deref() {
            Some(op) if seen.contains(&op) => {}
            Some(op) => {
                seen.push(op);
                out.push(*service);
            }
            None => out.push(*service),
        }
    }
    out
}

/// The log to write to: each operator's highest version spoken (v2 only
/// when no `legacy` `.sig` is written), then as the selector says.
fn rekor(
    logs: &[ServiceEndpoint],
    config: &ServiceConfiguration,
    now: jiff::Timestamp,
    legacy: bool,
) -> Result<Option<Log>, String> {
    if logs.is_empty() {
        return Ok(None);
    }
    let valid = current(logs, now);
    let highest = if legacy { 1 } else { 2 };
    let spoken: Vec<_> = valid
        .iter()
        .copied()
        .filter(|s| (1..=highest).contains(&s.major_api_version))
        .collect();
    let chosen = per_operator(&spoken);
    if chosen.is_empty() {
        let v2 = valid.iter().find(|s| s.major_api_version == 2);
        return Err(match v2 {
            Some(log) => format!(
                "rekorTlogUrls: only the Rekor v2 log {} is valid now, and the legacy `.sig` format carries Rekor v1 entries only: pass --signature-format bundle, or --rekor-url for a v1 log",
                log.url
            ),
            None if valid.is_empty() => {
                "rekorTlogUrls: no Rekor URL is within its validFor window now".into()
            }
            None => format!(
                "rekorTlogUrls: no Rekor v1 or v2 URL is valid now (found {}); pass --rekor-url",
                versions(&valid)
            ),
        });
    }
    match wanted("rekorTlogConfig", config, chosen.len())? {
        1 => Ok(Some(Log {
            url: chosen[0].url.clone(),
            v2: chosen[0].major_api_version == 2,
        })),
        n => Err(format!(
            "rekorTlogConfig selects {n} Rekor logs ({}); the promoter writes to one log: pass --rekor-url",
            urls(&chosen[..n])
        )),
    }
}

fn tsas(
    tsas: &[ServiceEndpoint],
    config: &ServiceConfiguration,
    now: jiff::Timestamp,
) -> Result<Vec<String>, String> {
    if tsas.is_empty() {
        return Ok(Vec::new());
    }
    // Version 1 only: the only timestamp API this signer speaks.
    let spoken: Vec<_> = current(tsas, now)
        .into_iter()
        .filter(|s| s.major_api_version == 1)
        .collect();
    let chosen = per_operator(&spoken);
    // A selector this signer cannot follow (more than one) is no reason to
    // stop: it asks the first.
    let n = wanted("tsaConfig", config, chosen.len()).unwrap_or(chosen.len());
    Ok(chosen[..n].iter().map(|s| s.url.clone()).collect())
}

fn versions(services: &[&ServiceEndpoint]) -> String {
    let mut v: Vec<String> = services
        .iter()
        .map(|s| format!("v{}", s.major_api_version))
        .collect();
    v.dedup();
    v.join(", ")
}

fn urls(services: &[&ServiceEndpoint]) -> String {
    services
        .iter()
        .map(|s| s.url.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn service(
        url: &str,
        version: u32,
        start: &str,
        end: Option<&str>,
        operator: &str,
    ) -> serde_json::Value {
        let mut valid_for = json!({"start": start});
        if let Some(end) = end {
            valid_for["end"] = json!(end);
        }
        json!({"url": url, "majorApiVersion": version, "validFor": valid_for, "operator": operator})
    }

    fn config(rekor: Vec<serde_json::Value>, selector: serde_json::Value) -> String {
        json!({
            "mediaType": MEDIA_TYPE,
            "caUrls": [
                service("https://old-fulcio", 1, "2020-01-01T00:00:00Z", Some("2025-01-01T00:00:00Z"), "a"),
                service("https://fulcio", 1, "2024-01-01T00:00:00Z", None, "a"),
                service("https://fulcio-v2", 2, "2024-01-01T00:00:00Z", None, "a"),
            ],
            "rekorTlogUrls": rekor,
            "rekorTlogConfig": selector,
            "tsaUrls": [
                service("https://tsa-v2/api/v2/timestamp", 2, "2025-06-01T00:00:00Z", None, "a"),
                service("https://tsa/api/v1/timestamp", 1, "2025-01-01T00:00:00Z", None, "a"),
            ],
            "tsaConfig": {"selector": "ANY"},
        })
        .to_string()
    }

    /// A config whose only log is a Rekor v2 one.
    fn v2_only() -> String {
        config(
            vec![service(
                "https://log2025.v2",
                2,
                "2025-01-01T00:00:00Z",
                None,
                "a",
            )],
            json!({"selector": "ANY"}),
        )
    }

    #[test]
    fn selects_by_window_version_and_operator() {
        let text = config(
            vec![
                service("https://log2025.v2", 2, "2025-01-01T00:00:00Z", None, "a"),
                service("https://rekor-old", 1, "2020-01-01T00:00:00Z", None, "a"),
                service("https://rekor", 1, "2023-01-01T00:00:00Z", None, "a"),
                service("https://rekor-future", 1, "2030-01-01T00:00:00Z", None, "a"),
            ],
            json!({"selector": "ANY"}),
        );
        let legacy = Given {
            legacy: true,
            ..Given::default()
        };
        let selected = select(&text, now(), legacy).unwrap();
        assert_eq!(selected.fulcio.as_deref(), Some("https://fulcio"));
        assert_eq!(selected.rekor, Some(Log::v1("https://rekor")));
        assert_eq!(
            selected.tsas,
            vec!["https://tsa/api/v1/timestamp".to_owned()]
        );
        // Bundles only: the operator's highest version, v2.
        let selected = select(&text, now(), Given::default()).unwrap();
        let v2 = Log {
            url: "https://log2025.v2".into(),
            v2: true,
        };
        assert_eq!(selected.rekor, Some(v2));
        // A flag wins, and the config's choice is not even checked.
        let v2_only = v2_only();
        let given = Given {
            fulcio: true,
            rekor: true,
            ..Given::default()
        };
        let selected = select(&v2_only, now(), given).unwrap();
        assert_eq!((selected.fulcio, selected.rekor), (None, None));
    }

    #[test]
    fn refuses_what_it_cannot_follow() {
        let v2_only = v2_only();
        let two_operators = config(
            vec![
                service("https://rekor-a", 1, "2023-01-01T00:00:00Z", None, "a"),
                service("https://rekor-b", 1, "2023-01-01T00:00:00Z", None, "b"),
            ],
            json!({"selector": "ALL"}),
        );
        let too_many = config(
            vec![service(
                "https://rekor",
                1,
                "2023-01-01T00:00:00Z",
                None,
                "a",
            )],
            json!({"selector": "EXACT", "count": 2}),
        );
        for (text, want) in [
            (
                &v2_only,
                "only the Rekor v2 log https://log2025.v2 is valid now, and the legacy `.sig` format carries Rekor v1 entries only: pass --signature-format bundle",
            ),
            (
                &two_operators,
                "selects 2 Rekor logs (https://rekor-a, https://rekor-b)",
            ),
            (&too_many, "selector EXACT asks for 2 services, and only 1"),
            (&"{".to_owned(), "not a signing config: EOF"),
            (
                &json!({"mediaType": "x", "caUrls": []}).to_string(),
                "mediaType is `x`",
            ),
            (
                &json!({"mediaType": MEDIA_TYPE, "caUrls": [{"majorApiVersion": 1}]}).to_string(),
                "missing field `url`",
            ),
        ] {
            let legacy = Given {
                legacy: true,
                ..Given::default()
            };
            let err = select(text, now(), legacy).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn a_rekor_v2_log_needs_a_timestamp_authority() {
        let mut v2_only: serde_json::Value = serde_json::from_str(&v2_only()).unwrap();
        let with_tsa = v2_only.to_string();
        v2_only["tsaUrls"] = json!([]);
        let without = v2_only.to_string();
        let selected = select(&with_tsa, now(), Given::default()).unwrap();
        assert!(selected.rekor.unwrap().v2);
        let err = select(&without, now(), Given::default()).unwrap_err();
        assert!(
            err.contains("Rekor v2 log https://log2025.v2 is selected, whose entries carry no signing time, and tsaUrls selects no timestamp authority"),
            "{err}"
        );
        let tsa_flag = Given {
            tsa: true,
            ..Given::default()
        };
        assert!(select(&without, now(), tsa_flag).unwrap().rekor.unwrap().v2);
    }
}
