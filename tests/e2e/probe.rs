//! The `probe` check through the `greenlight` CLI against real local servers: the documented
//! example, regressions against a baseline (percentiles and Mann-Whitney), error rates, the
//! budget bound, the JSON figures, and progress on a terminal.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::Duration;

use greenlight_e2e::cli::config_file;
use greenlight_e2e::lambda::binary;
use greenlight_e2e::targets::{Behaviour, ENDLESS_BYTES, Endless, Hang, Target, TlsTarget};
use serde_json::Value;

async fn check(config: &str) -> (Output, Value) {
    check_with_env(config, &[]).await
}

/// `greenlight check --format json` on the AfterAllowTestTraffic stage of `config`.
async fn check_with_env(config: &str, env: &[(&str, &str)]) -> (Output, Value) {
    let file = config_file(config);
    let output = tokio::process::Command::new(binary("greenlight"))
        .args([
            "check",
            "--stage",
            "AfterAllowTestTraffic",
            "--format",
            "json",
            "--config",
        ])
        .arg(file.path())
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {output:?}"));
    (output, report)
}

/// The example from the issue, verbatim, between the two targets.
fn example(green: &Target, blue: &Target, extra: &str) -> String {
    format!(
        r#"
targets:
  test: {{ url: "{}" }}
  prod: {{ url: "{}" }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: green latency against blue
        probe:
          target: test
          method: GET
          path: /health
          requests: 400
          concurrency: 8
          max_p99: 300ms
          max_error_rate: 0.01
          baseline: prod            # optional: the same requests against blue, interleaved
          max_p95_regression: 0.25  # green p95 may exceed blue p95 by at most 25 %
{extra}"#,
        green.url(),
        blue.url()
    )
}

#[tokio::test]
async fn the_documented_probe_passes_and_reports_its_figures() {
    let green = Target::start(Behaviour::Healthy).await;
    let blue = Target::start(Behaviour::Healthy).await;
    let (output, report) = check(&example(&green, &blue, "")).await;
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let check = &report["checks"][0];
    assert_eq!(check["kind"], "probe");
    let stats = &check["stats"];
    for field in [
        "requests", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms", "rps",
    ] {
        assert!(stats[field].is_number(), "{field} missing: {stats:#}");
        assert!(
            stats["baseline"][field].is_number(),
            "baseline {field} missing: {stats:#}"
        );
    }
    assert_eq!(stats["requests"], 400);
    assert_eq!(stats["errors"], 0);
    assert_eq!(stats["baseline"]["requests"], 400);
    // What was actually sent: 400 to each side, at most 8 at once in all.
    assert_eq!(green.seen().len(), 400);
    assert_eq!(blue.seen().len(), 400);
    assert!(green.max_in_flight() + blue.max_in_flight() <= 16);
    assert!(
        green
            .seen()
            .iter()
            .all(|s| s.path == "/health" && s.method == "GET")
    );
}

#[tokio::test]
async fn a_slower_green_is_a_regression_and_the_judge_says_so() {
    let green = Target::start(Behaviour::Slow(Duration::from_millis(40))).await;
    let blue = Target::start(Behaviour::Healthy).await;
    let extra =
        "          judge: mann-whitney\n          confidence: 0.98\n          tolerance: 0.1\n";
    let (output, report) = check(&example(&green, &blue, extra)).await;
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let check = &report["checks"][0];
    let message = check["message"].as_str().unwrap();
    assert!(message.contains("p95 against baseline"), "{message}");
    assert!(message.contains("judge mann-whitney"), "{message}");
    let judgment = &check["stats"]["judgment"];
    assert!(judgment["p_value"].as_f64().unwrap() < 0.02, "{judgment:#}");
    assert!(judgment["effect"].as_f64().unwrap() > 1.1, "{judgment:#}");
    assert!(judgment["u"].is_number());
    assert!(check["stats"]["p95_ratio"].as_f64().unwrap() > 1.25);
    assert!(check["stats"]["p50_ms"].as_f64().unwrap() >= 40.0);
}

#[tokio::test]
async fn errors_above_the_limit_fail_and_name_the_first_one() {
    let green = Target::start(Behaviour::Status(503)).await;
    let blue = Target::start(Behaviour::Healthy).await;
    let (output, report) = check(&example(&green, &blue, "")).await;
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let message = report["checks"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "error rate: expected at most 1.00 %, got 100.00 % (400 of 400; first: status 503)"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_probe_stops_at_the_stage_budget() {
    let green = Target::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
targets: {{ test: {{ url: "{}" }} }}
defaults: {{ budget: 1s }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: far too many
        probe: {{ target: test, path: /health, requests: 1000000, concurrency: 4 }}
"#,
        green.url()
    );
    let (output, report) = check(&config).await;
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let message = report["checks"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("requests: expected 1000000, got"),
        "{message}"
    );
    assert!(
        message.contains("before the stage budget ran out"),
        "{message}"
    );
    let sent = green.seen().len();
    assert!(sent > 0 && sent < 1_000_000, "{sent}");
}

#[tokio::test]
async fn progress_shows_on_a_terminal_and_not_in_a_pipe() {
    let green = Target::start(Behaviour::Slow(Duration::from_millis(5))).await;
    let config = format!(
        r#"
targets: {{ test: {{ url: "{}" }} }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: steady
        probe: {{ target: test, path: /health, requests: 300, concurrency: 2 }}
"#,
        green.url()
    );
    let file = config_file(&config);
    let command = format!(
        "{} check --stage AfterAllowTestTraffic --config {}",
        binary("greenlight").display(),
        file.path().display()
    );
    // `script` runs the CLI on a pseudo-terminal and copies what it drew.
    let output = tokio::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("TERM", "xterm")
        .kill_on_drop(true)
        .output()
        .await
        .expect("`script` (util-linux) is needed for this test");
    let drawn = String::from_utf8_lossy(&output.stdout);
    assert!(drawn.contains("probe steady"), "{drawn}");
    assert!(drawn.contains("/300 requests"), "{drawn}");
    // Piped, the same run prints the report and no progress.
    let piped = tokio::process::Command::new(binary("greenlight"))
        .args(["check", "--stage", "AfterAllowTestTraffic", "--config"])
        .arg(file.path())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&piped.stdout) + String::from_utf8_lossy(&piped.stderr);
    assert!(!text.contains("/300 requests"), "{text}");
    assert!(text.contains("PASS   steady [probe]"), "{text}");
}

#[tokio::test]
async fn a_probe_sends_its_request_as_written_on_one_connection_per_worker() {
    let green = Target::start(Behaviour::Healthy).await;
    let config = format!(
        r#"
secrets: {{ token: {{ env: GREENLIGHT_PROBE_TOKEN }} }}
targets:
  test: {{ url: "{}", host: payments.greenlight.test }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: posts
        probe:
          target: test
          method: POST
          path: "/v1/quotes?currency=EUR&run={{{{ run_id }}}}"
          headers: {{ Authorization: "Bearer {{{{ secrets.token }}}}", Content-Type: application/json }}
          body: '{{"amount": 1250}}'
          requests: 300
          concurrency: 3
"#,
        green.url()
    );
    let (output, report) =
        check_with_env(&config, &[("GREENLIGHT_PROBE_TOKEN", "sk_test_PROBETOKEN")]).await;
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["checks"][0]["stats"]["requests"], 300);

    let seen = green.seen();
    assert_eq!(seen.len(), 300);
    let port = green.addr.port();
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert!(
            request.path.starts_with("/v1/quotes?currency=EUR&run="),
            "{}",
            request.path
        );
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        // `host` is the Host header; the connection still goes to the configured address.
        assert_eq!(header("host"), format!("payments.greenlight.test:{port}"));
        assert!(header("user-agent").starts_with("greenlight/"));
        assert_eq!(header("authorization"), "Bearer sk_test_PROBETOKEN");
        assert_eq!(header("content-type"), "application/json");
        assert_eq!(header("content-length"), "16");
        assert_eq!(&request.body[..], br#"{"amount": 1250}"#);
    }
    // Each worker keeps its connection open between requests.
    assert!(
        green.connections() <= 3,
        "{} connections for 3 workers",
        green.connections()
    );
    // The secret went to the target and nowhere else.
    let printed = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(!printed.contains("sk_test_PROBETOKEN"), "{printed}");
}

#[tokio::test]
async fn a_probe_verifies_tls_like_every_other_check() {
    // This server closes the connection after every answer, so the probe also has to open a
    // new connection (and handshake) for each request.
    let tls = TlsTarget::start("payments.greenlight.test").await;
    let config = format!(
        r#"
targets:
  trusted: {{ url: "{url}", host: payments.greenlight.test, ca_file: "{ca}" }}
  untrusted: {{ url: "{url}", host: payments.greenlight.test }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: trusted, probe: {{ target: trusted, path: /health, requests: 40, concurrency: 2 }} }}
      - {{ name: untrusted, required: false, probe: {{ target: untrusted, path: /health, requests: 5, concurrency: 1 }} }}
"#,
        url = tls.url(),
        ca = tls.ca_file.display()
    );
    let (output, report) = check(&config).await;
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let trusted = &report["checks"][0];
    assert_eq!(trusted["outcome"], "passed", "{trusted:#}");
    assert_eq!(trusted["stats"]["requests"], 40);
    assert_eq!(trusted["stats"]["errors"], 0);
    // Without the CA every handshake is refused.
    let untrusted = &report["checks"][1];
    assert_eq!(untrusted["outcome"], "failed", "{untrusted:#}");
    let message = untrusted["message"].as_str().unwrap().to_lowercase();
    assert!(message.contains("certificate"), "{message}");

    let seen = tls.seen();
    assert_eq!(seen.len(), 40, "only the trusted requests got through");
    let host = format!("payments.greenlight.test:{}", tls.addr.port());
    for (sni, header) in &seen {
        assert_eq!(sni.as_deref(), Some("payments.greenlight.test"));
        assert_eq!(header.as_deref(), Some(host.as_str()));
    }
}

#[tokio::test]
async fn a_probe_bounds_every_request_and_every_body() {
    let hang = Hang::start().await;
    let endless = Endless::start().await;
    let config = format!(
        r#"
targets:
  hung: {{ url: "{}", timeout: 300ms }}
  endless: {{ url: "{}" }}
defaults: {{ max_body_bytes: 4096 }}
stages:
  AfterAllowTestTraffic:
    checks:
      - {{ name: hung, probe: {{ target: hung, requests: 4, concurrency: 2 }} }}
      - {{ name: endless, probe: {{ target: endless, requests: 3, concurrency: 1 }} }}
"#,
        hang.url(),
        endless.url()
    );
    let (output, report) = check(&config).await;
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let hung = report["checks"][0]["message"].as_str().unwrap();
    assert!(
        hung.contains("4 of 4; first: no response within 300ms"),
        "{hung}"
    );
    let endless_message = report["checks"][1]["message"].as_str().unwrap();
    assert!(
        endless_message.contains("3 of 3; first: body larger than 4096 bytes"),
        "{endless_message}"
    );
    // A body over the limit is dropped unread, not drained: far less than 500 MB was sent.
    assert!(endless.sent() < ENDLESS_BYTES / 10, "{}", endless.sent());
}
