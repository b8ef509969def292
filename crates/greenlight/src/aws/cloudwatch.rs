//! CloudWatch reads: alarm states (`DescribeAlarms`) and datapoints (`GetMetricData`), each a
//! signed JSON 1.0 request per page, retried like the other AWS reads, every page read up to a
//! bound. Memory stays bounded whatever comes back: a page is at most `MAX_JSON_ANSWER` bytes,
//! a page of alarms holds at most the records asked for, and a query keeps at most the
//! datapoints its window holds.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::ops::{self, Operation, Payload, Subject};
use super::{Aws, AwsReadError, parse_answer};

/// What to check when CloudWatch's answer is impossible (more than was asked for).
const NOT_CLOUDWATCH: &str =
    "check that AWS_ENDPOINT_URL_CLOUDWATCH (or AWS_ENDPOINT_URL) points at CloudWatch";

/// The most pages of alarms read for one check.
const MAX_ALARM_PAGES: usize = 20;
/// Alarms asked for per page (`MaxRecords`, CloudWatch's largest); a page with more is refused.
const ALARMS_PER_PAGE: usize = 100;

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
    operation: &'static Operation,
    what: &'a str,
    max_pages: usize,
    too_many_fix: &'a str,
}

impl Aws {
    /// Every page of a paginated CloudWatch call: `body` is the request without its token, and
    /// `absorb` takes each page's answer and returns the `NextToken` to follow (none: done), or
    /// refuses the page. A bound on pages, so a service that keeps answering with a token
    /// cannot hold the hook.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        paged: Paged<'_>,
        body: Value,
        mut absorb: impl FnMut(T) -> Result<Option<String>, AwsReadError>,
    ) -> Result<(), AwsReadError> {
        let mut next_token: Option<String> = None;
        for _ in 0..paged.max_pages {
            let mut body = body.clone();
            if let Some(token) = &next_token {
                body["NextToken"] = token.as_str().into();
            }
            let subject = Subject {
                what: paged.what,
                resource: "*",
            };
            let reply = self
                .call(paged.operation, &subject, Payload::Json(body))
                .await?;
            next_token = absorb(parse_answer(&reply, paged.what)?)?.filter(|t| !t.is_empty());
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
            "MaxRecords": ALARMS_PER_PAGE,
        });
        match prefix {
            Some(prefix) => body["AlarmNamePrefix"] = prefix.into(),
            None => body["AlarmNames"] = names.into(),
        }
        let mut alarms = Vec::new();
        let paged = Paged {
            operation: &ops::CLOUDWATCH_DESCRIBE_ALARMS,
            what: &what,
            max_pages: MAX_ALARM_PAGES,
            too_many_fix: "name the alarms, or use a narrower prefix",
        };
        self.pages(paged, body, |page: DescribeAlarmsOutput| {
            let count = page.metric_alarms.len() + page.composite_alarms.len();
            if count > ALARMS_PER_PAGE {
                return Err(AwsReadError {
                    problem: format!(
                        "{what}: CloudWatch returned {count} alarms on one page, more than the {ALARMS_PER_PAGE} asked for"
                    ),
                    fix: NOT_CLOUDWATCH.to_owned(),
                });
            }
            alarms.extend(page.metric_alarms);
            alarms.extend(page.composite_alarms);
            Ok(page.next_token)
        })
        .await?;
        Ok(alarms)
    }

    /// The datapoints of `queries` (CloudWatch `MetricDataQuery` objects) from `start` to `end`
    /// (seconds since 1970), oldest first, by the id of each query that returns data; every
    /// page read. A query keeps at most `max_datapoints` (what its window holds): more is an
    /// error, and reading stops once every query has them all.
    pub async fn metric_data(
        &self,
        queries: &[Value],
        start: u64,
        end: u64,
        max_datapoints: usize,
    ) -> Result<BTreeMap<String, Series>, AwsReadError> {
        let body = serde_json::json!({
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        });
        // Only what was asked for is kept: a result for another id is neither judged nor held.
        let mut series: BTreeMap<String, Series> = queries
            .iter()
            .filter(|query| query.get("ReturnData").and_then(Value::as_bool) != Some(false))
            .filter_map(|query| query.get("Id").and_then(Value::as_str))
            .map(|id| (id.to_owned(), Series::default()))
            .collect();
        let paged = Paged {
            operation: &ops::CLOUDWATCH_GET_METRIC_DATA,
            what: "CloudWatch metric data",
            max_pages: MAX_METRIC_PAGES,
            too_many_fix: "use a longer period or a shorter window",
        };
        self.pages(paged, body, |page: GetMetricDataOutput| {
            for result in page.metric_data_results {
                let Some(entry) = series.get_mut(&result.id) else {
                    continue;
                };
                // Zipped, unequal lists would pair values with the wrong times.
                if result.timestamps.len() != result.values.len() {
                    return Err(AwsReadError {
                        problem: format!(
                            "CloudWatch returned {} timestamps for {} values of query {}",
                            result.timestamps.len(),
                            result.values.len(),
                            result.id
                        ),
                        fix: NOT_CLOUDWATCH.to_owned(),
                    });
                }
                let total = entry.values.len().saturating_add(result.values.len());
                if total > max_datapoints {
                    return Err(AwsReadError {
                        problem: format!(
                            "CloudWatch returned more datapoints than the window allows: {total} for query {}, where the window holds at most {max_datapoints}",
                            result.id
                        ),
                        fix: NOT_CLOUDWATCH.to_owned(),
                    });
                }
                entry.timestamps.extend(result.timestamps);
                entry.values.extend(result.values);
                // A query that failed on one page stays failed, whatever a later page says.
                if !matches!(entry.status.as_str(), "InternalError" | "Forbidden") {
                    entry.status = result.status_code;
                }
            }
            let complete = series.values().all(|s| s.values.len() >= max_datapoints);
            Ok(if complete { None } else { page.next_token })
        })
        .await?;
        Ok(series)
    }
}

