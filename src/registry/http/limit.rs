//! The per-host adaptive rate limiter. Every request of the registry layer
//! (registry calls, token fetches, listing, uploads) is admitted by the
//! limiter of its URL's host in `transport::send`, and reports its response
//! back; nothing else in the crate sends requests, so nothing bypasses it.
//! It neither retries nor classifies errors (`retry.rs` and `error.rs` do).
//!
//! # Algorithm
//!
//! Each host (`host[:port]` of the URL: a registry, its token server, a
//! storage backend) has its own limiter with:
//!
//! - **A pacer.** Requests start at least `1/rate` seconds apart, in FIFO
//!   order (at most two back to back after an idle spell). No long burst:
//!   registries police with leaky buckets (nginx `limit_req`, Google's
//!   quota servers), which a burst only overflows.
//! - **A concurrency cap** ([`RateOptions::max_in_flight`], 32): requests
//!   waiting for their response headers. Twice the copy executor's default
//!   concurrency (16), so it binds only when several callers share a host.
//! - **AIMD on the rate**, as TCP congestion control does with its window:
//!   - Start at [`RateOptions::initial_rps`]: 50 r/s, kpromo's limit (which
//!     registry.k8s.io's own cap of 5,000/min, ~83 r/s, leaves room for).
//!   - Slow start, as TCP's: until the host first pushes back (a 429 or
//!     503, `Retry-After`, `RateLimit-Remaining` under 10%), +1 r/s per
//!     accepted response while the pacer is what holds requests back, which
//!     doubles the rate every second up to the ceiling. A registry without
//!     limits is then used at the ceiling within two seconds instead of
//!     thirty (`bench/promote.sh`: README "Benchmarks").
//!   - Additive increase after that: +1 r/s per 10 accepted responses,
//!     while the pacer is what holds requests back (a request waited for its
//!     slot within the last second; a rate nobody uses is never raised). At
//!     20 r/s this is +2 r/s per second: the probe upward takes seconds, not
//!     minutes.
//!   - Ceiling: 4x the initial rate (200 r/s by default), 20% of Artifact
//!     Registry's default quota of 60,000 requests/min per project and
//!     region, which other jobs share.
//!   - Multiplicative decrease on a 429: the rate becomes 0.7x the lower of
//!     the current rate and the rate of responses the host accepted in the
//!     last second (its real limit, measured while we overshot it). 0.7 is
//!     TCP CUBIC's factor (RFC 9438): a sawtooth between 0.7x and 1x of the
//!     limit averages ~85% of it, where Reno's 0.5 averages 75%. One cut per
//!     second at most: the 429s of requests already in flight report the
//!     same overshoot.
//!   - Floor: 0.5 r/s. Slower than that a promotion of thousands of
//!     requests takes hours; a registry that wants less says so with
//!     `Retry-After`.
//! - **Pauses.** `Retry-After` (seconds or an HTTP date) on a 429 or 503
//!   pauses the whole host until then, capped at 5 minutes (kpromo's longest
//!   retry delay; a longer wait is a quota to fix, not to sleep through).
//!   `RateLimit-Remaining: 0` with `RateLimit-Reset` pauses until the reset;
//!   with less than 10% of `RateLimit-Limit` remaining the rate is lowered
//!   to spread what remains evenly until the reset. Docker Hub sends
//!   `RateLimit-Limit: 100;w=21600` without a reset: its window is a policy,
//!   not the time left, so only its 429s slow us down.
//!
//! kpromo instead runs one global 50 r/s bucket for every registry and
//! stops for 10 s on each 429: a slow host slows all of them, and a fast one
//! is never used beyond 50 r/s.
//!
//! [`LimiterMode::Kpromo`] replaces all of the above with kpromo's own
//! algorithm, only to benchmark against it (`bench/ratelimit.sh`).
//!
//! The concurrency permit is held until the response headers arrive; a body
//! streamed afterwards (a blob download) no longer counts against the cap.
//! Redirects that reqwest follows (blob downloads sent to a storage backend)
//! are paced with the registry's request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::headers;
use super::stats::{Counters, HostStats};

