//! Watches that outlast one invocation, through the real hook binaries: a CodeDeploy hook hands
//! its watch on by invoking itself (through a local Lambda endpoint, which this test drains as
//! Lambda's queue would), an ECS hook answers IN_PROGRESS and is called back with its state.
//! Every run happens once, a failure ends the watch at once, a duplicated continuation neither
//! double-counts nor double-reports, a lost one reports Failed, a rollback is answered at once.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use greenlight::{StateBinding as Binding, StateKey};
use greenlight_e2e::aws::{FakeAws, Store};
use greenlight_e2e::codedeploy::FakeCodeDeploy;
use greenlight_e2e::lambda::{Emulator, Function, TEST_STATE_KEY};
use greenlight_e2e::targets::{Behaviour, Target};
use serde_json::{Value, json};

const EVENT: &str = r#"{"DeploymentId":"d-WATCH","LifecycleEventHookExecutionId":"watch-1"}"#;

struct Rig {
    emulator: Emulator,
    codedeploy: FakeCodeDeploy,
    aws: FakeAws,
    target: Target,
}

impl Rig {
    async fn start(behaviour: Behaviour) -> Rig {
        Rig {
            emulator: Emulator::start().await,
            codedeploy: FakeCodeDeploy::start().await,
            aws: FakeAws::start(Store::default()).await,
            target: Target::start(behaviour).await,
        }
    }

    /// A bake of 5 runs, 2 s apart, under a 4 s budget per invocation (the emulator's deadline
    /// is unusable, so defaults.budget is the invocation's time): runs 0 and 1 in the first
    /// invocation, 2 and 3 in the second, 4 in the third.
    fn hook(&self) -> Function {
        let config = format!(
            r#"
targets: {{ green: {{ url: "{}" }} }}
defaults: {{ budget: 4s, timeout: 500ms, retries: 0 }}
stages:
  AfterAllowTraffic:
    checks:
      - name: health once
        http: {{ target: green, path: /health }}
      - name: bake
        repeat: {{ every: 2s, for: 8s }}
        http: {{ target: green, path: "/bake/{{{{repeat}}}}" }}
"#,
            self.target.url()
        );
        let codedeploy = self.codedeploy.url();
        let aws = self.aws.env();
        let mut env: Vec<(&str, &str)> = vec![
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.as_str()),
            ("GREENLIGHT_CONFIG", config.as_str()),
        ];
        env.extend(aws.iter().map(|(k, v)| (*k, v.as_str())));
        self.emulator.function("after-allow-traffic", &env)
    }

    /// The continuations queued so far (payloads), checking each was an async self-invocation.
    fn continuations(&self) -> Vec<Value> {
        self.aws
            .store
            .lock()
            .unwrap()
            .invocations
            .iter()
            .map(|(function, qualifier, kind, payload)| {
                assert_eq!(function, "after-allow-traffic");
                assert_eq!(qualifier.as_deref(), Some("1"), "the same version");
                assert_eq!(kind, "Event", "asynchronous");
                payload.clone()
            })
            .collect()
    }

    /// The paths the target was asked for.
    fn paths(&self) -> Vec<String> {
        self.target.seen().into_iter().map(|s| s.path).collect()
    }
}

