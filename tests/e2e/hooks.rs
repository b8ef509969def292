//! The real hook binaries, run by `cargo lambda watch`'s runtime emulator and invoked with
//! `cargo lambda invoke`, reporting through the real AWS SDK to a local CodeDeploy, checking
//! real HTTP targets on 127.0.0.1.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use greenlight::REPORT_ATTEMPTS;
use greenlight_e2e::codedeploy::{FakeCodeDeploy, Fault};
use greenlight_e2e::lambda::{Emulator, Function};
use greenlight_e2e::leaks::assert_no_form;
use greenlight_e2e::targets::{Behaviour, Endless, Hang, Target, TlsTarget};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

struct Rig {
    emulator: Emulator,
    codedeploy: FakeCodeDeploy,
}

impl Rig {
    async fn start() -> Rig {
        Rig {
            emulator: Emulator::start().await,
            codedeploy: FakeCodeDeploy::start().await,
        }
    }

    /// Start a hook binary; `config` goes into GREENLIGHT_CONFIG unless `None`.
    fn hook(&self, binary: &str, config: Option<&str>) -> Function {
        let endpoint = self.codedeploy.url();
        let mut env = vec![("AWS_ENDPOINT_URL_CODEDEPLOY", endpoint.as_str())];
        if let Some(config) = config {
            env.push(("GREENLIGHT_CONFIG", config));
        }
        self.emulator.function(binary, &env)
    }
}

fn checks(result: &Value) -> Vec<(String, String, String)> {
    result["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_healthy_green_reports_succeeded_exactly_once() {
    let rig = Rig::start().await;
    let green = Target::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
targets:
  test: {{ url: "{}" }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: health
        http:
          target: test
          path: /health
          headers: {{ X-Probe: greenlight }}
          expect:
            status: 200
            headers: {{ content-type: application/json }}
            body_contains: ok
            json: {{ /status: ok }}
            max_latency: 10s
"#,
        green.url()
    );
    let hook = rig.hook("after-allow-test-traffic", Some(&config));
    let invocation = hook.invoke_file("after-allow-test-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    let result = invocation.json();
    assert_eq!(result["status"], "Succeeded");
    assert_eq!(result["report"]["verdict"], "passed");

    let calls = rig.codedeploy.wait_for_calls(1, WAIT).await;
    assert_eq!(calls.len(), 1, "exactly one report");
    assert_eq!(calls[0].reported_status(), Some("Succeeded"));
    assert_eq!(calls[0].body["deploymentId"], "d-GREENLIGHT1");
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(
            greenlight_e2e::lambda::workspace_root().join("events/after-allow-test-traffic.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        calls[0].body["lifecycleEventHookExecutionId"],
        sample["LifecycleEventHookExecutionId"]
    );

    let seen = green.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/health");
    assert_eq!(seen[0].headers["x-probe"], "greenlight");

    // cargo lambda watch sends a deadline in 1970: expected locally, so the hook falls back
    // and says so once at INFO, with no warning in the log or the report.
    let logs = hook
        .logs_with("a local emulator", 1, Duration::from_secs(10))
        .await;
    let said = logs
        .lines()
        .find(|line| line.contains("a local emulator"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(said.contains("\"INFO\""), "{said}");
    assert!(!logs.contains("deadline not usable"), "{logs}");
    assert!(result["report"].get("warnings").is_none(), "{result:#}");
    // One JSON line per check and a summary line.
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "check passed" && l["check"] == "health")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "stage verdict" && l["verdict"] == "passed")
    );
}

#[tokio::test]
async fn each_binary_runs_its_own_stage() {
    let rig = Rig::start().await;
    let target = Target::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
targets: {{ test: {{ url: "{0}" }}, prod: {{ url: "{0}" }} }}
stages:
  AfterAllowTestTraffic: {{ checks: [ {{ name: a, http: {{ target: test, path: /after-allow-test-traffic }} }} ] }}
  BeforeAllowTraffic: {{ checks: [ {{ name: b, http: {{ target: test, path: /before-allow-traffic }} }} ] }}
  AfterAllowTraffic: {{ checks: [ {{ name: c, http: {{ target: prod, path: /after-allow-traffic }} }} ] }}
"#,
        target.url()
    );
    for (binary, stage) in [
        ("after-allow-test-traffic", "AfterAllowTestTraffic"),
        ("before-allow-traffic", "BeforeAllowTraffic"),
        ("after-allow-traffic", "AfterAllowTraffic"),
    ] {
        let hook = rig.hook(binary, Some(&config));
        let invocation = hook.invoke_file(&format!("{binary}.json")).await;
        assert!(invocation.ok, "{binary}: {invocation:?}\n{}", hook.logs());
        let result = invocation.json();
        assert_eq!(result["report"]["stage"], stage);
        assert_eq!(result["status"], "Succeeded");
        let last = target.seen().last().unwrap().path.clone();
        assert_eq!(last, format!("/{binary}"));
    }
    let calls = rig.codedeploy.wait_for_calls(3, WAIT).await;
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|c| c.accepted() && c.reported_status() == Some("Succeeded"))
    );
}

