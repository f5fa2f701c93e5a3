//! The shared HTTP client: [`HttpOptions`], and [`HttpClient`], which holds
//! one connection pool and, per registry host, the base URL and the
//! authentication state that every [`HttpRegistry`] of that host shares.
//! Also the rule for plain HTTP: loopback hosts and listed insecure hosts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use url::Url;

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
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("extra_ca_certificates", &self.extra_ca_pem.len())
            .field("credentials", &self.credentials)
            .field("tags_page_size", &self.tags_page_size)
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
    http: reqwest::Client,
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
}

impl HttpClient {
    /// Build the client. Fails only on unusable options (a malformed CA).
    pub fn new(options: HttpOptions) -> Result<HttpClient> {
        let http = transport::build_client(&options.extra_ca_pem)?;
        Ok(HttpClient {
            shared: Arc::new(Shared {
                http,
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
                    endpoint,
                    allow_plain_http,
                    tags_page_size: self.shared.options.tags_page_size,
                    base: OnceCell::new(),
                    auth: auth::Auth::new(host, self.shared.options.credentials.clone()),
                })
            })
            .clone();
        Ok(HttpRegistry {
            http: self.shared.http.clone(),
            state,
        })
    }
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
