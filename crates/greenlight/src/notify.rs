//! A stage's final verdict, sent where people look: an SNS topic (email, chat, paging) and/or a
//! Slack-compatible incoming webhook. The message says whether the stage passed, and if not
//! which checks failed with what was expected and what came, the deployment id, and a link to
//! the log stream.
//!
//! A notification never changes the verdict and never holds up the CodeDeploy report: the
//! hooks send it after reporting (an ECS hook before answering, inside the report reserve),
//! within [`NOTIFY_BUDGET`], one retry included; a failure is logged and that is all.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::notify::{NotifyOn, NotifySpec};
use crate::report::StageReport;
use crate::verdict::Verdict;

/// The most time notifications may take, every channel and retry included.
pub const NOTIFY_BUDGET: Duration = Duration::from_secs(5);

/// Attempts per channel.
const ATTEMPTS: u32 = 2;

/// What is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// A short line (SNS's subject: at most 100 printable ASCII characters).
    pub subject: String,
    /// The whole message.
    pub text: String,
}

/// Compose the message for a finished stage.
pub fn compose(report: &StageReport, log_link: Option<&str>) -> Message {
    let deployment = report.deployment_id.as_deref().unwrap_or("(no deployment)");
    let subject: String = format!(
        "greenlight: {} {} for {deployment}",
        report.stage,
        report.verdict.as_str()
    )
    .chars()
    .map(|c| {
        if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        }
    })
    .take(100)
    .collect();
    let mark = match report.verdict {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
    };
    let mut text = format!(
        "{mark}: {} {} for deployment {deployment} (run {}): {}",
        report.stage,
        report.verdict.as_str(),
        report.run_id,
        report.counts()
    );
    for error in &report.errors {
        text.push_str(&format!("\n- error: {error}"));
    }
    for check in report.checks.iter().filter(|c| !c.outcome.is_passed()) {
        let optional = if check.required { "" } else { " (optional)" };
        text.push_str(&format!("\n- {}{optional}: {}", check.name, check.message));
    }
    if let Some(link) = log_link {
        text.push_str(&format!("\nLog: {link}"));
    }
    Message { subject, text }
}

/// The CloudWatch console link to this invocation's log stream, from Lambda's environment.
pub fn log_link() -> Option<String> {
    let group = std::env::var("AWS_LAMBDA_LOG_GROUP_NAME").ok()?;
    let stream = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").ok()?;
    let region = std::env::var("AWS_REGION").ok()?;
    // The console's fragment is encodeURIComponent's, encoded again with `$` for `%`.
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'!')
        .remove(b'~')
        .remove(b'*')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')');
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, COMPONENT)
            .to_string()
            .replace('%', "$25")
    };
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        encode(&group),
        encode(&stream)
    ))
}

/// Whether this verdict is one the config wants sent.
pub fn wanted(spec: &NotifySpec, verdict: Verdict) -> bool {
    let on = match verdict {
        Verdict::Passed => NotifyOn::Passed,
        Verdict::Failed => NotifyOn::Failed,
    };
    spec.on.contains(&on)
}

/// Send `message` to every channel of `spec` within `budget`; each channel's outcome, its
/// errors already free of the webhook's URL.
pub(crate) async fn send(
    spec: &NotifySpec,
    webhook: Option<&str>,
    aws: &crate::aws::Aws,
    message: &Message,
    budget: Duration,
) -> Vec<(&'static str, Result<(), String>)> {
    let deadline = Instant::now() + budget;
    let sns = async {
        let topic = spec.sns_topic.as_deref()?;
        Some((
            "sns",
            retry(deadline, || async {
                aws.publish(topic, &message.subject, &message.text)
                    .await
                    .map_err(|err| format!("{}; {}", err.problem, err.fix))
            })
            .await,
        ))
    };
    let hook = async {
        let url = webhook?;
        Some((
            "webhook",
            retry(deadline, || async {
                post_webhook(aws, url, &message.text).await
            })
            .await,
        ))
    };
    let (sns, hook) = tokio::join!(sns, hook);
    sns.into_iter().chain(hook).collect()
}

/// Up to [`ATTEMPTS`] tries, each bounded by what is left of the budget.
async fn retry<F, Fut>(deadline: Instant, attempt: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut last = "no time was left to send it".to_owned();
    for _ in 0..ATTEMPTS {
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(why)) => last = why,
            Err(_) => {
                return Err(format!(
                    "no answer within the notification budget of {}",
                    humantime::format_duration(NOTIFY_BUDGET)
                ));
            }
        }
    }
    Err(last)
}

/// POST `{"text": ...}` to a Slack-compatible incoming webhook. The URL is a credential: no
/// error names it.
async fn post_webhook(aws: &crate::aws::Aws, url: &str, text: &str) -> Result<(), String> {
    let client = aws.http_client()?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "text": text }).to_string())
        .send()
        .await
        .map_err(|err| {
            format!(
                "the webhook did not answer: {}",
                crate::error::chain(&err.without_url())
            )
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CheckResult, Outcome};
    use crate::stage::Stage;

    #[test]
    fn the_message_says_what_failed_and_where_to_look() {
        let report = StageReport::new(
            Stage::AfterAllowTraffic,
            "gl-1".into(),
            vec![
                CheckResult::new("health", "http", true, Outcome::Passed, Duration::ZERO, 1),
                CheckResult::new(
                    "5xx rate",
                    "metric",
                    true,
                    Outcome::mismatch("green", "at most 1", "5.2"),
                    Duration::ZERO,
                    1,
                ),
            ],
            Vec::new(),
            Vec::new(),
            Duration::ZERO,
        )
        .for_deployment("d-ABC123456");
        let message = compose(&report, Some("https://console/log"));
        assert_eq!(
            message.subject,
            "greenlight: AfterAllowTraffic failed for d-ABC123456"
        );
        assert!(
            message
                .text
                .starts_with("FAILED: AfterAllowTraffic failed for deployment d-ABC123456")
        );
        assert!(
            message
                .text
                .contains("\n- 5xx rate: green: expected at most 1, got 5.2")
        );
        assert!(message.text.ends_with("\nLog: https://console/log"));
        assert!(!message.text.contains("health"));
    }
}
