//! What a check came to. A failed check is data (what was expected, what came), never an `Err`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::redact::Redactor;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// What was checked: `status`, `header content-type`, `json /status`, `latency`, `body`.
    pub what: String,
    /// What the config asked for.
    pub expected: String,
    /// What came back.
    pub actual: String,
}

impl Mismatch {
    /// One expectation that did not hold: what was expected, what came, and where.
    pub fn new(
        what: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Mismatch {
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }
}

/// The result of running a check once (or, after retries, the last attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// The check ran and at least one expectation did not hold.
    Failed {
        /// Each expectation that failed.
        failures: Vec<Mismatch>,
    },
    /// The check could not run: connection refused, DNS, TLS, a panic, no time left.
    Error {
        /// Why it could not run, and what to fix.
        error: String,
        /// Expectations that had already failed before it stopped being able to run (a
        /// scenario step that failed, then a cleanup that could not connect).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        failures: Vec<Mismatch>,
    },
}

impl Outcome {
    /// A single failed expectation.
    pub fn mismatch(
        what: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Outcome::Failed {
            failures: vec![Mismatch::new(what, expected, actual)],
        }
    }

    /// A check that could not run.
    pub fn error(error: impl Into<String>) -> Self {
        Outcome::Error {
            error: error.into(),
            failures: Vec::new(),
        }
    }

    /// `passed`, `failed` or `error`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed { .. } => "failed",
            Outcome::Error { .. } => "error",
        }
    }

    /// Whether it passed.
    pub fn is_passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }

    /// One line for a person: `status: expected 200, got 500; …`.
    pub fn message(&self) -> String {
        match self {
            Outcome::Passed => "ok".to_owned(),
            Outcome::Failed { failures } => mismatches(failures),
            Outcome::Error { error, failures } if failures.is_empty() => error.clone(),
            Outcome::Error { error, failures } => format!("{error}; {}", mismatches(failures)),
        }
    }

    /// The same outcome with every text scrubbed.
    pub fn redacted(self, redactor: &Redactor) -> Self {
        match self {
            Outcome::Passed => Outcome::Passed,
            Outcome::Failed { failures } => Outcome::Failed {
                failures: scrub_all(failures, redactor),
            },
            Outcome::Error { error, failures } => Outcome::Error {
                error: redactor.scrub(&error),
                failures: scrub_all(failures, redactor),
            },
        }
    }
}

fn mismatches(failures: &[Mismatch]) -> String {
    failures
        .iter()
        .map(|m| format!("{}: expected {}, got {}", m.what, m.expected, m.actual))
        .collect::<Vec<_>>()
        .join("; ")
}

fn scrub_all(failures: Vec<Mismatch>, redactor: &Redactor) -> Vec<Mismatch> {
    failures
        .into_iter()
        .map(|m| Mismatch {
            what: redactor.scrub(&m.what),
            expected: redactor.scrub(&m.expected),
            actual: redactor.scrub(&m.actual),
        })
        .collect()
}

/// A p-value for a person: `= 0.012`, `= 3.1e-5`, or `< 1e-15` where a double cannot tell
/// it from zero (so a report never says `p = 0`).
pub(crate) fn format_p(p: f64) -> String {
    if p < 1e-15 {
        "< 1e-15".to_owned()
    } else if p < 1e-3 {
        format!("= {p:.1e}")
    } else {
        format!("= {p:.3}")
    }
}

/// A moment as RFC 3339, to the second; a moment RFC 3339 cannot write (before 1970 or after
/// 9999) says which side it falls on instead.
pub(crate) fn rfc3339(at: std::time::SystemTime) -> String {
    use std::fmt::Write as _;
    // humantime panics on a time before 1970 and fails from year 10000 on (which `to_string`
    // turns into a panic): both come from numbers AWS or a peer sent, so neither may panic.
    if at < std::time::UNIX_EPOCH {
        return "before 1970-01-01T00:00:00Z".to_owned();
    }
    let mut text = String::new();
    match write!(text, "{}", humantime::format_rfc3339_seconds(at)) {
        Ok(()) => text,
        Err(_) => "after 9999-12-31T23:59:59Z".to_owned(),
    }
}

/// The latency figures of one side of a probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Requests completed (answered or failed).
    pub requests: u64,
    /// Requests that failed: no answer, a timeout, or an unexpected status.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Median latency of the answered requests, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Completed requests per second of wall time.
    pub rps: f64,
}

/// The Mann-Whitney U judgment of green against blue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeStats {
    /// `mann-whitney`.
    pub judge: &'static str,
    /// U statistic of the green sample.
    pub u: f64,
    /// One-sided p-value for "green is slower than blue".
    pub p_value: f64,
    /// Green median / blue median.
    pub effect: f64,
    /// Hodges-Lehmann estimate of how much slower green is, ms (negative: faster).
    pub shift_ms: f64,
    /// Its one-sided lower confidence bound, ms: green is slower by at least this.
    pub shift_lower_ms: f64,
    /// That bound as a fraction of blue's median: what the tolerance is held against.
    pub relative_shift_lower: f64,
    /// Blue's slowest latency × (1 + tolerance), ms: the tail threshold.
    pub tail_threshold_ms: f64,
    /// Green requests slower than the threshold.
    pub tail_count: u64,
    /// How many chance alone would give.
    pub tail_expected: f64,
    /// The exact one-sided p-value of that count.
    pub tail_p: f64,
    /// Where blue's fitted tail expects 1 green request in 100 probes, ms (none when blue's
    /// slowest requests are all equal).
    pub far_threshold_ms: Option<f64>,
    /// Green requests beyond it.
    pub far_count: u64,
    /// How many the fit expects there.
    pub far_expected: f64,
    /// The Poisson p-value of the count under the fit.
    pub far_p: f64,
    /// Samples compared per side (green, blue).
    pub samples: (usize, usize),
}

