//! The verdict of a stage: failed if any required check did not pass, or anything else went wrong.

use serde::Serialize;

use crate::outcome::CheckResult;

/// Pass or fail for a whole stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every required check passed and nothing else went wrong.
    Passed,
    /// Roll back.
    Failed,
}

impl Verdict {
    /// Decide. `stage_errors` are problems outside any check (bad config, a panic): any one fails
    /// the stage, because an unknown state is never a pass.
    pub fn decide(checks: &[CheckResult], stage_errors: &[String]) -> Verdict {
        let required_failed = checks
            .iter()
            .any(|check| check.required && !check.outcome.is_passed());
        if required_failed || !stage_errors.is_empty() {
            Verdict::Failed
        } else {
            Verdict::Passed
        }
    }

    /// The verdict as each engine spells it: the one mapping from verdict to status.
    pub fn status(self) -> HookStatus {
        match self {
            Verdict::Passed => HookStatus {
                codedeploy: "Succeeded",
                ecs: "SUCCEEDED",
            },
            Verdict::Failed => HookStatus {
                codedeploy: "Failed",
                ecs: "FAILED",
            },
        }
    }

    /// The status CodeDeploy understands (`PutLifecycleEventHookExecutionStatus`).
    pub fn codedeploy_status(self) -> &'static str {
        self.status().codedeploy
    }

    /// `passed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
        }
    }
}

/// A verdict as a lifecycle hook reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookStatus {
    /// CodeDeploy's `LifecycleEventStatus`: `Succeeded` or `Failed`.
    pub codedeploy: &'static str,
    /// ECS's `hookStatus`: `SUCCEEDED` or `FAILED`.
    pub ecs: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use std::time::Duration;

    fn result(required: bool, outcome: Outcome) -> CheckResult {
        CheckResult::new("c", "http", required, outcome, Duration::ZERO, 1)
    }

    #[test]
    fn required_failures_and_errors_fail_optional_ones_do_not() {
        let pass = result(true, Outcome::Passed);
        let fail = result(true, Outcome::mismatch("status", "200", "500"));
        let error = result(true, Outcome::error("connection refused"));
        let optional = result(false, Outcome::error("connection refused"));
        assert_eq!(
            Verdict::decide(std::slice::from_ref(&pass), &[]),
            Verdict::Passed
        );
        assert_eq!(
            Verdict::decide(&[pass.clone(), optional], &[]),
            Verdict::Passed
        );
        assert_eq!(Verdict::decide(&[pass.clone(), fail], &[]), Verdict::Failed);
        assert_eq!(Verdict::decide(&[error], &[]), Verdict::Failed);
        assert_eq!(
            Verdict::decide(&[pass], &["config".into()]),
            Verdict::Failed
        );
        assert_eq!(Verdict::decide(&[], &[]), Verdict::Passed);
    }
}
