//! One signed AWS API request: SigV4 (aws-sigv4, the SDK's own signer) with the SDK config's
//! credentials, sent through reqwest, retried as the SDK's standard mode would (transport
//! errors, 5xx, and the SDK's throttling and transient error codes), each attempt bounded.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_types::SdkConfig;
use bytes::Bytes;
use http::{HeaderMap, Method};
use url::Url;

use super::endpoint::Service;
use crate::error::chain;

/// Attempts of one read, the first included (the SDK's standard mode also makes 3).
pub(crate) const ATTEMPTS: u32 = 3;
/// Time for one attempt: connect, send, and read the answer.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time to open a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first pause between attempts; it doubles.
const BACKOFF: Duration = Duration::from_millis(200);

/// A request to send.
pub(crate) struct Call<'a> {
    /// The service (signing name).
    pub service: Service,
    /// GET or POST.
    pub method: Method,
    /// The whole URL.
    pub url: Url,
    /// Headers to send and sign (besides host, date and token, which signing adds).
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for a GET).
    pub body: Bytes,
    /// Larger answers are refused; reading stops there.
    pub max_bytes: usize,
    /// What is read, for messages: "SSM parameter /x".
    pub what: &'a str,
}

/// An answer with a 2xx status.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most `max_bytes`.
    pub body: Bytes,
}

/// Why a call did not give a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The service answered with an error.
    Service {
        /// HTTP status.
        status: u16,
        /// The AWS error code (`ParameterNotFound`, `AccessDenied`, ...), if one was given.
        code: Option<String>,
        /// The error message, if one was given.
        message: Option<String>,
        /// `x-amz-bucket-region`, for an S3 bucket in another region.
        bucket_region: Option<String>,
    },
    /// No answer: connection, TLS, timeout.
    Transport(String),
    /// The answer was larger than the call's limit (reading stopped there). Not retried: the
    /// same object would come again.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// No credentials, or signing failed.
    Credentials(String),
    /// No endpoint: the region or a configured endpoint is unusable.
    Endpoint(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Service { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || code.as_deref().is_some_and(|code| {
                        THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code)
                    })
            }
            Failure::Transport(_) => true,
            Failure::TooLarge { .. } | Failure::Credentials(_) | Failure::Endpoint(_) => false,
        }
    }
}

