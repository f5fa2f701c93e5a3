//! A hostile registry: a front on 127.0.0.1 in front of a real
//! `docker-registry`, which passes every request through and misbehaves in
//! one way per [`Misbehaviour`]: headers no parser should trust, bodies too
//! large or too slow, loops, lies, and a redirect to another port whose
//! [`Recorder`] keeps the headers it receives. What each mode reproduces is
//! cited on it (issue 18 lists what they did to promoter before).
//!
//! Written by hand on `std::net` with a thread per connection: the front
//! must be able to say things no HTTP library lets a server say (a
//! `Content-Length` that lies, a header a byte a second). Requests go to
//! the backend as HTTP/1.0 with the client's `Host`, so distribution writes
//! upload `Location`s naming the front and answers without chunking.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

/// What the front does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Every response says `RateLimit-Remaining: 0` and
    /// `RateLimit-Reset: 18446744073709551615` (`u64::MAX`): the IETF
    /// draft's header with a value past any clock.
    ResetOverflow,
    /// Every request gets a 429 with `Retry-After: 18446744073709551615`.
    RetryAfterSecondsOverflow,
    /// Every request gets a 503 with a `Retry-After` HTTP date in the year
    /// 18446744073709551615.
    RetryAfterYearOverflow,
    /// Every request gets a 429 with `Retry-After` at the end of year 9999:
    /// a valid date, thousands of years ahead.
    RetryAfterFarFuture,
    /// `tags/list` answers one tag and a `Link: rel="next"` to itself
    /// (RFC 8288 lets a registry send any target; distribution sends the
    /// next page's).
    LinkLoop,
    /// `tags/list` answers a 384 MiB page without `Content-Length`.
    HugeTagsPage,
    /// Manifests are 64 MiB of JSON whitespace (distribution refuses more
    /// than 4 MiB on push; a registry with a bug may serve more).
    HugeManifest,
    /// Manifest GETs answer 400 with a 400 MiB body, without
    /// `Content-Length`.
    HugeErrorBody,
    /// Manifest bodies come at one byte per second: never silent for long
    /// enough to trip a per-read stall timeout.
    Trickle,
    /// Manifest bodies announce 1000 bytes more than they send, then the
    /// connection closes.
    LyingContentLength,
    /// Manifests by digest get one byte more than the digest covers, with
    /// the true `Docker-Content-Digest`.
    DigestMismatch,
    /// Blobs get their last byte changed: the size is right, the digest
    /// is not (a storage bit flip, or a cache serving another object).
    BlobMismatch,
    /// The front asks for HTTP Basic credentials, and answers blob GETs
    /// with a 307 to the [`Recorder`] on another port, as registries do to
    /// send blobs from storage (distribution's `redirect` storage option,
    /// S3 and GCS backends).
    RedirectBlobs,
    /// The front asks for a Bearer token whose realm answers with an HTML
    /// page (a login page behind a proxy).
    TokenHtml,
    /// The token endpoint answers a valid token with `"expires_in":
    /// 18446744073709551615`.
    HugeExpiresIn,
}

/// User and password the [`Misbehaviour::RedirectBlobs`] front asks for.
pub const USER: &str = "hostile-user";
/// Password of [`USER`].
pub const PASSWORD: &str = "hostile-secret-password";
/// The token the [`Misbehaviour::HugeExpiresIn`] endpoint hands out.
const TOKEN: &str = "hostile-token";

