//! ALB metrics from real traffic, for the local CloudWatch of the rehearsal: each target group
//! is one paysim, whose `GET /_stats` lists every request it served (when, status, seconds).
//! The datapoints are what CloudWatch would hold for the target group: `RequestCount`,
//! `HTTPCode_Target_5XX_Count` and `HTTPCode_Target_2XX_Count` (Sum, and like the ALB's, absent
//! where zero), `TargetResponseTime`
//! (any statistic, percentiles included), and `UnHealthyHostCount` / `HealthyHostCount`
//! (whether the target answers now, for every period of the window).

use std::time::Duration;

use serde_json::Value;

/// One request a target served: when it finished (seconds since 1970), its status, seconds taken.
pub type Sample = (f64, u16, f64);

/// The requests a target served, or `None` when it does not answer (down, crashed).
pub async fn samples(client: &reqwest::Client, base_url: &str) -> Option<Vec<Sample>> {
    let response = client
        .get(format!("{base_url}/_stats"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    let requests = body["requests"].as_array()?;
    Some(
        requests
            .iter()
            .filter_map(|r| Some((r[0].as_f64()?, r[1].as_u64()? as u16, r[2].as_f64()?)))
            .collect(),
    )
}

/// The datapoints of `metric` with statistic `stat` over `[start, end)` in `period`-second
/// buckets, oldest first; a bucket without requests has no datapoint (as CloudWatch).
pub fn series(
    metric: &str,
    stat: &str,
    samples: Option<&[Sample]>,
    period: f64,
    start: f64,
    end: f64,
) -> Vec<(f64, f64)> {
    let period = period.max(1.0);
    let buckets = ((end - start) / period).floor().max(0.0) as usize;
    let bucket_start = |i: usize| start + period * i as f64;
    match metric {
        "UnHealthyHostCount" | "HealthyHostCount" => {
            let healthy = samples.is_some();
            let value = if (metric == "HealthyHostCount") == healthy {
                1.0
            } else {
                0.0
            };
            return (0..buckets).map(|i| (bucket_start(i), value)).collect();
        }
        _ => {}
    }
    let Some(samples) = samples else {
        return Vec::new();
    };
    (0..buckets)
        .filter_map(|i| {
            let from = bucket_start(i);
            let in_bucket: Vec<&Sample> = samples
                .iter()
                .filter(|(at, ..)| *at >= from && *at < from + period)
                .collect();
            if in_bucket.is_empty() {
                return None;
            }
            let count = |pred: &dyn Fn(u16) -> bool| {
                in_bucket
                    .iter()
                    .filter(|(_, status, _)| pred(*status))
                    .count() as f64
            };
            // Like the ALB, a status count is reported only when it is not zero.
            let nonzero = |n: f64| (n > 0.0).then_some(n);
            let value = match metric {
                "RequestCount" => in_bucket.len() as f64,
                "HTTPCode_Target_5XX_Count" => nonzero(count(&|s| (500..600).contains(&s)))?,
                "HTTPCode_Target_2XX_Count" => nonzero(count(&|s| (200..300).contains(&s)))?,
                "TargetResponseTime" => {
                    let mut seconds: Vec<f64> = in_bucket.iter().map(|(.., s)| *s).collect();
                    seconds.sort_by(f64::total_cmp);
                    statistic(stat, &seconds)?
                }
                _ => return None,
            };
            Some((from, value))
        })
        .collect()
}

/// A CloudWatch statistic of sorted values: Sum, Average, Minimum, Maximum, SampleCount, pNN.
fn statistic(stat: &str, sorted: &[f64]) -> Option<f64> {
    let n = sorted.len() as f64;
    match stat {
        "Sum" => Some(sorted.iter().sum()),
        "Average" => Some(sorted.iter().sum::<f64>() / n),
        "Minimum" => sorted.first().copied(),
        "Maximum" => sorted.last().copied(),
        "SampleCount" => Some(n),
        p if p.starts_with('p') => {
            let q: f64 = p[1..].parse().ok()?;
            let rank = ((q / 100.0) * n).ceil().max(1.0) as usize;
            sorted.get(rank.min(sorted.len()) - 1).copied()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_statuses_and_take_percentiles() {
        let samples = [
            (100.5, 200, 0.010),
            (101.0, 500, 0.300),
            (101.9, 200, 0.020),
            (103.2, 200, 0.040),
        ];
        let s = Some(&samples[..]);
        assert_eq!(
            series("RequestCount", "Sum", s, 2.0, 100.0, 104.0),
            [(100.0, 3.0), (102.0, 1.0)]
        );
        assert_eq!(
            series("HTTPCode_Target_5XX_Count", "Sum", s, 2.0, 100.0, 104.0),
            [(100.0, 1.0)]
        );
        assert_eq!(
            series("TargetResponseTime", "p99", s, 2.0, 100.0, 104.0),
            [(100.0, 0.3), (102.0, 0.04)]
        );
        assert_eq!(
            series("UnHealthyHostCount", "Maximum", None, 2.0, 100.0, 104.0),
            [(100.0, 1.0), (102.0, 1.0)]
        );
        assert!(series("RequestCount", "Sum", None, 2.0, 100.0, 104.0).is_empty());
    }
}
