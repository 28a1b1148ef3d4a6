//! The simulated call center: reproducible ground truth, a hub that keeps up with it exactly,
//! a PBX that honours and refuses commands as a PBX would, and commands from the HTTP API that
//! reach the simulation and come back as events.
#![cfg(feature = "ssr")]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use callboard::hub::{Hub, HubSettings};
use callboard::model::*;
use callboard::server::config::{Config, DemoConfig};
use callboard::server::{router::router, AppState};
use callboard::sim::faults::{FaultRates, Faults};
use callboard::sim::harness::{hub_snapshot, DirectRun};
use callboard::sim::scenario::QueuePlan;
use callboard::sim::{Pbx, Scenario};
use callboard::store::Store;
use http_body_util::BodyExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const HOUR: i64 = 3_600_000;

fn events_of(seed: u64, hours: i64) -> Vec<Event> {
    let scenario = Scenario { seed, ..Scenario::demo() };
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(scenario, "sim", "cc", start);
    pbx.advance_to(start + hours * HOUR);
    pbx.take_events()
}

#[test]
fn the_same_seed_gives_the_same_ground_truth() {
    let first = events_of(7, 2);
    assert!(first.len() > 3000, "two busy hours make thousands of events, got {}", first.len());
    assert_eq!(first, events_of(7, 2));
    assert_ne!(first, events_of(8, 2));
}

#[test]
fn the_ground_truth_is_a_legal_history_with_every_behaviour() {
    let events = events_of(3, 3);
    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for event in &events {
        if let Outcome::Refused(reason) = state.apply(event) {
            panic!("the model refused the simulation's own event {event:?}: {reason}");
        }
    }
    let legs: Vec<&LegReport> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Leg(report) => Some(report),
            _ => None,
        })
        .collect();
    let seen = |state: LegState| legs.iter().any(|leg| leg.state == state);
    for state in [LegState::Ringing, LegState::RemoteRinging, LegState::Active, LegState::Held, LegState::Ended] {
        assert!(seen(state), "no leg was ever {state:?}");
    }
    for cause in [EndCause::NoAnswer, EndCause::Busy, EndCause::Cancelled] {
        assert!(legs.iter().any(|leg| leg.end_cause == Some(cause)), "no leg ended {cause:?}");
    }
    let ended = |cause: EndCause| {
        events.iter().any(|event| matches!(&event.kind, EventKind::CallEnded { cause: c, .. } if *c == cause))
    };
    assert!(ended(EndCause::QueueAbandoned) && ended(EndCause::Normal));
    let statuses: Vec<&AgentStatus> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::AgentStatus { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert!(statuses.iter().any(|status| matches!(status, AgentStatus::Break(_))), "nobody took a break");
    assert!(statuses.contains(&&AgentStatus::LoggedOut), "nobody logged out");
    // Transfers: some call has legs at two different extensions.
    let (_, calls, _) = state.views_all();
    let transferred = calls.iter().filter(|call| {
        let mut extensions: Vec<_> = call.legs.iter().filter_map(|leg| leg.extension.clone()).collect();
        extensions.dedup();
        call.direction == Direction::Inbound && extensions.len() > 1
    });
    assert!(transferred.count() > 3, "transfers happen");
}

#[tokio::test]
async fn scenario_figures_and_truth_match_the_hub_fed_directly() {
    let dir = tempfile::tempdir().unwrap();
    let mut run =
        DirectRun::start(Scenario { seed: 11, ..Scenario::demo() }, &dir.path().join("direct.db"), Faults::none())
            .await
            .unwrap();
    for _ in 0..4 {
        run.run_for(HOUR / 4).await;
        run.check().await.unwrap_or_else(|diff| panic!("{diff}"));
    }
    let offered: u32 = run.pbx.tallies().iter().map(|(_, _, tally)| tally.offered).sum();
    assert!(offered > 300, "an hour of the demo offers hundreds of calls, got {offered}");
    // The day by hour adds up to the day's figures.
    for queue in hub_snapshot(&run.hub).await.unwrap().queues {
        let day = run.hub.queue_day(queue.id.clone()).await.unwrap().unwrap();
        let sum = |f: fn(&HourFigures) -> u32| day.hours.iter().map(f).sum::<u32>();
        assert_eq!(sum(|hour| hour.offered), queue.figures.offered, "{}", queue.name);
        assert_eq!(sum(|hour| hour.answered_within_sl), queue.figures.answered_within_sl, "{}", queue.name);
        assert_eq!(sum(|hour| hour.abandoned), queue.figures.abandoned, "{}", queue.name);
        assert_eq!(day.abandoned.len() as u32, queue.figures.abandoned);
        // One bucket per clock hour (UTC by default) in which a caller of the truth joined; an
        // hour from a random minute usually spans two, but a quiet queue may keep to one.
        let (entries, _) = run.truth().queue_entries(&queue.id).unwrap();
        let hours: std::collections::BTreeSet<i64> =
            entries.iter().map(|entry| entry.counted_at() - entry.counted_at().rem_euclid(3_600_000)).collect();
        let buckets: std::collections::BTreeSet<i64> = day.hours.iter().map(|hour| hour.hour_start).collect();
        assert_eq!(buckets, hours, "{}", queue.name);
    }
}

