//! Routes, handlers, authentication and idempotent replay.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;

use crate::Version;
use crate::db::{self, AmountColumns, Db, NewPayment, StoredResponse};
use crate::error::{ApiError, json_response};
use crate::fault::{self, CrashCounter, Fault};
use crate::model::{
    CardOutcome, CreateParams, Currency, Fields, MAX_TEXT_LEN, Payment, Refund, RefundParams,
    Status, to_json,
};

/// Default and maximum page size of `GET /v1/payments`.
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

/// Idempotency scopes: a key used to create a payment is unrelated to the same key on a refund.
const SCOPE_CREATE: &str = "payments.create";
const SCOPE_REFUND: &str = "payments.refund";
const SCOPE_CAPTURE: &str = "payments.capture";

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub db: Db,
    pub version: Version,
    pub fault: Option<Fault>,
    pub api_key: Arc<str>,
}

impl AppState {
    fn has_fault(&self, fault: Fault) -> bool {
        self.fault == Some(fault)
    }
}

/// The whole service. Fault middleware is only added when its fault is on, so a healthy
/// instance runs exactly the plain routes.
pub(crate) fn router(state: AppState, crash: Option<CrashCounter>) -> Router {
    let slow = state.has_fault(Fault::Slow);
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/v1/payments", post(create_payment).get(list_payments))
        .route("/v1/payments/{id}", get(get_payment))
        .route("/v1/payments/{id}/capture", post(capture_payment))
        .route("/v1/payments/{id}/refunds", post(refund_payment))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ))
        .with_state(state);
    if slow {
        router = router.layer(middleware::from_fn(fault::slow));
    }
    // Outermost, so it counts every request, 401s and 404s included.
    if let Some(counter) = crash {
        router = router.layer(middleware::from_fn_with_state(
            counter,
            fault::count_for_crash,
        ));
    }
    router
}

/// `/v1/*` needs `Authorization: Bearer <api key>`; `/health` and other paths do not.
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/v1" || path.starts_with("/v1/") {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok =
            presented.is_some_and(|key| constant_time_eq(key.as_bytes(), state.api_key.as_bytes()));
        if !ok {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so response timing does not reveal
/// how much of a guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (status, word) = if state.has_fault(Fault::Health500) {
        (StatusCode::INTERNAL_SERVER_ERROR, "error")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = to_json(&Health {
        status: word,
        version: state.version.as_str(),
    })?;
    Ok(json_response(status, body))
}

/// The `Idempotency-Key` header, if sent. An empty value counts as absent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidRequest("Idempotency-Key must be visible ASCII".to_owned()))?
        .trim();
    if key.len() > MAX_TEXT_LEN {
        return Err(ApiError::InvalidRequest(format!(
            "Idempotency-Key must be at most {MAX_TEXT_LEN} characters"
        )));
    }
    Ok((!key.is_empty()).then(|| key.to_owned()))
}

/// Axum's own rejections answer in plain text; these keep every answer JSON.
fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|e| ApiError::InvalidRequest(format!("bad path: {}", e.body_text())))
}

