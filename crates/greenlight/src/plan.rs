//! From config to plans: each stage's checks resolved against defaults and target clients,
//! once per cold start. Templates stay unrendered until a run supplies its variables; a config
//! that loaded always plans.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::check::alarms::AlarmsCheck;
use crate::check::http::Exchange;
use crate::check::metric::MetricCheck;
use crate::check::probe::{Judge, Limits, ProbeCheck};
use crate::check::request::RequestTemplate;
use crate::check::scenario::{ScenarioCheck, Step};
use crate::check::{CheckKind, PlannedCheck};
use crate::config::checks::{DEFAULT_CONFIDENCE, DEFAULT_MIN_REGRESSION, DEFAULT_TOLERANCE};
use crate::config::{CheckSpec, Config, HasRequest, KindSpec, ProbeSpec, StatusSpec};
use crate::discovery::TargetGroups;
use crate::error::ConfigError;
use crate::stage::Stage;
use crate::template::Vars;
use crate::transport::client::{TargetClient, Targets};

/// What a stage will run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Its checks, in config order.
    pub checks: Vec<PlannedCheck>,
    /// How many run at once.
    pub concurrency: usize,
}

/// The plan of every stage the config has.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plans {
    stages: BTreeMap<Stage, Plan>,
}

impl Plans {
    /// Plan every stage of a validated config against its targets' clients.
    pub(crate) fn build(config: &Config, targets: &Targets) -> Result<Plans, ConfigError> {
        let mut stages = BTreeMap::new();
        for stage in Stage::ALL {
            if let Some(stage_config) = config.stages.get(stage) {
                let checks = stage_config
                    .checks
                    .iter()
                    .enumerate()
                    .map(|(index, spec)| {
                        let path = format!("stages.{stage}.checks[{index}]");
                        plan_check(config, targets, spec, &path)
                    })
                    .collect::<Result<_, _>>()?;
                let concurrency = config.defaults.concurrency;
                stages.insert(
                    stage,
                    Plan {
                        checks,
                        concurrency,
                    },
                );
            }
        }
        Ok(Plans { stages })
    }

    /// The plan of a stage, or [`ConfigError::NoStage`] when the config has none.
    pub(crate) fn get(&self, stage: Stage) -> Result<&Plan, ConfigError> {
        self.stages
            .get(&stage)
            .ok_or(ConfigError::NoStage { stage })
    }
}

/// What one run brings to a stage's plan: who it is, and what it found of the deployment.
pub(crate) struct RunInputs<'a> {
    pub stage: Stage,
    /// Stable per hook execution.
    pub run_id: &'a str,
    /// The deployment it runs for (`local` when none).
    pub deployment_id: &'a str,
    /// The secrets' values, and why each missing one could not be read.
    pub secrets: &'a BTreeMap<String, String>,
    /// Secrets the cold start could not read: `{{secrets.NAME}}` fails with the reason.
    pub missing: &'a BTreeMap<String, String>,
    /// What this run found of the deployment's target groups; `None` when nothing looked.
    pub target_groups: Option<Result<TargetGroups, String>>,
    /// Green's share of production traffic, percent; the stage's own when unknown.
    pub green_weight: Option<u8>,
}

/// A plan bound to one run: its variables, and the checks its `when` conditions keep.
pub(crate) struct Bound<'p> {
    /// The checks this run makes (the plan itself unless a `when` skipped some).
    pub plan: Cow<'p, Plan>,
    /// The run's variables.
    pub vars: Vars,
    /// The checks a `when` kept from running, and why.
    pub skipped: Vec<SkippedCheck>,
}

/// A check whose `when` condition kept it from running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedCheck {
    pub name: String,
    /// Why it did not run.
    pub reason: String,
}

