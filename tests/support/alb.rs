//! A stand-in for the ALB of a blue/green deployment: a production listener and a test
//! listener on 127.0.0.1, each an HTTP/1.1 reverse proxy to blue or green. The production
//! listener moves from blue to green when told to, as CodeDeploy's AllowTraffic step does.
//!
//! Like an ALB it works request by request, not connection by connection:
//!
//! - a request goes where its listener points when the request arrives, and one already in
//!   flight finishes where it started (as the deregistration delay lets it);
//! - it reads the client's whole request before it answers anything, and it answers every
//!   request itself. When the target fails (refuses the connection, resets or closes it before
//!   its answer is complete, answers something that is not HTTP), the client gets a
//!   `502 Bad Gateway`, as from an ALB "when the target closed the connection with a TCP RST
//!   or a TCP FIN while the load balancer had an outstanding request to the target"; a target
//!   silent past the idle timeout gets it a `504 Gateway Timeout`.
//!
//! So a client never sees a target's TCP errors, and a green that dies is a 502 on every run,
//! whatever the timing of its death. (A byte-forwarding proxy made that a race: it wrote a 502
//! before reading the request, or dropped the client's connection with green's, and the client
//! saw "received unexpected message from connection", "connection closed before message
//! completed" or "connection was not ready" depending on the scheduler.)
//!
//! One difference, on purpose: an ALB streams a target's answer, so a target that dies after
//! its headers went out leaves the client a cut answer. This stand-in reads each answer whole
//! before passing it on (paysim's are a few hundred bytes) and answers 502 instead, so that
//! where green's death falls within an answer never changes the outcome.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::serve::ListenerExt;
use http::header::{self, HeaderMap, HeaderName};
use http::{HeaderValue, StatusCode};
use tokio::net::TcpListener;

use crate::AbortOnDrop;

/// An ALB's default idle timeout: a target silent this long gets the client a 504.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest request body this stand-in forwards (the suites send a few hundred bytes); a
/// larger one is answered 413 instead of being held in memory.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// Headers that belong to one connection, never forwarded (RFC 9110, section 7.6.1); the
/// names a `Connection` header lists are dropped too. (Green's `Connection: close` as it dies
/// closes the ALB's connection to green, not the client's to the ALB.)
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The two listeners.
pub struct Alb {
    /// Production listener (blue until [`Alb::shift_production`]).
    pub prod: SocketAddr,
    /// Test listener (always green).
    pub test: SocketAddr,
    prod_upstream: Arc<Mutex<SocketAddr>>,
    blue: SocketAddr,
    green: SocketAddr,
    _tasks: Vec<AbortOnDrop>,
}

impl Alb {
    /// Listen on `prod` and `test` (port 0 picks a free one), forwarding to `blue` and `green`.
    pub async fn start(
        prod: SocketAddr,
        test: SocketAddr,
        blue: SocketAddr,
        green: SocketAddr,
    ) -> Self {
        // The workspace builds reqwest without a bundled crypto provider; ring is the one in use.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One pool of connections to the targets, as an ALB keeps its own, apart from the
        // clients' connections to it.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("cannot build the ALB's client");
        let prod_upstream = Arc::new(Mutex::new(blue));
        let (prod, prod_task) = listen(prod, Arc::clone(&prod_upstream), client.clone()).await;
        let (test, test_task) = listen(test, Arc::new(Mutex::new(green)), client).await;
        Alb {
            prod,
            test,
            prod_upstream,
            blue,
            green,
            _tasks: vec![prod_task, test_task],
        }
    }

    /// Point the production listener at green (CodeDeploy's AllowTraffic). Requests that arrive
    /// after this returns go to green.
    pub fn shift_production(&self) {
        *self.prod_upstream.lock().unwrap() = self.green;
    }

    /// Point the production listener back at blue (a rollback, or the next rehearsal).
    pub fn reset(&self) {
        *self.prod_upstream.lock().unwrap() = self.blue;
    }

    /// Where production traffic goes now.
    pub fn production_upstream(&self) -> SocketAddr {
        *self.prod_upstream.lock().unwrap()
    }
}

/// What a listener needs to forward a request: where it points, and the pool to the targets.
#[derive(Clone)]
struct Route {
    upstream: Arc<Mutex<SocketAddr>>,
    client: reqwest::Client,
}

async fn listen(
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    client: reqwest::Client,
) -> (SocketAddr, AbortOnDrop) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    let local = listener.local_addr().unwrap();
    // An answer is written whole at once; no Nagle delay on the client's side of the ALB.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    let app = Router::new()
        .fallback(any(forward))
        .with_state(Route { upstream, client });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (local, AbortOnDrop(task))
}

/// Forward one request to where the listener points now, and answer the client: the target's
/// answer, or the ALB's own 502 or 504 when the target gave none.
async fn forward(State(route): State<Route>, request: Request) -> Response {
    let to = *route.upstream.lock().unwrap();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_REQUEST_BODY as u64) {
        return own_answer(StatusCode::PAYLOAD_TOO_LARGE);
    }
    // The whole request first: an answer that reached the client while it was still sending
    // (or before it sent anything) is what hyper calls an unexpected message, and a socket
    // closed with the request unread resets, losing the answer too. A body that cannot be read
    // whole (the client stopped sending, or a chunked body over the limit) is a 400, as an ALB
    // answers a malformed request.
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return own_answer(StatusCode::BAD_REQUEST);
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let sent = route
        .client
        .request(parts.method, format!("http://{to}{path}"))
        .headers(headers)
        .body(body);
    // The target's whole answer, or nothing: a target that dies mid-answer is a 502, never a
    // cut answer or a dropped client connection.
    let exchange = async {
        let response = sent.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    };
    match tokio::time::timeout(IDLE_TIMEOUT, exchange).await {
        Ok(Ok((status, mut headers, body))) => {
            strip_hop_by_hop(&mut headers);
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Ok(Err(_)) => own_answer(StatusCode::BAD_GATEWAY),
        Err(_) => own_answer(StatusCode::GATEWAY_TIMEOUT),
    }
}

/// Drop the headers of one connection: the fixed list and any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP.map(HeaderName::from_static)) {
        headers.remove(name);
    }
}

/// An answer of the ALB's own, with the body an ALB sends.
fn own_answer(status: StatusCode) -> Response {
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let body = format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = Response::new(Body::from(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}
