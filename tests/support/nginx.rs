//! Debian `nginx` on 127.0.0.1 as a reverse proxy in front of a registry,
//! adding the faults registries show in the field: a request-rate limit
//! answered with 429 (`limit_req`), and 503 on a share of requests
//! (`split_clients`), or a rate limit on manifest PUTs alone
//! ([`ManifestPutLimit`]). Also [`Backend`], a `docker-registry` that can be
//! killed and restarted on the same port with the same storage.
//!
//! Every process runs in the foreground with its files in a temporary
//! directory, and is killed on drop. The access log records `$msec $status
//! $request_method $uri` per request, for rates measured on the server side.
#![allow(dead_code)] // Each test crate uses a different part.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";
const REGISTRY: &str = "/usr/bin/docker-registry";

/// The faults the proxy adds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// `limit_req` rate in requests per second, answered with 429 beyond
    /// its burst.
    pub rate_limit: Option<u32>,
    /// `limit_req` burst (requests queued, delayed to the rate).
    pub burst: u32,
    /// Percentage of requests answered 503 without reaching the registry.
    pub fail_percent: Option<u32>,
}

/// A `limit_req` on manifest PUTs only (`PUT /v2/<name>/manifests/<ref>`),
/// answered with 429 beyond its burst; every other request passes
/// unlimited. Reproduces registries that meter manifest writes apart:
/// ECR's default `PutImage` quota of 10/s while layer reads go far higher
/// (ECR user guide, "Amazon ECR service quotas"), Artifact Registry's
/// 18,000 writes/min inside 60,000 requests/min (cloud.google.com
/// artifact-registry/quotas).
#[derive(Clone, Copy, Debug)]
pub struct ManifestPutLimit {
    /// Manifest PUTs per second.
    pub rate: u32,
    /// Requests queued (delayed to the rate) before nginx answers 429.
    pub burst: u32,
}

/// A running nginx.
pub struct Nginx {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// Config, logs, pid and temp files.
    pub dir: tempfile::TempDir,
    child: Child,
}

/// A free loopback port: bound, then released for a server to take. The
/// caller retries if another process takes it meanwhile.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Wait until `addr` accepts connections, or `child` exits.
fn wait_listening(addr: &str, child: &mut Child, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("{what} exited: {status}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on {addr} within 10 s");
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

impl Nginx {
    /// Start nginx proxying to `upstream` (`127.0.0.1:<port>`) with
    /// `faults`, on a free port (a few tries if another process takes it).
    pub fn start(upstream: &str, faults: Faults) -> Nginx {
        Nginx::start_with(upstream, faults, None, None)
    }

    /// Start nginx proxying to `upstream`, limiting only manifest PUTs.
    pub fn start_limiting_manifest_puts(upstream: &str, limit: ManifestPutLimit) -> Nginx {
        Nginx::start_with(upstream, Faults::default(), Some(limit), None)
    }

    /// Start nginx proxying to `upstream`, except the paths under `prefix`
    /// (such as `/oauth2/`), which go to `other`: one host serving a
    /// registry and an authorization endpoint of its own, as ACR serves
    /// `/oauth2/exchange` beside `/v2/`.
    pub fn start_routing(upstream: &str, prefix: &str, other: &str) -> Nginx {
        Nginx::start_with(upstream, Faults::default(), None, Some((prefix, other)))
    }

    fn start_with(
        upstream: &str,
        faults: Faults,
        manifests: Option<ManifestPutLimit>,
        route: Option<(&str, &str)>,
    ) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install the Debian package `nginx`"
        );
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("nginx temp dir");
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let mut config = config(dir.path(), &host, upstream, faults, manifests);
            if let Some((prefix, other)) = route {
                let location = format!(
                    "location {prefix} {{ proxy_pass http://{other}; proxy_set_header Host $http_host; }}\n        location / {{"
                );
                config = config.replacen("location / {", &location, 1);
            }
            std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
            let mut child = Command::new(NGINX)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                // One process, no worker to orphan when it is killed on drop.
                .args(["-g", "daemon off; master_process off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start nginx");
            if wait_listening(&host, &mut child, "nginx") {
                return Nginx { host, dir, child };
            }
            // Most likely the port was taken between bind and start.
        }
        panic!("nginx did not start in 5 tries");
    }

    /// The access log: `(seconds since the epoch, status)` per request.
    pub fn access_log(&self) -> Vec<(f64, u16)> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
            })
            .collect()
    }
}

/// One line of the access log.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Seconds since the epoch, when the response was sent.
    pub at: f64,
    pub status: u16,
    pub method: String,
    pub uri: String,
}

