//! Preflight: what would make a deployment fail or hang, found before the first deployment.
//! From a laptop or CI (`greenlight doctor`) and from inside the deployed function (an
//! invocation with `{"greenlight": "doctor"}`), so the checks run from where the hooks really
//! run: their VPC, their role.
//!
//! Each finding says what was looked at, whether it is well, and how to fix it if not. Nothing
//! here changes anything: no check request is sent to a target (only a TCP connection and a
//! TLS handshake), and the CodeDeploy probe names a deployment that does not exist.

use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpStream;

use crate::aws::Aws;
use crate::config::Config;
use crate::error::chain;
use crate::transport::client::{TargetClient, unbracket};

/// The deployment the CodeDeploy probe reports for: well-formed, never a real one, so the
/// answer proves the API is reachable and the call is signed, and changes nothing.
pub const PROBE_DEPLOYMENT: &str = "d-DOCTOR000";

/// The longest the CodeDeploy probe waits before calling the API unreachable.
const PROBE_LIMIT: Duration = Duration::from_secs(15);

/// One thing the doctor looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was looked at: `config`, `stage AfterAllowTraffic`, `target test`, `secret api_key`,
    /// `codedeploy`, `cloudwatch`.
    pub subject: String,
    /// Whether it is well.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is not well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A subject that is well.
    pub fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Finding {
            subject: subject.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A subject not looked at, and why: well, since nothing is wrong with it that can be known.
    pub fn skipped(subject: impl Into<String>, why: impl Into<String>) -> Self {
        Finding::ok(subject, format!("skipped: {}", why.into()))
    }

    /// A subject that is not, and its fix.
    pub fn problem(
        subject: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            subject: subject.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// The same finding with every text scrubbed: findings leave the process (a terminal, the
    /// function's answer), and a fix may quote what was found.
    pub(crate) fn scrubbed(self, redactor: &crate::redact::Redactor) -> Self {
        Finding {
            subject: redactor.scrub(&self.subject),
            ok: self.ok,
            detail: redactor.scrub(&self.detail),
            fix: self.fix.map(|fix| redactor.scrub(&fix)),
        }
    }

    /// One line for a person: `ok   target test: …` or `FIX  secret api_key: … → fix`.
    pub fn line(&self) -> String {
        match &self.fix {
            None => format!("ok    {}: {}", self.subject, self.detail),
            Some(fix) => format!("FIX   {}: {} → {fix}", self.subject, self.detail),
        }
    }
}

/// The preflight from a shell (`greenlight doctor`): the config, its targets and secrets, and
/// CloudWatch when a check reads it. The deployed function adds what only it can see
/// (`in_lambda`).
pub async fn from_cli(config: &Config, source: &str, aws: &Aws) -> Vec<Finding> {
    let mut findings = check_config(config, source, aws).await;
    findings.extend(cloudwatch(config, aws).await);
    findings
}

/// The offline part and the reachability of the targets and the secrets: what the CLI and the
/// deployed function both check. The config has already been loaded (its source was read).
pub(crate) async fn check_config(config: &Config, source: &str, aws: &Aws) -> Vec<Finding> {
    let mut findings = vec![Finding::ok("config", format!("{source} loaded and valid"))];
    let targets = match crate::suite::build_targets(config) {
        Ok(targets) => targets,
        Err(err) => {
            findings.push(Finding::problem(
                "config",
                err.to_string(),
                "fix the target settings named above",
            ));
            return findings;
        }
    };
    match crate::plan::Plans::build(config, &targets) {
        Ok(_) => {
            for stage in crate::stage::Stage::ALL {
                if let Some(checks) = config.stages.get(stage).map(|s| s.checks.len()) {
                    findings.push(Finding::ok(
                        format!("stage {stage}"),
                        format!("{checks} checks planned"),
                    ));
                }
            }
        }
        Err(err) => findings.push(Finding::problem(
            "config",
            err.to_string(),
            "fix the check named above",
        )),
    }
    let mut values = Vec::new();
    for name in config.secrets.keys() {
        let (finding, value) = secret(config, name, aws).await;
        findings.push(finding);
        values.extend(value);
    }
    // All targets at once: each is bounded by its own timeout, so the whole check takes the
    // slowest target's time, not their sum (the function's own deadline is not far).
    findings.extend(futures::future::join_all(targets.iter().map(target_finding)).await);
    // Whatever a finding quotes, the secrets just read are not in it.
    let redactor = crate::redact::Redactor::new(values);
    findings
        .into_iter()
        .map(|finding| finding.scrubbed(&redactor))
        .collect()
}

/// Whether one secret can be read from its source, and its value (which is never shown: the
/// findings are scrubbed of it).
async fn secret(config: &Config, name: &str, aws: &Aws) -> (Finding, Option<String>) {
    let subject = format!("secret {name}");
    let mut one = config.clone();
    one.secrets.retain(|key, _| key == name);
    match crate::source::secrets(&one, aws).await.all() {
        Ok(mut values) => (
            Finding::ok(subject, "readable and not empty"),
            values.remove(name),
        ),
        Err(err) => (
            Finding::problem(subject, err.to_string(), "fix the source named above"),
            None,
        ),
    }
}

/// Whether a target answers: its address resolves, a TCP connection opens within its timeout,
/// and for `https` a TLS handshake completes with the configured host name and trust (the
/// certificate's own names are given when they do not match).
async fn target_finding(target: &TargetClient) -> Finding {
    let subject = format!("target {}", target.name);
    let (host, port) = (&target.dial.0, target.dial.1);
    let limit = target.timeout;
    let addresses =
        match tokio::time::timeout(limit, tokio::net::lookup_host((unbracket(host), port))).await {
            Ok(Ok(addresses)) => addresses.collect::<Vec<_>>(),
            Ok(Err(err)) => {
                return Finding::problem(
                    subject,
                    format!("{host} does not resolve: {err}"),
                    "check the URL's host name, and the DNS the function's VPC uses",
                );
            }
            Err(_) => {
                return Finding::problem(
                    subject,
                    format!(
                        "resolving {host} took over {}",
                        humantime::format_duration(limit)
                    ),
                    "check the DNS the function's VPC uses",
                );
            }
        };
    let Some(address) = addresses.first() else {
        return Finding::problem(
            subject,
            format!("{host} resolves to no address"),
            "check the URL's host name",
        );
    };
    let tcp = match tokio::time::timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(err)) => {
            return Finding::problem(
                subject,
                format!("{host}:{port} ({address}) refused the connection: {err}"),
                "check the listener's port, and that the load balancer listens there",
            );
        }
        Err(_) => {
            return Finding::problem(
                subject,
                format!(
                    "no answer from {host}:{port} ({address}) within {}",
                    humantime::format_duration(limit)
                ),
                "a security group or network ACL drops the traffic, or the function is not in \
                 the VPC of an internal load balancer (template parameters SubnetIds and \
                 SecurityGroupIds)",
            );
        }
    };
    let Some(tls) = &target.tls else {
        return Finding::ok(subject, format!("{host}:{port} accepts connections (http)"));
    };
    let name = target.base.host_str().map(unbracket).unwrap_or(host);
    let server_name = match rustls::pki_types::ServerName::try_from(name.to_owned()) {
        Ok(server_name) => server_name,
        Err(err) => {
            return Finding::problem(
                subject,
                format!("{name} cannot be a TLS server name: {err}"),
                "use a DNS name in the URL or in host",
            );
        }
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(tls));
    match tokio::time::timeout(limit, connector.connect(server_name, tcp)).await {
        Ok(Ok(_)) if target.insecure => Finding::problem(
            subject,
            format!("{host}:{port} completes a TLS handshake, but certificates are not checked"),
            "trust the listener's CA with ca_file and remove insecure_skip_tls_verify",
        ),
        Ok(Ok(_)) => Finding::ok(
            subject,
            format!("{host}:{port} completes a TLS handshake; the certificate is valid for {name}"),
        ),
        Ok(Err(err)) => {
            let why = chain(&err);
            let fix = if why.contains("not valid for name") || why.contains("NotValidForName") {
                format!(
                    "the certificate is not for {name}: set targets.{}.host to a name it is \
                     for (the listener's public name), or fix the certificate",
                    target.name
                )
            } else if why.contains("UnknownIssuer") || why.contains("issuer") {
                format!(
                    "trust the certificate's CA: targets.{}.ca_file (a PEM bundle)",
                    target.name
                )
            } else {
                "check that the listener speaks TLS on this port, and its certificate".to_owned()
            };
            Finding::problem(
                subject,
                format!("the TLS handshake with {host}:{port} as {name} failed: {why}"),
                fix,
            )
        }
        Err(_) => Finding::problem(
            subject,
            format!(
                "{host}:{port} accepted a connection but no TLS handshake completed within {}",
                humantime::format_duration(limit)
            ),
            "check that the listener speaks TLS (https) on this port",
        ),
    }
}

