//! paysim: a small payments API on SQLite, the demo and test target of greenlight.
//!
//! Blue runs `--version v1`, green runs `--version v2`, both on one database file at the same
//! time. `--fault NAME` makes an instance wrong in one of the ways releases go wrong, so
//! greenlight's checks have something real to catch.
//!
//! Run it in-process (as the tests do) with [`App::open`] and [`App::serve`], or as the
//! `paysim` binary through [`run`].

use std::fmt;
use std::future::IntoFuture as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};
use tokio::net::TcpListener;
use tokio::sync::watch;

mod api;
mod db;
mod error;
mod fault;
mod model;
mod stats;

pub use error::ApiError;
pub use fault::{FAULT_NAMES, Fault, ParseFaultError, SLOW_DELAY};
pub use model::{Currency, Payment, Refund, Status, display_amount};

/// How long in-flight responses get to finish once `crash-after` fires, before the server
/// stops regardless (a client holding a slow connection must not keep the "crash" waiting).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The release an instance plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Version {
    /// Blue: the original schema; omits `reference`, reads only `amount`.
    V1,
    /// Green: runs the expand migration, stores `reference` and `amount_minor`.
    V2,
}

impl Version {
    /// `"v1"` or `"v2"`, as in `/health` and `created_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "paysim",
    about = "Sample payments API (blue v1 / green v2, faults on demand): the demo and test target of greenlight",
    // `--version` selects the release, so clap's own version flag must not claim it.
    disable_version_flag = true
)]
pub struct Args {
    /// Which release to run: blue is v1, green is v2.
    #[arg(long, value_enum)]
    pub version: Version,
    /// Port to listen on at 127.0.0.1; 0 picks a free one (read it from the first stdout line).
    #[arg(long)]
    pub port: u16,
    /// SQLite database file, created if missing; blue and green share one.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Fault to inject: health-500, slow, refunds-fail, idempotency-ignored, jpy-scaled,
    /// contract-migration or crash-after=N.
    #[arg(long, value_name = "NAME")]
    pub fault: Option<Fault>,
    /// API key clients must send as `Authorization: Bearer <key>`.
    #[arg(
        long,
        value_name = "KEY",
        env = "PAYSIM_API_KEY",
        default_value = "sk_test_paysim",
        hide_env_values = true
    )]
    pub api_key: String,
}

impl Args {
    /// Parses the command line, exiting with clap's usage error (status 2) on bad input,
    /// including combinations clap cannot check by itself.
    pub fn parse_or_exit() -> Self {
        let args = Self::parse();
        if let Err(message) = args.options().check() {
            Self::command()
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit();
        }
        args
    }

    /// Everything but the port.
    pub fn options(&self) -> Options {
        Options {
            version: self.version,
            db: self.db.clone(),
            fault: self.fault,
            api_key: self.api_key.clone(),
        }
    }
}

/// How to run one instance.
#[derive(Debug, Clone)]
pub struct Options {
    /// The release to play.
    pub version: Version,
    /// The SQLite database file.
    pub db: PathBuf,
    /// The fault to inject, if any.
    pub fault: Option<Fault>,
    /// The bearer key `/v1/*` requires.
    pub api_key: String,
}

impl Options {
    /// Rejects combinations that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.version == Version::V1 && self.fault == Some(Fault::ContractMigration) {
            return Err(
                "--fault contract-migration needs --version v2 (v1 predates the amount_minor column)"
                    .to_owned(),
            );
        }
        if self.api_key.is_empty() {
            return Err("--api-key must not be empty".to_owned());
        }
        Ok(())
    }
}

/// Why [`App::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The `crash-after=N` fault fired after N requests; the process should exit with status 1.
    CrashAfter(u64),
}

/// One paysim instance: its database is open and migrated, ready to serve.
pub struct App {
    options: Options,
    state: api::AppState,
    /// Raised by the crash-after fault: stop serving.
    stop: Arc<watch::Sender<bool>>,
    /// Raised once the listening socket is closed.
    listener_closed: Arc<watch::Sender<bool>>,
}

impl App {
    /// Opens (creating and migrating) the database. Errors if the options are inconsistent or
    /// the database cannot be used.
    pub fn open(options: Options) -> anyhow::Result<Self> {
        options.check().map_err(anyhow::Error::msg)?;
        let db = db::Db::open(&options.db, options.version)?;
        let state = api::AppState {
            db,
            version: options.version,
            fault: options.fault,
            api_key: Arc::from(options.api_key.as_str()),
        };
        Ok(Self {
            options,
            state,
            stop: Arc::new(watch::channel(false).0),
            listener_closed: Arc::new(watch::channel(false).0),
        })
    }

