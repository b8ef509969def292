//! The check kinds as written: each spec with its defaults and limits beside it, and the
//! validation that only that kind needs.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use crate::config::metric::MetricSpec;
use crate::config::repeat::{RepeatSpec, WhenSpec};
use crate::config::request::{
    Expect, HasRequest, check_variables, request_spec, validate_expect, validate_request,
    validate_status, validate_target,
};
use crate::config::types::{CaptureFrom, Dur, StatusSpec};
use crate::error::ConfigError;

/// The most requests one probe may send to each side.
pub(crate) const MAX_PROBE_REQUESTS: u64 = 1_000_000;
/// The most requests one probe may have in flight.
pub(crate) const MAX_PROBE_CONCURRENCY: usize = 256;
/// Requests a probe has in flight when it does not say.
pub(crate) const DEFAULT_PROBE_CONCURRENCY: usize = 8;
/// The fewest samples per side the Mann-Whitney judge accepts.
pub(crate) const MIN_JUDGE_SAMPLES: u64 = 50;
/// Below this, a p95 difference is scheduling noise, not a regression.
pub(crate) const DEFAULT_MIN_REGRESSION: Duration = Duration::from_millis(2);
/// The judge's confidence when the probe does not say.
pub(crate) const DEFAULT_CONFIDENCE: f64 = 0.98;
/// The judge's tolerance when the probe does not say.
pub(crate) const DEFAULT_TOLERANCE: f64 = 0.1;
/// The most retries a check may ask for.
pub(crate) const MAX_RETRIES: u32 = 10;

/// Variables that a capture may not overwrite.
const RESERVED_VARIABLES: [&str; 7] = [
    "run_id",
    "deployment_id",
    "stage",
    "secrets",
    "repeat",
    "green_weight",
    "blue_weight",
];

/// One stage: its list of checks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The checks, run concurrently.
    pub checks: Vec<CheckSpec>,
}

/// One check as written. Exactly one kind key (`http`, …) must be present.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Shown in logs and reports; unique within a stage.
    pub name: String,
    /// A failing check that is not required only warns.
    #[serde(default = "yes")]
    pub required: bool,
    /// Overrides `defaults.retries` (scenarios and probes default to none).
    pub retries: Option<u32>,
    /// Overrides `defaults.retry_delay`.
    pub retry_delay: Option<Dur>,
    /// One HTTP request with expectations.
    pub http: Option<HttpSpec>,
    /// Ordered HTTP steps with captures, templating and cleanup.
    pub scenario: Option<ScenarioSpec>,
    /// Many requests at a concurrency: latency percentiles, error rate, optional baseline.
    pub probe: Option<ProbeSpec>,
    /// CloudWatch alarms that must not be firing.
    pub alarms: Option<AlarmsSpec>,
    /// CloudWatch datapoints for green, optionally against blue, held to bounds.
    pub metric: Option<MetricSpec>,
    /// Run again and again over a bake window (any kind).
    pub repeat: Option<RepeatSpec>,
    /// Run only at these traffic weights (a canary or linear step).
    pub when: Option<WhenSpec>,
}

fn yes() -> bool {
    true
}

