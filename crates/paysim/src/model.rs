//! Payments, refunds and request parameters: parsing, canonical forms and the JSON shapes.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Longest `reference` and `Idempotency-Key` accepted; longer values are rejected, not cut.
pub(crate) const MAX_TEXT_LEN: usize = 255;

/// The currencies paysim knows, with their minor-unit rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Currency {
    /// Japanese yen: no minor unit, 1200 means ¥1,200.
    #[serde(rename = "JPY")]
    Jpy,
    /// US dollar: two decimals, 1200 means $12.00.
    #[serde(rename = "USD")]
    Usd,
    /// Euro: two decimals, 1200 means €12.00.
    #[serde(rename = "EUR")]
    Eur,
}

impl Currency {
    /// Parses a currency code in any case (`jpy`, `JPY`).
    pub fn parse(code: &str) -> Option<Self> {
        match code.to_ascii_uppercase().as_str() {
            "JPY" => Some(Self::Jpy),
            "USD" => Some(Self::Usd),
            "EUR" => Some(Self::Eur),
            _ => None,
        }
    }

    /// The upper-case ISO code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            Self::Jpy => "JPY",
            Self::Usd => "USD",
            Self::Eur => "EUR",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// `1234567` → `"1,234,567"`.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The human form of an amount in minor units: `¥1,200`, `$12.00`, `€1,234.50`.
pub fn display_amount(amount: i64, currency: Currency) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    match currency {
        Currency::Jpy => format!("{sign}¥{}", group_thousands(abs)),
        Currency::Usd => format!("{sign}${}.{:02}", group_thousands(abs / 100), abs % 100),
        Currency::Eur => format!("{sign}€{}.{:02}", group_thousands(abs / 100), abs % 100),
    }
}

/// A payment's lifecycle state, stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Authorised, not captured yet (`capture: false`).
    Authorized,
    /// Captured; may be partially refunded.
    Captured,
    /// Fully refunded.
    Refunded,
    /// Authorisation released before capture.
    Voided,
    /// The card was declined.
    Declined,
}

impl Status {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
            Self::Declined => "declined",
        }
    }

    /// The inverse of [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorized" => Some(Self::Authorized),
            "captured" => Some(Self::Captured),
            "refunded" => Some(Self::Refunded),
            "voided" => Some(Self::Voided),
            "declined" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// A payment row as stored; `amount` is `None` when the row was written by a contract step
/// that only fills `amount_minor` (and this version cannot fall back to it).
#[derive(Debug, Clone)]
pub(crate) struct PaymentRow {
    pub id: String,
    pub amount: Option<i64>,
    pub currency: String,
    pub status: String,
    pub amount_refunded: i64,
    pub created_by: String,
    /// `None` for v1, which has no such column; `Some(None)` for a v2 row without a reference.
    pub reference: Option<Option<String>>,
}

impl PaymentRow {
    /// The stored status, readable even when the amount is not (see the refund route).
    pub(crate) fn status(&self) -> Result<Status, ApiError> {
        Status::parse(&self.status).ok_or_else(|| {
            ApiError::CorruptRow(format!(
                "payment {} has an unknown status {:?}",
                self.id, self.status
            ))
        })
    }
}

/// The payment object of the API.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    /// `pay_` and 16 lower-case hex digits.
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// Upper-case ISO code.
    pub currency: Currency,
    /// Lifecycle state.
    pub status: Status,
    /// Minor units refunded so far.
    pub amount_refunded: i64,
    /// The amount for humans, e.g. `¥1,200`.
    pub display_amount: String,
    /// The version (`v1`/`v2`) that created the row.
    pub created_by: String,
    /// v2 only: the caller's reference, or null. v1 leaves the key out entirely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Option<String>>,
}

