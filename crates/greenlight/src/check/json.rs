//! A JSON pointer looked up in a response body without building a tree of the whole body: the
//! walk skips everything off the pointer's path (serde's `IgnoredAny`) and builds a value of
//! what the pointer names alone. A 1 MB array of numbers costs nothing extra to look into,
//! where a whole `serde_json::Value` of it would take 16 MB.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The value at `pointer` (RFC 6901: `/items/0/id`, `~1` for `/`, `~0` for `~`; `` for the
/// whole document), `None` when there is no such place, or an error when `body` is not JSON.
pub(crate) fn lookup(body: &[u8], pointer: &str) -> Result<Option<Value>, serde_json::Error> {
    let tokens: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .split('/')
            .skip(1)
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let found = Walk { tokens: &tokens }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(found)
}

/// Walks one level of the pointer per nesting level.
struct Walk<'a> {
    tokens: &'a [String],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.tokens.split_first() {
            None => serde::Deserialize::deserialize(deserializer).map(Some),
            Some((token, rest)) => deserializer.deserialize_any(Step { token, rest }),
        }
    }
}

/// Looks for `token` in an object (a key) or an array (an index), then walks `rest` below it.
struct Step<'a> {
    token: &'a str,
    rest: &'a [String],
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        // Every entry is read (the rest skipped): the parser must see the whole object. The
        // last of duplicate keys wins, as in a parsed tree.
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.token {
                found = map.next_value_seed(Walk { tokens: self.rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // RFC 6901 indexes are plain decimal: no sign, no leading zeros.
        let index = (self.token == "0" || !self.token.starts_with('0'))
            .then(|| self.token.parse::<usize>().ok())
            .flatten();
        let mut found = None;
        let mut at = 0usize;
        loop {
            if Some(at) == index {
                match seq.next_element_seed(Walk { tokens: self.rest })? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(found)
    }

    // A scalar has nothing below it.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_what_a_parsed_tree_would() {
        let doc = json!({
            "id": "pay_1",
            "amount": 1200,
            "items": [ {"sku": "a"}, {"sku": "b", "tags": ["x", "y"]} ],
            "a/b": 1,
            "m~n": 2,
            "": 3,
            "nested": {"deep": {"er": null}},
            "dup": 1
        });
        let body = doc.to_string().replace("\"dup\":1", "\"dup\":1,\"dup\":2");
        let doc: Value = serde_json::from_str(&body).unwrap();
        for pointer in [
            "",
            "/id",
            "/amount",
            "/items",
            "/items/0",
            "/items/1/sku",
            "/items/1/tags/1",
            "/a~1b",
            "/m~0n",
            "/",
            "/nested/deep",
            "/nested/deep/er",
        ] {
            assert_eq!(
                lookup(body.as_bytes(), pointer).unwrap().as_ref(),
                doc.pointer(pointer),
                "{pointer}"
            );
        }
        // Absent places, and places below scalars.
        for pointer in [
            "/nope",
            "/items/2",
            "/items/01",
            "/items/-1",
            "/id/x",
            "/amount/0",
        ] {
            assert_eq!(lookup(body.as_bytes(), pointer).unwrap(), None, "{pointer}");
        }
        assert_eq!(lookup(body.as_bytes(), "/dup").unwrap(), Some(json!(2)));
    }

    #[test]
    fn a_body_that_is_not_json_is_an_error_wherever_it_breaks() {
        for body in [
            "",
            "not json",
            r#"{"id": "pay_1""#,
            r#"{"id": 1} trailing"#,
            "[1, 2,]",
        ] {
            assert!(lookup(body.as_bytes(), "/id").is_err(), "{body:?}");
        }
    }
}
