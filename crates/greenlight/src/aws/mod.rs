//! AWS reads: the config and the secrets (SSM Parameter Store, S3, Secrets Manager), CloudWatch
//! alarms and metrics, and an ECS-native deployment's target service revision.
//!
//! One SDK config (credentials chain, region, endpoint settings), loaded on first use, so a
//! function whose config and secrets are local never pays for it at cold start. Each read is
//! one signed request ([`call`]) to the endpoint the SDK would pick ([`endpoint`]), so the hook
//! binaries carry no SSM, S3 or Secrets Manager SDK client (2 MB of each binary for one
//! operation apiece). Endpoints follow the standard `AWS_ENDPOINT_URL_<SERVICE>` variables (the
//! tests point them at local fakes).

pub(crate) mod call;
pub(crate) mod cloudwatch;
pub(crate) mod ecs;
pub(crate) mod endpoint;
pub(crate) mod iam;
pub(crate) mod lambda;
pub(crate) mod ops;
pub(crate) mod sdk_http;
pub(crate) mod sns;
pub(crate) mod xml;

pub(crate) use self::cloudwatch::{AlarmState, Series};

use std::sync::OnceLock;

use aws_config::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use tokio::sync::OnceCell;

use self::call::Failure;
use self::endpoint::{Resolve, Service};
use self::ops::{Payload, Subject};

/// Lazily loaded AWS access.
#[derive(Debug, Default)]
pub struct Aws {
    sdk: OnceCell<SdkConfig>,
    client: OnceLock<Result<reqwest::Client, String>>,
}

/// The SDK's config loader as greenlight uses it: the environment's settings, sending through
/// the one reqwest stack (`aws::sdk_http`). SDK clients add their own retry and timeout
/// policy (the CodeDeploy status call does).
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws::sdk_http::ReqwestHttpClient::shared())
}

/// Why a read from AWS failed, in words that say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; {fix}")]
pub struct AwsReadError {
    /// What went wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// An SSM parameter as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmParameter {
    /// Its value, decrypted.
    pub value: String,
    /// `String`, `StringList` or `SecureString`.
    pub kind: String,
    /// Its version.
    pub version: i64,
}

/// An S3 object as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    /// Its bytes (at most the limit asked for).
    pub body: Vec<u8>,
    /// Its version id, else its ETag, else `unversioned`.
    pub version: String,
}

/// SSM `GetParameter`'s answer (the fields read).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParameterOutput {
    parameter: Option<Parameter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter {
    value: Option<String>,
    r#type: Option<String>,
    #[serde(default)]
    version: i64,
}

/// Secrets Manager `GetSecretValue`'s answer (the field read).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueOutput {
    secret_string: Option<String>,
}

impl Aws {
    /// Access that loads the SDK config from the environment when first needed.
    pub fn new() -> Self {
        Aws::default()
    }

