//! The shipped payments suite (`examples/payments.yaml`) against paysim blue (v1) and green (v2)
//! behind a local ALB, run stage by stage in CodeDeploy's order as separate `greenlight check`
//! processes (as separate hook functions would be): a healthy green passes every time, every
//! fault is caught at its stage with a message that names it, and no test payment is left
//! unrefunded either way.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use greenlight_e2e::AWS_TEST_ENV;
use greenlight_e2e::alb::Alb;
use greenlight_e2e::aws::{FakeAws, Store};
use greenlight_e2e::lambda::{binary, workspace_root};
use greenlight_e2e::paysim::{API_KEY, Paysim};
use serde_json::Value;

const STAGES: [&str; 3] = [
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// The shipped suite's target groups: blue is payments-a, green payments-b.
const BLUE_TG: &str = "targetgroup/payments-a/73e2d6bc24d8a067";
const GREEN_TG: &str = "targetgroup/payments-b/2453ed029918f21f";

/// Blue, green, the ALB in front of them (on one shared database) and a CloudWatch that
/// publishes the traffic each really served.
struct Release {
    /// Kept running for the ALB's production listener.
    _blue: Paysim,
    green: Paysim,
    alb: Alb,
    cloudwatch: FakeAws,
    config: tempfile::NamedTempFile,
    db: tempfile::TempDir,
}

impl Release {
    async fn start(fault: Option<&str>) -> Release {
        let db = tempfile::tempdir().unwrap();
        let file = db.path().join("paysim.db");
        let blue = Paysim::start("v1", &file, None).await;
        let green = Paysim::start("v2", &file, fault).await;
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let alb = Alb::start(any, any, blue.addr, green.addr).await;
        let cloudwatch = FakeAws::start(Store {
            live: [(BLUE_TG, blue.url()), (GREEN_TG, green.url())]
                .into_iter()
                .map(|(group, url)| (group.to_owned(), url))
                .collect(),
            ..Store::default()
        })
        .await;
        // The shipped suite, pointed at this rehearsal's listeners; its metric checks' minutes
        // shrink to seconds, as in `make demo`.
        let shipped =
            std::fs::read_to_string(workspace_root().join("examples/payments.yaml")).unwrap();
        assert!(shipped.contains("127.0.0.1:8443") && shipped.contains("127.0.0.1:8080"));
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            config.path(),
            shipped
                .replace("127.0.0.1:8443", &alb.test.to_string())
                .replace("127.0.0.1:8080", &alb.prod.to_string())
                .replace("period: 60s", "period: 1s")
                .replace("window: 10m", "window: 1m")
                .replace(
                    "repeat: { every: 1m, for: 10m }",
                    "repeat: { every: 1s, for: 1s }",
                ),
        )
        .unwrap();
        Release {
            _blue: blue,
            green,
            alb,
            cloudwatch,
            config,
            db,
        }
    }

    /// Run one stage as its hook would; returns the JSON report.
    async fn stage(&self, stage: &str, run_id: &str) -> Value {
        let output = tokio::process::Command::new(binary("greenlight"))
            .args([
                "check", "--format", "json", "--stage", stage, "--run-id", run_id, "--config",
            ])
            .arg(self.config.path())
            .env("PAYSIM_API_KEY", API_KEY)
            .env("GREENLIGHT_GREEN_TARGET_GROUP", GREEN_TG)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", self.cloudwatch.url())
            .envs(AWS_TEST_ENV.iter().copied())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("no JSON report ({e}): {output:?}"));
        let shown = String::from_utf8_lossy(&output.stdout);
        assert!(
            !shown.contains(API_KEY),
            "the API key leaked into the report: {shown}"
        );
        let expected_code = if report["verdict"] == "passed" { 0 } else { 1 };
        assert_eq!(output.status.code(), Some(expected_code), "{output:?}");
        report
    }

    /// The hooks in CodeDeploy's order, shifting production traffic before AfterAllowTraffic;
    /// stops at the first failed stage (CodeDeploy rolls back there).
    async fn deploy(&self, run_id: &str) -> Vec<Value> {
        self.alb.reset();
        let mut reports = Vec::new();
        for stage in STAGES {
            if stage == "AfterAllowTraffic" {
                self.alb.shift_production();
                next_second().await;
            }
            let report = self.stage(stage, run_id).await;
            let failed = report["verdict"] == "failed";
            reports.push(report);
            if failed {
                break;
            }
        }
        reports
    }

    /// Payments still holding money: captured or authorized and never refunded or voided.
    /// Read through a fresh healthy v2, which reads every row whichever version wrote it.
    async fn unrefunded(&self) -> Vec<Value> {
        let auditor = Paysim::start("v2", &self.db.path().join("paysim.db"), None).await;
        auditor
            .payments()
            .await
            .into_iter()
            .filter(|p| matches!(p["status"].as_str(), Some("captured" | "authorized")))
            .collect()
    }
}

