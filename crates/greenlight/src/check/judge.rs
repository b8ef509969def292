//! The probe's statistical judge of green against blue, on latency samples taken interleaved.
//!
//! Three views of the same samples, each answering a different question:
//! - Mann-Whitney U: is green stochastically slower at all? (reported, as Kayenta reports it);
//! - the Hodges-Lehmann shift with its one-sided confidence bound: by how much, at least? A
//!   regression is called only when green is slower by at least the tolerance *at the
//!   configured confidence*, so a green that is 5 % slower inside a 10 % tolerance is not
//!   failed because one run's point estimate came out at 11 %;
//! - a tail test: are green's requests above blue's slowest (plus the tolerance) more often
//!   than chance allows? A
//!   few slow requests (a lock, a cold cache, GC) move no median but this count. Under "no
//!   difference" the count follows a known distribution whatever the latencies' own
//!   distribution (P(K ≥ k) is about 2^-k for equal sides), so its p-value is exact (with the
//!   tolerance added to the threshold, an upper bound: the test stays valid). That
//!   exactness has a price: k slow green requests can never be surer than 2^-k, so a tail of
//!   2 % at 400 requests a side (8 slow ones, give or take 3) is caught only about half the
//!   time at the default confidence;
//! - a far-tail test, which also weighs *how far* beyond blue green's slow requests are. Blue's
//!   own tail is fitted (an exponential tail over its slowest 5 %, the peaks-over-threshold
//!   model of extreme-value statistics, with the scale's 99 % upper bound), and the "far"
//!   threshold is where that fit expects 1 green request in 100 probes. Two green requests
//!   beyond it are as unlikely as p = 5e-5 under the fit; but a fit is an assumption (a rare
//!   mode blue happened not to hit looks "far"), so the far rule also needs the exact count to
//!   be unusual at p < [`FAR_GATE`], which bounds its false alarms whatever the distribution.
//!   That combination catches the 2 % tail above in nearly every run at 400 a side.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::factorial::ln_binomial;
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

use crate::outcome::JudgeStats;

/// Samples per side the shift's confidence bound uses (a systematic subsample beyond this):
/// its cost grows with the product of the two sides.
const SHIFT_SAMPLES: usize = 1000;

/// The tail threshold is blue's `TAIL_RANK`-th slowest sample. The slowest: with the second,
/// P(K ≥ k) is (k + 2) 2^-(k+1), and the same slow green requests prove four times less.
const TAIL_RANK: u64 = 1;

/// The exact tail count's p-value below which the far-tail rule may fail a probe: about 3
/// green requests above blue's slowest with equal sides (chance: 1 run in 8). Whatever the
/// latencies' distribution, the far rule cannot fail more A/A runs than this share.
pub(crate) const FAR_GATE: f64 = 0.15;

/// How many green requests beyond the far threshold blue's fitted tail expects.
const FAR_EXPECTED: f64 = 0.01;

/// The confidence of the fitted tail scale's upper bound.
const FAR_SCALE_CONFIDENCE: f64 = 0.99;

/// Judge `target` (green) against `baseline` (blue), latencies in ms, at `confidence`; the
/// tail threshold allows the `tolerance` too (a uniformly slower green inside the tolerance is
/// no tail regression).
pub(crate) fn judge(
    target: &[f64],
    baseline: &[f64],
    confidence: f64,
    tolerance: f64,
) -> Result<JudgeStats, String> {
    let minimum = usize::try_from(crate::config::checks::MIN_JUDGE_SAMPLES).unwrap_or(50);
    if target.len() < minimum || baseline.len() < minimum {
        return Err(format!(
            "{} and {} (errors leave too few samples)",
            target.len(),
            baseline.len()
        ));
    }
    let (u, p_value) = mannwhitneyu(
        target,
        baseline,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        Alternative::Greater,
    )
    .map_err(|err| format!("the test could not run: {err}"))?;
    let baseline_median = median(baseline).max(f64::MIN_POSITIVE);
    let (shift, shift_lower) = shift_bound(target, baseline, confidence)?;
    let (tail_threshold, tail_count, tail_expected, tail_p) = tail(target, baseline, tolerance);
    let far = far_tail(target, baseline, tail_threshold);
    Ok(JudgeStats {
        judge: "mann-whitney",
        u,
        p_value,
        effect: median(target) / baseline_median,
        shift_ms: shift,
        shift_lower_ms: shift_lower,
        relative_shift_lower: shift_lower / baseline_median,
        tail_threshold_ms: tail_threshold,
        tail_count,
        tail_expected,
        tail_p,
        far_threshold_ms: far.map(|f| f.0),
        far_count: far.map_or(0, |f| f.1),
        far_expected: far.map_or(0.0, |f| f.2),
        far_p: far.map_or(1.0, |f| f.3),
        samples: (target.len(), baseline.len()),
    })
}