/// The running front. Its threads stop serving when it is dropped.
pub struct Hostile {
    /// `127.0.0.1:<port>` of the front.
    pub host: String,
    /// For [`Misbehaviour::RedirectBlobs`]: where blobs are sent.
    pub recorder: Option<Recorder>,
    stop: Arc<AtomicBool>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The other port a blob redirect points at: it records the request head
/// of every request and serves the blob from the backend.
pub struct Recorder {
    /// `127.0.0.1:<port>`.
    pub host: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// Every request head received so far (request line and headers).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// One request read from a client.
struct Request {
    method: String,
    target: String,
    /// Header lines as received, without the request line.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// A backend response.
struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hostile {
    /// Start a front misbehaving as `mode` in front of `backend`
    /// (`127.0.0.1:<port>`, a plain-HTTP registry).
    pub fn start(mode: Misbehaviour, backend: &str) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the front");
        let host = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = (mode == Misbehaviour::RedirectBlobs).then(|| start_recorder(backend));
        let front = Arc::new(Front {
            mode,
            host: host.clone(),
            backend: backend.to_owned(),
            recorder: recorder.as_ref().map(|r| r.host.clone()),
            stop: stop.clone(),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if front.stop.load(Ordering::SeqCst) {
                    return;
                }
                let front = front.clone();
                std::thread::spawn(move || {
                    let _ = front.serve(stream);
                });
            }
        });
        Hostile {
            host,
            recorder,
            stop,
        }
    }
}

struct Front {
    mode: Misbehaviour,
    host: String,
    backend: String,
    recorder: Option<String>,
    stop: Arc<AtomicBool>,
}

impl Front {
    /// Serve requests on one connection until it closes or a mode ends it.
    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(300)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        // A TLS hello (promoter's https probe) is no HTTP request: hang up,
        // as a plain-HTTP registry does.
        if reader.fill_buf()?.first() == Some(&0x16) {
            return Ok(());
        }
        let mut out = stream;
        while let Some(request) = read_request(&mut reader)? {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            if !self.answer(&request, &mut out)? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Answer one request; `false` when the connection must close.
    fn answer(&self, request: &Request, out: &mut TcpStream) -> std::io::Result<bool> {
        use Misbehaviour::*;
        let path = request.path().to_owned();
        let is_manifest = path.contains("/manifests/");
        let get = request.method == "GET";
        match self.mode {
            RetryAfterSecondsOverflow => {
                return throttle(out, 429, "18446744073709551615");
            }
            RetryAfterYearOverflow => {
                return throttle(out, 503, "Sun, 06 Nov 18446744073709551615 08:49:37 GMT");
            }
            RetryAfterFarFuture => return throttle(out, 429, "Fri, 31 Dec 9999 23:59:59 GMT"),
            LinkLoop if get && path.ends_with("/tags/list") => {
                let body = br#"{"name":"loop","tags":["loop"]}"#;
                let link = format!("<{}>; rel=\"next\"", request.target);
                return send(out, "200 OK", &[("Link", &link), JSON], body);
            }
            HugeTagsPage if get && path.ends_with("/tags/list") => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"name\":\"huge\",\"tags\":[";
                out.write_all(head.as_bytes())?;
                stream_filler(out, 384 << 20, b"\"tag-0000000000\",")?;
                return Ok(false);
            }
            HugeManifest if get && is_manifest => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\n\r\n",
                    64 << 20
                );
                out.write_all(head.as_bytes())?;
                stream_filler(out, 64 << 20, b"        ")?;
                return Ok(true);
            }
            HugeErrorBody if get && is_manifest => {
                let head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"errors\":[{\"code\":\"MANIFEST_INVALID\",\"message\":\"";
                out.write_all(head.as_bytes())?;
                stream_filler(out, 400 << 20, b"hostile ")?;
                return Ok(false);
            }
            RedirectBlobs => {
                if !basic_ok(request) {
                    let challenge = "Basic realm=\"hostile\"";
                    return send(
                        out,
                        "401 Unauthorized",
                        &[("WWW-Authenticate", challenge), JSON],
                        b"{}",
                    );
                }
                if get && path.contains("/blobs/sha256:") {
                    let digest = path.rsplit('/').next().unwrap_or_default();
                    let recorder = self.recorder.as_deref().unwrap_or_default();
                    let location = format!("http://{recorder}/storage/{digest}?signature=abc");
                    return send(
                        out,
                        "307 Temporary Redirect",
                        &[("Location", &location)],
                        b"",
                    );
                }
            }
            TokenHtml | HugeExpiresIn => {
                if path == "/token" {
                    return if self.mode == TokenHtml {
                        let page =
                            format!("<html><body>{}</body></html>", "Please log in. ".repeat(70));
                        send(
                            out,
                            "200 OK",
                            &[("Content-Type", "text/html")],
                            page.as_bytes(),
                        )
                    } else {
                        let body =
                            format!(r#"{{"token":"{TOKEN}","expires_in":18446744073709551615}}"#);
                        send(out, "200 OK", &[JSON], body.as_bytes())
                    };
                }
                let bearer = format!("Bearer {TOKEN}");
                if request.header("authorization") != Some(bearer.as_str()) {
                    let challenge = format!(
                        "Bearer realm=\"http://{}/token\",service=\"hostile\"",
                        self.host
                    );
                    return send(
                        out,
                        "401 Unauthorized",
                        &[("WWW-Authenticate", &challenge), JSON],
                        b"{}",
                    );
                }
            }
            _ => {}
        }
        let mut response = forward(&self.backend, request)?;
        match self.mode {
            ResetOverflow => {
                response
                    .headers
                    .push(("RateLimit-Limit".into(), "100".into()));
                response
                    .headers
                    .push(("RateLimit-Remaining".into(), "0".into()));
                response
                    .headers
                    .push(("RateLimit-Reset".into(), "18446744073709551615".into()));
            }
            Trickle if get && is_manifest && response.status_line.contains(" 200") => {
                write_head(out, &response, Some(response.body.len()))?;
                for byte in &response.body {
                    out.write_all(&[*byte])?;
                    out.flush()?;
                    std::thread::sleep(Duration::from_secs(1));
                }
                return Ok(true);
            }
            LyingContentLength if get && is_manifest && response.status_line.contains(" 200") => {
                write_head(out, &response, Some(response.body.len() + 1000))?;
                out.write_all(&response.body)?;
                return Ok(false);
            }
            DigestMismatch if get && path.contains("/manifests/sha256:") => {
                response.body.push(b'\n');
            }
            BlobMismatch if get && path.contains("/blobs/sha256:") => {
                if let Some(last) = response.body.last_mut() {
                    *last ^= 1;
                }
            }
            _ => {}
        }
        let length = (request.method != "HEAD").then_some(response.body.len());
        write_head(out, &response, length)?;
        if request.method != "HEAD" {
            out.write_all(&response.body)?;
        }
        Ok(true)
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn basic_ok(request: &Request) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    request.header("authorization") == Some(format!("Basic {expected}").as_str())
}

/// A 429 or 503 with `Retry-After: value` and an OCI error body.
fn throttle(out: &mut TcpStream, status: u16, value: &str) -> std::io::Result<bool> {
    let line = if status == 429 {
        "429 Too Many Requests"
    } else {
        "503 Service Unavailable"
    };
    let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"come back later"}]}"#;
    send(out, line, &[("Retry-After", value), JSON], body)
}

