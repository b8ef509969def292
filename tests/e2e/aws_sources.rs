//! Config and secrets from AWS, through the real SDK clients in the real hook binary, against
//! local SSM, S3 and Secrets Manager endpoints (`AWS_ENDPOINT_URL_<SERVICE>`): the happy paths,
//! and the errors an SRE meets (missing, access denied, wrong type), each a Failed report that
//! says what to fix.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use greenlight_e2e::aws::{FakeAws, Store};
use greenlight_e2e::codedeploy::FakeCodeDeploy;
use greenlight_e2e::lambda::{Emulator, Function};
use greenlight_e2e::targets::{Behaviour, Target};
use serde_json::Value;

const EVENT: &str = r#"{"DeploymentId":"d-AWS","LifecycleEventHookExecutionId":"aws-sources"}"#;

struct Rig {
    emulator: Emulator,
    codedeploy: FakeCodeDeploy,
    aws: FakeAws,
}

impl Rig {
    async fn start(store: Store) -> Rig {
        Rig {
            emulator: Emulator::start().await,
            codedeploy: FakeCodeDeploy::start().await,
            aws: FakeAws::start(store).await,
        }
    }

    fn hook(&self, config: &str) -> Function {
        self.hook_with(config, &[])
    }

    fn hook_with(&self, config: &str, extra: &[(&str, &str)]) -> Function {
        let codedeploy = self.codedeploy.url();
        let aws = self.aws.env();
        let mut env: Vec<(&str, &str)> = vec![
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.as_str()),
            ("GREENLIGHT_CONFIG", config),
        ];
        env.extend(aws.iter().map(|(k, v)| (*k, v.as_str())));
        env.extend_from_slice(extra);
        self.emulator.function("after-allow-traffic", &env)
    }

    /// Every request the fake got was validly signed; their (service, region) scopes.
    fn signed_scopes(&self) -> Vec<(String, String)> {
        self.aws
            .signatures()
            .into_iter()
            .map(|checked| {
                let signed = checked.unwrap_or_else(|why| panic!("badly signed request: {why}"));
                assert_eq!(signed.access_key, "AKIDGREENLIGHTTEST");
                (signed.service, signed.region)
            })
            .collect()
    }
}

fn suite(url: &str, secret_source: &str) -> String {
    format!(
        r#"
secrets: {{ api_key: {secret_source} }}
targets: {{ prod: {{ url: "{url}" }} }}
stages:
  AfterAllowTraffic:
    checks:
      - name: production health
        http: {{ target: prod, path: /health, headers: {{ Authorization: "Bearer {{{{secrets.api_key}}}}" }} }}
"#
    )
}

async fn run(rig: &Rig, config: &str) -> (Value, String) {
    let hook = rig.hook(config);
    let invocation = hook.invoke(EVENT).await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    // Logs are read after the report went out, so every line of this invocation is there.
    rig.codedeploy
        .wait_for_calls(1, Duration::from_secs(30))
        .await;
    (invocation.json(), hook.logs())
}

