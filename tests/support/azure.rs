//! A loopback stand-in for the two Azure endpoints an ACR login talks to,
//! checking every field as Microsoft documents it:
//!
//! - Microsoft Entra ID's token endpoint, `POST /<tenant>/oauth2/v2.0/token`,
//!   the client credentials grant with a client secret or a federated
//!   assertion (learn.microsoft.com, entra/identity-platform,
//!   "v2-oauth2-client-creds-grant-flow": `grant_type=client_credentials`,
//!   `client_id`, `scope` ending in `/.default`, and `client_secret` or
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//!   with `client_assertion`);
//! - ACR's `POST /oauth2/exchange` (github.com/Azure/acr, docs/AAD-OAuth.md:
//!   `grant_type=access_token`, `service` = the registry's login server,
//!   `tenant`, `access_token` = the Entra token), answering
//!   `{"refresh_token": ..}`. ACR serves it on the registry's own host; the
//!   tests put an nginx front there that routes `/oauth2/` here.
//!
//! The GitHub OIDC token the federated flow asserts comes from the Google
//! stand-in's `/oidc` (the same GitHub endpoint); the Entra endpoint accepts
//! any assertion the `assertion` check passes. [`AzureStandIn::accepts`] is
//! the check the registry's token realm runs on the password of
//! `00000000-0000-0000-0000-000000000000`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::google::{Request, read_request};

/// The tenant (directory) id.
pub const TENANT: &str = "72f988bf-0000-4000-8000-0000000000aa";
/// The application (client) id.
pub const CLIENT_ID: &str = "a1b2c3d4-0000-4000-8000-0000000000bb";
/// The application's client secret.
pub const CLIENT_SECRET: &str = "azure-client-secret-7Qx~";
/// The token AKS workload identity would write to `AZURE_FEDERATED_TOKEN_FILE`.
pub const FILE_ASSERTION: &str = "eyJ.federated-token-file.sig";
/// The scope ACR's Entra tokens are asked for.
pub const SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The user name of ACR refresh tokens.
pub const ACR_USER: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Default)]
struct State {
    entra: HashSet<String>,
    refresh: HashSet<String>,
    calls: HashMap<&'static str, usize>,
    services: Vec<String>,
    refusals: Vec<String>,
    serial: usize,
}

/// Whether a client assertion is one the federation trusts.
pub type AssertionCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A running stand-in. Its thread ends with the test process.
pub struct AzureStandIn {
    /// `http://127.0.0.1:PORT`, for `AZURE_AUTHORITY_HOST`.
    pub url: String,
    /// `127.0.0.1:PORT`, for a front's route.
    pub host: String,
    state: Arc<Mutex<State>>,
}

impl AzureStandIn {
    /// Start on a random loopback port; federated assertions pass
    /// `assertion` (or are [`FILE_ASSERTION`]).
    pub fn start(assertion: AssertionCheck) -> AzureStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind azure stand-in");
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let state2 = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (state, assertion) = (state2.clone(), assertion.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &state, &assertion);
                });
            }
        });
        AzureStandIn {
            url: format!("http://{host}"),
            host,
            state,
        }
    }

    /// Whether a password is a refresh token this stand-in handed out.
    pub fn accepts(&self) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
        let state = self.state.clone();
        Arc::new(move |token| state.lock().unwrap().refresh.contains(token))
    }

    /// Good requests to `endpoint` so far (`entra`, `exchange`).
    pub fn calls(&self, endpoint: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.calls.get(endpoint).copied().unwrap_or(0)
    }

    /// The `service` of every exchange.
    pub fn services(&self) -> Vec<String> {
        self.state.lock().unwrap().services.clone()
    }

    /// Every refusal, with the rule it broke.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().unwrap().refusals.clone()
    }

    /// Every secret it handed out or expects, for leak checks.
    pub fn secrets(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut all: Vec<String> = state.entra.iter().chain(&state.refresh).cloned().collect();
        all.extend([CLIENT_SECRET.to_owned(), FILE_ASSERTION.to_owned()]);
        all
    }
}

type Answer = Result<(&'static str, Value), (&'static str, Value)>;

fn serve(conn: TcpStream, state: &Mutex<State>, assertion: &AssertionCheck) -> std::io::Result<()> {
    let request = read_request(&conn)?;
    let token_path = format!("/{TENANT}/oauth2/v2.0/token");
    let answer = match (request.method.as_str(), request.path.as_str()) {
        ("POST", p) if p == token_path => entra(&request, state, assertion),
        ("POST", "/oauth2/exchange") => exchange(&request, state),
        _ => Err(("404 Not Found", json!({"error": "not_found"}))),
    };
    let (status, body) = match answer {
        Ok((endpoint, body)) => {
            *state.lock().unwrap().calls.entry(endpoint).or_default() += 1;
            ("200 OK", body)
        }
        Err((status, body)) => {
            state.lock().unwrap().refusals.push(body.to_string());
            (status, body)
        }
    };
    let body = body.to_string();
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// Entra's error shape: `error` and `error_description` with an AADSTS code.
fn entra_error(code: &str, description: &str) -> (&'static str, Value) {
    let status = if code == "invalid_client" {
        "401 Unauthorized"
    } else {
        "400 Bad Request"
    };
    (
        status,
        json!({"error": code, "error_description": format!("AADSTS-test: {description}")}),
    )
}

fn entra(r: &Request, state: &Mutex<State>, assertion: &AssertionCheck) -> Answer {
    let form = r.form();
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return Err(entra_error(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        ));
    }
    if field("client_id") != Some(CLIENT_ID) {
        return Err(entra_error("unauthorized_client", "unknown client_id"));
    }
    if field("scope") != Some(SCOPE) {
        return Err(entra_error(
            "invalid_scope",
            "scope must be the ACR resource's /.default",
        ));
    }
    let proven = match (
        field("client_secret"),
        field("client_assertion_type"),
        field("client_assertion"),
    ) {
        (Some(secret), None, None) => secret == CLIENT_SECRET,
        (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(jwt)) => {
            jwt == FILE_ASSERTION || assertion(jwt)
        }
        _ => false,
    };
    if !proven {
        return Err(entra_error(
            "invalid_client",
            "the client secret or assertion is not valid",
        ));
    }
    let token = next(state, "entra-access");
    state.lock().unwrap().entra.insert(token.clone());
    Ok((
        "entra",
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    ))
}

fn exchange(r: &Request, state: &Mutex<State>) -> Answer {
    let form = r.form();
    let field = |name: &str| form.get(name).map(String::as_str);
    let refuse = |message: &str| {
        Err((
            "401 Unauthorized",
            json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]}),
        ))
    };
    if field("grant_type") != Some("access_token") {
        return refuse("grant_type must be access_token");
    }
    if field("tenant") != Some(TENANT) {
        return refuse("unknown tenant");
    }
    let known = field("access_token").is_some_and(|t| state.lock().unwrap().entra.contains(t));
    if !known {
        return refuse("the access token is not valid");
    }
    let Some(service) = field("service").filter(|s| !s.is_empty()) else {
        return refuse("a service");
    };
    let token = next(state, "acr-refresh");
    let mut s = state.lock().unwrap();
    s.services.push(service.to_owned());
    s.refresh.insert(token.clone());
    Ok(("exchange", json!({"refresh_token": token})))
}

fn next(state: &Mutex<State>, prefix: &str) -> String {
    let mut state = state.lock().unwrap();
    state.serial += 1;
    format!("{prefix}-{}-{:08x}", state.serial, std::process::id())
}
