//! Where a read goes: the regional endpoint of SSM, Secrets Manager or S3, as the AWS SDK
//! resolves it, or the endpoint the environment names (`AWS_ENDPOINT_URL_<SERVICE>`,
//! `AWS_ENDPOINT_URL`, or a profile's `endpoint_url`).
//!
//! The SDK clients of these three services would cost every hook binary 2 MB for one operation
//! each (see BENCHMARKS.md); their endpoint rules, for the cases a hook meets (every partition,
//! FIPS, dual-stack, S3 virtual-hosted and path-style buckets), are small. The tests below hold
//! this module to the SDK's own endpoint test cases.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

/// A service greenlight reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Systems Manager Parameter Store.
    Ssm,
    /// Secrets Manager.
    SecretsManager,
    /// S3.
    S3,
    /// CloudWatch (alarms, metrics).
    CloudWatch,
    /// ECS (the target service revision of an ECS-native deployment).
    Ecs,
    /// Lambda (a watch's continuation).
    Lambda,
    /// SNS (verdict notifications).
    Sns,
    /// STS (the doctor: who am I).
    Sts,
    /// IAM (the doctor: what may I do; a global service).
    Iam,
}

impl Service {
    /// The SigV4 signing name, also the endpoint's first label.
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            Service::Ssm => "ssm",
            Service::SecretsManager => "secretsmanager",
            Service::S3 => "s3",
            Service::CloudWatch => "monitoring",
            Service::Ecs => "ecs",
            Service::Lambda => "lambda",
            Service::Sns => "sns",
            Service::Sts => "sts",
            Service::Iam => "iam",
        }
    }

    /// The SDK's service id, from which `AWS_ENDPOINT_URL_<SERVICE>` and a profile's
    /// `[services]` section are named.
    pub(crate) fn service_id(self) -> &'static str {
        match self {
            Service::Ssm => "SSM",
            Service::SecretsManager => "Secrets Manager",
            Service::S3 => "S3",
            Service::CloudWatch => "CloudWatch",
            Service::Ecs => "ECS",
            Service::Lambda => "Lambda",
            Service::Sns => "SNS",
            Service::Sts => "STS",
            Service::Iam => "IAM",
        }
    }

    /// The variable that overrides this service's endpoint.
    pub(crate) fn endpoint_env(self) -> &'static str {
        match self {
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Service::S3 => "AWS_ENDPOINT_URL_S3",
            Service::CloudWatch => "AWS_ENDPOINT_URL_CLOUDWATCH",
            Service::Ecs => "AWS_ENDPOINT_URL_ECS",
            Service::Lambda => "AWS_ENDPOINT_URL_LAMBDA",
            Service::Sns => "AWS_ENDPOINT_URL_SNS",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
        }
    }
}

/// How the endpoint is chosen: the region and the SDK config's switches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolve<'a> {
    /// The region (`AWS_REGION`).
    pub region: &'a str,
    /// `AWS_USE_FIPS_ENDPOINT`.
    pub fips: bool,
    /// `AWS_USE_DUALSTACK_ENDPOINT`.
    pub dual_stack: bool,
    /// An endpoint from the environment or profile: used as is.
    pub configured: Option<String>,
}

