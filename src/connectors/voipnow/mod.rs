//! The 4PSA VoipNow connector: Call Event callbacks (Dial-In, Dial-Out, Hangup and the two
//! Answer events) received on one hook path per event type, and, with UnifiedAPI configured,
//! the callbacks registered automatically and click-to-call and hang-up through PhoneCalls.
//!
//! Callbacks carry no time and no sequence and may come twice or out of order, so each leg
//! remembers how far it has come and a callback that would take it back is dropped as late:
//! every callback is an idempotent upsert, and a Hangup that arrives first still ends the leg.

mod kept;
mod mapping;
pub mod uapi;
pub mod wire;

pub use mapping::{end_cause, flow_in, leg_state, observe, Observation};

use super::{CommandError, Connector, Delivery, HookRefusal, WebhookReceiver};
use crate::hub::{now_ms, Hub};
use crate::model::{
    Action, CallId, Command, ConnectorHealth, Event, EventKind, ExtensionId, LegId, LegReport, LegState, Origin,
    Timestamp,
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wire::{CallEventType, CallParams};

/// The account part of VoipNow ids: one connector is one VoipNow organisation.
pub const ACCOUNT: &str = "pbx";
/// Legs remembered for ordering callbacks; the oldest are forgotten first.
const MAX_LEGS: usize = 50_000;
/// Registering the Call Events is retried after this long, doubling up to the maximum.
const REGISTER_RETRY_FIRST: Duration = Duration::from_secs(5);
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(300);

/// `[[provider]] kind = "voipnow"` keys.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VoipNowConfig {
    /// Where VoipNow reaches this Callboard, e.g. `https://board.example.com`.
    pub public_url: String,
    /// The secret in the hook paths; generated and stored when empty. Best given by environment.
    #[serde(default)]
    pub webhook_secret: String,
    /// Extended extension numbers (`0003*210`) to show from the start and, with UnifiedAPI,
    /// to register the Call Events on.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// The VoipNow server root (`https://voipnow.example.com`) for UnifiedAPI; optional.
    #[serde(default)]
    pub uapi_url: String,
    #[serde(default)]
    pub client_id: String,
    /// Best given by environment.
    #[serde(default)]
    pub client_secret: String,
    /// Best given by environment.
    #[serde(default)]
    pub refresh_token: String,
    /// How registered Call Events call us: `post` (form body) or `get`.
    #[serde(default = "default_event_method")]
    pub event_method: String,
}

fn default_event_method() -> String {
    "post".into()
}

impl std::fmt::Debug for VoipNowConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoipNowConfig")
            .field("public_url", &self.public_url)
            .field("webhook_secret", &"(secret)")
            .field("extensions", &self.extensions)
            .field("uapi_url", &self.uapi_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"(secret)")
            .field("refresh_token", &"(secret)")
            .field("event_method", &self.event_method)
            .finish()
    }
}

impl VoipNowConfig {
    /// Reads and checks a provider table.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let config: VoipNowConfig = table.clone().try_into().map_err(|error: toml::de::Error| error.to_string())?;
        let is_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if !is_url(&config.public_url) {
            return Err(format!("public_url {:?} must start with http:// or https://", config.public_url));
        }
        super::check_webhook_secret(&config.webhook_secret)?;
        if config.extensions.iter().any(|e| e.trim().is_empty() || e.contains('/')) {
            return Err("extensions must be extension numbers such as \"0003*210\", none empty".into());
        }
        let uapi = [&config.uapi_url, &config.client_id, &config.client_secret, &config.refresh_token];
        if uapi.iter().any(|key| !key.is_empty()) && uapi.iter().any(|key| key.is_empty()) {
            return Err("UnifiedAPI needs all of uapi_url, client_id, client_secret and refresh_token".into());
        }
        if !config.uapi_url.is_empty() && !is_url(&config.uapi_url) {
            return Err(format!("uapi_url {:?} must start with http:// or https://", config.uapi_url));
        }
        if !["post", "get"].contains(&config.event_method.as_str()) {
            return Err(format!("event_method {:?} must be post or get", config.event_method));
        }
        Ok(config)
    }

    /// Fills in the webhook secret when none is configured (see [`super::resolve_secret`]).
    pub async fn resolve_secret(&mut self, store: &crate::store::Store, name: &str) -> Result<(), String> {
        super::resolve_secret(&mut self.webhook_secret, store, name).await
    }

    /// Whether call control and automatic registration are configured.
    pub fn has_uapi(&self) -> bool {
        !self.uapi_url.is_empty()
    }

    /// The URL VoipNow calls for one event type of provider `name`.
    pub fn hook_url(&self, name: &str, event: CallEventType) -> String {
        format!("{}/hooks/{name}/{}/{}", self.public_url.trim_end_matches('/'), self.webhook_secret, event.path())
    }
}

