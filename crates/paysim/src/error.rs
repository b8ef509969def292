//! The API's error type and its JSON shape: `{"error": {"code": "...", "message": "..."}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a request can fail with. Each variant maps to one HTTP status and one
/// stable `code` string that clients (and greenlight's suite) match on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer <key>` header, or the wrong key.
    #[error("a valid API key is required: send Authorization: Bearer <key>")]
    Unauthorized,
    /// A parameter is missing or malformed; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),
    /// `POST /v1/payments` without an `Idempotency-Key` header.
    #[error("the Idempotency-Key header is required to create a payment")]
    IdempotencyKeyRequired,
    /// The idempotency key was first used with different parameters.
    #[error("Idempotency-Key {0:?} was already used with different parameters")]
    IdempotencyKeyReused(String),
    /// A `card_token` that is not one of the test tokens.
    #[error(
        "card_token {0:?} is not a known test token (use tok_visa, tok_mastercard or tok_decline)"
    )]
    InvalidCardToken(String),
    /// The card was declined; the declined payment was still recorded.
    #[error("the card was declined")]
    CardDeclined {
        /// The id of the stored payment with status `declined`.
        payment_id: String,
    },
    /// No such payment (or route).
    #[error("{0}")]
    NotFound(String),
    /// The operation does not apply to the payment's current status.
    #[error("{0}")]
    InvalidState(String),
    /// The payment has nothing left to refund.
    #[error("payment {0} is already fully refunded")]
    AlreadyRefunded(String),
    /// A stored row this version cannot read (written by a newer schema).
    #[error("{0}")]
    CorruptRow(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A failure on our side whose message is safe to show (e.g. an injected fault).
    #[error("{0}")]
    Internal(String),
    /// A database failure; the detail is logged, not shown to the client.
    #[error("database error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// A blocking task panicked or was cancelled; logged, not shown.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The inner object of an error body. `payment_id` only appears on declines.
#[derive(Serialize)]
struct ErrorObject<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) | Self::IdempotencyKeyRequired | Self::InvalidCardToken(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::CardDeclined { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidState(_) | Self::AlreadyRefunded(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::CorruptRow(_) | Self::Internal(_) | Self::Storage(_) | Self::Task(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidRequest(_) => "invalid_request",
            Self::IdempotencyKeyRequired => "idempotency_key_required",
            Self::IdempotencyKeyReused(_) => "idempotency_key_reused",
            Self::InvalidCardToken(_) => "invalid_card_token",
            Self::CardDeclined { .. } => "card_declined",
            Self::NotFound(_) => "not_found",
            Self::InvalidState(_) => "invalid_state",
            Self::AlreadyRefunded(_) => "already_refunded",
            Self::CorruptRow(_) => "corrupt_row",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) | Self::Storage(_) | Self::Task(_) => "internal",
        }
    }

    /// The message clients see. Storage and task failures stay generic: their detail can
    /// leak SQL or paths, so it goes to the log instead.
    fn public_message(&self) -> String {
        match self {
            Self::Storage(_) | Self::Task(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// The JSON body bytes. Used both for live answers and for storing idempotent replays,
    /// so a replay can return exactly the same bytes.
    pub fn body(&self) -> Vec<u8> {
        let payment_id = match self {
            Self::CardDeclined { payment_id } => Some(payment_id.as_str()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code(),
                message: self.public_message(),
                payment_id,
            },
        };
        // Serialising a struct of strings cannot fail; fall back to a fixed body rather than panic.
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), "{self}");
        }
        let mut response = json_response(status, self.body());
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A response with a ready-made JSON body.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_body_carries_the_payment_id() {
        let e = ApiError::CardDeclined {
            payment_id: "pay_0123456789abcdef".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "card_declined");
        assert_eq!(v["error"]["payment_id"], "pay_0123456789abcdef");
        assert_eq!(e.status(), StatusCode::PAYMENT_REQUIRED);
    }

    #[test]
    fn other_errors_have_code_and_message_only() {
        let e = ApiError::InvalidRequest("amount is required".into());
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "invalid_request", "message": "amount is required"}})
        );
    }

    #[test]
    fn storage_errors_do_not_leak_detail() {
        let e = ApiError::Storage(rusqlite::Error::InvalidQuery);
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "internal");
        assert_eq!(v["error"]["message"], "internal error");
    }
}
