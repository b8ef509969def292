//! Shared helpers: run paysim in-process (or as the real binary) on 127.0.0.1 and talk to it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use paysim::{App, Fault, Options, Version};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The key every test instance uses.
pub const KEY: &str = "sk_test_suite";

/// Bound on every wait in these tests: a startup, a request, an exit.
pub const WAIT: Duration = Duration::from_secs(10);

/// A temporary database file, removed with the guard.
pub struct TempDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn temp_db() -> TempDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paysim.db");
    TempDb { _dir: dir, path }
}

pub fn client() -> reqwest::Client {
    // The workspace builds reqwest without a bundled crypto provider; ring is the one in use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        // Only ever 127.0.0.1: never route test traffic through a proxy from the environment.
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap()
}

/// A running paysim and a client for it.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
}

/// Starts paysim in this test's runtime on 127.0.0.1:0.
pub async fn start(db: &Path, version: Version, fault: Option<Fault>) -> Server {
    let app = App::open(Options {
        version,
        db: db.to_owned(),
        fault,
        api_key: KEY.to_owned(),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener));
    Server::at(format!("http://{addr}"))
}

/// One answer, read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap().to_owned()
    }

    pub fn is_replay(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }

    /// Asserts the status and that the answer is JSON, as every answer must be.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let reply = self.expect(status);
        assert_eq!(reply.error_code(), code);
        reply
    }
}

/// How a request body is encoded.
pub enum Body<'a> {
    None,
    Json(&'a str),
    Form(&'a str),
}

impl Server {
    pub fn at(base: String) -> Self {
        Self {
            base,
            client: client(),
        }
    }

    /// Sends a request with the test key (or another `auth` header value).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        idempotency_key: Option<&str>,
        body: Body<'_>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request = match body {
            Body::None => request,
            Body::Json(text) => request
                .header("content-type", "application/json")
                .body(text.to_owned()),
            Body::Form(text) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(text.to_owned()),
        };
        let response = request.send().await.unwrap();
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Some(&bearer()), None, Body::None)
            .await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Body<'_>) -> Reply {
        self.send("POST", path, Some(&bearer()), key, body).await
    }

    /// Creates a payment from a JSON body and returns the 201 payment object.
    pub async fn create(&self, key: &str, json: &str) -> Value {
        self.post("/v1/payments", Some(key), Body::Json(json))
            .await
            .expect(201)
            .json()
    }

    pub async fn payment(&self, id: &str) -> Value {
        self.get(&format!("/v1/payments/{id}"))
            .await
            .expect(200)
            .json()
    }

    pub async fn refund(&self, id: &str, key: Option<&str>, body: Body<'_>) -> Reply {
        self.post(&format!("/v1/payments/{id}/refunds"), key, body)
            .await
    }
}

pub fn bearer() -> String {
    format!("Bearer {KEY}")
}

/// A unique idempotency key per call site and run.
pub fn key(label: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{label}-{n}")
}

/// The paysim binary, killed on drop if it is still running.
pub struct Process {
    pub child: Child,
    pub line: String,
    pub base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The binary's command with a clean environment for what it reads.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paysim"));
    command
        .args(args)
        .env_remove("PAYSIM_API_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Runs the binary and waits (bounded) for its listening line.
pub fn spawn(args: &[&str]) -> Process {
    spawn_command(command(args))
}

/// Like [`spawn`], for a command the caller has adjusted (e.g. its environment).
pub fn spawn_command(mut command: Command) -> Process {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child can never block on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let mut process = Process {
        child,
        line: String::new(),
        base: String::new(),
    };
    let line = rx
        .recv_timeout(WAIT)
        .expect("paysim printed no listening line in time");
    let line = line.trim_end().to_owned();
    let url = line
        .split(" listening on ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    process.line = line;
    process.base = url;
    process
}

impl Process {
    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "paysim did not exit in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