#[tokio::test]
async fn duplicated_and_reordered_delivery_converges_to_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let rates = FaultRates { duplicate: 0.05, reorder: 0.2, ..FaultRates::default() };
    let faults = Faults::new(5, rates);
    let mut run =
        DirectRun::start(Scenario { seed: 12, ..Scenario::demo() }, &dir.path().join("faults.db"), faults.clone())
            .await
            .unwrap();
    run.run_for(HOUR / 2).await;
    run.check().await.unwrap_or_else(|diff| panic!("{diff}"));
    assert!(faults.count(callboard::sim::faults::Fault::Duplicate) > 20, "{:?}", faults.counts());
    assert!(faults.count(callboard::sim::faults::Fault::Reorder) > 50, "{:?}", faults.counts());
}

#[tokio::test]
async fn the_harness_shows_what_a_lossy_feed_got_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new(6, FaultRates { drop: 0.05, ..FaultRates::default() });
    let mut run = DirectRun::start(Scenario { seed: 13, ..Scenario::demo() }, &dir.path().join("lossy.db"), faults)
        .await
        .unwrap();
    run.run_for(HOUR / 2).await;
    let diff = run.check().await.expect_err("dropped events must show");
    assert!(diff.contains("lines differ between the ground truth and the"), "{diff}");
    assert!(diff.contains("truth: ") && diff.lines().count() > 3, "{diff}");
}

/// A quiet call center for driving calls by hand: nobody calls unless told, nobody answers alone.
fn quiet(calls_per_hour: f64) -> Scenario {
    Scenario {
        seed: 4,
        agents: 4,
        first_extension: 101,
        queues: vec![QueuePlan { name: "Help".into(), calls_per_hour, agents: vec![0, 1, 2, 3] }],
        patience_s: 1e7,
        talk_s: callboard::sim::scenario::Spread { mean: 1e6, sd: 0.0 },
        answer_probability: 0.0,
        ring_timeout_s: 1e6,
        hold_probability: 0.0,
        blind_transfer_probability: 0.0,
        attended_transfer_probability: 0.0,
        outbound_per_agent_hour: 0.0,
        outbound_answer_probability: 1.0,
        outbound_busy_probability: 0.0,
        breaks_per_agent_hour: 0.0,
        logouts_per_agent_hour: 0.0,
        ..Scenario::demo()
    }
}

fn ringing_legs(events: &[Event]) -> Vec<LegReport> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Leg(report) if report.state == LegState::Ringing => Some(report.clone()),
            _ => None,
        })
        .collect()
}

fn command(action: Action, call: &CallId, extension: Option<&ExtensionId>, number: Option<&str>) -> Command {
    Command {
        action,
        call: Some(call.clone()),
        leg: None,
        extension: extension.cloned(),
        number: number.map(str::to_owned),
    }
}

