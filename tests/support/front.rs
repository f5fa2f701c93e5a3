//! Profile fronts: an HTTP proxy on 127.0.0.1 in front of a real registry
//! (docker-registry 2.8 or ferro-oci-server) that answers some requests the
//! way one real registry does, as its documentation or its users' reports
//! describe it, and forwards everything else. Each rule cites its source.
//! The fronts reproduce status codes, headers and error bodies; the storage
//! behind them is the real registry's.
//!
//! Built on hyper's HTTP/1.1 server and reqwest as the upstream client, in
//! a thread with its own runtime, so that both sync and async tests can use
//! it. Every answer is logged (method, path, status) for the tests to count.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Which registry a front plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// None: every request is forwarded as it is (and logged).
    Pass,
    /// Amazon ECR: chunk PATCH answered 201 (aws/containers-roadmap#2831);
    /// `n` over 1000 on tags/list is an error (#2860); mounts without
    /// BLOB_MOUNTING open an upload session, 202 (ECR user guide, "Blob
    /// mounting"); IMMUTABLE repositories refuse rewriting a tag with 400
    /// TAG_INVALID (ECR user guide, "Image tag mutability"); throttling is
    /// 429 TOOMANYREQUESTS without any rate-limit header (ECR service
    /// quotas; DESIGN.md "Real registries").
    Ecr,
    /// GHCR: a PATCH body over 4 MiB is answered 416 "exceeds ... 4.00MiB"
    /// (oras-project/rust-oci-client#35, #37); no referrers API, 404
    /// (actions/attest-build-provenance#71); a declined mount opens a
    /// session (202). Upload locations are absolute URLs on another host
    /// (OCI distribution spec: the `Location` "MAY be absolute or relative").
    Ghcr,
    /// Harbor: immutability rules refuse a push to an existing tag with 412
    /// PRECONDITION (goharbor/harbor#17332); referrers API since 2.8
    /// (#19867); a mount across projects is refused with 401.
    Harbor,
    /// Quay: tags paged at 50 (quay/quay#3071); the referrers API answers
    /// 400, not 404, for a subject it does not know (quay/quay#2597).
    Quay,
    /// GitLab: no referrers API; a `sha256-<hex>` tag resolves to the
    /// manifest `sha256:<hex>` itself (oras-project/oras-go#1396).
    GitLab,
    /// Docker Hub: no referrers API; a mount whose token request names a
    /// `from` repository the token endpoint refuses fails with 400
    /// (google/go-containerregistry#1679), answered here on the POST.
    DockerHub,
}

/// Settings of a front beyond its profile.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Largest PATCH body accepted (GHCR: 4 MiB).
    pub max_patch: usize,
    /// Answer every n-th request 429 without headers (ECR), 0 for never.
    pub throttle_every: u64,
    /// Answer the first n requests 429 without headers, whatever they are:
    /// ECR throttles every API call, `GET /v2/` too. 0 for none.
    pub throttle_first: u64,
    /// Keep blobs per repository: a blob is there for a repository only
    /// once it was uploaded (or mounted) into it through the front. For
    /// ferro-oci-server 1.0.0, whose blob store is global (a blob pushed to
    /// one repository answers HEAD in every other), where the distribution
    /// spec and every registry profiled here scope blobs per repository.
    pub scope_blobs: bool,
    /// Answer every blob HEAD 401, as ECR Public does
    /// (aws/containers-roadmap#2671); GETs are answered.
    pub head_blob_401: bool,
    /// Answer every write (POST, PUT, PATCH, DELETE) 403 DENIED, as a
    /// registry does to a push without write access (distribution spec,
    /// error code `DENIED`): a destination that refuses writes.
    pub refuse_writes: bool,
    /// Accept only image manifests whose layers are all of these media
    /// types, as self-hosted Quay does with `FEATURE_GENERAL_OCI_SUPPORT`
    /// and `ALLOWED_OCI_ARTIFACT_TYPES` (Quay's configuration guide, "OCI
    /// and Helm configuration fields"): anything else is refused with 400
    /// MANIFEST_INVALID (oras-project/oras#738: "quay.io only allows
    /// certain config media types"). `None`: every type.
    pub allowed_layer_types: Option<&'static [&'static str]>,
}

impl Options {
    /// What `profile` documents.
    pub fn of(profile: Profile) -> Options {
        Options {
            max_patch: if profile == Profile::Ghcr {
                4 * 1024 * 1024
            } else {
                usize::MAX
            },
            throttle_every: if profile == Profile::Ecr { 40 } else { 0 },
            throttle_first: 0,
            scope_blobs: false,
            head_blob_401: false,
            refuse_writes: false,
            allowed_layer_types: None,
        }
    }
}

