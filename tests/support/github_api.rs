//! A local stand-in for the GitHub REST API, for the action's tests: an
//! HTTP/1.1 server on 127.0.0.1 that records every request and answers the
//! calls the action makes with bodies shaped like GitHub's REST reference
//! (Check Runs: `POST /repos/{o}/{r}/check-runs`, `PATCH
//! /repos/{o}/{r}/check-runs/{id}`; issue comments: `GET|POST
//! /repos/{o}/{r}/issues/{n}/comments`, `PATCH
//! /repos/{o}/{r}/issues/comments/{id}`). State (the comments) lives as long
//! as the server, so that a second run of the action sees the first's.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/repos/o/r/check-runs`.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// When the request arrived.
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    /// (id, body) of each issue comment.
    comments: Vec<(u64, String)>,
    next_id: u64,
    /// Answer 403 to check-run creation, as for a fork's read-only token.
    forbid_checks: bool,
    forbid_comments: bool,
    /// Answer 502 to this many requests (to a path containing `fail_on`).
    failures: usize,
    fail_on: String,
    /// Answer 429 with `Retry-After: retry_after` to this many requests (to
    /// a path containing `throttle_on`).
    throttles: usize,
    throttle_on: String,
    retry_after: u64,
}

/// The running stand-in.
#[derive(Clone)]
pub struct GitHubApi {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl GitHubApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        GitHubApi { url, state }
    }

    /// Check-run creation answers 403 from now on.
    pub fn forbid_checks(&self) {
        self.state.lock().unwrap().forbid_checks = true;
    }

    /// Comment calls answer 403 from now on.
    pub fn forbid_comments(&self) {
        self.state.lock().unwrap().forbid_comments = true;
    }

    /// The next `count` requests whose path contains `part` answer 502.
    pub fn fail_next(&self, count: usize, part: &str) {
        let mut state = self.state.lock().unwrap();
        state.failures = count;
        state.fail_on = part.to_string();
    }

    /// The next `count` requests whose path contains `part` answer 429 with
    /// `Retry-After: seconds`, as GitHub's secondary rate limit does
    /// (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
    pub fn throttle_next(&self, count: usize, part: &str, seconds: u64) {
        let mut state = self.state.lock().unwrap();
        state.throttles = count;
        state.throttle_on = part.to_string();
        state.retry_after = seconds;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests whose path contains `part`.
    pub fn requests_to(&self, part: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(part))
            .collect()
    }

    pub fn comments(&self) -> Vec<(u64, String)> {
        self.state.lock().unwrap().comments.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = Request {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    };
    let (status, answer, extra) = respond(&request, &mut state.lock().unwrap());
    let text = answer.to_string();
    let reason = match status {
        200 => "OK",
        201 => "Created",
        403 => "Forbidden",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        _ => "Not Found",
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n\
         x-github-api-version-selected: 2022-11-28\r\n{extra}content-length: {}\r\n\
         connection: close\r\n\r\n{text}",
        text.len()
    );
}

/// The status, body and extra header lines of the answer to `request`.
fn respond(request: &Request, state: &mut State) -> (u16, Value, String) {
    if state.throttles > 0 && request.path.contains(&state.throttle_on) {
        state.requests.push(request.clone());
        state.throttles -= 1;
        let message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
        let extra = format!("retry-after: {}\r\n", state.retry_after);
        return (
            429,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"}),
            extra,
        );
    }
    let (status, answer) = answer(request, state);
    (status, answer, String::new())
}

fn answer(request: &Request, state: &mut State) -> (u16, Value) {
    state.requests.push(request.clone());
    if state.failures > 0 && request.path.contains(&state.fail_on) {
        state.failures -= 1;
        return (502, json!({"message": "Server Error"}));
    }
    let (path, _query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let forbidden = json!({
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest",
        "status": "403"
    });
    match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["repos", o, r, "check-runs"]) => {
            if state.forbid_checks {
                return (403, forbidden);
            }
            state.next_id += 1;
            (201, check_run(state.next_id, o, r, &request.body))
        }
        ("PATCH", ["repos", o, r, "check-runs", id]) => {
            (200, check_run(id.parse().unwrap_or(0), o, r, &request.body))
        }
        ("GET", ["repos", o, r, "issues", n, "comments"]) => {
            if state.forbid_comments {
                return (403, forbidden);
            }
            let list: Vec<Value> = state
                .comments
                .iter()
                .map(|(id, body)| comment(*id, o, r, n, body))
                .collect();
            (200, Value::Array(list))
        }
        ("POST", ["repos", o, r, "issues", n, "comments"]) => {
            if state.forbid_comments {
                return (403, forbidden);
            }
            state.next_id += 1;
            let body = request.body["body"].as_str().unwrap_or("").to_string();
            state.comments.push((state.next_id, body.clone()));
            (201, comment(state.next_id, o, r, n, &body))
        }
        ("PATCH", ["repos", o, r, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let body = request.body["body"].as_str().unwrap_or("").to_string();
            match state.comments.iter_mut().find(|(c, _)| *c == id) {
                Some(existing) => {
                    existing.1 = body.clone();
                    (200, comment(id, o, r, "1", &body))
                }
                None => (404, json!({"message": "Not Found"})),
            }
        }
        _ => (
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

/// A check run, as `POST /repos/{owner}/{repo}/check-runs` returns it.
fn check_run(id: u64, owner: &str, repo: &str, sent: &Value) -> Value {
    json!({
        "id": id,
        "head_sha": sent["head_sha"],
        "node_id": "CR_kwDO",
        "external_id": "",
        "url": format!("https://api.github.com/repos/{owner}/{repo}/check-runs/{id}"),
        "html_url": format!("https://github.com/{owner}/{repo}/runs/{id}"),
        "status": sent.get("status").cloned().unwrap_or(json!("completed")),
        "conclusion": sent.get("conclusion").cloned().unwrap_or(Value::Null),
        "started_at": "2026-11-25T18:00:00Z",
        "completed_at": "2026-11-25T18:00:10Z",
        "output": {
            "title": sent["output"]["title"],
            "summary": sent["output"]["summary"],
            "text": null,
            "annotations_count": sent["output"]["annotations"].as_array().map_or(0, Vec::len),
            "annotations_url": format!("https://api.github.com/repos/{owner}/{repo}/check-runs/{id}/annotations")
        },
        "name": sent.get("name").cloned().unwrap_or(json!("promoter")),
        "check_suite": {"id": 5},
        "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
        "pull_requests": []
    })
}

/// An issue comment, as `GET /repos/{owner}/{repo}/issues/{n}/comments`
/// lists it.
fn comment(id: u64, owner: &str, repo: &str, number: &str, body: &str) -> Value {
    json!({
        "id": id,
        "node_id": "IC_kwDO",
        "url": format!("https://api.github.com/repos/{owner}/{repo}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}#issuecomment-{id}"),
        "body": body,
        "user": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
        "created_at": "2026-11-25T18:00:00Z",
        "updated_at": "2026-11-25T18:00:00Z",
        "author_association": "NONE"
    })
}
