#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTTP contract, against the real router on 127.0.0.1 with a temporary database.

use crate::common::{Body, KEY, Server, key, start, temp_db};
use paysim::Version;
use serde_json::{Value, json};

const VISA_JPY: &str = r#"{"amount":1200,"currency":"JPY","card_token":"tok_visa"}"#;

fn is_id(value: &Value, prefix: &str) -> bool {
    let text = value.as_str().unwrap();
    let Some(hex) = text.strip_prefix(prefix) else {
        return false;
    };
    hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn health_needs_no_key() {
    let db = temp_db();
    for version in [Version::V1, Version::V2] {
        let server = start(&db.path, version, None).await;
        let reply = server
            .send("GET", "/health", None, None, Body::None)
            .await
            .expect(200);
        assert_eq!(
            reply.json(),
            json!({"status": "ok", "version": version.as_str()})
        );
    }
}

#[tokio::test]
async fn v1_routes_need_the_bearer_key() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let wrong = format!("Bearer {KEY}x");
    for auth in [
        None,
        Some("Bearer"),
        Some("Basic c2s6"),
        Some(KEY),
        Some(wrong.as_str()),
    ] {
        for (method, path) in [
            ("GET", "/v1/payments"),
            ("POST", "/v1/payments"),
            ("GET", "/v1/payments/pay_0000000000000000"),
            ("POST", "/v1/payments/pay_0000000000000000/capture"),
            ("POST", "/v1/payments/pay_0000000000000000/refunds"),
            ("GET", "/v1/nothing-here"),
        ] {
            let reply = server
                .send(method, path, auth, Some("k"), Body::Json(VISA_JPY))
                .await
                .expect_error(401, "unauthorized");
            assert!(
                reply.json()["error"]["message"].is_string(),
                "{method} {path}"
            );
        }
    }
    // Nothing was created by the rejected POSTs.
    let list = server.get("/v1/payments").await.expect(200).json();
    assert_eq!(list, json!({"data": []}));
}

#[tokio::test]
async fn create_returns_the_payment_object() {
    let db = temp_db();
    let v2 = start(&db.path, Version::V2, None).await;
    let payment = v2
        .create(
            &key("c"),
            r#"{"amount":1200,"currency":"jpy","card_token":"tok_visa","reference":"order-7"}"#,
        )
        .await;
    assert!(is_id(&payment["id"], "pay_"), "{payment}");
    let expected = json!({
        "id": payment["id"],
        "amount": 1200,
        "currency": "JPY",
        "status": "captured",
        "amount_refunded": 0,
        "display_amount": "¥1,200",
        "created_by": "v2",
        "reference": "order-7",
    });
    assert_eq!(payment, expected);
    assert_eq!(v2.payment(payment["id"].as_str().unwrap()).await, expected);

    let usd = v2
        .create(
            &key("c"),
            r#"{"amount":1200,"currency":"USD","card_token":"tok_mastercard","capture":false}"#,
        )
        .await;
    assert_eq!(usd["status"], "authorized");
    assert_eq!(usd["display_amount"], "$12.00");
    assert_eq!(usd["reference"], Value::Null);
    let eur = v2
        .create(
            &key("c"),
            r#"{"amount":123456,"currency":"eur","card_token":"tok_visa"}"#,
        )
        .await;
    assert_eq!(eur["display_amount"], "€1,234.56");

    let v1 = start(&db.path, Version::V1, None).await;
    let from_v1 = v1.create(&key("c"), VISA_JPY).await;
    assert_eq!(from_v1["created_by"], "v1");
    assert!(
        from_v1.get("reference").is_none(),
        "v1 never has reference: {from_v1}"
    );
}

#[tokio::test]
async fn form_bodies_work_like_json() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let k = key("form");
    let reply = server
        .post(
            "/v1/payments",
            Some(&k),
            Body::Form(
                "amount=1200&currency=JPY&card_token=tok_visa&capture=false&reference=a%20b",
            ),
        )
        .await
        .expect(201);
    let payment = reply.json();
    assert_eq!(payment["amount"], 1200);
    assert_eq!(payment["status"], "authorized");
    assert_eq!(payment["reference"], "a b");

    // The same parameters as JSON are the same request: a replay, not a conflict.
    let replay = server
        .post(
            "/v1/payments",
            Some(&k),
            Body::Json(r#"{"reference":"a b","capture":false,"card_token":"tok_visa","currency":"jpy","amount":1200}"#),
        )
        .await
        .expect(201);
    assert!(replay.is_replay());
    assert_eq!(replay.body, reply.body);

    let id = payment["id"].as_str().unwrap();
    let refund = server
        .refund(id, None, Body::Form("amount=200"))
        .await
        .expect(201)
        .json();
    // An authorised payment is voided whole.
    assert_eq!(refund["status"], "voided");
    assert_eq!(refund["amount"], 1200);
}