impl Plan {
    /// Bind the plan to one run: its variables (ids, secrets, the deployment's target groups,
    /// the traffic weights, `repeat` at 0) and the checks that run at this weight.
    pub(crate) fn bind<'p>(&'p self, run: RunInputs<'_>) -> Bound<'p> {
        let mut vars = Vars::new(
            run.run_id,
            run.deployment_id,
            run.stage.as_str(),
            run.secrets,
        );
        for (name, why) in run.missing {
            vars.unknown(&format!("secrets.{name}"), why);
        }
        match run.target_groups {
            Some(Ok(groups)) => {
                vars.set("green_target_group", &groups.green);
                vars.set("blue_target_group", &groups.blue);
                vars.set("load_balancer", &groups.load_balancer);
            }
            Some(Err(why)) => {
                for name in crate::config::metric::DEPLOYMENT_VARIABLES {
                    vars.unknown(name, &why);
                }
            }
            None => {
                for name in crate::config::metric::DEPLOYMENT_VARIABLES {
                    vars.unknown(name, "green's target group was not looked for in this run");
                }
            }
        }
        // Green's share of production traffic: what the event says (an ECS canary or linear
        // step), else what the stage implies (all of it once production moved).
        let green_weight = run.green_weight.unwrap_or(match run.stage {
            Stage::AfterAllowTraffic => 100,
            _ => 0,
        });
        vars.set("green_weight", &green_weight.to_string());
        vars.set("blue_weight", &(100 - green_weight.min(100)).to_string());
        vars.set("repeat", "0");
        // `when` conditions decide which checks run at all at this weight (the plan is copied
        // only when some check has one).
        let mut skipped = Vec::new();
        if !self.checks.iter().any(|check| check.when.is_some()) {
            return Bound {
                plan: Cow::Borrowed(self),
                vars,
                skipped,
            };
        }
        let mut kept = self.clone();
        kept.checks.retain(|check| {
            match check.when.as_ref().and_then(|when| when.skips(green_weight)) {
                Some(reason) => {
                    tracing::info!(check = %check.name, green_weight, reason = %reason, "check skipped");
                    skipped.push(SkippedCheck {
                        name: check.name.clone(),
                        reason,
                    });
                    false
                }
                None => true,
            }
        });
        Bound {
            plan: Cow::Owned(kept),
            vars,
            skipped,
        }
    }
}

/// Looks up target clients for one check; validation has made sure every name exists, so a
/// miss is a bug, reported against the field rather than a panic.
struct Resolver<'a> {
    targets: &'a Targets,
    max_body_bytes: u64,
}

impl Resolver<'_> {
    fn target(&self, path: &str, name: Option<&str>) -> Result<Arc<TargetClient>, ConfigError> {
        let name = name.unwrap_or_default();
        self.targets.get(name).cloned().ok_or_else(|| {
            ConfigError::invalid(
                format!("{path}.target"),
                format!("{name:?}"),
                "no such target",
                "use a name under `targets:`",
            )
        })
    }

    fn request(
        &self,
        path: &str,
        spec: &impl HasRequest,
        default_target: Option<&str>,
    ) -> Result<RequestTemplate, ConfigError> {
        let fields = spec.request();
        let target = self.target(path, fields.target.or(default_target))?;
        Ok(RequestTemplate::new(&fields, target, self.max_body_bytes))
    }
}

