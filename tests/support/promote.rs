//! Support for the end-to-end promotion tests: manifests naming local
//! registries, seeding a source registry, and reading registries back over
//! plain HTTP without the code under test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use promoter::registry::http::{HttpClient, HttpOptions};
use promoter::registry::{Registry, RepoName};

use super::image::TestImage;
use super::server::{LoggedRequest, RegistryServer};

/// Every manifest media type, so the registry answers for indexes too.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// One image of a plain manifest: its name and `(digest, tags)` entries.
pub struct ManifestImage {
    /// Image name, e.g. `app` or `team/app`.
    pub name: String,
    /// `(sha256:<hex>, tags)` in order.
    pub dmap: Vec<(String, Vec<String>)>,
}

impl ManifestImage {
    /// An image with one entry.
    pub fn one(name: &str, digest: &str, tags: &[&str]) -> ManifestImage {
        ManifestImage {
            name: name.to_string(),
            dmap: vec![(
                digest.to_string(),
                tags.iter().map(|t| t.to_string()).collect(),
            )],
        }
    }
}

/// A plain (kpromo) manifest: `source` is the `src: true` registry name,
/// `destinations` the others (e.g. `127.0.0.1:PORT/prod`).
pub fn manifest_yaml(source: &str, destinations: &[String], images: &[ManifestImage]) -> String {
    let mut yaml = format!("registries:\n- name: {source}\n  src: true\n");
    for d in destinations {
        yaml.push_str(&format!("- name: {d}\n"));
    }
    yaml.push_str("images:\n");
    for image in images {
        yaml.push_str(&format!("- name: {}\n  dmap:\n", image.name));
        for (digest, tags) in &image.dmap {
            let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
            yaml.push_str(&format!("    \"{digest}\": [{}]\n", tags.join(", ")));
        }
    }
    yaml
}

/// The 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> u32 {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` is not in the manifest")) as u32
        + 1
}

/// Push each `(repo, image, tag)` to `server` through the library's HTTP
/// registry (test setup only; the checks read back independently).
pub fn push_images(server: &RegistryServer, images: &[(&str, &TestImage, &str)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = HttpClient::new(HttpOptions::default()).expect("client");
        let registry: Arc<dyn Registry> = Arc::new(client.registry(&server.host).unwrap());
        for (repo, image, tag) in images {
            let repo: RepoName = repo.parse().expect("repository name");
            image.push(registry.as_ref(), &repo, tag).await;
        }
    });
}

/// A response read with [`http`].
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body (empty for HEAD).
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One plain HTTP/1.0 request to a loopback registry, with its own socket
/// code (no library involved).
pub fn http(method: &str, host: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(host).expect("connect to the registry");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: {ACCEPT}\r\nUser-Agent: promote-test-probe\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The repositories a registry holds (`/v2/_catalog`).
pub fn catalog(server: &RegistryServer) -> Vec<String> {
    let response = http("GET", &server.host, "/v2/_catalog?n=1000");
    assert_eq!(response.status, 200, "catalog of {}", server.host);
    let value: serde_json::Value = serde_json::from_slice(&response.body).expect("catalog JSON");
    value["repositories"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The digest a tag (or digest) resolves to in `repo`, or `None` (404).
pub fn resolve(server: &RegistryServer, repo: &str, reference: &str) -> Option<String> {
    let response = http(
        "HEAD",
        &server.host,
        &format!("/v2/{repo}/manifests/{reference}"),
    );
    match response.status {
        200 => Some(
            response
                .header("docker-content-digest")
                .expect("Docker-Content-Digest")
                .to_string(),
        ),
        404 => None,
        other => panic!("HEAD {repo}:{reference} on {}: {other}", server.host),
    }
}

/// Requests in `log` that are not from this module's probes or from skopeo
/// (the checks' own reads), i.e. what the program under test sent.
pub fn from_promoter(log: Vec<LoggedRequest>) -> Vec<LoggedRequest> {
    log.into_iter()
        .filter(|r| r.user_agent.starts_with("promoter"))
        .collect()
}

/// Requests that write (anything but GET and HEAD).
pub fn writes(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .collect()
}
