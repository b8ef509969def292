//! SNS `Publish`: a stage's verdict to a topic. One signed request in SNS's query protocol
//! (form-encoded, XML answer), like the other reads: the SNS SDK client would cost the hook
//! binary more than its size budget allows for one call.

use bytes::Bytes;
use http::Method;

use super::endpoint::{self, Service};
use super::{Aws, AwsReadError, read_error};

impl Aws {
    /// Publish `message` (with `subject`, at most 100 printable ASCII characters) to `topic`.
    pub async fn publish(
        &self,
        topic: &str,
        subject: &str,
        message: &str,
    ) -> Result<(), AwsReadError> {
        let what = format!("a message to SNS topic {topic}");
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "Publish")
            .append_pair("Version", "2010-03-31")
            .append_pair("TopicArn", topic)
            .append_pair("Subject", subject)
            .append_pair("Message", message)
            .finish();
        let headers = vec![(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
        )];
        self.request(
            Service::Sns,
            |resolve| endpoint::json_service(Service::Sns, resolve),
            (Method::POST, headers, Bytes::from(body)),
            64 * 1024,
            &what,
        )
        .await
        .map(|_| ())
        .map_err(|failure| {
            read_error(
                failure,
                &what,
                "NotFound",
                "create the topic in the function's region, or fix notify.sns_topic",
                "the function's role needs sns:Publish on the topic (template parameter NotificationTopicArn)",
            )
        })
    }
}
