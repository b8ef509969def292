//! The `metric` check as written, and the `deployment:` section that names the load balancer
//! and the two target groups whose roles swap at every deployment: CloudWatch datapoints for
//! green, optionally against blue on the same window.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::types::{Dur, positive};
use crate::error::ConfigError;

/// The variables a `deployment:` section provides, discovered at each run.
pub(crate) const DEPLOYMENT_VARIABLES: [&str; 3] =
    ["green_target_group", "blue_target_group", "load_balancer"];

/// The longest window a metric check may look back over.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Datapoints per side a window may hold (`window / period`): CloudWatch's own bound per
/// query is 100,800; this keeps the report readable and the read one page or two.
pub(crate) const MAX_DATAPOINTS: u64 = 1440;

/// Which load balancer and target groups a deployment moves between (CloudWatch's
/// `LoadBalancer` and `TargetGroup` dimension values).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// `app/NAME/ID`.
    pub load_balancer: String,
    /// The two target groups, `targetgroup/NAME/ID` each; which one is green is found at
    /// every run.
    pub target_groups: Vec<String>,
}

impl DeploymentSpec {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !self.load_balancer.starts_with("app/") || self.load_balancer.split('/').count() != 3 {
            return Err(ConfigError::invalid(
                "deployment.load_balancer",
                format!("{:?}", self.load_balancer),
                "not CloudWatch's LoadBalancer dimension value",
                "write the end of the ALB's ARN: app/NAME/ID, e.g. app/payments-alb/50dc6c495c0c9188",
            ));
        }
        let shaped = |tg: &String| tg.starts_with("targetgroup/") && tg.split('/').count() == 3;
        if self.target_groups.len() != 2
            || !self.target_groups.iter().all(shaped)
            || self.target_groups[0] == self.target_groups[1]
        {
            return Err(ConfigError::invalid(
                "deployment.target_groups",
                format!("{:?}", self.target_groups),
                "a blue/green deployment moves between exactly two target groups",
                "list both, each as the end of its ARN: targetgroup/NAME/ID",
            ));
        }
        Ok(())
    }
}

/// One CloudWatch metric: namespace, name, dimensions (values templated) and statistic.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    /// e.g. `AWS/ApplicationELB`.
    pub namespace: String,
    /// e.g. `HTTPCode_Target_5XX_Count`.
    pub metric_name: String,
    /// Dimension name → value, e.g. `TargetGroup: "{{green_target_group}}"`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Any CloudWatch statistic: `Sum`, `Average`, `Maximum`, `p99`, `tm90`, …
    pub stat: String,
}

/// A `metric` check: one metric (or metric math over named queries) over a window, reduced to
/// one value and held to bounds, and optionally against the same query for blue.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// The metric's namespace (with `metric_name` and `stat`).
    pub namespace: Option<String>,
    /// The metric's name.
    pub metric_name: Option<String>,
    /// Its dimensions, values templated.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Its statistic.
    pub stat: Option<String>,
    /// Metric math over `queries` instead of one metric, e.g. `100 * errors / requests`.
    pub expression: Option<String>,
    /// The named metrics the expression uses.
    #[serde(default)]
    pub queries: BTreeMap<String, MetricQuery>,
    /// Datapoint period (a multiple of 60 s).
    #[serde(default = "default_period")]
    pub period: Dur,
    /// How far back from now to look.
    pub window: Dur,
    /// How the window's datapoints combine into one value.
    #[serde(default)]
    pub reduce: Reduce,
    /// The reduced value must be at most this.
    pub max: Option<f64>,
    /// The reduced value must be at least this.
    pub min: Option<f64>,
    /// What a window without datapoints means.
    #[serde(default)]
    pub no_data: NoData,
    /// The same query for blue, with these dimensions replaced.
    pub baseline: Option<MetricBaseline>,
    /// Green may exceed blue by at most this fraction (0.5: green ≤ blue × 1.5) …
    pub max_regression: Option<f64>,
    /// … unless the two differ by less than this (absolute).
    pub min_regression: Option<f64>,
}

/// The datapoint period when a metric check does not say: CloudWatch's ALB granularity.
pub(crate) const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

fn default_period() -> Dur {
    Dur(DEFAULT_PERIOD)
}

/// Blue's query: green's, with these dimensions replaced.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricBaseline {
    /// Dimension name → blue's value.
    pub dimensions: BTreeMap<String, String>,
}

/// How a window's datapoints become one value.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Reduce {
    /// The total (count metrics).
    Sum,
    /// The mean.
    Avg,
    /// The largest: the worst minute.
    #[default]
    Max,
    /// The smallest.
    Min,
    /// The newest.
    Last,
}

/// What a window without datapoints means.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NoData {
    /// The check fails: nothing was measured.
    #[default]
    Fail,
    /// The check passes.
    Pass,
    /// The value is 0 (count metrics publish nothing when nothing happened).
    Zero,
}

