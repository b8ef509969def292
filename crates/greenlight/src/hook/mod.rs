//! The glue a hook binary calls: cold start once, then for every event parse, evaluate, report.
//! The CodeDeploy path (`codedeploy`), the ECS path (`ecs`), a watch's hand-offs and what it
//! believes of them (`continuation`, `seal`) each live in their own file.
//!
//! The order matters for the one-hour hang: the event's ids are read first (without them no
//! report is possible, so a bad event is an invocation error), and from then on every path,
//! panics included, ends in exactly one status report: a CodeDeploy status call, or for ECS's
//! own blue/green engine the returned `hookStatus`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::time::Instant;

use crate::budget::{Budget, BudgetSource};
use crate::config::Defaults;
use crate::error::{EventError, ReportError};
use crate::event::HookEvent;
use crate::redact::Redactor;
use crate::report::StageReport;
use crate::report::codedeploy::{CodeDeploySink, StatusSink};
use crate::stage::Stage;
use crate::suite::{StageInputs, StageRun, Suite};

mod codedeploy;
mod continuation;
mod ecs;
pub(crate) mod seal;

use continuation::CODEDEPLOY_WAIT;
pub(crate) use continuation::Continuation;
use seal::{Binding, KeyError, StateKey};

/// Extra time past the budget before the evaluation itself is abandoned. The runner already
/// cuts checks off at the budget; this only guards against a bug outside the checks.
const GRACE: Duration = Duration::from_secs(2);

