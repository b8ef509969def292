//! The safety promises at their edges: values stay values (a captured or event value can never
//! add a path segment, a query or a header) and no form of a secret leaves the process, however
//! it is quoted, escaped, encoded or cut.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use greenlight::Config;
use greenlight::Outcome;
use greenlight::Source;
use greenlight::StageReport;
use greenlight::{Stage, Suite};
use greenlight_e2e::leaks::{assert_no_form, component};
use greenlight_e2e::targets::{Behaviour, Target};
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};

/// Run a config's AfterAllowTestTraffic stage in-process with these secrets.
async fn stage(text: &str, secrets: &[(&str, &str)], deployment: Option<&str>) -> StageReport {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let secrets: BTreeMap<String, String> = secrets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let suite = Suite::with_secrets(config, Source::Inline, secrets).unwrap();
    let inputs = greenlight::StageInputs {
        deployment_id: deployment.map(str::to_owned),
        ..Default::default()
    };
    suite
        .run_whole(
            Stage::AfterAllowTestTraffic,
            Duration::from_secs(20),
            "gl-safety".into(),
            inputs,
        )
        .await
}

/// A target whose every answer is `{"id": value}`, and a scenario that captures that id, reads
/// with it (in the path, the query and behind an API key) and cleans up with it.
async fn steered_by(value: &str) -> (Target, String) {
    let body = serde_json::json!({ "id": value }).to_string();
    let target = Target::start(Behaviour::Json(Arc::from(body.as_str()))).await;
    let text = format!(
        r#"targets: {{ t: {{ url: "{}" }} }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: s
        scenario:
          target: t
          steps:
            - {{ name: lookup, path: /lookup, capture: {{ id: /id }} }}
            - name: read
              path: "/v1/payments/{{{{id}}}}/read?ref={{{{id}}}}&k=v"
              headers: {{ Authorization: "Bearer sk_test_steer" }}
          cleanup:
            - {{ method: POST, path: "/v1/payments/{{{{id}}}}/refunds" }}
"#,
        target.url()
    );
    (target, text)
}

#[tokio::test]
async fn captured_values_stay_one_path_segment_or_query_component() {
    let hostile = [
        "../../admin/delete?x=",
        "%2e%2e/",
        "pay_1#",
        "pay_1?amount=999999",
        "a/b",
        "pay 1&admin=true",
        "..%2f..%2fadmin",
        "line\r\nX-Injected: 1",
    ];
    for value in hostile {
        let (target, text) = steered_by(value).await;
        let report = stage(&text, &[], None).await;
        let encoded = component(value);
        let paths: Vec<String> = target.seen().into_iter().map(|s| s.path).collect();
        assert_eq!(
            paths,
            [
                "/lookup".to_owned(),
                format!("/v1/payments/{encoded}/read?ref={encoded}&k=v"),
                format!("/v1/payments/{encoded}/refunds"),
            ],
            "{value:?}: {:?}",
            report.checks[0].outcome
        );
        assert!(report.checks[0].outcome.is_passed(), "{value:?}");
    }
}

#[tokio::test]
async fn dot_and_empty_segments_are_errors_and_send_nothing() {
    for value in ["..", ".", ""] {
        let (target, text) = steered_by(value).await;
        let report = stage(&text, &[], None).await;
        let paths: Vec<String> = target.seen().into_iter().map(|s| s.path).collect();
        assert_eq!(paths, ["/lookup"], "{value:?}: only the lookup was sent");
        let Outcome::Error { error, .. } = &report.checks[0].outcome else {
            panic!("{value:?}: {:?}", report.checks[0].outcome)
        };
        assert!(
            error.contains(&format!("{{{{id}}}} is {value:?}"))
                && error.contains("cannot be a path segment"),
            "{value:?}: {error}"
        );
    }
}

