//! The registry's use of the shared retry policy ([`crate::retry`]): an
//! operation that fails with a transient error ([`Error::is_transient`],
//! decided in `error.rs`, not here) is run again after an exponential,
//! jittered delay, 429s from their own budget. Rate is not this file's
//! business: every attempt passes the host's limiter again (`limit.rs`),
//! which is what slows down after a 429 and pauses the host on a
//! `Retry-After`, so the registry's errors carry no hint of their own.
//!
//! Where retries happen: around whole operations of `HttpRegistry` (a
//! manifest read including its body, a HEAD, a page of tags, a manifest
//! push, a mount, a whole small-blob upload with a fresh session), not
//! around single requests: a body can stall after the headers arrived, and
//! an upload session that failed halfway must not be reused. See `upload.rs`
//! for chunked uploads.

use std::future::Future;
use std::time::Duration;

use super::stats::Counters;
use crate::registry::error::{Error, Result};
use crate::retry::{Backoff, Class, Policy, Retryable};

/// Default retries after the first attempt, for errors other than 429.
pub const DEFAULT_MAX_RETRIES: usize = 6;
/// Default first delay; it doubles per retry.
pub const DEFAULT_MIN_DELAY: Duration = Duration::from_millis(200);
/// Default longest delay before jitter.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(10);

/// 429s get their own, larger budget: they mean "slower", and the limiter
/// already is; a promotion must not fail because of them. 20 retries with
/// delays from 100 ms doubling to 10 s are about 2.5 minutes of patience,
/// on top of any `Retry-After` pause.
const THROTTLED: Backoff = Backoff {
    retries: 20,
    min_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(10),
};

/// How often and how patiently to retry. Part of `HttpOptions`.
///
/// The default, 6 retries from 200 ms doubling up to 10 s, each delay
/// plus up to 100% jitter, waits 12.6 to 25 s in all: long enough for a
/// registry restart or a load balancer's failover, short enough that a
/// dead registry fails the run within half a minute (kpromo waited from
/// 30 s doubling to 5 minutes).
#[derive(Clone, Debug)]
pub struct RetryOptions {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: usize,
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// The longest delay, before jitter.
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> RetryOptions {
        RetryOptions {
            max_retries: DEFAULT_MAX_RETRIES,
            min_delay: DEFAULT_MIN_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

impl RetryOptions {
    fn policy(&self) -> Policy {
        Policy::new(Backoff {
            retries: self.max_retries,
            min_delay: self.min_delay,
            max_delay: self.max_delay,
        })
        .with_throttled(THROTTLED)
    }
}

impl Retryable for Error {
    fn class(&self) -> Class {
        if !self.is_transient() {
            Class::Permanent
        } else if self.is_throttled() {
            Class::Throttled { after: None }
        } else {
            Class::Transient { after: None }
        }
    }
}

/// Run `operation` until it succeeds, fails permanently, or the retries
/// run out; the last error is returned as it is (so
/// [`Error::is_transient`] still tells the caller it may try later).
/// `what` names the operation in logs; every retry is counted in
/// `counters`.
pub(crate) async fn retrying<T, F, Fut>(
    options: &RetryOptions,
    counters: &Counters,
    what: &str,
    operation: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    options
        .policy()
        .run_notify(what, operation, |_, _| counters.retry())
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn status(code: u16) -> Error {
        Error::Status {
            method: "GET".into(),
            url: "http://127.0.0.1/v2/".into(),
            status: code,
            body: String::new(),
        }
    }

    fn fast(max_retries: usize) -> RetryOptions {
        RetryOptions {
            max_retries,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_the_budget_is_spent() {
        let counters = Counters::default();
        let calls = AtomicUsize::new(0);
        let result: Result<()> = retrying(&fast(3), &counters, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status(503))
        })
        .await;
        assert!(matches!(result, Err(Error::Status { status: 503, .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(counters.snapshot("h", 1.0).retries, 3);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let counters = Counters::default();
        let calls = AtomicUsize::new(0);
        let result: Result<()> = retrying(&fast(3), &counters, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status(404))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn throttling_does_not_spend_the_failure_budget() {
        let counters = Counters::default();
        let calls = AtomicUsize::new(0);
        let result = retrying(&fast(1), &counters, "test", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(status(429)),
                3 => Err(status(502)),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(counters.snapshot("h", 1.0).retries, 4);
    }
}
