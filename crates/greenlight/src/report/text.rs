//! The human-readable report the CLI prints.

use std::fmt::Write;

use crate::outcome::Outcome;
use crate::report::StageReport;

/// Render a report as text, one line per check and its failures indented below it.
pub fn render(report: &StageReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "stage {} (run {})", report.stage, report.run_id);
    for error in &report.errors {
        let _ = writeln!(out, "  ERROR  {error}");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "  WARN   {warning}");
    }
    for check in &report.checks {
        let label = match (&check.outcome, check.required) {
            (Outcome::Passed, _) => "PASS ",
            (Outcome::Failed { .. }, true) => "FAIL ",
            (Outcome::Error { .. }, true) => "ERROR",
            (_, false) => "WARN ",
        };
        let retries = if check.attempts > 1 {
            format!(", {} attempts", check.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {label}  {} [{}] {} ms{retries}",
            check.name,
            check.kind,
            check.duration.as_millis()
        );
        for line in figures(check) {
            let _ = writeln!(out, "           {line}");
        }
        match &check.outcome {
            Outcome::Passed => {}
            Outcome::Failed { failures } => {
                for m in failures {
                    let _ = writeln!(
                        out,
                        "           {}: expected {}, got {}",
                        m.what, m.expected, m.actual
                    );
                }
            }
            Outcome::Error { error, failures } => {
                let _ = writeln!(out, "           {error}");
                for m in failures {
                    let _ = writeln!(
                        out,
                        "           {}: expected {}, got {}",
                        m.what, m.expected, m.actual
                    );
                }
            }
        }
    }
    for skipped in &report.skipped {
        let _ = writeln!(out, "  SKIP   {}: {}", skipped.name, skipped.reason);
    }
    let _ = writeln!(
        out,
        "{}: {} in {} ms",
        report.verdict.as_str().to_uppercase(),
        report.counts(),
        report.duration.as_millis()
    );
    out
}

/// What a check measured, one line each: a probe's figures and judgment, a metric check's
/// datapoints and bound, a repeat's counts and last runs. The text report indents them under
/// the check; the JUnit report puts them in `system-out`.
pub(crate) fn figures(check: &crate::outcome::CheckResult) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(stats) = &check.stats {
        let line = |label: &str, s: &crate::outcome::LatencyStats| {
            format!(
                "{label}: {} requests, {} errors, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} req/s",
                s.requests, s.errors, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.rps
            )
        };
        lines.push(line("target  ", &stats.target));
        if let Some(baseline) = &stats.baseline {
            lines.push(line("baseline", baseline));
        }
        if let Some(ratio) = stats.p95_ratio {
            lines.push(format!("p95 ratio target/baseline: {ratio:.2}"));
        }
        if let Some(j) = &stats.judgment {
            let far = match j.far_threshold_ms {
                Some(threshold) => format!(
                    "; far tail {} beyond {threshold:.1} ms (fit {:.2}, p {})",
                    j.far_count,
                    j.far_expected,
                    crate::outcome::format_p(j.far_p)
                ),
                None => String::new(),
            };
            lines.push(format!(
                "judge: shift {:.2} ms (at least {:.2} ms, {:.1} % of blue's median), median ratio {:.2}, Mann-Whitney U = {:.0} p {}; tail {} above {:.1} ms (chance {:.1}, p {}){far} ({} vs {} samples)",
                j.shift_ms,
                j.shift_lower_ms,
                j.relative_shift_lower * 100.0,
                j.effect,
                j.u,
                crate::outcome::format_p(j.p_value),
                j.tail_count,
                j.tail_threshold_ms,
                j.tail_expected,
                crate::outcome::format_p(j.tail_p),
                j.samples.0,
                j.samples.1
            ));
        }
    }
    if let Some(metric) = &check.metric {
        let side = |label: &str, side: &crate::outcome::MetricSide| {
            let points: Vec<String> = side
                .datapoints
                .iter()
                .map(|(at, value)| format!("{at} {value}"))
                .collect();
            format!(
                "{label}: {} = {} over {} datapoints [{}]",
                metric.reduce,
                side.value
                    .map_or_else(|| "none".to_owned(), |v| v.to_string()),
                side.datapoints.len(),
                points.join(", ")
            )
        };
        lines.push(side("green", &metric.green));
        if let Some(blue) = &metric.blue {
            lines.push(side("blue ", blue));
        }
        lines.push(format!("bound: {}", metric.bound));
    }
    if let Some(repeat) = &check.repeat {
        let stopped = if repeat.stopped_early {
            " (stopped: the stage had already failed)"
        } else {
            ""
        };
        lines.push(format!(
            "repeat: {} of {} runs, {} failed (limit {}), {} errors{stopped}",
            repeat.runs, repeat.planned, repeat.failed, repeat.failure_limit, repeat.errors
        ));
        if repeat.runs as usize > repeat.recent.len() {
            lines.push(format!("the last {}:", repeat.recent.len()));
        }
        for run in &repeat.recent {
            lines.push(format!(
                "  run {} at {} {}: {}",
                run.index + 1,
                run.at,
                run.outcome,
                run.message
            ));
        }
    }
    lines
}
