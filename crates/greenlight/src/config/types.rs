//! The value types of the config: each parses (and so validates) itself once, at load, so that
//! planning never meets a method, header name, JSON pointer or duration it cannot use.

use std::fmt;
use std::time::Duration;

use http::HeaderName;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::error::ConfigError;

/// A duration written as `500ms`, `5s`, `2m` (humantime syntax).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

/// Written back as it is read (`5s`), for the schema's defaults.
impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit, like 500ms, 5s or 2m")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Dur, E> {
                humantime::parse_duration(text.trim()).map(Dur).map_err(|err| {
                    E::custom(format!(
                        "invalid duration {text:?} ({err}): write a number with a unit, like 500ms, 5s or 2m"
                    ))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write {n}s or {n}ms"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write e.g. {n}s or {n}ms"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "duration {n} has no unit: write e.g. 500ms or 5s"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A duration that must leave some time: zero is refused with the field's path.
pub(crate) fn positive(path: &str, value: Dur) -> Result<(), ConfigError> {
    if value.0.is_zero() {
        return Err(ConfigError::invalid(
            path,
            value,
            "a zero duration leaves no time at all",
            "use a positive duration such as 5s",
        ));
    }
    Ok(())
}

/// A target base URL, checked to be absolute http(s) with a host when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(pub Url);

impl<'de> Deserialize<'de> for TargetUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        let url = Url::parse(text.trim()).map_err(|err| {
            // The value is quoted unless it could hold a credential (user:password@host).
            let quoted = if text.contains('@') {
                "the URL".to_owned()
            } else {
                format!("URL {text:?}")
            };
            let hint = if matches!(err, url::ParseError::RelativeUrlWithoutBase) {
                " (it has no scheme: write http:// or https:// before the host)"
            } else {
                ""
            };
            D::Error::custom(format!(
                "{quoted} is not valid ({err}){hint}: write an absolute URL such as https://alb.internal.example.com:8443"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            // Never echo the URL: it holds a credential. In a URL it would leak into every
            // connect error, and the HTTP client would send it as a Basic header.
            return Err(D::Error::custom(
                "the URL carries a user name or password: keep credentials out of URLs; declare \
                 the password under `secrets:` and send it in a header, e.g. \
                 headers: { Authorization: \"Basic {{secrets.basic_auth}}\" }",
            ));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(D::Error::custom(format!(
                "URL {text:?} is not an http(s) URL with a host: write e.g. https://alb.internal.example.com:8443"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(D::Error::custom(format!(
                "URL {text:?} has a query or fragment: put those in each check's path"
            )));
        }
        Ok(TargetUrl(url))
    }
}

/// An HTTP method, upper-cased; `GET` when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpMethod(pub http::Method);

impl Default for HttpMethod {
    fn default() -> Self {
        HttpMethod(http::Method::GET)
    }
}

/// Written back as it is read (`GET`), for the schema's defaults.
impl serde::Serialize for HttpMethod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        http::Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes())
            .map(HttpMethod)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an HTTP method: use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"
                ))
            })
    }
}

/// Header name → value, in the order written; names are valid HTTP header names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(HeaderName, String)>);

impl Headers {
    /// Each header, name and (possibly templated) value.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.0.iter().map(|(name, value)| (name, value.as_str()))
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = indexmap_like(deserializer)?;
        written
            .into_iter()
            .map(|(name, value)| {
                header_name(&name)
                    .map(|header| (header, value))
                    .map_err(serde::de::Error::custom)
            })
            .collect::<Result<_, _>>()
            .map(Headers)
    }
}

/// A map read in document order (YAML mappings and JSON objects keep their order here).
fn indexmap_like<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of header name to value, e.g. { X-Probe: greenlight }")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, value)) = map.next_entry::<String, String>()? {
                out.push((name, value));
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor)
}

