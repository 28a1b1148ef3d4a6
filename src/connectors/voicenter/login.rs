//! Voicenter's login API: credentials for a socket token, the monitor servers to use it on in
//! priority order, and the refresh that renews the token before it expires (providers.md 4.1).

use crate::connectors::rest::{self, RestError};
use crate::model::Timestamp;
use serde_json::{json, Value};
use std::time::Duration;

/// Login and refresh requests give up after this long.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A socket token and where to use it.
#[derive(Clone, PartialEq)]
pub struct Session {
    pub token: String,
    pub refresh_token: Option<String>,
    /// When the token stops being accepted, if the login API said.
    pub expires_at: Option<Timestamp>,
    /// Monitor servers, most preferred first.
    pub servers: Vec<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"(secret)")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "(secret)"))
            .field("expires_at", &self.expires_at)
            .field("servers", &self.servers)
            .finish()
    }
}

/// How Callboard logs in, with the credentials for it.
#[derive(Clone)]
pub enum Credentials {
    User { email: String, pin: String },
    Account { username: String, password: String },
    Token(String),
}

impl Credentials {
    fn path_and_body(&self) -> (&'static str, Value) {
        match self {
            Credentials::User { email, pin } => ("User", json!({ "email": email, "pin": pin })),
            Credentials::Account { username, password } => {
                ("Account", json!({ "username": username, "password": password }))
            }
            Credentials::Token(token) => ("Token", json!({ "token": token })),
        }
    }

    /// What of these credentials must never be shown: a login API may echo what it was sent in
    /// its error text, which goes to the log and the health page.
    fn secrets(&self) -> [&str; 1] {
        match self {
            Credentials::User { pin, .. } => [pin.as_str()],
            Credentials::Account { password, .. } => [password.as_str()],
            Credentials::Token(token) => [token.as_str()],
        }
    }
}

/// Logs in: `POST {login_url}/Login/{User|Account|Token}`.
pub async fn login(client: &reqwest::Client, login_url: &str, credentials: &Credentials) -> Result<Session, RestError> {
    let (kind, body) = credentials.path_and_body();
    let url = format!("{}/Login/{kind}", login_url.trim_end_matches('/'));
    let secrets = credentials.secrets();
    let reply = rest::exchange_hiding(client.post(url).json(&body), TIMEOUT, &secrets).await?;
    session_hiding(&reply, &secrets)
}

/// Renews the token: `GET {login_url}/RefreshIdentityToken` with the refresh token as bearer.
pub async fn refresh(client: &reqwest::Client, login_url: &str, refresh_token: &str) -> Result<Session, RestError> {
    let url = format!("{}/RefreshIdentityToken", login_url.trim_end_matches('/'));
    let secrets = [refresh_token];
    let reply = rest::exchange_hiding(client.get(url).bearer_auth(refresh_token), TIMEOUT, &secrets).await?;
    session_hiding(&reply, &secrets)
}

/// Reads `Data.Socket` of a login or refresh reply; an `error` means it failed.
pub fn session(reply: &Value) -> Result<Session, RestError> {
    session_hiding(reply, &[])
}

/// Like [`session`], with each of `secrets` taken out of an error's words before they are cut
/// to length (a cut through a secret would leave a piece no later redaction finds).
pub fn session_hiding(reply: &Value, secrets: &[&str]) -> Result<Session, RestError> {
    let unreadable = |problem: &str| RestError::Unreadable(format!("the login API's reply {problem}"));
    if reply.get("error").is_some_and(|error| !error.is_null()) {
        let reply = &without_secrets(reply, secrets, 0);
        let error = reply.get("error");
        let words = rest::error_text(reply).or_else(|| rest::text(error)).unwrap_or_else(|| "login refused".into());
        return Err(RestError::Status { status: 401, words: rest::shown(&words), retry_after: None });
    }
    let socket = reply
        .pointer("/Data/Socket")
        .filter(|socket| socket.is_object())
        .ok_or_else(|| unreadable("has no Data.Socket"))?;
    let token = rest::text(socket.get("Token")).ok_or_else(|| unreadable("has no Token"))?;
    let mut servers: Vec<String> = socket
        .get("URLList")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|url| rest::text(Some(url))).collect())
        .unwrap_or_default();
    if servers.is_empty() {
        servers.extend(rest::text(socket.get("URL")));
    }
    if servers.is_empty() {
        return Err(unreadable("names no monitor server (URL, URLList)"));
    }
    let expires_at = socket.get("TokenExpiry").and_then(|expiry| {
        super::wire::epoch(Some(expiry)).or_else(|| expiry.as_str().and_then(crate::connectors::time::parse_time))
    });
    Ok(Session { token, refresh_token: rest::text(socket.get("RefreshToken")), expires_at, servers })
}

