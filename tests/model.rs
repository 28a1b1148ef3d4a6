//! Properties of the one transition function: order and duplicates do not matter, ended stays
//! ended, figures add up and never go negative, garbage is refused without touching state.

use callboard::model::*;
use proptest::prelude::*;

const PROVIDER: &str = "p";

fn call(i: u8) -> CallId {
    CallId::new(PROVIDER, "a", &format!("c{i}"))
}
/// Leg `i` always belongs to call `i / 2`: well-formed streams never move a leg.
fn leg(i: u8) -> LegId {
    LegId::new(PROVIDER, "a", &format!("l{i}"))
}
fn extension(i: u8) -> ExtensionId {
    ExtensionId::new(PROVIDER, "a", &format!("10{i}"))
}
fn queue(i: u8) -> QueueId {
    QueueId::new(PROVIDER, "a", &format!("q{i}"))
}

fn event(at: i64, kind: EventKind) -> Event {
    Event::new(PROVIDER, "a", at, kind)
}

fn leg_state() -> impl Strategy<Value = LegState> {
    prop_oneof![
        Just(LegState::Initiating),
        Just(LegState::Ringing),
        Just(LegState::RemoteRinging),
        Just(LegState::Active),
        Just(LegState::Held),
        Just(LegState::Detached),
        Just(LegState::Ended),
        Just(LegState::Unknown),
    ]
}

fn end_cause() -> impl Strategy<Value = EndCause> {
    prop_oneof![Just(EndCause::Normal), Just(EndCause::NoAnswer), Just(EndCause::Busy), Just(EndCause::Cancelled)]
}

fn well_formed() -> impl Strategy<Value = Event> {
    let at = 0i64..200_000;
    prop_oneof![
        6 => (at.clone(), 0u8..8, leg_state(), proptest::option::of(0u8..3), end_cause(), any::<bool>(), proptest::option::of(0u8..3))
            .prop_map(|(at, l, state, ext, cause, held_remote, number)| {
                let ended = state == LegState::Ended;
                event(at, EventKind::Leg(LegReport {
                    leg: leg(l),
                    call: call(l / 2),
                    extension: ext.map(extension),
                    state,
                    held_by: (state == LegState::Held).then_some(if held_remote { HeldBy::Remote } else { HeldBy::Local }),
                    direction: if l % 2 == 0 { Direction::Inbound } else { Direction::Outbound },
                    origin: Origin::Normal,
                    local: Party::default(),
                    remote: Party { number: number.map(|n| format!("+6140000000{n}")), ..Party::default() },
                    queue: None,
                    end_cause: ended.then_some(cause),
                    raw_cause: None,
                    raw_state: format!("{state:?}"),
                    recording: None,
                    revision: 0,
                }))
            }),
        1 => (at.clone(), 0u8..4, end_cause()).prop_map(|(at, c, cause)| event(at, EventKind::CallEnded { call: call(c), cause, raw_cause: None })),
        1 => (at.clone(), 0u8..3, 0u8..4).prop_map(|(at, e, s)| {
            let status = match s { 0 => AgentStatus::Available, 1 => AgentStatus::LoggedOut, 2 => AgentStatus::Break(BreakReason::Lunch), _ => AgentStatus::Unknown };
            event(at, EventKind::AgentStatus { extension: extension(e), status, raw_status: Some(s.to_string()) })
        }),
        1 => (at.clone(), 0u8..2, proptest::collection::vec(0u8..3, 0..3)).prop_map(|(at, q, members)| event(at, EventKind::Queue { queue: queue(q), name: format!("Queue {q}"), members: members.into_iter().map(extension).collect() })),
        2 => (at.clone(), 0u8..2, 0u8..4).prop_map(|(at, q, c)| event(at, EventKind::QueueJoined { queue: queue(q), call: call(c), caller: Party::default() })),
        2 => (at, 0u8..2, 0u8..4, 0u8..3).prop_map(|(at, q, c, o)| {
            let outcome = [QueueOutcome::Answered, QueueOutcome::Abandoned, QueueOutcome::Other][o as usize];
            event(at, EventKind::QueueLeft { queue: queue(q), call: call(c), outcome })
        }),
    ]
}

