//! HTTP targets on 127.0.0.1: a healthy service, and services that fail the ways releases fail
//! (500s, hangs, slowness, endless bodies, TLS for another name). Each records what it was sent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::serve::ListenerExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::{AbortOnDrop, wait_until};

/// A request as the target saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

/// What a [`Target`] answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 `{"status":"ok","version":...}` as JSON.
    Healthy,
    /// This status with a small body.
    Status(u16),
    /// Healthy, but only after this delay.
    Slow(Duration),
    /// 200 with a body that echoes the Authorization header and holds a card number.
    EchoSecrets,
    /// Hold each request until `n` are in flight at once (or `limit` passes: then 503).
    Gate { n: usize, limit: Duration },
    /// 500 whose body is `pad` filler characters, then everything the request carried (path and
    /// query, body, Authorization), and whose `x-echo` header repeats the Authorization value:
    /// a target that echoes whatever it is sent, where a cut falls.
    Echo { pad: usize },
    /// 200 with this JSON body, whatever was asked.
    Json(Arc<str>),
    /// 500 for these paths, healthy for every other.
    FailPaths(Arc<[&'static str]>),
    /// Like `Json`, but each answer waits until `n` requests are in flight (or `limit` passes),
    /// so that `n` bodies are in flight together.
    GatedJson {
        n: usize,
        limit: Duration,
        body: Arc<str>,
    },
}

struct Shared {
    behaviour: Behaviour,
    connections: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    changed: Notify,
}

/// An axum target.
pub struct Target {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _task: AbortOnDrop,
}

impl Target {
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), behaviour).await
    }

    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Self {
        let shared = Arc::new(Shared {
            behaviour,
            connections: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        });
        let app = Router::new()
            .fallback(any(serve))
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let counter = Arc::clone(&shared);
        let listener = listener.tap_io(move |_| {
            counter.connections.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Target {
            addr,
            shared,
            _task: AbortOnDrop(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    shared.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    shared.changed.notify_waiters();
    let response = match &shared.behaviour {
        Behaviour::Healthy => healthy(),
        Behaviour::FailPaths(paths) if paths.contains(&parts.uri.path()) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            r#"{"error":"injected failure"}"#,
        )
            .into_response(),
        Behaviour::FailPaths(_) => healthy(),
        Behaviour::Status(code) => (
            StatusCode::from_u16(*code).unwrap(),
            [("content-type", "application/json")],
            r#"{"error":"injected failure"}"#,
        )
            .into_response(),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(*delay).await;
            healthy()
        }
        Behaviour::EchoSecrets => {
            let auth = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                format!(r#"{{"status":"degraded","you_sent":"{auth}","card":"4242424242424242"}}"#),
            )
                .into_response()
        }
        Behaviour::Echo { pad } => {
            let auth = parts
                .headers
                .get("authorization")
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default();
            let mut echoed = "~".repeat(*pad).into_bytes();
            echoed.extend_from_slice(parts.uri.to_string().as_bytes());
            echoed.push(b' ');
            echoed.extend_from_slice(&body);
            echoed.push(b' ');
            echoed.extend_from_slice(&auth);
            let mut response = (StatusCode::INTERNAL_SERVER_ERROR, echoed).into_response();
            if let Ok(value) = axum::http::HeaderValue::from_bytes(&auth) {
                response.headers_mut().insert("x-echo", value);
            }
            response
        }
        Behaviour::GatedJson { n, limit, body } => {
            let n = *n;
            wait_until(*limit, &shared.changed, || {
                shared.max_in_flight.load(Ordering::SeqCst) >= n
            })
            .await;
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Behaviour::Json(body) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response(),
        Behaviour::Gate { n, limit } => {
            let n = *n;
            let all_here = wait_until(*limit, &shared.changed, || {
                shared.max_in_flight.load(Ordering::SeqCst) >= n
            })
            .await;
            if all_here {
                healthy()
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "requests arrived one by one",
                )
                    .into_response()
            }
        }
    };
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

fn healthy() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        r#"{"status":"ok","version":"v2"}"#,
    )
        .into_response()
}

/// Accepts connections and never answers.
pub struct Hang {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _task: AbortOnDrop,
}

impl Hang {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Hang {
            addr,
            accepted,
            _task: AbortOnDrop(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Answers 200 with `Content-Length: 500 MB` and streams zeros until the client hangs up,
/// counting what it managed to send.
pub struct Endless {
    pub addr: SocketAddr,
    sent: Arc<AtomicU64>,
    _task: AbortOnDrop,
}

/// What the endless body claims to be.
pub const ENDLESS_BYTES: u64 = 500 * 1024 * 1024;

impl Endless {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {ENDLESS_BYTES}\r\n\r\n"
                    );
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'0'; 64 * 1024];
                    let mut total = 0u64;
                    while total < ENDLESS_BYTES {
                        if socket.write_all(&chunk).await.is_err() {
                            break;
                        }
                        total += chunk.len() as u64;
                        counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    }
                });
            }
        });
        Endless {
            addr,
            sent,
            _task: AbortOnDrop(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes of body written before the client stopped reading.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// `(TLS server name, Host header)` of one request.
pub type NameSeen = (Option<String>, Option<String>);

/// HTTPS with a certificate for `host`, signed by a fresh CA; records the TLS server name (SNI)
/// and Host header of every request.
pub struct TlsTarget {
    pub addr: SocketAddr,
    pub host: String,
    /// The CA that signed the certificate, as a PEM file.
    pub ca_file: PathBuf,
    seen: Arc<Mutex<Vec<NameSeen>>>,
    _dir: tempfile::TempDir,
    _task: AbortOnDrop,
}

impl TlsTarget {
    pub async fn start(host: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "greenlight test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return; // the client refused our certificate
                    };
                    let sni = tls.get_ref().1.server_name().map(str::to_owned);
                    let mut buf = vec![0u8; 8192];
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    let host = text.lines().find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("host")
                            .then(|| value.trim().to_owned())
                    });
                    record.lock().unwrap().push((sni, host));
                    let body = r#"{"status":"ok"}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsTarget {
            addr,
            host: host.to_owned(),
            ca_file,
            seen,
            _dir: dir,
            _task: AbortOnDrop(task),
        }
    }

    /// The URL by address (what a config's `url` holds when `host` names the certificate).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `(SNI, Host header)` of every request that completed a handshake.
    pub fn seen(&self) -> Vec<NameSeen> {
        self.seen.lock().unwrap().clone()
    }
}
