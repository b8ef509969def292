//! One repeating check's watch within one invocation: run every run that is due and fits,
//! count it, and decide when the check has ended.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Runner;
use super::state::{RepeatState, push_recent, quote};
use crate::check::{PlannedCheck, RunContext};
use crate::config::repeat::RepeatSpec;
use crate::outcome::{CheckResult, Mismatch, Outcome, Ran, RunRecord};
use crate::pool::PANICKED;

/// One repeating check's watch within one invocation.
pub(super) struct Watching {
    pub(super) check: PlannedCheck,
    pub(super) repeat: RepeatSpec,
    pub(super) ctx: Arc<RunContext>,
    pub(super) runner: Runner,
    pub(super) started: Instant,
    pub(super) started_ms: u64,
    pub(super) end: Instant,
    pub(super) budget: Duration,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) stop_all: Arc<watch::Sender<bool>>,
}

impl Watching {
    /// Run every run that is due and fits before the invocation's end; return where it stands.
    pub(super) async fn run(mut self, mut state: RepeatState) -> RepeatState {
        let worst = self.check.worst_case();
        if worst > self.budget && state.ended.is_none() {
            state.ended = Some("error".to_owned());
            self.record_note(
                &mut state,
                format!(
                    "one run may take up to {} (timeouts and retries), more than an invocation \
                     leaves for the checks ({}): raise the function's timeout, or lower the \
                     check's timeout and retries",
                    humantime::format_duration(worst),
                    humantime::format_duration(self.budget)
                ),
            );
            if self.check.required {
                let _ = self.stop_all.send(true);
            }
            return state;
        }
        // The config's figures, never the state's own: they were matched at admission.
        let planned = self.repeat.runs();
        while state.ended.is_none() && state.figures.runs < planned {
            if *self.stop.borrow() {
                break;
            }
            let due = self.started + self.repeat.offset(state.figures.runs);
            if due.max(Instant::now()) + worst > self.end {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stopped(&mut self.stop) => break,
            }
            let index = state.figures.runs;
            let at = crate::outcome::rfc3339(SystemTime::now());
            let mut vars = self.ctx.vars.clone();
            vars.set("repeat", &index.to_string());
            let ctx = Arc::new(RunContext {
                vars,
                ..(*self.ctx).clone()
            });
            let began = Instant::now();
            // The same panic boundary as a single check's, with the same fixed text.
            let run = AssertUnwindSafe((self.runner)(&self.check, ctx, self.end)).catch_unwind();
            let ran = tokio::select! {
                caught = run => match caught {
                    Ok(attempted) => attempted.ran,
                    Err(_) => Ran::from(Outcome::error(PANICKED)),
                },
                () = stopped(&mut self.stop) => break,
            };
            state.busy_ms += u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.count(&mut state, index, at, &ran);
        }
        if state.ended.is_none() && state.figures.runs >= planned {
            state.ended = Some("passed".to_owned());
        }
        state
    }

    /// Count a run, keep it among the recent ones, and decide whether the check has ended.
    fn count(&self, state: &mut RepeatState, index: u32, at: String, ran: &Ran) {
        let figures = &mut state.figures;
        figures.runs += 1;
        match ran.outcome {
            Outcome::Passed => state.errors_in_row = 0,
            Outcome::Failed { .. } => {
                figures.failed += 1;
                state.errors_in_row = 0;
            }
            Outcome::Error { .. } => {
                figures.errors += 1;
                state.errors_in_row += 1;
            }
        }
        let message = match &ran.outcome {
            Outcome::Passed => run_figures(ran),
            other => other.message(),
        };
        tracing::info!(
            check = %self.check.name,
            repeat = index,
            of = figures.planned,
            outcome = ran.outcome.label(),
            failed = figures.failed,
            errors = figures.errors,
            message = %message,
            "repeat run"
        );
        push_recent(
            figures,
            RunRecord {
                index,
                at,
                outcome: ran.outcome.label().to_owned(),
                message: quote(&self.ctx.redactor, &message),
            },
        );
        let failed = figures.failed > self.repeat.failure_limit;
        let errored = state.errors_in_row >= self.repeat.error_limit;
        if failed || errored {
            state.ended = Some(if failed { "failed" } else { "error" }.to_owned());
            if self.check.required {
                let _ = self.stop_all.send(true);
            }
        }
        if let Some(progress) = &self.ctx.progress {
            progress.repeated(
                &self.check.name,
                index + 1,
                figures.planned,
                ran.outcome.label(),
            );
        }
    }

