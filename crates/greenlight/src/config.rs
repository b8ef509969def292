//! What the user wrote: the YAML/JSON config, parsed and validated once per cold start.
//!
//! Parsing is strict (unknown keys are errors) because a typo such as `tiemout:` silently falling
//! back to a default is how a gate ends up checking nothing.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sha2::Digest as _;
use url::Url;

use crate::error::ConfigError;
use crate::stage::Stage;

/// The most requests one probe may send to each side.
pub const MAX_PROBE_REQUESTS: u64 = 1_000_000;
/// The most requests one probe may have in flight.
pub const MAX_PROBE_CONCURRENCY: usize = 256;
/// The fewest samples per side the Mann-Whitney judge accepts.
pub const MIN_JUDGE_SAMPLES: u64 = 50;

/// The environment variable that holds the config (the document itself, or `file:PATH`).
pub const CONFIG_ENV: &str = "GREENLIGHT_CONFIG";

/// The whole config: targets, defaults and the checks of each stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named base URLs (`test`, `prod`, …).
    pub targets: BTreeMap<String, Target>,
    /// Defaults for every check.
    #[serde(default)]
    pub defaults: Defaults,
    /// The checks of each stage.
    #[serde(default)]
    pub stages: Stages,
    /// Named secrets, resolved once per cold start and usable as `{{secrets.NAME}}`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
}

/// Where a secret's value comes from: exactly one of the three.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the function (or the shell running the CLI).
    pub env: Option<String>,
    /// A Secrets Manager secret id or ARN (its SecretString).
    pub secretsmanager: Option<String>,
    /// An SSM SecureString parameter name.
    pub ssm: Option<String>,
}

/// A listener to send requests to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Base URL, e.g. `https://alb.internal.example.com:8443`.
    pub url: TargetUrl,
    /// Host header and TLS server name, when the certificate is for a public name the URL does not carry.
    pub host: Option<String>,
    /// An extra root certificate (PEM) to trust, beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout for this target (overrides `defaults.timeout`).
    pub timeout: Option<Dur>,
    /// Turn TLS certificate verification off. Logged as a warning on every run.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
}

/// Defaults that apply to every check unless it says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Per-request timeout.
    pub timeout: Dur,
    /// Extra attempts of a failing check, while green warms up.
    pub retries: u32,
    /// Delay before the first retry; doubles after each further one.
    pub retry_delay: Dur,
    /// Time for a whole stage when the Lambda deadline is unknown (CLI, local emulators).
    pub budget: Dur,
    /// Time kept back from the Lambda deadline for sending the status report.
    pub report_reserve: Dur,
    /// The most bytes of a response body that are read; a larger body fails the check.
    pub max_body_bytes: u64,
    /// The most checks of a stage that run at once.
    pub concurrency: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: Dur(Duration::from_secs(5)),
            retries: 2,
            retry_delay: Dur(Duration::from_secs(1)),
            budget: Dur(Duration::from_secs(120)),
            report_reserve: Dur(Duration::from_secs(10)),
            max_body_bytes: 1024 * 1024,
            // Enough that a realistic stage runs all at once: its time is its slowest check.
            concurrency: 64,
        }
    }
}

/// The checks of each stage, keyed by the CodeDeploy hook name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// Checks for `AfterAllowTestTraffic`.
    #[serde(rename = "AfterAllowTestTraffic")]
    pub after_allow_test_traffic: Option<StageConfig>,
    /// Checks for `BeforeAllowTraffic`.
    #[serde(rename = "BeforeAllowTraffic")]
    pub before_allow_traffic: Option<StageConfig>,
    /// Checks for `AfterAllowTraffic`.
    #[serde(rename = "AfterAllowTraffic")]
    pub after_allow_traffic: Option<StageConfig>,
}

impl Stages {
    /// The config of one stage, if the document has it.
    pub fn get(&self, stage: Stage) -> Option<&StageConfig> {
        match stage {
            Stage::AfterAllowTestTraffic => self.after_allow_test_traffic.as_ref(),
            Stage::BeforeAllowTraffic => self.before_allow_traffic.as_ref(),
            Stage::AfterAllowTraffic => self.after_allow_traffic.as_ref(),
        }
    }
}

/// One stage: its list of checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The checks, run concurrently.
    pub checks: Vec<CheckSpec>,
}

/// One check as written. Exactly one kind key (`http`, …) must be present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Shown in logs and reports; unique within a stage.
    pub name: String,
    /// A failing check that is not required only warns.
    #[serde(default = "yes")]
    pub required: bool,
    /// Overrides `defaults.retries`.
    pub retries: Option<u32>,
    /// Overrides `defaults.retry_delay`.
    pub retry_delay: Option<Dur>,
    /// One HTTP request with expectations.
    pub http: Option<HttpSpec>,
    /// Ordered HTTP steps with captures, templating and cleanup.
    pub scenario: Option<ScenarioSpec>,
    /// Many requests at a concurrency: latency percentiles, error rate, optional baseline.
    pub probe: Option<ProbeSpec>,
}