#[tokio::test]
async fn misbehaving_targets_fail_the_stage() {
    let rig = Rig::start().await;
    let broken = Target::start(Behaviour::Status(500)).await;
    let slow = Target::start(Behaviour::Slow(Duration::from_secs(20))).await;
    let hang = Hang::start().await;
    let endless = Endless::start().await;
    let config = format!(
        r#"
targets:
  broken: {{ url: "{}" }}
  slow: {{ url: "{}", timeout: 1s }}
  hang: {{ url: "{}", timeout: 1s }}
  endless: {{ url: "{}" }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: answers 500, http: {{ target: broken, path: /health, expect: {{ status: 200 }} }} }}
      - {{ name: slower than the timeout, http: {{ target: slow, path: /health }} }}
      - {{ name: hangs, http: {{ target: hang, path: /health }} }}
      - {{ name: 500 MB body, http: {{ target: endless, path: /health }} }}
"#,
        broken.url(),
        slow.url(),
        hang.url(),
        endless.url()
    );
    let hook = rig.hook("after-allow-test-traffic", Some(&config));
    let invocation = hook.invoke_file("after-allow-test-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    let result = invocation.json();
    assert_eq!(result["status"], "Failed");
    let checks = checks(&result);
    let find = |name: &str| checks.iter().find(|c| c.0 == name).unwrap().clone();
    let (_, outcome, message) = find("answers 500");
    assert_eq!(outcome, "failed");
    assert!(
        message.contains("status: expected 200, got 500"),
        "{message}"
    );
    for name in ["slower than the timeout", "hangs"] {
        let (_, outcome, message) = find(name);
        assert_eq!(outcome, "failed", "{name}: {message}");
        assert!(message.contains("none after 1s"), "{name}: {message}");
    }
    let (_, outcome, message) = find("500 MB body");
    assert_eq!(outcome, "failed");
    assert!(message.contains("body size"), "{message}");
    assert!(
        hang.accepted() >= 1,
        "the hanging target was really reached"
    );
    // The body read stopped at the limit: only socket buffers' worth beyond 1 MiB was sent.
    assert!(
        endless.sent() < 64 * 1024 * 1024,
        "the hook kept reading: {} bytes",
        endless.sent()
    );

    let calls = rig.codedeploy.wait_for_calls(1, WAIT).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].reported_status(), Some("Failed"));
    // The on-call engineer sees why in the logs.
    let logs = hook.logs();
    assert!(
        logs.contains(r#""outcome":"failed""#) && logs.contains("answers 500"),
        "{logs}"
    );
}

#[tokio::test]
async fn missing_or_invalid_config_reports_failed() {
    let rig = Rig::start().await;
    let cases = [
        (None, "GREENLIGHT_CONFIG is not set"),
        (
            Some("targets: { test: { url: http://127.0.0.1:9 } }\ndefaults: { timeout: soon }"),
            "defaults.timeout",
        ),
        (
            Some("file:/nonexistent/greenlight.yaml"),
            "/nonexistent/greenlight.yaml",
        ),
        (
            Some("targets: { test: { url: http://127.0.0.1:9 } }"),
            "no stage BeforeAllowTraffic",
        ),
    ];
    for (index, (config, wanted)) in cases.iter().enumerate() {
        let hook = rig.hook("before-allow-traffic", *config);
        let id = format!("config-case-{index}");
        let invocation = hook
            .invoke(&format!(
                r#"{{"DeploymentId":"d-1","LifecycleEventHookExecutionId":"{id}"}}"#
            ))
            .await;
        assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
        let result = invocation.json();
        assert_eq!(result["status"], "Failed", "{config:?}");
        let errors = result["report"]["errors"].to_string();
        assert!(errors.contains(wanted), "{config:?}: {errors}");
        assert!(
            hook.logs().contains(wanted),
            "the log says why: {}",
            hook.logs()
        );
    }
    let calls = rig.codedeploy.wait_for_calls(cases.len(), WAIT).await;
    assert_eq!(calls.len(), cases.len());
    assert!(calls.iter().all(|c| c.reported_status() == Some("Failed")));
}