#[test]
fn the_pbx_honours_commands_and_refuses_the_impossible() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(quiet(3600.0), "sim", "cc", start);
    let mut all = pbx.take_events();
    let step = |pbx: &mut Pbx, all: &mut Vec<Event>| {
        let events = pbx.take_events();
        all.extend(events.iter().cloned());
        events
    };
    let mut until = start;
    let (first, rung) = loop {
        until += 1000;
        pbx.advance_to(until);
        let mut rung = ringing_legs(&step(&mut pbx, &mut all));
        if let Some(leg) = rung.pop() {
            break (leg, rung);
        }
    };
    let (call, at) = (first.call.clone(), first.extension.clone().unwrap());
    let refused = |result: Result<String, String>, words: &str| {
        let error = result.expect_err("the PBX should refuse");
        assert!(error.contains(words), "{error:?} should say {words:?}");
    };
    refused(pbx.command(&command(Action::Hold, &call, Some(&at), None)), "only an answered call");
    pbx.command(&command(Action::Answer, &call, Some(&at), None)).unwrap();
    let events = step(&mut pbx, &mut all);
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::QueueLeft { outcome: QueueOutcome::Answered, .. })));
    refused(pbx.command(&command(Action::Answer, &call, Some(&at), None)), "not ringing");
    pbx.command(&command(Action::Hold, &call, Some(&at), None)).unwrap();
    refused(pbx.command(&command(Action::Hold, &call, Some(&at), None)), "already on hold");
    pbx.command(&command(Action::Resume, &call, Some(&at), None)).unwrap();
    refused(pbx.command(&command(Action::Resume, &call, Some(&at), None)), "not on hold");

    refused(pbx.command(&command(Action::RecordPause, &call, None, None)), "not being recorded");
    pbx.command(&command(Action::RecordStart, &call, None, None)).unwrap();
    // The leg says it is recorded, and which recording commands work now.
    let started = Recording { state: RecordingState::Started, controls: vec![Action::RecordPause, Action::RecordStop] };
    let recorded = step(&mut pbx, &mut all);
    assert!(
        recorded.iter().any(
            |e| matches!(&e.kind, EventKind::Leg(leg) if leg.call == call && leg.recording.as_ref() == Some(&started))
        ),
        "{recorded:?}"
    );
    refused(pbx.command(&command(Action::RecordStart, &call, None, None)), "already being recorded");
    pbx.command(&command(Action::RecordPause, &call, None, None)).unwrap();
    refused(pbx.command(&command(Action::RecordPause, &call, None, None)), "paused");
    pbx.command(&command(Action::RecordResume, &call, None, None)).unwrap();
    pbx.command(&command(Action::RecordStop, &call, None, None)).unwrap();

    refused(pbx.command(&command(Action::BlindTransfer, &call, Some(&at), Some("999"))), "no extension 999");
    refused(pbx.command(&command(Action::BlindTransfer, &call, Some(&at), Some(at.native()))), "it is on");
    refused(pbx.command(&command(Action::CompleteTransfer, &call, None, None)), "no consultation");
    // A colleague no other caller is ringing: a busy one is refused.
    let target_number = ["101", "102", "103", "104"]
        .into_iter()
        .find(|n| *n != at.native() && rung.iter().all(|leg| leg.extension.as_ref().map(|e| e.native()) != Some(*n)))
        .unwrap();
    let target = ExtensionId::new("sim", "cc", target_number);
    pbx.command(&command(Action::Consult, &call, Some(&at), Some(target_number))).unwrap();
    let consult_leg = ringing_legs(&step(&mut pbx, &mut all))
        .into_iter()
        .find(|leg| leg.extension.as_ref() == Some(&target))
        .expect("the consulted extension rings");
    refused(pbx.command(&command(Action::CompleteTransfer, &call, None, None)), "has not answered");
    pbx.command(&command(Action::Answer, &consult_leg.call, Some(&target), None)).unwrap();
    pbx.command(&command(Action::CompleteTransfer, &call, None, None)).unwrap();
    step(&mut pbx, &mut all);

    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for event in &all {
        assert!(!matches!(state.apply(event), Outcome::Refused(_)), "{event:?}");
    }
    let (_, calls, _) = state.views_all();
    let transferred = calls.iter().find(|view| view.id == call).unwrap();
    let live: Vec<_> = transferred.legs.iter().filter(|leg| !leg.state.is_ended()).collect();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].extension.as_ref(), live[0].state), (Some(&target), LegState::Active));
    assert!(calls.iter().find(|view| view.id == consult_leg.call).unwrap().ended_at.is_some());

    pbx.command(&command(Action::Hangup, &call, None, None)).unwrap();
    refused(pbx.command(&command(Action::Hangup, &call, None, None)), "has ended");
    let dial = |extension: &str, number: &str| Command {
        action: Action::Dial,
        call: None,
        leg: None,
        extension: Some(ExtensionId::new("sim", "cc", extension)),
        number: Some(number.into()),
    };
    refused(pbx.command(&dial("101", "not a number")), "is not a phone number");
    refused(pbx.command(&dial("555", "+61299990000")), "there is no extension");
}