/// How far a leg has come, as callbacks told it.
struct LegMemory {
    /// The call it belongs to (native id), fixed by its first callback.
    call: String,
    state: LegState,
    /// The other party's number, for hanging up through UnifiedAPI.
    remote: Option<String>,
}

/// What the callbacks share: leg memory (for ordering) and health.
struct Inner {
    legs: HashMap<(String, String), LegMemory>,
    order: VecDeque<(String, String)>,
    book: super::HealthBook,
    /// The latest event time given out: times are unique and rising across the connector.
    clock: Timestamp,
}

/// The running VoipNow connector: a webhook receiver, and a command target when UnifiedAPI is
/// configured.
pub struct VoipNowConnector {
    callbacks: Arc<Callbacks>,
    capabilities: Vec<Action>,
}

/// The callback side, shared with the futures that take deliveries in.
struct Callbacks {
    name: String,
    config: Arc<VoipNowConfig>,
    hub: Hub,
    inner: Mutex<Inner>,
    uapi: Option<Arc<uapi::UnifiedApi>>,
}

/// What `plan` decided for one callback, with what undoing it needs.
struct Plan {
    /// The reports to submit, with their (rising) times; none for a duplicate or late one.
    reports: Vec<(LegReport, Timestamp)>,
    /// Health to publish, when it is due.
    health: Option<ConnectorHealth>,
    key: (String, String),
    before: Option<LegState>,
    after: LegState,
}

/// What a callback became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Applied (or at least handed to the hub) as this leg state.
    Applied(LegState),
    /// The leg had already come this far: a duplicate or a late callback.
    Late,
}

impl VoipNowConnector {
    /// Starts the connector (after re-remembering the live legs the hub rebuilt, so no
    /// callback is taken before); with UnifiedAPI it also registers the Call Events in the
    /// background. The newest UnifiedAPI refresh token is kept among the provider's secrets in
    /// `store` and read back at the next start (until the configured one changes): VoipNow may
    /// rotate refresh tokens, and after a restart the configured one would be refused, ending
    /// call control and the Call Events registration.
    pub async fn start(
        name: &str,
        config: VoipNowConfig,
        hub: Hub,
        store: crate::store::Store,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let config = Arc::new(config);
        let uapi = config
            .has_uapi()
            .then(|| Arc::new(uapi::UnifiedApi::new(config.clone(), super::http_client(), store, name)));
        let capabilities = if uapi.is_some() { uapi::CAPABILITIES.to_vec() } else { Vec::new() };
        let health = ConnectorHealth {
            name: name.to_owned(),
            provider_kind: "voipnow".into(),
            state: "ready".into(),
            capabilities: capabilities.clone(),
            ..Default::default()
        };
        let inner =
            Inner { legs: HashMap::new(), order: VecDeque::new(), book: super::HealthBook::new(health), clock: 0 };
        let callbacks = Arc::new(Callbacks {
            name: name.to_owned(),
            config: config.clone(),
            hub: hub.clone(),
            inner: Mutex::new(inner),
            uapi: uapi.clone(),
        });
        callbacks.remember_live_legs().await;
        let announcing = callbacks.clone();
        tokio::spawn(async move {
            announcing.announce_extensions().await;
            let Some(uapi) = uapi else { return };
            // Until VoipNow has our Call Events: it may be down or refusing when we start.
            let mut backoff = REGISTER_RETRY_FIRST;
            loop {
                let outcome = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    outcome = uapi.register_call_events(&announcing.name) => outcome,
                };
                let done = outcome.is_ok();
                announcing.registered(outcome).await;
                if done {
                    return;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(REGISTER_RETRY_MAX);
            }
        });
        Arc::new(Self { callbacks, capabilities })
    }

