//! What a watch carries from one invocation to the next, and what the next invocation will
//! believe of it. The state holds counts and the last [`RECENT_RUNS`] runs of each repeating
//! check, with their messages cut short, so it stays a few KB however long the watch. A
//! carried state is admitted only when it matches the plan (planned runs and limits from the
//! config, never from the state) and its chain is within the config's bounds of age and hops.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::repeat::RepeatSpec;
use crate::outcome::{RepeatFigures, RunRecord};
use crate::plan::Plan;
use crate::stage::Stage;

/// The state's format; a state of another version is refused.
pub(crate) const STATE_VERSION: u8 = 1;

/// Runs of each repeating check the state (and the final report) keeps.
pub(crate) const RECENT_RUNS: usize = 10;

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
    pub name: String,
    /// `passed`, `failed` or `error`.
    pub outcome: String,
    /// Its message, cut short.
    pub message: String,
}

/// A repeating check's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepeatState {
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

/// Time a chain of invocations may outlive its longest `for`: one more invocation (Lambda's
/// 15-minute maximum) for the last run and the report.
pub(crate) const CHAIN_SLACK: Duration = Duration::from_secs(15 * 60);

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
pub(super) fn admit_against(plan: &Plan, state: &WatchState) -> Result<(), StateError> {
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

impl RepeatState {
    pub(super) fn new(name: &str, repeat: &RepeatSpec) -> Self {
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

pub(super) fn push_recent(figures: &mut RepeatFigures, record: RunRecord) {
    figures.recent.push(record);
    if figures.recent.len() > RECENT_RUNS {
        let extra = figures.recent.len() - RECENT_RUNS;
        figures.recent.drain(..extra);
    }
}

/// Text for the state, which leaves the process (ECS's hookDetails, a continuation's payload):
/// scrubbed of every secret first, then cut.
pub(super) fn quote(redactor: &crate::redact::Redactor, text: &str) -> String {
    cut(&redactor.scrub(text))
}

pub(super) fn cut(text: &str) -> String {
    if text.chars().count() <= MESSAGE_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MESSAGE_CHARS - 1).collect();
    out.push('…');
    out
}