#[tokio::test]
async fn a_codedeploy_watch_spans_three_invocations_and_reports_once() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    let mut payload: Value = serde_json::from_str(EVENT).unwrap();
    let mut answers = Vec::new();
    // Drain the queue as Lambda would: each continuation is the next invocation.
    for _ in 0..6 {
        let answer = hook.invoke(&payload.to_string()).await;
        assert!(answer.ok, "{answer:?}\n{}", hook.logs());
        let answer = answer.json();
        let done = answer["status"] != "InProgress";
        answers.push(answer);
        if done {
            break;
        }
        payload = rig.continuations().last().cloned().unwrap();
        assert_eq!(payload["DeploymentId"], "d-WATCH");
        assert_eq!(payload["LifecycleEventHookExecutionId"], "watch-1");
    }
    let last = answers.last().unwrap();
    assert_eq!(last["status"], "Succeeded", "{last:#}\n{}", hook.logs());
    assert_eq!(
        answers.len(),
        3,
        "two continuations, then the verdict: {answers:#?}"
    );
    assert_eq!(rig.continuations().len(), 2);
    assert_eq!(
        rig.codedeploy.calls().len(),
        1,
        "exactly one report, from the invocation that finished the watch"
    );
    // Every run once; the single check once.
    let mut paths = rig.paths();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/bake/0", "/bake/1", "/bake/2", "/bake/3", "/bake/4", "/health"
        ]
    );
    let bake = &last["report"]["checks"][1];
    assert_eq!(bake["outcome"], "passed");
    assert_eq!(bake["repeat"]["runs"], 5);
    assert_eq!(bake["repeat"]["planned"], 5);
    assert_eq!(bake["repeat"]["recent"].as_array().unwrap().len(), 5);
    // The single check's result came through the state.
    assert_eq!(last["report"]["checks"][0]["outcome"], "passed");
    // The state stays small.
    for continuation in rig.continuations() {
        let size = continuation["greenlightWatch"].to_string().len();
        assert!(size < 4096, "state of {size} bytes");
    }
}

#[tokio::test]
async fn a_failure_in_the_second_run_fails_at_once() {
    let rig = Rig::start(Behaviour::FailPaths(Arc::from(["/bake/1"]))).await;
    let hook = rig.hook();
    let answer = hook.invoke(EVENT).await.json();
    assert_eq!(answer["status"], "Failed", "{answer:#}");
    assert!(rig.continuations().is_empty(), "no continuation");
    assert_eq!(rig.codedeploy.calls().len(), 1);
    let bake = &answer["report"]["checks"][1];
    assert_eq!(bake["outcome"], "failed");
    assert_eq!(bake["repeat"]["runs"], 2);
    assert!(
        bake["message"]
            .as_str()
            .unwrap()
            .contains("repeat: expected at most 0 failed runs of 5, got 1 of 2 runs failed"),
        "{bake:#}"
    );
    assert!(!rig.paths().contains(&"/bake/2".to_owned()));
}

/// Invoke with `payload`, then every continuation it queues, until an invocation reports.
async fn drain(rig: &Rig, hook: &Function, mut payload: Value) -> Value {
    for _ in 0..6 {
        let queued = rig.continuations().len();
        let answer = hook.invoke(&payload.to_string()).await.json();
        if answer["status"] != "InProgress" {
            return answer;
        }
        let continuations = rig.continuations();
        assert_eq!(
            continuations.len(),
            queued + 1,
            "one continuation per hand-off"
        );
        payload = continuations.last().cloned().unwrap();
    }
    panic!("the watch never ended\n{}", hook.logs());
}

#[tokio::test]
async fn a_duplicated_continuation_neither_double_counts_nor_double_reports() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    assert_eq!(hook.invoke(EVENT).await.json()["status"], "InProgress");
    let first = rig.continuations()[0].clone();
    // Lambda delivers the first continuation twice: two chains follow from it.
    let finals = [
        drain(&rig, &hook, first.clone()).await,
        drain(&rig, &hook, first).await,
    ];
    // Each chain carries its own counts: five runs each, never more.
    for answer in &finals {
        assert_eq!(answer["status"], "Succeeded", "{answer:#}");
        assert_eq!(
            answer["report"]["checks"][1]["repeat"]["runs"], 5,
            "{answer:#}"
        );
    }
    // CodeDeploy takes the first report; the second chain's is already completed.
    let deliveries: Vec<&str> = finals
        .iter()
        .map(|a| a["delivery"].as_str().unwrap())
        .collect();
    assert_eq!(deliveries, ["accepted", "already-completed"], "{finals:#?}");
}

