#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `paysim` binary: its listening line, usage errors, and crash-after.

use crate::common::{Body, Server, WAIT, command, spawn, temp_db};

fn db_arg(db: &crate::common::TempDb) -> &str {
    db.path.to_str().unwrap()
}

#[tokio::test]
async fn prints_one_listening_line_with_the_port() {
    let db = temp_db();
    let process = spawn(&["--version", "v2", "--port", "0", "--db", db_arg(&db)]);
    let port = process
        .line
        .strip_prefix("paysim v2 listening on http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix(" (fault: none)"))
        .unwrap_or_else(|| panic!("unexpected line {:?}", process.line));
    let port: u16 = port.parse().unwrap();
    assert_ne!(port, 0);

    let server = Server::at(process.base.clone());
    let health = server
        .send("GET", "/health", None, None, Body::None)
        .await
        .expect(200);
    assert_eq!(
        health.json(),
        serde_json::json!({"status": "ok", "version": "v2"})
    );
    // The default key when neither --api-key nor PAYSIM_API_KEY is given.
    server
        .send(
            "GET",
            "/v1/payments",
            Some("Bearer sk_test_paysim"),
            None,
            Body::None,
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn the_line_names_the_fault_and_the_key_comes_from_the_environment() {
    let db = temp_db();
    let mut cmd_args = vec!["--version", "v1", "--port", "0", "--db", db_arg(&db)];
    cmd_args.extend(["--fault", "jpy-scaled"]);
    // `command` clears PAYSIM_API_KEY so other tests see the default; set it here.
    let mut child_cmd = command(&cmd_args);
    child_cmd.env("PAYSIM_API_KEY", "sk_from_env");
    let process = crate::common::spawn_command(child_cmd);
    assert!(
        process
            .line
            .starts_with("paysim v1 listening on http://127.0.0.1:")
            && process.line.ends_with(" (fault: jpy-scaled)"),
        "{}",
        process.line
    );
    let server = Server::at(process.base.clone());
    server
        .send(
            "GET",
            "/v1/payments",
            Some("Bearer sk_from_env"),
            None,
            Body::None,
        )
        .await
        .expect(200);
    server
        .send(
            "GET",
            "/v1/payments",
            Some("Bearer sk_test_paysim"),
            None,
            Body::None,
        )
        .await
        .expect_error(401, "unauthorized");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let db = temp_db();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--version",
                "v2",
                "--port",
                "0",
                "--db",
                db_arg(&db),
                "--fault",
                "explode",
            ],
            "valid faults: health-500, slow, refunds-fail, idempotency-ignored, jpy-scaled, contract-migration, crash-after=N",
        ),
        (
            &[
                "--version",
                "v2",
                "--port",
                "0",
                "--db",
                db_arg(&db),
                "--fault",
                "crash-after=0",
            ],
            "valid faults",
        ),
        (
            &["--version", "v3", "--port", "0", "--db", db_arg(&db)],
            "v1",
        ),
        (
            &[
                "--version",
                "v1",
                "--port",
                "0",
                "--db",
                db_arg(&db),
                "--fault",
                "contract-migration",
            ],
            "v2",
        ),
    ];
    for (args, wanted) in cases {
        let output = command(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn crash_after_exits_with_status_1_after_the_nth_answer() {
    let db = temp_db();
    let mut process = spawn(&[
        "--version",
        "v2",
        "--port",
        "0",
        "--db",
        db_arg(&db),
        "--fault",
        "crash-after=3",
    ]);
    assert!(
        process.line.ends_with(" (fault: crash-after=3)"),
        "{}",
        process.line
    );
    let server = Server::at(process.base.clone());
    server
        .send("GET", "/health", None, None, Body::None)
        .await
        .expect(200);
    // Every request counts, rejected ones too.
    server
        .send("GET", "/v1/payments", None, None, Body::None)
        .await
        .expect_error(401, "unauthorized");
    assert!(
        process.child.try_wait().unwrap().is_none(),
        "exited too early"
    );
    // The third request is still answered in full, on a connection that will not be reused.
    let third = server
        .send("GET", "/health", None, None, Body::None)
        .await
        .expect(200);
    assert_eq!(third.header("connection"), Some("close"));
    // By the time the answer arrived the socket was closed: the next request cannot connect.
    let addr: std::net::SocketAddr = process.base.trim_start_matches("http://").parse().unwrap();
    let refused = std::net::TcpStream::connect_timeout(&addr, WAIT);
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    let status = process.wait_exit().await;
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn blue_and_green_processes_share_one_database() {
    let db = temp_db();
    let blue = spawn(&["--version", "v1", "--port", "0", "--db", db_arg(&db)]);
    let green = spawn(&["--version", "v2", "--port", "0", "--db", db_arg(&db)]);
    let auth = "Bearer sk_test_paysim";
    let green_api = Server::at(green.base.clone());
    let created = green_api
        .send(
            "POST",
            "/v1/payments",
            Some(auth),
            Some("two-processes"),
            Body::Form("amount=1200&currency=JPY&card_token=tok_visa&reference=x"),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_str().unwrap();
    let blue_api = Server::at(blue.base.clone());
    let read = blue_api
        .send(
            "GET",
            &format!("/v1/payments/{id}"),
            Some(auth),
            None,
            Body::None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(read["amount"], 1200);
    assert_eq!(read["created_by"], "v2");
    assert!(read.get("reference").is_none());
}
