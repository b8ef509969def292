//! The `greenlight` command: run a stage's checks from a shell or CI exactly as the hook would.
//!
//! Exit codes: 0 the stage passed, 1 a check failed, 2 greenlight could not run (usage, config).

use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use greenlight::Aws;
use greenlight::Budget;
use greenlight::Config;
use greenlight::Progress;
use greenlight::Source;
use greenlight::StageInputs;
use greenlight::render;
use greenlight::run_id_from;
use greenlight::{Stage, Suite, Verdict};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Parser)]
#[command(
    name = "greenlight",
    version,
    about = "Blue/green deployment checks for ECS lifecycle hooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the checks of one stage and print a report.
    Check {
        /// The config file (YAML or JSON). Defaults to what GREENLIGHT_CONFIG holds.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// AfterAllowTestTraffic, BeforeAllowTraffic or AfterAllowTraffic (ECS names work too).
        #[arg(long, short)]
        stage: Stage,
        /// Report format; repeat it, each with an --output, to write several reports of one
        /// run (the first --format without an --output goes to stdout).
        #[arg(long, short, value_enum)]
        format: Vec<Format>,
        /// Where the --format at the same position goes (a file, created or replaced).
        #[arg(long, short)]
        output: Vec<PathBuf>,
        /// Run id for this run (idempotency keys derive from it); random-ish when absent.
        #[arg(long)]
        run_id: Option<String>,
        /// Which of deployment.target_groups is green now (its name, targetgroup/NAME/ID or ARN),
        /// for metric checks that use {{green_target_group}}.
        #[arg(long, env = "GREENLIGHT_GREEN_TARGET_GROUP")]
        green_target_group: Option<String>,
    },
    /// Check a config's shape offline: parse, validate and plan every stage. Sends nothing
    /// and reads no secret (their sources are checked when the hook or `check` starts).
    Validate {
        /// The config file. Defaults to what GREENLIGHT_CONFIG holds.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Preflight before the first deployment: load the config and plan every stage, read every
    /// secret, reach every target (TCP, and a TLS handshake with its host name and CA). One
    /// line per finding, with the fix; exit 0 only when all is well. Sends no check request.
    Doctor {
        /// The config file. Defaults to what GREENLIGHT_CONFIG holds.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// `text` (one line per finding) or `json`.
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the JSON Schema of the config (what greenlight.schema.json holds), for editors and
    /// config checks in CI.
    Schema,
    /// Print a sample CodeDeploy hook event (for `cargo lambda invoke --data-ascii`).
    Event {
        /// Deployment id to put in the event.
        #[arg(long, default_value = "d-EXAMPLE123")]
        deployment_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For a terminal.
    Text,
    /// The whole report (`checks[]`, figures, counts).
    Json,
    /// JUnit XML for CodeBuild test reports and Jenkins.
    Junit,
    /// A Markdown summary for a pull request or a GitHub job summary.
    Markdown,
}

impl Format {
    fn render(self, report: &greenlight::StageReport) -> anyhow::Result<String> {
        Ok(match self {
            Format::Text => render::text(report),
            Format::Json => format!(
                "{}\n",
                serde_json::to_string_pretty(report).context("could not encode the report")?
            ),
            Format::Junit => greenlight::render::junit(report),
            Format::Markdown => greenlight::render::markdown(report),
        })
    }
}

/// Pair each --format with the --output at its position; the rest go to stdout (at most one).
fn destinations(
    formats: &[Format],
    outputs: &[PathBuf],
) -> anyhow::Result<Vec<(Format, Option<PathBuf>)>> {
    if outputs.len() > formats.len().max(1) {
        anyhow::bail!(
            "{} --output but {} --format: give each --output the --format it is written in \
             (e.g. --format junit --output report.xml)",
            outputs.len(),
            formats.len()
        );
    }
    let formats = if formats.is_empty() {
        vec![Format::Text]
    } else {
        formats.to_vec()
    };
    let pairs: Vec<(Format, Option<PathBuf>)> = formats
        .iter()
        .enumerate()
        .map(|(i, format)| (*format, outputs.get(i).cloned()))
        .collect();
    if pairs.iter().filter(|(_, path)| path.is_none()).count() > 1 {
        anyhow::bail!(
            "only one report can go to stdout: give every --format but one an --output FILE"
        );
    }
    Ok(pairs)
}

#[tokio::main]
async fn main() -> ExitCode {
    greenlight::init_cli();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0 and usage errors with exit 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("greenlight: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check {
            config,
            stage,
            format,
            output,
            run_id,
            green_target_group,
        } => {
            // Bad flags are found before anything is sent.
            let destinations = destinations(&format, &output)?;
            let aws = Arc::new(Aws::new());
            let (config, source) = load(config, &aws).await?;
            config.stage(stage)?;
            let suite = Suite::load(config, source, &aws)
                .await?
                .with_progress(Arc::new(TerminalProgress::new()));
            // The whole watch runs in this process: its longest repeat, plus the stage budget.
            let budget = Budget::fixed(
                suite.config.defaults.budget.0 + suite.longest_watch(stage).unwrap_or_default(),
            );
            let run_id = run_id.unwrap_or_else(fresh_run_id);
            let target_groups = match (&suite.config.deployment, green_target_group) {
                (Some(spec), Some(green)) => Some(greenlight::resolve_target_groups(spec, &green)),
                (Some(_), None) if suite.needs_target_groups(stage) => Some(Err(
                    "the CLI cannot ask a deployment which target group is green: pass \
                     --green-target-group NAME (or set GREENLIGHT_GREEN_TARGET_GROUP)"
                        .to_owned(),
                )),
                _ => None,
            };
            let inputs = StageInputs {
                target_groups,
                ..StageInputs::default()
            };
            let report = suite.run_whole(stage, budget.checks, run_id, inputs).await;
            for (format, path) in destinations {
                let rendered = format.render(&report)?;
                match path {
                    Some(path) => std::fs::write(&path, rendered)
                        .with_context(|| format!("could not write {}", path.display()))?,
                    None => print!("{rendered}"),
                }
            }
            // In a GitHub Actions job, the Markdown report joins the job's summary too.
            if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())
            {
                use std::io::Write as _;
                let markdown = greenlight::render::markdown(&report);
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&summary)
                    .and_then(|mut file| file.write_all(markdown.as_bytes()))
                    .with_context(|| {
                        format!(
                            "could not append to GITHUB_STEP_SUMMARY ({})",
                            PathBuf::from(&summary).display()
                        )
                    })?;
            }
            Ok(match report.verdict {
                Verdict::Passed => ExitCode::SUCCESS,
                Verdict::Failed => ExitCode::from(1),
            })
        }
        Command::Validate { config } => {
            let aws = Aws::new();
            let (config, source) = load(config, &aws).await?;
            Suite::check_offline(&config)?;
            let stages: Vec<String> = Stage::ALL
                .into_iter()
                .filter_map(|stage| {
                    config
                        .stages
                        .get(stage)
                        .map(|s| format!("{stage} ({} checks)", s.checks.len()))
                })
                .collect();
            let long: Vec<String> = Stage::ALL
                .into_iter()
                .filter_map(|stage| {
                    let longest = config.longest_watch(stage)?;
                    (longest > greenlight::CODEDEPLOY_MAX_WATCH)
                        .then(|| format!("{stage} ({})", humantime::format_duration(longest)))
                })
                .collect();
            if !long.is_empty() {
                eprintln!(
                    "greenlight: note: {} watch longer than CodeDeploy's hooks allow (55m): run \
                     these stages from ECS-native hooks, or shorten repeat.for",
                    long.join(", ")
                );
            }
            println!(
                "config {source} is valid: {} targets; stages: {}",
                config.targets.len(),
                if stages.is_empty() {
                    "none".to_owned()
                } else {
                    stages.join(", ")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { config, format } => {
            let aws = Aws::new();
            let findings = match load(config, &aws).await {
                Ok((config, source)) => {
                    greenlight::preflight::from_cli(&config, &source.to_string(), &aws).await
                }
                Err(err) => vec![greenlight::Finding::problem(
                    "config",
                    format!("{err:#}"),
                    "fix the config named above (greenlight validate shows the same)",
                )],
            };
            let ok = findings.iter().all(|f| f.ok);
            if format == Format::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"ok": ok, "findings": findings})
                    )?
                );
            } else {
                for finding in &findings {
                    println!("{}", finding.line());
                }
                println!(
                    "{}",
                    if ok {
                        "all is well"
                    } else {
                        "not ready: fix the lines marked FIX"
                    }
                );
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&greenlight::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Event { deployment_id } => {
            let event = serde_json::json!({
                "DeploymentId": deployment_id,
                "LifecycleEventHookExecutionId": format!("local-{}", fresh_run_id()),
            });
            println!("{}", serde_json::to_string_pretty(&event)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Progress bars for probes on stderr; indicatif draws nothing when stderr is not a terminal,
/// so piped and CI output stays clean.
struct TerminalProgress {
    bars: MultiProgress,
    by_check: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    fn new() -> Self {
        TerminalProgress {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            by_check: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for TerminalProgress {
    fn started(&self, check: &str, total: u64) {
        let bar = self.bars.add(ProgressBar::new(total));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} requests, {per_sec}, {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("probe {check}"));
        if let Ok(mut bars) = self.by_check.lock() {
            bars.insert(check.to_owned(), bar);
        }
    }

    fn advanced(&self, check: &str, done: u64) {
        if let Ok(bars) = self.by_check.lock()
            && let Some(bar) = bars.get(check)
        {
            bar.set_position(done);
        }
    }

    fn finished(&self, check: &str) {
        if let Ok(mut bars) = self.by_check.lock()
            && let Some(bar) = bars.remove(check)
        {
            bar.finish_and_clear();
        }
    }

    /// One line per run of a repeating check, on a terminal only.
    fn repeated(&self, check: &str, run: u32, planned: u32, outcome: &str) {
        if !self.bars.is_hidden() {
            let _ = self
                .bars
                .println(format!("repeat {check}: run {run} of {planned} {outcome}"));
        }
    }
}

async fn load(path: Option<PathBuf>, aws: &Aws) -> anyhow::Result<(Config, Source)> {
    let loaded = match path {
        Some(path) => greenlight::load_file(path).await?,
        None => greenlight::load_env(aws)
            .await
            .context("no --config given and GREENLIGHT_CONFIG did not provide one")?,
    };
    Ok((loaded.config, loaded.source))
}

fn fresh_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    run_id_from(&format!("cli-{}-{nanos}", std::process::id()))
}
