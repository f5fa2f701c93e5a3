//! Request counters per host: [`HostStats`], what a run summary prints as
//! "requests per registry". Counted where requests are sent (`transport.rs`)
//! and retried (`retry.rs`); this file only holds and snapshots them.

use std::sync::atomic::AtomicU64;

use crate::counter::{add, get, snapshot};

use serde::Serialize;

/// What one host (`host[:port]`) saw during a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HostStats {
    /// `host[:port]`: a registry, a token server or a storage backend.
    pub host: String,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Responses with a 2xx status.
    pub status_2xx: u64,
    /// Responses with a 3xx status.
    pub status_3xx: u64,
    /// Responses with a 4xx status (429 included).
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
    /// Requests that got no response: refused, reset, timed out.
    pub transport_errors: u64,
    /// Responses with status 429 (Too Many Requests).
    pub throttled: u64,
    /// Operations attempted again after a transient failure.
    pub retries: u64,
    /// Times the limiter cut the rate (one per burst of 429s).
    pub rate_cuts: u64,
    /// Milliseconds the host was paused on `Retry-After` or
    /// `RateLimit-Reset`.
    pub paused_ms: u64,
    /// The lowest rate the limiter paced one of the host's operation
    /// classes at when the snapshot was taken, requests per second; 0 when
    /// none is paced (the host never pushed back).
    pub rate_rps: f64,
}

/// The live counters behind [`HostStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    by_class: [AtomicU64; 4],
    transport_errors: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
    rate_cuts: AtomicU64,
    paused_ms: AtomicU64,
}

impl Counters {
    /// A request is about to be sent.
    pub fn request(&self) {
        add(&self.requests, 1);
    }

    /// A response arrived with `status`.
    pub fn response(&self, status: u16) {
        if let Some(slot) = (status / 100)
            .checked_sub(2)
            .and_then(|i| self.by_class.get(usize::from(i)))
        {
            add(slot, 1);
        }
        if status == 429 {
            add(&self.throttled, 1);
        }
    }

    /// A request failed without a response.
    pub fn transport_error(&self) {
        add(&self.transport_errors, 1);
    }

    /// An operation is tried again.
    pub fn retry(&self) {
        add(&self.retries, 1);
    }

    /// The limiter cut its rate.
    pub fn rate_cut(&self) {
        add(&self.rate_cuts, 1);
    }

    /// The host's pause grew by `ms` milliseconds.
    pub fn paused(&self, ms: u64) {
        add(&self.paused_ms, ms);
    }

    /// The counters now, for `host` at `rate_rps`.
    pub fn snapshot(&self, host: &str, rate_rps: f64) -> HostStats {
        let class = |i: usize| get(&self.by_class[i]);
        snapshot!(self => HostStats {
            requests, transport_errors, throttled, retries, rate_cuts, paused_ms;
            host: host.to_owned(),
            status_2xx: class(0),
            status_3xx: class(1),
            status_4xx: class(2),
            status_5xx: class(3),
            rate_rps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_status_class() {
        let c = Counters::default();
        for status in [200, 201, 302, 404, 429, 503, 101] {
            c.request();
            c.response(status);
        }
        let s = c.snapshot("h", 1.0);
        assert_eq!(
            (
                s.requests,
                s.status_2xx,
                s.status_3xx,
                s.status_4xx,
                s.status_5xx
            ),
            (7, 2, 1, 2, 1)
        );
        assert_eq!(s.throttled, 1);
    }
}
