//! Runs the real `paysim` binary (blue v1 or green v2, optionally faulty) on a free port.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::lambda::binary;

/// The API key every paysim in the tests is started with.
pub const API_KEY: &str = "sk_test_greenlight_e2e";

/// Longest wait for paysim to print its listening line.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running paysim process.
pub struct Paysim {
    pub addr: SocketAddr,
    pub version: String,
    child: Child,
}

impl Paysim {
    /// Start `paysim --version VERSION --db DB [--fault FAULT]` on a free port.
    pub async fn start(version: &str, db: &Path, fault: Option<&str>) -> Self {
        let mut command = Command::new(binary("paysim"));
        command
            .args(["--version", version, "--port", "0", "--api-key", API_KEY])
            .arg("--db")
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(fault) = fault {
            command.args(["--fault", fault]);
        }
        let mut child = command.spawn().expect("cannot start paysim");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_LIMIT, lines.next_line())
            .await
            .expect("paysim did not print its listening line in time")
            .expect("cannot read paysim's output")
            .expect("paysim exited before listening");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected paysim line: {line}"));
        let addr = url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line}: {e}"));
        // Keep draining stdout so paysim never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Paysim {
            addr,
            version: version.to_owned(),
            child,
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the process has exited (crash faults).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Every payment in the database (newest first, up to 100), as this paysim reads them.
    pub async fn payments(&self) -> Vec<Value> {
        // The workspace builds reqwest without a bundled crypto provider; ring is the one in use.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let bytes = client
            .get(format!("{}/v1/payments?limit=100", self.url()))
            .bearer_auth(API_KEY)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("paysim list request failed")
            .bytes()
            .await
            .expect("cannot read paysim's list");
        let body: Value = serde_json::from_slice(&bytes).expect("paysim list is not JSON");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}