/// DNS suffixes of a partition: the regular one and the dual-stack one.
struct Partition {
    dns: &'static str,
    dual_stack_dns: &'static str,
    kind: PartitionKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartitionKind {
    Aws,
    China,
    GovCloud,
    Other,
}

/// The partition of a region, by the region patterns of the SDK's partitions.json (`aws` is
/// the default, as there).
fn partition(region: &str) -> Partition {
    const OTHERS: [(&str, &str, &str); 5] = [
        ("us-iso-", "c2s.ic.gov", "api.aws.ic.gov"),
        ("us-isob-", "sc2s.sgov.gov", "api.aws.scloud"),
        ("us-isof-", "csp.hci.ic.gov", "api.aws.hci.ic.gov"),
        ("eu-isoe-", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"),
        ("eusc-", "amazonaws.eu", "api.amazonwebservices.eu"),
    ];
    if region.starts_with("us-gov-") {
        return Partition {
            dns: "amazonaws.com",
            dual_stack_dns: "api.aws",
            kind: PartitionKind::GovCloud,
        };
    }
    if region.starts_with("cn-") {
        return Partition {
            dns: "amazonaws.com.cn",
            dual_stack_dns: "api.amazonwebservices.com.cn",
            kind: PartitionKind::China,
        };
    }
    for (prefix, dns, dual_stack_dns) in OTHERS {
        if region.starts_with(prefix) {
            return Partition {
                dns,
                dual_stack_dns,
                kind: PartitionKind::Other,
            };
        }
    }
    Partition {
        dns: "amazonaws.com",
        dual_stack_dns: "api.aws",
        kind: PartitionKind::Aws,
    }
}

/// The region a request to `service` is signed for: the function's, except for IAM, which is
/// global and signs in its partition's first region (its endpoint, one per partition, is chosen
/// in [`json_service`]: the two global rules live here together).
pub(crate) fn signing_region(service: Service, region: &str) -> String {
    match service {
        Service::Iam if region.starts_with("cn-") => "cn-north-1".to_owned(),
        Service::Iam if region.starts_with("us-gov-") => "us-gov-west-1".to_owned(),
        Service::Iam => "us-east-1".to_owned(),
        _ => region.to_owned(),
    }
}

/// Why no endpoint could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointError(pub String);

/// The base URL of a JSON service (SSM, Secrets Manager, CloudWatch, ECS): requests are `POST /`.
pub(crate) fn json_service(service: Service, resolve: &Resolve<'_>) -> Result<Url, EndpointError> {
    if let Some(configured) = resolve.configured.as_deref() {
        return parse_configured(service, configured);
    }
    let region = checked_region(service, resolve.region)?;
    let p = partition(region);
    let name = service.signing_name();
    // IAM is global: one endpoint per partition.
    if service == Service::Iam {
        let url = match p.kind {
            PartitionKind::China => "https://iam.cn-north-1.amazonaws.com.cn".to_owned(),
            PartitionKind::GovCloud => "https://iam.us-gov.amazonaws.com".to_owned(),
            _ => format!("https://iam.{}", p.dns),
        };
        return parse_resolved(service, &url);
    }
    let url = match (service, resolve.fips, resolve.dual_stack) {
        // SSM in GovCloud is FIPS at its regular name.
        (Service::Ssm, true, false) if p.kind == PartitionKind::GovCloud => {
            format!("https://{name}.{region}.{}", p.dns)
        }
        // Secrets Manager's regular endpoints already serve IPv6 in these partitions.
        (Service::SecretsManager, fips, true)
            if matches!(p.kind, PartitionKind::Aws | PartitionKind::GovCloud)
                || (p.kind == PartitionKind::China && !fips) =>
        {
            format!("https://{name}{}.{region}.{}", fips_suffix(fips), p.dns)
        }
        (_, fips, true) => format!(
            "https://{name}{}.{region}.{}",
            fips_suffix(fips),
            p.dual_stack_dns
        ),
        (_, fips, false) => format!("https://{name}{}.{region}.{}", fips_suffix(fips), p.dns),
    };
    parse_resolved(service, &url)
}

/// The URL of an S3 object: virtual-hosted (`https://BUCKET.s3.REGION.amazonaws.com/KEY`) when
/// the bucket name can be a host name, path-style otherwise and always against a configured
/// endpoint (local endpoints have no bucket subdomains).
pub(crate) fn s3_object(
    resolve: &Resolve<'_>,
    bucket: &str,
    key: &str,
) -> Result<Url, EndpointError> {
    let key = encode_key(key);
    if let Some(configured) = resolve.configured.as_deref() {
        let base = parse_configured(Service::S3, configured)?;
        let url = format!(
            "{}/{}/{key}",
            base.as_str().trim_end_matches('/'),
            encode_segment(bucket)
        );
        return parse_resolved(Service::S3, &url);
    }
    let region = checked_region(Service::S3, resolve.region)?;
    let p = partition(region);
    let host = format!(
        "s3{}{}.{region}.{}",
        fips_suffix(resolve.fips),
        if resolve.dual_stack { ".dualstack" } else { "" },
        p.dns
    );
    let url = if virtual_hostable(bucket) {
        format!("https://{bucket}.{host}/{key}")
    } else {
        format!("https://{host}/{}/{key}", encode_segment(bucket))
    };
    parse_resolved(Service::S3, &url)
}

fn fips_suffix(fips: bool) -> &'static str {
    if fips { "-fips" } else { "" }
}

fn checked_region(service: Service, region: &str) -> Result<&str, EndpointError> {
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(region)
    } else if region.is_empty() {
        Err(EndpointError(format!(
            "no AWS region is set, so there is no {} endpoint to read from: set AWS_REGION \
             (Lambda sets it), or {} to the endpoint itself",
            service.service_id(),
            service.endpoint_env()
        )))
    } else {
        Err(EndpointError(format!(
            "{region:?} is not an AWS region name: set AWS_REGION to one such as us-east-1"
        )))
    }
}

