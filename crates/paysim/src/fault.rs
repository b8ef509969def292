//! Injected faults: the ways a green release goes wrong, on demand (`--fault NAME`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::io;
use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::Listener;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The delay the `slow` fault adds to every request.
pub const SLOW_DELAY: Duration = Duration::from_millis(400);

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `/health` answers 500 `{"status":"error",...}`; everything else works.
    Health500,
    /// Every request (health included) takes [`SLOW_DELAY`] longer.
    Slow,
    /// The refund route answers 500 `internal` and refunds nothing.
    RefundsFail,
    /// Payment creation ignores `Idempotency-Key`, so a retry charges twice.
    IdempotencyIgnored,
    /// JPY amounts are stored ×100, as if JPY had two decimals.
    JpyScaled,
    /// Writes the amount only into `amount_minor`, leaving `amount` NULL (a contract step
    /// shipped while the old version still reads `amount`).
    ContractMigration,
    /// The process exits with status 1 right after answering its N-th request.
    CrashAfter(u64),
}

/// The names `--fault` accepts, for help and error messages.
pub const FAULT_NAMES: &str = "health-500, slow, refunds-fail, idempotency-ignored, jpy-scaled, contract-migration, crash-after=N";

/// Why a `--fault` value was rejected. The message always lists the valid names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{reason}; valid faults: {FAULT_NAMES}")]
pub struct ParseFaultError {
    reason: String,
}

impl FromStr for Fault {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fault = match s {
            "health-500" => Self::Health500,
            "slow" => Self::Slow,
            "refunds-fail" => Self::RefundsFail,
            "idempotency-ignored" => Self::IdempotencyIgnored,
            "jpy-scaled" => Self::JpyScaled,
            "contract-migration" => Self::ContractMigration,
            other => {
                let Some(n) = other.strip_prefix("crash-after=") else {
                    return Err(ParseFaultError {
                        reason: format!("unknown fault {other:?}"),
                    });
                };
                match n.parse::<u64>() {
                    Ok(n) if n >= 1 => Self::CrashAfter(n),
                    _ => {
                        return Err(ParseFaultError {
                            reason: format!(
                                "crash-after needs a request count of 1 or more, got {n:?}"
                            ),
                        });
                    }
                }
            }
        };
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Health500 => f.write_str("health-500"),
            Self::Slow => f.write_str("slow"),
            Self::RefundsFail => f.write_str("refunds-fail"),
            Self::IdempotencyIgnored => f.write_str("idempotency-ignored"),
            Self::JpyScaled => f.write_str("jpy-scaled"),
            Self::ContractMigration => f.write_str("contract-migration"),
            Self::CrashAfter(n) => write!(f, "crash-after={n}"),
        }
    }
}

/// Middleware for the `slow` fault: the delay comes before the handler so that every
/// route, including `/health` and unknown paths, is slowed the same way.
pub(crate) async fn slow(request: Request, next: Next) -> Response {
    tokio::time::sleep(SLOW_DELAY).await;
    next.run(request).await
}

/// Longest the N-th response waits for the listening socket to close (see [`count_for_crash`]).
/// Only reached if the router runs outside [`crate::App::serve`], where nothing closes it.
const LISTENER_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Counts requests for `crash-after=N` and raises the stop flag at the N-th.
#[derive(Clone)]
pub(crate) struct CrashCounter {
    limit: u64,
    seen: Arc<AtomicU64>,
    stop: Arc<watch::Sender<bool>>,
    listener_closed: watch::Receiver<bool>,
}

impl CrashCounter {
    pub(crate) fn new(
        limit: u64,
        stop: Arc<watch::Sender<bool>>,
        listener_closed: watch::Receiver<bool>,
    ) -> Self {
        Self {
            limit,
            seen: Arc::new(AtomicU64::new(0)),
            stop,
            listener_closed,
        }
    }
}

/// Once the N-th response is ready: raise the stop flag, then hold the response until the
/// listening socket is closed, and mark it `Connection: close`. So by the time the client
/// reads the N-th answer, its next request cannot land anywhere: a new connection is refused
/// instead of racing a process on its way out. `App::serve` then lets in-flight responses
/// finish and returns, and the binary exits with status 1.
pub(crate) async fn count_for_crash(
    State(counter): State<CrashCounter>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let seen = counter.seen.fetch_add(1, Ordering::SeqCst) + 1;
    if seen == counter.limit {
        tracing::warn!(
            requests = seen,
            "fault crash-after={}: stopping",
            counter.limit
        );
        counter.stop.send_replace(true);
        let mut closed = counter.listener_closed.clone();
        // An error means the App is gone, which closed the socket too.
        let _ = tokio::time::timeout(LISTENER_CLOSE_WAIT, closed.wait_for(|c| *c)).await;
    }
    if seen >= counter.limit {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A TCP listener that reports when its socket is closed, which `axum::serve` does as soon
/// as graceful shutdown starts. [`count_for_crash`] waits for that report.
pub(crate) struct ClosingListener {
    inner: Option<TcpListener>,
    closed: Arc<watch::Sender<bool>>,
}

impl ClosingListener {
    pub(crate) fn new(inner: TcpListener, closed: Arc<watch::Sender<bool>>) -> Self {
        Self {
            inner: Some(inner),
            closed,
        }
    }
}

impl Listener for ClosingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.inner.as_mut() {
            Some(inner) => Listener::accept(inner).await,
            // Only after drop has begun; never in practice.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Some(inner) => inner.local_addr(),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "listener closed",
            )),
        }
    }
}

impl Drop for ClosingListener {
    fn drop(&mut self) {
        // Close the socket first (fields would only drop after this), then report it.
        drop(self.inner.take());
        self.closed.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_name_round_trips() {
        for name in [
            "health-500",
            "slow",
            "refunds-fail",
            "idempotency-ignored",
            "jpy-scaled",
            "contract-migration",
            "crash-after=3",
        ] {
            let fault: Fault = name.parse().unwrap();
            assert_eq!(fault.to_string(), name);
        }
        assert_eq!("crash-after=12".parse(), Ok(Fault::CrashAfter(12)));
    }

    #[test]
    fn bad_names_list_the_valid_ones() {
        for bad in [
            "nope",
            "crash-after",
            "crash-after=0",
            "crash-after=x",
            "Slow",
            "",
        ] {
            let e = bad.parse::<Fault>().unwrap_err().to_string();
            assert!(e.contains("valid faults: health-500, slow"), "{bad}: {e}");
            assert!(e.contains("crash-after=N"), "{bad}: {e}");
        }
    }
}
