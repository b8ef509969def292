//! Watching green over time. A check with `repeat` runs again and again over a bake window;
//! the window may outlast one Lambda invocation (at most 15 minutes), so what the watch knows
//! is a small [`WatchState`] that the next invocation resumes from: ECS carries it in
//! `hookDetails`, a CodeDeploy hook in the payload of its own continuation.
//!
//! The state holds counts and the last [`RECENT_RUNS`] runs of each repeating check, with
//! their messages cut short, so it stays a few KB however long the watch. Every run is also
//! logged as it happens.
//!
//! A stage's verdict waits for every repeating check, except that a required check failing
//! (a single check, or a repeating one past its `failure_limit`) fails the stage at once.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::check::{PlannedCheck, RunContext};
use crate::config::watch::RepeatSpec;
use crate::outcome::{CheckResult, Mismatch, Outcome, Ran, RepeatFigures, RunRecord};
use crate::plan::Plan;
use crate::run::{Job, PANICKED, run_jobs};
use crate::stage::Stage;

/// The state's format; a state of another version is refused.
pub const STATE_VERSION: u8 = 1;

/// Runs of each repeating check the state (and the final report) keeps.
pub const RECENT_RUNS: usize = 10;

/// Characters of a run's message the state keeps.
const MESSAGE_CHARS: usize = 120;

/// What a resumed invocation needs to know of the watch so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchState {
    /// [`STATE_VERSION`].
    pub v: u8,
    /// The run id of the hook execution it belongs to.
    pub run_id: String,
    /// The stage it watches.
    pub stage: String,
    /// Hand-offs so far: 1 in the first continuation.
    pub seq: u32,
    /// When the watch started, ms since 1970.
    pub started_ms: u64,
    /// Single checks already run (they passed, or are optional).
    pub done: Vec<DoneCheck>,
    /// Each repeating check's progress.
    pub repeats: Vec<RepeatState>,
}

/// A single (not repeating) check that ran in an earlier invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneCheck {
    /// Its name.
    pub name: String,
    /// `passed`, `failed` or `error`.
    pub outcome: String,
    /// Its message, cut short.
    pub message: String,
}

/// A repeating check's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepeatState {
    /// Its name.
    pub name: String,
    /// Runs in a row that could not run.
    pub errors_in_row: u32,
    /// How it ended: `passed`, `failed` or `error`; none while it goes on.
    pub ended: Option<String>,
    /// Counts and recent runs.
    pub figures: RepeatFigures,
    /// Wall time spent running it, ms.
    #[serde(default)]
    pub busy_ms: u64,
}

/// Why a carried state cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not JSON of the right shape.
    #[error(
        "the watch state carried by this invocation does not parse ({0}); failing closed rather than restarting the watch"
    )]
    Unreadable(String),
    /// Another version of greenlight wrote it.
    #[error(
        "the watch state is version {0}, this greenlight reads version {STATE_VERSION}: a deployment must not span an upgrade of the hooks"
    )]
    Version(u8),
    /// It belongs to another hook execution or stage.
    #[error(
        "the watch state belongs to another hook execution ({0}); failing closed rather than mixing two watches"
    )]
    Foreign(String),
    /// Its checks are not the config's.
    #[error(
        "the watch state does not match the config's checks ({0}): was the config changed during the deployment? failing closed, no check run"
    )]
    Mismatch(String),
    /// A state came for a stage where nothing repeats: no watch of it was ever handed on.
    #[error(
        "this invocation carries a watch state, and no check of this stage repeats: failing closed, no check run"
    )]
    NoWatch,
    /// The chain has gone on longer or further than the config allows.
    #[error("the watch is over its bounds ({0}): ending it Failed")]
    Unbounded(String),
}

impl WatchState {
    /// Read a carried state and make sure it is this execution's and this stage's.
    pub fn resume(
        value: &serde_json::Value,
        run_id: &str,
        stage: Stage,
    ) -> Result<Self, StateError> {
        let state: WatchState = serde_json::from_value(value.clone())
            .map_err(|err| StateError::Unreadable(err.to_string()))?;
        if state.v != STATE_VERSION {
            return Err(StateError::Version(state.v));
        }
        if state.run_id != run_id || state.stage != stage.as_str() {
            return Err(StateError::Foreign(format!(
                "{} {}, not {run_id} {stage}",
                state.run_id, state.stage
            )));
        }
        Ok(state)
    }