/// Default initial rate, requests per second per host (kpromo's 50).
pub const DEFAULT_INITIAL_RPS: f64 = 50.0;
/// Default ceiling as a multiple of the initial rate.
pub const DEFAULT_CEILING_FACTOR: f64 = 4.0;
/// Default cap on requests in flight per host.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;

/// The lowest rate the limiter goes down to, requests per second.
const FLOOR_RPS: f64 = 0.5;
/// Accepted responses per +1 r/s step.
const INCREASE_EVERY: u32 = 10;
/// Additive increase step, requests per second.
const INCREASE_STEP: f64 = 1.0;
/// Multiplicative decrease on a 429 (TCP CUBIC's beta).
const DECREASE: f64 = 0.7;
/// At most one cut per this long; also the window the accepted rate is
/// measured over, and how recently a request must have waited for the
/// rate to be raised.
const WINDOW: Duration = Duration::from_secs(1);
/// The longest pause a `Retry-After` or `RateLimit-Reset` gets.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Below this share of `RateLimit-Limit` remaining, spread the rest.
const LOW_REMAINING: f64 = 0.1;
/// Requests the adaptive pacer lets go back to back after an idle spell.
const ADAPTIVE_BURST: u32 = 2;
/// kpromo's token bucket burst.
const KPROMO_BURST: u32 = 5;
/// kpromo's pause of every request after a 429.
const KPROMO_PAUSE: Duration = Duration::from_secs(10);

/// Which algorithm paces requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimiterMode {
    /// One adaptive limiter per host (the module documentation).
    #[default]
    Adaptive,
    /// A simulation of kpromo's published algorithm, which exists only to
    /// benchmark the adaptive mode against it (`bench/ratelimit.sh`, the
    /// hidden `run --limiter kpromo`): ONE limiter shared by every host, a
    /// fixed rate of [`RateOptions::initial_rps`] (kpromo's 50 r/s) with a
    /// burst of 5, and a 10 s pause of all requests on each 429. It never
    /// adapts and ignores `Retry-After` and `RateLimit-*`. Retries stay
    /// promoter's own (`retry.rs`); kpromo's cool-down and 30 s first retry
    /// delay are left out, which only flatters it.
    Kpromo,
}

/// How fast to talk to registries. Part of `HttpOptions`.
#[derive(Clone, Debug)]
pub struct RateOptions {
    /// Initial rate of every host, requests per second (`--max-rps`,
    /// default 50).
    pub initial_rps: f64,
    /// Initial rate of particular hosts (`host[:port]` as in the URL;
    /// `docker.io` also names `registry-1.docker.io`).
    pub per_host_rps: HashMap<String, f64>,
    /// The rate never rises above `initial × ceiling_factor` (default 4;
    /// 1 makes the initial rate a hard maximum).
    pub ceiling_factor: f64,
    /// Requests in flight per host (default 32).
    pub max_in_flight: usize,
    /// The algorithm (default adaptive; kpromo's only for benchmarks).
    pub mode: LimiterMode,
}

impl Default for RateOptions {
    fn default() -> RateOptions {
        RateOptions {
            initial_rps: DEFAULT_INITIAL_RPS,
            per_host_rps: HashMap::new(),
            ceiling_factor: DEFAULT_CEILING_FACTOR,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            mode: LimiterMode::Adaptive,
        }
    }
}

impl RateOptions {
    fn initial_for(&self, host: &str) -> f64 {
        let alias = match host {
            "registry-1.docker.io" | "index.docker.io" => Some("docker.io"),
            _ => None,
        };
        let rps = self
            .per_host_rps
            .get(host)
            .or_else(|| alias.and_then(|a| self.per_host_rps.get(a)))
            .copied()
            .unwrap_or(self.initial_rps);
        if rps.is_finite() && rps > 0.0 {
            rps.max(FLOOR_RPS)
        } else {
            DEFAULT_INITIAL_RPS
        }
    }
}

/// What a response says about the host's limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Feedback {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, as a delay from now.
    pub retry_after: Option<Duration>,
    /// `RateLimit-Limit` (the quota, without its `;w=` window).
    pub limit: Option<u64>,
    /// `RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// `RateLimit-Reset`, as a delay from now.
    pub reset: Option<Duration>,
}

