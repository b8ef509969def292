//! Runs the real hook binaries against `cargo lambda watch`'s runtime emulator, and invokes them
//! with `cargo lambda invoke`, exactly as `make invoke` does.
//!
//! The emulator runs with `--only-lambda-apis` and the harness starts the binary that
//! `cargo build` already made: the emulator would otherwise rebuild the function with a different
//! feature set (no dev-dependencies) and compile the AWS SDK a second time.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::AWS_TEST_ENV;

/// Longest wait for the emulator's port to answer.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The watch state key every hook under test gets (`GREENLIGHT_STATE_KEY`), so a test can seal
/// a state as the hook would, and forge one as an attacker could not.
pub const TEST_STATE_KEY: &str = "greenlight-e2e-watch-state-key-0123456789abcdef";
/// Longest wait for one invocation.
const INVOKE_LIMIT: Duration = Duration::from_secs(120);

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// A binary built by `cargo build --workspace` (debug profile).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` first (`make test` does)",
        path.display()
    );
    path
}

/// The `cargo-lambda` executable from the project venv (or `$CARGO_LAMBDA`).
pub fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/cargo-lambda"));
    assert!(
        path.exists(),
        "{} is missing: run `make tools` (or `make test`, which installs cargo-lambda into .venv)",
        path.display()
    );
    path
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cargo lambda watch --only-lambda-apis` on a free port.
pub struct Emulator {
    pub port: u16,
    _child: Child,
}

impl Emulator {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(workspace_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start cargo lambda watch");
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cargo lambda watch did not listen on port {port} within {START_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Emulator {
            port,
            _child: child,
        }
    }

    /// Start a hook binary as the function `name` (its binary name), with extra environment.
    pub fn function(&self, name: &str, env: &[(&str, &str)]) -> Function {
        self.start_function(name, env, Command::new(binary(name)))
    }

    /// The same, with the process's data segment (heap and private mappings) limited to
    /// `bytes`, as a Lambda function's memory size limits it: `prlimit --data`.
    pub fn function_with_memory(&self, name: &str, env: &[(&str, &str)], bytes: u64) -> Function {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--data={bytes}"))
            .arg("--")
            .arg(binary(name));
        self.start_function(name, env, command)
    }

    fn start_function(&self, name: &str, env: &[(&str, &str)], mut command: Command) -> Function {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt/{name}", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            // As a deployed stack's generated secret would: a test that wants no key sets it "".
            .env("GREENLIGHT_STATE_KEY", TEST_STATE_KEY)
            .envs(AWS_TEST_ENV.iter().copied())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("cannot start the hook binary");
        let logs = Arc::new(Mutex::new(String::new()));
        let logged = Arc::new(tokio::sync::Notify::new());
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = Arc::clone(&logs);
            let logged = Arc::clone(&logged);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    {
                        let mut logs = logs.lock().unwrap();
                        logs.push_str(&line);
                        logs.push('\n');
                    }
                    logged.notify_waiters();
                }
            });
        }
        Function {
            name: name.to_owned(),
            port: self.port,
            logs,
            logged,
            _child: child,
        }
    }
}

/// A running hook binary.
pub struct Function {
    pub name: String,
    port: u16,
    logs: Arc<Mutex<String>>,
    /// Fires at every line logged.
    logged: Arc<tokio::sync::Notify>,
    _child: Child,
}

/// What `cargo lambda invoke` printed.
#[derive(Debug)]
pub struct Invocation {
    /// The invoke succeeded (the function returned a value, not an error).
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Invocation {
    /// The function's JSON result.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "invoke output is not JSON ({e}): {}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Function {
    /// Everything the function logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// The logs once `needle` appears in them `count` times, or after `limit`: lines logged
    /// after an invocation's answer (a notification's outcome) reach the test through a pipe,
    /// so a test waits for them rather than reading once.
    pub async fn logs_with(&self, needle: &str, count: usize, limit: Duration) -> String {
        crate::wait_until(limit, &self.logged, || {
            self.logs.lock().unwrap().matches(needle).count() >= count
        })
        .await;
        self.logs()
    }

    /// Invoke with a JSON payload through `cargo lambda invoke`.
    pub async fn invoke(&self, payload: &str) -> Invocation {
        self.invoke_with(&["--data-ascii", payload]).await
    }

    /// Invoke with a file from `events/`.
    pub async fn invoke_file(&self, file: &str) -> Invocation {
        let path = workspace_root().join("events").join(file);
        assert!(path.exists(), "{} is missing", path.display());
        self.invoke_with(&["--data-file", path.to_str().unwrap()])
            .await
    }

    async fn invoke_with(&self, data: &[&str]) -> Invocation {
        let output = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--output-format",
                "json",
            ])
            .args(["--invoke-port", &self.port.to_string()])
            .args(data)
            .arg(&self.name)
            .current_dir(workspace_root())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(INVOKE_LIMIT, output)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "invoke of {} took over {INVOKE_LIMIT:?}\nlogs:\n{}",
                    self.name,
                    self.logs()
                )
            })
            .expect("cannot run cargo lambda invoke");
        Invocation {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}