fn parse_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Fields, ApiError> {
    let body = body.map_err(|e| {
        ApiError::InvalidRequest(format!("cannot read the body: {}", e.body_text()))
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    Fields::parse(content_type, &body)
}

/// An idempotency key with the fingerprint of the request that carries it.
struct Claim {
    scope: &'static str,
    key: String,
    fingerprint: String,
}

/// An answer to send, fresh or replayed.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    replayed: bool,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, self.body);
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

/// Runs a write in one IMMEDIATE transaction, with idempotent replay when a key is given.
///
/// The key lookup, the work and the remembered response share the transaction, so two
/// requests with one key (even one on v1 and one on v2) cannot both do the work. Outcomes the
/// client caused (a decline, 404, 409) are committed and remembered like successes; server
/// failures roll back and are not remembered, so a retry can succeed.
async fn run_idempotent<F>(db: &Db, claim: Option<Claim>, op: F) -> Result<Answer, ApiError>
where
    F: FnOnce(&Connection) -> Result<(StatusCode, Vec<u8>), ApiError> + Send + 'static,
{
    db.call(move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(claim) = &claim
            && let Some(stored) = db::find_response(&tx, claim.scope, &claim.key)?
        {
            if stored.fingerprint != claim.fingerprint {
                return Err(ApiError::IdempotencyKeyReused(claim.key.clone()));
            }
            let status = StatusCode::from_u16(stored.status).map_err(|_| {
                ApiError::Internal(format!("stored status {} is not valid", stored.status))
            })?;
            return Ok(Answer {
                status,
                body: stored.body,
                replayed: true,
            });
        }
        let (status, body) = match op(&tx) {
            Ok(answer) => answer,
            Err(e) if !e.status().is_server_error() => (e.status(), e.body()),
            Err(e) => return Err(e),
        };
        if let Some(claim) = claim {
            let stored = StoredResponse {
                fingerprint: claim.fingerprint,
                status: status.as_u16(),
                body,
            };
            db::store_response(&tx, claim.scope, &claim.key, &stored)?;
            tx.commit()?;
            return Ok(Answer {
                status,
                body: stored.body,
                replayed: false,
            });
        }
        tx.commit()?;
        Ok(Answer {
            status,
            body,
            replayed: false,
        })
    })
    .await
}

/// Reads a payment as this version sees it.
fn load_payment(conn: &Connection, version: Version, id: &str) -> Result<Payment, ApiError> {
    let row = db::get_payment(conn, version, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no such payment: {id}")))?;
    Payment::from_row(row)
}

async fn create_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?.ok_or(ApiError::IdempotencyKeyRequired)?;
    let params = CreateParams::from_fields(&parse_body(&headers, body)?)?;
    let outcome = params.card_outcome()?;

    // Idempotency compares what the client asked for, before any fault rewrites the amount.
    let claim = (!state.has_fault(Fault::IdempotencyIgnored)).then(|| Claim {
        scope: SCOPE_CREATE,
        key,
        fingerprint: params.fingerprint(),
    });
    let amount = if state.has_fault(Fault::JpyScaled) && params.currency == Currency::Jpy {
        params
            .amount
            .checked_mul(100)
            .ok_or_else(|| ApiError::InvalidRequest("amount is too large".to_owned()))?
    } else {
        params.amount
    };
    let columns = match state.version {
        Version::V1 => AmountColumns::V1,
        Version::V2 if state.has_fault(Fault::ContractMigration) => AmountColumns::MinorOnly,
        Version::V2 => AmountColumns::Both,
    };
    let status = match (outcome, params.capture) {
        (CardOutcome::Decline, _) => Status::Declined,
        (CardOutcome::Approve, true) => Status::Captured,
        (CardOutcome::Approve, false) => Status::Authorized,
    };
    let version = state.version;

    let answer = run_idempotent(&state.db, claim, move |conn| {
        let id = db::new_id(conn, "pay")?;
        db::insert_payment(
            conn,
            columns,
            &NewPayment {
                id: &id,
                amount,
                currency: params.currency,
                status,
                created_by: version,
                // v1 accepts `reference` (it is part of the request contract) but has no column.
                reference: match version {
                    Version::V1 => None,
                    Version::V2 => params.reference.as_deref(),
                },
            },
        )?;
        if status == Status::Declined {
            return Err(ApiError::CardDeclined { payment_id: id });
        }
        // Answer with the row as stored and as this version reads it back.
        let payment = load_payment(conn, version, &id)?;
        Ok((StatusCode::CREATED, to_json(&payment)?))
    })
    .await?;
    Ok(answer.into_response())
}

async fn get_payment(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let version = state.version;
    let payment = state
        .db
        .call(move |conn| load_payment(conn, version, &id))
        .await?;
    Ok(json_response(StatusCode::OK, to_json(&payment)?))
}

/// `?limit=N`: default 20, values above 100 are capped at 100, anything not a positive
/// integer is an error.
fn parse_limit(query: Option<&str>) -> Result<u32, ApiError> {
    let Some(query) = query else {
        return Ok(DEFAULT_LIMIT);
    };
    let Some((_, value)) =
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "limit")
    else {
        return Ok(DEFAULT_LIMIT);
    };
    let invalid = || ApiError::InvalidRequest("limit must be a positive integer".to_owned());
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Digits only, so a parse failure can only mean "huge": cap it like any large limit.
    let limit = value.parse::<u64>().unwrap_or(u64::MAX);
    if limit == 0 {
        return Err(invalid());
    }
    Ok(u32::try_from(limit.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT))
}

#[derive(Serialize)]
struct List {
    data: Vec<Payment>,
}

