//! Looking for a secret in what greenlight wrote: every form it could take (escaped, encoded,
//! base64) and every view a reader could get by undoing escapes and encodings.

use base64::Engine as _;

/// RFC 3986 unreserved characters stay; every other byte is %XX. Written here independently
/// of greenlight's encoder, so a change there that lets a delimiter through is caught.
pub fn component(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every form a secret could leave in: as is, JSON-escaped, debug-escaped, percent-encoded
/// (path, query and form style), and base64 at each byte offset.
pub fn forms(secret: &str) -> Vec<String> {
    let quoted = |text: String| text[1..text.len() - 1].to_owned();
    let mut out = vec![
        secret.to_owned(),
        quoted(serde_json::Value::from(secret).to_string()),
        quoted(format!("{secret:?}")),
        component(secret),
    ];
    for offset in 0..3usize {
        let mut bytes = vec![b'x'; offset];
        bytes.extend_from_slice(secret.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let first = (offset * 8).div_ceil(6);
        let last = (bytes.len() * 8) / 6;
        out.push(encoded[first..last].to_owned());
    }
    out
}

/// One layer of backslash escapes undone, as JSON and Rust's `{:?}` write them.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') if chars.peek() == Some(&'{') => {
                chars.next();
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
            }
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// `%XX` decoded where it makes UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The output as written, and as a reader would see it with up to three layers of escaping
/// and percent-encoding undone: a secret hidden under a quote still counts as leaked.
fn views(output: &str) -> Vec<String> {
    let mut views = vec![output.to_owned()];
    for _ in 0..3 {
        let next: Vec<String> = views
            .iter()
            .flat_map(|v| [unescape(v), percent_decode(v)])
            .collect();
        views.extend(next);
        views.sort();
        views.dedup();
    }
    views
}

/// Fails if any form of `secret`, or any eight characters of it in a row, appears in `output`
/// or in any unescaped or decoded view of it.
pub fn assert_no_form(secret: &str, output: &str, what: &str) {
    for form in forms(secret) {
        assert!(
            !output.contains(&form),
            "{what}: a form of the secret {secret:?} leaked ({form:?}):\n{output}"
        );
    }
    let chars: Vec<char> = secret.chars().collect();
    for view in views(output) {
        for window in chars.windows(8) {
            let run: String = window.iter().collect();
            assert!(
                !view.contains(&run),
                "{what}: 8 characters of the secret {secret:?} leaked ({run:?}):\n{output}"
            );
        }
    }
}
