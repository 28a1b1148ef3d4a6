//! The hub's protocol: resume with `since` gives every delta exactly once or a snapshot, and a
//! restart rebuilds the same state from the journal.
#![cfg(feature = "ssr")]

use callboard::hub::{Accepted, Hub, HubSettings, Resume};
use callboard::model::*;
use callboard::store::{CallQuery, Store};
use std::path::Path;
use tokio_util::sync::CancellationToken;

fn leg_event(i: u32, state: LegState, at: i64) -> Event {
    Event {
        provider: "p".into(),
        account: "a".into(),
        seq: None,
        at,
        received_at: callboard::hub::now_ms(),
        kind: EventKind::Leg(LegReport {
            leg: LegId::new("p", "a", &format!("l{i}")),
            call: CallId::new("p", "a", &format!("c{i}")),
            extension: Some(ExtensionId::new("p", "a", &format!("{}", 100 + i % 5))),
            state,
            held_by: None,
            direction: Direction::Inbound,
            origin: Origin::Normal,
            local: Party::default(),
            remote: Party { number: Some(format!("+6140000{i:04}")), ..Party::default() },
            queue: None,
            end_cause: state.is_ended().then_some(EndCause::Normal),
            raw_cause: None,
            raw_state: format!("{state:?}"),
            recording: None,
            revision: 0,
        }),
        raw: serde_json::json!({ "i": i }),
    }
}

async fn start(path: &Path) -> (Hub, Store, CancellationToken) {
    let store = Store::open(path).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    (hub, store, shutdown)
}

fn frame(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn resume_gives_each_delta_once_or_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, _shutdown) = start(&dir.path().join("hub.db")).await;
    let now = callboard::hub::now_ms();

    let mut first = hub.subscribe(None).await.unwrap();
    assert_eq!(first.first.len(), 1);
    assert_eq!(frame(first.first[0].as_str())["type"], "snapshot");
    for i in 0..10 {
        assert!(matches!(hub.submit(leg_event(i, LegState::Ringing, now)).await.unwrap(), Accepted::Applied(_)));
    }
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(first.frames.recv().await.unwrap().seq);
    }
    assert_eq!(seen, (1..=10).collect::<Vec<u64>>());
    drop(first);

    // A duplicate changes nothing and publishes nothing.
    assert_eq!(hub.submit(leg_event(3, LegState::Ringing, now)).await.unwrap(), Accepted::Unchanged);

    for i in 10..20 {
        hub.submit(leg_event(i, LegState::Ringing, now)).await.unwrap();
    }
    let mut resumed = hub.subscribe(Some(Resume { since: 10, epoch: None })).await.unwrap();
    let missed: Vec<u64> = resumed.first.iter().map(|text| frame(text.as_str())["seq"].as_u64().unwrap()).collect();
    assert_eq!(missed, (11..=20).collect::<Vec<u64>>(), "exactly the missed deltas, in order");
    assert!(resumed.first.iter().all(|text| frame(text.as_str())["type"] == "delta"));
    hub.submit(leg_event(0, LegState::Active, now + 1)).await.unwrap();
    assert_eq!(resumed.frames.recv().await.unwrap().seq, 21);

    // Up to date: nothing to send first.
    assert!(hub.subscribe(Some(Resume { since: 21, epoch: None })).await.unwrap().first.is_empty());
    // From the future (an older server's numbering): a snapshot.
    let future = hub.subscribe(Some(Resume { since: 999, epoch: None })).await.unwrap();
    assert_eq!(frame(future.first[0].as_str())["type"], "snapshot");
    assert_eq!(frame(future.first[0].as_str())["seq"], 21);
}

#[tokio::test]
async fn garbage_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, _shutdown) = start(&dir.path().join("hub.db")).await;
    let mut bad = leg_event(1, LegState::Active, callboard::hub::now_ms());
    bad.at = -5;
    assert!(hub.submit(bad).await.is_err());
    let connectors = hub.connectors().await.unwrap();
    assert_eq!(connectors[0].errors, 1);
    assert!(connectors[0].last_error.as_deref().unwrap().contains("outside"));
}