    /// A note in place of a run (a watch that cannot run at all).
    fn record_note(&self, state: &mut RepeatState, message: String) {
        let at = crate::outcome::rfc3339(
            SystemTime::UNIX_EPOCH + Duration::from_millis(self.started_ms),
        );
        let index = state.figures.runs;
        push_recent(
            &mut state.figures,
            RunRecord {
                index,
                at,
                outcome: "error".to_owned(),
                message: quote(&self.ctx.redactor, &message),
            },
        );
    }
}

/// What a passing run measured, in a few words.
fn run_figures(ran: &Ran) -> String {
    if let Some(metric) = &ran.metric {
        let value = |v: Option<f64>| v.map_or_else(|| "no data".to_owned(), |v| format!("{v}"));
        return match &metric.blue {
            Some(blue) => format!(
                "green {} (blue {})",
                value(metric.green.value),
                value(blue.value)
            ),
            None => format!("green {}", value(metric.green.value)),
        };
    }
    if let Some(stats) = &ran.stats {
        let t = &stats.target;
        return format!(
            "p50 {:.1} ms, p99 {:.1} ms, {} errors of {}",
            t.p50_ms, t.p99_ms, t.errors, t.requests
        );
    }
    "ok".to_owned()
}

/// A repeating check's result as the report shows it.
pub(super) fn repeat_result(
    check: &PlannedCheck,
    repeat: &RepeatSpec,
    state: Option<&RepeatState>,
    stopped: bool,
) -> CheckResult {
    let fresh;
    let state = match state {
        Some(state) => state,
        None => {
            fresh = RepeatState::new(&check.name, repeat);
            &fresh
        }
    };
    let figures = &state.figures;
    let last = |outcome: &str| {
        figures
            .recent
            .iter()
            .rev()
            .find(|r| r.outcome == outcome)
            .map(|r| format!("run {} at {}: {}", r.index + 1, r.at, r.message))
            .unwrap_or_default()
    };
    let outcome = match state.ended.as_deref() {
        Some("failed") => Outcome::Failed {
            failures: vec![Mismatch::new(
                "repeat",
                format!(
                    "at most {} failed runs of {}",
                    figures.failure_limit, figures.planned
                ),
                format!(
                    "{} of {} runs failed; last {}",
                    figures.failed,
                    figures.runs,
                    last("failed")
                ),
            )],
        },
        // Ended before any run could be made: the note says why.
        Some("error") if state.errors_in_row < repeat.error_limit => {
            Outcome::error(figures.recent.last().map_or_else(
                || "the watch could not run".to_owned(),
                |r| r.message.clone(),
            ))
        }
        Some("error") => Outcome::error(format!(
            "{} runs in a row could not run (error_limit {}); last {}",
            state.errors_in_row,
            repeat.error_limit,
            last("error")
        )),
        _ => Outcome::Passed,
    };
    let mut result = CheckResult::new(
        check.name.clone(),
        check.kind.label(),
        check.required,
        outcome,
        Duration::from_millis(state.busy_ms),
        figures.runs,
    );
    let mut figures = figures.clone();
    figures.stopped_early = stopped && state.ended.is_none() && figures.runs < figures.planned;
    result.repeat = Some(figures);
    result
}

/// Resolves once the stop flag is raised (never, if its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