impl Feedback {
    /// Read the status and the limit headers of a response, `now` being the
    /// wall clock (for HTTP dates).
    pub fn new(status: u16, headers: &HeaderMap, now: SystemTime) -> Feedback {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Feedback {
            status,
            retry_after: text("retry-after").and_then(|v| headers::retry_after(v, now)),
            limit: text("ratelimit-limit").and_then(headers::leading_number),
            remaining: text("ratelimit-remaining").and_then(headers::leading_number),
            reset: text("ratelimit-reset")
                .and_then(headers::leading_number)
                .map(|n| headers::reset_delay(n, now)),
        }
    }
}

/// The pacing and AIMD state of one host. Pure: time comes in as `now`.
#[derive(Debug)]
struct Pace {
    mode: LimiterMode,
    rate: f64,
    ceiling: f64,
    next_slot: Instant,
    paused_until: Instant,
    successes: u32,
    last_cut: Option<Instant>,
    last_wait: Option<Instant>,
    first_request: Option<Instant>,
    accepted: VecDeque<Instant>,
    /// No push-back from the host yet: increase fast.
    slow_start: bool,
}

/// What [`Pace::observe`] changed, for the counters.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    cut: bool,
    paused: Duration,
}

impl Pace {
    /// An adaptive pace (the tests' shorthand).
    #[cfg(test)]
    fn new(initial: f64, ceiling_factor: f64, now: Instant) -> Pace {
        Pace::with_mode(LimiterMode::Adaptive, initial, ceiling_factor, now)
    }

    fn with_mode(mode: LimiterMode, initial: f64, ceiling_factor: f64, now: Instant) -> Pace {
        Pace {
            mode,
            rate: initial,
            ceiling: (initial * ceiling_factor.max(1.0)).max(initial),
            next_slot: now,
            paused_until: now,
            successes: 0,
            last_cut: None,
            last_wait: None,
            first_request: None,
            accepted: VecDeque::new(),
            slow_start: true,
        }
    }

