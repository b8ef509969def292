//! A stage's final verdict, sent where people look: an SNS topic (email, chat, paging) and/or a
//! Slack-compatible incoming webhook. The message says whether the stage passed, and if not
//! which checks failed with what was expected and what came, the deployment id, and a link to
//! the log stream.
//!
//! What it quotes (check names, messages, ids) is text, never markup: SNS gets plain text,
//! each value kept on its line; the webhook gets the same words with Slack's control characters
//! escaped, so a green answering `<!channel>` or `<https://evil.example|AWS console>` pings no one and links
//! nowhere; the one link is greenlight's own, to the log stream.
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
pub(crate) const NOTIFY_BUDGET: Duration = Duration::from_secs(5);

/// Attempts per channel.
const ATTEMPTS: u32 = 2;

/// What is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// A short line (SNS's subject: at most 100 printable ASCII characters).
    pub subject: String,
    /// The whole message as plain text, for SNS (email, SMS).
    pub text: String,
    /// The same message for a Slack-compatible webhook: every quoted value with Slack's
    /// control characters escaped, so text from green can neither mention anyone nor make a
    /// link; greenlight's own log link stays a link.
    pub slack: String,
}

/// Compose the message for a finished stage.
///
/// Everything but greenlight's own fixed words is a quoted value (stage, deployment and run
/// ids, errors, check names and messages: text from the config, from green or from AWS). Each
/// stays on its own line (a value cannot start a line that looks like greenlight's) and, for
/// Slack, has `&`, `<` and `>` escaped as Slack documents.
pub(crate) fn compose(report: &StageReport, log_link: Option<&str>) -> Message {
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
    let mut text = body(report, deployment, one_line);
    let mut slack = body(report, deployment, |value| slack_escape(&one_line(value)));
    if let Some(url) = log_link {
        text.push_str(&format!("\nLog: {}", one_line(url)));
        slack.push_str(&format!(
            "\nLog: {}",
            slack_link(url, "CloudWatch log stream")
        ));
    }
    Message {
        subject,
        text,
        slack,
    }
}

/// The message's lines (without the log link), each quoted value passed through `value`.
fn body(report: &StageReport, deployment: &str, value: impl Fn(&str) -> String) -> String {
    let mark = match report.verdict {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
    };
    let mut text = format!(
        "{mark}: {} {} for deployment {} (run {}): {}",
        value(report.stage.as_str()),
        report.verdict.as_str(),
        value(deployment),
        value(&report.run_id),
        report.counts()
    );
    for error in &report.errors {
        text.push_str(&format!("\n- error: {}", value(error)));
    }
    for check in report.checks.iter().filter(|c| !c.outcome.is_passed()) {
        let optional = if check.required { "" } else { " (optional)" };
        text.push_str(&format!(
            "\n- {}{optional}: {}",
            value(&check.name),
            value(&check.message)
        ));
    }
    text
}

/// A value on one line: line breaks and tabs become spaces, other control characters and the
/// bidirectional overrides (which can make text read other than it is) become U+FFFD.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => '\u{FFFD}',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Text for a Slack message: `&`, `<` and `>` are Slack's control characters (a `<` starts a
/// link or a mention such as `<!channel>`), escaped as HTML entities the way Slack documents;
/// nothing else is entity-encoded (Slack would show it as typed).
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A Slack link `<url|label>` to a page greenlight built, when the URL is an https URL of
/// plain printable ASCII without `<`, `>`, `|` or `&` (nothing in it can end the link, start
/// another one or change its label); anything else is shown as escaped text, never a link.
fn slack_link(url: &str, label: &str) -> String {
    let safe = url.starts_with("https://")
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '|' | '&'));
    if safe {
        format!("<{url}|{}>", slack_escape(label))
    } else {
        slack_escape(&one_line(url))
    }
}

/// The CloudWatch console link to this invocation's log stream, from Lambda's environment.
pub(crate) fn log_link() -> Option<String> {
    let group = std::env::var("AWS_LAMBDA_LOG_GROUP_NAME").ok()?;
    let stream = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").ok()?;
    let region = std::env::var("AWS_REGION").ok()?;
    console_link(&region, &group, &stream)
}

/// The console's link to a log stream. Group and stream are each one encoded component, so no
/// character of theirs (`|`, `>`, `&`, `#`, `/`…) survives as itself; a region that is not a
/// plain host label (`us-east-1`) would change the host: no link then.
fn console_link(region: &str, group: &str, stream: &str) -> Option<String> {
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return None;
    }
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
        encode(group),
        encode(stream)
    ))
}

