//! What the user wrote: the YAML/JSON config, parsed and validated once per cold start.
//!
//! Parsing is strict (unknown keys are errors) because a typo such as `tiemout:` silently falling
//! back to a default is how a gate ends up checking nothing. Values parse into types
//! ([`types`]), the request fields every kind shares live in [`request`], and each check kind's
//! spec, defaults and limits in [`checks`]; a config that parses here always plans.

pub(crate) mod checks;
pub(crate) mod metric;
pub(crate) mod notify;
pub(crate) mod repeat;
pub(crate) mod request;
pub(crate) mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub(crate) use self::checks::{
    AlarmsSpec, CheckSpec, InsufficientData, KindSpec, ProbeSpec, ScenarioSpec, StageConfig,
    StepSpec,
};
pub(crate) use self::metric::{DeploymentSpec, MetricQuery, MetricSpec, NoData, Reduce};
pub(crate) use self::request::{Expect, HasRequest, RequestFields};
pub(crate) use self::types::{CaptureFrom, Dur, OneOrMany, StatusSpec, TargetUrl};

use self::types::positive;
use crate::error::ConfigError;
use crate::stage::Stage;

/// A greenlight config: the targets (listeners), the checks of each lifecycle stage, defaults,
/// secrets, the deployment's target groups and where verdicts are sent.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// The load balancer and the two target groups the deployment moves between; green's is
    /// found at each run (`{{green_target_group}}`, `{{blue_target_group}}`, `{{load_balancer}}`).
    pub deployment: Option<DeploymentSpec>,
    /// Where each stage's final verdict is sent (an SNS topic, a Slack-compatible webhook).
    pub notify: Option<notify::NotifySpec>,
}

/// Where a secret's value comes from: exactly one of the three.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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

/// Per-request timeout unless a target or check says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra attempts of a failing `http` check.
pub(crate) const DEFAULT_RETRIES: u32 = 2;
/// Delay before the first retry.
pub(crate) const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Time for a stage when the Lambda deadline is unknown.
pub(crate) const DEFAULT_BUDGET: Duration = Duration::from_secs(120);
/// Time kept back from the Lambda deadline for the status report.
pub(crate) const DEFAULT_REPORT_RESERVE: Duration = Duration::from_secs(10);
/// The most bytes of a response body that are read.
pub(crate) const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Checks of a stage that run at once: enough that a realistic stage runs all at once, so its
/// time is its slowest check.
pub(crate) const DEFAULT_CONCURRENCY: usize = 64;

/// Defaults that apply to every check unless it says otherwise.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
            timeout: Dur(DEFAULT_TIMEOUT),
            retries: DEFAULT_RETRIES,
            retry_delay: Dur(DEFAULT_RETRY_DELAY),
            budget: Dur(DEFAULT_BUDGET),
            report_reserve: Dur(DEFAULT_REPORT_RESERVE),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// The checks of each stage, keyed by the CodeDeploy hook name.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
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

/// The largest config document accepted: a greenlight config is a few kilobytes.
pub(crate) const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// The deepest nesting accepted; a real config nests about ten deep.
pub(crate) const MAX_NESTING: usize = 64;

/// Refuse, before the YAML parser sees it, a document too large or nested too deep: the
/// parser's time grows with the square of the depth (40,000 levels took 17 s).
fn pre_check(text: &str) -> Result<(), ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::invalid(
            ".",
            format!("{} bytes", text.len()),
            format!("the config is larger than {MAX_CONFIG_BYTES} bytes"),
            "a greenlight config is a few kilobytes: check that GREENLIGHT_CONFIG points at the config",
        ));
    }
    let depth = nesting(text);
    if depth > MAX_NESTING {
        return Err(ConfigError::invalid(
            ".",
            format!("depth {depth}"),
            format!("the config nests deeper than {MAX_NESTING} levels"),
            "flatten the document: a greenlight config nests about ten levels deep",
        ));
    }
    Ok(())
}

/// The deepest nesting of a YAML document: indentation levels (block style) plus open
/// brackets (flow style), quoted text and comments skipped. An estimate that never
/// undercounts the brackets, which is where deep documents come from.
fn nesting(text: &str) -> usize {
    let mut indents: Vec<usize> = Vec::new();
    let mut deepest = 0;
    let mut flow = 0usize;
    for line in text.lines() {
        let body = line.trim_start_matches([' ', '-']);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        if flow == 0 {
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            deepest = deepest.max(indents.len() + flow);
            previous = c;
        }
    }
    deepest
}

/// YAML's word for a tab is "found character that cannot start any token": name it.
fn tab_hint(text: &str, problem: String) -> String {
    if !problem.contains("cannot start any token") {
        return problem;
    }
    let tab = text.lines().enumerate().find_map(|(line, content)| {
        content
            .find('\t')
            .map(|column| (line + 1, content[..column].chars().count() + 1))
    });
    match tab {
        Some((line, column)) => format!(
            "a tab at line {line} column {column}: YAML indents with spaces only, never tabs; \
             replace the tab with spaces ({problem})"
        ),
        None => problem,
    }
}