fn failed_checks(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] != "passed" && c["required"] == true)
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_healthy_green_passes_20_runs_out_of_20_and_leaves_nothing_behind() {
    let release = Release::start(None).await;
    for run in 1..=20 {
        let reports = release.deploy(&format!("gl-healthy-{run:02}")).await;
        assert_eq!(
            reports.len(),
            3,
            "run {run} stopped early: {:#}",
            reports.last().unwrap()
        );
        for report in &reports {
            assert_eq!(report["verdict"], "passed", "run {run}: {:#}", report);
        }
        // The metric checks judged green's real traffic, not an empty window.
        let latency = metric_of(&reports[2], "green p99 latency");
        let judged = latency["green"]["datapoints"].as_array().unwrap();
        assert!(!judged.is_empty(), "run {run}: {latency:#}");
        assert!(
            latency["green"]["value"].as_f64().unwrap() > 0.0,
            "{latency:#}"
        );
        // A run creates six payments, so the newest 100 hold all of this run's.
        let payments = release.green.payments().await;
        let open: Vec<&Value> = payments
            .iter()
            .filter(|p| matches!(p["status"].as_str(), Some("captured" | "authorized")))
            .collect();
        assert!(
            open.is_empty(),
            "run {run} left unrefunded payments: {open:#?}"
        );
    }
    // The suite really moved money through both versions.
    let payments = release.green.payments().await;
    assert_eq!(
        payments.len(),
        100,
        "at least the list's cap of 100 payments"
    );
    assert!(payments.iter().any(|p| p["created_by"] == "v1"));
    assert!(payments.iter().any(|p| p["created_by"] == "v2"));
}

/// Wait for the clock to enter the next second. The metric checks' window ends at the last
/// whole period (1 s here, as the rehearsal shrinks CloudWatch's minutes): traffic served in
/// the current second is in no window yet. The event waited for is the clock itself.
async fn next_second() {
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    tokio::time::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(into_second) + 1_000_000,
    ))
    .await;
}

/// The `metric` figures of a check in a report.
fn metric_of(report: &Value, check: &str) -> Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .unwrap_or_else(|| panic!("no check {check:?} in {report:#}"))["metric"]
        .clone()
}

#[tokio::test]
async fn green_5xx_served_to_real_traffic_fails_the_metric_checks() {
    // Green answers /health with 500. The test-traffic stage catches it first, and its probe's
    // 500s are in green's metrics: run AfterAllowTraffic after it as if the first had passed.
    let release = Release::start(Some("health-500")).await;
    let first = release.stage("AfterAllowTestTraffic", "gl-5xx").await;
    assert_eq!(first["verdict"], "failed");
    next_second().await;
    release.alb.shift_production();
    let report = release.stage("AfterAllowTraffic", "gl-5xx").await;
    let failed: Vec<String> = failed_checks(&report).into_iter().map(|(n, _)| n).collect();
    assert!(
        failed.contains(&"green 5xx rate under 1 %".to_owned())
            && failed.contains(&"green 5xx no worse than blue".to_owned()),
        "{report:#}"
    );
    let five_xx = metric_of(&report, "green 5xx no worse than blue");
    assert!(
        five_xx["green"]["value"].as_f64().unwrap() > 20.0,
        "{five_xx:#}"
    );
    // Blue served no 5xx: no datapoint at all (no_data: zero judges that as 0).
    assert_eq!(
        five_xx["blue"]["datapoints"],
        serde_json::json!([]),
        "{five_xx:#}"
    );
}

#[tokio::test]
async fn a_retried_hook_replays_instead_of_charging_twice() {
    let release = Release::start(None).await;
    let first = release.stage("AfterAllowTestTraffic", "gl-retry").await;
    let before = release.green.payments().await.len();
    let second = release.stage("AfterAllowTestTraffic", "gl-retry").await;
    assert_eq!(first["verdict"], "passed");
    assert_eq!(second["verdict"], "passed", "{second:#}");
    assert_eq!(
        release.green.payments().await.len(),
        before,
        "the retry created payments"
    );
}

/// Deploy a green with `fault`; it must stop at `stage`, in `check`, with `hint` in the message
/// (one of `hint`'s `|`-separated alternatives).
async fn fault_is_caught(fault: &str, stage: &str, check: Option<&str>, hint: &str) {
    let release = Release::start(Some(fault)).await;
    let reports = release
        .deploy(&format!("gl-fault-{}", fault.replace('=', "-")))
        .await;
    let last = reports.last().unwrap();
    assert_eq!(
        last["verdict"], "failed",
        "{fault} was not caught: {reports:#?}"
    );
    assert_eq!(
        last["stage"], stage,
        "{fault} caught at the wrong stage: {last:#}"
    );
    // The ALB answers every request, so a broken green is a check that failed, never one that
    // could not run: the outcome is the same on every run, whatever the timing.
    let could_not_run: Vec<&Value> = reports
        .iter()
        .flat_map(|report| report["checks"].as_array().unwrap())
        .filter(|c| c["outcome"] == "error")
        .collect();
    assert!(
        could_not_run.is_empty(),
        "{fault}: checks that could not run: {could_not_run:#?}"
    );
    let failed = failed_checks(last);
    let named = failed.iter().any(|(name, message)| {
        check.is_none_or(|wanted| name == wanted)
            && hint
                .split('|')
                .any(|alternative| message.contains(alternative))
    });
    assert!(
        named,
        "{fault}: wanted {check:?} with {hint:?}, got {failed:#?}"
    );
    let left = release.unrefunded().await;
    assert!(
        left.is_empty(),
        "{fault} left unrefunded payments: {left:#?}"
    );
}