    /// The state as JSON.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// What one invocation of a watched stage came to.
#[derive(Debug)]
pub enum WatchStep {
    /// The stage is decided: every check's result, in config order.
    Done(Vec<CheckResult>),
    /// The watch goes on in another invocation, which should start after `wait`.
    Continue {
        /// Where the watch stands, for the next invocation.
        state: WatchState,
        /// Until the next run is due.
        wait: Duration,
        /// The results so far (single checks, and repeating ones as they stand).
        so_far: Vec<CheckResult>,
    },
}

/// Time a chain of invocations may outlive its longest `for`: one more invocation (Lambda's
/// 15-minute maximum) for the last run and the report.
pub const CHAIN_SLACK: Duration = Duration::from_secs(15 * 60);

/// How a stage's single runs are made: the check itself in production, anything in tests.
pub(crate) type Runner = Arc<
    dyn for<'a> Fn(&'a PlannedCheck, Arc<RunContext>, Instant) -> BoxFuture<'a, (Ran, u32)>
        + Send
        + Sync,
>;

fn check_runner() -> Runner {
    Arc::new(|check, ctx, end| Box::pin(check.run(ctx, end)))
}

/// What a carried state may claim, from the config and the engine (never from the state).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainLimits {
    /// The longest a watch may have been going on: its longest `for` plus [`CHAIN_SLACK`],
    /// and at most the engine's own wait (CodeDeploy's hour).
    pub max_age: Duration,
    /// The most hand-offs a watch can need: one per planned run, one per invocation that only
    /// waited out its time, and two to spare.
    pub max_hops: u32,
}

impl ChainLimits {
    /// The limits of a plan's watch, for invocations whose checks get `per_hop` each; `cap` is
    /// the engine's own limit. `None` when nothing in the plan repeats.
    pub(crate) fn of(plan: &Plan, per_hop: Duration, cap: Option<Duration>) -> Option<Self> {
        let repeats: Vec<&RepeatSpec> = plan
            .checks
            .iter()
            .filter_map(|c| c.repeat.as_ref())
            .collect();
        let longest = repeats.iter().map(|r| r.for_.0).max()?;
        let mut max_age = longest + CHAIN_SLACK;
        if let Some(cap) = cap {
            max_age = max_age.min(cap);
        }
        let runs: u64 = repeats.iter().map(|r| u64::from(r.runs())).sum();
        let per_hop = per_hop.max(Duration::from_secs(1));
        let waits = max_age.as_millis().div_ceil(per_hop.as_millis());
        let hops = runs
            .saturating_add(u64::try_from(waits).unwrap_or(u64::MAX))
            .saturating_add(2);
        Some(ChainLimits {
            max_age,
            max_hops: u32::try_from(hops).unwrap_or(u32::MAX),
        })
    }

    /// Refuse a state whose chain has gone on longer, or further, than the config allows, or
    /// that claims to start in the future.
    pub(crate) fn admit(&self, state: &WatchState, now_ms: u64) -> Result<(), StateError> {
        // A minute of clock skew between two sandboxes.
        if state.started_ms > now_ms.saturating_add(60_000) {
            return Err(StateError::Unbounded(
                "it claims to have started in the future".to_owned(),
            ));
        }
        let age = Duration::from_millis(now_ms.saturating_sub(state.started_ms));
        if age > self.max_age {
            return Err(StateError::Unbounded(format!(
                "it started {} ago, and a watch of this stage lasts at most {} (its longest \
                 `for` plus {} for the last invocation, within what the engine waits)",
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(self.max_age),
                humantime::format_duration(CHAIN_SLACK),
            )));
        }
        if state.seq > self.max_hops {
            return Err(StateError::Unbounded(format!(
                "it has been handed on {} times, and this stage's watch needs at most {}",
                state.seq, self.max_hops
            )));
        }
        Ok(())
    }
}