#[tokio::test]
async fn restart_rebuilds_state_history_and_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let now = callboard::hub::now_ms();
    let (hub, store, shutdown) = start(&path).await;
    for i in 0..20 {
        hub.submit(leg_event(i, LegState::Ringing, now - 10_000)).await.unwrap();
        hub.submit(leg_event(i, LegState::Active, now - 9_000)).await.unwrap();
    }
    for i in 0..5 {
        hub.submit(leg_event(i, LegState::Ended, now - 1_000)).await.unwrap();
    }
    let (seq_before, text_before) = hub.snapshot().await.unwrap();
    let history_before = store.calls(&CallQuery::default()).await.unwrap();
    shutdown.cancel();
    drop(hub);
    drop(store);

    let (hub, store, _shutdown) = start(&path).await;
    let (seq_after, text_after) = hub.snapshot().await.unwrap();
    // A browser resuming with the old process's epoch gets a snapshot, even at the same seq.
    let old_epoch = frame(text_before.as_str())["epoch"].as_u64().unwrap();
    let resumed = hub.subscribe(Some(Resume { since: seq_before, epoch: Some(old_epoch) })).await.unwrap();
    assert_eq!(frame(resumed.first[0].as_str())["type"], "snapshot");
    assert_eq!(seq_before, seq_after);
    let strip = |text: &str| {
        let mut value = frame(text);
        value.as_object_mut().unwrap().remove("server_time");
        value.as_object_mut().unwrap().remove("connectors");
        value.as_object_mut().unwrap().remove("epoch");
        value
    };
    assert_eq!(strip(text_before.as_str()), strip(text_after.as_str()));
    assert_eq!(store.calls(&CallQuery::default()).await.unwrap(), history_before);
    assert_eq!(history_before.len(), 20);
    let ended = history_before.iter().filter(|call| call.ended_at.is_some()).count();
    assert_eq!(ended, 5);
    // Numbering continues after the journal's last entry.
    assert_eq!(hub.submit(leg_event(7, LegState::Held, now)).await.unwrap(), Accepted::Applied(seq_before + 1));
}

#[tokio::test]
async fn history_finds_a_caller_however_the_number_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, _shutdown) = start(&dir.path().join("hub.db")).await;
    let now = callboard::hub::now_ms();
    for i in 3..5 {
        hub.submit(leg_event(i, LegState::Ringing, now)).await.unwrap();
    }
    let calls_with = |number: &str| {
        let query = CallQuery { number: Some(number.into()), ..CallQuery::default() };
        let store = store.clone();
        async move { store.calls(&query).await.unwrap().into_iter().map(|call| call.id.to_string()).collect::<Vec<_>>() }
    };
    // Call c3's caller is +61400000003.
    for spelling in ["+61400000003", "0400 000 003", "+61 400 000 003", "(04) 0000-0003"] {
        assert_eq!(calls_with(spelling).await, vec!["p/a/c3".to_owned()], "{spelling}");
    }
    assert_eq!(calls_with("0400000005").await, Vec::<String>::new());
    assert_eq!(calls_with("3").await, Vec::<String>::new());
}

#[tokio::test]
async fn history_finds_the_calls_an_extension_took_part_in() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, _shutdown) = start(&dir.path().join("hub.db")).await;
    let now = callboard::hub::now_ms();
    // Calls c0..c9 ring at extensions 100..104 in turn: 101 has c1 and c6.
    for i in 0..10 {
        hub.submit(leg_event(i, LegState::Ringing, now - 10_000 + i64::from(i))).await.unwrap();
    }
    // A state change journals the call again without listing it twice.
    hub.submit(leg_event(6, LegState::Active, now)).await.unwrap();
    let at = |extension: &str, limit: Option<u32>| {
        let query = CallQuery { extension: Some(extension.into()), limit, ..CallQuery::default() };
        let store = store.clone();
        async move { store.calls(&query).await.unwrap().into_iter().map(|call| call.id.to_string()).collect::<Vec<_>>() }
    };
    assert_eq!(at("p/a/101", None).await, vec!["p/a/c6".to_owned(), "p/a/c1".to_owned()]);
    assert_eq!(at("p/a/101", Some(1)).await, vec!["p/a/c6".to_owned()]);
    assert_eq!(at("p/a/999", None).await, Vec::<String>::new());
    // Combined with a number: that extension's calls with that caller.
    let query =
        CallQuery { extension: Some("p/a/101".into()), number: Some("0400 000 001".into()), ..CallQuery::default() };
    let both: Vec<String> = store.calls(&query).await.unwrap().into_iter().map(|call| call.id.to_string()).collect();
    assert_eq!(both, vec!["p/a/c1".to_owned()]);
}