fn plan_check(
    config: &Config,
    targets: &Targets,
    spec: &CheckSpec,
    path: &str,
) -> Result<PlannedCheck, ConfigError> {
    let resolve = Resolver {
        targets,
        max_body_bytes: config.defaults.max_body_bytes,
    };
    let kind = match spec.kind() {
        Some(KindSpec::Http(http)) => {
            let path = format!("{path}.http");
            CheckKind::Http(Box::new(Exchange {
                request: resolve.request(&path, http, None)?,
                expect: http.expect.clone(),
                capture: Vec::new(),
                secret_captures: Vec::new(),
            }))
        }
        Some(KindSpec::Scenario(scenario)) => {
            let path = format!("{path}.scenario");
            let secret_captures = credential_variables(scenario);
            let steps = |list: &str, steps: &[crate::config::StepSpec], cleanup: bool| {
                steps
                    .iter()
                    .enumerate()
                    .map(|(index, step)| {
                        let path = format!("{path}.{list}[{index}]");
                        Ok(Step {
                            label: step.label(index, cleanup),
                            exchange: Exchange {
                                request: resolve.request(&path, step, Some(&scenario.target))?,
                                expect: step.expect.clone(),
                                capture: step
                                    .capture
                                    .iter()
                                    .map(|(name, from)| (name.clone(), from.clone()))
                                    .collect(),
                                secret_captures: step
                                    .capture
                                    .keys()
                                    .filter(|name| secret_captures.contains(*name))
                                    .cloned()
                                    .collect(),
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, ConfigError>>()
            };
            CheckKind::Scenario(ScenarioCheck {
                steps: steps("steps", &scenario.steps, false)?,
                cleanup: steps("cleanup", &scenario.cleanup, true)?,
            })
        }
        Some(KindSpec::Alarms(alarms)) => CheckKind::Alarms(AlarmsCheck::new(alarms)),
        Some(KindSpec::Metric(metric)) => CheckKind::Metric(Box::new(MetricCheck {
            spec: metric.clone(),
        })),
        Some(KindSpec::Probe(probe)) => CheckKind::Probe(Box::new(plan_probe(
            &resolve,
            &spec.name,
            probe,
            &format!("{path}.probe"),
        )?)),
        None => {
            return Err(ConfigError::invalid(
                path,
                &spec.name,
                "the check needs exactly one kind",
                "add `http:`, `scenario:`, `probe:`, `metric:` or `alarms:`",
            ));
        }
    };
    Ok(PlannedCheck {
        name: spec.name.clone(),
        required: spec.required,
        retries: spec.retries(config.defaults.retries),
        retry_delay: spec.retry_delay.unwrap_or(config.defaults.retry_delay).0,
        kind,
        repeat: spec.repeat.clone(),
        when: spec.when.clone(),
    })
}

/// The variables a scenario puts into credential headers (`Authorization: Bearer {{token}}`):
/// captured into one, a value is a secret from the moment it arrives.
fn credential_variables(scenario: &crate::config::ScenarioSpec) -> Vec<String> {
    scenario
        .steps
        .iter()
        .chain(&scenario.cleanup)
        .flat_map(|step| step.headers.iter())
        .filter(|(name, _)| crate::redact::is_sensitive_header(name.as_str()))
        .flat_map(|(_, value)| crate::template::variables(value).unwrap_or_default())
        .collect()
}

fn plan_probe(
    resolve: &Resolver<'_>,
    name: &str,
    probe: &ProbeSpec,
    path: &str,
) -> Result<ProbeCheck, ConfigError> {
    let request = resolve.request(path, probe, None)?;
    // The same request, to the baseline's listener.
    let baseline = match &probe.baseline {
        Some(baseline) => Some(RequestTemplate {
            target: resolve.target(path, Some(baseline))?,
            ..request.clone()
        }),
        None => None,
    };
    Ok(ProbeCheck {
        name: name.to_owned(),
        request,
        baseline,
        concurrency: probe.concurrency,
        ok_status: probe
            .status
            .as_ref()
            .map(StatusSpec::codes)
            .unwrap_or_default(),
        limits: Limits {
            requests: probe.requests,
            max_p50: probe.max_p50.map(|d| d.0),
            max_p95: probe.max_p95.map(|d| d.0),
            max_p99: probe.max_p99.map(|d| d.0),
            max_error_rate: probe.max_error_rate,
            max_p95_regression: probe.max_p95_regression,
            min_regression: probe.min_regression.map_or(DEFAULT_MIN_REGRESSION, |d| d.0),
            judge: probe.judge.map(|_| Judge {
                confidence: probe.confidence.unwrap_or(DEFAULT_CONFIDENCE),
                tolerance: probe.tolerance.unwrap_or(DEFAULT_TOLERANCE),
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Vars;
    use http::Method;

    fn plans(text: &str) -> Plans {
        let config = Config::parse(text).unwrap();
        let targets = crate::suite::build_targets(&config).unwrap();
        Plans::build(&config, &targets).unwrap()
    }

    #[test]
    fn requests_render_run_variables_and_secrets() {
        let plans = plans(
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
        );
        let plan = plans.get(Stage::AfterAllowTraffic).unwrap();
        let CheckKind::Http(exchange) = &plan.checks[0].kind else {
            panic!("an http check")
        };
        let secrets = [("token".to_owned(), "sk_test_tok".to_owned())].into();
        let vars = Vars::new("gl-7", "d-7", "AfterAllowTraffic", &secrets);
        let request = exchange.request.render(&vars).unwrap();
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9/v1/runs/gl-7?stage=AfterAllowTraffic"
        );
        assert_eq!(request.headers["authorization"], "Bearer sk_test_tok");
        assert!(request.headers["authorization"].is_sensitive());
        assert_eq!(request.headers["x-deployment"], "d-7");
    }

    #[test]
    fn resolves_defaults_targets_and_paths() {
        let plans = plans(
            r#"
targets:
  test: { url: "https://10.0.0.1:8443/api/", host: payments.example.com }
defaults: { timeout: 3s, retries: 1, retry_delay: 250ms }
stages:
  AfterAllowTestTraffic:
    checks:
      - name: health
        http: { target: test, path: "/health?deep=1" }
      - name: slow
        required: false
        retries: 0
        http: { target: test, method: post, timeout: 9s, body: "{}" }
      - name: flow
        scenario: { target: test, steps: [ { path: /a } ] }
"#,
        );
        let plan = plans.get(Stage::AfterAllowTestTraffic).unwrap();
        let vars = Vars::new("gl-1", "d-1", "AfterAllowTestTraffic", &Default::default());
        let CheckKind::Http(health) = &plan.checks[0].kind else {
            panic!("an http check")
        };
        let request = health.request.render(&vars).unwrap();
        assert_eq!(
            request.url.as_str(),
            "https://payments.example.com:8443/api/health?deep=1"
        );
        assert_eq!(request.timeout, std::time::Duration::from_secs(3));
        assert_eq!(plan.checks[0].retries, 1);
        let CheckKind::Http(slow) = &plan.checks[1].kind else {
            panic!("an http check")
        };
        assert_eq!(slow.request.method, Method::POST);
        assert_eq!(slow.request.timeout, std::time::Duration::from_secs(9));
        assert!(!plan.checks[1].required);
        assert_eq!(plan.checks[1].retries, 0);
        // Scenarios are not retried unless they ask: a retry would replay refunded payments.
        assert_eq!(plan.checks[2].retries, 0);
        assert!(plans.get(Stage::AfterAllowTraffic).is_err());
    }

    /// A config that loads always plans: the shipped examples, every stage.
    #[test]
    fn the_shipped_examples_plan_for_every_stage() {
        for (name, text) in [
            (
                "examples/payments.yaml",
                include_str!("../../../examples/payments.yaml"),
            ),
            (
                "examples/local.yaml",
                include_str!("../../../examples/local.yaml"),
            ),
        ] {
            let config = Config::parse(text).unwrap_or_else(|err| panic!("{name}: {err}"));
            let targets = crate::suite::build_targets(&config).unwrap();
            let plans = Plans::build(&config, &targets).unwrap();
            for stage in Stage::ALL {
                let plan = plans
                    .get(stage)
                    .unwrap_or_else(|err| panic!("{name} {stage}: {err}"));
                assert_eq!(
                    plan.checks.len(),
                    config.stage(stage).unwrap().checks.len(),
                    "{name} {stage}"
                );
            }
        }
    }

    #[test]
    fn probe_baselines_send_the_same_request_to_the_other_target() {
        let plans = plans(
            "targets: { test: { url: 'http://127.0.0.1:1' }, prod: { url: 'http://127.0.0.1:2' } }\n\
             stages: { AfterAllowTestTraffic: { checks: [ { name: p, probe: { target: test, baseline: prod, path: /x, requests: 60, judge: mann-whitney } } ] } }",
        );
        let plan = plans.get(Stage::AfterAllowTestTraffic).unwrap();
        let CheckKind::Probe(probe) = &plan.checks[0].kind else {
            panic!("a probe")
        };
        let baseline = probe.baseline.as_ref().unwrap();
        assert_eq!(probe.request.target.name, "test");
        assert_eq!(baseline.target.name, "prod");
        assert_eq!(baseline.path, "/x");
        let judge = probe.limits.judge.unwrap();
        assert_eq!(judge.confidence, DEFAULT_CONFIDENCE);
        assert_eq!(judge.tolerance, DEFAULT_TOLERANCE);
        assert_eq!(probe.limits.min_regression, DEFAULT_MIN_REGRESSION);
    }
}
