//! A loaded config with its clients and plans: what a cold start builds once and every
//! invocation runs. This is where the one-way flow is wired: config → plan → outcomes →
//! verdict → report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::Aws;
use crate::check::{Progress, RunContext};
use crate::config::Config;
use crate::discovery::TargetGroups;
use crate::error::ConfigError;
use crate::executor::{WatchState, WatchStep};
use crate::outcome::CheckResult;
use crate::plan::{Bound, Plans, RunInputs};
use crate::redact::Redactor;
use crate::report::StageReport;
use crate::source::Source;
use crate::stage::Stage;
use crate::transport::client::{BodyBudget, TargetSettings, Targets};

/// A validated config, its HTTP clients, its plans and its redactor.
#[derive(Clone)]
pub struct Suite {
    /// The validated config the clients and plans were built from.
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    targets: Arc<Targets>,
    plans: Arc<Plans>,
    secrets: Arc<BTreeMap<String, String>>,
    /// Secrets the cold start could not read, and why: `{{secrets.NAME}}` fails with it.
    missing: Arc<BTreeMap<String, String>>,
    redactor: Redactor,
    aws: Arc<Aws>,
    /// The stages with a check that uses `{{green_target_group}}` and the like.
    target_group_stages: Vec<Stage>,
    progress: Option<Arc<dyn Progress>>,
}

impl Suite {
    /// Load `GREENLIGHT_CONFIG` from wherever it points, resolve its secrets, build the
    /// clients and the plans: what a cold start does once.
    pub async fn from_env(aws: &Arc<Aws>) -> Result<ColdStart, ConfigError> {
        let loaded = crate::source::load_env(aws).await?;
        let suite = Suite::load(loaded.config, loaded.source, aws).await?;
        Ok(ColdStart {
            suite,
            version: loaded.version,
        })
    }

    /// Resolve every secret (environment, Secrets Manager, SSM), build the clients and plans.
    /// The same AWS access serves the checks that read CloudWatch.
    pub async fn load(
        config: Config,
        source: Source,
        aws: &Arc<Aws>,
    ) -> Result<Suite, ConfigError> {
        let secrets = crate::source::secrets(&config, aws).await;
        Suite::resolved(config, source, secrets, Arc::clone(aws))
    }

    /// Build a suite whose secrets all come from the environment (tests, and callers without
    /// AWS access). A secret from AWS is missing here: use [`Suite::load`].
    pub fn new(config: Config, source: Source) -> Result<Suite, ConfigError> {
        let secrets = crate::source::env_secrets(&config);
        Suite::resolved(config, source, secrets, Arc::new(Aws::new()))
    }

    /// A suite from the secrets a cold start could read. A missing one fails only the stages
    /// whose checks use it (rendering `{{secrets.NAME}}` says why); a missing notification
    /// webhook fails every stage, since every stage notifies.
    fn resolved(
        config: Config,
        source: Source,
        secrets: crate::source::Resolved,
        aws: Arc<Aws>,
    ) -> Result<Suite, ConfigError> {
        let crate::source::Resolved {
            values,
            mut missing,
        } = secrets;
        if let Some(webhook) = config.notify.as_ref().and_then(|n| n.webhook_secret())
            && let Some(err) = missing.remove(webhook)
        {
            return Err(err);
        }
        let mut suite = Suite::build(config, source, values, aws)?;
        if !missing.is_empty() {
            tracing::warn!(
                secrets = ?missing.keys().collect::<Vec<_>>(),
                "some secrets could not be read: the stages whose checks use them will fail"
            );
        }
        suite.missing = Arc::new(
            missing
                .into_iter()
                .map(|(name, err)| (name, err.to_string()))
                .collect(),
        );
        Ok(suite)
    }

    /// Everything a cold start checks that needs no secret and no network: the clients (CA
    /// bundles included) and every stage's plan. What `greenlight validate` runs.
    pub fn check_offline(config: &Config) -> Result<(), ConfigError> {
        let targets = build_targets(config)?;
        Plans::build(config, &targets).map(|_| ())
    }

    /// Build a suite from a config and its secrets' values, resolved by the caller (AWS
    /// access for CloudWatch checks is loaded from the environment when first needed).
    pub fn with_secrets(
        config: Config,
        source: Source,
        secrets: BTreeMap<String, String>,
    ) -> Result<Suite, ConfigError> {
        Suite::build(config, source, secrets, Arc::new(Aws::new()))
    }

    fn build(
        config: Config,
        source: Source,
        secrets: BTreeMap<String, String>,
        aws: Arc<Aws>,
    ) -> Result<Suite, ConfigError> {
        let targets = build_targets(&config)?;
        let plans = Plans::build(&config, &targets)?;
        let redactor = redactor_for(&config, &secrets);
        let target_group_stages = target_group_stages(&config);
        Ok(Suite {
            config,
            source,
            targets: Arc::new(targets),
            plans: Arc::new(plans),
            secrets: Arc::new(secrets),
            missing: Arc::new(BTreeMap::new()),
            redactor,
            aws,
            target_group_stages,
            progress: None,
        })
    }

