//! What a load balancer would publish about this target: for each request, when it finished,
//! its status and how long it took. `GET /_stats` hands them to the local CloudWatch of the
//! rehearsal (`make demo`), which turns them into the ALB metrics greenlight's `metric` checks
//! read (request count, 5xx count, response time). Outermost, so it sees every request, and
//! answered here, so reading the statistics is never itself a request (a `crash-after` fault
//! does not count it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The most requests remembered; the oldest go first.
const MAX_SAMPLES: usize = 100_000;

/// The requests served so far: `[finished (seconds since 1970), status, seconds taken]`.
#[derive(Clone, Default)]
pub(crate) struct Stats(Arc<Mutex<VecDeque<(f64, u16, f64)>>>);

impl Stats {
    fn record(&self, sample: (f64, u16, f64)) {
        let mut samples = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    fn snapshot(&self) -> Vec<(f64, u16, f64)> {
        let samples = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        samples.iter().copied().collect()
    }
}

/// Answer `GET /_stats`; time and record every other request.
pub(crate) async fn record(State(stats): State<Stats>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/_stats" {
        return axum::Json(serde_json::json!({ "requests": stats.snapshot() })).into_response();
    }
    let started = Instant::now();
    let response = next.run(request).await;
    let finished = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    stats.record((
        finished,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    ));
    response
}
