//! From config to a plan: each check of a stage resolved against defaults and targets.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::check::http::{HttpCheck, Request};
use crate::check::probe::{Judge, ProbeCheck};
use crate::check::scenario::{Capture, ScenarioCheck, Step, StepBody};
use crate::check::{CheckKind, PlannedCheck};
use crate::client::Targets;
use crate::config::{
    CheckSpec, Config, Expect, HttpSpec, ProbeSpec, ScenarioSpec, StatusSpec, StepSpec,
};
use crate::error::ConfigError;
use crate::stage::Stage;
use crate::template::Vars;

/// What a stage will run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The stage.
    pub stage: Stage,
    /// Its checks, in config order.
    pub checks: Vec<PlannedCheck>,
    /// How many run at once.
    pub concurrency: usize,
}

impl Plan {
    /// Resolve a stage's checks. Fails only on what validation could not see.
    /// `vars` renders the templated values of `http` checks (`{{run_id}}`, `{{secrets.x}}`);
    /// scenarios render theirs step by step, as captures arrive.
    pub fn build(
        config: &Config,
        targets: &Targets,
        stage: Stage,
        vars: &Vars,
    ) -> Result<Plan, ConfigError> {
        let stage_config = config.stage(stage)?;
        let checks = stage_config
            .checks
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                plan_check(
                    config,
                    targets,
                    spec,
                    vars,
                    &format!("stages.{stage}.checks[{index}]"),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            stage,
            checks,
            concurrency: config.defaults.concurrency,
        })
    }
}

fn plan_check(
    config: &Config,
    targets: &Targets,
    spec: &CheckSpec,
    vars: &Vars,
    path: &str,
) -> Result<PlannedCheck, ConfigError> {
    let (kind, default_retries) = match (&spec.http, &spec.scenario, &spec.probe) {
        (Some(http), None, None) => (
            CheckKind::Http(Box::new(plan_http(
                config,
                targets,
                http,
                vars,
                &format!("{path}.http"),
            )?)),
            config.defaults.retries,
        ),
        // A scenario is not retried unless it asks to be: a retry would replay payments that
        // its cleanup has already refunded.
        (None, Some(scenario), None) => (
            CheckKind::Scenario(plan_scenario(
                config,
                targets,
                scenario,
                &format!("{path}.scenario"),
            )?),
            0,
        ),
        // A probe is many requests already; retrying it would only double the load.
        (None, None, Some(probe)) => (
            CheckKind::Probe(Box::new(plan_probe(
                config,
                targets,
                &spec.name,
                probe,
                vars,
                &format!("{path}.probe"),
            )?)),
            0,
        ),
        _ => {
            return Err(ConfigError::invalid(
                path,
                &spec.name,
                "the check needs exactly one kind",
                "add `http:`, `scenario:` or `probe:`",
            ));
        }
    };
    Ok(PlannedCheck {
        name: spec.name.clone(),
        required: spec.required,
        retries: spec.retries.unwrap_or(default_retries),
        retry_delay: spec.retry_delay.unwrap_or(config.defaults.retry_delay).0,
        kind,
    })
}

fn plan_http(
    config: &Config,
    targets: &Targets,
    http: &HttpSpec,
    vars: &Vars,
    path: &str,
) -> Result<HttpCheck, ConfigError> {
    // Validation has checked every variable exists; a render error here is a bug or an
    // unreadable secret, reported against the field without its (possibly secret) value.
    let render = |field: &str, text: &str| {
        vars.render(text).map_err(|problem| {
            ConfigError::invalid(
                format!("{path}.{field}"),
                "(template)",
                format!("cannot be rendered: {problem}"),
                "check the variables it uses",
            )
        })
    };
    let target = targets.get(&http.target).ok_or_else(|| {
        ConfigError::invalid(
            format!("{path}.target"),
            &http.target,
            "no such target",
            "use a name under `targets:`",
        )
    })?;
    let request_path = render("path", &http.path)?;
    let url = target.join(&request_path).map_err(|err| {
        ConfigError::invalid(
            format!("{path}.path"),
            &http.path,
            format!("does not make a URL with {}: {err}", target.base),
            "write a path such as /health or /v1/payments?limit=1",
        )
    })?;
    let method = Method::from_bytes(http.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
        ConfigError::invalid(
            format!("{path}.method"),
            &http.method,
            "not an HTTP method",
            "use GET, POST, …",
        )
    })?;
    let mut headers = HeaderMap::new();
    for (name, value) in &http.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::invalid(
                format!("{path}.headers"),
                name,
                "not a header name",
                "use letters, digits and dashes",
            )
        })?;
        let value = render(&format!("headers.{name}"), value)?;
        let mut header_value = HeaderValue::from_str(&value).map_err(|_| {
            ConfigError::invalid(
                format!("{path}.headers.{name}"),
                "(value not shown)",
                "not a valid header value",
                "remove control characters",
            )
        })?;
        // Keeps the value out of any debug output of the request (hyper honours this too).
        header_value.set_sensitive(crate::redact::is_sensitive_header(name));
        headers.append(header_name, header_value);
    }
    Ok(HttpCheck {
        target: http.target.clone(),
        request: Request {
            method,
            url,
            headers,
            body: http
                .body
                .as_deref()
                .map(|body| render("body", body).map(Bytes::from))
                .transpose()?,
            timeout: http.timeout.map_or(target.timeout, |t| t.0),
            max_body_bytes: config.defaults.max_body_bytes,
        },
        expect: crate::check::render_expect(&http.expect, vars).map_err(|problem| {
            ConfigError::invalid(
                format!("{path}.expect"),
                "(template)",
                format!("cannot be rendered: {problem}"),
                "check the variables it uses",
            )
        })?,
    })
}