fn garbage() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u8..8).prop_map(|l| {
            let mut e = event(10, EventKind::CallEnded { call: call(l), cause: EndCause::Normal, raw_cause: None });
            e.provider = "other".into();
            e
        }),
        (i64::MIN..0)
            .prop_map(|at| event(at, EventKind::CallEnded { call: call(0), cause: EndCause::Normal, raw_cause: None })),
        Just(event(
            10,
            EventKind::AgentStatus {
                extension: ExtensionId("p/a/".into()),
                status: AgentStatus::Available,
                raw_status: None
            }
        )),
        Just(event(
            10,
            EventKind::QueueJoined { queue: QueueId("nobody's".into()), call: call(0), caller: Party::default() }
        )),
        (0u8..8).prop_map(|l| event(
            10,
            EventKind::Leg(LegReport {
                leg: leg(l),
                call: call(l / 2 + 10),
                extension: None,
                state: LegState::Active,
                held_by: None,
                direction: Direction::Unknown,
                origin: Origin::Normal,
                local: Party::default(),
                remote: Party::default(),
                queue: None,
                end_cause: None,
                raw_cause: None,
                raw_state: String::new(),
                recording: None,
                revision: 0,
            })
        )),
    ]
}

fn views(state: &LiveState) -> String {
    serde_json::to_string(&state.views_all()).unwrap()
}

fn check_figures(state: &LiveState) -> Result<(), TestCaseError> {
    let (_, _, queues) = state.views_all();
    for queue in queues {
        let f = &queue.figures;
        prop_assert_eq!(f.offered, f.answered + f.abandoned + f.other + f.waiting, "queue {}", queue.id);
        prop_assert!(f.answered_within_sl <= f.answered);
        prop_assert!(f.abandoned_short <= f.abandoned);
        prop_assert!(f.avg_wait_ms.unwrap_or(0) >= 0 && f.avg_talk_ms.unwrap_or(0) >= 0);
        if let Some(sl) = f.service_level_pct {
            prop_assert!((0.0..=100.0).contains(&sl), "service level {}", sl);
        }
        prop_assert_eq!(queue.waiting.len() as u32, f.waiting);
        // The figures kept entry by entry equal the figures counted afresh from the entries.
        let (entries, settings) = state.queue_entries(&queue.id).expect("a listed queue has entries");
        let counted = QueueFigures::compute(&entries, &settings, state.day_start(), f.agents);
        prop_assert_eq!(f, &counted, "queue {}", queue.id);
        let mut waiting: Vec<_> = entries.into_iter().filter(|entry| entry.is_waiting()).collect();
        waiting.sort_by_key(|entry| (entry.joined_at, entry.call.clone()));
        prop_assert_eq!(&queue.waiting, &waiting);
    }
    Ok(())
}

/// What a browser holds after applying every change it was sent, in the snapshot's order.
#[derive(Default)]
struct Replica {
    extensions: std::collections::BTreeMap<ExtensionId, Extension>,
    calls: std::collections::BTreeMap<CallId, Call>,
    queues: std::collections::BTreeMap<QueueId, Queue>,
}

impl Replica {
    /// Takes each change as a browser does: from its JSON text, which must name each key once.
    fn take(&mut self, changes: Vec<Change>) {
        for change in changes {
            let text = serde_json::to_string(&change).unwrap();
            assert_keys_unique(&text);
            let change: Change = serde_json::from_str(&text).unwrap();
            match change {
                Change::Call(call) => drop(self.calls.insert(call.id.clone(), call)),
                Change::CallRemoved { id } => drop(self.calls.remove(&id)),
                Change::Extension(extension) => drop(self.extensions.insert(extension.id.clone(), extension)),
                Change::Queue(queue) => drop(self.queues.insert(queue.id.clone(), queue)),
                Change::Connector(_) => {}
            }
        }
    }

    fn views(&self) -> String {
        let all = (
            self.extensions.values().collect::<Vec<_>>(),
            self.calls.values().collect::<Vec<_>>(),
            self.queues.values().collect::<Vec<_>>(),
        );
        serde_json::to_string(&all).unwrap()
    }
}

/// The top-level keys of one JSON object, repeats included: `serde_json::Value` would keep only
/// the last of two equal keys, as JavaScript's `JSON.parse` does.
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;
        impl<'de> serde::de::Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((key, serde::de::IgnoredAny)) = map.next_entry::<String, _>()? {
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        deserializer.deserialize_map(KeysVisitor)
    }
}

fn assert_keys_unique(text: &str) {
    let Keys(keys) = serde_json::from_str(text).unwrap();
    let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a key named twice in {text}");
}

