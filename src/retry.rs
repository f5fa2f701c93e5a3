//! The one retry policy of every HTTP peer: registries, Fulcio, Rekor, the
//! OIDC token endpoint and the GitHub API. This module owns *when* to try
//! again and *how long* to wait; *what* failed is told by the caller's
//! error type through [`Retryable`], with helpers for the common cases: an
//! HTTP status ([`Class::of_status`]), a `Retry-After` header
//! ([`retry_after`]) and reqwest's transport errors
//! ([`Class::of_transport`]).
//!
//! The wait before a retry is an exponential, optionally jittered backoff
//! ([`Backoff`]), from a separate budget for throttling (429) than for
//! failures, so that one does not use up the other; a server's
//! `Retry-After` lengthens it, capped by [`Policy::max_retry_after`]. Rate is
//! not this module's business: the registry's per-host limiter
//! (`registry/http/limit.rs`) paces every attempt and pauses a host on its
//! own reading of `Retry-After`.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ConstantBuilder, ExponentialBuilder, Retryable as _};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The longest `Retry-After` a retry waits for by default. A server asking
/// for more gets this wait, then another attempt.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What a failure says about trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Trying again cannot help (a 4xx other than 408 and 429, a bad
    /// certificate, a digest mismatch).
    Permanent,
    /// A failure that may pass (a 5xx, 408, a refused or reset connection,
    /// a timeout); `after` is the server's `Retry-After`, if it sent one.
    Transient { after: Option<Duration> },
    /// The server asks us to slow down (429); retried from its own budget.
    Throttled { after: Option<Duration> },
}

impl Class {
    /// The class of an HTTP status: 429 is [`Class::Throttled`], 408 and
    /// 5xx are [`Class::Transient`], anything else [`Class::Permanent`].
    /// `Retry-After` is read from `headers`.
    #[must_use]
    pub fn of_status(status: u16, headers: &HeaderMap) -> Class {
        let after = || retry_after(headers);
        match status {
            429 => Class::Throttled { after: after() },
            _ if is_transient_status(status) => Class::Transient { after: after() },
            _ => Class::Permanent,
        }
    }

    /// The class of a reqwest error: timeouts and failures to connect, to
    /// send the request or to read the body are transient; the rest
    /// (a redirect loop, a body that is not what was asked for) is not.
    #[must_use]
    pub fn of_transport(error: &reqwest::Error) -> Class {
        if error.is_timeout() || error.is_connect() || error.is_request() || error.is_body() {
            Class::Transient { after: None }
        } else {
            Class::Permanent
        }
    }

    /// The server's `Retry-After`, when it gave one.
    #[must_use]
    pub fn after(self) -> Option<Duration> {
        match self {
            Class::Permanent => None,
            Class::Transient { after } | Class::Throttled { after } => after,
        }
    }
}

/// 408, 429 and 5xx: statuses that may pass if the request is made again.
#[must_use]
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The `Retry-After` header of a response, as a delay from now.
#[must_use]
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// `Retry-After` (RFC 9110, section 10.2.3): delay seconds, or an HTTP date
/// (`httpdate` reads the three formats RFC 9110 accepts). A date in the past
/// means now; anything else is no hint at all.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// An error that knows its [`Class`].
pub trait Retryable {
    /// Whether and how this failure may be tried again.
    fn class(&self) -> Class;
}

/// An exponential backoff: `retries` after the first attempt, the first
/// after `min_delay`, doubling up to `max_delay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt (0: none).
    pub retries: usize,
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// The longest delay (before jitter).
    pub max_delay: Duration,
}

impl Backoff {
    fn delays(self, jitter: bool) -> impl Iterator<Item = Duration> {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay.max(self.min_delay))
            .with_max_times(self.retries);
        if jitter {
            builder.with_jitter().build()
        } else {
            builder.build()
        }
    }
}

/// How often and how patiently to try an operation again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The budget for [`Class::Transient`] failures.
    pub failures: Backoff,
    /// The budget for [`Class::Throttled`] answers.
    pub throttled: Backoff,
    /// The longest wait a `Retry-After` can ask for.
    pub max_retry_after: Duration,
    /// Add up to 100% random jitter to each backoff delay, so that many
    /// clients that failed together do not retry together.
    pub jitter: bool,
}

impl Policy {
    /// `failures` for both budgets, jitter on, `Retry-After` capped at
    /// [`DEFAULT_MAX_RETRY_AFTER`].
    #[must_use]
    pub const fn new(failures: Backoff) -> Policy {
        Policy {
            failures,
            throttled: failures,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            jitter: true,
        }
    }

    /// A separate budget for 429s.
    #[must_use]
    pub const fn with_throttled(self, throttled: Backoff) -> Policy {
        Policy { throttled, ..self }
    }

    /// Another cap on `Retry-After`.
    #[must_use]
    pub const fn with_max_retry_after(self, max_retry_after: Duration) -> Policy {
        Policy {
            max_retry_after,
            ..self
        }
    }