#[tokio::test]
async fn fault_health_500_is_caught() {
    fault_is_caught(
        "health-500",
        "AfterAllowTestTraffic",
        Some("green health and version"),
        "got 500",
    )
    .await;
}

#[tokio::test]
async fn fault_slow_is_caught() {
    fault_is_caught(
        "slow",
        "AfterAllowTestTraffic",
        Some("green answers fast"),
        "latency",
    )
    .await;
}

#[tokio::test]
async fn fault_refunds_fail_is_caught() {
    fault_is_caught(
        "refunds-fail",
        "AfterAllowTestTraffic",
        Some("card payment round trip on green"),
        "step refund: status",
    )
    .await;
}

#[tokio::test]
async fn fault_idempotency_ignored_is_caught() {
    fault_is_caught(
        "idempotency-ignored",
        "AfterAllowTestTraffic",
        Some("card payment round trip on green"),
        "step idempotent replay",
    )
    .await;
}

#[tokio::test]
async fn fault_jpy_scaled_is_caught() {
    fault_is_caught(
        "jpy-scaled",
        "AfterAllowTestTraffic",
        Some("amount integrity (JPY has no minor unit)"),
        "expected 1200, got 120000",
    )
    .await;
}

#[tokio::test]
async fn fault_contract_migration_is_caught() {
    fault_is_caught(
        "contract-migration",
        "BeforeAllowTraffic",
        Some("green writes, blue reads"),
        "step blue reads it: status: expected 200, got 500",
    )
    .await;
}

#[tokio::test]
async fn fault_crash_after_n_requests_is_caught() {
    // Green dies after three requests. Every later request gets the ALB's 502, whether green
    // refused the connection, closed one it had open or died mid-answer: as from a real ALB,
    // the client never sees green's TCP errors (tests/support/alb.rs).
    fault_is_caught("crash-after=3", "AfterAllowTestTraffic", None, "got 502").await;
}

#[tokio::test]
async fn make_demo_passes_a_good_release_and_stops_a_broken_one() {
    use greenlight_e2e::lambda::free_port;
    // The demo's scratch files (and so its paysims' --db paths) land under this directory.
    let scratch = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(workspace_root().join("scripts/demo.sh"))
        .env("TMPDIR", scratch.path())
        .env("FAULT", "jpy-scaled")
        .env("PROD_PORT", free_port().to_string())
        .env("TEST_PORT", free_port().to_string())
        .env("WATCH_PORT", free_port().to_string())
        .env("CODEDEPLOY_PORT", free_port().to_string())
        .env("CLOUDWATCH_PORT", free_port().to_string())
        .current_dir(workspace_root())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), output)
        .await
        .expect("scripts/demo.sh took over 3 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("all hooks passed: the release is live"),
        "{stdout}"
    );
    assert!(stdout.contains("(traffic shifted)"), "{stdout}");
    // Green's real traffic was judged once production moved.
    assert!(stdout.contains("PASS   green p99 latency"), "{stdout}");
    assert!(
        stdout.contains("CodeDeploy rolls back at AfterAllowTestTraffic"),
        "{stdout}"
    );
    assert!(stdout.contains("expected 1200, got 120000"), "{stdout}");
    // Release 3: green dies after the shift, and the bake catches it: a failed run, as the
    // ALB answers 502 for a dead target, never runs that could not run.
    assert!(
        stdout.contains("FAIL   production stays healthy over the bake"),
        "{stdout}"
    );
    let bake = stdout
        .split("FAIL   production stays healthy over the bake")
        .nth(1)
        .and_then(|rest| rest.split("  =>").next())
        .unwrap();
    assert!(
        bake.contains("repeat: expected at most 0 failed runs of 5") && bake.contains("got 502"),
        "{stdout}"
    );
    assert!(!stdout.contains("ERROR"), "a check could not run: {stdout}");
    assert!(
        stdout
            .contains("CodeDeploy rolls back at AfterAllowTraffic: production moves back to blue"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("left unrefunded: 0").count(), 3, "{stdout}");
    // The local CodeDeploy received the reports: three Succeeded, one Failed, two Succeeded,
    // one Failed.
    assert_eq!(
        stdout.matches("status=Succeeded -> 200 accepted").count(),
        5,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("status=Failed -> 200 accepted").count(),
        2,
        "{stdout}"
    );
    // Nothing it started outlives it.
    let scratch = scratch.path().to_string_lossy().into_owned();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&scratch))
        .collect();
    assert!(left.is_empty(), "the demo left processes running: {left:?}");
}