#[tokio::test]
async fn a_continuation_that_cannot_be_sent_reports_failed_now() {
    let rig = Rig::start(Behaviour::Healthy).await;
    rig.aws.store.lock().unwrap().refuse_invoke = true;
    let hook = rig.hook();
    let answer = hook.invoke(EVENT).await.json();
    assert_eq!(answer["status"], "Failed", "{answer:#}");
    let errors = answer["report"]["errors"].to_string();
    assert!(
        errors.contains("could not hand the watch to the next invocation")
            && errors.contains("lambda:InvokeFunction"),
        "{errors}"
    );
    assert_eq!(rig.codedeploy.calls().len(), 1);
}

#[tokio::test]
async fn a_foreign_or_broken_state_fails_closed() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    for (state, expected) in [
        (json!({"v": 1}), "not sealed"),
        (
            json!({"v": 1, "run_id": "gl-0000000000000000", "stage": "AfterAllowTraffic", "seq": 1, "started_ms": 0, "done": [], "repeats": []}),
            "not sealed",
        ),
        // Sealed for this very execution, and not a state at all.
        (
            seal_for("d-WATCH", "watch-1", json!({"v": 1})),
            "does not parse",
        ),
    ] {
        let payload = json!({
            "DeploymentId": "d-WATCH",
            "LifecycleEventHookExecutionId": "watch-1",
            "greenlightWatch": state,
        });
        let answer = hook.invoke(&payload.to_string()).await.json();
        assert_eq!(answer["status"], "Failed", "{answer:#}");
        assert!(
            answer["report"]["errors"].to_string().contains(expected),
            "{answer:#}"
        );
    }
    assert!(rig.paths().is_empty(), "nothing ran");
}

/// Seal a state as the hook under test would (the tests hold its key; an invoker does not).
fn seal_for(deployment: &str, execution: &str, state: Value) -> Value {
    let key = StateKey::new(TEST_STATE_KEY.as_bytes().to_vec(), "test").unwrap();
    key.seal(
        &Binding {
            deployment_id: deployment,
            execution_id: execution,
            stage: "AfterAllowTraffic",
            function: "after-allow-traffic",
        },
        &state,
    )
}

