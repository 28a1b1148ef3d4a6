//! The simulator's Noojee face: the CallManagementAPI served over HTTP from the ground truth.
//!
//! Each extension leg of the simulated PBX is a channel with an Asterisk-style `uniqueCallId`.
//! Every change of a channel's `CallData` takes the next `seq`; `subscribe` with
//! `lastSequenceNumber = n` answers with the current state of every channel changed after `n`
//! (several per response), waiting up to `timeOut` seconds for one; so a client that comes back
//! after an outage or a restart with the last `seq` it took in hears everything it missed. With
//! 0 it answers at once with every channel it holds (live ones, and ended ones still kept).
//! A number it cannot answer for (from before a restart of its numbering, or older than its
//! log or its kept ended channels reach) gets the same full state at once with `seq` 0: the
//! seed does not say what a real server does then, and a `seq` below the one asked with is
//! what tells a client to resync. Commands go to the simulated PBX and answer
//! `{"Message","Code"}`.

use crate::connectors::noojee::end_cause;
use crate::connectors::noojee::wire::{CallData, Entry, Reply};
use crate::model::{
    Command, EndCause, Event, EventKind, ExtensionId, LegId, LegReport, LegState, LiveState, Timestamp,
};
use crate::sim::faults::{http_faults, Fault, Faults};
use crate::sim::harness::Picture;
use crate::sim::runner::{SimError, SimHandle};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{http::StatusCode, Json, Router};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Changes kept for `lastSequenceNumber` continuity; an older number gets the full state.
const LOG_KEEP: usize = 50_000;
/// Ended channels kept (and shown in the full state) so a client resyncing after an outage or
/// a restart still learns how they ended.
const ENDED_KEEP: usize = 10_000;
/// Recent changes kept as they were, for the duplicate fault to send again late.
const STALE_KEEP: usize = 256;
/// A restart is only injected once the numbering has reached this far: a client that is
/// behind by more than a restart's worth of changes could not tell a restart from progress.
const RESTART_AFTER_CHANGES: u64 = 100;
/// The longest `timeOut` honoured, seconds.
const MAX_TIMEOUT_S: u64 = 120;
/// Command requests remembered for tests to inspect.
const COMMAND_LOG_KEEP: usize = 256;
/// The API path prefix, as on a real server.
pub const BASE_PATH: &str = "/servicemanager/rest";

struct Channel {
    extension: String,
    leg: LegId,
    entry: Entry,
    ended: bool,
    /// The `seq` of its latest change.
    last_seq: u64,
}

#[derive(Default)]
struct FaceState {
    seq: u64,
    /// `(seq, uniqueCallId)` of every change still remembered, oldest first.
    log: VecDeque<(u64, String)>,
    /// `(seq, extension, entry)` of the most recent changes as they were then, oldest first.
    recent: VecDeque<(u64, String, Entry)>,
    channels: HashMap<String, Channel>,
    /// Ended channels, oldest end first, for forgetting them in order.
    ended: VecDeque<String>,
    /// The latest `seq` of any ended channel forgotten: a client behind it missed that channel's
    /// end, and the log alone cannot tell it.
    forgotten_through: u64,
    by_leg: HashMap<LegId, String>,
    next_unique: u64,
    next_call_id: i64,
    /// The `lastSequenceNumber` of a request now waiting for news: that client has everything
    /// before it.
    waiting: Option<u64>,
    commands: VecDeque<(String, BTreeMap<String, String>)>,
}

/// The face; cheap to clone (handlers share it).
#[derive(Clone)]
pub struct NoojeeFace {
    state: Arc<Mutex<FaceState>>,
    changed: Arc<watch::Sender<u64>>,
    faults: Arc<Faults>,
    api_key: String,
    /// The simulated PBX's provider and account, to name its extensions in commands.
    pbx: (String, String),
    sim: Option<SimHandle>,
}