    /// The wait before the next retry: the backoff's `next` delay (`None`
    /// when that budget is spent: no retry), lengthened to the server's
    /// `Retry-After` up to the cap.
    #[must_use]
    pub fn wait(&self, class: Class, next: Option<Duration>) -> Option<Duration> {
        let delay = next?;
        Some(match class.after() {
            Some(after) => delay.max(after.min(self.max_retry_after)),
            None => delay,
        })
    }

    /// Run `operation` until it succeeds, fails with a [`Class::Permanent`]
    /// error, or the budget of its failures runs out; the last error is
    /// returned as it is. `what` names the operation in logs.
    ///
    /// # Errors
    ///
    /// The last error of `operation`.
    pub async fn run<T, E, F, Fut>(&self, what: &str, operation: F) -> Result<T, E>
    where
        E: Retryable + Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_notify(what, operation, |_, _| {}).await
    }

    /// [`Policy::run`], calling `notify` with the error and the wait before
    /// each retry (to count retries).
    ///
    /// # Errors
    ///
    /// The last error of `operation`.
    pub async fn run_notify<T, E, F, Fut, N>(
        &self,
        what: &str,
        operation: F,
        mut notify: N,
    ) -> Result<T, E>
    where
        E: Retryable + Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        N: FnMut(&E, Duration),
    {
        // backon runs the loop; the delays come from two schedules, so that
        // 429s do not use up the budget of real failures, and vice versa.
        let mut failures = self.failures.delays(self.jitter);
        let mut throttles = self.throttled.delays(self.jitter);
        operation
            .retry(ConstantBuilder::new().without_max_times())
            .when(|error: &E| error.class() != Class::Permanent)
            .adjust(move |error: &E, _| {
                let class = error.class();
                let next = match class {
                    Class::Throttled { .. } => throttles.next(),
                    _ => failures.next(),
                };
                self.wait(class, next)
            })
            .notify(|error: &E, delay: Duration| {
                tracing::warn!(operation = what, %error, delay_ms = delay.as_millis() as u64, "transient error, retrying");
                notify(error, delay);
            })
            .await
    }
}

/// An attempt of [`Policy::send_text`] that got no usable answer: a
/// transient status (with its body), or a transport failure.
#[derive(Debug)]
pub enum HttpFailure {
    /// The server answered with a status worth another attempt.
    Status {
        status: reqwest::StatusCode,
        body: String,
        class: Class,
    },
    /// The request or its answer was lost on the way.
    Transport(reqwest::Error),
    /// The answer is larger than [`MAX_ANSWER`]: refused, and not read on.
    TooLarge,
}

/// The most an answer read by [`Policy::send_text`] may hold. Fulcio,
/// Rekor, timestamp authorities, token endpoints and credential exchanges
/// answer in kilobytes (a Fulcio chain is about 3 KiB, an RFC 3161
/// response under 10 KiB); a hostile or broken service that sends more is
/// cut off here instead of filling memory.
pub const MAX_ANSWER: usize = 1 << 20;

