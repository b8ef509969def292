//! The `probe` check: many requests at a fixed concurrency, latencies in an HDR histogram,
//! optionally interleaved with the same requests to a baseline (blue) so that noise on the
//! path hits both alike, and judged on percentiles, error rate, regression against the
//! baseline and, if asked, a one-sided Mann-Whitney U test.
//!
//! Memory stays flat however many requests it sends: a histogram per side is a fixed size, and
//! the samples kept for the Mann-Whitney test are a systematic sample of at most
//! [`MAX_SAMPLES`] per side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::check::RunContext;
use crate::check::request::RequestTemplate;
use crate::outcome::{LatencyStats, Mismatch, Outcome, ProbeStats, Ran};
use crate::transport::conn::{Conn, Dialer};

/// The most latency samples kept per side for the Mann-Whitney test.
pub(crate) const MAX_SAMPLES: u64 = 10_000;

/// Time kept back from the stage deadline to judge and report the figures.
const FINISH_MARGIN: Duration = Duration::from_millis(250);

/// The longest latency the histogram tracks (longer ones are recorded as this).
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;

/// A probe ready to run: its request, counts, and the limits and judge it is held to.
#[derive(Debug, Clone)]
pub(crate) struct ProbeCheck {
    /// Check name, for progress.
    pub name: String,
    /// The request to the probed target.
    pub request: RequestTemplate,
    /// The same request to the baseline target.
    pub baseline: Option<RequestTemplate>,
    /// In flight at once.
    pub concurrency: usize,
    /// Statuses that count as success (any 2xx when empty).
    pub ok_status: Vec<u16>,
    /// What the figures are judged against.
    pub limits: Limits,
}

/// What a probe's figures must satisfy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limits {
    /// Requests per side.
    pub requests: u64,
    /// Percentile limits on the probed target.
    pub max_p50: Option<Duration>,
    /// 95th percentile limit.
    pub max_p95: Option<Duration>,
    /// 99th percentile limit.
    pub max_p99: Option<Duration>,
    /// Highest acceptable error fraction.
    pub max_error_rate: f64,
    /// Highest acceptable p95 regression against the baseline, as a fraction.
    pub max_p95_regression: Option<f64>,
    /// Regressions smaller than this are noise.
    pub min_regression: Duration,
    /// Mann-Whitney judgment settings.
    pub judge: Option<Judge>,
}

/// Mann-Whitney U judgment settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judge {
    /// e.g. 0.98: fail only when p < 0.02.
    pub confidence: f64,
    /// Fail only when the target median ≥ (1 + tolerance) × the baseline median.
    pub tolerance: f64,
}

/// What one side recorded.
struct Side {
    histogram: Histogram<u64>,
    done: u64,
    errors: u64,
    first_error: Option<String>,
    samples: Vec<f64>,
}

impl Side {
    fn new() -> Result<Side, String> {
        Ok(Side {
            // 3 significant figures from 1 µs to an hour: a fixed size whatever the count.
            histogram: Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
                .map_err(|err| format!("cannot create a latency histogram: {err}"))?,
            done: 0,
            errors: 0,
            first_error: None,
            samples: Vec::new(),
        })
    }