fn plan_probe(
    config: &Config,
    targets: &Targets,
    name: &str,
    probe: &ProbeSpec,
    vars: &Vars,
    path: &str,
) -> Result<ProbeCheck, ConfigError> {
    // The same request as an `http` check would send, built the same way, once per side.
    let as_http = |target: &str| HttpSpec {
        target: target.to_owned(),
        method: probe.method.clone(),
        path: probe.path.clone(),
        headers: probe.headers.clone(),
        body: probe.body.clone(),
        timeout: probe.timeout,
        expect: Expect::default(),
    };
    let request = plan_http(config, targets, &as_http(&probe.target), vars, path)?.request;
    let baseline = match &probe.baseline {
        Some(baseline) => Some((
            baseline.clone(),
            plan_http(config, targets, &as_http(baseline), vars, path)?.request,
        )),
        None => None,
    };
    Ok(ProbeCheck {
        name: name.to_owned(),
        target: probe.target.clone(),
        timeout: request.timeout,
        request,
        baseline,
        requests: probe.requests,
        concurrency: probe.concurrency,
        ok_status: probe
            .status
            .as_ref()
            .map(StatusSpec::codes)
            .unwrap_or_default(),
        max_p50: probe.max_p50.map(|d| d.0),
        max_p95: probe.max_p95.map(|d| d.0),
        max_p99: probe.max_p99.map(|d| d.0),
        max_error_rate: probe.max_error_rate,
        max_p95_regression: probe.max_p95_regression,
        min_regression: probe.min_regression.map_or(DEFAULT_MIN_REGRESSION, |d| d.0),
        judge: probe.judge.map(|_| Judge {
            confidence: probe.confidence.unwrap_or(0.98),
            tolerance: probe.tolerance.unwrap_or(0.1),
        }),
    })
}

/// Below this, a p95 difference is scheduling noise, not a regression.
const DEFAULT_MIN_REGRESSION: std::time::Duration = std::time::Duration::from_millis(2);

