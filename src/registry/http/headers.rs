//! Parsers of the response headers a registry sends: `RateLimit-*`,
//! `Retry-After`, `WWW-Authenticate`, `Link`, `Location`, `Content-Length`,
//! `Content-Type` and `Docker-Content-Digest` (`Range` and `Content-Range`
//! are only ever sent, never read). Pure
//! functions of the header text (and of the wall clock, for HTTP dates):
//! no I/O, no state. The registry is not trusted: every parser takes any
//! string and returns `None` (or an error string) for what it cannot use,
//! in time linear in the input, with checked arithmetic and bounded
//! results, so that no value can panic, spin or overflow the code that uses
//! it (`tests/hostile.rs`; the property tests below).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use crate::registry::digest::Digest;

/// The longest delay a parser returns; longer ones are cut to this. A
/// year: far beyond any pause promoter accepts (`limit.rs`), and small
/// enough that adding it to any `Instant` cannot overflow.
pub(crate) const LONGEST_DELAY: Duration = Duration::from_secs(365 * 86_400);

/// `Location` values longer than this are refused: distribution's upload
/// locations are about 200 bytes, and nginx refuses request lines over 8 KiB
/// by default (`large_client_header_buffers`), so a longer URL could not be
/// requested anyway.
pub(crate) const MAX_URL_LEN: usize = 8 * 1024;

/// Cut `value` to at most `max` characters for an error message, marking
/// the cut, with control characters dropped.
pub(crate) fn quote(value: &str, max: usize) -> String {
    let mut out: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    if value.chars().filter(|c| !c.is_control()).nth(max).is_some() {
        out.push('…');
    }
    out
}

/// The leading number of `RateLimit-Limit` / `-Remaining` / `-Reset`:
/// `100;w=21600` -> 100. Values beyond `u64` are `None`.
pub(crate) fn leading_number(value: &str) -> Option<u64> {
    value.split([';', ',']).next()?.trim().parse().ok()
}

/// `RateLimit-Reset` is seconds from now in the IETF draft; some APIs send
/// a Unix time instead (GitHub's `X-RateLimit-Reset`). Values past 2001
/// as a Unix time are read as one. At most [`LONGEST_DELAY`].
pub(crate) fn reset_delay(n: u64, now: SystemTime) -> Duration {
    let delay = if n > 1_000_000_000 {
        match UNIX_EPOCH.checked_add(Duration::from_secs(n)) {
            Some(at) => at.duration_since(now).unwrap_or_default(),
            None => LONGEST_DELAY,
        }
    } else {
        Duration::from_secs(n)
    };
    delay.min(LONGEST_DELAY)
}

/// `Retry-After`: delta seconds, or an HTTP date (RFC 9110: IMF-fixdate and
/// the two obsolete forms, parsed by the `httpdate` crate). A date in the
/// past means now; at most [`LONGEST_DELAY`]. A number too large for `u64`
/// is still a (very long) delay, not garbage.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(LONGEST_DELAY));
    }
    // IMF-fixdate is 29 bytes; anything much longer is no date.
    if value.len() > 64 {
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .min(LONGEST_DELAY),
    )
}

/// What the registry asked for in `WWW-Authenticate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No authentication asked for (yet).
    None,
    /// HTTP Basic.
    Basic,
    /// Token authentication: fetch a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value such as
/// `Bearer realm="https://auth/token",service="registry",scope="..."`.
/// A realm longer than [`MAX_URL_LEN`] is no challenge.
pub(crate) fn challenge(value: &str) -> Challenge {
    let value = value.trim();
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::None;
    }
    let mut realm = None;
    let mut service = None;
    for (key, val) in auth_params(params) {
        if key.eq_ignore_ascii_case("realm") {
            realm = Some(val);
        } else if key.eq_ignore_ascii_case("service") {
            service = Some(val);
        }
    }
    match realm {
        Some(realm) if realm.len() <= MAX_URL_LEN => Challenge::Bearer { realm, service },
        _ => Challenge::None,
    }
}

/// `k="v", k2=v2` pairs; quoted values may contain commas. Each pair
/// consumes at least its `=`, so the loop ends.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, val));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The `rel="next"` target of a `Link` header (RFC 8288), as sent: often
/// relative. A target longer than [`MAX_URL_LEN`] is none.
pub(crate) fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        (is_next && target.len() <= MAX_URL_LEN).then(|| target.to_owned())
    })
}

/// A `Location` (or `Link` target) resolved against `base`: an absolute
/// `http`/`https` URL, or why not.
pub(crate) fn location(base: &Url, value: &str) -> Result<Url, String> {
    if value.len() > MAX_URL_LEN {
        return Err(format!(
            "longer than {MAX_URL_LEN} bytes: {}",
            quote(value, 80)
        ));
    }
    let url = base
        .join(value.trim())
        .map_err(|e| format!("{e}: {}", quote(value, 120)))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "scheme `{}` is not http(s): {}",
            quote(other, 20),
            quote(value, 120)
        )),
    }
}

