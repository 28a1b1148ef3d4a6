//! Queues, the callers waiting in them, and the figures a supervisor watches.

use super::call::Party;
use super::event::QueueOutcome;
use super::ids::{CallId, ExtensionId, QueueId, Timestamp};
use serde::{Deserialize, Serialize};

/// Per-queue settings; every call center sets its own targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueSettings {
    /// A call answered within this many seconds counts toward the service level.
    pub service_level_s: u32,
    /// An abandon within this many seconds is a short abandon, counted apart and left out of
    /// the service level (the caller hung up before anyone could have answered).
    pub short_abandon_s: u32,
    /// When today's figures start, local time `HH:MM` in `time_zone`.
    pub reset_time: String,
    /// IANA time zone name, e.g. `Australia/Sydney`.
    pub time_zone: String,
    pub thresholds: Thresholds,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            service_level_s: 20,
            short_abandon_s: 5,
            reset_time: "00:00".into(),
            time_zone: "UTC".into(),
            thresholds: Thresholds::default(),
        }
    }
}

/// Amber and red limits; a figure past amber shows amber, past red shows red.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    pub waiting: Limits,
    pub longest_wait_s: Limits,
    /// Lower is worse: amber below `amber`, red below `red`.
    pub service_level_pct: Limits,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            waiting: Limits { amber: 3.0, red: 6.0 },
            longest_wait_s: Limits { amber: 30.0, red: 90.0 },
            service_level_pct: Limits { amber: 80.0, red: 60.0 },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub amber: f64,
    pub red: f64,
}

/// A caller in a queue, as the live state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub call: CallId,
    pub caller: Party,
    /// When the caller joined; unknown when only the leaving was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<QueueOutcome>,
    /// Talk time of the call once it was answered and ended, for the average talk figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_ms: Option<i64>,
}

impl QueueEntry {
    pub fn is_waiting(&self) -> bool {
        self.outcome.is_none()
    }

    /// Time from joining to leaving; none while waiting, and none when the joining was never
    /// seen: an unknown wait is not a zero wait, and must not count as answered at once.
    pub fn wait_ms(&self) -> Option<i64> {
        Some((self.left_at? - self.joined_at?).max(0))
    }

    /// The moment this entry counts for when figures are cut at the daily reset.
    pub fn counted_at(&self) -> Timestamp {
        self.joined_at.or(self.left_at).unwrap_or(0)
    }

    /// Whether this entry counts in the day that began at `day_start`: it joined that day, or it
    /// was still in the queue when the day began. A caller waiting across the reset is waiting
    /// today, and is answered or abandoned today.
    pub fn counts_in_day(&self, day_start: Timestamp) -> bool {
        self.counted_at() >= day_start || self.left_at.is_none_or(|left| left >= day_start)
    }
}

/// Agent status counts across the extensions that serve a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounts {
    /// Not logged out, not on break, and on no call.
    pub available: u32,
    /// On a call (ringing, talking or holding), whatever the status says.
    pub busy: u32,
    pub on_break: u32,
    pub logged_out: u32,
}

/// The figures of one queue since its daily reset. Every count is over the entries that
/// joined (or, when the joining was missed, left) since then.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueFigures {
    /// Callers in the queue now.
    pub waiting: u32,
    /// Join time of the caller waiting longest; the browser ticks `now - this`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_waiting_since: Option<Timestamp>,
    /// offered = answered + abandoned + other + waiting.
    pub offered: u32,
    /// Every answer, those whose wait is unknown included.
    pub answered: u32,
    /// Answered with a known wait <= service_level_s.
    pub answered_within_sl: u32,
    /// Answered callers whose joining was never seen: their wait is unknown, so they count in
    /// answered and offered (and the service level's denominator) but not as answered within
    /// the threshold, nor in the average wait.
    #[serde(default)]
    pub answered_wait_unknown: u32,
    /// Every abandon, short ones included.
    pub abandoned: u32,
    /// Abandons with wait < short_abandon_s, and those whose wait is unknown (their joining was
    /// never seen), which so stay out of the service level too.
    pub abandoned_short: u32,
    /// Left neither answered nor abandoned (overflow, timeout, transfer out).
    pub other: u32,
    /// 100 × answered_within_sl / (answered + abandoned − abandoned_short), the architecture's
    /// formula: an answer whose wait is unknown is not known to be within the threshold, so it
    /// counts below the line only; none when that denominator is zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level_pct: Option<f64>,
    /// Mean wait of answered calls whose wait is known (average speed of answer), milliseconds;
    /// none when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_wait_ms: Option<i64>,
    /// Mean talk time of answered calls that have ended, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_talk_ms: Option<i64>,
    pub agents: AgentCounts,
}