#[test]
fn a_connector_change_names_its_tag_once() {
    let health =
        ConnectorHealth { name: "main-pbx".into(), provider_kind: "noojee".into(), ..ConnectorHealth::default() };
    let text = serde_json::to_string(&Change::Connector(health.clone())).unwrap();
    assert_keys_unique(&text);
    let read: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(read["kind"], "connector");
    assert_eq!(read["provider_kind"], "noojee");
    assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), Change::Connector(health));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn order_and_duplicates_do_not_matter(
        events in proptest::collection::vec(well_formed(), 1..60),
        seed in any::<u64>(),
        duplicates in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut in_order = LiveState::default();
        for e in &events {
            prop_assert!(!matches!(in_order.apply(e), Outcome::Refused(_)), "well-formed event refused: {:?}", e);
        }
        let mut shuffled: Vec<Event> = events.clone();
        shuffled.extend(duplicates.iter().map(|i| events[i.index(events.len())].clone()));
        let mut rng = seed;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut out_of_order = LiveState::default();
        for e in &shuffled {
            out_of_order.apply(e);
        }
        prop_assert_eq!(views(&in_order), views(&out_of_order));
        check_figures(&in_order)?;
    }

    #[test]
    fn ended_stays_ended_and_repeats_change_nothing(events in proptest::collection::vec(well_formed(), 1..60)) {
        let mut state = LiveState::default();
        let mut ended: std::collections::BTreeSet<LegId> = Default::default();
        for e in &events {
            state.apply(e);
            prop_assert_eq!(state.apply(e), Outcome::Unchanged, "a repeat changed something: {:?}", e);
            let (_, calls, queues) = state.views_all();
            for call in &calls {
                for leg in &call.legs {
                    if ended.contains(&leg.id) {
                        prop_assert_eq!(leg.state, LegState::Ended, "leg {} left Ended", leg.id);
                    }
                    if leg.state == LegState::Ended {
                        ended.insert(leg.id.clone());
                    }
                }
                // A caller still waiting in a queue is on the line, whatever rings ended.
                let waiting = queues.iter().any(|queue| queue.waiting.iter().any(|entry| entry.call == call.id));
                if call.legs.iter().all(|leg| leg.state == LegState::Ended) && !waiting {
                    prop_assert!(call.ended_at.is_some(), "all legs ended but call {} is not", call.id);
                }
            }
            check_figures(&state)?;
        }
    }

    #[test]
    fn a_new_day_recounts_from_the_entries_it_keeps(
        before in proptest::collection::vec(well_formed(), 1..40),
        after in proptest::collection::vec(well_formed(), 0..20),
        cut in 0i64..200_000,
    ) {
        let mut state = LiveState::default();
        for e in &before {
            state.apply(e);
        }
        state.start_day(cut);
        check_figures(&state)?;
        for e in &after {
            state.apply(e);
            check_figures(&state)?;
        }
    }

    /// The hub publishes only what each event touched: a browser applying those deltas must
    /// hold exactly what a fresh snapshot would show, through a new day and retirements too.
    #[test]
    fn the_deltas_rebuild_the_snapshot(
        before in proptest::collection::vec(well_formed(), 1..50),
        after in proptest::collection::vec(well_formed(), 0..20),
        cut in 0i64..200_000,
        retire in 0i64..200_000,
    ) {
        let mut state = LiveState::default();
        let mut replica = Replica::default();
        for e in &before {
            if let Outcome::Applied(changes) = state.apply(e) {
                replica.take(changes);
            }
            prop_assert_eq!(replica.views(), views(&state), "after {:?}", e);
        }
        replica.take(state.retire_ended(retire));
        prop_assert_eq!(replica.views(), views(&state), "after retiring calls ended before {}", retire);
        replica.take(state.start_day(cut));
        prop_assert_eq!(replica.views(), views(&state), "after a new day from {}", cut);
        for e in &after {
            if let Outcome::Applied(changes) = state.apply(e) {
                replica.take(changes);
            }
            prop_assert_eq!(replica.views(), views(&state), "after {:?}", e);
        }
    }

    #[test]
    fn garbage_is_refused_and_changes_nothing(
        events in proptest::collection::vec(well_formed(), 0..30),
        bad in proptest::collection::vec(garbage(), 1..10),
    ) {
        let mut state = LiveState::default();
        // Every leg exists, so a report moving one to another call is garbage.
        for l in 0..8 {
            let ringing = LegReport {
                leg: leg(l), call: call(l / 2), extension: None, state: LegState::Ringing, held_by: None,
                direction: Direction::Inbound, origin: Origin::Normal, local: Party::default(), remote: Party::default(),
                queue: None, end_cause: None, raw_cause: None, raw_state: "Ringing".into(), recording: None, revision: 0,
            };
            state.apply(&event(1, EventKind::Leg(ringing)));
        }
        for e in &events {
            state.apply(e);
        }
        let before = views(&state);
        for e in &bad {
            match state.apply(e) {
                Outcome::Refused(reason) => prop_assert!(!reason.is_empty()),
                Outcome::Applied(changes) => prop_assert!(false, "garbage applied: {:?} -> {:?}", e, changes),
                Outcome::Unchanged => prop_assert!(false, "garbage not refused: {:?}", e),
            }
        }
        prop_assert_eq!(before, views(&state));
    }
}