/// Send `call`, signed, retrying what is worth retrying.
pub(crate) async fn send(
    sdk: &SdkConfig,
    client: &reqwest::Client,
    call: &Call<'_>,
) -> Result<Reply, Failure> {
    let mut attempt = 1;
    loop {
        let result = attempt_once(sdk, client, call).await;
        match result {
            Err(failure) if failure.retryable() && attempt < ATTEMPTS => {
                tracing::warn!(
                    what = call.what,
                    attempt,
                    failure = ?failure,
                    "AWS read failed; retrying"
                );
                tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn attempt_once(
    sdk: &SdkConfig,
    client: &reqwest::Client,
    call: &Call<'_>,
) -> Result<Reply, Failure> {
    let exchange = async {
        let request = signed(sdk, call).await?;
        let response = client
            .execute(request)
            .await
            .map_err(|err| Failure::Transport(chain(&err)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_limited(response, call.max_bytes).await?;
        if (200..300).contains(&status) {
            Ok(Reply { headers, body })
        } else {
            Err(service_failure(status, &headers, &body))
        }
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Transport(format!(
            "no answer within {}",
            humantime::format_duration(ATTEMPT_TIMEOUT)
        ))),
    }
}

/// Build the request and sign it with fresh credentials and the current time.
async fn signed(sdk: &SdkConfig, call: &Call<'_>) -> Result<reqwest::Request, Failure> {
    let provider = sdk.credentials_provider().ok_or_else(|| {
        Failure::Credentials("no AWS credentials provider is configured".to_owned())
    })?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|err| Failure::Credentials(chain(&err)))?;
    let identity: Identity = credentials.into();
    let region = sdk
        .region()
        .map(|r| r.as_ref().to_owned())
        .unwrap_or_default();
    let region = super::endpoint::signing_region(call.service, &region);
    let mut settings = SigningSettings::default();
    if call.service == Service::S3 {
        // S3 signs the path exactly as sent and wants the payload hash as a header.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(call.service.signing_name())
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|err| Failure::Credentials(format!("cannot sign the request: {err}")))?
        .into();
    let signable = SignableRequest::new(
        call.method.as_str(),
        call.url.as_str(),
        call.headers
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
        SignableBody::Bytes(&call.body),
    )
    .map_err(|err| Failure::Credentials(format!("cannot sign the request: {err}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|err| Failure::Credentials(format!("cannot sign the request: {err}")))?
        .into_parts();
    let mut request = http::Request::builder()
        .method(call.method.clone())
        .uri(call.url.as_str());
    for (name, value) in &call.headers {
        request = request.header(*name, value.as_str());
    }
    let mut request = request
        .body(call.body.clone())
        .map_err(|err| Failure::Transport(format!("cannot build the request: {err}")))?;
    instructions.apply_to_request_http1x(&mut request);
    reqwest::Request::try_from(request.map(reqwest::Body::from))
        .map_err(|err| Failure::Transport(format!("cannot build the request: {}", chain(&err))))
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Bytes, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| Failure::Transport(chain(&err)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(Failure::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The error code and message of an error answer: awsJson1_1 (`x-amzn-errortype` or
/// `__type`/`code`, namespace and URI stripped) or S3's XML (`<Code>`, `<Message>`).
fn service_failure(status: u16, headers: &HeaderMap, body: &[u8]) -> Failure {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (mut code, mut message) = (header("x-amzn-errortype"), None);
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| json.get(*name).and_then(|v| v.as_str()))
                .map(str::to_owned)
        };
        code = code.or_else(|| field(&["__type", "code", "Code"]));
        message = field(&["message", "Message", "errorMessage"]);
    } else if let Ok(text) = std::str::from_utf8(body) {
        code = code.or_else(|| super::xml::first(text, "Code"));
        message = super::xml::first(text, "Message");
    }
    let code = code
        .map(|code| {
            let code = code.split(':').next().unwrap_or_default();
            code.rsplit('#').next().unwrap_or_default().to_owned()
        })
        .filter(|code| !code.is_empty());
    Failure::Service {
        status,
        code,
        message,
        bucket_region: header("x-amz-bucket-region"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, headers: &[(&'static str, &'static str)], body: &str) -> Failure {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        service_failure(status, &map, body.as_bytes())
    }

    fn code(failure: &Failure) -> Option<&str> {
        match failure {
            Failure::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn error_codes_come_out_of_json_headers_and_xml() {
        let json = failure(
            400,
            &[],
            r#"{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"gone"}"#,
        );
        assert_eq!(code(&json), Some("ParameterNotFound"));
        let header = failure(
            400,
            &[(
                "x-amzn-errortype",
                "AccessDeniedException:http://internal.amazon.com/coral/",
            )],
            "{}",
        );
        assert_eq!(code(&header), Some("AccessDeniedException"));
        let xml = failure(
            404,
            &[],
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        );
        assert_eq!(code(&xml), Some("NoSuchKey"));
        assert!(
            matches!(xml, Failure::Service { message: Some(m), .. } if m.contains("key does not exist"))
        );
        assert_eq!(code(&failure(403, &[], "")), None);
    }

    #[test]
    fn throttling_5xx_and_transport_errors_are_retried_the_rest_is_final() {
        let throttled = failure(400, &[], r#"{"__type":"ThrottlingException"}"#);
        assert!(throttled.retryable());
        assert!(failure(503, &[], "<Error><Code>SlowDown</Code></Error>").retryable());
        assert!(failure(500, &[], "").retryable());
        assert!(Failure::Transport("reset".into()).retryable());
        assert!(!failure(400, &[], r#"{"__type":"ParameterNotFound"}"#).retryable());
        assert!(!failure(403, &[], "<Error><Code>AccessDenied</Code></Error>").retryable());
        assert!(!Failure::Credentials("none".into()).retryable());
        assert!(!Failure::TooLarge { limit: 1 }.retryable());
    }
}