fn plan_scenario(
    config: &Config,
    targets: &Targets,
    scenario: &ScenarioSpec,
    path: &str,
) -> Result<ScenarioCheck, ConfigError> {
    let plan_steps = |list: &str, steps: &[StepSpec], cleanup: bool| {
        steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                plan_step(
                    config,
                    targets,
                    &scenario.target,
                    step,
                    step.label(index, cleanup),
                    &format!("{path}.{list}[{index}]"),
                )
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(ScenarioCheck {
        steps: plan_steps("steps", &scenario.steps, false)?,
        cleanup: plan_steps("cleanup", &scenario.cleanup, true)?,
    })
}

fn plan_step(
    config: &Config,
    targets: &Targets,
    default_target: &str,
    step: &StepSpec,
    label: String,
    path: &str,
) -> Result<Step, ConfigError> {
    let target_name = step.target.as_deref().unwrap_or(default_target);
    let target = targets.get(target_name).ok_or_else(|| {
        ConfigError::invalid(
            format!("{path}.target"),
            target_name,
            "no such target",
            "use a name under `targets:`",
        )
    })?;
    let method = Method::from_bytes(step.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
        ConfigError::invalid(
            format!("{path}.method"),
            &step.method,
            "not an HTTP method",
            "use GET, POST, …",
        )
    })?;
    let headers = step
        .headers
        .iter()
        .map(|(name, value)| {
            HeaderName::from_bytes(name.as_bytes())
                .map(|header| (header, value.clone()))
                .map_err(|_| {
                    ConfigError::invalid(
                        format!("{path}.headers"),
                        name,
                        "not a header name",
                        "use letters, digits and dashes",
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let body = match (&step.body, &step.json, &step.form) {
        (Some(raw), None, None) => StepBody::Raw(raw.clone()),
        (None, Some(json), None) => StepBody::Json(json.clone()),
        (None, None, Some(form)) => StepBody::Form(
            form.iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
        (None, None, None) => StepBody::None,
        _ => {
            return Err(ConfigError::invalid(
                path,
                &label,
                "more than one of body, json and form",
                "give the step one body",
            ));
        }
    };
    let capture = step
        .capture
        .iter()
        .map(|(variable, source)| {
            let from = match source.strip_prefix("header:") {
                Some(name) => HeaderName::from_bytes(name.trim().as_bytes())
                    .map(Capture::Header)
                    .map_err(|_| {
                        ConfigError::invalid(
                            format!("{path}.capture.{variable}"),
                            source,
                            "not a header name",
                            "write header:Location",
                        )
                    })?,
                None => Capture::Pointer(source.clone()),
            };
            Ok((variable.clone(), from))
        })
        .collect::<Result<_, ConfigError>>()?;
    Ok(Step {
        label,
        target: target_name.to_owned(),
        method,
        path: step.path.clone(),
        headers,
        body,
        timeout: step.timeout.map_or(target.timeout, |t| t.0),
        expect: step.expect.clone(),
        capture,
        max_body_bytes: config.defaults.max_body_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_checks_render_run_variables_and_secrets() {
        let config = Config::parse(
            r#"
secrets: { token: { env: UNUSED_IN_THIS_TEST } }
targets: { test: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTraffic:
    checks:
      - name: templated
        http:
          target: test
          path: "/v1/runs/{{run_id}}?stage={{stage}}"
          headers: { Authorization: "Bearer {{secrets.token}}", X-Deployment: "{{deployment_id}}" }
          expect: { body_contains: "{{run_id}}" }
"#,
        )
        .unwrap();
        let targets = Targets::build(&config).unwrap();
        let secrets = [("token".to_owned(), "sk_test_tok".to_owned())].into();
        let vars = Vars::new("gl-7", "d-7", "AfterAllowTraffic", &secrets);
        let plan = Plan::build(&config, &targets, Stage::AfterAllowTraffic, &vars).unwrap();
        let CheckKind::Http(check) = &plan.checks[0].kind else {
            panic!("an http check")
        };
        assert_eq!(
            check.request.url.as_str(),
            "http://127.0.0.1:9/v1/runs/gl-7?stage=AfterAllowTraffic"
        );
        assert_eq!(check.request.headers["authorization"], "Bearer sk_test_tok");
        assert_eq!(check.request.headers["x-deployment"], "d-7");
        assert_eq!(
            check.expect.body_contains,
            Some(crate::config::OneOrMany::Many(vec!["gl-7".to_owned()]))
        );
    }

    #[test]
    fn resolves_defaults_targets_and_paths() {
        let config = Config::parse(
            r#"
targets:
  test: { url: "https://10.0.0.1:8443/api/", host: payments.example.com }
defaults: { timeout: 3s, retries: 1, retry_delay: 250ms }
stages:
  AfterAllowTestTraffic:
    checks:
      - name: health
        http: { target: test, path: "/health?deep=1", headers: { Authorization: "Bearer sk_test_x" } }
      - name: slow
        required: false
        retries: 0
        http: { target: test, method: post, timeout: 9s, body: "{}" }
"#,
        )
        .unwrap();
        let targets = Targets::build(&config).unwrap();
        let vars = Vars::new("gl-1", "d-1", "AfterAllowTestTraffic", &Default::default());
        let plan = Plan::build(&config, &targets, Stage::AfterAllowTestTraffic, &vars).unwrap();
        let CheckKind::Http(health) = &plan.checks[0].kind else {
            panic!("an http check")
        };
        assert_eq!(
            health.request.url.as_str(),
            "https://payments.example.com:8443/api/health?deep=1"
        );
        assert_eq!(health.request.timeout, std::time::Duration::from_secs(3));
        assert!(health.request.headers["authorization"].is_sensitive());
        assert_eq!(plan.checks[0].retries, 1);
        let CheckKind::Http(slow) = &plan.checks[1].kind else {
            panic!("an http check")
        };
        assert_eq!(slow.request.method, Method::POST);
        assert_eq!(slow.request.timeout, std::time::Duration::from_secs(9));
        assert!(!plan.checks[1].required);
        assert_eq!(plan.checks[1].retries, 0);
    }
}