/// Match a carried state against the plan before anything runs: every repeating check of the
/// plan has its progress, with the planned runs and limits the config says now; nothing else.
fn admit_against(plan: &Plan, state: &WatchState) -> Result<(), StateError> {
    let mut repeating = 0;
    for check in &plan.checks {
        match &check.repeat {
            Some(repeat) => {
                repeating += 1;
                let Some(carried) = state.repeats.iter().find(|s| s.name == check.name) else {
                    return Err(StateError::Mismatch(check.name.clone()));
                };
                let figures = &carried.figures;
                if figures.planned != repeat.runs()
                    || figures.failure_limit != repeat.failure_limit
                    || figures.runs > figures.planned
                {
                    return Err(StateError::Mismatch(format!(
                        "{}: {} runs planned with failure_limit {}, the config says {} and {}",
                        check.name,
                        figures.planned,
                        figures.failure_limit,
                        repeat.runs(),
                        repeat.failure_limit
                    )));
                }
            }
            None => {
                if !state.done.iter().any(|d| d.name == check.name) {
                    return Err(StateError::Mismatch(check.name.clone()));
                }
            }
        }
    }
    if repeating == 0 {
        return Err(StateError::NoWatch);
    }
    let known = |name: &str| plan.checks.iter().any(|c| c.name == name);
    if let Some(stray) = state
        .repeats
        .iter()
        .map(|s| s.name.as_str())
        .chain(state.done.iter().map(|d| d.name.as_str()))
        .find(|name| !known(name))
    {
        return Err(StateError::Mismatch(stray.to_owned()));
    }
    Ok(())
}

/// Run a stage's plan for at most `budget`: the single checks (in the first invocation) and
/// the repeating checks' runs that fit. `resume` is the state an earlier invocation handed
/// over, already verified; `limits` bound it; `run_id` and `stage` identify this watch.
///
/// Nothing outlives the call: repeating checks run in a [`JoinSet`] that aborts them on every
/// return, and a carried state is matched against the plan before anything starts.
pub(crate) async fn run(
    plan: &Plan,
    ctx: Arc<RunContext>,
    budget: Duration,
    resume: Option<(WatchState, Option<Duration>)>,
    run_id: &str,
    stage: Stage,
) -> Result<WatchStep, StateError> {
    run_with(plan, ctx, budget, resume, run_id, stage, check_runner()).await
}