/// A channel's status as Noojee names it: no hold, and no telling our dialling from the far
/// end ringing.
pub fn status_of(state: LegState) -> &'static str {
    match state {
        LegState::Initiating | LegState::RemoteRinging => "Dialing Out",
        LegState::Ringing | LegState::Queued => "Ringing",
        LegState::Active | LegState::Held | LegState::Parked | LegState::Detached => "Connected",
        LegState::Ended => "Hungup",
        LegState::Unknown => "Unknown",
    }
}

/// The `hangupCause` Noojee gives for an end cause (none for a normal end).
pub fn hangup_cause_of(cause: EndCause) -> Option<&'static str> {
    match cause {
        EndCause::Normal => None,
        EndCause::NoAnswer => Some("NO_ANSWER"),
        EndCause::Busy => Some("BUSY"),
        EndCause::Congestion => Some("CONGESTION"),
        _ => Some("DISCONNECTED"),
    }
}

impl NoojeeFace {
    /// A face for the simulated PBX named `pbx` (provider, account); commands go to `sim`.
    pub fn new(api_key: &str, pbx: (&str, &str), faults: Arc<Faults>, sim: Option<SimHandle>) -> Self {
        // Numbering starts at 1: 0 is the protocol's "send me everything now".
        let state = FaceState { seq: 1, next_unique: 400, next_call_id: 1, ..FaceState::default() };
        Self {
            state: Arc::new(Mutex::new(state)),
            changed: Arc::new(watch::channel(0).0),
            faults,
            api_key: api_key.to_owned(),
            pbx: (pbx.0.to_owned(), pbx.1.to_owned()),
            sim,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes in ground-truth events: every extension leg becomes (or updates) a channel.
    pub fn absorb(&self, events: &[Event]) {
        let mut state = self.lock();
        for event in events {
            let EventKind::Leg(report) = &event.kind else { continue };
            let Some(extension) = &report.extension else { continue };
            absorb_leg(&mut state, report, extension.native(), event.at);
        }
        let seq = state.seq;
        drop(state);
        self.changed.send_replace(seq);
    }

    /// The face's current `seq`.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// The `lastSequenceNumber` of the request waiting now, if one is.
    pub fn waiting(&self) -> Option<u64> {
        self.lock().waiting
    }

    /// True when a subscribe request is waiting with the face's current `seq`: that client has
    /// taken in every change so far.
    pub fn caught_up(&self) -> bool {
        let state = self.lock();
        state.waiting == Some(state.seq)
    }

    /// The command requests received, oldest first, without the API key.
    pub fn commands(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.lock().commands.iter().cloned().collect()
    }

    /// The ground truth as Noojee can show it, keyed by `uniqueCallId` and extension, for
    /// comparison with [`NoojeeFace::observed_picture`].
    pub fn truth_picture(&self, truth: &LiveState) -> Picture {
        let state = self.lock();
        let (extensions, calls, _) = truth.views_all();
        let mut lines = BTreeMap::new();
        for extension in &extensions {
            lines.insert(
                format!("extension {}", extension.id.native()),
                super::presence_name(extension.presence).to_owned(),
            );
        }
        for leg in calls.iter().flat_map(|call| &call.legs) {
            let (Some(extension), Some(unique)) = (&leg.extension, state.by_leg.get(&leg.id)) else { continue };
            let cause = leg.end_cause.map(|cause| end_cause(hangup_cause_of(cause), leg.answered_at.is_some()));
            lines.insert(format!("channel {unique}"), channel_line(leg.state, extension, cause));
        }
        Picture::from_lines(lines)
    }

    /// What a hub shows of a Noojee connector's provider: extensions from its snapshot, every
    /// channel (live or ended) from its call history.
    pub fn observed_picture(extensions: &[crate::model::Extension], calls: &[crate::model::Call]) -> Picture {
        let mut lines = BTreeMap::new();
        for extension in extensions {
            lines.insert(
                format!("extension {}", extension.id.native()),
                super::presence_name(extension.presence).to_owned(),
            );
        }
        for leg in calls.iter().flat_map(|call| &call.legs) {
            let Some(extension) = &leg.extension else { continue };
            lines.insert(format!("channel {}", leg.id.native()), channel_line(leg.state, extension, leg.end_cause));
        }
        Picture::from_lines(lines)
    }

    /// The HTTP API, with the faults as middleware.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/CallManagementAPI/subscribe", post(subscribe))
            .route("/CallManagementAPI/answer", post(answer))
            .route("/CallManagementAPI/hangup", post(hangup))
            .route("/CallManagementAPI/dial", post(dial))
            .route("/CallManagementAPI/start", get(record_start).post(record_start))
            .route("/CallManagementAPI/stop", get(record_stop).post(record_stop))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(self.faults.clone(), http_faults))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024));
        Router::new().nest(BASE_PATH, api)
    }
}

