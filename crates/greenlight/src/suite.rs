//! A loaded config with its clients: what a cold start builds once and every invocation runs.
//! This is where the one-way flow is wired: config → plan → outcomes → verdict → report.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Targets;
use crate::config::{Config, Source};
use crate::error::ConfigError;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::report::StageReport;
use crate::run::run_plan;
use crate::stage::Stage;

/// A validated config, its HTTP clients and its redactor.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The config.
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    targets: Arc<Targets>,
    redactor: Redactor,
}

impl Suite {
    /// Load `GREENLIGHT_CONFIG` and build the clients.
    pub fn from_env() -> Result<Suite, ConfigError> {
        let (config, source) = Config::from_env()?;
        Suite::new(config, source)
    }

    /// Build the clients for a config.
    pub fn new(config: Config, source: Source) -> Result<Suite, ConfigError> {
        let targets = Targets::build(&config)?;
        let redactor = redactor_for(&config);
        Ok(Suite {
            config,
            source,
            targets: Arc::new(targets),
            redactor,
        })
    }

    /// The redactor that knows this config's secrets.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Run a stage's checks within `budget` and judge them. Never fails: whatever goes wrong is
    /// in the report, and the report's verdict is failed.
    pub async fn run_stage(&self, stage: Stage, budget: Duration, run_id: String) -> StageReport {
        let started = Instant::now();
        let plan = match Plan::build(&self.config, &self.targets, stage) {
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
        let checks = run_plan(&plan, Arc::clone(&self.targets), budget)
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

/// Every credential the config holds: values of sensitive headers in any check of any stage.
fn redactor_for(config: &Config) -> Redactor {
    let headers = Stage::ALL
        .into_iter()
        .filter_map(|stage| config.stages.get(stage))
        .flat_map(|stage| stage.checks.iter())
        .filter_map(|check| check.http.as_ref())
        .flat_map(|http| http.headers.iter());
    Redactor::default().with_headers(headers)
}
