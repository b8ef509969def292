//! The CodeDeploy status call through the real AWS SDK against the local CodeDeploy: wire
//! format, retries on throttling and 5xx, "already completed" as done, final errors.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_sdk_codedeploy::config::{Credentials, Region};
use greenlight::CodeDeployEvent;
use greenlight::ReportError;
use greenlight::Verdict;
use greenlight::{CodeDeploySink, Delivery, REPORT_ATTEMPTS, StatusSink};
use greenlight_e2e::codedeploy::{CONTENT_TYPE, FakeCodeDeploy, Fault, TARGET};

async fn sink(fake: &FakeCodeDeploy) -> CodeDeploySink {
    let loader = greenlight::sdk_loader()
        .endpoint_url(fake.url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"));
    // The hook's own path: the shared SDK config, the status call's retry and time policy.
    CodeDeploySink::from_sdk(&loader.load().await, Duration::from_secs(20))
}

fn event(id: &str) -> CodeDeployEvent {
    CodeDeployEvent {
        deployment_id: "d-TEST".into(),
        lifecycle_event_hook_execution_id: id.into(),
        watch: None,
    }
}

#[tokio::test]
async fn sends_the_documented_wire_format() {
    let fake = FakeCodeDeploy::start().await;
    let delivery = sink(&fake)
        .await
        .put(&event("exec-1"), Verdict::Passed)
        .await
        .unwrap();
    assert_eq!(delivery, Delivery::Accepted);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.target.as_deref(), Some(TARGET));
    assert_eq!(call.content_type.as_deref(), Some(CONTENT_TYPE));
    let auth = call.authorization.as_deref().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"),
        "{auth}"
    );
    assert!(
        auth.contains("/us-east-1/codedeploy/aws4_request"),
        "{auth}"
    );
    assert_eq!(
        call.body,
        serde_json::json!({
            "deploymentId": "d-TEST",
            "lifecycleEventHookExecutionId": "exec-1",
            "status": "Succeeded"
        })
    );
}

#[tokio::test]
async fn a_failed_verdict_is_sent_as_failed() {
    let fake = FakeCodeDeploy::start().await;
    sink(&fake)
        .await
        .put(&event("exec-1"), Verdict::Failed)
        .await
        .unwrap();
    assert_eq!(fake.calls()[0].reported_status(), Some("Failed"));
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_accepted() {
    let fake = FakeCodeDeploy::start().await;
    fake.script([Fault::Throttle, Fault::ServerError, Fault::Throttle]);
    let delivery = sink(&fake)
        .await
        .put(&event("exec-1"), Verdict::Passed)
        .await
        .unwrap();
    assert_eq!(delivery, Delivery::Accepted);
    let calls = fake.calls();
    let answers: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(answers, [400, 500, 400, 200]);
    assert_eq!(calls.iter().filter(|c| c.accepted()).count(), 1);
}

#[tokio::test]
async fn already_completed_counts_as_done() {
    let fake = FakeCodeDeploy::start().await;
    let sink = sink(&fake).await;
    assert_eq!(
        sink.put(&event("exec-1"), Verdict::Passed).await.unwrap(),
        Delivery::Accepted
    );
    assert_eq!(
        sink.put(&event("exec-1"), Verdict::Passed).await.unwrap(),
        Delivery::AlreadyCompleted
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "already-completed is final, not retried");
    assert_eq!(
        calls[1].error_type.as_deref(),
        Some("LifecycleEventAlreadyCompletedException")
    );
}

#[tokio::test]
async fn a_rejection_is_final_and_says_what_to_check() {
    let fake = FakeCodeDeploy::start().await;
    fake.always(Fault::AccessDenied);
    let err = sink(&fake)
        .await
        .put(&event("exec-1"), Verdict::Passed)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ReportError::Rejected { code, .. } if code == "AccessDeniedException"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("codedeploy:PutLifecycleEventHookExecutionStatus"),
        "{err}"
    );
    assert_eq!(fake.calls().len(), 1, "an access error is not retried");
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_the_configured_attempts() {
    let fake = FakeCodeDeploy::start().await;
    fake.always(Fault::Throttle);
    let err = sink(&fake)
        .await
        .put(&event("exec-1"), Verdict::Failed)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exec-1"), "{err}");
    assert_eq!(fake.calls().len(), REPORT_ATTEMPTS as usize);
}

#[tokio::test]
async fn a_hung_or_closed_endpoint_is_retried_and_bounded_by_the_reserve() {
    // A CodeDeploy endpoint that accepts connections and never answers: each attempt ends at
    // the attempt timeout, the SDK retries, and the whole call ends within the reserve.
    let hang = greenlight_e2e::targets::Hang::start().await;
    let loader = greenlight::sdk_loader()
        .endpoint_url(hang.url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"));
    let reserve = Duration::from_secs(6);
    let config = loader.load().await;
    let started = std::time::Instant::now();
    let err = CodeDeploySink::from_sdk(&config, reserve)
        .put(&event("exec-hung"), Verdict::Passed)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ReportError::Unreachable { .. }), "{err}");
    assert!(took < reserve + Duration::from_secs(2), "{took:?}");
    assert!(
        hang.accepted() >= 2,
        "the attempt was retried: {}",
        hang.accepted()
    );

    // Nothing listening at all: refused connections are retried the same way, then reported.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let loader = greenlight::sdk_loader()
        .endpoint_url(format!("http://{closed}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"));
    let config = loader.load().await;
    let err = CodeDeploySink::from_sdk(&config, reserve)
        .put(&event("exec-closed"), Verdict::Passed)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("exec-closed") && text.to_lowercase().contains("connect"),
        "{text}"
    );
}