#[tokio::test]
async fn a_snapshot_tells_the_time_it_is_sent_even_when_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, _shutdown) = start(&dir.path().join("hub.db")).await;
    hub.submit(leg_event(1, LegState::Ringing, callboard::hub::now_ms())).await.unwrap();
    let server_time = |text: &str| frame(text)["server_time"].as_i64().unwrap();
    let (seq, first) = hub.snapshot().await.unwrap();
    // A quiet spell: no event, so the same seq, but browsers set their clocks by this field.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let (seq_later, later) = hub.snapshot().await.unwrap();
    assert_eq!(seq, seq_later);
    let waited = server_time(later.as_str()) - server_time(first.as_str());
    assert!(waited >= 600, "the second snapshot's server_time is {waited} ms after the first");
    let subscribed = hub.subscribe(None).await.unwrap();
    assert!(server_time(subscribed.first[0].as_str()) >= server_time(later.as_str()));
}

#[tokio::test]
async fn a_leg_whose_provider_went_silent_while_it_rang_is_ended_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, _shutdown) = start(&dir.path().join("hub.db")).await;
    let now = callboard::hub::now_ms();
    // Ringing since eleven minutes ago, and talking since as long: only the ringing one is stale.
    let mut ringing = leg_event(1, LegState::Ringing, now - 11 * 60_000);
    ringing.received_at = now - 11 * 60_000;
    hub.submit(ringing).await.unwrap();
    let mut talking = leg_event(2, LegState::Active, now - 11 * 60_000);
    talking.received_at = now - 11 * 60_000;
    hub.submit(talking).await.unwrap();
    let heard = hub.connectors().await.unwrap()[0].last_event_at;
    let mut ended = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let calls = store.calls(&CallQuery::default()).await.unwrap();
        ended = calls.into_iter().find(|call| call.id.native() == "c1" && call.ended_at.is_some());
        if ended.is_some() {
            break;
        }
    }
    let ended = ended.expect("the silent ringing leg is ended within a housekeeping round");
    assert_eq!(ended.legs[0].end_cause, Some(EndCause::Unknown));
    assert!(ended.legs[0].raw_cause.as_deref().unwrap().contains("no news from the provider for 11 min"));
    let (_, text) = hub.snapshot().await.unwrap();
    let live =
        frame(text.as_str())["calls"].as_array().unwrap().iter().filter(|call| call["ended_at"].is_null()).count();
    assert_eq!(live, 1, "the call that is talking stays");
    // Ending it is not news from the provider: its feed's last event stays what it was.
    assert_eq!(hub.connectors().await.unwrap()[0].last_event_at, heard);
}

/// A hub whose figures day began two minutes ago (UTC), so a test can place events before it.
async fn start_with_fresh_day(path: &Path) -> (Hub, Store, CancellationToken, i64) {
    let now = callboard::hub::now_ms();
    let reset = (now - 2 * 60_000).div_euclid(60_000);
    let reset_time = format!("{:02}:{:02}", reset.div_euclid(60).rem_euclid(24), reset.rem_euclid(60));
    let day_start = reset * 60_000;
    let mut settings = HubSettings::default();
    settings.default_queue.reset_time = reset_time;
    let store = Store::open(path).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), settings, shutdown.clone()).await.unwrap();
    (hub, store, shutdown, day_start)
}