fn parse_configured(service: Service, configured: &str) -> Result<Url, EndpointError> {
    match Url::parse(configured) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(EndpointError(format!(
            "the configured {} endpoint {configured:?} is not an http(s) URL: fix {} (or \
             AWS_ENDPOINT_URL / the profile's endpoint_url), e.g. https://{}.us-east-1.amazonaws.com",
            service.service_id(),
            service.endpoint_env(),
            service.signing_name()
        ))),
    }
}

fn parse_resolved(service: Service, url: &str) -> Result<Url, EndpointError> {
    Url::parse(url).map_err(|err| {
        EndpointError(format!(
            "cannot form the {} endpoint {url}: {err}; set {} to the endpoint to use",
            service.service_id(),
            service.endpoint_env()
        ))
    })
}

/// S3's rule for a bucket in the host name: a DNS label of 3 to 63 lowercase letters, digits
/// and hyphens, starting and ending with a letter or digit, and not shaped like an IP
/// address. Dotted names go path-style: a wildcard certificate covers one label only.
fn virtual_hostable(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// What SigV4 leaves unencoded in a path: letters, digits and `-._~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, UNRESERVED).to_string()
}

/// An S3 key in a path: each segment encoded once, the slashes kept (S3 signs the path as
/// sent, without normalising it).
fn encode_key(key: &str) -> String {
    key.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(region: &str, fips: bool, dual_stack: bool) -> Resolve<'_> {
        Resolve {
            region,
            fips,
            dual_stack,
            configured: None,
        }
    }

    /// Every region case of the endpoint tests in aws-sdk-ssm 1.133 and
    /// aws-sdk-secretsmanager 1.125 (`src/config/endpoint.rs`), and ECS's common ones:
    /// (service, region, FIPS,
    /// dual-stack, the URL the SDK resolves).
    #[test]
    fn json_services_resolve_as_the_sdk_does() {
        // One case a line, as the tables read in the SDK.
        #[rustfmt::skip]
        let cases = [
            ("ssm", "af-south-1", false, false, "https://ssm.af-south-1.amazonaws.com"),
            ("ssm", "ap-east-1", false, false, "https://ssm.ap-east-1.amazonaws.com"),
            ("ssm", "ap-northeast-1", false, false, "https://ssm.ap-northeast-1.amazonaws.com"),
            ("ssm", "ap-northeast-2", false, false, "https://ssm.ap-northeast-2.amazonaws.com"),
            ("ssm", "ap-northeast-3", false, false, "https://ssm.ap-northeast-3.amazonaws.com"),
            ("ssm", "ap-south-1", false, false, "https://ssm.ap-south-1.amazonaws.com"),
            ("ssm", "ap-southeast-1", false, false, "https://ssm.ap-southeast-1.amazonaws.com"),
            ("ssm", "ap-southeast-2", false, false, "https://ssm.ap-southeast-2.amazonaws.com"),
            ("ssm", "ap-southeast-3", false, false, "https://ssm.ap-southeast-3.amazonaws.com"),
            ("ssm", "ca-central-1", false, false, "https://ssm.ca-central-1.amazonaws.com"),
            ("ssm", "ca-central-1", true, false, "https://ssm-fips.ca-central-1.amazonaws.com"),
            ("ssm", "eu-central-1", false, false, "https://ssm.eu-central-1.amazonaws.com"),
            ("ssm", "eu-north-1", false, false, "https://ssm.eu-north-1.amazonaws.com"),
            ("ssm", "eu-south-1", false, false, "https://ssm.eu-south-1.amazonaws.com"),
            ("ssm", "eu-west-1", false, false, "https://ssm.eu-west-1.amazonaws.com"),
            ("ssm", "eu-west-2", false, false, "https://ssm.eu-west-2.amazonaws.com"),
            ("ssm", "eu-west-3", false, false, "https://ssm.eu-west-3.amazonaws.com"),
            ("ssm", "me-south-1", false, false, "https://ssm.me-south-1.amazonaws.com"),
            ("ssm", "sa-east-1", false, false, "https://ssm.sa-east-1.amazonaws.com"),
            ("ssm", "us-east-1", false, false, "https://ssm.us-east-1.amazonaws.com"),
            ("ssm", "us-east-1", true, false, "https://ssm-fips.us-east-1.amazonaws.com"),
            ("ssm", "us-east-2", false, false, "https://ssm.us-east-2.amazonaws.com"),
            ("ssm", "us-east-2", true, false, "https://ssm-fips.us-east-2.amazonaws.com"),
            ("ssm", "us-west-1", false, false, "https://ssm.us-west-1.amazonaws.com"),
            ("ssm", "us-west-1", true, false, "https://ssm-fips.us-west-1.amazonaws.com"),
            ("ssm", "us-west-2", false, false, "https://ssm.us-west-2.amazonaws.com"),
            ("ssm", "us-west-2", true, false, "https://ssm-fips.us-west-2.amazonaws.com"),
            ("ssm", "us-east-1", true, true, "https://ssm-fips.us-east-1.api.aws"),
            ("ssm", "us-east-1", false, true, "https://ssm.us-east-1.api.aws"),
            ("ssm", "cn-north-1", false, false, "https://ssm.cn-north-1.amazonaws.com.cn"),
            ("ssm", "cn-northwest-1", false, false, "https://ssm.cn-northwest-1.amazonaws.com.cn"),
            ("ssm", "cn-north-1", true, true, "https://ssm-fips.cn-north-1.api.amazonwebservices.com.cn"),
            ("ssm", "cn-north-1", true, false, "https://ssm-fips.cn-north-1.amazonaws.com.cn"),
            ("ssm", "cn-north-1", false, true, "https://ssm.cn-north-1.api.amazonwebservices.com.cn"),
            ("ssm", "us-gov-east-1", false, false, "https://ssm.us-gov-east-1.amazonaws.com"),
            ("ssm", "us-gov-east-1", true, false, "https://ssm.us-gov-east-1.amazonaws.com"),
            ("ssm", "us-gov-west-1", false, false, "https://ssm.us-gov-west-1.amazonaws.com"),
            ("ssm", "us-gov-west-1", true, false, "https://ssm.us-gov-west-1.amazonaws.com"),
            ("ssm", "us-gov-east-1", true, true, "https://ssm-fips.us-gov-east-1.api.aws"),
            ("ssm", "us-gov-east-1", false, true, "https://ssm.us-gov-east-1.api.aws"),
            ("ssm", "us-iso-east-1", false, false, "https://ssm.us-iso-east-1.c2s.ic.gov"),
            ("ssm", "us-iso-east-1", true, false, "https://ssm-fips.us-iso-east-1.c2s.ic.gov"),
            ("ssm", "us-isob-east-1", false, false, "https://ssm.us-isob-east-1.sc2s.sgov.gov"),
            ("ssm", "us-isob-east-1", true, false, "https://ssm-fips.us-isob-east-1.sc2s.sgov.gov"),
            ("secretsmanager", "af-south-1", false, false, "https://secretsmanager.af-south-1.amazonaws.com"),
            ("secretsmanager", "ap-east-1", false, false, "https://secretsmanager.ap-east-1.amazonaws.com"),
            ("secretsmanager", "ap-northeast-1", false, false, "https://secretsmanager.ap-northeast-1.amazonaws.com"),
            ("secretsmanager", "ap-northeast-2", false, false, "https://secretsmanager.ap-northeast-2.amazonaws.com"),
            ("secretsmanager", "ap-northeast-3", false, false, "https://secretsmanager.ap-northeast-3.amazonaws.com"),
            ("secretsmanager", "ap-south-1", false, false, "https://secretsmanager.ap-south-1.amazonaws.com"),
            ("secretsmanager", "ap-southeast-1", false, false, "https://secretsmanager.ap-southeast-1.amazonaws.com"),
            ("secretsmanager", "ap-southeast-2", false, false, "https://secretsmanager.ap-southeast-2.amazonaws.com"),
            ("secretsmanager", "ap-southeast-3", false, false, "https://secretsmanager.ap-southeast-3.amazonaws.com"),
            ("secretsmanager", "ca-central-1", false, false, "https://secretsmanager.ca-central-1.amazonaws.com"),
            ("secretsmanager", "ca-central-1", true, false, "https://secretsmanager-fips.ca-central-1.amazonaws.com"),
            ("secretsmanager", "eu-central-1", false, false, "https://secretsmanager.eu-central-1.amazonaws.com"),
            ("secretsmanager", "eu-north-1", false, false, "https://secretsmanager.eu-north-1.amazonaws.com"),
            ("secretsmanager", "eu-south-1", false, false, "https://secretsmanager.eu-south-1.amazonaws.com"),
            ("secretsmanager", "eu-west-1", false, false, "https://secretsmanager.eu-west-1.amazonaws.com"),
            ("secretsmanager", "eu-west-2", false, false, "https://secretsmanager.eu-west-2.amazonaws.com"),
            ("secretsmanager", "eu-west-3", false, false, "https://secretsmanager.eu-west-3.amazonaws.com"),
            ("secretsmanager", "me-south-1", false, false, "https://secretsmanager.me-south-1.amazonaws.com"),
            ("secretsmanager", "sa-east-1", false, false, "https://secretsmanager.sa-east-1.amazonaws.com"),
            ("secretsmanager", "us-east-1", false, false, "https://secretsmanager.us-east-1.amazonaws.com"),
            ("secretsmanager", "us-east-1", true, false, "https://secretsmanager-fips.us-east-1.amazonaws.com"),
            ("secretsmanager", "us-east-2", false, false, "https://secretsmanager.us-east-2.amazonaws.com"),
            ("secretsmanager", "us-east-2", true, false, "https://secretsmanager-fips.us-east-2.amazonaws.com"),
            ("secretsmanager", "us-west-1", false, false, "https://secretsmanager.us-west-1.amazonaws.com"),
            ("secretsmanager", "us-west-1", true, false, "https://secretsmanager-fips.us-west-1.amazonaws.com"),
            ("secretsmanager", "us-west-2", false, false, "https://secretsmanager.us-west-2.amazonaws.com"),
            ("secretsmanager", "us-west-2", true, false, "https://secretsmanager-fips.us-west-2.amazonaws.com"),
            ("secretsmanager", "us-east-1", true, true, "https://secretsmanager-fips.us-east-1.amazonaws.com"),
            ("secretsmanager", "us-east-1", false, true, "https://secretsmanager.us-east-1.amazonaws.com"),
            ("secretsmanager", "cn-north-1", false, false, "https://secretsmanager.cn-north-1.amazonaws.com.cn"),
            ("secretsmanager", "cn-northwest-1", false, false, "https://secretsmanager.cn-northwest-1.amazonaws.com.cn"),
            ("secretsmanager", "cn-north-1", true, true, "https://secretsmanager-fips.cn-north-1.api.amazonwebservices.com.cn"),
            ("secretsmanager", "cn-north-1", true, false, "https://secretsmanager-fips.cn-north-1.amazonaws.com.cn"),
            ("secretsmanager", "cn-north-1", false, true, "https://secretsmanager.cn-north-1.amazonaws.com.cn"),
            ("secretsmanager", "us-gov-east-1", false, false, "https://secretsmanager.us-gov-east-1.amazonaws.com"),
            ("secretsmanager", "us-gov-east-1", true, false, "https://secretsmanager-fips.us-gov-east-1.amazonaws.com"),
            ("secretsmanager", "us-gov-west-1", false, false, "https://secretsmanager.us-gov-west-1.amazonaws.com"),
            ("secretsmanager", "us-gov-west-1", true, false, "https://secretsmanager-fips.us-gov-west-1.amazonaws.com"),
            ("secretsmanager", "us-gov-east-1", true, true, "https://secretsmanager-fips.us-gov-east-1.amazonaws.com"),
            ("secretsmanager", "us-gov-east-1", false, true, "https://secretsmanager.us-gov-east-1.amazonaws.com"),
            ("secretsmanager", "us-iso-east-1", false, false, "https://secretsmanager.us-iso-east-1.c2s.ic.gov"),
            ("secretsmanager", "us-iso-east-1", true, false, "https://secretsmanager-fips.us-iso-east-1.c2s.ic.gov"),
            ("secretsmanager", "us-isob-east-1", true, false, "https://secretsmanager-fips.us-isob-east-1.sc2s.sgov.gov"),
            ("secretsmanager", "us-isob-east-1", false, false, "https://secretsmanager.us-isob-east-1.sc2s.sgov.gov"),
            // ECS, from its SDKs' endpoint tests: the generic rule.
            ("ecs", "us-east-1", false, false, "https://ecs.us-east-1.amazonaws.com"),
            ("ecs", "us-east-1", true, false, "https://ecs-fips.us-east-1.amazonaws.com"),
            ("ecs", "us-east-1", false, true, "https://ecs.us-east-1.api.aws"),
            ("ecs", "us-gov-west-1", true, false, "https://ecs-fips.us-gov-west-1.amazonaws.com"),
            ("ecs", "cn-north-1", false, false, "https://ecs.cn-north-1.amazonaws.com.cn"),
            ("lambda", "us-east-1", false, false, "https://lambda.us-east-1.amazonaws.com"),
            ("lambda", "us-east-1", true, false, "https://lambda-fips.us-east-1.amazonaws.com"),
            ("lambda", "us-east-1", false, true, "https://lambda.us-east-1.api.aws"),
            ("sns", "us-east-1", false, false, "https://sns.us-east-1.amazonaws.com"),
            ("sns", "us-east-1", true, false, "https://sns-fips.us-east-1.amazonaws.com"),
            ("sts", "eu-west-1", false, false, "https://sts.eu-west-1.amazonaws.com"),
            ("iam", "eu-west-1", false, false, "https://iam.amazonaws.com"),
            ("iam", "cn-north-1", false, false, "https://iam.cn-north-1.amazonaws.com.cn"),
        ];
        for (service, region, fips, dual_stack, wanted) in cases {
            let service = match service {
                "ssm" => Service::Ssm,
                "ecs" => Service::Ecs,
                "lambda" => Service::Lambda,
                "sns" => Service::Sns,
                "sts" => Service::Sts,
                "iam" => Service::Iam,
                _ => Service::SecretsManager,
            };
            let url = json_service(service, &resolve(region, fips, dual_stack)).unwrap();
            assert_eq!(
                url.as_str().trim_end_matches('/'),
                wanted,
                "{service:?} {region} fips={fips} dual_stack={dual_stack}"
            );
        }
    }

    /// The plain-bucket cases of aws-sdk-s3 1.157's endpoint tests (no ARNs, accelerate,
    /// S3 Express or forced path style): (region, FIPS, dual-stack, bucket, URL).
    #[test]
    fn s3_buckets_resolve_as_the_sdk_does() {
        // One case a line, as the tables read in the SDK.
        #[rustfmt::skip]
        let cases = [
            ("us-west-2", false, true, "99_ab", "https://s3.dualstack.us-west-2.amazonaws.com/99_ab"),
            ("us-west-2", false, false, "example.com#", "https://s3.us-west-2.amazonaws.com/example.com%23"),
            ("us-west-2", false, false, "bucket name", "https://s3.us-west-2.amazonaws.com/bucket%20name"),
            ("us-east-1", false, false, "bucket.name", "https://s3.us-east-1.amazonaws.com/bucket.name"),
            ("us-east-1", false, false, "aaa", "https://aaa.s3.us-east-1.amazonaws.com"),
            ("us-east-1", false, false, "aa", "https://s3.us-east-1.amazonaws.com/aa"),
            ("us-east-1", false, false, "BucketName", "https://s3.us-east-1.amazonaws.com/BucketName"),
            ("us-east-1", true, true, "bucket!", "https://s3-fips.dualstack.us-east-1.amazonaws.com/bucket%21"),
            ("us-west-2", false, false, "bucket-name", "https://bucket-name.s3.us-west-2.amazonaws.com"),
            ("us-west-2", false, true, "bucket-name", "https://bucket-name.s3.dualstack.us-west-2.amazonaws.com"),
            ("us-west-2", true, false, "bucket-name", "https://bucket-name.s3-fips.us-west-2.amazonaws.com"),
            ("us-west-2", true, true, "bucket-name", "https://bucket-name.s3-fips.dualstack.us-west-2.amazonaws.com"),
            ("cn-north-1", false, false, "bucket-name", "https://bucket-name.s3.cn-north-1.amazonaws.com.cn"),
            ("cn-north-1", false, true, "bucket-name", "https://bucket-name.s3.dualstack.cn-north-1.amazonaws.com.cn"),
            ("af-south-1", false, false, "bucket-name", "https://bucket-name.s3.af-south-1.amazonaws.com"),
            ("af-south-1", false, true, "bucket-name", "https://bucket-name.s3.dualstack.af-south-1.amazonaws.com"),
            ("af-south-1", true, false, "bucket-name", "https://bucket-name.s3-fips.af-south-1.amazonaws.com"),
            ("af-south-1", true, true, "bucket-name", "https://bucket-name.s3-fips.dualstack.af-south-1.amazonaws.com"),
            ("us-gov-west-1", true, false, "bucket.with.dots", "https://s3-fips.us-gov-west-1.amazonaws.com/bucket.with.dots"),
            ("us-west-2", false, false, "99a_b", "https://s3.us-west-2.amazonaws.com/99a_b"),
            ("cn-north-1", false, false, "99a_b", "https://s3.cn-north-1.amazonaws.com.cn/99a_b"),
            ("af-south-1", false, false, "99a_b", "https://s3.af-south-1.amazonaws.com/99a_b"),
        ];
        for (region, fips, dual_stack, bucket, wanted) in cases {
            let url = s3_object(&resolve(region, fips, dual_stack), bucket, "").unwrap();
            assert_eq!(
                url.as_str().trim_end_matches('/'),
                wanted,
                "{region} fips={fips} dual_stack={dual_stack} bucket={bucket}"
            );
        }
    }

    #[test]
    fn s3_keys_are_encoded_once_per_segment() {
        let url = s3_object(
            &resolve("eu-west-1", false, false),
            "payments-config",
            "env/prod config+v1!.yaml",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://payments-config.s3.eu-west-1.amazonaws.com/env/prod%20config%2Bv1%21.yaml"
        );
    }

    #[test]
    fn a_configured_endpoint_wins_and_s3_goes_path_style_there() {
        let local = Resolve {
            configured: Some("http://127.0.0.1:4566".to_owned()),
            ..resolve("us-east-1", true, true)
        };
        assert_eq!(
            json_service(Service::Ssm, &local).unwrap().as_str(),
            "http://127.0.0.1:4566/"
        );
        assert_eq!(
            s3_object(&local, "cfg", "a/b.yaml").unwrap().as_str(),
            "http://127.0.0.1:4566/cfg/a/b.yaml"
        );
        let bad = Resolve {
            configured: Some("localhost:4566".to_owned()),
            ..resolve("us-east-1", false, false)
        };
        let err = json_service(Service::SecretsManager, &bad).unwrap_err().0;
        assert!(err.contains("AWS_ENDPOINT_URL_SECRETS_MANAGER"), "{err}");
    }

    #[test]
    fn a_missing_or_odd_region_says_how_to_fix_it() {
        let err = json_service(Service::Ssm, &resolve("", false, false))
            .unwrap_err()
            .0;
        assert!(
            err.contains("AWS_REGION") && err.contains("AWS_ENDPOINT_URL_SSM"),
            "{err}"
        );
        let err = s3_object(&resolve("evil.example.com/", false, false), "b", "k")
            .unwrap_err()
            .0;
        assert!(err.contains("not an AWS region"), "{err}");
    }

    #[test]
    fn other_partitions_take_their_suffixes() {
        for (region, wanted) in [
            ("eusc-de-east-1", "https://ssm.eusc-de-east-1.amazonaws.eu/"),
            (
                "us-isof-south-1",
                "https://ssm.us-isof-south-1.csp.hci.ic.gov/",
            ),
            (
                "eu-isoe-west-1",
                "https://ssm.eu-isoe-west-1.cloud.adc-e.uk/",
            ),
            ("mx-central-1", "https://ssm.mx-central-1.amazonaws.com/"),
        ] {
            let url = json_service(Service::Ssm, &resolve(region, false, false)).unwrap();
            assert_eq!(url.as_str(), wanted);
        }
    }
}
