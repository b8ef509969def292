//! The preflight, from a laptop (`greenlight doctor`) and from inside the deployed function
//! (`{"greenlight": "doctor"}`), against local endpoints that answer, refuse, hang or present
//! the wrong certificate: every finding names what is wrong and how to fix it, and nothing is
//! reported to CodeDeploy.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use greenlight_e2e::aws::{FakeAws, Store};
use greenlight_e2e::cli::config_file;
use greenlight_e2e::codedeploy::FakeCodeDeploy;
use greenlight_e2e::lambda::Emulator;
use greenlight_e2e::targets::{Behaviour, Hang, Target, TlsTarget};
use serde_json::Value;

/// Run `greenlight doctor --format json`; its exit code and findings by subject.
async fn doctor(config: &str, env: &[(&str, &str)]) -> (i32, Vec<Value>, String) {
    let file = config_file(config);
    let path = file.path().to_str().unwrap();
    let run = |format: &'static str| {
        greenlight_e2e::cli::command(&["doctor", "--format", format, "-c", path], env).output()
    };
    let (json, text) = (run("json").await.unwrap(), run("text").await.unwrap());
    let answer: Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {json:?}"));
    (
        json.status.code().unwrap(),
        answer["findings"].as_array().unwrap().clone(),
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

fn finding<'a>(findings: &'a [Value], subject: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["subject"] == subject)
        .unwrap_or_else(|| panic!("no finding for {subject}: {findings:#?}"))
}

#[tokio::test]
async fn all_is_well_exits_0() {
    let green = Target::start(Behaviour::Healthy).await;
    let tls = TlsTarget::start("payments.greenlight.test").await;
    let config = format!(
        r#"
secrets: {{ api_key: {{ env: DOCTOR_API_KEY }} }}
targets:
  test: {{ url: "{}" }}
  secure: {{ url: "{}", host: payments.greenlight.test, ca_file: "{}" }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: health, http: {{ target: test, path: /health }} }}
"#,
        green.url(),
        tls.url(),
        tls.ca_file.display()
    );
    let (code, findings, text) = doctor(&config, &[("DOCTOR_API_KEY", "k")]).await;
    assert_eq!(code, 0, "{findings:#?}");
    assert!(findings.iter().all(|f| f["ok"] == true), "{findings:#?}");
    assert!(
        finding(&findings, "target secure")["detail"]
            .as_str()
            .unwrap()
            .contains("valid for payments.greenlight.test")
    );
    assert_eq!(
        finding(&findings, "stage AfterAllowTestTraffic")["detail"],
        "1 checks planned"
    );
    assert!(text.trim_end().ends_with("all is well"), "{text}");
    // Nothing but a connection and a handshake: no request reached the targets. The
    // handshake named the configured host.
    assert!(green.seen().is_empty());
    let handshakes = tls.seen();
    assert_eq!(handshakes.len(), 2, "one per doctor run: {handshakes:?}");
    for (sni, host) in handshakes {
        assert_eq!(sni.as_deref(), Some("payments.greenlight.test"));
        assert_eq!(host, None, "no HTTP request followed");
    }
}

#[tokio::test]
async fn each_problem_is_a_line_with_its_fix() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let hang = Hang::start().await;
    let wrong = TlsTarget::start("other.greenlight.test").await;
    let config = format!(
        r#"
secrets: {{ api_key: {{ env: DOCTOR_MISSING_KEY }} }}
targets:
  refused: {{ url: "{refused}" }}
  silent: {{ url: "https://{}", timeout: 1s }}
  wrong: {{ url: "{}", host: payments.greenlight.test, ca_file: "{}" }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: health, http: {{ target: refused, path: /health }} }}
"#,
        hang.addr,
        wrong.url(),
        wrong.ca_file.display()
    );
    let (code, findings, text) = doctor(&config, &[]).await;
    assert_eq!(code, 1, "{findings:#?}");
    let refused = finding(&findings, "target refused");
    assert_eq!(refused["ok"], false);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("refused the connection")
    );
    let silent = finding(&findings, "target silent");
    assert!(
        silent["detail"]
            .as_str()
            .unwrap()
            .contains("no TLS handshake completed within 1s"),
        "{silent:#}"
    );
    let wrong = finding(&findings, "target wrong");
    let detail = wrong["detail"].as_str().unwrap();
    // The certificate's own name is named.
    assert!(detail.contains("other.greenlight.test"), "{wrong:#}");
    assert!(
        wrong["fix"]
            .as_str()
            .unwrap()
            .contains("targets.wrong.host"),
        "{wrong:#}"
    );
    let secret = finding(&findings, "secret api_key");
    assert!(
        secret["detail"]
            .as_str()
            .unwrap()
            .contains("DOCTOR_MISSING_KEY"),
        "{secret:#}"
    );
    // The text form: one line per finding, the fixes marked.
    assert!(text.contains("FIX   target refused: "), "{text}");
    assert!(
        text.trim_end()
            .ends_with("not ready: fix the lines marked FIX"),
        "{text}"
    );
}

