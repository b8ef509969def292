//! Every AWS operation greenlight calls, one descriptor each, and the one path they all take:
//! build the request for the operation's protocol, send it signed ([`super::call`]), and turn a
//! failure into a read error that says what to fix, from the descriptor. A new operation is a
//! descriptor here and a response type beside its caller.

use bytes::Bytes;
use http::Method;
use url::Url;

use super::call::{self, Call, Failure, Reply};
use super::endpoint::{self, EndpointError, Resolve, Service};
use super::{Aws, AwsReadError};

/// How an operation is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// awsJson 1.0: `POST /`, the operation in `X-Amz-Target` (CloudWatch).
    Json10,
    /// awsJson 1.1: the same, for SSM, Secrets Manager and ECS.
    Json11,
    /// The query protocol: `POST /` with a form carrying `Action` and `Version`; XML answers.
    Query {
        /// The API version the form names.
        version: &'static str,
    },
    /// REST: a method and a path of the operation's own (S3 `GetObject`, Lambda `Invoke`).
    Rest,
}

/// One operation: where it goes, how it is spoken, and what its failures mean.
#[derive(Debug)]
pub(crate) struct Operation {
    /// The service (signing name, endpoint).
    pub service: Service,
    /// How it is spoken.
    pub protocol: Protocol,
    /// `X-Amz-Target` (JSON), `Action` (query), or the operation's name (REST).
    pub action: &'static str,
    /// The largest answer read.
    pub max_answer: usize,
    /// The error code that means the thing read does not exist.
    pub not_found: &'static str,
    /// What to do then.
    pub not_found_fix: &'static str,
    /// What to do when access is denied; `{resource}` is replaced by the resource.
    pub denied_fix: &'static str,
    /// What to do when the answer is larger than `max_answer`.
    pub too_large_fix: &'static str,
}

const JSON_ANSWER: usize = 256 * 1024;
const NOT_AWS: &str = "check that the endpoint is the AWS service (AWS_ENDPOINT_URL_* variables)";

pub(crate) const SSM_GET_PARAMETER: Operation = Operation {
    service: Service::Ssm,
    protocol: Protocol::Json11,
    action: "AmazonSSM.GetParameter",
    max_answer: JSON_ANSWER,
    not_found: "ParameterNotFound",
    not_found_fix: "create the parameter, or fix the name",
    denied_fix: "the function's role needs ssm:GetParameter on parameter {resource}",
    too_large_fix: NOT_AWS,
};

pub(crate) const SECRETS_GET_SECRET_VALUE: Operation = Operation {
    service: Service::SecretsManager,
    protocol: Protocol::Json11,
    action: "secretsmanager.GetSecretValue",
    max_answer: JSON_ANSWER,
    not_found: "ResourceNotFoundException",
    not_found_fix: "create the secret, or fix its id",
    denied_fix: "the function's role needs secretsmanager:GetSecretValue on {resource}",
    too_large_fix: NOT_AWS,
};

pub(crate) const S3_GET_OBJECT: Operation = Operation {
    service: Service::S3,
    protocol: Protocol::Rest,
    action: "GetObject",
    // The caller's limit applies (`Payload::Rest`'s `max_answer`).
    max_answer: 0,
    not_found: "NoSuchKey",
    not_found_fix: "upload the config there, or fix the bucket and key",
    denied_fix: "the function's role needs s3:GetObject on {resource}, and the bucket must \
                 belong to the expected owner (GREENLIGHT_CONFIG_BUCKET_OWNER)",
    too_large_fix: "a greenlight config is a few kilobytes: check the key",
};

const CLOUDWATCH_DENIED: &str = "the function's role needs cloudwatch:DescribeAlarms and \
                                 cloudwatch:GetMetricData (template parameter EnableMetricChecks)";

pub(crate) const CLOUDWATCH_DESCRIBE_ALARMS: Operation = Operation {
    service: Service::CloudWatch,
    protocol: Protocol::Json10,
    action: "GraniteServiceVersion20100801.DescribeAlarms",
    max_answer: JSON_ANSWER,
    not_found: "ResourceNotFound",
    not_found_fix: "check the alarm names",
    denied_fix: CLOUDWATCH_DENIED,
    too_large_fix: NOT_AWS,
};

