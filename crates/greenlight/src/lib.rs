//! greenlight: checks for the green side of an ECS blue/green deployment, run from CodeDeploy
//! (or ECS-native) lifecycle hooks and from the `greenlight` CLI.
//!
//! Data flows one way: event + config → plan → executor (pool, check) → outcome → verdict →
//! report. `source` reads the config and secrets, `discovery` what the deployment says (green's
//! target group), `suite` builds clients and plans once per cold start and wires one stage,
//! `hook` is the glue the hook binaries call. `aws` (every signed call), `transport` (the
//! checks' HTTP), `template`, `redact`, `budget`, `stage`, `telemetry` and `error` are leaves.
//!
//! The modules are private; what the hook binaries, the CLI and the end-to-end tests use is
//! re-exported here; everything else is `pub(crate)` (the lint below keeps it so).

#![warn(unreachable_pub)]

mod aws;
mod budget;
mod check;
mod config;
mod discovery;
mod doctor;
mod error;
mod event;
mod executor;
mod hook;
mod notify;
mod outcome;
mod plan;
mod pool;
mod redact;
mod report;
mod source;
mod stage;
mod suite;
mod telemetry;
mod template;
mod transport;
mod verdict;

pub use aws::{Aws, sdk_loader};
pub use budget::Budget;
pub use check::Progress;
pub use config::repeat::CODEDEPLOY_MAX_WATCH;
pub use config::{Config, json_schema};
pub use discovery::{TargetGroups, resolve as resolve_target_groups};
pub use doctor::{Finding, PROBE_DEPLOYMENT};
pub use error::{ConfigError, ReportError};
pub use event::{CodeDeployEvent, run_id_from};
pub use hook::seal::{Binding as StateBinding, StateKey};
pub use hook::{Hook, HookError, Invoked, run};
pub use outcome::{CheckResult, Outcome};
pub use report::StageReport;
pub use report::codedeploy::{CodeDeploySink, Delivery, REPORT_ATTEMPTS, StatusSink};
pub use source::{Source, load_env, load_file};
pub use stage::Stage;
pub use suite::{StageInputs, Suite};
pub use telemetry::init_cli;
pub use verdict::Verdict;

/// A stage's report for people and CI: text for a terminal, JUnit XML, Markdown.
pub mod render {
    pub use crate::report::junit::render as junit;
    pub use crate::report::markdown::render as markdown;
    pub use crate::report::text::render as text;
}

/// The preflight (`greenlight doctor`).
pub mod preflight {
    pub use crate::doctor::from_cli;
}
