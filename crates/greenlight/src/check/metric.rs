//! The `metric` check: CloudWatch datapoints for green (one metric, or metric math over named
//! queries) over a window, reduced to one value and held to bounds, and optionally against the
//! same query for blue on the same window. One `GetMetricData` call carries both sides.
//!
//! The report keeps every datapoint judged, both sides, the reduced values and the bound, so
//! "why did this roll back?" has a numeric answer.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::aws::Series;
use crate::check::RunContext;
use crate::config::{MetricQuery, MetricSpec, NoData, Reduce};
use crate::outcome::{MetricFigures, MetricSide, Mismatch, Outcome, Ran};
use crate::template::Vars;

/// A planned metric check: the spec, its templates rendered per run.
#[derive(Debug, Clone)]
pub(crate) struct MetricCheck {
    pub spec: MetricSpec,
}

/// The longest one run of a metric or alarms check may take: the CloudWatch pages and their
/// retries (3 attempts of at most 3 s each) stop there. It is the attempt time
/// [`super::PlannedCheck::worst_case`] counts on, so a retry or a watch is planned with it.
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(30);

impl MetricCheck {
    /// Read both sides' datapoints for the window ending now, and judge them, within
    /// [`RUN_TIMEOUT`].
    pub(crate) async fn run(&self, ctx: &RunContext) -> Ran {
        self.run_within(ctx, RUN_TIMEOUT).await
    }

    async fn run_within(&self, ctx: &RunContext, limit: Duration) -> Ran {
        match tokio::time::timeout(limit, self.read_and_judge(ctx)).await {
            Ok(ran) => ran,
            Err(_) => Outcome::error(format!(
                "CloudWatch's datapoints did not all come within {}, the most a metric check may take: \
                 check the route to CloudWatch's API and its throttling, or use a longer period or a shorter window",
                humantime::format_duration(limit)
            ))
            .into(),
        }
    }

    async fn read_and_judge(&self, ctx: &RunContext) -> Ran {
        let queries = match self.queries(&ctx.vars) {
            Ok(queries) => queries,
            Err(problem) => {
                return Outcome::error(format!("cannot build the query: {problem}")).into();
            }
        };
        let window = Window::ending(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            self.spec.period.0,
            self.spec.window.0,
        );
        let mut series = match ctx
            .aws
            .metric_data(&queries, window.start, window.end, window.max_datapoints())
            .await
        {
            Ok(series) => series,
            Err(err) => return Outcome::error(format!("{}; {}", err.problem, err.fix)).into(),
        };
        for (id, side) in &series {
            if matches!(side.status.as_str(), "InternalError" | "Forbidden") {
                return Outcome::error(format!(
                    "CloudWatch answered {} for query {id}: check the metric, its dimensions and the role's cloudwatch:GetMetricData",
                    side.status
                ))
                .into();
            }
        }
        let green = series.remove("green").unwrap_or_default();
        let blue = self
            .spec
            .baseline
            .as_ref()
            .map(|_| series.remove("blue").unwrap_or_default());
        self.judge(&green, blue.as_ref(), &window)
    }