fn channel_line(state: LegState, extension: &ExtensionId, cause: Option<EndCause>) -> String {
    let cause = cause.map(|cause| format!(", {cause:?}")).unwrap_or_default();
    format!("{} at {}{cause}", status_of(state), extension.native())
}

fn absorb_leg(state: &mut FaceState, report: &LegReport, extension: &str, at: Timestamp) {
    let unique = match state.by_leg.get(&report.leg) {
        Some(unique) => unique.clone(),
        None => {
            state.next_unique += 1;
            let unique = format!("{}.{}", at.div_euclid(1000), state.next_unique);
            state.by_leg.insert(report.leg.clone(), unique.clone());
            unique
        }
    };
    let status = status_of(report.state);
    let previous = state.channels.get(&unique).map(|channel| channel.entry.call_data.clone());
    let started = previous.as_ref().map(|data| data.call_start_time.clone()).filter(|time| !time.is_empty());
    let call_start_time = started.unwrap_or_else(|| {
        if report.state.is_answered() {
            jiff::Timestamp::from_millisecond(at)
                .map(|t| t.strftime("%Y/%m/%d %H:%M:%S").to_string())
                .unwrap_or_default()
        } else {
            String::new()
        }
    });
    let data = CallData {
        can_answer: Some(report.state == LegState::Ringing && report.queue.is_none()),
        // As the seed shows it: no number while dialling out, the far end's once it answers.
        caller_id: if status == "Dialing Out" {
            String::new()
        } else {
            report.remote.number.clone().unwrap_or_default()
        },
        unique_call_id: unique.clone(),
        call_start_time,
        is_queue_call: report.queue.is_some(),
        is_click_to_dial_call: report.origin == crate::model::Origin::ClickToCall,
        inbound: report.direction == crate::model::Direction::Inbound,
        status: status.to_owned(),
        hangup_cause: report.end_cause.and_then(hangup_cause_of).map(str::to_owned),
        ..CallData::default()
    };
    if previous.as_ref() == Some(&data) {
        return;
    }
    state.seq += 1;
    let seq = state.seq;
    let call_id = match state.channels.get(&unique) {
        Some(channel) => channel.entry.call_id,
        None => {
            state.next_call_id += 1;
            state.next_call_id
        }
    };
    let ended = report.state.is_ended();
    let channel = Channel {
        extension: extension.to_owned(),
        leg: report.leg.clone(),
        entry: Entry { call_data: data, call_id, code: 0 },
        ended,
        last_seq: seq,
    };
    let newly_ended = ended && !state.channels.get(&unique).is_some_and(|channel| channel.ended);
    state.recent.push_back((seq, extension.to_owned(), channel.entry.clone()));
    state.channels.insert(unique.clone(), channel);
    if newly_ended {
        state.ended.push_back(unique.clone());
    }
    state.log.push_back((seq, unique));
    forget_old(state);
}

