//! The Integrate REST API as Callboard uses it: the OAuth client-credentials token, the
//! subscription calls (create or renew, read, delete) and call control (place, answer, hang up).
//! Paths are relative to `base_url`, which ends in `/api`; every request names the API version
//! in its Accept header (providers.md 2.1).

use super::VersatureConfig;
use crate::clock::Clock;
use crate::connectors::rest::{self, encode, lenient_u64, text, RestError};
use crate::model::Timestamp;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Requests give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// A token is fetched again this long (ms) before it would expire.
const EXPIRY_MARGIN_MS: Timestamp = 60_000;
/// The longest token lifetime believed, seconds.
const MAX_TOKEN_LIFETIME_S: u64 = 86_400;

/// A subscription as Integrate describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    /// When it lapses unless renewed (UTC), as ms; `None` when the reply did not say readably.
    pub expires: Option<Timestamp>,
}

struct Token {
    access: String,
    until: Timestamp,
}

/// An Integrate client with its cached token.
pub struct IntegrateApi {
    config: Arc<VersatureConfig>,
    client: reqwest::Client,
    clock: Clock,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl IntegrateApi {
    pub fn new(config: Arc<VersatureConfig>, client: reqwest::Client, clock: Clock) -> Self {
        Self { config, client, clock, token: tokio::sync::Mutex::new(None) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn accept(&self) -> String {
        format!("application/vnd.integrate.v{}+json", self.config.api_version)
    }

    /// Sends one request; what Integrate answers may echo what it was sent (the `post_uri` with
    /// our webhook secret), so the secrets are taken out of its words before they are cut.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Value, RestError> {
        let secrets = [self.config.webhook_secret.as_str(), self.config.client_secret.as_str()];
        rest::exchange_hiding(request, REQUEST_TIMEOUT, &secrets).await
    }

    /// A valid access token: the cached one until shortly before it expires, else a new one
    /// by the client-credentials grant (there is no refresh token for that grant).
    async fn access_token(&self) -> Result<String, RestError> {
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref().filter(|t| t.until > self.clock.now()) {
            return Ok(current.access.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
        ];
        let request = self.client.post(self.url("oauth/token/")).header("accept", self.accept()).form(&form);
        let reply = self.exchange(request).await?;
        let Some(access) = text(reply.get("access_token")) else {
            return Err(RestError::Unreadable("the token reply has no access_token".into()));
        };
        let lifetime = reply.get("expires_in").and_then(lenient_u64).unwrap_or(3_599).min(MAX_TOKEN_LIFETIME_S);
        let until = self.clock.now() + (lifetime as Timestamp * 1000 - EXPIRY_MARGIN_MS).max(0);
        *token = Some(Token { access: access.clone(), until });
        Ok(access)
    }

    /// Sends an authorised request; a 401 drops the token and tries once more with a new one.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Value, RestError> {
        let mut outcome = Err(RestError::Transport("not sent".into()));
        for _ in 0..2 {
            let token = self.access_token().await?;
            let request =
                self.client.request(method.clone(), self.url(path)).header("accept", self.accept()).bearer_auth(token);
            outcome = self.exchange(build(request)).await;
            if outcome.as_ref().err().and_then(RestError::status) != Some(401) {
                break;
            }
            *self.token.lock().await = None;
        }
        outcome
    }

    /// Creates the subscription for `post_uri`, or renews it: Integrate keeps the id when the
    /// same request comes again before it expires.
    pub async fn subscribe(&self, post_uri: &str) -> Result<Subscription, RestError> {
        let mut body = json!({
            "post_uri": post_uri,
            "calls": true,
            "cdrs": self.config.cdrs,
            "expires_in": self.config.expires_in.to_string(),
        });
        if !self.config.users.is_empty() {
            body["user"] = json!(self.config.users);
        }
        let reply = self.call(reqwest::Method::POST, "subscriptions/", |request| request.json(&body)).await?;
        subscription(&reply)
    }

    /// Reads a subscription back; a 404 means Integrate no longer has it.
    pub async fn read(&self, id: &str) -> Result<Subscription, RestError> {
        let reply = self.call(reqwest::Method::GET, &format!("subscriptions/{}/", encode(id)), |r| r).await?;
        subscription(&reply)
    }

    pub async fn delete(&self, id: &str) -> Result<(), RestError> {
        self.call(reqwest::Method::DELETE, &format!("subscriptions/{}/", encode(id)), |r| r).await.map(|_| ())
    }

    /// Click-to-call: rings `from` (a user), then calls `to`.
    pub async fn place_call(&self, from: &str, to: &str) -> Result<Value, RestError> {
        let query = [("from", from), ("to", to), ("auto_answer", "false")];
        self.call(reqwest::Method::POST, "calls/", |request| request.query(&query)).await
    }

    /// Answers the ringing endpoint `call_id` at user `to`.
    pub async fn answer(&self, call_id: &str, to: &str) -> Result<Value, RestError> {
        let body = json!({ "to": to });
        self.call(reqwest::Method::PUT, &format!("calls/{}/answer/", encode(call_id)), |r| r.json(&body)).await
    }

    pub async fn hang_up(&self, call_id: &str) -> Result<Value, RestError> {
        self.call(reqwest::Method::DELETE, &format!("calls/{}/", encode(call_id)), |r| r).await
    }
}

/// A subscription reply: `id` a string or a number, `expires` ISO 8601 in UTC.
fn subscription(reply: &Value) -> Result<Subscription, RestError> {
    let id = text(reply.get("id")).ok_or_else(|| RestError::Unreadable("the subscription reply has no id".into()))?;
    let expires = text(reply.get("expires")).and_then(|expires| super::wire::parse_time(&expires));
    Ok(Subscription { id, expires })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_seed_subscription_replies_read() {
        let created = json!({"id": "0123456789012345", "post_uri": "https://integrate.versature.com/", "expires": "2016-03-28T16:15:50.488920", "events": {"type": "calls"}});
        assert_eq!(
            subscription(&created).unwrap(),
            Subscription { id: "0123456789012345".into(), expires: Some(1_459_181_750_488) }
        );
        let read = json!({"events": [{"type": "calls", "user": "8814"}], "expires": "2018-01-18T16:27:53.362820", "id": 5754713652854784_u64, "post_uri": "https://www.example.com/callback/"});
        assert_eq!(subscription(&read).unwrap().id, "5754713652854784");
        assert!(subscription(&json!({"expires": "soon"})).is_err());
    }
}