impl Nginx {
    /// The access log with methods and paths.
    pub fn requests(&self) -> Vec<Logged> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some(Logged {
                    at: parts.next()?.parse().ok()?,
                    status: parts.next()?.parse().ok()?,
                    method: parts.next()?.to_owned(),
                    uri: parts.next()?.to_owned(),
                })
            })
            .collect()
    }
}

/// Requests the registry answered, per second: statuses 200, 201, 202 and
/// 404 over the window from the first to the last of them.
pub fn answered_rate(log: &[(f64, u16)]) -> (usize, f64) {
    let times: Vec<f64> = log
        .iter()
        .filter(|(_, s)| matches!(s, 200 | 201 | 202 | 404))
        .map(|(t, _)| *t)
        .collect();
    let (Some(first), Some(last)) = (
        times.iter().copied().reduce(f64::min),
        times.iter().copied().reduce(f64::max),
    ) else {
        return (0, 0.0);
    };
    let window = (last - first).max(1e-3);
    (times.len(), times.len() as f64 / window)
}

fn config(
    dir: &Path,
    listen: &str,
    upstream: &str,
    faults: Faults,
    manifests: Option<ManifestPutLimit>,
) -> String {
    let d = dir.display();
    let user = if running_as_root() { "user root;" } else { "" };
    let mut zones = String::new();
    let mut location = String::new();
    if let Some(percent) = faults.fail_percent {
        zones.push_str(&format!(
            "split_clients \"${{request_id}}\" $fail {{ {percent}% 1; * 0; }}\n"
        ));
        location.push_str("if ($fail) { return 503; }\n");
    }
    if let Some(rate) = faults.rate_limit {
        zones.push_str(&format!(
            "limit_req_zone $server_port zone=registry:1m rate={rate}r/s;\n"
        ));
        location.push_str(&format!(
            "limit_req zone=registry burst={};\nlimit_req_status 429;\nlimit_req_log_level info;\n",
            faults.burst
        ));
    }
    if let Some(limit) = manifests {
        // limit_req does not count requests whose key is empty.
        zones.push_str(&format!(
            "map \"$request_method:$uri\" $manifest_put {{ ~^PUT:/v2/.+/manifests/ $server_port; default \"\"; }}\n\
             limit_req_zone $manifest_put zone=manifests:1m rate={}r/s;\n",
            limit.rate
        ));
        location.push_str(&format!(
            "limit_req zone=manifests burst={};\nlimit_req_status 429;\nlimit_req_log_level info;\n",
            limit.burst
        ));
    }
    format!(
        r#"{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
    log_format timed '$msec $status $request_method $uri';
    access_log {d}/access.log timed;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 0;
    {zones}
    upstream registry {{ server {upstream}; keepalive 32; }}
    server {{
        listen {listen};
        location / {{
            {location}
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"#
    )
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `docker-registry` on a fixed loopback port with filesystem storage,
/// which a test can kill and start again on the same port and storage.
pub struct Backend {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// Storage and config.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Backend {
    /// Start on a free port.
    pub fn start() -> Backend {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("registry temp dir");
            let host = format!("127.0.0.1:{}", free_port());
            let mut backend = Backend {
                host,
                dir,
                child: None,
            };
            if backend.spawn() {
                return backend;
            }
        }
        panic!("docker-registry did not start in 5 tries");
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn spawn(&mut self) -> bool {
        assert!(
            Path::new(REGISTRY).exists(),
            "{REGISTRY} is missing: install the Debian package `docker-registry`"
        );
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {}\n  secret: promoter-test-secret\n  draintimeout: 2s\n",
            self.dir.path().join("storage").display(),
            self.host
        );
        std::fs::write(self.config_path(), config).unwrap();
        let mut child = Command::new(REGISTRY)
            .arg("serve")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        // Drain the log so the registry never blocks on a full pipe.
        let stderr = child.stderr.take().expect("registry stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("PROMOTER_TEST_REGISTRY_LOG").is_some() {
                    eprintln!("registry: {line}");
                }
            }
        });
        let ok = wait_listening(&self.host, &mut child, "docker-registry");
        self.child = Some(child);
        ok
    }

    /// Kill the registry (SIGKILL: connections drop mid-request).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the registry as a deployment restarts it: SIGTERM, after which
    /// it accepts no new connection and finishes the requests in flight
    /// (`http.draintimeout`, 2 s: enough for the small requests of the
    /// tests; idle connections are closed at once). Not SIGKILL: docker-registry's filesystem
    /// driver writes a file in place, and a kill between the truncation and
    /// the write leaves an empty manifest blob that it then serves as 500
    /// forever (a re-push finds the blob "present" and skips it) — a
    /// storage fault of that driver, not something a client can repair.
    /// distribution fixed it in v3.1.0 (commit a5a6f1ba3, "empty files are
    /// created when the write process is interrupted": write a temporary
    /// file, then rename); Debian ships 2.8.2.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not restart on {}", self.host);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}
