//! The Versature Integrate connector: a subscription (calls and CDRs) kept alive against
//! Integrate's REST API, webhook messages taken in on one hook path, and click-to-call, answer
//! and hang up through the REST API.
//!
//! Each message is a full statement of a call (or a list of CDRs) with the provider's times, so
//! taking one in is an idempotent upsert: a redelivered or late message changes nothing.

pub mod api;
mod mapping;
pub mod wire;

pub use mapping::{call_reports, cdr_reports, leg_state, Ids};

use super::{CommandError, Connector, Delivery, HookRefusal, WebhookReceiver};
use crate::clock::Clock;
use crate::connectors::rest::RestError;
use crate::hub::{now_ms, Hub, HubError};
use crate::model::{Action, Command, ConnectorHealth, Event, EventKind, Frame, LegReport, Timestamp};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wire::Message;

/// The account part of Versature ids: one connector is one Versature domain.
pub const ACCOUNT: &str = "domain";
/// What Integrate lets us do from the desk (providers.md 2.2 lists no hold or transfer).
pub const CAPABILITIES: [Action; 3] = [Action::Dial, Action::Answer, Action::Hangup];
/// The longest subscription Integrate grants, seconds.
pub const MAX_EXPIRES_IN: u64 = 604_800;
/// A subscription is renewed when this share of its lifetime has passed.
const RENEW_AT: f64 = 0.8;
/// The subscription is read back at least this often (virtual ms), so one Integrate dropped
/// is created again well before a renewal would notice.
const CHECK_EVERY_MAX_MS: Timestamp = 3_600_000;
/// Failed subscription calls are retried after this long, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// `[[provider]] kind = "versature"` keys.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersatureConfig {
    /// The Integrate API root, ending in `/api`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The OAuth application; with `client_secret`, Callboard keeps the subscription itself.
    #[serde(default)]
    pub client_id: String,
    /// Best given by environment.
    #[serde(default)]
    pub client_secret: String,
    /// Sent in every Accept header.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Where Integrate reaches this Callboard, e.g. `https://board.example.com`.
    pub public_url: String,
    /// The secret in the hook path; generated and stored when empty. Best given by environment.
    #[serde(default)]
    pub webhook_secret: String,
    /// Users (extensions) to subscribe to; empty means the whole domain.
    #[serde(default)]
    pub users: Vec<String>,
    /// Whether to subscribe to CDRs as well (call history with the provider's times). Off
    /// unless asked for: the seed says CDR subscriptions "are currently in BETA and should not
    /// be used in production systems".
    #[serde(default)]
    pub cdrs: bool,
    /// The subscription's lifetime asked for, seconds (at most a week).
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    /// Whether to delete the subscription when Callboard stops.
    #[serde(default)]
    pub delete_on_shutdown: bool,
}

fn default_base_url() -> String {
    "https://integrate.versature.com/api".into()
}

fn default_api_version() -> String {
    "1.2.0".into()
}

fn default_expires_in() -> u64 {
    MAX_EXPIRES_IN
}

impl std::fmt::Debug for VersatureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersatureConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"(secret)")
            .field("api_version", &self.api_version)
            .field("public_url", &self.public_url)
            .field("webhook_secret", &"(secret)")
            .field("users", &self.users)
            .field("cdrs", &self.cdrs)
            .field("expires_in", &self.expires_in)
            .field("delete_on_shutdown", &self.delete_on_shutdown)
            .finish()
    }
}

impl VersatureConfig {
    /// Reads and checks a provider table.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let config: VersatureConfig = table.clone().try_into().map_err(|error: toml::de::Error| error.to_string())?;
        let is_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        for (key, url) in [("public_url", &config.public_url), ("base_url", &config.base_url)] {
            if !is_url(url) {
                return Err(format!("{key} {url:?} must start with http:// or https://"));
            }
        }
        super::check_webhook_secret(&config.webhook_secret)?;
        if config.client_id.is_empty() != config.client_secret.is_empty() {
            return Err("client_id and client_secret go together (or both left out to receive only)".into());
        }
        if !(60..=MAX_EXPIRES_IN).contains(&config.expires_in) {
            return Err(format!("expires_in must be between 60 and {MAX_EXPIRES_IN} seconds"));
        }
        if config.api_version.is_empty() || !config.api_version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(format!("api_version {:?} must look like 1.2.0", config.api_version));
        }
        if config.users.iter().any(|user| user.trim().is_empty() || user.contains('/')) {
            return Err("users must be user (extension) numbers such as \"101\", none empty".into());
        }
        Ok(config)
    }

    /// Fills in the webhook secret when none is configured (see [`super::resolve_secret`]).
    pub async fn resolve_secret(&mut self, store: &crate::store::Store, name: &str) -> Result<(), String> {
        super::resolve_secret(&mut self.webhook_secret, store, name).await
    }

    /// Whether Callboard keeps the subscription and can place calls.
    pub fn has_api(&self) -> bool {
        !self.client_id.is_empty()
    }

    /// The URL Integrate posts to for provider `name`, secret included: never for logs.
    pub fn hook_url(&self, name: &str) -> String {
        format!("{}/hooks/{name}/{}", self.public_url.trim_end_matches('/'), self.webhook_secret)
    }
}

