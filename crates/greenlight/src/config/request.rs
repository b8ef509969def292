//! The one request model: the fields an `http` check, a scenario step and a probe share, the
//! expectations on a response, and the one place both are validated.
//!
//! serde's `flatten` cannot be combined with `deny_unknown_fields` (strict keys catch the typo
//! that would otherwise check nothing), so [`request_spec!`] writes the shared fields into each
//! spec struct and [`HasRequest`] hands them out as one [`RequestFields`] view.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::config::types::{Dur, Headers, HttpMethod, OneOrMany, Pointer, StatusSpec, positive};
use crate::error::ConfigError;

/// Declares a spec struct that carries the request fields (`target`, `method`, `path`,
/// `headers`, `body`, `json`, `form`, `timeout`) followed by its own fields.
macro_rules! request_spec {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The name of a target under `targets:` (a step may leave it to its scenario).
            pub target: Option<String>,
            /// HTTP method; GET when absent.
            #[serde(default)]
            pub method: $crate::config::types::HttpMethod,
            /// Path (and query) appended to the target's URL, templated.
            #[serde(default = "crate::config::request::root")]
            pub path: String,
            /// Request headers, values templated.
            #[serde(default)]
            pub headers: $crate::config::types::Headers,
            /// A raw body, templated and sent as written.
            pub body: Option<String>,
            /// A JSON body (string values templated); sets `content-type: application/json`.
            pub json: Option<serde_json::Value>,
            /// A form body (`application/x-www-form-urlencoded`), values templated.
            pub form: Option<std::collections::BTreeMap<String, String>>,
            /// Per-request timeout (overrides the target's).
            pub timeout: Option<$crate::config::types::Dur>,
            $( $(#[$fmeta])* pub $field : $ty, )*
        }

        impl $crate::config::request::HasRequest for $name {
            fn request(&self) -> $crate::config::request::RequestFields<'_> {
                $crate::config::request::RequestFields {
                    target: self.target.as_deref(),
                    method: &self.method,
                    path: &self.path,
                    headers: &self.headers,
                    body: self.body.as_deref(),
                    json: self.json.as_ref(),
                    form: self.form.as_ref(),
                    timeout: self.timeout,
                }
            }
        }
    };
}
pub(crate) use request_spec;

pub(crate) fn root() -> String {
    "/".to_owned()
}

/// The request part of a spec, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RequestFields<'a> {
    /// Target name, when the spec names one.
    pub target: Option<&'a str>,
    pub method: &'a HttpMethod,
    /// Path template.
    pub path: &'a str,
    /// Header templates.
    pub headers: &'a Headers,
    /// Raw body template.
    pub body: Option<&'a str>,
    /// JSON body template.
    pub json: Option<&'a Value>,
    /// Form body templates.
    pub form: Option<&'a BTreeMap<String, String>>,
    /// Timeout override.
    pub timeout: Option<Dur>,
}

/// A spec that sends a request.
pub(crate) trait HasRequest {
    /// Its request fields.
    fn request(&self) -> RequestFields<'_>;
}

/// Expectations on a response. Every one that is set must hold.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// One status or a list; any 2xx when absent.
    pub status: Option<StatusSpec>,
    /// Header name → expected value (a `; charset=…` suffix on the actual value is ignored).
    #[serde(default)]
    pub headers: Headers,
    /// Text the body must contain (one string or a list), templated.
    pub body_contains: Option<OneOrMany<String>>,
    /// JSON pointer → expected JSON value (string values templated).
    #[serde(default)]
    pub json: BTreeMap<Pointer, Value>,
    /// The whole exchange (first byte sent to last byte read) must take at most this long.
    pub max_latency: Option<Dur>,
}

/// Every templated string of a request, with the field it sits in.
fn request_texts<'a>(path: &str, request: &RequestFields<'a>) -> Vec<(String, &'a str)> {
    let mut texts: Vec<(String, &str)> = vec![(format!("{path}.path"), request.path)];
    texts.extend(
        request
            .headers
            .iter()
            .map(|(name, value)| (format!("{path}.headers.{name}"), value)),
    );
    if let Some(body) = request.body {
        texts.push((format!("{path}.body"), body));
    }
    if let Some(form) = request.form {
        texts.extend(
            form.iter()
                .map(|(name, value)| (format!("{path}.form.{name}"), value.as_str())),
        );
    }
    if let Some(json) = request.json {
        let mut strings = Vec::new();
        collect_strings(json, &mut strings);
        texts.extend(strings.into_iter().map(|s| (format!("{path}.json"), s)));
    }
    texts
}

