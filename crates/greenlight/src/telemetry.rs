//! Log setup: JSON lines in Lambda (CloudWatch parses them), plain text on a terminal.

use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// JSON logs on stdout, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`).
/// Safe to call more than once; later calls do nothing.
pub(crate) fn init_lambda() {
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
    quiet_panics();
}

/// Text logs on stderr (the report goes to stdout), level from `RUST_LOG` (default `warn`).
pub fn init_cli() {
    let filter = filter_from(std::env::var("RUST_LOG").ok(), LevelFilter::WARN);
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
    quiet_panics();
}

/// A panic's message can quote whatever the code at hand held, a secret included, and Rust's
/// default hook prints it to stderr (CloudWatch, in Lambda). The runner already turns a panic
/// in a check into an `error` outcome whose text goes through the redactor; the log line says
/// only where it happened.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|at| format!("{}:{}", at.file(), at.line()))
            .unwrap_or_default();
        tracing::error!(
            location = %location,
            "greenlight panicked (a bug: please report it); its message is in the stage report, scrubbed"
        );
    }));
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
    fn a_panic_logs_where_it_happened_never_its_message() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        quiet_panics();
        tracing::subscriber::with_default(subscriber, || {
            let caught = std::panic::catch_unwind(|| panic!("key sk_live_PANICSECRET"));
            assert!(caught.is_err());
        });
        let _ = std::panic::take_hook();
        let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("greenlight panicked"), "{logged}");
        assert!(logged.contains("telemetry.rs:"), "{logged}");
        assert!(!logged.contains("PANICSECRET"), "{logged}");
    }

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
