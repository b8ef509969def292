//! The check kinds. Each runs against a target and returns an [`Outcome`]; retries live here
//! because they are the same for every kind.

pub mod http;
pub mod probe;
pub mod scenario;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Targets;
use crate::outcome::Ran;
use crate::stage::Stage;

/// Told how a long check (a probe) is getting on, for a progress display.
pub trait Progress: Send + Sync {
    /// A probe of `total` requests started.
    fn started(&self, check: &str, total: u64);
    /// `done` of its requests have completed.
    fn advanced(&self, check: &str, done: u64);
    /// It finished.
    fn finished(&self, check: &str);
}

/// What every check of one run shares: who is running, and the resolved secrets.
#[derive(Clone)]
pub struct RunContext {
    /// Stable per hook execution; idempotency keys derive from it.
    pub run_id: String,
    /// The deployment (`local` outside a hook).
    pub deployment_id: String,
    /// The stage being run.
    pub stage: Stage,
    /// Secret values by name.
    pub secrets: Arc<BTreeMap<String, String>>,
    /// Where probes report progress (the CLI on a terminal); `None` in Lambda.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets.
        f.debug_struct("RunContext")
            .field("run_id", &self.run_id)
            .field("deployment_id", &self.deployment_id)
            .field("stage", &self.stage)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

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
    /// One HTTP request (boxed: a resolved request is far larger than a scenario's two lists).
    Http(Box<http::HttpCheck>),
    /// Ordered steps with captures and cleanup.
    Scenario(scenario::ScenarioCheck),
    /// Many requests, a latency histogram, optionally against a baseline.
    Probe(Box<probe::ProbeCheck>),
}

impl CheckKind {
    /// `http`, …
    pub fn label(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Scenario(_) => "scenario",
            CheckKind::Probe(_) => "probe",
        }
    }

    /// The longest one attempt may take.
    fn attempt_timeout(&self) -> Duration {
        match self {
            CheckKind::Http(check) => check.request.timeout,
            CheckKind::Scenario(check) => check.worst_case(),
            CheckKind::Probe(check) => check.timeout,
        }
    }

    async fn run_once(&self, targets: &Targets, ctx: &RunContext, deadline: Instant) -> Ran {
        match self {
            CheckKind::Http(check) => check.run(targets).await.into(),
            CheckKind::Scenario(check) => check.run(targets, ctx, deadline).await.into(),
            CheckKind::Probe(check) => check.run(targets, ctx, deadline).await,
        }
    }
}

/// Render the templated values of expectations (expected JSON strings, `body_contains`).
pub(crate) fn render_expect(
    expect: &crate::config::Expect,
    vars: &crate::template::Vars,
) -> Result<crate::config::Expect, String> {
    let mut expect = expect.clone();
    for value in expect.json.values_mut() {
        *value = vars.render_json(value)?;
    }
    if let Some(needles) = &expect.body_contains {
        expect.body_contains = Some(crate::config::OneOrMany::Many(
            needles
                .to_vec()
                .iter()
                .map(|needle| vars.render(needle))
                .collect::<Result<_, _>>()?,
        ));
    }
    Ok(expect)
}

/// The longest wait between two attempts, however many there are.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

impl PlannedCheck {
    /// Run, retrying a failure while attempts and time remain. Returns the last outcome and how
    /// many attempts were made. A retry is only started if it can finish before `deadline`.
    pub async fn run(
        &self,
        targets: Arc<Targets>,
        ctx: Arc<RunContext>,
        deadline: Instant,
    ) -> (Ran, u32) {
        let mut attempt = 1;
        let mut delay = self.retry_delay;
        loop {
            let ran = self.kind.run_once(&targets, &ctx, deadline).await;
            if ran.outcome.is_passed() || attempt > self.retries {
                return (ran, attempt);
            }
            if Instant::now() + delay + self.kind.attempt_timeout() > deadline {
                tracing::debug!(check = %self.name, attempt, "no time left for another attempt");
                return (ran, attempt);
            }
            let outcome = &ran.outcome;
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