/// A `probe` check: `requests` requests at `concurrency`, judged on latency and errors, and
/// optionally against a `baseline` target hit with the same requests, interleaved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// The target probed (green: usually `test`).
    pub target: String,
    /// HTTP method; GET when absent.
    #[serde(default = "get")]
    pub method: String,
    /// Path (and query), templated like an `http` check's.
    #[serde(default = "root")]
    pub path: String,
    /// Request headers, values templated.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A raw request body, templated.
    pub body: Option<String>,
    /// Per-request timeout.
    pub timeout: Option<Dur>,
    /// Requests to the target (and as many to the baseline).
    pub requests: u64,
    /// Requests in flight at once (per run, shared by target and baseline).
    #[serde(default = "eight")]
    pub concurrency: usize,
    /// Statuses that count as success; any 2xx when absent.
    pub status: Option<StatusSpec>,
    /// Limits on the target's latency percentiles.
    pub max_p50: Option<Dur>,
    /// 95th percentile limit.
    pub max_p95: Option<Dur>,
    /// 99th percentile limit.
    pub max_p99: Option<Dur>,
    /// The most errors allowed, as a fraction (0.01 = 1 %); none when absent.
    #[serde(default)]
    pub max_error_rate: f64,
    /// A target to compare against (blue: usually `prod`).
    pub baseline: Option<String>,
    /// Target p95 may exceed the baseline's by at most this fraction (0.25 = 25 %).
    pub max_p95_regression: Option<f64>,
    /// Differences smaller than this never count as a regression (sub-millisecond noise).
    pub min_regression: Option<Dur>,
    /// `mann-whitney`: a one-sided Mann-Whitney U test, target slower than baseline.
    pub judge: Option<JudgeKind>,
    /// Confidence for the judge (default 0.98).
    pub confidence: Option<f64>,
    /// The judge fails only if target median ≥ (1 + tolerance) × baseline median (default 0.1).
    pub tolerance: Option<f64>,
}

/// Statistical judges a probe can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JudgeKind {
    /// Mann-Whitney U, as Kayenta's judge uses.
    #[serde(rename = "mann-whitney")]
    MannWhitney,
}

fn eight() -> usize {
    8
}

/// A `scenario` check: steps in order, then cleanup steps that always run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Target for steps that do not name their own.
    pub target: String,
    /// Run in order; the first that fails stops the rest.
    pub steps: Vec<StepSpec>,
    /// Run after the steps whatever happened (refund or void what the steps created).
    #[serde(default)]
    pub cleanup: Vec<StepSpec>,
}

/// One request of a scenario. Strings may use `{{variables}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Shown in failures; `step N` / `cleanup N` when absent.
    pub name: Option<String>,
    /// Overrides the scenario's target (write via `test`, read via `prod`).
    pub target: Option<String>,
    /// HTTP method; GET when absent.
    #[serde(default = "get")]
    pub method: String,
    /// Path (and query), templated.
    #[serde(default = "root")]
    pub path: String,
    /// Request headers, values templated.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A raw body, templated.
    pub body: Option<String>,
    /// A JSON body; string values templated. Sets `content-type: application/json`.
    pub json: Option<serde_json::Value>,
    /// A form body (`application/x-www-form-urlencoded`), values templated.
    pub form: Option<BTreeMap<String, String>>,
    /// Per-request timeout.
    pub timeout: Option<Dur>,
    /// What the response must look like (string values templated); any 2xx when absent.
    #[serde(default)]
    pub expect: Expect,
    /// Variable → `/json/pointer` or `header:Name`, taken from the response.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

impl StepSpec {
    /// The step's display name: `step create`, `cleanup refund`, `step 2`, `cleanup 1`.
    pub fn label(&self, index: usize, cleanup: bool) -> String {
        let phase = if cleanup { "cleanup" } else { "step" };
        match &self.name {
            Some(name) => format!("{phase} {name}"),
            None => format!("{phase} {}", index + 1),
        }
    }
}

fn yes() -> bool {
    true
}

/// An `http` check: one request, expectations on what comes back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The name of a target under `targets:`.
    pub target: String,
    /// HTTP method; GET when absent.
    #[serde(default = "get")]
    pub method: String,
    /// Path (and query) appended to the target's URL.
    #[serde(default = "root")]
    pub path: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A raw request body.
    pub body: Option<String>,
    /// Per-request timeout for this check.
    pub timeout: Option<Dur>,
    /// What the response must look like; any 2xx status when absent.
    #[serde(default)]
    pub expect: Expect,
}

fn get() -> String {
    "GET".to_owned()
}

fn root() -> String {
    "/".to_owned()
}

/// Expectations on a response. Every one that is set must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// One status or a list; any 2xx when absent.
    pub status: Option<StatusSpec>,
    /// Header name → expected value (a `; charset=…` suffix on the actual value is ignored).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Text the body must contain (one string or a list).
    pub body_contains: Option<OneOrMany<String>>,
    /// JSON pointer → expected JSON value.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    /// The whole exchange (first byte sent to last byte read) must take at most this long.
    pub max_latency: Option<Dur>,
}

/// `status: 200` or `status: [200, 204]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "a status code (200) or a list of them ([200, 204])"
)]
pub enum StatusSpec {
    /// A single status.
    One(u16),
    /// Any of these.
    Any(Vec<u16>),
}

impl StatusSpec {
    /// The accepted codes.
    pub fn codes(&self) -> Vec<u16> {
        match self {
            StatusSpec::One(code) => vec![*code],
            StatusSpec::Any(codes) => codes.clone(),
        }
    }
}

/// A value or a list of values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub enum OneOrMany<T> {
    /// One.
    One(T),
    /// Several.
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// All values as a list.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(value) => vec![value.clone()],
            OneOrMany::Many(values) => values.clone(),
        }
    }
}

