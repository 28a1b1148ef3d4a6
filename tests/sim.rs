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

#[tokio::test]
async fn an_accelerated_demo_is_a_faster_day_on_the_wall_clock_not_one_ahead_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("scale.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store, HubSettings::default(), shutdown.clone()).await.unwrap();
    // Nonsense scales are refused; a provider face's wire carries the simulation's own times.
    for (time_scale, face) in [(0.0, "direct"), (-1.0, "direct"), (f64::NAN, "direct"), (10.0, "noojee")] {
        let demo = DemoConfig { time_scale, face: face.into(), ..DemoConfig::default() };
        let error = match callboard::sim::demo::start(&demo, &hub, shutdown.clone()).await {
            Ok(_) => panic!("a demo at time scale {time_scale} through {face} must not start"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("time_scale") && error.contains("callboard sim"), "{error}");
    }
    // Ten simulated minutes in a second: what the board is told happened has happened.
    let demo = DemoConfig { time_scale: 600.0, ..DemoConfig::default() };
    let _demo = callboard::sim::demo::start(&demo, &hub, shutdown.clone()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (snapshot, now) = (hub_snapshot(&hub).await.unwrap(), callboard::hub::now_ms());
    assert!(!snapshot.calls.is_empty());
    for call in &snapshot.calls {
        assert!(call.started_at <= now + 1_000, "{} starts in the future", call.id);
        if let Some(ended) = call.ended_at {
            assert!(ended <= now + 1_000, "{} ends in the future", call.id);
            assert!(ended >= now - 61_000 - 1_000, "{} ended over a minute ago and is still shown", call.id);
        }
    }
    shutdown.cancel();
}

/// A dial from `extension` to `number`.
fn dial_command(extension: &str, number: &str) -> Command {
    Command {
        action: Action::Dial,
        call: None,
        leg: None,
        extension: Some(ExtensionId::new("sim", "cc", extension)),
        number: Some(number.into()),
    }
}

/// Has 101 dial `number` and pick up its own phone, and runs on until the far end answers
/// (within 15 s in `Scenario::for_commands`); returns 101's leg.
fn answered_call_from_101(pbx: &mut Pbx, all: &mut Vec<Event>, number: &str) -> LegReport {
    let at = ExtensionId::new("sim", "cc", "101");
    pbx.command(&dial_command("101", number)).unwrap();
    let events = pbx.take_events();
    let placed = ringing_legs(&events).pop().expect("101's own phone rings first");
    all.extend(events);
    pbx.command(&command(Action::Answer, &placed.call, Some(&at), None)).unwrap();
    let until = pbx.now() + 20_000;
    pbx.advance_to(until);
    all.extend(pbx.take_events());
    assert_eq!(last_state(all, &placed.leg), Some(LegState::Active), "the far end answered");
    placed
}

/// Applies `events` to an empty live state, failing on any the model refuses.
fn legal_history(events: &[Event]) -> LiveState {
    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for event in events {
        assert!(!matches!(state.apply(event), Outcome::Refused(_)), "{event:?}");
    }
    state
}

#[test]
fn dialling_a_colleagues_extension_rings_them_on_an_internal_call() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", start);
    let mut all = pbx.take_events();
    let refused = |result: Result<String, String>, words: &str| {
        let error = result.expect_err("the PBX should refuse");
        assert!(error.contains(words), "{error:?} should say {words:?}");
    };
    refused(pbx.command(&dial_command("101", "101")), "cannot call itself");
    let placed = pbx.command(&dial_command("101", "102")).unwrap();
    let events = pbx.take_events();
    all.extend(events.iter().cloned());
    let rung = ringing_legs(&events);
    let [rung] = rung.as_slice() else { panic!("one phone rings: {rung:?}") };
    assert_eq!(rung.extension.as_ref().map(|e| e.native()), Some("102"), "the colleague's phone rings");
    assert_eq!(rung.direction, Direction::Internal);
    assert_eq!(rung.remote.extension.as_deref(), Some("101"), "102 sees who calls");
    assert!(placed.contains(rung.call.native()), "{placed}");
    let dialling = events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Leg(leg) if leg.extension.as_ref().map(|e| e.native()) == Some("101") => Some(leg.clone()),
            _ => None,
        })
        .expect("101's side of the call");
    assert_eq!((dialling.call.clone(), dialling.state), (rung.call.clone(), LegState::RemoteRinging));
    // Ringing, 102 is busy to anyone else, as for a transfer.
    refused(pbx.command(&dial_command("103", "102")), "extension 102 is busy");
    let at_102 = ExtensionId::new("sim", "cc", "102");
    pbx.command(&command(Action::Answer, &rung.call, Some(&at_102), None)).unwrap();
    all.extend(pbx.take_events());
    assert_eq!(last_state(&all, &rung.leg), Some(LegState::Active));
    assert_eq!(last_state(&all, &dialling.leg), Some(LegState::Active), "101 talks with 102");
    pbx.command(&command(Action::Hangup, &rung.call, Some(&at_102), None)).unwrap();
    all.extend(pbx.take_events());
    never_on_two_calls_at_once(&all);
    let (_, calls, _) = legal_history(&all).views_all();
    let call = calls.iter().find(|view| view.id == rung.call).unwrap();
    assert_eq!((call.direction, call.end_cause), (Direction::Internal, Some(EndCause::Normal)));
}