async fn run_with(
    plan: &Plan,
    ctx: Arc<RunContext>,
    budget: Duration,
    resume: Option<(WatchState, Option<Duration>)>,
    run_id: &str,
    stage: Stage,
    runner: Runner,
) -> Result<WatchStep, StateError> {
    let now_ms = crate::budget::epoch_ms(SystemTime::now());
    let start = Instant::now();
    let end = start + budget;
    if let Some((state, cap)) = &resume {
        if state.run_id != run_id || state.stage != stage.as_str() {
            return Err(StateError::Foreign(format!(
                "{} {}, not {run_id} {stage}",
                state.run_id, state.stage
            )));
        }
        admit_against(plan, state)?;
        let limits = ChainLimits::of(plan, budget, *cap).ok_or(StateError::NoWatch)?;
        limits.admit(state, now_ms)?;
    }
    let resume = resume.map(|(state, _)| state);
    let started_ms = resume.as_ref().map_or(now_ms, |state| state.started_ms);
    // The watch's start on this process's clock: runs keep their schedule across invocations.
    let started = start
        .checked_sub(Duration::from_millis(now_ms.saturating_sub(started_ms)))
        .unwrap_or(start);
    let seq = resume.as_ref().map_or(0, |state| state.seq);
    let (mut done, mut carried) = match resume {
        Some(state) => (Some(state.done), state.repeats),
        None => (None, Vec::new()),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);

    // Every repeating check watches in its own task, from where the state left it. The set
    // aborts them all if this function returns early or is itself aborted.
    let mut tasks = JoinSet::new();
    let mut task_names = HashMap::new();
    for check in &plan.checks {
        let Some(repeat) = check.repeat.clone() else {
            continue;
        };
        let state = match carried.iter().position(|s| s.name == check.name) {
            Some(index) => carried.swap_remove(index),
            None => RepeatState::new(&check.name, &repeat),
        };
        let watching = Watching {
            check: check.clone(),
            repeat,
            ctx: Arc::clone(&ctx),
            runner: Arc::clone(&runner),
            started,
            started_ms,
            end,
            budget,
            stop: stop_rx.clone(),
            stop_all: Arc::clone(&stop_tx),
        };
        let handle = tasks.spawn(watching.run(state));
        task_names.insert(handle.id(), check.name.clone());
    }

    // Single checks run in the first invocation only; a required one failing ends the watch.
    let singles: Vec<&PlannedCheck> = plan.checks.iter().filter(|c| c.repeat.is_none()).collect();
    let single_results = match done.take() {
        Some(done) => singles
            .iter()
            .map(|check| from_done(check, done.iter().find(|d| d.name == check.name)))
            .collect(),
        None => {
            let jobs = singles
                .iter()
                .map(|check| {
                    let check = (*check).clone();
                    let ctx = Arc::clone(&ctx);
                    let runner = Arc::clone(&runner);
                    Job {
                        name: check.name.clone(),
                        kind: check.kind.label(),
                        required: check.required,
                        work: Box::pin(async move { runner(&check, ctx, end).await }),
                    }
                })
                .collect();
            let results = run_jobs(jobs, end, plan.concurrency).await;
            if results.iter().any(|r| r.required && !r.outcome.is_passed()) {
                let _ = stop_tx.send(true);
            }
            results
        }
    };

    let mut repeats = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, state)) => repeats.push(state),
            // Each run has its own panic boundary; this is the watch's bookkeeping failing. The
            // check ends as an error with a fixed text, and its siblings stop.
            Err(err) => {
                let _ = stop_tx.send(true);
                let Some(name) = task_names.get(&err.id()) else {
                    continue;
                };
                let Some(check) = plan.checks.iter().find(|c| &c.name == name) else {
                    continue;
                };
                let Some(repeat) = &check.repeat else {
                    continue;
                };
                let mut state = RepeatState::new(name, repeat);
                state.ended = Some("error".to_owned());
                push_recent(
                    &mut state.figures,
                    RunRecord {
                        index: 0,
                        at: crate::outcome::rfc3339(SystemTime::now()),
                        outcome: "error".to_owned(),
                        message: PANICKED.to_owned(),
                    },
                );
                repeats.push(state);
            }
        }
    }
    let stopped = *stop_rx.borrow();

    // Results in config order.
    let results: Vec<CheckResult> = plan
        .checks
        .iter()
        .map(|check| match &check.repeat {
            None => single_results
                .iter()
                .find(|r: &&CheckResult| r.name == check.name)
                .cloned()
                .unwrap_or_else(|| {
                    CheckResult::new(
                        check.name.clone(),
                        check.kind.label(),
                        check.required,
                        Outcome::error("no result"),
                        Duration::ZERO,
                        0,
                    )
                }),
            Some(repeat) => {
                let state = repeats.iter().find(|s| s.name == check.name);
                repeat_result(check, repeat, state, stopped)
            }
        })
        .collect();

    let unfinished: Vec<&RepeatState> = repeats.iter().filter(|s| s.ended.is_none()).collect();
    if stopped || unfinished.is_empty() {
        return Ok(WatchStep::Done(results));
    }
    let now = Instant::now();
    let wait = plan
        .checks
        .iter()
        .filter_map(|check| {
            let repeat = check.repeat.as_ref()?;
            let state = unfinished.iter().find(|s| s.name == check.name)?;
            Some((started + repeat.offset(state.figures.runs)).saturating_duration_since(now))
        })
        .min()
        .unwrap_or_default();
    let state = WatchState {
        v: STATE_VERSION,
        run_id: run_id.to_owned(),
        stage: stage.as_str().to_owned(),
        seq: seq + 1,
        started_ms,
        done: single_results
            .iter()
            .map(|r| DoneCheck {
                name: r.name.clone(),
                outcome: r.outcome.label().to_owned(),
                message: quote(&ctx.redactor, &r.message),
            })
            .collect(),
        repeats,
    };
    Ok(WatchStep::Continue {
        state,
        wait,
        so_far: results,
    })
}

