//! The AWS SDK's HTTP client: the SDK's requests (the CodeDeploy status call, SSM, S3, Secrets
//! Manager, credential providers) go through reqwest, the HTTP/1.1 + rustls + ring stack the
//! checks already use.
//!
//! The SDK's own client (aws-smithy-http-client) would bring a second hyper client stack with
//! HTTP/2 and a second certificate loader: about a megabyte of every hook binary for a handful
//! of calls per invocation. The SDK keeps doing everything else: endpoints, signing, retries
//! with backoff, and the timeouts it asks for (connect and read timeouts reach the connector
//! through [`HttpConnectorSettings`]; the attempt and operation timeouts it enforces itself).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as SdkResponse;
use aws_smithy_types::body::SdkBody;

use crate::transport::client::USER_AGENT;

/// An SDK HTTP client backed by reqwest. Connectors are cached per timeout settings, as the
/// SDK's contract asks, so every SDK client shares one connection pool per setting.
#[derive(Debug, Default)]
pub(crate) struct ReqwestHttpClient {
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

/// The connect and read timeouts a connector was built with.
type Timeouts = (Option<Duration>, Option<Duration>);

impl ReqwestHttpClient {
    /// A client to hand to `aws_config::ConfigLoader::http_client`.
    pub(crate) fn shared() -> SharedHttpClient {
        SharedHttpClient::new(ReqwestHttpClient::default())
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut cached = match self.connectors.lock() {
            Ok(cached) => cached,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, connector)) = cached.iter().find(|(timeouts, _)| *timeouts == key) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(ReqwestConnector::new(key.0, key.1));
        cached.push((key, connector.clone()));
        connector
    }
}

/// One reqwest client with the SDK's connect and read timeouts.
#[derive(Debug, Clone)]
struct ReqwestConnector {
    client: Result<reqwest::Client, Arc<reqwest::Error>>,
}

/// A reqwest builder for talking to AWS: greenlight's User-Agent, no redirects and no proxy
/// from the environment (the SDK's own client never uses either), ring as the TLS provider.
pub(crate) fn aws_client_builder() -> reqwest::ClientBuilder {
    // reqwest is built without a crypto provider of its own: ring, as everywhere here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

impl ReqwestConnector {
    fn new(connect_timeout: Option<Duration>, read_timeout: Option<Duration>) -> Self {
        let mut builder = aws_client_builder();
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = read_timeout {
            builder = builder.read_timeout(timeout);
        }
        ReqwestConnector {
            client: builder.build().map_err(Arc::new),
        }
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|err| {
                ConnectorError::other(Box::new(SharedError(err)), None).never_connected()
            })?;
            let request = request
                .try_into_http1x()
                .map_err(|err| ConnectorError::user(Box::new(err)))?
                .map(reqwest::Body::wrap);
            let request = reqwest::Request::try_from(request)
                .map_err(|err| ConnectorError::user(Box::new(err)))?;
            let response = client.execute(request).await.map_err(classify)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            SdkResponse::try_from(response)
                .map_err(|err| ConnectorError::other(Box::new(err), None))
        })
    }
}

/// Timeouts and broken connections are transient (the SDK retries them); a connection that
/// never opened is marked so, which the SDK's retry classifier also treats as safe to retry.
fn classify(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(Box::new(err))
    } else if err.is_connect() {
        ConnectorError::io(Box::new(err)).never_connected()
    } else {
        ConnectorError::io(Box::new(err))
    }
}

/// A build error shared by every call of a connector that could not be built.
#[derive(Debug)]
struct SharedError(Arc<reqwest::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot build the AWS HTTP client: {}", self.0)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
