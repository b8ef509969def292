//! Log setup: JSON lines in Lambda (CloudWatch parses them), plain text on a terminal.

use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// JSON logs on stdout, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`).
/// Safe to call more than once; later calls do nothing.
pub fn init_lambda() {
    let filter = filter_from(
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .or_else(|| std::env::var("RUST_LOG").ok()),
        LevelFilter::INFO,
    );
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_ansi(false)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Text logs on stderr (the report goes to stdout), level from `RUST_LOG` (default `warn`).
pub fn init_cli() {
    let filter = filter_from(std::env::var("RUST_LOG").ok(), LevelFilter::WARN);
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// `info`, `debug`, `greenlight=debug,warn`… (a `Targets` filter: no regex engine in the
/// binary). An unparsable setting falls back to `default`.
fn filter_from(setting: Option<String>, default: LevelFilter) -> Targets {
    setting
        .and_then(|text| text.to_lowercase().parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_parse_and_bad_ones_fall_back() {
        let filter = filter_from(Some("DEBUG".into()), LevelFilter::INFO);
        assert_eq!(filter.default_level(), Some(LevelFilter::DEBUG));
        let filter = filter_from(Some("greenlight=trace,warn".into()), LevelFilter::INFO);
        assert_eq!(filter.default_level(), Some(LevelFilter::WARN));
        let filter = filter_from(Some("=!=".into()), LevelFilter::INFO);
        assert_eq!(filter.default_level(), Some(LevelFilter::INFO));
        let filter = filter_from(None, LevelFilter::WARN);
        assert_eq!(filter.default_level(), Some(LevelFilter::WARN));
    }
}
