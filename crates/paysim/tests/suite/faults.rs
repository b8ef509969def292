#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Each `--fault` does what greenlight's checks are meant to catch, and only that.

use std::time::Instant;

use crate::common::{Body, key, start, temp_db};
use paysim::{App, Fault, Options, SLOW_DELAY, Stopped, Version};
use serde_json::json;

const VISA_JPY: &str = r#"{"amount":1200,"currency":"JPY","card_token":"tok_visa"}"#;

#[tokio::test]
async fn health_500_breaks_only_health() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, Some(Fault::Health500)).await;
    let health = server
        .send("GET", "/health", None, None, Body::None)
        .await
        .expect(500);
    assert_eq!(health.json(), json!({"status": "error", "version": "v2"}));
    let payment = server.create(&key("h"), VISA_JPY).await;
    assert_eq!(payment["status"], "captured");
}

#[tokio::test]
async fn slow_delays_every_request() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, Some(Fault::Slow)).await;
    let started = Instant::now();
    server
        .send("GET", "/health", None, None, Body::None)
        .await
        .expect(200);
    assert!(started.elapsed() >= SLOW_DELAY, "{:?}", started.elapsed());
    let started = Instant::now();
    server.get("/v1/payments").await.expect(200);
    assert!(started.elapsed() >= SLOW_DELAY, "{:?}", started.elapsed());
}

#[tokio::test]
async fn refunds_fail_refunds_nothing() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, Some(Fault::RefundsFail)).await;
    let payment = server.create(&key("rf"), VISA_JPY).await;
    let id = payment["id"].as_str().unwrap();
    for k in [None, Some("rf-key")] {
        server
            .refund(id, k, Body::None)
            .await
            .expect_error(500, "internal");
    }
    let after = server.payment(id).await;
    assert_eq!(after["status"], "captured");
    assert_eq!(after["amount_refunded"], 0);

    // Nothing was remembered either: the same key works on a healthy instance.
    let healthy = start(&db.path, Version::V2, None).await;
    let refund = healthy
        .refund(id, Some("rf-key"), Body::None)
        .await
        .expect(201);
    assert!(!refund.is_replay());
}

#[tokio::test]
async fn idempotency_ignored_charges_twice() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, Some(Fault::IdempotencyIgnored)).await;
    let k = key("twice");
    let first = server.create(&k, VISA_JPY).await;
    let second = server
        .post("/v1/payments", Some(&k), Body::Json(VISA_JPY))
        .await
        .expect(201);
    assert!(!second.is_replay());
    assert_ne!(second.json()["id"], first["id"]);
    let list = server.get("/v1/payments").await.expect(200).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn jpy_scaled_multiplies_yen_only() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, Some(Fault::JpyScaled)).await;
    let yen = server.create(&key("jpy"), VISA_JPY).await;
    assert_eq!(yen["amount"], 120_000);
    assert_eq!(yen["display_amount"], "¥120,000");
    let usd = server
        .create(
            &key("jpy"),
            r#"{"amount":1200,"currency":"USD","card_token":"tok_visa"}"#,
        )
        .await;
    assert_eq!(usd["amount"], 1200);

    // Blue reads the wrong amount back from the shared database.
    let blue = start(&db.path, Version::V1, None).await;
    assert_eq!(
        blue.payment(yen["id"].as_str().unwrap()).await["amount"],
        120_000
    );
}

#[tokio::test]
async fn contract_migration_rows_break_v1_only() {
    let db = temp_db();
    let blue = start(&db.path, Version::V1, None).await;
    let green = start(&db.path, Version::V2, Some(Fault::ContractMigration)).await;
    let fine = blue.create(&key("cm"), VISA_JPY).await;
    let written = green.create(&key("cm"), VISA_JPY).await;
    assert_eq!(written["amount"], 1200);
    assert_eq!(written["display_amount"], "¥1,200");
    let id = written["id"].as_str().unwrap();

    // The column really is NULL; green falls back to amount_minor.
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let (amount, minor): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT amount, amount_minor FROM payments WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((amount, minor), (None, Some(1200)));
    assert_eq!(green.payment(id).await["amount"], 1200);
    let list = green.get("/v1/payments").await.expect(200).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    // Blue cannot read it, alone or in a list.
    let one = blue
        .get(&format!("/v1/payments/{id}"))
        .await
        .expect_error(500, "corrupt_row");
    let message = one.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("amount") && message.contains("newer schema"),
        "{message}"
    );
    blue.get("/v1/payments")
        .await
        .expect_error(500, "corrupt_row");
    // Rows blue wrote itself still read fine.
    blue.payment(fine["id"].as_str().unwrap()).await;

    // Blue cannot refund such a row (it would need the amount) and changes nothing...
    blue.refund(id, None, Body::None)
        .await
        .expect_error(500, "corrupt_row");
    assert_eq!(green.payment(id).await["status"], "captured");
    // ...but once green refunded it, blue's answer needs only the status: 409, not 500.
    green.refund(id, None, Body::None).await.expect(201);
    blue.refund(id, None, Body::None)
        .await
        .expect_error(409, "already_refunded");
}

#[tokio::test]
async fn crash_after_stops_the_server_after_n_requests() {
    let db = temp_db();
    let app = App::open(Options {
        version: Version::V2,
        db: db.path.clone(),
        fault: Some(Fault::CrashAfter(2)),
        api_key: crate::common::KEY.to_owned(),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(app.serve(listener));
    let server = crate::common::Server::at(format!("http://{addr}"));

    let first = server
        .send("GET", "/health", None, None, Body::None)
        .await
        .expect(200);
    assert_eq!(first.header("connection"), None);
    assert!(!serving.is_finished());
    let second = server.create(&key("crash"), VISA_JPY).await;
    assert_eq!(second["status"], "captured");
    let stopped = tokio::time::timeout(crate::common::WAIT, serving)
        .await
        .expect("serve did not return in time")
        .unwrap()
        .unwrap();
    assert_eq!(stopped, Stopped::CrashAfter(2));
    // The answer before the crash was committed.
    let healthy = start(&db.path, Version::V1, None).await;
    healthy.payment(second["id"].as_str().unwrap()).await;
}
