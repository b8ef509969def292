//! A loaded config with its clients: what a cold start builds once and every invocation runs.
//! This is where the one-way flow is wired: config → plan → outcomes → verdict → report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::Aws;
use crate::check::{Progress, RunContext};
use crate::client::Targets;
use crate::config::{Config, Source};
use crate::error::ConfigError;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::report::StageReport;
use crate::run::run_plan;
use crate::stage::Stage;
use crate::template::Vars;

/// A validated config, its HTTP clients and its redactor.
#[derive(Clone)]
pub struct Suite {
    /// The config.
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    targets: Arc<Targets>,
    secrets: Arc<BTreeMap<String, String>>,
    redactor: Redactor,
    progress: Option<Arc<dyn Progress>>,
}

impl Suite {
    /// Load `GREENLIGHT_CONFIG` from wherever it points, resolve its secrets, build the
    /// clients: what a cold start does once.
    pub async fn from_env(aws: &Aws) -> Result<(Suite, String), ConfigError> {
        let loaded = Config::load_env(aws).await?;
        let suite = Suite::load(loaded.config, loaded.source, aws).await?;
        Ok((suite, loaded.version))
    }

    /// Resolve every secret (environment, Secrets Manager, SSM) and build the clients.
    pub async fn load(config: Config, source: Source, aws: &Aws) -> Result<Suite, ConfigError> {
        let mut secrets = BTreeMap::new();
        for (name, from) in &config.secrets {
            let value = match (&from.env, &from.secretsmanager, &from.ssm) {
                (Some(variable), _, _) => env_secret(name, variable)?,
                (_, Some(id), _) => aws.secret_string(id).await.map_err(|err| {
                    ConfigError::invalid(
                        format!("secrets.{name}.secretsmanager"),
                        id,
                        err.problem,
                        err.fix,
                    )
                })?,
                (_, _, Some(parameter)) => {
                    let (value, kind, _) = aws.ssm_parameter(parameter).await.map_err(|err| {
                        ConfigError::invalid(
                            format!("secrets.{name}.ssm"),
                            parameter,
                            err.problem,
                            err.fix,
                        )
                    })?;
                    if kind != "SecureString" {
                        return Err(ConfigError::invalid(
                            format!("secrets.{name}.ssm"),
                            parameter,
                            format!("the parameter is a {kind}, not a SecureString"),
                            "store secrets as SecureString parameters (encrypted at rest)",
                        ));
                    }
                    value
                }
                (None, None, None) => {
                    return Err(ConfigError::invalid(
                        format!("secrets.{name}"),
                        "(source)",
                        "no source",
                        "write { env: VARIABLE }, { secretsmanager: ID } or { ssm: NAME }",
                    ));
                }
            };
            if value.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("secrets.{name}"),
                    "(empty)",
                    "the secret's value is empty",
                    "store the value, or point at the right source",
                ));
            }
            secrets.insert(name.clone(), value);
        }
        Suite::with_secrets(config, source, secrets)
    }

    /// Build the clients for a config whose secrets all come from the environment (tests, and
    /// the CLI without AWS access). A secret from AWS is an error here: use [`Suite::load`].
    pub fn new(config: Config, source: Source) -> Result<Suite, ConfigError> {
        let secrets = config
            .secrets
            .iter()
            .map(|(name, from)| match &from.env {
                Some(variable) => env_secret(name, variable).map(|value| (name.clone(), value)),
                None => Err(ConfigError::invalid(
                    format!("secrets.{name}"),
                    "(AWS source)",
                    "this secret is read from AWS, which this caller does not load",
                    "load the suite with Suite::load",
                )),
            })
            .collect::<Result<_, _>>()?;
        Suite::with_secrets(config, source, secrets)
    }

    fn with_secrets(
        config: Config,
        source: Source,
        secrets: BTreeMap<String, String>,
    ) -> Result<Suite, ConfigError> {
        let targets = Targets::build(&config)?;
        let redactor = redactor_for(&config, &secrets);
        Ok(Suite {
            config,
            source,
            targets: Arc::new(targets),
            secrets: Arc::new(secrets),
            redactor,
            progress: None,
        })
    }

    /// Report probe progress here (the CLI does, on a terminal).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The redactor that knows this config's secrets.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Run a stage's checks within `budget` and judge them. Never fails: whatever goes wrong is
    /// in the report, and the report's verdict is failed.
    pub async fn run_stage(
        &self,
        stage: Stage,
        budget: Duration,
        run_id: String,
        deployment_id: Option<String>,
    ) -> StageReport {
        let started = Instant::now();
        let deployment_id = deployment_id.unwrap_or_else(|| "local".to_owned());
        let vars = Vars::new(&run_id, &deployment_id, stage.as_str(), &self.secrets);
        let plan = match Plan::build(&self.config, &self.targets, stage, &vars) {
            Ok(plan) => plan,
            Err(err) => {
                return StageReport::not_run(
                    stage,
                    run_id,
                    self.redactor.scrub(&err.to_string()),
                    started.elapsed(),
                );
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
        let ctx = Arc::new(RunContext {
            run_id: run_id.clone(),
            deployment_id,
            stage,
            secrets: Arc::clone(&self.secrets),
            progress: self.progress.clone(),
        });
        let checks = run_plan(&plan, Arc::clone(&self.targets), ctx, budget)
            .await
            .into_iter()
            .map(|mut check| {
                check.outcome = check.outcome.redacted(&self.redactor);
                check.message = check.outcome.message();
                check
            })
            .collect();
        StageReport::new(
            stage,
            run_id,
            checks,
            Vec::new(),
            warnings,
            started.elapsed(),
        )
    }
}

/// A secret from an environment variable. A missing one is a config error, so the stage fails
/// closed instead of sending an empty API key.
fn env_secret(name: &str, variable: &str) -> Result<String, ConfigError> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::invalid(
            format!("secrets.{name}.env"),
            variable,
            "the environment variable is not set (or is empty)",
            format!("set {variable} on the function (or in the shell that runs greenlight)"),
        )),
    }
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite")
            .field("source", &self.source)
            .field("targets", &self.config.targets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Every credential the config holds: the secrets, and values of sensitive headers written
/// literally in any check of any stage.
fn redactor_for(config: &Config, secrets: &BTreeMap<String, String>) -> Redactor {
    let checks = Stage::ALL
        .into_iter()
        .filter_map(|stage| config.stages.get(stage))
        .flat_map(|stage| stage.checks.iter());
    let mut headers: Vec<(&String, &String)> = Vec::new();
    for check in checks {
        if let Some(http) = &check.http {
            headers.extend(http.headers.iter());
        }
        if let Some(scenario) = &check.scenario {
            for step in scenario.steps.iter().chain(&scenario.cleanup) {
                headers.extend(step.headers.iter());
            }
        }
        if let Some(probe) = &check.probe {
            headers.extend(probe.headers.iter());
        }
    }
    Redactor::new(secrets.values().cloned()).with_headers(headers)
}