    fn stats(&self, elapsed: Duration) -> LatencyStats {
        let ms = |q: f64| {
            if self.histogram.is_empty() {
                0.0
            } else {
                self.histogram.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let seconds = elapsed.as_secs_f64();
        LatencyStats {
            requests: self.done,
            errors: self.errors,
            error_rate: if self.done == 0 {
                0.0
            } else {
                self.errors as f64 / self.done as f64
            },
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: if self.histogram.is_empty() {
                0.0
            } else {
                self.histogram.max() as f64 / 1000.0
            },
            rps: if seconds > 0.0 {
                self.done as f64 / seconds
            } else {
                0.0
            },
        }
    }
}

impl ProbeCheck {
    fn success(&self, status: u16) -> bool {
        if self.ok_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.ok_status.contains(&status)
        }
    }

    /// Send every request (or as many as fit before `deadline`) and judge them.
    pub(crate) async fn run(
        &self,
        ctx: &RunContext,
        redactor: &mut crate::redact::Redactor,
        deadline: Instant,
    ) -> Ran {
        let sides_count: u64 = if self.baseline.is_some() { 2 } else { 1 };
        let total = self.limits.requests * sides_count;
        let stride = if self.limits.judge.is_some() {
            self.limits.requests.div_ceil(MAX_SAMPLES).max(1)
        } else {
            0
        };
        let plans: Vec<&RequestTemplate> = std::iter::once(&self.request)
            .chain(&self.baseline)
            .collect();
        let mut dialers = Vec::new();
        for template in &plans {
            let request = match template.render(&ctx.vars) {
                Ok(request) => request,
                Err(problem) => {
                    return Outcome::error(format!("cannot build the request: {problem}")).into();
                }
            };
            redactor.learn_request(&request.headers);
            match Dialer::new(&template.target, &request) {
                Ok(dialer) => dialers.push((dialer, request.timeout)),
                Err(why) => return Outcome::error(why).into(),
            }
        }
        let sides = match plans
            .iter()
            .map(|_| Side::new().map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(sides) => sides,
            Err(why) => return Outcome::error(why).into(),
        };
        let shared = Arc::new(Shared {
            next: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            sides,
        });
        if let Some(progress) = &ctx.progress {
            progress.started(&self.name, total);
        }
        let started = Instant::now();
        // Stop a little before the stage deadline, so the figures are judged and reported
        // before the runner cuts the check off.
        let stop = deadline.checked_sub(FINISH_MARGIN).unwrap_or(started);
        let mut workers = JoinSet::new();
        for _ in 0..self
            .concurrency
            .min(usize::try_from(total).unwrap_or(usize::MAX))
        {
            let shared = Arc::clone(&shared);
            let dialers = dialers.clone();
            let progress = ctx.progress.clone();
            let probe = self.clone();
            workers.spawn(async move {
                // Spread the progress updates: about a hundred per probe.
                let every = (total / 100).max(1);
                // This worker's own connection to each side, kept open between requests.
                let mut conns: Vec<Option<Conn>> = dialers.iter().map(|_| None).collect();
                loop {
                    let index = shared.next.fetch_add(1, Ordering::Relaxed);
                    if index >= total || Instant::now() >= stop {
                        break;
                    }
                    // Alternate target and baseline, so both see the same moments.
                    let side = usize::try_from(index % sides_count).unwrap_or(0);
                    let seq = index / sides_count;
                    let (dialer, timeout) = &dialers[side];
                    let began = Instant::now();
                    let until = (began + *timeout).min(stop);
                    let result =
                        tokio::time::timeout_at(until, dialer.exchange(&mut conns[side])).await;
                    let latency = began.elapsed();
                    let failure = match result {
                        Ok(Ok(answer)) if answer.truncated => Some(format!(
                            "body larger than {} bytes",
                            probe.request.max_body_bytes
                        )),
                        Ok(Ok(answer)) if !probe.success(answer.status) => {
                            Some(format!("status {}", answer.status))
                        }
                        Ok(Ok(_)) => None,
                        Ok(Err(message)) => Some(message),
                        // Cut off by the stage's stop time, not by its own timeout: in flight
                        // when the probe ended, so neither answered nor failed.
                        Err(_) if until < began + *timeout => break,
                        Err(_) => {
                            // The exchange was abandoned mid-way: its connection is unusable.
                            conns[side] = None;
                            Some(format!(
                                "no response within {}",
                                humantime::format_duration(*timeout)
                            ))
                        }
                    };
                    if let Ok(mut record) = shared.sides[side].lock() {
                        record.done += 1;
                        match failure {
                            Some(why) => {
                                record.errors += 1;
                                record.first_error.get_or_insert(why);
                            }
                            None => {
                                let micros = u64::try_from(latency.as_micros())
                                    .unwrap_or(u64::MAX)
                                    .clamp(1, MAX_TRACKED_MICROS);
                                record.histogram.saturating_record(micros);
                                if stride > 0 && seq.is_multiple_of(stride) {
                                    record.samples.push(latency.as_secs_f64() * 1000.0);
                                }
                            }
                        }
                    }
                    let done = shared.completed.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(progress) = &progress
                        && (done.is_multiple_of(every) || done == total)
                    {
                        progress.advanced(&probe.name, done);
                    }
                }
            });
        }
        // Requests still in flight at the stop time are abandoned (and not counted).
        let drained =
            tokio::time::timeout_at(stop, async { while workers.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
        let elapsed = started.elapsed();
        if let Some(progress) = &ctx.progress {
            progress.finished(&self.name);
        }
        let sides: Vec<Side> = match Arc::try_unwrap(shared) {
            Ok(shared) => shared
                .sides
                .into_iter()
                .map(|side| {
                    side.into_inner()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                })
                .collect(),
            Err(_) => return Outcome::error("probe workers outlived the probe").into(),
        };
        self.limits.judge_sides(&sides, elapsed)
    }
}

impl Limits {
    /// Judge what the sides recorded: the count, error rate, percentiles, regression against
    /// the baseline and the judge. Pure, so every rule is unit-tested.
    fn judge_sides(&self, sides: &[Side], elapsed: Duration) -> Ran {
        let target = &sides[0];
        let baseline = sides.get(1);
        let mut stats = ProbeStats {
            target: target.stats(elapsed),
            baseline: baseline.map(|side| side.stats(elapsed)),
            p95_ratio: None,
            judgment: None,
        };
        let mut failures = Vec::new();
        let completed: u64 = sides.iter().map(|side| side.done).sum();
        let wanted = self.requests * sides.len() as u64;
        if completed < wanted {
            failures.push(Mismatch::new(
                "requests",
                wanted.to_string(),
                format!("{completed} before the stage budget ran out"),
            ));
        }
        let t = &stats.target;
        if t.error_rate > self.max_error_rate {
            failures.push(Mismatch::new(
                "error rate",
                format!("at most {:.2} %", self.max_error_rate * 100.0),
                format!(
                    "{:.2} % ({} of {}; first: {})",
                    t.error_rate * 100.0,
                    t.errors,
                    t.requests,
                    target.first_error.as_deref().unwrap_or("?")
                ),
            ));
        }
        for (label, limit, actual) in [
            ("p50", self.max_p50, t.p50_ms),
            ("p95", self.max_p95, t.p95_ms),
            ("p99", self.max_p99, t.p99_ms),
        ] {
            if let Some(limit) = limit {
                let limit_ms = limit.as_secs_f64() * 1000.0;
                if actual > limit_ms {
                    failures.push(Mismatch::new(
                        format!("{label} latency"),
                        format!("at most {}", humantime::format_duration(limit)),
                        format!("{actual:.1} ms"),
                    ));
                }
            }
        }
        if let (Some(base), Some(base_side)) = (&stats.baseline, baseline) {
            if base.p95_ms > 0.0 {
                stats.p95_ratio = Some(t.p95_ms / base.p95_ms);
            }
            if let Some(regression) = self.max_p95_regression {
                let allowed = base.p95_ms * (1.0 + regression);
                let floor_ms = self.min_regression.as_secs_f64() * 1000.0;
                if t.p95_ms > allowed && t.p95_ms - base.p95_ms > floor_ms {
                    failures.push(Mismatch::new(
                        "p95 against baseline",
                        format!(
                            "at most {:.0} % of the baseline's {:.1} ms ({:.1} ms)",
                            (1.0 + regression) * 100.0,
                            base.p95_ms,
                            allowed
                        ),
                        format!(
                            "{:.1} ms ({:.0} %)",
                            t.p95_ms,
                            t.p95_ms / base.p95_ms.max(f64::MIN_POSITIVE) * 100.0
                        ),
                    ));
                }
            }
            if let Some(judge) = self.judge {
                match super::judge::judge(
                    &target.samples,
                    &base_side.samples,
                    judge.confidence,
                    judge.tolerance,
                ) {
                    Ok(judgment) => {
                        if judgment.relative_shift_lower >= judge.tolerance {
                            failures.push(Mismatch::new(
                                "judge mann-whitney",
                                format!(
                                    "green not slower than blue by {:.0} % or more, at {} confidence",
                                    judge.tolerance * 100.0,
                                    judge.confidence
                                ),
                                format!(
                                    "slower by at least {:.1} % ({:.2} ms; estimate {:.2} ms, median ratio {:.2}; Mann-Whitney p {})",
                                    judgment.relative_shift_lower * 100.0,
                                    judgment.shift_lower_ms,
                                    judgment.shift_ms,
                                    judgment.effect,
                                    crate::outcome::format_p(judgment.p_value)
                                ),
                            ));
                        }
                        // The tail tests get a quarter of the error budget: a false alarm
                        // costs a rollback, and the shift bound already spends its share.
                        let alpha = (1.0 - judge.confidence) / 4.0;
                        if judgment.tail_p < alpha {
                            failures.push(Mismatch::new(
                                "judge tail",
                                format!(
                                    "about {:.1} green requests slower than blue's slowest plus the tolerance ({:.1} ms), as chance gives at most",
                                    judgment.tail_expected, judgment.tail_threshold_ms
                                ),
                                format!(
                                    "{} of {} (p {})",
                                    judgment.tail_count,
                                    judgment.samples.0,
                                    crate::outcome::format_p(judgment.tail_p)
                                ),
                            ));
                        } else if let Some(far) = judgment.far_threshold_ms
                            && judgment.far_p < alpha
                            && judgment.tail_p < super::judge::FAR_GATE
                        {
                            failures.push(Mismatch::new(
                                "judge tail",
                                format!(
                                    "about {:.2} green requests beyond {far:.1} ms, where blue's own tail (fitted) puts them",
                                    judgment.far_expected
                                ),
                                format!(
                                    "{} of {} (p {}; {} above blue's slowest plus the tolerance, exact p {})",
                                    judgment.far_count,
                                    judgment.samples.0,
                                    crate::outcome::format_p(judgment.far_p),
                                    judgment.tail_count,
                                    crate::outcome::format_p(judgment.tail_p)
                                ),
                            ));
                        }
                        stats.judgment = Some(judgment);
                    }
                    Err(why) => failures.push(Mismatch::new(
                        "judge mann-whitney",
                        format!(
                            "at least {} answered requests per side",
                            crate::config::checks::MIN_JUDGE_SAMPLES
                        ),
                        why,
                    )),
                }
            }
        }
        let outcome = if failures.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed { failures }
        };
        Ran {
            outcome,
            stats: Some(stats),
            metric: None,
        }
    }
}

struct Shared {
    next: AtomicU64,
    completed: AtomicU64,
    sides: Vec<Mutex<Side>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_come_out_in_milliseconds() {
        let mut side = Side::new().unwrap();
        for ms in 1..=100u64 {
            side.histogram.saturating_record(ms * 1000);
            side.done += 1;
        }
        side.done += 1;
        side.errors += 1;
        let stats = side.stats(Duration::from_secs(2));
        assert!((stats.p50_ms - 50.0).abs() < 0.1, "{stats:?}");
        assert!((stats.p99_ms - 99.0).abs() < 0.1, "{stats:?}");
        assert!((stats.max_ms - 100.0).abs() < 0.1, "{stats:?}");
        assert!((stats.rps - 50.5).abs() < 1e-9, "{stats:?}");
        assert!((stats.error_rate - 1.0 / 101.0).abs() < 1e-9, "{stats:?}");
    }

    /// A side that recorded `latencies_ms` answered requests (histogram and judge samples)
    /// and `errors` failed ones.
    fn side(latencies_ms: &[f64], errors: u64) -> Side {
        let mut side = Side::new().unwrap();
        for &ms in latencies_ms {
            side.histogram.saturating_record((ms * 1000.0) as u64);
            side.samples.push(ms);
            side.done += 1;
        }
        if errors > 0 {
            side.done += errors;
            side.errors = errors;
            side.first_error = Some("status 503".into());
        }
        side
    }

    /// 200 latencies spread evenly around `center` ms.
    fn spread(center: f64) -> Vec<f64> {
        (0..200)
            .map(|i| center + f64::from(i % 20) * 0.05)
            .collect()
    }

    fn whats(ran: &Ran) -> Vec<String> {
        match &ran.outcome {
            Outcome::Passed => Vec::new(),
            Outcome::Failed { failures } => failures.iter().map(|m| m.what.clone()).collect(),
            Outcome::Error { error, .. } => vec![error.clone()],
        }
    }

    fn limits() -> Limits {
        Limits {
            requests: 200,
            min_regression: Duration::from_millis(2),
            ..Limits::default()
        }
    }

    #[test]
    fn percentile_limits_fail_only_when_exceeded() {
        let sides = [side(&spread(10.0), 0)];
        let elapsed = Duration::from_secs(1);
        let ok = Limits {
            max_p50: Some(Duration::from_millis(20)),
            max_p99: Some(Duration::from_millis(20)),
            ..limits()
        };
        assert!(whats(&ok.judge_sides(&sides, elapsed)).is_empty());
        let tight = Limits {
            max_p95: Some(Duration::from_millis(5)),
            ..limits()
        };
        let ran = tight.judge_sides(&sides, elapsed);
        assert_eq!(whats(&ran), ["p95 latency"]);
        let stats = ran.stats.unwrap();
        assert!(stats.baseline.is_none() && stats.judgment.is_none());
    }

    #[test]
    fn the_error_rate_names_the_first_error() {
        let sides = [side(&spread(10.0), 4)];
        let ran = Limits {
            requests: 204,
            max_error_rate: 0.01,
            ..limits()
        }
        .judge_sides(&sides, Duration::from_secs(1));
        let Outcome::Failed { failures } = &ran.outcome else {
            panic!("{:?}", ran.outcome)
        };
        assert_eq!(failures[0].what, "error rate");
        assert!(
            failures[0].actual.contains("4 of 204; first: status 503"),
            "{failures:?}"
        );
        // Within the allowed rate: passes.
        let ran = Limits {
            requests: 204,
            max_error_rate: 0.05,
            ..limits()
        }
        .judge_sides(&sides, Duration::from_secs(1));
        assert!(whats(&ran).is_empty(), "{:?}", ran.outcome);
    }

    #[test]
    fn fewer_requests_than_asked_fail_the_probe() {
        let sides = [side(&spread(10.0)[..150], 0), side(&spread(10.0)[..150], 0)];
        let ran = limits().judge_sides(&sides, Duration::from_secs(1));
        let Outcome::Failed { failures } = &ran.outcome else {
            panic!("{:?}", ran.outcome)
        };
        assert_eq!(failures[0].what, "requests");
        assert_eq!(failures[0].expected, "400");
        assert!(failures[0].actual.starts_with("300 before"), "{failures:?}");
    }

    #[test]
    fn a_p95_regression_counts_only_above_the_noise_floor() {
        let with = |regression: f64| Limits {
            max_p95_regression: Some(regression),
            ..limits()
        };
        let elapsed = Duration::from_secs(1);
        // 1 ms slower is 10 % over a 10 ms baseline, but under the 2 ms floor: noise.
        let sides = [side(&spread(11.0), 0), side(&spread(10.0), 0)];
        let ran = with(0.05).judge_sides(&sides, elapsed);
        assert!(whats(&ran).is_empty(), "{:?}", ran.outcome);
        let ratio = ran.stats.unwrap().p95_ratio.unwrap();
        assert!((ratio - 1.1).abs() < 0.01, "{ratio}");
        // 5 ms slower: over both the fraction and the floor.
        let sides = [side(&spread(15.0), 0), side(&spread(10.0), 0)];
        assert_eq!(
            whats(&with(0.25).judge_sides(&sides, elapsed)),
            ["p95 against baseline"]
        );
        // Within the allowed fraction.
        assert!(whats(&with(0.6).judge_sides(&sides, elapsed)).is_empty());
    }

    #[test]
    fn the_judge_needs_both_significance_and_size() {
        let judge = |tolerance: f64| Limits {
            judge: Some(Judge {
                confidence: 0.98,
                tolerance,
            }),
            ..limits()
        };
        let elapsed = Duration::from_secs(1);
        let same = [side(&spread(10.0), 0), side(&spread(10.0), 0)];
        assert!(whats(&judge(0.1).judge_sides(&same, elapsed)).is_empty());
        // 50 % slower: significant and over the tolerance.
        let slow = [side(&spread(15.0), 0), side(&spread(10.0), 0)];
        let ran = judge(0.1).judge_sides(&slow, elapsed);
        // Slower by at least the tolerance, and every green request beyond blue's slowest.
        assert_eq!(whats(&ran), ["judge mann-whitney", "judge tail"]);
        let judgment = ran.stats.unwrap().judgment.unwrap();
        assert!(
            judgment.p_value < 0.02 && judgment.effect > 1.4,
            "{judgment:?}"
        );
        // A slow tail (2 % of green 150 ms slower) moves no median but fails the tail test.
        let mut tail = spread(10.0);
        for value in tail.iter_mut().step_by(25) {
            *value += 150.0;
        }
        let tailed = [side(&tail, 0), side(&spread(10.0), 0)];
        assert_eq!(
            whats(&judge(0.1).judge_sides(&tailed, elapsed)),
            ["judge tail"]
        );
        // Three requests 150 ms slower: too few for the exact count alone, but far beyond
        // blue's own fitted tail (uniform 20 to 24 ms).
        let even: Vec<f64> = (0..400)
            .map(|i| 20.0 + ((i * 37) % 400) as f64 / 100.0)
            .collect();
        let mut far = even.clone();
        for value in far.iter_mut().step_by(150) {
            *value += 150.0;
        }
        let ran = judge(0.1).judge_sides(&[side(&far, 0), side(&even, 0)], elapsed);
        assert_eq!(whats(&ran), ["judge tail"]);
        let Outcome::Failed { failures } = &ran.outcome else {
            panic!("{:?}", ran.outcome)
        };
        assert!(
            failures[0].actual.starts_with("3 of 400 (p ")
                && failures[0].expected.contains("blue's own tail (fitted)"),
            "{failures:?}"
        );
        let ran = judge(0.1).judge_sides(&[side(&even, 0), side(&even, 0)], elapsed);
        assert!(whats(&ran).is_empty());
        // A green 5 % slower, inside the 10 % tolerance: no alarm of either kind.
        let near: Vec<f64> = spread(10.0).iter().map(|v| v * 1.05).collect();
        let near = [side(&near, 0), side(&spread(10.0), 0)];
        assert!(whats(&judge(0.1).judge_sides(&near, elapsed)).is_empty());
        // The same shift inside a 60 % tolerance: significant, but not large enough to fail.
        assert!(whats(&judge(0.6).judge_sides(&slow, elapsed)).is_empty());
        // Too few answered requests to judge: a failure that says so, not a silent pass.
        let few = [side(&spread(10.0)[..20], 0), side(&spread(10.0)[..20], 0)];
        let ran = Limits {
            requests: 20,
            ..judge(0.1)
        }
        .judge_sides(&few, elapsed);
        let Outcome::Failed { failures } = &ran.outcome else {
            panic!("{:?}", ran.outcome)
        };
        assert_eq!(failures[0].what, "judge mann-whitney");
        assert!(failures[0].actual.contains("20 and 20"), "{failures:?}");
    }
}
