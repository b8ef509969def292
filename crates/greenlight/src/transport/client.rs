//! The HTTP transport of the checks: one client per target, built once per cold start (TLS
//! roots, the `host` override, timeouts), and one exchange within the limits ([`send`]).
//!
//! Each target has one rustls configuration, shared by its reqwest client (`http` and
//! `scenario` checks) and by the probe's own connections ([`crate::transport::conn`]), so both verify
//! certificates the same way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use url::Url;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::{ConfigError, chain};

/// What a target needs to be reached: the config's `targets.NAME`, resolved.
#[derive(Debug, Clone)]
pub(crate) struct TargetSettings {
    /// Base URL (absolute http or https).
    pub url: Url,
    /// Host header and TLS server name, when set.
    pub host: Option<String>,
    /// An extra PEM bundle of trusted roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Accept any certificate.
    pub insecure: bool,
}

/// The clients of every target in the config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targets {
    clients: BTreeMap<String, Arc<TargetClient>>,
}

/// A target ready to send to.
#[derive(Debug, Clone)]
pub(crate) struct TargetClient {
    /// The name under `targets:`.
    pub name: String,
    /// The client (connection pool, TLS config, resolver).
    pub client: reqwest::Client,
    /// The base URL requests go to: the configured URL with `host` in place of its host name.
    pub base: Url,
    /// Per-request timeout unless a check sets its own.
    pub timeout: Duration,
    /// TLS verification is off for this target.
    pub insecure: bool,
    /// Where connections go: the configured URL's host and port (not `host`).
    pub dial: (String, u16),
    /// The TLS configuration for an `https` target.
    pub tls: Option<Arc<ClientConfig>>,
    /// The bytes of response bodies all targets may hold at once.
    pub bodies: Arc<BodyBudget>,
}

/// The bytes of response bodies in flight across every check of the process, so that what is
/// read fits the function's memory: a hook at 128 MB that reads 64 large bodies at once holds
/// as many as fit and lets the rest wait (within their timeouts), instead of aborting without
/// a report.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    permits: Arc<Semaphore>,
    kib: u32,
}

/// The most hyper's HTTP/1 read buffer grows to for one connection (its default maximum).
const READ_BUFFER: u64 = 8192 + 4096 * 100;

/// Body memory outside Lambda (the CLI on a laptop or a CI runner).
const UNBOUNDED_BODY_BYTES: u64 = 512 * 1024 * 1024;

impl BodyBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub(crate) fn new(bytes: u64) -> Self {
        let kib = u32::try_from(bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        BodyBudget {
            permits: Arc::new(Semaphore::new(kib as usize)),
            kib,
        }
    }

    /// The budget for a function of `memory_mb` megabytes: three eighths of it for bodies,
    /// the rest for the runtime, the HTTP and TLS buffers of every connection and the
    /// allocator's slack (measured: BENCHMARKS.md). Outside Lambda, 512 MiB.
    pub(crate) fn for_memory_mb(memory_mb: Option<u64>) -> Self {
        BodyBudget::new(memory_mb.map_or(UNBOUNDED_BODY_BYTES, |mb| mb * 1024 * 1024 * 3 / 8))
    }

    /// From `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, which Lambda sets to the function's memory.
    pub(crate) fn from_env() -> Self {
        BodyBudget::for_memory_mb(
            std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .ok()
                .and_then(|mb| mb.trim().parse().ok()),
        )
    }

    /// The whole budget, in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        u64::from(self.kib) * 1024
    }

    /// Hold `bytes` of the budget until the permit is dropped (a body larger than the whole
    /// budget holds all of it).
    async fn reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.kib);
        // The semaphore is never closed: acquiring fails only if it were.
        Arc::clone(&self.permits).acquire_many_owned(kib).await.ok()
    }
}

