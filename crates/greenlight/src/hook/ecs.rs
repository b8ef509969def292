//! An ECS-native hook: ECS reads the verdict from the return value, and calls again with the
//! watch's state in `hookDetails` while the hook answers `IN_PROGRESS`.

use std::time::Duration;

use serde_json::Value;

use super::{Engine, Hook, Invocation};
use crate::event::EcsEvent;
use crate::hook::seal::Binding;
use crate::report::StageReport;
use crate::report::codedeploy::StatusSink;
use crate::stage::Stage;
use crate::suite::StageRun;

impl<S: StatusSink> Hook<S> {
    /// ECS reads the verdict from the return value: `{"hookStatus": "SUCCEEDED" | "FAILED"}`,
    /// or `IN_PROGRESS` with a `callBackDelay` and the watch's sealed state in `hookDetails`
    /// while a watch goes on. A stage this function does not check is FAILED with the reason,
    /// never a silent pass; a rollback is answered SUCCEEDED at once.
    pub(super) async fn handle_ecs(&self, event: EcsEvent, deadline_ms: u64) -> Value {
        let deployment_id = event
            .resource_arn
            .clone()
            .or_else(|| event.service_arn.clone())
            .unwrap_or_else(|| event.execution_id.clone());
        tracing::info!(
            stage = %self.stage,
            lifecycle_stage = %event.lifecycle_stage,
            execution_id = %event.execution_id,
            deployment_id = %deployment_id,
            target_service_revision_arn = event.target_service_revision_arn.as_deref(),
            green_weight = event.green_weight(),
            continuation = event.watch_state().is_some(),
            run_id = %event.run_id(),
            "hook invoked by ECS"
        );
        if event.is_rollback() {
            tracing::warn!(
                stage = %self.stage,
                lifecycle_stage = %event.lifecycle_stage,
                deployment_id = %deployment_id,
                "ECS is rolling the deployment back: answered SUCCEEDED at once, so nothing holds the rollback up"
            );
            return crate::report::ecs::rollback();
        }
        let report = match Stage::from_ecs_name(&event.lifecycle_stage) {
            Some(stage) if stage == self.stage => {
                let target_groups = match (self.target_groups_needed(), self.suite.as_ref()) {
                    (Some(spec), Ok(suite)) => Some(
                        crate::discovery::green_from_ecs(
                            suite.aws(),
                            &spec,
                            event.target_service_revision_arn.as_deref(),
                        )
                        .await,
                    ),
                    _ => None,
                };
                let invocation = Invocation {
                    run_id: event.run_id(),
                    deployment_id: deployment_id.clone(),
                    execution_id: event.execution_id.clone(),
                    deadline_ms,
                    target_groups,
                    green_weight: event.green_weight(),
                    watch: event.watch_state().cloned(),
                    engine: Engine::Ecs,
                };
                match self.stage_run(invocation).await.0 {
                    StageRun::Decided(report) => report,
                    StageRun::Watching {
                        report,
                        state,
                        wait,
                    } => {
                        let binding = Binding {
                            deployment_id: &deployment_id,
                            execution_id: &event.execution_id,
                            stage: self.stage.as_str(),
                            function: &self.function,
                        };
                        let sealed = match self.state_key().await {
                            Ok(key) => key.seal(&binding, &state.to_value()),
                            // Cannot happen past the first invocation's key check; fail
                            // closed all the same rather than hand on an unsealed state.
                            Err(err) => {
                                let report = report.with_error(self.scrub(&format!(
                                    "the watch needs another invocation, and its state cannot be sealed: {err}"
                                )));
                                crate::report::publish(&report);
                                self.notify(&report, deadline_ms).await;
                                return crate::report::ecs::response(&report);
                            }
                        };
                        let answer = crate::report::ecs::in_progress(&report, &state, sealed, wait);
                        tracing::info!(
                            stage = %self.stage,
                            seq = state.seq,
                            call_back_delay_s = answer["callBackDelay"].as_u64(),
                            "answered ECS: IN_PROGRESS, the watch goes on"
                        );
                        return answer;
                    }
                }
            }
            other => {
                let why = match other {
                    Some(stage) => format!(
                        "this function checks {} but ECS invoked it for {} (the {stage} stage): \
                         attach it to {} only, and the {stage} function to {}",
                        self.stage,
                        event.lifecycle_stage,
                        self.stage.ecs_name(),
                        stage.ecs_name()
                    ),
                    None => format!(
                        "ECS invoked this function for {}, a stage greenlight does not check: \
                         attach it to {} only (greenlight checks POST_TEST_TRAFFIC_SHIFT, \
                         PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT and \
                         POST_PRODUCTION_TRAFFIC_SHIFT)",
                        event.lifecycle_stage,
                        self.stage.ecs_name()
                    ),
                };
                let report = StageReport::not_run(self.stage, event.run_id(), why, Duration::ZERO)
                    .for_deployment(deployment_id);
                crate::report::publish(&report);
                report
            }
        };
        // Inside the report reserve: the answer still goes back before the deadline.
        self.notify(&report, deadline_ms).await;
        tracing::info!(
            stage = %self.stage,
            hook_status = report.verdict.status().ecs,
            "answered ECS"
        );
        crate::report::ecs::response(&report)
    }
}