impl QueueFigures {
    /// Computes the figures from the queue's entries that count in the day from `day_start`
    /// (see `QueueEntry::counts_in_day`) and its agents.
    pub fn compute<'a>(
        entries: impl IntoIterator<Item = &'a QueueEntry>,
        settings: &QueueSettings,
        day_start: Timestamp,
        agents: AgentCounts,
    ) -> Self {
        let mut tally = Tally::default();
        let mut longest_waiting_since: Option<Timestamp> = None;
        for entry in entries.into_iter().filter(|entry| entry.counts_in_day(day_start)) {
            tally.add(&Contribution::of(entry), settings);
            if let (true, Some(joined)) = (entry.is_waiting(), entry.joined_at) {
                longest_waiting_since = Some(longest_waiting_since.map_or(joined, |since| since.min(joined)));
            }
        }
        tally.figures(longest_waiting_since, agents)
    }
}

/// What one queue entry adds to its queue's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    pub outcome: Option<QueueOutcome>,
    /// None while waiting or when the joining was never seen (see `QueueEntry::wait_ms`).
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
}

impl Contribution {
    pub fn of(entry: &QueueEntry) -> Self {
        Self { outcome: entry.outcome, wait_ms: entry.wait_ms(), talk_ms: entry.talk_ms }
    }
}

/// The running sums behind `QueueFigures`. The hub keeps one per queue and adds or removes an
/// entry's contribution as that entry changes, so an event costs the same however long the day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    offered: i64,
    waiting: i64,
    answered: i64,
    answered_within_sl: i64,
    answered_wait_unknown: i64,
    abandoned: i64,
    abandoned_short: i64,
    other: i64,
    wait_sum_ms: i64,
    talk_sum_ms: i64,
    talk_count: i64,
}

impl Tally {
    pub fn add(&mut self, contribution: &Contribution, settings: &QueueSettings) {
        self.count(contribution, settings, 1);
    }

    pub fn remove(&mut self, contribution: &Contribution, settings: &QueueSettings) {
        self.count(contribution, settings, -1);
    }

    fn count(&mut self, contribution: &Contribution, settings: &QueueSettings, sign: i64) {
        let service_level_ms = i64::from(settings.service_level_s) * 1000;
        let short_abandon_ms = i64::from(settings.short_abandon_s) * 1000;
        let wait = contribution.wait_ms;
        self.offered += sign;
        match contribution.outcome {
            None => self.waiting += sign,
            Some(QueueOutcome::Answered) => {
                self.answered += sign;
                match wait {
                    Some(wait) => {
                        self.wait_sum_ms += sign * wait;
                        self.answered_within_sl += sign * i64::from(wait <= service_level_ms);
                    }
                    None => self.answered_wait_unknown += sign,
                }
                if let Some(talk) = contribution.talk_ms {
                    self.talk_sum_ms += sign * talk;
                    self.talk_count += sign;
                }
            }
            Some(QueueOutcome::Abandoned) => {
                self.abandoned += sign;
                self.abandoned_short += sign * i64::from(wait.is_none_or(|wait| wait < short_abandon_ms));
            }
            Some(QueueOutcome::Other) => self.other += sign,
        }
    }

    /// The figures, with the formulas documented on `QueueFigures`: service level
    /// 100 × answered_within_sl / (answered + abandoned − abandoned_short), average wait over
    /// answered calls whose wait is known, average talk over answered calls that have ended.
    pub fn figures(&self, longest_waiting_since: Option<Timestamp>, agents: AgentCounts) -> QueueFigures {
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        let answered_known = self.answered - self.answered_wait_unknown;
        let denominator = self.answered + self.abandoned - self.abandoned_short;
        QueueFigures {
            waiting: count(self.waiting),
            longest_waiting_since,
            offered: count(self.offered),
            answered: count(self.answered),
            answered_within_sl: count(self.answered_within_sl),
            answered_wait_unknown: count(self.answered_wait_unknown),
            abandoned: count(self.abandoned),
            abandoned_short: count(self.abandoned_short),
            other: count(self.other),
            service_level_pct: (denominator > 0).then(|| 100.0 * self.answered_within_sl as f64 / denominator as f64),
            avg_wait_ms: (answered_known > 0).then(|| self.wait_sum_ms / answered_known),
            avg_talk_ms: (self.talk_count > 0).then(|| self.talk_sum_ms / self.talk_count),
            agents,
        }
    }
}

/// One hour of a queue's day, for the calls-per-hour and service-level-per-hour chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourFigures {
    /// Start of the hour, in the queue's time zone.
    pub hour_start: Timestamp,
    /// That hour on the queue's local clock (0-23): the chart's label.
    #[serde(default)]
    pub hour: u8,
    /// Callers who joined in this hour, and how they left (same definitions as the day's).
    pub offered: u32,
    pub answered: u32,
    pub answered_within_sl: u32,
    #[serde(default)]
    pub answered_wait_unknown: u32,
    pub abandoned: u32,
    pub abandoned_short: u32,
}

