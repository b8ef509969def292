//! The CodeDeploy status call: `PutLifecycleEventHookExecutionStatus`, with the SDK's own retries
//! for throttling and 5xx, and "already completed" counted as done.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_codedeploy::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codedeploy::types::LifecycleEventStatus;

use crate::error::{ReportError, chain};
use crate::event::CodeDeployEvent;
use crate::verdict::Verdict;

/// How a status report ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// CodeDeploy accepted this report.
    Accepted,
    /// CodeDeploy already had a status for this hook execution (an earlier attempt got through).
    AlreadyCompleted,
}

impl Delivery {
    /// `accepted` or `already-completed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Accepted => "accepted",
            Delivery::AlreadyCompleted => "already-completed",
        }
    }
}

/// Where a hook's verdict goes. The Lambda handler takes one, so its tests can count reports.
pub trait StatusSink: Send + Sync + 'static {
    /// Report the verdict for one hook execution.
    fn put(
        &self,
        event: &CodeDeployEvent,
        verdict: Verdict,
    ) -> impl Future<Output = Result<Delivery, ReportError>> + Send;
}

/// Attempts of the status call, including the first. More than the SDK's default 3: a lost report
/// costs the team an hour, a retry costs a second.
pub const REPORT_ATTEMPTS: u32 = 6;

/// The real CodeDeploy client.
#[derive(Debug, Clone)]
pub struct CodeDeploySink {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeploySink {
    /// Wrap a client (tests point one at a local endpoint).
    pub fn new(client: aws_sdk_codedeploy::Client) -> Self {
        CodeDeploySink { client }
    }

    /// A client from an already loaded SDK config with the status call's policy: throttling
    /// and 5xx are retried by the SDK's standard strategy with backoff, and the whole call,
    /// retries included, ends within `reserve`.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, reserve: Duration) -> Self {
        let config = aws_sdk_codedeploy::config::Builder::from(sdk)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(REPORT_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(2)),
            )
            .timeout_config(report_timeouts(reserve))
            .build();
        CodeDeploySink::new(aws_sdk_codedeploy::Client::from_conf(config))
    }

    /// The client it reports through, for the reads of the deployment (`discovery`).
    pub fn client(&self) -> &aws_sdk_codedeploy::Client {
        &self.client
    }
}

fn report_timeouts(reserve: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(reserve)
        .build()
}

impl StatusSink for CodeDeploySink {
    async fn put(
        &self,
        event: &CodeDeployEvent,
        verdict: Verdict,
    ) -> Result<Delivery, ReportError> {
        let label = verdict.codedeploy_status();
        let status = LifecycleEventStatus::from(label);
        let sent = self
            .client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&event.deployment_id)
            .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
            .status(status)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Delivery::Accepted),
            Err(SdkError::ServiceError(service))
                if service
                    .err()
                    .is_lifecycle_event_already_completed_exception() =>
            {
                Ok(Delivery::AlreadyCompleted)
            }
            Err(SdkError::ServiceError(service)) => {
                let err = service.err();
                Err(ReportError::Rejected {
                    status: label,
                    execution_id: event.lifecycle_event_hook_execution_id.clone(),
                    code: err.code().unwrap_or("unknown").to_owned(),
                    message: err.message().unwrap_or("(no message)").to_owned(),
                })
            }
            Err(other) => Err(ReportError::Unreachable {
                status: label,
                execution_id: event.lifecycle_event_hook_execution_id.clone(),
                cause: chain(&other),
            }),
        }
    }
}