impl Config {
    /// Parse a YAML (or JSON, which is YAML) document and validate it.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        pre_check(text)?;
        let deserializer = serde_norway::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            let problem = err.into_inner().to_string();
            ConfigError::Parse {
                path,
                problem: tab_hint(text, problem),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The checks of a stage, or [`ConfigError::NoStage`] when the document has no entry for it.
    pub fn stage(&self, stage: Stage) -> Result<&StageConfig, ConfigError> {
        self.stages.get(stage).ok_or(ConfigError::NoStage { stage })
    }

    /// Checks that parsing cannot express: references, ranges, variables.
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
        if d.retries > checks::MAX_RETRIES {
            return Err(ConfigError::invalid(
                "defaults.retries",
                d.retries,
                "too many retries",
                format!(
                    "use at most {}; a check that needs more is not ready",
                    checks::MAX_RETRIES
                ),
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
        if let Some(deployment) = &self.deployment {
            deployment.validate()?;
        }
        if let Some(notify) = &self.notify {
            let secrets: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
            notify.validate(&secrets)?;
        }
        let scope = checks::Scope {
            targets: self.targets.keys().map(String::as_str).collect(),
            base: self.base_variables(),
        };
        for stage in Stage::ALL {
            if let Some(stage_config) = self.stages.get(stage) {
                checks::validate_stage(&scope, &format!("stages.{stage}"), stage_config)?;
            }
        }
        Ok(())
    }

    /// How long the longest watch (`repeat.for`) of a stage lasts; `None` when nothing repeats.
    pub fn longest_watch(&self, stage: Stage) -> Option<Duration> {
        self.stages
            .get(stage)?
            .checks
            .iter()
            .filter_map(|check| check.repeat.as_ref().map(|r| r.for_.0))
            .max()
    }

    /// The variables every check can use: `run_id`, `deployment_id`, `stage`, `secrets.NAME`.
    fn base_variables(&self) -> Vec<String> {
        let deployment = self
            .deployment
            .iter()
            .flat_map(|_| metric::DEPLOYMENT_VARIABLES);
        ["run_id", "deployment_id", "stage"]
            .into_iter()
            .chain(repeat::WATCH_VARIABLES)
            .chain(deployment)
            .map(str::to_owned)
            .chain(self.secrets.keys().map(|name| format!("secrets.{name}")))
            .collect()
    }
}

/// The JSON Schema of a config, generated from the types that parse it (their doc comments are
/// its descriptions): what `greenlight schema` prints and `greenlight.schema.json` holds. The
/// parser also checks what a schema cannot say (names that must exist, numbers that must agree);
/// the schema is for editors, and for tools that check a config before it is deployed.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".to_owned(), "greenlight config".into());
        object.insert(
            "$id".to_owned(),
            "https://github.com/greenlight/greenlight/greenlight.schema.json".into(),
        );
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::Pointer;

    #[test]
    fn rough_inputs_get_messages_that_say_what_and_where() {
        // A tab is called a tab, with where it is.
        let err = Config::parse("targets:\n\ttest: { url: http://127.0.0.1:9 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a tab at line 2 column 1") && err.contains("spaces"),
            "{err}"
        );
        // A URL without a scheme is quoted, and the missing scheme named.
        let err = Config::parse("targets: { test: { url: alb.example.com } }")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"alb.example.com\"") && err.contains("no scheme"),
            "{err}"
        );
    }

    /// The README's first example, verbatim: it must keep working.
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
        assert_eq!(
            http.expect.json[&Pointer("/status".to_owned())],
            serde_json::json!("ok")
        );
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
    fn metric_and_alarm_settings_are_checked() {
        let base = "deployment: { load_balancer: app/alb/1, target_groups: [targetgroup/a/1, targetgroup/b/2] }\n\
                    targets: { t: { url: http://a } }\n\
                    stages: { AfterAllowTraffic: { checks: [ { name: m, KIND } ] } }";
        let with = |kind: &str| base.replace("KIND", kind);
        let metric = |extra: &str| {
            with(&format!(
                "metric: {{ namespace: N, metric_name: M, stat: Sum, window: 10m, dimensions: {{ TargetGroup: '{{{{green_target_group}}}}' }}, {extra} }}"
            ))
        };
        Config::parse(&metric("max: 1")).unwrap();
        Config::parse(&with("alarms: { prefix: payments- }")).unwrap();
        let cases = [
            (metric("period: 90s, max: 1"), "not a CloudWatch period"),
            (metric("max: 1").replace("window: 10m", "window: 2d"), "at most a day"),
            (metric("min_regression: 1"), "compares against a baseline"),
            (metric("reduce: median, max: 1"), "sum"),
            (metric(""), "judges nothing"),
            (
                metric("max: 1, baseline: { dimensions: { Service: x } }"),
                "does not have",
            ),
            (
                with("metric: { expression: 'a / b', window: 5m, max: 1 }"),
                "needs the named queries",
            ),
            (
                with("metric: { namespace: N, window: 5m, max: 1 }"),
                "namespace, metric_name and stat",
            ),
            (with("alarms: {}"), "names no alarm"),
            (with("alarms: { names: [x], insufficient_data: maybe }"), "pass"),
            (
                metric("max: 1").replace("targetgroup/b/2", "payments-b"),
                "deployment.target_groups",
            ),
            (
                metric("max: 1").replace(
                    "deployment: { load_balancer: app/alb/1, target_groups: [targetgroup/a/1, targetgroup/b/2] }\n",
                    "",
                ),
                "unknown variable",
            ),
        ];
        for (text, wanted) in cases {
            let e = err(&text);
            assert!(e.contains(wanted), "{wanted}: {e}");
        }
    }

    #[test]
    fn huge_or_deep_documents_are_refused_before_parsing() {
        let deep = format!("targets: {}{}", "[".repeat(40_000), "]".repeat(40_000));
        let e = err(&deep);
        assert!(e.contains("nests deeper than 64 levels"), "{e}");
        let deep_block: String = (0..100)
            .map(|depth| format!("{}k{depth}:\n", "  ".repeat(depth)))
            .collect();
        assert!(
            err(&deep_block).contains("nests deeper"),
            "block style counts too"
        );
        let big = format!(
            "targets: {{ t: {{ url: http://a }} }}\n#{}",
            "x".repeat(MAX_CONFIG_BYTES)
        );
        assert!(err(&big).contains("larger than 1048576 bytes"));
        // The shipped examples are far inside the limits.
        for text in [
            include_str!("../../../../examples/payments.yaml"),
            EXAMPLE,
            SCENARIO_EXAMPLE,
        ] {
            assert!(nesting(text) < 20, "{}", nesting(text));
        }
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
                "targets: { test: { url: 'https://ops:hunter2@alb.internal' } }",
                "keep credentials out of URLs",
            ),
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
            assert!(
                !e.contains("hunter2"),
                "a password in a URL is never echoed: {e}"
            );
        }
    }

    /// The first scenario example, verbatim: it must keep working.
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

    /// The config reference (docs/config.md, which the README links) states these defaults and
    /// limits in its tables; the values live beside their specs. A change to either that leaves
    /// the other behind fails here.
    #[test]
    fn the_readme_reference_matches_the_defaults_and_limits() {
        use checks::*;
        let page = include_str!("../../../../docs/config.md");
        let row = |field: &str| -> (String, String) {
            let cell = format!("| `{field}` |");
            let line = page
                .lines()
                .find(|line| line.starts_with(&cell))
                .unwrap_or_else(|| panic!("docs/config.md has no reference row for `{field}`"));
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[2].trim_matches('`').to_owned(), cells[3].to_owned())
        };
        let duration = |field: &str| {
            humantime::parse_duration(&row(field).0)
                .unwrap_or_else(|err| panic!("`{field}`: {err}"))
        };
        let number = |field: &str| row(field).0.parse::<f64>().unwrap();
        let d = Defaults::default();
        assert_eq!(duration("defaults.timeout"), d.timeout.0);
        assert_eq!(number("defaults.retries"), f64::from(d.retries));
        assert_eq!(duration("defaults.retry_delay"), d.retry_delay.0);
        assert_eq!(duration("defaults.budget"), d.budget.0);
        assert_eq!(duration("defaults.report_reserve"), d.report_reserve.0);
        assert_eq!(number("defaults.max_body_bytes"), d.max_body_bytes as f64);
        assert_eq!(number("defaults.concurrency"), d.concurrency as f64);
        let retries = row("defaults.retries").1;
        assert!(
            retries.contains(&format!("at most {MAX_RETRIES}")),
            "{retries}"
        );
        assert!(
            retries.contains(&format!(
                "capped at {} s",
                crate::check::MAX_RETRY_DELAY.as_secs()
            )),
            "{retries}"
        );

        assert_eq!(number("concurrency"), DEFAULT_PROBE_CONCURRENCY as f64);
        assert!(
            row("concurrency")
                .1
                .contains(&format!("(1 to {MAX_PROBE_CONCURRENCY})"))
        );
        let thousands = |n: u64| {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        let requests = row("requests").1;
        assert!(
            requests.contains(&format!("1 to {}", thousands(MAX_PROBE_REQUESTS))),
            "{requests}"
        );
        assert_eq!(duration("min_regression"), DEFAULT_MIN_REGRESSION);
        assert_eq!(number("confidence"), DEFAULT_CONFIDENCE);
        assert_eq!(number("tolerance"), DEFAULT_TOLERANCE);
        let judge = row("judge: mann-whitney").1;
        assert!(
            judge.contains(&format!("needs ≥ {MIN_JUDGE_SAMPLES} requests")),
            "{judge}"
        );
        assert!(page.contains(&format!(
            "at most {} latencies per side",
            thousands(crate::check::probe::MAX_SAMPLES)
        )));
    }
}
