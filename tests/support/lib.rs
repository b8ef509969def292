//! Real local parts for greenlight's end-to-end tests: a CodeDeploy that speaks its JSON 1.1
//! protocol and records every call, HTTP targets that behave and misbehave on purpose, and a
//! harness that runs the real hook binaries against `cargo lambda watch`'s runtime emulator.
//!
//! Everything listens on 127.0.0.1 only, and every wait is bounded.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

pub mod alb;
pub mod aws;
pub mod cli;
pub mod codedeploy;
pub mod lambda;
pub mod leaks;
pub mod paysim;
pub mod sigv4;
pub mod targets;
pub mod traffic;

use std::time::Duration;

/// Aborts a spawned server task when the fake that owns it is dropped.
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wait until `probe` is true, checking whenever `changed` fires, for at most `limit`.
pub async fn wait_until(
    limit: Duration,
    changed: &tokio::sync::Notify,
    mut probe: impl FnMut() -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        // Register before probing, so a change between the probe and the wait is not missed.
        notified.as_mut().enable();
        if probe() {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return probe();
        }
    }
}

/// Dummy AWS settings so the SDK never reaches for IMDS or a real account.
pub const AWS_TEST_ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "AKIDGREENLIGHTTEST"),
    ("AWS_SECRET_ACCESS_KEY", "greenlight-test-secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];