/// Fails if an extension ever had two calls going at once (ringing, dialling or talking); a
/// call on hold beside another is allowed, as on a phone.
fn never_on_two_calls_at_once(events: &[Event]) {
    let mut legs: HashMap<ExtensionId, BTreeMap<LegId, LegState>> = HashMap::new();
    for event in events {
        let EventKind::Leg(report) = &event.kind else { continue };
        let Some(extension) = &report.extension else { continue };
        let at = legs.entry(extension.clone()).or_default();
        if report.state.is_ended() {
            at.remove(&report.leg);
        } else {
            at.insert(report.leg.clone(), report.state);
        }
        let going = at.values().filter(|state| **state != LegState::Held).count();
        assert!(going <= 1, "{} is on two calls at once at {}: {at:?}", extension.native(), event.at);
    }
}

/// The state of `leg` in its last report among `events`.
fn last_state(events: &[Event], leg: &LegId) -> Option<LegState> {
    events.iter().rev().find_map(|event| match &event.kind {
        EventKind::Leg(report) if &report.leg == leg => Some(report.state),
        _ => None,
    })
}

/// Runs `pbx` on in steps of a second until a caller rings an agent, keeping every event.
fn first_ringing(pbx: &mut Pbx, all: &mut Vec<Event>) -> LegReport {
    let start = pbx.now();
    loop {
        let next = pbx.now() + 1000;
        assert!(next < start + HOUR, "no caller rang within an hour");
        pbx.advance_to(next);
        let events = pbx.take_events();
        let rung = ringing_legs(&events);
        all.extend(events);
        if let Some(leg) = rung.into_iter().next() {
            return leg;
        }
    }
}

#[test]
fn a_transfer_to_an_extension_ringing_or_on_a_call_is_refused_as_busy() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(quiet(600.0), "sim", "cc", start);
    let mut all = pbx.take_events();
    let mut rung: Vec<LegReport> = Vec::new();
    let mut until = start;
    while rung.len() < 2 {
        until += 1000;
        assert!(until < start + HOUR, "two callers should have rung two agents");
        pbx.advance_to(until);
        let events = pbx.take_events();
        rung.extend(ringing_legs(&events));
        all.extend(events);
    }
    let (call, at) = (rung[0].call.clone(), rung[0].extension.clone().unwrap());
    let (other_call, other) = (rung[1].call.clone(), rung[1].extension.clone().unwrap());
    pbx.command(&command(Action::Answer, &call, Some(&at), None)).unwrap();
    let busy = format!("extension {} is busy", other.native());
    let refused_as_busy = |pbx: &mut Pbx, when: &str| {
        for action in [Action::BlindTransfer, Action::Consult] {
            let error = pbx
                .command(&command(action, &call, Some(&at), Some(other.native())))
                .expect_err(&format!("{action:?} to an extension {when} must be refused"));
            assert!(error.contains(&busy), "{action:?} to an extension {when}: {error:?} should say {busy:?}");
        }
    };
    refused_as_busy(&mut pbx, "that is ringing");
    pbx.command(&command(Action::Answer, &other_call, Some(&other), None)).unwrap();
    refused_as_busy(&mut pbx, "on a call");
    pbx.command(&command(Action::Hold, &other_call, Some(&other), None)).unwrap();
    refused_as_busy(&mut pbx, "with a caller on hold");
    // The refusals changed nothing: the caller is still with the first agent, who can hold.
    pbx.command(&command(Action::Hold, &call, Some(&at), None)).unwrap();
    pbx.command(&command(Action::Resume, &call, Some(&at), None)).unwrap();
    // A colleague nobody is calling is rung.
    let free = pbx
        .extension_numbers()
        .into_iter()
        .find(|n| rung.iter().all(|leg| leg.extension.as_ref().map(|e| e.native()) != Some(n.as_str())))
        .expect("a colleague nobody is calling");
    let transferred = pbx.command(&command(Action::BlindTransfer, &call, Some(&at), Some(free.as_str())));
    assert_eq!(transferred, Ok("transferred".to_owned()));
    all.extend(pbx.take_events());
    never_on_two_calls_at_once(&all);
    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for event in &all {
        assert!(!matches!(state.apply(event), Outcome::Refused(_)), "{event:?}");
    }
}

