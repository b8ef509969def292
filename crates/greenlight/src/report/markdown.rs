//! The report as Markdown, for a person reading a pull request or a GitHub job summary: the
//! verdict first, then each failed check with what was expected and what came, then every
//! check folded away. Every text comes from the report, which is already scrubbed of secrets.

use std::fmt::Write;

use crate::outcome::{CheckResult, Outcome};
use crate::report::StageReport;

/// Render a stage's report as Markdown.
pub fn render(report: &StageReport) -> String {
    let mut out = String::new();
    let mark = match report.verdict {
        crate::verdict::Verdict::Passed => "✅ passed",
        crate::verdict::Verdict::Failed => "❌ failed",
    };
    let _ = writeln!(out, "## greenlight {}: {mark}\n", report.stage);
    let deployment = report
        .deployment_id
        .as_deref()
        .map(|d| format!(", deployment {}", code(d)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Run {}{deployment}: {} in {} ms.\n",
        code(&report.run_id),
        report.counts(),
        report.duration.as_millis()
    );
    for error in &report.errors {
        let _ = writeln!(out, "> **Error:** {}\n", inline(error));
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "> **Warning:** {}\n", inline(warning));
    }
    let failed: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|c| !c.outcome.is_passed())
        .collect();
    if !failed.is_empty() {
        out.push_str(
            "### Failed checks\n\n| check | what | expected | actual |\n|---|---|---|---|\n",
        );
        for check in failed {
            let name = if check.required {
                cell(&check.name)
            } else {
                format!("{} (optional)", cell(&check.name))
            };
            match &check.outcome {
                Outcome::Failed { failures } | Outcome::Error { failures, .. }
                    if !failures.is_empty() =>
                {
                    for m in failures {
                        let _ = writeln!(
                            out,
                            "| {name} | {} | {} | {} |",
                            cell(&m.what),
                            cell(&m.expected),
                            cell(&m.actual)
                        );
                    }
                    if let Outcome::Error { error, .. } = &check.outcome {
                        let _ = writeln!(out, "| {name} | could not run | | {} |", cell(error));
                    }
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "| {name} | could not run | | {} |",
                        cell(&check.message)
                    );
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "<details><summary>All checks ({})</summary>\n\n| check | kind | outcome | time | detail |\n|---|---|---|---|---|",
        report.checks.len() + report.skipped.len()
    );
    for check in &report.checks {
        let detail = match &check.repeat {
            Some(r) => format!(
                "{} of {} runs, {} failed (limit {}), {} errors",
                r.runs, r.planned, r.failed, r.failure_limit, r.errors
            ),
            None => check.message.clone(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ms | {} |",
            cell(&check.name),
            check.kind,
            check.outcome.label(),
            check.duration.as_millis(),
            cell(&detail)
        );
    }
    for skipped in &report.skipped {
        let _ = writeln!(
            out,
            "| {} | | skipped | | {} |",
            cell(&skipped.name),
            cell(&skipped.reason)
        );
    }
    out.push_str("\n</details>\n");
    out
}

/// Text for a table cell: on one line, with the characters that would end the cell or start
/// markup escaped.
fn cell(text: &str) -> String {
    inline(text).replace('|', "\\|")
}

/// Text on one line, with HTML and emphasis characters escaped (a response body quoted in a
/// message must not render as markup, or hide the rest of the summary).
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '*' | '_' | '`' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An identifier shown as code.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_body_stays_inside_its_cell() {
        assert_eq!(
            cell("got <b>500</b> | *x*\nnext"),
            "got &lt;b&gt;500&lt;/b&gt; \\| \\*x\\* next"
        );
    }
}