/// Depth to which [`without_secrets`] looks: deeper than any error's words are read from.
const REDACT_DEPTH: u8 = 6;

/// `value` with each of `secrets` taken out of every string in it (to [`REDACT_DEPTH`]; deeper
/// parts are dropped, as nothing reads error words from there).
fn without_secrets(value: &Value, secrets: &[&str], depth: u8) -> Value {
    if depth > REDACT_DEPTH {
        return Value::Null;
    }
    match value {
        Value::String(text) => Value::String(
            secrets.iter().fold(text.clone(), |text, secret| crate::connectors::without_secret(text, secret)),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| without_secrets(item, secrets, depth + 1)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(key, item)| (key.clone(), without_secrets(item, secrets, depth + 1))).collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_reply_gives_the_token_servers_in_order_and_expiry() {
        let reply = json!({"Status": 1, "Data": {"Socket": {
            "Token": "tok", "RefreshToken": "ref", "TokenExpiry": 1700000000,
            "URL": "https://monitor5.voicenter.co.il", "URLList": ["https://monitor11.voicenter.co", "https://monitor5.voicenter.co.il"],
            "PersonID": 12, "Client": "x"}}});
        let session = session(&reply).unwrap();
        assert_eq!(session.token, "tok");
        assert_eq!(session.refresh_token.as_deref(), Some("ref"));
        assert_eq!(session.expires_at, Some(1_700_000_000_000));
        assert_eq!(session.servers, ["https://monitor11.voicenter.co", "https://monitor5.voicenter.co.il"]);
        assert!(!format!("{session:?}").contains("tok\""), "{session:?}");
        let only_url =
            json!({"Data": {"Socket": {"Token": "t", "URL": "https://m", "TokenExpiry": "2030-01-01T00:00:00Z"}}});
        let session = super::session(&only_url).unwrap();
        assert_eq!((session.servers.len(), session.expires_at), (1, Some(1_893_456_000_000)));
        assert!(super::session(&json!({"error": "Wrong login details"}))
            .unwrap_err()
            .to_string()
            .contains("Wrong login details"));
        assert!(super::session(&json!({"Data": {"Socket": {"URL": "https://m"}}})).is_err());
        assert!(super::session(&json!({"Data": {"Socket": {"Token": "t"}}})).is_err());
    }

    #[test]
    fn a_refusal_that_echoes_a_secret_does_not_repeat_it() {
        let secret = "pw-0123456789abcdef";
        let echo = json!({"error": format!("bad password {secret} for supervisor")});
        let words = session_hiding(&echo, &[secret]).unwrap_err().to_string();
        assert!(!words.contains(secret) && words.contains("bad password (secret)"), "{words}");
        // Nested, and where the cut to 160 characters would fall through the secret.
        let nested = json!({"error": {"message": format!("{}{secret}", "x".repeat(150)), "code": 7}});
        let words = session_hiding(&nested, &[secret]).unwrap_err().to_string();
        assert!(!words.contains("pw-0123"), "{words}");
        let credentials = Credentials::Account { username: "supervisor".into(), password: secret.into() };
        assert_eq!(credentials.secrets(), [secret]);
        assert_eq!(Credentials::Token("tok".into()).secrets(), ["tok"]);
    }
}