#[test]
fn resuming_a_held_call_never_leaves_the_extension_on_two_calls() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", start);
    let mut all = pbx.take_events();
    let at = ExtensionId::new("sim", "cc", "101");
    let first = answered_call_from_101(&mut pbx, &mut all, "+61299990000");
    pbx.command(&command(Action::Hold, &first.call, Some(&at), None)).unwrap();
    // A second call beside the held one (allowed, as on a phone): 101's phone rings for it.
    pbx.command(&dial_command("101", "+61299990001")).unwrap();
    let events = pbx.take_events();
    let second = ringing_legs(&events).pop().expect("101's phone rings for the second call");
    all.extend(events);
    let resume_first = command(Action::Resume, &first.call, Some(&at), None);
    let refused = pbx.command(&resume_first).expect_err("no resume beside a ringing call");
    assert!(refused.contains("another call ringing"), "{refused}");
    // Picked up, the second call dials the far end: still no resume.
    pbx.command(&command(Action::Answer, &second.call, Some(&at), None)).unwrap();
    let refused = pbx.command(&resume_first).expect_err("no resume beside a call being dialled");
    assert!(refused.contains("dialling another call"), "{refused}");
    let until = pbx.now() + 20_000;
    pbx.advance_to(until);
    all.extend(pbx.take_events());
    assert_eq!(last_state(&all, &second.leg), Some(LegState::Active));
    assert_eq!(last_state(&all, &first.leg), Some(LegState::Held));
    // Talking on the second call, back to the first: the second goes on hold (a swap), and back.
    assert_eq!(pbx.command(&resume_first), Ok("resumed; the other call is on hold".to_owned()));
    all.extend(pbx.take_events());
    let states = |all: &[Event]| (last_state(all, &first.leg), last_state(all, &second.leg));
    assert_eq!(states(&all), (Some(LegState::Active), Some(LegState::Held)));
    pbx.command(&command(Action::Resume, &second.call, Some(&at), None)).unwrap();
    all.extend(pbx.take_events());
    assert_eq!(states(&all), (Some(LegState::Held), Some(LegState::Active)));
    pbx.advance_to(until + HOUR);
    all.extend(pbx.take_events());
    never_on_two_calls_at_once(&all);
    legal_history(&all);
}

#[test]
fn a_hangup_naming_a_leg_or_an_extension_not_live_on_the_call_is_refused() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", start);
    let mut all = pbx.take_events();
    let placed = answered_call_from_101(&mut pbx, &mut all, "+61299990000");
    for (extension, words) in [("103", "extension 103 is not on call"), ("555", "there is no extension")] {
        let other = ExtensionId::new("sim", "cc", extension);
        let error = pbx
            .command(&command(Action::Hangup, &placed.call, Some(&other), None))
            .expect_err("a hang-up at an extension not on the call");
        assert!(error.contains(words), "{error:?} should say {words:?}");
    }
    let stray = Command {
        leg: Some(LegId::new("sim", "cc", "elsewhere-0")),
        ..command(Action::Hangup, &placed.call, None, None)
    };
    let error = pbx.command(&stray).expect_err("a hang-up of a leg not on the call");
    assert!(error.contains("is not live on call"), "{error}");
    let events = pbx.take_events();
    assert!(events.iter().all(|event| !matches!(event.kind, EventKind::CallEnded { .. })), "{events:?}");
    all.extend(events);
    assert_eq!(last_state(&all, &placed.leg), Some(LegState::Active), "the call is still up");
    // The extension on the call can still hang it up.
    let at = ExtensionId::new("sim", "cc", "101");
    assert_eq!(pbx.command(&command(Action::Hangup, &placed.call, Some(&at), None)), Ok("hung up".to_owned()));
    all.extend(pbx.take_events());
    assert_eq!(last_state(&all, &placed.leg), Some(LegState::Ended));
    legal_history(&all);
}