/// The body of `response`, unless it is larger than [`MAX_ANSWER`].
async fn read_capped(mut response: reqwest::Response) -> Result<bytes::Bytes, HttpFailure> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER as u64)
    {
        return Err(HttpFailure::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(HttpFailure::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(HttpFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

impl Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::Status { status, .. } => write!(f, "HTTP {status}"),
            HttpFailure::Transport(error) => write!(f, "{error}"),
            HttpFailure::TooLarge => write!(
                f,
                "the answer is larger than {} KiB, far more than this service sends; refused unread",
                MAX_ANSWER / 1024
            ),
        }
    }
}

impl Retryable for HttpFailure {
    fn class(&self) -> Class {
        match self {
            HttpFailure::Status { class, .. } => *class,
            HttpFailure::Transport(error) => Class::of_transport(error),
            HttpFailure::TooLarge => Class::Permanent,
        }
    }
}

impl Policy {
    /// Send the request `build` makes, again while the answer's status is
    /// transient ([`Class::of_status`]) or the connection fails, and return
    /// the first other answer's status and body, whatever its status.
    /// For requests that are safe to repeat.
    ///
    /// # Errors
    ///
    /// The last failure, when the budget ran out or a transport failure was
    /// permanent.
    pub async fn send_text<B>(
        &self,
        what: &str,
        build: B,
    ) -> Result<(reqwest::StatusCode, String), HttpFailure>
    where
        B: Fn() -> reqwest::RequestBuilder,
    {
        let (status, body) = self.send_bytes(what, build).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// [`Policy::send_text`] for a binary answer (an RFC 3161 timestamp).
    ///
    /// # Errors
    ///
    /// As [`Policy::send_text`].
    pub async fn send_bytes<B>(
        &self,
        what: &str,
        build: B,
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), HttpFailure>
    where
        B: Fn() -> reqwest::RequestBuilder,
    {
        let attempt = || async {
            let response = build().send().await.map_err(HttpFailure::Transport)?;
            let status = response.status();
            let class = Class::of_status(status.as_u16(), response.headers());
            let body = read_capped(response).await?;
            match class {
                Class::Permanent => Ok((status, body)),
                class => Err(HttpFailure::Status {
                    status,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    class,
                }),
            }
        };
        self.run(what, attempt).await
    }

    /// Attempts in all when every one fails transiently: the first and the
    /// failures' retries.
    #[must_use]
    pub const fn attempts(&self) -> usize {
        self.failures.retries + 1
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use reqwest::header::HeaderValue;

    use super::*;

    #[derive(Debug)]
    struct Fail(Class);

    impl Display for Fail {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl Retryable for Fail {
        fn class(&self) -> Class {
            self.0
        }
    }

    const MS: Duration = Duration::from_millis(1);

    fn fast(retries: usize) -> Policy {
        Policy::new(Backoff {
            retries,
            min_delay: MS,
            max_delay: 2 * MS,
        })
    }

    /// Runs `policy` over `answers` (one per attempt, `Ok` after the last)
    /// and returns the result, the number of attempts and the waits.
    async fn drive(policy: Policy, answers: &[Class]) -> (Result<u8, Fail>, usize, Vec<Duration>) {
        let calls = Mutex::new(0);
        let waits = Mutex::new(Vec::new());
        let result = policy
            .run_notify(
                "test",
                || async {
                    let mut n = calls.lock().unwrap();
                    *n += 1;
                    match answers.get(*n - 1) {
                        Some(class) => Err(Fail(*class)),
                        None => Ok(7),
                    }
                },
                |_, wait| waits.lock().unwrap().push(wait),
            )
            .await;
        (
            result,
            calls.into_inner().unwrap(),
            waits.into_inner().unwrap(),
        )
    }

    const TRANSIENT: Class = Class::Transient { after: None };
    const THROTTLED: Class = Class::Throttled { after: None };

    #[tokio::test]
    async fn transient_failures_are_retried_until_the_budget_is_spent() {
        let (result, calls, _) = drive(fast(3), &[TRANSIENT; 10]).await;
        assert!(matches!(result, Err(Fail(TRANSIENT))));
        assert_eq!(calls, 4);
        let (result, calls, _) = drive(fast(3), &[TRANSIENT; 2]).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let (result, calls, waits) = drive(fast(3), &[Class::Permanent, TRANSIENT]).await;
        assert!(matches!(result, Err(Fail(Class::Permanent))));
        assert_eq!(calls, 1);
        assert!(waits.is_empty());
    }

    #[tokio::test]
    async fn throttling_has_its_own_budget() {
        let policy = fast(1).with_throttled(Backoff {
            retries: 5,
            min_delay: MS,
            max_delay: MS,
        });
        let answers = [THROTTLED, THROTTLED, THROTTLED, TRANSIENT, THROTTLED];
        let (result, calls, _) = drive(policy, &answers).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 6);
        // A second failure is one too many for a budget of one.
        let (result, _, _) = drive(policy, &[TRANSIENT, THROTTLED, TRANSIENT]).await;
        assert!(matches!(result, Err(Fail(TRANSIENT))));
    }

    #[tokio::test]
    async fn retry_after_is_waited_for() {
        let after = Some(Duration::from_millis(300));
        let started = Instant::now();
        let (result, calls, waits) = drive(fast(3), &[Class::Throttled { after }]).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 2);
        assert_eq!(waits, [Duration::from_millis(300)]);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn retry_after_is_capped() {
        let policy = fast(3).with_max_retry_after(Duration::from_millis(20));
        let after = Some(Duration::from_secs(3600));
        let started = Instant::now();
        let (result, _, waits) = drive(policy, &[Class::Transient { after }]).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(waits, [Duration::from_millis(20)]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_wait_is_the_longer_of_backoff_and_retry_after() {
        let policy = fast(1);
        let s = Duration::from_secs;
        let hint = |after| Class::Transient { after: Some(after) };
        assert_eq!(policy.wait(hint(s(3)), Some(s(1))), Some(s(3)));
        assert_eq!(policy.wait(hint(s(1)), Some(s(3))), Some(s(3)));
        assert_eq!(policy.wait(hint(s(86_400)), Some(s(1))), Some(s(60)));
        assert_eq!(policy.wait(TRANSIENT, Some(s(2))), Some(s(2)));
        // A spent budget is not revived by a hint.
        assert_eq!(policy.wait(hint(s(1)), None), None);
    }

    #[test]
    fn statuses_are_classified() {
        let none = HeaderMap::new();
        let mut hinted = HeaderMap::new();
        hinted.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let seven = Some(Duration::from_secs(7));
        assert_eq!(
            Class::of_status(429, &hinted),
            Class::Throttled { after: seven }
        );
        assert_eq!(
            Class::of_status(503, &hinted),
            Class::Transient { after: seven }
        );
        for status in [408, 500, 502, 504] {
            assert_eq!(Class::of_status(status, &none), TRANSIENT, "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422] {
            assert_eq!(
                Class::of_status(status, &hinted),
                Class::Permanent,
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