/// What the CodeDeploy probe found: the API's answer to a status for [`PROBE_DEPLOYMENT`].
pub(crate) fn codedeploy_finding(
    answer: Option<Result<crate::report::codedeploy::Delivery, crate::error::ReportError>>,
) -> Finding {
    use crate::error::ReportError;
    let subject = "codedeploy";
    match answer {
        None => Finding::problem(
            subject,
            format!(
                "no answer from the CodeDeploy API within {}",
                humantime::format_duration(PROBE_LIMIT)
            ),
            "the function has no route to CodeDeploy: add a NAT gateway or a \
             com.amazonaws.REGION.codedeploy VPC endpoint to its subnets (a hook that cannot \
             report leaves the deployment waiting an hour)",
        ),
        Some(Ok(_)) => Finding::problem(
            subject,
            format!("CodeDeploy accepted a status for {PROBE_DEPLOYMENT}, which should not exist"),
            "check AWS_ENDPOINT_URL_CODEDEPLOY: is it the real CodeDeploy?",
        ),
        Some(Err(ReportError::Rejected { code, message, .. })) if code.contains("AccessDenied") => {
            Finding::problem(
                subject,
                format!("CodeDeploy refused the status call: {code}: {message}"),
                "the function's role needs codedeploy:PutLifecycleEventHookExecutionStatus on \
                 the deployment group (template.yaml grants it for CodeDeployApplication and \
                 CodeDeployDeploymentGroup)",
            )
        }
        Some(Err(ReportError::Rejected { code, .. })) => Finding::ok(
            subject,
            format!(
                "the API is reachable and took the signed call: it answered {code} for the \
                 probe deployment {PROBE_DEPLOYMENT} (nothing changed)"
            ),
        ),
        Some(Err(err)) => Finding::problem(
            subject,
            format!("could not reach the CodeDeploy API: {err}"),
            "add a NAT gateway or a com.amazonaws.REGION.codedeploy VPC endpoint to the \
             function's subnets, and check AWS_ENDPOINT_URL_CODEDEPLOY",
        ),
    }
}