#[tokio::test]
async fn config_from_ssm_and_a_secret_from_secrets_manager() {
    let target = Target::start(Behaviour::Healthy).await;
    let mut store = Store::default();
    store.parameters.insert(
        "/greenlight/payments".into(),
        (
            "String".into(),
            suite(&target.url(), "{ secretsmanager: payments/api-key }"),
            7,
        ),
    );
    store.secrets.insert(
        "payments/api-key".into(),
        Some("sk_test_FROMSECRETSMANAGER".into()),
    );
    let rig = Rig::start(store).await;
    let hook = rig.hook("ssm:/greenlight/payments");
    for id in ["first", "second"] {
        let invocation = hook
            .invoke(&format!(
                r#"{{"DeploymentId":"d-AWS","LifecycleEventHookExecutionId":"{id}"}}"#
            ))
            .await;
        assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
        assert_eq!(invocation.json()["status"], "Succeeded", "{}", hook.logs());
    }
    rig.codedeploy
        .wait_for_calls(2, Duration::from_secs(30))
        .await;
    let logs = hook.logs();
    assert_eq!(
        target.seen()[0].headers["authorization"],
        "Bearer sk_test_FROMSECRETSMANAGER"
    );
    // Source and version are logged once per cold start; the secret never is.
    assert!(
        logs.contains(r#""config_source":"ssm:/greenlight/payments""#),
        "{logs}"
    );
    assert!(
        logs.contains(r#""config_version":"ssm version 7""#),
        "{logs}"
    );
    assert!(!logs.contains("sk_test_FROMSECRETSMANAGER"));
    // Read once per cold start: two invocations, one read of each.
    assert_eq!(
        rig.aws.requests(),
        vec![
            ("ssm".to_owned(), "/greenlight/payments".to_owned()),
            ("secretsmanager".to_owned(), "payments/api-key".to_owned()),
        ]
    );
    // Signed as AWS checks it, for each service's own scope.
    assert_eq!(
        rig.signed_scopes(),
        vec![
            ("ssm".to_owned(), "us-east-1".to_owned()),
            ("secretsmanager".to_owned(), "us-east-1".to_owned()),
        ]
    );
}

#[tokio::test]
async fn config_from_s3_and_a_secret_from_an_ssm_securestring() {
    let target = Target::start(Behaviour::Healthy).await;
    let mut store = Store::default();
    store.objects.insert(
        "payments-config/greenlight.yaml".into(),
        (
            suite(&target.url(), "{ ssm: /payments/api-key }").into_bytes(),
            "3HL4kqtJlcpXrof3vjVBH40Nrjfkd".into(),
        ),
    );
    store.parameters.insert(
        "/payments/api-key".into(),
        ("SecureString".into(), "sk_test_FROMSSM".into(), 2),
    );
    store.bucket_owner = Some("111122223333".into());
    let rig = Rig::start(store).await;
    // Lambda's credentials are temporary: the session token travels, signed, with each read.
    // The template names the account that must own the config bucket.
    let hook = rig.hook_with(
        "s3://payments-config/greenlight.yaml",
        &[
            ("AWS_SESSION_TOKEN", "greenlight-session-token"),
            ("GREENLIGHT_CONFIG_BUCKET_OWNER", "111122223333"),
        ],
    );
    let invocation = hook.invoke(EVENT).await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    rig.codedeploy
        .wait_for_calls(1, Duration::from_secs(30))
        .await;
    let (result, logs) = (invocation.json(), hook.logs());
    assert_eq!(result["status"], "Succeeded", "{result:#}\n{logs}");
    assert_eq!(
        rig.signed_scopes(),
        vec![
            ("s3".to_owned(), "us-east-1".to_owned()),
            ("ssm".to_owned(), "us-east-1".to_owned()),
        ]
    );
    let signatures = rig.aws.signatures();
    let s3_signed = &signatures[0].as_ref().unwrap().signed_headers;
    assert_eq!(
        rig.aws.store.lock().unwrap().expected_owners,
        [Some("111122223333".to_owned())]
    );
    for header in [
        "host",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-expected-bucket-owner",
        "x-amz-security-token",
    ] {
        assert!(
            s3_signed.iter().any(|h| h == header),
            "{header} not signed: {s3_signed:?}"
        );
    }
    assert_eq!(
        target.seen()[0].headers["authorization"],
        "Bearer sk_test_FROMSSM"
    );
    assert!(
        logs.contains(r#""config_version":"s3 3HL4kqtJlcpXrof3vjVBH40Nrjfkd""#),
        "{logs}"
    );
    assert!(!logs.contains("sk_test_FROMSSM"));
}

#[tokio::test]
async fn missing_denied_and_wrongly_typed_sources_fail_with_the_fix() {
    let target = Target::start(Behaviour::Healthy).await;
    let mut store = Store::default();
    store.parameters.insert(
        "/greenlight/plain-secret".into(),
        (
            "String".into(),
            suite(&target.url(), "{ ssm: /payments/plain }"),
            1,
        ),
    );
    store.parameters.insert(
        "/payments/plain".into(),
        ("String".into(), "sk_test_plain".into(), 1),
    );
    store.parameters.insert(
        "/greenlight/binary-secret".into(),
        (
            "String".into(),
            suite(&target.url(), "{ secretsmanager: payments/binary }"),
            1,
        ),
    );
    store.secrets.insert("payments/binary".into(), None);
    store.parameters.insert(
        "/greenlight/denied-secret".into(),
        (
            "String".into(),
            suite(&target.url(), "{ secretsmanager: payments/locked }"),
            1,
        ),
    );
    store
        .secrets
        .insert("payments/locked".into(), Some("x".into()));
    store.denied.insert("payments/locked".into());
    store.denied.insert("/greenlight/locked".into());
    let rig = Rig::start(store).await;
    let cases = [
        (
            "ssm:/greenlight/absent",
            "SSM parameter /greenlight/absent does not exist",
        ),
        (
            "ssm:/greenlight/locked",
            "ssm:GetParameter on parameter /greenlight/locked",
        ),
        (
            "s3://payments-config/absent.yaml",
            "s3://payments-config/absent.yaml does not exist",
        ),
        ("ssm:/greenlight/plain-secret", "not a SecureString"),
        ("ssm:/greenlight/binary-secret", "is binary"),
        (
            "ssm:/greenlight/denied-secret",
            "secretsmanager:GetSecretValue on payments/locked",
        ),
    ];
    for (index, (config, wanted)) in cases.iter().enumerate() {
        let hook = rig.hook(config);
        let invocation = hook
            .invoke(&format!(
                r#"{{"DeploymentId":"d-AWS","LifecycleEventHookExecutionId":"case-{index}"}}"#
            ))
            .await;
        assert!(invocation.ok, "{config}: {invocation:?}");
        let result = invocation.json();
        assert_eq!(result["status"], "Failed", "{config}: {result:#}");
        // A config that cannot be read fails the stage; a secret that cannot be read fails the
        // checks that use it (the stages that do not use it still run).
        let said = format!(
            "{}{}",
            result["report"]["errors"], result["report"]["checks"]
        );
        assert!(said.contains(wanted), "{config}: {said}");
    }
    assert!(
        target.seen().is_empty(),
        "nothing is sent without its config or its secret"
    );
    let calls = rig
        .codedeploy
        .wait_for_calls(cases.len(), Duration::from_secs(30))
        .await;
    assert!(calls.iter().all(|c| c.reported_status() == Some("Failed")));
}

#[tokio::test]
async fn throttled_reads_are_retried_with_backoff() {
    let target = Target::start(Behaviour::Healthy).await;
    let mut store = Store::default();
    store.objects.insert(
        "payments-config/greenlight.yaml".into(),
        (
            suite(&target.url(), "{ secretsmanager: payments/api-key }").into_bytes(),
            "v9".into(),
        ),
    );
    store.secrets.insert(
        "payments/api-key".into(),
        Some("sk_test_AFTERTHROTTLE".into()),
    );
    // S3 answers 503 SlowDown twice, then Secrets Manager is fine.
    store.throttle_first = 2;
    let rig = Rig::start(store).await;
    let (result, logs) = run(&rig, "s3://payments-config/greenlight.yaml").await;
    assert_eq!(result["status"], "Succeeded", "{result:#}\n{logs}");
    assert_eq!(
        target.seen()[0].headers["authorization"],
        "Bearer sk_test_AFTERTHROTTLE"
    );
    // Three signed attempts at S3 (each signed afresh), one at Secrets Manager.
    let scopes: Vec<String> = rig.signed_scopes().into_iter().map(|(s, _)| s).collect();
    assert_eq!(scopes, ["s3", "s3", "s3", "secretsmanager"]);
    assert!(logs.contains("AWS read failed; retrying"), "{logs}");
}

#[tokio::test]
async fn a_hung_aws_endpoint_still_ends_in_a_failed_report() {
    let target = Target::start(Behaviour::Healthy).await;
    let store = Store {
        hang: true,
        ..Store::default()
    };
    let rig = Rig::start(store).await;
    let started = std::time::Instant::now();
    let (result, logs) = run(&rig, "ssm:/greenlight/payments").await;
    let took = started.elapsed();
    assert_eq!(result["status"], "Failed", "{result:#}\n{logs}");
    let errors = result["report"]["errors"].to_string();
    assert!(
        errors.contains("SSM parameter /greenlight/payments")
            && errors.contains("no answer within 3s"),
        "{errors}"
    );
    assert!(errors.contains("NAT gateway or VPC endpoint"), "{errors}");
    // Three attempts of at most 3 s each, with short pauses: well inside Lambda's 10 s init.
    assert_eq!(rig.aws.signatures().len(), 3);
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(target.seen().is_empty());
}

#[tokio::test]
async fn a_config_bucket_owned_by_another_account_is_refused() {
    let mut store = Store::default();
    store.objects.insert(
        "payments-config/greenlight.yaml".into(),
        (
            b"targets: { t: { url: 'http://127.0.0.1:9' } }".to_vec(),
            "v1".into(),
        ),
    );
    // Someone else re-created a bucket of the same name.
    store.bucket_owner = Some("999988887777".into());
    let rig = Rig::start(store).await;
    let hook = rig.hook_with(
        "s3://payments-config/greenlight.yaml",
        &[("GREENLIGHT_CONFIG_BUCKET_OWNER", "111122223333")],
    );
    let invocation = hook.invoke(EVENT).await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    let result = invocation.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    let errors = result["report"]["errors"].to_string();
    assert!(
        errors.contains("GREENLIGHT_CONFIG_BUCKET_OWNER = 111122223333"),
        "{errors}"
    );
}

fn alarms_config(alarms: &str) -> String {
    format!(
        "targets: {{ t: {{ url: 'http://127.0.0.1:9' }} }}\nstages:\n  AfterAllowTraffic:\n    checks:\n      - name: no alarm firing\n        alarms: {alarms}\n"
    )
}

fn alarm(name: &str, state: &str, composite: bool) -> (String, String, String, bool) {
    (
        name.into(),
        state.into(),
        format!("Threshold Crossed: {name}"),
        composite,
    )
}

#[tokio::test]
async fn alarms_in_alarm_fail_with_their_reason_and_missing_ones_error() {
    let store = Store {
        alarms: vec![
            alarm("payments-5xx", "OK", false),
            alarm("payments-latency", "ALARM", false),
            alarm("payments-health", "OK", true),
            alarm("payments-new", "INSUFFICIENT_DATA", false),
        ],
        alarm_page_size: 1,
        // The first CloudWatch answer is a throttle: retried.
        throttle_first: 1,
        ..Store::default()
    };
    let rig = Rig::start(store).await;

    // A prefix, over several pages, composite alarms included: one fires.
    let hook = rig.hook(&alarms_config("{ prefix: payments- }"));
    let invocation = hook.invoke(EVENT).await;
    let result = invocation.json();
    assert_eq!(result["status"], "Failed", "{result:#}\n{}", hook.logs());
    let check = &result["report"]["checks"][0];
    assert_eq!(check["kind"], "alarms");
    assert_eq!(check["outcome"], "failed");
    assert_eq!(check["failures"].as_array().unwrap().len(), 1, "{check:#}");
    assert_eq!(check["failures"][0]["what"], "alarm payments-latency");
    assert_eq!(
        check["failures"][0]["actual"],
        "ALARM since 2026-11-18T11:06:40Z: Threshold Crossed: payments-latency"
    );
    let scopes: Vec<String> = rig.signed_scopes().into_iter().map(|(s, _)| s).collect();
    assert!(scopes.iter().all(|s| s == "monitoring"), "{scopes:?}");
    assert!(
        scopes.len() >= 5,
        "throttle retried, then four pages: {scopes:?}"
    );
    drop(hook);

    // Named alarms that are fine pass; INSUFFICIENT_DATA passes unless told otherwise.
    let hook = rig.hook(&alarms_config(
        "{ names: [payments-5xx, payments-health, payments-new] }",
    ));
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Succeeded", "{result:#}");
    drop(hook);
    let hook = rig.hook(&alarms_config(
        "{ names: [payments-new], insufficient_data: fail }",
    ));
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    drop(hook);

    // A typo is an error that names it, never a pass.
    let hook = rig.hook(&alarms_config(
        "{ names: [payments-5xx, payments-latnecy] }",
    ));
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    let check = &result["report"]["checks"][0];
    assert_eq!(check["outcome"], "error");
    assert!(
        check["error"]
            .as_str()
            .unwrap()
            .contains("payments-latnecy"),
        "{check:#}"
    );
    drop(hook);
    let hook = rig.hook(&alarms_config("{ prefix: billing- }"));
    let result = hook.invoke(EVENT).await.json();
    assert!(
        result["report"]["checks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no CloudWatch alarm's name starts with \"billing-\""),
        "{result:#}"
    );
}

#[tokio::test]
async fn a_denied_alarm_read_says_which_permission_is_missing() {
    let store = Store {
        alarms: vec![alarm("payments-5xx", "OK", false)],
        ..Store::default()
    };
    let rig = Rig::start(store).await;
    rig.aws
        .store
        .lock()
        .unwrap()
        .denied
        .insert("payments-5xx".into());
    let hook = rig.hook(&alarms_config("{ names: [payments-5xx] }"));
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    let error = result["report"]["checks"][0]["error"].to_string();
    assert!(
        error.contains("cloudwatch:DescribeAlarms") && error.contains("EnableMetricChecks"),
        "{error}"
    );
}

/// The examples of the metric checks, as the users' contract writes them.
const METRIC_SUITE: &str = r#"
deployment:
  load_balancer: app/payments-alb/50dc6c495c0c9188
  target_groups:
    - targetgroup/payments-a/73e2d6bc24d8a067
    - targetgroup/payments-b/2453ed029918f21f
targets: { t: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTraffic:
    checks:
      - name: green 5xx no worse than blue
        metric:
          namespace: AWS/ApplicationELB
          metric_name: HTTPCode_Target_5XX_Count
          dimensions: { LoadBalancer: "{{load_balancer}}", TargetGroup: "{{green_target_group}}" }
          stat: Sum                 # any CloudWatch statistic: Sum, Average, Maximum, p99, tm90, ...
          period: 60s
          window: 10m               # the last 10 minutes
          reduce: sum               # how the window's datapoints combine: sum, avg, max, min, last
          max: 20                   # bounds on the reduced value (max and/or min)
          no_data: zero             # no datapoints: fail (default), pass, or zero (count metrics)
          baseline:                 # optional: the same query with these dimensions replaced
            dimensions: { TargetGroup: "{{blue_target_group}}" }
          max_regression: 0.5       # green ≤ blue × 1.5 ...
          min_regression: 5         # ... unless they differ by less than this (absolute)
      - name: green p99 latency
        metric:
          namespace: AWS/ApplicationELB
          metric_name: TargetResponseTime
          dimensions: { LoadBalancer: "{{load_balancer}}", TargetGroup: "{{green_target_group}}" }
          stat: p99
          period: 60s
          window: 5m
          reduce: max
          max: 0.5
      - name: green 5xx rate
        metric:
          expression: "100 * errors / requests"
          queries:
            errors: { namespace: AWS/ApplicationELB, metric_name: HTTPCode_Target_5XX_Count, stat: Sum, dimensions: { TargetGroup: "{{green_target_group}}" } }
            requests: { namespace: AWS/ApplicationELB, metric_name: RequestCount, stat: Sum, dimensions: { TargetGroup: "{{green_target_group}}" } }
          window: 5m
          reduce: max
          max: 1
"#;

const GREEN_TG: &str = "targetgroup/payments-b/2453ed029918f21f";
const BLUE_TG: &str = "targetgroup/payments-a/73e2d6bc24d8a067";

fn metrics(entries: &[(&str, &str, &[f64])]) -> std::collections::BTreeMap<String, Vec<f64>> {
    entries
        .iter()
        .map(|(metric, tg, values)| {
            let stat = match *metric {
                "TargetResponseTime" => "p99",
                _ => "Sum",
            };
            (format!("{metric}|{stat}|{tg}"), values.to_vec())
        })
        .collect()
}

fn outcomes(result: &Value) -> Vec<(String, String)> {
    result["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn metric_checks_judge_green_against_blue_from_cloudwatch() {
    let rig = Rig::start(Store::default()).await;
    rig.codedeploy
        .deployment("d-AWS", "payments-b", "payments-a");
    let set = |entries: &[(&str, &str, &[f64])], throttle: usize| {
        let mut store = rig.aws.store.lock().unwrap();
        store.metrics = metrics(entries);
        store.throttle_first = throttle;
    };

    // A healthy green: as many 5xx as blue, fast, a low error rate. The first read is
    // throttled and retried.
    set(
        &[
            ("HTTPCode_Target_5XX_Count", GREEN_TG, &[1.0, 2.0, 1.0]),
            ("HTTPCode_Target_5XX_Count", BLUE_TG, &[2.0, 2.0]),
            ("TargetResponseTime", GREEN_TG, &[0.2, 0.31]),
            ("RequestCount", GREEN_TG, &[400.0, 500.0]),
        ],
        1,
    );
    let hook = rig.hook(METRIC_SUITE);
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Succeeded", "{result:#}\n{}", hook.logs());
    let first = &result["report"]["checks"][0]["metric"];
    assert_eq!(first["green"]["value"], 4.0, "{first:#}");
    assert_eq!(first["blue"]["value"], 4.0, "{first:#}");
    assert_eq!(first["green"]["datapoints"].as_array().unwrap().len(), 3);
    assert_eq!(
        first["bound"],
        "at most 20, at most blue × 1.5 unless within 5 of it"
    );
    // One GetMetricData call per check carries both sides; discovery asked CodeDeploy.
    let requests = rig.aws.store.lock().unwrap().metric_requests.clone();
    let ids: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            r["MetricDataQueries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["Id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert!(
        ids.contains(&vec!["green".to_owned(), "blue".to_owned()]),
        "{ids:?}"
    );
    assert!(
        ids.contains(&vec![
            "errors".to_owned(),
            "requests".to_owned(),
            "green".to_owned()
        ]),
        "{ids:?}"
    );
    let five_xx = requests
        .iter()
        .find(|r| {
            r["MetricDataQueries"][0]["MetricStat"]["Metric"]["MetricName"]
                == "HTTPCode_Target_5XX_Count"
                && r["MetricDataQueries"].as_array().unwrap().len() == 2
        })
        .unwrap();
    assert_eq!(
        five_xx["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"],
        serde_json::json!([{"Name": "LoadBalancer", "Value": "app/payments-alb/50dc6c495c0c9188"}, {"Name": "TargetGroup", "Value": GREEN_TG}])
    );
    assert_eq!(
        five_xx["MetricDataQueries"][1]["MetricStat"]["Metric"]["Dimensions"][1]["Value"],
        BLUE_TG
    );
    assert!(
        rig.codedeploy
            .lookups()
            .contains(&"GetDeploymentTarget".to_owned())
    );
    assert_eq!(rig.codedeploy.calls().len(), 1, "exactly one status report");
    drop(hook);

    // A broken green: 25 errors against blue's 4, slow, a 5 % error rate.
    set(
        &[
            ("HTTPCode_Target_5XX_Count", GREEN_TG, &[10.0, 15.0]),
            ("HTTPCode_Target_5XX_Count", BLUE_TG, &[4.0]),
            ("TargetResponseTime", GREEN_TG, &[0.2, 0.9]),
            ("RequestCount", GREEN_TG, &[300.0, 300.0]),
        ],
        0,
    );
    let hook = rig.hook(METRIC_SUITE);
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    assert_eq!(
        outcomes(&result),
        [
            (
                "green 5xx no worse than blue".to_owned(),
                "failed".to_owned()
            ),
            ("green p99 latency".to_owned(), "failed".to_owned()),
            ("green 5xx rate".to_owned(), "failed".to_owned()),
        ]
    );
    let message = result["report"]["checks"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("green: expected at most 20, got 25 (sum of 2 datapoints)"),
        "{message}"
    );
    assert!(
        message.contains("green against blue: expected at most 6 (blue 4 × 1.5"),
        "{message}"
    );
    drop(hook);

    // No datapoints at all: a count metric with no_data: zero passes, latency fails (default).
    set(&[], 0);
    let hook = rig.hook(METRIC_SUITE);
    let result = hook.invoke(EVENT).await.json();
    let outcomes = outcomes(&result);
    assert_eq!(outcomes[0].1, "passed", "{result:#}");
    assert_eq!(outcomes[1].1, "failed", "{result:#}");
    assert!(
        result["report"]["checks"][1]["message"]
            .as_str()
            .unwrap()
            .contains("green datapoints: expected at least one in the last 5m"),
        "{result:#}"
    );
}

#[tokio::test]
async fn when_green_cannot_be_found_metric_checks_error_with_the_fix() {
    let rig = Rig::start(Store::default()).await;
    // The deployment's task sets name a target group the config does not list.
    rig.codedeploy.deployment("d-AWS", "orders-b", "orders-a");
    let hook = rig.hook(METRIC_SUITE);
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    let check = &result["report"]["checks"][0];
    assert_eq!(check["outcome"], "error", "{check:#}");
    let error = check["error"].as_str().unwrap();
    assert!(
        error.contains("is unknown")
            && error.contains("\"orders-b\" is neither of deployment.target_groups"),
        "{error}"
    );
    assert!(
        rig.aws.store.lock().unwrap().metric_requests.is_empty(),
        "nothing was guessed"
    );
    drop(hook);

    // The role may not ask CodeDeploy.
    rig.codedeploy.deny_target_calls();
    let hook = rig.hook(METRIC_SUITE);
    let result = hook.invoke(EVENT).await.json();
    let error = result["report"]["checks"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("AccessDenied") && error.contains("codedeploy:ListDeploymentTargets"),
        "{error}"
    );
    assert_eq!(
        rig.codedeploy.calls().len(),
        2,
        "still exactly one report per invocation"
    );
}

const ECS_REVISION: &str =
    "arn:aws:ecs:us-east-1:123456789012:service-revision/payments/payments-api/2";

fn ecs_event(revision: &str) -> String {
    serde_json::json!({
        "executionId": "ecs-metrics",
        "lifecycleStage": "POST_PRODUCTION_TRAFFIC_SHIFT",
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/payments/payments-api/x",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/payments/payments-api",
            "targetServiceRevisionArn": revision,
        }
    })
    .to_string()
}

#[tokio::test]
async fn ecs_native_hooks_find_green_through_the_target_service_revision() {
    let mut store = Store::default();
    // ECS resolved the new revision onto payments-b: green. (The fake's configured
    // `loadBalancers` names payments-a, the service's primary group, to catch a reader that
    // takes the wrong field.)
    store.revisions.insert(
        ECS_REVISION.to_owned(),
        vec![format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:{GREEN_TG}"
        )],
    );
    store.metrics = metrics(&[
        ("HTTPCode_Target_5XX_Count", GREEN_TG, &[10.0, 15.0]),
        ("HTTPCode_Target_5XX_Count", BLUE_TG, &[1.0]),
        ("TargetResponseTime", GREEN_TG, &[0.2]),
        ("RequestCount", GREEN_TG, &[10_000.0]),
    ]);
    let rig = Rig::start(store).await;
    let hook = rig.hook(METRIC_SUITE);
    let result = hook.invoke(&ecs_event(ECS_REVISION)).await.json();
    assert_eq!(
        result["hookStatus"],
        "FAILED",
        "{result:#}\n{}",
        hook.logs()
    );
    let requests = rig.aws.requests();
    assert!(
        requests.contains(&("ecs".to_owned(), ECS_REVISION.to_owned())),
        "{requests:?}"
    );
    assert!(
        rig.signed_scopes()
            .contains(&("ecs".to_owned(), "us-east-1".to_owned())),
        "DescribeServiceRevisions is signed for ecs"
    );
    // Green (payments-b) was judged against blue (payments-a), not the other way round.
    let sent = rig.aws.store.lock().unwrap().metric_requests.clone();
    let five_xx = sent
        .iter()
        .find(|r| r["MetricDataQueries"].as_array().unwrap().len() == 2)
        .unwrap();
    assert_eq!(
        five_xx["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"][1]["Value"],
        GREEN_TG
    );
    assert_eq!(
        five_xx["MetricDataQueries"][1]["MetricStat"]["Metric"]["Dimensions"][1]["Value"],
        BLUE_TG
    );
    assert!(
        rig.codedeploy.calls().is_empty(),
        "ECS hooks never call CodeDeploy"
    );
    drop(hook);

    // A revision ECS does not know, and a role without the permission: errors with the fix,
    // and no datapoint is read for a guessed side.
    for (revision, deny, expected) in [
        (
            "arn:aws:ecs:us-east-1:123456789012:service-revision/payments/payments-api/9",
            false,
            "MISSING",
        ),
        (ECS_REVISION, true, "ecs:DescribeServiceRevisions"),
    ] {
        {
            let mut store = rig.aws.store.lock().unwrap();
            store.metric_requests.clear();
            if deny {
                store.denied.insert(ECS_REVISION.to_owned());
            }
        }
        let hook = rig.hook(METRIC_SUITE);
        let result = hook.invoke(&ecs_event(revision)).await.json();
        assert_eq!(result["hookStatus"], "FAILED", "{result:#}");
        // The answer carries the summary; the full report, with each check's error, is logged.
        let logs = hook.logs();
        assert!(
            logs.contains("could not find green's target group") && logs.contains(expected),
            "{result:#}\n{logs}"
        );
        assert!(
            rig.aws.store.lock().unwrap().metric_requests.is_empty(),
            "nothing was guessed"
        );
    }
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:deployments";

fn notify_suite(target: &str, webhook: &str, on: &str) -> String {
    format!(
        r#"
secrets: {{ slack: {{ env: GREENLIGHT_TEST_WEBHOOK }} }}
targets: {{ prod: {{ url: "{target}" }} }}
defaults: {{ retries: 0 }}
notify: {{ sns_topic: "{TOPIC}", webhook: "{{{{secrets.slack}}}}", on: {on} }}
stages:
  AfterAllowTraffic:
    checks:
      - name: health
        http: {{ target: prod, path: /health }}
      - name: version
        http: {{ target: prod, path: /health, expect: {{ json: {{ /version: v9 }} }} }}
"#
    ) + &format!("# webhook {}\n", webhook.len())
}

#[tokio::test]
async fn a_verdict_goes_to_sns_and_the_webhook_after_the_report() {
    let rig = Rig::start(Store::default()).await;
    // Green answers with Slack markup: a mention of the whole channel and a disguised link.
    let markup = "<!channel> approve here: <https://evil.example|AWS console> & Q&A";
    let prod = Target::start(Behaviour::Json(
        serde_json::json!({ "status": "ok", "version": markup })
            .to_string()
            .into(),
    ))
    .await;
    let slack = Target::start(Behaviour::Healthy).await;
    // The webhook's URL carries its credential: it must never be logged.
    let webhook = format!("{}/services/T000/B000/XyZwebhookToken", slack.url());
    let config = notify_suite(&prod.url(), &webhook, "[passed, failed]");
    let hook = rig.hook_with(
        &config,
        &[
            ("GREENLIGHT_TEST_WEBHOOK", &webhook),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/CodeDeployHook_greenlight_AfterAllowTraffic",
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[$LATEST]abc123"),
        ],
    );
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "{result:#}");
    assert_eq!(rig.codedeploy.calls().len(), 1, "one report");
    // SNS got the verdict, what failed (expected and actual), the deployment.
    let published = rig.aws.store.lock().unwrap().published.clone();
    assert_eq!(published.len(), 1, "{published:?}");
    let (topic, subject, message) = &published[0];
    assert_eq!(topic, TOPIC);
    assert_eq!(subject, "greenlight: AfterAllowTraffic failed for d-AWS");
    // Plain text for email and SMS: green's words as they came.
    assert!(
        message.contains(&format!(
            "- version: json /version: expected \"v9\", got \"{markup}\""
        )),
        "{message}"
    );
    assert!(message.contains("deployment d-AWS"), "{message}");
    // A link to the log stream, as the CloudWatch console encodes it.
    assert!(
        message.ends_with("\nLog: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Flambda$252FCodeDeployHook_greenlight_AfterAllowTraffic/log-events/2026$252F11$252F28$252F$255B$2524LATEST$255Dabc123"),
        "{message}"
    );
    assert!(
        rig.signed_scopes()
            .contains(&("sns".to_owned(), "us-east-1".to_owned()))
    );
    // The webhook got the same words as Slack's `text`, green's markup escaped: no mention,
    // no disguised link; the one link is greenlight's own, to the log stream.
    let posted = slack.seen();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path, "/services/T000/B000/XyZwebhookToken");
    let body: Value = serde_json::from_slice(&posted[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil.example"),
        "{text}"
    );
    assert!(
        text.contains(
            "got \"&lt;!channel&gt; approve here: &lt;https://evil.example|AWS console&gt; &amp; Q&amp;A\""
        ),
        "{text}"
    );
    let (words, link) = message.rsplit_once("\nLog: ").unwrap();
    let escaped = words
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert_eq!(
        text,
        format!("{escaped}\nLog: <{link}|CloudWatch log stream>"),
        "the same message, escaped for Slack"
    );
    // The log lines come through a pipe after the invocation's answer: wait for them (bounded).
    let logs = hook
        .logs_with("verdict notification sent", 2, Duration::from_secs(10))
        .await;
    assert_eq!(
        logs.matches("verdict notification sent").count(),
        2,
        "{logs}"
    );
    assert!(
        !logs.contains("XyZwebhookToken"),
        "the webhook's URL leaked: {logs}"
    );
}

#[tokio::test]
async fn a_notification_that_fails_or_hangs_changes_nothing() {
    let mut store = Store::default();
    store.missing_topics.insert(TOPIC.to_owned());
    let rig = Rig::start(store).await;
    let prod = Target::start(Behaviour::Healthy).await;
    let hang = greenlight_e2e::targets::Hang::start().await;
    let webhook = format!("{}/hook/XyZwebhookToken", hang.url());
    let config = notify_suite(&prod.url(), &webhook, "[failed]");
    let hook = rig.hook_with(&config, &[("GREENLIGHT_TEST_WEBHOOK", &webhook)]);
    let started = std::time::Instant::now();
    let result = hook.invoke(EVENT).await.json();
    assert_eq!(result["status"], "Failed", "the verdict stands: {result:#}");
    assert_eq!(
        rig.codedeploy.calls().len(),
        1,
        "reported once, before notifying"
    );
    // Bounded by the notification budget, not by the hanging webhook.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let logs = hook
        .logs_with(
            "verdict notification failed; the verdict stands",
            2,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        logs.matches("verdict notification failed; the verdict stands")
            .count(),
        2,
        "{logs}"
    );
    assert!(
        logs.contains("sns:Publish") || logs.contains("does not exist"),
        "{logs}"
    );
    assert!(!logs.contains("XyZwebhookToken"), "{logs}");
    drop(hook);

    // `on: [failed]` and a stage that passes: nothing is sent.
    let healthy =
        notify_suite(&prod.url(), &webhook, "[failed]").replace("/version: v9", "/status: ok");
    let hook = rig.hook_with(&healthy, &[("GREENLIGHT_TEST_WEBHOOK", &webhook)]);
    let accepted_before = hang.accepted();
    let result = hook
        .invoke(r#"{"DeploymentId":"d-AWS","LifecycleEventHookExecutionId":"aws-sources-2"}"#)
        .await
        .json();
    assert_eq!(result["status"], "Succeeded", "{result:#}");
    assert_eq!(hang.accepted(), accepted_before, "no webhook call");
    assert!(!hook.logs().contains("verdict notification"));
}

/// `checks` metric checks of green's 5xx against blue's over 10 minutes of minutes (at most
/// 11 datapoints a side).
fn five_xx_suite(checks: usize) -> String {
    let check = |i: usize| {
        format!(
            r#"      - name: green 5xx no worse than blue {i}
        metric:
          namespace: AWS/ApplicationELB
          metric_name: HTTPCode_Target_5XX_Count
          dimensions: {{ LoadBalancer: "{{{{load_balancer}}}}", TargetGroup: "{{{{green_target_group}}}}" }}
          stat: Sum
          period: 60s
          window: 10m
          reduce: sum
          max: 20
          no_data: zero
          baseline: {{ dimensions: {{ TargetGroup: "{{{{blue_target_group}}}}" }} }}
          max_regression: 0.5
"#
        )
    };
    format!(
        r#"
deployment:
  load_balancer: app/payments-alb/50dc6c495c0c9188
  target_groups: [{BLUE_TG}, {GREEN_TG}]
targets: {{ t: {{ url: "http://127.0.0.1:9" }} }}
stages:
  AfterAllowTraffic:
    checks:
{}"#,
        (0..checks).map(check).collect::<String>()
    )
}

/// The errors of a report's checks, which must all be errors.
fn errors(result: &Value) -> Vec<String> {
    result["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["outcome"], "error", "{c:#}");
            c["error"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A CloudWatch that answers GetMetricData with 20 pages as full of datapoints as a page may
/// be (just under the 256 KB greenlight reads of one), for several checks at once, in a hook
/// whose data segment is limited to 128 MiB as `MemorySize: 128` limits it: no side keeps
/// more than its window holds, so the hook stops at the first page and reports, once.
#[tokio::test]
async fn a_128_mb_hook_answered_with_pages_full_of_datapoints_still_reports_once() {
    const PAGES: usize = 20;
    const PER_SIDE: usize = 9_500;
    let page = |n: usize| {
        let side = |id: &str| {
            serde_json::json!({
                "Id": id,
                "Label": id,
                "Timestamps": vec![1_795_000_000; PER_SIDE],
                "Values": vec![0; PER_SIDE],
                "StatusCode": "PartialData",
            })
        };
        let mut body = serde_json::json!({
            "MetricDataResults": [side("green"), side("blue")],
            "Messages": [],
        });
        if n + 1 < PAGES {
            body["NextToken"] = (n + 1).to_string().into();
        }
        body.to_string()
    };
    let pages: Vec<String> = (0..PAGES).map(page).collect();
    assert!(
        pages
            .iter()
            .all(|p| (240_000..256 * 1024).contains(&p.len())),
        "{}",
        pages[0].len()
    );
    let rig = Rig::start(Store {
        metric_pages: pages,
        ..Store::default()
    })
    .await;
    rig.codedeploy
        .deployment("d-AWS", "payments-b", "payments-a");
    let config = five_xx_suite(4);
    let codedeploy = rig.codedeploy.url();
    let aws = rig.aws.env();
    let mut env: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.as_str()),
        ("GREENLIGHT_CONFIG", config.as_str()),
    ];
    env.extend(aws.iter().map(|(k, v)| (*k, v.as_str())));
    let hook = rig
        .emulator
        .function_with_memory("after-allow-traffic", &env, 128 * 1024 * 1024);
    let invocation = hook.invoke(EVENT).await;
    assert!(invocation.ok, "{invocation:?}\n{}", hook.logs());
    let result = invocation.json();
    assert_eq!(result["status"], "Failed", "{result:#}\n{}", hook.logs());
    let errors = errors(&result);
    assert_eq!(errors.len(), 4, "{result:#}");
    for error in &errors {
        assert!(
            error.contains("CloudWatch returned more datapoints than the window allows")
                && error.contains("at most 11"),
            "{error}"
        );
    }
    assert_eq!(
        rig.aws.store.lock().unwrap().metric_requests.len(),
        4,
        "one page a check: none past the one that overflowed"
    );
    rig.codedeploy
        .wait_for_calls(1, Duration::from_secs(30))
        .await;
    assert_eq!(rig.codedeploy.calls().len(), 1, "exactly one report");
}

/// Blue's datapoints are each finite but add up to +inf: "green ≤ blue × 1.5" would let any
/// green through. The check is an error (it could not judge), and the stage fails.
#[tokio::test]
async fn a_blue_baseline_that_adds_up_to_infinity_is_an_error_not_a_pass() {
    let rig = Rig::start(Store::default()).await;
    rig.codedeploy
        .deployment("d-AWS", "payments-b", "payments-a");
    rig.aws.store.lock().unwrap().metrics = metrics(&[
        ("HTTPCode_Target_5XX_Count", GREEN_TG, &[3.0]),
        ("HTTPCode_Target_5XX_Count", BLUE_TG, &[1.7e308, 1.7e308]),
    ]);
    let (result, logs) = run(&rig, &five_xx_suite(1)).await;
    assert_eq!(result["status"], "Failed", "{result:#}\n{logs}");
    let errors = errors(&result);
    assert!(
        errors[0].contains("the sum of blue's datapoints is not a finite number (inf)"),
        "{errors:?}"
    );
    assert_eq!(rig.codedeploy.calls().len(), 1, "exactly one report");
}

/// A datapoint stamped in year 10000, which no RFC 3339 date can show: an error that says
/// where it fell, never a panic.
#[tokio::test]
async fn a_datapoint_past_year_9999_is_an_error_never_a_panic() {
    let page = serde_json::json!({
        "MetricDataResults": [
            {"Id": "green", "Timestamps": [253_402_300_800_u64], "Values": [1.0], "StatusCode": "Complete"},
            {"Id": "blue", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
        ],
    });
    let rig = Rig::start(Store {
        metric_pages: vec![page.to_string()],
        ..Store::default()
    })
    .await;
    rig.codedeploy
        .deployment("d-AWS", "payments-b", "payments-a");
    let (result, logs) = run(&rig, &five_xx_suite(1)).await;
    assert_eq!(result["status"], "Failed", "{result:#}\n{logs}");
    let errors = errors(&result);
    assert!(
        errors[0].contains(
            "a datapoint at 253402300800 s since 1970 (after 9999-12-31T23:59:59Z) is outside the window asked for"
        ),
        "{errors:?}"
    );
    assert!(!logs.to_lowercase().contains("panic"), "{logs}");
    assert_eq!(rig.codedeploy.calls().len(), 1, "exactly one report");
}
