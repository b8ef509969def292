//! The `http` check: one request, expectations on status, headers, body, JSON and latency.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::client::Targets;
use crate::config::Expect;
use crate::error::chain;
use crate::outcome::{Mismatch, Outcome};
use crate::redact::is_sensitive_header;

/// How much of a body a failure message quotes.
const SNIPPET_CHARS: usize = 200;

/// An HTTP request and what its response must look like.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Target name, for messages.
    pub target: String,
    /// What to send.
    pub request: Request,
    /// Expectations.
    pub expect: Expect,
}

/// One request, fully resolved.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request method.
    pub method: Method,
    /// Full URL (target base + path).
    pub url: Url,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body.
    pub body: Option<Bytes>,
    /// Whole-exchange timeout.
    pub timeout: Duration,
    /// The most body bytes read.
    pub max_body_bytes: u64,
}

/// What came back, read within the limits.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (complete unless `truncated`).
    pub body: Bytes,
    /// The body was larger than the limit and reading stopped.
    pub truncated: bool,
    /// First byte sent to last byte read.
    pub latency: Duration,
}

impl HttpCheck {
    /// Send the request once and judge the response.
    pub async fn run(&self, targets: &Targets) -> Outcome {
        let Some(target) = targets.get(&self.target) else {
            // Validation rejects this at load; kept as an error, not a panic, in case it ever slips.
            return Outcome::error(format!("target {:?} has no client", self.target));
        };
        match send(&target.client, &self.request, &self.target).await {
            Ok(response) => judge(&self.expect, &response, self.request.max_body_bytes),
            Err(err) => err.into_outcome(),
        }
    }
}

/// Why no response could be judged.
#[derive(Debug, Clone)]
pub enum SendError {
    /// Nothing complete arrived within the timeout (hang, stall, slowness).
    Timeout(Duration),
    /// Could not connect, TLS refused, the stream broke: the check could not run.
    Other(String),
}

impl SendError {
    /// As an outcome: a timeout is the target failing; anything else is an error.
    pub fn into_outcome(self) -> Outcome {
        match self {
            SendError::Timeout(timeout) => {
                let (expected, actual) = SendError::timeout_texts(timeout);
                Outcome::mismatch("response", expected, actual)
            }
            SendError::Other(message) => Outcome::error(message),
        }
    }

    /// `(expected, actual)` for a timeout.
    pub fn timeout_texts(timeout: Duration) -> (String, String) {
        let shown = humantime::format_duration(timeout);
        (
            format!("a complete response within {shown}"),
            format!("none after {shown} (the target hung or was too slow)"),
        )
    }
}

/// Send one request and read its response within the limits.
pub async fn send(
    client: &reqwest::Client,
    request: &Request,
    target: &str,
) -> Result<Response, SendError> {
    let mut builder = client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone())
        .timeout(request.timeout);
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let classify = |err: reqwest::Error| classify(err, request, target);
    let started = Instant::now();
    // The request's timeout covers connect, headers and the whole body (reqwest applies it to
    // the body stream too), so a hang, a stall mid-body or a slow drip all end as a timeout.
    let exchange = async {
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let limit = usize::try_from(request.max_body_bytes).unwrap_or(usize::MAX);
        let mut body = BytesMut::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                // Stop reading: dropping the response closes the connection, so a 500 MB
                // body costs at most `limit` bytes of memory.
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body: body.freeze(),
            truncated,
            latency: started.elapsed(),
        })
    };
    exchange.await
}

fn classify(err: reqwest::Error, request: &Request, target: &str) -> SendError {
    if err.is_timeout() {
        return SendError::Timeout(request.timeout);
    }
    let what = if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "could not read the response"
    } else {
        "request failed"
    };
    // reqwest puts the URL in its own message; ours names the target instead.
    let err = err.without_url();
    SendError::Other(format!(
        "{} {}: {what} (target {target}): {}",
        request.method,
        request.url,
        chain(&err)
    ))
}