    /// The connector's health as last counted.
    pub fn health(&self) -> ConnectorHealth {
        self.callbacks.lock().book.health.clone()
    }

    /// Takes in one callback of type `event` (what the hook route does after parsing).
    pub async fn take(&self, event: CallEventType, params: CallParams) -> Result<Taken, HookRefusal> {
        self.callbacks.take(event, params).await
    }

    /// The hook URL of one event type, secret included: for registering, never for logs.
    pub fn hook_url(&self, event: CallEventType) -> String {
        self.callbacks.config.hook_url(&self.callbacks.name, event)
    }
}

impl Callbacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// After a restart the hub has rebuilt our live legs from its journal: remember how far
    /// each has come, so a late callback cannot take one back.
    async fn remember_live_legs(&self) {
        let Some(snapshot) = self.hub.live_state().await else { return };
        let mut inner = self.lock();
        for call in snapshot.calls.iter().filter(|call| call.id.as_str().starts_with(&format!("{}/", self.name))) {
            for leg in &call.legs {
                let Some(extension) = leg.extension.as_ref().map(|e| e.native()) else { continue };
                let Some(call_id) = leg.id.native().strip_suffix(&format!("@{extension}")) else { continue };
                let key = (call_id.to_owned(), extension.to_owned());
                if inner.legs.contains_key(&key) {
                    continue;
                }
                let memory = LegMemory {
                    call: call.id.native().to_owned(),
                    state: leg.state,
                    remote: leg.remote.number.clone(),
                };
                inner.legs.insert(key.clone(), memory);
                inner.order.push_back(key);
            }
        }
    }

    async fn announce_extensions(&self) {
        super::announce_extensions(&self.hub, &self.name, ACCOUNT, &self.config.extensions).await;
        let health = self.lock().book.health.clone();
        let _ = self.hub.report_health(health).await;
    }

    async fn registered(&self, outcome: Result<uapi::Registered, uapi::UapiError>) {
        match outcome {
            Ok(registered) => tracing::info!(
                provider = %self.name,
                created = registered.created,
                present = registered.present,
                refused = registered.refused,
                "VoipNow Call Events registered"
            ),
            Err(error) => {
                // VoipNow may echo the hook URL it was sent, which carries the webhook secret.
                let error = super::without_secret(error.to_string(), &self.config.webhook_secret);
                tracing::warn!(provider = %self.name, %error, "VoipNow Call Events could not be registered");
                self.count_error(format!("registering the Call Events: {error}")).await;
            }
        }
    }

    async fn count_error(&self, text: String) {
        let text = super::without_secret(text, &self.config.webhook_secret);
        let health = {
            let mut inner = self.lock();
            inner.book.error(text);
            inner.book.publish()
        };
        let _ = self.hub.report_health(health).await;
    }

    /// Takes in one callback of type `event`: the reports it makes go to the hub and are
    /// journaled before this returns.
    async fn take(&self, event: CallEventType, params: CallParams) -> Result<Taken, HookRefusal> {
        let plan = match self.plan(event, &params) {
            Ok(plan) => plan,
            Err(reason) => {
                tracing::warn!(provider = %self.name, %reason, "VoipNow callback refused");
                self.count_error(reason.clone()).await;
                return Err(HookRefusal::Malformed(reason));
            }
        };
        let raw = params.to_json();
        let taken = plan.reports.last().map_or(Taken::Late, |(report, _)| Taken::Applied(report.state));
        for (report, at) in &plan.reports {
            let mut event = Event::new(&self.name, ACCOUNT, *at, EventKind::Leg(report.clone()));
            event.raw = raw.clone();
            match self.hub.submit(event).await {
                Ok(_) => {}
                Err(crate::hub::HubError::Stopped) => {
                    self.undo(&plan);
                    return Err(HookRefusal::Unavailable);
                }
                Err(crate::hub::HubError::Refused(reason)) => {
                    self.undo(&plan);
                    tracing::warn!(provider = %self.name, %reason, "VoipNow callback refused by the live model");
                    self.count_error(reason.clone()).await;
                    return Err(HookRefusal::Malformed(reason));
                }
            }
        }
        if let Some(health) = plan.health {
            let _ = self.hub.report_health(health).await;
        }
        Ok(taken)
    }

    /// Decides, under the lock, what a callback changes: nothing when the leg has already come
    /// as far, else the reports to submit with their (rising) times. Also counts it.
    fn plan(&self, event: CallEventType, params: &CallParams) -> Result<Plan, String> {
        let mut inner = self.lock();
        let observation = match flow_in(event, params) {
            Some(inbound) => observe(event, params, inbound)?,
            // A Hangup that does not say its side: the side whose leg is live here, else the
            // called side, else whichever side it names.
            None => {
                let call_id = params.call_id.clone().unwrap_or_default();
                let live = |extension: &Option<String>| {
                    extension.as_ref().is_some_and(|e| {
                        inner.legs.get(&(call_id.clone(), e.clone())).is_some_and(|leg| !leg.state.is_ended())
                    })
                };
                let inbound = !live(&params.caller_extension) || live(&params.called_extension);
                observe(event, params, inbound).or_else(|_| observe(event, params, !inbound))?
            }
        };
        let key = (observation.call_id.clone(), observation.extension.clone());
        let now = now_ms().max(inner.clock + 1);
        let known = inner.legs.get(&key).map(|leg| (leg.call.clone(), leg.state));
        let call = match &known {
            Some((call, _)) => call.clone(),
            None => observation.conversation.clone().unwrap_or_else(|| observation.call_id.clone()),
        };
        let before = known.as_ref().map(|(_, state)| *state);
        let rank = |state: LegState| match state {
            LegState::Ended => 3,
            state if state.is_answered() => 2,
            _ => 1,
        };
        let mut reports = Vec::new();
        let key_kept = key.clone();
        if before.is_none_or(|before| rank(observation.state) > rank(before)) {
            let mut at = now;
            // A Hangup saying ANSWER of a leg never seen answered: it was (the Answer events are
            // optional), so history counts it answered.
            if observation.answered && before.is_none_or(|before| rank(before) < 2) {
                reports.push((self.report(&observation, &call, LegState::Active), at));
                at += 1;
            }
            reports.push((self.report(&observation, &call, observation.state), at));
            inner.clock = at;
            match inner.legs.get_mut(&key) {
                Some(leg) => leg.state = observation.state,
                None => {
                    let remote = observation.remote.number.clone();
                    inner.legs.insert(key.clone(), LegMemory { call, state: observation.state, remote });
                    inner.order.push_back(key);
                    while inner.order.len() > MAX_LEGS {
                        if let Some(old) = inner.order.pop_front() {
                            inner.legs.remove(&old);
                        }
                    }
                }
            }
        }
        let health = inner.book.event(now);
        Ok(Plan { reports, health, key: key_kept, before, after: observation.state })
    }

    /// Takes back what `plan` remembered when the hub did not take its reports, so the
    /// sender's retry is not mistaken for a duplicate.
    fn undo(&self, plan: &Plan) {
        let mut inner = self.lock();
        let Some(leg) = inner.legs.get_mut(&plan.key) else { return };
        if leg.state != plan.after {
            return; // A later callback moved it on; that one stands.
        }
        match plan.before {
            Some(before) => leg.state = before,
            None => {
                inner.legs.remove(&plan.key);
            }
        }
    }

    fn report(&self, observation: &Observation, call: &str, state: LegState) -> LegReport {
        let leg = format!("{}@{}", observation.call_id, observation.extension);
        LegReport {
            leg: LegId::new(&self.name, ACCOUNT, &leg),
            call: CallId::new(&self.name, ACCOUNT, call),
            extension: Some(ExtensionId::new(&self.name, ACCOUNT, &observation.extension)),
            state,
            held_by: None,
            direction: observation.direction,
            origin: match &self.uapi {
                Some(uapi) if observation.conversation.as_deref().is_some_and(|id| uapi.placed(id)) => {
                    Origin::ClickToCall
                }
                _ => Origin::Normal,
            },
            local: observation.local.clone(),
            remote: observation.remote.clone(),
            queue: None,
            end_cause: if state.is_ended() { observation.end_cause } else { None },
            raw_cause: if state.is_ended() { observation.call_status.clone() } else { None },
            raw_state: observation.raw_state.clone(),
            recording: None,
            revision: 0,
        }
    }

    /// Where the live leg a command names is (by leg, else by call); `None` when there is none
    /// or when the call has more than one of our legs and the command does not say which.
    fn live_leg_of(&self, command: &Command) -> Option<uapi::LegAt> {
        let inner = self.lock();
        let wanted_leg = command.leg.as_ref().map(|leg| leg.native().to_owned());
        let found: Vec<uapi::LegAt> = inner
            .legs
            .iter()
            .filter(|((call_id, extension), memory)| {
                let matches = match (&wanted_leg, &command.call) {
                    (Some(leg), _) => *leg == format!("{call_id}@{extension}"),
                    (None, Some(call)) => call.native() == memory.call,
                    (None, None) => false,
                };
                matches && !memory.state.is_ended()
            })
            .map(|((_, extension), memory)| uapi::LegAt { extension: extension.clone(), remote: memory.remote.clone() })
            .collect();
        (found.len() == 1).then(|| found.into_iter().next()).flatten()
    }
}

