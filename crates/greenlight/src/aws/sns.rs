//! SNS `Publish`: a stage's verdict to a topic. One signed request in SNS's query protocol
//! (form-encoded, XML answer), like the other reads: the SNS SDK client would cost the hook
//! binary more than its size budget allows for one call.

use super::ops::{self, Payload, Subject};
use super::{Aws, AwsReadError};

impl Aws {
    /// Publish `message` (with `subject`, at most 100 printable ASCII characters) to `topic`.
    pub async fn publish(
        &self,
        topic: &str,
        subject: &str,
        message: &str,
    ) -> Result<(), AwsReadError> {
        let what = format!("a message to SNS topic {topic}");
        let form = vec![
            ("TopicArn".to_owned(), topic.to_owned()),
            ("Subject".to_owned(), subject.to_owned()),
            ("Message".to_owned(), message.to_owned()),
        ];
        let read = Subject {
            what: &what,
            resource: topic,
        };
        self.call(&ops::SNS_PUBLISH, &read, Payload::Form(form))
            .await
            .map(|_| ())
    }
}