#[tokio::test]
async fn invalid_requests_name_the_field() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let cases = [
        (r#"{"currency":"JPY","card_token":"tok_visa"}"#, "amount"),
        (
            r#"{"amount":0,"currency":"JPY","card_token":"tok_visa"}"#,
            "amount",
        ),
        (
            r#"{"amount":-1,"currency":"JPY","card_token":"tok_visa"}"#,
            "amount",
        ),
        (
            r#"{"amount":1.5,"currency":"JPY","card_token":"tok_visa"}"#,
            "amount",
        ),
        (r#"{"amount":1200,"card_token":"tok_visa"}"#, "currency"),
        (
            r#"{"amount":1200,"currency":"XYZ","card_token":"tok_visa"}"#,
            "currency",
        ),
        (r#"{"amount":1200,"currency":"JPY"}"#, "card_token"),
        (
            r#"{"amount":1200,"currency":"JPY","card_token":"tok_visa","capture":"no"}"#,
            "capture",
        ),
    ];
    for (body, field) in cases {
        let reply = server
            .post("/v1/payments", Some(&key("bad")), Body::Json(body))
            .await
            .expect_error(400, "invalid_request");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(field), "{body}: {message}");
    }
    server
        .post("/v1/payments", Some(&key("bad")), Body::Json("{not json"))
        .await
        .expect_error(400, "invalid_request");
    server
        .post(
            "/v1/payments",
            Some(&key("bad")),
            Body::Form("amount=ten&currency=JPY&card_token=tok_visa"),
        )
        .await
        .expect_error(400, "invalid_request");
    server
        .post(
            "/v1/payments",
            Some(&key("bad")),
            Body::Json(r#"{"amount":1200,"currency":"JPY","card_token":"tok_amex"}"#),
        )
        .await
        .expect_error(400, "invalid_card_token");
    server
        .post("/v1/payments", None, Body::Json(VISA_JPY))
        .await
        .expect_error(400, "idempotency_key_required");
    // Nothing was stored by any of them.
    assert_eq!(
        server.get("/v1/payments").await.expect(200).json(),
        json!({"data": []})
    );
}

#[tokio::test]
async fn a_retry_replays_the_first_answer_and_other_params_are_refused() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let k = key("retry");
    let first = server
        .post("/v1/payments", Some(&k), Body::Json(VISA_JPY))
        .await
        .expect(201);
    assert!(!first.is_replay());
    let id = first.json()["id"].as_str().unwrap().to_owned();

    // The payment changes afterwards, but the replay is the first answer, byte for byte.
    server.refund(&id, None, Body::None).await.expect(201);
    let again = server
        .post("/v1/payments", Some(&k), Body::Json(VISA_JPY))
        .await
        .expect(201);
    assert!(again.is_replay());
    assert_eq!(again.body, first.body);
    assert_eq!(server.payment(&id).await["status"], "refunded");

    let reused = server
        .post(
            "/v1/payments",
            Some(&k),
            Body::Json(r#"{"amount":1300,"currency":"JPY","card_token":"tok_visa"}"#),
        )
        .await
        .expect_error(422, "idempotency_key_reused");
    assert!(!reused.is_replay());

    let list = server.get("/v1/payments").await.expect(200).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "one charge only");
}

#[tokio::test]
async fn declines_are_stored_and_replayed() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let k = key("decline");
    let body = r#"{"amount":500,"currency":"USD","card_token":"tok_decline"}"#;
    let first = server
        .post("/v1/payments", Some(&k), Body::Json(body))
        .await
        .expect_error(402, "card_declined");
    let error = first.json()["error"].clone();
    assert!(is_id(&error["payment_id"], "pay_"), "{error}");
    assert!(error["message"].is_string());
    let id = error["payment_id"].as_str().unwrap().to_owned();
    let payment = server.payment(&id).await;
    assert_eq!(payment["status"], "declined");
    assert_eq!(payment["amount"], 500);

    let replay = server
        .post("/v1/payments", Some(&k), Body::Json(body))
        .await
        .expect(402);
    assert!(replay.is_replay());
    assert_eq!(replay.body, first.body);
    let list = server.get("/v1/payments").await.expect(200).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // A declined payment can be neither captured nor refunded.
    server
        .post(&format!("/v1/payments/{id}/capture"), None, Body::None)
        .await
        .expect_error(409, "invalid_state");
    server
        .refund(&id, None, Body::None)
        .await
        .expect_error(409, "invalid_state");
}