impl WebhookReceiver for VoipNowConnector {
    fn name(&self) -> &str {
        &self.callbacks.name
    }

    fn secret(&self) -> &str {
        &self.callbacks.config.webhook_secret
    }

    fn receive(&self, delivery: Delivery) -> BoxFuture<'static, Result<(), HookRefusal>> {
        let this = self.callbacks.clone();
        Box::pin(async move {
            let path = delivery.event.clone().unwrap_or_default();
            let Some(event) = CallEventType::from_path(&path) else {
                let reason = format!("a callback for an unknown event path {:?}", wire::shown(&path));
                this.count_error(reason.clone()).await;
                return Err(HookRefusal::UnknownEvent(reason));
            };
            let params = match params_of(&delivery) {
                Ok(params) => params,
                Err(reason) => {
                    this.count_error(reason.clone()).await;
                    return Err(HookRefusal::Malformed(reason));
                }
            };
            this.take(event, params).await.map(|_| ())
        })
    }

    fn refused(&self, reason: &str) {
        let due = self.callbacks.lock().book.error(reason.to_owned());
        super::publish_soon(&self.callbacks.hub, due);
    }

    fn turned_away(&self) {
        let due = self.callbacks.lock().book.turned_away();
        super::publish_soon(&self.callbacks.hub, due);
    }
}

