//! The shared HTTP client: [`HttpOptions`], and [`HttpClient`], which holds
//! one connection pool and, per registry host, the base URL and the
//! authentication state that every [`HttpRegistry`] of that host shares,
//! plus the per-host limiters and their counters ([`HttpClient::stats`]).
//! Also the rule for plain HTTP: loopback hosts and listed insecure hosts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use url::Url;

use super::limit::{HostLimiter, RateOptions, host_key};
use super::quirks::{self, Quirks};
use super::retry::RetryOptions;
use super::stats::HostStats;
use super::transport::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_STALL_TIMEOUT, Transport};
use super::{HttpRegistry, auth, transport};
use crate::registry::credentials::CredentialStore;
use crate::registry::error::{Error, Result};

/// Settings shared by every HTTP registry.
#[derive(Clone, Default)]
pub struct HttpOptions {
    /// Hosts (`host[:port]`) that may be reached over plain `http://`, in
    /// addition to loopback hosts (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// PEM certificates trusted in addition to the system roots
    /// (`--registry-ca`).
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Where credentials come from.
    pub credentials: CredentialStore,
    /// Tags asked for per `tags/list` page; `None` means 1000.
    pub tags_page_size: Option<usize>,
    /// Per-host rate limiting (initial rate 50 r/s, adaptive).
    pub rate: RateOptions,
    /// Retries of transient failures.
    pub retry: RetryOptions,
    /// Connect timeout; `None` means 30 s.
    pub connect_timeout: Option<Duration>,
    /// Longest wait for the next byte of a response (headers or body);
    /// `None` means 60 s. A transfer that keeps moving is never cut off.
    pub stall_timeout: Option<Duration>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("extra_ca_certificates", &self.extra_ca_pem.len())
            .field("credentials", &self.credentials)
            .field("tags_page_size", &self.tags_page_size)
            .field("rate", &self.rate)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

/// The shared HTTP client: one connection pool, one auth state per host.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    transport: Transport,
    options: HttpOptions,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
}

/// Per-host state: the base URL (found on first use) and authentication.
#[derive(Debug)]
pub(super) struct HostState {
    /// `host[:port]` as the user named it.
    pub host: String,
    /// Where the API lives (differs for Docker Hub).
    pub endpoint: String,
    /// Loopback or listed insecure: `http://` allowed when TLS fails.
    pub allow_plain_http: bool,
    /// From [`HttpOptions::tags_page_size`].
    pub tags_page_size: Option<usize>,
    /// `https://host/` or `http://host/`, found on first use.
    pub base: OnceCell<Url>,
    /// Challenge, credentials and tokens of this host.
    pub auth: auth::Auth,
    /// From [`HttpOptions::retry`].
    pub retry: RetryOptions,
    /// The limiter of the API endpoint, whose counters also count retries.
    pub limiter: Arc<HostLimiter>,
    /// Repositories whose referrers API answered a plain 404: the route is
    /// not there (a host may route it per repository, behind a proxy).
    pub no_referrers_api: Mutex<std::collections::HashSet<String>>,
    /// What this host is known for beyond what it answers (`quirks.rs`).
    pub quirks: Quirks,
    /// Largest chunk this host has accepted after refusing a larger one
    /// with 416: later uploads start there. 0 until then.
    pub learned_chunk_max: std::sync::atomic::AtomicUsize,
}

impl HttpClient {
    /// Build the client. Fails only on unusable options (a malformed CA).
    pub fn new(options: HttpOptions) -> Result<HttpClient> {
        let http = transport::build_client(
            &options.extra_ca_pem,
            options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            options.stall_timeout.unwrap_or(DEFAULT_STALL_TIMEOUT),
        )?;
        Ok(HttpClient {
            shared: Arc::new(Shared {
                transport: Transport::new(http, options.rate.clone()),
                options,
                hosts: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The registry at `host` (`host[:port]`). Registries of the same host
    /// share their authentication state and tokens.
    pub fn registry(&self, host: &str) -> Result<HttpRegistry> {
        let host = host.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(Error::Setup(format!(
                "{host:?} is not a registry host: expected host[:port]"
            )));
        }
        let mut hosts = self.shared.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let state = hosts
            .entry(host.to_owned())
            .or_insert_with(|| {
                let allow_plain_http = is_loopback(host)
                    || self
                        .shared
                        .options
                        .insecure_registries
                        .iter()
                        .any(|h| h == host);
                // Docker Hub's API lives on another name than its images.
                let endpoint = match host {
                    "docker.io" | "index.docker.io" => "registry-1.docker.io".to_owned(),
                    _ => host.to_owned(),
                };
                Arc::new(HostState {
                    host: host.to_owned(),
                    allow_plain_http,
                    tags_page_size: self.shared.options.tags_page_size,
                    base: OnceCell::new(),
                    auth: auth::Auth::new(host, self.shared.options.credentials.clone()),
                    retry: self.shared.options.retry.clone(),
                    limiter: self
                        .shared
                        .transport
                        .limiters()
                        .host(&endpoint_key(&endpoint)),
                    endpoint,
                    no_referrers_api: Default::default(),
                    quirks: quirks::for_host(host),
                    learned_chunk_max: Default::default(),
                })
            })
            .clone();
        Ok(HttpRegistry {
            http: self.shared.transport.clone(),
            state,
        })
    }

    /// Requests, statuses, retries, 429s and pauses of every host contacted
    /// so far (registries, token servers, storage backends), by host name:
    /// the run summary's "requests per registry".
    pub fn stats(&self) -> Vec<HostStats> {
        self.shared.transport.stats()
    }
}

/// The limiter key of an endpoint, as `send` computes it from URLs
/// (`host` or `host:port`, without a default port).
fn endpoint_key(endpoint: &str) -> String {
    Url::parse(&format!("http://{endpoint}/"))
        .map(|url| host_key(&url))
        .unwrap_or_else(|_| endpoint.to_owned())
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:1",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