impl Payment {
    /// Turns a stored row into the API object, or `corrupt_row` if this version cannot
    /// make sense of it.
    pub(crate) fn from_row(row: PaymentRow) -> Result<Self, ApiError> {
        let Some(amount) = row.amount else {
            return Err(ApiError::CorruptRow(format!(
                "payment {} lacks `amount` (it was written by a newer schema)",
                row.id
            )));
        };
        let currency = Currency::parse(&row.currency).ok_or_else(|| {
            ApiError::CorruptRow(format!(
                "payment {} has an unknown currency {:?}",
                row.id, row.currency
            ))
        })?;
        let status = row.status()?;
        Ok(Self {
            display_amount: display_amount(amount, currency),
            id: row.id,
            amount,
            currency,
            status,
            amount_refunded: row.amount_refunded,
            created_by: row.created_by,
            reference: row.reference,
        })
    }
}

/// A refund (or void) record as the API returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    /// `re_` and 16 lower-case hex digits.
    pub id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// Minor units.
    pub amount: i64,
    /// `succeeded` for a refund of a captured payment, `voided` for a released authorisation.
    pub status: &'static str,
}

/// Request parameters, whichever way they were encoded. JSON keeps its types; form values
/// are all strings and are converted field by field.
#[derive(Debug)]
pub(crate) enum Fields {
    Json(serde_json::Map<String, Value>),
    Form(Vec<(String, String)>),
}

enum Field<'a> {
    Json(&'a Value),
    Form(&'a str),
}

impl Fields {
    /// Decodes a body by its content type. An empty body is valid and has no fields (the
    /// refund route's body is optional). A body without a content type is read as JSON.
    pub(crate) fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::Form(Vec::new()));
        }
        let essence = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|ct| ct.trim().to_ascii_lowercase());
        match essence.as_deref() {
            None | Some("application/json") => {
                let value: Value = serde_json::from_slice(body).map_err(|e| {
                    ApiError::InvalidRequest(format!("the body is not valid JSON: {e}"))
                })?;
                match value {
                    Value::Object(map) => Ok(Self::Json(map)),
                    _ => Err(ApiError::InvalidRequest(
                        "the body must be a JSON object".to_owned(),
                    )),
                }
            }
            Some("application/x-www-form-urlencoded") => Ok(Self::Form(
                url::form_urlencoded::parse(body).into_owned().collect(),
            )),
            Some(other) => Err(ApiError::InvalidRequest(format!(
                "unsupported content-type {other:?}: send application/json or application/x-www-form-urlencoded"
            ))),
        }
    }

    /// A field's value; JSON `null` counts as absent.
    fn get(&self, name: &str) -> Option<Field<'_>> {
        match self {
            Self::Json(map) => map.get(name).filter(|v| !v.is_null()).map(Field::Json),
            Self::Form(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| Field::Form(v.as_str())),
        }
    }

    /// A positive integer amount in minor units, if present.
    fn amount(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let invalid = || {
            ApiError::InvalidRequest(format!("{name} must be a positive integer in minor units"))
        };
        let n = match self.get(name) {
            None => return Ok(None),
            Some(Field::Json(v)) => v.as_i64().ok_or_else(invalid)?,
            // Digits only: `i64::from_str` would also take a leading `+`.
            Some(Field::Form(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<i64>().map_err(|_| invalid())?
            }
            Some(Field::Form(_)) => return Err(invalid()),
        };
        if n > 0 { Ok(Some(n)) } else { Err(invalid()) }
    }

    fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Field::Json(Value::String(s))) => Ok(Some(s.as_str())),
            Some(Field::Form(s)) => Ok(Some(s)),
            Some(Field::Json(_)) => {
                Err(ApiError::InvalidRequest(format!("{name} must be a string")))
            }
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        let invalid = || ApiError::InvalidRequest(format!("{name} must be true or false"));
        match self.get(name) {
            None => Ok(None),
            Some(Field::Json(Value::Bool(b))) => Ok(Some(*b)),
            Some(Field::Form("true")) => Ok(Some(true)),
            Some(Field::Form("false")) => Ok(Some(false)),
            Some(_) => Err(invalid()),
        }
    }
}

/// What the card token says will happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CardOutcome {
    Approve,
    Decline,
}