#[test]
fn an_answered_queue_call_counts_wait_and_talk() {
    let mut state = LiveState::default();
    let q = queue(0);
    let c = call(0);
    let report = |at: i64, state_: LegState| {
        event(
            at,
            EventKind::Leg(LegReport {
                leg: leg(0),
                call: c.clone(),
                extension: Some(extension(1)),
                state: state_,
                held_by: None,
                direction: Direction::Inbound,
                origin: Origin::Normal,
                local: Party::default(),
                remote: Party { number: Some("+61400000000".into()), ..Party::default() },
                queue: Some(q.clone()),
                end_cause: state_.is_ended().then_some(EndCause::Normal),
                raw_cause: None,
                raw_state: String::new(),
                recording: None,
                revision: 0,
            }),
        )
    };
    let events = [
        event(0, EventKind::Queue { queue: q.clone(), name: "Sales".into(), members: vec![extension(1)] }),
        event(1_000, EventKind::QueueJoined { queue: q.clone(), call: c.clone(), caller: Party::default() }),
        report(9_000, LegState::Ringing),
        report(11_000, LegState::Active),
        event(11_000, EventKind::QueueLeft { queue: q.clone(), call: c.clone(), outcome: QueueOutcome::Answered }),
        report(71_000, LegState::Ended),
    ];
    for e in &events {
        // The leave says what the pickup already told: it may change no view.
        assert!(!matches!(state.apply(e), Outcome::Refused(_)), "{e:?}");
    }
    let (extensions, calls, queues) = state.views_all();
    let figures = &queues[0].figures;
    assert_eq!((figures.offered, figures.answered, figures.answered_within_sl), (1, 1, 1));
    assert_eq!(figures.avg_wait_ms, Some(10_000));
    assert_eq!(figures.avg_talk_ms, Some(60_000));
    assert_eq!(figures.agents.available, 1);
    assert_eq!(calls[0].end_cause, Some(EndCause::Normal));
    assert_eq!(calls[0].caller.number.as_deref(), Some("+61400000000"));
    assert_eq!(extensions[0].presence, Presence::Idle);
    assert_eq!(extensions[0].last_answered_at, Some(11_000));
}

#[test]
fn a_higher_revision_wins_among_reports_of_one_time_in_either_order_and_keeps_time_in_state() {
    let report = |revision: u64, recording: RecordingState| {
        event(
            5_000,
            EventKind::Leg(LegReport {
                leg: leg(1),
                call: call(1),
                extension: None,
                state: LegState::Active,
                held_by: None,
                direction: Direction::Inbound,
                origin: Origin::Normal,
                local: Party::default(),
                remote: Party::default(),
                queue: None,
                end_cause: None,
                raw_cause: None,
                raw_state: "Active".into(),
                recording: Some(Recording { state: recording, controls: vec![] }),
                revision,
            }),
        )
    };
    let (older, newer) = (report(7_000, RecordingState::Off), report(9_000, RecordingState::Started));
    for events in [[&older, &newer], [&newer, &older]] {
        let mut state = LiveState::new(QueueSettings::default(), Default::default());
        for e in events {
            state.apply(e);
        }
        let (_, calls, _) = state.views_all();
        let leg = &calls[0].legs[0];
        assert_eq!(leg.recording.as_ref().map(|r| r.state), Some(RecordingState::Started));
        assert_eq!(leg.state_since, 5_000, "a change of details keeps the time in state");
    }
}

#[test]
fn a_caller_waiting_across_the_daily_reset_is_waiting_today() {
    let mut state = LiveState::default();
    let q = queue(0);
    let joined = |at: i64, i: u8| {
        event(at, EventKind::QueueJoined { queue: q.clone(), call: call(i), caller: Party::default() })
    };
    let left = |at: i64, i: u8, outcome| event(at, EventKind::QueueLeft { queue: q.clone(), call: call(i), outcome });
    for e in [
        event(0, EventKind::Queue { queue: q.clone(), name: "Sales".into(), members: vec![] }),
        joined(1_000, 0),
        left(5_000, 0, QueueOutcome::Abandoned),
        joined(90_000, 1),
        joined(95_000, 2),
    ] {
        assert!(matches!(state.apply(&e), Outcome::Applied(_)), "{e:?}");
    }
    // The day resets while callers 1 and 2 wait; caller 0 left yesterday.
    state.start_day(100_000);
    let (_, _, queues) = state.views_all();
    let figures = &queues[0].figures;
    assert_eq!((figures.offered, figures.waiting, figures.abandoned), (2, 2, 0));
    assert_eq!(figures.longest_waiting_since, Some(90_000));
    assert_eq!(queues[0].waiting.iter().map(|entry| entry.call.clone()).collect::<Vec<_>>(), vec![call(1), call(2)]);
    // Answered today, after the reset: today's answered call, waited 30 s.
    state.apply(&left(120_000, 1, QueueOutcome::Answered));
    let (_, _, queues) = state.views_all();
    let figures = &queues[0].figures;
    assert_eq!((figures.offered, figures.waiting, figures.answered), (2, 1, 1));
    assert_eq!(figures.avg_wait_ms, Some(30_000));
    // Today's chart has them in its first hour, not at yesterday's.
    let (entries, settings) = state.queue_entries(&q).unwrap();
    let day =
        callboard::model::QueueDay::compute(q.clone(), &entries, &settings, 100_000, |at| (at - at % 3_600_000, 0));
    assert_eq!(day.hours.iter().map(|hour| (hour.hour_start, hour.offered)).collect::<Vec<_>>(), vec![(0, 2)]);
}