impl Targets {
    /// Build a client for each target, all sharing one budget for response bodies.
    pub(crate) fn build<'a>(
        settings: impl IntoIterator<Item = (&'a String, TargetSettings)>,
        bodies: Arc<BodyBudget>,
    ) -> Result<Targets, ConfigError> {
        // reqwest is built without a crypto provider of its own (one TLS stack in the binary,
        // shared with the AWS SDK's client): ring, installed once for the process. A second
        // call finds it installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clients = settings
            .into_iter()
            .map(|(name, target)| {
                build_one(name, &target, Arc::clone(&bodies))
                    .map(|client| (name.clone(), Arc::new(client)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Targets { clients })
    }

    /// The client of a target.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<TargetClient>> {
        self.clients.get(name)
    }

    /// All targets.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &TargetClient> {
        self.clients.values().map(AsRef::as_ref)
    }
}

impl TargetClient {
    /// `https://host:8443/base` + `/health?x=1` → `https://host:8443/base/health?x=1`.
    pub(crate) fn join(&self, path: &str) -> Result<Url, url::ParseError> {
        let mut text = self.base.as_str().trim_end_matches('/').to_owned();
        text.push_str(path);
        Url::parse(&text)
    }
}

fn build_one(
    name: &str,
    target: &TargetSettings,
    bodies: Arc<BodyBudget>,
) -> Result<TargetClient, ConfigError> {
    let path = format!("targets.{name}");
    let timeout = target.timeout;
    let configured = &target.url;
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // A redirect from a health endpoint is something to see, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        // Checks measure the listener itself: a proxy from the environment would add its own
        // latency and failures, and the probe's connections do not use one either.
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30));

    let tls = if configured.scheme() == "https" {
        let tls = Arc::new(tls_config(&path, target)?);
        builder = builder.tls_backend_preconfigured(ClientConfig::clone(&tls));
        Some(tls)
    } else {
        None
    };

    let mut base = configured.clone();
    let upstream = configured.host_str().unwrap_or_default().to_owned();
    let port = configured.port_or_known_default().unwrap_or(443);
    if let Some(host) = &target.host {
        // Requests name `host` (so it is both the Host header and the TLS server name, and the
        // certificate is checked against it) while connections go to the configured address.
        base.set_host(Some(host)).map_err(|err| {
            ConfigError::invalid(
                format!("{path}.host"),
                host,
                format!("cannot be used as a host name: {err}"),
                "write the bare DNS name, e.g. payments.example.com",
            )
        })?;
        builder = builder.dns_resolver(Arc::new(HostOverride {
            host: host.to_ascii_lowercase(),
            upstream: upstream.clone(),
            port,
        }));
    }

    let client = builder.build().map_err(|err| {
        ConfigError::invalid(
            path.clone(),
            configured,
            format!("cannot build an HTTP client: {}", chain(&err)),
            "check url, ca_file and host of this target",
        )
    })?;
    Ok(TargetClient {
        name: name.to_owned(),
        client,
        base,
        timeout,
        insecure: target.insecure,
        dial: (unbracket(&upstream).to_owned(), port),
        tls,
        bodies,
    })
}

/// The `User-Agent` of every request greenlight sends to a target.
pub(crate) const USER_AGENT: &str = concat!("greenlight/", env!("CARGO_PKG_VERSION"));

