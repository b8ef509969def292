//! Scenario semantics against the real paysim: captures survive failed steps, cleanup always
//! runs (after a failure, after the budget ran out), is skipped when there is nothing to undo,
//! and fails the check when it fails itself.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use greenlight::Config;
use greenlight::Outcome;
use greenlight::Source;
use greenlight::StageReport;
use greenlight::{Stage, Suite};
use greenlight_e2e::paysim::{API_KEY, Paysim};

struct Api {
    paysim: Paysim,
    _db: tempfile::TempDir,
}

async fn paysim() -> Api {
    let db = tempfile::tempdir().unwrap();
    let paysim = Paysim::start("v2", &db.path().join("p.db"), None).await;
    Api { paysim, _db: db }
}

/// One scenario check named `s` against paysim, run as AfterAllowTestTraffic.
async fn run(api: &Api, scenario: &str, budget: Duration) -> StageReport {
    let text = format!(
        "targets: {{ test: {{ url: \"{}\" }} }}\nstages:\n  AfterAllowTestTraffic:\n    checks:\n      - name: s\n        scenario:\n{}",
        api.paysim.url(),
        scenario
    );
    run_config(&text, budget).await
}

/// Run a whole config's AfterAllowTestTraffic stage.
async fn run_config(text: &str, budget: Duration) -> StageReport {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let suite = Suite::new(config, Source::Inline).unwrap();
    suite
        .run_whole(
            Stage::AfterAllowTestTraffic,
            budget,
            "gl-scenario-test".into(),
            Default::default(),
        )
        .await
}

fn auth() -> String {
    format!("Authorization: \"Bearer {API_KEY}\"")
}

fn message(report: &StageReport) -> String {
    report.checks[0].message.clone()
}

#[tokio::test]
async fn a_capture_from_a_failed_step_still_lets_cleanup_refund() {
    let api = paysim().await;
    let report = run(
        &api,
        &format!(
            r#"          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              headers: {{ {auth}, Idempotency-Key: "{{{{run_id}}}}-a" }}
              json: {{ amount: 700, currency: USD, card_token: tok_visa }}
              expect: {{ status: 200 }}
              capture: {{ payment_id: /id }}
            - name: never reached
              path: /v1/payments/{{{{payment_id}}}}
              headers: {{ {auth} }}
          cleanup:
            - name: refund
              method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
              expect: {{ status: 201 }}
"#,
            auth = auth()
        ),
        Duration::from_secs(30),
    )
    .await;
    assert!(matches!(report.checks[0].outcome, Outcome::Failed { .. }));
    let text = message(&report);
    assert!(
        text.contains("step create: status: expected 200, got 201"),
        "{text}"
    );
    assert!(
        !text.contains("never reached"),
        "steps after a failure do not run: {text}"
    );
    let payments = api.paysim.payments().await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "refunded", "{payments:#?}");
}

#[tokio::test]
async fn cleanup_is_skipped_when_nothing_was_created() {
    let api = paysim().await;
    let report = run(
        &api,
        &format!(
            r#"          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              headers: {{ {auth}, Idempotency-Key: "{{{{run_id}}}}-b" }}
              json: {{ amount: 700, currency: USD, card_token: tok_bogus }}
              expect: {{ status: 201 }}
              capture: {{ payment_id: /id }}
          cleanup:
            - method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
"#,
            auth = auth()
        ),
        Duration::from_secs(30),
    )
    .await;
    let text = message(&report);
    assert!(
        text.contains("step create: capture payment_id: expected a value at /id, got absent"),
        "{text}"
    );
    assert!(
        text.contains("step create: status: expected 201, got 400"),
        "{text}"
    );
    assert!(
        !text.contains("cleanup"),
        "nothing to undo, so no cleanup ran: {text}"
    );
    assert!(api.paysim.payments().await.is_empty());
}

#[tokio::test]
async fn a_failing_cleanup_fails_an_otherwise_passing_scenario() {
    let api = paysim().await;
    let report = run(
        &api,
        &format!(
            r#"          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              headers: {{ {auth}, Idempotency-Key: "{{{{run_id}}}}-c" }}
              form: {{ amount: "300", currency: EUR, card_token: tok_visa }}
              expect: {{ status: 201, json: {{ /display_amount: "€3.00" }} }}
              capture: {{ payment_id: /id }}
          cleanup:
            - name: refund twice
              method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
            - name: refund again
              method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
"#,
            auth = auth()
        ),
        Duration::from_secs(30),
    )
    .await;
    let text = message(&report);
    assert!(
        text.contains("cleanup refund again: status: expected any 2xx, got 409"),
        "{text}"
    );
    assert_eq!(report.verdict, greenlight::Verdict::Failed);
}