/// A report of leg `l` of call `c` at extension `e` (none: the caller's own leg).
fn leg_at(at: i64, l: u8, c: u8, e: Option<u8>, state: LegState) -> Event {
    event(
        at,
        EventKind::Leg(LegReport {
            leg: leg(l),
            call: call(c),
            extension: e.map(extension),
            state,
            held_by: None,
            direction: Direction::Inbound,
            origin: Origin::Normal,
            local: Party::default(),
            remote: Party { number: Some("+61400000000".into()), ..Party::default() },
            queue: None,
            end_cause: state.is_ended().then_some(EndCause::Normal),
            raw_cause: None,
            raw_state: format!("{state:?}"),
            recording: None,
            revision: 0,
        }),
    )
}

/// Leg `l` of call `c`, ringing at extension `e`, ended unanswered at `at` (a ring timed out).
fn unanswered_at(at: i64, l: u8, c: u8, e: u8) -> Event {
    let mut ended = leg_at(at, l, c, Some(e), LegState::Ended);
    if let EventKind::Leg(report) = &mut ended.kind {
        report.end_cause = Some(EndCause::NoAnswer);
    }
    ended
}

#[test]
fn late_reports_from_before_the_reset_do_not_bring_back_what_it_forgot() {
    let mut state = LiveState::default();
    let q = queue(0);
    let joined = event(59_000, EventKind::QueueJoined { queue: q.clone(), call: call(0), caller: Party::default() });
    let picked_up = leg_at(69_000, 0, 0, Some(1), LegState::Active);
    for e in [
        joined.clone(),
        picked_up.clone(),
        event(69_000, EventKind::QueueLeft { queue: q.clone(), call: call(0), outcome: QueueOutcome::Answered }),
        leg_at(98_000, 0, 0, Some(1), LegState::Ended),
        // Another call answered before the reset and still talking after it.
        event(90_000, EventKind::QueueJoined { queue: q.clone(), call: call(1), caller: Party::default() }),
        leg_at(95_000, 2, 1, Some(2), LegState::Active),
        event(95_000, EventKind::QueueLeft { queue: q.clone(), call: call(1), outcome: QueueOutcome::Answered }),
    ] {
        assert!(!matches!(state.apply(&e), Outcome::Refused(_)), "{e:?}");
    }
    state.start_day(100_000);
    let before = views(&state);
    // A webhook retried after midnight: the join, the pickup, and the second call's join.
    let retried_join_of_live_call =
        event(90_000, EventKind::QueueJoined { queue: q.clone(), call: call(1), caller: Party::default() });
    for e in [&joined, &picked_up, &retried_join_of_live_call] {
        assert!(matches!(state.apply(e), Outcome::Unchanged), "{e:?} is old news");
    }
    assert_eq!(views(&state), before);
    let (extensions, _, queues) = state.views_all();
    assert_eq!(queues[0].figures.waiting, 0);
    assert_eq!(queues[0].figures.offered, 0);
    assert_eq!(extensions.iter().find(|x| x.id == extension(1)).unwrap().presence, Presence::Idle);
    // The live call's own news still counts, and a join after the reset is a new join.
    assert!(matches!(state.apply(&leg_at(130_000, 2, 1, Some(2), LegState::Held)), Outcome::Applied(_)));
    let rejoined = event(140_000, EventKind::QueueJoined { queue: q.clone(), call: call(1), caller: Party::default() });
    assert!(matches!(state.apply(&rejoined), Outcome::Applied(_)));
    assert_eq!(state.views_all().2[0].figures.waiting, 1);
}