/// The validated parameters of `POST /v1/payments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateParams {
    pub amount: i64,
    pub currency: Currency,
    pub card_token: String,
    pub capture: bool,
    pub reference: Option<String>,
}

impl CreateParams {
    pub(crate) fn from_fields(fields: &Fields) -> Result<Self, ApiError> {
        let amount = fields
            .amount("amount")?
            .ok_or_else(|| ApiError::InvalidRequest("amount is required".to_owned()))?;
        let currency_code = fields
            .string("currency")?
            .ok_or_else(|| ApiError::InvalidRequest("currency is required".to_owned()))?;
        let currency = Currency::parse(currency_code).ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "currency {currency_code:?} is not supported: use JPY, USD or EUR"
            ))
        })?;
        let card_token = fields
            .string("card_token")?
            .ok_or_else(|| ApiError::InvalidRequest("card_token is required".to_owned()))?
            .to_owned();
        let capture = fields.boolean("capture")?.unwrap_or(true);
        let reference = fields.string("reference")?.map(str::to_owned);
        if reference.as_ref().is_some_and(|r| r.len() > MAX_TEXT_LEN) {
            return Err(ApiError::InvalidRequest(format!(
                "reference must be at most {MAX_TEXT_LEN} bytes"
            )));
        }
        let params = Self {
            amount,
            currency,
            card_token,
            capture,
            reference,
        };
        // Validate the token here so an unknown token is a request error, not an outcome.
        params.card_outcome()?;
        Ok(params)
    }

    pub(crate) fn card_outcome(&self) -> Result<CardOutcome, ApiError> {
        match self.card_token.as_str() {
            "tok_visa" | "tok_mastercard" => Ok(CardOutcome::Approve),
            "tok_decline" => Ok(CardOutcome::Decline),
            other => Err(ApiError::InvalidCardToken(other.to_owned())),
        }
    }

    /// The digest idempotency compares. Built from the parsed values, so JSON and form
    /// bodies, `jpy` and `JPY`, and an omitted vs explicit `capture: true` all match.
    /// `reference` is included for both versions (v1 accepts and drops it) so a key
    /// behaves the same whichever version answers.
    pub(crate) fn fingerprint(&self) -> String {
        let mut canonical = BTreeMap::new();
        canonical.insert("amount", Value::from(self.amount));
        canonical.insert("currency", Value::from(self.currency.code()));
        canonical.insert("card_token", Value::from(self.card_token.as_str()));
        canonical.insert("capture", Value::from(self.capture));
        canonical.insert(
            "reference",
            self.reference.as_deref().map_or(Value::Null, Value::from),
        );
        fingerprint(&canonical)
    }
}

/// The validated parameters of `POST /v1/payments/{id}/refunds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefundParams {
    pub payment_id: String,
    /// `None` refunds whatever remains.
    pub amount: Option<i64>,
}

impl RefundParams {
    pub(crate) fn from_fields(payment_id: String, fields: &Fields) -> Result<Self, ApiError> {
        Ok(Self {
            payment_id,
            amount: fields.amount("amount")?,
        })
    }

    /// Includes the payment id: reusing a refund key on another payment is a different request.
    pub(crate) fn fingerprint(&self) -> String {
        let mut canonical = BTreeMap::new();
        canonical.insert("payment_id", Value::from(self.payment_id.as_str()));
        canonical.insert("amount", self.amount.map_or(Value::Null, Value::from));
        fingerprint(&canonical)
    }
}

