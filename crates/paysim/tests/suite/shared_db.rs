#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Blue (v1) and green (v2) on one database file at the same time.

use crate::common::{Body, key, start, temp_db};
use paysim::Version;
use serde_json::{Value, json};

const VISA_JPY: &str = r#"{"amount":1200,"currency":"JPY","card_token":"tok_visa"}"#;

fn payments_columns(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('payments')")
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn v2_expands_a_database_v1_created_while_v1_keeps_running() {
    let db = temp_db();
    let v1 = start(&db.path, Version::V1, None).await;
    let old = v1.create(&key("old"), VISA_JPY).await;
    let columns = payments_columns(&db.path);
    assert!(!columns.iter().any(|c| c == "reference"), "{columns:?}");

    let v2 = start(&db.path, Version::V2, None).await;
    let columns = payments_columns(&db.path);
    for added in ["reference", "amount_minor"] {
        assert!(columns.iter().any(|c| c == added), "{columns:?}");
    }

    // v2 reads v1's row (no reference yet), and v1 still works on the expanded table.
    let id = old["id"].as_str().unwrap();
    let seen_by_v2 = v2.payment(id).await;
    assert_eq!(seen_by_v2["reference"], Value::Null);
    assert_eq!(seen_by_v2["created_by"], "v1");
    assert_eq!(seen_by_v2["display_amount"], "¥1,200");
    let newer = v1.create(&key("old"), VISA_JPY).await;
    assert_eq!(v1.payment(newer["id"].as_str().unwrap()).await, newer);

    // A second v2 start (or a restart) finds the columns and changes nothing.
    let _again = start(&db.path, Version::V2, None).await;
    assert_eq!(payments_columns(&db.path), columns);
}

#[tokio::test]
async fn blue_reads_what_green_wrote() {
    let db = temp_db();
    let v1 = start(&db.path, Version::V1, None).await;
    let v2 = start(&db.path, Version::V2, None).await;
    let written = v2
        .create(
            &key("g"),
            r#"{"amount":1200,"currency":"JPY","card_token":"tok_visa","reference":"r-1"}"#,
        )
        .await;
    let id = written["id"].as_str().unwrap();
    let read = v1.payment(id).await;
    assert_eq!(
        read,
        json!({
            "id": id,
            "amount": 1200,
            "currency": "JPY",
            "status": "captured",
            "amount_refunded": 0,
            "display_amount": "¥1,200",
            "created_by": "v2",
        })
    );

    // Lists on both sides show both versions' rows, newest first.
    let blue_row = v1.create(&key("b"), VISA_JPY).await;
    for server in [&v1, &v2] {
        let list = server.get("/v1/payments").await.expect(200).json();
        let ids: Vec<&Value> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["id"])
            .collect();
        assert_eq!(ids, [&blue_row["id"], &written["id"]]);
    }

    // Blue refunds what green charged; green sees it.
    v1.refund(id, None, Body::Json(r#"{"amount":200}"#))
        .await
        .expect(201);
    assert_eq!(v2.payment(id).await["amount_refunded"], 200);
}

#[tokio::test]
async fn idempotency_keys_are_shared_between_versions() {
    let db = temp_db();
    let v1 = start(&db.path, Version::V1, None).await;
    let v2 = start(&db.path, Version::V2, None).await;
    let k = key("shared");
    let first = v1
        .post("/v1/payments", Some(&k), Body::Json(VISA_JPY))
        .await
        .expect(201);
    // The retry lands on green: it replays blue's answer exactly (no `reference` key).
    let retry = v2
        .post("/v1/payments", Some(&k), Body::Json(VISA_JPY))
        .await
        .expect(201);
    assert!(retry.is_replay());
    assert_eq!(retry.body, first.body);
    assert!(retry.json().get("reference").is_none());
    v2.post(
        "/v1/payments",
        Some(&k),
        Body::Json(r#"{"amount":1,"currency":"JPY","card_token":"tok_visa"}"#),
    )
    .await
    .expect_error(422, "idempotency_key_reused");
    let list = v2.get("/v1/payments").await.expect(200).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_writes_from_both_versions_all_land() {
    let db = temp_db();
    let v1 = start(&db.path, Version::V1, None).await;
    let v2 = start(&db.path, Version::V2, None).await;
    let mut tasks = Vec::new();
    for n in 0..20 {
        let server = if n % 2 == 0 { &v1 } else { &v2 };
        let base = server.base.clone();
        tasks.push(tokio::spawn(async move {
            let server = crate::common::Server::at(base);
            // Every request uses one key pair: half of them are retries of the other half.
            let k = format!("race-{}", n / 2);
            server
                .post("/v1/payments", Some(&k), Body::Json(VISA_JPY))
                .await
                .expect(201)
                .body
        }));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.unwrap());
    }
    // Each key charged once, and both requests for a key got the same bytes.
    for pair in bodies.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    let list = v1.get("/v1/payments?limit=100").await.expect(200).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 10);
}