    /// The `MetricDataQueries`: green's (id `green`) and, with a baseline, blue's (id `blue`).
    fn queries(&self, vars: &Vars) -> Result<Vec<Value>, String> {
        let spec = &self.spec;
        let period = spec.period.0.as_secs();
        let stat =
            |id: &str, query: &MetricQuery, blue: bool, visible: bool| -> Result<Value, String> {
                let mut dimensions = Vec::new();
                for (name, template) in &query.dimensions {
                    let replaced = spec
                        .baseline
                        .as_ref()
                        .filter(|_| blue)
                        .and_then(|baseline| baseline.dimensions.get(name))
                        .unwrap_or(template);
                    dimensions.push(json!({ "Name": name, "Value": vars.render(replaced)? }));
                }
                Ok(json!({
                    "Id": id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.metric_name,
                            "Dimensions": dimensions,
                        },
                        "Period": period,
                        "Stat": query.stat,
                    },
                    "ReturnData": visible,
                }))
            };
        let sides: &[bool] = if spec.baseline.is_some() {
            &[false, true]
        } else {
            &[false]
        };
        let mut out = Vec::new();
        for &blue in sides {
            let id = if blue { "blue" } else { "green" };
            match &spec.expression {
                None => {
                    let single = MetricQuery {
                        namespace: spec.namespace.clone().unwrap_or_default(),
                        metric_name: spec.metric_name.clone().unwrap_or_default(),
                        dimensions: spec.dimensions.clone(),
                        stat: spec.stat.clone().unwrap_or_default(),
                    };
                    out.push(stat(id, &single, blue, true)?);
                }
                Some(expression) => {
                    for (name, query) in &spec.queries {
                        let query_id = if blue {
                            format!("blue_{name}")
                        } else {
                            name.clone()
                        };
                        out.push(stat(&query_id, query, blue, false)?);
                    }
                    let expression = if blue {
                        rename_ids(expression, |name| {
                            spec.queries
                                .contains_key(name)
                                .then(|| format!("blue_{name}"))
                        })
                    } else {
                        expression.clone()
                    };
                    out.push(json!({ "Id": id, "Expression": expression, "ReturnData": true }));
                }
            }
        }
        Ok(out)
    }

    /// Pure, so every rule is unit-tested. What cannot be judged (a datapoint outside the
    /// window, a value or a result that is not a finite number) is an error, never a pass.
    fn judge(&self, green: &Series, blue: Option<&Series>, window: &Window) -> Ran {
        let spec = &self.spec;
        for (name, series) in [("green", Some(green)), ("blue", blue)] {
            if let Some(problem) = series.and_then(|series| window.refuses(series)) {
                return Outcome::error(format!(
                    "CloudWatch's {name} datapoints cannot be judged: {problem}; \
                     check the metric and its statistic, and that AWS_ENDPOINT_URL_CLOUDWATCH points at CloudWatch"
                ))
                .into();
            }
        }
        let green_side = side(green, spec.reduce);
        let blue_side = blue.map(|blue| side(blue, spec.reduce));
        let mut bounds = Vec::new();
        if let Some(max) = spec.max {
            bounds.push(format!("at most {}", number(max)));
        }
        if let Some(min) = spec.min {
            bounds.push(format!("at least {}", number(min)));
        }
        if let Some(regression) = spec.max_regression {
            bounds.push(format!(
                "at most blue × {}{}",
                number(1.0 + regression),
                spec.min_regression
                    .map(|floor| format!(" unless within {} of it", number(floor)))
                    .unwrap_or_default()
            ));
        }
        let figures = MetricFigures {
            reduce: reduce_name(spec.reduce),
            green: green_side.clone(),
            blue: blue_side.clone(),
            bound: bounds.join(", "),
        };
        let label = reduce_name(spec.reduce);
        // Finite datapoints can still add up past f64 (1e308 + 1e308): such a sum bounds
        // nothing, and infinity as blue's would let any green through.
        for (name, value) in [
            ("green", green_side.value),
            ("blue", blue_side.as_ref().and_then(|side| side.value)),
        ] {
            if let Some(value) = value.filter(|value| !value.is_finite()) {
                return unjudged(
                    format!(
                        "the {label} of {name}'s datapoints is not a finite number ({}): the check cannot judge it; \
                         check the metric and its statistic, or reduce with max",
                        number(value)
                    ),
                    figures,
                );
            }
        }
        let mut failures = Vec::new();
        let value = match (green_side.value, spec.no_data) {
            (Some(value), _) => Some(value),
            (None, NoData::Zero) => Some(0.0),
            (None, NoData::Pass) => None,
            (None, NoData::Fail) => {
                failures.push(Mismatch::new(
                    "green datapoints",
                    format!("at least one in the last {}", spec.window),
                    "none (no_data: fail; count metrics publish nothing when nothing happened: no_data: zero)",
                ));
                None
            }
        };
        if let Some(value) = value {
            let shown = format!(
                "{} ({label} of {} datapoints)",
                number(value),
                green_side.datapoints.len()
            );
            if let Some(max) = spec.max
                && value > max
            {
                failures.push(Mismatch::new(
                    "green",
                    format!("at most {}", number(max)),
                    shown.clone(),
                ));
            }
            if let Some(min) = spec.min
                && value < min
            {
                failures.push(Mismatch::new(
                    "green",
                    format!("at least {}", number(min)),
                    shown.clone(),
                ));
            }
            if let (Some(regression), Some(blue_side)) = (spec.max_regression, &blue_side) {
                let blue_value = match (blue_side.value, spec.no_data) {
                    (Some(value), _) => Some(value),
                    (None, NoData::Zero) => Some(0.0),
                    (None, _) => None,
                };
                match blue_value {
                    Some(blue_value) => {
                        let allowed = blue_value * (1.0 + regression);
                        if !allowed.is_finite() {
                            return unjudged(
                                format!(
                                    "blue {} × {} is not a finite number: the check cannot judge green against it; \
                                     check the baseline's metric and max_regression",
                                    number(blue_value),
                                    number(1.0 + regression)
                                ),
                                figures,
                            );
                        }
                        let floor = spec.min_regression.unwrap_or(0.0);
                        if value > allowed && (value - blue_value).abs() >= floor {
                            failures.push(Mismatch::new(
                                "green against blue",
                                format!(
                                    "at most {} (blue {} × {}{})",
                                    number(allowed),
                                    number(blue_value),
                                    number(1.0 + regression),
                                    spec.min_regression
                                        .map(|f| format!(", or within {} of it", number(f)))
                                        .unwrap_or_default()
                                ),
                                shown,
                            ));
                        }
                    }
                    None if spec.no_data == NoData::Fail => failures.push(Mismatch::new(
                        "blue datapoints",
                        format!("at least one in the last {}", spec.window),
                        "none: nothing to compare green with",
                    )),
                    None => {}
                }
            }
        }
        Ran {
            outcome: if failures.is_empty() {
                Outcome::Passed
            } else {
                Outcome::Failed { failures }
            },
            stats: None,
            metric: Some(figures),
        }
    }
}

