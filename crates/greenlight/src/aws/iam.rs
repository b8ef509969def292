//! What the function's own role may do, asked without doing it: STS `GetCallerIdentity` names
//! the role, IAM `SimulatePrincipalPolicy` evaluates its policies for an action on a resource.
//! The doctor uses them to prove, before any deployment, that the role may report to CodeDeploy
//! and read what the checks read. Both speak the query protocol (form in, XML out), one signed
//! request each.

use bytes::Bytes;
use http::Method;

use super::call::xml_element;
use super::endpoint::{self, Service};
use super::{Aws, AwsReadError, read_error};

impl Aws {
    /// The role this process runs as: `arn:PARTITION:iam::ACCOUNT:role/NAME` (a role's path,
    /// which STS does not say, is taken as `/`).
    pub async fn caller_role(&self) -> Result<String, AwsReadError> {
        let what = "the caller's identity (STS GetCallerIdentity)";
        let body = "Action=GetCallerIdentity&Version=2011-06-15";
        let reply = self
            .query(Service::Sts, body.to_owned(), what)
            .await
            .map_err(|failure| {
                read_error(
                    failure,
                    what,
                    "NotFound",
                    "check the function's credentials",
                    "nothing should deny GetCallerIdentity: check the role's permissions boundary",
                )
            })?;
        let text = String::from_utf8_lossy(&reply);
        let arn = xml_element(&text, "Arn")
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
    ) -> Result<Vec<(String, String)>, AwsReadError> {
        let what = format!("a simulation of {role}'s policies (IAM SimulatePrincipalPolicy)");
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", "SimulatePrincipalPolicy")
            .append_pair("Version", "2010-05-08")
            .append_pair("PolicySourceArn", role)
            .append_pair("ResourceArns.member.1", resource);
        for (index, action) in actions.iter().enumerate() {
            form.append_pair(&format!("ActionNames.member.{}", index + 1), action);
        }
        let reply = self
            .query(Service::Iam, form.finish(), &what)
            .await
            .map_err(|failure| {
                read_error(
                    failure,
                    &what,
                    "NoSuchEntity",
                    "the role's name has a path: check it in IAM",
                    "the role needs iam:SimulatePrincipalPolicy on itself to check its own permissions (template.yaml grants it)",
                )
            })?;
        let text = String::from_utf8_lossy(&reply);
        Ok(text
            .split("<EvalActionName>")
            .skip(1)
            .filter_map(|chunk| {
                let action = chunk.split("</EvalActionName>").next()?.to_owned();
                let decision = xml_element(chunk, "EvalDecision")?;
                Some((action.trim().to_owned(), decision.trim().to_owned()))
            })
            .collect())
    }

    /// A query-protocol call (`POST /`, a form): its XML answer.
    async fn query(
        &self,
        service: Service,
        body: String,
        what: &str,
    ) -> Result<Bytes, super::call::Failure> {
        let headers = vec![(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        )];
        self.request(
            service,
            |resolve| endpoint::json_service(service, resolve),
            (Method::POST, headers, Bytes::from(body)),
            256 * 1024,
            what,
        )
        .await
        .map(|reply| reply.body)
    }
}