impl HourFigures {
    /// Same formula as the day's service level, over this hour's callers.
    pub fn service_level_pct(&self) -> Option<f64> {
        let denominator = self.answered + self.abandoned - self.abandoned_short;
        (denominator > 0).then(|| 100.0 * f64::from(self.answered_within_sl) / f64::from(denominator))
    }
}

/// A queue's day so far: figures per hour, and the callers who gave up (for calling back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDay {
    pub queue: QueueId,
    pub hours: Vec<HourFigures>,
    /// Today's abandoned callers, latest first.
    pub abandoned: Vec<QueueEntry>,
    /// The abandoned calls (by id) whose caller was reached afterwards, by a call back or by
    /// calling again: when that later call was answered. Filled from the call history.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reached: std::collections::BTreeMap<CallId, Timestamp>,
}

impl QueueDay {
    /// How many callers abandoned today.
    pub fn abandoned_count(&self) -> usize {
        self.abandoned.len()
    }

    /// Marks each abandoned caller reached by an answered call in `answered` (E.164 number,
    /// call, answer time) that is another call with the same number, answered after they gave up.
    pub fn mark_reached(&mut self, answered: &[(String, CallId, Timestamp)]) {
        for entry in &self.abandoned {
            let (Some(number), Some(left)) = (entry.caller.number.as_deref().and_then(super::e164), entry.left_at)
            else {
                continue;
            };
            let first = answered
                .iter()
                .filter(|(other, call, at)| *other == number && *call != entry.call && *at >= left)
                .map(|(_, _, at)| *at)
                .min();
            if let Some(at) = first {
                self.reached.insert(entry.call.clone(), at);
            }
        }
    }

    /// The E.164 numbers of the abandoned callers, to look their later calls up by.
    pub fn abandoned_numbers(&self) -> Vec<String> {
        let mut numbers: Vec<String> =
            self.abandoned.iter().filter_map(|entry| entry.caller.number.as_deref().and_then(super::e164)).collect();
        numbers.sort();
        numbers.dedup();
        numbers
    }

    /// Buckets the day's entries by the hour they joined in (callers who joined before the day
    /// began at `day_start`, in its first hour); `hour_of` gives the start of the (local) hour a
    /// time falls in and that hour on the local clock.
    pub fn compute(
        queue: QueueId,
        entries: &[QueueEntry],
        settings: &QueueSettings,
        day_start: Timestamp,
        hour_of: impl Fn(Timestamp) -> (Timestamp, u8),
    ) -> Self {
        let service_level_ms = i64::from(settings.service_level_s) * 1000;
        let short_abandon_ms = i64::from(settings.short_abandon_s) * 1000;
        let mut hours: std::collections::BTreeMap<Timestamp, HourFigures> = std::collections::BTreeMap::new();
        let mut abandoned = Vec::new();
        for entry in entries {
            let (hour_start, local) = hour_of(entry.counted_at().max(day_start));
            let hour = hours.entry(hour_start).or_insert_with(|| HourFigures {
                hour_start,
                hour: local,
                ..HourFigures::default()
            });
            hour.offered += 1;
            let wait = entry.wait_ms();
            match entry.outcome {
                Some(QueueOutcome::Answered) => {
                    hour.answered += 1;
                    match wait {
                        Some(wait) => hour.answered_within_sl += u32::from(wait <= service_level_ms),
                        None => hour.answered_wait_unknown += 1,
                    }
                }
                Some(QueueOutcome::Abandoned) => {
                    hour.abandoned += 1;
                    hour.abandoned_short += u32::from(wait.is_none_or(|wait| wait < short_abandon_ms));
                    abandoned.push(entry.clone());
                }
                _ => {}
            }
        }
        abandoned.sort_by_key(|entry| std::cmp::Reverse(entry.left_at));
        Self { queue, hours: hours.into_values().collect(), abandoned, reached: Default::default() }
    }
}

/// A queue as the browser shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub id: QueueId,
    pub name: String,
    pub members: Vec<ExtensionId>,
    /// Callers waiting now, longest-waiting first.
    pub waiting: Vec<QueueEntry>,
    pub figures: QueueFigures,
    pub settings: QueueSettings,
}

#[cfg(test)]
mod tests {

    use super::*;

    fn entry(joined: i64, left: Option<(i64, QueueOutcome)>) -> QueueEntry {
        QueueEntry {
            call: CallId(format!("c{joined}")),
            caller: Party::default(),
            joined_at: Some(joined),
            left_at: left.map(|(at, _)| at),
            outcome: left.map(|(_, outcome)| outcome),
            talk_ms: None,
        }
    }