#[tokio::test]
async fn event_values_and_the_segments_filter_follow_the_same_rules() {
    let target = Target::start(Behaviour::Healthy).await;
    let text = format!(
        r#"targets: {{ t: {{ url: "{}" }} }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: deployment
        http: {{ target: t, path: "/v1/deployments/{{{{deployment_id}}}}?stage={{{{stage}}}}" }}
      - name: files
        scenario:
          target: t
          steps:
            - {{ path: /v1/list, json: {{ dir: "reports/2026 q4/x" }} }}
            - {{ path: "/files/{{{{ 'reports/2026 q4' | segments }}}}/summary" }}
"#,
        target.url()
    );
    let report = stage(&text, &[], Some("../../admin?x=#")).await;
    assert!(
        report.checks.iter().all(|c| c.outcome.is_passed()),
        "{report:?}"
    );
    let mut paths: Vec<String> = target.seen().into_iter().map(|s| s.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/files/reports/2026%20q4/summary",
            "/v1/deployments/..%2F..%2Fadmin%3Fx%3D%23?stage=AfterAllowTestTraffic",
            "/v1/list",
        ]
    );
    // The filter still refuses what would leave the path.
    for bad in ["a/../b", "a?b", "a#b", "/a", "a//b"] {
        let text = format!(
            "targets: {{ t: {{ url: \"{}\" }} }}\ndefaults: {{ retries: 0 }}\nstages: {{ AfterAllowTestTraffic: {{ checks: [ {{ name: f, http: {{ target: t, path: \"/files/{{{{ '{bad}' | segments }}}}\" }} }} ] }} }}",
            target.url()
        );
        let before = target.seen().len();
        let report = stage(&text, &[], None).await;
        assert!(
            matches!(&report.checks[0].outcome, Outcome::Error { error, .. } if error.contains("cannot be a path segment")),
            "{bad}: {:?}",
            report.checks[0].outcome
        );
        assert_eq!(target.seen().len(), before, "{bad}: nothing was sent");
    }
}

/// Secrets drawn from what generated passwords and JSON SecretStrings contain: quotes,
/// backslashes, spaces, URL delimiters, non-ASCII. A marker letter follows every character so
/// that any eight characters in a row are the secret's own, never chance.
fn hostile_secret() -> impl Strategy<Value = String> {
    let hostile = prop::sample::select(vec![
        '"', '\\', ' ', '%', '+', '/', '=', '?', '#', '&', '<', '>', '\'', ':', ';', 'é', '字',
        '€', '\t', 'a', '7',
    ]);
    let marker = prop::sample::select(vec!['Q', 'X', 'Z', 'J']);
    prop::collection::vec((hostile, marker), 4..24)
        .prop_map(|pairs| pairs.into_iter().flat_map(|(h, m)| [h, m]).collect())
}

#[test]
fn no_form_of_a_secret_leaves_in_any_report() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Cases {
        cases: 48,
        failure_persistence: None,
        ..Cases::default()
    });
    runner
        .run(&(hostile_secret(), 150usize..230), |(secret, pad)| {
            runtime.block_on(leak_check(&secret, pad));
            Ok(())
        })
        .unwrap();
}

async fn leak_check(secret: &str, pad: usize) {
    let echo = Target::start(Behaviour::Echo { pad }).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let text = format!(
        r#"secrets: {{ key: {{ env: UNUSED }} }}
targets: {{ echo: {{ url: "{echo}" }}, closed: {{ url: "http://{closed}" }} }}
defaults: {{ retries: 0, timeout: 5s }}
stages:
  AfterAllowTestTraffic:
    checks:
      - name: header, query and body echoed
        http:
          target: echo
          path: "/v1/echo?k={{{{secrets.key}}}}"
          headers: {{ Authorization: "Bearer {{{{secrets.key}}}}" }}
          json: {{ key: "{{{{secrets.key}}}}" }}
          expect: {{ status: 200, headers: {{ x-echo: nope }}, json: {{ /key: nope }} }}
      - name: body echoed
        http:
          target: echo
          path: "/v1/echo?k={{{{secrets.key}}}}"
          json: {{ key: "{{{{secrets.key}}}}" }}
          expect: {{ body_contains: "never there" }}
      - name: refused, the secret in the URL
        http: {{ target: closed, path: "/v1/echo?k={{{{secrets.key}}}}" }}
      - name: transformed in a credential header
        http:
          target: echo
          headers: {{ X-Api-Key: "{{{{ secrets.key | upper }}}}" }}
          expect: {{ status: 200 }}
"#,
        echo = echo.url()
    );
    let report = stage(&text, &[("key", secret)], None).await;
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert!(
        json.contains("[REDACTED]"),
        "the echo reached a report: {json}"
    );
    assert!(!echo.seen().is_empty());
    for (what, output) in [
        ("json report", json),
        ("text report", greenlight::render::text(&report)),
        ("summary", report.summary()),
    ] {
        assert_no_form(secret, &output, what);
        assert_no_form(&secret.to_uppercase(), &output, what);
    }
}
