//! moto (PyPI, server mode) on 127.0.0.1 as the STS, IAM and ECR APIs for
//! the AWS credential tests, installed by `tests/support/aws/install.sh`.
//!
//! [`Moto::start_validating`] makes moto check SigV4 signatures and IAM
//! policies after the setup calls (`INITIAL_NO_AUTH_ACTION_COUNT`); moto
//! 5.2.5 then also demands a signature on STS `AssumeRoleWithWebIdentity`,
//! which AWS does not (the web identity token is the credential; moto fails
//! with `KeyError: 'HTTP_AUTHORIZATION'`), so the web-identity flows run
//! against [`Moto::start`], which checks no signatures.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `setup.py` made.
#[derive(serde::Deserialize)]
pub struct Setup {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
    /// The ECR password moto hands out (`<account>-auth-token`).
    pub password: String,
}

/// A running moto server. Killed on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub setup: Setup,
    child: Child,
}

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws/.venv/bin")
}

impl Moto {
    /// moto checking no signatures.
    pub fn start() -> Moto {
        Moto::launch(None)
    }

    /// moto checking SigV4 signatures and IAM policies after setup.
    pub fn start_validating() -> Moto {
        Moto::launch(Some(5))
    }

    fn launch(unsigned_setup_calls: Option<u32>) -> Moto {
        let server = venv().join("moto_server");
        assert!(
            server.exists(),
            "{} is missing: run tests/support/aws/install.sh (.ci/run does)",
            server.display()
        );
        // The port is free when picked, and may be taken before moto binds
        // it (tests run in parallel): moto then exits, and is started again
        // on another port.
        let (child, port) = (0..3)
            .find_map(|_| spawn_ready(&server, unsigned_setup_calls))
            .expect("moto_server did not start on any of 3 ports");
        let endpoint = format!("http://127.0.0.1:{port}");
        let out = Command::new(venv().join("python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws/setup.py"))
            .arg(&endpoint)
            .output()
            .expect("run setup.py");
        assert!(
            out.status.success(),
            "setup.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let setup = serde_json::from_slice(&out.stdout).expect("setup.py JSON");
        Moto {
            endpoint,
            setup,
            child,
        }
    }
}

/// moto on a free port, once it answers HTTP; `None` when it exited first.
fn spawn_ready(server: &Path, unsigned_setup_calls: Option<u32>) -> Option<(Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(server);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(count) = unsigned_setup_calls {
        command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
    }
    let mut child = command.spawn().expect("start moto_server");
    let deadline = Instant::now() + Duration::from_secs(30);
    // An HTTP answer from moto itself (its dashboard, not an AWS action
    // that `INITIAL_NO_AUTH_ACTION_COUNT` counts), not a connection that
    // another test's listener on the same port accepted.
    while !answers_http(port) {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("moto_server did not answer within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((child, port))
}

fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 12];
    stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