/// Whether CloudWatch reads are allowed, for a config with `alarms` or `metric` checks: a
/// `DescribeAlarms` for a name no alarm has (nothing is read but the answer).
pub(crate) async fn cloudwatch(config: &Config, aws: &Aws) -> Option<Finding> {
    let uses = crate::stage::Stage::ALL.into_iter().any(|stage| {
        config.stages.get(stage).is_some_and(|s| {
            s.checks
                .iter()
                .any(|c| c.alarms.is_some() || c.metric.is_some())
        })
    });
    if !uses {
        return None;
    }
    Some(
        match aws
            .describe_alarms(&["greenlight-doctor-probe".to_owned()], None)
            .await
        {
            Ok(_) => Finding::ok(
                "cloudwatch",
                "DescribeAlarms answered: alarms can be read (GetMetricData is granted with it \
                 by EnableMetricChecks)",
            ),
            Err(err) => Finding::problem("cloudwatch", err.problem, err.fix),
        },
    )
}

/// Send the CodeDeploy probe through `sink` (a status for [`PROBE_DEPLOYMENT`]), bounded by
/// [`PROBE_LIMIT`].
pub(crate) async fn probe_codedeploy<S: crate::report::codedeploy::StatusSink>(
    sink: &S,
) -> Finding {
    let event = crate::event::CodeDeployEvent {
        deployment_id: PROBE_DEPLOYMENT.to_owned(),
        lifecycle_event_hook_execution_id: "greenlight-doctor-probe".to_owned(),
        watch: None,
    };
    let answer = tokio::time::timeout(
        PROBE_LIMIT,
        sink.put(&event, crate::verdict::Verdict::Failed),
    )
    .await
    .ok();
    codedeploy_finding(answer)
}

/// Everything the deployed function can check from where it runs, as the JSON an invocation
/// with `{"greenlight": "doctor"}` returns: `{"ok": bool, "findings": [...]}`.
pub(crate) async fn in_lambda<S: crate::report::codedeploy::StatusSink>(
    suite: Result<&crate::suite::Suite, &str>,
    sink: &S,
) -> serde_json::Value {
    let mut findings = match suite {
        Ok(suite) => {
            let mut findings =
                check_config(&suite.config, &suite.source.to_string(), suite.aws()).await;
            findings.extend(cloudwatch(&suite.config, suite.aws()).await);
            findings
        }
        Err(why) => vec![Finding::problem(
            "config",
            why.to_owned(),
            "fix GREENLIGHT_CONFIG or what it points at (every deployment fails until then)",
        )],
    };
    // Run by `make invoke` against local stand-ins: what only AWS can answer is skipped, and
    // the findings say so, rather than a "not ready" that no local fix can mend.
    let local = std::env::var(LOCAL_RUN_ENV).is_ok_and(|v| !v.trim().is_empty());
    if local {
        findings.push(Finding::skipped(
            "codedeploy",
            format!(
                "a local run ({LOCAL_RUN_ENV}): the CodeDeploy here is a stand-in that accepts \
                 any report, so probing it proves nothing; the deployed function's doctor \
                 probes the real API"
            ),
        ));
        findings.push(Finding::skipped(
            "permissions",
            "a local run: there is no IAM here to simulate the role's policies; the deployed \
             function's doctor does",
        ));
    } else {
        findings.push(probe_codedeploy(sink).await);
    }
    match suite {
        Ok(suite) => {
            if !local {
                findings.extend(permissions(Some(&suite.config), suite.aws()).await);
            }
            findings = findings
                .into_iter()
                .map(|finding| finding.scrubbed(suite.redactor()))
                .collect();
        }
        Err(_) if local => {}
        Err(_) => findings.extend(permissions(None, &Aws::new()).await),
    }
    serde_json::json!({
        "ok": findings.iter().all(|f| f.ok),
        "findings": findings,
    })
}

