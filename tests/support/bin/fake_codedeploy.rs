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
    /// Answer ListDeploymentTargets/GetDeploymentTarget for every deployment: its task set
    /// labelled Green is in this target group (by name)...
    #[arg(long, requires = "blue_target_group")]
    green_target_group: Option<String>,
    /// ...and Blue in this one.
    #[arg(long, requires = "green_target_group")]
    blue_target_group: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let fake = FakeCodeDeploy::start_on(addr, true).await;
    if let (Some(green), Some(blue)) = (&args.green_target_group, &args.blue_target_group) {
        fake.deployment("*", green, blue);
    }
    println!(
        "[codedeploy] listening on {} (set AWS_ENDPOINT_URL_CODEDEPLOY={})",
        fake.addr,
        fake.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