#[test]
fn a_colleague_on_break_is_still_rung_by_a_transfer_and_the_day_goes_on() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(Scenario { breaks_per_agent_hour: 60.0, ..quiet(0.0) }, "sim", "cc", start);
    let mut all = pbx.take_events();
    let at = ExtensionId::new("sim", "cc", "101");
    let dial = Command {
        action: Action::Dial,
        call: None,
        leg: None,
        extension: Some(at.clone()),
        number: Some("+61299990000".into()),
    };
    pbx.command(&dial).unwrap();
    all.extend(pbx.take_events());
    let placed = ringing_legs(&all).pop().expect("101's own phone rings first");
    pbx.command(&command(Action::Answer, &placed.call, Some(&at), None)).unwrap();
    // The far end answers within 15 s.
    let mut until = start + 20_000;
    pbx.advance_to(until);
    all.extend(pbx.take_events());
    assert_eq!(last_state(&all, &placed.leg), Some(LegState::Active));
    // Wait for a colleague to go on break.
    let resting = loop {
        let mut statuses: BTreeMap<&str, &AgentStatus> = BTreeMap::new();
        for event in &all {
            if let EventKind::AgentStatus { extension, status, .. } = &event.kind {
                statuses.insert(extension.native(), status);
            }
        }
        let on_break = statuses.iter().find(|(n, s)| **n != "101" && matches!(***s, AgentStatus::Break(_)));
        if let Some((number, _)) = on_break {
            break (*number).to_owned();
        }
        until += 10_000;
        assert!(until < start + 2 * HOUR, "somebody takes a break within two hours");
        pbx.advance_to(until);
        all.extend(pbx.take_events());
    };
    // A break is a queue status: the colleague is rung when the call is put through to them.
    let transferred = pbx.command(&command(Action::BlindTransfer, &placed.call, Some(&at), Some(resting.as_str())));
    assert_eq!(transferred, Ok("transferred".to_owned()));
    let events = pbx.take_events();
    let rung = ringing_legs(&events);
    all.extend(events);
    let [rung] = rung.as_slice() else { panic!("the colleague on break rings: {rung:?}") };
    assert_eq!(rung.extension.as_ref().map(|e| e.native()), Some(resting.as_str()));
    let colleague = ExtensionId::new("sim", "cc", &resting);
    pbx.command(&command(Action::Answer, &placed.call, Some(&colleague), None)).unwrap();
    until += HOUR;
    pbx.advance_to(until);
    all.extend(pbx.take_events());
    never_on_two_calls_at_once(&all);
    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for event in &all {
        assert!(!matches!(state.apply(event), Outcome::Refused(_)), "{event:?}");
    }
}

/// A quiet center whose agents hold every caller they answer part-way through a talk of
/// `talk_s`, for 100 s, and put every caller through to a colleague with a consultation when
/// `attended` is 1.
fn holding(talk_s: f64, attended: f64) -> Scenario {
    Scenario {
        talk_s: callboard::sim::scenario::Spread { mean: talk_s, sd: 0.0 },
        hold_probability: 1.0,
        hold_s: callboard::sim::scenario::Spread { mean: 100.0, sd: 0.0 },
        attended_transfer_probability: attended,
        ..quiet(30.0)
    }
}

#[test]
fn a_hold_kept_for_a_consultation_is_not_ended_by_its_old_timer() {
    // Held 12 to 36 s into a 60 s talk for 100 s: the talk ends during the hold and the agent
    // consults a colleague (who never answers here), the caller kept on hold throughout.
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(holding(60.0, 1.0), "sim", "cc", start);
    let mut all = pbx.take_events();
    let first = first_ringing(&mut pbx, &mut all);
    let at = first.extension.clone().unwrap();
    pbx.command(&command(Action::Answer, &first.call, Some(&at), None)).unwrap();
    let answered = pbx.now();
    pbx.advance_to(answered + 200_000);
    all.extend(pbx.take_events());
    let consulting = all.iter().any(|event| match &event.kind {
        EventKind::Leg(leg) => leg.direction == Direction::Internal && leg.extension.as_ref() == Some(&at),
        _ => false,
    });
    assert!(consulting, "the agent consulted a colleague when the talk ended");
    assert_eq!(last_state(&all, &first.leg), Some(LegState::Held), "the caller waits on hold");
    never_on_two_calls_at_once(&all);
}