/// The kind of a check, once validation has made sure there is exactly one.
#[derive(Debug, Clone, Copy)]
pub enum KindSpec<'a> {
    /// `http:`
    Http(&'a HttpSpec),
    /// `scenario:`
    Scenario(&'a ScenarioSpec),
    /// `probe:`
    Probe(&'a ProbeSpec),
    /// `alarms:`
    Alarms(&'a AlarmsSpec),
    /// `metric:`
    Metric(&'a MetricSpec),
}

impl CheckSpec {
    /// Its kind; `None` when it has none or several (which validation refuses).
    pub fn kind(&self) -> Option<KindSpec<'_>> {
        let mut given = self.kinds();
        match (given.next(), given.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }

    /// Every kind key the check was given.
    fn kinds(&self) -> impl Iterator<Item = KindSpec<'_>> {
        [
            self.http.as_ref().map(KindSpec::Http),
            self.scenario.as_ref().map(KindSpec::Scenario),
            self.probe.as_ref().map(KindSpec::Probe),
            self.alarms.as_ref().map(KindSpec::Alarms),
            self.metric.as_ref().map(KindSpec::Metric),
        ]
        .into_iter()
        .flatten()
    }

    /// Every request this check can send, for the redactor: literal credentials in headers.
    pub fn requests(&self) -> Vec<crate::config::request::RequestFields<'_>> {
        match self.kind() {
            Some(KindSpec::Http(http)) => vec![http.request()],
            Some(KindSpec::Scenario(scenario)) => scenario
                .steps
                .iter()
                .chain(&scenario.cleanup)
                .map(HasRequest::request)
                .collect(),
            Some(KindSpec::Probe(probe)) => vec![probe.request()],
            Some(KindSpec::Alarms(_) | KindSpec::Metric(_)) | None => Vec::new(),
        }
    }

    /// How many times a failure is retried: scenarios, probes and alarms not unless they ask
    /// (a retry would replay refunded payments, double the load, or wait out an alarm), `http`
    /// checks by `defaults.retries`.
    pub fn retries(&self, default: u32) -> u32 {
        self.retries.unwrap_or(match self.kind() {
            Some(KindSpec::Http(_)) => default,
            _ => 0,
        })
    }
}

request_spec! {
    /// An `http` check: one request, expectations on what comes back.
    pub struct HttpSpec {
        /// What the response must look like; any 2xx status when absent.
        #[serde(default)]
        pub expect: Expect,
    }
}

/// A `scenario` check: steps in order, then cleanup steps that always run.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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

request_spec! {
    /// One request of a scenario. Strings may use `{{variables}}`.
    pub struct StepSpec {
        /// Shown in failures; `step N` / `cleanup N` when absent.
        pub name: Option<String>,
        /// What the response must look like (string values templated); any 2xx when absent.
        #[serde(default)]
        pub expect: Expect,
        /// Variable → `/json/pointer` or `header:Name`, taken from the response.
        #[serde(default)]
        pub capture: BTreeMap<String, CaptureFrom>,
    }
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

request_spec! {
    /// A `probe` check: `requests` requests at `concurrency`, judged on latency and errors, and
    /// optionally against a `baseline` target hit with the same requests, interleaved.
    pub struct ProbeSpec {
        /// Requests to the target (and as many to the baseline).
        pub requests: u64,
        /// Requests in flight at once (per run, shared by target and baseline).
        #[serde(default = "default_probe_concurrency")]
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
        /// Confidence for the judge.
        pub confidence: Option<f64>,
        /// The judge fails only if target median ≥ (1 + tolerance) × baseline median.
        pub tolerance: Option<f64>,
    }
}

fn default_probe_concurrency() -> usize {
    DEFAULT_PROBE_CONCURRENCY
}

/// An `alarms` check: CloudWatch alarms (metric and composite) the team already keeps. One in
/// `ALARM` fails the check with its name, reason and since when; a named alarm that does not
/// exist is an error (a typo must not pass).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmsSpec {
    /// Alarms by name (at most 100), each of which must exist.
    #[serde(default)]
    pub names: Vec<String>,
    /// Every alarm whose name starts with this (at least one must).
    pub prefix: Option<String>,
    /// What an alarm with too little data counts as: `pass` (a fresh target group has none
    /// yet) or `fail`.
    #[serde(default)]
    pub insufficient_data: InsufficientData,
}

/// How an alarm in `INSUFFICIENT_DATA` counts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum InsufficientData {
    /// As OK.
    #[default]
    Pass,
    /// As firing.
    Fail,
}

/// The most alarm names one `DescribeAlarms` call takes.
pub(crate) const MAX_ALARM_NAMES: usize = 100;

/// Statistical judges a probe can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum JudgeKind {
    /// Mann-Whitney U, as Kayenta's judge uses.
    #[serde(rename = "mann-whitney")]
    MannWhitney,
}

/// What validation of one stage needs to know of the rest of the config.
pub(crate) struct Scope<'a> {
    /// The names under `targets:`.
    pub targets: Vec<&'a str>,
    /// The variables every check can use: `run_id`, `deployment_id`, `stage`, `secrets.NAME`.
    pub base: Vec<String>,
}

