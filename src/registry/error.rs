//! The registry layer's one error type, [`Error`], and its transient/permanent
//! classification ([`Error::is_transient`]), which the retry loop
//! (`http/retry.rs`) reads but does not decide. Messages name the registry, repository, digest or URL, and
//! never carry a credential.

use std::path::PathBuf;

use super::digest::Digest;
use super::reference::ParseNameError;
use crate::retry::is_transient_status;

/// Shorthand for results of the registry layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a registry or an image layout.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A repository name, tag, digest or image reference is malformed.
    #[error(transparent)]
    InvalidName(#[from] ParseNameError),

    /// The registry wants credentials we do not have, or refused the ones we
    /// sent.
    #[error("{}", unauthorized_message(registry, repository, *had_credentials))]
    Unauthorized {
        /// Host of the registry.
        registry: String,
        /// Repository the request was for.
        repository: String,
        /// Whether credentials were sent (and refused).
        had_credentials: bool,
    },

    /// The registry understood who we are and refused (403).
    #[error(
        "{registry}: access to {repository} denied (HTTP 403): the credentials lack {action} permission"
    )]
    Denied {
        /// Host of the registry.
        registry: String,
        /// Repository the request was for.
        repository: String,
        /// What was attempted, such as `push`.
        action: &'static str,
    },

    /// A manifest or blob that had to exist does not.
    #[error("{registry}/{repository}: {what} not found")]
    NotFound {
        /// Host of the registry, or `oci:<dir>`.
        registry: String,
        /// Repository the request was for.
        repository: String,
        /// What was missing, such as `manifest v1.0` or `blob sha256:…`.
        what: String,
    },

    /// A manifest was pushed before content it references (children first:
    /// blobs, then child manifests, then the index).
    #[error(
        "{location}: manifest {manifest} references {missing}, which is not stored there yet; push it first"
    )]
    MissingReference {
        /// `registry/repository`.
        location: String,
        /// The manifest being pushed.
        manifest: Digest,
        /// The blob or child manifest that is missing.
        missing: Digest,
    },

    /// Content did not hash to the digest it was addressed by. Nothing was
    /// stored for it.
    #[error("{location}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// `registry/repository` or a file path, plus what was read.
        location: String,
        /// The digest the content was addressed by.
        expected: Digest,
        /// The digest of the bytes actually seen.
        actual: Digest,
    },

    /// Content was not the size its descriptor announced. Nothing was stored
    /// for it.
    #[error("{location}: size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// `registry/repository` or a file path.
        location: String,
        /// The digest of the content.
        digest: Digest,
        /// Announced size.
        expected: u64,
        /// Bytes actually seen.
        actual: u64,
    },

    /// The registry answered with a status the operation does not expect.
    #[error("{method} {url}: unexpected HTTP {status}{}", body_suffix(body))]
    Status {
        /// HTTP method.
        method: String,
        /// Request URL (never contains credentials).
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body, for the registry's error code.
        body: String,
    },

    /// The request did not complete: connection refused or reset, timeout, TLS.
    /// The message carries the whole cause chain (such as the certificate
    /// problem), so the cause is not repeated as a `source`.
    #[error("{method} {url}: {}", cause_chain(cause))]
    Transport {
        /// HTTP method.
        method: String,
        /// Request URL (never contains credentials).
        url: String,
        /// The underlying error.
        cause: reqwest::Error,
    },

    /// The registry answered something that is not what the protocol says.
    #[error("{url}: invalid response: {reason}")]
    InvalidResponse {
        /// Request URL, or a file path for image layouts.
        url: String,
        /// What was wrong.
        reason: String,
    },

    /// Reading credentials failed (a malformed config file, a failing helper).
    #[error("credentials for {registry}: {reason}")]
    Credentials {
        /// Host the credentials were for.
        registry: String,
        /// What went wrong, without any secret.
        reason: String,
    },

    /// A local file operation on an image layout failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A manifest larger than the limit registries enforce.
    #[error("{location}: manifest larger than {limit} bytes")]
    ManifestTooLarge {
        /// `registry/repository@reference`.
        location: String,
        /// The limit in bytes.
        limit: usize,
    },

    /// A response body larger than promoter reads of its kind (the limits
    /// are in `http/transport.rs`). Nothing of it was used.
    #[error(
        "{url}: the registry sent a {what} larger than {limit} bytes, the most promoter reads; \
         promoter gave up on this request (other registries are not affected)"
    )]
    BodyTooLarge {
        /// Request URL, which names the registry.
        url: String,
        /// What the body was: `token response`, `tags/list page`...
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },

    /// A response (its headers or its whole body) did not arrive within its
    /// deadline, although bytes kept coming. Not retried: a registry that
    /// trickles once trickles again.
    #[error(
        "{method} {url}: the registry sent {got} bytes of the {what} in {seconds} s, the deadline \
         for it; promoter gave up on this request (other registries are not affected)"
    )]
    Deadline {
        /// HTTP method.
        method: String,
        /// Request URL, which names the registry.
        url: String,
        /// `response headers`, `manifest`, `token response`...
        what: &'static str,
        /// Bytes of the body read in time.
        got: u64,
        /// The deadline.
        seconds: u64,
    },

    /// A registry asked (`Retry-After`, `RateLimit-Reset`) for a longer
    /// pause than promoter waits for: every request to it fails at once for
    /// the rest of the run, instead of sleeping through it.
    #[error(
        "{registry} sent {sent}: a pause of {pause_secs} s, longer than the {max_secs} s promoter \
         waits for a registry; promoter gave up on every image of {registry} in this run (images \
         of other registries are not affected)"
    )]
    PauseTooLong {
        /// `host[:port]` that sent it.
        registry: String,
        /// The header as sent (cut to a readable length), the request and
        /// the status: `` `Retry-After: 1e9` on GET <url> (HTTP 429) ``.
        sent: String,
        /// The pause asked for (at most a year: longer is read as a year).
        pause_secs: u64,
        /// The longest pause promoter accepts.
        max_secs: u64,
    },

    /// Setting up the HTTP client failed (for example an unreadable CA file).
    #[error("HTTP client setup: {0}")]
    Setup(String),
}