#[cfg(test)]
impl Aws {
    /// Reads signed with test credentials and sent to `endpoint` (a local fake).
    pub(crate) fn for_tests(endpoint: &str) -> Aws {
        use aws_credential_types::Credentials;
        use aws_credential_types::provider::SharedCredentialsProvider;
        let credentials = Credentials::new("AKIDTEST", "test-secret", None, None, "tests");
        let sdk = aws_types::SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .endpoint_url(endpoint)
            .build();
        Aws {
            sdk: tokio::sync::OnceCell::new_with(Some(sdk)),
            client: std::sync::OnceLock::new(),
        }
    }
}

/// A local CloudWatch for unit tests: plain HTTP/1.1, one JSON answer per request.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::Value;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// What the fake answers the `n`th request (from 0) with `body`: a pause, then a JSON body.
    pub(crate) type Answer = dyn Fn(usize, &Value) -> (Duration, String) + Send + Sync;

    /// Start it; its URL, and how many requests it has had.
    pub(crate) async fn cloudwatch(answer: Arc<Answer>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (answer, counted) = (Arc::clone(&answer), Arc::clone(&counted));
                tokio::spawn(async move { serve(socket, answer.as_ref(), &counted).await });
            }
        });
        (url, requests)
    }

    async fn serve(socket: TcpStream, answer: &Answer, requests: &AtomicUsize) -> Option<()> {
        let mut socket = BufReader::new(socket);
        loop {
            let mut length = 0;
            loop {
                let mut line = String::new();
                if socket.read_line(&mut line).await.ok()? == 0 {
                    return None;
                }
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("content-length:") {
                    length = value.trim().parse().ok()?;
                }
            }
            let mut body = vec![0; length];
            socket.read_exact(&mut body).await.ok()?;
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (pause, reply) = answer(requests.fetch_add(1, Ordering::SeqCst), &request);
            tokio::time::sleep(pause).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
                reply.len()
            );
            socket.get_mut().write_all(head.as_bytes()).await.ok()?;
            socket.get_mut().write_all(reply.as_bytes()).await.ok()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn queries() -> Vec<Value> {
        vec![
            json!({"Id": "green", "ReturnData": true}),
            json!({"Id": "hidden", "ReturnData": false}),
            json!({"Id": "blue"}),
        ]
    }

    /// Pages without end, each with `per_page` datapoints for green, blue and an id nobody
    /// asked for.
    async fn endless(per_page: usize) -> (Aws, Arc<std::sync::atomic::AtomicUsize>) {
        let (url, requests) = fake::cloudwatch(Arc::new(move |n, _| {
            let result = |id: &str| {
                json!({"Id": id, "Timestamps": vec![1_795_000_000.0; per_page], "Values": vec![1.0; per_page], "StatusCode": "PartialData"})
            };
            let page = json!({
                "MetricDataResults": [result("green"), result("blue"), result("stranger")],
                "NextToken": format!("page-{}", n + 1),
            });
            (Duration::ZERO, page.to_string())
        }))
        .await;
        (Aws::for_tests(&url), requests)
    }

    #[tokio::test]
    async fn more_datapoints_than_the_window_holds_is_an_error_after_the_first_page_over() {
        let (aws, requests) = endless(5).await;
        let err = aws.metric_data(&queries(), 0, 600, 11).await.unwrap_err();
        assert!(
            err.problem
                .contains("CloudWatch returned more datapoints than the window allows: 15 for query green, where the window holds at most 11"),
            "{err:?}"
        );
        // Two pages of 5 fit in 11; the third went over, and nothing more was asked.
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn reading_stops_once_every_side_holds_what_the_window_allows() {
        let (aws, requests) = endless(5).await;
        let series = aws.metric_data(&queries(), 0, 600, 10).await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 2, "no third page");
        assert_eq!(
            series.keys().map(String::as_str).collect::<Vec<_>>(),
            ["blue", "green"],
            "only the ids that return data are kept"
        );
        assert_eq!(series["green"].values.len(), 10);
        assert_eq!(series["blue"].timestamps.len(), 10);
        assert_eq!(series["blue"].status, "PartialData");
    }

    #[tokio::test]
    async fn unequal_timestamps_and_values_are_an_error() {
        let (url, _) = fake::cloudwatch(Arc::new(|_, _| {
            let page = json!({"MetricDataResults": [{"Id": "green", "Timestamps": [1.0, 2.0], "Values": [1.0], "StatusCode": "Complete"}]});
            (Duration::ZERO, page.to_string())
        }))
        .await;
        let err = Aws::for_tests(&url)
            .metric_data(&queries(), 0, 600, 11)
            .await
            .unwrap_err();
        assert!(
            err.problem
                .contains("2 timestamps for 1 values of query green"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_page_with_more_alarms_than_asked_for_is_refused() {
        let (url, _) = fake::cloudwatch(Arc::new(|_, request| {
            assert_eq!(request["MaxRecords"], 100);
            let alarm = json!({"AlarmName": "a", "StateValue": "OK"});
            let page = json!({"MetricAlarms": vec![alarm; ALARMS_PER_PAGE + 1]});
            (Duration::ZERO, page.to_string())
        }))
        .await;
        let err = Aws::for_tests(&url)
            .describe_alarms(&[], Some("a"))
            .await
            .unwrap_err();
        assert!(err.problem.contains("101 alarms on one page"), "{err:?}");
    }
}
