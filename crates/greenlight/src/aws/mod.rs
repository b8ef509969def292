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
pub(crate) mod sdk_http;
pub(crate) mod sns;

pub use self::cloudwatch::{AlarmState, Series};

use std::sync::OnceLock;

use aws_config::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use tokio::sync::OnceCell;

use self::call::{Call, Failure};
use self::endpoint::{Resolve, Service};

/// The largest SSM or Secrets Manager answer read (a SecureString is at most 8 KB, a secret
/// 64 KB, plus the JSON around them).
const MAX_JSON_ANSWER: usize = 256 * 1024;

/// Lazily loaded AWS access.
#[derive(Debug, Default)]
pub struct Aws {
    sdk: OnceCell<SdkConfig>,
    client: OnceLock<Result<reqwest::Client, String>>,
}

/// The SDK's config loader as greenlight uses it: the environment's settings, sending through
/// the one reqwest stack ([`crate::aws::sdk_http`]). SDK clients add their own retry and timeout
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
        let body = serde_json::json!({ "Name": name, "WithDecryption": true }).to_string();
        let reply = self
            .json_call(Service::Ssm, "AmazonSSM.GetParameter", body, &what)
            .await
            .map_err(|failure| {
                read_error(
                    failure,
                    &what,
                    "ParameterNotFound",
                    "create the parameter, or fix the name",
                    &format!("the function's role needs ssm:GetParameter on parameter {name}"),
                )
            })?;
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
        let reply = self
            .request(
                Service::S3,
                |resolve| endpoint::s3_object(resolve, bucket, key),
                (Method::GET, headers, Bytes::new()),
                limit,
                &what,
            )
            .await
            .map_err(|failure| match failure {
                Failure::TooLarge { limit } => AwsReadError {
                    problem: format!("s3://{bucket}/{key} is over the {limit}-byte limit"),
                    fix: "a greenlight config is a few kilobytes: check the key".to_owned(),
                },
                failure => read_error(
                    failure,
                    &what,
                    "NoSuchKey",
                    "upload the config there, or fix the bucket and key",
                    &format!(
                        "the function's role needs s3:GetObject on arn:aws:s3:::{bucket}/{key}, \
                         and the bucket must belong to the expected owner \
                         (GREENLIGHT_CONFIG_BUCKET_OWNER{})",
                        expected_owner
                            .map(|o| format!(" = {o}"))
                            .unwrap_or_default()
                    ),
                ),
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
        let body = serde_json::json!({ "SecretId": id }).to_string();
        let reply = self
            .json_call(
                Service::SecretsManager,
                "secretsmanager.GetSecretValue",
                body,
                &what,
            )
            .await
            .map_err(|failure| {
                read_error(
                    failure,
                    &what,
                    "ResourceNotFoundException",
                    "create the secret, or fix its id",
                    &format!("the function's role needs secretsmanager:GetSecretValue on {id}"),
                )
            })?;
        let answer: GetSecretValueOutput = parse_answer(&reply, &what)?;
        match answer.secret_string {
            Some(value) => Ok(value),
            None => Err(AwsReadError {
                problem: format!("secret {id} has no string value (it is binary)"),
                fix: "store the value as a SecretString".to_owned(),
            }),
        }
    }

    /// An awsJson call: `POST /` with the operation in `X-Amz-Target` (JSON 1.0 for
    /// CloudWatch, 1.1 for the others).
    async fn json_call(
        &self,
        service: Service,
        target: &str,
        body: String,
        what: &str,
    ) -> Result<call::Reply, Failure> {
        let content_type = match service {
            Service::CloudWatch => "application/x-amz-json-1.0",
            _ => "application/x-amz-json-1.1",
        };
        let headers = vec![
            ("content-type", content_type.to_owned()),
            ("x-amz-target", target.to_owned()),
        ];
        self.request(
            service,
            |resolve| endpoint::json_service(service, resolve),
            (Method::POST, headers, Bytes::from(body)),
            MAX_JSON_ANSWER,
            what,
        )
        .await
    }

    /// Resolve the endpoint (`url_for`), then send one signed request to it.
    async fn request(
        &self,
        service: Service,
        url_for: impl FnOnce(&Resolve<'_>) -> Result<url::Url, endpoint::EndpointError>,
        (method, headers, body): (Method, Vec<(&'static str, String)>, Bytes),
        max_bytes: usize,
        what: &str,
    ) -> Result<call::Reply, Failure> {
        let sdk = self.sdk().await;
        let url = url_for(&resolve(sdk, service)).map_err(|err| Failure::Endpoint(err.0))?;
        let call = Call {
            service,
            method,
            url,
            headers,
            body,
            max_bytes,
            what,
        };
        call::send(sdk, self.client()?, &call).await
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

/// Name what went wrong with a read and how to fix it, from the error code AWS sent.
fn read_error(
    failure: Failure,
    what: &str,
    not_found_code: &str,
    not_found_fix: &str,
    denied_fix: &str,
) -> AwsReadError {
    match failure {
        Failure::Service {
            status,
            code,
            message,
            bucket_region,
        } => {
            let code = code.unwrap_or_else(|| match status {
                403 => "AccessDenied".to_owned(),
                404 => "NotFound".to_owned(),
                other => format!("HTTP {other}"),
            });
            if code == not_found_code || code == "NotFound" || code == "NoSuchBucket" {
                AwsReadError {
                    problem: format!("{what} does not exist ({code})"),
                    fix: not_found_fix.to_owned(),
                }
            } else if code.contains("AccessDenied") {
                AwsReadError {
                    problem: format!("access to {what} was denied ({code})"),
                    fix: denied_fix.to_owned(),
                }
            } else if let Some(region) = bucket_region.filter(|_| status == 301 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed") {
                AwsReadError {
                    problem: format!("{what} is in region {region}, not the function's ({code})"),
                    fix: format!("keep the config bucket in the function's region, or set AWS_ENDPOINT_URL_S3=https://s3.{region}.amazonaws.com"),
                }
            } else {
                let message = message.map(|m| format!(": {m}")).unwrap_or_default();
                AwsReadError {
                    problem: format!("could not read {what}: {code}{message}"),
                    fix: "check the name, the region and the function's permissions".to_owned(),
                }
            }
        }
        Failure::Transport(why) => AwsReadError {
            problem: format!("could not read {what}: {why}"),
            fix: "check network access to the AWS API from the function (NAT gateway or VPC endpoint) and the AWS_ENDPOINT_URL_* variables".to_owned(),
        },
        Failure::TooLarge { limit } => AwsReadError {
            problem: format!("the answer for {what} is over the {limit}-byte limit"),
            fix: "check that the endpoint is the AWS service (AWS_ENDPOINT_URL_* variables)"
                .to_owned(),
        },
        Failure::Endpoint(why) => AwsReadError {
            problem: format!("could not read {what}: {why}"),
            fix: "set AWS_REGION, or the endpoint variable named above".to_owned(),
        },
        Failure::Credentials(why) => AwsReadError {
            problem: format!("could not read {what}: {why}"),
            fix: "give the function (or your shell) AWS credentials and a region: the Lambda role, or AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_REGION".to_owned(),
        },
    }
}
