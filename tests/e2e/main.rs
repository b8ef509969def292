//! greenlight's end-to-end tests: one binary, so the AWS SDK and everything else is linked
//! once, with a module per area. Their real local parts (a CodeDeploy that speaks its
//! protocol, AWS endpoints that verify SigV4, targets that misbehave on purpose, the emulator
//! harness) are the `greenlight_e2e` library in tests/support.

mod aws_sources;
mod cli;
mod codedeploy;
mod deploy;
mod doctor;
mod hooks;
mod layout;
mod payments;
mod probe;
mod safety;
mod scenario;
mod schema;
mod watch;
