//! The adaptive rate limiter, per host and per operation class. Every
//! request of the registry layer (registry calls, token fetches, listing,
//! uploads) is admitted by the limiter of its URL's host and of its class
//! in `transport::send`, and reports its response back; nothing else in the
//! crate sends requests, so nothing bypasses it. It neither retries nor
//! classifies errors (`retry.rs` and `error.rs` do).
//!
//! # Algorithm
//!
//! Each host (`host[:port]` of the URL: a registry, its token server, a
//! storage backend) has a concurrency cap, its counters, and one limiter
//! per **operation class** ([`OpClass`]): reads (GET, HEAD, and the few
//! other requests such as token POSTs), blob writes (upload sessions,
//! chunks, mounts) and manifest writes (manifest and tag PUTs, DELETEs).
//! Registries meter these apart: ECR's default `PutImage` quota is 10/s
//! while layer reads go far higher; Artifact Registry allows 18,000
//! writes/min inside its 60,000 requests/min. A 429 on manifest PUTs
//! therefore paces manifest PUTs only; blob uploads and HEADs keep their
//! speed (`tests/ratelimit_classes.rs`). When two classes are refused
//! within the same second, the limit is the host's (nginx `limit_req` on a
//! whole server, Artifact Registry's 60,000/min for all requests): the
//! classes merge into one limiter for good, pacing the sum of their rates
//! as one limiter per host would (`tests/ratelimit_limits.rs`).
//!
//! Each class limiter works like TCP congestion control:
//!
//! - **Unpaced start.** Until the class first pushes back (a 429 or 503,
//!   `Retry-After`, `RateLimit-Remaining` under 10%), requests are not
//!   paced at all. A registry that never pushes back (docker-registry,
//!   Artifact Registry below its 60,000/min) is never throttled: a no-op
//!   re-run or a copy goes as fast as the registry answers. What bounds
//!   the start is a window of requests in flight:
//!   - it opens at 16 ([`INITIAL_WINDOW`]), the copy executor's default
//!     concurrency, so that one run alone is never held back by it;
//!   - it grows by one per accepted response while it is full, which
//!     doubles it every round trip (TCP's slow start), up to the host's
//!     concurrency cap ([`RateOptions::max_in_flight`], 32: twice the
//!     executor's default, so it binds only when several callers share a
//!     host).
//! - **Cut, then pace.** On the first 429 the class is paced from then on,
//!   at 0.7x the rate of responses the host accepted in the last second (its
//!   real limit, measured while we overshot it; over the time since the
//!   first request when that is shorter, but at least 100 ms, one round
//!   trip to a far registry). 0.7 is TCP CUBIC's factor (RFC 9438): a
//!   sawtooth between 0.7x and 1x of the limit averages ~85% of it, where
//!   Reno's 0.5 averages 75%. A 429 before any accepted response gives
//!   nothing to measure: the cut starts from 50 r/s, kpromo's rate (which
//!   registry.k8s.io's own cap of 5,000/min, ~83 r/s, leaves room for).
//!   A cut within the class's first second starts from such an estimate,
//!   so the slow start goes on from the cut rate (+1 r/s per accepted
//!   response while the pacer holds requests back: it doubles each second)
//!   until the next push-back, which ends it: an estimate too low costs
//!   seconds, not the minutes additive increase would take. Later 429s
//!   cut the same way, at most once per second: the 429s of requests
//!   already in flight report the same overshoot.
//! - **The pacer.** Requests of a paced class start at least `1/rate`
//!   seconds apart, in FIFO order (at most two back to back after an idle
//!   spell). No long burst: registries police with leaky buckets (nginx
//!   `limit_req`, Google's quota servers), which a burst only overflows.
//! - **Additive increase** once paced: +1 r/s per 10 accepted responses
//!   while the pacer is what holds requests back (a request waited for its
//!   slot within the last second; a rate nobody uses is never raised). At
//!   20 r/s this is +2 r/s per second: the probe upward takes seconds, not
//!   minutes. No ceiling: the registry's next 429 is the ceiling.
//! - **Floor:** 0.5 r/s. Slower than that a promotion of thousands of
//!   requests takes hours; a registry that wants less says so with
//!   `Retry-After`.
//! - **Pauses.** `Retry-After` (seconds or an HTTP date) on a 429 or 503
//!   pauses the class until then, capped at 5 minutes (kpromo's longest
//!   retry delay; a longer wait is a quota to fix, not to sleep through).
//!   `RateLimit-Remaining: 0` with `RateLimit-Reset` pauses until the reset;
//!   with less than 10% of `RateLimit-Limit` remaining the rate is lowered
//!   to spread what remains evenly until the reset. Docker Hub sends
//!   `RateLimit-Limit: 100;w=21600` without a reset: its window is a policy,
//!   not the time left, so only its 429s slow us down.
//!
//! A starting rate given by the user (`--max-rps`, `--max-rps-host`) paces
//! the host from its first request instead, with a slow start of +1 r/s per
//! accepted response (doubling each second) up to 4x that rate until the
//! first push-back, then the same cuts and additive increase, never above
//! 4x ([`RateOptions::ceiling_factor`]).
//!
//! kpromo instead runs one global 50 r/s bucket for every registry and
//! stops for 10 s on each 429: a slow host slows all of them, and a fast one
//! is never used beyond 50 r/s.
//!
//! [`LimiterMode::Kpromo`] replaces all of the above with kpromo's own
//! algorithm, only to benchmark against it (`bench/ratelimit.sh`).
//!
//! The concurrency permit and the window's slot are held until the response
//! headers arrive; a body streamed afterwards (a blob download) no longer
//! counts against them. Redirects that reqwest follows (blob downloads sent
//! to a storage backend) are paced with the registry's request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::HeaderMap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::headers;
use super::stats::{Counters, HostStats};