#[test]
fn a_caller_whose_leave_was_lost_leaves_when_the_call_ends() {
    for (picked_up, outcome) in [(false, QueueOutcome::Abandoned), (true, QueueOutcome::Answered)] {
        let mut state = LiveState::default();
        let q = queue(0);
        let mut events = vec![
            // The caller's leg was answered by an IVR before the queue: that is no agent's pickup.
            leg_at(1_000, 0, 0, None, LegState::Active),
            event(5_000, EventKind::QueueJoined { queue: q.clone(), call: call(0), caller: Party::default() }),
            leg_at(8_000, 1, 0, Some(1), LegState::Ringing),
        ];
        if picked_up {
            events.push(leg_at(12_000, 1, 0, Some(1), LegState::Active));
        }
        events.push(event(40_000, EventKind::CallEnded { call: call(0), cause: EndCause::Normal, raw_cause: None }));
        for e in &events {
            state.apply(e);
        }
        let figures = &state.views_all().2[0].figures;
        assert_eq!(figures.waiting, 0, "picked up: {picked_up}");
        assert_eq!((figures.answered, figures.abandoned), if picked_up { (1, 0) } else { (0, 1) });
        let (entries, _) = state.queue_entries(&q).unwrap();
        assert_eq!(entries[0].outcome, Some(outcome));
        assert_eq!(entries[0].left_at, Some(if picked_up { 12_000 } else { 40_000 }));
        assert_eq!(entries[0].talk_ms, picked_up.then_some(28_000));
        // The stale sweep has nothing to close: the caller has left.
        assert!(state.stale_entries(i64::MAX / 2, 0).is_empty());
        // The provider's own leave, arriving late, is the one that counts.
        state.apply(&event(
            39_000,
            EventKind::QueueLeft { queue: q.clone(), call: call(0), outcome: QueueOutcome::Other },
        ));
        let figures = &state.views_all().2[0].figures;
        assert_eq!((figures.answered, figures.abandoned, figures.other), (0, 0, 1));
    }
}

#[test]
fn a_call_transferred_on_to_another_queue_counts_each_conversation_in_its_own_queue() {
    let (q1, q2) = (queue(0), queue(1));
    let left = |at: i64, q: &QueueId| {
        event(at, EventKind::QueueLeft { queue: q.clone(), call: call(0), outcome: QueueOutcome::Answered })
    };
    let joined = |at: i64, q: &QueueId| {
        event(at, EventKind::QueueJoined { queue: q.clone(), call: call(0), caller: Party::default() })
    };
    let events = [
        joined(0, &q1),
        leg_at(10_000, 0, 0, Some(1), LegState::Active),
        left(10_000, &q1),
        joined(70_000, &q2),
        leg_at(70_000, 0, 0, Some(1), LegState::Ended),
        leg_at(100_000, 1, 0, Some(2), LegState::Active),
        left(100_000, &q2),
        leg_at(200_000, 1, 0, Some(2), LegState::Ended),
    ];
    // In either order: talk does not depend on when each report arrived.
    for events in [events.to_vec(), events.iter().rev().cloned().collect()] {
        let mut state = LiveState::default();
        for e in &events {
            state.apply(e);
        }
        let queues = state.views_all().2;
        assert_eq!(queues[0].figures.avg_talk_ms, Some(60_000), "the first agent talked until the transfer");
        assert_eq!(queues[1].figures.avg_talk_ms, Some(100_000), "the second, from their answer to the end");
    }
}

#[test]
fn configured_members_serve_a_queue_whose_provider_lists_none() {
    let q = queue(0);
    let configured = [(q.clone(), vec![extension(1), extension(2)])].into_iter().collect();
    let mut state = LiveState::new(QueueSettings::default(), Default::default()).with_members(configured);
    let status = |at: i64, e: u8, status: AgentStatus| {
        event(at, EventKind::AgentStatus { extension: extension(e), status, raw_status: None })
    };
    for e in [
        // Voicenter names its queues with no member list.
        event(0, EventKind::Queue { queue: q.clone(), name: "Sales".into(), members: vec![] }),
        status(1_000, 1, AgentStatus::Available),
        status(1_000, 2, AgentStatus::Break(BreakReason::Lunch)),
    ] {
        state.apply(&e);
    }
    let queue_view = &state.views_all().2[0];
    assert_eq!(queue_view.members, vec![extension(1), extension(2)]);
    assert_eq!((queue_view.figures.agents.available, queue_view.figures.agents.on_break), (1, 1));
    // An agent's change moves the queue's counts.
    let Outcome::Applied(changes) = state.apply(&leg_at(2_000, 0, 0, Some(1), LegState::Active)) else {
        panic!("applied")
    };
    assert!(changes.iter().any(|change| matches!(change, Change::Queue(queue) if queue.figures.agents.busy == 1)));
    // A renaming with no members keeps them; a provider that lists members is believed.
    state.apply(&event(3_000, EventKind::Queue { queue: q.clone(), name: "Sales desk".into(), members: vec![] }));
    assert_eq!(state.views_all().2[0].members.len(), 2);
    state.apply(&event(
        4_000,
        EventKind::Queue { queue: q.clone(), name: "Sales desk".into(), members: vec![extension(2)] },
    ));
    let queue_view = &state.views_all().2[0];
    assert_eq!((queue_view.name.as_str(), queue_view.members.clone()), ("Sales desk", vec![extension(2)]));
    assert_eq!(queue_view.figures.agents.busy, 0, "the busy agent no longer serves it");
}

