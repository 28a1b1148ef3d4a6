//! What the simulated call center is like: who works there, who calls, and how people behave.
//! A scenario plus a seed fixes the ground truth, so every run of it can be compared.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The longest time a scenario may give in seconds (a year): the engine draws its delays from
/// these, and anything longer would only overflow the clock arithmetic, never happen in a run.
pub const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// The most arrivals per hour a queue may have: beyond this the simulation would do nothing
/// but take calls (a caller every 36 ms).
pub const MAX_CALLS_PER_HOUR: f64 = 100_000.0;
/// The most outbound calls, breaks or logouts per agent and hour (one a second).
pub const MAX_PER_AGENT_HOUR: f64 = 3_600.0;
/// The largest multiplier of the daily curve.
pub const MAX_CURVE: f64 = 1_000.0;

/// The whole description of a simulated call center; every field has a believable default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seeds every random choice; the same seed and scenario give the same ground truth.
    pub seed: u64,
    /// Number of agents; each has one extension, numbered up from `first_extension`.
    pub agents: u32,
    pub first_extension: u32,
    pub queues: Vec<QueuePlan>,
    /// Mean seconds a caller waits before giving up (exponential).
    pub patience_s: f64,
    /// Talk time of an answered call.
    pub talk_s: Spread,
    /// Seconds an agent lets a call ring before answering, between these two.
    pub answer_after_s: (f64, f64),
    /// Chance an agent answers a call offered to them; otherwise it rings out.
    pub answer_probability: f64,
    /// Seconds a call rings at an agent before the PBX gives up on that agent.
    pub ring_timeout_s: f64,
    /// Chance an answered call is put on hold once, and for how long.
    pub hold_probability: f64,
    pub hold_s: Spread,
    /// Chance an answered call ends in a blind or an attended transfer to another agent.
    pub blind_transfer_probability: f64,
    pub attended_transfer_probability: f64,
    /// Outbound calls each available agent places per hour, and how they go.
    pub outbound_per_agent_hour: f64,
    pub outbound_answer_probability: f64,
    pub outbound_busy_probability: f64,
    /// Breaks each agent takes per hour (reason and length drawn per break).
    pub breaks_per_agent_hour: f64,
    /// Times per hour an agent logs out, and for how long.
    pub logouts_per_agent_hour: f64,
    pub logout_s: Spread,
    /// Arrival-rate multiplier for each hour of the day (UTC), 24 values; empty means flat.
    pub daily_curve: Vec<f64>,
}

/// One queue: its name, who serves it, how many callers arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuePlan {
    pub name: String,
    /// Mean arrivals per hour (Poisson), before the daily curve.
    pub calls_per_hour: f64,
    /// Agent positions (0-based) that serve this queue.
    pub agents: Vec<u32>,
}