/// A whole response with a correct `Content-Length`.
fn send(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<bool> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    Ok(true)
}

/// `total` bytes of `unit` repeated, written 64 KiB at a time, never held
/// whole. Stops quietly when the client hangs up.
fn stream_filler(out: &mut TcpStream, total: usize, unit: &[u8]) -> std::io::Result<()> {
    let block: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0;
    while sent < total {
        let n = block.len().min(total - sent);
        if out.write_all(&block[..n]).is_err() {
            return Ok(());
        }
        sent += n;
    }
    Ok(())
}

/// Status line and headers of a backend response, with `length` as the
/// `Content-Length` (or the backend's own, for HEAD).
fn write_head(out: &mut TcpStream, r: &Response, length: Option<usize>) -> std::io::Result<()> {
    let mut head = format!("{}\r\n", r.status_line.replacen("HTTP/1.0", "HTTP/1.1", 1));
    for (name, value) in &r.headers {
        let skip = ["connection", "keep-alive", "transfer-encoding"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
            || (length.is_some() && name.eq_ignore_ascii_case("content-length"));
        if !skip {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

/// Read one request (head and `Content-Length` body); `None` at the end of
/// the connection.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.trim_end().split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

/// Send `request` to `backend` as HTTP/1.0 (one request per connection, no
/// chunking) with the client's headers minus `Authorization` and
/// `Connection`, and read the whole response.
fn forward(backend: &str, request: &Request) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(backend)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{} {} HTTP/1.0\r\n", request.method, request.target);
    for (name, value) in &request.headers {
        let skip = [
            "authorization",
            "connection",
            "keep-alive",
            "content-length",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h));
        if !skip {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", request.body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&request.body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("backend response without a head"))?;
    let text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = if request.method == "HEAD" {
        Vec::new()
    } else {
        raw[split + 4..].to_vec()
    };
    Ok(Response {
        status_line,
        headers,
        body,
    })
}

/// The redirect target: records each request head, then serves
/// `/storage/<digest>` from `backend`'s blob of any repository that has it
/// (the test tells it none: it asks the `_catalog`).
fn start_recorder(backend: &str) -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
    let host = listener.local_addr().unwrap().to_string();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let recorded = heads.clone();
    let backend = backend.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (heads, backend) = (recorded.clone(), backend.clone());
            std::thread::spawn(move || {
                let _ = record(stream, &heads, &backend);
            });
        }
    });
    Recorder { host, heads }
}

fn record(stream: TcpStream, heads: &Mutex<Vec<String>>, backend: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    if reader.fill_buf()?.first() == Some(&0x16) {
        return Ok(());
    }
    let mut out = stream;
    while let Some(request) = read_request(&mut reader)? {
        let mut head = format!("{} {}\n", request.method, request.target);
        for (name, value) in &request.headers {
            head.push_str(&format!("{name}: {value}\n"));
        }
        heads.lock().unwrap().push(head);
        let digest = request
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let blob = blob_from(backend, &digest)?;
        match blob {
            Some(bytes) => send(
                &mut out,
                "200 OK",
                &[("Content-Type", "application/octet-stream")],
                &bytes,
            )?,
            None => send(&mut out, "404 Not Found", &[], b"")?,
        };
    }
    Ok(())
}

/// The blob `digest` from whichever repository of `backend` holds it.
fn blob_from(backend: &str, digest: &str) -> std::io::Result<Option<Vec<u8>>> {
    let get = |target: String| {
        forward(
            backend,
            &Request {
                method: "GET".into(),
                target,
                headers: vec![("Host".into(), backend.to_owned())],
                body: Vec::new(),
            },
        )
    };
    let catalog = get("/v2/_catalog?n=1000".into())?;
    let repos: serde_json::Value = serde_json::from_slice(&catalog.body).unwrap_or_default();
    for repo in repos["repositories"].as_array().into_iter().flatten() {
        let Some(repo) = repo.as_str() else { continue };
        let blob = get(format!("/v2/{repo}/blobs/{digest}"))?;
        if blob.status_line.contains(" 200") {
            return Ok(Some(blob.body));
        }
        // distribution redirects nothing on filesystem storage; a 307 here
        // would be a setup error.
    }
    Ok(None)
}