#[tokio::test]
async fn idempotency_keys_are_scoped_to_the_route() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let shared = key("scoped");
    let payment = server.create(&shared, VISA_JPY).await;
    let id = payment["id"].as_str().unwrap();
    // The same key on a refund is a new request, not a 422.
    let refund = server
        .refund(id, Some(&shared), Body::Json(r#"{"amount":200}"#))
        .await
        .expect(201);
    assert!(!refund.is_replay());
    let replay = server
        .refund(id, Some(&shared), Body::Json(r#"{"amount":200}"#))
        .await
        .expect(201);
    assert!(replay.is_replay());
    assert_eq!(replay.body, refund.body);
    assert_eq!(
        server.payment(id).await["amount_refunded"],
        200,
        "refunded once"
    );
    server
        .refund(id, Some(&shared), Body::Json(r#"{"amount":300}"#))
        .await
        .expect_error(422, "idempotency_key_reused");
    // Reusing a refund key on another payment is a different request too.
    let other = server.create(&key("scoped"), VISA_JPY).await;
    server
        .refund(
            other["id"].as_str().unwrap(),
            Some(&shared),
            Body::Json(r#"{"amount":200}"#),
        )
        .await
        .expect_error(422, "idempotency_key_reused");
}

#[tokio::test]
async fn unknown_things_are_json_errors() {
    let db = temp_db();
    let server = start(&db.path, Version::V1, None).await;
    server
        .get("/v1/payments/pay_ffffffffffffffff")
        .await
        .expect_error(404, "not_found");
    server
        .refund("pay_ffffffffffffffff", None, Body::None)
        .await
        .expect_error(404, "not_found");
    server
        .post(
            "/v1/payments/pay_ffffffffffffffff/capture",
            None,
            Body::None,
        )
        .await
        .expect_error(404, "not_found");
    server.get("/v1/nope").await.expect_error(404, "not_found");
    server
        .send("GET", "/nope", None, None, Body::None)
        .await
        .expect_error(404, "not_found");
    // Not UTF-8 once decoded: axum's rejection, answered as our JSON error.
    server
        .get("/v1/payments/%FF")
        .await
        .expect_error(400, "invalid_request");
    server
        .send(
            "DELETE",
            "/v1/payments",
            Some(&crate::common::bearer()),
            None,
            Body::None,
        )
        .await
        .expect_error(405, "method_not_allowed");
}

#[tokio::test]
async fn capture_moves_authorized_to_captured_once() {
    let db = temp_db();
    let server = start(&db.path, Version::V1, None).await;
    let payment = server
        .create(
            &key("cap"),
            r#"{"amount":1200,"currency":"USD","card_token":"tok_visa","capture":false}"#,
        )
        .await;
    assert_eq!(payment["status"], "authorized");
    let id = payment["id"].as_str().unwrap();
    let path = format!("/v1/payments/{id}/capture");
    let captured = server
        .post(&path, None, Body::None)
        .await
        .expect(200)
        .json();
    assert_eq!(captured["status"], "captured");
    assert_eq!(captured["id"], payment["id"]);
    server
        .post(&path, None, Body::None)
        .await
        .expect_error(409, "invalid_state");
}

#[tokio::test]
async fn a_capture_with_a_key_replays_instead_of_failing() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let payment = server
        .create(
            &key("cap-key"),
            r#"{"amount":500,"currency":"EUR","card_token":"tok_visa","capture":false}"#,
        )
        .await;
    let path = format!("/v1/payments/{}/capture", payment["id"].as_str().unwrap());
    let first = server
        .post(&path, Some("cap-1"), Body::None)
        .await
        .expect(200);
    assert!(!first.is_replay());
    // The same key again (a re-run hook): the first answer, not a 409.
    let again = server
        .post(&path, Some("cap-1"), Body::None)
        .await
        .expect(200);
    assert!(again.is_replay());
    assert_eq!(again.json()["status"], "captured");
    // Another key is another capture attempt, and the payment is no longer authorized.
    server
        .post(&path, Some("cap-2"), Body::None)
        .await
        .expect_error(409, "invalid_state");
}

#[tokio::test]
async fn refunds_full_partial_and_too_much() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;

    // Full refund by default.
    let full = server.create(&key("r"), VISA_JPY).await;
    let id = full["id"].as_str().unwrap();
    let refund = server.refund(id, None, Body::None).await.expect(201).json();
    assert!(is_id(&refund["id"], "re_"), "{refund}");
    assert_eq!(
        refund,
        json!({"id": refund["id"], "payment_id": id, "amount": 1200, "status": "succeeded"})
    );
    let after = server.payment(id).await;
    assert_eq!(after["status"], "refunded");
    assert_eq!(after["amount_refunded"], 1200);
    server
        .refund(id, None, Body::None)
        .await
        .expect_error(409, "already_refunded");

    // Partial refunds add up; more than what remains is refused.
    let partial = server
        .create(
            &key("r"),
            r#"{"amount":1000,"currency":"USD","card_token":"tok_visa"}"#,
        )
        .await;
    let id = partial["id"].as_str().unwrap();
    let first = server
        .refund(id, None, Body::Json(r#"{"amount":300}"#))
        .await
        .expect(201)
        .json();
    assert_eq!(first["amount"], 300);
    let mid = server.payment(id).await;
    assert_eq!(mid["status"], "captured");
    assert_eq!(mid["amount_refunded"], 300);
    let too_much = server
        .refund(id, None, Body::Json(r#"{"amount":701}"#))
        .await
        .expect_error(400, "invalid_request");
    assert!(
        too_much.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("amount")
    );
    server
        .refund(id, None, Body::Json(r#"{"amount":0}"#))
        .await
        .expect_error(400, "invalid_request");
    // The rest, by default.
    let rest = server.refund(id, None, Body::None).await.expect(201).json();
    assert_eq!(rest["amount"], 700);
    let done = server.payment(id).await;
    assert_eq!(done["status"], "refunded");
    assert_eq!(done["amount_refunded"], 1000);
    server
        .refund(id, None, Body::Json(r#"{"amount":1}"#))
        .await
        .expect_error(409, "already_refunded");
}

#[tokio::test]
async fn refunding_an_authorization_voids_it() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let payment = server
        .create(
            &key("void"),
            r#"{"amount":1200,"currency":"EUR","card_token":"tok_visa","capture":false}"#,
        )
        .await;
    let id = payment["id"].as_str().unwrap();
    let refund = server.refund(id, None, Body::None).await.expect(201).json();
    assert_eq!(refund["status"], "voided");
    assert_eq!(refund["payment_id"], id);
    assert_eq!(refund["amount"], 1200);
    let voided = server.payment(id).await;
    assert_eq!(voided["status"], "voided");
    assert_eq!(voided["amount_refunded"], 0);
    server
        .refund(id, None, Body::None)
        .await
        .expect_error(409, "invalid_state");
    server
        .post(&format!("/v1/payments/{id}/capture"), None, Body::None)
        .await
        .expect_error(409, "invalid_state");
}

#[tokio::test]
async fn list_is_newest_first_with_a_capped_limit() {
    let db = temp_db();
    let server = start(&db.path, Version::V2, None).await;
    let mut ids = Vec::new();
    for n in 1..=105 {
        let body = format!(r#"{{"amount":{n},"currency":"JPY","card_token":"tok_visa"}}"#);
        ids.push(server.create(&key("list"), &body).await["id"].clone());
    }
    ids.reverse();

    let ids_of = |list: Value| -> Vec<Value> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect()
    };
    let default = server.get("/v1/payments").await.expect(200).json();
    assert_eq!(ids_of(default), ids[..20]);
    let three = server.get("/v1/payments?limit=3").await.expect(200).json();
    assert_eq!(three["data"][0]["amount"], 105);
    assert_eq!(ids_of(three), ids[..3]);
    let capped = server
        .get("/v1/payments?limit=1000")
        .await
        .expect(200)
        .json();
    assert_eq!(ids_of(capped), ids[..100]);
    server
        .get("/v1/payments?limit=0")
        .await
        .expect_error(400, "invalid_request");
    server
        .get("/v1/payments?limit=abc")
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test]
async fn a_payment_survives_a_restart() {
    let db = temp_db();
    let first = start(&db.path, Version::V1, None).await;
    let payment = first.create(&key("restart"), VISA_JPY).await;
    let second: Server = start(&db.path, Version::V1, None).await;
    assert_eq!(
        second.payment(payment["id"].as_str().unwrap()).await,
        payment
    );
}
