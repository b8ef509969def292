//! One exchange: render a planned request, send it, take its captures and judge the response.
//! An `http` check is one exchange; a scenario step is one exchange with a label.

use serde_json::Value;

use crate::check::json;
use crate::check::request::RequestTemplate;
use crate::config::{CaptureFrom, Expect, OneOrMany};
use crate::outcome::{Mismatch, Outcome};
use crate::redact::{Redactor, is_sensitive_header};
use crate::template::Vars;
use crate::transport::client::{Response, SendError, send};

/// How much of a body a failure message quotes.
const SNIPPET_CHARS: usize = 200;

/// A request, what its response must look like, and what to take from it.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// What to send.
    pub request: RequestTemplate,
    /// Expectations (string values templated).
    pub expect: Expect,
    /// Variable → where to find it in the response.
    pub capture: Vec<(String, CaptureFrom)>,
    /// The captured variables that later fill a credential header: secrets from the moment
    /// they are captured, before this step's own failure texts quote the body.
    pub secret_captures: Vec<String>,
}

/// What one exchange came to: the response was judged (the failures, none when it passed), or
/// it could not be sent at all.
pub(crate) type Exchanged = Result<Vec<Mismatch>, String>;

impl Exchange {
    /// Render with `vars`, send, capture into `vars`, judge. A timeout is the target failing
    /// (a mismatch); a request that cannot be built or sent is an error. The rendered value of
    /// every credential header is a secret for the rest of the run, whatever filled it.
    pub(crate) async fn run(&self, vars: &mut Vars, redactor: &mut Redactor) -> Exchanged {
        let request = self
            .request
            .render(vars)
            .map_err(|problem| format!("cannot build the request: {problem}"))?;
        redactor.learn_request(&request.headers);
        let expect = render_expect(&self.expect, vars)
            .map_err(|problem| format!("cannot render the expectations: {problem}"))?;
        let response = match send(&self.request.target, &request).await {
            Ok(response) => response,
            Err(SendError::Timeout(timeout)) => return Ok(vec![timed_out(timeout)]),
            Err(SendError::Other(message)) => return Err(message),
        };
        // Captures first, and from every response: cleanup needs the id of a payment even
        // when this step's expectations failed.
        let mut failures = self.take_captures(&response, vars, redactor);
        if let Outcome::Failed { failures: more } =
            judge(&expect, &response, self.request.max_body_bytes, redactor)
        {
            failures.extend(more);
        }
        Ok(failures)
    }

    fn take_captures(
        &self,
        response: &Response,
        vars: &mut Vars,
        redactor: &mut Redactor,
    ) -> Vec<Mismatch> {
        if self.capture.is_empty() {
            return Vec::new();
        }
        let mut failures = Vec::new();
        for (variable, source) in &self.capture {
            let found = match source {
                CaptureFrom::Pointer(pointer) => json::lookup(&response.body, &pointer.0)
                    .ok()
                    .flatten()
                    .filter(|value| !value.is_null())
                    .map(|value| match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    }),
                CaptureFrom::Header(name) => response
                    .headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
            };
            match found {
                Some(value) => {
                    if self.secret_captures.contains(variable) {
                        redactor.learn([value.clone()]);
                    }
                    vars.capture(variable, value);
                }
                None => failures.push(Mismatch::new(
                    format!("capture {variable}"),
                    match source {
                        CaptureFrom::Pointer(pointer) => format!("a value at {pointer}"),
                        CaptureFrom::Header(name) => format!("a {name} header"),
                    },
                    "absent",
                )),
            }
        }
        failures
    }
}

/// As an outcome of a check of its own.
pub(crate) fn outcome(exchanged: Exchanged) -> Outcome {
    match exchanged {
        Ok(failures) if failures.is_empty() => Outcome::Passed,
        Ok(failures) => Outcome::Failed { failures },
        Err(error) => Outcome::error(error),
    }
}

/// Render the templated values of expectations (expected JSON strings, `body_contains`).
fn render_expect(expect: &Expect, vars: &Vars) -> Result<Expect, String> {
    let mut expect = expect.clone();
    for value in expect.json.values_mut() {
        *value = vars.render_json(value)?;
    }
    if let Some(needles) = &expect.body_contains {
        expect.body_contains = Some(OneOrMany::Many(
            needles
                .iter()
                .map(|needle| vars.render(needle))
                .collect::<Result<_, _>>()?,
        ));
    }
    Ok(expect)
}

