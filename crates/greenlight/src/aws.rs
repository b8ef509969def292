//! AWS reads for the config and the secrets: SSM Parameter Store, S3 and Secrets Manager.
//!
//! One SDK config, loaded on first use, so a function whose config and secrets are local never
//! pays for it at cold start. Endpoints follow the standard `AWS_ENDPOINT_URL_<SERVICE>`
//! variables (the tests point them at local fakes).

use aws_config::SdkConfig;
use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use tokio::sync::OnceCell;

use crate::error::chain;

/// Lazily loaded AWS access.
#[derive(Debug, Default)]
pub struct Aws {
    sdk: OnceCell<SdkConfig>,
}

/// Why a read from AWS failed, in words that say what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsReadError {
    /// What went wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Aws {
    /// Access that loads the SDK config from the environment when first needed.
    pub fn new() -> Self {
        Aws::default()
    }

    /// Access with an SDK config already loaded.
    pub fn with_sdk(sdk: SdkConfig) -> Self {
        Aws {
            sdk: OnceCell::from(sdk),
        }
    }

    /// The SDK config (credentials, region, endpoints, retries), loaded once.
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                crate::report::codedeploy::with_report_policy(
                    aws_config::defaults(aws_config::BehaviorVersion::latest()),
                    crate::config::Defaults::default().report_reserve.0,
                )
                .load()
                .await
            })
            .await
    }

    /// An SSM parameter: its value, type and version.
    pub async fn ssm_parameter(&self, name: &str) -> Result<(String, String, i64), AwsReadError> {
        let client = aws_sdk_ssm::Client::new(self.sdk().await);
        let answer = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|err| {
                read_error(
                    &err,
                    &format!("SSM parameter {name}"),
                    "ParameterNotFound",
                    "create the parameter, or fix the name",
                    &format!("the function's role needs ssm:GetParameter on parameter {name}"),
                )
            })?;
        let parameter = answer.parameter.ok_or_else(|| AwsReadError {
            problem: format!("SSM returned no parameter for {name}"),
            fix: "check the parameter name".to_owned(),
        })?;
        Ok((
            parameter.value.unwrap_or_default(),
            parameter
                .r#type
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            parameter.version,
        ))
    }

    /// An S3 object (at most `limit` bytes) and its version id or ETag.
    pub async fn s3_object(
        &self,
        bucket: &str,
        key: &str,
        limit: usize,
    ) -> Result<(Vec<u8>, String), AwsReadError> {
        let sdk = self.sdk().await;
        // Local endpoints (tests, LocalStack) have no bucket subdomains.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let object = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| {
                read_error(
                    &err,
                    &format!("S3 object s3://{bucket}/{key}"),
                    "NoSuchKey",
                    "upload the config there, or fix the bucket and key",
                    &format!(
                        "the function's role needs s3:GetObject on arn:aws:s3:::{bucket}/{key}"
                    ),
                )
            })?;
        let version = object
            .version_id
            .clone()
            .or_else(|| object.e_tag.clone())
            .unwrap_or_else(|| "unversioned".to_owned());
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|err| AwsReadError {
                problem: format!("could not read s3://{bucket}/{key}: {}", chain(&err)),
                fix: "check network access to S3".to_owned(),
            })?
            .into_bytes();
        if bytes.len() > limit {
            return Err(AwsReadError {
                problem: format!(
                    "s3://{bucket}/{key} is {} bytes, over the {limit}-byte limit",
                    bytes.len()
                ),
                fix: "a greenlight config is a few kilobytes: check the key".to_owned(),
            });
        }
        Ok((bytes.to_vec(), version))
    }

    /// A Secrets Manager secret's string value.
    pub async fn secret_string(&self, id: &str) -> Result<String, AwsReadError> {
        let client = aws_sdk_secretsmanager::Client::new(self.sdk().await);
        let answer = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|err| {
                read_error(
                    &err,
                    &format!("secret {id}"),
                    "ResourceNotFoundException",
                    "create the secret, or fix its id",
                    &format!("the function's role needs secretsmanager:GetSecretValue on {id}"),
                )
            })?;
        match answer.secret_string {
            Some(value) => Ok(value),
            None => Err(AwsReadError {
                problem: format!("secret {id} has no string value (it is binary)"),
                fix: "store the value as a SecretString".to_owned(),
            }),
        }
    }
}

/// Name what went wrong with a read and how to fix it, from the SDK error's code.
fn read_error<E>(
    err: &E,
    what: &str,
    not_found_code: &str,
    not_found_fix: &str,
    denied_fix: &str,
) -> AwsReadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or_default();
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
    } else {
        AwsReadError {
            problem: format!("could not read {what}: {}", chain(err)),
            fix: "check the name, the region, and network access to the AWS API (NAT gateway or VPC endpoint)".to_owned(),
        }
    }
}