fn healthy_config(url: &str) -> String {
    format!(
        "targets: {{ test: {{ url: \"{url}\" }} }}\nstages: {{ AfterAllowTraffic: {{ checks: [ {{ name: health, http: {{ target: test, path: /health }} }} ] }} }}"
    )
}

#[tokio::test]
async fn codedeploy_throttling_and_5xx_are_retried() {
    let rig = Rig::start().await;
    let target = Target::start(Behaviour::Healthy).await;
    rig.codedeploy.script([Fault::Throttle, Fault::ServerError]);
    let hook = rig.hook("after-allow-traffic", Some(&healthy_config(&target.url())));
    let invocation = hook.invoke_file("after-allow-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    assert_eq!(invocation.json()["delivery"], "accepted");
    let calls = rig.codedeploy.calls();
    let answers: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(answers, [400, 500, 200]);
}

#[tokio::test]
async fn a_second_report_for_the_same_execution_counts_as_done() {
    let rig = Rig::start().await;
    let target = Target::start(Behaviour::Healthy).await;
    let hook = rig.hook("after-allow-traffic", Some(&healthy_config(&target.url())));
    let first = hook.invoke_file("after-allow-traffic.json").await;
    let second = hook.invoke_file("after-allow-traffic.json").await;
    assert!(first.ok && second.ok, "{first:?} {second:?}");
    assert_eq!(first.json()["delivery"], "accepted");
    assert_eq!(second.json()["delivery"], "already-completed");
    // The same hook execution keeps the same run id, so idempotency keys repeat on a retry.
    assert_eq!(
        first.json()["report"]["run_id"],
        second.json()["report"]["run_id"]
    );
    let calls = rig.codedeploy.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls.iter().filter(|c| c.accepted()).count(), 1);
}

#[tokio::test]
async fn a_report_that_never_gets_through_fails_the_invocation() {
    let rig = Rig::start().await;
    let target = Target::start(Behaviour::Healthy).await;
    rig.codedeploy.always(Fault::ServerError);
    let hook = rig.hook("after-allow-traffic", Some(&healthy_config(&target.url())));
    let invocation = hook.invoke_file("after-allow-traffic.json").await;
    assert!(!invocation.ok, "{invocation:?}");
    assert!(
        invocation.stderr.contains("greenlight.ReportFailed"),
        "{}",
        invocation.stderr
    );
    assert_eq!(rig.codedeploy.calls().len(), REPORT_ATTEMPTS as usize);

    let rig = Rig::start().await;
    rig.codedeploy.always(Fault::AccessDenied);
    let hook = rig.hook("after-allow-traffic", Some(&healthy_config(&target.url())));
    let invocation = hook.invoke_file("after-allow-traffic.json").await;
    assert!(!invocation.ok, "{invocation:?}");
    assert!(
        invocation.stderr.contains("AccessDeniedException"),
        "{}",
        invocation.stderr
    );
    assert!(
        hook.logs()
            .contains("codedeploy:PutLifecycleEventHookExecutionStatus")
    );
    assert_eq!(rig.codedeploy.calls().len(), 1);
}

