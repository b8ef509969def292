//! The check kinds. Each runs against a target and returns an [`Outcome`]; retries live here
//! because they are the same for every kind.

pub mod http;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Targets;
use crate::outcome::Outcome;

/// A check ready to run: config resolved against defaults and targets.
#[derive(Debug, Clone)]
pub struct PlannedCheck {
    /// From config.
    pub name: String,
    /// Whether a failure fails the stage.
    pub required: bool,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Delay before the first retry; doubles after each further one.
    pub retry_delay: Duration,
    /// What to do.
    pub kind: CheckKind,
}

/// The kinds of check.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// One HTTP request.
    Http(http::HttpCheck),
}

impl CheckKind {
    /// `http`, …
    pub fn label(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
        }
    }

    /// The longest one attempt may take.
    fn attempt_timeout(&self) -> Duration {
        match self {
            CheckKind::Http(check) => check.timeout,
        }
    }

    async fn run_once(&self, targets: &Targets) -> Outcome {
        match self {
            CheckKind::Http(check) => check.run(targets).await,
        }
    }
}

/// The longest wait between two attempts, however many there are.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

impl PlannedCheck {
    /// Run, retrying a failure while attempts and time remain. Returns the last outcome and how
    /// many attempts were made. A retry is only started if it can finish before `deadline`.
    pub async fn run(&self, targets: Arc<Targets>, deadline: Instant) -> (Outcome, u32) {
        let mut attempt = 1;
        let mut delay = self.retry_delay;
        loop {
            let outcome = self.kind.run_once(&targets).await;
            if outcome.is_passed() || attempt > self.retries {
                return (outcome, attempt);
            }
            if Instant::now() + delay + self.kind.attempt_timeout() > deadline {
                tracing::debug!(check = %self.name, attempt, "no time left for another attempt");
                return (outcome, attempt);
            }
            tracing::info!(
                check = %self.name,
                attempt,
                outcome = outcome.label(),
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "attempt did not pass; retrying"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
            attempt += 1;
        }
    }
}
