//! Telling the world: the stage report, its log lines, its text and JSON forms, the CodeDeploy
//! status call and the answer ECS reads.

pub(crate) mod codedeploy;
pub(crate) mod ecs;
pub(crate) mod emf;
pub(crate) mod junit;
pub(crate) mod log;
pub(crate) mod markdown;
pub(crate) mod text;

use std::time::Duration;

use serde::Serialize;

use crate::outcome::{CheckResult, Outcome, millis};
use crate::stage::Stage;
use crate::verdict::Verdict;

/// Everything known about one run of a stage. Serialized as the CLI's JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage these checks ran for.
    pub stage: Stage,
    /// Passed or failed.
    pub verdict: Verdict,
    /// Stable per hook execution (`gl-…`), or per CLI run.
    pub run_id: String,
    /// The CodeDeploy deployment, when run by a hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Each check, in config order.
    pub checks: Vec<CheckResult>,
    /// Problems outside any check (bad config, a panic); any one fails the stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Things an operator should know that do not fail the stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Checks that did not run at this traffic weight (`when`), and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedCheck>,
    /// Wall time of the stage.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

pub(crate) use crate::plan::SkippedCheck;

impl StageReport {
    /// A report for checks that ran.
    pub fn new(
        stage: Stage,
        run_id: String,
        checks: Vec<CheckResult>,
        errors: Vec<String>,
        warnings: Vec<String>,
        duration: Duration,
    ) -> Self {
        StageReport {
            stage,
            verdict: Verdict::decide(&checks, &errors),
            run_id,
            deployment_id: None,
            checks,
            errors,
            warnings,
            skipped: Vec::new(),
            duration,
        }
    }

    /// A stage that could not run at all (config error, panic): always failed.
    pub fn not_run(stage: Stage, run_id: String, error: String, duration: Duration) -> Self {
        StageReport::new(stage, run_id, Vec::new(), vec![error], Vec::new(), duration)
    }

    /// The same report with one more stage error; the verdict is derived again (so Failed).
    pub fn with_error(mut self, error: String) -> Self {
        self.errors.push(error);
        self.verdict = Verdict::decide(&self.checks, &self.errors);
        self
    }

    /// Attach the deployment id.
    pub fn for_deployment(mut self, deployment_id: impl Into<String>) -> Self {
        self.deployment_id = Some(deployment_id.into());
        self
    }

    /// Counts of passed, failed and errored checks.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for check in &self.checks {
            match check.outcome {
                Outcome::Passed => counts.passed += 1,
                Outcome::Failed { .. } => counts.failed += 1,
                Outcome::Error { .. } => counts.errored += 1,
            }
        }
        counts
    }

    /// One line for a person: why the stage failed, or that it passed.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        let mut reasons: Vec<String> = self.errors.clone();
        reasons.extend(
            self.checks
                .iter()
                .filter(|check| !check.outcome.is_passed())
                .map(|check| {
                    let optional = if check.required { "" } else { " (optional)" };
                    format!("{}{optional}: {}", check.name, check.message)
                }),
        );
        let head = format!("{} {}: {counts}", self.stage, self.verdict.as_str());
        if reasons.is_empty() {
            head
        } else {
            format!("{head} — {}", reasons.join(" | "))
        }
    }
}

/// How the checks of a stage ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Checks that passed.
    pub passed: usize,
    /// Checks whose expectations did not hold.
    pub failed: usize,
    /// Checks that could not run.
    pub errored: usize,
}

impl std::fmt::Display for Counts {
    /// `3 passed, 1 failed, 1 error`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let errors = if self.errored == 1 { "error" } else { "errors" };
        write!(
            f,
            "{} passed, {} failed, {} {errors}",
            self.passed, self.failed, self.errored
        )
    }
}

/// Write a finished stage where operators look: a log line per check and the verdict (`log`),
/// and EMF records for CloudWatch metrics (`emf`). The one place both are written.
pub(crate) fn publish(report: &StageReport) {
    log::emit(report);
    emf::emit(report);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_outcomes_and_read_as_english() {
        let check = |outcome| CheckResult::new("c", "http", true, outcome, Duration::ZERO, 1);
        let report = StageReport::new(
            Stage::AfterAllowTraffic,
            "gl-1".into(),
            vec![
                check(Outcome::Passed),
                check(Outcome::mismatch("status", "200", "500")),
                check(Outcome::error("refused")),
            ],
            Vec::new(),
            Vec::new(),
            Duration::ZERO,
        );
        let counts = report.counts();
        assert_eq!((counts.passed, counts.failed, counts.errored), (1, 1, 1));
        assert_eq!(counts.to_string(), "1 passed, 1 failed, 1 error");
        let none = Counts::default();
        assert_eq!(none.to_string(), "0 passed, 0 failed, 0 errors");
    }
}