/// Why an invocation returned an error instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The event carried no usable ids: nothing can be reported.
    #[error(transparent)]
    BadEvent(#[from] EventError),
    /// The report did not get through; Lambda's retry will run the hook again with the same ids.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl From<HookError> for Diagnostic {
    fn from(err: HookError) -> Diagnostic {
        let error_type = match &err {
            HookError::BadEvent(_) => "greenlight.BadEvent",
            HookError::Report(_) => "greenlight.ReportFailed",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// One hook function: its stage, what the cold start loaded, and where verdicts go.
pub struct Hook<S> {
    stage: Stage,
    suite: Result<Arc<Suite>, String>,
    defaults: Defaults,
    sink: S,
    continuation: Option<Continuation>,
    /// Seals the watch states this function hands on and verifies those it is handed: read
    /// from where the environment says when a watch first needs it, not at cold start (most
    /// stages never do).
    state_key: tokio::sync::OnceCell<Result<StateKey, KeyError>>,
    /// Where the key is read from, when it was not given.
    key_source: Option<Arc<crate::aws::Aws>>,
    /// This function's name, in every seal (`AWS_LAMBDA_FUNCTION_NAME`; `local` outside Lambda).
    function: String,
    /// CodeDeploy, read for what the deployment says (green's target group): `discovery`.
    deployments: Option<aws_sdk_codedeploy::Client>,
}

/// What the runtime says of one invocation besides its payload.
#[derive(Debug, Clone, Default)]
pub struct Invoked {
    /// The Lambda deadline, ms since 1970 (0 when unknown).
    pub deadline_ms: u64,
    /// The invocation's `X-Amzn-Trace-Id`, carried on to a watch's continuation.
    pub trace_id: Option<String>,
}

impl<S: StatusSink> Hook<S> {
    /// A hook for a stage. A config error is kept, not raised: every invocation reports it as Failed.
    pub fn new(stage: Stage, suite: Result<Suite, crate::error::ConfigError>, sink: S) -> Self {
        let defaults = suite
            .as_ref()
            .map(|suite| suite.config.defaults.clone())
            .unwrap_or_default();
        Hook {
            stage,
            // No redactor exists without a config; card numbers are still masked.
            suite: suite
                .map(Arc::new)
                .map_err(|err| Redactor::default().scrub(&err.to_string())),
            defaults,
            sink,
            continuation: None,
            state_key: tokio::sync::OnceCell::new(),
            key_source: None,
            deployments: None,
            function: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .ok()
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| "local".to_owned()),
        }
    }

    /// Where a CodeDeploy hook reads its deployment (green's target group, for metric checks).
    pub fn with_deployments(mut self, client: aws_sdk_codedeploy::Client) -> Self {
        self.deployments = Some(client);
        self
    }

    /// The key that seals and verifies watch states (see `hook::seal`).
    pub fn with_state_key(mut self, key: Result<StateKey, KeyError>) -> Self {
        self.state_key = tokio::sync::OnceCell::new_with(Some(key));
        self
    }

    /// Read the key from the environment (`GREENLIGHT_STATE_KEY`, or the secret
    /// `GREENLIGHT_STATE_KEY_SECRET` names) the first time a watch needs it.
    pub fn with_state_key_from_env(mut self, aws: Arc<crate::aws::Aws>) -> Self {
        self.key_source = Some(aws);
        self
    }

    /// The state key, read once, when first needed.
    pub(crate) async fn state_key(&self) -> &Result<StateKey, KeyError> {
        self.state_key
            .get_or_init(|| async {
                let key = match &self.key_source {
                    Some(aws) => StateKey::from_env(aws).await,
                    None => Err(KeyError::Missing),
                };
                if let Err(err) = &key {
                    tracing::info!(stage = %self.stage, reason = %err, "no watch state key: watches must finish within one invocation");
                }
                key
            })
            .await
    }

    /// Let a watch that outlasts an invocation continue in the next one (CodeDeploy hooks).
    pub fn with_continuation(mut self, continuation: Option<Continuation>) -> Self {
        self.continuation = continuation;
        self
    }

    /// Handle one invocation: `deadline_ms` is the Lambda deadline (0 when unknown).
    pub async fn handle(&self, payload: Value, deadline_ms: u64) -> Result<Value, HookError> {
        self.handle_invoked(
            payload,
            Invoked {
                deadline_ms,
                trace_id: None,
            },
        )
        .await
    }

    /// Handle one invocation with what the runtime said of it.
    pub async fn handle_invoked(
        &self,
        payload: Value,
        invoked: Invoked,
    ) -> Result<Value, HookError> {
        let deadline_ms = invoked.deadline_ms;
        // A preflight asked for by hand (`aws lambda invoke` with {"greenlight": "doctor"}):
        // findings come back as the result; no deployment is reported.
        if payload.get("greenlight").and_then(Value::as_str) == Some("doctor") {
            tracing::info!(stage = %self.stage, "doctor invoked");
            let suite = self.suite.as_deref().map_err(String::as_str);
            let answer = crate::doctor::in_lambda(suite, &self.sink).await;
            tracing::info!(stage = %self.stage, ok = answer["ok"].as_bool(), "doctor answered");
            return Ok(answer);
        }
        let event = HookEvent::from_value(&payload).inspect_err(|err| {
            tracing::error!(stage = %self.stage, error = %err, "rejected an event that is not a lifecycle hook event; nothing reported");
        })?;
        match event {
            HookEvent::CodeDeploy(event) => self.handle_codedeploy(event, &invoked).await,
            HookEvent::Ecs(event) => Ok(self.handle_ecs(event, deadline_ms).await),
        }
    }
}

impl<S: StatusSink> Hook<S> {
    /// Scrub a text this hook adds to a report after the stage ran (the stage's own texts
    /// were scrubbed by the suite): with the config's secrets, else card numbers at least.
    fn scrub(&self, text: &str) -> String {
        match &self.suite {
            Ok(suite) => suite.redactor().scrub(text),
            Err(_) => Redactor::default().scrub(text),
        }
    }

    /// Send a final verdict where the config says, within the notification budget and never
    /// past half the report reserve before the deadline.
    async fn notify(&self, report: &StageReport, deadline_ms: u64) {
        let Ok(suite) = &self.suite else {
            return;
        };
        // The same reading of the deadline as the checks' budget: what is left of it, less half
        // the reserve; the notification budget when the deadline is unknown.
        let left = Budget::from_deadline(
            deadline_ms,
            SystemTime::now(),
            self.defaults.report_reserve.0 / 2,
            crate::notify::NOTIFY_BUDGET,
        );
        let budget = left.checks.min(crate::notify::NOTIFY_BUDGET);
        suite.notify(report, budget).await;
    }

    /// The deployment's target groups, when a check of this stage needs green's.
    fn target_groups_needed(&self) -> Option<crate::config::DeploymentSpec> {
        let suite = self.suite.as_ref().ok()?;
        suite
            .needs_target_groups(self.stage)
            .then(|| suite.config.deployment.clone())
            .flatten()
    }

    /// Run this function's stage (or this invocation's share of a watch) under the
    /// invocation's budget, whatever the config's state, and log the result. Never fails:
    /// every problem is in the (failed) report. Also returns when the checks' time ends.
    async fn stage_run(&self, invocation: Invocation) -> (StageRun, Instant) {
        let Invocation {
            run_id,
            deployment_id,
            execution_id,
            deadline_ms,
            target_groups,
            green_weight,
            watch,
            engine,
        } = invocation;
        let budget = Budget::from_deadline(
            deadline_ms,
            SystemTime::now(),
            self.defaults.report_reserve.0,
            self.defaults.budget.0,
        );
        let stage_end = Instant::now() + budget.checks;
        // Said before the checks start, so the log reads in the order things happened.
        let fallback_warning = match budget.source {
            // A local emulator (cargo lambda watch sends 1970, or nothing): expected there, so
            // said once per process at INFO, and not a warning in every report.
            BudgetSource::Fallback {
                reason,
                emulator: true,
            } => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::info!(
                        stage = %self.stage,
                        deadline_ms,
                        budget_ms = u64::try_from(budget.checks.as_millis()).unwrap_or(u64::MAX),
                        reason,
                        "no real invocation deadline (a local emulator); the checks get defaults.budget"
                    );
                });
                None
            }
            BudgetSource::Fallback {
                reason,
                emulator: false,
            } => {
                let warning = format!(
                    "{reason}; using defaults.budget of {} for the checks",
                    humantime::format_duration(budget.checks)
                );
                tracing::warn!(
                    stage = %self.stage,
                    deadline_ms,
                    budget_ms = u64::try_from(budget.checks.as_millis()).unwrap_or(u64::MAX),
                    warning = %warning,
                    "deadline not usable"
                );
                Some(warning)
            }
            BudgetSource::Deadline { .. } => None,
        };
        let run = match &self.suite {
            Ok(suite) => match self
                .resume(
                    suite,
                    &run_id,
                    Binding {
                        deployment_id: &deployment_id,
                        execution_id: &execution_id,
                        stage: self.stage.as_str(),
                        function: &self.function,
                    },
                    watch.as_ref(),
                    engine,
                    budget.checks,
                )
                .await
            {
                Ok(resume) => {
                    let suite = Arc::clone(suite);
                    let (stage, id, checks) = (self.stage, run_id.clone(), budget.checks);
                    let inputs = StageInputs {
                        deployment_id: Some(deployment_id.clone()),
                        target_groups,
                        green_weight,
                        resume,
                        chain_cap: (engine == Engine::CodeDeploy).then_some(CODEDEPLOY_WAIT),
                    };
                    let evaluation = async move { suite.run(stage, checks, id, inputs).await };
                    evaluate(self.stage, &run_id, budget, evaluation).await
                }
                // Scrubbed like every stage error: it may quote what AWS answered.
                Err(why) => StageRun::Decided(StageReport::not_run(
                    self.stage,
                    run_id,
                    suite.redactor().scrub(&why),
                    Duration::ZERO,
                )),
            },
            Err(config_error) => StageRun::Decided(StageReport::not_run(
                self.stage,
                run_id,
                config_error.clone(),
                Duration::ZERO,
            )),
        };
        let run = match run {
            StageRun::Decided(mut report) => {
                report.warnings.extend(fallback_warning);
                let report = report.for_deployment(deployment_id);
                crate::report::publish(&report);
                StageRun::Decided(report)
            }
            StageRun::Watching {
                report,
                state,
                wait,
            } => {
                let report = report.for_deployment(deployment_id);
                crate::report::log::watching(&report, &state, wait);
                StageRun::Watching {
                    report,
                    state,
                    wait,
                }
            }
        };
        (run, stage_end)
    }
}

