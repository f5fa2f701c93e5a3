//! A loopback stand-in for Artifact Registry / GCR, for scale tests: it
//! answers `GET /v2/` and `GET /v2/<repo>/tags/list` with the GCR `manifest`
//! map (digest -> tags, media type) from an inventory the test installs, and
//! `HEAD /v2/<repo>/manifests/<digest>` (or `<tag>`, for the tags the map
//! lacks) from the same inventory. Everything
//! else is a 404. Each response waits a configurable latency first, so that
//! the client's concurrency shows, and every request is counted per host and
//! path.
//!
//! Written by hand on a tokio `TcpListener`: HTTP/1.1 with keep-alive, no
//! request bodies, no TLS (a TLS hello is counted as `not-http` and the
//! connection closed, as a plain-HTTP registry would). One listener per
//! registry host the test rewrites, all sharing one state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The media type listings report for every manifest.
pub const MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// What one repository holds. Shared (`Arc`) between the mirrors that hold
/// the same thing, so that 22 mirrors cost one copy.
#[derive(Debug, Default)]
pub struct Listing {
    /// `"sha256:..":{..}` entries of the GCR map, joined by commas.
    manifest_map: String,
    /// `"v1","v2"`: every tag, for the standard `tags` array.
    tags: String,
    /// Digests held, for HEAD.
    digests: HashSet<String>,
    /// Tags the `tags` array names and the map does not (Artifact Registry
    /// past 10,000 tags), with their digests, for HEAD by tag.
    unmapped: HashMap<String, String>,
}

impl Listing {
    /// A listing of `(digest, tags)` pairs, digests as `sha256:<hex>`.
    pub fn new<'a>(entries: impl IntoIterator<Item = (String, Vec<&'a str>)>) -> Listing {
        let mut listing = Listing::default();
        let mut all_tags = Vec::new();
        for (digest, tags) in entries {
            if !listing.manifest_map.is_empty() {
                listing.manifest_map.push(',');
            }
            let tag_list: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
            listing.manifest_map.push_str(&format!(
                "\"{digest}\":{{\"imageSizeBytes\":\"1024\",\"layerId\":\"\",\"mediaType\":\"{MEDIA_TYPE}\",\"tag\":[{}],\"timeCreatedMs\":\"0\",\"timeUploadedMs\":\"0\"}}",
                tag_list.join(",")
            ));
            all_tags.extend(tag_list);
            listing.digests.insert(digest);
        }
        all_tags.sort();
        all_tags.dedup();
        listing.tags = all_tags.join(",");
        listing
    }

    /// Also `tag` on `digest`, named in the `tags` array but missing from
    /// the manifest map, as Artifact Registry's listing is past 10,000 tags
    /// (go-containerregistry `pkg/v1/google/list.go` pages the map): only a
    /// HEAD by tag tells where it points.
    #[allow(dead_code)] // Used by registry_gcr_listing, not by scale.
    pub fn with_unmapped(mut self, tag: &str, digest: &str) -> Listing {
        if !self.tags.is_empty() {
            self.tags.push(',');
        }
        self.tags.push_str(&format!("\"{tag}\""));
        self.digests.insert(digest.to_owned());
        self.unmapped.insert(tag.to_owned(), digest.to_owned());
        self
    }
}

#[derive(Default)]
struct State {
    latency: Duration,
    /// (listener port, repository) -> what it holds.
    repos: RwLock<HashMap<(u16, String), Arc<Listing>>>,
    /// (listener port, `METHOD /path`) -> requests; the query is dropped.
    counts: Mutex<BTreeMap<(u16, String), u64>>,
}