/// `[::1]` → `::1`: URLs bracket IPv6 literals, socket APIs and TLS server names do not.
pub(crate) fn unbracket(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The rustls configuration of an `https` target: the system's roots plus `ca_file`, checked
/// by the platform verifier (as reqwest does by default), or no checks at all when
/// `insecure_skip_tls_verify` says so; ring as the crypto provider; HTTP/1.1 only.
fn tls_config(path: &str, target: &TargetSettings) -> Result<ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| {
            ConfigError::invalid(
                path,
                &target.url,
                format!("cannot set up TLS: {err}"),
                "this is a bug in greenlight's TLS set-up; please report it",
            )
        })?
        .dangerous();
    let builder = if target.insecure {
        builder.with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
    } else {
        let extra = match &target.ca_file {
            Some(ca_file) => read_ca_file(path, ca_file)?,
            None => Vec::new(),
        };
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(|err| {
                ConfigError::invalid(
                    format!("{path}.ca_file"),
                    target
                        .ca_file
                        .as_ref()
                        .map_or_else(|| "(system roots)".to_owned(), |f| f.display().to_string()),
                    format!("cannot load the trusted certificates: {err}"),
                    "use a PEM bundle of CA certificates (in Lambda, ship it in the package or a layer)",
                )
            })?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    };
    let mut config = builder.with_no_client_auth();
    // Every ALB listener speaks HTTP/1.1; the probe's connections speak nothing else.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_ca_file(
    path: &str,
    ca_file: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let field = format!("{path}.ca_file");
    let pem = std::fs::read(ca_file).map_err(|err| {
        ConfigError::invalid(
            &field,
            ca_file.display(),
            format!("cannot read the CA bundle: {err}"),
            "point ca_file at a readable PEM file (in Lambda, ship it in the package or a layer)",
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            ConfigError::invalid(
                &field,
                ca_file.display(),
                format!("not a PEM certificate bundle: {err}"),
                "use a file with one or more -----BEGIN CERTIFICATE----- blocks",
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            &field,
            ca_file.display(),
            "the file holds no certificate",
            "use a file with one or more -----BEGIN CERTIFICATE----- blocks",
        ));
    }
    Ok(certs)
}

/// Accepts any certificate: `insecure_skip_tls_verify: true` (warned about on every run).
/// Handshake signatures are still checked, so the peer holds the key it presents.
#[derive(Debug)]
struct NoVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Resolves the `host` name to the addresses of the configured URL's host, looked up afresh
/// each time (ALB addresses change); every other name resolves normally.
#[derive(Debug)]
struct HostOverride {
    host: String,
    upstream: String,
    port: u16,
}

impl Resolve for HostOverride {
    fn resolve(&self, name: Name) -> Resolving {
        let wanted = name.as_str().to_ascii_lowercase();
        let (lookup, port) = if wanted == self.host {
            (self.upstream.clone(), self.port)
        } else {
            (wanted, 0)
        };
        Box::pin(async move {
            // An IPv6 literal arrives bracketed from the URL.
            let bare = unbracket(&lookup).to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
                .await?
                .collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// One request, fully resolved.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Request method.
    pub method: Method,
    /// Full URL (target base + path).
    pub url: Url,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Option<Bytes>,
    /// Whole-exchange timeout.
    pub timeout: Duration,
    /// The most body bytes read.
    pub max_body_bytes: u64,
}

/// What came back, read within the limits.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (complete unless `truncated`).
    pub body: Bytes,
    /// The body was larger than the limit and reading stopped.
    pub truncated: bool,
    /// First byte sent to last byte read.
    pub latency: Duration,
    /// The body's share of the [`BodyBudget`], given back when the response is dropped.
    #[expect(dead_code, reason = "held for its Drop, which gives the memory back")]
    pub reserved: Option<OwnedSemaphorePermit>,
}

/// Why no response could be judged.
#[derive(Debug, Clone)]
pub(crate) enum SendError {
    /// Nothing complete arrived within the timeout (hang, stall, slowness).
    Timeout(Duration),
    /// Could not connect, TLS refused, the stream broke: the check could not run.
    Other(String),
}

/// Send one request and read its response within the limits: the body at most
/// `max_body_bytes` (and the whole body budget), its memory reserved from the budget once the
/// headers say how large it is, everything (the wait for memory too) within the timeout.
pub(crate) async fn send(target: &TargetClient, request: &Request) -> Result<Response, SendError> {
    let mut builder = target
        .client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone())
        .timeout(request.timeout);
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let classify = |err: reqwest::Error| classify(err, request, &target.name);
    let started = Instant::now();
    let exchange = async {
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let limit = request.max_body_bytes.min(target.bodies.bytes());
        // Sized from Content-Length (a chunked body may take the whole limit), so the buffer
        // never grows past what was reserved.
        let expected = response
            .content_length()
            .map_or(limit, |len| len.min(limit));
        // hyper's read buffer for this connection grows with the body, up to about 400 KiB:
        // reserved too, so that the budget holds what the transfer really costs.
        let reserved = target
            .bodies
            .reserve(expected + expected.min(READ_BUFFER))
            .await;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut body = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(limit));
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                // Stop reading: dropping the response closes the connection, so a 500 MB
                // body costs at most `limit` bytes of memory.
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body: body.freeze(),
            truncated,
            latency: started.elapsed(),
            reserved,
        })
    };
    // reqwest's own timeout covers connect, headers and the body stream (a hang, a stall
    // mid-body, a slow drip); this one also covers the wait for body memory.
    tokio::time::timeout(request.timeout, exchange)
        .await
        .unwrap_or(Err(SendError::Timeout(request.timeout)))
}

