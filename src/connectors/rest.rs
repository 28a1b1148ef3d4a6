//! What every REST-speaking connector does the same way: send with a deadline, read a bounded
//! reply, and tell a 2xx reply from a provider's refusal in its own words.

use serde_json::Value;
use std::time::Duration;

/// A reply larger than this is refused unread.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;

/// Why a request did not come back 2xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// The provider answered with this status; `words` are its own (or the status alone).
    #[error("HTTP {status}: {words}")]
    Status {
        status: u16,
        words: String,
        /// `Retry-After` in seconds, when a 429 or 503 gives one.
        retry_after: Option<u64>,
    },
    /// No answer: connection refused, reset, timed out.
    #[error("{0}")]
    Transport(String),
    /// A 2xx reply that is too large or not JSON.
    #[error("{0}")]
    Unreadable(String),
}

impl RestError {
    /// The status when the provider answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A refusal (4xx other than 429): retrying the same request will not help.
    pub fn is_refusal(&self) -> bool {
        self.status().is_some_and(|status| (400..500).contains(&status) && status != 429)
    }
}

/// Sends `request` with `timeout` and reads the reply: the JSON of a 2xx (null when empty),
/// else the status with the provider's words.
pub async fn exchange(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Value, RestError> {
    exchange_hiding(request, timeout, &[]).await
}

/// Like [`exchange`], with each of `secrets` taken out of the provider's words before they are
/// cut to length: a provider may echo what it was sent (a hook URL with our webhook secret),
/// and a cut through a secret would leave a piece of it that no later redaction finds.
pub async fn exchange_hiding(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    secrets: &[&str],
) -> Result<Value, RestError> {
    let transport = |error: reqwest::Error| RestError::Transport(super::transport_words(error));
    let mut response = request.timeout(timeout).send().await.map_err(transport)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(RestError::Unreadable(format!("a reply over {MAX_REPLY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let words = refusal_words(&body, secrets)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason given").to_owned());
        return Err(RestError::Status { status: status.as_u16(), words, retry_after });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    lenient_json(&body).map_err(RestError::Unreadable)
}

/// The words of a refusal's body (its error message, else its text), `secrets` taken out first
/// and then cut to what a message can show; none when the body says nothing.
fn refusal_words(body: &[u8], secrets: &[&str]) -> Option<String> {
    let words = lenient_json(body)
        .ok()
        .and_then(|reply| words_of(&reply, 0))
        .or_else(|| Some(String::from_utf8_lossy(body).trim().to_owned()).filter(|words| !words.is_empty()))?;
    let redacted = secrets.iter().fold(words, |words, secret| super::without_secret(words, secret));
    Some(shown(&redacted))
}

/// JSON, or else JSON with commas before a closing bracket (as some providers' documented
/// replies have them, Netaxis's among them).
pub fn lenient_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).or_else(|error| {
        let text = String::from_utf8_lossy(body);
        serde_json::from_str(&without_trailing_commas(&text)).map_err(|_| error.to_string())
    })
}

/// Drops each comma that only whitespace separates from a `}` or `]`, outside strings.
pub fn without_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => in_string = true,
            ',' if text[at + 1..].trim_start().starts_with(['}', ']']) => continue,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// The message of an error reply, whatever its shape: `{"error": {"code","message"}}`,
/// `{"error": "..."}`, `{"message": "..."}`, `{"detail": "..."}`, `{"details": ...}`, or a list
/// of errors (bare or as `errors`) with a numeric `code`, a symbolic `name` and a `message`.
pub fn error_text(reply: &Value) -> Option<String> {
    words_of(reply, 0).map(|words| shown(&words))
}