    /// Take a slot now, or say when to ask again.
    fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.paused_until > now {
            return Err(self.paused_until);
        }
        if self.next_slot > now {
            self.last_wait = Some(now);
            return Err(self.next_slot);
        }
        self.first_request.get_or_insert(now);
        // Keep the schedule when a waiter wakes a little late; after an idle
        // spell this lets `burst` requests go back to back, no more (two
        // when adaptive; kpromo's token bucket holds five).
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let burst = match self.mode {
            LimiterMode::Adaptive => ADAPTIVE_BURST,
            LimiterMode::Kpromo => KPROMO_BURST,
        };
        let earliest = now
            .checked_sub(interval * (burst - ADAPTIVE_BURST))
            .unwrap_or(now);
        self.next_slot = (self.next_slot + interval).max(earliest);
        Ok(())
    }

    fn accepted_rate(&mut self, now: Instant) -> Option<f64> {
        while self
            .accepted
            .front()
            .is_some_and(|&t| now.duration_since(t) > WINDOW)
        {
            self.accepted.pop_front();
        }
        let long_enough = self
            .first_request
            .is_some_and(|t| now.duration_since(t) >= WINDOW);
        long_enough.then(|| self.accepted.len() as f64 / WINDOW.as_secs_f64())
    }

    fn set_rate(&mut self, rate: f64) {
        self.rate = rate.clamp(FLOOR_RPS, self.ceiling);
    }

    fn pause_until(&mut self, now: Instant, until: Instant, changes: &mut Changes) {
        let until = until.min(now + MAX_PAUSE);
        let from = self.paused_until.max(now);
        if until > from {
            changes.paused += until - from;
            self.paused_until = until;
        }
    }

    /// Learn from one response.
    fn observe(&mut self, now: Instant, feedback: &Feedback) -> Changes {
        let mut changes = Changes::default();
        if self.mode == LimiterMode::Kpromo {
            // kpromo: a fixed rate; each 429 stops everything for 10 s.
            if feedback.status == 429 {
                self.pause_until(now, now + KPROMO_PAUSE, &mut changes);
            }
            return changes;
        }
        // Any push-back ends the slow start for good.
        if matches!(feedback.status, 429 | 503)
            || feedback.retry_after.is_some()
            || feedback.remaining.is_some_and(|r| {
                feedback
                    .limit
                    .is_some_and(|l| (r as f64) < l as f64 * LOW_REMAINING)
            })
        {
            self.slow_start = false;
        }
        match feedback.status {
            429 => {
                let holding_off = self
                    .last_cut
                    .is_some_and(|t| now.duration_since(t) < WINDOW);
                if !holding_off {
                    let measured = self.accepted_rate(now).filter(|&r| r > 0.0);
                    let base = measured.map_or(self.rate, |m| m.min(self.rate));
                    self.set_rate(base * DECREASE);
                    self.last_cut = Some(now);
                    self.successes = 0;
                    changes.cut = true;
                }
            }
            500..=599 => {}
            _ => {
                self.accepted.push_back(now);
                self.successes += 1;
                if self.successes >= INCREASE_EVERY {
                    self.successes = 0;
                    let binding = self
                        .last_wait
                        .is_some_and(|t| now.duration_since(t) <= WINDOW);
                    if binding {
                        // Slow start: +1 r/s per accepted response, which
                        // doubles the rate each second; then additive.
                        let step = if self.slow_start {
                            f64::from(INCREASE_EVERY)
                        } else {
                            INCREASE_STEP
                        };
                        self.set_rate(self.rate + step);
                    }
                }
            }
        }
        if matches!(feedback.status, 429 | 503)
            && let Some(delay) = feedback.retry_after
        {
            self.pause_until(now, now + delay, &mut changes);
        }
        if let (Some(remaining), Some(reset)) = (feedback.remaining, feedback.reset) {
            if remaining == 0 {
                self.pause_until(now, now + reset, &mut changes);
            } else if let Some(limit) = feedback.limit
                && (remaining as f64) < limit as f64 * LOW_REMAINING
                && !reset.is_zero()
            {
                let spread = remaining as f64 / reset.as_secs_f64();
                if spread < self.rate {
                    self.set_rate(spread);
                }
            }
        }
        changes
    }
}

/// The limiter of one host, shared by every request to it.
#[derive(Debug)]
pub(crate) struct HostLimiter {
    host: String,
    /// Shared by every host in kpromo mode, with the turnstile and the
    /// concurrency cap: one limiter for all.
    pace: Arc<Mutex<Pace>>,
    /// Waiters queue here (tokio's mutex is FIFO) while the first sleeps
    /// until its slot; it re-checks after waking, so a cut or a pause set
    /// meanwhile applies at once.
    turnstile: Arc<tokio::sync::Mutex<()>>,
    in_flight: Arc<Semaphore>,
    /// Requests, statuses, retries and pauses of this host.
    pub counters: Counters,
}

impl HostLimiter {
    fn new(host: &str, options: &RateOptions) -> HostLimiter {
        let pace = Pace::with_mode(
            options.mode,
            options.initial_for(host),
            options.ceiling_factor,
            Instant::now(),
        );
        HostLimiter {
            host: host.to_owned(),
            pace: Arc::new(Mutex::new(pace)),
            turnstile: Arc::new(tokio::sync::Mutex::new(())),
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            counters: Counters::default(),
        }
    }