pub(crate) const CLOUDWATCH_GET_METRIC_DATA: Operation = Operation {
    service: Service::CloudWatch,
    protocol: Protocol::Json10,
    action: "GraniteServiceVersion20100801.GetMetricData",
    max_answer: JSON_ANSWER,
    not_found: "ResourceNotFound",
    not_found_fix: "check the namespace, metric name and dimensions",
    denied_fix: CLOUDWATCH_DENIED,
    too_large_fix: NOT_AWS,
};

pub(crate) const ECS_DESCRIBE_SERVICE_REVISIONS: Operation = Operation {
    service: Service::Ecs,
    protocol: Protocol::Json11,
    action: "AmazonEC2ContainerServiceV20141113.DescribeServiceRevisions",
    max_answer: JSON_ANSWER,
    not_found: "ServiceNotFoundException",
    not_found_fix: "check the event's targetServiceRevisionArn",
    denied_fix: "the function's role needs ecs:DescribeServiceRevisions on the service's \
                 revisions (template parameters EnableMetricChecks and CreateEcsHookRole)",
    too_large_fix: NOT_AWS,
};

pub(crate) const LAMBDA_INVOKE: Operation = Operation {
    service: Service::Lambda,
    protocol: Protocol::Rest,
    action: "Invoke",
    max_answer: 64 * 1024,
    not_found: "ResourceNotFoundException",
    not_found_fix: "check AWS_LAMBDA_FUNCTION_NAME (Lambda sets it)",
    denied_fix: "the function's role needs lambda:InvokeFunction on the function itself \
                 (template.yaml grants it)",
    too_large_fix: NOT_AWS,
};

pub(crate) const SNS_PUBLISH: Operation = Operation {
    service: Service::Sns,
    protocol: Protocol::Query {
        version: "2010-03-31",
    },
    action: "Publish",
    max_answer: 64 * 1024,
    not_found: "NotFound",
    not_found_fix: "create the topic in the function's region, or fix notify.sns_topic",
    denied_fix: "the function's role needs sns:Publish on the topic (template parameter \
                 NotificationTopicArn)",
    too_large_fix: NOT_AWS,
};

pub(crate) const STS_GET_CALLER_IDENTITY: Operation = Operation {
    service: Service::Sts,
    protocol: Protocol::Query {
        version: "2011-06-15",
    },
    action: "GetCallerIdentity",
    max_answer: JSON_ANSWER,
    not_found: "NotFound",
    not_found_fix: "check the function's credentials",
    denied_fix: "nothing should deny GetCallerIdentity: check the role's permissions boundary",
    too_large_fix: NOT_AWS,
};

pub(crate) const IAM_SIMULATE_PRINCIPAL_POLICY: Operation = Operation {
    service: Service::Iam,
    protocol: Protocol::Query {
        version: "2010-05-08",
    },
    action: "SimulatePrincipalPolicy",
    max_answer: JSON_ANSWER,
    not_found: "NoSuchEntity",
    not_found_fix: "the role's name has a path: check it in IAM",
    denied_fix: "the role needs iam:SimulatePrincipalPolicy on itself to check its own \
                 permissions (template.yaml grants it)",
    too_large_fix: NOT_AWS,
};

/// Where a REST operation's URL comes from, given the endpoint settings.
pub(crate) type UrlFor<'a> =
    Box<dyn FnOnce(&Resolve<'_>) -> Result<Url, EndpointError> + Send + 'a>;

/// What one call sends.
pub(crate) enum Payload<'a> {
    /// A JSON document (awsJson protocols).
    Json(serde_json::Value),
    /// The form's fields besides `Action` and `Version` (query protocol).
    Form(Vec<(String, String)>),
    /// A REST request of the operation's own.
    Rest {
        url: UrlFor<'a>,
        /// GET or POST.
        method: Method,
        /// Headers to send and sign.
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        /// The largest answer read.
        max_answer: usize,
    },
}

/// What a call reads, for its messages.
pub(crate) struct Subject<'a> {
    /// `SSM parameter /x`: what the messages call it.
    pub what: &'a str,
    /// What IAM calls it, for the denied fix's `{resource}`.
    pub resource: &'a str,
}