/// Check one stage's checks: names, kinds, and each kind's own rules.
pub(crate) fn validate_stage(
    scope: &Scope<'_>,
    stage_path: &str,
    stage: &StageConfig,
) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (index, check) in stage.checks.iter().enumerate() {
        let path = format!("{stage_path}.checks[{index}]");
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
        if let Some(repeat) = &check.repeat {
            repeat.validate(&format!("{path}.repeat"))?;
        }
        if let Some(when) = &check.when {
            when.validate(&format!("{path}.when"))?;
        }
        if let Some(retries) = check.retries
            && retries > MAX_RETRIES
        {
            return Err(ConfigError::invalid(
                format!("{path}.retries"),
                retries,
                "too many retries",
                format!("use at most {MAX_RETRIES}"),
            ));
        }
        match check.kind() {
            Some(KindSpec::Http(http)) => {
                let path = format!("{path}.http");
                validate_request(&path, &http.request(), None, &scope.targets, &scope.base)?;
                validate_expect(&path, &http.expect, &scope.base)?;
            }
            Some(KindSpec::Scenario(scenario)) => {
                validate_scenario(scope, &format!("{path}.scenario"), scenario)?;
            }
            Some(KindSpec::Probe(probe)) => {
                validate_probe(scope, &format!("{path}.probe"), probe)?;
            }
            Some(KindSpec::Alarms(alarms)) => {
                validate_alarms(&format!("{path}.alarms"), alarms)?;
            }
            Some(KindSpec::Metric(metric)) => {
                let path = format!("{path}.metric");
                metric.validate(&path)?;
                let texts = metric
                    .templates()
                    .into_iter()
                    .map(|(field, text)| (format!("{path}.{field}"), text))
                    .collect();
                check_variables(texts, &scope.base)?;
            }
            None => {
                let kinds = check.kinds().count();
                return Err(ConfigError::invalid(
                    path,
                    format!("{:?}", check.name),
                    if kinds == 0 {
                        "the check has no kind"
                    } else {
                        "the check has more than one kind"
                    },
                    "give it exactly one kind key: `http:`, `scenario:`, `probe:`, `metric:` or `alarms:`",
                ));
            }
        }
    }
    Ok(())
}

fn validate_scenario(
    scope: &Scope<'_>,
    path: &str,
    scenario: &ScenarioSpec,
) -> Result<(), ConfigError> {
    validate_target(&format!("{path}.target"), &scenario.target, &scope.targets)?;
    if scenario.steps.is_empty() {
        return Err(ConfigError::invalid(
            format!("{path}.steps"),
            "[]",
            "a scenario needs at least one step",
            "add steps, or use an `http` check for a single request",
        ));
    }
    let mut known = scope.base.clone();
    for (list, steps) in [("steps", &scenario.steps), ("cleanup", &scenario.cleanup)] {
        for (index, step) in steps.iter().enumerate() {
            let step_path = format!("{path}.{list}[{index}]");
            validate_request(
                &step_path,
                &step.request(),
                Some(&scenario.target),
                &scope.targets,
                &known,
            )?;
            validate_expect(&step_path, &step.expect, &known)?;
            for variable in step.capture.keys() {
                let valid_name = !variable.is_empty()
                    && variable
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !variable.starts_with(|c: char| c.is_ascii_digit());
                if !valid_name || RESERVED_VARIABLES.contains(&variable.as_str()) {
                    return Err(ConfigError::invalid(
                        format!("{step_path}.capture"),
                        format!("{variable:?}"),
                        "not a usable variable name",
                        "use letters, digits and _ (not run_id, deployment_id, stage or secrets), e.g. payment_id",
                    ));
                }
            }
            known.extend(step.capture.keys().cloned());
        }
    }
    Ok(())
}

fn validate_alarms(path: &str, alarms: &AlarmsSpec) -> Result<(), ConfigError> {
    if alarms.names.is_empty() && alarms.prefix.is_none() {
        return Err(ConfigError::invalid(
            path,
            "{}",
            "the check names no alarm",
            "add `names: [payments-5xx]` and/or `prefix: payments-`",
        ));
    }
    if alarms.names.len() > MAX_ALARM_NAMES {
        return Err(ConfigError::invalid(
            format!("{path}.names"),
            alarms.names.len(),
            "too many names for one check",
            format!("use at most {MAX_ALARM_NAMES}, or a prefix"),
        ));
    }
    if let Some(blank) = alarms
        .names
        .iter()
        .chain(&alarms.prefix)
        .find(|name| name.trim().is_empty())
    {
        return Err(ConfigError::invalid(
            path,
            format!("{blank:?}"),
            "an empty alarm name or prefix",
            "write the alarm's name as CloudWatch shows it",
        ));
    }
    Ok(())
}

fn validate_probe(scope: &Scope<'_>, path: &str, probe: &ProbeSpec) -> Result<(), ConfigError> {
    validate_request(path, &probe.request(), None, &scope.targets, &scope.base)?;
    if let Some(status) = &probe.status {
        validate_status(&format!("{path}.status"), status)?;
    }
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
    if !(probe.max_error_rate.is_finite() && (0.0..=1.0).contains(&probe.max_error_rate)) {
        return Err(ConfigError::invalid(
            format!("{path}.max_error_rate"),
            probe.max_error_rate,
            "not a fraction from 0 to 1",
            "write e.g. 0.01 for 1 %",
        ));
    }
    if let Some(baseline) = &probe.baseline {
        validate_target(&format!("{path}.baseline"), baseline, &scope.targets)?;
        if Some(baseline.as_str()) == probe.target.as_deref() {
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