async fn list_payments(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = parse_limit(query.as_deref())?;
    let version = state.version;
    let data = state
        .db
        .call(move |conn| {
            db::list_payments(conn, version, limit)?
                .into_iter()
                .map(Payment::from_row)
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(json_response(StatusCode::OK, to_json(&List { data })?))
}

/// Captures an authorised payment. An optional `Idempotency-Key` replays the first answer, so a
/// retried client (a re-run hook) sees the capture it already made instead of a 409.
async fn capture_payment(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let claim = idempotency_key(&headers)?.map(|key| Claim {
        scope: SCOPE_CAPTURE,
        key,
        fingerprint: format!("capture:{id}"),
    });
    let version = state.version;
    let answer = run_idempotent(&state.db, claim, move |conn| {
        let payment = load_payment(conn, version, &id)?;
        if payment.status != Status::Authorized {
            return Err(ApiError::InvalidState(format!(
                "payment {id} is {}; only authorized payments can be captured",
                payment.status.as_str()
            )));
        }
        db::set_status(conn, &id, Status::Captured)?;
        let payment = load_payment(conn, version, &id)?;
        Ok((StatusCode::OK, to_json(&payment)?))
    })
    .await?;
    Ok(answer.into_response())
}

async fn refund_payment(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    if state.has_fault(Fault::RefundsFail) {
        return Err(ApiError::Internal(
            "refunds are failing (fault: refunds-fail)".to_owned(),
        ));
    }
    let key = idempotency_key(&headers)?;
    let params = RefundParams::from_fields(id, &parse_body(&headers, body)?)?;
    let claim = key.map(|key| Claim {
        scope: SCOPE_REFUND,
        key,
        fingerprint: params.fingerprint(),
    });
    let version = state.version;
    let answer = run_idempotent(&state.db, claim, move |conn| {
        let refund = refund(conn, version, &params)?;
        Ok((StatusCode::CREATED, to_json(&refund)?))
    })
    .await?;
    Ok(answer.into_response())
}

/// Refunds a captured payment (in part or in full), or voids an authorised one.
fn refund(conn: &Connection, version: Version, params: &RefundParams) -> Result<Refund, ApiError> {
    let id = params.payment_id.as_str();
    let row = db::get_payment(conn, version, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no such payment: {id}")))?;
    // Refusals depend on the status alone, so they come before the amount is read: v1 can
    // still say "already refunded" about a row a contract step wrote (an amount it cannot
    // read), which is what cleanup through blue relies on. Moving money needs the amount.
    let (amount, refund_status) = match row.status()? {
        Status::Refunded => return Err(ApiError::AlreadyRefunded(id.to_owned())),
        status @ (Status::Declined | Status::Voided) => {
            return Err(ApiError::InvalidState(format!(
                "payment {id} is {} and cannot be refunded",
                status.as_str()
            )));
        }
        Status::Captured => {
            let payment = Payment::from_row(row)?;
            let remaining = payment.amount - payment.amount_refunded;
            if remaining <= 0 {
                return Err(ApiError::AlreadyRefunded(id.to_owned()));
            }
            let amount = params.amount.unwrap_or(remaining);
            if amount > remaining {
                return Err(ApiError::InvalidRequest(format!(
                    "amount {amount} exceeds the {remaining} left to refund on payment {id}"
                )));
            }
            let refunded = payment.amount_refunded + amount;
            let status = if refunded >= payment.amount {
                Status::Refunded
            } else {
                Status::Captured
            };
            db::set_refunded(conn, id, refunded, status)?;
            (amount, "succeeded")
        }
        // Nothing was captured, so the whole authorisation is released whatever amount was
        // asked for (it is still checked against the payment); money refunded stays 0.
        Status::Authorized => {
            let payment = Payment::from_row(row)?;
            if params.amount.is_some_and(|a| a > payment.amount) {
                return Err(ApiError::InvalidRequest(format!(
                    "amount exceeds the payment's {}",
                    payment.amount
                )));
            }
            db::set_status(conn, id, Status::Voided)?;
            (payment.amount, "voided")
        }
    };
    let refund_id = db::new_id(conn, "re")?;
    db::insert_refund(conn, &refund_id, id, amount, refund_status, version)?;
    Ok(Refund {
        id: refund_id,
        payment_id: id.to_owned(),
        amount,
        status: refund_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 20);
        assert_eq!(parse_limit(Some("")).unwrap(), 20);
        assert_eq!(parse_limit(Some("other=1")).unwrap(), 20);
        assert_eq!(parse_limit(Some("limit=5")).unwrap(), 5);
        assert_eq!(parse_limit(Some("limit=100")).unwrap(), 100);
        assert_eq!(parse_limit(Some("limit=101")).unwrap(), 100);
        assert_eq!(
            parse_limit(Some("limit=99999999999999999999999")).unwrap(),
            100
        );
        for bad in ["limit=0", "limit=-1", "limit=x", "limit=", "limit=1.5"] {
            let e = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
            assert!(e.to_string().contains("limit"), "{bad}");
        }
    }

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"sk_test", b"sk_test"));
        assert!(!constant_time_eq(b"sk_test", b"sk_tesT"));
        assert!(!constant_time_eq(b"sk_test", b"sk_test_longer"));
    }

    #[test]
    fn idempotency_keys_are_trimmed_and_bounded() {
        let mut h = HeaderMap::new();
        assert_eq!(idempotency_key(&h).unwrap(), None);
        h.insert("idempotency-key", HeaderValue::from_static("  "));
        assert_eq!(idempotency_key(&h).unwrap(), None);
        h.insert("idempotency-key", HeaderValue::from_static(" k1 "));
        assert_eq!(idempotency_key(&h).unwrap().as_deref(), Some("k1"));
        h.insert(
            "idempotency-key",
            HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        );
        assert_eq!(idempotency_key(&h).unwrap_err().code(), "invalid_request");
    }
}