    /// The SDK config (credentials, region, endpoints), loaded once.
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk.get_or_init(|| sdk_loader().load()).await
    }

    /// An SSM parameter (decrypted): its value, type and version.
    pub async fn ssm_parameter(&self, name: &str) -> Result<SsmParameter, AwsReadError> {
        let what = format!("SSM parameter {name}");
        let body = serde_json::json!({ "Name": name, "WithDecryption": true });
        let subject = Subject {
            what: &what,
            resource: name,
        };
        let reply = self
            .call(&ops::SSM_GET_PARAMETER, &subject, Payload::Json(body))
            .await?;
        let answer: GetParameterOutput = parse_answer(&reply, &what)?;
        let parameter = answer.parameter.ok_or_else(|| AwsReadError {
            problem: format!("SSM returned no parameter for {name}"),
            fix: "check the parameter name".to_owned(),
        })?;
        Ok(SsmParameter {
            value: parameter.value.unwrap_or_default(),
            kind: parameter.r#type.unwrap_or_default(),
            version: parameter.version,
        })
    }

    /// An S3 object (at most `limit` bytes) and its version id or ETag.
    pub async fn s3_object(
        &self,
        bucket: &str,
        key: &str,
        limit: usize,
        expected_owner: Option<&str>,
    ) -> Result<S3Object, AwsReadError> {
        let what = format!("S3 object s3://{bucket}/{key}");
        // With the expected owner, S3 refuses (403) a bucket of the same name that another
        // account owns: a deleted and re-created bucket can never feed the hooks its config.
        let headers = expected_owner
            .map(|owner| vec![("x-amz-expected-bucket-owner", owner.to_owned())])
            .unwrap_or_default();
        let resource = format!("arn:aws:s3:::{bucket}/{key}");
        let subject = Subject {
            what: &what,
            resource: &resource,
        };
        let payload = Payload::Rest {
            url: Box::new(|resolve| endpoint::s3_object(resolve, bucket, key)),
            method: Method::GET,
            headers,
            body: Bytes::new(),
            max_answer: limit,
        };
        let reply = self
            .call(&ops::S3_GET_OBJECT, &subject, payload)
            .await
            .map_err(|mut err| {
                // Name the owner the read insisted on, when it did.
                if let Some(owner) = expected_owner {
                    err.fix = err.fix.replace(
                        "(GREENLIGHT_CONFIG_BUCKET_OWNER)",
                        &format!("(GREENLIGHT_CONFIG_BUCKET_OWNER = {owner})"),
                    );
                }
                err
            })?;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let version = header("x-amz-version-id")
            .filter(|v| v != "null")
            .or_else(|| header("etag"))
            .unwrap_or_else(|| "unversioned".to_owned());
        Ok(S3Object {
            body: reply.body.to_vec(),
            version,
        })
    }

    /// A Secrets Manager secret's string value.
    pub async fn secret_string(&self, id: &str) -> Result<String, AwsReadError> {
        let what = format!("secret {id}");
        let body = serde_json::json!({ "SecretId": id });
        let subject = Subject {
            what: &what,
            resource: id,
        };
        let reply = self
            .call(
                &ops::SECRETS_GET_SECRET_VALUE,
                &subject,
                Payload::Json(body),
            )
            .await?;
        let answer: GetSecretValueOutput = parse_answer(&reply, &what)?;
        match answer.secret_string {
            Some(value) => Ok(value),
            None => Err(AwsReadError {
                problem: format!("secret {id} has no string value (it is binary)"),
                fix: "store the value as a SecretString".to_owned(),
            }),
        }
    }

    /// The same HTTPS client, for a notification's webhook (built once, on first use).
    pub(crate) fn http_client(&self) -> Result<&reqwest::Client, String> {
        self.client().map_err(|failure| match failure {
            Failure::Transport(why) => why,
            _ => "cannot build the HTTP client".to_owned(),
        })
    }

    /// The HTTP client for AWS reads, built on first use, with the connect timeout of the
    /// SDK's own calls.
    fn client(&self) -> Result<&reqwest::Client, Failure> {
        let built = self.client.get_or_init(|| {
            crate::aws::sdk_http::aws_client_builder()
                .connect_timeout(call::CONNECT_TIMEOUT)
                .build()
                .map_err(|err| crate::error::chain(&err))
        });
        built.as_ref().map_err(|why| {
            Failure::Transport(format!("cannot build the HTTP client for AWS: {why}"))
        })
    }
}

/// The endpoint settings of the SDK config for one service, resolved as the SDK clients do:
/// the service's own variable or profile setting, then `AWS_ENDPOINT_URL`.
fn resolve(sdk: &SdkConfig, service: Service) -> Resolve<'_> {
    let configured = sdk
        .service_config()
        .and_then(|config| {
            let key = ServiceConfigKey::builder()
                .service_id(service.service_id())
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .ok()?;
            config.load_config(key)
        })
        .or_else(|| sdk.endpoint_url().map(str::to_owned));
    Resolve {
        region: sdk.region().map(|r| r.as_ref()).unwrap_or_default(),
        fips: sdk.use_fips().unwrap_or(false),
        dual_stack: sdk.use_dual_stack().unwrap_or(false),
        configured,
    }
}

/// Parse a JSON answer. Its text is never quoted back: it may hold a secret.
fn parse_answer<T: serde::de::DeserializeOwned>(
    reply: &call::Reply,
    what: &str,
) -> Result<T, AwsReadError> {
    serde_json::from_slice(&reply.body).map_err(|err| AwsReadError {
        problem: format!(
            "the answer for {what} is not the JSON AWS sends ({} bytes; {} at line {} column {})",
            reply.body.len(),
            classify_json_error(&err),
            err.line(),
            err.column()
        ),
        fix: "check that the endpoint is the AWS service (AWS_ENDPOINT_URL_* variables)".to_owned(),
    })
}

fn classify_json_error(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "unexpected fields",
        serde_json::error::Category::Eof => "cut short",
    }
}
