//! Telling the world: the stage report, its log lines, its text and JSON forms, and the
//! CodeDeploy status call.

pub mod codedeploy;
pub mod log;
pub mod text;

use std::time::Duration;

use serde::Serialize;

use crate::outcome::{CheckResult, millis};
use crate::stage::Stage;
use crate::verdict::Verdict;

/// Everything known about one run of a stage. Serialized as the CLI's JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage.
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
    /// Wall time of the stage.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

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
            duration,
        }
    }

    /// A stage that could not run at all (config error, panic): always failed.
    pub fn not_run(stage: Stage, run_id: String, error: String, duration: Duration) -> Self {
        StageReport::new(stage, run_id, Vec::new(), vec![error], Vec::new(), duration)
    }

    /// Attach the deployment id.
    pub fn for_deployment(mut self, deployment_id: impl Into<String>) -> Self {
        self.deployment_id = Some(deployment_id.into());
        self
    }

    /// Counts of passed, failed and errored checks.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.checks
            .iter()
            .fold((0, 0, 0), |(p, f, e), check| match check.outcome.label() {
                "passed" => (p + 1, f, e),
                "failed" => (p, f + 1, e),
                _ => (p, f, e + 1),
            })
    }

    /// One line for a person: why the stage failed, or that it passed.
    pub fn summary(&self) -> String {
        let (passed, failed, errored) = self.counts();
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
        let head = format!(
            "{} {}: {passed} passed, {failed} failed, {errored} errors",
            self.stage,
            self.verdict.as_str()
        );
        if reasons.is_empty() {
            head
        } else {
            format!("{head} — {}", reasons.join(" | "))
        }
    }
}