/// A duration written as `500ms`, `5s`, `2m` (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, like 500ms, 5s or 2m")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Dur, E> {
                humantime::parse_duration(text.trim()).map(Dur).map_err(|err| {
                    E::custom(format!(
                        "invalid duration {text:?} ({err}): write a number with a unit, like 500ms, 5s or 2m"
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write {n}s or {n}ms"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write e.g. {n}s or {n}ms"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write e.g. 500ms or 5s"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A target base URL, checked to be absolute http(s) with a host when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(pub Url);

impl<'de> Deserialize<'de> for TargetUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        let url = Url::parse(text.trim()).map_err(|err| {
            D::Error::custom(format!(
                "invalid URL {text:?} ({err}): write an absolute URL such as https://alb.internal.example.com:8443"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(D::Error::custom(format!(
                "URL {text:?} is not an http(s) URL with a host: write e.g. https://alb.internal.example.com:8443"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(D::Error::custom(format!(
                "URL {text:?} has a query or fragment: put those in each check's path"
            )));
        }
        Ok(TargetUrl(url))
    }
}

/// Where the config came from, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The document was in `GREENLIGHT_CONFIG` itself.
    Inline,
    /// `file:PATH`.
    File(PathBuf),
    /// `ssm:NAME` (Parameter Store).
    Ssm(String),
    /// `s3://BUCKET/KEY`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Inline => f.write_str("inline"),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::Ssm(name) => write!(f, "ssm:{name}"),
            Source::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// The largest config document read from S3.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// A config with where it came from and which version it was.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    /// The SSM parameter version, the S3 version id or ETag, or a content hash.
    pub version: String,
}

impl Source {
    /// Read a `GREENLIGHT_CONFIG` value: `ssm:NAME`, `s3://BUCKET/KEY`, `file:PATH`, or the
    /// document itself.
    pub fn parse(setting: &str) -> Result<Source, ConfigError> {
        let trimmed = setting.trim();
        if let Some(name) = trimmed.strip_prefix("ssm:") {
            let name = name.trim();
            if name.is_empty() {
                return Err(ConfigError::invalid(
                    CONFIG_ENV,
                    setting,
                    "no parameter name after ssm:",
                    "write ssm:/greenlight/payments",
                ));
            }
            return Ok(Source::Ssm(name.to_owned()));
        }
        if let Some(rest) = trimmed.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Source::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }),
                _ => Err(ConfigError::invalid(
                    CONFIG_ENV,
                    setting,
                    "not an S3 location",
                    "write s3://BUCKET/KEY, e.g. s3://payments-config/greenlight.yaml",
                )),
            };
        }
        if let Some(path) = trimmed.strip_prefix("file:") {
            return Ok(Source::File(PathBuf::from(path.trim())));
        }
        Ok(Source::Inline)
    }
}

impl Config {
    /// Load `GREENLIGHT_CONFIG` from wherever it points, once per cold start.
    pub async fn load_env(aws: &crate::aws::Aws) -> Result<Loaded, ConfigError> {
        match std::env::var(CONFIG_ENV) {
            Ok(value) if !value.trim().is_empty() => Config::load(&value, aws).await,
            _ => Err(ConfigError::Missing),
        }
    }

    /// Load a config from a `GREENLIGHT_CONFIG` value.
    pub async fn load(setting: &str, aws: &crate::aws::Aws) -> Result<Loaded, ConfigError> {
        let source = Source::parse(setting)?;
        let from_aws = |err: crate::aws::AwsReadError| {
            ConfigError::invalid(CONFIG_ENV, &source, err.problem, err.fix)
        };
        let (text, version) = match &source {
            Source::Inline => (setting.to_owned(), None),
            Source::File(path) => (
                std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
                    path: path.clone(),
                    source: err,
                })?,
                None,
            ),
            Source::Ssm(name) => {
                let (value, _, version) = aws.ssm_parameter(name).await.map_err(from_aws)?;
                (value, Some(format!("ssm version {version}")))
            }
            Source::S3 { bucket, key } => {
                let (bytes, version) = aws
                    .s3_object(bucket, key, MAX_CONFIG_BYTES)
                    .await
                    .map_err(from_aws)?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    ConfigError::invalid(
                        CONFIG_ENV,
                        &source,
                        "the object is not UTF-8 text",
                        "upload the YAML or JSON config itself",
                    )
                })?;
                (text, Some(format!("s3 {version}")))
            }
        };
        let version = version.unwrap_or_else(|| {
            let digest = sha2::Sha256::digest(text.as_bytes());
            let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            format!("sha256 {hex}")
        });
        Ok(Loaded {
            config: Config::parse(&text)?,
            source,
            version,
        })
    }
}