/// `Content-Length`: decimal digits only (RFC 9110), within `u64`.
pub(crate) fn content_length(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `Docker-Content-Digest`, when well-formed (`sha256:<64 hex>`).
pub(crate) fn content_digest(value: &str) -> Option<Digest> {
    value.trim().parse().ok()
}

/// The media type of `Content-Type`, without parameters such as `charset`.
pub(crate) fn media_type(value: &str) -> String {
    value.split(';').next().unwrap_or(value).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_and_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sat, 05 Nov 1994 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        // What a hostile registry sends: cut to a year, never a panic or a
        // loop over the years.
        assert_eq!(
            retry_after("18446744073709551615", now),
            Some(LONGEST_DELAY)
        );
        assert_eq!(
            retry_after("99999999999999999999999999", now),
            Some(LONGEST_DELAY)
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 18446744073709551615 08:49:37 GMT", now),
            None
        );
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(LONGEST_DELAY)
        );
        assert_eq!(reset_delay(30, now), Duration::from_secs(30));
        assert_eq!(reset_delay(u64::MAX, now), LONGEST_DELAY);
        let later = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(reset_delay(1_700_000_010, later), Duration::from_secs(10));
        assert_eq!(leading_number("100;w=21600"), Some(100));
        assert_eq!(leading_number("18446744073709551616"), None);
    }

    #[test]
    fn parses_bearer_challenges() {
        let c = challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            }
        );
        assert_eq!(
            challenge(r#"Basic realm="Registry Realm""#),
            Challenge::Basic
        );
        assert_eq!(challenge("Negotiate"), Challenge::None);
        assert_eq!(
            challenge("bearer realm=http://x/t"),
            Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None
            }
        );
        let long = format!("Bearer realm=\"http://x/{}\"", "a".repeat(MAX_URL_LEN));
        assert_eq!(challenge(&long), Challenge::None);
    }

    #[test]
    fn reads_links_locations_lengths_ranges() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link("</a>; rel=next, </b>; rel=prev").as_deref(),
            Some("/a")
        );
        assert_eq!(next_link("</a>; rel=\"prev\""), None);
        let base = Url::parse("http://127.0.0.1:5000/").unwrap();
        assert_eq!(
            location(&base, "/v2/x/blobs/uploads/u?_state=s")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/x/blobs/uploads/u?_state=s"
        );
        assert!(location(&base, "file:///etc/passwd").is_err());
        assert!(location(&base, &"a".repeat(MAX_URL_LEN + 1)).is_err());
        assert_eq!(content_length(" 42 "), Some(42));
        assert_eq!(content_length("-1"), None);
        assert_eq!(content_length("+1"), None);
        assert_eq!(content_length("18446744073709551616"), None);
        assert_eq!(
            media_type("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(quote("abc\ndef", 4), "abcd…");
        assert_eq!(quote("abc", 3), "abc");
    }
}

#[cfg(test)]
mod props {
    //! Any header text: no panic, results within their bounds, and linear
    //! time (each case runs on inputs up to 64 KiB, hyper's default cap on
    //! a response head is larger, so the time bound is checked too).
    use std::time::Instant;

    use proptest::prelude::*;

    use super::*;

    /// Strings built from the characters these parsers care about, so that
    /// the interesting branches are reached, not only the first `None`.
    fn header_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("<".to_owned()),
                Just(">".to_owned()),
                Just(";".to_owned()),
                Just(",".to_owned()),
                Just("=".to_owned()),
                Just("\"".to_owned()),
                Just(" ".to_owned()),
                Just("-".to_owned()),
                Just("rel=\"next\"".to_owned()),
                Just("Bearer ".to_owned()),
                Just("realm=".to_owned()),
                Just("sha256:".to_owned()),
                Just("GMT".to_owned()),
                Just("Sun, 06 Nov ".to_owned()),
                "[0-9]{1,30}",
                "[a-zA-Z/:.?&]{1,12}",
                any::<String>(),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    fn check_all(value: &str) -> Result<(), TestCaseError> {
        let now = SystemTime::now();
        let base = Url::parse("https://registry.example/").unwrap();
        if let Some(d) = retry_after(value, now) {
            prop_assert!(d <= LONGEST_DELAY);
        }
        if let Some(n) = leading_number(value) {
            prop_assert!(reset_delay(n, now) <= LONGEST_DELAY);
        }
        if let Challenge::Bearer { realm, .. } = challenge(value) {
            prop_assert!(realm.len() <= MAX_URL_LEN);
        }
        if let Some(next) = next_link(value) {
            prop_assert!(next.len() <= MAX_URL_LEN);
            let _ = location(&base, &next);
        }
        if let Ok(url) = location(&base, value) {
            prop_assert!(matches!(url.scheme(), "http" | "https"));
        }
        let _ = content_length(value);
        let _ = content_digest(value);
        let _ = media_type(value);
        prop_assert!(quote(value, 100).chars().count() <= 101);
        Ok(())
    }

    proptest! {
        #[test]
        fn no_header_value_panics(value in header_text()) {
            check_all(&value)?;
        }

        #[test]
        fn numbers_of_any_size(digits in "[0-9]{1,400}") {
            check_all(&digits)?;
            let date = format!("Sun, 06 Nov {digits} 08:49:37 GMT");
            check_all(&date)?;
        }

        #[test]
        fn long_values_take_linear_time(unit in header_text(), repeat in 1usize..2000) {
            let value: String = unit.repeat(repeat).chars().take(64 * 1024).collect();
            let started = Instant::now();
            check_all(&value)?;
            prop_assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        }
    }
}
