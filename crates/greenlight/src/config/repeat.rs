//! Watching over time, as written: `repeat` (run a check again and again over a bake window)
//! and `when` (run a check only from a traffic weight on). Their limits live here, beside the
//! specs.

use std::time::Duration;

use serde::Deserialize;

use crate::config::types::Dur;
use crate::error::ConfigError;

/// The longest watch a config may ask for: ECS's default lifecycle-hook timeout.
pub(crate) const MAX_WATCH: Duration = Duration::from_secs(24 * 3600);

/// The longest watch a CodeDeploy hook can carry: CodeDeploy waits one hour for a hook's
/// status, and the last run and the report need time inside it.
pub const CODEDEPLOY_MAX_WATCH: Duration = Duration::from_secs(55 * 60);

/// The shortest interval between two runs of a repeating check.
pub(crate) const MIN_EVERY: Duration = Duration::from_secs(1);

/// Errors in a row that end a repeating check as an error (Argo Rollouts' default).
pub(crate) const DEFAULT_ERROR_LIMIT: u32 = 3;

/// Variables every check can use about the watch and the traffic: the run's index within a
/// repeat, and the production weights of green and blue (percent).
pub(crate) const WATCH_VARIABLES: [&str; 3] = ["repeat", "green_weight", "blue_weight"];

/// `repeat:` run the check at `initial_delay`, then every `every`, while the time since the
/// stage started is at most `for`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepeatSpec {
    /// Time between two runs' starts.
    pub every: Dur,
    /// How long the watch lasts, from the stage's start.
    #[serde(rename = "for")]
    pub for_: Dur,
    /// Failed runs allowed; one more fails the check at once.
    #[serde(default)]
    pub failure_limit: u32,
    /// Runs in a row that could not run (`error`) before the check is an error.
    #[serde(default = "default_error_limit")]
    pub error_limit: u32,
    /// When the first run starts.
    #[serde(default)]
    pub initial_delay: Dur,
}

fn default_error_limit() -> u32 {
    DEFAULT_ERROR_LIMIT
}

impl RepeatSpec {
    /// How many runs the watch makes: at `initial_delay + i × every` for every `i` that is
    /// still inside `for`.
    pub fn runs(&self) -> u32 {
        let span = self.for_.0.saturating_sub(self.initial_delay.0);
        let every = self.every.0.max(MIN_EVERY);
        u32::try_from(span.as_millis() / every.as_millis() + 1).unwrap_or(u32::MAX)
    }

    /// When run `index` starts, from the stage's start.
    pub fn offset(&self, index: u32) -> Duration {
        self.initial_delay.0 + self.every.0 * index
    }

    /// Check the numbers against each other and the limits.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.every.0 < MIN_EVERY {
            return Err(ConfigError::invalid(
                format!("{path}.every"),
                self.every,
                "runs closer than a second apart",
                "use every: 1s or more (every: 1m watches a bake as Argo Rollouts does)",
            ));
        }
        if self.for_.0 > MAX_WATCH {
            return Err(ConfigError::invalid(
                format!("{path}.for"),
                self.for_,
                "longer than ECS's lifecycle-hook timeout (24h)",
                "watch for at most 24h (and at most 55m with CodeDeploy, whose hooks wait one hour)",
            ));
        }
        if self.initial_delay.0 > self.for_.0 {
            return Err(ConfigError::invalid(
                format!("{path}.initial_delay"),
                self.initial_delay,
                "the first run would start after the watch ends",
                format!("use an initial_delay of at most for ({})", self.for_),
            ));
        }
        if self.error_limit == 0 {
            return Err(ConfigError::invalid(
                format!("{path}.error_limit"),
                0,
                "every run that could not run would end the watch before it counted",
                "use error_limit: 1 or more (3 by default)",
            ));
        }
        if self.failure_limit >= self.runs() {
            return Err(ConfigError::invalid(
                format!("{path}.failure_limit"),
                self.failure_limit,
                format!(
                    "the watch makes only {} runs, so it could never fail",
                    self.runs()
                ),
                "use a failure_limit below the number of runs (0 fails at the first failed run)",
            ));
        }
        Ok(())
    }
}

/// `when:` conditions on the deployment's traffic for a check to run at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// Run only once green serves at least this percent of production traffic (a canary or
    /// linear step's weight).
    pub green_weight_at_least: Option<u8>,
}

impl WhenSpec {
    /// Whether a check with this condition runs at `green_weight` (percent); the reason when
    /// it does not.
    pub fn skips(&self, green_weight: u8) -> Option<String> {
        match self.green_weight_at_least {
            Some(least) if green_weight < least => Some(format!(
                "green serves {green_weight} % of production traffic, below \
                 when.green_weight_at_least ({least} %)"
            )),
            _ => None,
        }
    }

    /// Check the numbers.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if let Some(least) = self.green_weight_at_least
            && least > 100
        {
            return Err(ConfigError::invalid(
                format!("{path}.green_weight_at_least"),
                least,
                "a weight is a percentage",
                "use 0 to 100",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repeat(text: &str) -> RepeatSpec {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn runs_start_at_the_delay_and_stay_inside_the_window() {
        let r = repeat("{ every: 1m, for: 30m, failure_limit: 1, initial_delay: 2m }");
        assert_eq!(r.runs(), 29);
        assert_eq!(r.offset(0), Duration::from_secs(120));
        assert_eq!(r.offset(28), Duration::from_secs(30 * 60));
        assert_eq!(r.error_limit, DEFAULT_ERROR_LIMIT);
        assert_eq!(repeat("{ every: 5m, for: 30m }").runs(), 7);
        r.validate("r").unwrap();
    }

    #[test]
    fn impossible_watches_are_refused_with_the_fix() {
        for (text, field) in [
            ("{ every: 500ms, for: 1m }", "r.every"),
            ("{ every: 1m, for: 25h }", "r.for"),
            (
                "{ every: 1m, for: 1m, initial_delay: 2m }",
                "r.initial_delay",
            ),
            ("{ every: 1m, for: 1m, error_limit: 0 }", "r.error_limit"),
            (
                "{ every: 1m, for: 2m, failure_limit: 3 }",
                "r.failure_limit",
            ),
        ] {
            let err = repeat(text).validate("r").unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn when_skips_below_the_weight() {
        let when = WhenSpec {
            green_weight_at_least: Some(50),
        };
        assert!(when.skips(10).unwrap().contains("10 %"));
        assert_eq!(when.skips(50), None);
        assert_eq!(WhenSpec::default().skips(0), None);
    }
}
