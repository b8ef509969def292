//! Log lines an on-call engineer reads in CloudWatch: one per check, one summary.
//!
//! Fields, not formatted strings, so a Logs Insights query can filter on `outcome` or `check`.
//! Everything logged here has already been through the redactor.

use crate::report::StageReport;

/// Emit one line per check and a summary line.
pub(crate) fn emit(report: &StageReport) {
    for check in &report.checks {
        let duration_ms = u64::try_from(check.duration.as_millis()).unwrap_or(u64::MAX);
        if let Some(stats) = &check.stats {
            let t = &stats.target;
            let b = stats.baseline.as_ref();
            tracing::info!(
                stage = %report.stage,
                check = %check.name,
                requests = t.requests,
                errors = t.errors,
                p50_ms = t.p50_ms,
                p95_ms = t.p95_ms,
                p99_ms = t.p99_ms,
                max_ms = t.max_ms,
                rps = t.rps,
                baseline_p50_ms = b.map(|b| b.p50_ms),
                baseline_p95_ms = b.map(|b| b.p95_ms),
                baseline_p99_ms = b.map(|b| b.p99_ms),
                p95_ratio = stats.p95_ratio,
                mann_whitney_p = stats.judgment.as_ref().map(|j| j.p_value),
                "probe figures"
            );
        }
        match &check.outcome {
            crate::outcome::Outcome::Passed => tracing::info!(
                stage = %report.stage,
                run_id = %report.run_id,
                check = %check.name,
                kind = check.kind,
                outcome = "passed",
                duration_ms,
                attempts = check.attempts,
                "check passed"
            ),
            crate::outcome::Outcome::Failed { failures } => {
                let first = failures.first();
                tracing::warn!(
                    stage = %report.stage,
                    run_id = %report.run_id,
                    check = %check.name,
                    kind = check.kind,
                    required = check.required,
                    outcome = "failed",
                    what = first.map(|m| m.what.as_str()),
                    expected = first.map(|m| m.expected.as_str()),
                    actual = first.map(|m| m.actual.as_str()),
                    message = %check.message,
                    duration_ms,
                    attempts = check.attempts,
                    "check failed"
                )
            }
            crate::outcome::Outcome::Error { error, .. } => tracing::warn!(
                stage = %report.stage,
                run_id = %report.run_id,
                check = %check.name,
                kind = check.kind,
                required = check.required,
                outcome = "error",
                error = %error,
                duration_ms,
                attempts = check.attempts,
                "check could not run"
            ),
        }
    }
    for warning in &report.warnings {
        tracing::warn!(stage = %report.stage, warning = %warning, "stage warning");
    }
    let crate::report::Counts {
        passed,
        failed,
        errored,
    } = report.counts();
    let duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX);
    let summary = report.summary();
    match report.verdict {
        crate::verdict::Verdict::Passed => tracing::info!(
            stage = %report.stage,
            run_id = %report.run_id,
            deployment_id = report.deployment_id.as_deref(),
            verdict = "passed",
            passed, failed, errored, duration_ms,
            summary = %summary,
            "stage verdict"
        ),
        crate::verdict::Verdict::Failed => tracing::error!(
            stage = %report.stage,
            run_id = %report.run_id,
            deployment_id = report.deployment_id.as_deref(),
            verdict = "failed",
            passed, failed, errored, duration_ms,
            errors = %report.errors.join("; "),
            summary = %summary,
            "stage verdict"
        ),
    }
}

/// One line for a watch that goes on in another invocation: where each repeating check stands.
pub(crate) fn watching(
    report: &StageReport,
    state: &crate::executor::WatchState,
    wait: std::time::Duration,
) {
    tracing::info!(
        stage = %report.stage,
        run_id = %report.run_id,
        seq = state.seq,
        next_run_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        summary = %watch_summary(report, state),
        "watch goes on"
    );
}

/// `watching: green 5xx 3 of 29 runs (0 failed), …` for a person.
pub(crate) fn watch_summary(report: &StageReport, state: &crate::executor::WatchState) -> String {
    let parts: Vec<String> = state
        .repeats
        .iter()
        .map(|r| {
            format!(
                "{} {} of {} runs ({} failed, {} errors)",
                r.name, r.figures.runs, r.figures.planned, r.figures.failed, r.figures.errors
            )
        })
        .collect();
    format!("{} watching: {}", report.stage, parts.join("; "))
}
