//! Offline sigstore services for the signing tests: `server.js` (npm
//! `@sigstore/mock` 0.12.1 behind a small `http.createServer` wrapper) on
//! 127.0.0.1 serves Fulcio, Rekor and a GitHub-shaped OIDC token endpoint,
//! and writes the matching `trusted_root.json` and sigstore-python
//! `trust_config.json`. `.ci/run` installs its `node_modules` and the
//! sigstore-python virtualenv next to this file. Killed on drop.

#![allow(dead_code)] // Each test crate uses a different part of the support.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The request token the OIDC endpoint expects (as GitHub's
/// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
pub const REQUEST_TOKEN: &str = "test-request-token";
/// The issuer of the tokens.
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The SAN Fulcio derives from the tokens' `job_workflow_ref`.
pub const IDENTITY: &str =
    "https://github.com/example/promotions/.github/workflows/promote.yml@refs/heads/main";

/// This directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sigstore")
}

/// sigstore-python's CLI in the virtualenv `.ci/run` creates.
pub fn sigstore_python() -> PathBuf {
    let path = dir().join(".venv/bin/sigstore");
    assert!(
        path.exists(),
        "{} is missing: run .ci/run (it installs sigstore-python)",
        path.display()
    );
    path
}

/// Run sigstore-js (`verify.js`, @sigstore/verify) on a bundle: a v0.3
/// DSSE bundle, or a v0.1 message-signature bundle with its `artifact`.
pub fn sigstore_js(
    trusted_root: &Path,
    bundle: &Path,
    identity: &str,
    issuer: &str,
    artifact: Option<&Path>,
) -> std::process::Output {
    let mut command = Command::new("node");
    command
        .arg(dir().join("verify.js"))
        .arg(trusted_root)
        .arg(bundle)
        .args([identity, issuer])
        .current_dir(dir());
    if let Some(artifact) = artifact {
        command.arg(artifact);
    }
    command.output().expect("run node verify.js")
}

/// A running `server.js`.
pub struct SigstoreServer {
    /// `http://127.0.0.1:<port>`: Fulcio and Rekor URL.
    pub url: String,
    /// Holds `trusted_root.json` and `trust_config.json`.
    pub dir: tempfile::TempDir,
    child: Child,
}

/// Request counts of the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Certificates requested.
    pub fulcio: u64,
    /// Log entries submitted.
    pub rekor: u64,
    /// Of which hashedrekord.
    pub hashedrekord: u64,
    /// Of which dsse.
    pub dsse: u64,
    /// Token requests.
    pub oidc: u64,
    /// RFC 3161 timestamps issued.
    pub tsa: u64,
    /// Rekor v2 entries submitted (not counted in `rekor`).
    pub rekor_v2: u64,
}

impl SigstoreServer {
    /// Start the services; `env` configures the token endpoint
    /// (`OIDC_AUD_ARRAY=1`, `OIDC_FAILURES=N`).
    pub fn start(env: &[(&str, &str)]) -> SigstoreServer {
        assert!(
            dir().join("node_modules/@sigstore/mock").exists(),
            "tests/support/sigstore/node_modules is missing: run .ci/run (npm ci there)"
        );
        let out = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new("node");
        command
            .arg(dir().join("server.js"))
            .arg(out.path())
            .current_dir(dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .expect("start node tests/support/sigstore/server.js");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server.js did not start");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        SigstoreServer {
            url: format!("http://127.0.0.1:{port}"),
            dir: out,
            child,
        }
    }

    /// The trusted root for `--trusted-root`.
    pub fn trusted_root(&self) -> PathBuf {
        self.dir.path().join("trusted_root.json")
    }

    /// sigstore-python's `--trust-config`.
    pub fn trust_config(&self) -> PathBuf {
        self.dir.path().join("trust_config.json")
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL`, with a query as GitHub's has.
    pub fn token_request_url(&self) -> String {
        format!("{}/oidc/token?api-version=2.0", self.url)
    }

    /// The current request counts.
    pub fn stats(&self) -> Stats {
        let v: serde_json::Value = serde_json::from_str(&self.get("/stats")).expect("stats JSON");
        let n = |k: &str| v[k].as_u64().unwrap_or_default();
        Stats {
            fulcio: n("fulcio"),
            rekor: n("rekor"),
            hashedrekord: n("rekor_hashedrekord"),
            dsse: n("rekor_dsse"),
            oidc: n("oidc"),
            tsa: n("tsa"),
            rekor_v2: n("rekor_v2"),
        }
    }

    /// A fresh identity token, fetched as a CI system would.
    pub fn token(&self) -> String {
        let path = "/oidc/token?audience=sigstore";
        let body = self.get_with(path, &format!("Authorization: bearer {REQUEST_TOKEN}\r\n"));
        let v: serde_json::Value = serde_json::from_str(&body).expect("token JSON");
        v["value"].as_str().expect("token").to_owned()
    }

    fn get(&self, path: &str) -> String {
        self.get_with(path, "")
    }

    fn get_with(&self, path: &str, headers: &str) -> String {
        let host = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).expect("connect to server.js");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_owned()
    }
}

impl Drop for SigstoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
