//! What arrives: the lifecycle hook event.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::EventError;

/// The ids CodeDeploy sends to a lifecycle hook, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDeployEvent {
    /// `d-…`
    pub deployment_id: String,
    /// Identifies this hook execution; the status report must name it.
    pub lifecycle_event_hook_execution_id: String,
}

impl CodeDeployEvent {
    /// Read the ids from an invocation payload. Any other fields are ignored.
    pub fn from_value(payload: &Value) -> Result<Self, EventError> {
        let object = payload.as_object().ok_or(EventError::NotAnObject {
            got: json_type(payload),
        })?;
        let id = |field: &'static str| {
            object
                .get(field)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or(EventError::MissingId { field })
        };
        Ok(CodeDeployEvent {
            deployment_id: id("DeploymentId")?,
            lifecycle_event_hook_execution_id: id("LifecycleEventHookExecutionId")?,
        })
    }

    /// The run id: stable for one hook execution, so a retried invocation re-uses the same
    /// idempotency keys and never creates a second test payment.
    pub fn run_id(&self) -> String {
        run_id_from(&self.lifecycle_event_hook_execution_id)
    }
}

/// Derive a short run id from a hook execution id (`gl-` and 16 hex digits of its SHA-256).
pub fn run_id_from(execution_id: &str) -> String {
    let digest = Sha256::digest(execution_id.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("gl-{hex}")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_two_ids() {
        let event = CodeDeployEvent::from_value(&json!({
            "DeploymentId": "d-ABC123",
            "LifecycleEventHookExecutionId": "eyJl...",
            "extra": 1
        }))
        .unwrap();
        assert_eq!(event.deployment_id, "d-ABC123");
        assert_eq!(event.lifecycle_event_hook_execution_id, "eyJl...");
    }

    #[test]
    fn rejects_what_is_not_a_hook_event() {
        let cases = [
            (json!("hello"), "not a JSON object"),
            (json!([1]), "an array"),
            (
                json!({"DeploymentId": "d-1"}),
                "LifecycleEventHookExecutionId",
            ),
            (
                json!({"LifecycleEventHookExecutionId": "x"}),
                "DeploymentId",
            ),
            (
                json!({"DeploymentId": "", "LifecycleEventHookExecutionId": "x"}),
                "DeploymentId",
            ),
            (
                json!({"DeploymentId": 5, "LifecycleEventHookExecutionId": "x"}),
                "DeploymentId",
            ),
        ];
        for (payload, wanted) in cases {
            let e = CodeDeployEvent::from_value(&payload)
                .unwrap_err()
                .to_string();
            assert!(e.contains(wanted), "{payload}: {e}");
            assert!(
                e.contains("events/"),
                "the message points at the samples: {e}"
            );
        }
    }

    #[test]
    fn run_id_is_stable_and_distinct() {
        assert_eq!(run_id_from("a"), run_id_from("a"));
        assert_ne!(run_id_from("a"), run_id_from("b"));
        assert_eq!(run_id_from("a").len(), 3 + 16);
    }
}
