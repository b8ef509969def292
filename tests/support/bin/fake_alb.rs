//! A local ALB for `make demo`: production and test listeners forwarding to blue and green,
//! answering 502 for a target that fails, as an ALB does (see `greenlight_e2e::alb`).
//! `kill -USR1` moves the production listener to green (CodeDeploy's AllowTraffic).
//!
//! Each event is one line on stdout, printed once it has taken effect, for the demo to wait on:
//! the listening line once both listeners accept (and `USR1` is handled), the shift line once
//! requests go to green.

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
    // Handled before the listening line is printed: until then USR1 would kill the process.
    let mut shift = signal(SignalKind::user_defined1())?;
    let alb = Alb::start(
        local(args.prod_port),
        local(args.test_port),
        local(args.blue),
        local(args.green),
    )
    .await;
    println!(
        "[alb] listening: production listener {} -> blue {}, test listener {} -> green {}",
        alb.prod, args.blue, alb.test, args.green
    );
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
