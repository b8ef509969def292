//! `notify:` where a stage's final verdict is sent: an SNS topic and/or a Slack-compatible
//! incoming webhook (whose URL is a credential, so it must come from `secrets:`).

use serde::Deserialize;

use crate::error::ConfigError;

/// Where verdicts go, and which.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// An SNS topic ARN in the function's region.
    pub sns_topic: Option<String>,
    /// A Slack-compatible incoming webhook: `{{secrets.NAME}}`, never the URL itself.
    pub webhook: Option<String>,
    /// Which verdicts to send: `passed`, `failed` (both by default).
    #[serde(default = "both")]
    pub on: Vec<NotifyOn>,
}

/// A verdict worth a notification.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// The stage passed.
    Passed,
    /// The stage failed.
    Failed,
}

fn both() -> Vec<NotifyOn> {
    vec![NotifyOn::Passed, NotifyOn::Failed]
}

impl NotifySpec {
    /// The secret that holds the webhook's URL.
    pub fn webhook_secret(&self) -> Option<&str> {
        let inner = self
            .webhook
            .as_deref()?
            .trim()
            .strip_prefix("{{")?
            .strip_suffix("}}")?
            .trim();
        inner.strip_prefix("secrets.")
    }

    /// Check the shape: something to send to, a topic ARN, a webhook from a secret.
    pub fn validate(&self, secrets: &[&str]) -> Result<(), ConfigError> {
        if self.sns_topic.is_none() && self.webhook.is_none() {
            return Err(ConfigError::invalid(
                "notify",
                "{}",
                "nowhere to send the verdict",
                "give sns_topic: arn:aws:sns:REGION:ACCOUNT:NAME and/or webhook: \"{{secrets.NAME}}\"",
            ));
        }
        if let Some(topic) = &self.sns_topic {
            let parts: Vec<&str> = topic.split(':').collect();
            let valid = parts.len() == 6
                && parts[0] == "arn"
                && parts[1].starts_with("aws")
                && parts[2] == "sns"
                && !parts[3].is_empty()
                && parts[4].len() == 12
                && !parts[5].is_empty();
            if !valid {
                return Err(ConfigError::invalid(
                    "notify.sns_topic",
                    topic,
                    "not an SNS topic ARN",
                    "write arn:aws:sns:REGION:ACCOUNT:NAME",
                ));
            }
        }
        if let Some(webhook) = &self.webhook {
            match self.webhook_secret() {
                Some(name) if secrets.contains(&name) => {}
                Some(name) => {
                    return Err(ConfigError::invalid(
                        "notify.webhook",
                        webhook,
                        format!("no secret named {name}"),
                        format!("add secrets: {{ {name}: {{ secretsmanager: ID }} }}"),
                    ));
                }
                // The URL itself is refused without being echoed: it is a credential.
                None => {
                    return Err(ConfigError::invalid(
                        "notify.webhook",
                        "(not shown: a webhook URL is a credential)",
                        "a webhook URL in the config would leak with it",
                        "keep the URL in a secret and write webhook: \"{{secrets.NAME}}\"",
                    ));
                }
            }
        }
        if self.on.is_empty() {
            return Err(ConfigError::invalid(
                "notify.on",
                "[]",
                "no verdict would be sent",
                "use on: [failed] or on: [passed, failed], or remove notify",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> NotifySpec {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn webhooks_come_from_secrets_and_topics_are_arns() {
        let good = spec(
            "{ sns_topic: 'arn:aws:sns:us-east-1:123456789012:deploys', webhook: '{{secrets.slack}}' }",
        );
        good.validate(&["slack"]).unwrap();
        assert_eq!(good.webhook_secret(), Some("slack"));
        assert_eq!(good.on, [NotifyOn::Passed, NotifyOn::Failed]);
        for (text, wanted) in [
            ("{ on: [failed] }", "nowhere"),
            (
                "{ sns_topic: 'arn:aws:sqs:us-east-1:123456789012:q' }",
                "not an SNS topic ARN",
            ),
            ("{ webhook: '{{secrets.nope}}' }", "no secret named nope"),
            (
                "{ webhook: 'https://hooks.slack.com/services/T0/B0/XyZsecret' }",
                "a credential",
            ),
        ] {
            let err = spec(text).validate(&["slack"]).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text}: {err}");
            assert!(!err.contains("XyZsecret"), "{err}");
        }
    }
}
