//! Moving from one monitor link to another without losing or repeating an event.
//!
//! Voicenter has no replay: a new link starts with a full statement and then hears what
//! happens next. A token refresh or a return to the primary opens the new link while the old
//! one still runs. Every event goes to both, so the two streams align on the first event both
//! hear after the new statement: if the new link heard it first, the old link is let go once it
//! hears it too and what the new link heard after it is taken in; if the old link heard it
//! first, the new link takes over at once and skips what the old one already gave. The new
//! statement, older than what the old link said since, is not taken in. Quiet links align by
//! themselves: with nothing heard after the statement for a moment, nothing happened since it
//! was taken. Only if the old link dies first is the new statement taken in, as after any
//! reconnection.

use super::link::Link;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// With the statement heard and nothing after it for this long, nothing is in flight.
pub const QUIET: Duration = Duration::from_secs(2);
/// A handover not done in this long is ended: the new link is given up without a statement,
/// else it takes over as it stands.
pub const STATEMENT_WITHIN: Duration = Duration::from_secs(30);
/// Events held waiting for alignment; beyond this the new statement is taken instead.
const PENDING_BOUND: usize = 4096;

/// Events a link sends to its own socket only, never to be aligned on.
fn per_socket(name: &str) -> bool {
    name == "keepaliveResponse"
}

/// Statement events: what a new link says first.
fn statement(name: &str) -> bool {
    matches!(name, "loginSuccess" | "loginStatus" | "AllExtensionsStatus" | "AllExtensionStatus")
}

/// A new link being taken over.
pub struct Handover {
    pub fresh: Link,
    statement: Vec<(String, Value)>,
    /// Heard by the new link after its statement, not yet heard by the old one.
    pending: VecDeque<(String, Value)>,
    /// Taken in from the old link since the handover began, not yet heard by the new one.
    old_since: VecDeque<(String, Value)>,
    /// The new link heard an event the old one had given: it is in step.
    in_step: bool,
    /// When the statement's extensions arrived, or the last event after it.
    last: Option<Instant>,
    started: Instant,
    overflowed: bool,
}

/// How to finish a handover: what the new link heard that is to be taken in now, and what it
/// will still say that the old link already gave (to be skipped).
pub struct Finish {
    pub link: Link,
    pub replay: Vec<(String, Value)>,
    pub skip: VecDeque<(String, Value)>,
}

impl Handover {
    pub fn new(fresh: Link) -> Self {
        Self {
            fresh,
            statement: Vec::new(),
            pending: VecDeque::new(),
            old_since: VecDeque::new(),
            in_step: false,
            last: None,
            started: Instant::now(),
            overflowed: false,
        }
    }

    /// The new link heard an event.
    pub fn fresh_heard(&mut self, name: String, payload: Value) {
        if per_socket(&name) {
            return;
        }
        if statement(&name) && self.pending.is_empty() {
            if name.starts_with("AllExtension") {
                self.last = Some(Instant::now());
            }
            self.statement.push((name, payload));
            return;
        }
        self.last = Some(Instant::now());
        if self.pending.is_empty() {
            if let Some(at) =
                self.old_since.iter().position(|(old, old_payload)| *old == name && *old_payload == payload)
            {
                self.old_since.drain(..=at);
                self.in_step = true;
                return;
            }
        }
        if self.pending.len() >= PENDING_BOUND {
            self.overflowed = true;
            return;
        }
        self.pending.push_back((name, payload));
    }

    /// The old link heard (and the connector took in) an event: true when that aligns the two.
    pub fn old_heard(&mut self, name: &str, payload: &Value) -> bool {
        if self.pending.front().is_some_and(|(first, first_payload)| first == name && first_payload == payload) {
            return true;
        }
        // A statement on the old link answers its own `resync` (the new link hears no such
        // thing): like a keepalive's answer, it is never to be aligned on.
        if !per_socket(name) && !statement(name) {
            if self.old_since.len() >= PENDING_BOUND {
                self.overflowed = true;
            } else {
                self.old_since.push_back((name.to_owned(), payload.clone()));
            }
        }
        false
    }

    /// True when the new link heard an event the old one had already given: it can take over
    /// now, skipping what else the old one gave.
    pub fn in_step(&self) -> bool {
        self.in_step
    }

