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
}

/// Logs in: `POST {login_url}/Login/{User|Account|Token}`.
pub async fn login(client: &reqwest::Client, login_url: &str, credentials: &Credentials) -> Result<Session, RestError> {
    let (kind, body) = credentials.path_and_body();
    let url = format!("{}/Login/{kind}", login_url.trim_end_matches('/'));
    let reply = rest::exchange(client.post(url).json(&body), TIMEOUT).await?;
    session(&reply)
}

/// Renews the token: `GET {login_url}/RefreshIdentityToken` with the refresh token as bearer.
pub async fn refresh(client: &reqwest::Client, login_url: &str, refresh_token: &str) -> Result<Session, RestError> {
    let url = format!("{}/RefreshIdentityToken", login_url.trim_end_matches('/'));
    let reply = rest::exchange(client.get(url).bearer_auth(refresh_token), TIMEOUT).await?;
    session(&reply)
}

/// Reads `Data.Socket` of a login or refresh reply; an `error` means it failed.
pub fn session(reply: &Value) -> Result<Session, RestError> {
    let unreadable = |problem: &str| RestError::Unreadable(format!("the login API's reply {problem}"));
    if let Some(error) = reply.get("error").filter(|error| !error.is_null()) {
        let words =
            rest::error_text(reply).or_else(|| rest::text(Some(error))).unwrap_or_else(|| "login refused".into());
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
}