/// What the webhook side and the subscription keeper share.
struct Inner {
    book: super::HealthBook,
    subscription: Option<api::Subscription>,
}

/// The running Versature connector: a webhook receiver, and a command target when the API is
/// configured.
pub struct VersatureConnector {
    shared: Arc<Shared>,
    capabilities: Vec<Action>,
}

struct Shared {
    name: String,
    config: Arc<VersatureConfig>,
    hub: Hub,
    inner: Mutex<Inner>,
    api: Option<Arc<api::IntegrateApi>>,
    clock: Clock,
}

impl VersatureConnector {
    /// Starts the connector on the wall clock. The returned task ends once the subscription is
    /// deleted (when so configured) after `shutdown`.
    pub async fn start(
        name: &str,
        config: VersatureConfig,
        hub: Hub,
        shutdown: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        Self::start_on(name, config, hub, shutdown, Clock::wall()).await
    }

    /// As [`VersatureConnector::start`], with subscription lifetimes and token expiry measured
    /// on `clock` (a faster one lets a test live through a week of renewals).
    pub async fn start_on(
        name: &str,
        config: VersatureConfig,
        hub: Hub,
        shutdown: CancellationToken,
        clock: Clock,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let config = Arc::new(config);
        let api =
            config.has_api().then(|| Arc::new(api::IntegrateApi::new(config.clone(), super::http_client(), clock)));
        let capabilities = if api.is_some() { CAPABILITIES.to_vec() } else { Vec::new() };
        let health = ConnectorHealth {
            name: name.to_owned(),
            provider_kind: "versature".into(),
            state: "starting".into(),
            capabilities: capabilities.clone(),
            ..ConnectorHealth::default()
        };
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            config: config.clone(),
            hub,
            inner: Mutex::new(Inner { book: super::HealthBook::new(health), subscription: None }),
            api,
            clock,
        });
        super::announce_extensions(&shared.hub, name, ACCOUNT, &config.users).await;
        shared.publish_health().await;
        let keeper = shared.clone();
        let task = tokio::spawn(async move {
            if keeper.api.is_some() {
                keeper.keep_subscription(shutdown).await;
            } else {
                tracing::info!(provider = %keeper.name, "no client_id: receiving webhooks only, the subscription is kept by hand");
            }
        });
        (Arc::new(Self { shared, capabilities }), task)
    }

    /// The connector's health as last counted.
    pub fn health(&self) -> ConnectorHealth {
        self.shared.lock().book.health.clone()
    }

    /// The subscription Callboard keeps, once Integrate granted it.
    pub fn subscription(&self) -> Option<api::Subscription> {
        self.shared.lock().subscription.clone()
    }

    /// Takes in one webhook body (what the hook route does).
    pub async fn take(&self, body: &[u8]) -> Result<(), HookRefusal> {
        self.shared.take(body).await
    }

    /// The webhook URL, secret included: for subscribing, never for logs.
    pub fn hook_url(&self) -> String {
        self.shared.config.hook_url(&self.shared.name)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn publish_health(&self) {
        let health = self.lock().book.publish();
        let _ = self.hub.report_health(health).await;
    }

    /// Moves health to `state` (unless it is in `unless`), deciding under one lock so a
    /// webhook's "ready" arriving meanwhile is not overwritten.
    async fn set_state(&self, state: &str, unless: &[&str]) {
        let health = {
            let mut inner = self.lock();
            let current = inner.book.health.state.as_str();
            if current == state || unless.contains(&current) {
                return;
            }
            inner.book.health.state = state.to_owned();
            inner.book.publish()
        };
        let _ = self.hub.report_health(health).await;
    }

    /// Error text from Integrate with our webhook secret taken out: a reply may echo the
    /// `post_uri` it was sent.
    fn redacted(&self, text: String) -> String {
        super::without_secret(text, &self.config.webhook_secret)
    }

    /// A CDR that cannot be used, counted and logged; the rest of its list goes on.
    async fn skip_cdr(&self, reason: String) {
        tracing::warn!(provider = %self.name, %reason, "Versature CDR skipped");
        self.count_error(reason).await;
    }

    async fn count_error(&self, text: String) {
        let text = self.redacted(text);
        self.lock().book.error(text);
        self.publish_health().await;
    }

    /// Keeps the subscription alive until `shutdown`: create (or renew) it, read it back,
    /// renew at 80 % of its lifetime, read it back every so often and create it again when
    /// Integrate no longer has it. Failures back off; on shutdown it is deleted if so configured.
    async fn keep_subscription(&self, shutdown: CancellationToken) {
        let Some(api) = self.api.clone() else { return };
        let post_uri = self.config.hook_url(&self.name);
        let mut backoff = RETRY_FIRST;
        let mut renewals = 0_u64;
        'subscribe: loop {
            let granted = tokio::select! {
                _ = shutdown.cancelled() => break 'subscribe,
                granted = api.subscribe(&post_uri) => granted,
            };
            let subscription = match granted {
                Ok(subscription) => subscription,
                Err(error) => {
                    self.subscription_failed("creating the subscription", &error).await;
                    if !self.wait_retry(&shutdown, &mut backoff, &error).await {
                        break 'subscribe;
                    }
                    continue;
                }
            };
            renewals += 1;
            tracing::info!(provider = %self.name, id = %subscription.id, renewals, "Versature subscription granted");
            self.set_state("preparing", &["ready"]).await;
            // Read back what Integrate holds: its expiry is the one to plan by.
            let read = tokio::select! {
                _ = shutdown.cancelled() => break 'subscribe,
                read = api.read(&subscription.id) => read,
            };
            let mut held = match read {
                Ok(read) => read,
                Err(error) if error.status() == Some(404) => {
                    self.count_error("the subscription just granted could not be read back (404)".into()).await;
                    if !self.wait_retry(&shutdown, &mut backoff, &error).await {
                        break 'subscribe;
                    }
                    continue;
                }
                Err(error) => {
                    self.count_error(format!("reading the subscription back: {error}")).await;
                    subscription.clone()
                }
            };
            backoff = RETRY_FIRST;
            let granted_at = self.clock.now();
            let expires = held.expires.unwrap_or(granted_at + self.config.expires_in as Timestamp * 1000);
            held.expires = Some(expires);
            self.lock().subscription = Some(held.clone());
            // Believed within what was asked: a stale or skewed expiry must not make the keeper
            // renew in a loop, nor never.
            let asked = self.config.expires_in as Timestamp * 1000;
            if expires <= granted_at + 60_000 {
                self.count_error("Integrate granted a subscription that expires within a minute".into()).await;
            }
            let lifetime = (expires - granted_at).clamp(60_000, asked);
            let renew_at = granted_at + (lifetime as f64 * RENEW_AT) as Timestamp;
            let check_every = (lifetime / 8).clamp(1_000, CHECK_EVERY_MAX_MS);
            let mut next_check = granted_at + check_every;
            while next_check < renew_at {
                tokio::select! {
                    _ = shutdown.cancelled() => break 'subscribe,
                    _ = self.clock.sleep_until(next_check) => {}
                }
                let read = tokio::select! {
                    _ = shutdown.cancelled() => break 'subscribe,
                    read = api.read(&held.id) => read,
                };
                match read {
                    Ok(_) => {}
                    Err(error) if error.status() == Some(404) => {
                        tracing::warn!(provider = %self.name, "Integrate no longer has the subscription; creating it again");
                        self.count_error("the subscription was gone (404); created again".into()).await;
                        self.set_state("preparing", &[]).await;
                        continue 'subscribe;
                    }
                    Err(error) => self.count_error(format!("reading the subscription back: {error}")).await,
                }
                next_check += check_every;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break 'subscribe,
                _ = self.clock.sleep_until(renew_at) => {}
            }
        }
        let id = self.lock().subscription.as_ref().map(|s| s.id.clone());
        if let (true, Some(id)) = (self.config.delete_on_shutdown, id) {
            match tokio::time::timeout(Duration::from_secs(5), api.delete(&id)).await {
                Ok(Ok(())) => tracing::info!(provider = %self.name, "Versature subscription deleted"),
                Ok(Err(error)) => {
                    tracing::warn!(provider = %self.name, %error, "the Versature subscription could not be deleted")
                }
                Err(_) => tracing::warn!(provider = %self.name, "deleting the Versature subscription timed out"),
            }
        }
    }

    async fn subscription_failed(&self, doing: &str, error: &RestError) {
        let error = self.redacted(error.to_string());
        tracing::warn!(provider = %self.name, %error, "{doing} failed");
        self.count_error(format!("{doing}: {error}")).await;
        // Down once no granted subscription is still running.
        let now = self.clock.now();
        let running = self.lock().subscription.as_ref().and_then(|s| s.expires).is_some_and(|expires| expires > now);
        if !running {
            self.set_state("down", &[]).await;
        }
    }

    /// Waits out a backoff (longer when Integrate asks for it); false when shutting down.
    async fn wait_retry(&self, shutdown: &CancellationToken, backoff: &mut Duration, error: &RestError) -> bool {
        let asked = match error {
            RestError::Status { retry_after: Some(seconds), .. } => Duration::from_secs((*seconds).min(3_600)),
            _ => Duration::ZERO,
        };
        let wait = (*backoff).max(asked);
        *backoff = (*backoff * 2).min(RETRY_MAX);
        // On the connector's clock, so an accelerated test does not wait out a real backoff.
        let until = self.clock.now() + wait.as_millis() as Timestamp;
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = self.clock.sleep_until(until) => true,
        }
    }

    /// Takes in one delivery: subscription messages move health, call messages and CDRs go to
    /// the hub and are journaled before this returns.
    async fn take(&self, body: &[u8]) -> Result<(), HookRefusal> {
        let received = now_ms();
        let refuse = async |reason: String| {
            tracing::warn!(provider = %self.name, %reason, "Versature message refused");
            self.count_error(reason.clone()).await;
            Err(HookRefusal::Malformed(reason))
        };
        let (message, raw) = match wire::parse(body) {
            Ok(parsed) => parsed,
            Err(reason) => return refuse(reason).await,
        };
        let ids = Ids { provider: &self.name, account: ACCOUNT };
        // Each report with the raw payload it came from: a CDR's own record, not the whole list.
        let reports: Vec<(LegReport, Timestamp, Option<usize>)> = match &message {
            Message::Subscription { state, msg } => {
                tracing::info!(provider = %self.name, %state, %msg, "Versature subscription message");
                match state.as_str() {
                    "preparing" | "ready" => self.set_state(state, &[]).await,
                    // Acknowledged all the same: the seed asks for a 200 to every message, and a
                    // state it does not document is no fault of the delivery.
                    other => tracing::info!(
                        provider = %self.name,
                        state = %wire_shown(other),
                        "Versature subscription message in a state Callboard does not know; ignored"
                    ),
                }
                Vec::new()
            }
            Message::Call(call) => match call_reports(&ids, call, received) {
                Ok(reports) if reports.is_empty() => {
                    tracing::debug!(provider = %self.name, "Versature call message with no user endpoint; ignored");
                    Vec::new()
                }
                Ok(reports) => reports.into_iter().map(|(report, at)| (report, at, None)).collect(),
                Err(reason) => return refuse(reason).await,
            },
            // One unusable record does not cost the list's others: it is counted and skipped,
            // and the list acknowledged, since sending it again could not make it usable.
            Message::Cdrs(cdrs) => {
                let mut reports = Vec::new();
                for (index, cdr) in cdrs.iter().enumerate() {
                    match cdr_reports(&ids, cdr) {
                        Ok(more) => reports.extend(more.into_iter().map(|(report, at)| (report, at, Some(index)))),
                        Err(reason) => self.skip_cdr(format!("CDR {index}: {reason}")).await,
                    }
                }
                reports
            }
        };
        for (report, at, record) in reports {
            let mut event = Event::new(&self.name, ACCOUNT, at, EventKind::Leg(report));
            event.received_at = received;
            event.raw = match record {
                Some(index) => raw.get(index).cloned().unwrap_or_default(),
                None => raw.clone(),
            };
            match (self.hub.submit(event).await, record) {
                (Ok(_), _) => {}
                (Err(HubError::Stopped), _) => return Err(HookRefusal::Unavailable),
                (Err(HubError::Refused(reason)), Some(index)) => self.skip_cdr(format!("CDR {index}: {reason}")).await,
                (Err(HubError::Refused(reason)), None) => return refuse(reason).await,
            }
        }
        let health = self.lock().book.event(received);
        if let Some(health) = health {
            let _ = self.hub.report_health(health).await;
        }
        Ok(())
    }

    /// The Versature endpoint `call_id` a command is about: its leg, or the live leg of its
    /// call at its extension (or the only live leg of ours in it).
    async fn endpoint_of(&self, command: &Command) -> Result<(String, Option<String>), CommandError> {
        let (_, text) = self
            .hub
            .snapshot()
            .await
            .map_err(|_| CommandError::Unreachable("the live state is not available".into()))?;
        let Ok(Frame::Snapshot { snapshot, .. }) = serde_json::from_str(text.as_str()) else {
            return Err(CommandError::Unreachable("the live state could not be read".into()));
        };
        let legs: Vec<_> = snapshot
            .calls
            .iter()
            .flat_map(|call| &call.legs)
            .filter(|leg| !leg.state.is_ended() && leg.id.as_str().starts_with(&format!("{}/", self.name)))
            .filter(|leg| match (&command.leg, &command.call) {
                (Some(wanted), _) => &leg.id == wanted,
                (None, Some(call)) => {
                    &leg.call == call && command.extension.as_ref().is_none_or(|e| leg.extension.as_ref() == Some(e))
                }
                (None, None) => false,
            })
            .collect();
        match legs.as_slice() {
            [leg] => Ok((leg.id.native().to_owned(), leg.extension.as_ref().map(|e| e.native().to_owned()))),
            [] => Err(CommandError::Refused("there is no live call there".into())),
            _ => Err(CommandError::Refused("that call has more than one of our legs: say which".into())),
        }
    }

    async fn control(self: Arc<Self>, command: Command) -> Result<String, CommandError> {
        let Some(api) = self.api.clone() else {
            return Err(CommandError::Refused("Versature call control needs client_id and client_secret".into()));
        };
        let words = |error: RestError| match error {
            refused @ RestError::Status { status: 400..=499, .. } => {
                CommandError::Refused(format!("Versature refused: {refused}"))
            }
            other => CommandError::Unreachable(other.to_string()),
        };
        match command.action {
            Action::Dial => {
                let from = command.extension.as_ref().map(|e| e.native().to_owned());
                let from =
                    from.ok_or_else(|| CommandError::Refused("dialling needs the extension to call from".into()))?;
                let to = command.number.as_deref().map(str::trim).filter(|n| !n.is_empty());
                let to = to.ok_or_else(|| CommandError::Refused("dialling needs a number".into()))?;
                api.place_call(&from, to).await.map_err(words)?;
                Ok(format!("calling {to} from {from}"))
            }
            Action::Answer => {
                let (call_id, extension) = self.endpoint_of(&command).await?;
                let extension = extension.ok_or_else(|| CommandError::Refused("that leg is at no extension".into()))?;
                api.answer(&call_id, &extension).await.map_err(words)?;
                Ok(format!("answered at {extension}"))
            }
            Action::Hangup => {
                let (call_id, _) = self.endpoint_of(&command).await?;
                api.hang_up(&call_id).await.map_err(words)?;
                Ok("hung up".into())
            }
            other => Err(CommandError::Refused(format!("Versature's Integrate API offers no {other:?}"))),
        }
    }
}

