//! The `scenario` check: ordered HTTP steps with captures and templated values, then cleanup
//! steps that always run, so a test payment created by step one is refunded even when step two
//! fails or the budget runs out.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use tokio::time::Instant;

use crate::check::RunContext;
use crate::check::http::{Request, SendError, judge, send};
use crate::client::Targets;
use crate::config::Expect;
use crate::outcome::{Mismatch, Outcome};
use crate::redact::is_sensitive_header;
use crate::template::Vars;

/// A planned scenario.
#[derive(Debug, Clone)]
pub struct ScenarioCheck {
    /// Run in order until one fails.
    pub steps: Vec<Step>,
    /// Run afterwards, always.
    pub cleanup: Vec<Step>,
}

/// One planned step; its strings are still templates.
#[derive(Debug, Clone)]
pub struct Step {
    /// `step create`, `step 2`, `cleanup 1`.
    pub label: String,
    /// Target name.
    pub target: String,
    /// Request method.
    pub method: Method,
    /// Path template.
    pub path: String,
    /// Header name → value template.
    pub headers: Vec<(HeaderName, String)>,
    /// Body, still templated.
    pub body: StepBody,
    /// Whole-exchange timeout.
    pub timeout: Duration,
    /// Expectations (string values templated).
    pub expect: Expect,
    /// Variable → where to find it in the response.
    pub capture: Vec<(String, Capture)>,
    /// The most body bytes read.
    pub max_body_bytes: u64,
}

/// A step's body.
#[derive(Debug, Clone)]
pub enum StepBody {
    /// No body.
    None,
    /// Raw text.
    Raw(String),
    /// JSON (strings templated).
    Json(Value),
    /// `application/x-www-form-urlencoded` fields (values templated).
    Form(Vec<(String, String)>),
}

/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum Capture {
    /// A JSON pointer into the response body.
    Pointer(String),
    /// A response header.
    Header(HeaderName),
}

impl ScenarioCheck {
    /// The longest one run may take (every step and cleanup step at its timeout).
    pub fn worst_case(&self) -> Duration {
        self.steps
            .iter()
            .chain(&self.cleanup)
            .map(|step| step.timeout)
            .sum()
    }

    /// Run the steps, then the cleanup, before `deadline`. Cleanup time is kept back from the
    /// steps: a step that could not finish before the cleanup reserve is not started.
    pub async fn run(&self, targets: &Targets, ctx: &RunContext, deadline: Instant) -> Outcome {
        let mut vars = Vars::new(
            &ctx.run_id,
            &ctx.deployment_id,
            ctx.stage.as_str(),
            &ctx.secrets,
        );
        let reserve: Duration = self.cleanup.iter().map(|step| step.timeout).sum();
        let steps_deadline = deadline.checked_sub(reserve).unwrap_or_else(Instant::now);
        let mut failures = Vec::new();
        let mut errors = Vec::new();
        for step in &self.steps {
            if Instant::now() + step.timeout > steps_deadline {
                failures.push(Mismatch::new(
                    step.label.clone(),
                    format!(
                        "time to run (up to {})",
                        humantime::format_duration(step.timeout)
                    ),
                    "the stage budget ran out before it could start (cleanup time kept back)",
                ));
                break;
            }
            let result = step.execute(targets, &mut vars).await;
            let passed = result.passed();
            failures.extend(result.failures);
            errors.extend(result.error);
            if !passed {
                break;
            }
        }
        for step in &self.cleanup {
            if !step.ready(&vars) {
                // What it would undo was never created (its id was never captured).
                tracing::debug!(step = %step.label, "cleanup step skipped: its variables were never captured");
                continue;
            }
            let result = step.execute(targets, &mut vars).await;
            failures.extend(result.failures);
            errors.extend(result.error);
        }
        match (failures.is_empty(), errors.is_empty()) {
            (true, true) => Outcome::Passed,
            (true, false) => Outcome::error(errors.join("; ")),
            (false, _) => {
                failures.extend(
                    errors
                        .into_iter()
                        .map(|error| Mismatch::new("request", "a response", error)),
                );
                Outcome::Failed { failures }
            }
        }
    }
}

struct StepResult {
    failures: Vec<Mismatch>,
    error: Option<String>,
}

impl StepResult {
    fn passed(&self) -> bool {
        self.failures.is_empty() && self.error.is_none()
    }
}