    /// Whether any check of `stage` uses the deployment's target groups (so this run must find
    /// green's). Decided once, when the suite is built.
    pub fn needs_target_groups(&self, stage: Stage) -> bool {
        self.target_group_stages.contains(&stage)
    }

    /// How long the longest watch (`repeat.for`) of a stage lasts; `None` when nothing repeats.
    pub fn longest_watch(&self, stage: Stage) -> Option<Duration> {
        self.config.longest_watch(stage)
    }

    /// Send a finished stage's verdict where `notify:` says, within `budget`; each channel's
    /// outcome, logged. Never changes the verdict.
    pub async fn notify(&self, report: &StageReport, budget: Duration) {
        let Some(spec) = &self.config.notify else {
            return;
        };
        if !crate::notify::wanted(spec, report.verdict) {
            return;
        }
        let webhook = spec
            .webhook_secret()
            .and_then(|name| self.secrets.get(name))
            .map(String::as_str);
        let message = crate::notify::compose(report, crate::notify::log_link().as_deref());
        for (channel, outcome) in
            crate::notify::send(spec, webhook, &self.aws, &message, budget).await
        {
            match outcome {
                Ok(()) => {
                    tracing::info!(stage = %report.stage, channel, "verdict notification sent")
                }
                Err(why) => tracing::warn!(
                    stage = %report.stage,
                    channel,
                    error = %self.redactor.scrub(&why),
                    "verdict notification failed; the verdict stands"
                ),
            }
        }
    }

    /// What scrubs the config's secrets from any text that leaves the process.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The AWS access the suite reads through.
    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// Report probe progress here (the CLI does, on a terminal).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Run a whole stage in this process within `budget` (the CLI, and tests): a watch
    /// (`repeat`) must finish within it, so give it the whole watch's time (the CLI does).
    /// Never fails: whatever goes wrong is in the report, and the report's verdict is failed.
    pub async fn run_whole(
        &self,
        stage: Stage,
        budget: Duration,
        run_id: String,
        inputs: StageInputs,
    ) -> StageReport {
        match self.run(stage, budget, run_id, inputs).await {
            StageRun::Decided(report) => report,
            StageRun::Watching { report, .. } => report.with_error(format!(
                "the watch did not finish within the budget of {}: give it the time of its \
                 longest repeat (defaults.budget)",
                humantime::format_duration(budget)
            )),
        }
    }

    /// One invocation's share of a stage: every single check (first invocation) and the runs
    /// of repeating checks that fit in `budget`. Either the stage is decided, or the watch goes
    /// on in another invocation from the state returned.
    pub async fn run(
        &self,
        stage: Stage,
        budget: Duration,
        run_id: String,
        inputs: StageInputs,
    ) -> StageRun {
        let started = Instant::now();
        let plan = match self.plans.get(stage) {
            Ok(plan) => plan,
            Err(err) => {
                return StageRun::Decided(StageReport::not_run(
                    stage,
                    run_id,
                    self.redactor.scrub(&err.to_string()),
                    started.elapsed(),
                ));
            }
        };
        let mut warnings = Vec::new();
        for target in self.targets.iter().filter(|t| t.insecure) {
            warnings.push(format!(
                "TLS verification is OFF for target {} (insecure_skip_tls_verify): a man in the \
                 middle would pass these checks; trust its CA with ca_file instead",
                target.name
            ));
        }
        if plan.checks.is_empty() {
            warnings.push(format!(
                "stage {stage} has no checks: it passes because the config lists none"
            ));
        }
        let deployment_id = inputs.deployment_id.unwrap_or_else(|| "local".to_owned());
        let Bound {
            plan,
            vars,
            skipped,
        } = plan.bind(RunInputs {
            stage,
            run_id: &run_id,
            deployment_id: &deployment_id,
            secrets: &self.secrets,
            missing: &self.missing,
            target_groups: inputs.target_groups,
            green_weight: inputs.green_weight,
        });
        let ctx = Arc::new(RunContext {
            vars,
            redactor: self.redactor.clone(),
            aws: Arc::clone(&self.aws),
            progress: self.progress.clone(),
        });
        let resume = inputs.resume.map(|state| (state, inputs.chain_cap));
        let step = crate::executor::run(&plan, ctx, budget, resume, &run_id, stage).await;
        // The one place a stage's texts are scrubbed before they reach a report.
        let report = |checks: Vec<CheckResult>, errors: Vec<String>| {
            let checks = checks
                .into_iter()
                .map(|check| check.redacted(&self.redactor))
                .collect();
            let errors = errors
                .iter()
                .map(|error| self.redactor.scrub(error))
                .collect();
            let mut report = StageReport::new(
                stage,
                run_id.clone(),
                checks,
                errors,
                warnings.clone(),
                started.elapsed(),
            );
            report.skipped = skipped.clone();
            report
        };
        match step {
            Ok(WatchStep::Done(checks)) => StageRun::Decided(report(checks, Vec::new())),
            Ok(WatchStep::Continue {
                state,
                wait,
                so_far,
            }) => StageRun::Watching {
                report: report(so_far, Vec::new()),
                state,
                wait,
            },
            Err(err) => StageRun::Decided(report(Vec::new(), vec![err.to_string()])),
        }
    }
}