/// A positive duration with a mean and a standard deviation, drawn log-normally (long tail).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self::demo()
    }
}

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("scenario {path}: {message}")]
    Parse { path: String, message: String },
    #[error("scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// A call center where nothing happens by itself, for tests that drive it by commands:
    /// three agents (101 to 103) on one queue with no callers, calls answered by the far end
    /// after 30 s and talking until someone hangs up, no holds, outbound calls or breaks.
    pub fn for_commands() -> Self {
        Scenario {
            seed: 5,
            agents: 3,
            first_extension: 101,
            queues: vec![QueuePlan { name: "Help".into(), calls_per_hour: 0.0, agents: vec![0, 1, 2] }],
            talk_s: Spread { mean: 1e6, sd: 0.0 },
            answer_after_s: (30.0, 31.0),
            hold_probability: 0.0,
            outbound_per_agent_hour: 0.0,
            outbound_answer_probability: 1.0,
            outbound_busy_probability: 0.0,
            breaks_per_agent_hour: 0.0,
            logouts_per_agent_hour: 0.0,
            ..Scenario::demo()
        }
    }

    /// The demo call center: 40 agents, 4 queues, busy but believable (about 70% occupancy, a
    /// few callers waiting at peaks, some abandons).
    pub fn demo() -> Self {
        let range = |from: u32, to: u32| (from..to).collect::<Vec<u32>>();
        Self {
            seed: 1,
            agents: 40,
            first_extension: 201,
            queues: vec![
                QueuePlan { name: "Sales".into(), calls_per_hour: 150.0, agents: range(0, 14) },
                QueuePlan { name: "Support".into(), calls_per_hour: 220.0, agents: range(10, 30) },
                QueuePlan { name: "Billing".into(), calls_per_hour: 70.0, agents: range(26, 36) },
                QueuePlan {
                    name: "VIP".into(),
                    calls_per_hour: 30.0,
                    agents: range(34, 40).into_iter().chain(0..3).collect(),
                },
            ],
            patience_s: 90.0,
            talk_s: Spread { mean: 210.0, sd: 150.0 },
            answer_after_s: (2.0, 7.0),
            answer_probability: 0.93,
            ring_timeout_s: 15.0,
            hold_probability: 0.15,
            hold_s: Spread { mean: 35.0, sd: 25.0 },
            blind_transfer_probability: 0.05,
            attended_transfer_probability: 0.03,
            outbound_per_agent_hour: 1.0,
            outbound_answer_probability: 0.65,
            outbound_busy_probability: 0.1,
            breaks_per_agent_hour: 0.4,
            logouts_per_agent_hour: 0.05,
            logout_s: Spread { mean: 600.0, sd: 300.0 },
            daily_curve: Vec::new(),
        }
    }

    /// Reads a scenario from a TOML file; keys left out keep the demo's values.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: shown.clone(), source })?;
        let scenario: Scenario =
            toml::from_str(&text).map_err(|error| ScenarioError::Parse { path: shown, message: error.to_string() })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Rejects what would make the simulation meaningless or stall.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::Invalid(message));
        if self.agents == 0 || self.agents > 100_000 {
            return invalid(format!("agents must be 1..=100000, not {}", self.agents));
        }
        // A queue's id is the slug of its name: two names with one slug would be one queue to
        // every face and to the board.
        let mut ids: HashMap<String, &str> = HashMap::new();
        for queue in &self.queues {
            if let Some(agent) = queue.agents.iter().find(|agent| **agent >= self.agents) {
                return invalid(format!(
                    "queue {:?} names agent {agent}, but agents are 0..{}",
                    queue.name, self.agents
                ));
            }
            let mut members = HashSet::new();
            if let Some(agent) = queue.agents.iter().find(|agent| !members.insert(**agent)) {
                return invalid(format!("queue {:?} names agent {agent} more than once", queue.name));
            }
            if !(queue.calls_per_hour.is_finite() && (0.0..=MAX_CALLS_PER_HOUR).contains(&queue.calls_per_hour)) {
                return invalid(format!(
                    "queue {:?}: calls_per_hour must be a number from 0 to {MAX_CALLS_PER_HOUR}",
                    queue.name
                ));
            }
            let id = slug(&queue.name);
            if id.is_empty() {
                return invalid(format!("queue name {:?} needs at least one letter or digit", queue.name));
            }
            if let Some(earlier) = ids.insert(id.clone(), queue.name.as_str()) {
                return invalid(format!(
                    "queues {earlier:?} and {:?} would both have the id {id:?} (names differing only in case, \
                     spaces or punctuation are one queue); rename one",
                    queue.name
                ));
            }
        }
        let probabilities = [
            ("answer_probability", self.answer_probability),
            ("hold_probability", self.hold_probability),
            ("blind_transfer_probability", self.blind_transfer_probability),
            ("attended_transfer_probability", self.attended_transfer_probability),
            ("outbound_answer_probability", self.outbound_answer_probability),
            ("outbound_busy_probability", self.outbound_busy_probability),
        ];
        for (name, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return invalid(format!("{name} must be between 0 and 1, not {value}"));
            }
        }
        if self.outbound_answer_probability + self.outbound_busy_probability > 1.0 {
            return invalid("outbound_answer_probability + outbound_busy_probability must not exceed 1".into());
        }
        let positive = [
            ("patience_s", self.patience_s),
            ("talk_s.mean", self.talk_s.mean),
            ("hold_s.mean", self.hold_s.mean),
            ("logout_s.mean", self.logout_s.mean),
            ("ring_timeout_s", self.ring_timeout_s),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0 && value <= MAX_SECONDS) {
                return invalid(format!("{name} must be a positive number of seconds, at most {MAX_SECONDS} (a year)"));
            }
        }
        let spreads = [("talk_s.sd", self.talk_s.sd), ("hold_s.sd", self.hold_s.sd), ("logout_s.sd", self.logout_s.sd)];
        for (name, value) in spreads {
            if !(value.is_finite() && (0.0..=MAX_SECONDS).contains(&value)) {
                return invalid(format!("{name} must be a number of seconds from 0 to {MAX_SECONDS} (a year)"));
            }
        }
        let (shortest, longest) = self.answer_after_s;
        if !(shortest.is_finite() && longest.is_finite() && 0.0 <= shortest && shortest <= longest) {
            return invalid("answer_after_s must be [shortest, longest] seconds, 0 <= shortest <= longest".into());
        }
        if longest > MAX_SECONDS {
            return invalid(format!("answer_after_s must be at most {MAX_SECONDS} seconds (a year)"));
        }
        let rates = [
            ("outbound_per_agent_hour", self.outbound_per_agent_hour),
            ("breaks_per_agent_hour", self.breaks_per_agent_hour),
            ("logouts_per_agent_hour", self.logouts_per_agent_hour),
        ];
        for (name, value) in rates {
            if !(value.is_finite() && (0.0..=MAX_PER_AGENT_HOUR).contains(&value)) {
                return invalid(format!("{name} must be a number from 0 to {MAX_PER_AGENT_HOUR}"));
            }
        }
        if !(self.daily_curve.is_empty() || self.daily_curve.len() == 24) {
            return invalid(format!("daily_curve needs 24 values (one per hour), not {}", self.daily_curve.len()));
        }
        if self.daily_curve.iter().any(|value| !(value.is_finite() && (0.0..=MAX_CURVE).contains(value))) {
            return invalid(format!("daily_curve values must be numbers from 0 to {MAX_CURVE}"));
        }
        Ok(())
    }

    /// The arrival-rate multiplier at an hour of the day (UTC).
    pub fn curve_at(&self, hour: usize) -> f64 {
        self.daily_curve.get(hour % 24).copied().unwrap_or(1.0)
    }
}