fn unauthorized_message(registry: &str, repository: &str, had_credentials: bool) -> String {
    let env = super::credentials::env_var_name(registry);
    if had_credentials {
        format!(
            "{registry}: the credentials for {registry} were refused for {repository} (HTTP 401); \
             check them with `docker login {registry}` or the {env} environment variable"
        )
    } else {
        format!(
            "{registry}: authentication required for {repository} (HTTP 401) and no credentials \
             were found for {registry}; log in with `docker login {registry}`, or set {env}=<user>:<password>"
        )
    }
}

/// A certificate or TLS protocol failure: rustls reports it as an I/O error
/// of kind `InvalidData`. Retrying cannot fix it.
fn is_tls_rejection(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        // hyper wraps rustls' io::Error in another io::Error, whose
        // `source()` skips the inner one: look inside with `get_ref`.
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(err) = io {
            if err.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
            io = err
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>());
        }
        next = e.source();
    }
    false
}

/// `outer: inner: innermost`, skipping repeats (reqwest and hyper often
/// wrap the same message).
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl Error {
    /// Whether retrying the same request later may succeed: 408, 429 and 5xx
    /// statuses, timeouts, refused or reset connections. Other 4xx, integrity
    /// and local errors are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Status { status, .. } => is_transient_status(*status),
            Error::Transport { cause, .. } => {
                (cause.is_timeout() || cause.is_connect() || cause.is_request() || cause.is_body())
                    && !is_tls_rejection(cause)
            }
            _ => false,
        }
    }

    /// A 429: the registry wants fewer requests. Transient; retried on a
    /// budget of its own, behind the rate limiter.
    pub fn is_throttled(&self) -> bool {
        matches!(self, Error::Status { status: 429, .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Error {
        Error::Status {
            method: "GET".into(),
            url: "http://127.0.0.1/v2/".into(),
            status: code,
            body: String::new(),
        }
    }

    #[test]
    fn classifies_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 409] {
            assert!(!status(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn unauthorized_says_how_to_log_in() {
        let e = Error::Unauthorized {
            registry: "ghcr.io".into(),
            repository: "org/app".into(),
            had_credentials: false,
        };
        let msg = e.to_string();
        assert!(msg.contains("docker login ghcr.io"), "{msg}");
        assert!(msg.contains("PROMOTER_AUTH_GHCR_IO"), "{msg}");
        assert!(!e.is_transient());
    }
}
