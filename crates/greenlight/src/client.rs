//! One HTTP client per target, built once per cold start: TLS roots, the `host` override, timeouts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::config::{Config, Target};
use crate::error::{ConfigError, chain};

/// The clients of every target in the config.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    clients: BTreeMap<String, TargetClient>,
}

/// A target ready to send to.
#[derive(Debug, Clone)]
pub struct TargetClient {
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
}

impl Targets {
    /// Build a client for each target.
    pub fn build(config: &Config) -> Result<Targets, ConfigError> {
        // reqwest is built without a crypto provider of its own (one TLS stack in the binary,
        // shared with the AWS SDK's client): ring, installed once for the process. A second
        // call finds it installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clients = config
            .targets
            .iter()
            .map(|(name, target)| {
                let timeout = target.timeout.unwrap_or(config.defaults.timeout).0;
                build_one(name, target, timeout).map(|client| (name.clone(), client))
            })
            .collect::<Result<_, _>>()?;
        Ok(Targets { clients })
    }

    /// The client of a target.
    pub fn get(&self, name: &str) -> Option<&TargetClient> {
        self.clients.get(name)
    }

    /// All targets.
    pub fn iter(&self) -> impl Iterator<Item = &TargetClient> {
        self.clients.values()
    }
}

impl TargetClient {
    /// `https://host:8443/base` + `/health?x=1` → `https://host:8443/base/health?x=1`.
    pub fn join(&self, path: &str) -> Result<Url, url::ParseError> {
        let mut text = self.base.as_str().trim_end_matches('/').to_owned();
        text.push_str(path);
        Url::parse(&text)
    }
}

fn build_one(name: &str, target: &Target, timeout: Duration) -> Result<TargetClient, ConfigError> {
    let path = format!("targets.{name}");
    let configured = &target.url.0;
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("greenlight/", env!("CARGO_PKG_VERSION")))
        // A redirect from a health endpoint is something to see, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30));

    if let Some(ca_file) = &target.ca_file {
        let pem = std::fs::read(ca_file).map_err(|err| {
            ConfigError::invalid(
                format!("{path}.ca_file"),
                ca_file.display(),
                format!("cannot read the CA bundle: {err}"),
                "point ca_file at a readable PEM file (in Lambda, ship it in the package or a layer)",
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
            ConfigError::invalid(
                format!("{path}.ca_file"),
                ca_file.display(),
                format!("not a PEM certificate bundle: {}", chain(&err)),
                "use a file with one or more -----BEGIN CERTIFICATE----- blocks",
            )
        })?;
        if certs.is_empty() {
            return Err(ConfigError::invalid(
                format!("{path}.ca_file"),
                ca_file.display(),
                "the file holds no certificate",
                "use a file with one or more -----BEGIN CERTIFICATE----- blocks",
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if target.insecure_skip_tls_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }

    let mut base = configured.clone();
    if let Some(host) = &target.host {
        // Requests name `host` (so it is both the Host header and the TLS server name, and the
        // certificate is checked against it) while connections go to the configured address.
        let upstream = configured.host_str().unwrap_or_default().to_owned();
        let port = configured.port_or_known_default().unwrap_or(443);
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
            upstream,
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
        insecure: target.insecure_skip_tls_verify,
    })
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
            let bare = lookup
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
                .await?
                .collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_replaces_the_url_host_but_keeps_the_port() {
        let config = Config::parse(
            "targets: { test: { url: 'https://10.0.0.1:8443', host: payments.example.com, timeout: 2s } }",
        )
        .unwrap();
        let targets = Targets::build(&config).unwrap();
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
        let config =
            Config::parse("targets: { t: { url: 'https://a', ca_file: /nonexistent/ca.pem } }")
                .unwrap();
        let e = Targets::build(&config).unwrap_err().to_string();
        assert!(
            e.contains("targets.t.ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("ca.pem");
        std::fs::write(&bogus, "not a certificate").unwrap();
        let config = Config::parse(&format!(
            "targets: {{ t: {{ url: 'https://a', ca_file: '{}' }} }}",
            bogus.display()
        ))
        .unwrap();
        let e = Targets::build(&config).unwrap_err().to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
    }
}