    /// A limiter for `host` that shares `global`'s pace, turnstile and
    /// concurrency cap, with counters of its own (kpromo mode).
    fn sharing(host: &str, global: &HostLimiter) -> HostLimiter {
        HostLimiter {
            host: host.to_owned(),
            pace: global.pace.clone(),
            turnstile: global.turnstile.clone(),
            in_flight: global.in_flight.clone(),
            counters: Counters::default(),
        }
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for a concurrency permit and then for a slot of the rate. Hold
    /// the permit until the response headers are in.
    pub async fn admit(&self) -> OwnedSemaphorePermit {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the limiter never closes its semaphore");
        let _turn = self.turnstile.lock().await;
        loop {
            let wait = self.pace().try_take(Instant::now());
            match wait {
                Ok(()) => return permit,
                Err(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    /// Learn from a response's status and headers.
    pub fn observe(&self, status: u16, headers: &HeaderMap) {
        let feedback = Feedback::new(status, headers, SystemTime::now());
        let (changes, rate) = {
            let mut pace = self.pace();
            let changes = pace.observe(Instant::now(), &feedback);
            (changes, pace.rate)
        };
        if changes.cut {
            self.counters.rate_cut();
            tracing::info!(host = %self.host, rate, "429 from registry: rate lowered");
        }
        if !changes.paused.is_zero() {
            self.counters.paused(changes.paused.as_millis() as u64);
            tracing::info!(host = %self.host, pause_ms = changes.paused.as_millis() as u64, "registry asked to wait: host paused");
        }
    }

    /// The counters and the current rate.
    pub fn stats(&self) -> HostStats {
        let rate = self.pace().rate;
        self.counters.snapshot(&self.host, rate)
    }
}

/// Every host's limiter, made on first use.
#[derive(Debug, Default)]
pub(crate) struct Limiters {
    options: RateOptions,
    hosts: Mutex<BTreeMap<String, Arc<HostLimiter>>>,
    /// kpromo mode: the one limiter every host shares.
    global: Option<HostLimiter>,
}

/// `host[:port]` of a URL, the port only when the URL names one.
pub(crate) fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

impl Limiters {
    pub fn new(options: RateOptions) -> Limiters {
        let global = (options.mode == LimiterMode::Kpromo).then(|| HostLimiter::new("*", &options));
        Limiters {
            options,
            hosts: Mutex::new(BTreeMap::new()),
            global,
        }
    }

    /// The limiter of `host` (`host[:port]`).
    pub fn host(&self, host: &str) -> Arc<HostLimiter> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| {
                Arc::new(match &self.global {
                    Some(global) => HostLimiter::sharing(host, global),
                    None => HostLimiter::new(host, &self.options),
                })
            })
            .clone()
    }

    /// The limiter of the host `url` points at.
    pub fn for_url(&self, url: &Url) -> Arc<HostLimiter> {
        self.host(&host_key(url))
    }

    /// Every host's counters, by host name.
    pub fn stats(&self) -> Vec<HostStats> {
        let hosts: Vec<Arc<HostLimiter>> = self
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        hosts.iter().map(|h| h.stats()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    fn status(status: u16) -> Feedback {
        Feedback {
            status,
            ..Feedback::default()
        }
    }

    /// nginx `limit_req rate=<limit>r/s burst=<burst> nodelay`: the excess
    /// drains at `limit` per second; a request that would push it past
    /// `burst` is refused and leaves it as it was.
    struct LeakyBucket {
        limit: f64,
        burst: f64,
        excess: f64,
        last: Instant,
    }

    impl LeakyBucket {
        fn admit(&mut self, now: Instant) -> bool {
            let drained =
                (self.excess - now.duration_since(self.last).as_secs_f64() * self.limit).max(0.0);
            self.last = now;
            if drained + 1.0 > self.burst + 1.0 {
                self.excess = drained;
                false
            } else {
                self.excess = drained + 1.0;
                true
            }
        }
    }

    /// Drive a pace with unlimited demand against a leaky bucket for
    /// `secs` simulated seconds; returns (accepted per second, 429s).
    fn simulate(initial: f64, limit: f64, secs: f64) -> (f64, u32) {
        let start = Instant::now();
        let mut pace = Pace::new(initial, DEFAULT_CEILING_FACTOR, start);
        let mut bucket = LeakyBucket {
            limit,
            burst: 5.0,
            excess: 0.0,
            last: start,
        };
        let (mut now, mut accepted, mut refused) = (start, 0u32, 0u32);
        while now < at(start, secs) {
            match pace.try_take(now) {
                Err(next) => now = next,
                Ok(()) => {
                    // 5 ms round trip: the answer comes back a little later.
                    let answered = now + Duration::from_millis(5);
                    if bucket.admit(now) {
                        accepted += 1;
                        pace.observe(answered, &status(200));
                    } else {
                        refused += 1;
                        pace.observe(answered, &status(429));
                    }
                }
            }
        }
        (f64::from(accepted) / secs, refused)
    }

    #[test]
    fn approaches_a_leaky_bucket_limit_from_above_and_below() {
        for (initial, limit) in [(50.0, 20.0), (5.0, 20.0), (50.0, 80.0), (50.0, 3.0)] {
            let (rate, refused) = simulate(initial, limit, 60.0);
            assert!(
                rate >= 0.85 * limit,
                "initial {initial}, limit {limit}: {rate:.1} r/s"
            );
            assert!(rate <= limit * 1.01 + 0.2, "{rate}");
            // Refusals stay a small share of the requests (measured: 29
            // for 1,180 accepted at 20 r/s, 43 for 180 at 3 r/s).
            assert!(f64::from(refused) < 0.25 * rate * 60.0, "{refused} 429s");
        }
    }

    #[test]
    fn cuts_once_per_burst_of_429s() {
        let start = Instant::now();
        let mut pace = Pace::new(40.0, 4.0, start);
        assert!(pace.observe(at(start, 0.1), &status(429)).cut);
        assert!((pace.rate - 28.0).abs() < 1e-9, "{}", pace.rate);
        assert!(!pace.observe(at(start, 0.2), &status(429)).cut);
        assert!(pace.observe(at(start, 1.2), &status(429)).cut);
        for _ in 0..40 {
            pace.observe(at(start, 9.0), &status(429));
        }
        assert!(pace.rate >= FLOOR_RPS);
    }

    /// Unlimited demand, every response accepted, for `secs`.
    fn drive(pace: &mut Pace, from: Instant, secs: f64) -> Instant {
        let mut now = from;
        while now < at(from, secs) {
            match pace.try_take(now) {
                Err(next) => now = next,
                Ok(()) => {
                    pace.observe(now, &status(200));
                }
            }
        }
        now
    }

    #[test]
    fn slow_start_doubles_until_the_first_push_back() {
        let start = Instant::now();
        let mut pace = Pace::new(10.0, 8.0, start);
        let now = drive(&mut pace, start, 1.0);
        // One second of +1 per accepted response: about twice the rate.
        assert!((18.0..=22.0).contains(&pace.rate), "{}", pace.rate);
        let now = drive(&mut pace, now, 2.0);
        assert_eq!(pace.rate, 80.0, "the ceiling within three seconds");
        // A 429 ends it: the cut, then +1 r/s per 10 responses.
        assert!(pace.observe(now, &status(429)).cut);
        let cut = pace.rate;
        drive(&mut pace, now, 1.0);
        assert!(
            pace.rate - cut <= cut / 10.0 + 1.0,
            "{cut} -> {}",
            pace.rate
        );
        assert!(pace.rate > cut, "still climbing: {}", pace.rate);
    }

    #[test]
    fn does_not_raise_a_rate_nobody_uses() {
        let start = Instant::now();
        let mut pace = Pace::new(10.0, 4.0, start);
        for i in 0..100 {
            pace.observe(at(start, f64::from(i)), &status(200));
        }
        assert_eq!(pace.rate, 10.0);
        // Now demand exceeds the rate: it climbs, up to the ceiling.
        let mut now = start;
        for _ in 0..10_000 {
            match pace.try_take(now) {
                Err(next) => now = next,
                Ok(()) => {
                    pace.observe(now, &status(200));
                    pace.try_take(now).ok();
                }
            }
        }
        assert_eq!(pace.rate, 40.0);
    }

    #[test]
    fn kpromo_mode_bursts_five_keeps_its_rate_and_pauses_10_s_per_429() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut pace = Pace::with_mode(LimiterMode::Kpromo, 50.0, 4.0, start);
        let now = at(start, 1.0);
        for _ in 0..5 {
            assert_eq!(pace.try_take(now), Ok(()));
        }
        assert!(pace.try_take(now).is_err());
        let changes = pace.observe(now, &status(429));
        assert!(!changes.cut);
        assert_eq!(changes.paused, KPROMO_PAUSE);
        assert_eq!(pace.rate, 50.0);
        assert_eq!(pace.try_take(at(start, 5.0)), Err(at(start, 11.0)));
        // Successes never raise it.
        for _ in 0..100 {
            pace.observe(at(start, 12.0), &status(200));
        }
        assert_eq!(pace.rate, 50.0);
    }

    #[test]
    fn kpromo_mode_shares_one_limiter_between_hosts() {
        let limiters = Limiters::new(RateOptions {
            mode: LimiterMode::Kpromo,
            ..RateOptions::default()
        });
        let (a, b) = (limiters.host("a:1"), limiters.host("b:2"));
        assert!(Arc::ptr_eq(&a.pace, &b.pace));
        b.observe(429, &HeaderMap::new());
        assert!(a.pace().paused_until > Instant::now());
        let adaptive = Limiters::new(RateOptions::default());
        let (a, b) = (adaptive.host("a:1"), adaptive.host("b:2"));
        assert!(!Arc::ptr_eq(&a.pace, &b.pace));
    }

    #[test]
    fn retry_after_pauses_the_host() {
        let start = Instant::now();
        let mut pace = Pace::new(10.0, 4.0, start);
        let feedback = Feedback {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
            ..Feedback::default()
        };
        let changes = pace.observe(start, &feedback);
        assert_eq!(changes.paused, Duration::from_secs(3));
        assert_eq!(pace.try_take(at(start, 1.0)), Err(at(start, 3.0)));
        assert_eq!(pace.try_take(at(start, 3.0)), Ok(()));
        // Capped at five minutes.
        let long = Feedback {
            status: 503,
            retry_after: Some(Duration::from_secs(86_400)),
            ..Feedback::default()
        };
        let changes = pace.observe(at(start, 4.0), &long);
        assert_eq!(changes.paused, MAX_PAUSE);
    }

    #[test]
    fn ratelimit_headers_pause_at_zero_and_spread_when_low() {
        let start = Instant::now();
        let mut pace = Pace::new(50.0, 4.0, start);
        let low = Feedback {
            status: 200,
            limit: Some(1000),
            remaining: Some(20),
            reset: Some(Duration::from_secs(10)),
            ..Feedback::default()
        };
        pace.observe(start, &low);
        assert_eq!(pace.rate, 2.0);
        let empty = Feedback {
            remaining: Some(0),
            ..low
        };
        let changes = pace.observe(start, &empty);
        assert_eq!(changes.paused, Duration::from_secs(10));
    }

    #[test]
    fn reads_limit_headers() {
        use super::headers::retry_after as parse_retry_after;
        use std::time::UNIX_EPOCH;
        let parse_http_date = |v| httpdate::parse_http_date(v).ok();
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            "Sun, 06 Nov 1994 08:49:47 GMT".parse().unwrap(),
        );
        headers.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        headers.insert("ratelimit-remaining", "76;w=21600".parse().unwrap());
        headers.insert("ratelimit-reset", "30".parse().unwrap());
        let f = Feedback::new(429, &headers, now);
        assert_eq!(f.retry_after, Some(Duration::from_secs(10)));
        assert_eq!((f.limit, f.remaining), (Some(100), Some(76)));
        assert_eq!(f.reset, Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_208_000))
        );
    }

    #[test]
    fn per_host_initial_rates() {
        let mut options = RateOptions::default();
        options.per_host_rps.insert("docker.io".into(), 5.0);
        options.per_host_rps.insert("slow:5000".into(), 0.0);
        assert_eq!(options.initial_for("registry-1.docker.io"), 5.0);
        assert_eq!(options.initial_for("ghcr.io"), DEFAULT_INITIAL_RPS);
        assert_eq!(options.initial_for("slow:5000"), DEFAULT_INITIAL_RPS);
        let url = Url::parse("http://127.0.0.1:5000/v2/").unwrap();
        assert_eq!(host_key(&url), "127.0.0.1:5000");
        let url = Url::parse("https://ghcr.io/token").unwrap();
        assert_eq!(host_key(&url), "ghcr.io");
    }
}