/// One repeating check's watch within one invocation.
struct Watching {
    check: PlannedCheck,
    repeat: RepeatSpec,
    ctx: Arc<RunContext>,
    runner: Runner,
    started: Instant,
    started_ms: u64,
    end: Instant,
    budget: Duration,
    stop: watch::Receiver<bool>,
    stop_all: Arc<watch::Sender<bool>>,
}

impl RepeatState {
    fn new(name: &str, repeat: &RepeatSpec) -> Self {
        RepeatState {
            name: name.to_owned(),
            errors_in_row: 0,
            ended: None,
            figures: RepeatFigures {
                planned: repeat.runs(),
                runs: 0,
                failed: 0,
                errors: 0,
                failure_limit: repeat.failure_limit,
                stopped_early: false,
                recent: Vec::new(),
            },
            busy_ms: 0,
        }
    }
}

impl Watching {
    /// Run every run that is due and fits before the invocation's end; return where it stands.
    async fn run(mut self, mut state: RepeatState) -> RepeatState {
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
                    Ok((ran, _attempts)) => ran,
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

fn push_recent(figures: &mut RepeatFigures, record: RunRecord) {
    figures.recent.push(record);
    if figures.recent.len() > RECENT_RUNS {
        let extra = figures.recent.len() - RECENT_RUNS;
        figures.recent.drain(..extra);
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
fn repeat_result(
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

/// A single check from an earlier invocation, rebuilt from what the state kept.
fn from_done(check: &PlannedCheck, done: Option<&DoneCheck>) -> CheckResult {
    let outcome = match done {
        Some(done) if done.outcome == "passed" => Outcome::Passed,
        Some(done) if done.outcome == "failed" => {
            Outcome::mismatch("earlier invocation", "passed", done.message.clone())
        }
        Some(done) => Outcome::error(format!("in an earlier invocation: {}", done.message)),
        None => Outcome::error("its result from the earlier invocation is missing"),
    };
    CheckResult::new(
        check.name.clone(),
        check.kind.label(),
        check.required,
        outcome,
        Duration::ZERO,
        1,
    )
}

/// Text for the state, which leaves the process (ECS's hookDetails, a continuation's payload):
/// scrubbed of every secret first, then cut.
fn quote(redactor: &crate::redact::Redactor, text: &str) -> String {
    cut(&redactor.scrub(text))
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MESSAGE_CHARS - 1).collect();
    out.push('…');
    out
}

/// Resolves once the stop flag is raised (never, if its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::plan::Plans;
    use crate::template::Vars;

    const TWO_WATCHES: &str = r#"
targets: { test: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTraffic:
    checks:
      - { name: first, http: { target: test, path: /a }, repeat: { every: 1s, for: 10s } }
      - { name: second, http: { target: test, path: /b }, repeat: { every: 1s, for: 10s } }
"#;

    fn plan(text: &str) -> Plan {
        let config = crate::Config::parse(text).unwrap();
        let targets = crate::suite::build_targets(&config).unwrap();
        let plans = Plans::build(&config, &targets).unwrap();
        plans.get(Stage::AfterAllowTraffic).unwrap().clone()
    }

    fn ctx() -> Arc<RunContext> {
        Arc::new(RunContext {
            vars: Vars::new("gl-1", "d-1", "AfterAllowTraffic", &Default::default()),
            redactor: crate::redact::Redactor::default(),
            aws: Arc::new(crate::aws::Aws::new()),
            progress: None,
        })
    }

    /// A runner that counts its runs and answers `passed`, or panics on the runs `panics_on`
    /// names (with a message that must never reach a report).
    fn counting(calls: Arc<AtomicU32>, panics_on: Option<u32>) -> Runner {
        Arc::new(move |_check, _ctx, _end| {
            let calls = Arc::clone(&calls);
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if Some(n) == panics_on {
                    panic!("secret sk_live_PANIC in a panic message");
                }
                (Ran::from(Outcome::Passed), 1)
            })
        })
    }

    fn state_for(plan: &Plan, names: &[&str], seq: u32, started_ms: u64) -> WatchState {
        WatchState {
            v: STATE_VERSION,
            run_id: "gl-1".to_owned(),
            stage: "AfterAllowTraffic".to_owned(),
            seq,
            started_ms,
            done: Vec::new(),
            repeats: names
                .iter()
                .map(|name| {
                    let check = plan.checks.iter().find(|c| c.name == *name).unwrap();
                    RepeatState::new(name, check.repeat.as_ref().unwrap())
                })
                .collect(),
        }
    }

    fn now_ms() -> u64 {
        crate::budget::epoch_ms(SystemTime::now())
    }

    #[tokio::test(start_paused = true)]
    async fn a_state_that_does_not_match_the_config_runs_nothing_then_or_later() {
        let plan = plan(TWO_WATCHES);
        let calls = Arc::new(AtomicU32::new(0));
        // The config now watches two checks; the state knows one (a config changed mid-watch).
        let state = state_for(&plan, &["first"], 1, now_ms());
        let step = run_with(
            &plan,
            ctx(),
            Duration::from_secs(60),
            Some((state, None)),
            "gl-1",
            Stage::AfterAllowTraffic,
            counting(Arc::clone(&calls), None),
        )
        .await;
        assert!(matches!(step, Err(StateError::Mismatch(_))), "{step:?}");
        // Long after the answer, nothing the call started has run.
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        // The same with figures the config does not say (a state claiming more runs).
        let mut state = state_for(&plan, &["first", "second"], 1, now_ms());
        state.repeats[0].figures.planned = u32::MAX;
        let step = run_with(
            &plan,
            ctx(),
            Duration::from_secs(60),
            Some((state, None)),
            "gl-1",
            Stage::AfterAllowTraffic,
            counting(Arc::clone(&calls), None),
        )
        .await;
        assert!(matches!(step, Err(StateError::Mismatch(_))), "{step:?}");
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_or_stale_chain_is_refused() {
        let plan = plan(TWO_WATCHES);
        let calls = Arc::new(AtomicU32::new(0));
        let run = |state: WatchState, cap: Option<Duration>| {
            let plan = plan.clone();
            let calls = Arc::clone(&calls);
            async move {
                run_with(
                    &plan,
                    ctx(),
                    Duration::from_secs(30),
                    Some((state, cap)),
                    "gl-1",
                    Stage::AfterAllowTraffic,
                    counting(calls, None),
                )
                .await
            }
        };
        let three_days = 3 * 24 * 3600 * 1000;
        let stale = state_for(&plan, &["first", "second"], 1, now_ms() - three_days);
        let step = run(stale, None).await;
        assert!(
            matches!(&step, Err(StateError::Unbounded(why)) if why.contains("started 3days ago")),
            "{step:?}"
        );
        let hops = state_for(&plan, &["first", "second"], 4_000_000, now_ms());
        let step = run(hops, None).await;
        assert!(
            matches!(&step, Err(StateError::Unbounded(why)) if why.contains("handed on 4000000 times")),
            "{step:?}"
        );
        let future = state_for(&plan, &["first", "second"], 1, now_ms() + 3_600_000);
        assert!(matches!(
            run(future, None).await,
            Err(StateError::Unbounded(_))
        ));
        // CodeDeploy's hour caps a chain whatever `for` says.
        let limits = ChainLimits::of(
            &plan,
            Duration::from_secs(30),
            Some(Duration::from_secs(3600)),
        )
        .unwrap();
        assert_eq!(limits.max_age, Duration::from_secs(10) + CHAIN_SLACK);
        assert_eq!(limits.max_hops, 11 + 11 + 31 + 2);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_state_for_a_stage_with_nothing_repeating_is_refused() {
        let plan = plan(
            "targets: { test: { url: \"http://127.0.0.1:9\" } }\nstages: { AfterAllowTraffic: { checks: [ { name: once, http: { target: test, path: / } } ] } }",
        );
        let calls = Arc::new(AtomicU32::new(0));
        let mut state = state_for(&plan, &[], 1, now_ms());
        state.done.push(DoneCheck {
            name: "once".to_owned(),
            outcome: "passed".to_owned(),
            message: "ok".to_owned(),
        });
        let step = run_with(
            &plan,
            ctx(),
            Duration::from_secs(30),
            Some((state, None)),
            "gl-1",
            Stage::AfterAllowTraffic,
            counting(Arc::clone(&calls), None),
        )
        .await;
        assert!(matches!(step, Err(StateError::NoWatch)), "{step:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_repeated_run_is_an_error_with_a_fixed_text_and_siblings_report() {
        let plan = plan(TWO_WATCHES);
        let calls = Arc::new(AtomicU32::new(0));
        let step = run_with(
            &plan,
            ctx(),
            Duration::from_secs(600),
            None,
            "gl-1",
            Stage::AfterAllowTraffic,
            // The third run overall panics: one of the two checks, on its second run.
            counting(Arc::clone(&calls), Some(2)),
        )
        .await;
        let Ok(WatchStep::Done(results)) = step else {
            panic!("decided: {step:?}")
        };
        assert_eq!(results.len(), 2, "every check's result is kept");
        // The panicking run counts as one run that could not run, with the fixed text; the
        // check goes on (error_limit 3) and so does its sibling.
        let recent: Vec<&RunRecord> = results
            .iter()
            .filter_map(|r| r.repeat.as_ref())
            .flat_map(|f| f.recent.iter())
            .filter(|run| run.outcome == "error")
            .collect();
        assert_eq!(recent.len(), 1, "{results:#?}");
        assert_eq!(recent[0].message, PANICKED);
        let text = format!("{results:?}");
        assert!(!text.contains("sk_live_PANIC"), "{text}");
        assert!(!text.contains("does not parse"), "{text}");
        assert!(
            results.iter().all(|r| r.outcome.is_passed()),
            "{results:#?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            22,
            "every planned run of both checks"
        );
    }

    #[test]
    fn the_state_stays_small_however_long_the_watch() {
        // A day of runs a minute apart, each with a long message, for three checks.
        let repeat: RepeatSpec = serde_norway::from_str("{ every: 1m, for: 24h }").unwrap();
        let mut repeats = Vec::new();
        for name in ["green 5xx", "payment round trip", "p99"] {
            let mut state = RepeatState::new(name, &repeat);
            for index in 0..repeat.runs() {
                state.figures.runs += 1;
                push_recent(
                    &mut state.figures,
                    RunRecord {
                        index,
                        at: "2026-11-28T20:00:00Z".to_owned(),
                        outcome: "failed".to_owned(),
                        message: cut(&"status: expected 200, got 503 ".repeat(40)),
                    },
                );
            }
            repeats.push(state);
        }
        let state = WatchState {
            v: STATE_VERSION,
            run_id: "gl-0123456789abcdef".to_owned(),
            stage: "AfterAllowTraffic".to_owned(),
            seq: 200,
            started_ms: 1_795_000_000_000,
            done: vec![DoneCheck {
                name: "health".to_owned(),
                outcome: "passed".to_owned(),
                message: "ok".to_owned(),
            }],
            repeats,
        };
        assert_eq!(state.repeats[0].figures.runs, 1441);
        assert_eq!(state.repeats[0].figures.recent.len(), RECENT_RUNS);
        let size = state.to_value().to_string().len();
        assert!(size < 8 * 1024, "{size} bytes");
        // And it reads back as this execution's.
        let back = WatchState::resume(
            &state.to_value(),
            "gl-0123456789abcdef",
            Stage::AfterAllowTraffic,
        )
        .unwrap();
        assert_eq!(back, state);
        assert!(matches!(
            WatchState::resume(&state.to_value(), "gl-other", Stage::AfterAllowTraffic),
            Err(StateError::Foreign(_))
        ));
    }
}
