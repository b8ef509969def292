//! Log setup: JSON lines in Lambda (CloudWatch parses them), plain text on a terminal.

use tracing_subscriber::EnvFilter;

/// JSON logs on stdout, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`).
/// Safe to call more than once; later calls do nothing.
pub fn init_lambda() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|level| EnvFilter::try_new(level.to_lowercase()).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_ansi(false)
        .try_init();
}

/// Text logs on stderr (the report goes to stdout), level from `RUST_LOG` (default `warn`).
pub fn init_cli() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