#[tokio::test]
async fn the_deployed_function_checks_from_where_it_runs_and_reports_nothing() {
    let emulator = Emulator::start().await;
    let codedeploy = FakeCodeDeploy::start().await;
    codedeploy.missing_deployment(greenlight::PROBE_DEPLOYMENT);
    let green = Target::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
targets: {{ test: {{ url: "{}" }} }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: health, http: {{ target: test, path: /health }} }}
"#,
        green.url()
    );
    const GROUP: &str =
        "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:payments/payments-api";
    let mut store = Store::default();
    store.allowed.insert((
        "codedeploy:PutLifecycleEventHookExecutionStatus".to_owned(),
        GROUP.to_owned(),
    ));
    let aws = FakeAws::start(store).await;
    let endpoint = codedeploy.url();
    let aws_env = aws.env();
    let mut env: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL_CODEDEPLOY", endpoint.as_str()),
        ("GREENLIGHT_CONFIG", config.as_str()),
        ("GREENLIGHT_DEPLOYMENT_GROUP_ARN", GROUP),
    ];
    env.extend(aws_env.iter().map(|(k, v)| (*k, v.as_str())));
    let hook = emulator.function("after-allow-test-traffic", &env);
    let answer = hook.invoke(r#"{"greenlight": "doctor"}"#).await.json();
    assert_eq!(answer["ok"], true, "{answer:#}\n{}", hook.logs());
    let findings = answer["findings"].as_array().unwrap();
    let probe = finding(findings, "codedeploy");
    assert!(
        probe["detail"]
            .as_str()
            .unwrap()
            .contains("DeploymentDoesNotExistException"),
        "{probe:#}"
    );
    // IAM's simulation of the role's own policies proves the report would be allowed.
    let permission = finding(
        findings,
        "permission codedeploy:PutLifecycleEventHookExecutionStatus",
    );
    assert!(
        permission["detail"]
            .as_str()
            .unwrap()
            .contains("arn:aws:iam::123456789012:role/greenlight-hooks may call it on"),
        "{permission:#}"
    );
    // The probe is the only status call, and it changed nothing.
    let calls = codedeploy.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["deploymentId"], greenlight::PROBE_DEPLOYMENT);
    assert_eq!(
        calls[0].error_type.as_deref(),
        Some("DeploymentDoesNotExistException")
    );
    assert!(green.seen().is_empty());

    // A role that may not report for this group: the simulation says so, with the fix.
    let other = "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:payments/other";
    let mut env2 = env.clone();
    env2.retain(|(k, _)| *k != "GREENLIGHT_DEPLOYMENT_GROUP_ARN");
    env2.push(("GREENLIGHT_DEPLOYMENT_GROUP_ARN", other));
    let hook = emulator.function("after-allow-traffic", &env2);
    let answer = hook.invoke(r#"{"greenlight": "doctor"}"#).await.json();
    assert_eq!(answer["ok"], false, "{answer:#}");
    let permission = finding(
        answer["findings"].as_array().unwrap(),
        "permission codedeploy:PutLifecycleEventHookExecutionStatus",
    );
    assert!(
        permission["detail"]
            .as_str()
            .unwrap()
            .contains("implicitDeny"),
        "{permission:#}"
    );
    assert!(
        permission["fix"]
            .as_str()
            .unwrap()
            .contains("grant codedeploy:PutLifecycleEventHookExecutionStatus")
    );
    assert!(
        aws.signatures().iter().all(Result::is_ok),
        "every AWS call signed"
    );

    // A CodeDeploy that does not answer: the missing NAT gateway or VPC endpoint is named.
    let hang = Hang::start().await;
    let url = hang.url();
    let mut env3: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL_CODEDEPLOY")
        .collect();
    env3.push(("AWS_ENDPOINT_URL_CODEDEPLOY", url.as_str()));
    let hook = emulator.function("before-allow-traffic", &env3);
    let answer = hook.invoke(r#"{"greenlight": "doctor"}"#).await.json();
    assert_eq!(answer["ok"], false, "{answer:#}");
    let probe = finding(answer["findings"].as_array().unwrap(), "codedeploy");
    assert!(
        probe["fix"].as_str().unwrap().contains("VPC endpoint"),
        "{probe:#}"
    );
}

#[tokio::test]
async fn findings_quote_no_secret() {
    // A secret that the findings would otherwise quote: here, the target's own address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let config = format!(
        r#"
secrets: {{ internal_address: {{ env: DOCTOR_INTERNAL_ADDRESS }} }}
targets: {{ internal: {{ url: "http://{address}" }} }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: health, http: {{ target: internal, path: /health }} }}
"#
    );
    let (code, findings, text) = doctor(&config, &[("DOCTOR_INTERNAL_ADDRESS", &address)]).await;
    assert_eq!(code, 1);
    let internal = finding(&findings, "target internal");
    assert!(
        internal["detail"].as_str().unwrap().contains("[REDACTED]"),
        "{internal:#}"
    );
    for output in [serde_json::to_string(&findings).unwrap(), text] {
        assert!(!output.contains(&address), "{output}");
    }
}