impl Config {
    /// Read and parse a file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parse a YAML (or JSON, which is YAML) document and validate it.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = serde_norway::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            ConfigError::Parse {
                path,
                problem: err.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that parsing cannot express: references, ranges, names that must be valid HTTP.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.targets.is_empty() {
            return Err(ConfigError::invalid(
                "targets",
                "{}",
                "no targets are defined",
                "add at least `targets: { test: { url: https://... } }`",
            ));
        }
        for (name, target) in &self.targets {
            let path = format!("targets.{name}");
            if let Some(host) = &target.host
                && url::Host::parse(host).is_err()
            {
                return Err(ConfigError::invalid(
                    format!("{path}.host"),
                    format!("{host:?}"),
                    "not a valid host name",
                    "write the bare DNS name the certificate is for, e.g. payments.example.com (no scheme, no port)",
                ));
            }
            if let Some(timeout) = target.timeout {
                positive(&format!("{path}.timeout"), timeout)?;
            }
        }
        for (name, source) in &self.secrets {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::invalid(
                    "secrets",
                    format!("{name:?}"),
                    "not a usable secret name",
                    "use letters, digits and _, e.g. api_key",
                ));
            }
            let given: Vec<&String> = [&source.env, &source.secretsmanager, &source.ssm]
                .into_iter()
                .flatten()
                .collect();
            if given.len() != 1 || given[0].trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("secrets.{name}"),
                    "(source)",
                    "a secret needs exactly one non-empty source",
                    "write one of { env: VARIABLE }, { secretsmanager: SECRET_ID_OR_ARN }, { ssm: /parameter/name }",
                ));
            }
        }
        let d = &self.defaults;
        positive("defaults.timeout", d.timeout)?;
        positive("defaults.budget", d.budget)?;
        if d.retries > 10 {
            return Err(ConfigError::invalid(
                "defaults.retries",
                d.retries,
                "too many retries",
                "use at most 10; a check that needs more is not ready",
            ));
        }
        if d.concurrency == 0 {
            return Err(ConfigError::invalid(
                "defaults.concurrency",
                0,
                "no check could ever run",
                "use 1 or more",
            ));
        }
        if d.max_body_bytes == 0 {
            return Err(ConfigError::invalid(
                "defaults.max_body_bytes",
                0,
                "no body could ever be read",
                "use e.g. 1048576 (1 MiB)",
            ));
        }
        for stage in Stage::ALL {
            if let Some(stage_config) = self.stages.get(stage) {
                self.validate_stage(stage, stage_config)?;
            }
        }
        Ok(())
    }

    fn validate_stage(&self, stage: Stage, stage_config: &StageConfig) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (index, check) in stage_config.checks.iter().enumerate() {
            let path = format!("stages.{stage}.checks[{index}]");
            if check.name.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{path}.name"),
                    "\"\"",
                    "a check needs a name",
                    "give it a short name that an on-call engineer will recognise, e.g. health",
                ));
            }
            if !names.insert(check.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{path}.name"),
                    format!("{:?}", check.name),
                    "two checks of this stage share the name",
                    "give each check of a stage its own name",
                ));
            }
            if let Some(retries) = check.retries
                && retries > 10
            {
                return Err(ConfigError::invalid(
                    format!("{path}.retries"),
                    retries,
                    "too many retries",
                    "use at most 10",
                ));
            }
            let kinds = usize::from(check.http.is_some())
                + usize::from(check.scenario.is_some())
                + usize::from(check.probe.is_some());
            if kinds != 1 {
                return Err(ConfigError::invalid(
                    path,
                    format!("{:?}", check.name),
                    if kinds == 0 {
                        "the check has no kind"
                    } else {
                        "the check has more than one kind"
                    },
                    "give it exactly one kind key: `http:`, `scenario:` or `probe:`",
                ));
            }
            if let Some(http) = &check.http {
                self.validate_http(&format!("{path}.http"), http)?;
            }
            if let Some(scenario) = &check.scenario {
                self.validate_scenario(&format!("{path}.scenario"), scenario)?;
            }
            if let Some(probe) = &check.probe {
                self.validate_probe(&format!("{path}.probe"), probe)?;
            }
        }
        Ok(())
    }

    fn validate_scenario(&self, path: &str, scenario: &ScenarioSpec) -> Result<(), ConfigError> {
        self.validate_target(&format!("{path}.target"), &scenario.target)?;
        if scenario.steps.is_empty() {
            return Err(ConfigError::invalid(
                format!("{path}.steps"),
                "[]",
                "a scenario needs at least one step",
                "add steps, or use an `http` check for a single request",
            ));
        }
        let mut known = self.base_variables();
        for (list, steps) in [("steps", &scenario.steps), ("cleanup", &scenario.cleanup)] {
            for (index, step) in steps.iter().enumerate() {
                let step_path = format!("{path}.{list}[{index}]");
                self.validate_step(&step_path, step, &known)?;
                known.extend(step.capture.keys().cloned());
            }
        }
        Ok(())
    }

    fn validate_step(
        &self,
        path: &str,
        step: &StepSpec,
        known: &[String],
    ) -> Result<(), ConfigError> {
        if let Some(target) = &step.target {
            self.validate_target(&format!("{path}.target"), target)?;
        }
        self.validate_request(
            path,
            &step.method,
            &step.path,
            &step.headers,
            step.timeout,
            &step.expect,
        )?;
        let bodies = usize::from(step.body.is_some())
            + usize::from(step.json.is_some())
            + usize::from(step.form.is_some());
        if bodies > 1 {
            return Err(ConfigError::invalid(
                path,
                step.label(0, false),
                "more than one of body, json and form",
                "give the step one body: `json:` for JSON APIs, `form:` for form-encoded ones, `body:` for anything else",
            ));
        }
        for (variable, source) in &step.capture {
            let valid_name = !variable.is_empty()
                && variable
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !variable.starts_with(|c: char| c.is_ascii_digit());
            if !valid_name
                || ["run_id", "deployment_id", "stage", "secrets"].contains(&variable.as_str())
            {
                return Err(ConfigError::invalid(
                    format!("{path}.capture"),
                    format!("{variable:?}"),
                    "not a usable variable name",
                    "use letters, digits and _ (not run_id, deployment_id, stage or secrets), e.g. payment_id",
                ));
            }
            let header_ok = source
                .strip_prefix("header:")
                .is_some_and(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).is_ok());
            if !(source.starts_with('/') || header_ok) {
                return Err(ConfigError::invalid(
                    format!("{path}.capture.{variable}"),
                    format!("{source:?}"),
                    "not a JSON pointer or header",
                    "write a JSON pointer such as /id, or header:Location",
                ));
            }
        }
        let texts = request_texts(
            path,
            &step.path,
            &step.headers,
            step.body.as_ref(),
            step.json.as_ref(),
            step.form.as_ref(),
            &step.expect,
        );
        check_variables(texts, known)
    }

    /// The variables every check can use: `run_id`, `deployment_id`, `stage`, `secrets.NAME`.
    fn base_variables(&self) -> Vec<String> {
        ["run_id", "deployment_id", "stage"]
            .into_iter()
            .map(str::to_owned)
            .chain(self.secrets.keys().map(|name| format!("secrets.{name}")))
            .collect()
    }

    fn validate_probe(&self, path: &str, probe: &ProbeSpec) -> Result<(), ConfigError> {
        self.validate_target(&format!("{path}.target"), &probe.target)?;
        let expect = Expect {
            status: probe.status.clone(),
            ..Expect::default()
        };
        self.validate_request(
            path,
            &probe.method,
            &probe.path,
            &probe.headers,
            probe.timeout,
            &expect,
        )?;
        let texts = request_texts(
            path,
            &probe.path,
            &probe.headers,
            probe.body.as_ref(),
            None,
            None,
            &expect,
        );
        check_variables(texts, &self.base_variables())?;
        if !(1..=MAX_PROBE_REQUESTS).contains(&probe.requests) {
            return Err(ConfigError::invalid(
                format!("{path}.requests"),
                probe.requests,
                "out of range",
                format!("use 1 to {MAX_PROBE_REQUESTS}"),
            ));
        }
        if !(1..=MAX_PROBE_CONCURRENCY).contains(&probe.concurrency) {
            return Err(ConfigError::invalid(
                format!("{path}.concurrency"),
                probe.concurrency,
                "out of range",
                format!("use 1 to {MAX_PROBE_CONCURRENCY}"),
            ));
        }
        let fraction = |field: &str, value: f64, fix: &str| {
            if value.is_finite() && (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    format!("{path}.{field}"),
                    value,
                    "not a fraction from 0 to 1",
                    fix,
                ))
            }
        };
        fraction(
            "max_error_rate",
            probe.max_error_rate,
            "write e.g. 0.01 for 1 %",
        )?;
        if let Some(baseline) = &probe.baseline {
            self.validate_target(&format!("{path}.baseline"), baseline)?;
            if baseline == &probe.target {
                return Err(ConfigError::invalid(
                    format!("{path}.baseline"),
                    format!("{baseline:?}"),
                    "the baseline is the probed target itself",
                    "name the other listener, e.g. baseline: prod when target: test",
                ));
            }
        }
        let needs_baseline = |field: &str| {
            if probe.baseline.is_none() {
                Err(ConfigError::invalid(
                    format!("{path}.{field}"),
                    "(set)",
                    "compares against a baseline, but none is named",
                    "add `baseline: prod` (the listener still serving blue)",
                ))
            } else {
                Ok(())
            }
        };
        if let Some(regression) = probe.max_p95_regression {
            needs_baseline("max_p95_regression")?;
            if !(regression.is_finite() && regression >= 0.0) {
                return Err(ConfigError::invalid(
                    format!("{path}.max_p95_regression"),
                    regression,
                    "not a non-negative fraction",
                    "write e.g. 0.25 for 25 %",
                ));
            }
        }
        if probe.judge.is_some() {
            needs_baseline("judge")?;
            if probe.requests < MIN_JUDGE_SAMPLES {
                return Err(ConfigError::invalid(
                    format!("{path}.requests"),
                    probe.requests,
                    "too few samples for the Mann-Whitney judge",
                    format!("use at least {MIN_JUDGE_SAMPLES} requests"),
                ));
            }
        }
        if let Some(confidence) = probe.confidence
            && !(confidence > 0.5 && confidence < 1.0)
        {
            return Err(ConfigError::invalid(
                format!("{path}.confidence"),
                confidence,
                "not a confidence level",
                "use a value between 0.5 and 1, e.g. 0.98",
            ));
        }
        if let Some(tolerance) = probe.tolerance
            && !(tolerance.is_finite() && tolerance >= 0.0)
        {
            return Err(ConfigError::invalid(
                format!("{path}.tolerance"),
                tolerance,
                "not a non-negative fraction",
                "write e.g. 0.1 for 10 %",
            ));
        }
        if (probe.confidence.is_some() || probe.tolerance.is_some()) && probe.judge.is_none() {
            return Err(ConfigError::invalid(
                format!("{path}.judge"),
                "(absent)",
                "confidence and tolerance only apply to a judge",
                "add `judge: mann-whitney`, or remove confidence and tolerance",
            ));
        }
        Ok(())
    }

    fn validate_target(&self, path: &str, target: &str) -> Result<(), ConfigError> {
        if self.targets.contains_key(target) {
            return Ok(());
        }
        let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
        Err(ConfigError::invalid(
            path,
            format!("{target:?}"),
            "no such target",
            format!(
                "use one of the names under `targets:` ({})",
                known.join(", ")
            ),
        ))
    }

    fn validate_http(&self, path: &str, http: &HttpSpec) -> Result<(), ConfigError> {
        self.validate_target(&format!("{path}.target"), &http.target)?;
        let texts = request_texts(
            path,
            &http.path,
            &http.headers,
            http.body.as_ref(),
            None,
            None,
            &http.expect,
        );
        check_variables(texts, &self.base_variables())?;
        self.validate_request(
            path,
            &http.method,
            &http.path,
            &http.headers,
            http.timeout,
            &http.expect,
        )
    }

    fn validate_request(
        &self,
        path: &str,
        method: &str,
        request_path: &str,
        headers: &BTreeMap<String, String>,
        timeout: Option<Dur>,
        expect: &Expect,
    ) -> Result<(), ConfigError> {
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(ConfigError::invalid(
                format!("{path}.method"),
                format!("{method:?}"),
                "not an HTTP method",
                "use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS",
            ));
        }
        if !request_path.starts_with('/') {
            return Err(ConfigError::invalid(
                format!("{path}.path"),
                format!("{request_path:?}"),
                "the path must start with /",
                format!("write /{request_path}"),
            ));
        }
        for (name, value) in headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::invalid(
                    format!("{path}.headers"),
                    format!("{name:?}"),
                    "not a valid header name",
                    "use letters, digits and dashes, e.g. X-Probe",
                ));
            }
            if http::HeaderValue::from_str(value).is_err() && !value.contains("{{") {
                // The value may be a secret: name the header, never echo the value.
                return Err(ConfigError::invalid(
                    format!("{path}.headers.{name}"),
                    "(value not shown)",
                    "the header value has characters HTTP does not allow (e.g. a newline)",
                    "remove control characters from the value",
                ));
            }
        }
        if let Some(timeout) = timeout {
            positive(&format!("{path}.timeout"), timeout)?;
        }
        if let Some(status) = &expect.status {
            let codes = status.codes();
            if codes.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{path}.expect.status"),
                    "[]",
                    "an empty list accepts nothing",
                    "list at least one status, or leave `status` out to accept any 2xx",
                ));
            }
            if let Some(bad) = codes.iter().find(|code| !(100..=599).contains(*code)) {
                return Err(ConfigError::invalid(
                    format!("{path}.expect.status"),
                    bad,
                    "not an HTTP status code",
                    "use a code from 100 to 599",
                ));
            }
        }
        for name in expect.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::invalid(
                    format!("{path}.expect.headers"),
                    format!("{name:?}"),
                    "not a valid header name",
                    "use letters, digits and dashes, e.g. content-type",
                ));
            }
        }
        for pointer in expect.json.keys() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(ConfigError::invalid(
                    format!("{path}.expect.json"),
                    format!("{pointer:?}"),
                    "not a JSON pointer",
                    format!("JSON pointers start with /, e.g. /{pointer}"),
                ));
            }
        }
        Ok(())
    }

    /// The checks of a stage, or [`ConfigError::NoStage`] when the document has no entry for it.
    pub fn stage(&self, stage: Stage) -> Result<&StageConfig, ConfigError> {
        self.stages.get(stage).ok_or(ConfigError::NoStage { stage })
    }
}

