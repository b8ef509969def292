//! What the function's own role may do, asked without doing it: STS `GetCallerIdentity` names
//! the role, IAM `SimulatePrincipalPolicy` evaluates its policies for an action on a resource.
//! The doctor uses them to prove, before any deployment, that the role may report to CodeDeploy
//! and read what the checks read. Both speak the query protocol (form in, XML out), one signed
//! request each.

use super::ops::{self, Payload, Subject};
use super::xml;
use super::{Aws, AwsReadError};

impl Aws {
    /// The role this process runs as: `arn:PARTITION:iam::ACCOUNT:role/NAME` (a role's path,
    /// which STS does not say, is taken as `/`).
    pub async fn caller_role(&self) -> Result<String, AwsReadError> {
        let subject = Subject {
            what: "the caller's identity (STS GetCallerIdentity)",
            resource: "*",
        };
        let reply = self
            .call(
                &ops::STS_GET_CALLER_IDENTITY,
                &subject,
                Payload::Form(Vec::new()),
            )
            .await?;
        let text = String::from_utf8_lossy(&reply.body);
        let arn = xml::first(&text, "Arn")
            .map(|arn| arn.trim().to_owned())
            .ok_or_else(|| AwsReadError {
                problem: "STS's answer names no Arn".to_owned(),
                fix: "check AWS_ENDPOINT_URL_STS".to_owned(),
            })?;
        // arn:aws:sts::123456789012:assumed-role/NAME/SESSION → arn:aws:iam::123456789012:role/NAME
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match (parts.get(1), parts.get(4), parts.get(5)) {
            (Some(partition), Some(account), Some(resource))
                if resource.starts_with("assumed-role/") =>
            {
                let name = resource
                    .trim_start_matches("assumed-role/")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                Ok(format!("arn:{partition}:iam::{account}:role/{name}"))
            }
            _ => Ok(arn),
        }
    }

    /// IAM's decision (`allowed`, `implicitDeny`, `explicitDeny`) for each of `actions` on
    /// `resource`, for the role `role`.
    pub async fn simulate(
        &self,
        role: &str,
        actions: &[&str],
        resource: &str,
    ) -> Result<Vec<Decision>, AwsReadError> {
        let what = format!("a simulation of {role}'s policies (IAM SimulatePrincipalPolicy)");
        let mut form = vec![
            ("PolicySourceArn".to_owned(), role.to_owned()),
            ("ResourceArns.member.1".to_owned(), resource.to_owned()),
        ];
        for (index, action) in actions.iter().enumerate() {
            form.push((
                format!("ActionNames.member.{}", index + 1),
                (*action).to_owned(),
            ));
        }
        let subject = Subject {
            what: &what,
            resource: role,
        };
        let reply = self
            .call(
                &ops::IAM_SIMULATE_PRINCIPAL_POLICY,
                &subject,
                Payload::Form(form),
            )
            .await?;
        let text = String::from_utf8_lossy(&reply.body);
        // One EvalActionName and one EvalDecision per evaluation result, in order.
        Ok(xml::texts(&text, "EvalActionName")
            .into_iter()
            .zip(xml::texts(&text, "EvalDecision"))
            .map(|(action, decision)| Decision {
                action: action.trim().to_owned(),
                decision: decision.trim().to_owned(),
            })
            .collect())
    }
}

/// IAM's decision for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action, e.g. `sns:Publish`.
    pub action: String,
    /// `allowed`, `implicitDeny` or `explicitDeny`.
    pub decision: String,
}
