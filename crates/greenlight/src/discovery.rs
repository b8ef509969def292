//! Which of the deployment's two target groups is green, found at every run: the two swap roles
//! at each deployment, so a static name is wrong half the time. CodeDeploy says it through the
//! deployment's ECS target (the task set labelled `Green`); ECS's own blue/green engine
//! through the target service revision's resolved load balancers (`DescribeServiceRevisions`);
//! the CLI is told (`--green-target-group`). A check that needs it when it could not be found is an `error`
//! outcome that says what failed, never a guess.

use crate::config::DeploymentSpec;

/// The deployment's target groups and load balancer, as CloudWatch dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroups {
    /// `targetgroup/NAME/ID` of the green target group.
    pub green: String,
    /// The other one: blue.
    pub blue: String,
    /// `app/NAME/ID`.
    pub load_balancer: String,
}

/// Match green's target group as a service names it (its name, `targetgroup/NAME/ID` or its
/// whole ARN) against the configured pair.
pub fn resolve(spec: &DeploymentSpec, green: &str) -> Result<TargetGroups, String> {
    let wanted = name_of(green);
    let position = spec
        .target_groups
        .iter()
        .position(|configured| name_of(configured) == wanted)
        .ok_or_else(|| {
            format!(
                "green's target group {green:?} is neither of deployment.target_groups ({}): \
                 list the two target groups of this service's load balancer",
                spec.target_groups.join(", ")
            )
        })?;
    Ok(TargetGroups {
        green: spec.target_groups[position].clone(),
        blue: spec.target_groups[1 - position].clone(),
        load_balancer: spec.load_balancer.clone(),
    })
}

/// Green's target groups in an ECS-native deployment: those the target service revision
/// serves from, as ECS resolved them. The one among deployment.target_groups is green; a
/// revision with none of them is an error, not a guess.
pub(crate) async fn green_from_ecs(
    aws: &crate::aws::Aws,
    spec: &DeploymentSpec,
    revision_arn: Option<&str>,
) -> Result<TargetGroups, String> {
    let revision_arn = revision_arn.ok_or_else(|| {
        "could not find green's target group: the ECS event names no targetServiceRevisionArn \
         (executionDetails.targetServiceRevisionArn); is this an ECS blue/green lifecycle hook?"
            .to_owned()
    })?;
    let groups = aws
        .revision_target_groups(revision_arn)
        .await
        .map_err(|err| {
            format!(
                "could not find green's target group: {}; {}",
                err.problem, err.fix
            )
        })?;
    if groups.is_empty() {
        return Err(format!(
            "could not find green's target group: ECS resolved no load balancer for service \
             revision {revision_arn} (resolvedConfiguration.loadBalancers is empty); metric \
             checks need a service behind a load balancer"
        ));
    }
    groups
        .iter()
        .find_map(|group| resolve(spec, group).ok())
        .ok_or_else(|| {
            format!(
                "green's target group ({}, from service revision {revision_arn}) is neither of \
                 deployment.target_groups ({}): list the two target groups of this service's \
                 load balancer",
                groups.join(", "),
                spec.target_groups.join(", ")
            )
        })
}

/// `payments-a` from `payments-a`, `targetgroup/payments-a/73e2…` or an ARN ending so.
fn name_of(target_group: &str) -> &str {
    let tail = target_group
        .rsplit_once(":targetgroup/")
        .map_or(target_group, |(_, rest)| rest);
    let tail = tail.strip_prefix("targetgroup/").unwrap_or(tail);
    tail.split('/').next().unwrap_or(tail)
}

/// Green's target group name from CodeDeploy: the deployment's ECS target, its task set
/// labelled `Green`.
pub(crate) async fn green_from_codedeploy(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<String, String> {
    use aws_sdk_codedeploy::error::ProvideErrorMetadata;
    use aws_sdk_codedeploy::types::TargetLabel;
    let explain = |operation: &str, err: &dyn ProvideErrorMetadata| {
        let code = err.code().unwrap_or("no answer");
        let fix = if code.contains("AccessDenied") {
            "the function's role needs codedeploy:ListDeploymentTargets and \
             codedeploy:GetDeploymentTarget on the deployment group (template parameter \
             EnableMetricChecks)"
        } else if code.contains("DeploymentDoesNotExist") {
            "the event's DeploymentId names no deployment CodeDeploy knows"
        } else {
            "check the network path to CodeDeploy and the event's DeploymentId"
        };
        format!(
            "could not find green's target group: CodeDeploy {operation} for {deployment_id} \
             failed ({code}: {}); {fix}",
            err.message().unwrap_or("no message")
        )
    };
    let listed = client
        .list_deployment_targets()
        .deployment_id(deployment_id)
        .send()
        .await
        .map_err(|err| explain("ListDeploymentTargets", &err))?;
    for target_id in listed.target_ids() {
        let target = client
            .get_deployment_target()
            .deployment_id(deployment_id)
            .target_id(target_id)
            .send()
            .await
            .map_err(|err| explain("GetDeploymentTarget", &err))?;
        let green = target
            .deployment_target()
            .and_then(|t| t.ecs_target())
            .into_iter()
            .flat_map(|ecs| ecs.task_sets_info())
            .find(|set| set.task_set_label() == Some(&TargetLabel::Green))
            .and_then(|set| set.target_group())
            .and_then(|group| group.name());
        if let Some(name) = green {
            return Ok(name.to_owned());
        }
    }
    Err(format!(
        "could not find green's target group: deployment {deployment_id} has no ECS task set \
         labelled Green (is it an ECS blue/green deployment?)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploymentSpec {
        DeploymentSpec {
            load_balancer: "app/payments-alb/50dc6c495c0c9188".into(),
            target_groups: vec![
                "targetgroup/payments-a/73e2d6bc24d8a067".into(),
                "targetgroup/payments-b/2453ed029918f21f".into(),
            ],
        }
    }

    #[test]
    fn green_is_matched_by_name_whatever_form_it_comes_in() {
        for green in [
            "payments-b",
            "targetgroup/payments-b/2453ed029918f21f",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/payments-b/2453ed029918f21f",
        ] {
            let groups = resolve(&spec(), green).unwrap();
            assert_eq!(groups.green, "targetgroup/payments-b/2453ed029918f21f");
            assert_eq!(groups.blue, "targetgroup/payments-a/73e2d6bc24d8a067");
            assert_eq!(groups.load_balancer, "app/payments-alb/50dc6c495c0c9188");
        }
        let err = resolve(&spec(), "payments-c").unwrap_err();
        assert!(
            err.contains("neither of") && err.contains("payments-c"),
            "{err}"
        );
    }
}
