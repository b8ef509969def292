//! `{{variables}}` in request and expectation strings, rendered with minijinja (strict: an
//! undefined variable is an error, never an empty string that would send `/v1/payments/` to a
//! payments API).
//!
//! Values stay values: in a path a value is percent-encoded as one path segment, in a query as
//! one query component, so a captured `../../admin?x=` can never add a segment, a query or a
//! host. Where a config really needs several segments from one value, the `segments` filter
//! encodes each one and still refuses dot segments, `?` and `#`.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded in a path segment or a query
/// component: `/`, `?`, `#`, `%`, `&`, `=`, `+`, space, controls and non-ASCII alike.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value as one path segment.
pub(crate) fn encode_path_segment(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// A value as one query component (a name or a value between `&` and `=`).
pub(crate) fn encode_query_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Where a rendered value lands, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Header values, bodies, expectations: written as they are.
    Plain,
    /// The path of a request URL: one segment per value.
    Path,
    /// The query of a request URL: one component per value.
    Query,
}

/// The message a refused path value carries, so the caller can name the variable.
const DOT_SEGMENT: &str = "cannot be a path segment";

/// The variables a template uses, `secrets.NAME` for attribute access.
pub(crate) fn variables(source: &str) -> Result<BTreeSet<String>, String> {
    if !is_template(source) {
        return Ok(BTreeSet::new());
    }
    let env = environment(Place::Plain);
    let template = env
        .template_from_str(source)
        .map_err(|err| err.to_string())?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// Whether a string has template syntax at all (most do not, and skip the engine).
pub(crate) fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// The values a run's templates can use.
#[derive(Clone, Default)]
pub(crate) struct Vars {
    values: BTreeMap<String, Value>,
    captures: BTreeMap<String, String>,
    /// Variables that have no value this run, and why (green's target group not found).
    unknown: BTreeMap<String, String>,
}

impl Vars {
    /// The variables every scenario has: `run_id`, `deployment_id`, `stage`, `secrets.*`.
    pub(crate) fn new(
        run_id: &str,
        deployment_id: &str,
        stage: &str,
        secrets: &BTreeMap<String, String>,
    ) -> Self {
        let mut values = BTreeMap::new();
        values.insert("run_id".to_owned(), Value::from(run_id));
        values.insert("deployment_id".to_owned(), Value::from(deployment_id));
        values.insert("stage".to_owned(), Value::from(stage));
        let secrets: BTreeMap<String, Value> = secrets
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
            .collect();
        values.insert("secrets".to_owned(), Value::from(secrets));
        Vars {
            values,
            captures: BTreeMap::new(),
            unknown: BTreeMap::new(),
        }
    }

    /// Give a run variable its value for this run.
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_owned(), Value::from(value));
    }

    /// Say why a run variable has no value this run: a template that uses it fails with this.
    pub(crate) fn unknown(&mut self, name: &str, why: &str) {
        self.unknown.insert(name.to_owned(), why.to_owned());
    }

    /// Add a captured value.
    pub(crate) fn capture(&mut self, name: &str, value: String) {
        self.captures.insert(name.to_owned(), value);
    }

    /// Render one string where values are written as they are (headers, bodies, expectations).
    pub(crate) fn render(&self, source: &str) -> Result<String, String> {
        self.render_in(source, Place::Plain)
    }

    /// Render a request path (and query): each value becomes one path segment before the
    /// first `?` of the template and one query component after it. A value that would be an
    /// empty, `.` or `..` segment is refused, naming the variable.
    pub(crate) fn render_path(&self, source: &str) -> Result<String, String> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        match query_start(source) {
            Some(at) => Ok(format!(
                "{}?{}",
                self.render_in(&source[..at], Place::Path)?,
                self.render_in(&source[at + 1..], Place::Query)?
            )),
            None => self.render_in(source, Place::Path),
        }
    }

    fn render_in(&self, source: &str, place: Place) -> Result<String, String> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        let mut context = self.values.clone();
        for (name, value) in &self.captures {
            context.insert(name.clone(), Value::from(value.as_str()));
        }
        let env = environment(place);
        env.render_str(source, Value::from(context))
            .map_err(|err| match err.kind() {
                ErrorKind::UndefinedError => {
                    let missing: Vec<String> = variables(source)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|name| !self.has(name))
                        .collect();
                    let why: Vec<String> = missing
                        .iter()
                        .filter_map(|name| {
                            self.unknown
                                .get(name)
                                .map(|why| format!("{{{{{name}}}}} is unknown: {why}"))
                        })
                        .collect();
                    if why.is_empty() {
                        format!("no value for {} (not captured)", missing.join(", "))
                    } else {
                        why.join("; ")
                    }
                }
                _ if err.to_string().contains(DOT_SEGMENT) => self.dot_segment_error(source),
                _ => err.to_string(),
            })
    }

    /// Name the variables whose values cannot stand as a path segment.
    fn dot_segment_error(&self, source: &str) -> String {
        let named: Vec<String> = variables(source)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|name| {
                let value = self.lookup(&name)?;
                matches!(value.as_str(), "" | "." | "..")
                    .then(|| format!("{{{{{name}}}}} is {value:?}"))
            })
            .collect();
        let which = if named.is_empty() {
            "a value".to_owned()
        } else {
            named.join(", ")
        };
        format!(
            "{which}, which {DOT_SEGMENT}: a value in a path is one segment and may not be \
             empty, . or .. (the segments filter also refuses ? and #); nothing was sent"
        )
    }

    /// The string value of a variable (`name` or `secrets.NAME`), if it has one.
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some(value) = self.captures.get(name) {
            return Some(value.clone());
        }
        let (head, attr) = match name.split_once('.') {
            Some((head, attr)) => (head, Some(attr)),
            None => (name, None),
        };
        let value = self.values.get(head)?;
        let value = match attr {
            Some(attr) => value.get_attr(attr).ok()?,
            None => value.clone(),
        };
        value.as_str().map(str::to_owned)
    }

    /// Whether every variable the template uses has a value now.
    pub(crate) fn can_render(&self, source: &str) -> bool {
        variables(source).is_ok_and(|used| used.iter().all(|name| self.has(name)))
    }

    fn has(&self, name: &str) -> bool {
        if let Some(secret) = name.strip_prefix("secrets.") {
            return self
                .values
                .get("secrets")
                .is_some_and(|secrets| secrets.get_attr(secret).is_ok_and(|v| !v.is_undefined()));
        }
        self.captures.contains_key(name) || self.values.contains_key(name)
    }

    /// Render every string inside a JSON value.
    pub(crate) fn render_json(
        &self,
        value: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        Ok(match value {
            serde_json::Value::String(text) => serde_json::Value::String(self.render(text)?),
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|item| self.render_json(item))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(key, item)| Ok((key.clone(), self.render_json(item)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
}

impl std::fmt::Debug for Vars {
    /// Names only: the values include secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vars")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("unknown", &self.unknown)
            .field("captures", &self.captures.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where the query starts in a path template: the first `?` outside `{{ }}`, `{% %}` and
/// `{# #}` (a `?` inside a tag is template syntax, not URL syntax).
fn query_start(source: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut closing: Option<&[u8]> = None;
    let mut i = 0;
    while i < bytes.len() {
        match closing {
            Some(end) if bytes[i..].starts_with(end) => {
                closing = None;
                i += 2;
                continue;
            }
            Some(_) => {}
            None => {
                for (open, close) in [(b"{{", b"}}"), (b"{%", b"%}"), (b"{#", b"#}")] {
                    if bytes[i..].starts_with(open) {
                        closing = Some(close);
                    }
                }
                if closing.is_some() {
                    i += 2;
                    continue;
                }
                if bytes[i] == b'?' {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn environment(place: Place) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("segments", segments);
    env.set_formatter(move |out: &mut Output, _: &mut State, value: &Value| {
        // A value the `segments` filter already encoded is written as it is.
        let text = value.to_string();
        let written = match place {
            Place::Plain => text,
            _ if value.is_safe() => text,
            Place::Path if matches!(text.as_str(), "" | "." | "..") => {
                return Err(Error::new(ErrorKind::InvalidOperation, DOT_SEGMENT));
            }
            Place::Path => encode_path_segment(&text),
            Place::Query => encode_query_component(&text),
        };
        out.write_str(&written)
            .map_err(|err| Error::new(ErrorKind::WriteFailure, err.to_string()))
    });
    env
}

/// `{{ value | segments }}`: a value that holds several path segments (`a/b/c`), each one
/// encoded; an empty, `.` or `..` segment, a `?` or a `#` is refused.
fn segments(value: String) -> Result<Value, Error> {
    let mut out = Vec::new();
    for segment in value.split('/') {
        if matches!(segment, "" | "." | "..") || segment.contains(['?', '#']) {
            return Err(Error::new(ErrorKind::InvalidOperation, DOT_SEGMENT));
        }
        out.push(encode_path_segment(segment));
    }
    Ok(Value::from_safe_string(out.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let secrets = [("api_key".to_owned(), "sk_test_1".to_owned())].into();
        Vars::new("gl-1", "d-1", "AfterAllowTestTraffic", &secrets)
    }

    #[test]
    fn lists_the_variables_a_template_uses() {
        let used = variables("/v1/{{payment_id}}?k={{ secrets.api_key }}&r={{run_id}}").unwrap();
        assert_eq!(
            used.into_iter().collect::<Vec<_>>(),
            ["payment_id", "run_id", "secrets.api_key"]
        );
        assert!(variables("plain").unwrap().is_empty());
        assert!(variables("{{ broken").is_err());
    }

    #[test]
    fn renders_values_and_refuses_undefined_ones() {
        let mut vars = vars();
        assert_eq!(vars.render("{{run_id}}-create").unwrap(), "gl-1-create");
        assert_eq!(
            vars.render("Bearer {{secrets.api_key}}").unwrap(),
            "Bearer sk_test_1"
        );
        let err = vars.render("/v1/payments/{{payment_id}}").unwrap_err();
        assert!(err.contains("payment_id"), "{err}");
        assert!(!vars.can_render("/v1/payments/{{payment_id}}"));
        vars.capture("payment_id", "pay_9".into());
        assert_eq!(
            vars.render("/v1/payments/{{payment_id}}").unwrap(),
            "/v1/payments/pay_9"
        );
        // Nothing is HTML-escaped.
        vars.capture("odd", "<a&b>".into());
        assert_eq!(vars.render("{{odd}}").unwrap(), "<a&b>");
    }

    #[test]
    fn renders_inside_json() {
        let mut vars = vars();
        vars.capture("id", "pay_1".into());
        let out = vars
            .render_json(
                &serde_json::json!({"ref": "{{id}}", "amount": 1200, "tags": ["{{stage}}"]}),
            )
            .unwrap();
        assert_eq!(
            out,
            serde_json::json!({"ref": "pay_1", "amount": 1200, "tags": ["AfterAllowTestTraffic"]})
        );
    }
}