fn words_of(error: &Value, depth: u8) -> Option<String> {
    if depth > 3 {
        return None;
    }
    match error {
        Value::String(text) => Some(text.clone()).filter(|text| !text.trim().is_empty()),
        Value::Array(errors) => {
            let all: Vec<String> = errors.iter().take(5).filter_map(|error| words_of(error, depth + 1)).collect();
            (!all.is_empty()).then(|| all.join("; "))
        }
        Value::Object(_) => {
            for nested in ["error", "errors", "details"] {
                if let Some(words) = error.get(nested).and_then(|inner| words_of(inner, depth + 1)) {
                    return Some(words);
                }
            }
            let code = text(error.get("code"));
            let name = text(error.get("name")).filter(|name| code.is_some() && Some(name) != code.as_ref());
            let code = code.map(|code| name.map_or(code.clone(), |name| format!("{code} {name}")));
            let message = ["message", "error_description", "detail", "description", "text"]
                .into_iter()
                .find_map(|key| text(error.get(key)));
            match (code, message) {
                (Some(code), Some(message)) => Some(format!("{message} ({code})")),
                (code, message) => message.or(code),
            }
        }
        _ => None,
    }
}

/// A provider's words cut to what a button's message can show.
pub fn shown(text: &str) -> String {
    text.chars().take(160).collect()
}

/// A string or a number as text; empty, null and anything else are none.
pub fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A count given as a number or as a string holding one.
pub fn lenient_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
}

/// Percent-encodes one path segment or query value (`/`, `?`, `+`, `:` and spaces included).
pub fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trailing_commas_of_documented_replies_are_forgiven() {
        let seed = br#"{ "calls": [ { "callId": "callhalf-1595867:0", "inConference": false, } ] }"#;
        assert_eq!(lenient_json(seed).unwrap()["calls"][0]["callId"], "callhalf-1595867:0");
        assert_eq!(without_trailing_commas(r#"{"a": "x,}", "b": [1, 2 ,] ,}"#), r#"{"a": "x,}", "b": [1, 2 ] }"#);
        assert!(lenient_json(b"{,").is_err());
    }

    #[test]
    fn errors_read_in_every_shape() {
        assert_eq!(
            error_text(&json!({"error": {"code": "pcet_type_invalid", "message": "Invalid type"}})).as_deref(),
            Some("Invalid type (pcet_type_invalid)")
        );
        assert_eq!(error_text(&json!({"error": "invalid_grant"})).as_deref(), Some("invalid_grant"));
        assert_eq!(error_text(&json!({"detail": "Not found."})).as_deref(), Some("Not found."));
        assert_eq!(encode("0003*210"), "0003*210", "`*` is allowed in a path segment");
        assert_eq!(encode("callhalf-1595867:0"), "callhalf-1595867%3A0");
        let list =
            json!([{"code": 59, "name": "INVALID_CALL_OPERATION", "message": "The call is in the detached state."}]);
        assert_eq!(
            error_text(&list).as_deref(),
            Some("The call is in the detached state. (59 INVALID_CALL_OPERATION)")
        );
        assert_eq!(error_text(&json!({"errors": list})), error_text(&list));
        assert_eq!(error_text(&json!({"details": "error call not found"})).as_deref(), Some("error call not found"));
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
    }

    #[test]
    fn a_secret_across_the_cut_is_taken_out_before_the_words_are_cut() {
        let secret = "0123456789abcdef0123456789abcdef";
        // The secret starts at character 150 of 160 shown: cut first, its first ten would stay.
        let echo = format!("{}{secret} is not reachable", "x".repeat(150));
        let expected = format!("{}(secret) i", "x".repeat(150));
        let json = serde_json::to_vec(&json!({ "error": echo })).unwrap();
        assert_eq!(refusal_words(&json, &[secret]).as_deref(), Some(expected.as_str()));
        assert_eq!(refusal_words(echo.as_bytes(), &["", secret]).as_deref(), Some(expected.as_str()), "plain text too");
        assert_eq!(refusal_words(b"  ", &[secret]), None);
        let without = refusal_words(echo.as_bytes(), &[]).unwrap();
        assert_eq!(without.chars().count(), 160, "nothing to hide: only cut");
    }
}
