//! The `scenario` check: ordered HTTP steps with captures and templated values, then cleanup
//! steps that always run, so a test payment created by step one is refunded even when step two
//! fails or the budget runs out.

use std::time::Duration;

use tokio::time::Instant;

use crate::check::RunContext;
use crate::check::http::Exchange;
use crate::outcome::{Mismatch, Outcome};
use crate::redact::Redactor;
use crate::template::Vars;

/// A scenario ready to run: its steps and cleanup steps, templates not yet rendered.
#[derive(Debug, Clone)]
pub(crate) struct ScenarioCheck {
    /// Run in order until one fails.
    pub steps: Vec<Step>,
    /// Run afterwards, always.
    pub cleanup: Vec<Step>,
}

/// One planned step: a labelled exchange.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// `step create`, `step 2`, `cleanup 1`.
    pub label: String,
    /// The request, its expectations and captures.
    pub exchange: Exchange,
}

impl ScenarioCheck {
    /// The longest one run may take (every step and cleanup step at its timeout).
    pub(crate) fn worst_case(&self) -> Duration {
        self.steps
            .iter()
            .chain(&self.cleanup)
            .map(Step::timeout)
            .sum()
    }

    /// Run the steps, then the cleanup, before `deadline`. Cleanup time is kept back from the
    /// steps: a step that could not finish before the cleanup reserve is not started.
    ///
    /// A step or cleanup step that could not be sent makes the outcome an `error` (the
    /// expectations that had failed by then travel with it); otherwise any mismatch fails it.
    pub(crate) async fn run(
        &self,
        ctx: &RunContext,
        redactor: &mut Redactor,
        deadline: Instant,
    ) -> Outcome {
        let mut vars = ctx.vars.clone();
        let reserve: Duration = self.cleanup.iter().map(Step::timeout).sum();
        let steps_deadline = deadline.checked_sub(reserve).unwrap_or_else(Instant::now);
        let mut failures = Vec::new();
        let mut errors = Vec::new();
        for step in &self.steps {
            if Instant::now() + step.timeout() > steps_deadline {
                failures.push(Mismatch::new(
                    step.label.clone(),
                    format!(
                        "time to run (up to {})",
                        humantime::format_duration(step.timeout())
                    ),
                    "the stage budget ran out before it could start (cleanup time kept back)",
                ));
                break;
            }
            if !step
                .execute(&mut vars, redactor, &mut failures, &mut errors)
                .await
            {
                break;
            }
        }
        for step in &self.cleanup {
            if !step.ready(&vars) {
                // What it would undo was never created (its id was never captured).
                tracing::debug!(step = %step.label, "cleanup step skipped: its variables were never captured");
                continue;
            }
            step.execute(&mut vars, redactor, &mut failures, &mut errors)
                .await;
        }
        match (failures.is_empty(), errors.is_empty()) {
            (true, true) => Outcome::Passed,
            (false, true) => Outcome::Failed { failures },
            (_, false) => Outcome::Error {
                error: errors.join("; "),
                failures,
            },
        }
    }
}

impl Step {
    fn timeout(&self) -> Duration {
        self.exchange.request.timeout
    }

    /// Whether every variable this step uses has a value.
    fn ready(&self, vars: &Vars) -> bool {
        self.exchange
            .request
            .templates()
            .into_iter()
            .all(|text| vars.can_render(text))
    }

    /// Run the step, adding what went wrong under its label; whether it passed.
    async fn execute(
        &self,
        vars: &mut Vars,
        redactor: &mut Redactor,
        failures: &mut Vec<Mismatch>,
        errors: &mut Vec<String>,
    ) -> bool {
        match self.exchange.run(vars, redactor).await {
            Ok(found) => {
                let passed = found.is_empty();
                failures.extend(found.into_iter().map(|m| Mismatch {
                    what: format!("{}: {}", self.label, m.what),
                    ..m
                }));
                passed
            }
            Err(error) => {
                errors.push(format!("{}: {error}", self.label));
                false
            }
        }
    }
}