/// Keeps the log and the ended channels within their bounds, oldest out first.
fn forget_old(state: &mut FaceState) {
    while state.log.len() > LOG_KEEP {
        state.log.pop_front();
    }
    while state.recent.len() > STALE_KEEP {
        state.recent.pop_front();
    }
    while state.ended.len() > ENDED_KEEP {
        let Some(unique) = state.ended.pop_front() else { break };
        if let Some(channel) = state.channels.remove(&unique) {
            state.forgotten_through = state.forgotten_through.max(channel.last_seq);
            state.by_leg.remove(&channel.leg);
        }
    }
}

fn refused(message: &str) -> Response {
    Json(Reply::refused(message)).into_response()
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str).map(str::trim).filter(|value| !value.is_empty())
}

async fn subscribe(State(face): State<NoojeeFace>, Query(params): Query<HashMap<String, String>>) -> Response {
    if param(&params, "apiKey") != Some(face.api_key.as_str()) {
        return refused("Invalid apiKey");
    }
    let Some(extensions) = param(&params, "exten") else { return refused("exten is mandatory") };
    let wanted: HashSet<String> = extensions.split(',').map(|e| e.trim().to_owned()).collect();
    let Some(last) = param(&params, "lastSequenceNumber").and_then(|value| value.parse::<u64>().ok()) else {
        return refused("lastSequenceNumber is mandatory");
    };
    let timeout_s = param(&params, "timeOut").and_then(|value| value.parse::<u64>().ok()).unwrap_or(10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s.min(MAX_TIMEOUT_S));

    // One fault at most per response, so the response that shows a restart is never the one
    // lost; and no restart before the numbering has run a while, as a real PBX's would.
    let fault = match face.faults.roll(&[Fault::SequenceReset, Fault::Drop, Fault::Duplicate, Fault::Reorder]) {
        Some(Fault::SequenceReset) if face.lock().seq < RESTART_AFTER_CHANGES => None,
        fault => fault,
    };
    if fault == Some(Fault::SequenceReset) {
        restart_numbering(&mut face.lock());
    }
    let mut changed = face.changed.subscribe();
    let (mut entries, seq) = loop {
        let (found, seq, known) = collect(&face.lock(), last, &wanted);
        if !found.is_empty() || last == 0 || !known || tokio::time::Instant::now() >= deadline {
            break (found, seq);
        }
        face.lock().waiting = Some(last);
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
        face.lock().waiting = None;
    };
    // The minimum poll period of a real server.
    tokio::time::sleep(Duration::from_millis(5)).await;
    match fault {
        Some(Fault::Drop) => return (StatusCode::BAD_GATEWAY, "simulated fault: drop").into_response(),
        Some(Fault::Duplicate) => {
            let state = face.lock();
            let again: Vec<(String, Value)> = state
                .log
                .iter()
                .rev()
                .filter(|(change, _)| *change <= last)
                .take(5)
                .filter_map(|(_, unique)| state.channels.get(unique))
                .filter(|channel| wanted.contains(&channel.extension))
                .map(|channel| (channel.extension.clone(), entry_json(&channel.entry)))
                .collect();
            entries.extend(again);
            // And, after them, a few changes the client already has, as they were: late news of
            // channels that have moved on since (a `Ringing` after its `Connected`).
            let late: Vec<(String, Value)> = state
                .recent
                .iter()
                .rev()
                .filter(|(change, extension, _)| *change <= last && wanted.contains(extension))
                .filter(|(_, _, then)| {
                    let then_rank = status_rank(&then.call_data.status);
                    state
                        .channels
                        .get(&then.call_data.unique_call_id)
                        .is_some_and(|now| then_rank > 0 && then_rank < status_rank(&now.entry.call_data.status))
                })
                .take(3)
                .map(|(_, extension, then)| (extension.clone(), entry_json(then)))
                .collect();
            entries.extend(late);
        }
        Some(Fault::Reorder) => entries.reverse(),
        _ => {}
    }
    let mut data = Map::new();
    for (extension, entry) in entries {
        let list = data.entry(extension).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.push(entry);
        }
    }
    Json(serde_json::json!({ "Data": data, "seq": seq, "Code": 0 })).into_response()
}