impl Step {
    /// Every template string of the step.
    fn templates(&self) -> Vec<&str> {
        let mut out = vec![self.path.as_str()];
        out.extend(self.headers.iter().map(|(_, value)| value.as_str()));
        match &self.body {
            StepBody::None => {}
            StepBody::Raw(text) => out.push(text),
            StepBody::Json(value) => crate::config::collect_strings(value, &mut out),
            StepBody::Form(fields) => out.extend(fields.iter().map(|(_, value)| value.as_str())),
        }
        out
    }

    /// Whether every variable this step uses has a value.
    fn ready(&self, vars: &Vars) -> bool {
        self.templates()
            .into_iter()
            .all(|text| vars.can_render(text))
    }

    fn render(&self, targets: &Targets, vars: &Vars) -> Result<(Request, Expect), String> {
        let target = targets
            .get(&self.target)
            .ok_or_else(|| format!("target {:?} has no client", self.target))?;
        let path = vars.render(&self.path)?;
        let url = target
            .join(&path)
            .map_err(|err| format!("path {path:?} does not make a URL: {err}"))?;
        let mut headers = HeaderMap::new();
        for (name, template) in &self.headers {
            let mut value = HeaderValue::from_str(&vars.render(template)?)
                .map_err(|_| format!("header {name} has characters HTTP does not allow"))?;
            value.set_sensitive(is_sensitive_header(name.as_str()));
            headers.append(name.clone(), value);
        }
        let body = match &self.body {
            StepBody::None => None,
            StepBody::Raw(text) => Some(Bytes::from(vars.render(text)?)),
            StepBody::Json(value) => {
                let rendered = vars.render_json(value)?;
                headers
                    .entry(http::header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                Some(Bytes::from(
                    serde_json::to_vec(&rendered).map_err(|err| err.to_string())?,
                ))
            }
            StepBody::Form(fields) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for (name, template) in fields {
                    form.append_pair(name, &vars.render(template)?);
                }
                headers
                    .entry(http::header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static(
                        "application/x-www-form-urlencoded",
                    ));
                Some(Bytes::from(form.finish()))
            }
        };
        let expect = crate::check::render_expect(&self.expect, vars)?;
        Ok((
            Request {
                method: self.method.clone(),
                url,
                headers,
                body,
                timeout: self.timeout,
                max_body_bytes: self.max_body_bytes,
            },
            expect,
        ))
    }

    async fn execute(&self, targets: &Targets, vars: &mut Vars) -> StepResult {
        let prefix = &self.label;
        let (request, expect) = match self.render(targets, vars) {
            Ok(rendered) => rendered,
            Err(problem) => {
                return StepResult {
                    failures: Vec::new(),
                    error: Some(format!("{prefix}: cannot build the request: {problem}")),
                };
            }
        };
        let response = match send(
            match targets.get(&self.target) {
                Some(target) => &target.client,
                None => {
                    return StepResult {
                        failures: Vec::new(),
                        error: Some(format!("{prefix}: no client for target {}", self.target)),
                    };
                }
            },
            &request,
            &self.target,
        )
        .await
        {
            Ok(response) => response,
            Err(SendError::Timeout(timeout)) => {
                let (expected, actual) = SendError::timeout_texts(timeout);
                return StepResult {
                    failures: vec![Mismatch::new(
                        format!("{prefix}: response"),
                        expected,
                        actual,
                    )],
                    error: None,
                };
            }
            Err(SendError::Other(message)) => {
                return StepResult {
                    failures: Vec::new(),
                    error: Some(format!("{prefix}: {message}")),
                };
            }
        };
        // Captures first, and from every response: cleanup needs the id of a payment even
        // when this step's expectations failed.
        let mut failures = Vec::new();
        let document: Option<Value> = serde_json::from_slice(&response.body).ok();
        for (variable, source) in &self.capture {
            let found = match source {
                Capture::Pointer(pointer) => document
                    .as_ref()
                    .and_then(|doc| doc.pointer(pointer))
                    .filter(|value| !value.is_null())
                    .map(|value| match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    }),
                Capture::Header(name) => response
                    .headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
            };
            match found {
                Some(value) => vars.capture(variable, value),
                None => failures.push(Mismatch::new(
                    format!("{prefix}: capture {variable}"),
                    match source {
                        Capture::Pointer(pointer) => format!("a value at {pointer}"),
                        Capture::Header(name) => format!("a {name} header"),
                    },
                    "absent",
                )),
            }
        }
        if let Outcome::Failed {
            failures: mismatches,
        } = judge(&expect, &response, self.max_body_bytes)
        {
            failures.extend(mismatches.into_iter().map(|m| Mismatch {
                what: format!("{prefix}: {}", m.what),
                ..m
            }));
        }
        StepResult {
            failures,
            error: None,
        }
    }
}
