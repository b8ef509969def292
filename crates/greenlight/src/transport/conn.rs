//! The probe's transport: one HTTP/1.1 connection per worker and target, driven through
//! hyper directly.
//!
//! A probe sends thousands of identical requests as fast as the target answers, so the cost
//! per request is what it measures with. reqwest (used by `http` and `scenario` checks) pays
//! for a shared connection pool, a URL and a header map per request and a timer per body;
//! here a worker owns its connection, the request head is built once, and the body is counted,
//! not kept. TLS uses the target's own rustls configuration ([`crate::transport::client`]), so the probe
//! verifies certificates exactly as the other checks do.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::chain;
use crate::transport::client::Request;
use crate::transport::client::{TargetClient, USER_AGENT as GREENLIGHT_AGENT, unbracket};

/// Opens connections to one target and sends one prepared request over them.
#[derive(Clone)]
pub(crate) struct Dialer {
    target: String,
    dial: (String, u16),
    tls: Option<(TlsConnector, ServerName<'static>)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    max_body_bytes: u64,
    shown: String,
}

/// An open connection, owned by one worker.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// What one exchange gave: the status, and whether the body outgrew the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Response status.
    pub status: u16,
    /// The body was larger than the limit (the connection was dropped unread).
    pub truncated: bool,
}

impl Dialer {
    /// Prepare `request` for `target`: the request line and headers are built here, once.
    pub(crate) fn new(target: &TargetClient, request: &Request) -> Result<Dialer, String> {
        let url = &request.url;
        let host = url
            .host_str()
            .ok_or_else(|| format!("{url} has no host name"))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let origin = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let uri: Uri = origin
            .parse()
            .map_err(|err| format!("{url}: not a request path: {err}"))?;
        let mut headers = request.headers.clone();
        // The same head reqwest sends for the other checks: Host (the `host` override when
        // set, as the URL carries it), our User-Agent unless the check sets one.
        let host_value = HeaderValue::from_str(&authority)
            .map_err(|err| format!("{authority:?} is not a valid Host header: {err}"))?;
        headers.insert(HOST, host_value);
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(GREENLIGHT_AGENT));
        }
        let body = request.body.clone().unwrap_or_default();
        if !body.is_empty() && !headers.contains_key(CONTENT_LENGTH) {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let tls = match (url.scheme(), &target.tls) {
            ("https", Some(config)) => {
                let name = ServerName::try_from(unbracket(host).to_owned())
                    .map_err(|err| format!("{host:?} cannot be a TLS server name: {err}"))?;
                Some((TlsConnector::from(Arc::<ClientConfig>::clone(config)), name))
            }
            ("https", None) => {
                return Err(format!(
                    "target {} has no TLS configuration for {url}",
                    target.name
                ));
            }
            _ => None,
        };
        Ok(Dialer {
            target: target.name.clone(),
            dial: target.dial.clone(),
            tls,
            method: request.method.clone(),
            uri,
            headers,
            body,
            max_body_bytes: request.max_body_bytes,
            shown: format!("{} {url}", request.method),
        })
    }

    /// Send the request once over `slot`'s connection, opening one if there is none or it
    /// was closed. A request the old connection never sent (the server closed it in between)
    /// is sent again on a new one; one that was sent is never repeated.
    pub(crate) async fn exchange(&self, slot: &mut Option<Conn>) -> Result<Answer, String> {
        let mut request = self.request();
        let reused = match slot.as_mut() {
            Some(conn) => conn.sender.ready().await.is_ok(),
            None => false,
        };
        if !reused {
            *slot = Some(self.connect().await?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(self.failed("request failed", "no connection"));
        };
        let response = match conn.sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => match err.take_message() {
                Some(unsent) if reused => {
                    request = unsent;
                    *slot = None;
                    let mut fresh = self.connect().await?;
                    let response = fresh
                        .sender
                        .send_request(request)
                        .await
                        .map_err(|err| self.failed("request failed", &chain(&err)));
                    *slot = Some(fresh);
                    response?
                }
                _ => {
                    *slot = None;
                    return Err(self.failed("request failed", &chain(err.error())));
                }
            },
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut read: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| {
                *slot = None;
                self.failed("could not read the response", &chain(&err))
            })?;
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > self.max_body_bytes {
                    // Stop reading: dropping the connection is cheaper than draining it.
                    *slot = None;
                    return Ok(Answer {
                        status,
                        truncated: true,
                    });
                }
            }
        }
        Ok(Answer {
            status,
            truncated: false,
        })
    }

    fn request(&self) -> hyper::Request<Full<Bytes>> {
        let mut request = hyper::Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    async fn connect(&self) -> Result<Conn, String> {
        let (host, port) = (&self.dial.0, self.dial.1);
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|err| self.failed("could not connect", &err.to_string()))?;
        // Requests are small and answered one at a time: do not hold them back for Nagle.
        tcp.set_nodelay(true)
            .map_err(|err| self.failed("could not connect", &err.to_string()))?;
        match &self.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|err| self.failed("could not connect", &chain(&err)))?;
                self.handshake(stream).await
            }
            None => self.handshake(tcp).await,
        }
    }

    async fn handshake<S>(&self, stream: S) -> Result<Conn, String>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| self.failed("could not connect", &chain(&err)))?;
        // The connection's I/O runs beside the worker and ends when the sender is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    fn failed(&self, what: &str, why: &str) -> String {
        format!("{}: {what} (target {}): {why}", self.shown, self.target)
    }
}
