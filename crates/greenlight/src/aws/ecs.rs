//! ECS read: the target groups of a service revision (`DescribeServiceRevisions`), one signed
//! JSON 1.1 request. An ECS-native blue/green deployment names its new revision in the hook
//! event; the revision's `resolvedConfiguration.loadBalancers[].targetGroupArn` is the target
//! group that revision actually serves from. (The revision's `loadBalancers[].targetGroupArn`
//! is the service's configured primary group, which does not swap between deployments, so it
//! is not read.)

use serde::Deserialize;

use super::ops::{self, Payload, Subject};
use super::{Aws, AwsReadError, parse_answer};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeServiceRevisionsOutput {
    #[serde(default)]
    service_revisions: Vec<ServiceRevision>,
    #[serde(default)]
    failures: Vec<Failure>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceRevision {
    resolved_configuration: Option<ResolvedConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolvedConfiguration {
    #[serde(default)]
    load_balancers: Vec<RevisionLoadBalancer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevisionLoadBalancer {
    target_group_arn: Option<String>,
}

#[derive(Deserialize)]
struct Failure {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    detail: Option<String>,
}

impl Aws {
    /// The ARNs of the target groups a service revision serves from, as ECS resolved them.
    /// An empty list means ECS resolved no load balancer for the revision.
    pub async fn revision_target_groups(
        &self,
        revision_arn: &str,
    ) -> Result<Vec<String>, AwsReadError> {
        let what = format!("ECS service revision {revision_arn}");
        let body = serde_json::json!({ "serviceRevisionArns": [revision_arn] });
        let subject = Subject {
            what: &what,
            resource: revision_arn,
        };
        let reply = self
            .call(
                &ops::ECS_DESCRIBE_SERVICE_REVISIONS,
                &subject,
                Payload::Json(body),
            )
            .await?;
        let answer: DescribeServiceRevisionsOutput = parse_answer(&reply, &what)?;
        // ECS answers an unknown ARN with 200 and a failure entry (reason MISSING), not an error.
        if let Some(failure) = answer.failures.first() {
            let detail = failure
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Err(AwsReadError {
                problem: format!("ECS could not describe {what} ({}{detail})", failure.reason),
                fix: "check that the hook is attached to this service's deployment; revisions \
                      created before 2024-10-25 cannot be described"
                    .to_owned(),
            });
        }
        let Some(revision) = answer.service_revisions.into_iter().next() else {
            return Err(AwsReadError {
                problem: format!("ECS returned nothing for {what}"),
                fix: "check the event's targetServiceRevisionArn".to_owned(),
            });
        };
        Ok(revision
            .resolved_configuration
            .into_iter()
            .flat_map(|resolved| resolved.load_balancers)
            .filter_map(|lb| lb.target_group_arn)
            .collect())
    }
}
