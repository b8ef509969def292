//! The `greenlight` CLI against real local targets: reports, formats and exit codes.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use greenlight_e2e::cli::config_file;
use greenlight_e2e::lambda::binary;
use greenlight_e2e::leaks::assert_no_form;
use greenlight_e2e::targets::{Behaviour, Target};
use serde_json::Value;

async fn greenlight(args: &[&str], env: &[(&str, &str)]) -> Output {
    greenlight_e2e::cli::run(args, env).await
}

fn suite(url: &str) -> String {
    format!(
        r#"
targets: {{ test: {{ url: "{url}" }} }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: health, http: {{ target: test, path: /health, expect: {{ json: {{ /status: ok }} }} }} }}
  AfterAllowTraffic:
    checks:
      - {{ name: version, http: {{ target: test, path: /health, expect: {{ json: {{ /version: v3 }} }} }} }}
"#
    )
}

#[tokio::test]
async fn a_passing_stage_exits_0_with_a_json_report() {
    let target = Target::start(Behaviour::Healthy).await;
    let file = config_file(&suite(&target.url()));
    let path = file.path().to_str().unwrap();
    let out = greenlight(
        &[
            "check",
            "--config",
            path,
            "--stage",
            "AfterAllowTestTraffic",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stage"], "AfterAllowTestTraffic");
    assert_eq!(report["verdict"], "passed");
    let check = &report["checks"][0];
    assert_eq!(check["name"], "health");
    assert_eq!(check["kind"], "http");
    assert_eq!(check["outcome"], "passed");
    assert!(check["duration_ms"].is_u64());
    assert_eq!(check["message"], "ok");
}

#[tokio::test]
async fn a_failing_stage_exits_1_and_says_why() {
    let target = Target::start(Behaviour::Healthy).await;
    let file = config_file(&suite(&target.url()));
    let path = file.path().to_str().unwrap();
    let out = greenlight(&["check", "-c", path, "-s", "after-allow-traffic"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL   version"), "{text}");
    assert!(
        text.contains(r#"json /version: expected "v3", got "v2""#),
        "{text}"
    );
}

#[tokio::test]
async fn config_from_the_environment_works_like_the_hook() {
    let target = Target::start(Behaviour::Healthy).await;
    let config = suite(&target.url());
    let out = greenlight(
        &["check", "--stage", "POST_TEST_TRAFFIC_SHIFT"],
        &[("GREENLIGHT_CONFIG", &config)],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[tokio::test]
async fn what_cannot_run_exits_2_with_a_fix() {
    let bad = config_file(
        "targets: { test: { url: http://127.0.0.1:9 } }\ndefaults: { retries: many }\n",
    );
    let good = config_file("targets: { test: { url: http://127.0.0.1:9 } }\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "check",
                "-c",
                bad.path().to_str().unwrap(),
                "-s",
                "AfterAllowTraffic",
            ],
            "defaults.retries",
        ),
        (
            vec![
                "check",
                "-c",
                good.path().to_str().unwrap(),
                "-s",
                "AfterAllowTraffic",
            ],
            "no stage AfterAllowTraffic",
        ),
        (
            vec![
                "check",
                "-c",
                good.path().to_str().unwrap(),
                "-s",
                "Install",
            ],
            "unknown stage",
        ),
        (
            vec![
                "check",
                "-c",
                "/nonexistent.yaml",
                "-s",
                "AfterAllowTraffic",
            ],
            "/nonexistent.yaml",
        ),
        (
            vec!["check", "-s", "AfterAllowTraffic"],
            "GREENLIGHT_CONFIG",
        ),
        (
            vec!["validate", "-c", bad.path().to_str().unwrap()],
            "defaults.retries",
        ),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, wanted) in cases {
        let out = greenlight(&args, &[]).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
    // A missing -c file names the flag the user gave, and says the OS's reason once.
    let out = greenlight(
        &[
            "check",
            "-c",
            "/nonexistent.yaml",
            "-s",
            "AfterAllowTraffic",
        ],
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("-c/--config"), "{stderr}");
    assert!(!stderr.contains("GREENLIGHT_CONFIG"), "{stderr}");
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
}

/// A secret that cannot be read fails the stages that use it, and only those.
#[tokio::test]
async fn a_stage_needs_only_its_own_secrets() {
    let config = config_file(
        "secrets: { key: { env: GREENLIGHT_E2E_NEVER_SET } }\ntargets: { test: { url: http://127.0.0.1:9 } }\nstages:\n  AfterAllowTestTraffic: { checks: [ { name: keyed, http: { target: test, path: /, headers: { X-Api-Key: \"{{secrets.key}}\" } } } ] }\n  BeforeAllowTraffic: { checks: [] }\n",
    );
    let path = config.path().to_str().unwrap();
    let out = greenlight(&["check", "-c", path, "-s", "BeforeAllowTraffic"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = greenlight(&["check", "-c", path, "-s", "AfterAllowTestTraffic"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("GREENLIGHT_E2E_NEVER_SET"), "{stdout}");
}

#[tokio::test]
async fn validate_accepts_a_good_config_without_sending_anything() {
    let target = Target::start(Behaviour::Healthy).await;
    let file = config_file(&suite(&target.url()));
    let out = greenlight(&["validate", "-c", file.path().to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    assert!(target.seen().is_empty());
}

#[tokio::test]
async fn validate_is_offline_and_needs_no_secret() {
    let target = Target::start(Behaviour::Healthy).await;
    let text = format!(
        "secrets: {{ api_key: {{ env: GREENLIGHT_TEST_UNSET_SECRET }} }}\n{}",
        suite(&target.url()).replace(
            "path: /health, expect",
            "path: /health, headers: { Authorization: \"Bearer {{secrets.api_key}}\" }, expect"
        )
    );
    assert!(text.contains("secrets.api_key"), "{text}");
    let file = config_file(&text);
    let path = file.path().to_str().unwrap();
    let out = greenlight(&["validate", "-c", path], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(target.seen().is_empty());
    // Running the checks that use it does need it: they fail closed, saying which variable to
    // set, and nothing is sent.
    let out = greenlight(&["check", "-c", path, "-s", "AfterAllowTestTraffic"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("GREENLIGHT_TEST_UNSET_SECRET"), "{stdout}");
    assert!(target.seen().is_empty());
}

#[tokio::test]
async fn hostile_secrets_leave_the_cli_in_no_form() {
    let echo = Target::start(Behaviour::Echo { pad: 100 }).await;
    let secret = "p\"w\\d 50%/é+&=?#<>'x";
    let file = config_file(&format!(
        r#"
secrets: {{ password: {{ env: GREENLIGHT_TEST_PASSWORD }} }}
targets: {{ echo: {{ url: "{}" }} }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: echoed
        http:
          target: echo
          path: "/v1/echo?p={{{{secrets.password}}}}"
          form: {{ password: "{{{{secrets.password}}}}" }}
"#,
        echo.url()
    ));
    let path = file.path().to_str().unwrap();
    for format in ["json", "text", "junit", "markdown"] {
        let out = greenlight(
            &[
                "check",
                "-c",
                path,
                "-s",
                "AfterAllowTestTraffic",
                "-f",
                format,
            ],
            &[("GREENLIGHT_TEST_PASSWORD", secret), ("RUST_LOG", "trace")],
        )
        .await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // (Markdown escapes the brackets.)
        assert!(stdout.contains("REDACTED"), "{stdout}");
        assert_no_form(secret, &stdout, &format!("{format} stdout"));
        assert_no_form(secret, &String::from_utf8_lossy(&out.stderr), "stderr");
    }
}

#[tokio::test]
async fn the_cli_is_told_which_target_group_is_green() {
    use greenlight_e2e::aws::{FakeAws, Store};
    let store = Store {
        metrics: [(
            "HTTPCode_Target_5XX_Count|Sum|targetgroup/payments-b/2".to_owned(),
            vec![1.0, 0.0],
        )]
        .into(),
        ..Store::default()
    };
    let cloudwatch = FakeAws::start(store).await;
    let file = config_file(
        r#"
deployment: { load_balancer: app/alb/1, target_groups: [targetgroup/payments-a/1, targetgroup/payments-b/2] }
targets: { t: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTraffic:
    checks:
      - name: green 5xx
        metric:
          namespace: AWS/ApplicationELB
          metric_name: HTTPCode_Target_5XX_Count
          dimensions: { TargetGroup: "{{green_target_group}}" }
          stat: Sum
          window: 5m
          reduce: sum
          max: 3
"#,
    );
    let path = file.path().to_str().unwrap();
    let mut env: Vec<(&str, String)> = greenlight_e2e::AWS_TEST_ENV
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    env.push(("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch.url()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["check", "-c", path, "-s", "AfterAllowTraffic", "-f", "json"];
    // Not told: an error that says how to tell it, and nothing is read.
    let out = greenlight(&args, &env).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["checks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("--green-target-group"),
        "{report:#}"
    );
    // Told, by name: green's datapoints are judged.
    let mut told = args.to_vec();
    told.extend(["--green-target-group", "payments-b"]);
    let out = greenlight(&told, &env).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["checks"][0]["metric"]["green"]["value"], 1.0,
        "{report:#}"
    );
}

#[tokio::test]
async fn the_cli_runs_a_whole_watch_in_one_process_with_a_line_per_run() {
    let green = Target::start(Behaviour::Healthy).await;
    // The budget alone (1 s) could not hold the watch (2 s): the CLI adds the longest repeat.
    let file = config_file(&format!(
        r#"
targets: {{ test: {{ url: "{}" }} }}
defaults: {{ budget: 1s, retries: 0, timeout: 500ms }}
stages:
  AfterAllowTraffic:
    checks:
      - name: bake
        repeat: {{ every: 1s, for: 2s }}
        http: {{ target: test, path: "/bake/{{{{repeat}}}}" }}
"#,
        green.url()
    ));
    let path = file.path().to_str().unwrap();
    let out = greenlight(
        &[
            "check",
            "-s",
            "AfterAllowTraffic",
            "--format",
            "json",
            "-c",
            path,
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let repeat = &report["checks"][0]["repeat"];
    assert_eq!(
        (repeat["runs"].as_u64(), repeat["planned"].as_u64()),
        (Some(3), Some(3))
    );
    let paths: Vec<String> = green.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/bake/0", "/bake/1", "/bake/2"]);
    // Piped, no progress lines; on a terminal, one line per run.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("repeat bake"));
    let command = format!(
        "{} check --stage AfterAllowTraffic --config {path}",
        binary("greenlight").display()
    );
    let drawn = tokio::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("TERM", "xterm")
        .kill_on_drop(true)
        .output()
        .await
        .expect("`script` (util-linux) is needed for this test");
    let drawn = String::from_utf8_lossy(&drawn.stdout);
    for run in 1..=3 {
        assert!(
            drawn.contains(&format!("repeat bake: run {run} of 3 passed")),
            "{drawn}"
        );
    }
    assert!(
        drawn.contains("repeat: 3 of 3 runs, 0 failed (limit 0), 0 errors"),
        "{drawn}"
    );
}

#[tokio::test]
async fn errors_in_a_row_end_a_watch_as_an_error() {
    // Nothing listens on the target: every run is an error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let file = config_file(&format!(
        r#"
targets: {{ test: {{ url: "{url}" }} }}
defaults: {{ retries: 0 }}
stages:
  AfterAllowTraffic:
    checks:
      - name: bake
        repeat: {{ every: 1s, for: 10s, error_limit: 2 }}
        http: {{ target: test, path: /health }}
"#
    ));
    let started = std::time::Instant::now();
    let out = greenlight(
        &[
            "check",
            "-s",
            "AfterAllowTraffic",
            "--format",
            "json",
            "-c",
            file.path().to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = &report["checks"][0];
    assert_eq!(check["outcome"], "error", "{check:#}");
    assert!(
        check["error"]
            .as_str()
            .unwrap()
            .starts_with("2 runs in a row could not run (error_limit 2)"),
        "{check:#}"
    );
    assert_eq!(check["repeat"]["runs"], 2);
    // It ended at the second error, not at the end of the window.
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
}

#[tokio::test]
async fn validate_notes_a_watch_too_long_for_codedeploy() {
    let file = config_file(
        r#"
targets: { test: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTraffic:
    checks:
      - name: long bake
        repeat: { every: 5m, for: 2h }
        http: { target: test, path: /health }
"#,
    );
    let out = greenlight(&["validate", "-c", file.path().to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("AfterAllowTraffic (2h) watch longer than CodeDeploy's hooks allow (55m)"),
        "{note}"
    );
}

/// Read a JUnit file with a real JUnit reader (PyPI junitparser, installed by `make tools`).
fn read_junit(path: &std::path::Path) -> Value {
    let python = greenlight_e2e::lambda::workspace_root().join(".venv/bin/python");
    let script = r#"
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = []
    for case in suite:
        cases.append({
            "name": case.name, "classname": case.classname, "time": case.time,
            "results": [type(r).__name__ for r in case.result],
            "messages": [r.message for r in case.result],
            "texts": [r.text for r in case.result],
            "system_out": case.system_out,
        })
    suites.append({
        "name": suite.name, "tests": suite.tests, "failures": suite.failures,
        "errors": suite.errors, "skipped": suite.skipped,
        "properties": {p.name: p.value for p in suite.properties()},
        "cases": cases,
    })
print(json.dumps(suites))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{} is missing ({e}): run `make tools`", python.display()));
    assert!(
        out.status.success(),
        "junitparser refused the file: {out:?}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn one_run_writes_json_junit_and_markdown_that_their_readers_accept() {
    let green = Target::start(Behaviour::FailPaths(std::sync::Arc::from(["/pay"]))).await;
    let file = config_file(&format!(
        r#"
targets: {{ test: {{ url: "{}" }} }}
defaults: {{ retries: 0, timeout: 500ms }}
stages:
  BeforeAllowTraffic:
    checks:
      - name: health
        http: {{ target: test, path: /health }}
      - name: payments <&> "quoted"
        http: {{ target: test, path: /pay }}
      - name: optional extra
        required: false
        http: {{ target: test, path: /pay }}
      - name: from half on
        when: {{ green_weight_at_least: 50 }}
        http: {{ target: test, path: /never }}
"#,
        green.url()
    ));
    let dir = tempfile::tempdir().unwrap();
    let (junit, markdown, summary) = (
        dir.path().join("report.xml"),
        dir.path().join("report.md"),
        dir.path().join("summary.md"),
    );
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = greenlight(
        &[
            "check",
            "-s",
            "BeforeAllowTraffic",
            "-c",
            file.path().to_str().unwrap(),
            "--format",
            "junit",
            "--output",
            junit.to_str().unwrap(),
            "--format",
            "markdown",
            "--output",
            markdown.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // JSON on stdout, the others in their files.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "failed");

    let suites = read_junit(&junit);
    let suite = &suites[0];
    assert_eq!(suite["name"], "BeforeAllowTraffic");
    assert_eq!(
        (
            &suite["tests"],
            &suite["failures"],
            &suite["errors"],
            &suite["skipped"]
        ),
        (
            &Value::from(4),
            &Value::from(2),
            &Value::from(0),
            &Value::from(1)
        ),
        "{suite:#}"
    );
    assert_eq!(suite["properties"]["run_id"], report["run_id"]);
    assert_eq!(suite["properties"]["verdict"], "failed");
    let case = |name: &str| {
        suite["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}: {suite:#}"))
            .clone()
    };
    assert_eq!(case("health")["results"], serde_json::json!([]));
    let payments = case("payments <&> \"quoted\"");
    assert_eq!(payments["results"], serde_json::json!(["Failure"]));
    assert!(
        payments["texts"][0]
            .as_str()
            .unwrap()
            .contains("status: expected any 2xx, got 500"),
        "{payments:#}"
    );
    assert!(
        case("optional extra")["messages"][0]
            .as_str()
            .unwrap()
            .starts_with("(optional: does not fail the stage)")
    );
    assert_eq!(
        case("from half on")["results"],
        serde_json::json!(["Skipped"])
    );

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        md.starts_with("## greenlight BeforeAllowTraffic: ❌ failed"),
        "{md}"
    );
    assert!(md.contains("### Failed checks"), "{md}");
    assert!(
        md.contains("| payments &lt;&amp;&gt; \"quoted\" | status | any 2xx | 500 with body"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary>All checks (4)</summary>"),
        "{md}"
    );
    // The job summary got the same Markdown, after what was there.
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(summary, format!("earlier step\n{md}"));
}

#[tokio::test]
async fn more_outputs_than_formats_is_refused_before_anything_runs() {
    let green = Target::start(Behaviour::Healthy).await;
    let file = config_file(&suite(&green.url()));
    let out = greenlight(
        &[
            "check",
            "-s",
            "AfterAllowTestTraffic",
            "-c",
            file.path().to_str().unwrap(),
            "--format",
            "json",
            "--output",
            "/tmp/a.json",
            "--output",
            "/tmp/b.json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("give each --output the --format"));
    assert!(green.seen().is_empty(), "nothing was sent");
}
