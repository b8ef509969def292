//! Keeping secrets in the process: every message that leaves (log line, report, CodeDeploy call)
//! passes through a [`Redactor`].

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Header names whose values are credentials wherever they appear.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// Whether a header's value must never be shown.
pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|sensitive| name.eq_ignore_ascii_case(sensitive))
}

/// Masks known secret values and anything shaped like a payment card number.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a token is masked whole before any shorter secret inside it.
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor that knows these secret values (values shorter than 4 characters are ignored:
    /// masking every `ab` in a message would hide more than it protects).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| s.len() >= 4)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Learn the credential values among request headers: the whole value and, for
    /// `Bearer x`/`Basic x`, the token alone (servers echo either).
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut more = std::mem::take(&mut self.secrets);
        for (name, value) in headers {
            // A templated value (`Bearer {{secrets.api_key}}`) is not itself a secret; the
            // secret it names is already known.
            if is_sensitive_header(name) && !crate::template::is_template(value) {
                more.push(value.to_owned());
                if let Some((_, token)) = value.split_once(' ') {
                    more.push(token.to_owned());
                }
            }
        }
        Redactor::new(more)
    }

    /// The text with every known secret and every card-number-like digit run masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        mask_card_numbers(&out)
    }
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
}