#[test]
fn a_hold_placed_again_from_the_desk_is_not_ended_by_the_earlier_holds_timer() {
    // Held 120 to 360 s into a 600 s talk for 100 s by the simulated agent.
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(holding(600.0, 0.0), "sim", "cc", start);
    let mut all = pbx.take_events();
    let first = first_ringing(&mut pbx, &mut all);
    let at = first.extension.clone().unwrap();
    pbx.command(&command(Action::Answer, &first.call, Some(&at), None)).unwrap();
    let answered = pbx.now();
    let mut until = answered;
    while last_state(&all, &first.leg) != Some(LegState::Held) {
        until += 1000;
        assert!(until < answered + 400_000, "the agent holds the caller within 360 s");
        pbx.advance_to(until);
        all.extend(pbx.take_events());
    }
    // From the desk: back to the caller, then on hold again.
    pbx.command(&command(Action::Resume, &first.call, Some(&at), None)).unwrap();
    pbx.command(&command(Action::Hold, &first.call, Some(&at), None)).unwrap();
    pbx.advance_to(until + 150_000);
    all.extend(pbx.take_events());
    assert_eq!(last_state(&all, &first.leg), Some(LegState::Held), "still on hold, as the desk left it");
}

const NETAXIS_TOKEN: &str = "sim-netaxis-token";

