//! The `alarms` check: the CloudWatch alarms the team already keeps, read once. An alarm in
//! `ALARM` fails the check with its name, CloudWatch's reason and since when; a named alarm
//! that does not exist, or a prefix that matches none, is an error: a typo must not pass.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::metric::RUN_TIMEOUT;
use crate::aws::{AlarmState, Aws};
use crate::config::{AlarmsSpec, InsufficientData};
use crate::outcome::{Mismatch, Outcome};

/// 10000-01-01T00:00:00Z, in seconds since 1970: the first moment RFC 3339 cannot write.
const YEAR_10000: f64 = 253_402_300_800.0;

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

    /// Read the alarms' states and judge them, within [`RUN_TIMEOUT`].
    pub(crate) async fn run(&self, aws: &Arc<Aws>) -> Outcome {
        self.run_within(aws, RUN_TIMEOUT).await
    }

    async fn run_within(&self, aws: &Arc<Aws>, limit: Duration) -> Outcome {
        match tokio::time::timeout(limit, self.read_and_judge(aws)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::error(format!(
                "CloudWatch's alarm states did not all come within {}, the most an alarms check may take: \
                 check the route to CloudWatch's API and its throttling, or name the alarms (or a narrower prefix)",
                humantime::format_duration(limit)
            )),
        }
    }

    async fn read_and_judge(&self, aws: &Aws) -> Outcome {
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
                // Since when is told, not judged: a time RFC 3339 cannot write (before 1970,
                // from year 10000 on) is left out, and no conversion on the way can panic.
                let since = alarm
                    .state_updated_timestamp
                    .filter(|seconds| (0.0..YEAR_10000).contains(seconds))
                    .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                    .and_then(|since| SystemTime::UNIX_EPOCH.checked_add(since))
                    .map(|at| format!(" since {}", crate::outcome::rfc3339(at)))
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

    #[test]
    fn a_since_when_no_date_can_show_is_left_out_never_a_panic() {
        let c = check(&["a"], InsufficientData::Pass);
        for seconds in [253_402_300_800.0, 1e300, -1.0, f64::NAN, f64::INFINITY] {
            let mut firing = alarm("a", "ALARM");
            firing.state_updated_timestamp = Some(seconds);
            let Outcome::Failed { failures } = c.judge(&[firing]) else {
                panic!("a firing alarm fails")
            };
            assert_eq!(failures[0].actual, "ALARM: a reason", "{seconds}");
        }
    }

    #[tokio::test]
    async fn a_run_stops_at_its_timeout_with_an_error_that_says_so() {
        // A CloudWatch that answers every page slowly, with another page to come.
        let (url, requests) = crate::aws::cloudwatch::fake::cloudwatch(Arc::new(|n, _| {
            let page = serde_json::json!({"MetricAlarms": [], "NextToken": format!("{}", n + 1)});
            (Duration::from_millis(100), page.to_string())
        }))
        .await;
        let aws = Arc::new(Aws::for_tests(&url));
        let started = std::time::Instant::now();
        let outcome = AlarmsCheck {
            names: Vec::new(),
            prefix: Some("payments-".into()),
            insufficient_data: InsufficientData::Pass,
        }
        .run_within(&aws, Duration::from_millis(450))
        .await;
        let Outcome::Error { error, .. } = outcome else {
            panic!("a slow CloudWatch is an error: {outcome:?}")
        };
        assert!(
            error.contains("did not all come within 450ms") && error.contains("narrower prefix"),
            "{error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(requests.load(std::sync::atomic::Ordering::SeqCst) <= 5);
        // The run's limit is the attempt time its worst case is planned with.
        let kind = super::super::CheckKind::Alarms(check(&["a"], InsufficientData::Pass));
        assert_eq!(kind.attempt_timeout(), RUN_TIMEOUT);
    }
}
