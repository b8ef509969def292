//! A local CodeDeploy for `make invoke` and `make demo`: accepts
//! `PutLifecycleEventHookExecutionStatus` on 127.0.0.1 and prints every report it receives.

use std::net::SocketAddr;

use clap::Parser;
use greenlight_e2e::codedeploy::FakeCodeDeploy;

/// Stand in for the CodeDeploy API on loopback and print each status report.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 9901)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let fake = FakeCodeDeploy::start_on(addr, true).await;
    println!(
        "[codedeploy] listening on {} (set AWS_ENDPOINT_URL_CODEDEPLOY={})",
        fake.addr,
        fake.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
