//! CloudWatch Embedded Metric Format: one JSON line on stdout per stage verdict and per check,
//! from which CloudWatch Logs makes metrics with no agent and no extra permission, so a team
//! can graph and alarm on its releases. Dimensions are low-cardinality only (function, stage,
//! check); the run and deployment ids ride along as properties, searchable but never metrics'
//! dimensions.
//!
//! `GREENLIGHT_EMF_NAMESPACE` names the namespace (`greenlight` by default); `off` turns the
//! records off.

use serde_json::{Map, Value, json};

use crate::outcome::Outcome;
use crate::report::StageReport;

/// The namespace when the environment does not name one.
pub(crate) const DEFAULT_NAMESPACE: &str = "greenlight";

/// The most metrics one directive may carry (the EMF specification's limit).
pub(crate) const MAX_METRICS: usize = 100;

/// The EMF records of a finished stage: the stage's, then one per check.
pub(crate) fn records(
    report: &StageReport,
    function: &str,
    namespace: &str,
    now_ms: u64,
) -> Vec<Value> {
    let counts = report.counts();
    let mut records = Vec::with_capacity(report.checks.len() + 1);
    let mut stage = Record::new(namespace, now_ms, &["Function", "Stage"]);
    stage.dimension("Function", function);
    stage.dimension("Stage", report.stage.as_str());
    stage.property("RunId", &report.run_id);
    if let Some(deployment) = &report.deployment_id {
        stage.property("DeploymentId", deployment);
    }
    stage.property("Verdict", report.verdict.as_str());
    stage.metric(
        "StagePassed",
        "Count",
        f64::from(u8::from(report.verdict == crate::verdict::Verdict::Passed)),
    );
    stage.metric(
        "StageDuration",
        "Milliseconds",
        report.duration.as_secs_f64() * 1000.0,
    );
    stage.metric("ChecksPassed", "Count", counts.passed as f64);
    stage.metric("ChecksFailed", "Count", counts.failed as f64);
    stage.metric("ChecksErrored", "Count", counts.errored as f64);
    records.push(stage.finish());
    for check in &report.checks {
        let mut record = Record::new(namespace, now_ms, &["Function", "Stage", "Check"]);
        record.dimension("Function", function);
        record.dimension("Stage", report.stage.as_str());
        record.dimension("Check", &check.name);
        record.property("RunId", &report.run_id);
        record.property("Kind", check.kind);
        record.property("Outcome", check.outcome.label());
        record.metric(
            "CheckPassed",
            "Count",
            f64::from(u8::from(matches!(check.outcome, Outcome::Passed))),
        );
        record.metric(
            "CheckDuration",
            "Milliseconds",
            check.duration.as_secs_f64() * 1000.0,
        );
        if let Some(stats) = &check.stats {
            let t = &stats.target;
            record.metric("ProbeP50", "Milliseconds", t.p50_ms);
            record.metric("ProbeP95", "Milliseconds", t.p95_ms);
            record.metric("ProbeP99", "Milliseconds", t.p99_ms);
            record.metric("ProbeErrorRate", "Percent", t.error_rate * 100.0);
        }
        if let Some(metric) = &check.metric {
            if let Some(value) = metric.green.value {
                record.metric("MetricValue", "None", value);
            }
            if let Some(value) = metric.blue.as_ref().and_then(|b| b.value) {
                record.metric("BaselineValue", "None", value);
            }
        }
        if let Some(repeat) = &check.repeat {
            record.metric("RepeatRuns", "Count", f64::from(repeat.runs));
            record.metric("RepeatFailed", "Count", f64::from(repeat.failed));
        }
        records.push(record.finish());
    }
    records
}

/// Print a finished stage's records on stdout, where Lambda's log agent picks them up.
pub(crate) fn emit(report: &StageReport) {
    let namespace =
        std::env::var("GREENLIGHT_EMF_NAMESPACE").unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    if namespace.eq_ignore_ascii_case("off") {
        return;
    }
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
    let now_ms = crate::budget::epoch_ms(std::time::SystemTime::now());
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for record in records(report, &function, &namespace, now_ms) {
        // One line per record, written whole: the log agent reads lines.
        let _ = writeln!(out, "{record}");
    }
}

/// One EMF record under construction.
struct Record {
    root: Map<String, Value>,
    metrics: Vec<Value>,
    namespace: String,
    dimensions: Vec<String>,
    timestamp: u64,
}

impl Record {
    fn new(namespace: &str, timestamp: u64, dimensions: &[&str]) -> Self {
        Record {
            root: Map::new(),
            metrics: Vec::new(),
            namespace: namespace.chars().take(255).collect(),
            dimensions: dimensions.iter().map(|d| (*d).to_owned()).collect(),
            timestamp,
        }
    }

    /// A dimension's value: a string of at most 1024 characters (CloudWatch's limit).
    fn dimension(&mut self, name: &str, value: &str) {
        let value: String = value.chars().take(1024).collect();
        self.root.insert(name.to_owned(), Value::from(value));
    }

    fn property(&mut self, name: &str, value: &str) {
        self.root.insert(name.to_owned(), Value::from(value));
    }

    /// A metric, unless its value is not a number CloudWatch accepts.
    fn metric(&mut self, name: &str, unit: &str, value: f64) {
        if !value.is_finite() || self.metrics.len() == MAX_METRICS {
            return;
        }
        self.root.insert(name.to_owned(), json!(value));
        self.metrics.push(json!({"Name": name, "Unit": unit}));
    }

    fn finish(mut self) -> Value {
        self.root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": self.timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [self.dimensions],
                    "Metrics": self.metrics,
                }],
            }),
        );
        Value::Object(self.root)
    }
}
