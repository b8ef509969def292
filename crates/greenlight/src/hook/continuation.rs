//! A watch that outlasts one invocation: how a CodeDeploy hook reaches its own next invocation,
//! and how any invocation decides whether to believe the state it was handed (sealed, this
//! execution's, within the config's bounds) before anything runs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Engine, Hook};
use crate::hook::seal::{Binding, SealError};
use crate::report::codedeploy::StatusSink;
use crate::suite::Suite;

/// How a CodeDeploy hook reaches its own next invocation: this function, by name and version.
pub struct Continuation {
    /// AWS access (Lambda `Invoke`).
    pub aws: Arc<crate::aws::Aws>,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`, unless `$LATEST`.
    pub qualifier: Option<String>,
}

impl Continuation {
    /// This function, as Lambda's environment names it; `None` outside Lambda.
    pub fn from_env(aws: Arc<crate::aws::Aws>) -> Option<Self> {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())?;
        let qualifier = std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
            .ok()
            .filter(|version| !version.trim().is_empty() && version != "$LATEST");
        Some(Continuation {
            aws,
            function,
            qualifier,
        })
    }
}

/// How long CodeDeploy waits for a hook's status: no chain of continuations outlives it.
pub(super) const CODEDEPLOY_WAIT: Duration = Duration::from_secs(3600);

impl<S: StatusSink> Hook<S> {
    /// The watch state to resume from, verified and checked against this execution; or why
    /// the invocation must fail closed, running nothing: a state that does not verify, is
    /// another's, or comes for a stage with nothing repeating; a watch CodeDeploy's hour cannot
    /// hold; a watch that will need a continuation when no key can seal its state.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn resume(
        &self,
        suite: &Suite,
        run_id: &str,
        binding: Binding<'_>,
        carried: Option<&Value>,
        engine: Engine,
        per_invocation: Duration,
    ) -> Result<Option<crate::executor::WatchState>, String> {
        let stage = self.stage;
        let longest = suite.longest_watch(stage);
        if engine == Engine::CodeDeploy
            && let Some(longest) = longest
            && longest > crate::config::repeat::CODEDEPLOY_MAX_WATCH
        {
            return Err(format!(
                "config error: a check of {stage} repeats for {}, and CodeDeploy waits at most one \
                 hour for a hook: repeat for at most {} (ECS-native hooks may watch for up to 24h)",
                humantime::format_duration(longest),
                humantime::format_duration(crate::config::repeat::CODEDEPLOY_MAX_WATCH)
            ));
        }
        let Some(carried) = carried else {
            // The first invocation: a watch that cannot finish in it will hand its state on,
            // which needs the key. Say so now, before anything runs.
            if let Some(longest) = longest.filter(|longest| *longest > per_invocation)
                && let Err(err) = self.state_key().await
            {
                return Err(format!(
                    "config error: a check of {stage} repeats for {}, longer than one invocation \
                     leaves for the checks ({}), so the watch must hand its state on: {err}",
                    humantime::format_duration(longest),
                    humantime::format_duration(per_invocation)
                ));
            }
            return Ok(None);
        };
        let key = self
            .state_key()
            .await
            .as_ref()
            .map_err(|err| SealError::NoKey(err.clone()).to_string())?;
        let value = key.open(&binding, carried).map_err(|err| err.to_string())?;
        crate::executor::WatchState::resume(&value, run_id, stage)
            .map(Some)
            .map_err(|err| err.to_string())
    }
}