/// The far-tail count: blue's slowest 5 % (10 to 50 requests) fitted with an exponential tail
/// over the next-slowest request `u` (mean excess σ, taken at its 99 % upper bound: 2rσ/χ²),
/// the threshold where that fit expects [`FAR_EXPECTED`] green requests (never below the exact
/// tail's threshold), how many green requests are beyond it, that expectation, and the
/// Poisson p-value of the count. `None` when blue's slowest requests are all equal (latencies
/// coarser than their spread): no scale to fit.
fn far_tail(target: &[f64], baseline: &[f64], floor: f64) -> Option<(f64, u64, f64, f64)> {
    let mut sorted = baseline.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let r = (sorted.len() / 20)
        .clamp(10, 50)
        .min(sorted.len().saturating_sub(1));
    if r == 0 {
        return None;
    }
    let u = sorted[r];
    let mean_excess = sorted[..r].iter().map(|b| b - u).sum::<f64>() / r as f64;
    if !(mean_excess.is_finite() && mean_excess > 0.0) {
        return None;
    }
    let degrees = 2.0 * r as f64;
    let chi = ChiSquared::new(degrees)
        .ok()?
        .inverse_cdf(1.0 - FAR_SCALE_CONFIDENCE);
    let scale = degrees * mean_excess / chi;
    // Under the fit, P(a green request > u + y) = (r / (n + 1)) e^(-y / scale).
    let (n, m) = (baseline.len() as f64, target.len() as f64);
    let beyond_u = m * r as f64 / (n + 1.0);
    let threshold = (u + scale * (beyond_u / FAR_EXPECTED).ln()).max(floor);
    let expected = beyond_u * (-(threshold - u) / scale).exp();
    let count = target.iter().filter(|t| **t > threshold).count() as u64;
    Some((threshold, count, expected, poisson_tail(expected, count)))
}

/// P(N ≥ k) for N ~ Poisson(λ).
fn poisson_tail(lambda: f64, k: u64) -> f64 {
    let mut term = (-lambda).exp();
    let mut below = 0.0;
    for i in 0..k {
        below += term;
        term *= lambda / (i + 1) as f64;
    }
    (1.0 - below).clamp(0.0, 1.0)
}

/// The Hodges-Lehmann shift (the median of every green-minus-blue difference) and its
/// one-sided lower confidence bound, from the order statistics of the differences (the
/// Mann-Whitney-based interval, normal approximation).
fn shift_bound(target: &[f64], baseline: &[f64], confidence: f64) -> Result<(f64, f64), String> {
    let target = systematic(target, SHIFT_SAMPLES);
    let baseline = systematic(baseline, SHIFT_SAMPLES);
    let mut differences: Vec<f64> = target
        .iter()
        .flat_map(|t| baseline.iter().map(move |b| t - b))
        .collect();
    let count = differences.len();
    let (n, m) = (target.len() as f64, baseline.len() as f64);
    let z = Normal::standard().inverse_cdf(confidence);
    let spread = (n * m * (n + m + 1.0) / 12.0).sqrt();
    let lower_rank = ((n * m / 2.0 - z * spread).floor().max(0.0) as usize).min(count - 1);
    let (_, &mut lower, _) = differences.select_nth_unstable_by(lower_rank, f64::total_cmp);
    let (_, &mut middle, _) = differences.select_nth_unstable_by(count / 2, f64::total_cmp);
    if !(lower.is_finite() && middle.is_finite()) {
        return Err("latencies that are not numbers".to_owned());
    }
    Ok((middle, lower))
}