fn queue_joined(i: u32, at: i64) -> Event {
    let kind = EventKind::QueueJoined {
        queue: QueueId::new("p", "a", "sales"),
        call: CallId::new("p", "a", &format!("q{i}")),
        caller: Party { number: Some(format!("+6140000{i:04}")), ..Party::default() },
    };
    Event { received_at: at, ..Event::new("p", "a", at, kind) }
}

#[tokio::test]
async fn a_restart_keeps_the_callers_and_calls_that_were_up_across_the_daily_reset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let (hub, _store, shutdown, day_start) = start_with_fresh_day(&path).await;
    // Before the reset: a caller joined and still waits, a call was answered and still talks,
    // and another caller joined and was answered (yesterday's).
    let before = day_start - 5 * 60_000;
    hub.submit(queue_joined(1, before)).await.unwrap();
    hub.submit(queue_joined(2, before)).await.unwrap();
    let answered = EventKind::QueueLeft {
        queue: QueueId::new("p", "a", "sales"),
        call: CallId::new("p", "a", "q2"),
        outcome: QueueOutcome::Answered,
    };
    hub.submit(Event { received_at: before + 1, ..Event::new("p", "a", before + 1, answered) }).await.unwrap();
    let mut talking = leg_event(7, LegState::Active, before);
    talking.received_at = before;
    hub.submit(talking).await.unwrap();
    let sales = |text: &str| frame(text)["queues"][0]["figures"].clone();
    let (_, text) = hub.snapshot().await.unwrap();
    let figures = sales(text.as_str());
    assert_eq!((figures["waiting"].as_u64(), figures["offered"].as_u64()), (Some(1), Some(1)), "{figures}");
    shutdown.cancel();
    drop(hub);

    let (hub, _store, _shutdown, _) = start_with_fresh_day(&path).await;
    let (_, after) = hub.snapshot().await.unwrap();
    assert_eq!(sales(after.as_str()), figures, "the waiting caller is still waiting");
    let live: Vec<String> = frame(after.as_str())["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|call| call["ended_at"].is_null())
        .map(|call| call["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(live, vec!["p/a/c7".to_owned()], "the call up across the reset is still up");
}

#[tokio::test]
async fn a_caller_whose_provider_went_silent_for_hours_has_left() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, _shutdown) = start(&dir.path().join("hub.db")).await;
    let now = callboard::hub::now_ms();
    hub.submit(queue_joined(1, now - 5 * 3_600_000)).await.unwrap();
    hub.submit(queue_joined(2, now - 60_000)).await.unwrap();
    let mut waiting = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, text) = hub.snapshot().await.unwrap();
        waiting = frame(text.as_str())["queues"][0]["figures"]["waiting"].as_u64();
        if waiting == Some(1) {
            break;
        }
    }
    assert_eq!(waiting, Some(1), "only the caller heard of a minute ago still waits");
    let (_, text) = hub.snapshot().await.unwrap();
    assert_eq!(frame(text.as_str())["queues"][0]["figures"]["other"].as_u64(), Some(1));
    // Journaled: a restart agrees.
    let journal = store.journal_since(0).await.unwrap();
    assert!(journal
        .iter()
        .any(|entry| matches!(&entry.event.kind, EventKind::QueueLeft { outcome: QueueOutcome::Other, .. })));
}

#[tokio::test]
async fn events_handed_over_before_shutdown_are_journaled_before_the_hub_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let (hub, store, shutdown) = start(&path).await;
    let now = callboard::hub::now_ms();
    // A connector hands over a poll's worth of events and moves on; the server is stopped.
    for i in 0..2_000 {
        hub.feed(leg_event(i, LegState::Ringing, now)).await.unwrap();
    }
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), hub.stopped()).await.expect("the hub stops");
    assert_eq!(store.journal_since(0).await.unwrap().len(), 2_000, "every event handed over is journaled");
    // And nothing more is taken once it has stopped.
    assert!(hub.feed(leg_event(9_999, LegState::Ringing, now)).await.is_err());
}
