//! A small token server for the distribution token-auth flow, on
//! 127.0.0.1: `GET /token?service=..&scope=..` with HTTP Basic credentials
//! answers `{"token": <ES256 JWT>}` granting the requested actions, and so
//! does `POST /token` with an OAuth2 refresh-token grant of
//! [`REFRESH_TOKEN`]; without credentials it grants nothing; with wrong ones
//! it answers 401. It records
//! every scope asked for, so tests can check what the client requested.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;

use super::certs::TokenSigner;

/// Service name the registry and the tokens agree on.
pub const SERVICE: &str = "promoter-test-registry";
/// The OAuth2 refresh token (docker's `identitytoken`) the server accepts.
pub const REFRESH_TOKEN: &str = "promoter-test-refresh-token";

/// Issuer the registry and the tokens agree on.
pub const ISSUER: &str = "promoter-test-issuer";

/// A running token server. Stops on drop.
pub struct TokenServer {
    /// The realm URL for the registry config.
    pub realm: String,
    /// Every scope requested, in order (one entry per `scope` parameter).
    pub scopes: Arc<Mutex<Vec<String>>>,
    /// The `User-Agent` of every request.
    pub user_agents: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

/// Decides whether a password is good (for tokens that expire).
pub type PasswordCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Grants {
    user: String,
    check: PasswordCheck,
    key: p256::ecdsa::SigningKey,
    cert_der: Vec<u8>,
}

impl TokenServer {
    /// Start serving tokens for `user`/`password`, signed by `signer`.
    pub fn start(signer: &TokenSigner, user: &str, password: &str) -> TokenServer {
        let password = password.to_owned();
        TokenServer::start_checking(signer, user, Arc::new(move |p| p == password))
    }

    /// Start serving tokens for `user` with any password `check` accepts.
    pub fn start_checking(signer: &TokenSigner, user: &str, check: PasswordCheck) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let addr = listener.local_addr().expect("token server address");
        let grants = Arc::new(Grants {
            user: user.to_owned(),
            check,
            key: p256::ecdsa::SigningKey::from_pkcs8_der(&signer.key_pkcs8_der).expect("token key"),
            cert_der: signer.cert_der.clone(),
        });
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let user_agents = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (scopes2, agents2, stop2) = (scopes.clone(), user_agents.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (grants, scopes, agents) = (grants.clone(), scopes2.clone(), agents2.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &grants, &scopes, &agents);
                });
            }
        });
        TokenServer {
            realm: format!("http://{addr}/token"),
            scopes,
            user_agents,
            stop,
            addr,
        }
    }

    /// The scopes requested so far.
    pub fn requested_scopes(&self) -> Vec<String> {
        self.scopes.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    conn: TcpStream,
    grants: &Grants,
    scopes: &Mutex<Vec<String>>,
    agents: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case("user-agent") {
                agents.lock().unwrap().push(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut form = vec![0u8; content_length];
    reader.read_exact(&mut form)?;
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let url = url::Url::parse(&format!("http://x{target}")).expect("request target");
    let is_post = request_line.starts_with("POST ");
    // GET: `scope` query parameters. POST (OAuth2 refresh-token grant): one
    // space-separated `scope` form field and a `refresh_token`.
    let mut refresh_token = None;
    let mut requested: Vec<String> = Vec::new();
    if is_post {
        for (k, v) in url::form_urlencoded::parse(&form) {
            match k.as_ref() {
                "scope" => requested.extend(v.split(' ').map(str::to_owned)),
                "refresh_token" => refresh_token = Some(v.into_owned()),
                _ => {}
            }
        }
    } else {
        requested = url
            .query_pairs()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .collect();
    }
    scopes.lock().unwrap().extend(requested.iter().cloned());

    let basic_ok = |header: &str| {
        header
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|d| String::from_utf8(d).ok())
            .and_then(|t| {
                let (user, password) = t.split_once(':')?;
                Some(user == grants.user && (grants.check)(password))
            })
            .unwrap_or(false)
    };
    let (status, body) = match (authorization.as_deref(), refresh_token.as_deref()) {
        (_, Some(REFRESH_TOKEN)) => ("200 OK", token_body(grants, &grants.user, &requested)),
        (_, Some(_)) => (
            "401 Unauthorized",
            r#"{"error":"invalid_grant"}"#.to_owned(),
        ),
        (Some(a), None) if basic_ok(a) => ("200 OK", token_body(grants, &grants.user, &requested)),
        (Some(_), None) => (
            "401 Unauthorized",
            r#"{"details":"bad credentials"}"#.to_owned(),
        ),
        (None, None) => ("200 OK", token_body(grants, "", &[])),
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `{"token": JWT}` granting every requested `repository:<name>:<actions>`.
fn token_body(grants: &Grants, subject: &str, scopes: &[String]) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&grants.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", scopes.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature: p256::ecdsa::Signature = grants.key.sign(signing_input.as_bytes());
    let jwt = format!("{signing_input}.{}", b64url(&signature.to_bytes()));
    serde_json::json!({ "token": jwt, "expires_in": 300 }).to_string()
}