/// Blue's slowest sample plus the tolerance, how many green samples are slower than that, how
/// many chance alone would give above blue's slowest, and the one-sided p-value of the count.
fn tail(target: &[f64], baseline: &[f64], tolerance: f64) -> (f64, u64, f64, f64) {
    let mut sorted = baseline.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let j = TAIL_RANK.min(sorted.len() as u64).max(1);
    let threshold = sorted[usize::try_from(j - 1).unwrap_or(0)] * (1.0 + tolerance.max(0.0));
    let count = target.iter().filter(|t| **t > threshold).count() as u64;
    let (n, m) = (baseline.len() as u64, target.len() as u64);
    let expected = (m * j) as f64 / (n + 1) as f64;
    (threshold, count, expected, exceedance_p(n, m, j, count))
}

/// P(K ≥ k) where K counts the `m` green samples above the `j`-th largest of `n` blue ones, all
/// `n + m` exchangeable: P(K = i) = C(j-1+i, i) C(n-j+m-i, m-i) / C(n+m, m).
fn exceedance_p(n: u64, m: u64, j: u64, k: u64) -> f64 {
    let total = ln_binomial(n + m, m);
    let below: f64 = (0..k.min(m + 1))
        .map(|i| (ln_binomial(j - 1 + i, i) + ln_binomial(n - j + m - i, m - i) - total).exp())
        .sum();
    (1.0 - below).clamp(0.0, 1.0)
}