/// The parameters of a delivery: the query of a GET, the body of a POST (JSON when it says so
/// or looks like it, else a form; an empty body falls back to the query).
pub fn params_of(delivery: &Delivery) -> Result<CallParams, String> {
    if delivery.method == axum::http::Method::GET || delivery.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CallParams::from_form(delivery.query.as_bytes()));
    }
    let json = delivery.content_type.as_deref().is_some_and(|kind| kind.to_ascii_lowercase().contains("json"))
        || delivery.body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if json {
        CallParams::from_json(&delivery.body)
    } else if std::str::from_utf8(&delivery.body).is_err() {
        Err("the form body is not UTF-8 text".into())
    } else {
        Ok(CallParams::from_form(&delivery.body))
    }
}

impl Connector for VoipNowConnector {
    fn name(&self) -> &str {
        &self.callbacks.name
    }

    fn capabilities(&self) -> &[Action] {
        &self.capabilities
    }

    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>> {
        let Some(uapi) = self.callbacks.uapi.clone() else {
            return Box::pin(async {
                Err(CommandError::Refused(
                    "VoipNow call control needs UnifiedAPI: set uapi_url, client_id, client_secret and refresh_token"
                        .into(),
                ))
            });
        };
        let leg = self.callbacks.live_leg_of(&command);
        Box::pin(async move { uapi.control(command, leg).await })
    }
}