    /// True when the new link can be taken over with nothing to replay: its statement is in
    /// and nothing came after it for a while.
    pub fn quiet(&self) -> bool {
        self.pending.is_empty() && self.old_since.is_empty() && self.last.is_some_and(|last| last.elapsed() >= QUIET)
    }

    /// True when the handover has run too long: without a statement the new link is let go;
    /// with one it takes over as it stands.
    pub fn stalled(&self) -> bool {
        self.started.elapsed() >= STATEMENT_WITHIN
    }

    /// Whether the new link gave its statement.
    pub fn stated(&self) -> bool {
        self.last.is_some()
    }

    /// Whether alignment is out of reach (too much held): take the statement instead.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Aligned: the old link just took in the first pending event; the rest follow.
    pub fn aligned(mut self) -> Finish {
        self.pending.pop_front();
        Finish { link: self.fresh, replay: self.pending.into_iter().collect(), skip: VecDeque::new() }
    }

    /// In step or quiet: nothing to replay; what the old link gave ahead is skipped.
    pub fn settled(self) -> Finish {
        Finish { link: self.fresh, replay: self.pending.into_iter().collect(), skip: self.old_since }
    }

    /// The old link is gone (or alignment failed): the new statement, then what followed it.
    pub fn restated(self) -> Finish {
        let mut replay = self.statement;
        replay.extend(self.pending);
        Finish { link: self.fresh, replay, skip: VecDeque::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: u64) -> (String, Value) {
        ("ExtensionEvent".into(), json!({ "n": n }))
    }

    async fn fresh_link() -> Link {
        Link::detached()
    }

    #[tokio::test]
    async fn the_new_link_ahead_replays_what_the_old_one_had_not_said() {
        let mut taking = Handover::new(fresh_link().await);
        taking.fresh_heard("loginStatus".into(), json!({}));
        taking.fresh_heard("AllExtensionsStatus".into(), json!({}));
        for n in [1, 2, 3] {
            let (name, payload) = event(n);
            taking.fresh_heard(name, payload);
        }
        let (name, payload) = event(0);
        assert!(!taking.old_heard(&name, &payload), "said before the new statement");
        let (name, payload) = event(1);
        assert!(taking.old_heard(&name, &payload));
        let finish = taking.aligned();
        assert_eq!(finish.replay, vec![event(2), event(3)]);
        assert!(finish.skip.is_empty());
    }

    #[tokio::test]
    async fn the_old_link_ahead_is_skipped_on_the_new_one() {
        let mut taking = Handover::new(fresh_link().await);
        taking.fresh_heard("AllExtensionsStatus".into(), json!({}));
        for n in [1, 2, 3] {
            let (name, payload) = event(n);
            assert!(!taking.old_heard(&name, &payload));
        }
        let (name, payload) = event(1);
        taking.fresh_heard(name, payload);
        assert!(taking.in_step());
        let finish = taking.settled();
        assert!(finish.replay.is_empty());
        assert_eq!(finish.skip, VecDeque::from([event(2), event(3)]));
    }

    #[tokio::test]
    async fn a_statement_answering_the_old_links_resync_does_not_hold_the_handover() {
        let mut taking = Handover::new(fresh_link().await);
        taking.fresh_heard("loginStatus".into(), json!({}));
        taking.fresh_heard("AllExtensionsStatus".into(), json!({}));
        assert!(!taking.old_heard("loginStatus", &json!({"queues": []})));
        assert!(!taking.old_heard("AllExtensionsStatus", &json!({"extensions": []})));
        let finish = taking.settled();
        assert!(finish.skip.is_empty(), "nothing the new link would say is to be skipped");
    }

    #[tokio::test]
    async fn a_dead_old_link_leaves_the_new_statement_to_be_taken_in() {
        let mut taking = Handover::new(fresh_link().await);
        taking.fresh_heard("AllExtensionsStatus".into(), json!({"x": 1}));
        taking.fresh_heard("keepaliveResponse".into(), json!({}));
        let (name, payload) = event(1);
        taking.fresh_heard(name, payload);
        assert!(!taking.quiet());
        let finish = taking.restated();
        assert_eq!(finish.replay, vec![("AllExtensionsStatus".into(), json!({"x": 1})), event(1)]);
    }
}