impl Aws {
    /// Call `op` with `payload`: the one path every AWS operation takes.
    pub(crate) async fn call(
        &self,
        op: &Operation,
        subject: &Subject<'_>,
        payload: Payload<'_>,
    ) -> Result<Reply, AwsReadError> {
        self.send(op, subject.what, payload)
            .await
            .map_err(|failure| op.read_error(failure, subject))
    }

    async fn send(
        &self,
        op: &Operation,
        what: &str,
        payload: Payload<'_>,
    ) -> Result<Reply, Failure> {
        let sdk = self.sdk().await;
        let resolve = super::resolve(sdk, op.service);
        let (url, method, headers, body, max_bytes) = match payload {
            Payload::Json(document) => {
                let content_type = match op.protocol {
                    Protocol::Json10 => "application/x-amz-json-1.0",
                    _ => "application/x-amz-json-1.1",
                };
                let headers = vec![
                    ("content-type", content_type.to_owned()),
                    ("x-amz-target", op.action.to_owned()),
                ];
                let url = endpoint::json_service(op.service, &resolve);
                let body = Bytes::from(document.to_string());
                (url, Method::POST, headers, body, op.max_answer)
            }
            Payload::Form(fields) => {
                let version = match op.protocol {
                    Protocol::Query { version } => version,
                    _ => "",
                };
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("Action", op.action)
                    .append_pair("Version", version);
                for (name, value) in &fields {
                    form.append_pair(name, value);
                }
                let headers = vec![(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
                )];
                let url = endpoint::json_service(op.service, &resolve);
                let body = Bytes::from(form.finish());
                (url, Method::POST, headers, body, op.max_answer)
            }
            Payload::Rest {
                url,
                method,
                headers,
                body,
                max_answer,
            } => (url(&resolve), method, headers, body, max_answer),
        };
        let url = url.map_err(|err| Failure::Endpoint(err.0))?;
        let call = Call {
            service: op.service,
            method,
            url,
            headers,
            body,
            max_bytes,
            what,
        };
        call::send(sdk, self.client()?, &call).await
    }
}

impl Operation {
    /// A failure as the person who must fix it reads it, from this operation's descriptor.
    pub(crate) fn read_error(&self, failure: Failure, subject: &Subject<'_>) -> AwsReadError {
        let what = subject.what;
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
                if code == self.not_found || code == "NotFound" || code == "NoSuchBucket" {
                    AwsReadError {
                        problem: format!("{what} does not exist ({code})"),
                        fix: self.not_found_fix.to_owned(),
                    }
                } else if code.contains("AccessDenied") {
                    AwsReadError {
                        problem: format!("access to {what} was denied ({code})"),
                        fix: self.denied_fix.replace("{resource}", subject.resource),
                    }
                } else if let Some(region) = bucket_region.filter(|_| {
                    status == 301
                        || code == "PermanentRedirect"
                        || code == "AuthorizationHeaderMalformed"
                }) {
                    AwsReadError {
                        problem: format!(
                            "{what} is in region {region}, not the function's ({code})"
                        ),
                        fix: format!(
                            "keep the config bucket in the function's region, or set \
                             AWS_ENDPOINT_URL_S3=https://s3.{region}.amazonaws.com"
                        ),
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
                fix: "check network access to the AWS API from the function (NAT gateway or \
                      VPC endpoint) and the AWS_ENDPOINT_URL_* variables"
                    .to_owned(),
            },
            Failure::TooLarge { limit } => AwsReadError {
                problem: format!("{what} is over the {limit}-byte limit"),
                fix: self.too_large_fix.to_owned(),
            },
            Failure::Endpoint(why) => AwsReadError {
                problem: format!("could not read {what}: {why}"),
                fix: "set AWS_REGION, or the endpoint variable named above".to_owned(),
            },
            Failure::Credentials(why) => AwsReadError {
                problem: format!("could not read {what}: {why}"),
                fix: "give the function (or your shell) AWS credentials and a region: the \
                      Lambda role, or AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_REGION"
                    .to_owned(),
            },
        }
    }
}
