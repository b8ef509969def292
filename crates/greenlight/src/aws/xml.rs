//! Reading the XML answers of the query protocol (STS, IAM) and S3's errors with the SDK's own
//! XML parser: entities decoded, elements matched by name rather than by substring.

use aws_smithy_xml::decode::{Document, try_data};

/// The text of every element named `name`, in document order, entities decoded. A document
/// that is not XML has none.
pub(crate) fn texts(xml: &str, name: &str) -> Vec<String> {
    let mut doc = Document::new(xml);
    let mut found = Vec::new();
    while let Some(start) = doc.next_start_element() {
        if start.local() != name {
            continue;
        }
        let mut scoped = doc.scoped_to(start);
        if let Ok(text) = try_data(&mut scoped) {
            found.push(text.into_owned());
        }
    }
    found
}

/// The text of the first element named `name`.
pub(crate) fn first(xml: &str, name: &str) -> Option<String> {
    texts(xml, name).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_by_name_with_entities_decoded() {
        let xml = r#"<?xml version="1.0"?>
<Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Result>
    <EvaluationResults>
      <member><EvalActionName>sns:Publish</EvalActionName><EvalDecision>allowed</EvalDecision></member>
      <member><EvalActionName>a&amp;b</EvalActionName><EvalDecision>implicitDeny</EvalDecision></member>
    </EvaluationResults>
    <ArnList><Arn>x</Arn></ArnList>
  </Result>
</Response>"#;
        assert_eq!(texts(xml, "EvalActionName"), ["sns:Publish", "a&b"]);
        assert_eq!(texts(xml, "EvalDecision"), ["allowed", "implicitDeny"]);
        assert_eq!(first(xml, "Arn").as_deref(), Some("x"));
        // A name that only begins another's is not it (a substring search would say it is).
        assert_eq!(first(xml, "Eval"), None);
        assert!(texts("not xml at all", "Arn").is_empty());
    }
}
