//! greenlight: checks for the green side of an ECS blue/green deployment, run from CodeDeploy
//! lifecycle hooks (and the `greenlight` CLI).
//!
//! Data flows one way: [`event`] + [`config`] → `plan` → [`outcome`]s (`run`, [`check`]) →
//! [`verdict`] → [`report`]. [`source`] reads the config and secrets (AWS reads live in
//! [`aws`]); [`suite`] builds the clients and plans once per cold start and wires the flow for
//! one stage; [`lambda`] is the glue the hook binaries call. The HTTP transport (`client`,
//! `conn`), `template`, `redact`, [`stage`], [`telemetry`] and [`error`] are leaves.

pub mod aws;
pub mod budget;
pub(crate) mod check;
pub mod config;
pub mod discovery;
pub mod doctor;
pub mod error;
pub mod event;
pub mod executor;
pub mod hook;
pub mod notify;
pub mod outcome;
pub(crate) mod plan;
pub(crate) mod pool;
pub(crate) mod redact;
pub mod report;
pub mod source;
pub mod stage;
pub mod suite;
pub mod telemetry;
pub(crate) mod template;
pub(crate) mod transport;
pub mod verdict;

pub use check::Progress;
pub use config::Config;
pub use stage::Stage;
pub use suite::Suite;
pub use verdict::Verdict;
