//! A local ALB for `make demo`: production and test listeners forwarding to blue and green.
//! `kill -USR1` moves the production listener to green (CodeDeploy's AllowTraffic).

use std::net::SocketAddr;

use clap::Parser;
use greenlight_e2e::alb::Alb;
use tokio::signal::unix::{SignalKind, signal};

/// Production and test listeners on 127.0.0.1 in front of blue and green.
#[derive(Debug, Parser)]
struct Args {
    /// Production listener port.
    #[arg(long)]
    prod_port: u16,
    /// Test listener port.
    #[arg(long)]
    test_port: u16,
    /// Port of blue (the running version).
    #[arg(long)]
    blue: u16,
    /// Port of green (the new version).
    #[arg(long)]
    green: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let alb = Alb::start(
        local(args.prod_port),
        local(args.test_port),
        local(args.blue),
        local(args.green),
    )
    .await;
    println!(
        "[alb] production listener {} -> blue {}, test listener {} -> green {}",
        alb.prod, args.blue, alb.test, args.green
    );
    let mut shift = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = shift.recv() => {
                alb.shift_production();
                println!("[alb] production listener {} -> green {} (traffic shifted)", alb.prod, alb.production_upstream());
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