fn entry_json(entry: &Entry) -> Value {
    serde_json::to_value(entry).unwrap_or(Value::Null)
}

/// How far a channel with this status has got: 1 before an answer, 2 answered, 3 ended, 0 for
/// a status that says nothing of it.
fn status_rank(status: &str) -> u8 {
    match status {
        "Dialing Out" | "Ringing" => 1,
        "Connected" => 2,
        "Hungup" => 3,
        _ => 0,
    }
}

/// The entries a request after `last` gets, oldest change first, the `seq` to answer with, and
/// whether `last` was a number the face can answer for (to be waited on). 0 gets every channel
/// it holds (the live ones and the recently ended) with the current `seq`; a number it cannot
/// answer for (too old for its log or its kept ended channels, or from before a restart) gets
/// the same with `seq` 0, which tells the client to resync.
fn collect(state: &FaceState, last: u64, wanted: &HashSet<String>) -> (Vec<(String, Value)>, u64, bool) {
    let oldest = state.log.front().map_or(state.seq + 1, |(seq, _)| *seq);
    let known = last == 0 || (last <= state.seq && last.saturating_add(1) >= oldest && last >= state.forgotten_through);
    let incremental = known && last != 0;
    let mut channels: Vec<(&String, &Channel)> = if incremental {
        let mut seen = HashSet::new();
        let mut changed: Vec<&String> = Vec::new();
        for (_, unique) in state.log.iter().rev().take_while(|(seq, _)| *seq > last) {
            if seen.insert(unique) {
                changed.push(unique);
            }
        }
        changed.into_iter().filter_map(|unique| state.channels.get_key_value(unique)).collect()
    } else {
        state.channels.iter().collect()
    };
    channels.sort_by_key(|(unique, channel)| (channel.last_seq, *unique));
    let entries = channels
        .into_iter()
        .filter(|(_, channel)| wanted.contains(&channel.extension))
        .map(|(_, channel)| (channel.extension.clone(), entry_json(&channel.entry)))
        .collect();
    (entries, if known { state.seq } else { 0 }, known)
}

/// A PBX restart as a client sees it: numbering starts again (at 1), the channels stay.
fn restart_numbering(state: &mut FaceState) {
    state.log.clear();
    state.recent.clear();
    state.forgotten_through = 0;
    state.seq = 1;
    for channel in state.channels.values_mut() {
        channel.last_seq = 0;
    }
}

/// Records a command request (without the key) and says whether its key is right.
fn command_request(face: &NoojeeFace, method: &str, params: &HashMap<String, String>) -> bool {
    let mut state = face.lock();
    let shown: BTreeMap<String, String> =
        params.iter().filter(|(name, _)| *name != "apiKey").map(|(k, v)| (k.clone(), v.clone())).collect();
    state.commands.push_back((method.to_owned(), shown));
    if state.commands.len() > COMMAND_LOG_KEEP {
        state.commands.pop_front();
    }
    param(params, "apiKey") == Some(face.api_key.as_str())
}

/// The simulated leg behind a `uniqueCallId`, or the live one at an extension.
fn leg_of(face: &NoojeeFace, exten_or_unique: &str) -> Option<LegId> {
    let state = face.lock();
    if let Some(channel) = state.channels.get(exten_or_unique) {
        return Some(channel.leg.clone());
    }
    let number = exten_or_unique.rsplit('/').next().unwrap_or(exten_or_unique);
    state.channels.values().find(|channel| !channel.ended && channel.extension == number).map(|c| c.leg.clone())
}

async fn to_pbx(face: &NoojeeFace, command: Command) -> Response {
    let Some(sim) = &face.sim else { return refused("the simulated PBX takes no commands") };
    match sim.command(command).await {
        Ok(message) => Json(Reply::ok(&message)).into_response(),
        Err(SimError::Refused(reason)) => refused(&reason),
        Err(SimError::Stopped) => (StatusCode::SERVICE_UNAVAILABLE, "the simulated PBX has stopped").into_response(),
    }
}

