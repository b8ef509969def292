//! A local CloudWatch for `make demo`: `GetMetricData` (and `DescribeAlarms`, with no alarms)
//! on 127.0.0.1, answering the ALB metrics of each target group from the real traffic of the
//! paysim behind it (`--target-group NAME=URL`), so the rehearsal's `metric` checks judge green
//! by what it really served.

use std::net::SocketAddr;

use clap::Parser;
use greenlight_e2e::aws::{FakeAws, Store};

/// Stand in for CloudWatch on loopback, with metrics from the targets' own request records.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 9902)]
    port: u16,
    /// `targetgroup/NAME/ID=http://127.0.0.1:PORT`: a target group and the paysim behind it.
    #[arg(long = "target-group", value_parser = parse_target_group, required = true)]
    target_groups: Vec<(String, String)>,
}

fn parse_target_group(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(group, url)| (group.to_owned(), url.to_owned()))
        .ok_or_else(|| format!("{arg:?} is not TARGET_GROUP=URL"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = Store {
        live: args.target_groups.iter().cloned().collect(),
        ..Store::default()
    };
    let fake = FakeAws::start_on(SocketAddr::from(([127, 0, 0, 1], args.port)), store).await;
    println!(
        "[cloudwatch] listening on {} (set AWS_ENDPOINT_URL_CLOUDWATCH={})",
        fake.addr,
        fake.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
