//! A CodeDeploy hook: run the stage, then report it with `PutLifecycleEventHookExecutionStatus`,
//! or hand a watch that outlasts the invocation to the function's next invocation.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Engine, Hook, HookError, Invocation, Invoked};
use crate::event::CodeDeployEvent;
use crate::hook::seal::Binding;
use crate::report::codedeploy::StatusSink;
use crate::suite::StageRun;

impl<S: StatusSink> Hook<S> {
    pub(super) async fn handle_codedeploy(
        &self,
        event: CodeDeployEvent,
        invoked: &Invoked,
    ) -> Result<Value, HookError> {
        let deadline_ms = invoked.deadline_ms;
        tracing::info!(
            stage = %self.stage,
            deployment_id = %event.deployment_id,
            lifecycle_event_hook_execution_id = %event.lifecycle_event_hook_execution_id,
            run_id = %event.run_id(),
            continuation = event.watch.is_some(),
            "hook invoked by CodeDeploy"
        );
        let target_groups = match self.target_groups_needed() {
            Some(spec) => Some(match &self.deployments {
                Some(client) => {
                    crate::discovery::green_from_codedeploy(client, &event.deployment_id)
                        .await
                        .and_then(|green| crate::discovery::resolve(&spec, &green))
                }
                None => Err(
                    "this hook has no CodeDeploy client to ask which target group is \
                             green"
                        .to_owned(),
                ),
            }),
            None => None,
        };
        // Why green's target group was not found reaches the log through the report, where it
        // is scrubbed like every other text; it is not logged raw here.
        let invocation = Invocation {
            run_id: event.run_id(),
            deployment_id: event.deployment_id.clone(),
            execution_id: event.lifecycle_event_hook_execution_id.clone(),
            deadline_ms,
            target_groups,
            green_weight: None,
            watch: event.watch.clone(),
            engine: Engine::CodeDeploy,
        };
        let report = match self.stage_run(invocation).await {
            (StageRun::Decided(report), _) => report,
            (
                StageRun::Watching {
                    report,
                    state,
                    wait,
                },
                stage_end,
            ) => {
                match self
                    .hand_on(&event, state, wait, stage_end, invoked.trace_id.as_deref())
                    .await
                {
                    Ok(seq) => {
                        return Ok(json!({
                            "status": "InProgress",
                            "continuation": seq,
                            "report": report,
                        }));
                    }
                    // A deployment must never wait out the hour for a continuation that was
                    // never sent: report Failed now.
                    Err(why) => {
                        let report = report.with_error(self.scrub(&why));
                        crate::report::publish(&report);
                        report
                    }
                }
            }
        };
        match self.sink.put(&event, report.verdict).await {
            Ok(delivery) => {
                tracing::info!(
                    stage = %self.stage,
                    deployment_id = %event.deployment_id,
                    status = report.verdict.codedeploy_status(),
                    delivery = delivery.as_str(),
                    "reported to CodeDeploy"
                );
                // After the report, so a notification can never hold it up; only by the
                // invocation whose report CodeDeploy took (a duplicate chain stays quiet).
                if delivery == crate::report::codedeploy::Delivery::Accepted {
                    self.notify(&report, deadline_ms).await;
                }
                Ok(json!({
                    "status": report.verdict.codedeploy_status(),
                    "delivery": delivery.as_str(),
                    "report": report,
                }))
            }
            Err(err) => {
                tracing::error!(
                    stage = %self.stage,
                    deployment_id = %event.deployment_id,
                    status = report.verdict.codedeploy_status(),
                    error = %err,
                    "could not report to CodeDeploy; failing the invocation so Lambda retries it"
                );
                Err(err.into())
            }
        }
    }

    /// Hand a CodeDeploy watch to this function's next invocation: wait until the next run is
    /// due or this invocation's time is up (so a long interval costs one invocation per
    /// timeout, not a chain of them), then queue the invocation. Returns the state's sequence
    /// number, or why the hand-off failed.
    pub(super) async fn hand_on(
        &self,
        event: &CodeDeployEvent,
        state: crate::executor::WatchState,
        wait: Duration,
        stage_end: Instant,
        trace_id: Option<&str>,
    ) -> Result<u32, String> {
        let key = self.state_key().await.as_ref().map_err(|err| {
            format!("the watch needs another invocation, and its state cannot be sealed: {err}")
        })?;
        let Some(continuation) = &self.continuation else {
            return Err(
                "the watch needs another invocation, and this function cannot invoke \
                        itself (AWS_LAMBDA_FUNCTION_NAME is not set)"
                    .to_owned(),
            );
        };
        tokio::time::sleep_until((Instant::now() + wait).min(stage_end)).await;
        let seq = state.seq;
        let binding = Binding {
            deployment_id: &event.deployment_id,
            execution_id: &event.lifecycle_event_hook_execution_id,
            stage: self.stage.as_str(),
            function: &self.function,
        };
        let payload = event.continuation(key.seal(&binding, &state.to_value()));
        match continuation
            .aws
            .invoke_async(
                &continuation.function,
                continuation.qualifier.as_deref(),
                &payload,
                trace_id,
            )
            .await
        {
            Ok(()) => {
                tracing::info!(
                    stage = %self.stage,
                    deployment_id = %event.deployment_id,
                    seq,
                    function = %continuation.function,
                    "watch handed to the next invocation"
                );
                Ok(seq)
            }
            Err(err) => {
                let why = format!(
                    "could not hand the watch to the next invocation ({}; {}), so it reports \
                     Failed now rather than leave the deployment waiting",
                    err.problem, err.fix
                );
                tracing::error!(stage = %self.stage, seq, error = %why, "watch hand-off failed");
                Err(why)
            }
        }
    }
}
