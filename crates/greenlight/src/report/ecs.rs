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
