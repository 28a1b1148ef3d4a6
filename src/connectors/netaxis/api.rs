//! The Netaxis Call Service client: every operation of the seed under
//! `{base_url}/api/v1/tenants/{tenant}/groups/{group}/users/{user}/services/calls/`, with each
//! path segment percent-encoded (call ids hold `:`), a bearer token (configured, or from the
//! login API and fetched again after a 401), a deadline and a bounded reply on every request.

use super::wire::{self, CallEntry, Created, Listed, Modify};
use super::NetaxisConfig;
use crate::connectors::rest::{self, encode, RestError};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The longest any one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The client; one per connector.
pub struct NetaxisApi {
    config: Arc<NetaxisConfig>,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<String>>,
    /// The seed shows `includeDetails` in a GET's JSON body; it is sent as a query parameter
    /// until a list comes back without details, then in the body.
    details_in_body: AtomicBool,
}

impl NetaxisApi {
    pub fn new(config: Arc<NetaxisConfig>, client: reqwest::Client) -> Self {
        Self { config, client, token: tokio::sync::Mutex::new(None), details_in_body: AtomicBool::new(false) }
    }

    fn url(&self, user: &str, tail: &str) -> String {
        format!(
            "{}/api/v1/tenants/{}/groups/{}/users/{}/services/calls/{tail}",
            self.config.base_url.trim_end_matches('/'),
            encode(&self.config.tenant),
            encode(&self.config.group),
            encode(user),
        )
    }

    /// The configured token, or one from the login API (cached until a 401).
    async fn bearer(&self) -> Result<String, RestError> {
        if !self.config.token.is_empty() {
            return Ok(self.config.token.clone());
        }
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let body = json!({ "username": self.config.username, "password": self.config.password });
        let reply = rest::exchange(self.client.post(&self.config.login_url).json(&body), REQUEST_TIMEOUT).await?;
        let token = login_token(&reply).map_err(RestError::Unreadable)?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Sends one request with the bearer token; a 401 with a login-API token fetches a new one
    /// and tries once more.
    async fn call(
        &self,
        method: reqwest::Method,
        user: &str,
        tail: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Value, RestError> {
        let url = self.url(user, tail);
        let mut outcome = Err(RestError::Transport("not sent".into()));
        for _ in 0..2 {
            let token = self.bearer().await?;
            let request = self.client.request(method.clone(), &url).bearer_auth(token);
            outcome = rest::exchange(build(request), REQUEST_TIMEOUT).await;
            if outcome.as_ref().err().and_then(RestError::status) != Some(401) || !self.config.token.is_empty() {
                break;
            }
            *self.token.lock().await = None;
        }
        outcome
    }

    /// Click-to-call: calls `phone_number` (a number or an extension) for `user`.
    pub async fn dial(&self, user: &str, phone_number: &str) -> Result<Created, RestError> {
        let body = json!({ "phoneNumber": phone_number });
        let reply = self.call(reqwest::Method::POST, user, "", |request| request.json(&body)).await?;
        wire::created(&reply).map_err(RestError::Unreadable)
    }

    /// The user's ongoing calls without details: call ids and conference flags only.
    pub async fn list(&self, user: &str) -> Result<Vec<Listed>, RestError> {
        let reply = self.call(reqwest::Method::GET, user, "", |request| request.json(&json!({}))).await?;
        wire::call_list(&reply).map_err(RestError::Unreadable)
    }

    /// The user's ongoing calls with details (state, parties, times).
    pub async fn list_with_details(&self, user: &str) -> Result<Vec<Listed>, RestError> {
        let in_body = self.details_in_body.load(Ordering::Relaxed);
        let reply = self
            .call(reqwest::Method::GET, user, "", |request| {
                if in_body {
                    request.json(&json!({ "includeDetails": true }))
                } else {
                    request.query(&[("includeDetails", "true")])
                }
            })
            .await?;
        let calls = wire::call_list(&reply).map_err(RestError::Unreadable)?;
        let undetailed =
            !calls.is_empty() && calls.iter().all(|(_, call)| matches!(call, Ok(entry) if entry.state.is_none()));
        if undetailed {
            // Switch where includeDetails goes; a list without details either way is an error,
            // and the next poll tries the other way again.
            self.details_in_body.store(!in_body, Ordering::Relaxed);
            if in_body {
                return Err(RestError::Unreadable("the call list came without details either way".into()));
            }
            tracing::info!("Netaxis ignored includeDetails as a query parameter; sending it in the body");
            return Box::pin(self.list_with_details(user)).await;
        }
        Ok(calls)
    }

    /// One call's details, recording state and allowed recording controls included.
    pub async fn details(&self, user: &str, call_id: &str) -> Result<CallEntry, RestError> {
        let tail = format!("{}/", encode(call_id));
        let reply = self.call(reqwest::Method::GET, user, &tail, |request| request.json(&json!({}))).await?;
        wire::call_entry(&reply).map_err(|unusable| RestError::Unreadable(unusable.reason))
    }

    /// One of the eight modify actions on a call.
    pub async fn modify(&self, user: &str, call_id: &str, action: &Modify) -> Result<(), RestError> {
        let tail = format!("{}/", encode(call_id));
        let body = action.body();
        self.call(reqwest::Method::PUT, user, &tail, |request| request.json(&body)).await.map(|_| ())
    }

    /// Releases (hangs up) a call.
    pub async fn release(&self, user: &str, call_id: &str) -> Result<(), RestError> {
        let tail = format!("{}/", encode(call_id));
        self.call(reqwest::Method::DELETE, user, &tail, |request| request.json(&json!({}))).await.map(|_| ())
    }

    /// Call Retrieve: pulls the user's call to another of the user's locations.
    pub async fn retrieve(&self, user: &str) -> Result<Created, RestError> {
        let reply = self.call(reqwest::Method::POST, user, "retrieve/", |request| request.json(&json!({}))).await?;
        wire::created(&reply).map_err(RestError::Unreadable)
    }

    /// Creates an IMRN resource to anchor a mobile call from `calling` to `called`.
    pub async fn imrn(&self, user: &str, called: &str, calling: &str) -> Result<String, RestError> {
        let body = json!({ "phoneNumber": called, "callingPhoneNumber": calling });
        let reply = self.call(reqwest::Method::POST, user, "imrn/", |request| request.json(&body)).await?;
        rest::text(reply.get("imrn")).ok_or_else(|| RestError::Unreadable("the IMRN reply has no imrn".into()))
    }
}

/// The token of a login reply. Its field name is not documented, so the usual ones are tried;
/// a `2fa_payload` means this host is not yet trusted and a person has to confirm it.
pub fn login_token(reply: &Value) -> Result<String, String> {
    if reply.get("2fa_payload").is_some() {
        return Err("Netaxis asks for a second factor before it trusts this host (2fa_payload); \
                    confirm the host once or configure a token"
            .into());
    }
    ["access_token", "accessToken", "token", "jwt", "access"]
        .into_iter()
        .find_map(|key| rest::text(reply.get(key)))
        .ok_or_else(|| "the login reply holds no token".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_replies_give_a_token_or_say_why_not() {
        assert_eq!(login_token(&json!({"access_token": "a.b.c", "refresh_token": "r"})).unwrap(), "a.b.c");
        assert_eq!(login_token(&json!({"token": "t"})).unwrap(), "t");
        assert!(login_token(&json!({"2fa_payload": "jwt"})).unwrap_err().contains("second factor"));
        assert!(login_token(&json!({})).is_err());
    }
}
