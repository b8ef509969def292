//! A local HTTP target for `make invoke`: healthy, or failing on purpose.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use greenlight_e2e::targets::{Behaviour, Target};

/// Serve a target on 127.0.0.1 that greenlight can check.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 9902)]
    port: u16,
    /// How to answer.
    #[arg(long, value_enum, default_value_t = Mode::Healthy)]
    mode: Mode,
    /// With `--mode slow`: how long each answer waits.
    #[arg(long, default_value_t = 10_000)]
    delay_ms: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// 200 {"status":"ok","version":"v2"}
    Healthy,
    /// 500 on every request
    Broken,
    /// healthy, after --delay-ms (10 s by default)
    Slow,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let behaviour = match args.mode {
        Mode::Healthy => Behaviour::Healthy,
        Mode::Broken => Behaviour::Status(500),
        Mode::Slow => Behaviour::Slow(Duration::from_millis(args.delay_ms)),
    };
    let target = Target::start_on(([127, 0, 0, 1], args.port).into(), behaviour).await;
    println!("[target] {:?} on {}", args.mode, target.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