fn command(face: &NoojeeFace, action: crate::model::Action, leg: Option<LegId>, extension: Option<&str>) -> Command {
    Command {
        action,
        call: None,
        leg,
        extension: extension.map(|number| ExtensionId::new(&face.pbx.0, &face.pbx.1, number)),
        number: None,
    }
}

async fn answer(State(face): State<NoojeeFace>, Query(params): Query<HashMap<String, String>>) -> Response {
    if !command_request(&face, "answer", &params) {
        return refused("Invalid apiKey");
    }
    let (Some(unique), Some(extension)) = (param(&params, "uniqueId"), param(&params, "exten")) else {
        return refused("uniqueId and exten are mandatory");
    };
    let found =
        face.lock().channels.get(unique).map(|channel| (channel.leg.clone(), channel.entry.call_data.can_answer));
    let Some((leg, can_answer)) = found else {
        return refused("Channel not found");
    };
    // As the seed says of canAnswer: a queue call, or one already answered, is not answered
    // from the API.
    if can_answer == Some(false) {
        return refused("Call cannot be answered");
    }
    to_pbx(&face, command(&face, crate::model::Action::Answer, Some(leg), Some(extension))).await
}

async fn hangup(State(face): State<NoojeeFace>, Query(params): Query<HashMap<String, String>>) -> Response {
    if !command_request(&face, "hangup", &params) {
        return refused("Invalid apiKey");
    }
    let Some(target) = param(&params, "extenOrUniqueId") else { return refused("extenOrUniqueId is mandatory") };
    let Some(leg) = leg_of(&face, target) else { return refused("Channel not found") };
    to_pbx(&face, command(&face, crate::model::Action::Hangup, Some(leg), None)).await
}

async fn dial(State(face): State<NoojeeFace>, Query(params): Query<HashMap<String, String>>) -> Response {
    if !command_request(&face, "dial", &params) {
        return refused("Invalid apiKey");
    }
    let (Some(number), Some(from)) = (param(&params, "number"), param(&params, "extenOrUniqueId")) else {
        return refused("number and extenOrUniqueId are mandatory");
    };
    let Some(extension) = from.split_once('/').map(|(_, number)| number) else {
        return refused("extenOrUniqueId must include the technology, e.g. SIP/100");
    };
    let mut dial = command(&face, crate::model::Action::Dial, None, Some(extension));
    dial.number = Some(number.to_owned());
    let Some(sim) = &face.sim else { return refused("the simulated PBX takes no commands") };
    match sim.command(dial).await {
        Ok(_) => {
            let session = face.lock().next_unique + 1;
            Json(Reply { message: "Dialling".into(), code: 0, session_id: Some(Value::from(session)) }).into_response()
        }
        Err(SimError::Refused(reason)) => refused(&reason),
        Err(SimError::Stopped) => (StatusCode::SERVICE_UNAVAILABLE, "the simulated PBX has stopped").into_response(),
    }
}

async fn record(face: NoojeeFace, params: HashMap<String, String>, action: crate::model::Action) -> Response {
    let method = if action == crate::model::Action::RecordStart { "start" } else { "stop" };
    if !command_request(&face, method, &params) {
        return refused("Invalid apiKey");
    }
    let Some(target) = param(&params, "extenOrUniqueId") else { return refused("extenOrUniqueId is mandatory") };
    let Some(leg) = leg_of(&face, target) else { return refused("Channel not found") };
    to_pbx(&face, command(&face, action, Some(leg), None)).await
}

async fn record_start(State(face): State<NoojeeFace>, Query(params): Query<HashMap<String, String>>) -> Response {
    record(face, params, crate::model::Action::RecordStart).await
}

async fn record_stop(State(face): State<NoojeeFace>, Query(params): Query<HashMap<String, String>>) -> Response {
    record(face, params, crate::model::Action::RecordStop).await
}