fn classify(err: reqwest::Error, request: &Request, target: &str) -> SendError {
    if err.is_timeout() {
        return SendError::Timeout(request.timeout);
    }
    let what = if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "could not read the response"
    } else {
        "request failed"
    };
    // reqwest puts the URL in its own message; ours names the target instead.
    let err = err.without_url();
    SendError::Other(format!(
        "{} {}: {what} (target {target}): {}",
        request.method,
        request.url,
        chain(&err)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_replaces_the_url_host_but_keeps_the_port() {
        let name = "test".to_owned();
        let targets = Targets::build(
            [(
                &name,
                TargetSettings {
                    url: Url::parse("https://10.0.0.1:8443").unwrap(),
                    host: Some("payments.example.com".into()),
                    ca_file: None,
                    timeout: Duration::from_secs(2),
                    insecure: false,
                },
            )],
            Arc::new(BodyBudget::new(1 << 20)),
        )
        .unwrap();
        let test = targets.get("test").unwrap();
        assert_eq!(test.base.as_str(), "https://payments.example.com:8443/");
        assert_eq!(test.timeout, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn override_resolves_the_host_to_the_configured_address() {
        let resolver = HostOverride {
            host: "payments.example.com".into(),
            upstream: "127.0.0.1".into(),
            port: 8443,
        };
        let addrs: Vec<SocketAddr> = resolver
            .resolve("payments.example.com".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec!["127.0.0.1:8443".parse().unwrap()]);
    }

    #[test]
    fn unreadable_or_bogus_ca_file_is_a_config_error() {
        let name = "t".to_owned();
        let with_ca = |ca_file: &std::path::Path| {
            Targets::build(
                [(
                    &name,
                    TargetSettings {
                        url: Url::parse("https://a").unwrap(),
                        host: None,
                        ca_file: Some(ca_file.to_owned()),
                        timeout: Duration::from_secs(5),
                        insecure: false,
                    },
                )],
                Arc::new(BodyBudget::new(1 << 20)),
            )
        };
        let e = with_ca(std::path::Path::new("/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("targets.t.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("ca.pem");
        std::fs::write(&bogus, "not a certificate").unwrap();
        let e = with_ca(&bogus).unwrap_err().to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_body_budget_holds_what_fits_and_lets_the_rest_wait() {
        let budget = BodyBudget::for_memory_mb(Some(128));
        assert_eq!(budget.bytes(), 48 * 1024 * 1024);
        let megabyte = 1024 * 1024;
        let mut held = Vec::new();
        for _ in 0..48 {
            held.push(budget.reserve(megabyte).await.unwrap());
        }
        // The 49th waits until one is given back.
        let waiting = tokio::time::timeout(Duration::from_secs(1), budget.reserve(megabyte));
        assert!(waiting.await.is_err());
        held.pop();
        assert!(budget.reserve(megabyte).await.is_some());
        // A body larger than the whole budget takes all of it, and still goes through.
        drop(held);
        assert!(budget.reserve(u64::MAX).await.is_some());
        assert_eq!(BodyBudget::for_memory_mb(None).bytes(), 512 * megabyte);
    }
}