/// Default initial rate: none. A host is not paced until it pushes back;
/// the window of requests in flight bounds the start instead.
pub const DEFAULT_INITIAL_RPS: f64 = f64::INFINITY;
/// Default ceiling of a user-given initial rate, as a multiple of it.
pub const DEFAULT_CEILING_FACTOR: f64 = 4.0;
/// Default cap on requests in flight per host.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;

/// The window of requests in flight an unpaced class opens with: the copy
/// executor's default concurrency, so that one run is never held back.
pub const INITIAL_WINDOW: u32 = 16;
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
/// rate or the window to be raised.
const WINDOW: Duration = Duration::from_secs(1);
/// The shortest span an accepted rate is measured over: about one round
/// trip to a far registry. Shorter spans measure one burst, not a rate.
const MIN_SPAN: Duration = Duration::from_millis(100);
/// Where the first cut starts when a 429 comes before any accepted
/// response: kpromo's 50 r/s, which registry.k8s.io's 5,000/min allows.
const BLIND_CUT_FROM_RPS: f64 = 50.0;
/// The longest pause a `Retry-After` or `RateLimit-Reset` gets.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Below this share of `RateLimit-Limit` remaining, spread the rest.
const LOW_REMAINING: f64 = 0.1;
/// Requests the adaptive pacer lets go back to back after an idle spell.
const ADAPTIVE_BURST: u32 = 2;
/// kpromo's fixed rate, requests per second, for every host together.
const KPROMO_RPS: f64 = 50.0;
/// kpromo's token bucket burst.
const KPROMO_BURST: u32 = 5;
/// kpromo's pause of every request after a 429.
const KPROMO_PAUSE: Duration = Duration::from_secs(10);

/// Which algorithm paces requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimiterMode {
    /// One adaptive limiter per host and operation class (the module
    /// documentation).
    #[default]
    Adaptive,
    /// A simulation of kpromo's published algorithm, which exists only to
    /// benchmark the adaptive mode against it (`bench/ratelimit.sh`, the
    /// hidden `run --limiter kpromo`): ONE limiter shared by every host and
    /// class, a fixed rate of [`RateOptions::initial_rps`] (kpromo's 50 r/s
    /// when none is given) with a burst of 5, and a 10 s pause of all
    /// requests on each 429. It never adapts and ignores `Retry-After` and
    /// `RateLimit-*`. Retries stay promoter's own (`retry.rs`); kpromo's
    /// cool-down and 30 s first retry delay are left out, which only
    /// flatters it.
    Kpromo,
}

/// What a request does, as registries meter it: each class of each host
/// has its own limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpClass {
    /// GET and HEAD (manifests, blobs, listings, tokens), and requests of
    /// no other class (token POSTs).
    Read,
    /// Writes under `/blobs/`: upload sessions, chunks, mounts.
    BlobWrite,
    /// Writes under `/manifests/`: manifest and tag PUTs, DELETEs.
    ManifestWrite,
}

