//! Keeping secrets in the process: every message that leaves (log line, report, CodeDeploy call)
//! passes through a [`Redactor`].

/// What replaces a secret.
pub(crate) const MASK: &str = "[REDACTED]";

/// Header names whose values are credentials wherever they appear.
pub(crate) const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// Whether a header's value must never be shown.
pub(crate) fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|sensitive| name.eq_ignore_ascii_case(sensitive))
}

/// Masks known secret values, in every form they take on the way out, and anything shaped like
/// a payment card number.
///
/// A secret is registered with its escaped and encoded forms (as GitHub's Actions runner does
/// for its secrets): JSON-escaped, Rust-debug-escaped, percent-encoded as a URL path segment,
/// query component or form field, and base64 (standard and URL-safe) at each of the three
/// byte offsets it can sit at inside a longer encoded string (`user:password` in a Basic
/// header). Callers scrub raw text before they quote, escape or cut it.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first, so a token is masked whole before any
    /// shorter secret inside it.
    forms: Vec<String>,
}

/// Forms shorter than this are not masked: masking every `ab` in a message would hide more
/// than it protects.
const MIN_FORM: usize = 4;

impl Redactor {
    /// A redactor that knows these secret values.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut redactor = Redactor::default();
        redactor.learn(secrets);
        redactor
    }

    /// Learn more secret values (a rendered credential header, a captured session token).
    pub fn learn(&mut self, secrets: impl IntoIterator<Item = String>) {
        let mut all: std::collections::BTreeSet<String> =
            std::mem::take(&mut self.forms).into_iter().collect();
        for secret in secrets {
            for value in [secret.as_str(), secret.trim()] {
                all.extend(forms(value).into_iter().filter(|f| f.len() >= MIN_FORM));
            }
        }
        self.forms = all.into_iter().collect();
        self.forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    }

    /// Learn a request header's value if it is a credential: the whole value and, for
    /// `Bearer x`/`Basic x`, the token alone (servers echo either).
    pub fn learn_header(&mut self, name: &str, value: &str) {
        if is_sensitive_header(name) {
            let mut values = vec![value.to_owned()];
            if let Some((_, token)) = value.split_once(' ') {
                values.push(token.to_owned());
            }
            self.learn(values);
        }
    }

    /// Learn the credential values of a request about to be sent: whatever filled them (a
    /// literal, a filter, a captured token), they are secrets for the rest of the run.
    pub fn learn_request(&mut self, headers: &http::HeaderMap) {
        for (name, value) in headers {
            self.learn_header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
        }
    }

    /// Learn the credential values written literally among request headers.
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        for (name, value) in headers {
            // A templated value (`Bearer {{secrets.api_key}}`) is learned when it is rendered.
            if !crate::template::is_template(value) {
                self.learn_header(name, value);
            }
        }
        self
    }

    /// The text with every known secret (in every registered form) and every
    /// card-number-like digit run masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), MASK);
            }
        }
        mask_card_numbers(&out)
    }
}

/// The forms a secret takes in what greenlight writes: as is, escaped as a JSON string or by
/// Rust's `{:?}`, percent-encoded the ways requests encode values, and base64.
fn forms(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let quoted = |text: String| text[1..text.len() - 1].to_owned();
    let mut out = vec![
        secret.to_owned(),
        quoted(serde_json::Value::from(secret).to_string()),
        quoted(format!("{secret:?}")),
        crate::template::encode_path_segment(secret),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ];
    out.extend(base64_forms(secret.as_bytes()));
    out
}

/// The part of `base64(prefix + secret)` that depends on the secret alone, for each prefix
/// length 0, 1, 2: whatever sits before it in an encoded string, one of these appears.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        let first = (offset * 8).div_ceil(6);
        let last = (bytes.len() * 8) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if first < last && last <= encoded.len() {
                out.push(encoded[first..last].to_owned());
            }
        }
    }
    out
}