#[test]
fn a_caller_still_waiting_after_a_ring_timed_out_keeps_the_call_live_across_the_reset() {
    let mut state = LiveState::default();
    let q = queue(0);
    let timed_out = unanswered_at(30_000, 1, 0, 1);
    for e in [
        event(10_000, EventKind::QueueJoined { queue: q.clone(), call: call(0), caller: Party::default() }),
        // Agent 1 is rung and does not answer; the caller waits on, with no leg up.
        leg_at(15_000, 1, 0, Some(1), LegState::Ringing),
        timed_out,
    ] {
        state.apply(&e);
    }
    let (_, calls, queues) = state.views_all();
    assert_eq!(queues[0].figures.waiting, 1, "the caller is still waiting");
    assert_eq!(calls[0].ended_at, None, "and the call is not over");
    // Neither the live board's tidy-up nor the new day takes the call away.
    assert!(state.retire_ended(200_000).is_empty());
    state.start_day(100_000);
    // Agent 2 answers after the reset: the call, its pickup and the leave all count today.
    for e in [
        leg_at(150_000, 2, 0, Some(2), LegState::Ringing),
        leg_at(155_000, 2, 0, Some(2), LegState::Active),
        event(155_000, EventKind::QueueLeft { queue: q.clone(), call: call(0), outcome: QueueOutcome::Answered }),
    ] {
        assert!(!matches!(state.apply(&e), Outcome::Refused(_)), "{e:?}");
    }
    let (extensions, calls, queues) = state.views_all();
    assert_eq!((queues[0].figures.waiting, queues[0].figures.answered), (0, 1));
    assert_eq!(calls.len(), 1);
    assert_eq!(extensions.iter().find(|x| x.id == extension(2)).unwrap().presence, Presence::Busy);
}

#[test]
fn a_caller_who_overflowed_to_another_queue_is_answered_there_not_in_both() {
    let (q1, q2) = (queue(0), queue(1));
    let mut state = LiveState::default();
    for e in [
        event(0, EventKind::QueueJoined { queue: q1.clone(), call: call(0), caller: Party::default() }),
        // Q1's leave was lost; the caller went on to Q2 and was answered there.
        event(60_000, EventKind::QueueJoined { queue: q2.clone(), call: call(0), caller: Party::default() }),
        leg_at(80_000, 0, 0, Some(2), LegState::Active),
        leg_at(180_000, 0, 0, Some(2), LegState::Ended),
    ] {
        state.apply(&e);
    }
    let (entries_1, _) = state.queue_entries(&q1).unwrap();
    let (entries_2, _) = state.queue_entries(&q2).unwrap();
    assert_eq!((entries_1[0].outcome, entries_1[0].left_at), (Some(QueueOutcome::Other), Some(60_000)));
    assert_eq!(entries_1[0].talk_ms, None);
    assert_eq!((entries_2[0].outcome, entries_2[0].left_at), (Some(QueueOutcome::Answered), Some(80_000)));
    assert_eq!(entries_2[0].talk_ms, Some(100_000));
    let queues = state.views_all().2;
    assert_eq!((queues[0].figures.answered, queues[0].figures.other), (0, 1));
    assert_eq!((queues[1].figures.answered, queues[1].figures.avg_talk_ms), (1, Some(100_000)));
}

#[test]
fn a_report_of_talking_stamped_after_the_leg_ended_does_not_make_it_answered() {
    let rang = leg_at(1_000, 0, 0, Some(1), LegState::Ringing);
    let missed = unanswered_at(20_000, 0, 0, 1);
    let late = leg_at(25_000, 0, 0, Some(1), LegState::Active);
    for events in [[&rang, &missed, &late], [&late, &rang, &missed]] {
        let mut state = LiveState::default();
        for e in events {
            state.apply(e);
        }
        let (extensions, calls, _) = state.views_all();
        assert_eq!(calls[0].answered_at, None);
        assert_eq!(calls[0].end_cause, Some(EndCause::NoAnswer));
        assert_eq!(extensions[0].last_answered_at, None);
    }
}