/// A header name, or the message that says how to write one.
pub(crate) fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        format!("{name:?} is not a valid header name: use letters, digits and dashes, e.g. X-Probe")
    })
}

/// A JSON pointer (`/status`, `/items/0/id`, or `` for the whole document).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pointer(pub String);

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pointer {
    fn parse(text: &str) -> Result<Pointer, String> {
        if text.is_empty() || text.starts_with('/') {
            Ok(Pointer(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not a JSON pointer: JSON pointers start with /, e.g. /{text}"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Pointer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pointer::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Where a captured value is taken from: `/json/pointer` or `header:Name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureFrom {
    /// A JSON pointer into the response body.
    Pointer(Pointer),
    /// A response header.
    Header(HeaderName),
}

impl<'de> Deserialize<'de> for CaptureFrom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = match text.strip_prefix("header:") {
            Some(name) => header_name(name).map(CaptureFrom::Header),
            None => Pointer::parse(&text).map(CaptureFrom::Pointer),
        };
        parsed.map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not a JSON pointer or header: write a JSON pointer such as /id, or header:Location"
            ))
        })
    }
}

/// `status: 200` or `status: [200, 204]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(
    untagged,
    expecting = "a status code (200) or a list of them ([200, 204])"
)]
pub enum StatusSpec {
    /// A single status.
    One(u16),
    /// Any of these.
    Any(Vec<u16>),
}

impl StatusSpec {
    /// The accepted codes.
    pub fn codes(&self) -> Vec<u16> {
        match self {
            StatusSpec::One(code) => vec![*code],
            StatusSpec::Any(codes) => codes.clone(),
        }
    }
}

/// A value or a list of values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub enum OneOrMany<T> {
    /// One.
    One(T),
    /// Several.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// All values.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            OneOrMany::One(value) => std::slice::from_ref(value).iter(),
            OneOrMany::Many(values) => values.iter(),
        }
    }
}

/// The JSON Schema of the types above that parse from a string, with what the string must be.
mod schema {
    use std::borrow::Cow;

    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

    use super::{CaptureFrom, Dur, Headers, HttpMethod, Pointer, TargetUrl};

    impl JsonSchema for Dur {
        fn schema_name() -> Cow<'static, str> {
            "Duration".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "A duration: a number and a unit (ms, s, m, h), e.g. 500ms, 5s, 2m, 1h 30m.",
                "pattern": "^\\s*[0-9]+\\s*[a-zA-Zµ]+(\\s*[0-9]+\\s*[a-zA-Zµ]+)*\\s*$"
            })
        }
    }

    impl JsonSchema for TargetUrl {
        fn schema_name() -> Cow<'static, str> {
            "TargetUrl".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "An http:// or https:// base URL, without credentials, query or fragment.",
                "pattern": "^[hH][tT][tT][pP][sS]?://"
            })
        }
    }

    impl JsonSchema for HttpMethod {
        fn schema_name() -> Cow<'static, str> {
            "HttpMethod".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "An HTTP method (any case): GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.",
                "pattern": "^\\s*[A-Za-z]+\\s*$"
            })
        }
    }

    impl JsonSchema for Headers {
        fn schema_name() -> Cow<'static, str> {
            "Headers".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "object",
                "description": "Header name to value (values may use {{variables}}), in the order written.",
                "additionalProperties": { "type": "string" }
            })
        }
    }

    impl JsonSchema for Pointer {
        fn schema_name() -> Cow<'static, str> {
            "JsonPointer".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "A JSON pointer (RFC 6901), e.g. /data/0/id; empty for the whole body.",
                "pattern": "^(/.*)?$"
            })
        }
    }

    impl JsonSchema for CaptureFrom {
        fn schema_name() -> Cow<'static, str> {
            "CaptureFrom".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "Where a value is captured from: a JSON pointer (/id) or a response header (header:Location).",
                "pattern": "^(/.*|header:.+)?$"
            })
        }
    }
}