    /// The routes, with this instance's fault middleware.
    pub fn router(&self) -> axum::Router {
        let crash = match self.options.fault {
            Some(Fault::CrashAfter(n)) => Some(fault::CrashCounter::new(
                n,
                Arc::clone(&self.stop),
                self.listener_closed.subscribe(),
            )),
            _ => None,
        };
        api::router(self.state.clone(), crash).layer(axum::middleware::from_fn_with_state(
            stats::Stats::default(),
            stats::record,
        ))
    }

    /// The line printed once listening, e.g.
    /// `paysim v2 listening on http://127.0.0.1:8080 (fault: none)`.
    pub fn listening_line(&self, addr: SocketAddr) -> String {
        let fault = self
            .options
            .fault
            .map_or_else(|| "none".to_owned(), |f| f.to_string());
        format!(
            "paysim {} listening on http://{addr} (fault: {fault})",
            self.options.version
        )
    }

    /// Serves on `listener` until the `crash-after` fault fires (otherwise forever, unless
    /// accepting fails). At the N-th request the server closes its listening socket before
    /// answering, then lets in-flight responses finish (bounded by a short grace period) and
    /// returns.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<Stopped> {
        let router = self.router();
        let mut graceful = self.stop.subscribe();
        let mut hard = self.stop.subscribe();
        let listener = fault::ClosingListener::new(listener, Arc::clone(&self.listener_closed));
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop_requested(&mut graceful).await })
            .into_future();
        tokio::select! {
            result = server => result.context("the server failed")?,
            () = async move {
                stop_requested(&mut hard).await;
                tokio::time::sleep(STOP_GRACE).await;
            } => {}
        }
        match self.options.fault {
            Some(Fault::CrashAfter(n)) => Ok(Stopped::CrashAfter(n)),
            _ => anyhow::bail!("the server stopped without a crash-after fault"),
        }
    }
}

/// Resolves once the stop flag is raised. The sender lives as long as the [`App`], so a
/// closed channel is never a stop request.
async fn stop_requested(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sets up logging to stderr: text, `warn` and above unless `RUST_LOG` says otherwise.
/// Stdout is left for the one listening line.
pub fn init_logging() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // A `Targets` filter (`warn`, `paysim=debug`): the workspace builds tracing-subscriber
    // without its regex-based EnvFilter.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| text.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::WARN)
        });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// What the binary does: open the database, bind 127.0.0.1 (never all interfaces: this is a
/// test target with a well-known key), print the listening line, serve.
pub async fn run(args: Args) -> anyhow::Result<Stopped> {
    let app = App::open(args.options())?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let addr = listener.local_addr()?;
    {
        // Tests and scripts wait for this line to learn the port, so flush it now.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", app.listening_line(addr))?;
        out.flush()?;
    }
    app.serve(listener).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("paysim").chain(args.iter().copied()))
    }

    #[test]
    fn args_parse() {
        let args = parse(&[
            "--version",
            "v2",
            "--port",
            "0",
            "--db",
            "x.db",
            "--fault",
            "crash-after=2",
            "--api-key",
            "k",
        ])
        .unwrap();
        assert_eq!(args.version, Version::V2);
        assert_eq!(args.port, 0);
        assert_eq!(args.fault, Some(Fault::CrashAfter(2)));
        assert_eq!(args.api_key, "k");
    }

    #[test]
    fn bad_faults_are_usage_errors_listing_the_valid_ones() {
        let e = parse(&[
            "--version",
            "v1",
            "--port",
            "0",
            "--db",
            "x.db",
            "--fault",
            "boom",
        ])
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(text.contains("valid faults: health-500"), "{text}");
    }

    #[test]
    fn versions_are_v1_or_v2() {
        let e = parse(&["--version", "v3", "--port", "0", "--db", "x.db"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(parse(&["--port", "0", "--db", "x.db"]).is_err());
    }

    #[test]
    fn contract_migration_needs_v2() {
        let args = parse(&[
            "--version",
            "v1",
            "--port",
            "0",
            "--db",
            "x.db",
            "--fault",
            "contract-migration",
            "--api-key",
            "k",
        ])
        .unwrap();
        assert!(args.options().check().unwrap_err().contains("v2"));
        let args = parse(&[
            "--version",
            "v2",
            "--port",
            "0",
            "--db",
            "x.db",
            "--fault",
            "contract-migration",
            "--api-key",
            "k",
        ])
        .unwrap();
        assert!(args.options().check().is_ok());
    }
}