/// Every templated string of a request, with the field it sits in.
fn request_texts<'a>(
    path: &str,
    request_path: &'a str,
    headers: &'a BTreeMap<String, String>,
    body: Option<&'a String>,
    json: Option<&'a serde_json::Value>,
    form: Option<&'a BTreeMap<String, String>>,
    expect: &'a Expect,
) -> Vec<(String, &'a str)> {
    let mut texts: Vec<(String, &str)> = vec![(format!("{path}.path"), request_path)];
    texts.extend(
        headers
            .iter()
            .map(|(name, value)| (format!("{path}.headers.{name}"), value.as_str())),
    );
    if let Some(body) = body {
        texts.push((format!("{path}.body"), body));
    }
    if let Some(form) = form {
        texts.extend(
            form.iter()
                .map(|(name, value)| (format!("{path}.form.{name}"), value.as_str())),
        );
    }
    if let Some(json) = json {
        let mut strings = Vec::new();
        collect_strings(json, &mut strings);
        texts.extend(strings.into_iter().map(|s| (format!("{path}.json"), s)));
    }
    for (pointer, value) in &expect.json {
        let mut strings = Vec::new();
        collect_strings(value, &mut strings);
        texts.extend(
            strings
                .into_iter()
                .map(|s| (format!("{path}.expect.json.{pointer}"), s)),
        );
    }
    match &expect.body_contains {
        Some(OneOrMany::One(one)) => texts.push((format!("{path}.expect.body_contains"), one)),
        Some(OneOrMany::Many(many)) => texts.extend(
            many.iter()
                .map(|n| (format!("{path}.expect.body_contains"), n.as_str())),
        ),
        None => {}
    }
    texts
}