/// Set by `make invoke` (scripts/invoke.sh): the function runs against local stand-ins.
pub(crate) const LOCAL_RUN_ENV: &str = "GREENLIGHT_LOCAL_RUN";

/// The deployment group the role reports for, as the template sets it.
pub(crate) const DEPLOYMENT_GROUP_ENV: &str = "GREENLIGHT_DEPLOYMENT_GROUP_ARN";

/// What the role may do, by IAM's own evaluation of its policies (nothing is done): report to
/// CodeDeploy for its deployment group, and what the config's checks and notifications need.
pub(crate) async fn permissions(config: Option<&Config>, aws: &Aws) -> Vec<Finding> {
    let role = match aws.caller_role().await {
        Ok(role) => role,
        Err(err) => return vec![Finding::problem("permissions", err.problem, err.fix)],
    };
    let parts: Vec<&str> = role.split(':').collect();
    let (partition, account) = (
        parts.get(1).copied().unwrap_or("aws"),
        parts.get(4).copied().unwrap_or_default(),
    );
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    let mut findings = Vec::new();
    let mut wanted: Vec<(&str, String)> = Vec::new();
    match std::env::var(DEPLOYMENT_GROUP_ENV) {
        Ok(group) if !group.trim().is_empty() => {
            wanted.push(("codedeploy:PutLifecycleEventHookExecutionStatus", group));
        }
        _ => findings.push(Finding::problem(
            "permission codedeploy:PutLifecycleEventHookExecutionStatus",
            format!(
                "{DEPLOYMENT_GROUP_ENV} is not set, so the deployment group to check is unknown"
            ),
            format!(
                "set {DEPLOYMENT_GROUP_ENV} to the deployment group's ARN (template.yaml does)"
            ),
        )),
    }
    if let Some(config) = config {
        let checks = || {
            crate::stage::Stage::ALL
                .into_iter()
                .filter_map(|stage| config.stages.get(stage))
                .flat_map(|stage| stage.checks.iter())
        };
        if checks().any(|c| c.alarms.is_some()) {
            wanted.push((
                "cloudwatch:DescribeAlarms",
                format!("arn:{partition}:cloudwatch:{region}:{account}:alarm:greenlight-doctor"),
            ));
        }
        if checks().any(|c| c.metric.is_some()) {
            wanted.push(("cloudwatch:GetMetricData", "*".to_owned()));
        }
        if checks().any(|c| c.repeat.is_some())
            && let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        {
            wanted.push((
                "lambda:InvokeFunction",
                format!("arn:{partition}:lambda:{region}:{account}:function:{function}"),
            ));
        }
        if let Some(topic) = config.notify.as_ref().and_then(|n| n.sns_topic.clone()) {
            wanted.push(("sns:Publish", topic));
        }
    }
    for (action, resource) in wanted {
        let subject = format!("permission {action}");
        match aws.simulate(&role, &[action], &resource).await {
            Ok(decisions) => match decisions.first().map(|d| d.decision.as_str()) {
                Some("allowed") => findings.push(Finding::ok(
                    subject,
                    format!("{role} may call it on {resource} (IAM policy simulation)"),
                )),
                other => findings.push(Finding::problem(
                    subject,
                    format!(
                        "IAM's simulation of {role} on {resource}: {}",
                        other.unwrap_or("no decision")
                    ),
                    format!("grant {action} on {resource} to the function's role (template.yaml has the statement; check its parameters)"),
                )),
            },
            Err(err) => {
                findings.push(Finding::problem(subject, err.problem, err.fix));
                // Without the simulation, the other actions cannot be checked either.
                break;
            }
        }
    }
    findings
}