#[tokio::test]
async fn cleanup_runs_when_the_budget_runs_out() {
    let api = paysim().await;
    // Budget 5 s, cleanup keeps 2 s back: the create step (2 s timeout) fits, the 30 s step
    // cannot start, and the refund still runs.
    let report = run(
        &api,
        &format!(
            r#"          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              timeout: 2s
              headers: {{ {auth}, Idempotency-Key: "{{{{run_id}}}}-d" }}
              json: {{ amount: 700, currency: USD, card_token: tok_visa }}
              capture: {{ payment_id: /id }}
            - name: long read
              timeout: 30s
              path: /v1/payments/{{{{payment_id}}}}
              headers: {{ {auth} }}
          cleanup:
            - name: refund
              timeout: 2s
              method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
"#,
            auth = auth()
        ),
        Duration::from_secs(5),
    )
    .await;
    let text = message(&report);
    assert!(
        text.contains("step long read: expected time to run"),
        "{text}"
    );
    assert!(text.contains("budget ran out"), "{text}");
    let payments = api.paysim.payments().await;
    assert_eq!(payments[0]["status"], "refunded", "{payments:#?}");
}

#[tokio::test]
async fn headers_can_be_captured_and_used_later() {
    let api = paysim().await;
    let report = run(
        &api,
        &format!(
            r#"          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              headers: {{ {auth}, Idempotency-Key: "{{{{run_id}}}}-e" }}
              json: {{ amount: 100, currency: USD, card_token: tok_visa }}
              capture: {{ payment_id: /id, kind: "header:Content-Type" }}
            - name: use the header
              path: /v1/payments/{{{{payment_id}}}}
              headers: {{ {auth} }}
              expect: {{ body_contains: "{{{{kind}}}} is not in the body" }}
          cleanup:
            - method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
"#,
            auth = auth()
        ),
        Duration::from_secs(30),
    )
    .await;
    let text = message(&report);
    assert!(
        text.contains(r#"step use the header: body: expected to contain "application/json is not in the body""#),
        "{text}"
    );
}

/// A port with nothing listening: connections are refused at once.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[tokio::test]
async fn a_request_that_cannot_be_sent_is_an_error_not_a_failure() {
    let api = paysim().await;
    let dead = closed_port_url();
    let text = format!(
        r#"targets: {{ test: {{ url: "{test}" }}, dead: {{ url: "{dead}" }} }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: refused
        scenario:
          target: dead
          steps: [ {{ path: /health }} ]
      - name: failed then refused
        scenario:
          target: test
          steps:
            - name: create
              method: POST
              path: /v1/payments
              headers: {{ {auth}, Idempotency-Key: "{{{{run_id}}}}-e" }}
              json: {{ amount: 700, currency: USD, card_token: tok_visa }}
              expect: {{ status: 200 }}
              capture: {{ payment_id: /id }}
          cleanup:
            - name: refund
              target: dead
              method: POST
              path: /v1/payments/{{{{payment_id}}}}/refunds
              headers: {{ {auth} }}
"#,
        test = api.paysim.url(),
        auth = auth()
    );
    let report = run_config(&text, Duration::from_secs(30)).await;
    assert_eq!(report.verdict, greenlight::Verdict::Failed);
    // Nothing was judged: the only step could not be sent.
    let Outcome::Error { error, failures } = &report.checks[0].outcome else {
        panic!("{:?}", report.checks[0].outcome)
    };
    assert!(
        error.contains("step 1") && error.contains("could not connect"),
        "{error}"
    );
    assert!(failures.is_empty(), "{failures:?}");
    // The step's mismatch is kept beside the cleanup that could not run (and left a payment).
    let Outcome::Error { error, failures } = &report.checks[1].outcome else {
        panic!("{:?}", report.checks[1].outcome)
    };
    assert!(
        error.contains("cleanup refund") && error.contains("could not connect"),
        "{error}"
    );
    assert_eq!(failures[0].what, "step create: status");
    assert_eq!(failures[0].expected, "200");
    assert!(failures[0].actual.starts_with("201"), "{failures:?}");
    assert_eq!(report.counts().errored, 2);
}
