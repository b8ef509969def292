//! What arrives: the lifecycle hook event.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::EventError;

/// What invoked the hook: CodeDeploy (which wants a status call) or ECS's own blue/green engine
/// (which reads the function's return value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HookEvent {
    /// A CodeDeploy lifecycle hook.
    CodeDeploy(CodeDeployEvent),
    /// An ECS-native lifecycle hook.
    Ecs(EcsEvent),
}

impl HookEvent {
    /// Tell the two shapes apart and read the one that came.
    pub(crate) fn from_value(payload: &Value) -> Result<Self, EventError> {
        let object = payload.as_object().ok_or(EventError::NotAnObject {
            got: json_type(payload),
        })?;
        let ecs = ["executionId", "lifecycleStage"]
            .iter()
            .any(|key| object.contains_key(*key));
        let codedeploy = ["DeploymentId", "LifecycleEventHookExecutionId"]
            .iter()
            .any(|key| object.contains_key(*key));
        if ecs && !codedeploy {
            EcsEvent::from_value(payload).map(HookEvent::Ecs)
        } else {
            CodeDeployEvent::from_value(payload).map(HookEvent::CodeDeploy)
        }
    }
}

/// An ECS-native blue/green lifecycle hook invocation (2025). Both documented shapes are read:
/// the details under `executionDetails`, or (older) at the top level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EcsEvent {
    /// Identifies this hook execution; the run id derives from it.
    pub execution_id: String,
    /// `POST_TEST_TRAFFIC_SHIFT`, …
    pub lifecycle_stage: String,
    /// The service deployment ARN, when sent.
    pub resource_arn: Option<String>,
    /// The service ARN, when sent.
    pub service_arn: Option<String>,
    /// The revision being deployed, when sent.
    pub target_service_revision_arn: Option<String>,
    /// Test traffic per revision ARN, percent.
    pub test_weights: BTreeMap<String, f64>,
    /// Production traffic per revision ARN, percent: where a canary or linear step stands.
    pub production_weights: BTreeMap<String, f64>,
    /// What ECS passes back: the service's configured `hookDetails`, merged with those an
    /// `IN_PROGRESS` answer returned (a watch's state).
    pub hook_details: Option<Value>,
}