fn wire_shown(text: &str) -> String {
    text.chars().take(40).collect()
}

impl WebhookReceiver for VersatureConnector {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn secret(&self) -> &str {
        &self.shared.config.webhook_secret
    }

    fn receive(&self, delivery: Delivery) -> BoxFuture<'static, Result<(), HookRefusal>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            if let Some(event) = delivery.event {
                let reason = format!("Versature posts to the hook path itself, not to /{}", wire_shown(&event));
                shared.count_error(reason.clone()).await;
                return Err(HookRefusal::UnknownEvent(reason));
            }
            if delivery.method != axum::http::Method::POST {
                let reason = "Versature messages come by POST".to_owned();
                shared.count_error(reason.clone()).await;
                return Err(HookRefusal::Malformed(reason));
            }
            shared.take(&delivery.body).await
        })
    }

    fn refused(&self, reason: &str) {
        let due = self.shared.lock().book.error(reason.to_owned());
        super::publish_soon(&self.shared.hub, due);
    }

    fn turned_away(&self) {
        let due = self.shared.lock().book.turned_away();
        super::publish_soon(&self.shared.hub, due);
    }
}

impl Connector for VersatureConnector {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> &[Action] {
        &self.capabilities
    }

    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>> {
        Box::pin(self.shared.clone().control(command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdrs_are_asked_for_only_when_configured_since_integrate_calls_them_beta() {
        let mut table = toml::Table::new();
        table.insert("public_url".into(), "https://board.example.com".into());
        assert!(!VersatureConfig::from_table(&table).unwrap().cdrs);
        table.insert("cdrs".into(), true.into());
        assert!(VersatureConfig::from_table(&table).unwrap().cdrs);
    }
}
