//! The lifecycle stages a hook can run at, named as CodeDeploy names them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A lifecycle hook of an ECS blue/green deployment that greenlight validates.
///
/// The three stages are the ones where the test listener already reaches green, so there is
/// something to check. ECS-native stage names map onto the same three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    /// Test listener → green, production listener → blue.
    AfterAllowTestTraffic,
    /// Last gate before production traffic moves to green.
    BeforeAllowTraffic,
    /// Production listener now serves green.
    AfterAllowTraffic,
}

impl Stage {
    /// All stages, in the order CodeDeploy runs them.
    pub const ALL: [Stage; 3] = [
        Stage::AfterAllowTestTraffic,
        Stage::BeforeAllowTraffic,
        Stage::AfterAllowTraffic,
    ];

    /// The CodeDeploy hook name (`AfterAllowTestTraffic`, …), also the key under `stages:` in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AfterAllowTestTraffic => "AfterAllowTestTraffic",
            Stage::BeforeAllowTraffic => "BeforeAllowTraffic",
            Stage::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// The ECS-native lifecycle stage that corresponds to this hook.
    pub fn ecs_name(self) -> &'static str {
        match self {
            Stage::AfterAllowTestTraffic => "POST_TEST_TRAFFIC_SHIFT",
            Stage::BeforeAllowTraffic => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            Stage::AfterAllowTraffic => "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }

    /// The stage for an ECS-native lifecycle stage name, if greenlight checks that stage.
    /// `PRODUCTION_TRAFFIC_SHIFT` (every step of a canary or linear shift) is checked as
    /// AfterAllowTraffic: production traffic on green, at the step's weight.
    pub fn from_ecs_name(name: &str) -> Option<Stage> {
        if name.trim() == "PRODUCTION_TRAFFIC_SHIFT" {
            return Some(Stage::AfterAllowTraffic);
        }
        Stage::ALL
            .into_iter()
            .find(|stage| stage.ecs_name() == name.trim())
    }

    fn kebab(self) -> &'static str {
        match self {
            Stage::AfterAllowTestTraffic => "after-allow-test-traffic",
            Stage::BeforeAllowTraffic => "before-allow-traffic",
            Stage::AfterAllowTraffic => "after-allow-traffic",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage name that is none of the three greenlight knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown stage {given:?}: use AfterAllowTestTraffic, BeforeAllowTraffic or AfterAllowTraffic \
     (ECS names POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT also work)"
)]
pub struct UnknownStage {
    /// What was given.
    pub given: String,
}

impl FromStr for Stage {
    type Err = UnknownStage;

    /// Accepts the CodeDeploy name in any case, its kebab-case binary name, or the ECS stage name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Stage::ALL
            .into_iter()
            .find(|stage| {
                wanted.eq_ignore_ascii_case(stage.as_str())
                    || wanted.eq_ignore_ascii_case(stage.kebab())
                    || wanted.eq_ignore_ascii_case(stage.ecs_name())
            })
            .ok_or_else(|| UnknownStage {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
            assert_eq!(stage.kebab().parse::<Stage>(), Ok(stage));
            assert_eq!(stage.ecs_name().parse::<Stage>(), Ok(stage));
            assert_eq!(stage.as_str().to_lowercase().parse::<Stage>(), Ok(stage));
        }
    }

    #[test]
    fn unknown_stage_names_the_valid_ones() {
        let err = "BeforeInstall".parse::<Stage>().unwrap_err().to_string();
        assert!(err.contains("BeforeInstall"), "{err}");
        assert!(err.contains("AfterAllowTestTraffic"), "{err}");
    }
}