/// Whether this verdict is one the config wants sent.
pub(crate) fn wanted(spec: &NotifySpec, verdict: Verdict) -> bool {
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
                post_webhook(aws, url, &message.slack).await
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

    /// What a hostile green answers: a mention of the whole channel and a disguised link.
    const MARKUP: &str = "<!channel> approve here: <https://evil.example|AWS console> & Q&A";

    fn hostile_report() -> StageReport {
        StageReport::new(
            Stage::AfterAllowTestTraffic,
            "gl-<@U0ADMIN>".into(),
            vec![CheckResult::new(
                "pay <!here>",
                "http",
                true,
                Outcome::mismatch("json /version", "\"v9\"", format!("\"{MARKUP}\"")),
                Duration::ZERO,
                1,
            )],
            vec!["config <b>&</b>".into()],
            Vec::new(),
            Duration::ZERO,
        )
        .for_deployment("d-<!everyone>")
    }

    /// The `<` that start a Slack mention or link, anywhere in `text`.
    fn markup_in(text: &str) -> Vec<&str> {
        [
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "<@U0ADMIN>",
            "<https://evil",
            "<b>",
        ]
        .into_iter()
        .filter(|m| text.contains(m))
        .collect()
    }

    #[test]
    fn a_slack_message_quotes_green_as_text_not_markup() {
        let link = console_link("us-east-1", "/aws/lambda/hook", "2026/01/01/[$LATEST]ab").unwrap();
        let message = compose(&hostile_report(), Some(&link));
        let slack = &message.slack;
        assert_eq!(markup_in(slack), Vec::<&str>::new(), "{slack}");
        // Escaped once, Slack's way: shown as typed, nothing entity-encoded twice.
        assert!(
            slack.contains(
                "&lt;!channel&gt; approve here: &lt;https://evil.example|AWS console&gt; &amp; Q&amp;A"
            ),
            "{slack}"
        );
        assert!(
            !slack.contains("&amp;amp;") && !slack.contains("&amp;lt;"),
            "{slack}"
        );
        assert!(
            slack.contains("- pay &lt;!here&gt;: json /version"),
            "{slack}"
        );
        assert!(
            slack.contains("- error: config &lt;b&gt;&amp;&lt;/b&gt;"),
            "{slack}"
        );
        assert!(
            slack.contains("for deployment d-&lt;!everyone&gt; (run gl-&lt;@U0ADMIN&gt;)"),
            "{slack}"
        );
        // The one link is greenlight's own, whole.
        assert_eq!(slack.matches('<').count(), 1, "{slack}");
        assert!(
            slack.ends_with(&format!("\nLog: <{link}|CloudWatch log stream>")),
            "{slack}"
        );
    }

    #[test]
    fn sns_gets_the_same_words_as_plain_text() {
        let message = compose(&hostile_report(), Some("https://console/log"));
        // Plain text (email, SMS) has no markup to escape: the words as green sent them.
        assert!(message.text.contains(MARKUP), "{}", message.text);
        assert!(!message.text.contains("&amp;") && !message.text.contains("&lt;"));
        assert!(message.text.contains("- error: config <b>&</b>"));
        assert!(message.text.ends_with("\nLog: https://console/log"));
        assert!(message.subject.is_ascii() && message.subject.len() <= 100);
    }

    #[test]
    fn a_quoted_value_cannot_start_a_line_of_its_own() {
        let report = StageReport::new(
            Stage::AfterAllowTraffic,
            "gl-1".into(),
            vec![CheckResult::new(
                "smoke\nPASSED: AfterAllowTraffic passed",
                "http",
                true,
                Outcome::error("got \"ok\r\n- all checks passed\u{202E}txt.exe\u{7}\""),
                Duration::ZERO,
                1,
            )],
            Vec::new(),
            Vec::new(),
            Duration::ZERO,
        );
        let message = compose(&report, None);
        for text in [&message.text, &message.slack] {
            assert_eq!(text.lines().count(), 2, "{text}");
            assert!(text.starts_with("FAILED: "), "{text}");
            assert!(
                !text.contains('\u{202E}') && !text.contains('\u{7}'),
                "{text}"
            );
        }
    }

    #[test]
    fn the_log_link_stays_a_link_nothing_can_break_out_of() {
        // Group and stream are encoded components: `|`, `>`, `&` and spaces do not survive.
        let link = console_link("eu-west-1", "/g|x>y", "s <!channel>&|").unwrap();
        assert!(!link.contains(['|', '<', '>', '&', ' ']), "{link}");
        assert_eq!(
            slack_link(&link, "CloudWatch log stream"),
            format!("<{link}|CloudWatch log stream>")
        );
        // A region that is not a host label makes no link at all.
        assert_eq!(console_link("us-east-1|evil", "g", "s"), None);
        assert_eq!(console_link("evil.example/x", "g", "s"), None);
        assert_eq!(console_link("", "g", "s"), None);
        // A URL that could end the link or relabel it is shown as text, never linked.
        for url in [
            "https://evil.example|AWS console",
            "https://a.example/>x",
            "https://a.example/?a=1&b=<!channel>",
            "http://plain.example/",
            "javascript:alert(1)",
        ] {
            let shown = slack_link(url, "CloudWatch log stream");
            assert!(
                !shown.contains('<') && !shown.contains('>'),
                "{url} -> {shown}"
            );
        }
    }
}