impl OpClass {
    const ALL: [OpClass; 3] = [OpClass::Read, OpClass::BlobWrite, OpClass::ManifestWrite];

    /// The class of `method` on `url`, from the distribution API's paths
    /// (`/v2/<name>/blobs/...`, `/v2/<name>/manifests/<reference>`).
    pub fn of(method: &Method, url: &Url) -> OpClass {
        if *method == Method::GET || *method == Method::HEAD {
            return OpClass::Read;
        }
        let path = url.path();
        if path.contains("/manifests/") {
            OpClass::ManifestWrite
        } else if path.contains("/blobs/") {
            OpClass::BlobWrite
        } else {
            OpClass::Read
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How fast to talk to registries. Part of `HttpOptions`.
#[derive(Clone, Debug)]
pub struct RateOptions {
    /// Starting rate of every host, requests per second (`--max-rps`).
    /// Infinite (the default) or not positive: not paced until the host
    /// pushes back.
    pub initial_rps: f64,
    /// Starting rate of particular hosts (`host[:port]` as in the URL;
    /// `docker.io` also names `registry-1.docker.io`).
    pub per_host_rps: HashMap<String, f64>,
    /// A starting rate never rises above `initial × ceiling_factor`
    /// (default 4; 1 makes it a hard maximum). No effect on unpaced hosts.
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

/// The pacing, window and AIMD state of one class of one host. Pure: time
/// comes in as `now`.
#[derive(Debug)]
struct Pace {
    mode: LimiterMode,
    /// Requests per second; infinite while unpaced.
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
    /// The class started unpaced (no initial rate given).
    unpaced_start: bool,
    /// Requests admitted whose response headers are not in yet.
    in_flight: u32,
    /// How many may be in flight; grows during the slow start.
    window: u32,
    /// What the window grows to: the host's concurrency cap.
    window_cap: u32,
    /// When a request last found the window full.
    window_full: Option<Instant>,
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
        let cap = DEFAULT_MAX_IN_FLIGHT as u32;
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
            unpaced_start: initial.is_infinite(),
            in_flight: 0,
            window: INITIAL_WINDOW.min(cap),
            window_cap: cap,
            window_full: None,
        }
    }

    /// Hold the window to `cap` requests in flight (kpromo: the cap only).
    fn with_window_cap(mut self, cap: usize) -> Pace {
        self.window_cap = u32::try_from(cap.max(1)).unwrap_or(u32::MAX);
        self.window = match self.mode {
            LimiterMode::Adaptive => INITIAL_WINDOW.min(self.window_cap),
            LimiterMode::Kpromo => self.window_cap,
        };
        self
    }

    /// True when the window has room for one more request.
    fn window_open(&mut self, now: Instant) -> bool {
        let open = self.in_flight < self.window;
        if !open {
            self.window_full = Some(now);
        }
        open
    }

    /// A request was admitted, or its response headers came in.
    fn start(&mut self) {
        self.in_flight += 1;
    }

    fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// One pace for several classes found to share the host's limit: the
    /// sum of their rates (an unpaced class counts with what it sent in
    /// the last second), their history, no slow start.
    fn merge(paces: &[&Pace], now: Instant) -> Pace {
        let rate: f64 = paces
            .iter()
            .map(|p| {
                if p.rate.is_finite() {
                    p.rate
                } else {
                    p.accepted
                        .iter()
                        .filter(|&&t| now.duration_since(t) <= WINDOW)
                        .count() as f64
                }
            })
            .sum();
        let mut accepted: Vec<Instant> = paces
            .iter()
            .flat_map(|p| p.accepted.iter().copied())
            .collect();
        accepted.sort();
        let latest = |f: fn(&Pace) -> Option<Instant>| paces.iter().filter_map(|p| f(p)).max();
        let window_cap = paces.iter().map(|p| p.window_cap).max().unwrap_or(1);
        Pace {
            mode: LimiterMode::Adaptive,
            rate: rate.max(FLOOR_RPS),
            ceiling: paces.iter().map(|p| p.ceiling).fold(FLOOR_RPS, f64::max),
            next_slot: now,
            paused_until: paces.iter().map(|p| p.paused_until).max().unwrap_or(now),
            successes: 0,
            last_cut: latest(|p| p.last_cut),
            last_wait: latest(|p| p.last_wait),
            first_request: paces.iter().filter_map(|p| p.first_request).min(),
            accepted: accepted.into(),
            slow_start: false,
            unpaced_start: false,
            // Requests in flight give their slots back to their old class.
            in_flight: 0,
            window: window_cap,
            window_cap,
            window_full: None,
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
        // when adaptive; kpromo's token bucket holds five). Unpaced, the
        // interval is zero.
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

    /// What a cut starts from: the accepted rate of the last second, or
    /// of the time since the first request (at least [`MIN_SPAN`]) when
    /// that is shorter; the current rate when it is lower.
    fn cut_base(&mut self, now: Instant) -> f64 {
        if let Some(measured) = self.accepted_rate(now).filter(|&r| r > 0.0) {
            return measured.min(self.rate);
        }
        if self.rate.is_finite() {
            return self.rate;
        }
        if self.accepted.is_empty() {
            return BLIND_CUT_FROM_RPS;
        }
        let span = self
            .first_request
            .map_or(MIN_SPAN, |t| now.duration_since(t).max(MIN_SPAN));
        self.accepted.len() as f64 / span.as_secs_f64()
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
        // Any push-back ends the slow start for good, unless it comes
        // while an unpaced class has been measured for less than a second:
        // the cut then starts from an estimate, and the slow start goes on
        // from the cut rate until the next push-back, which is measured.
        let estimate = self.unpaced_start
            && self
                .first_request
                .is_none_or(|t| now.duration_since(t) < WINDOW);
        if !estimate
            && (matches!(feedback.status, 429 | 503)
                || feedback.retry_after.is_some()
                || feedback.remaining.is_some_and(|r| {
                    feedback
                        .limit
                        .is_some_and(|l| (r as f64) < l as f64 * LOW_REMAINING)
                }))
        {
            self.slow_start = false;
        }
        match feedback.status {
            429 => self.cut(now, &mut changes),
            500..=599 => {}
            _ => self.accept(now),
        }
        self.obey_headers(now, feedback, &mut changes);
        changes
    }

    /// A 429: cut to 0.7x the measured rate, once per [`WINDOW`].
    fn cut(&mut self, now: Instant, changes: &mut Changes) {
        let holding_off = self
            .last_cut
            .is_some_and(|t| now.duration_since(t) < WINDOW);
        if !holding_off {
            let base = self.cut_base(now);
            self.set_rate(base * DECREASE);
            self.last_cut = Some(now);
            self.successes = 0;
            changes.cut = true;
        }
    }

    /// An accepted response: grow the window during the slow start, and
    /// the rate when the pacer holds requests back.
    fn accept(&mut self, now: Instant) {
        self.accepted.push_back(now);
        let recently = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) <= WINDOW);
        if self.slow_start && self.window < self.window_cap && recently(self.window_full) {
            // +1 per accepted response: the window doubles per round trip.
            self.window += 1;
        }
        self.successes += 1;
        if self.successes >= INCREASE_EVERY {
            self.successes = 0;
            if recently(self.last_wait) {
                // Slow start: +1 r/s per accepted response, which doubles
                // the rate each second; then additive.
                let step = if self.slow_start {
                    f64::from(INCREASE_EVERY)
                } else {
                    INCREASE_STEP
                };
                self.set_rate(self.rate + step);
            }
        }
    }

    /// `Retry-After` and `RateLimit-*`: pause, or spread what remains.
    fn obey_headers(&mut self, now: Instant, feedback: &Feedback, changes: &mut Changes) {
        if matches!(feedback.status, 429 | 503)
            && let Some(delay) = feedback.retry_after
        {
            self.pause_until(now, now + delay, changes);
        }
        if let (Some(remaining), Some(reset)) = (feedback.remaining, feedback.reset) {
            if remaining == 0 {
                self.pause_until(now, now + reset, changes);
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
    }
}

/// The limiter of one class of one host.
#[derive(Debug)]
struct ClassLimiter {
    pace: Mutex<Pace>,
    /// Waiters queue here (tokio's mutex is FIFO) while the first sleeps
    /// until its slot or waits for room in the window; it re-checks after
    /// waking, so a cut or a pause set meanwhile applies at once.
    turnstile: tokio::sync::Mutex<()>,
    /// Signalled when a request's response headers come in: the window may
    /// have room again.
    finished: Notify,
}

impl ClassLimiter {
    fn new(pace: Pace) -> ClassLimiter {
        ClassLimiter {
            pace: Mutex::new(pace),
            turnstile: tokio::sync::Mutex::new(()),
            finished: Notify::new(),
        }
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted request: its place in the class's window and in the
/// host's concurrency cap, both given back on drop (once the response
/// headers are in, or the request failed).
#[derive(Debug)]
pub(crate) struct Admission {
    class: Arc<ClassLimiter>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.class.pace().finish();
        self.class.finished.notify_one();
    }
}

/// The class limiters of one host, and when each class was last refused.
#[derive(Debug)]
struct Classes {
    /// By [`OpClass::index`]. Once merged, or in kpromo mode, every entry
    /// is the same limiter.
    by_class: [Arc<ClassLimiter>; 3],
    refused: [Option<Instant>; 3],
}

impl Classes {
    fn merged(&self) -> bool {
        let [a, b, c] = &self.by_class;
        Arc::ptr_eq(a, b) && Arc::ptr_eq(b, c)
    }

    /// Replace the classes by one limiter that carries their state.
    fn merge(&mut self, now: Instant) {
        let paces: Vec<std::sync::MutexGuard<'_, Pace>> =
            self.by_class.iter().map(|c| c.pace()).collect();
        let refs: Vec<&Pace> = paces.iter().map(|p| &**p).collect();
        let merged = Pace::merge(&refs, now);
        drop(paces);
        let one = Arc::new(ClassLimiter::new(merged));
        self.by_class = [one.clone(), one.clone(), one];
    }
}

/// The limiters of one host, one per [`OpClass`], shared by every request
/// to it.
#[derive(Debug)]
pub(crate) struct HostLimiter {
    host: String,
    /// Shared by every host in kpromo mode: one limiter for all.
    classes: Arc<Mutex<Classes>>,
    /// The host's concurrency cap (shared by every host in kpromo mode).
    in_flight: Arc<Semaphore>,
    /// Requests, statuses, retries and pauses of this host.
    pub counters: Counters,
}

impl HostLimiter {
    fn new(host: &str, options: &RateOptions) -> HostLimiter {
        let initial = match options.mode {
            LimiterMode::Adaptive => options.initial_for(host),
            LimiterMode::Kpromo if options.initial_rps.is_finite() && options.initial_rps > 0.0 => {
                options.initial_rps
            }
            LimiterMode::Kpromo => KPROMO_RPS,
        };
        let class = || {
            let pace = Pace::with_mode(
                options.mode,
                initial,
                options.ceiling_factor,
                Instant::now(),
            );
            Arc::new(ClassLimiter::new(
                pace.with_window_cap(options.max_in_flight),
            ))
        };
        let by_class = match options.mode {
            LimiterMode::Adaptive => [class(), class(), class()],
            LimiterMode::Kpromo => {
                let one = class();
                [one.clone(), one.clone(), one]
            }
        };
        HostLimiter {
            host: host.to_owned(),
            classes: Arc::new(Mutex::new(Classes {
                by_class,
                refused: [None; 3],
            })),
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            counters: Counters::default(),
        }
    }

    /// A limiter for `host` that shares `global`'s classes and concurrency
    /// cap, with counters of its own (kpromo mode).
    fn sharing(host: &str, global: &HostLimiter) -> HostLimiter {
        HostLimiter {
            host: host.to_owned(),
            classes: global.classes.clone(),
            in_flight: global.in_flight.clone(),
            counters: Counters::default(),
        }
    }

    fn classes(&self) -> std::sync::MutexGuard<'_, Classes> {
        self.classes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn class(&self, class: OpClass) -> Arc<ClassLimiter> {
        self.classes().by_class[class.index()].clone()
    }

    /// Wait for room in the class's window and for a slot of its rate,
    /// then for a concurrency permit of the host. The class comes first:
    /// requests held back by their class's pace hold no permit another
    /// class needs.
    pub async fn admit(&self, class: OpClass) -> Admission {
        let limiter = self.class(class);
        {
            let _turn = limiter.turnstile.lock().await;
            loop {
                let wait = {
                    let mut pace = limiter.pace();
                    let now = Instant::now();
                    if !pace.window_open(now) {
                        None
                    } else {
                        match pace.try_take(now) {
                            Ok(()) => {
                                pace.start();
                                break;
                            }
                            Err(at) => Some(at),
                        }
                    }
                };
                match wait {
                    None => limiter.finished.notified().await,
                    Some(at) => tokio::time::sleep_until(at).await,
                }
            }
        }
        // From here the request counts in the window: `Admission` gives it
        // back even if this future is dropped while waiting for a permit.
        let mut admission = Admission {
            class: limiter,
            _permit: None,
        };
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the limiter never closes its semaphore");
        admission._permit = Some(permit);
        admission
    }

    /// Learn from a response's status and headers.
    pub fn observe(&self, class: OpClass, status: u16, headers: &HeaderMap) {
        let feedback = Feedback::new(status, headers, SystemTime::now());
        let (changes, rate) = {
            let limiter = self.class(class);
            let mut pace = limiter.pace();
            let changes = pace.observe(Instant::now(), &feedback);
            (changes, pace.rate)
        };
        if status == 429 {
            self.refused(class);
        }
        if changes.cut {
            self.counters.rate_cut();
            tracing::info!(host = %self.host, ?class, rate, "429 from registry: rate lowered");
        }
        if !changes.paused.is_zero() {
            self.counters.paused(changes.paused.as_millis() as u64);
            tracing::info!(host = %self.host, ?class, pause_ms = changes.paused.as_millis() as u64, "registry asked to wait: paused");
        }
    }

    /// A 429 for `class`. When another class was refused within the same
    /// [`WINDOW`], the limit is the host's, not one class's (nginx's
    /// `limit_req` on a whole server, Artifact Registry's 60,000/min for
    /// every request): the classes merge into one limiter for good, which
    /// paces their sum, as one limiter per host would. A limit on one class
    /// alone (ECR's `PutImage`) refuses that class only and never merges.
    fn refused(&self, class: OpClass) {
        let now = Instant::now();
        let mut classes = self.classes();
        if classes.merged() {
            return;
        }
        classes.refused[class.index()] = Some(now);
        let shared = OpClass::ALL.iter().any(|&other| {
            other != class
                && classes.refused[other.index()].is_some_and(|t| now.duration_since(t) <= WINDOW)
        });
        if shared {
            classes.merge(now);
            tracing::info!(host = %self.host, "429s on several kinds of request: one limit for the host");
        }
    }

    /// The counters, and the lowest rate one of the host's classes is
    /// paced at (0 when none is paced: the host never pushed back).
    pub fn stats(&self) -> HostStats {
        let rate = self
            .classes()
            .by_class
            .iter()
            .map(|c| c.pace().rate)
            .filter(|r| r.is_finite())
            .reduce(f64::min)
            .unwrap_or(0.0);
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

    /// Unlimited demand from an unpaced start, against a leaky bucket, with
    /// a 5 ms round trip: requests go while the window has room and the
    /// pacer a slot; returns (accepted per second, 429s).
    fn simulate_unpaced(limit: f64, secs: f64) -> (f64, u32) {
        let start = Instant::now();
        let mut pace = Pace::new(DEFAULT_INITIAL_RPS, DEFAULT_CEILING_FACTOR, start);
        let mut bucket = LeakyBucket {
            limit,
            burst: 5.0,
            excess: 0.0,
            last: start,
        };
        let rtt = Duration::from_millis(5);
        // Answers in the order sent (the round trip is constant).
        let mut answers: VecDeque<(Instant, bool)> = VecDeque::new();
        let (mut now, mut accepted, mut refused) = (start, 0u32, 0u32);
        while now < at(start, secs) {
            while let Some(&(t, ok)) = answers.front().filter(|(t, _)| *t <= now) {
                answers.pop_front();
                pace.finish();
                pace.observe(t, &status(if ok { 200 } else { 429 }));
            }
            let next_answer = answers.front().map(|&(t, _)| t);
            if !pace.window_open(now) {
                now = next_answer.expect("a full window has answers coming");
                continue;
            }
            match pace.try_take(now) {
                Ok(()) => {
                    pace.start();
                    let ok = bucket.admit(now);
                    if ok {
                        accepted += 1;
                    } else {
                        refused += 1;
                    }
                    answers.push_back((now + rtt, ok));
                }
                Err(slot) => now = next_answer.map_or(slot, |a| a.min(slot)),
            }
        }
        (f64::from(accepted) / secs, refused)
    }

    #[test]
    fn an_unpaced_start_finds_a_leaky_bucket_limit() {
        for limit in [3.0, 20.0, 80.0, 400.0] {
            let (rate, refused) = simulate_unpaced(limit, 60.0);
            eprintln!("limit {limit}: {rate:.1} r/s, {refused} 429s");
            // Measured: 97% of 3 r/s, 98% of 20, 90% of 80, 83% of 400 (a
            // high limit takes the additive increase longer to reach).
            assert!(rate >= 0.8 * limit, "limit {limit}: {rate:.1} r/s");
            assert!(rate <= limit * 1.01 + 0.2, "{rate}");
            // The first window overshoots once (up to 32 refused); after
            // that refusals stay a small share, as from a paced start.
            assert!(
                f64::from(refused) < 32.0 + 0.25 * rate * 60.0,
                "{refused} 429s"
            );
        }
    }

    #[test]
    fn an_unpaced_start_is_held_only_by_its_window() {
        let start = Instant::now();
        let mut pace =
            Pace::new(DEFAULT_INITIAL_RPS, DEFAULT_CEILING_FACTOR, start).with_window_cap(32);
        // No pacing at all: ten thousand slots at one instant.
        for _ in 0..10_000 {
            assert_eq!(pace.try_take(start), Ok(()));
        }
        // The window opens at 16 in flight.
        for _ in 0..INITIAL_WINDOW {
            assert!(pace.window_open(start));
            pace.start();
        }
        assert!(!pace.window_open(start), "the 17th waits");
        // While it is full, each accepted response widens it by one (it
        // doubles per round trip), up to the concurrency cap.
        let mut now = start;
        for _ in 0..200 {
            now += Duration::from_millis(1);
            pace.finish();
            pace.observe(now, &status(200));
            while pace.window_open(now) {
                pace.start();
            }
        }
        assert_eq!(pace.window, 32);
        assert_eq!(pace.in_flight, 32);
        // A push-back (after a first second of measurement) ends the
        // growth; the window stays.
        let mut small = Pace::new(DEFAULT_INITIAL_RPS, DEFAULT_CEILING_FACTOR, start);
        small.try_take(start).unwrap();
        small.observe(at(start, 1.0), &status(503));
        for _ in 0..INITIAL_WINDOW {
            small.start();
        }
        assert!(!small.window_open(at(start, 1.0)));
        small.finish();
        small.observe(at(start, 1.1), &status(200));
        assert_eq!(small.window, INITIAL_WINDOW);
        assert!(small.rate.is_infinite(), "a 503 alone paces nothing");
    }

    #[test]
    fn the_first_429_paces_at_what_the_host_accepted() {
        let start = Instant::now();
        let mut pace = Pace::new(DEFAULT_INITIAL_RPS, DEFAULT_CEILING_FACTOR, start);
        pace.try_take(start).unwrap();
        // 30 accepted in the first 0.3 s (100 r/s), then a 429.
        for i in 1..=30 {
            pace.observe(at(start, 0.01 * f64::from(i)), &status(200));
        }
        assert!(pace.observe(at(start, 0.3), &status(429)).cut);
        assert!((pace.rate - 70.0).abs() < 1e-6, "{}", pace.rate);
        // Paced from then on (two back to back after an idle spell).
        let now = at(start, 0.3);
        assert_eq!(pace.try_take(now), Ok(()));
        assert_eq!(pace.try_take(now), Ok(()));
        assert!(pace.try_take(now).is_err());
        // A cut from less than a second of measurement is an estimate:
        // the slow start goes on from it; the next push-back ends it.
        assert!(pace.slow_start);
        assert!(pace.observe(at(start, 1.5), &status(429)).cut);
        assert!(!pace.slow_start);
        // A 429 before anything was accepted cuts from 50 r/s.
        let mut blind = Pace::new(DEFAULT_INITIAL_RPS, DEFAULT_CEILING_FACTOR, start);
        blind.try_take(start).unwrap();
        assert!(blind.observe(at(start, 0.01), &status(429)).cut);
        assert!((blind.rate - BLIND_CUT_FROM_RPS * DECREASE).abs() < 1e-6);
    }

    #[tokio::test]
    async fn a_429_on_manifest_writes_paces_only_manifest_writes() {
        use futures_util::FutureExt;
        let limiters = Limiters::new(RateOptions::default());
        let host = limiters.host("registry:5000");
        for _ in 0..3 {
            host.admit(OpClass::ManifestWrite).await;
        }
        host.observe(OpClass::ManifestWrite, 429, &HeaderMap::new());
        let rate = |class| host.class(class).pace().rate;
        assert!(rate(OpClass::ManifestWrite).is_finite());
        assert!(rate(OpClass::Read).is_infinite());
        assert!(rate(OpClass::BlobWrite).is_infinite());
        assert_eq!(host.stats().rate_rps, rate(OpClass::ManifestWrite));
        // Reads and blob writes are admitted at once, any number of them.
        for _ in 0..1000 {
            for class in [OpClass::Read, OpClass::BlobWrite] {
                let admit = tokio::task::unconstrained(host.admit(class));
                assert!(admit.now_or_never().is_some(), "{class:?}");
            }
        }
        // Manifest writes wait for their slots (2 s apart at the floor).
        host.class(OpClass::ManifestWrite)
            .pace()
            .set_rate(FLOOR_RPS);
        let admit = || tokio::task::unconstrained(host.admit(OpClass::ManifestWrite));
        assert!(admit().now_or_never().is_some());
        assert!(admit().now_or_never().is_none());
    }

    #[test]
    fn classes_refused_together_merge_into_one_limit() {
        let limiters = Limiters::new(RateOptions::default());
        let host = limiters.host("registry:5000");
        let same = |a, b| Arc::ptr_eq(&host.class(a), &host.class(b));
        // Manifest writes alone refused, again and again: no merge.
        for _ in 0..5 {
            host.observe(OpClass::ManifestWrite, 429, &HeaderMap::new());
        }
        assert!(!same(OpClass::ManifestWrite, OpClass::BlobWrite));
        assert!(host.class(OpClass::BlobWrite).pace().rate.is_infinite());
        // Blob writes refused within the same second: the host's limit.
        host.observe(OpClass::BlobWrite, 429, &HeaderMap::new());
        assert!(same(OpClass::ManifestWrite, OpClass::BlobWrite));
        assert!(same(OpClass::Read, OpClass::BlobWrite));
        let merged = host.class(OpClass::Read);
        let pace = merged.pace();
        assert!(pace.rate.is_finite() && !pace.slow_start, "{pace:?}");
    }

    #[test]
    fn classes_of_requests() {
        let url = |path: &str| Url::parse(&format!("https://r.example{path}")).unwrap();
        let cases = [
            (Method::HEAD, "/v2/a/manifests/v1", OpClass::Read),
            (Method::GET, "/v2/a/blobs/sha256:00", OpClass::Read),
            (Method::GET, "/v2/a/tags/list", OpClass::Read),
            (Method::POST, "/token", OpClass::Read),
            (Method::POST, "/v2/a/blobs/uploads/", OpClass::BlobWrite),
            (Method::PATCH, "/v2/a/blobs/uploads/u1", OpClass::BlobWrite),
            (Method::PUT, "/v2/a/blobs/uploads/u1", OpClass::BlobWrite),
            (Method::PUT, "/v2/a/manifests/v1", OpClass::ManifestWrite),
            (
                Method::DELETE,
                "/v2/a/manifests/sha256:00",
                OpClass::ManifestWrite,
            ),
        ];
        for (method, path, class) in cases {
            assert_eq!(OpClass::of(&method, &url(path)), class, "{method} {path}");
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
        let read = |h: &HostLimiter| h.class(OpClass::Read);
        assert!(Arc::ptr_eq(&read(&a), &read(&b)));
        b.observe(OpClass::ManifestWrite, 429, &HeaderMap::new());
        assert!(read(&a).pace().paused_until > Instant::now());
        let adaptive = Limiters::new(RateOptions::default());
        let (a, b) = (adaptive.host("a:1"), adaptive.host("b:2"));
        assert!(!Arc::ptr_eq(&read(&a), &read(&b)));
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