/// The running stand-in. Listeners stop when it is dropped.
pub struct StandIn {
    addrs: Vec<SocketAddr>,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl StandIn {
    /// Starts `hosts` listeners on 127.0.0.1, each answering after
    /// `latency`. Must be called inside a tokio runtime.
    pub async fn start(hosts: usize, latency: Duration) -> StandIn {
        let state = Arc::new(State {
            latency,
            ..State::default()
        });
        let mut addrs = Vec::with_capacity(hosts);
        let mut tasks = Vec::with_capacity(hosts);
        for _ in 0..hosts {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("local address");
            addrs.push(addr);
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, addr.port(), &state).await;
                    });
                }
            }));
        }
        StandIn {
            addrs,
            state,
            tasks,
        }
    }

    /// The listeners' `127.0.0.1:PORT`, in start order.
    pub fn hosts(&self) -> Vec<String> {
        self.addrs.iter().map(ToString::to_string).collect()
    }

    /// Makes `repo` of `host` (`127.0.0.1:PORT`) hold `listing`.
    pub fn hold(&self, host: &str, repo: &str, listing: Arc<Listing>) {
        let port = port_of(host);
        self.state
            .repos
            .write()
            .unwrap()
            .insert((port, repo.to_owned()), listing);
    }

    /// Requests seen since the last call, as (`host`, `METHOD /path`) ->
    /// count, and forgets them.
    pub fn take_requests(&self) -> BTreeMap<(String, String), u64> {
        let mut counts = self.state.counts.lock().unwrap();
        std::mem::take(&mut *counts)
            .into_iter()
            .map(|((port, path), n)| ((format!("127.0.0.1:{port}"), path), n))
            .collect()
    }
}

fn port_of(host: &str) -> u16 {
    host.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("`{host}` is not 127.0.0.1:PORT"))
}

fn count(state: &State, port: u16, key: String) {
    *state.counts.lock().unwrap().entry((port, key)).or_insert(0) += 1;
}

/// Serves one connection until the client closes it.
async fn serve(mut stream: TcpStream, port: u16, state: &State) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            // A TLS hello (first byte 0x16) is no HTTP request.
            if buf.is_empty() && chunk[0] == 0x16 {
                count(state, port, "not-http".into());
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or_default().split(' ');
        let (method, target) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let body_len: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        // Drop the head and any body.
        while buf.len() < end + body_len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..end + body_len);

        let path = target.split('?').next().unwrap_or_default().to_owned();
        count(state, port, format!("{method} {path}"));
        if !state.latency.is_zero() {
            tokio::time::sleep(state.latency).await;
        }
        let response = respond(state, port, &method, &path);
        stream.write_all(&response).await?;
    }
}

/// The whole response for one request.
fn respond(state: &State, port: u16, method: &str, path: &str) -> Vec<u8> {
    let not_found = || {
        reply(
            404,
            &[("Content-Type", "application/json")],
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"not held by the stand-in"}]}"#,
            method == "HEAD",
        )
    };
    if path == "/v2/" || path == "/v2" {
        return reply(
            200,
            &[("Content-Type", "application/json")],
            b"{}",
            method == "HEAD",
        );
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return not_found();
    };
    if method == "GET"
        && let Some(repo) = rest.strip_suffix("/tags/list")
    {
        let listing = state
            .repos
            .read()
            .unwrap()
            .get(&(port, repo.to_owned()))
            .cloned();
        let Some(listing) = listing else {
            return not_found();
        };
        let body = format!(
            "{{\"child\":[],\"manifest\":{{{}}},\"name\":\"{repo}\",\"tags\":[{}]}}",
            listing.manifest_map, listing.tags
        );
        return reply(
            200,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            false,
        );
    }
    if method == "HEAD"
        && let Some((repo, reference)) = rest.rsplit_once("/manifests/")
    {
        let digest = state
            .repos
            .read()
            .unwrap()
            .get(&(port, repo.to_owned()))
            .and_then(|l| {
                let by_tag = l.unmapped.get(reference).cloned();
                by_tag.or_else(|| l.digests.contains(reference).then(|| reference.to_owned()))
            });
        if let Some(digest) = digest {
            // HEAD: the headers of a body we never send.
            return format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {MEDIA_TYPE}\r\nDocker-Content-Digest: {digest}\r\nContent-Length: 1024\r\n\r\n"
            )
            .into_bytes();
        }
    }
    not_found()
}

fn reply(status: u16, headers: &[(&str, &str)], body: &[u8], head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}
