//! The second registry of the zoo: `ferro-oci-server` 1.0.0, an OCI
//! distribution 1.1 server with the referrers API (it answers `OCI-Subject`
//! on a manifest PUT and serves `GET /v2/<repo>/referrers/<digest>`),
//! written independently of docker-registry. Installed by
//! `tests/support/zoo/install.sh` (which `.ci/run` calls); started here on a
//! free loopback port with filesystem storage, killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port: bound, then released for the server to take.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running `ferro-oci-server`.
pub struct FerroServer {
    /// `127.0.0.1:<port>`.
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Where `install.sh` puts the binary.
pub fn binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/zoo/.root/bin/ferro-oci-server")
}

impl FerroServer {
    /// Start the server and wait until it accepts connections.
    pub fn start() -> FerroServer {
        let bin = binary();
        assert!(
            bin.exists(),
            "{} is missing: run tests/support/zoo/install.sh (.ci/run does)",
            bin.display()
        );
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("ferro temp dir");
            let host = format!("127.0.0.1:{}", free_port());
            let mut child = Command::new(&bin)
                .env("FERRO_OCI_LISTEN", &host)
                .env("FERRO_OCI_STORAGE_DIR", dir.path())
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ferro-oci-server");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(&host).is_ok() {
                    return FerroServer {
                        host,
                        child,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // The port was taken meanwhile: try another.
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("ferro-oci-server did not start on a loopback port");
    }
}

impl Drop for FerroServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
