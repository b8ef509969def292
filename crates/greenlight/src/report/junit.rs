//! The report as JUnit XML, for CodeBuild's test reports and Jenkins: one `testsuite` per
//! stage, one `testcase` per check; a failed expectation is a `failure` (expected and actual),
//! a check that could not run an `error`, a check a `when` condition skipped `skipped`. Probe,
//! metric and repeat figures go to the test case's `system-out`. Every text comes from the
//! report, which is already scrubbed of secrets.

use std::fmt::Write;

use crate::outcome::{CheckResult, Outcome};
use crate::report::StageReport;

/// Render a stage's report as a JUnit XML document.
pub fn render(report: &StageReport) -> String {
    let counts = report.counts();
    let optional_failures = report
        .checks
        .iter()
        .filter(|c| !c.required && !c.outcome.is_passed())
        .count();
    // Errors outside any check (a config error, a panic) are a test case of their own, so a
    // reader that only counts test cases still sees the stage fail.
    let stage_errors = usize::from(!report.errors.is_empty());
    let tests = report.checks.len() + report.skipped.len() + stage_errors;
    let time = seconds(report.duration.as_secs_f64());
    let failures = counts.failed;
    let errors = counts.errored + stage_errors;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"greenlight\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{}\" time=\"{time}\">",
        escape(report.stage.as_str()),
        report.skipped.len()
    );
    out.push_str("    <properties>\n");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape(name),
            escape(value)
        );
    };
    property("run_id", &report.run_id);
    if let Some(deployment) = &report.deployment_id {
        property("deployment_id", deployment);
    }
    property("verdict", report.verdict.as_str());
    property("optional_failures", &optional_failures.to_string());
    for warning in &report.warnings {
        property("warning", warning);
    }
    out.push_str("    </properties>\n");
    let classname = format!("greenlight.{}", report.stage);
    if !report.errors.is_empty() {
        let message = report.errors.join("; ");
        let _ = writeln!(
            out,
            "    <testcase name=\"stage\" classname=\"{}\" time=\"0\">\n      <error type=\"stage\" message=\"{}\">{}</error>\n    </testcase>",
            escape(&classname),
            escape(&message),
            escape(&message)
        );
    }
    for check in &report.checks {
        testcase(&mut out, &classname, check);
    }
    for skipped in &report.skipped {
        let _ = writeln!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\">\n      <skipped message=\"{}\"/>\n    </testcase>",
            escape(&skipped.name),
            escape(&classname),
            escape(&skipped.reason)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(out: &mut String, classname: &str, check: &CheckResult) {
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        escape(&check.name),
        escape(classname),
        seconds(check.duration.as_secs_f64())
    );
    let optional = if check.required {
        ""
    } else {
        "(optional: does not fail the stage) "
    };
    match &check.outcome {
        Outcome::Passed => {}
        Outcome::Failed { failures } => {
            let kind = failures.first().map_or("failed", |m| m.what.as_str());
            let body: Vec<String> = failures
                .iter()
                .map(|m| format!("{}: expected {}, got {}", m.what, m.expected, m.actual))
                .collect();
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}{}\">{}</failure>",
                escape(kind),
                optional,
                escape(&check.message),
                escape(&body.join("\n"))
            );
        }
        Outcome::Error { error, .. } => {
            let _ = writeln!(
                out,
                "      <error type=\"error\" message=\"{}{}\">{}</error>",
                optional,
                escape(&check.message),
                escape(error)
            );
        }
    }
    let figures = crate::report::text::figures(check);
    if !figures.is_empty() {
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape(&figures.join("\n"))
        );
    }
    out.push_str("    </testcase>\n");
}

/// JUnit's time attribute: seconds with millisecond precision.
fn seconds(seconds: f64) -> String {
    format!("{seconds:.3}")
}

/// Text for an XML attribute or element: the five markup characters escaped, and characters
/// XML 1.0 cannot carry at all (most control characters) replaced, so any response text a
/// message quotes still makes a document every reader accepts.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_cannot_break_the_document() {
        assert_eq!(
            escape("<a href=\"x\">&'\u{1b}[31m\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\u{FFFD}[31m\n"
        );
    }
}