/// One request to a Netaxis face as `user`; `rest` follows `.../services/calls/`.
async fn netaxis(
    face: &axum::Router,
    method: &str,
    user: &str,
    rest: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let uri = format!("/api/v1/tenants/t/groups/g/users/{user}/services/calls/{rest}");
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {NETAXIS_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let response = face.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Polls `user`'s call list with details until `done` likes it.
async fn netaxis_until(
    face: &axum::Router,
    user: &str,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..400 {
        let (status, body) = netaxis(face, "GET", user, "?includeDetails=true", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let calls = body["calls"].as_array().cloned().unwrap_or_default();
        if done(&calls) {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn netaxis_dialling_out_beside_a_held_call_places_a_new_call_and_a_busy_colleague_is_refused() {
    use callboard::sim::faces::netaxis::{NetaxisFace, NetaxisSetup};
    use serde_json::json;
    let shutdown = CancellationToken::new();
    let now = callboard::hub::now_ms();
    let pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", now);
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(64);
    // 20 times the wall clock: a click-to-call is answered at both ends within about 2.5 s.
    let clock = callboard::clock::Clock::new(now, 20.0);
    let (sim, _task) = callboard::sim::runner::spawn(pbx, clock, events, shutdown.clone());
    let setup = NetaxisSetup {
        tenant: "t".into(),
        group: "g".into(),
        users: ["101", "102", "103"].iter().map(|n| (format!("u{n}"), (*n).to_owned())).collect(),
        token: NETAXIS_TOKEN.into(),
        login: ("supervisor".into(), "pa55word".into()),
        details_in_body_only: false,
    };
    let face = NetaxisFace::new(setup, ("sim", "cc"), Faults::none(), Some(sim));
    let absorbing = face.clone();
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            absorbing.absorb(&batch);
        }
    });
    let api = face.router();

    let (status, body) = netaxis(&api, "POST", "u101", "", Some(json!({ "phoneNumber": "+61299990000" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["callId"].as_str().unwrap().to_owned();
    let on_first = format!("{first}/");
    netaxis_until(&api, "u101", "the first call to be answered", |calls| {
        calls.iter().any(|call| call["callId"] == first.as_str() && call["state"] == "Active")
    })
    .await;
    let (status, body) = netaxis(&api, "PUT", "u101", &on_first, Some(json!({ "action": "hold" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An outside number beside the held call is a new call of its own, not a consultation.
    let (status, body) = netaxis(&api, "POST", "u101", "", Some(json!({ "phoneNumber": "+61299990001" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = body["callId"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let calls = netaxis_until(&api, "u101", "both calls to show", |calls| calls.len() == 2).await;
    let find = |id: &str| calls.iter().find(|call| call["callId"] == id).cloned().unwrap();
    assert_eq!(find(first.as_str())["state"], "Held", "{calls:?}");
    let placed = find(second.as_str());
    assert_eq!(placed["remoteParty"]["address"], "+61299990001", "{placed}");
    assert_eq!(placed["personality"], "Click-to-Dial", "{placed}");
    // The PBX consults extensions only: the two calls cannot be joined.
    let transfer = json!({ "action": "consultativeTransfer", "transferCallId": second });
    let (status, body) = netaxis(&api, "PUT", "u101", &on_first, Some(transfer)).await;
    assert_eq!((status, body[0]["message"].as_str()), (StatusCode::BAD_REQUEST, Some("Transfer has failed.")));

    // Back to the first caller (the other call is released), then consult 102 while 102's own
    // call rings: refused as busy, in a call-operation error rather than a bad calling user.
    let (status, body) = netaxis(&api, "PUT", "u101", &on_first, Some(json!({ "action": "reconnect" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    netaxis_until(&api, "u101", "the first call alone and talking", |calls| {
        calls.len() == 1 && calls[0]["callId"] == first.as_str() && calls[0]["state"] == "Active"
    })
    .await;
    let (status, body) = netaxis(&api, "POST", "u102", "", Some(json!({ "phoneNumber": "+61299990002" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = netaxis(&api, "PUT", "u101", &on_first, Some(json!({ "action": "hold" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = netaxis(&api, "POST", "u101", "", Some(json!({ "phoneNumber": "102" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body[0]["code"], 59, "{body}");
    assert_eq!(body[0]["message"], "extension 102 is busy", "{body}");
    let calls = netaxis_until(&api, "u101", "the list", |_| true).await;
    assert_eq!(calls.len(), 1, "no consultation was started: {calls:?}");
    shutdown.cancel();
}

async fn post(app: &axum::Router, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/api/v1/commands")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Polls the hub until `find` sees what it looks for in the snapshot.
async fn wait_for<T>(hub: &Hub, what: &str, find: impl Fn(&Snapshot) -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(found) = find(&hub_snapshot(hub).await.unwrap()) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn commands_from_the_api_reach_the_simulation_and_come_back_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let scenario_path = dir.path().join("quiet.toml");
    std::fs::write(&scenario_path, toml::to_string(&quiet(0.0)).unwrap()).unwrap();
    let store = Store::open(&dir.path().join("demo.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    let demo = DemoConfig { time_scale: 10.0, scenario: scenario_path.display().to_string(), ..DemoConfig::default() };
    let mut connectors = callboard::connectors::Connectors::default();
    connectors.insert(callboard::sim::demo::start(&demo, &hub, shutdown.clone()).await.unwrap());
    let app = router(AppState {
        leptos_options: leptos::config::LeptosOptions::builder().output_name("callboard").build(),
        hub: hub.clone(),
        store,
        connectors: Arc::new(connectors),
        config: Arc::new(Config::default()),
        shutdown: shutdown.clone(),
    });

    let (status, body) = post(
        &app,
        serde_json::json!({ "action": "dial", "extension": "demo/callcenter/103", "number": "+61299990000" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let call = wait_for(&hub, "the click-to-call to appear", |snapshot| {
        snapshot.calls.iter().find(|call| call.origin == Origin::ClickToCall).map(|call| call.id.clone())
    })
    .await;
    assert!(body["outcome"].as_str().unwrap().contains(call.native()), "{body}");
    let (status, body) = post(&app, serde_json::json!({ "action": "hold", "call": call })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "only an answered call can be put on hold");

    let is_leg = |state: LegState| {
        let call = call.clone();
        move |snapshot: &Snapshot| {
            let view = snapshot.calls.iter().find(|view| view.id == call)?;
            (view.legs[0].state == state).then_some(())
        }
    };
    wait_for(&hub, "the far end to answer", is_leg(LegState::Active)).await;
    let (status, body) = post(&app, serde_json::json!({ "action": "hold", "call": call })).await;
    assert_eq!((status, &body["outcome"]), (StatusCode::OK, &serde_json::json!("on hold")));
    wait_for(&hub, "the hold to show", is_leg(LegState::Held)).await;
    let (status, _) = post(&app, serde_json::json!({ "action": "resume", "call": call })).await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&hub, "the resume to show", is_leg(LegState::Active)).await;
    let (status, _) = post(&app, serde_json::json!({ "action": "hangup", "call": call })).await;
    assert_eq!(status, StatusCode::OK);
    let cause = wait_for(&hub, "the hang-up to show", |snapshot| {
        snapshot.calls.iter().find(|view| view.id == call).and_then(|view| view.end_cause)
    })
    .await;
    assert_eq!(cause, EndCause::Normal);
    let health = hub.connectors().await.unwrap();
    assert!(health.iter().any(|health| health.name == "demo" && health.state == "ready"), "{health:?}");
    shutdown.cancel();
}
