//! The concurrent runner: every check of a stage at once (up to a cap), under one budget,
//! with panics and overruns turned into outcomes instead of lost reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::check::Attempted;
use crate::outcome::{CheckResult, Outcome};

/// A unit of work for [`run_jobs`]: a check's identity and the future that runs it.
pub(crate) struct Job {
    pub name: String,
    /// Check kind label.
    pub kind: &'static str,
    /// Whether a failure fails the stage.
    pub required: bool,
    /// Runs the check; yields the outcome and the number of attempts.
    pub work: BoxFuture<'static, Attempted>,
}

/// Run jobs concurrently (at most `concurrency` at once) until `deadline`.
///
/// Every job yields exactly one result, in input order: a panic becomes an `error` outcome, and
/// so does a job still running at the deadline (it is aborted, which drops its sockets).
pub(crate) async fn run_jobs(
    jobs: Vec<Job>,
    deadline: Instant,
    concurrency: usize,
) -> Vec<CheckResult> {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let mut index_of = HashMap::new();
    let mut meta = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.into_iter().enumerate() {
        meta.push((job.name, job.kind, job.required));
        let permits = Arc::clone(&permits);
        let work = job.work;
        let handle = set.spawn(async move {
            // The semaphore is never closed, so acquire only fails if it were; run anyway then.
            let _permit = permits.acquire_owned().await.ok();
            let began = Instant::now();
            let Attempted { ran, attempts } = work.await;
            (ran, attempts, began.elapsed())
        });
        index_of.insert(handle.id(), index);
    }

    let mut results: Vec<Option<CheckResult>> = vec![None; meta.len()];
    loop {
        match tokio::time::timeout_at(deadline, set.join_next_with_id()).await {
            Ok(Some(Ok((id, (mut ran, attempts, took))))) => {
                if let Some(&index) = index_of.get(&id) {
                    let (name, kind, required) = &meta[index];
                    results[index] = Some(
                        CheckResult::new(
                            name.clone(),
                            kind,
                            *required,
                            ran.outcome.clone(),
                            took,
                            attempts,
                        )
                        .with_figures(&mut ran),
                    );
                }
            }
            Ok(Some(Err(join_error))) => {
                if let Some(&index) = index_of.get(&join_error.id()) {
                    let (name, kind, required) = &meta[index];
                    // A fixed text: a panic's own message may quote anything, a secret included.
                    let why = if join_error.is_panic() {
                        PANICKED
                    } else {
                        "the check was cancelled"
                    };
                    results[index] = Some(CheckResult::new(
                        name.clone(),
                        kind,
                        *required,
                        Outcome::error(why),
                        started.elapsed(),
                        1,
                    ));
                }
            }
            Ok(None) => break,
            Err(_) => {
                // Abort and wait: nothing this stage started may still send once it answers.
                set.shutdown().await;
                break;
            }
        }
    }

    let budget = deadline.saturating_duration_since(started);
    results
        .into_iter()
        .zip(meta)
        .map(|(result, (name, kind, required))| {
            result.unwrap_or_else(|| {
                CheckResult::new(
                    name,
                    kind,
                    required,
                    Outcome::error(format!(
                        "did not finish within the stage budget of {} (raise the Lambda timeout or \
                         defaults.budget, or lower timeouts and retries)",
                        humantime::format_duration(Duration::from_millis(
                            u64::try_from(budget.as_millis()).unwrap_or(u64::MAX)
                        ))
                    )),
                    started.elapsed(),
                    1,
                )
            })
        })
        .collect()
}

/// What a check that panicked reports, single or repeated: never the panic's own message,
/// which may quote a response, a header or a secret.
pub(crate) const PANICKED: &str =
    "the check panicked; this is a bug in greenlight (please report it); the stage fails closed";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Ran;

    fn job(name: &str, work: impl std::future::Future<Output = Outcome> + Send + 'static) -> Job {
        Job {
            name: name.to_owned(),
            kind: "http",
            required: true,
            work: Box::pin(async move {
                Attempted {
                    ran: Ran::from(work.await),
                    attempts: 1,
                }
            }),
        }
    }

    #[tokio::test]
    async fn a_panic_becomes_an_error_outcome_and_others_still_finish() {
        let jobs = vec![
            job("fine", async { Outcome::Passed }),
            job("boom", async { panic!("index out of bounds") }),
            job("also fine", async { Outcome::Passed }),
        ];
        let results = run_jobs(jobs, Instant::now() + Duration::from_secs(5), 4).await;
        assert_eq!(results.len(), 3);
        assert!(results[0].outcome.is_passed());
        assert_eq!(results[1].name, "boom");
        assert!(matches!(&results[1].outcome, Outcome::Error { error, .. } if error == PANICKED));
        assert!(results[2].outcome.is_passed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_check_is_cut_off_at_the_deadline() {
        let jobs = vec![
            job("hangs", std::future::pending()),
            job("quick", async { Outcome::Passed }),
        ];
        let results = run_jobs(jobs, Instant::now() + Duration::from_secs(30), 4).await;
        assert!(
            matches!(&results[0].outcome, Outcome::Error { error, .. } if error.contains("stage budget of 30s"))
        );
        assert!(results[1].outcome.is_passed());
    }

    #[tokio::test(start_paused = true)]
    async fn checks_run_concurrently_up_to_the_cap() {
        let sleeper = || async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Outcome::Passed
        };
        let started = Instant::now();
        let jobs = (0..8).map(|i| job(&i.to_string(), sleeper())).collect();
        let results = run_jobs(jobs, Instant::now() + Duration::from_secs(60), 8).await;
        assert!(results.iter().all(|r| r.outcome.is_passed()));
        // Virtual time: 8 one-second checks at concurrency 8 take one second, not eight.
        assert_eq!(started.elapsed().as_secs(), 1);

        let started = Instant::now();
        let jobs = (0..8).map(|i| job(&i.to_string(), sleeper())).collect();
        run_jobs(jobs, Instant::now() + Duration::from_secs(60), 2).await;
        assert_eq!(started.elapsed().as_secs(), 4);
    }
}
