//! CloudWatch reads: alarm states (`DescribeAlarms`) and datapoints (`GetMetricData`), each a
//! signed JSON 1.0 request per page, retried like the other AWS reads, every page read up to a
//! bound.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::endpoint::Service;
use super::{Aws, AwsReadError, parse_answer, read_error};

/// The permission hint for a denied CloudWatch read.
const CLOUDWATCH_DENIED: &str = "the function's role needs cloudwatch:DescribeAlarms and cloudwatch:GetMetricData (template parameter EnableMetricChecks)";

/// The most pages of alarms read for one check.
const MAX_ALARM_PAGES: usize = 20;

/// CloudWatch `DescribeAlarms`' answer (the fields read).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAlarmsOutput {
    #[serde(default)]
    metric_alarms: Vec<AlarmState>,
    #[serde(default)]
    composite_alarms: Vec<AlarmState>,
    next_token: Option<String>,
}

/// One alarm's state, as `DescribeAlarms` gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmState {
    /// The alarm's name.
    pub alarm_name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state_value: String,
    /// Why it is in that state, in CloudWatch's words.
    #[serde(default)]
    pub state_reason: String,
    /// Since when (seconds since 1970).
    #[serde(default)]
    pub state_updated_timestamp: Option<f64>,
}

/// The most pages of datapoints read for one check.
const MAX_METRIC_PAGES: usize = 20;

/// One query's datapoints, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Seconds since 1970.
    pub timestamps: Vec<f64>,
    /// The values, one per timestamp.
    pub values: Vec<f64>,
    /// `Complete`, `PartialData`, `InternalError` or `Forbidden`.
    pub status: String,
}

/// `GetMetricData`'s answer (the fields read).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricDataOutput {
    #[serde(default)]
    metric_data_results: Vec<MetricDataResult>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataResult {
    id: String,
    #[serde(default)]
    timestamps: Vec<f64>,
    #[serde(default)]
    values: Vec<f64>,
    #[serde(default)]
    status_code: String,
}

/// One paginated CloudWatch operation: what it is called, what it reads (for messages), what
/// to say when what it names does not exist, and how many pages at most.
struct Paged<'a> {
    operation: &'a str,
    what: &'a str,
    not_found_fix: &'a str,
    max_pages: usize,
    too_many_fix: &'a str,
}

impl Aws {
    /// Every page of a paginated CloudWatch call: `body` is the request without its token, and
    /// `absorb` takes each page's answer and returns its `NextToken`. A bound on pages, so a
    /// service that keeps answering with a token cannot hold the hook.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        paged: Paged<'_>,
        body: Value,
        mut absorb: impl FnMut(T) -> Option<String>,
    ) -> Result<(), AwsReadError> {
        let mut next_token: Option<String> = None;
        for _ in 0..paged.max_pages {
            let mut body = body.clone();
            if let Some(token) = &next_token {
                body["NextToken"] = token.as_str().into();
            }
            let reply = self
                .json_call(
                    Service::CloudWatch,
                    &format!("GraniteServiceVersion20100801.{}", paged.operation),
                    body.to_string(),
                    paged.what,
                )
                .await
                .map_err(|failure| {
                    read_error(
                        failure,
                        paged.what,
                        "ResourceNotFound",
                        paged.not_found_fix,
                        CLOUDWATCH_DENIED,
                    )
                })?;
            next_token = absorb(parse_answer(&reply, paged.what)?).filter(|t| !t.is_empty());
            if next_token.is_none() {
                return Ok(());
            }
        }
        Err(AwsReadError {
            problem: format!("{}: more than {} pages", paged.what, paged.max_pages),
            fix: paged.too_many_fix.to_owned(),
        })
    }

    /// The state of CloudWatch alarms, metric and composite: those named (at most 100), or
    /// those whose name starts with `prefix`. Every page is read.
    pub async fn describe_alarms(
        &self,
        names: &[String],
        prefix: Option<&str>,
    ) -> Result<Vec<AlarmState>, AwsReadError> {
        let what = match prefix {
            Some(prefix) => format!("CloudWatch alarms named {prefix}*"),
            None => "CloudWatch alarms".to_owned(),
        };
        let mut body = serde_json::json!({
            "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            "MaxRecords": 100,
        });
        match prefix {
            Some(prefix) => body["AlarmNamePrefix"] = prefix.into(),
            None => body["AlarmNames"] = names.into(),
        }
        let mut alarms = Vec::new();
        let paged = Paged {
            operation: "DescribeAlarms",
            what: &what,
            not_found_fix: "check the alarm names",
            max_pages: MAX_ALARM_PAGES,
            too_many_fix: "name the alarms, or use a narrower prefix",
        };
        self.pages(paged, body, |page: DescribeAlarmsOutput| {
            alarms.extend(page.metric_alarms);
            alarms.extend(page.composite_alarms);
            page.next_token
        })
        .await?;
        Ok(alarms)
    }

    /// The datapoints of `queries` (CloudWatch `MetricDataQuery` objects) from `start` to `end`
    /// (seconds since 1970), oldest first, by query id; every page read.
    pub async fn metric_data(
        &self,
        queries: &[Value],
        start: u64,
        end: u64,
    ) -> Result<BTreeMap<String, Series>, AwsReadError> {
        let body = serde_json::json!({
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        });
        let mut series: BTreeMap<String, Series> = BTreeMap::new();
        let paged = Paged {
            operation: "GetMetricData",
            what: "CloudWatch metric data",
            not_found_fix: "check the namespace, metric name and dimensions",
            max_pages: MAX_METRIC_PAGES,
            too_many_fix: "use a longer period or a shorter window",
        };
        self.pages(paged, body, |page: GetMetricDataOutput| {
            for result in page.metric_data_results {
                let entry = series.entry(result.id).or_default();
                entry.timestamps.extend(result.timestamps);
                entry.values.extend(result.values);
                entry.status = result.status_code;
            }
            page.next_token
        })
        .await?;
        Ok(series)
    }
}