/// What a cold start built, and which version of the config it read.
#[derive(Debug)]
pub struct ColdStart {
    /// The suite every invocation runs.
    pub suite: Suite,
    /// The config's version: its SSM version, S3 version id or ETag, or a digest of its text.
    pub version: String,
}

/// What one invocation of a stage is given besides the config and its budget.
#[derive(Debug, Default)]
pub struct StageInputs {
    /// The deployment it runs for (`local` when none).
    pub deployment_id: Option<String>,
    /// What this run found of the deployment's target groups; `None` when nothing looked.
    pub target_groups: Option<Result<TargetGroups, String>>,
    /// Green's share of production traffic, percent; the stage's own when unknown.
    pub green_weight: Option<u8>,
    /// The watch state an earlier invocation handed over, its seal already verified.
    pub resume: Option<WatchState>,
    /// How long the engine waits for the stage at most (CodeDeploy's hour), bounding a
    /// carried watch beside the config's own limits.
    pub chain_cap: Option<Duration>,
}

/// How one invocation of a stage ended.
#[derive(Debug)]
pub enum StageRun {
    /// Passed or failed: report it.
    Decided(StageReport),
    /// Repeating checks still have runs to make: hand `state` to an invocation `wait` from now.
    Watching {
        /// The results so far (not a verdict).
        report: StageReport,
        /// Where the watch stands.
        state: WatchState,
        /// Until the next run is due.
        wait: Duration,
    },
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite")
            .field("source", &self.source)
            .field("targets", &self.config.targets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A client for every target of the config, with `defaults.timeout` where a target sets none,
/// sharing one budget for response bodies sized from the function's memory.
pub(crate) fn build_targets(config: &Config) -> Result<Targets, ConfigError> {
    let bodies = Arc::new(BodyBudget::from_env());
    Targets::build(
        config.targets.iter().map(|(name, target)| {
            (
                name,
                TargetSettings {
                    url: target.url.0.clone(),
                    host: target.host.clone(),
                    ca_file: target.ca_file.clone(),
                    timeout: target.timeout.unwrap_or(config.defaults.timeout).0,
                    insecure: target.insecure_skip_tls_verify,
                },
            )
        }),
        bodies,
    )
}

/// Every credential the config holds: the secrets, and values of sensitive headers written
/// literally in any check of any stage.
fn redactor_for(config: &Config, secrets: &BTreeMap<String, String>) -> Redactor {
    let requests: Vec<_> = Stage::ALL
        .into_iter()
        .filter_map(|stage| config.stages.get(stage))
        .flat_map(|stage| stage.checks.iter())
        .flat_map(|check| check.requests())
        .collect();
    let headers = requests
        .iter()
        .flat_map(|request| request.headers.iter())
        .map(|(name, value)| (name.as_str(), value));
    Redactor::new(secrets.values().cloned()).with_headers(headers)
}

/// The stages whose metric checks use the deployment's target groups.
fn target_group_stages(config: &Config) -> Vec<Stage> {
    if config.deployment.is_none() {
        return Vec::new();
    }
    let uses_target_groups = |text: &str| {
        crate::template::variables(text).is_ok_and(|used| {
            used.iter()
                .any(|name| crate::config::metric::DEPLOYMENT_VARIABLES.contains(&name.as_str()))
        })
    };
    Stage::ALL
        .into_iter()
        .filter(|&stage| {
            config.stages.get(stage).is_some_and(|stage| {
                stage
                    .checks
                    .iter()
                    .filter_map(|check| check.metric.as_ref())
                    .any(|metric| {
                        metric
                            .templates()
                            .iter()
                            .any(|(_, text)| uses_target_groups(text))
                    })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_secret_fails_only_the_stages_that_use_it() {
        let config = Config::parse(
            r#"
secrets: { api_key: { env: GREENLIGHT_TEST_SECRET_NEVER_SET } }
targets: { test: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTestTraffic:
    checks:
      - name: uses the key
        http: { target: test, path: /v1, headers: { X-Api-Key: "{{secrets.api_key}}" } }
  BeforeAllowTraffic:
    checks: []
"#,
        )
        .unwrap();
        let suite = Suite::new(config, Source::Inline).unwrap();
        let other = suite
            .run_whole(
                Stage::BeforeAllowTraffic,
                Duration::from_secs(5),
                "gl-1".into(),
                StageInputs::default(),
            )
            .await;
        assert_eq!(other.verdict, crate::Verdict::Passed, "{other:#?}");
        let using = suite
            .run_whole(
                Stage::AfterAllowTestTraffic,
                Duration::from_secs(5),
                "gl-1".into(),
                StageInputs::default(),
            )
            .await;
        assert_eq!(using.verdict, crate::Verdict::Failed);
        let message = &using.checks[0].message;
        assert!(
            message.contains("secrets.api_key")
                && message.contains("GREENLIGHT_TEST_SECRET_NEVER_SET"),
            "{message}"
        );
    }
}