/// Judge a response against the expectations. Pure, so every rule is unit-tested.
pub fn judge(expect: &Expect, response: &Response, max_body_bytes: u64) -> Outcome {
    let mut failures = Vec::new();

    match &expect.status {
        Some(spec) => {
            let codes = spec.codes();
            if !codes.contains(&response.status) {
                let wanted = codes
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ");
                failures.push(Mismatch::new(
                    "status",
                    wanted,
                    with_snippet(response.status.to_string(), &response.body),
                ));
            }
        }
        None if !(200..300).contains(&response.status) => failures.push(Mismatch::new(
            "status",
            "any 2xx",
            with_snippet(response.status.to_string(), &response.body),
        )),
        None => {}
    }

    for (name, wanted) in &expect.headers {
        let actual = response
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>();
        if !actual.iter().any(|value| header_matches(wanted, value)) {
            let shown = if actual.is_empty() {
                "no such header".to_owned()
            } else if is_sensitive_header(name) {
                crate::redact::MASK.to_owned()
            } else {
                format!("{:?}", actual.join(", "))
            };
            let wanted = if is_sensitive_header(name) {
                crate::redact::MASK.to_owned()
            } else {
                format!("{wanted:?}")
            };
            failures.push(Mismatch::new(format!("header {name}"), wanted, shown));
        }
    }

    if response.truncated {
        failures.push(Mismatch::new(
            "body size",
            format!("at most {max_body_bytes} bytes"),
            format!("more than {max_body_bytes} bytes (stopped reading)"),
        ));
    } else {
        let text = String::from_utf8_lossy(&response.body);
        if let Some(needles) = &expect.body_contains {
            for needle in needles.to_vec() {
                if !text.contains(&needle) {
                    failures.push(Mismatch::new(
                        "body",
                        format!("to contain {needle:?}"),
                        snippet(&response.body),
                    ));
                }
            }
        }
        if !expect.json.is_empty() {
            match serde_json::from_slice::<Value>(&response.body) {
                Ok(document) => {
                    for (pointer, wanted) in &expect.json {
                        match document.pointer(pointer) {
                            Some(actual) if json_equal(wanted, actual) => {}
                            Some(actual) => failures.push(Mismatch::new(
                                format!("json {pointer}"),
                                wanted.to_string(),
                                actual.to_string(),
                            )),
                            None => failures.push(Mismatch::new(
                                format!("json {pointer}"),
                                wanted.to_string(),
                                "absent",
                            )),
                        }
                    }
                }
                Err(err) => failures.push(Mismatch::new(
                    "json",
                    "a JSON body",
                    format!("not JSON ({err}): {}", snippet(&response.body)),
                )),
            }
        }
    }

    if let Some(max) = expect.max_latency
        && response.latency > max.0
    {
        failures.push(Mismatch::new(
            "latency",
            format!("at most {max}"),
            format!("{} ms", response.latency.as_millis()),
        ));
    }

    if failures.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed { failures }
    }
}

/// Equal, or equal up to media-type parameters: `application/json` matches
/// `application/json; charset=utf-8` (but not the other way round).
fn header_matches(wanted: &str, actual: &str) -> bool {
    let wanted = wanted.trim();
    let actual = actual.trim();
    if wanted.eq_ignore_ascii_case(actual) {
        return true;
    }
    !wanted.contains(';')
        && actual
            .split(';')
            .next()
            .is_some_and(|head| head.trim().eq_ignore_ascii_case(wanted))
}

/// JSON equality where numbers compare by value (`1200` equals `1200.0`).
fn json_equal(wanted: &Value, actual: &Value) -> bool {
    match (wanted, actual) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, x)| b.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => wanted == actual,
    }
}

