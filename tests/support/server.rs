//! The Debian `docker-registry` (distribution 2.8) on 127.0.0.1 with a random
//! port, in the configurations the tests need. The process is killed when the
//! [`RegistryServer`] is dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::certs;
use super::token::{self, TokenServer};

/// User and password of the authenticated configurations.
pub const USER: &str = "promoter";
/// Password of [`USER`].
pub const PASSWORD: &str = "correct horse battery staple";

/// How a test registry authenticates and connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plain HTTP, no authentication.
    Plain,
    /// HTTP Basic against an htpasswd file (bcrypt).
    Htpasswd,
    /// Bearer tokens from a [`TokenServer`] (ES256 JWT with `x5c`).
    Token,
    /// HTTPS with a certificate made at test time, no authentication.
    Tls,
}

/// Whom a registry lets in, for [`RegistryServer::start_with`].
pub enum Login {
    /// [`USER`] with [`PASSWORD`].
    Default,
    /// This user and password ([`Mode::Htpasswd`]).
    Password(String, String),
    /// This user with every password the check accepts ([`Mode::Token`]).
    Check(String, super::token::PasswordCheck),
}

/// A running registry.
pub struct RegistryServer {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The mode it was started in.
    pub mode: Mode,
    /// For [`Mode::Tls`]: the CA that signed the server certificate (PEM).
    pub ca_pem: Option<String>,
    /// For [`Mode::Token`]: the token server.
    pub token_server: Option<TokenServer>,
    /// Storage and config directory.
    pub dir: tempfile::TempDir,
    /// Every line the registry logged, in order (see [`Self::requests`]).
    log: Arc<Mutex<Vec<String>>>,
    child: Child,
}

/// One HTTP request, as the registry itself logged it (`response completed`
/// lines): an independent count of what a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `GET`, `HEAD`, `PUT`, ...
    pub method: String,
    /// Path and query, e.g. `/v2/app/tags/list`.
    pub uri: String,
    /// HTTP status of the response.
    pub status: u16,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

impl LoggedRequest {
    /// Parse a `response completed` log line; `None` for any other line.
    pub fn parse(line: &str) -> Option<LoggedRequest> {
        if !line.contains("msg=\"response completed") {
            return None;
        }
        Some(LoggedRequest {
            method: log_field(line, "http.request.method")?,
            uri: log_field(line, "http.request.uri")?,
            status: log_field(line, "http.response.status")?.parse().ok()?,
            user_agent: log_field(line, "http.request.useragent").unwrap_or_default(),
        })
    }
}

/// The value of `key=value` or `key="quoted value"` in a logfmt line.
fn log_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '"' => return Some(value),
                c => value.push(c),
            }
        }
        None
    } else {
        Some(rest.split(' ').next().unwrap_or_default().to_string())
    }
}

impl RegistryServer {
    /// Start `docker-registry serve` in `mode`, with filesystem storage in a
    /// temporary directory, and wait until it listens.
    pub fn start(mode: Mode) -> RegistryServer {
        RegistryServer::start_with(mode, Login::Default)
    }

    /// [`RegistryServer::start`] letting in whom `login` says.
    pub fn start_with(mode: Mode, login: Login) -> RegistryServer {
        super::require_tools();
        let dir = tempfile::tempdir().expect("registry temp dir");
        let path = |name: &str| -> PathBuf { dir.path().join(name) };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:0\n  secret: promoter-test-secret\n",
            path("storage").display()
        );
        let mut ca_pem = None;
        let mut token_server = None;
        match mode {
            Mode::Plain => {}
            Mode::Tls => {
                let tls = certs::loopback_tls();
                std::fs::write(path("cert.pem"), &tls.cert_pem).unwrap();
                std::fs::write(path("key.pem"), &tls.key_pem).unwrap();
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    path("cert.pem").display(),
                    path("key.pem").display()
                ));
                ca_pem = Some(tls.ca_pem);
            }
            Mode::Htpasswd => {
                let salt = *b"promoter-salt-16";
                let (user, password) = match &login {
                    Login::Password(user, password) => (user.as_str(), password.as_str()),
                    _ => (USER, PASSWORD),
                };
                let hash = bcrypt::hash_with_salt(password, 5, salt)
                    .expect("bcrypt")
                    .format_for_version(bcrypt::Version::TwoY);
                std::fs::write(path("htpasswd"), format!("{user}:{hash}\n")).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: promoter-test\n    path: {}\n",
                    path("htpasswd").display()
                ));
            }
            Mode::Token => {
                let signer = certs::token_signer();
                std::fs::write(path("token-ca.pem"), &signer.cert_pem).unwrap();
                let server = match login {
                    Login::Check(user, check) => TokenServer::start_checking(&signer, &user, check),
                    _ => TokenServer::start(&signer, USER, PASSWORD),
                };
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm,
                    token::SERVICE,
                    token::ISSUER,
                    path("token-ca.pem").display()
                ));
                token_server = Some(server);
            }
        }
        std::fs::write(path("config.yml"), config).unwrap();
        let mut child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(path("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().expect("registry stderr");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_writer = log.clone();
        std::thread::spawn(move || {
            // Keep draining the log after the port is known, so the
            // registry never blocks on a full pipe.
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(tx_ref) = &tx
                    && let Some(rest) = line.split("listening on ").nth(1)
                {
                    // `listening on 127.0.0.1:PORT`, followed by `, tls` with TLS.
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = tx_ref.send(addr);
                    tx = None;
                }
                if std::env::var_os("PROMOTER_TEST_REGISTRY_LOG").is_some() {
                    eprintln!("registry: {line}");
                }
                log_writer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("docker-registry did not report `listening on` within 20 s");
            }
        };
        assert!(
            addr.starts_with("127.0.0.1:"),
            "unexpected listen address {addr}"
        );
        RegistryServer {
            host: addr,
            mode,
            ca_pem,
            token_server,
            dir,
            log,
            child,
        }
    }

    /// A mark in the request log: pass it to [`Self::requests_since`] to
    /// see only what came after.
    pub fn log_mark(&self) -> usize {
        self.settle_log();
        self.log.lock().unwrap().len()
    }

    /// Every request the registry has logged so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests_since(0)
    }

    /// The requests logged after `mark` (from [`Self::log_mark`]). Waits
    /// until the log has been quiet for a moment first: the registry logs a
    /// request just after answering it, so a client may have exited before
    /// its last line is written.
    pub fn requests_since(&self, mark: usize) -> Vec<LoggedRequest> {
        self.settle_log();
        self.log.lock().unwrap()[mark..]
            .iter()
            .filter_map(|l| LoggedRequest::parse(l))
            .collect()
    }

    /// The requests logged so far, without waiting (for polling while a
    /// client runs).
    pub fn requests_now(&self) -> Vec<LoggedRequest> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| LoggedRequest::parse(l))
            .collect()
    }

    /// Wait until no new log line arrived for 150 ms (at most 5 s).
    fn settle_log(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = self.log.lock().unwrap().len();
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.log.lock().unwrap().len();
            if now == seen || Instant::now() > deadline {
                return;
            }
            seen = now;
        }
    }

    /// `--creds` value for skopeo, when the mode authenticates.
    pub fn skopeo_creds(&self) -> Option<String> {
        matches!(self.mode, Mode::Htpasswd | Mode::Token).then(|| format!("{USER}:{PASSWORD}"))
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