/// Every template parses and uses only `known` variables.
fn check_variables(texts: Vec<(String, &str)>, known: &[String]) -> Result<(), ConfigError> {
    for (field, text) in texts {
        let used = crate::template::variables(text).map_err(|problem| {
            ConfigError::invalid(
                field.clone(),
                format!("{text:?}"),
                format!("not a valid template: {problem}"),
                "write variables as {{name}}, e.g. {{payment_id}} or {{secrets.api_key}}",
            )
        })?;
        if let Some(unknown) = used.iter().find(|name| !known.iter().any(|k| k == *name)) {
            return Err(ConfigError::invalid(
                field,
                format!("{{{{{unknown}}}}}"),
                "unknown variable",
                format!(
                    "use one of: {} (a capture is usable only in the steps after the one that \
                     captures it; secrets are declared under `secrets:`)",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Every string inside a JSON value (the templated parts of a JSON body or expectation).
pub(crate) fn collect_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(text) => out.push(text),
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        serde_json::Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

fn positive(path: &str, value: Dur) -> Result<(), ConfigError> {
    if value.0.is_zero() {
        return Err(ConfigError::invalid(
            path,
            value,
            "a zero duration leaves no time at all",
            "use a positive duration such as 5s",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the README and issue #2, verbatim: it must keep working.
    pub(crate) const EXAMPLE: &str = r#"
targets:
  test:
    url: https://alb.internal.example.com:8443
    host: payments.example.com   # optional: Host header and TLS server name
    ca_file: /opt/ca.pem         # optional extra root
  prod:
    url: https://alb.internal.example.com
defaults:
  timeout: 5s        # per request
  retries: 2         # extra attempts of a failing check while green warms up
  retry_delay: 1s
stages:
  AfterAllowTestTraffic:
    checks:
      - name: health
        http:
          target: test
          method: GET              # default
          path: /health
          headers: { X-Probe: greenlight }
          expect:
            status: 200            # or a list: [200, 204]
            headers: { content-type: application/json }
            body_contains: ok
            json: { /status: ok }  # JSON pointer -> expected value
            max_latency: 500ms
  BeforeAllowTraffic: { checks: [] }
  AfterAllowTraffic: { checks: [] }
"#;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_documented_example_parses() {
        let config = Config::parse(EXAMPLE).unwrap();
        let test = &config.targets["test"];
        assert_eq!(
            test.url.0.as_str(),
            "https://alb.internal.example.com:8443/"
        );
        assert_eq!(test.host.as_deref(), Some("payments.example.com"));
        assert_eq!(config.defaults.retries, 2);
        let stage = config.stage(Stage::AfterAllowTestTraffic).unwrap();
        let http = stage.checks[0].http.as_ref().unwrap();
        assert_eq!(http.expect.status, Some(StatusSpec::One(200)));
        assert_eq!(http.expect.json["/status"], serde_json::json!("ok"));
        assert_eq!(
            http.expect.max_latency,
            Some(Dur(Duration::from_millis(500)))
        );
        assert!(
            config
                .stage(Stage::BeforeAllowTraffic)
                .unwrap()
                .checks
                .is_empty()
        );
    }

    #[test]
    fn json_is_accepted() {
        let config = Config::parse(
            r#"{"targets": {"test": {"url": "http://127.0.0.1:8080"}},
                "stages": {"AfterAllowTraffic": {"checks": [
                  {"name": "h", "http": {"target": "test", "expect": {"status": [200, 204]}}}]}}}"#,
        )
        .unwrap();
        let check = &config.stage(Stage::AfterAllowTraffic).unwrap().checks[0];
        assert_eq!(
            check.http.as_ref().unwrap().expect.status,
            Some(StatusSpec::Any(vec![200, 204]))
        );
    }

    #[test]
    fn unknown_key_names_the_field_and_the_valid_ones() {
        let e = err("targets: { test: { url: http://a } }\ndefaults: { tiemout: 5s }\n");
        assert!(e.contains("defaults"), "{e}");
        assert!(e.contains("tiemout"), "{e}");
        assert!(e.contains("timeout"), "{e}");
    }

    #[test]
    fn unknown_check_kind_is_named() {
        let e = err(
            "targets: { test: { url: http://a } }\nstages:\n  AfterAllowTraffic:\n    checks:\n      - name: x\n        grpc: {}\n",
        );
        assert!(e.contains("stages.AfterAllowTraffic.checks[0]"), "{e}");
        assert!(e.contains("grpc"), "{e}");
    }

    #[test]
    fn bad_duration_says_how_to_write_one() {
        let e = err("targets: { test: { url: http://a } }\ndefaults: { timeout: fast }\n");
        assert!(e.contains("defaults.timeout"), "{e}");
        assert!(e.contains("\"fast\""), "{e}");
        assert!(e.contains("500ms"), "{e}");
        let e = err("targets: { test: { url: http://a } }\ndefaults: { timeout: 5 }\n");
        assert!(e.contains("5s"), "{e}");
    }

    #[test]
    fn missing_target_lists_the_defined_ones() {
        let e = err(
            "targets: { test: { url: http://a } }\nstages:\n  AfterAllowTraffic:\n    checks:\n      - name: x\n        http: { target: prod }\n",
        );
        assert!(
            e.contains("stages.AfterAllowTraffic.checks[0].http.target"),
            "{e}"
        );
        assert!(e.contains("\"prod\""), "{e}");
        assert!(e.contains("test"), "{e}");
    }

    #[test]
    fn bad_yaml_reports_line_and_column() {
        let e = err("targets:\n  test: [unclosed\n");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                "targets: { test: { url: 'not a url' } }",
                "targets.test.url",
            ),
            ("targets: { test: { url: 'ftp://a' } }", "http(s)"),
            (
                "targets: { test: { url: http://a, host: 'a b' } }",
                "targets.test.host",
            ),
            ("targets: {}", "no targets"),
            (
                "targets: { t: { url: http://a } }\nstages: { AfterAllowTraffic: { checks: [ { name: x, http: { target: t, path: health } } ] } }",
                "must start with /",
            ),
            (
                "targets: { t: { url: http://a } }\nstages: { AfterAllowTraffic: { checks: [ { name: x, http: { target: t, expect: { status: 999 } } } ] } }",
                "100 to 599",
            ),
            (
                "targets: { t: { url: http://a } }\nstages: { AfterAllowTraffic: { checks: [ { name: x, http: { target: t, expect: { json: { status: ok } } } } ] } }",
                "JSON pointers start with /",
            ),
            (
                "targets: { t: { url: http://a } }\nstages: { AfterAllowTraffic: { checks: [ { name: x, http: { target: t } }, { name: x, http: { target: t } } ] } }",
                "share the name",
            ),
            (
                "targets: { t: { url: http://a } }\nstages: { AfterAllowTraffic: { checks: [ { name: x } ] } }",
                "no kind",
            ),
            (
                "targets: { t: { url: http://a } }\nstages: { AfterAllowTraffic: { checks: [ { name: x, http: { target: t, method: 'G T' } } ] } }",
                "not an HTTP method",
            ),
            (
                "targets: { t: { url: http://a } }\nstages: { BeforeInstall: { checks: [] } }",
                "BeforeInstall",
            ),
        ];
        for (text, wanted) in cases {
            let e = err(text);
            assert!(e.contains(wanted), "for {text:?}: {e}");
        }
    }

    /// The scenario example from issue #3, verbatim.
    pub(crate) const SCENARIO_EXAMPLE: &str = r#"
secrets:
  api_key: { env: PAYSIM_API_KEY }
stages:
  AfterAllowTestTraffic:
    checks:
      - name: card payment round trip
        scenario:
          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              headers:
                Authorization: "Bearer {{secrets.api_key}}"
                Idempotency-Key: "{{run_id}}-create"
              json: { amount: 1200, currency: JPY, card_token: tok_visa }
              expect: { status: 201, json: { /status: captured, /amount: 1200 } }
              capture: { payment_id: /id }
            - name: blue reads what green wrote
              target: prod
              path: /v1/payments/{{payment_id}}
              headers: { Authorization: "Bearer {{secrets.api_key}}" }
              expect: { status: 200, json: { /amount: 1200, /currency: JPY } }
          cleanup:
            - method: POST
              path: /v1/payments/{{payment_id}}/refunds
              headers: { Authorization: "Bearer {{secrets.api_key}}" }
"#;

    fn with_targets(text: &str) -> String {
        format!("targets: {{ test: {{ url: http://a }}, prod: {{ url: http://b }} }}\n{text}")
    }

    #[test]
    fn the_documented_scenario_parses() {
        let config = Config::parse(&with_targets(SCENARIO_EXAMPLE)).unwrap();
        let check = &config.stage(Stage::AfterAllowTestTraffic).unwrap().checks[0];
        let scenario = check.scenario.as_ref().unwrap();
        assert_eq!(scenario.steps.len(), 2);
        assert_eq!(scenario.steps[1].target.as_deref(), Some("prod"));
        assert_eq!(scenario.cleanup[0].label(0, true), "cleanup 1");
        assert_eq!(
            config.secrets["api_key"].env.as_deref(),
            Some("PAYSIM_API_KEY")
        );
    }

    #[test]
    fn unknown_or_early_variables_are_config_errors() {
        let cases = [
            // A variable nobody defines.
            (
                SCENARIO_EXAMPLE.replace("{{run_id}}-create", "{{runid}}-create"),
                "{{runid}}",
            ),
            // A secret that is not declared.
            (
                SCENARIO_EXAMPLE.replace(
                    "secrets.api_key}}\"\n                Idempotency",
                    "secrets.token}}\"\n                Idempotency",
                ),
                "{{secrets.token}}",
            ),
            // A capture used before the step that captures it.
            (
                SCENARIO_EXAMPLE.replace(
                    "path: /v1/payments\n",
                    "path: /v1/payments/{{payment_id}}\n",
                ),
                "steps[0].path",
            ),
        ];
        for (text, wanted) in cases {
            let e = err(&with_targets(&text));
            assert!(
                e.contains("unknown variable") && e.contains(wanted),
                "{wanted}: {e}"
            );
        }
        let e = err(&with_targets(
            &SCENARIO_EXAMPLE.replace("{{run_id}}-create", "{{ run_id"),
        ));
        assert!(e.contains("not a valid template"), "{e}");
    }

    #[test]
    fn http_checks_may_use_run_variables_but_not_captures() {
        let ok = "targets: { t: { url: http://a } }\nsecrets: { k: { env: K } }\nstages: { AfterAllowTraffic: { checks: [ { name: x, http: { target: t, path: \"/{{run_id}}\", headers: { X-K: \"{{secrets.k}}\" } } } ] } }";
        Config::parse(ok).unwrap();
        let e = err(&ok.replace("{{run_id}}", "{{payment_id}}"));
        assert!(
            e.contains("http.path") && e.contains("unknown variable"),
            "{e}"
        );
    }

    #[test]
    fn probe_settings_are_checked() {
        let base = "targets: { test: { url: http://a }, prod: { url: http://b } }\nstages: { AfterAllowTestTraffic: { checks: [ { name: p, probe: { target: test, requests: 400, PROBE } } ] } }";
        let probe = |extra: &str| base.replace("PROBE", extra);
        Config::parse(&probe(
            "baseline: prod, max_p95_regression: 0.25, judge: mann-whitney, confidence: 0.98",
        ))
        .unwrap();
        let cases = [
            ("max_p95_regression: 0.25", "compares against a baseline"),
            ("judge: mann-whitney", "compares against a baseline"),
            ("baseline: test", "the probed target itself"),
            ("baseline: blue", "no such target"),
            ("max_error_rate: 2", "not a fraction"),
            ("concurrency: 0", "probe.concurrency"),
            ("baseline: prod, confidence: 0.98", "only apply to a judge"),
            (
                "baseline: prod, judge: mann-whitney, confidence: 1.5",
                "not a confidence level",
            ),
            ("baseline: prod, judge: wilcoxon", "mann-whitney"),
            ("max_p99: fast", "invalid duration"),
        ];
        for (extra, wanted) in cases {
            let e = err(&probe(extra));
            assert!(e.contains(wanted), "{extra}: {e}");
        }
        let e =
            err(&probe("baseline: prod, judge: mann-whitney")
                .replace("requests: 400", "requests: 20"));
        assert!(e.contains("too few samples"), "{e}");
        let e = err(&probe("").replace("requests: 400", "requests: 0"));
        assert!(e.contains("probe.requests"), "{e}");
    }

    #[test]
    fn scenario_steps_are_checked_like_http_checks() {
        let cases = [
            (
                SCENARIO_EXAMPLE.replace("target: prod", "target: blue"),
                "steps[1].target",
            ),
            (
                SCENARIO_EXAMPLE.replace(
                    "capture: { payment_id: /id }",
                    "capture: { payment_id: id }",
                ),
                "JSON pointer",
            ),
            (
                SCENARIO_EXAMPLE
                    .replace("capture: { payment_id: /id }", "capture: { run_id: /id }"),
                "not a usable variable name",
            ),
            (
                SCENARIO_EXAMPLE.replace(
                    "json: { amount: 1200, currency: JPY, card_token: tok_visa }",
                    "json: {}\n              form: { a: b }",
                ),
                "more than one of body, json and form",
            ),
            (
                SCENARIO_EXAMPLE.replace(
                    "      - name: card payment round trip\n",
                    "      - name: card payment round trip\n        http: { target: test }\n",
                ),
                "more than one kind",
            ),
        ];
        for (text, wanted) in cases {
            let e = err(&with_targets(&text));
            assert!(e.contains(wanted), "{wanted}: {e}");
        }
    }

    #[test]
    fn missing_stage_is_an_error_not_a_pass() {
        let config = Config::parse("targets: { t: { url: http://a } }").unwrap();
        let e = config
            .stage(Stage::AfterAllowTraffic)
            .unwrap_err()
            .to_string();
        assert!(e.contains("AfterAllowTraffic"), "{e}");
    }

    #[tokio::test]
    async fn settings_select_the_source() {
        let aws = crate::aws::Aws::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "targets: { t: { url: http://a } }").unwrap();
        let loaded = Config::load(&format!("file:{}", path.display()), &aws)
            .await
            .unwrap();
        assert_eq!(loaded.source, Source::File(path.clone()));
        assert!(loaded.version.starts_with("sha256 "), "{}", loaded.version);
        let loaded = Config::load("targets: { t: { url: http://a } }", &aws)
            .await
            .unwrap();
        assert_eq!(loaded.source, Source::Inline);
        let e = Config::load("file:/nonexistent/greenlight.yaml", &aws)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/greenlight.yaml"), "{e}");
        assert_eq!(
            Source::parse("ssm:/greenlight/payments").unwrap(),
            Source::Ssm("/greenlight/payments".into())
        );
        assert_eq!(
            Source::parse("s3://cfg/env/greenlight.yaml").unwrap(),
            Source::S3 {
                bucket: "cfg".into(),
                key: "env/greenlight.yaml".into()
            }
        );
        for bad in ["ssm:", "s3://bucket-only", "s3:///key"] {
            let e = Source::parse(bad).unwrap_err().to_string();
            assert!(e.contains("GREENLIGHT_CONFIG"), "{bad}: {e}");
        }
    }
}