/// What an invoker would hand a hook to make it approve: every single check passed, every
/// repeat ended `passed`.
fn all_passed_state(execution: &str, planned: u64, started_ms: u64) -> Value {
    json!({
        "v": 1,
        "run_id": greenlight::run_id_from(execution),
        "stage": "AfterAllowTraffic",
        "seq": 1,
        "started_ms": started_ms,
        "done": [{"name": "health once", "outcome": "passed", "message": "ok"}],
        "repeats": [{
            "name": "bake", "errors_in_row": 0, "ended": "passed", "busy_ms": 1,
            "figures": {"planned": planned, "runs": planned, "failed": 0, "errors": 0, "failure_limit": 0, "recent": []},
        }],
    })
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Invoke rights are not approve rights: a forged state (unsealed, or sealed with a key the
/// invoker made up) is refused through CodeDeploy and ECS alike, nothing is sent to green, and
/// CodeDeploy hears Failed.
#[tokio::test]
async fn a_forged_all_passed_state_is_refused_and_nothing_reaches_green() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    let forged = all_passed_state("watch-1", 5, now_ms());
    let wrong_key = StateKey::new(vec![9u8; 32], "attacker").unwrap().seal(
        &Binding {
            deployment_id: "d-WATCH",
            execution_id: "watch-1",
            stage: "AfterAllowTraffic",
            function: "after-allow-traffic",
        },
        &forged,
    );
    for (state, expected) in [(forged, "not sealed"), (wrong_key, "does not verify")] {
        let payload = json!({
            "DeploymentId": "d-WATCH",
            "LifecycleEventHookExecutionId": "watch-1",
            "greenlightWatch": state,
        });
        let answer = hook.invoke(&payload.to_string()).await.json();
        assert_eq!(answer["status"], "Failed", "{answer:#}");
        assert!(
            answer["report"]["errors"].to_string().contains(expected),
            "{answer:#}"
        );
    }
    let reports: Vec<String> = rig
        .codedeploy
        .calls()
        .iter()
        .filter_map(|call| call.reported_status().map(str::to_owned))
        .collect();
    assert_eq!(reports, ["Failed", "Failed"]);
    // The same claim in ECS's hookDetails.
    let mut state = all_passed_state("ecs-watch-1", 5, now_ms());
    state["run_id"] = json!(greenlight::run_id_from("ecs-watch-1"));
    let answer = hook
        .invoke(&ecs_event(
            "POST_PRODUCTION_TRAFFIC_SHIFT",
            json!({"green-rev": 100}),
            Some(json!({ "greenlightWatch": state })),
        ))
        .await
        .json();
    assert_eq!(answer["hookStatus"], "FAILED", "{answer:#}");
    assert!(
        rig.paths().is_empty(),
        "nothing reached green: {:?}",
        rig.paths()
    );
    assert!(rig.continuations().is_empty(), "no chain started");
}

/// A genuine continuation moved to another deployment or hook execution does not verify; a
/// genuinely sealed state whose chain is endless (planned runs from the state, started three
/// days ago) is ended Failed by the config's bounds. Nothing is sent either way.
#[tokio::test]
async fn a_moved_or_endless_state_is_refused() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    let first = hook.invoke(EVENT).await.json();
    assert_eq!(first["status"], "InProgress", "{first:#}\n{}", hook.logs());
    let genuine = rig.continuations().last().cloned().unwrap();
    // The continuation carried the invocation's trace header.
    let traces = rig.aws.store.lock().unwrap().invocation_traces.clone();
    assert!(
        traces
            .iter()
            .all(|t| t.as_deref().is_some_and(|t| t.contains("Root="))),
        "{traces:?}"
    );
    let sent = rig.paths().len();
    for (deployment, execution) in [("d-OTHER", "watch-1"), ("d-WATCH", "watch-2")] {
        let mut moved = genuine.clone();
        moved["DeploymentId"] = json!(deployment);
        moved["LifecycleEventHookExecutionId"] = json!(execution);
        let answer = hook.invoke(&moved.to_string()).await.json();
        assert_eq!(answer["status"], "Failed", "{answer:#}");
        assert!(
            answer["report"]["errors"]
                .to_string()
                .contains("does not verify"),
            "{answer:#}"
        );
    }
    let three_days_ago = now_ms() - 3 * 24 * 3600 * 1000;
    for (state, expected) in [
        (
            all_passed_state("watch-1", 5, three_days_ago),
            "started 3days",
        ),
        (
            all_passed_state("watch-1", 4_294_967_295, now_ms()),
            "config",
        ),
    ] {
        let payload = json!({
            "DeploymentId": "d-WATCH",
            "LifecycleEventHookExecutionId": "watch-1",
            "greenlightWatch": seal_for("d-WATCH", "watch-1", state),
        });
        let answer = hook.invoke(&payload.to_string()).await.json();
        assert_eq!(answer["status"], "Failed", "{answer:#}");
        assert!(
            answer["report"]["errors"].to_string().contains(expected),
            "{answer:#}"
        );
    }
    assert_eq!(
        rig.paths().len(),
        sent,
        "nothing sent after the first invocation"
    );
    assert_eq!(rig.continuations().len(), 1, "no chain went on");
}