/// sha256 (hex) of the JSON of a sorted map: a `BTreeMap` serialises in key order whatever
/// serde_json features other crates turn on.
fn fingerprint(canonical: &BTreeMap<&str, Value>) -> String {
    let json = serde_json::to_string(canonical).unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON of an API object; these are plain structs, so serialising cannot fail.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("cannot serialise the response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_amounts() {
        assert_eq!(display_amount(1200, Currency::Jpy), "¥1,200");
        assert_eq!(display_amount(5, Currency::Jpy), "¥5");
        assert_eq!(display_amount(1_234_567, Currency::Jpy), "¥1,234,567");
        assert_eq!(display_amount(120_000, Currency::Jpy), "¥120,000");
        assert_eq!(display_amount(1200, Currency::Usd), "$12.00");
        assert_eq!(display_amount(5, Currency::Usd), "$0.05");
        assert_eq!(display_amount(123_456_789, Currency::Usd), "$1,234,567.89");
        assert_eq!(display_amount(1200, Currency::Eur), "€12.00");
        assert_eq!(display_amount(100_050, Currency::Eur), "€1,000.50");
        assert_eq!(display_amount(-1200, Currency::Usd), "-$12.00");
    }

    #[test]
    fn currencies_parse_in_any_case() {
        assert_eq!(Currency::parse("jpy"), Some(Currency::Jpy));
        assert_eq!(Currency::parse("Usd"), Some(Currency::Usd));
        assert_eq!(Currency::parse("EUR"), Some(Currency::Eur));
        assert_eq!(Currency::parse("GBP"), None);
    }

    fn json(text: &str) -> Fields {
        Fields::parse(Some("application/json"), text.as_bytes()).unwrap()
    }

    fn form(text: &str) -> Fields {
        Fields::parse(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            text.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn json_and_form_bodies_give_the_same_params_and_fingerprint() {
        let a = CreateParams::from_fields(&json(
            r#"{"amount":1200,"currency":"jpy","card_token":"tok_visa","capture":false}"#,
        ))
        .unwrap();
        let b = CreateParams::from_fields(&form(
            "amount=1200&currency=JPY&card_token=tok_visa&capture=false",
        ))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.currency, Currency::Jpy);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn fingerprint_ignores_key_order_and_defaults_but_not_values() {
        let base = CreateParams::from_fields(&json(
            r#"{"amount":1200,"currency":"USD","card_token":"tok_visa"}"#,
        ))
        .unwrap();
        let reordered = CreateParams::from_fields(&json(
            r#"{"capture":true,"card_token":"tok_visa","currency":"usd","amount":1200}"#,
        ))
        .unwrap();
        assert_eq!(base.fingerprint(), reordered.fingerprint());
        for other in [
            r#"{"amount":1201,"currency":"USD","card_token":"tok_visa"}"#,
            r#"{"amount":1200,"currency":"EUR","card_token":"tok_visa"}"#,
            r#"{"amount":1200,"currency":"USD","card_token":"tok_mastercard"}"#,
            r#"{"amount":1200,"currency":"USD","card_token":"tok_visa","capture":false}"#,
            r#"{"amount":1200,"currency":"USD","card_token":"tok_visa","reference":"r1"}"#,
        ] {
            let p = CreateParams::from_fields(&json(other)).unwrap();
            assert_ne!(base.fingerprint(), p.fingerprint(), "{other}");
        }
    }

    #[test]
    fn refund_fingerprint_covers_payment_and_amount() {
        let empty = Fields::parse(None, b"").unwrap();
        let full = RefundParams::from_fields("pay_a".into(), &empty).unwrap();
        let other_payment = RefundParams::from_fields("pay_b".into(), &empty).unwrap();
        let partial = RefundParams::from_fields("pay_a".into(), &json(r#"{"amount":5}"#)).unwrap();
        assert_eq!(full.amount, None);
        assert_eq!(partial.amount, Some(5));
        assert_ne!(full.fingerprint(), other_payment.fingerprint());
        assert_ne!(full.fingerprint(), partial.fingerprint());
    }

    fn create_error(fields: Fields) -> (String, String) {
        let e = CreateParams::from_fields(&fields).unwrap_err();
        (e.code().to_owned(), e.to_string())
    }

    #[test]
    fn invalid_params_name_the_field() {
        let cases = [
            (r#"{"currency":"JPY","card_token":"tok_visa"}"#, "amount"),
            (
                r#"{"amount":0,"currency":"JPY","card_token":"tok_visa"}"#,
                "amount",
            ),
            (
                r#"{"amount":-5,"currency":"JPY","card_token":"tok_visa"}"#,
                "amount",
            ),
            (
                r#"{"amount":12.5,"currency":"JPY","card_token":"tok_visa"}"#,
                "amount",
            ),
            (
                r#"{"amount":"1200","currency":"JPY","card_token":"tok_visa"}"#,
                "amount",
            ),
            (r#"{"amount":1200,"card_token":"tok_visa"}"#, "currency"),
            (
                r#"{"amount":1200,"currency":"GBP","card_token":"tok_visa"}"#,
                "currency",
            ),
            (
                r#"{"amount":1200,"currency":7,"card_token":"tok_visa"}"#,
                "currency",
            ),
            (r#"{"amount":1200,"currency":"JPY"}"#, "card_token"),
            (
                r#"{"amount":1200,"currency":"JPY","card_token":"tok_visa","capture":"yes"}"#,
                "capture",
            ),
        ];
        for (body, field) in cases {
            let (code, message) = create_error(json(body));
            assert_eq!(code, "invalid_request", "{body}");
            assert!(message.contains(field), "{body}: {message}");
        }
        let (code, message) = create_error(form("amount=%2B5&currency=JPY&card_token=tok_visa"));
        assert_eq!(code, "invalid_request");
        assert!(message.contains("amount"), "{message}");
        let (code, message) =
            create_error(form("amount=5&currency=JPY&card_token=tok_visa&capture=1"));
        assert_eq!(code, "invalid_request");
        assert!(message.contains("capture"), "{message}");
    }

    #[test]
    fn unknown_card_tokens_are_their_own_error() {
        let (code, _) = create_error(json(
            r#"{"amount":1,"currency":"JPY","card_token":"tok_amex"}"#,
        ));
        assert_eq!(code, "invalid_card_token");
        let p = CreateParams::from_fields(&json(
            r#"{"amount":1,"currency":"JPY","card_token":"tok_decline"}"#,
        ))
        .unwrap();
        assert_eq!(p.card_outcome().unwrap(), CardOutcome::Decline);
    }

    #[test]
    fn bodies_are_decoded_by_content_type() {
        assert!(matches!(Fields::parse(None, b"  \n").unwrap(), Fields::Form(f) if f.is_empty()));
        assert!(matches!(
            Fields::parse(None, br#"{"a":1}"#).unwrap(),
            Fields::Json(_)
        ));
        for (ct, body) in [
            (Some("application/json"), "not json"),
            (Some("application/json"), "[1]"),
            (Some("text/plain"), "amount=1"),
        ] {
            let e = Fields::parse(ct, body.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{ct:?} {body}");
        }
    }

    #[test]
    fn rows_without_amount_are_corrupt() {
        let row = PaymentRow {
            id: "pay_1".into(),
            amount: None,
            currency: "JPY".into(),
            status: "captured".into(),
            amount_refunded: 0,
            created_by: "v2".into(),
            reference: None,
        };
        let e = Payment::from_row(row).unwrap_err();
        assert_eq!(e.code(), "corrupt_row");
        assert!(e.to_string().contains("`amount`"), "{e}");
        assert!(e.to_string().contains("newer schema"), "{e}");
    }

    #[test]
    fn v1_objects_omit_reference_and_v2_objects_show_null() {
        let row = |reference| PaymentRow {
            id: "pay_1".into(),
            amount: Some(1200),
            currency: "JPY".into(),
            status: "captured".into(),
            amount_refunded: 0,
            created_by: "v1".into(),
            reference,
        };
        let v1 = serde_json::to_value(Payment::from_row(row(None)).unwrap()).unwrap();
        assert!(v1.get("reference").is_none());
        assert_eq!(v1["display_amount"], "¥1,200");
        let v2 = serde_json::to_value(Payment::from_row(row(Some(None))).unwrap()).unwrap();
        assert_eq!(v2["reference"], Value::Null);
    }
}
