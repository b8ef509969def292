//! The check kinds. Each runs against a target and returns an [`Outcome`]; retries live here
//! because they are the same for every kind.

pub(crate) mod alarms;
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod judge;
pub(crate) mod metric;
pub(crate) mod probe;
pub(crate) mod request;
pub(crate) mod scenario;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::outcome::Ran;
use crate::redact::Redactor;
use crate::template::Vars;

/// Told how a long check (a probe) is getting on, for a progress display.
pub trait Progress: Send + Sync {
    /// A probe of `total` requests started.
    fn started(&self, check: &str, total: u64);
    /// `done` of its requests have completed.
    fn advanced(&self, check: &str, done: u64);
    /// It finished.
    fn finished(&self, check: &str);
    /// Run `run` of `planned` of a repeating check ended with `outcome`.
    fn repeated(&self, check: &str, run: u32, planned: u32, outcome: &str) {
        let _ = (check, run, planned, outcome);
    }
}

/// What every check of one run shares: its variables (run id, deployment id, stage, secrets)
/// and where probes report progress.
#[derive(Clone)]
pub(crate) struct RunContext {
    /// The variables every template of this run can use.
    pub vars: Vars,
    /// Knows the config's secrets; each check adds the credentials it renders and captures.
    pub redactor: Redactor,
    /// AWS reads (CloudWatch), built once per cold start.
    pub aws: Arc<crate::aws::Aws>,
    /// Where probes report progress (the CLI on a terminal); `None` in Lambda.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("vars", &self.vars)
            .finish_non_exhaustive()
    }
}

/// A check ready to run: config resolved against defaults and targets.
#[derive(Debug, Clone)]
pub(crate) struct PlannedCheck {
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
    /// Run again and again over a window.
    pub repeat: Option<crate::config::repeat::RepeatSpec>,
    /// Run only at these traffic weights.
    pub when: Option<crate::config::repeat::WhenSpec>,
}

/// The kinds of check.
#[derive(Debug, Clone)]
pub(crate) enum CheckKind {
    /// One HTTP request (boxed: a planned request is far larger than a scenario's two lists).
    Http(Box<http::Exchange>),
    /// Ordered steps with captures and cleanup.
    Scenario(scenario::ScenarioCheck),
    /// Many requests, a latency histogram, optionally against a baseline.
    Probe(Box<probe::ProbeCheck>),
    /// CloudWatch alarms that must not be firing.
    Alarms(alarms::AlarmsCheck),
    /// CloudWatch datapoints for green, optionally against blue.
    Metric(Box<metric::MetricCheck>),
}

impl CheckKind {
    /// `http`, …
    pub(crate) fn label(&self) -> &'static str {
        match self {
            CheckKind::Http(_) => "http",
            CheckKind::Scenario(_) => "scenario",
            CheckKind::Probe(_) => "probe",
            CheckKind::Alarms(_) => "alarms",
            CheckKind::Metric(_) => "metric",
        }
    }

    /// The longest one attempt may take.
    fn attempt_timeout(&self) -> Duration {
        match self {
            CheckKind::Http(exchange) => exchange.request.timeout,
            CheckKind::Scenario(check) => check.worst_case(),
            CheckKind::Probe(check) => check.request.timeout,
            // Two reads of CloudWatch, each bounded by the AWS read's own retries.
            CheckKind::Alarms(_) | CheckKind::Metric(_) => Duration::from_secs(30),
        }
    }

    /// Run once; the outcome comes back scrubbed of every secret the run knows, including
    /// the credentials this check rendered or captured.
    async fn run_once(&self, ctx: &RunContext, deadline: Instant) -> Ran {
        let mut redactor = ctx.redactor.clone();
        let mut ran: Ran = match self {
            CheckKind::Http(exchange) => {
                http::outcome(exchange.run(&mut ctx.vars.clone(), &mut redactor).await).into()
            }
            CheckKind::Scenario(check) => check.run(ctx, &mut redactor, deadline).await.into(),
            CheckKind::Probe(check) => check.run(ctx, &mut redactor, deadline).await,
            CheckKind::Alarms(check) => check.run(&ctx.aws).await.into(),
            CheckKind::Metric(check) => check.run(ctx).await,
        };
        ran.outcome = ran.outcome.redacted(&redactor);
        ran
    }
}

/// A check's last run and how many attempts it took.
#[derive(Debug)]
pub(crate) struct Attempted {
    /// The last attempt's run.
    pub ran: Ran,
    /// Attempts made, the first included.
    pub attempts: u32,
}

/// The longest wait between two attempts, however many there are.
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

impl PlannedCheck {
    /// The longest one run may take: every attempt at its timeout, and the waits between.
    pub(crate) fn worst_case(&self) -> Duration {
        let mut total = self.kind.attempt_timeout();
        let mut delay = self.retry_delay;
        for _ in 0..self.retries {
            total += delay + self.kind.attempt_timeout();
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
        total
    }

    /// Run, retrying a failure while attempts and time remain: the last run and how many
    /// attempts were made. A retry is only started if it can finish before `deadline`.
    pub(crate) async fn run(&self, ctx: Arc<RunContext>, deadline: Instant) -> Attempted {
        let mut attempt = 1;
        let mut delay = self.retry_delay;
        loop {
            let ran = self.kind.run_once(&ctx, deadline).await;
            if ran.outcome.is_passed() || attempt > self.retries {
                return Attempted {
                    ran,
                    attempts: attempt,
                };
            }
            if Instant::now() + delay + self.kind.attempt_timeout() > deadline {
                tracing::debug!(check = %self.name, attempt, "no time left for another attempt");
                return Attempted {
                    ran,
                    attempts: attempt,
                };
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