/// Which engine invoked the hook: what a watch can span depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// CodeDeploy waits one hour for the status.
    CodeDeploy,
    /// ECS waits its lifecycle-hook timeout (24 h by default).
    Ecs,
}

/// What one invocation brings to the stage.
struct Invocation {
    run_id: String,
    deployment_id: String,
    deadline_ms: u64,
    /// The hook execution: CodeDeploy's `LifecycleEventHookExecutionId`, ECS's `executionId`.
    execution_id: String,
    target_groups: Option<Result<crate::discovery::TargetGroups, String>>,
    green_weight: Option<u8>,
    watch: Option<Value>,
    engine: Engine,
}

/// Run an evaluation in its own task so that a panic anywhere in it, or an overrun, still
/// produces a (failed) report instead of a lost invocation.
pub(crate) async fn evaluate<F>(
    stage: Stage,
    run_id: &str,
    budget: Budget,
    evaluation: F,
) -> StageRun
where
    F: Future<Output = StageRun> + Send + 'static,
{
    let started = Instant::now();
    let mut task = tokio::spawn(evaluation);
    let failed = |why: &str| {
        StageRun::Decided(StageReport::not_run(
            stage,
            run_id.to_owned(),
            why.to_owned(),
            started.elapsed(),
        ))
    };
    match tokio::time::timeout(budget.checks + GRACE, &mut task).await {
        Ok(Ok(run)) => run,
        Ok(Err(join_error)) => failed(if join_error.is_panic() {
            "greenlight panicked while running the stage (a bug: please report it); failing closed"
        } else {
            "the stage evaluation was cancelled; failing closed"
        }),
        Err(_) => {
            // Abort, and wait for the task (and the checks it holds, which its drop aborts) to
            // be gone, so nothing it started sends after the answer. Dropping a future is
            // prompt; the wait is bounded all the same, inside the report reserve.
            task.abort();
            let _ = tokio::time::timeout(GRACE, task).await;
            failed("the stage did not finish within its budget; failing closed")
        }
    }
}