/// A probe's figures: green, and blue when a baseline ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeStats {
    /// Green (or whichever target the probe sent to), as measured.
    #[serde(flatten)]
    pub target: LatencyStats,
    /// The baseline target, interleaved with the probed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<LatencyStats>,
    /// Green p95 / blue p95.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ratio: Option<f64>,
    /// The statistical judgment, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judgment: Option<JudgeStats>,
}

/// One side of a metric check: the datapoints judged and what they reduced to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSide {
    /// (time, value), oldest first.
    pub datapoints: Vec<(String, f64)>,
    /// The reduced value; none without datapoints.
    pub value: Option<f64>,
}

/// A metric check's figures: both sides' datapoints, the reduced values and the bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricFigures {
    /// How the datapoints were combined: `sum`, `avg`, `max`, `min`, `last`.
    pub reduce: &'static str,
    /// Green's side.
    pub green: MetricSide,
    /// Blue's side, with a baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue: Option<MetricSide>,
    /// What the reduced value was held to.
    pub bound: String,
}

/// One run of a repeating check, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its index: 0 for the first run (the `{{repeat}}` it saw).
    pub index: u32,
    /// When it started, RFC 3339.
    pub at: String,
    /// `passed`, `failed` or `error`.
    pub outcome: String,
    /// What it found (its figures, or what failed), cut to 120 characters.
    pub message: String,
}

/// A repeating check's counts and its last runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepeatFigures {
    /// Runs the watch plans.
    pub planned: u32,
    /// Runs made.
    pub runs: u32,
    /// Runs that failed.
    pub failed: u32,
    /// Runs that could not run.
    pub errors: u32,
    /// Failed runs allowed.
    pub failure_limit: u32,
    /// Whether the watch stopped before every run, because the stage had already failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
    /// The last runs (at most `watch::RECENT_RUNS`), oldest first.
    pub recent: Vec<RunRecord>,
}

/// What one run of a check produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ran {
    /// How it ended.
    pub outcome: Outcome,
    /// A probe's figures.
    pub stats: Option<ProbeStats>,
    /// A metric check's figures.
    pub metric: Option<MetricFigures>,
}

impl From<Outcome> for Ran {
    fn from(outcome: Outcome) -> Self {
        Ran {
            outcome,
            stats: None,
            metric: None,
        }
    }
}

/// A finished check: its name and kind, how it ended, how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The check's name from config.
    pub name: String,
    /// `http`, …
    pub kind: &'static str,
    /// Whether a failure fails the stage.
    pub required: bool,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time including retries.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// How many attempts were made (1 when it passed first time).
    pub attempts: u32,
    /// The outcome in one line.
    pub message: String,
    /// A probe's latency figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<ProbeStats>,
    /// A metric check's datapoints, reduced values and bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricFigures>,
    /// A repeating check's counts and last runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatFigures>,
}

impl CheckResult {
    /// Assemble a result; the message is derived from the outcome.
    pub fn new(
        name: impl Into<String>,
        kind: &'static str,
        required: bool,
        outcome: Outcome,
        duration: Duration,
        attempts: u32,
    ) -> Self {
        let message = outcome.message();
        CheckResult {
            name: name.into(),
            kind,
            required,
            outcome,
            duration,
            attempts,
            message,
            stats: None,
            metric: None,
            repeat: None,
        }
    }

    /// Attach what the run measured: a probe's or a metric check's figures.
    pub(crate) fn with_figures(mut self, ran: &mut Ran) -> Self {
        self.stats = ran.stats.take();
        self.metric = ran.metric.take();
        self
    }

    /// The same result with every text scrubbed (and its message derived again).
    pub(crate) fn redacted(mut self, redactor: &Redactor) -> Self {
        self.outcome = self.outcome.redacted(redactor);
        self.message = self.outcome.message();
        self
    }
}

/// Serialize a duration as whole milliseconds.
pub(crate) fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_documented_fields() {
        let result = CheckResult::new(
            "health",
            "http",
            true,
            Outcome::mismatch("status", "200", "500"),
            Duration::from_millis(12),
            3,
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["name"], "health");
        assert_eq!(json["kind"], "http");
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["duration_ms"], 12);
        assert_eq!(json["message"], "status: expected 200, got 500");
        assert_eq!(json["failures"][0]["actual"], "500");
    }

    #[test]
    fn p_values_never_print_as_zero() {
        assert_eq!(format_p(0.0), "< 1e-15");
        assert_eq!(format_p(3.14e-5), "= 3.1e-5");
        assert_eq!(format_p(0.0123), "= 0.012");
    }

    #[test]
    fn an_error_keeps_the_failures_that_came_before_it() {
        let out = Outcome::Error {
            error: "cleanup 1: could not connect".into(),
            failures: vec![Mismatch::new("step 1: status", "201", "500")],
        };
        assert_eq!(
            out.message(),
            "cleanup 1: could not connect; step 1: status: expected 201, got 500"
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["outcome"], "error");
        assert_eq!(json["failures"][0]["actual"], "500");
        assert!(
            serde_json::to_value(Outcome::error("x"))
                .unwrap()
                .get("failures")
                .is_none()
        );
    }

    #[test]
    fn redaction_reaches_every_text() {
        let r = Redactor::new(["topsecret".to_owned()]);
        let out = Outcome::mismatch("body", "topsecret", "has topsecret").redacted(&r);
        assert!(!format!("{out:?}").contains("topsecret"));
        let out = Outcome::error("topsecret leaked").redacted(&r);
        assert!(!out.message().contains("topsecret"));
    }
}