/// A config changed under a running watch: the continuation's state no longer matches, the
/// hook answers Failed, and green receives nothing from it, then or after the answer.
#[tokio::test]
async fn a_config_changed_under_a_watch_fails_and_sends_nothing_after_the_answer() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    let first = hook.invoke(EVENT).await.json();
    assert_eq!(first["status"], "InProgress", "{first:#}\n{}", hook.logs());
    let continuation = rig.continuations().last().cloned().unwrap();
    drop(hook);
    // The new config watches one more check, every second.
    let config = format!(
        r#"
targets: {{ green: {{ url: "{}" }} }}
defaults: {{ budget: 4s, timeout: 500ms, retries: 0 }}
stages:
  AfterAllowTraffic:
    checks:
      - name: health once
        http: {{ target: green, path: /health }}
      - name: bake
        repeat: {{ every: 2s, for: 8s }}
        http: {{ target: green, path: "/bake/{{{{repeat}}}}" }}
      - name: new bake
        repeat: {{ every: 1s, for: 8s }}
        http: {{ target: green, path: "/new/{{{{repeat}}}}" }}
"#,
        rig.target.url()
    );
    let aws = rig.aws.env();
    let mut env: Vec<(&str, &str)> = vec![("GREENLIGHT_CONFIG", config.as_str())];
    let codedeploy = rig.codedeploy.url();
    env.push(("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.as_str()));
    env.extend(aws.iter().map(|(k, v)| (*k, v.as_str())));
    let changed = rig.emulator.function("after-allow-traffic", &env);
    let sent = rig.paths().len();
    let answer = changed.invoke(&continuation.to_string()).await.json();
    assert_eq!(answer["status"], "Failed", "{answer:#}");
    assert!(
        answer["report"]["errors"].to_string().contains("config"),
        "{answer:#}"
    );
    assert_eq!(rig.paths().len(), sent, "nothing sent before the answer");
    // Proving an absence needs a window: three intervals of the watch that would have run.
    // (The deterministic proof, on a paused clock, is watch.rs's unit test.)
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(rig.paths().len(), sent, "nothing sent after the answer");
    assert_eq!(rig.codedeploy.calls().len(), 1, "one report: Failed");
}

fn ecs_event(stage: &str, production: Value, details: Option<Value>) -> String {
    let mut event = json!({
        "executionId": "ecs-watch-1",
        "lifecycleStage": stage,
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/payments/payments-api/w",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/payments/payments-api",
            "targetServiceRevisionArn": "green-rev",
            "testTrafficWeights": {"green-rev": 100},
            "productionTrafficWeights": production,
        }
    });
    if let Some(details) = details {
        event["hookDetails"] = details;
    }
    event.to_string()
}

#[tokio::test]
async fn an_ecs_watch_answers_in_progress_twice_then_its_verdict() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let hook = rig.hook();
    let weights = json!({"green-rev": 100});
    let mut details: Option<Value> = Some(json!({"team": "payments"}));
    let mut answers = Vec::new();
    for _ in 0..6 {
        let answer = hook
            .invoke(&ecs_event(
                "POST_PRODUCTION_TRAFFIC_SHIFT",
                weights.clone(),
                details.clone(),
            ))
            .await
            .json();
        let status = answer["hookStatus"].as_str().unwrap().to_owned();
        answers.push(answer.clone());
        if status != "IN_PROGRESS" {
            break;
        }
        // ECS calls back after callBackDelay seconds (the event waited for is ECS's timer).
        let delay = answer["callBackDelay"].as_u64().unwrap();
        assert!((1..=3).contains(&delay), "{answer:#}");
        tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
        // ECS merges the answer's hookDetails into the service's own.
        let mut merged = details.take().unwrap();
        for (key, value) in answer["hookDetails"].as_object().unwrap() {
            merged[key] = value.clone();
        }
        details = Some(merged);
    }
    let statuses: Vec<&str> = answers
        .iter()
        .map(|a| a["hookStatus"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"],
        "{answers:#?}\n{}",
        hook.logs()
    );
    assert!(
        rig.codedeploy.calls().is_empty(),
        "ECS hooks never call CodeDeploy"
    );
    assert!(rig.continuations().is_empty(), "ECS calls back itself");
    let bakes = rig
        .paths()
        .iter()
        .filter(|p| p.starts_with("/bake/"))
        .count();
    assert_eq!(bakes, 5);
}