/// One logged answer.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
}

struct State {
    profile: Profile,
    options: Options,
    upstream: String,
    /// `127.0.0.1:<port>` of the front itself and of its "storage" host.
    host: String,
    storage: String,
    client: reqwest::Client,
    requests: AtomicU64,
    log: Mutex<Vec<Logged>>,
    /// (repository, digest) uploaded or mounted through the front.
    blobs: Mutex<std::collections::HashSet<(String, String)>>,
}

/// A running front.
pub struct Front {
    /// `127.0.0.1:<port>`: what promoter manifests name.
    pub host: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Front {
    /// A front playing `profile` in front of `upstream` (`127.0.0.1:<port>`).
    pub fn start(upstream: &str, profile: Profile) -> Front {
        Front::with(upstream, profile, Options::of(profile))
    }

    /// [`Front::start`] with other `options`.
    pub fn with(upstream: &str, profile: Profile, options: Options) -> Front {
        let main = std::net::TcpListener::bind("127.0.0.1:0").expect("bind front");
        let storage = std::net::TcpListener::bind("127.0.0.1:0").expect("bind front storage");
        let state = Arc::new(State {
            profile,
            options,
            upstream: upstream.to_owned(),
            host: main.local_addr().unwrap().to_string(),
            storage: storage.local_addr().unwrap().to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            requests: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            blobs: Mutex::new(Default::default()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                main.set_nonblocking(true).unwrap();
                storage.set_nonblocking(true).unwrap();
                let main = tokio::net::TcpListener::from_std(main).unwrap();
                let storage = tokio::net::TcpListener::from_std(storage).unwrap();
                tokio::select! {
                    _ = serve(main, serving.clone()) => {}
                    _ = serve(storage, serving) => {}
                    _ = rx => {}
                }
            });
        });
        Front {
            host: state.host.clone(),
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Every answer so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Answers counted by method, kind of request (`mount`, `upload`,
    /// `referrers`, `tags`, `manifest`, `blob`) and status: what a failing
    /// assertion prints.
    pub fn summary(&self) -> std::collections::BTreeMap<(String, &'static str, u16), usize> {
        let mut out = std::collections::BTreeMap::new();
        for l in self.log() {
            let kind = if l.path.contains("mount=") {
                "mount"
            } else if l.path.contains("/blobs/uploads/") {
                "upload"
            } else if l.path.contains("/referrers/") {
                "referrers"
            } else if l.path.contains("/tags/list") {
                "tags"
            } else if l.path.contains("/manifests/") {
                "manifest"
            } else {
                "blob"
            };
            *out.entry((l.method, kind, l.status)).or_insert(0) += 1;
        }
        out
    }

    /// How many answers had `method` and `status`.
    pub fn count(&self, method: &str, status: u16) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == method && l.status == status)
            .count()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

/// A request as the rules see it.
struct Incoming {
    method: Method,
    /// Path and query.
    target: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Answer, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let incoming = Incoming {
        method: parts.method.clone(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    let answer = match before(&state, &incoming).await {
        Some(answer) => answer,
        None => forward(&state, &incoming).await,
    };
    note_blob(&state, &incoming, answer.status().as_u16());
    state.log.lock().unwrap().push(Logged {
        method: incoming.method.to_string(),
        path: incoming.target.clone(),
        status: answer.status().as_u16(),
    });
    Ok(answer)
}

/// Remember a blob committed (`PUT ...?digest=`, a monolithic POST) or
/// mounted (201 to `?mount=`) into a repository.
fn note_blob(state: &State, r: &Incoming, status: u16) {
    if status != 201 || !r.path.contains("/blobs/uploads/") {
        return;
    }
    let Some((repo, _)) = split(&r.path, "blobs") else {
        return;
    };
    let digest = query_value(&r.query, "digest").or_else(|| query_value(&r.query, "mount"));
    if let Some(digest) = digest {
        let digest = digest.replace("%3A", ":").replace("%3a", ":");
        state
            .blobs
            .lock()
            .unwrap()
            .insert((repo.to_owned(), digest));
    }
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut response = Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, *v);
    }
    response
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

fn oci_error(status: u16, code: &str, message: &str) -> Answer {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    answer(status, &[("content-type", "application/json")], &body)
}

/// `/v2/<repo>/<kind>/<rest>` split at the last `/<kind>/`.
fn split<'p>(path: &'p str, kind: &str) -> Option<(&'p str, &'p str)> {
    let rest = path.strip_prefix("/v2/")?;
    let at = rest.rfind(&format!("/{kind}/"))?;
    Some((&rest[..at], &rest[at + kind.len() + 2..]))
}

fn query_value<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The rules that answer without (or before) the upstream.
async fn before(state: &State, r: &Incoming) -> Option<Answer> {
    let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if state.options.refuse_writes
        && matches!(
            r.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    {
        return Some(oci_error(
            403,
            "DENIED",
            "requested access to the resource is denied",
        ));
    }
    let every = state.options.throttle_every;
    if n <= state.options.throttle_first || every > 0 && n.is_multiple_of(every) {
        // ECR: 429 and no Retry-After, no RateLimit-* headers.
        return Some(oci_error(429, "TOOMANYREQUESTS", "Rate exceeded"));
    }
    if r.method == Method::PATCH && r.body.len() > state.options.max_patch {
        return Some(oci_error(
            416,
            "RANGE_INVALID",
            &format!(
                "chunk size {} exceeds the maximum allowed size of {:.2}MiB",
                r.body.len(),
                state.options.max_patch as f64 / 1048576.0
            ),
        ));
    }
    if r.method == Method::POST && query_value(&r.query, "mount").is_some() {
        return mount_rule(state, r).await;
    }
    if let Some((repo, _)) = split(&r.path, "tags") {
        return tags_rule(state, r, repo).await;
    }
    if state.options.head_blob_401
        && r.method == Method::HEAD
        && split(&r.path, "blobs").is_some_and(|(_, d)| !d.starts_with("uploads"))
    {
        return Some(oci_error(401, "UNAUTHORIZED", "authentication required"));
    }
    if state.options.scope_blobs
        && matches!(r.method, Method::GET | Method::HEAD)
        && let Some((repo, digest)) = split(&r.path, "blobs")
        && !digest.starts_with("uploads")
    {
        let known = state
            .blobs
            .lock()
            .unwrap()
            .contains(&(repo.to_owned(), digest.to_owned()));
        if !known {
            return Some(oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry"));
        }
    }
    if let Some((repo, subject)) = split(&r.path, "referrers") {
        return referrers_rule(state, repo, subject).await;
    }
    if let Some((repo, reference)) = split(&r.path, "manifests") {
        return manifest_rule(state, r, repo, reference).await;
    }
    None
}

async fn mount_rule(state: &State, r: &Incoming) -> Option<Answer> {
    match state.profile {
        // Declined: an ordinary upload session instead.
        Profile::Ecr | Profile::Ghcr => {
            let (repo, _) = split(&r.path, "blobs")?;
            let target = format!("/v2/{repo}/blobs/uploads/");
            let stripped = Incoming {
                method: Method::POST,
                target: target.clone(),
                path: target,
                query: String::new(),
                headers: r.headers.clone(),
                body: Bytes::new(),
            };
            Some(forward(state, &stripped).await)
        }
        Profile::Harbor => Some(oci_error(
            401,
            "UNAUTHORIZED",
            "unauthorized to access repository",
        )),
        Profile::DockerHub => Some(oci_error(
            400,
            "DENIED",
            "requested access to the resource is denied",
        )),
        Profile::Pass | Profile::Quay | Profile::GitLab => None,
    }
}

async fn tags_rule(state: &State, r: &Incoming, repo: &str) -> Option<Answer> {
    let n: Option<u64> = query_value(&r.query, "n").and_then(|v| v.parse().ok());
    match state.profile {
        Profile::Ecr if n.is_some_and(|n| n > 1000) => Some(oci_error(
            400,
            "INVALID_PARAMETER",
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'",
        )),
        // Quay: at most 50 a page, whatever `n` asks; the `Link` header
        // leads on.
        Profile::Quay if n.is_none_or(|n| n > 50) => {
            let mut query: Vec<String> = r
                .query
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("n="))
                .map(str::to_owned)
                .collect();
            query.push("n=50".to_owned());
            let path = format!("/v2/{repo}/tags/list");
            let capped = Incoming {
                method: r.method.clone(),
                target: format!("{path}?{}", query.join("&")),
                path,
                query: query.join("&"),
                headers: r.headers.clone(),
                body: Bytes::new(),
            };
            Some(forward(state, &capped).await)
        }
        _ => None,
    }
}

async fn referrers_rule(state: &State, repo: &str, subject: &str) -> Option<Answer> {
    match state.profile {
        Profile::Ghcr | Profile::GitLab | Profile::DockerHub => Some(answer(
            404,
            &[("content-type", "text/plain")],
            "404 page not found\n",
        )),
        Profile::Quay => {
            let known = upstream_has(state, repo, subject).await;
            (!known).then(|| oci_error(400, "MANIFEST_INVALID", "manifest invalid"))
        }
        Profile::Pass | Profile::Ecr | Profile::Harbor => None,
    }
}

/// Whether the upstream registry holds manifest `reference` in `repo`.
async fn upstream_has(state: &State, repo: &str, reference: &str) -> bool {
    let url = format!("http://{}/v2/{repo}/manifests/{reference}", state.upstream);
    state
        .client
        .head(url)
        .header("accept", ACCEPT)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

async fn manifest_rule(state: &State, r: &Incoming, repo: &str, reference: &str) -> Option<Answer> {
    if state.profile == Profile::GitLab
        && matches!(r.method, Method::GET | Method::HEAD)
        && let Some(hex) = reference.strip_prefix("sha256-")
        && hex.len() == 64
    {
        let target = format!("/v2/{repo}/manifests/sha256:{hex}");
        let as_digest = Incoming {
            method: r.method.clone(),
            target: target.clone(),
            path: target,
            query: String::new(),
            headers: r.headers.clone(),
            body: Bytes::new(),
        };
        let answer = forward(state, &as_digest).await;
        if answer.status().is_success() {
            return Some(answer);
        }
        return None;
    }
    if r.method == Method::PUT
        && let Some(refusal) = type_refusal(state, &r.body)
    {
        return Some(refusal);
    }
    let immutable = matches!(state.profile, Profile::Ecr | Profile::Harbor);
    if !(immutable && r.method == Method::PUT) || reference.contains(':') {
        return None;
    }
    if !upstream_has(state, repo, reference).await {
        return None;
    }
    Some(match state.profile {
        Profile::Ecr => oci_error(
            400,
            "TAG_INVALID",
            &format!(
                "The image tag '{reference}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."
            ),
        ),
        _ => oci_error(
            412,
            "PRECONDITION",
            &format!(
                "Failed to process request due to '{repo}:{reference}' configured as immutable."
            ),
        ),
    })
}

/// [`Options::allowed_layer_types`]: the refusal of a manifest with a layer
/// of another type.
fn type_refusal(state: &State, body: &[u8]) -> Option<Answer> {
    let allowed = state.options.allowed_layer_types?;
    let manifest: serde_json::Value = serde_json::from_slice(body).ok()?;
    let refused = manifest["layers"]
        .as_array()?
        .iter()
        .filter_map(|l| l["mediaType"].as_str())
        .find(|t| !allowed.contains(t))?;
    Some(oci_error(
        400,
        "MANIFEST_INVALID",
        &format!("manifest invalid: layer media type {refused} is not allowed"),
    ))
}

/// Send `r` upstream and bring the answer back, with upstream URLs turned
/// into the front's and the profile's changes to the answer.
async fn forward(state: &State, r: &Incoming) -> Answer {
    let url = format!("http://{}{}", state.upstream, r.target);
    let mut request = state
        .client
        .request(r.method.clone(), url)
        .body(r.body.clone());
    for (name, value) in &r.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return answer(502, &[], &format!("upstream: {e}")),
    };
    let mut status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    let is_upload = r.path.contains("/blobs/uploads/");
    if state.profile == Profile::Ecr && r.method == Method::PATCH && status == 202 {
        status = 201;
    }
    let mut out = Response::builder().status(status);
    for (name, value) in &headers {
        // hyper sets the length of the body it sends; a HEAD answer keeps
        // the upstream's, which is the length of what a GET would send.
        let framing = name == "content-length" && r.method != Method::HEAD;
        if framing || name == "transfer-encoding" || name == "connection" {
            continue;
        }
        let Ok(text) = value.to_str() else { continue };
        let text = if name == "location" {
            relocate(state, text, is_upload)
        } else {
            text.replace(&state.upstream, &state.host)
        };
        out = out.header(name, text);
    }
    if StatusCode::from_u16(status).is_err() {
        return answer(502, &[], "bad upstream status");
    }
    out.body(Full::new(body)).unwrap()
}

/// A `Location` from upstream, pointing at the front (upload sessions of
/// the GHCR profile: absolute, on the front's other host).
fn relocate(state: &State, location: &str, is_upload: bool) -> String {
    let path = location
        .strip_prefix(&format!("http://{}", state.upstream))
        .unwrap_or(location);
    if is_upload && state.profile == Profile::Ghcr && path.starts_with('/') {
        return format!("http://{}{path}", state.storage);
    }
    path.to_owned()
}