#[test]
fn a_blind_transfer_to_an_outside_number_puts_the_caller_through() {
    let start = 1_790_000_000_000;
    let mut pbx = Pbx::new(quiet(600.0), "sim", "cc", start);
    let mut all = pbx.take_events();
    let first = first_ringing(&mut pbx, &mut all);
    let at = first.extension.clone().unwrap();
    pbx.command(&command(Action::Answer, &first.call, Some(&at), None)).unwrap();
    // A short number is still an extension, and an unknown one is refused as such.
    let refused = pbx.command(&command(Action::BlindTransfer, &first.call, Some(&at), Some("999"))).unwrap_err();
    assert!(refused.contains("no extension 999"), "{refused}");
    // The Netaxis seed's example: the caller goes to the outside number, the agent is free.
    let done = pbx.command(&command(Action::BlindTransfer, &first.call, Some(&at), Some("+3212345765"))).unwrap();
    assert!(done.contains("+3212345765"), "{done}");
    let events = pbx.take_events();
    all.extend(events.iter().cloned());
    let agent_leg = events.iter().find_map(|event| match &event.kind {
        EventKind::Leg(leg) if leg.leg == first.leg && leg.state.is_ended() => Some(leg.end_cause),
        _ => None,
    });
    assert_eq!(agent_leg, Some(Some(EndCause::Normal)), "{events:?}");
    let ended = events.iter().any(|event| {
        matches!(&event.kind, EventKind::CallEnded { call, cause: EndCause::Normal, .. } if *call == first.call)
    });
    assert!(ended, "the call leaves the call center and ends normally: {events:?}");
    let after = pbx.command(&command(Action::Hangup, &first.call, None, None)).unwrap_err();
    assert!(after.contains("has ended"), "{after}");
    assert_eq!(pbx.tallies()[0].2.answered(), 1, "the caller was answered before going out");
    never_on_two_calls_at_once(&all);
    let (_, calls, _) = legal_history(&all).views_all();
    let call = calls.iter().find(|view| view.id == first.call).unwrap();
    assert_eq!(call.end_cause, Some(EndCause::Normal));
}

#[test]
fn extreme_scenario_values_neither_overflow_the_clock_nor_come_due() {
    // Left unchecked, a patience of 1e17 s is i64::MAX ms and `now + delay` overflows.
    let start = 1_790_000_000_000;
    let scenario = Scenario {
        patience_s: 1e17,
        ring_timeout_s: 1e300,
        breaks_per_agent_hour: 1e-300,
        logout_s: callboard::sim::scenario::Spread { mean: 1e300, sd: 1e300 },
        ..quiet(600.0)
    };
    let mut pbx = Pbx::new(scenario, "sim", "cc", start);
    pbx.advance_to(start + HOUR);
    let events = pbx.take_events();
    let tallies = pbx.tallies();
    let offered: u32 = tallies.iter().map(|(_, _, tally)| tally.offered).sum();
    let abandoned: u32 = tallies.iter().map(|(_, _, tally)| tally.abandoned()).sum();
    assert!(offered > 100, "callers keep arriving: {offered}");
    assert_eq!(abandoned, 0, "nobody gives up within an hour");
    assert!(!events
        .iter()
        .any(|event| matches!(&event.kind, EventKind::QueueLeft { outcome: QueueOutcome::Abandoned, .. })));
    assert!(pbx.next_due().is_some_and(|at| at > start));
}

#[tokio::test]
async fn callboard_sim_says_when_a_run_is_longer_than_a_timer_can_hold() {
    use callboard::sim::cli::{run, SimArgs};
    let args = |minutes: f64, time_scale: f64, faces: Vec<String>| SimArgs {
        scenario: None,
        seed: None,
        minutes,
        time_scale,
        faults: String::new(),
        events: false,
        faces,
        api_key: "callboard-sim-key".into(),
    };
    // A tiny time scale first: the old code panicked on its first paced step.
    let cases =
        [(10.0, 1e-300, Vec::new()), (1e300, 1.0, Vec::new()), (1e300, 0.0, vec!["noojee=127.0.0.1:0".to_owned()])];
    for (minutes, time_scale, faces) in cases {
        let error = run(args(minutes, time_scale, faces)).await.expect_err("refused before it starts");
        assert!(error.contains("--minutes") && error.contains("longer than"), "{error}");
    }
}