/// An ECS hook notifies once, on its final verdict: never on the IN_PROGRESS answers of a watch.
#[tokio::test]
async fn an_ecs_watch_notifies_once_on_its_final_verdict() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let slack = Target::start(Behaviour::Healthy).await;
    let webhook = format!("{}/services/T/B/token", slack.url());
    let config = format!(
        r#"
secrets: {{ slack: {{ env: GREENLIGHT_TEST_WEBHOOK }} }}
notify: {{ webhook: "{{{{secrets.slack}}}}" }}
targets: {{ green: {{ url: "{}" }} }}
defaults: {{ budget: 4s, timeout: 500ms, retries: 0 }}
stages:
  AfterAllowTraffic:
    checks:
      - name: bake
        repeat: {{ every: 2s, for: 8s }}
        http: {{ target: green, path: "/bake/{{{{repeat}}}}" }}
"#,
        rig.target.url()
    );
    let hook = rig.emulator.function(
        "after-allow-traffic",
        &[
            ("GREENLIGHT_CONFIG", config.as_str()),
            ("GREENLIGHT_TEST_WEBHOOK", webhook.as_str()),
        ],
    );
    let weights = json!({"green-rev": 100});
    let mut details: Option<Value> = None;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = hook
            .invoke(&ecs_event(
                "POST_PRODUCTION_TRAFFIC_SHIFT",
                weights.clone(),
                details.clone(),
            ))
            .await
            .json();
        let status = answer["hookStatus"].as_str().unwrap().to_owned();
        statuses.push(status.clone());
        if status != "IN_PROGRESS" {
            break;
        }
        // Nothing was posted for an answer that is not a verdict.
        assert!(slack.seen().is_empty(), "{statuses:?}");
        let delay = answer["callBackDelay"].as_u64().unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
        details = Some(answer["hookDetails"].clone());
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("SUCCEEDED"),
        "{statuses:?}\n{}",
        hook.logs()
    );
    assert!(
        statuses.len() > 1,
        "the watch spanned invocations: {statuses:?}"
    );
    assert_eq!(slack.seen().len(), 1, "one notification, with the verdict");
}

#[tokio::test]
async fn a_rollback_is_answered_at_once_and_steps_carry_their_weight() {
    let rig = Rig::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
targets: {{ green: {{ url: "{}" }} }}
stages:
  AfterAllowTraffic:
    checks:
      - name: every step
        http: {{ target: green, path: "/step/{{{{green_weight}}}}/{{{{blue_weight}}}}" }}
      - name: from half on
        when: {{ green_weight_at_least: 50 }}
        http: {{ target: green, path: /half }}
"#,
        rig.target.url()
    );
    let hook = rig.emulator.function(
        "after-allow-traffic",
        &[("GREENLIGHT_CONFIG", config.as_str())],
    );
    // A linear step at 30 %: the weight reaches the templates, the 50 % check is skipped.
    let step = hook
        .invoke(&ecs_event(
            "PRODUCTION_TRAFFIC_SHIFT",
            json!({"blue-rev": 70, "green-rev": 30}),
            None,
        ))
        .await
        .json();
    assert_eq!(step["hookStatus"], "SUCCEEDED", "{step:#}\n{}", hook.logs());
    assert_eq!(rig.paths(), ["/step/30/70"]);
    assert!(
        hook.logs().contains("green_weight_at_least"),
        "the skip is logged"
    );
    // The rollback: traffic back to blue, green at 0. Answered at once, nothing runs.
    let rollback = hook
        .invoke(&ecs_event(
            "PRODUCTION_TRAFFIC_SHIFT",
            json!({"blue-rev": 100, "green-rev": 0}),
            None,
        ))
        .await
        .json();
    assert_eq!(rollback["hookStatus"], "SUCCEEDED", "{rollback:#}");
    assert_eq!(rollback["hookDetails"]["greenlightVerdict"], "rollback");
    assert_eq!(rig.paths().len(), 1, "no check ran for the rollback");
    assert!(hook.logs().contains("rolling the deployment back"));
    // The sample events in events/ read the same way.
    let linear = hook.invoke_file("ecs-linear-step.json").await.json();
    assert_eq!(linear["hookStatus"], "SUCCEEDED", "{linear:#}");
    let back = hook.invoke_file("ecs-rollback.json").await.json();
    assert_eq!(back["hookDetails"]["greenlightVerdict"], "rollback");
}