impl EcsEvent {
    /// Read an ECS hook payload.
    pub(crate) fn from_value(payload: &Value) -> Result<Self, EventError> {
        let object = payload.as_object().ok_or(EventError::NotAnObject {
            got: json_type(payload),
        })?;
        let text = |value: Option<&Value>| {
            value
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let required = |field: &'static str| {
            text(object.get(field)).ok_or(EventError::MissingEcsField { field })
        };
        // Newer payloads nest the deployment's details; older ones put them at the top level.
        let details = object.get("executionDetails").and_then(Value::as_object);
        let detail = |field: &str| text(details.and_then(|d| d.get(field)).or(object.get(field)));
        let weights = |field: &str| -> BTreeMap<String, f64> {
            details
                .and_then(|d| d.get(field))
                .or(object.get(field))
                .and_then(Value::as_object)
                .map(|map| {
                    map.iter()
                        .filter_map(|(arn, weight)| Some((arn.clone(), weight.as_f64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(EcsEvent {
            execution_id: required("executionId")?,
            lifecycle_stage: required("lifecycleStage")?,
            resource_arn: text(object.get("resourceArn")),
            service_arn: detail("serviceArn"),
            target_service_revision_arn: detail("targetServiceRevisionArn"),
            test_weights: weights("testTrafficWeights"),
            production_weights: weights("productionTrafficWeights"),
            hook_details: object.get("hookDetails").filter(|v| v.is_object()).cloned(),
        })
    }

    /// Green's (the target revision's) share of production traffic, percent, when the event
    /// says: a canary or linear step's weight.
    pub(crate) fn green_weight(&self) -> Option<u8> {
        let target = self.target_service_revision_arn.as_deref()?;
        if self.production_weights.is_empty() {
            return None;
        }
        let weight = self.production_weights.get(target).copied().unwrap_or(0.0);
        Some(weight.clamp(0.0, 100.0).round() as u8)
    }

    /// Whether ECS is rolling the deployment back: it calls the traffic-shift hooks again with
    /// the target revision's weight at 0 (see docs/aws.md). Such a call is answered at
    /// once, so the rollback is never held up by checks of the revision it removes.
    pub(crate) fn is_rollback(&self) -> bool {
        let weights = match self.lifecycle_stage.trim() {
            "TEST_TRAFFIC_SHIFT" => &self.test_weights,
            "PRODUCTION_TRAFFIC_SHIFT" => &self.production_weights,
            _ => return false,
        };
        let Some(target) = self.target_service_revision_arn.as_deref() else {
            return false;
        };
        !weights.is_empty() && weights.get(target).copied().unwrap_or(0.0) <= 0.0
    }

    /// The watch state a previous `IN_PROGRESS` answer handed back, if any.
    pub(crate) fn watch_state(&self) -> Option<&Value> {
        self.hook_details.as_ref()?.get(WATCH_KEY)
    }

    /// The run id, stable for this hook execution.
    pub(crate) fn run_id(&self) -> String {
        run_id_from(&self.execution_id)
    }
}

/// Where a watch's state travels: a key of ECS's `hookDetails`, and of a CodeDeploy hook's
/// continuation payload.
pub(crate) const WATCH_KEY: &str = "greenlightWatch";

/// The ids CodeDeploy sends to a lifecycle hook (and, in a watch's continuation, its state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDeployEvent {
    /// `d-…`
    pub deployment_id: String,
    /// Identifies this hook execution; the status report must name it.
    pub lifecycle_event_hook_execution_id: String,
    /// The watch state, when this invocation continues a watch the hook itself handed on.
    pub watch: Option<Value>,
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
            watch: object.get(WATCH_KEY).cloned(),
        })
    }

    /// The payload of this hook's next invocation, carrying a watch's state.
    pub fn continuation(&self, state: Value) -> Value {
        serde_json::json!({
            "DeploymentId": self.deployment_id,
            "LifecycleEventHookExecutionId": self.lifecycle_event_hook_execution_id,
            WATCH_KEY: state,
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
    fn tells_codedeploy_from_ecs_and_reads_both_ecs_shapes() {
        let codedeploy = HookEvent::from_value(
            &json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "e"}),
        )
        .unwrap();
        assert!(matches!(codedeploy, HookEvent::CodeDeploy(_)));
        let nested = json!({
            "executionId": "exec-1",
            "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
            "resourceArn": "arn:aws:ecs:us-east-1:1:service-deployment/c/s/abc",
            "executionDetails": {
                "serviceArn": "arn:aws:ecs:us-east-1:1:service/c/s",
                "targetServiceRevisionArn": "arn:aws:ecs:us-east-1:1:service-revision/c/s/2",
                "testTrafficWeights": {}, "productionTrafficWeights": {}
            }
        });
        let flat = json!({
            "executionId": "exec-1",
            "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
            "resourceArn": "arn:aws:ecs:us-east-1:1:service-deployment/c/s/abc",
            "serviceArn": "arn:aws:ecs:us-east-1:1:service/c/s",
            "targetServiceRevisionArn": "arn:aws:ecs:us-east-1:1:service-revision/c/s/2"
        });
        for payload in [nested, flat] {
            let HookEvent::Ecs(event) = HookEvent::from_value(&payload).unwrap() else {
                panic!("an ECS event");
            };
            assert_eq!(event.execution_id, "exec-1");
            assert_eq!(event.lifecycle_stage, "POST_TEST_TRAFFIC_SHIFT");
            assert_eq!(
                event.service_arn.as_deref(),
                Some("arn:aws:ecs:us-east-1:1:service/c/s")
            );
            assert_eq!(event.run_id(), run_id_from("exec-1"));
        }
        let e = HookEvent::from_value(&json!({"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT"}))
            .unwrap_err();
        assert!(e.to_string().contains("executionId"), "{e}");
    }

    #[test]
    fn weights_say_where_a_step_stands_and_when_it_is_a_rollback() {
        let event = |stage: &str, production: Value| {
            EcsEvent::from_value(&json!({
                "executionId": "e", "lifecycleStage": stage,
                "executionDetails": {
                    "targetServiceRevisionArn": "green",
                    "testTrafficWeights": {"green": 100},
                    "productionTrafficWeights": production,
                },
                "hookDetails": {"team": "payments", "greenlightWatch": {"v": 1}}
            }))
            .unwrap()
        };
        let step = event("PRODUCTION_TRAFFIC_SHIFT", json!({"blue": 70, "green": 30}));
        assert_eq!(step.green_weight(), Some(30));
        assert!(!step.is_rollback());
        assert_eq!(step.watch_state(), Some(&json!({"v": 1})));
        let back = event("PRODUCTION_TRAFFIC_SHIFT", json!({"blue": 100, "green": 0}));
        assert!(back.is_rollback());
        assert_eq!(back.green_weight(), Some(0));
        // Weights at 0 outside the traffic-shift stages are no rollback.
        assert!(!event("PRE_PRODUCTION_TRAFFIC_SHIFT", json!({"blue": 100})).is_rollback());
        assert_eq!(
            event("POST_PRODUCTION_TRAFFIC_SHIFT", json!({})).green_weight(),
            None
        );
    }

    #[test]
    fn a_continuation_carries_the_ids_and_the_state() {
        let event = CodeDeployEvent::from_value(
            &json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "x"}),
        )
        .unwrap();
        assert_eq!(event.watch, None);
        let next = event.continuation(json!({"seq": 1}));
        let again = CodeDeployEvent::from_value(&next).unwrap();
        assert_eq!(again.deployment_id, "d-1");
        assert_eq!(again.watch, Some(json!({"seq": 1})));
    }

    #[test]
    fn run_id_is_stable_and_distinct() {
        assert_eq!(run_id_from("a"), run_id_from("a"));
        assert_ne!(run_id_from("a"), run_id_from("b"));
        assert_eq!(run_id_from("a").len(), 3 + 16);
    }
}
