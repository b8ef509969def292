//! The `alarms` check: the CloudWatch alarms the team already keeps, read once. An alarm in
//! `ALARM` fails the check with its name, CloudWatch's reason and since when; a named alarm
//! that does not exist, or a prefix that matches none, is an error: a typo must not pass.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::aws::{AlarmState, Aws};
use crate::config::{AlarmsSpec, InsufficientData};
use crate::outcome::{Mismatch, Outcome};

/// A planned alarms check.
#[derive(Debug, Clone)]
pub(crate) struct AlarmsCheck {
    /// Alarms by name; each must exist.
    pub names: Vec<String>,
    /// Alarms by name prefix; at least one must exist.
    pub prefix: Option<String>,
    /// Whether too little data fails.
    pub insufficient_data: InsufficientData,
}

impl AlarmsCheck {
    /// From its spec.
    pub(crate) fn new(spec: &AlarmsSpec) -> Self {
        AlarmsCheck {
            names: spec.names.clone(),
            prefix: spec.prefix.clone(),
            insufficient_data: spec.insufficient_data,
        }
    }

    /// Read the alarms' states and judge them.
    pub(crate) async fn run(&self, aws: &Arc<Aws>) -> Outcome {
        let mut states = Vec::new();
        if !self.names.is_empty() {
            match aws.describe_alarms(&self.names, None).await {
                Ok(found) => states.extend(found),
                Err(err) => return Outcome::error(format!("{}; {}", err.problem, err.fix)),
            }
        }
        if let Some(prefix) = &self.prefix {
            match aws.describe_alarms(&[], Some(prefix)).await {
                Ok(found) if found.is_empty() => {
                    return Outcome::error(format!(
                        "no CloudWatch alarm's name starts with {prefix:?}: fix the prefix (a typo must not pass)"
                    ));
                }
                Ok(found) => states.extend(found),
                Err(err) => return Outcome::error(format!("{}; {}", err.problem, err.fix)),
            }
        }
        self.judge(&states)
    }

    /// Pure, so every rule is unit-tested.
    fn judge(&self, states: &[AlarmState]) -> Outcome {
        let mut failures = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for alarm in states {
            if !seen.insert(alarm.alarm_name.as_str()) {
                continue;
            }
            let fires = match alarm.state_value.as_str() {
                "OK" => false,
                "INSUFFICIENT_DATA" => self.insufficient_data == InsufficientData::Fail,
                // ALARM, and any state CloudWatch may add: fail closed.
                _ => true,
            };
            if fires {
                let since = alarm
                    .state_updated_timestamp
                    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                    .map(|seconds| {
                        let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds);
                        format!(" since {}", humantime::format_rfc3339_seconds(at))
                    })
                    .unwrap_or_default();
                failures.push(Mismatch::new(
                    format!("alarm {}", alarm.alarm_name),
                    "OK",
                    format!("{}{since}: {}", alarm.state_value, alarm.state_reason),
                ));
            }
        }
        let missing: Vec<&str> = self
            .names
            .iter()
            .map(String::as_str)
            .filter(|name| !seen.contains(name))
            .collect();
        if !missing.is_empty() {
            return Outcome::Error {
                error: format!(
                    "no CloudWatch alarm named {}: fix the name (a typo must not pass)",
                    missing.join(", ")
                ),
                failures,
            };
        }
        if failures.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed { failures }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(name: &str, state: &str) -> AlarmState {
        AlarmState {
            alarm_name: name.into(),
            state_value: state.into(),
            state_reason: format!("{name} reason"),
            state_updated_timestamp: Some(1_795_000_000.0),
        }
    }

    fn check(names: &[&str], insufficient_data: InsufficientData) -> AlarmsCheck {
        AlarmsCheck {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            prefix: None,
            insufficient_data,
        }
    }

    #[test]
    fn firing_alarms_fail_with_name_reason_and_since_when() {
        let c = check(&["a", "b"], InsufficientData::Pass);
        assert!(c.judge(&[alarm("a", "OK"), alarm("b", "OK")]).is_passed());
        let Outcome::Failed { failures } = c.judge(&[alarm("a", "OK"), alarm("b", "ALARM")]) else {
            panic!("a firing alarm fails")
        };
        assert_eq!(failures[0].what, "alarm b");
        assert_eq!(failures[0].expected, "OK");
        assert_eq!(
            failures[0].actual,
            "ALARM since 2026-11-18T11:06:40Z: b reason"
        );
    }

    #[test]
    fn insufficient_data_counts_as_configured_and_unknown_states_fail() {
        let states = [alarm("a", "INSUFFICIENT_DATA")];
        assert!(
            check(&["a"], InsufficientData::Pass)
                .judge(&states)
                .is_passed()
        );
        assert!(
            !check(&["a"], InsufficientData::Fail)
                .judge(&states)
                .is_passed()
        );
        assert!(
            !check(&["a"], InsufficientData::Pass)
                .judge(&[alarm("a", "SOMETHING_NEW")])
                .is_passed()
        );
    }

    #[test]
    fn a_missing_named_alarm_is_an_error_not_a_pass() {
        let outcome = check(
            &["payments-5xx", "payments-latnecy"],
            InsufficientData::Pass,
        )
        .judge(&[alarm("payments-5xx", "ALARM")]);
        let Outcome::Error { error, failures } = outcome else {
            panic!("a typo must not pass")
        };
        assert!(error.contains("payments-latnecy"), "{error}");
        assert_eq!(failures.len(), 1, "the firing alarm is still reported");
    }
}