fn snippet(body: &[u8]) -> String {
    if body.is_empty() {
        return "an empty body".to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(SNIPPET_CHARS).collect();
    if text.chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    format!("{out:?}")
}

fn with_snippet(status: String, body: &[u8]) -> String {
    if body.is_empty() {
        status
    } else {
        format!("{status} with body {}", snippet(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, OneOrMany, StatusSpec};
    use serde_json::json;

    fn response(status: u16, content_type: &str, body: &str, latency_ms: u64) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        Response {
            status,
            headers,
            body: Bytes::from(body.to_owned()),
            truncated: false,
            latency: Duration::from_millis(latency_ms),
        }
    }

    fn full_expect() -> Expect {
        Expect {
            status: Some(StatusSpec::One(200)),
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            body_contains: Some(OneOrMany::One("ok".to_owned())),
            json: [("/status".to_owned(), json!("ok"))].into(),
            max_latency: Some(Dur(Duration::from_millis(500))),
        }
    }

    #[test]
    fn a_healthy_response_passes() {
        let r = response(
            200,
            "application/json; charset=utf-8",
            r#"{"status":"ok"}"#,
            20,
        );
        assert_eq!(judge(&full_expect(), &r, 1024), Outcome::Passed);
    }

    #[test]
    fn every_broken_expectation_is_reported_with_expected_and_actual() {
        let r = response(500, "text/html", "<h1>oops</h1>", 900);
        let Outcome::Failed { failures } = judge(&full_expect(), &r, 1024) else {
            panic!("expected a failure");
        };
        let what: Vec<&str> = failures.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(
            what,
            ["status", "header content-type", "body", "json", "latency"]
        );
        assert_eq!(failures[0].expected, "200");
        assert!(
            failures[0].actual.starts_with("500 with body"),
            "{:?}",
            failures[0]
        );
        assert_eq!(failures[4].actual, "900 ms");
    }

    #[test]
    fn json_values_compare_by_value() {
        let expect = Expect {
            json: [
                ("/amount".to_owned(), json!(1200)),
                ("/missing".to_owned(), json!(1)),
            ]
            .into(),
            ..Expect::default()
        };
        let r = response(200, "application/json", r#"{"amount":1200.0}"#, 1);
        let Outcome::Failed { failures } = judge(&expect, &r, 1024) else {
            panic!("expected a failure");
        };
        assert_eq!(
            failures,
            vec![Mismatch::new("json /missing", "1", "absent")]
        );
    }

    #[test]
    fn status_list_and_default_2xx() {
        let expect = Expect {
            status: Some(StatusSpec::Any(vec![200, 204])),
            ..Expect::default()
        };
        assert!(judge(&expect, &response(204, "x", "", 1), 10).is_passed());
        assert!(!judge(&expect, &response(202, "x", "", 1), 10).is_passed());
        assert!(judge(&Expect::default(), &response(202, "x", "", 1), 10).is_passed());
        assert!(!judge(&Expect::default(), &response(301, "x", "", 1), 10).is_passed());
    }

    #[test]
    fn a_truncated_body_fails_on_size() {
        let mut r = response(200, "text/plain", "ok", 1);
        r.truncated = true;
        let outcome = judge(&full_expect(), &r, 2);
        assert!(
            outcome.message().contains("body size"),
            "{}",
            outcome.message()
        );
    }

    #[test]
    fn sensitive_headers_are_never_quoted() {
        let expect = Expect {
            headers: [("set-cookie".to_owned(), "session=expected".to_owned())].into(),
            ..Expect::default()
        };
        let mut r = response(200, "x", "", 1);
        r.headers
            .insert("set-cookie", "session=s3cr3t".parse().unwrap());
        let message = judge(&expect, &r, 10).message();
        assert!(
            !message.contains("s3cr3t") && !message.contains("session="),
            "{message}"
        );
    }

    #[test]
    fn header_matching_ignores_parameters_only_when_asked_for_none() {
        assert!(header_matches(
            "application/json",
            "application/json; charset=utf-8"
        ));
        assert!(header_matches("Application/JSON", "application/json"));
        assert!(!header_matches(
            "application/json; charset=latin1",
            "application/json; charset=utf-8"
        ));
        assert!(!header_matches("application/json", "application/jsonx"));
    }
}