#[test]
fn a_call_that_rings_on_just_after_the_reset_is_todays_news() {
    let mut state = LiveState::default();
    let timed_out = unanswered_at(99_500, 0, 0, 1);
    state.apply(&leg_at(90_000, 0, 0, Some(1), LegState::Ringing));
    state.apply(&timed_out);
    // The IVR's ring to agent 1 timed out half a second before the reset: forgotten with the day.
    state.start_day(100_000);
    assert!(state.views_all().1.is_empty());
    // A retried report from before the reset is old news; the ring to agent 2 after it is not.
    assert!(matches!(state.apply(&leg_at(95_000, 0, 0, Some(1), LegState::Ringing)), Outcome::Unchanged));
    assert!(matches!(state.apply(&leg_at(101_000, 1, 0, Some(2), LegState::Ringing)), Outcome::Applied(_)));
    let (extensions, calls, _) = state.views_all();
    assert_eq!(calls.len(), 1);
    assert_eq!(extensions.iter().find(|x| x.id == extension(2)).unwrap().presence, Presence::Ringing);
}

#[test]
fn a_caller_who_gave_up_in_the_queue_after_the_last_ring_ends_the_call_then_as_abandoned() {
    let mut state = LiveState::default();
    let q = queue(0);
    let timed_out = unanswered_at(30_000, 0, 0, 1);
    for e in [
        event(10_000, EventKind::QueueJoined { queue: q.clone(), call: call(0), caller: Party::default() }),
        leg_at(15_000, 0, 0, Some(1), LegState::Ringing),
        timed_out,
        event(75_000, EventKind::QueueLeft { queue: q.clone(), call: call(0), outcome: QueueOutcome::Abandoned }),
    ] {
        state.apply(&e);
    }
    let call_view = &state.views_all().1[0];
    assert_eq!((call_view.ended_at, call_view.end_cause), (Some(75_000), Some(EndCause::QueueAbandoned)));
}

#[test]
fn a_new_day_leaves_the_leaves_it_keeps_open_to_later_news() {
    let q = queue(0);
    let joined = event(10_000, EventKind::QueueJoined { queue: q.clone(), call: call(0), caller: Party::default() });
    let talking = leg_at(25_000, 0, 0, Some(1), LegState::Active);
    let missed = unanswered_at(20_000, 0, 0, 1);
    // A restart (replay, then the day's start) between the two reports must not matter.
    let mut restarted = LiveState::default();
    restarted.apply(&joined);
    restarted.apply(&talking);
    restarted.start_day(5_000);
    restarted.apply(&missed);
    let mut straight = LiveState::default();
    straight.start_day(5_000);
    for e in [&joined, &talking, &missed] {
        straight.apply(e);
    }
    assert_eq!(views(&restarted), views(&straight));
    assert_eq!(straight.views_all().2[0].figures.waiting, 1, "the ring ended unanswered: still waiting");
}

#[test]
fn a_hidden_call_that_rings_again_is_back_on_the_board_and_survives_the_new_day() {
    let rang = leg_at(0, 0, 0, Some(1), LegState::Ringing);
    let missed = unanswered_at(20_000, 0, 0, 1);
    let rings_on = leg_at(100_000, 1, 0, Some(2), LegState::Ringing);
    let mut state = LiveState::default();
    state.apply(&rang);
    state.apply(&missed);
    // A minute after every leg we knew of ended, the board hid the call.
    assert_eq!(state.retire_ended(85_000).len(), 1);
    assert!(state.views_all().1.is_empty());
    // Then the caller rang agent 2 (one call id for the whole conversation, no queue events).
    match state.apply(&rings_on) {
        Outcome::Applied(changes) => assert!(changes.iter().any(|change| matches!(change, Change::Call(_)))),
        other => panic!("the ring changed nothing: {other:?}"),
    }
    let calls = state.views_all().1;
    assert_eq!((calls.len(), calls[0].ended_at), (1, None));
    // A late copy of the old ring's end does not hide it again, and the new day keeps it.
    state.apply(&missed);
    state.start_day(150_000);
    assert_eq!(state.views_all().1.len(), 1);
    let presence = |state: &LiveState| state.views_all().0.into_iter().find(|x| x.id == extension(2)).unwrap().presence;
    assert_eq!(presence(&state), Presence::Ringing);
    // A restart replays the same reports without hiding anything: the same board.
    let mut replayed = LiveState::default();
    for e in [&rang, &missed, &rings_on] {
        replayed.apply(e);
    }
    replayed.start_day(150_000);
    assert_eq!(views(&replayed), views(&state));
}
