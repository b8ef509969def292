//! The answer ECS's own blue/green engine reads: the hook function's return value.

use serde_json::{Value, json};

use crate::report::StageReport;

/// `{"hookStatus": "SUCCEEDED" | "FAILED", "hookDetails": {…}}` for a finished stage.
pub(crate) fn response(report: &StageReport) -> Value {
    json!({
        "hookStatus": report.verdict.status().ecs,
        "hookDetails": {
            "greenlightVerdict": report.verdict.as_str(),
            "greenlightSummary": report.summary(),
        },
    })
}

/// `IN_PROGRESS`: ECS calls again after `callBackDelay` seconds (when the next run is due,
/// at least 1), handing back `hookDetails` with the watch's state, `sealed` (see `seal`).
pub(crate) fn in_progress(
    report: &StageReport,
    state: &crate::executor::WatchState,
    sealed: Value,
    wait: std::time::Duration,
) -> Value {
    let delay = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    json!({
        "hookStatus": "IN_PROGRESS",
        "callBackDelay": delay.max(1),
        "hookDetails": {
            crate::event::WATCH_KEY: sealed,
            "greenlightSummary": crate::report::log::watch_summary(report, state),
        },
    })
}

/// The answer to a rollback's traffic-shift hook: let it proceed.
pub(crate) fn rollback() -> Value {
    json!({
        "hookStatus": "SUCCEEDED",
        "hookDetails": {
            "greenlightVerdict": "rollback",
            "greenlightSummary": "ECS is rolling back: answered at once, no checks run",
        },
    })
}