/// A queue's native id: its name in lower case, runs of other characters as one `-`.
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_valid_and_every_agent_serves_a_queue() {
        let demo = Scenario::demo();
        demo.validate().unwrap();
        for agent in 0..demo.agents {
            assert!(demo.queues.iter().any(|queue| queue.agents.contains(&agent)), "agent {agent} serves no queue");
        }
    }

    #[test]
    fn invalid_scenarios_say_what_is_wrong() {
        let mut scenario = Scenario::demo();
        scenario.queues[0].agents.push(99);
        assert!(scenario.validate().unwrap_err().to_string().contains("names agent 99"));
        let mut scenario = Scenario::demo();
        scenario.answer_probability = 1.5;
        assert!(scenario.validate().unwrap_err().to_string().contains("answer_probability"));
        let mut scenario = Scenario::demo();
        scenario.daily_curve = vec![1.0; 3];
        assert!(scenario.validate().unwrap_err().to_string().contains("24 values"));
    }

    #[test]
    fn queues_whose_names_give_one_id_and_agents_named_twice_are_refused() {
        let mut scenario = Scenario::demo();
        scenario.queues[1].name = "sales".into();
        let error = scenario.validate().unwrap_err().to_string();
        assert!(error.contains("\"Sales\" and \"sales\"") && error.contains("\"sales\""), "{error}");
        let mut scenario = Scenario::demo();
        scenario.queues = vec![
            QueuePlan { name: "Help Desk".into(), calls_per_hour: 10.0, agents: vec![0] },
            QueuePlan { name: "help-desk".into(), calls_per_hour: 10.0, agents: vec![1] },
        ];
        let error = scenario.validate().unwrap_err().to_string();
        assert!(error.contains("\"help-desk\"") && error.contains("rename one"), "{error}");
        let mut scenario = Scenario::demo();
        scenario.queues[0].agents.push(3);
        let error = scenario.validate().unwrap_err().to_string();
        assert!(error.contains("\"Sales\" names agent 3 more than once"), "{error}");
    }

    #[test]
    fn values_too_large_for_the_clock_are_refused_by_name() {
        type Change = fn(&mut Scenario);
        let cases: [(&str, Change); 6] = [
            ("patience_s", |s| s.patience_s = 1e17),
            ("talk_s.mean", |s| s.talk_s.mean = 1e300),
            ("answer_after_s", |s| s.answer_after_s = (1.0, 1e12)),
            ("calls_per_hour", |s| s.queues[0].calls_per_hour = 1e12),
            ("breaks_per_agent_hour", |s| s.breaks_per_agent_hour = 1e9),
            ("daily_curve", |s| s.daily_curve = vec![1e300; 24]),
        ];
        for (name, change) in cases {
            let mut scenario = Scenario::demo();
            change(&mut scenario);
            let error = scenario.validate().expect_err(name).to_string();
            assert!(error.contains(name), "{error} should name {name}");
        }
        // The largest values allowed still pass.
        let scenario = Scenario { patience_s: MAX_SECONDS, ..Scenario::demo() };
        scenario.validate().unwrap();
    }

    #[test]
    fn partial_files_keep_the_demo_defaults() {
        let scenario: Scenario =
            toml::from_str("agents = 5\nqueues = [{ name = \"Help Desk\", calls_per_hour = 30.0, agents = [0, 1] }]")
                .unwrap();
        scenario.validate().unwrap();
        assert_eq!(scenario.agents, 5);
        assert_eq!(scenario.patience_s, Scenario::demo().patience_s);
        assert_eq!(slug(&scenario.queues[0].name), "help-desk");
    }
}
