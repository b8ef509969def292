//! `{{variables}}` in scenario strings, rendered with minijinja (strict: an undefined variable is
//! an error, never an empty string that would send `/v1/payments/` to a payments API).

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior, Value};

/// The variables a template uses, `secrets.NAME` for attribute access.
pub fn variables(source: &str) -> Result<BTreeSet<String>, String> {
    if !is_template(source) {
        return Ok(BTreeSet::new());
    }
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|err| err.to_string())?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// Whether a string has template syntax at all (most do not, and skip the engine).
pub fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// The values a run's templates can use.
#[derive(Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, Value>,
    captures: BTreeMap<String, String>,
}

impl Vars {
    /// The variables every scenario has: `run_id`, `deployment_id`, `stage`, `secrets.*`.
    pub fn new(
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
        }
    }

    /// Add a captured value.
    pub fn capture(&mut self, name: &str, value: String) {
        self.captures.insert(name.to_owned(), value);
    }

    /// Render one string.
    pub fn render(&self, source: &str) -> Result<String, String> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        let mut context = self.values.clone();
        for (name, value) in &self.captures {
            context.insert(name.clone(), Value::from(value.as_str()));
        }
        let env = environment();
        env.render_str(source, Value::from(context))
            .map_err(|err| match err.kind() {
                minijinja::ErrorKind::UndefinedError => {
                    let missing: Vec<String> = variables(source)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|name| !self.has(name))
                        .collect();
                    format!("no value for {} (not captured)", missing.join(", "))
                }
                _ => err.to_string(),
            })
    }

    /// Whether every variable the template uses has a value now.
    pub fn can_render(&self, source: &str) -> bool {
        variables(source).is_ok_and(|used| used.iter().all(|name| self.has(name)))
    }

    fn has(&self, name: &str) -> bool {
        self.captures.contains_key(name)
            || self.values.contains_key(name)
            || name.starts_with("secrets.")
    }

    /// Render every string inside a JSON value.
    pub fn render_json(&self, value: &serde_json::Value) -> Result<serde_json::Value, String> {
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
            .field("captures", &self.captures.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
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
