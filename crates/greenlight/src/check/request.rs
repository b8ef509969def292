//! The one request model at run time: a request as planned (templates unrendered, its target's
//! client in hand) and the one function that renders it for a run.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;

use crate::config::RequestFields;
use crate::redact::is_sensitive_header;
use crate::template::Vars;
use crate::transport::client::{Request, TargetClient};

/// A request as planned at cold start: every string still a template.
#[derive(Debug, Clone)]
pub(crate) struct RequestTemplate {
    /// Where it goes.
    pub target: Arc<TargetClient>,
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, String)>,
    pub body: BodyTemplate,
    /// Whole-exchange timeout.
    pub timeout: Duration,
    /// The most body bytes read.
    pub max_body_bytes: u64,
}

/// A request body, still templated.
#[derive(Debug, Clone)]
pub(crate) enum BodyTemplate {
    None,
    /// Raw text, sent as rendered.
    Raw(String),
    /// JSON (string values templated).
    Json(Value),
    /// `application/x-www-form-urlencoded` fields (values templated).
    Form(Vec<(String, String)>),
}

impl RequestTemplate {
    /// Plan a request from its spec, for a target whose client is built.
    pub(crate) fn new(
        fields: &RequestFields<'_>,
        target: Arc<TargetClient>,
        max_body_bytes: u64,
    ) -> Self {
        let body = match (fields.body, fields.json, fields.form) {
            (Some(raw), _, _) => BodyTemplate::Raw(raw.to_owned()),
            (None, Some(json), _) => BodyTemplate::Json(json.clone()),
            (None, None, Some(form)) => BodyTemplate::Form(
                form.iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            ),
            (None, None, None) => BodyTemplate::None,
        };
        RequestTemplate {
            timeout: fields.timeout.map_or(target.timeout, |t| t.0),
            target,
            method: fields.method.0.clone(),
            path: fields.path.to_owned(),
            headers: fields
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.to_owned()))
                .collect(),
            body,
            max_body_bytes,
        }
    }

    /// Every template string of the request.
    pub(crate) fn templates(&self) -> Vec<&str> {
        let mut out = vec![self.path.as_str()];
        out.extend(self.headers.iter().map(|(_, value)| value.as_str()));
        match &self.body {
            BodyTemplate::None => {}
            BodyTemplate::Raw(text) => out.push(text),
            BodyTemplate::Json(value) => crate::config::request::collect_strings(value, &mut out),
            BodyTemplate::Form(fields) => {
                out.extend(fields.iter().map(|(_, value)| value.as_str()));
            }
        }
        out
    }

    /// The request for this run: every template rendered with `vars`.
    pub(crate) fn render(&self, vars: &Vars) -> Result<Request, String> {
        let path = vars.render_path(&self.path)?;
        let url = self
            .target
            .join(&path)
            .map_err(|err| format!("path {path:?} does not make a URL: {err}"))?;
        let mut headers = HeaderMap::new();
        for (name, template) in &self.headers {
            let mut value = HeaderValue::from_str(&vars.render(template)?)
                .map_err(|_| format!("header {name} has characters HTTP does not allow"))?;
            // Keeps the value out of any debug output of the request (hyper honours this too).
            value.set_sensitive(is_sensitive_header(name.as_str()));
            headers.append(name.clone(), value);
        }
        let body = match &self.body {
            BodyTemplate::None => None,
            BodyTemplate::Raw(text) => Some(Bytes::from(vars.render(text)?)),
            BodyTemplate::Json(value) => {
                let rendered = vars.render_json(value)?;
                headers
                    .entry(http::header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                Some(Bytes::from(
                    serde_json::to_vec(&rendered).map_err(|err| err.to_string())?,
                ))
            }
            BodyTemplate::Form(fields) => {
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
        Ok(Request {
            method: self.method.clone(),
            url,
            headers,
            body,
            timeout: self.timeout,
            max_body_bytes: self.max_body_bytes,
        })
    }
}