/// At most `limit` values, evenly spaced through `values`.
fn systematic(values: &[f64], limit: usize) -> Vec<f64> {
    if values.len() <= limit {
        return values.to_vec();
    }
    let stride = values.len().div_ceil(limit);
    values.iter().step_by(stride).copied().collect()
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.is_empty() {
        0.0
    } else if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread around `center`: the same shape for both sides.
    fn spread(center: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| center + (i % 17) as f64 * 0.1).collect()
    }

    /// `n` evenly spaced quantiles of a normal distribution: a sample with a light tail.
    fn gaussian(mean: f64, sd: f64, n: usize) -> Vec<f64> {
        let normal = Normal::new(mean, sd).unwrap();
        (0..n)
            .map(|i| normal.inverse_cdf((i as f64 + 0.5) / n as f64))
            .collect()
    }

    #[test]
    fn the_exceedance_distribution_is_exact() {
        // Three blue, three green, above blue's largest: P(K ≥ 1) is the chance green holds
        // the pooled maximum, one half.
        assert!((exceedance_p(3, 3, 1, 1) - 0.5).abs() < 1e-12);
        assert!((exceedance_p(3, 3, 1, 0) - 1.0).abs() < 1e-12);
        // Above blue's second largest: K ≥ 1 unless both top places are blue's, 1 - 3/6 · 2/5.
        assert!((exceedance_p(3, 3, 2, 1) - (1.0 - 0.2)).abs() < 1e-12);
        // The probabilities of every count sum to one.
        let all: f64 = (0..=400u64)
            .map(|k| exceedance_p(400, 400, 1, k) - exceedance_p(400, 400, 1, k + 1))
            .sum();
        assert!((all - 1.0).abs() < 1e-9, "{all}");
        // For equal sides, P(K ≥ k) is about 2^-k.
        for k in [1u64, 4, 8] {
            let p = exceedance_p(400, 400, 1, k);
            assert!((p / 0.5f64.powi(k as i32) - 1.0).abs() < 0.05, "{k}: {p}");
        }
    }

    #[test]
    fn the_shift_bound_sees_a_real_shift_and_not_noise() {
        let blue = spread(10.0, 400);
        let same = judge(&blue, &blue, 0.98, 0.1).unwrap();
        assert!(same.relative_shift_lower < 0.01, "{same:?}");
        assert!(same.p_value > 0.4, "{same:?}");
        let slower: Vec<f64> = blue.iter().map(|v| v * 1.3).collect();
        let slow = judge(&slower, &blue, 0.98, 0.1).unwrap();
        assert!(slow.relative_shift_lower > 0.2, "{slow:?}");
        assert!((slow.shift_ms - 3.25).abs() < 0.5, "{slow:?}");
        assert!(slow.p_value < 1e-6, "{slow:?}");
    }

    #[test]
    fn a_slow_tail_shows_in_the_count_not_the_median() {
        let blue = spread(10.0, 400);
        let mut green = spread(10.0, 400);
        for value in green.iter_mut().step_by(50) {
            *value += 150.0;
        }
        let j = judge(&green, &blue, 0.98, 0.1).unwrap();
        assert!((j.effect - 1.0).abs() < 0.02, "{j:?}");
        assert_eq!(j.tail_count, 8, "{j:?}");
        assert!(j.tail_p < 0.005, "{j:?}");
        assert!(judge(&blue, &blue, 0.98, 0.1).unwrap().tail_p > 0.3);
        // A green uniformly 5 % slower has no tail beyond blue's slowest plus 10 %.
        let slightly: Vec<f64> = blue.iter().map(|v| v * 1.05).collect();
        assert_eq!(judge(&slightly, &blue, 0.98, 0.1).unwrap().tail_count, 0);
    }

    #[test]
    fn three_requests_far_beyond_blues_fitted_tail_are_a_far_tail() {
        let blue = gaussian(20.0, 2.0, 400);
        let mut green = blue.clone();
        // Three slow requests: the exact count alone cannot be sure (p about 1/8)...
        for value in green.iter_mut().step_by(150) {
            *value += 150.0;
        }
        let j = judge(&green, &blue, 0.98, 0.1).unwrap();
        assert_eq!(j.tail_count, 3, "{j:?}");
        assert!(j.tail_p > 0.005 && j.tail_p < FAR_GATE, "{j:?}");
        // ...but 150 ms is far beyond anything blue's own tail makes likely.
        assert_eq!(j.far_count, 3, "{j:?}");
        assert!((j.far_expected - FAR_EXPECTED).abs() < 1e-9, "{j:?}");
        assert!(j.far_p < 1e-6, "{j:?}");
        // Green as blue: nothing far.
        let same = judge(&blue, &blue, 0.98, 0.1).unwrap();
        assert_eq!(same.far_count, 0, "{same:?}");
        assert!(same.far_p > 0.99, "{same:?}");
        // The far threshold is never below the exact tail's.
        assert!(j.far_threshold_ms.unwrap() >= j.tail_threshold_ms);
    }

    #[test]
    fn equal_slowest_requests_leave_no_tail_to_fit() {
        let blue = vec![5.0; 100];
        let j = judge(&blue, &blue, 0.98, 0.1).unwrap();
        assert_eq!(j.far_threshold_ms, None);
        assert!((j.far_p - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn poisson_tail_is_the_complement_of_the_partial_sum() {
        assert!((poisson_tail(0.01, 0) - 1.0).abs() < 1e-12);
        assert!((poisson_tail(0.01, 1) - (1.0 - (-0.01f64).exp())).abs() < 1e-12);
        assert!((poisson_tail(0.01, 2) - 4.97e-5).abs() < 1e-7);
    }

    #[test]
    fn the_judge_needs_enough_samples() {
        let few = vec![1.0; 10];
        let many = vec![1.0; 100];
        assert!(
            judge(&few, &many, 0.98, 0.1)
                .unwrap_err()
                .contains("10 and 100")
        );
    }
}
