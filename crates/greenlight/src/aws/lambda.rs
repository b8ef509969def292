//! Lambda `Invoke` with `InvocationType: Event`: how a CodeDeploy hook hands a watch that
//! outlasts one invocation to its next invocation. One signed REST request (the Lambda SDK
//! client would cost the hook binary more than its size budget allows for one call); Lambda
//! queues the event and answers 202.

use bytes::Bytes;
use http::Method;

use super::endpoint::{self, Service};
use super::ops::{self, Payload, Subject};
use super::{Aws, AwsReadError};

/// What is escaped in the function's name or ARN within the path: all but RFC 3986's
/// unreserved characters (an ARN's colons are escaped).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The largest payload an asynchronous invocation accepts (Lambda's limit is 256 KB; the
/// watch state is a few KB).
pub(crate) const MAX_EVENT_BYTES: usize = 256 * 1024;

impl Aws {
    /// Queue an asynchronous invocation of `function` (name or ARN, at `qualifier` when given)
    /// with `payload`. `trace_id` is the invoking invocation's `X-Amzn-Trace-Id`: carried on,
    /// X-Ray shows the chain's lineage and Lambda's recursive-loop detection can count it.
    pub async fn invoke_async(
        &self,
        function: &str,
        qualifier: Option<&str>,
        payload: &serde_json::Value,
        trace_id: Option<&str>,
    ) -> Result<(), AwsReadError> {
        let what = format!("an asynchronous invocation of {function}");
        let body = payload.to_string();
        if body.len() > MAX_EVENT_BYTES {
            return Err(AwsReadError {
                problem: format!(
                    "{what}: the payload is {} bytes, over Lambda's {MAX_EVENT_BYTES}",
                    body.len()
                ),
                fix: "watch fewer checks in one stage".to_owned(),
            });
        }
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("x-amz-invocation-type", "Event".to_owned()),
        ];
        // Only a well-formed header value: the id comes from the runtime, not from a payload.
        if let Some(trace_id) = trace_id.filter(|id| {
            !id.is_empty() && id.len() <= 256 && id.bytes().all(|b| b.is_ascii_graphic())
        }) {
            headers.push(("x-amzn-trace-id", trace_id.to_owned()));
        }
        let path = format!(
            "2015-03-31/functions/{}/invocations",
            percent_encoding::utf8_percent_encode(function, PATH_SEGMENT)
        );
        let url = Box::new(move |resolve: &endpoint::Resolve<'_>| {
            let base = endpoint::json_service(Service::Lambda, resolve)?;
            let mut url = base
                .join(&path)
                .map_err(|err| endpoint::EndpointError(err.to_string()))?;
            if let Some(qualifier) = qualifier {
                url.query_pairs_mut().append_pair("Qualifier", qualifier);
            }
            Ok(url)
        });
        let payload = Payload::Rest {
            url,
            method: Method::POST,
            headers,
            body: Bytes::from(body),
            max_answer: ops::LAMBDA_INVOKE.max_answer,
        };
        let subject = Subject {
            what: &what,
            resource: function,
        };
        self.call(&ops::LAMBDA_INVOKE, &subject, payload)
            .await
            .map(|_| ())
    }
}