/// The window a run reads: CloudWatch's StartTime and EndTime (seconds since 1970), and the
/// first datapoint time it may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: u64,
    end: u64,
    first: u64,
    period: u64,
}

impl Window {
    /// The window of `length` ending at the last whole `period` before `now`.
    fn ending(now: u64, period: Duration, length: Duration) -> Window {
        let period = period.as_secs().max(1);
        // Aligned to the period, so two runs a second apart judge the same datapoints.
        let end = now - now % period;
        let start = end.saturating_sub(length.as_secs());
        // CloudWatch rounds a start time less than 15 days ago down to the minute.
        let first = start - start % 60;
        Window {
            start,
            end,
            first,
            period,
        }
    }

    /// Datapoints per query the window holds, one more for a period cut by its start: the
    /// most CloudWatch is believed to send.
    fn max_datapoints(&self) -> usize {
        usize::try_from((self.end - self.first) / self.period + 1).unwrap_or(usize::MAX)
    }

    /// Why `series` cannot be judged: a datapoint outside the window (a time CloudWatch never
    /// sends, perhaps not even one a date can show), a value that is not a finite number, or
    /// more datapoints than the window holds.
    fn refuses(&self, series: &Series) -> Option<String> {
        if series.timestamps.len() != series.values.len()
            || series.values.len() > self.max_datapoints()
        {
            return Some(format!(
                "{} times for {} values, where the window holds at most {} datapoints",
                series.timestamps.len(),
                series.values.len(),
                self.max_datapoints()
            ));
        }
        let (from, to) = (self.first as f64, self.end as f64);
        for (&at, &value) in series.timestamps.iter().zip(&series.values) {
            if !(from..=to).contains(&at) {
                return Some(format!(
                    "a datapoint at {} s since 1970 ({}) is outside the window asked for ({} to {})",
                    number(at),
                    rfc3339(at),
                    rfc3339(from),
                    rfc3339(to)
                ));
            }
            if !value.is_finite() {
                return Some(format!(
                    "the value at {} is not a finite number ({})",
                    rfc3339(at),
                    number(value)
                ));
            }
        }
        None
    }
}