/// Every templated string of the expectations, with the field it sits in.
fn expect_texts<'a>(path: &str, expect: &'a Expect) -> Vec<(String, &'a str)> {
    let mut texts = Vec::new();
    for (pointer, value) in &expect.json {
        let mut strings = Vec::new();
        collect_strings(value, &mut strings);
        texts.extend(
            strings
                .into_iter()
                .map(|s| (format!("{path}.expect.json.{pointer}"), s)),
        );
    }
    if let Some(needles) = &expect.body_contains {
        texts.extend(
            needles
                .iter()
                .map(|n| (format!("{path}.expect.body_contains"), n.as_str())),
        );
    }
    texts
}

/// Check a request: its target exists, its path and header values can be sent, it has at most
/// one body, and its templates use only `known` variables. `default_target` is the scenario's
/// target for a step that names none.
pub(crate) fn validate_request(
    path: &str,
    request: &RequestFields<'_>,
    default_target: Option<&str>,
    targets: &[&str],
    known: &[String],
) -> Result<(), ConfigError> {
    match request.target.or(default_target) {
        Some(target) => validate_target(&format!("{path}.target"), target, targets)?,
        None => {
            return Err(ConfigError::invalid(
                format!("{path}.target"),
                "(absent)",
                "the request has no target",
                format!("add `target:` with one of {}", targets.join(", ")),
            ));
        }
    }
    if !request.path.starts_with('/') {
        return Err(ConfigError::invalid(
            format!("{path}.path"),
            format!("{:?}", request.path),
            "the path must start with /",
            format!("write /{}", request.path),
        ));
    }
    for (name, value) in request.headers.iter() {
        if http::HeaderValue::from_str(value).is_err() && !crate::template::is_template(value) {
            // The value may be a secret: name the header, never echo the value.
            return Err(ConfigError::invalid(
                format!("{path}.headers.{name}"),
                "(value not shown)",
                "the header value has characters HTTP does not allow (e.g. a newline)",
                "remove control characters from the value",
            ));
        }
    }
    let bodies = usize::from(request.body.is_some())
        + usize::from(request.json.is_some())
        + usize::from(request.form.is_some());
    if bodies > 1 {
        return Err(ConfigError::invalid(
            path,
            "(body)",
            "more than one of body, json and form",
            "give the request one body: `json:` for JSON APIs, `form:` for form-encoded ones, `body:` for anything else",
        ));
    }
    if let Some(timeout) = request.timeout {
        positive(&format!("{path}.timeout"), timeout)?;
    }
    check_variables(request_texts(path, request), known)
}

/// Check expectations: status codes are real and templates use only `known` variables.
pub(crate) fn validate_expect(
    path: &str,
    expect: &Expect,
    known: &[String],
) -> Result<(), ConfigError> {
    if let Some(status) = &expect.status {
        validate_status(&format!("{path}.expect.status"), status)?;
    }
    check_variables(expect_texts(path, expect), known)
}

/// A status list that can match something, of real codes.
pub(crate) fn validate_status(path: &str, status: &StatusSpec) -> Result<(), ConfigError> {
    let codes = status.codes();
    if codes.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "[]",
            "an empty list accepts nothing",
            "list at least one status, or leave `status` out to accept any 2xx",
        ));
    }
    if let Some(bad) = codes.iter().find(|code| !(100..=599).contains(*code)) {
        return Err(ConfigError::invalid(
            path,
            bad,
            "not an HTTP status code",
            "use a code from 100 to 599",
        ));
    }
    Ok(())
}

/// A target name that exists under `targets:`.
pub(crate) fn validate_target(
    path: &str,
    target: &str,
    targets: &[&str],
) -> Result<(), ConfigError> {
    if targets.contains(&target) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        path,
        format!("{target:?}"),
        "no such target",
        format!(
            "use one of the names under `targets:` ({})",
            targets.join(", ")
        ),
    ))
}

/// Every template parses and uses only `known` variables.
pub(crate) fn check_variables(
    texts: Vec<(String, &str)>,
    known: &[String],
) -> Result<(), ConfigError> {
    for (field, text) in texts {
        let used = crate::template::variables(text).map_err(|problem| {
            ConfigError::invalid(
                field.clone(),
                format!("{text:?}"),
                format!("not a valid template: {problem}"),
                "write variables as {{name}}, e.g. {{payment_id}} or {{secrets.api_key}}",
            )
        })?;
        if let Some(unknown) = used.iter().find(|name| !known.iter().any(|k| k == *name)) {
            return Err(ConfigError::invalid(
                field,
                format!("{{{{{unknown}}}}}"),
                "unknown variable",
                format!(
                    "use one of: {} (a capture is usable only in the steps after the one that \
                     captures it; secrets are declared under `secrets:`)",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Every string inside a JSON value (the templated parts of a JSON body or expectation).
pub(crate) fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}