    #[test]
    fn figures_follow_their_formulas() {
        use QueueOutcome::*;
        let entries = [
            entry(1_000, Some((11_000, Answered))),  // 10 s: within 20 s
            entry(2_000, Some((42_000, Answered))),  // 40 s: outside
            entry(3_000, Some((5_000, Abandoned))),  // 2 s: short
            entry(4_000, Some((34_000, Abandoned))), // 30 s
            entry(5_000, Some((6_000, Other))),
            entry(6_000, None),
            entry(7_000, None),
            entry(-9, Some((-2, Abandoned))), // left before the reset: yesterday's
            entry(-5, None),                  // still waiting from before the reset: today's
        ];
        let figures = QueueFigures::compute(&entries, &QueueSettings::default(), 0, AgentCounts::default());
        assert_eq!(figures.offered, 8);
        assert_eq!(figures.waiting, 3);
        assert_eq!(figures.longest_waiting_since, Some(-5));
        assert_eq!((figures.answered, figures.answered_within_sl), (2, 1));
        assert_eq!((figures.abandoned, figures.abandoned_short), (2, 1));
        assert_eq!(figures.other, 1);
        // 1 within / (2 answered + 2 abandoned - 1 short) = 33.3 %
        assert!((figures.service_level_pct.unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(figures.avg_wait_ms, Some(25_000));
        assert_eq!(figures.offered, figures.answered + figures.abandoned + figures.other + figures.waiting);
    }

    #[test]
    fn an_answer_whose_joining_was_never_seen_is_answered_but_has_no_wait() {
        use QueueOutcome::*;
        let unseen = QueueEntry { joined_at: None, ..entry(1_000, Some((2_000, Answered))) };
        let entries = [unseen, entry(10_000, Some((20_000, Answered)))]; // 10 s: within 20 s
        let figures = QueueFigures::compute(&entries, &QueueSettings::default(), 0, AgentCounts::default());
        assert_eq!((figures.offered, figures.answered, figures.answered_wait_unknown), (2, 2, 1));
        // Not within the threshold for a "0 s" wait it never had, but answered all the same:
        // 1 within / 2 (the architecture's formula), neither 2 / 2 nor 1 / 1.
        assert_eq!(figures.answered_within_sl, 1);
        assert_eq!(figures.service_level_pct, Some(50.0));
        assert_eq!(figures.avg_wait_ms, Some(10_000));
        assert_eq!(figures.offered, figures.answered + figures.abandoned + figures.other + figures.waiting);
        // The day by hour says the same.
        let day = QueueDay::compute(QueueId("q".into()), &entries, &QueueSettings::default(), 0, |_| (0, 0));
        assert_eq!((day.hours[0].answered, day.hours[0].answered_within_sl), (2, 1));
        assert_eq!(day.hours[0].service_level_pct(), Some(50.0));
    }

    #[test]
    fn no_calls_means_no_service_level() {
        let figures = QueueFigures::compute([], &QueueSettings::default(), 0, AgentCounts::default());
        assert_eq!(figures.service_level_pct, None);
        assert_eq!(figures.avg_wait_ms, None);
    }

    #[test]
    fn an_abandoned_caller_is_reached_by_a_later_answered_call_with_their_number() {
        let gave_up = |call: &str, number: &str, left: Timestamp| QueueEntry {
            call: CallId(call.into()),
            caller: Party { number: Some(number.into()), ..Party::default() },
            joined_at: Some(left - 30_000),
            left_at: Some(left),
            outcome: Some(QueueOutcome::Abandoned),
            talk_ms: None,
        };
        let mut day = QueueDay {
            queue: QueueId("q".into()),
            hours: Vec::new(),
            abandoned: vec![gave_up("a1", "0299990001", 100_000), gave_up("a2", "+61 2 9999 0002", 100_000)],
            reached: Default::default(),
        };
        assert_eq!(day.abandoned_numbers(), vec!["+61299990001".to_owned(), "+61299990002".to_owned()]);
        day.mark_reached(&[
            // Answered before 0001 gave up, and the abandoned call itself: neither counts.
            ("+61299990001".into(), CallId("x".into()), 90_000),
            ("+61299990002".into(), CallId("a2".into()), 95_000),
            // Called back later, twice: the first answer is when they were reached.
            ("+61299990001".into(), CallId("b1".into()), 180_000),
            ("+61299990001".into(), CallId("b2".into()), 150_000),
        ]);
        assert_eq!(day.reached.into_iter().collect::<Vec<_>>(), vec![(CallId("a1".into()), 150_000)]);
    }
}