/// A check that could not judge what CloudWatch sent: an error, with the figures it saw.
fn unjudged(error: String, figures: MetricFigures) -> Ran {
    Ran {
        outcome: Outcome::error(error),
        stats: None,
        metric: Some(figures),
    }
}

/// One side's datapoints (as RFC 3339 times) and its reduced value.
fn side(series: &Series, reduce: Reduce) -> MetricSide {
    let values = &series.values;
    let value = match reduce {
        _ if values.is_empty() => None,
        Reduce::Sum => Some(values.iter().sum()),
        Reduce::Avg => Some(values.iter().sum::<f64>() / values.len() as f64),
        Reduce::Max => values.iter().copied().reduce(f64::max),
        Reduce::Min => values.iter().copied().reduce(f64::min),
        Reduce::Last => {
            // Datapoints come oldest first (ScanBy TimestampAscending), but do not rely on it.
            let newest = series
                .timestamps
                .iter()
                .zip(&series.values)
                .max_by(|a, b| a.0.total_cmp(b.0));
            newest.map(|(_, v)| *v)
        }
    };
    MetricSide {
        datapoints: series
            .timestamps
            .iter()
            .zip(&series.values)
            .map(|(at, value)| (rfc3339(*at), *value))
            .collect(),
        value,
    }
}

/// A datapoint's time (seconds since 1970) as RFC 3339; `?` for one no clock can hold.
fn rfc3339(seconds: f64) -> String {
    // Checked: `from_secs_f64` and `SystemTime + Duration` panic where these return None.
    Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|since| SystemTime::UNIX_EPOCH.checked_add(since))
        .map_or_else(|| "?".to_owned(), crate::outcome::rfc3339)
}

fn reduce_name(reduce: Reduce) -> &'static str {
    match reduce {
        Reduce::Sum => "sum",
        Reduce::Avg => "avg",
        Reduce::Max => "max",
        Reduce::Min => "min",
        Reduce::Last => "last",
    }
}

