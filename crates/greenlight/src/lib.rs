//! greenlight: checks for the green side of an ECS blue/green deployment, run from CodeDeploy
//! lifecycle hooks (and the `greenlight` CLI).
//!
//! Data flows one way: [`event`] + [`config`] → [`plan`] → [`outcome`]s ([`run`], [`check`]) →
//! [`verdict`] → [`report`]. [`lambda`] is the glue the hook binaries call; [`suite`] wires the
//! flow for one stage.

pub mod aws;
pub mod budget;
pub mod check;
pub mod client;
pub mod config;
pub mod conn;
pub mod error;
pub mod event;
pub mod lambda;
pub mod outcome;
pub mod plan;
pub mod redact;
pub mod report;
pub mod run;
pub mod sdk_http;
pub mod stage;
pub mod suite;
pub mod telemetry;
pub mod template;
pub mod verdict;

pub use config::Config;
pub use stage::Stage;
pub use suite::Suite;
pub use verdict::Verdict;