impl MetricSpec {
    /// Every templated string: dimension values of the metric, its queries and the baseline.
    pub(crate) fn templates(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = self
            .dimensions
            .iter()
            .map(|(name, value)| (format!("dimensions.{name}"), value.as_str()))
            .collect();
        for (query, spec) in &self.queries {
            out.extend(spec.dimensions.iter().map(|(name, value)| {
                (format!("queries.{query}.dimensions.{name}"), value.as_str())
            }));
        }
        if let Some(baseline) = &self.baseline {
            out.extend(
                baseline
                    .dimensions
                    .iter()
                    .map(|(name, value)| (format!("baseline.dimensions.{name}"), value.as_str())),
            );
        }
        out
    }

    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let single = self.namespace.is_some() || self.metric_name.is_some() || self.stat.is_some();
        match (single, &self.expression) {
            (true, None) => {
                if self.namespace.is_none() || self.metric_name.is_none() || self.stat.is_none() {
                    return Err(ConfigError::invalid(
                        path,
                        "(metric)",
                        "a metric needs namespace, metric_name and stat",
                        "e.g. namespace: AWS/ApplicationELB, metric_name: HTTPCode_Target_5XX_Count, stat: Sum",
                    ));
                }
                if !self.queries.is_empty() {
                    return Err(ConfigError::invalid(
                        format!("{path}.queries"),
                        "(set)",
                        "queries are for an expression",
                        "add `expression:` over them, or remove `queries:`",
                    ));
                }
            }
            (false, Some(expression)) => {
                if self.queries.is_empty() {
                    return Err(ConfigError::invalid(
                        format!("{path}.queries"),
                        format!("{expression:?}"),
                        "an expression needs the named queries it uses",
                        "add e.g. queries: { errors: {...}, requests: {...} }",
                    ));
                }
                for name in self.queries.keys() {
                    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                        && !name.starts_with("blue_")
                        && name != "green"
                        && name != "blue";
                    if !valid {
                        return Err(ConfigError::invalid(
                            format!("{path}.queries"),
                            format!("{name:?}"),
                            "not a usable query name (CloudWatch ids are lowercase letters, digits and _)",
                            "use e.g. errors or requests (not green, blue or blue_*)",
                        ));
                    }
                }
            }
            (true, Some(_)) => {
                return Err(ConfigError::invalid(
                    path,
                    "(metric and expression)",
                    "both a single metric and an expression",
                    "use namespace/metric_name/stat, or expression with queries",
                ));
            }
            (false, None) => {
                return Err(ConfigError::invalid(
                    path,
                    "(nothing)",
                    "no metric and no expression",
                    "add namespace, metric_name and stat, or an expression with queries",
                ));
            }
        }
        positive(&format!("{path}.period"), self.period)?;
        let period = self.period.0.as_secs();
        if self.period.0.subsec_nanos() != 0
            || !(period.is_multiple_of(60) || [1, 5, 10, 30].contains(&period))
        {
            return Err(ConfigError::invalid(
                format!("{path}.period"),
                self.period,
                "not a CloudWatch period",
                "use 1s, 5s, 10s, 30s or a multiple of 60s (ALB metrics: 60s)",
            ));
        }
        if self.window < self.period || self.window.0 > MAX_WINDOW {
            return Err(ConfigError::invalid(
                format!("{path}.window"),
                self.window,
                "the window must hold at least one period and at most a day",
                "write e.g. window: 10m",
            ));
        }
        if self.window.0.as_secs() / period.max(1) > MAX_DATAPOINTS {
            return Err(ConfigError::invalid(
                format!("{path}.window"),
                self.window,
                format!("more than {MAX_DATAPOINTS} datapoints per side"),
                "use a longer period or a shorter window",
            ));
        }
        let regression = self.max_regression.is_some() || self.min_regression.is_some();
        if regression && self.baseline.is_none() {
            return Err(ConfigError::invalid(
                format!("{path}.max_regression"),
                "(set)",
                "compares against a baseline, but none is given",
                "add baseline: { dimensions: { TargetGroup: \"{{blue_target_group}}\" } }",
            ));
        }
        if self.max.is_none() && self.min.is_none() && self.max_regression.is_none() {
            return Err(ConfigError::invalid(
                path,
                "(no bound)",
                "the check judges nothing",
                "add max, min, or a baseline with max_regression",
            ));
        }
        for (field, value) in [
            ("max", self.max),
            ("min", self.min),
            ("max_regression", self.max_regression),
            ("min_regression", self.min_regression),
        ] {
            if let Some(value) = value
                && !value.is_finite()
            {
                return Err(ConfigError::invalid(
                    format!("{path}.{field}"),
                    value,
                    "not a number",
                    "write a finite number",
                ));
            }
        }
        if self.max_regression.is_some_and(|r| r < 0.0)
            || self.min_regression.is_some_and(|r| r < 0.0)
        {
            return Err(ConfigError::invalid(
                format!("{path}.max_regression"),
                "(negative)",
                "a regression limit cannot be negative",
                "write e.g. max_regression: 0.5 (green ≤ blue × 1.5)",
            ));
        }
        if let Some(baseline) = &self.baseline {
            let known: Vec<&String> = if self.expression.is_some() {
                self.queries
                    .values()
                    .flat_map(|q| q.dimensions.keys())
                    .collect()
            } else {
                self.dimensions.keys().collect()
            };
            if let Some(unknown) = baseline
                .dimensions
                .keys()
                .find(|name| !known.contains(name))
            {
                return Err(ConfigError::invalid(
                    format!("{path}.baseline.dimensions"),
                    format!("{unknown:?}"),
                    "replaces a dimension the metric does not have",
                    "name one of the metric's dimensions, e.g. TargetGroup",
                ));
            }
        }
        Ok(())
    }
}
