//! The stage executor: one invocation's share of a stage. Single checks run once (in the
//! first invocation) through the job pool; repeating checks run as watches, each in its own
//! task of a set that ends with the call. What a watch hands to the next invocation, and what
//! is believed of a carried one, is `state`; one check's watch is `watching`.
//!
//! A stage's verdict waits for every repeating check, except that a required check failing
//! (a single check, or a repeating one past its `failure_limit`) fails the stage at once.

mod state;
mod watching;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use state::{ChainLimits, admit_against, push_recent, quote};
pub(crate) use state::{DoneCheck, RepeatState, STATE_VERSION, StateError, WatchState};
use watching::{Watching, repeat_result};

use crate::check::{Attempted, PlannedCheck, RunContext};
use crate::outcome::{CheckResult, Outcome, RunRecord};
use crate::plan::Plan;
use crate::pool::{Job, PANICKED, run_jobs};
use crate::stage::Stage;

/// What one invocation of a watched stage came to.
#[derive(Debug)]
pub(crate) enum WatchStep {
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

/// How a stage's single runs are made: the check itself in production, anything in tests.
pub(crate) type Runner = Arc<
    dyn for<'a> Fn(&'a PlannedCheck, Arc<RunContext>, Instant) -> BoxFuture<'a, Attempted>
        + Send
        + Sync,
>;

fn check_runner() -> Runner {
    Arc::new(|check, ctx, end| Box::pin(check.run(ctx, end)))
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
    // Whose state it is was settled when it was read (its seal binds the execution and stage,
    // and `WatchState::resume` checks the run id); what it may claim is settled here.
    if let Some((state, cap)) = &resume {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::repeat::RepeatSpec;
    use crate::outcome::Ran;
    use state::cut;
    use state::{CHAIN_SLACK, RECENT_RUNS};
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
                Attempted {
                    ran: Ran::from(Outcome::Passed),
                    attempts: 1,
                }
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