/// The whole life of a hook binary: logs, config and clients once, then the runtime loop.
pub async fn run(stage: Stage) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init_lambda();
    let aws = Arc::new(crate::aws::Aws::new());
    let suite = Suite::from_env(&aws).await;
    match &suite {
        Ok(cold) => tracing::info!(
            stage = %stage,
            config_source = %cold.suite.source,
            config_version = %cold.version,
            targets = cold.suite.config.targets.len(),
            "config loaded"
        ),
        Err(err) => tracing::error!(
            stage = %stage,
            error = %Redactor::default().scrub(&err.to_string()),
            "config could not be loaded; every invocation will report Failed until it is fixed"
        ),
    }
    let suite = suite.map(|cold| cold.suite);
    let reserve = suite
        .as_ref()
        .map(|suite| suite.config.defaults.report_reserve.0)
        .unwrap_or_else(|_| Defaults::default().report_reserve.0);
    let sink = CodeDeploySink::from_sdk(aws.sdk().await, reserve);
    let deployments = sink.client().clone();
    let continuation = Continuation::from_env(Arc::clone(&aws));
    let hook = Arc::new(
        Hook::new(stage, suite, sink)
            .with_continuation(continuation)
            .with_deployments(deployments)
            .with_state_key_from_env(Arc::clone(&aws)),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let hook = Arc::clone(&hook);
        let invoked = Invoked {
            deadline_ms: event.context.deadline,
            trace_id: event
                .context
                .xray_trace_id
                .clone()
                .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok()),
        };
        async move { hook.handle_invoked(event.payload, invoked).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::CodeDeployEvent;
    use crate::report::codedeploy::Delivery;
    use crate::source::Source;
    use crate::verdict::Verdict;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeSink {
        calls: Mutex<Vec<(String, Verdict)>>,
        fail: bool,
    }

    impl StatusSink for FakeSink {
        async fn put(
            &self,
            event: &CodeDeployEvent,
            verdict: Verdict,
        ) -> Result<Delivery, ReportError> {
            self.calls
                .lock()
                .unwrap()
                .push((event.lifecycle_event_hook_execution_id.clone(), verdict));
            if self.fail {
                Err(ReportError::Unreachable {
                    status: verdict.codedeploy_status(),
                    execution_id: event.lifecycle_event_hook_execution_id.clone(),
                    cause: "test".into(),
                })
            } else {
                Ok(Delivery::Accepted)
            }
        }
    }

    fn event() -> Value {
        json!({"DeploymentId": "d-TEST", "LifecycleEventHookExecutionId": "exec-1"})
    }

    fn suite(yaml: &str) -> Result<Suite, crate::error::ConfigError> {
        Config::parse(yaml).and_then(|config| Suite::new(config, Source::Inline))
    }

    #[tokio::test]
    async fn a_bad_event_is_an_error_and_reports_nothing() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite("targets: { t: { url: http://127.0.0.1:9 } }"),
            FakeSink::default(),
        );
        for payload in [json!("x"), json!({"DeploymentId": "d-1"}), json!(null)] {
            let err = hook.handle(payload, 0).await.unwrap_err();
            assert!(matches!(err, HookError::BadEvent(_)));
        }
        assert!(hook.sink.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_config_error_reports_failed_once() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite("targets: {"),
            FakeSink::default(),
        );
        let out = hook.handle(event(), 0).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(
            out["report"]["errors"][0]
                .as_str()
                .unwrap()
                .contains("config error")
        );
        assert_eq!(
            *hook.sink.calls.lock().unwrap(),
            vec![("exec-1".to_owned(), Verdict::Failed)]
        );
    }

    #[tokio::test]
    async fn a_missing_stage_reports_failed() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite("targets: { t: { url: http://127.0.0.1:9 } }"),
            FakeSink::default(),
        );
        let out = hook.handle(event(), 0).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(
            out["report"]["errors"][0]
                .as_str()
                .unwrap()
                .contains("no stage AfterAllowTraffic")
        );
    }

    #[tokio::test]
    async fn an_unknown_deadline_falls_back_with_a_warning() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite(
                "targets: { t: { url: http://127.0.0.1:9 } }\nstages: { AfterAllowTraffic: { checks: [] } }",
            ),
            FakeSink::default(),
        );
        // What cargo lambda watch sends, 600000 ms after 1970, is expected locally: no warning.
        let out = hook.handle(event(), 600_000).await.unwrap();
        assert_eq!(out["status"], "Succeeded");
        assert!(
            !out["report"]["warnings"].to_string().contains("deadline"),
            "{out:#}"
        );
        // A real Lambda's deadline already past is worth one.
        let late = crate::budget::epoch_ms(SystemTime::now()) - 1_000;
        let out = hook.handle(event(), late).await.unwrap();
        let warnings = out["report"]["warnings"].to_string();
        assert!(
            warnings.contains("already past") && warnings.contains("defaults.budget"),
            "{warnings}"
        );
    }

    fn ecs_event(stage: &str) -> Value {
        json!({"executionId": "ecs-exec-1", "lifecycleStage": stage, "resourceArn": "arn:aws:ecs:us-east-1:1:service-deployment/c/s/x"})
    }

    #[tokio::test]
    async fn ecs_events_are_answered_by_the_return_value_not_codedeploy() {
        let passing = "targets: { t: { url: http://127.0.0.1:9 } }\nstages: { AfterAllowTraffic: { checks: [] } }";
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite(passing),
            FakeSink::default(),
        );
        let out = hook
            .handle(ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT"), 0)
            .await
            .unwrap();
        assert_eq!(out["hookStatus"], "SUCCEEDED");
        // Another stage than this function's: FAILED, with the reason and the fix.
        let out = hook
            .handle(ecs_event("POST_TEST_TRAFFIC_SHIFT"), 0)
            .await
            .unwrap();
        assert_eq!(out["hookStatus"], "FAILED");
        let why = out["hookDetails"]["greenlightSummary"].as_str().unwrap();
        assert!(
            why.contains("checks AfterAllowTraffic")
                && why.contains("POST_PRODUCTION_TRAFFIC_SHIFT"),
            "{why}"
        );
        // A stage greenlight never checks (ECS re-runs these during a rollback).
        let out = hook
            .handle(ecs_event("TEST_TRAFFIC_SHIFT"), 0)
            .await
            .unwrap();
        assert_eq!(out["hookStatus"], "FAILED");
        assert!(
            out["hookDetails"]["greenlightSummary"]
                .as_str()
                .unwrap()
                .contains("does not check")
        );
        assert!(
            hook.sink.calls.lock().unwrap().is_empty(),
            "ECS hooks never call CodeDeploy"
        );
        // Fail closed on a bad config too.
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite("targets: {"),
            FakeSink::default(),
        );
        let out = hook
            .handle(ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT"), 0)
            .await
            .unwrap();
        assert_eq!(out["hookStatus"], "FAILED");
    }

    const WATCHING: &str = "targets: { t: { url: \"http://127.0.0.1:9\" } }\nstages:\n  AfterAllowTraffic:\n    checks:\n      - { name: once, http: { target: t, path: / } }\n      - { name: bake, http: { target: t, path: /b }, repeat: { every: 1m, for: 50m } }\n";

    fn key() -> StateKey {
        StateKey::new(vec![42u8; 32], "test").unwrap()
    }

    /// What an attacker with invoke rights would send: a state claiming every check passed
    /// and every repeat ended `passed`.
    fn forged_state() -> Value {
        let figures = json!({"planned": 51, "runs": 51, "failed": 0, "errors": 0, "failure_limit": 0, "recent": []});
        json!({
            "v": 1, "run_id": crate::event::run_id_from("exec-1"), "stage": "AfterAllowTraffic",
            "seq": 1, "started_ms": crate::budget::epoch_ms(SystemTime::now()),
            "done": [{"name": "once", "outcome": "passed", "message": "ok"}],
            "repeats": [{"name": "bake", "errors_in_row": 0, "ended": "passed", "figures": figures, "busy_ms": 1}],
        })
    }

    fn binding_for<'a>(deployment: &'a str, execution: &'a str) -> Binding<'a> {
        Binding {
            deployment_id: deployment,
            execution_id: execution,
            stage: "AfterAllowTraffic",
            function: "local",
        }
    }

    #[tokio::test]
    async fn a_forged_or_moved_watch_state_reports_failed_and_runs_nothing() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite(WATCHING),
            FakeSink::default(),
        )
        .with_state_key(Ok(key()));
        let forged = forged_state();
        let sealed_elsewhere = key().seal(&binding_for("d-OTHER", "exec-1"), &forged);
        let sealed_by_another_key = StateKey::new(vec![7u8; 32], "x")
            .unwrap()
            .seal(&binding_for("d-TEST", "exec-1"), &forged);
        let cases = [
            (forged.clone(), "not sealed"),
            (sealed_elsewhere, "does not verify"),
            (sealed_by_another_key, "does not verify"),
        ];
        for (state, why) in cases {
            let mut payload = event();
            payload["greenlightWatch"] = state;
            let out = hook.handle(payload, 0).await.unwrap();
            assert_eq!(out["status"], "Failed", "{out:#}");
            let errors = out["report"]["errors"].to_string();
            assert!(errors.contains(why), "{errors}");
            assert_eq!(out["report"]["checks"], json!([]), "nothing ran: {out:#}");
        }
        assert_eq!(hook.sink.calls.lock().unwrap().len(), 3);
        assert!(
            hook.sink
                .calls
                .lock()
                .unwrap()
                .iter()
                .all(|(_, verdict)| *verdict == Verdict::Failed)
        );
        // The genuine seal for this deployment is believed (and then run against the config).
        let mut payload = event();
        payload["greenlightWatch"] = key().seal(&binding_for("d-TEST", "exec-1"), &forged);
        let out = hook.handle(payload, 0).await.unwrap();
        let errors = out["report"]["errors"].to_string();
        assert!(!errors.contains("verify"), "{errors}");
    }

    #[tokio::test]
    async fn without_a_key_a_carried_state_fails_and_a_long_watch_says_how_to_fix_it() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite(WATCHING),
            FakeSink::default(),
        );
        let mut payload = event();
        payload["greenlightWatch"] = key().seal(&binding_for("d-TEST", "exec-1"), &forged_state());
        let out = hook.handle(payload, 0).await.unwrap();
        assert_eq!(out["status"], "Failed");
        assert!(
            out["report"]["errors"]
                .to_string()
                .contains("cannot be verified")
        );
        // The first invocation of a watch longer than an invocation: a config error up front.
        let out = hook.handle(event(), 0).await.unwrap();
        assert_eq!(out["status"], "Failed");
        let errors = out["report"]["errors"].to_string();
        assert!(
            errors.contains("config error") && errors.contains("GREENLIGHT_STATE_KEY"),
            "{errors}"
        );
        assert_eq!(out["report"]["checks"], json!([]), "nothing ran");
    }

    #[tokio::test]
    async fn a_forged_ecs_hook_details_state_is_failed() {
        let hook = Hook::new(
            Stage::AfterAllowTraffic,
            suite(WATCHING),
            FakeSink::default(),
        )
        .with_state_key(Ok(key()));
        let mut payload = ecs_event("POST_PRODUCTION_TRAFFIC_SHIFT");
        let mut state = forged_state();
        state["run_id"] = json!(crate::event::run_id_from("ecs-exec-1"));
        payload["hookDetails"] = json!({ "greenlightWatch": state });
        let out = hook.handle(payload, 0).await.unwrap();
        assert_eq!(out["hookStatus"], "FAILED", "{out:#}");
        assert!(
            out["hookDetails"]["greenlightSummary"]
                .as_str()
                .unwrap()
                .contains("not sealed"),
            "{out:#}"
        );
    }

    #[tokio::test]
    async fn a_failed_report_fails_the_invocation() {
        let sink = FakeSink {
            fail: true,
            ..FakeSink::default()
        };
        let hook = Hook::new(Stage::AfterAllowTraffic, suite("targets: {"), sink);
        let err = hook.handle(event(), 0).await.unwrap_err();
        assert!(matches!(err, HookError::Report(_)));
        let diagnostic: Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, "greenlight.ReportFailed");
    }

    #[tokio::test]
    async fn a_panic_in_the_evaluation_is_a_failed_report() {
        let budget = Budget::fixed(Duration::from_secs(5));
        let StageRun::Decided(report) =
            evaluate(Stage::AfterAllowTestTraffic, "gl-1", budget, async {
                panic!("boom")
            })
            .await
        else {
            panic!("decided")
        };
        assert_eq!(report.verdict, Verdict::Failed);
        assert!(report.errors[0].contains("panicked"), "{:?}", report.errors);
    }

    #[tokio::test(start_paused = true)]
    async fn an_evaluation_that_overruns_is_a_failed_report() {
        let budget = Budget::fixed(Duration::from_secs(5));
        let StageRun::Decided(report) = evaluate(
            Stage::AfterAllowTestTraffic,
            "gl-1",
            budget,
            std::future::pending(),
        )
        .await
        else {
            panic!("decided")
        };
        assert_eq!(report.verdict, Verdict::Failed);
        assert!(report.errors[0].contains("budget"), "{:?}", report.errors);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_an_overrunning_evaluation_started_runs_after_the_answer() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let sent = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&sent);
        // An evaluation whose checks (tasks in a set, as the executor runs them) never end.
        let evaluation = async move {
            let mut checks = tokio::task::JoinSet::new();
            for _ in 0..3 {
                let counter = Arc::clone(&counter);
                checks.spawn(async move {
                    loop {
                        counter.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
            while checks.join_next().await.is_some() {}
            StageRun::Decided(StageReport::not_run(
                Stage::AfterAllowTestTraffic,
                "gl-1".to_owned(),
                "unreachable".to_owned(),
                Duration::ZERO,
            ))
        };
        let budget = Budget::fixed(Duration::from_secs(5));
        let StageRun::Decided(report) =
            evaluate(Stage::AfterAllowTestTraffic, "gl-1", budget, evaluation).await
        else {
            panic!("decided")
        };
        assert_eq!(report.verdict, Verdict::Failed);
        let at_answer = sent.load(Ordering::SeqCst);
        assert!(at_answer > 0);
        // Long after the answer, not one more "request".
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(sent.load(Ordering::SeqCst), at_answer);
    }
}