/// `20`, `0.5`, `1.5`: no trailing zeros; `1.7e308`, `inf`, `NaN` where digits would not do.
fn number(value: f64) -> String {
    if !value.is_finite() || value.abs() >= 1e15 {
        return format!("{value:e}");
    }
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// The expression with each identifier `rename` knows replaced (CloudWatch query ids are
/// lowercase identifiers; its functions are upper case and left alone).
fn rename_ids(expression: &str, rename: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(expression.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            out.push_str(&rename(word).unwrap_or_else(|| word.clone()));
            word.clear();
        }
    };
    for c in expression.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn check(metric: &str) -> MetricCheck {
        let text = format!(
            "deployment: {{ load_balancer: app/alb/1, target_groups: [targetgroup/a/1, targetgroup/b/2] }}\n\
             targets: {{ t: {{ url: 'http://127.0.0.1:9' }} }}\n\
             stages: {{ AfterAllowTraffic: {{ checks: [ {{ name: m, metric: {metric} }} ] }} }}"
        );
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let spec = config.stages.after_allow_traffic.unwrap().checks[0]
            .metric
            .clone()
            .unwrap();
        MetricCheck { spec }
    }

    fn series(values: &[f64]) -> Series {
        Series {
            timestamps: (0..values.len())
                .map(|i| 1_795_000_000.0 + 60.0 * i as f64)
                .collect(),
            values: values.to_vec(),
            status: "Complete".into(),
        }
    }

    /// An hour from the first test datapoint, minute periods.
    const WINDOW: Window = Window {
        start: 1_795_000_000,
        end: 1_795_003_600,
        first: 1_795_000_000,
        period: 60,
    };

    const FIVE_XX: &str = "{ namespace: AWS/ApplicationELB, metric_name: HTTPCode_Target_5XX_Count, \
        dimensions: { LoadBalancer: '{{load_balancer}}', TargetGroup: '{{green_target_group}}' }, \
        stat: Sum, period: 60s, window: 10m, reduce: sum, max: 20, no_data: zero, \
        baseline: { dimensions: { TargetGroup: '{{blue_target_group}}' } }, max_regression: 0.5, min_regression: 5 }";

    #[test]
    fn bounds_and_regression_against_blue() {
        let c = check(FIVE_XX);
        // 12 errors against blue's 10: under the bound, under 1.5 × blue.
        let ran = c.judge(&series(&[4.0, 8.0]), Some(&series(&[10.0])), &WINDOW);
        assert!(ran.outcome.is_passed(), "{:?}", ran.outcome);
        let figures = ran.metric.unwrap();
        assert_eq!(figures.green.value, Some(12.0));
        assert_eq!(figures.green.datapoints[0].0, "2026-11-18T11:06:40Z");
        assert_eq!(
            figures.bound,
            "at most 20, at most blue × 1.5 unless within 5 of it"
        );
        // 18 against blue's 4: under 20, but over 1.5 × 4 and more than 5 apart.
        let Outcome::Failed { failures } = c
            .judge(&series(&[18.0]), Some(&series(&[4.0])), &WINDOW)
            .outcome
        else {
            panic!("a regression fails")
        };
        assert_eq!(failures[0].what, "green against blue");
        assert_eq!(failures[0].actual, "18 (sum of 1 datapoints)");
        // 3 against blue's 0: a regression by ratio, but within the 5 floor.
        assert!(
            c.judge(&series(&[3.0]), Some(&series(&[])), &WINDOW)
                .outcome
                .is_passed()
        );
        // Over the absolute bound.
        let Outcome::Failed { failures } = c
            .judge(&series(&[15.0, 15.0]), Some(&series(&[30.0])), &WINDOW)
            .outcome
        else {
            panic!("over the bound fails")
        };
        assert_eq!(failures[0].expected, "at most 20");
    }

    #[test]
    fn no_data_follows_the_setting() {
        let fail = check("{ namespace: N, metric_name: M, stat: p99, window: 5m, max: 0.5 }");
        let Outcome::Failed { failures } = fail.judge(&series(&[]), None, &WINDOW).outcome else {
            panic!("no data fails by default")
        };
        assert_eq!(failures[0].what, "green datapoints");
        let pass = check(
            "{ namespace: N, metric_name: M, stat: p99, window: 5m, max: 0.5, no_data: pass }",
        );
        assert!(pass.judge(&series(&[]), None, &WINDOW).outcome.is_passed());
        let zero =
            check("{ namespace: N, metric_name: M, stat: Sum, window: 5m, min: 1, no_data: zero }");
        assert!(!zero.judge(&series(&[]), None, &WINDOW).outcome.is_passed());
    }

    #[test]
    fn reductions() {
        let s = series(&[3.0, 9.0, 1.0]);
        assert_eq!(side(&s, Reduce::Sum).value, Some(13.0));
        assert_eq!(side(&s, Reduce::Max).value, Some(9.0));
        assert_eq!(side(&s, Reduce::Min).value, Some(1.0));
        assert_eq!(side(&s, Reduce::Last).value, Some(1.0));
        assert!((side(&s, Reduce::Avg).value.unwrap() - 13.0 / 3.0).abs() < 1e-12);
        assert_eq!(side(&series(&[]), Reduce::Max).value, None);
    }

    #[test]
    fn one_query_carries_both_sides_and_expressions_are_renamed_for_blue() {
        let c = check(FIVE_XX);
        let mut vars = Vars::new("gl-1", "d-1", "AfterAllowTraffic", &Default::default());
        vars.set("green_target_group", "targetgroup/b/2");
        vars.set("blue_target_group", "targetgroup/a/1");
        vars.set("load_balancer", "app/alb/1");
        let queries = c.queries(&vars).unwrap();
        assert_eq!(queries.len(), 2);
        assert_eq!(queries[0]["Id"], "green");
        assert_eq!(queries[0]["MetricStat"]["Period"], 60);
        assert_eq!(
            queries[0]["MetricStat"]["Metric"]["Dimensions"][1]["Value"],
            "targetgroup/b/2"
        );
        assert_eq!(
            queries[1]["MetricStat"]["Metric"]["Dimensions"][1]["Value"],
            "targetgroup/a/1"
        );
        assert_eq!(
            queries[1]["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
            "app/alb/1"
        );

        let rate = check(
            "{ expression: '100 * errors / MAX([requests, errors])', window: 10m, max: 1, \
               queries: { errors: { namespace: N, metric_name: E, stat: Sum, dimensions: { TargetGroup: '{{green_target_group}}' } }, \
                          requests: { namespace: N, metric_name: R, stat: Sum, dimensions: { TargetGroup: '{{green_target_group}}' } } }, \
               baseline: { dimensions: { TargetGroup: '{{blue_target_group}}' } } }",
        );
        let queries = rate.queries(&vars).unwrap();
        let ids: Vec<&str> = queries.iter().map(|q| q["Id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "errors",
                "requests",
                "green",
                "blue_errors",
                "blue_requests",
                "blue"
            ]
        );
        assert_eq!(
            queries[5]["Expression"],
            "100 * blue_errors / MAX([blue_requests, blue_errors])"
        );
        assert_eq!(
            queries[3]["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
            "targetgroup/a/1"
        );
        assert_eq!(queries[0]["ReturnData"], false);
    }

    #[test]
    fn an_unknown_target_group_is_an_error_that_says_why() {
        let c = check(FIVE_XX);
        let mut vars = Vars::new("gl-1", "d-1", "AfterAllowTraffic", &Default::default());
        for name in crate::config::metric::DEPLOYMENT_VARIABLES {
            vars.unknown(name, "CodeDeploy GetDeploymentTarget failed (AccessDenied)");
        }
        let err = c.queries(&vars).unwrap_err();
        assert!(
            err.contains("is unknown: CodeDeploy GetDeploymentTarget failed"),
            "{err}"
        );
    }

    fn error_of(ran: &Ran) -> &str {
        match &ran.outcome {
            Outcome::Error { error, .. } => error,
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn a_baseline_that_sums_to_infinity_is_an_error_not_a_pass() {
        let c = check(FIVE_XX);
        // Each finite, but their sum is +inf: blue × 1.5 would let any green through.
        let ran = c.judge(&series(&[1.0]), Some(&series(&[1.7e308, 1.7e308])), &WINDOW);
        let error = error_of(&ran);
        assert!(
            error.contains("the sum of blue's datapoints is not a finite number (inf)"),
            "{error}"
        );
        assert_eq!(ran.metric.unwrap().blue.unwrap().value, Some(f64::INFINITY));
        // A finite blue whose allowance overflows.
        let ran = c.judge(&series(&[1.0]), Some(&series(&[1.7e308])), &WINDOW);
        assert!(
            error_of(&ran).contains("blue 1.7e308 × 1.5 is not a finite number"),
            "{:?}",
            ran.outcome
        );
        // Green's own sum, and an average whose sum overflows.
        let ran = c.judge(&series(&[1.7e308, 1.7e308]), Some(&series(&[1.0])), &WINDOW);
        assert!(
            error_of(&ran).contains("green's datapoints"),
            "{:?}",
            ran.outcome
        );
        let avg = check(
            "{ namespace: N, metric_name: M, stat: Average, window: 10m, reduce: avg, max: 1 }",
        );
        let ran = avg.judge(&series(&[-1.7e308, -1.7e308]), None, &WINDOW);
        assert!(
            matches!(ran.outcome, Outcome::Error { .. }),
            "{:?}",
            ran.outcome
        );
    }

    #[test]
    fn a_non_finite_value_anywhere_is_an_error_not_a_pass() {
        let c = check(FIVE_XX);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            // Dropped, it would leave the rest to pass for the whole window.
            let ran = c.judge(&series(&[1.0]), Some(&series(&[2.0, bad])), &WINDOW);
            let error = error_of(&ran);
            assert!(
                error.contains("blue datapoints cannot be judged")
                    && error.contains("is not a finite number"),
                "{error}"
            );
            let ran = c.judge(&series(&[bad, 1.0]), Some(&series(&[2.0])), &WINDOW);
            assert!(
                error_of(&ran).contains("green datapoints"),
                "{:?}",
                ran.outcome
            );
        }
    }

    #[test]
    fn timestamps_past_year_9999_or_outside_the_window_are_an_error_never_a_panic() {
        let c = check(FIVE_XX);
        let mut late = series(&[1.0]);
        // 10000-01-01T00:00:00Z: RFC 3339 has no year 10000.
        late.timestamps = vec![253_402_300_800.0];
        let ran = c.judge(&late, Some(&series(&[1.0])), &WINDOW);
        let error = error_of(&ran);
        assert!(
            error.contains("a datapoint at 253402300800 s since 1970 (after 9999-12-31T23:59:59Z) is outside the window asked for (2026-11-18T11:06:40Z to 2026-11-18T12:06:40Z)"),
            "{error}"
        );
        for at in [
            1e300,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1_794_999_999.0,
            1_795_003_601.0,
        ] {
            let mut odd = series(&[1.0]);
            odd.timestamps = vec![at];
            let ran = c.judge(&series(&[1.0]), Some(&odd), &WINDOW);
            assert!(
                error_of(&ran).contains("is outside the window"),
                "{at}: {:?}",
                ran.outcome
            );
        }
        // Formatting alone never panics either.
        assert_eq!(rfc3339(253_402_300_800.0), "after 9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(1e300), "?");
        assert_eq!(rfc3339(-1.0), "?");
        assert_eq!(
            crate::outcome::rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(1)),
            "before 1970-01-01T00:00:00Z"
        );
        assert_eq!(
            crate::outcome::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn a_window_holds_window_over_period_datapoints_and_one_more() {
        // 10 minutes of minutes, ending at the last whole minute.
        let w = Window::ending(
            1_795_000_030,
            Duration::from_secs(60),
            Duration::from_secs(600),
        );
        assert_eq!(
            (w.start, w.end, w.first),
            (1_794_999_420, 1_795_000_020, 1_794_999_420)
        );
        assert_eq!(w.max_datapoints(), 11);
        // CloudWatch starts a 90 s window of 10 s periods at the minute before it.
        let w = Window::ending(
            1_795_000_005,
            Duration::from_secs(10),
            Duration::from_secs(90),
        );
        assert_eq!((w.start, w.first), (1_794_999_910, 1_794_999_900));
        assert_eq!(w.max_datapoints(), 11);
        // Judged too: more datapoints than the window holds is not judged.
        let many = series(&[0.0; 62]);
        let ran = check(FIVE_XX).judge(&many, None, &WINDOW);
        assert!(
            error_of(&ran).contains("where the window holds at most 61 datapoints"),
            "{:?}",
            ran.outcome
        );
    }

    fn context(aws: crate::aws::Aws) -> RunContext {
        let mut vars = Vars::new("gl-1", "d-1", "AfterAllowTraffic", &Default::default());
        vars.set("green_target_group", "targetgroup/b/2");
        vars.set("blue_target_group", "targetgroup/a/1");
        vars.set("load_balancer", "app/alb/1");
        RunContext {
            vars,
            redactor: crate::redact::Redactor::default(),
            aws: std::sync::Arc::new(aws),
            progress: None,
        }
    }

    #[tokio::test]
    async fn a_run_stops_at_its_timeout_with_an_error_that_says_so() {
        // A CloudWatch that answers every page slowly, with another page to come.
        let (url, requests) =
            crate::aws::cloudwatch::fake::cloudwatch(std::sync::Arc::new(|n, _| {
                let page = json!({"MetricDataResults": [], "NextToken": format!("{}", n + 1)});
                (Duration::from_millis(100), page.to_string())
            }))
            .await;
        let ctx = context(crate::aws::Aws::for_tests(&url));
        let started = std::time::Instant::now();
        let ran = check(FIVE_XX)
            .run_within(&ctx, Duration::from_millis(450))
            .await;
        let error = error_of(&ran);
        assert!(
            error.contains("did not all come within 450ms") && error.contains("shorter window"),
            "{error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(requests.load(std::sync::atomic::Ordering::SeqCst) <= 5);
        // The run's limit is the attempt time its worst case is planned with.
        let kind = super::super::CheckKind::Metric(Box::new(check(FIVE_XX)));
        assert_eq!(kind.attempt_timeout(), RUN_TIMEOUT);
    }
}