/// Judge a response against the expectations. Pure, so every rule is unit-tested.
///
/// Every quoted text from the response is scrubbed by `redactor` while still raw: before it
/// is quoted, escaped or cut, so no secret survives in part.
pub(crate) fn judge(
    expect: &Expect,
    response: &Response,
    max_body_bytes: u64,
    redactor: &Redactor,
) -> Outcome {
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
                    with_snippet(response.status.to_string(), &response.body, redactor),
                ));
            }
        }
        None if !(200..300).contains(&response.status) => failures.push(Mismatch::new(
            "status",
            "any 2xx",
            with_snippet(response.status.to_string(), &response.body, redactor),
        )),
        None => {}
    }

    for (name, wanted) in expect.headers.iter() {
        let actual = response
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>();
        if !actual.iter().any(|value| header_matches(wanted, value)) {
            let shown = if actual.is_empty() {
                "no such header".to_owned()
            } else if is_sensitive_header(name.as_str()) {
                crate::redact::MASK.to_owned()
            } else {
                format!("{:?}", redactor.scrub(&actual.join(", ")))
            };
            let wanted = if is_sensitive_header(name.as_str()) {
                crate::redact::MASK.to_owned()
            } else {
                format!("{:?}", redactor.scrub(wanted))
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
            for needle in needles.iter() {
                if !text.contains(needle.as_str()) {
                    failures.push(Mismatch::new(
                        "body",
                        format!("to contain {needle:?}"),
                        snippet(&response.body, redactor),
                    ));
                }
            }
        }
        // Each pointer is looked up without a tree of the whole body (check::json).
        for (pointer, wanted) in &expect.json {
            match json::lookup(&response.body, &pointer.0) {
                Ok(Some(actual)) if json_equal(wanted, &actual) => {}
                Ok(Some(actual)) => failures.push(Mismatch::new(
                    format!("json {pointer}"),
                    redactor.scrub(&wanted.to_string()),
                    redactor.scrub(&actual.to_string()),
                )),
                Ok(None) => failures.push(Mismatch::new(
                    format!("json {pointer}"),
                    redactor.scrub(&wanted.to_string()),
                    "absent",
                )),
                Err(err) => {
                    failures.push(Mismatch::new(
                        "json",
                        "a JSON body",
                        format!("not JSON ({err}): {}", snippet(&response.body, redactor)),
                    ));
                    break;
                }
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

/// The start of a body for a failure message: scrubbed while raw, then cut, then quoted.
fn snippet(body: &[u8], redactor: &Redactor) -> String {
    if body.is_empty() {
        return "an empty body".to_owned();
    }
    // Scrubbing the whole body would cost a copy of it; a secret straddling the cut needs only
    // the cut plus the longest form of a secret, which MAX_SCRUB_TAIL bounds generously.
    let head_bytes = body.len().min(SNIPPET_CHARS * 4 + MAX_SCRUB_TAIL);
    let text = redactor.scrub(&String::from_utf8_lossy(&body[..head_bytes]));
    let mut out: String = text.chars().take(SNIPPET_CHARS).collect();
    if text.chars().count() > SNIPPET_CHARS || head_bytes < body.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Bytes past the cut that are scrubbed with it, so a secret that straddles the cut is masked
/// whole: far longer than any API key or token.
const MAX_SCRUB_TAIL: usize = 16 * 1024;

fn with_snippet(status: String, body: &[u8], redactor: &Redactor) -> String {
    if body.is_empty() {
        status
    } else {
        format!("{status} with body {}", snippet(body, redactor))
    }
}

/// A response that did not come within the timeout: a failure of green (it hung or was too
/// slow), not a check that could not run.
fn timed_out(timeout: std::time::Duration) -> Mismatch {
    let shown = humantime::format_duration(timeout);
    Mismatch::new(
        "response",
        format!("a complete response within {shown}"),
        format!("none after {shown} (the target hung or was too slow)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::{Headers, Pointer};
    use crate::config::{Dur, OneOrMany, StatusSpec};
    use bytes::Bytes;
    use http::HeaderMap;
    use serde_json::json;
    use std::time::Duration;

    fn response(status: u16, content_type: &str, body: &str, latency_ms: u64) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        Response {
            status,
            headers,
            body: Bytes::from(body.to_owned()),
            truncated: false,
            latency: Duration::from_millis(latency_ms),
            reserved: None,
        }
    }

    fn full_expect() -> Expect {
        Expect {
            status: Some(StatusSpec::One(200)),
            headers: Headers(vec![(
                http::header::CONTENT_TYPE,
                "application/json".to_owned(),
            )]),
            body_contains: Some(OneOrMany::One("ok".to_owned())),
            json: [(Pointer("/status".to_owned()), json!("ok"))].into(),
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
        assert_eq!(
            judge(&full_expect(), &r, 1024, &Redactor::default()),
            Outcome::Passed
        );
    }

    #[test]
    fn every_broken_expectation_is_reported_with_expected_and_actual() {
        let r = response(500, "text/html", "<h1>oops</h1>", 900);
        let Outcome::Failed { failures } = judge(&full_expect(), &r, 1024, &Redactor::default())
        else {
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
                (Pointer("/amount".to_owned()), json!(1200)),
                (Pointer("/missing".to_owned()), json!(1)),
            ]
            .into(),
            ..Expect::default()
        };
        let r = response(200, "application/json", r#"{"amount":1200.0}"#, 1);
        let Outcome::Failed { failures } = judge(&expect, &r, 1024, &Redactor::default()) else {
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
        assert!(
            judge(
                &expect,
                &response(204, "x", "", 1),
                10,
                &Redactor::default()
            )
            .is_passed()
        );
        assert!(
            !judge(
                &expect,
                &response(202, "x", "", 1),
                10,
                &Redactor::default()
            )
            .is_passed()
        );
        assert!(
            judge(
                &Expect::default(),
                &response(202, "x", "", 1),
                10,
                &Redactor::default()
            )
            .is_passed()
        );
        assert!(
            !judge(
                &Expect::default(),
                &response(301, "x", "", 1),
                10,
                &Redactor::default()
            )
            .is_passed()
        );
    }

    #[test]
    fn a_truncated_body_fails_on_size() {
        let mut r = response(200, "text/plain", "ok", 1);
        r.truncated = true;
        let outcome = judge(&full_expect(), &r, 2, &Redactor::default());
        assert!(
            outcome.message().contains("body size"),
            "{}",
            outcome.message()
        );
    }

    #[test]
    fn sensitive_headers_are_never_quoted() {
        let expect = Expect {
            headers: Headers(vec![(
                http::header::SET_COOKIE,
                "session=expected".to_owned(),
            )]),
            ..Expect::default()
        };
        let mut r = response(200, "x", "", 1);
        r.headers
            .insert("set-cookie", "session=s3cr3t".parse().unwrap());
        let message = judge(&expect, &r, 10, &Redactor::default()).message();
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
