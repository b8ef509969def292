//! Errors of the library. A failed check is never one of these: it is an [`crate::outcome::Outcome`].

use std::path::PathBuf;

/// The config could not be loaded or does not make sense. Every message names the field, the
/// value and the fix, because the person reading it is on call and the deployment is waiting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `GREENLIGHT_CONFIG` is not set.
    #[error(
        "GREENLIGHT_CONFIG is not set: set it to the YAML or JSON config itself, or to file:PATH \
         (see the README, section Config)"
    )]
    Missing,
    /// The config file named cannot be read.
    #[error("cannot read the config file {path}: {reason}; make {via} name a readable file")]
    Read {
        /// The file named.
        path: PathBuf,
        /// Why reading failed, in the OS's words (said once: it is not a `source`, so error
        /// chains do not repeat it).
        reason: String,
        /// How the user named it: `GREENLIGHT_CONFIG=file:PATH`, or the CLI's `-c/--config`.
        via: &'static str,
    },
    /// The document does not parse, or a field has the wrong type or an unknown name.
    #[error("config error at `{path}`: {problem}")]
    Parse {
        /// Where in the document (`stages.AfterAllowTestTraffic.checks[0].http.expect`), or `.` for the root.
        path: String,
        /// The parser's own words, which carry line and column.
        problem: String,
    },
    /// A field parses but its value cannot work.
    #[error("config error at `{path}`: {problem} (got {value}); {fix}")]
    Invalid {
        /// Where in the document.
        path: String,
        /// The offending value, already redacted where it could be secret.
        value: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The config has no entry for the stage being run.
    #[error(
        "the config has no stage {stage}: add `stages: {{ {stage}: {{ checks: [...] }} }}` \
         (an explicit empty list passes the stage on purpose)"
    )]
    NoStage {
        /// The stage asked for.
        stage: crate::stage::Stage,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        path: impl Into<String>,
        value: impl std::fmt::Display,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            value: value.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// The hook event is not one greenlight can answer.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not a JSON object at all.
    #[error(
        "the hook event is not a JSON object (got {got}): CodeDeploy sends \
         {{\"DeploymentId\": \"d-...\", \"LifecycleEventHookExecutionId\": \"...\"}} and ECS \
         {{\"executionId\": \"...\", \"lifecycleStage\": \"...\"}}; \
         try `cargo lambda invoke --data-file events/after-allow-test-traffic.json`"
    )]
    NotAnObject {
        /// The JSON type that came instead.
        got: &'static str,
    },
    /// A required id is absent, empty or not a string.
    #[error(
        "the hook event has no usable {field} (a non-empty string is required): CodeDeploy sends \
         {{\"DeploymentId\": \"d-...\", \"LifecycleEventHookExecutionId\": \"...\"}}; \
         the samples in events/ show the shape"
    )]
    MissingId {
        /// The field name.
        field: &'static str,
    },
    /// An ECS hook payload without a required field.
    #[error(
        "the ECS hook event has no usable {field} (a non-empty string is required): ECS sends \
         {{\"executionId\": \"...\", \"lifecycleStage\": \"POST_TEST_TRAFFIC_SHIFT\", ...}}; \
         the samples in events/ecs-*.json show the shape"
    )]
    MissingEcsField {
        /// The field name.
        field: &'static str,
    },
}

/// Sending the status to CodeDeploy failed for good (after the SDK's retries).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// CodeDeploy answered with an error other than "already completed".
    #[error(
        "CodeDeploy rejected the {status} report for hook execution {execution_id}: {code}: {message}; \
         check the function's IAM permission codedeploy:PutLifecycleEventHookExecutionStatus and the event ids"
    )]
    Rejected {
        /// The status that was sent.
        status: &'static str,
        /// The hook execution id.
        execution_id: String,
        /// The AWS error code (`__type`).
        code: String,
        /// The AWS error message.
        message: String,
    },
    /// No answer: network, timeout, credentials, or retries used up.
    #[error(
        "could not report {status} for hook execution {execution_id} to CodeDeploy: {cause}; \
         check network access to the CodeDeploy endpoint (NAT gateway or VPC endpoint) and credentials"
    )]
    Unreachable {
        /// The status that was sent.
        status: &'static str,
        /// The hook execution id.
        execution_id: String,
        /// The underlying error chain.
        cause: String,
    },
}

/// Join an error and its sources into one line, so the root cause (`connection refused`,
/// `UnknownIssuer`) is not hidden behind a generic top-level message.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