#[tokio::test]
async fn events_without_ids_are_rejected_and_nothing_is_reported() {
    let rig = Rig::start().await;
    let target = Target::start(Behaviour::Healthy).await;
    let hook = rig.hook("after-allow-traffic", Some(&healthy_config(&target.url())));
    for (payload, wanted) in [
        (r#""hello""#, "not a JSON object"),
        (r#"[1, 2]"#, "not a JSON object"),
        (
            r#"{"DeploymentId": "d-1"}"#,
            "LifecycleEventHookExecutionId",
        ),
        (r#"{"LifecycleEventHookExecutionId": "x"}"#, "DeploymentId"),
    ] {
        let invocation = hook.invoke(payload).await;
        assert!(!invocation.ok, "{payload}: {invocation:?}");
        assert!(
            invocation.stderr.contains("greenlight.BadEvent"),
            "{}",
            invocation.stderr
        );
        assert!(
            invocation.stderr.contains(wanted),
            "{payload}: {}",
            invocation.stderr
        );
    }
    assert!(rig.codedeploy.calls().is_empty());
    assert!(target.seen().is_empty(), "no check ran for a bad event");
}

#[tokio::test]
async fn tls_is_verified_and_host_names_the_server() {
    let rig = Rig::start().await;
    let tls = TlsTarget::start("payments.greenlight.test").await;
    let config = format!(
        r#"
targets:
  trusted: {{ url: "{url}", host: payments.greenlight.test, ca_file: "{ca}" }}
  untrusted: {{ url: "{url}", host: payments.greenlight.test }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: trusted, http: {{ target: trusted, path: /health, expect: {{ json: {{ /status: ok }} }} }} }}
      - {{ name: untrusted, required: false, http: {{ target: untrusted, path: /health }} }}
"#,
        url = tls.url(),
        ca = tls.ca_file.display()
    );
    let hook = rig.hook("after-allow-test-traffic", Some(&config));
    let invocation = hook.invoke_file("after-allow-test-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    let result = invocation.json();
    let checks = checks(&result);
    assert_eq!(checks[0].1, "passed", "{:?}", checks[0]);
    // Without the CA the certificate is refused: verification is on by default.
    assert_eq!(checks[1].1, "error", "{:?}", checks[1]);
    assert!(
        checks[1].2.to_lowercase().contains("certificate"),
        "{:?}",
        checks[1]
    );
    assert_eq!(
        result["status"], "Succeeded",
        "the untrusted check is optional"
    );

    let seen = tls.seen();
    assert_eq!(
        seen.len(),
        1,
        "only the trusted handshake completed: {seen:?}"
    );
    let (sni, host) = &seen[0];
    assert_eq!(sni.as_deref(), Some("payments.greenlight.test"));
    assert_eq!(
        host.as_deref(),
        Some(format!("payments.greenlight.test:{}", tls.addr.port()).as_str())
    );
}

#[tokio::test]
async fn secrets_and_card_numbers_never_reach_logs_or_reports() {
    let rig = Rig::start().await;
    let leaky = Target::start(Behaviour::EchoSecrets).await;
    let secret = "sk_test_GREENLIGHTSECRET123";
    let from_env = "sk_test_FROMTHEENVIRONMENT456";
    let config = format!(
        r#"
secrets: {{ token: {{ env: GREENLIGHT_TEST_TOKEN }} }}
targets: {{ test: {{ url: "{}" }} }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: echoes secrets
        http:
          target: test
          headers: {{ Authorization: "Bearer {secret}", Cookie: "session=abcdef123456" }}
          expect: {{ json: {{ /status: ok }}, body_contains: "never there" }}
      - name: echoes a secret from the environment
        http:
          target: test
          headers: {{ Authorization: "Bearer {{{{secrets.token}}}}" }}
          expect: {{ body_contains: "never there" }}
"#,
        leaky.url()
    );
    let hook = rig.emulator.function(
        "after-allow-test-traffic",
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", rig.codedeploy.url().as_str()),
            ("GREENLIGHT_CONFIG", config.as_str()),
            ("GREENLIGHT_TEST_TOKEN", from_env),
        ],
    );
    let invocation = hook.invoke_file("after-allow-test-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    assert_eq!(invocation.json()["status"], "Failed");
    // The secrets really were sent, and really came back in the bodies…
    let sent: Vec<String> = leaky
        .seen()
        .iter()
        .map(|s| s.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert!(sent.contains(&format!("Bearer {secret}")), "{sent:?}");
    assert!(sent.contains(&format!("Bearer {from_env}")), "{sent:?}");
    // …but nothing that leaves the process carries it, or the card number.
    let logs = hook.logs();
    for text in [&logs, &invocation.stdout, &invocation.stderr] {
        assert!(!text.contains(secret), "secret leaked: {text}");
        assert!(
            !text.contains(from_env),
            "secret from the environment leaked: {text}"
        );
        assert!(
            !text.contains("4242424242424242"),
            "card number leaked: {text}"
        );
        assert!(!text.contains("abcdef123456"), "cookie leaked: {text}");
    }
    assert!(
        invocation.stdout.contains("[REDACTED]"),
        "{}",
        invocation.stdout
    );
    assert!(
        invocation.stdout.contains("[CARD]"),
        "{}",
        invocation.stdout
    );
}

#[tokio::test]
async fn checks_of_a_stage_run_concurrently() {
    let rig = Rig::start().await;
    // Holds every request until five are in flight at once; one-by-one requests get 503.
    let gate = Target::start(Behaviour::Gate {
        n: 5,
        limit: Duration::from_secs(20),
    })
    .await;
    let checks: Vec<String> = (1..=5)
        .map(|i| format!("      - {{ name: c{i}, http: {{ target: test, path: /c{i} }} }}"))
        .collect();
    let config = format!(
        "targets: {{ test: {{ url: \"{}\", timeout: 30s }} }}\ndefaults: {{ retries: 0 }}\nstages:\n  AfterAllowTestTraffic:\n    checks:\n{}\n",
        gate.url(),
        checks.join("\n")
    );
    let hook = rig.hook("after-allow-test-traffic", Some(&config));
    let invocation = hook.invoke_file("after-allow-test-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    assert_eq!(
        invocation.json()["status"],
        "Succeeded",
        "{}",
        invocation.stdout
    );
    assert_eq!(gate.max_in_flight(), 5);
}

/// `scripts/invoke.sh` (what `make invoke` runs) with the shipped example pointed at a free
/// port of this test's: its exit status and what it printed.
async fn invoke_script(args: &[&str], mode: &str, event: Option<&str>) -> (bool, String) {
    use greenlight_e2e::lambda::{free_port, workspace_root};
    let target_port = free_port();
    let example = std::fs::read_to_string(workspace_root().join("examples/local.yaml")).unwrap();
    assert!(example.contains("127.0.0.1:9902"));
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        example.replace("127.0.0.1:9902", &format!("127.0.0.1:{target_port}")),
    )
    .unwrap();
    let mut command = tokio::process::Command::new(workspace_root().join("scripts/invoke.sh"));
    command
        .args(args)
        .args([config.path().to_str().unwrap(), mode])
        .env("WATCH_PORT", free_port().to_string())
        .env("CODEDEPLOY_PORT", free_port().to_string())
        .env("TARGET_PORT", target_port.to_string())
        .env_remove("EVENT")
        .current_dir(workspace_root())
        .kill_on_drop(true);
    if let Some(event) = event {
        command.env("EVENT", event);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("scripts/invoke.sh took over 2 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), stdout)
}

#[tokio::test]
async fn make_invoke_runs_a_hook_end_to_end_and_exits_by_its_verdict() {
    let (ok, stdout) = invoke_script(&["before-allow-traffic"], "broken", None).await;
    // The local CodeDeploy printed the report it received, the script summarised it, and
    // exited non-zero: the hook reported Failed.
    assert!(!ok, "a Failed report exits non-zero: {stdout}");
    assert!(stdout.contains("status=Failed -> 200 accepted"), "{stdout}");
    assert!(
        stdout.contains("[result] CodeDeploy status: Failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("green version: failed - status: expected any 2xx, got 500"),
        "{stdout}"
    );
    // The command it shows is the one that works when copied (address and port included).
    assert!(
        stdout.contains("lambda invoke --invoke-address 127.0.0.1 --invoke-port"),
        "{stdout}"
    );
}

#[tokio::test]
async fn make_invoke_sends_ecs_samples_to_their_hook() {
    // No hook named: the ECS sample's lifecycleStage picks it.
    let (ok, stdout) = invoke_script(&[""], "healthy", Some("ecs-post-test-traffic-shift")).await;
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("[hook] after-allow-test-traffic"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[result] ECS hookStatus: SUCCEEDED"),
        "{stdout}"
    );
    let (ok, stdout) =
        invoke_script(&[""], "broken", Some("ecs-pre-production-traffic-shift")).await;
    assert!(!ok, "FAILED exits non-zero: {stdout}");
    assert!(stdout.contains("[hook] before-allow-traffic"), "{stdout}");
    assert!(
        stdout.contains("[result] ECS hookStatus: FAILED"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_local_doctor_knows_it_is_local() {
    let (ok, stdout) =
        invoke_script(&["after-allow-test-traffic"], "healthy", Some("doctor")).await;
    assert!(ok, "{stdout}");
    assert!(stdout.contains("[doctor] all is well"), "{stdout}");
    assert!(
        stdout.contains("[doctor] ok  codedeploy: skipped: a local run"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[doctor] ok  permissions: skipped"),
        "{stdout}"
    );
}

#[tokio::test]
async fn ecs_native_hooks_return_their_verdict() {
    let rig = Rig::start().await;
    let target = Target::start(Behaviour::Healthy).await;
    let broken = Target::start(Behaviour::Status(500)).await;
    let config = format!(
        r#"
targets: {{ test: {{ url: "{}" }}, prod: {{ url: "{}" }} }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic: {{ checks: [ {{ name: green health, http: {{ target: test, path: "/health/{{{{run_id}}}}" }} }} ] }}
  BeforeAllowTraffic: {{ checks: [ {{ name: green health, http: {{ target: test, path: /health }} }} ] }}
  AfterAllowTraffic: {{ checks: [ {{ name: production health, http: {{ target: prod, path: /health }} }} ] }}
"#,
        target.url(),
        broken.url()
    );
    for (binary, event, status) in [
        (
            "after-allow-test-traffic",
            "ecs-post-test-traffic-shift.json",
            "SUCCEEDED",
        ),
        (
            "after-allow-test-traffic",
            "ecs-post-test-traffic-shift-legacy.json",
            "SUCCEEDED",
        ),
        (
            "before-allow-traffic",
            "ecs-pre-production-traffic-shift.json",
            "SUCCEEDED",
        ),
        // Production answers 500: the release must roll back.
        (
            "after-allow-traffic",
            "ecs-post-production-traffic-shift.json",
            "FAILED",
        ),
        // Attached to the wrong stage: FAILED with the reason, never a silent pass.
        (
            "after-allow-traffic",
            "ecs-post-test-traffic-shift.json",
            "FAILED",
        ),
    ] {
        let hook = rig.hook(binary, Some(&config));
        let invocation = hook.invoke_file(event).await;
        assert!(
            invocation.ok,
            "{binary} {event}: {invocation:?}\n{}",
            hook.logs()
        );
        let result = invocation.json();
        assert_eq!(result["hookStatus"], status, "{binary} {event}: {result:#}");
        assert!(result["hookDetails"]["greenlightSummary"].is_string());
    }
    // The run id came from executionId: the same execution, the same path.
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(
            greenlight_e2e::lambda::workspace_root()
                .join("events/ecs-post-test-traffic-shift.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let run_id = greenlight::run_id_from(sample["executionId"].as_str().unwrap());
    assert!(
        target
            .seen()
            .iter()
            .any(|s| s.path == format!("/health/{run_id}"))
    );
    assert!(
        rig.codedeploy.calls().is_empty(),
        "ECS hooks never call CodeDeploy"
    );
}

/// 64 checks each reading a 1 MB JSON body at once, in a hook whose data segment is limited
/// to 128 MiB as `MemorySize: 128` limits it: the stage still ends in exactly one report.
#[tokio::test]
async fn a_128_mb_hook_reads_64_large_json_bodies_and_still_reports() {
    let rig = Rig::start().await;
    // Half a million numbers: as a JSON tree, 16 bytes of body become 16 MB of memory.
    let body = format!("[{}0]", "0,".repeat(500_000));
    assert!(body.len() > 1_000_000, "{}", body.len());
    // Every answer waits until all 64 requests are in: 64 bodies in flight at once.
    let big = Target::start(Behaviour::GatedJson {
        n: 64,
        limit: Duration::from_secs(30),
        body: std::sync::Arc::from(body.as_str()),
    })
    .await;
    let checks: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "      - {{ name: big {i}, http: {{ target: test, path: /big/{i}, expect: {{ json: {{ /{i}: 0 }} }} }} }}"
            )
        })
        .collect();
    let config = format!(
        "targets: {{ test: {{ url: \"{}\" }} }}\ndefaults: {{ retries: 0, max_body_bytes: 2000000, timeout: 60s }}\nstages:\n  AfterAllowTestTraffic:\n    checks:\n{}\n",
        big.url(),
        checks.join("\n")
    );
    let hook = rig.emulator.function_with_memory(
        "after-allow-test-traffic",
        &[
            ("AWS_ENDPOINT_URL_CODEDEPLOY", rig.codedeploy.url().as_str()),
            ("GREENLIGHT_CONFIG", config.as_str()),
        ],
        128 * 1024 * 1024,
    );
    let invocation = hook.invoke_file("after-allow-test-traffic.json").await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    let result = invocation.json();
    assert_eq!(result["status"], "Succeeded", "{result:#}\n{}", hook.logs());
    assert_eq!(big.seen().len(), 64);
    assert_eq!(rig.codedeploy.calls().len(), 1, "exactly one report");
}

/// Secrets with quotes, backslashes, spaces, URL delimiters and non-ASCII, echoed back in a
/// body, a header and an error URL, through the real hook binary: no form of them reaches the
/// logs (at every level), the invocation's answer, or ECS's hookDetails, a watch's state in it
/// included.
#[tokio::test]
async fn hostile_secrets_leave_the_hooks_in_no_form() {
    let rig = Rig::start().await;
    // The encoded key starts 11 characters after the filler, so it straddles the 200-character
    // cut of the body snippet.
    let echo = Target::start(Behaviour::Echo { pad: 186 }).await;
    // For the watch: the key lands across the 120-character cut of a run's message in the state.
    let echo_cut = Target::start(Behaviour::Echo { pad: 60 }).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let header_safe = r#"sk_live_"q\u0080 50%/ok+&=?#<>"#.replace("\\u0080", "\\");
    let anywhere = "pä$$ \"wörd\" \\ 100% <tag> #frag ?q=1&x".to_owned();
    let config = format!(
        r#"
secrets:
  key: {{ env: GREENLIGHT_TEST_KEY }}
  password: {{ env: GREENLIGHT_TEST_PASSWORD }}
targets: {{ echo: {{ url: "{}" }}, echo_cut: {{ url: "{}" }}, closed: {{ url: "http://{closed}" }} }}
defaults: {{ retries: 0, budget: 1s }}
stages:
  AfterAllowTraffic:
    checks:
      - name: echoed over a bake
        repeat: {{ every: 1s, for: 3s, failure_limit: 3 }}
        http:
          target: echo_cut
          timeout: 500ms
          path: "/v1/echo?k={{{{secrets.key}}}}"
          headers: {{ Authorization: "Bearer {{{{secrets.key}}}}" }}
          json: {{ password: "{{{{secrets.password}}}}" }}
  AfterAllowTestTraffic:
    checks:
      - name: echoed
        http:
          target: echo
          path: "/v1/echo?k={{{{secrets.key}}}}"
          headers: {{ Authorization: "Bearer {{{{secrets.key}}}}" }}
          json: {{ password: "{{{{secrets.password}}}}" }}
          expect: {{ status: 200, headers: {{ x-echo: nope }} }}
      - name: refused
        http: {{ target: closed, path: "/v1/echo?p={{{{secrets.password}}}}" }}
  BeforeAllowTraffic:
    checks:
      - name: echoed
        http:
          target: echo
          path: "/v1/echo?k={{{{secrets.key}}}}"
          json: {{ password: "{{{{secrets.password}}}}" }}
"#,
        echo.url(),
        echo_cut.url()
    );
    for (binary, event) in [
        ("after-allow-test-traffic", "after-allow-test-traffic.json"),
        (
            "before-allow-traffic",
            "ecs-pre-production-traffic-shift.json",
        ),
        (
            "after-allow-traffic",
            "ecs-post-production-traffic-shift.json",
        ),
    ] {
        let hook = rig.emulator.function(
            binary,
            &[
                ("AWS_ENDPOINT_URL_CODEDEPLOY", rig.codedeploy.url().as_str()),
                ("GREENLIGHT_CONFIG", config.as_str()),
                ("GREENLIGHT_TEST_KEY", header_safe.as_str()),
                ("GREENLIGHT_TEST_PASSWORD", anywhere.as_str()),
                ("AWS_LAMBDA_LOG_LEVEL", "trace"),
            ],
        );
        let invocation = hook.invoke_file(event).await;
        assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
        let answer = invocation.json();
        if binary == "after-allow-traffic" {
            // The watch goes on: its state, with the failed run's message, leaves in hookDetails.
            assert_eq!(
                answer["hookStatus"],
                "IN_PROGRESS",
                "{answer:#}\n{}",
                hook.logs()
            );
            // The state travels sealed: its exact text inside the envelope.
            let state: Value = serde_json::from_str(
                answer["hookDetails"]["greenlightWatch"]["state"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            let recent = &state["repeats"][0]["figures"]["recent"];
            assert_eq!(recent[0]["outcome"], "failed", "{answer:#}");
            // Cut where the key would be: scrubbed first, so not even part of it is left.
            let message = recent[0]["message"].as_str().unwrap();
            assert!(
                message.ends_with('…') && message.contains("?k=[RE"),
                "{message}"
            );
        } else {
            let failed = answer["status"] == "Failed" || answer["hookStatus"] == "FAILED";
            assert!(failed, "{answer:#}");
        }
        if binary == "after-allow-test-traffic" {
            // The echoed Authorization header is shown, masked.
            assert!(
                invocation.stdout.contains("[REDACTED]"),
                "{}",
                invocation.stdout
            );
        }
        for (what, output) in [
            ("logs", hook.logs()),
            ("answer", invocation.stdout.clone()),
            ("stderr", invocation.stderr.clone()),
        ] {
            assert_no_form(&header_safe, &output, &format!("{binary} {what}"));
            assert_no_form(&anywhere, &output, &format!("{binary} {what}"));
        }
    }
    // The echo really carried them.
    let seen = echo.seen();
    assert!(
        seen.iter()
            .any(|s| s.headers.get("authorization").is_some())
    );
}

/// The units CloudWatch accepts for a metric.
const EMF_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Hold a record to the rules of CloudWatch's embedded metric format specification.
fn assert_emf(record: &Value) {
    let aws = &record["_aws"];
    assert!(aws["Timestamp"].is_u64(), "Timestamp in ms: {record}");
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert!(!directives.is_empty(), "{record}");
    for directive in directives {
        let namespace = directive["Namespace"].as_str().unwrap();
        assert!((1..=255).contains(&namespace.chars().count()), "{record}");
        for set in directive["Dimensions"].as_array().unwrap() {
            let set = set.as_array().unwrap();
            assert!(!set.is_empty() && set.len() <= 30, "{record}");
            for name in set {
                let value = &record[name.as_str().unwrap()];
                assert!(value.is_string(), "dimension {name} is a string: {record}");
                assert!(value.as_str().unwrap().chars().count() <= 1024);
            }
        }
        let metrics = directive["Metrics"].as_array().unwrap();
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{record}");
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap();
            assert!(
                record[name].is_number(),
                "metric {name} is a number: {record}"
            );
            let unit = metric["Unit"].as_str().unwrap();
            assert!(EMF_UNITS.contains(&unit), "unit {unit}: {record}");
        }
    }
}

#[tokio::test]
async fn every_stage_and_check_leaves_an_embedded_metric_record() {
    let rig = Rig::start().await;
    let green = Target::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
targets: {{ test: {{ url: "{0}" }}, prod: {{ url: "{0}" }} }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: health
        http: {{ target: test, path: /health }}
      - name: latency
        probe: {{ target: test, path: /health, requests: 60, baseline: prod }}
      - name: broken
        http: {{ target: test, path: /health, expect: {{ status: 201 }} }}
"#,
        green.url()
    );
    let hook = rig.hook("after-allow-test-traffic", Some(&config));
    let result = hook
        .invoke(r#"{"DeploymentId":"d-EMF","LifecycleEventHookExecutionId":"emf-1"}"#)
        .await
        .json();
    assert_eq!(result["status"], "Failed");
    let records: Vec<Value> = hook
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("_aws").is_some())
        .collect();
    assert_eq!(
        records.len(),
        4,
        "one for the stage, one per check: {records:#?}"
    );
    for record in &records {
        assert_emf(record);
        assert_eq!(
            record["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "greenlight"
        );
        assert_eq!(record["Function"], "after-allow-test-traffic");
        // Never a deployment id as a dimension: it would make a metric per deployment.
        let dimensions = record["_aws"]["CloudWatchMetrics"][0]["Dimensions"].to_string();
        assert!(
            !dimensions.contains("Deployment") && !dimensions.contains("Run"),
            "{dimensions}"
        );
    }
    assert_eq!(records[0]["StagePassed"], 0.0);
    assert_eq!(records[0]["ChecksFailed"], 1.0);
    assert_eq!(records[0]["DeploymentId"], "d-EMF");
    let check = |name: &str| records.iter().find(|r| r["Check"] == name).unwrap().clone();
    assert_eq!(check("health")["CheckPassed"], 1.0);
    assert_eq!(check("broken")["CheckPassed"], 0.0);
    let latency = check("latency");
    assert!(latency["ProbeP99"].as_f64().unwrap() > 0.0, "{latency}");
    assert_eq!(latency["ProbeErrorRate"], 0.0);
}