/// Mask runs of 13–19 digits (spaces or dashes between groups allowed) that pass the Luhn check:
/// a PAN in a response body or error must never reach CloudWatch.
fn mask_card_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            // Grow a candidate: digits, with single separators between them.
            let mut j = i;
            let mut digits = Vec::new();
            let mut end = i;
            while j < bytes.len() {
                let b = bytes[j];
                if b.is_ascii_digit() {
                    digits.push(b - b'0');
                    end = j + 1;
                    j += 1;
                } else if (b == b' ' || b == b'-')
                    && j + 1 < bytes.len()
                    && bytes[j + 1].is_ascii_digit()
                {
                    j += 1;
                } else {
                    break;
                }
                if digits.len() > 19 {
                    break;
                }
            }
            let bounded = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if bounded && (13..=19).contains(&digits.len()) && luhn(&digits) {
                out.push_str(&text[copied..i]);
                out.push_str("[CARD]");
                copied = end;
                i = end;
                continue;
            }
            // Skip the whole digit run so its tail is not re-examined as a new number.
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &d)| {
            let d = u32::from(d);
            if index % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_secrets_longest_first() {
        let r = Redactor::new(["sk_test_abcdef".to_owned(), "abcdef".to_owned()]);
        assert_eq!(
            r.scrub("key=sk_test_abcdef; x=abcdef"),
            "key=[REDACTED]; x=[REDACTED]"
        );
    }

    #[test]
    fn learns_bearer_tokens_from_headers() {
        let headers = [
            ("Authorization", "Bearer sk_test_123456"),
            ("X-Probe", "greenlight"),
        ];
        let r = Redactor::default().with_headers(headers);
        assert_eq!(r.scrub("got token sk_test_123456"), "got token [REDACTED]");
        assert_eq!(r.scrub("probe greenlight"), "probe greenlight");
    }

    #[test]
    fn masks_card_numbers_but_not_other_numbers() {
        let r = Redactor::default();
        assert_eq!(r.scrub("card 4242424242424242 ok"), "card [CARD] ok");
        assert_eq!(r.scrub("card 4000 0000 0000 0002."), "card [CARD].");
        assert_eq!(
            r.scrub("{\"pan\":\"5555-5555-5555-4444\"}"),
            "{\"pan\":\"[CARD]\"}"
        );
        // Not Luhn-valid, too short, or part of an identifier: left alone.
        assert_eq!(r.scrub("id 4242424242424241"), "id 4242424242424241");
        assert_eq!(
            r.scrub("amount 1200 at 1700000000000"),
            "amount 1200 at 1700000000000"
        );
        assert_eq!(r.scrub("pay_4242424242424242x"), "pay_4242424242424242x");
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        let r = Redactor::new(["ab".to_owned()]);
        assert_eq!(r.scrub("about"), "about");
    }

    #[test]
    fn escaped_and_encoded_forms_are_masked() {
        let secret = r#"p"w\d 50%/é+&=?#<>"#;
        let r = Redactor::new([secret.to_owned()]);
        let json = serde_json::json!({ "echo": secret }).to_string();
        let debug = format!("{:?}", format!("got {secret}"));
        let path = format!(
            "GET http://a/v1/{}",
            crate::template::encode_path_segment(secret)
        );
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for text in [json, debug, path, form] {
            let scrubbed = r.scrub(&text);
            assert!(scrubbed.contains(MASK), "{text} -> {scrubbed}");
            assert!(!scrubbed.contains("50%"), "{text} -> {scrubbed}");
            assert!(!scrubbed.contains("50%25"), "{text} -> {scrubbed}");
        }
    }

    #[test]
    fn base64_at_any_offset_is_masked() {
        use base64::Engine as _;
        let r = Redactor::new(["hunter2-password".to_owned()]);
        for prefix in ["", "u:", "us:", "use:"] {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{prefix}hunter2-password"));
            let scrubbed = r.scrub(&format!("Authorization: Basic {basic}"));
            assert!(scrubbed.contains(MASK), "{prefix}: {basic} -> {scrubbed}");
            // What is left is the prefix's own characters and at most one partial character
            // and its padding at each end: never a run of the secret's.
            let kept = scrubbed.len() - MASK.len() - "Authorization: Basic ".len();
            assert!(
                kept <= (prefix.len() * 8).div_ceil(6) + 4,
                "{prefix}: {scrubbed}"
            );
        }
    }

    #[test]
    fn credential_headers_are_learned_whatever_filled_them() {
        let mut r = Redactor::default();
        r.learn_header("Authorization", "Bearer SESSION-TOKEN-FROM-LOGIN");
        r.learn_header("X-Request-Id", "not-a-secret-1234");
        assert_eq!(r.scrub("echo SESSION-TOKEN-FROM-LOGIN"), "echo [REDACTED]");
        assert_eq!(r.scrub("id not-a-secret-1234"), "id not-a-secret-1234");
    }
}
