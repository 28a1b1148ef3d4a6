//! The simulated PBX: the ground truth of the simulated call center.
//!
//! A discrete-event simulation on a virtual clock. [`Pbx::advance_to`] carries out everything
//! due up to a time; [`Pbx::command`] does what a PBX does with a call-control request (or
//! refuses it, as a PBX would). Every change comes out as model events, in order, from
//! [`Pbx::take_events`]: applied to an empty live state they give exactly the PBX's state, which
//! is what the provider faces render and what connectors must get back to.
//!
//! Nothing here reads a clock or the system's randomness: the same scenario, seed, start time
//! and commands give the same events.

use super::scenario::{slug, Scenario, Spread};
use crate::model::phone::dialable;
use crate::model::{
    Action, AgentStatus, BreakReason, CallId, Command, Direction, EndCause, Event, EventKind, ExtensionId,
    ExtensionReport, HeldBy, LegId, LegReport, LegState, Origin, Party, QueueId, QueueOutcome, QueueSettings,
    RecordingState, Timestamp,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

type CallNo = u64;

/// Ended calls are forgotten this long after they end (commands on them are refused).
const FORGET_ENDED_MS: i64 = 10 * 60_000;
/// An agent who cannot take a planned break or logout now (on a call) tries again this much later.
const RETRY_MS: i64 = 60_000;
/// A consultation nobody completes is completed for them after this long.
const CONSULT_LIMIT_MS: i64 = 180_000;
/// The longest delay the engine plans (a year, as the scenario's longest value): a value drawn
/// from an extreme scenario would otherwise overflow the clock arithmetic.
const MAX_DELAY_MS: i64 = 365 * 24 * 3_600_000;

/// Something the PBX will do at a time unless the state has moved on by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// A caller may arrive (thinned by the daily curve).
    Arrival {
        queue: usize,
    },
    Abandon {
        call: CallNo,
    },
    AgentAnswers {
        call: CallNo,
        leg: usize,
    },
    RingTimeout {
        call: CallNo,
        leg: usize,
    },
    HoldStart {
        call: CallNo,
        leg: usize,
    },
    /// The end of one particular hold: `hold` is the leg's hold count when it began, so the
    /// end of a hold that was since taken over (by a consultation, or resumed and held again
    /// from the desk) does nothing.
    HoldEnd {
        call: CallNo,
        leg: usize,
        hold: u32,
    },
    TalkEnds {
        call: CallNo,
        epoch: u32,
    },
    RemoteAnswers {
        call: CallNo,
    },
    RemoteFails {
        call: CallNo,
        busy: bool,
    },
    ConsultDone {
        consult: CallNo,
    },
    Outbound {
        agent: usize,
    },
    Break {
        agent: usize,
    },
    BreakOver {
        agent: usize,
    },
    Logout {
        agent: usize,
    },
    Login {
        agent: usize,
    },
}

struct Agent {
    extension: ExtensionId,
    number: String,
    name: String,
    queues: Vec<usize>,
    status: AgentStatus,
    status_at: Timestamp,
    live_legs: u32,
    idle_since: Timestamp,
}

impl Agent {
    fn party(&self) -> Party {
        Party { number: Some(self.number.clone()), name: Some(self.name.clone()), extension: Some(self.number.clone()) }
    }

    fn takes_calls(&self) -> bool {
        self.status == AgentStatus::Available && self.live_legs == 0
    }
}

struct SimQueue {
    id: QueueId,
    name: String,
    members: Vec<usize>,
    /// Candidate arrivals per millisecond at the busiest hour of the curve.
    peak_rate_per_ms: f64,
    /// Callers in the queue, oldest first.
    waiting: VecDeque<CallNo>,
    tally: QueueTally,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recording {
    Off,
    On,
    Paused,
}

struct SimLeg {
    id: LegId,
    agent: usize,
    state: LegState,
    remote: Party,
    end_cause: Option<EndCause>,
    /// Time of this leg's last event; the next one is strictly later so order never ties.
    last_at: Timestamp,
    /// Times the leg was put on hold: tells a planned end of hold whether its hold still stands.
    holds: u32,
}

/// A consultation call, with the call it is about.
#[derive(Clone, Copy)]
struct Consult {
    original: CallNo,
    /// The consulting agent's leg in the original call.
    from_leg: usize,
    /// Completed by the simulation itself (a scenario transfer) rather than by a command.
    automatic: bool,
}

struct SimCall {
    id: CallId,
    direction: Direction,
    origin: Origin,
    queue: Option<usize>,
    /// The outside party: the caller, or whoever an outbound call goes to.
    remote: Party,
    legs: Vec<SimLeg>,
    joined_at: Option<Timestamp>,
    waiting: bool,
    answered: bool,
    ended_at: Option<Timestamp>,
    /// Bumped when a transfer makes earlier plans for this call void.
    epoch: u32,
    transferred: bool,
    recording: Recording,
    consult: Option<Consult>,
    pending_consult: Option<CallNo>,
}

impl SimCall {
    fn live_leg_of(&self, agent: usize) -> Option<usize> {
        self.legs.iter().position(|leg| leg.agent == agent && !leg.state.is_ended())
    }
}

/// The scenario's own count of a queue's day, kept by the PBX independently of the live model,
/// so the hub's figures can be checked against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueTally {
    pub offered: u32,
    pub waiting: u32,
    /// Waits of answered callers, ms.
    pub answered_waits_ms: Vec<i64>,
    /// Waits of callers who hung up in the queue, ms.
    pub abandoned_waits_ms: Vec<i64>,
    /// Left the queue neither answered nor abandoned.
    pub other: u32,
}

impl QueueTally {
    pub fn answered(&self) -> u32 {
        self.answered_waits_ms.len() as u32
    }

    pub fn abandoned(&self) -> u32 {
        self.abandoned_waits_ms.len() as u32
    }

    pub fn answered_within(&self, settings: &QueueSettings) -> u32 {
        let limit = i64::from(settings.service_level_s) * 1000;
        self.answered_waits_ms.iter().filter(|wait| **wait <= limit).count() as u32
    }

    pub fn abandoned_short(&self, settings: &QueueSettings) -> u32 {
        let limit = i64::from(settings.short_abandon_s) * 1000;
        self.abandoned_waits_ms.iter().filter(|wait| **wait < limit).count() as u32
    }

    /// Same definition as the live figures: within threshold / (answered + abandoned − short).
    pub fn service_level_pct(&self, settings: &QueueSettings) -> Option<f64> {
        let denominator = self.answered() + self.abandoned() - self.abandoned_short(settings);
        (denominator > 0).then(|| 100.0 * f64::from(self.answered_within(settings)) / f64::from(denominator))
    }
}

/// The simulated PBX; see the module documentation.
pub struct Pbx {
    scenario: Scenario,
    provider: String,
    account: String,
    /// Distinguishes this run's call ids from an earlier run's in the same journal.
    run: String,
    rng: ChaCha8Rng,
    now: Timestamp,
    agenda: BinaryHeap<Reverse<(Timestamp, u64, Due)>>,
    scheduled: u64,
    agents: Vec<Agent>,
    agents_by_number: HashMap<String, usize>,
    queues: Vec<SimQueue>,
    calls: BTreeMap<CallNo, SimCall>,
    calls_by_id: HashMap<CallId, CallNo>,
    ended: VecDeque<(Timestamp, CallNo)>,
    next_call: CallNo,
    events: Vec<Event>,
}

impl Pbx {
    /// Opens the call center at `start` (ms): every agent available, queues empty. The opening
    /// state (extensions, statuses, queues) is the first batch of events.
    pub fn new(scenario: Scenario, provider: &str, account: &str, start: Timestamp) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let run = format!("{:x}", rng.random::<u32>() ^ (start / 1000) as u32);
        let mut pbx = Pbx {
            provider: provider.to_owned(),
            account: account.to_owned(),
            run,
            rng,
            now: start,
            agenda: BinaryHeap::new(),
            scheduled: 0,
            agents: Vec::new(),
            agents_by_number: HashMap::new(),
            queues: Vec::new(),
            calls: BTreeMap::new(),
            calls_by_id: HashMap::new(),
            ended: VecDeque::new(),
            next_call: 1,
            events: Vec::new(),
            scenario,
        };
        pbx.open();
        pbx
    }

    fn open(&mut self) {
        let peak = self.scenario.daily_curve.iter().copied().fold(0.0, f64::max);
        let peak = if self.scenario.daily_curve.is_empty() { 1.0 } else { peak };
        for index in 0..self.scenario.agents as usize {
            let number = (self.scenario.first_extension as usize + index).to_string();
            let name = agent_name(index);
            let extension = ExtensionId::new(&self.provider, &self.account, &number);
            self.agents_by_number.insert(number.clone(), index);
            self.agents.push(Agent {
                extension,
                number,
                name,
                queues: Vec::new(),
                status: AgentStatus::Available,
                status_at: self.now.saturating_sub(1),
                live_legs: 0,
                idle_since: self.now,
            });
        }
        for (index, plan) in self.scenario.queues.clone().into_iter().enumerate() {
            let members: Vec<usize> = plan.agents.iter().map(|agent| *agent as usize).collect();
            for member in &members {
                self.agents[*member].queues.push(index);
            }
            self.queues.push(SimQueue {
                id: QueueId::new(&self.provider, &self.account, &slug(&plan.name)),
                name: plan.name.clone(),
                members,
                peak_rate_per_ms: plan.calls_per_hour * peak / 3_600_000.0,
                waiting: VecDeque::new(),
                tally: QueueTally::default(),
            });
        }
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            let report = ExtensionReport {
                extension: agent.extension.clone(),
                name: Some(agent.name.clone()),
                sip_user: Some(format!("sip{}", agent.number)),
                online_user: Some(agent.name.clone()),
            };
            self.emit(EventKind::Extension(report));
            self.emit_status(index);
        }
        for index in 0..self.queues.len() {
            let queue = &self.queues[index];
            let members = queue.members.iter().map(|member| self.agents[*member].extension.clone()).collect();
            self.emit(EventKind::Queue { queue: queue.id.clone(), name: queue.name.clone(), members });
            self.schedule_arrival(index);
        }
        for agent in 0..self.agents.len() {
            let (outbound, breaks, logouts) = (
                self.scenario.outbound_per_agent_hour,
                self.scenario.breaks_per_agent_hour,
                self.scenario.logouts_per_agent_hour,
            );
            self.schedule_per_hour(outbound, Due::Outbound { agent });
            self.schedule_per_hour(breaks, Due::Break { agent });
            self.schedule_per_hour(logouts, Due::Logout { agent });
        }
    }

    /// The provider name the events carry.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The PBX clock: the time of the last thing done.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// When the next planned thing happens, if anything is planned.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.agenda.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Carries out everything due up to `until`, in time order, and moves the clock there.
    pub fn advance_to(&mut self, until: Timestamp) {
        while let Some(Reverse((at, _, due))) = self.agenda.peek().copied() {
            if at > until {
                break;
            }
            self.agenda.pop();
            self.now = self.now.max(at);
            self.carry_out(due);
        }
        self.now = self.now.max(until);
        self.forget_ended();
    }

    /// The events produced since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Every queue's tally, in scenario order: (id, name, tally).
    pub fn tallies(&self) -> Vec<(QueueId, String, QueueTally)> {
        self.queues.iter().map(|queue| (queue.id.clone(), queue.name.clone(), queue.tally.clone())).collect()
    }

    /// Calls in progress now (not ended), for summaries.
    pub fn live_calls(&self) -> usize {
        self.calls.values().filter(|call| call.ended_at.is_none()).count()
    }

    /// The agents' extension numbers, in order.
    pub fn extension_numbers(&self) -> Vec<String> {
        self.agents.iter().map(|agent| agent.number.clone()).collect()
    }

    fn schedule(&mut self, at: Timestamp, due: Due) {
        self.scheduled += 1;
        self.agenda.push(Reverse((at, self.scheduled, due)));
    }

    /// Plans `due` `delay_ms` from now; the sum saturates, so no delay overflows the clock.
    fn schedule_in(&mut self, delay_ms: i64, due: Due) {
        self.schedule(self.now.saturating_add(delay_ms), due);
    }

    fn schedule_per_hour(&mut self, per_hour: f64, due: Due) {
        if per_hour > 0.0 {
            let delay = self.exponential_ms(3600.0 / per_hour);
            self.schedule_in(delay, due);
        }
    }

    fn schedule_arrival(&mut self, queue: usize) {
        let rate = self.queues[queue].peak_rate_per_ms;
        if rate > 0.0 {
            let delay = self.exponential_ms(0.001 / rate);
            self.schedule_in(delay, Due::Arrival { queue });
        }
    }

    /// An exponential delay of mean `mean_s` seconds, from 1 ms to [`MAX_DELAY_MS`].
    fn exponential_ms(&mut self, mean_s: f64) -> i64 {
        let Ok(exp) = Exp::new(1.0 / mean_s) else { return MAX_DELAY_MS };
        capped_ms(exp.sample(&mut self.rng), 0.001)
    }

    fn spread_ms(&mut self, spread: Spread) -> i64 {
        let seconds = if spread.sd <= 0.0 {
            spread.mean
        } else {
            LogNormal::from_mean_cv(spread.mean, spread.sd / spread.mean)
                .map(|distribution| distribution.sample(&mut self.rng))
                .unwrap_or(spread.mean)
        };
        capped_ms(seconds, 1.0)
    }

    fn uniform_ms(&mut self, (from_s, to_s): (f64, f64)) -> i64 {
        // Clamped first: a range too wide for a float is refused by the sampler.
        let limit = (MAX_DELAY_MS / 1000) as f64;
        let (from_s, to_s) = (from_s.max(0.0).min(limit), to_s.max(0.0).min(limit));
        let seconds = if to_s > from_s { self.rng.random_range(from_s..to_s) } else { from_s };
        capped_ms(seconds, 0.0)
    }

    fn carry_out(&mut self, due: Due) {
        match due {
            Due::Arrival { queue } => self.arrival(queue),
            Due::Abandon { call } => self.abandon(call),
            Due::AgentAnswers { call, leg } => {
                if self.leg_state(call, leg) == Some(LegState::Ringing) {
                    self.answer(call, leg);
                }
            }
            Due::RingTimeout { call, leg } => self.ring_timeout(call, leg),
            Due::HoldStart { call, leg } => {
                if self.leg_state(call, leg) == Some(LegState::Active) {
                    self.set_leg(call, leg, LegState::Held);
                    let length = self.spread_ms(self.scenario.hold_s);
                    let hold = self.calls[&call].legs[leg].holds;
                    self.schedule_in(length, Due::HoldEnd { call, leg, hold });
                }
            }
            Due::HoldEnd { call, leg, hold } => self.hold_ends(call, leg, hold),
            Due::TalkEnds { call, epoch } => self.talk_ends(call, epoch),
            Due::RemoteAnswers { call } => {
                if self.leg_state(call, 0) == Some(LegState::RemoteRinging) {
                    self.set_leg(call, 0, LegState::Active);
                    self.call_mut(call).answered = true;
                    self.plan_talk(call, 0);
                }
            }
            Due::RemoteFails { call, busy } => {
                if self.leg_state(call, 0) == Some(LegState::RemoteRinging) {
                    let cause = if busy { EndCause::Busy } else { EndCause::NoAnswer };
                    self.end_call(call, cause, None);
                }
            }
            Due::ConsultDone { consult } => self.consult_done(consult),
            Due::Outbound { agent } => {
                self.schedule_per_hour(self.scenario.outbound_per_agent_hour, Due::Outbound { agent });
                if self.agents[agent].takes_calls() {
                    let number = self.outside_number();
                    self.place_outbound(agent, number, Origin::Normal);
                }
            }
            Due::Break { agent } => self.take_break(agent),
            Due::BreakOver { agent } => {
                if matches!(self.agents[agent].status, AgentStatus::Break(_)) {
                    self.set_status(agent, AgentStatus::Available);
                    self.schedule_per_hour(self.scenario.breaks_per_agent_hour, Due::Break { agent });
                    self.dispatch();
                }
            }
            Due::Logout { agent } => {
                if self.agents[agent].takes_calls() {
                    self.set_status(agent, AgentStatus::LoggedOut);
                    let away = self.spread_ms(self.scenario.logout_s);
                    self.schedule_in(away, Due::Login { agent });
                } else {
                    self.schedule_in(RETRY_MS, Due::Logout { agent });
                }
            }
            Due::Login { agent } => {
                if self.agents[agent].status == AgentStatus::LoggedOut {
                    self.set_status(agent, AgentStatus::Available);
                    self.schedule_per_hour(self.scenario.logouts_per_agent_hour, Due::Logout { agent });
                    self.dispatch();
                }
            }
        }
    }

    fn arrival(&mut self, queue: usize) {
        self.schedule_arrival(queue);
        if !self.scenario.daily_curve.is_empty() {
            let peak = self.scenario.daily_curve.iter().copied().fold(0.0, f64::max);
            let hour = (self.now.rem_euclid(86_400_000) / 3_600_000) as usize;
            if self.rng.random::<f64>() * peak >= self.scenario.curve_at(hour) {
                return;
            }
        }
        let caller = self.caller();
        let call = self.new_call(Direction::Inbound, Origin::Normal, Some(queue), caller.clone());
        let now = self.now;
        let record = self.call_mut(call);
        record.joined_at = Some(now);
        record.waiting = true;
        let (queue_id, call_id) = (self.queues[queue].id.clone(), self.calls[&call].id.clone());
        self.emit(EventKind::QueueJoined { queue: queue_id, call: call_id, caller });
        let queue_record = &mut self.queues[queue];
        queue_record.tally.offered += 1;
        queue_record.tally.waiting += 1;
        queue_record.waiting.push_back(call);
        let patience = self.exponential_ms(self.scenario.patience_s);
        self.schedule_in(patience, Due::Abandon { call });
        self.dispatch();
    }

    /// Offers waiting callers, oldest first, to the members who have been idle longest.
    fn dispatch(&mut self) {
        loop {
            let mut best: Option<(Timestamp, CallNo, usize)> = None;
            for queue in &self.queues {
                let Some((joined, call)) = queue
                    .waiting
                    .iter()
                    .map(|call| (&self.calls[call], *call))
                    .find(|(record, _)| record.legs.iter().all(|leg| leg.state.is_ended()))
                    .map(|(record, call)| (record.joined_at.unwrap_or(self.now), call))
                else {
                    continue;
                };
                let agent = queue
                    .members
                    .iter()
                    .copied()
                    .filter(|member| self.agents[*member].takes_calls())
                    .min_by_key(|member| (self.agents[*member].idle_since, *member));
                if let Some(agent) = agent {
                    if best.is_none_or(|(best_joined, best_call, _)| (joined, call) < (best_joined, best_call)) {
                        best = Some((joined, call, agent));
                    }
                }
            }
            let Some((_, call, agent)) = best else { return };
            let remote = self.calls[&call].remote.clone();
            let leg = self.add_leg(call, agent, LegState::Ringing, remote);
            self.plan_ring(call, leg);
        }
    }

    /// The agent at `leg` answers after a while, or lets it ring out.
    fn plan_ring(&mut self, call: CallNo, leg: usize) {
        if self.rng.random::<f64>() < self.scenario.answer_probability {
            let after = self.uniform_ms(self.scenario.answer_after_s);
            self.schedule_in(after, Due::AgentAnswers { call, leg });
        } else {
            let timeout = capped_ms(self.scenario.ring_timeout_s, 0.0);
            self.schedule_in(timeout, Due::RingTimeout { call, leg });
        }
    }

    fn answer(&mut self, call: CallNo, leg: usize) {
        let record = &self.calls[&call];
        if record.origin == Origin::ClickToCall && !record.answered && leg == 0 {
            // The agent picked up their own click-to-call; now the far end rings.
            self.set_leg(call, leg, LegState::RemoteRinging);
            self.plan_far_end(call);
            return;
        }
        self.set_leg(call, leg, LegState::Active);
        let record = self.call_mut(call);
        record.answered = true;
        if let Some(consult) = record.consult {
            // Both ends of a consultation are up: the consulting agent's leg too.
            if let Some(other) = (0..record.legs.len()).find(|other| *other != leg) {
                self.set_leg(call, other, LegState::Active);
            }
            if consult.automatic {
                let talk = self.uniform_ms((10.0, 40.0));
                self.schedule_in(talk, Due::ConsultDone { consult: call });
            }
            return;
        }
        if record.direction == Direction::Internal {
            // A colleague dialled directly picked up: the dialling side is connected too.
            let dialling = (0..record.legs.len())
                .find(|other| *other != leg && record.legs[*other].state == LegState::RemoteRinging);
            if let Some(other) = dialling {
                self.set_leg(call, other, LegState::Active);
            }
            self.plan_talk(call, leg);
            return;
        }
        if record.waiting {
            let wait = record.joined_at.map_or(0, |joined| self.now - joined);
            self.leave_queue(call, QueueOutcome::Answered);
            if let Some(queue) = self.calls[&call].queue {
                self.queues[queue].tally.answered_waits_ms.push(wait);
            }
        }
        self.plan_talk(call, leg);
    }

    fn plan_talk(&mut self, call: CallNo, leg: usize) {
        let talk = self.spread_ms(self.scenario.talk_s);
        if self.rng.random::<f64>() < self.scenario.hold_probability {
            let into = (talk as f64 * self.rng.random_range(0.2..0.6)) as i64;
            self.schedule_in(into, Due::HoldStart { call, leg });
        }
        let epoch = self.calls[&call].epoch;
        self.schedule_in(talk, Due::TalkEnds { call, epoch });
    }

    /// The simulated agent goes back to the caller they held, unless that hold is no longer the
    /// one planned (taken over by a consultation, or resumed and held again from the desk) or
    /// they are busy with another call now: either would leave them talking on two calls.
    fn hold_ends(&mut self, call: CallNo, leg: usize, hold: u32) {
        let Some(record) = self.calls.get(&call) else { return };
        let Some(sim_leg) = record.legs.get(leg) else { return };
        if sim_leg.state != LegState::Held || sim_leg.holds != hold || record.pending_consult.is_some() {
            return;
        }
        if self.engaged_elsewhere(sim_leg.agent, Some((call, leg))) {
            return;
        }
        self.set_leg(call, leg, LegState::Active);
    }

    /// Whether `agent` has a live leg, other than `except`, that is not on hold: ringing,
    /// dialling or talking. A held call leaves the agent free to make or take another.
    fn engaged_elsewhere(&self, agent: usize, except: Option<(CallNo, usize)>) -> bool {
        let own = usize::from(except.is_some());
        if self.agents[agent].live_legs as usize <= own {
            return false;
        }
        self.calls.iter().filter(|(_, record)| record.ended_at.is_none()).any(|(number, record)| {
            record.legs.iter().enumerate().any(|(index, sim_leg)| {
                sim_leg.agent == agent
                    && except != Some((*number, index))
                    && !sim_leg.state.is_ended()
                    && sim_leg.state != LegState::Held
            })
        })
    }

    fn plan_far_end(&mut self, call: CallNo) {
        let roll = self.rng.random::<f64>();
        let (answer, busy) = (self.scenario.outbound_answer_probability, self.scenario.outbound_busy_probability);
        if roll < answer {
            let after = self.uniform_ms((4.0, 15.0));
            self.schedule_in(after, Due::RemoteAnswers { call });
        } else if roll < answer + busy {
            let after = self.uniform_ms((1.0, 3.0));
            self.schedule_in(after, Due::RemoteFails { call, busy: true });
        } else {
            self.schedule_in(30_000, Due::RemoteFails { call, busy: false });
        }
    }

    fn abandon(&mut self, call: CallNo) {
        let Some(record) = self.calls.get(&call) else { return };
        if !record.waiting || record.ended_at.is_some() {
            return;
        }
        let wait = self.now - record.joined_at.unwrap_or(self.now);
        if let Some(queue) = record.queue {
            self.queues[queue].tally.abandoned_waits_ms.push(wait);
        }
        self.end_call(call, EndCause::QueueAbandoned, Some(QueueOutcome::Abandoned));
    }

    fn ring_timeout(&mut self, call: CallNo, leg: usize) {
        if self.leg_state(call, leg) != Some(LegState::Ringing) {
            return;
        }
        self.end_leg(call, leg, EndCause::NoAnswer);
        let record = &self.calls[&call];
        if record.waiting {
            // Back to the queue: the next idle agent gets it.
        } else {
            self.end_call(call, EndCause::NoAnswer, None);
        }
        self.dispatch();
    }

    fn talk_ends(&mut self, call: CallNo, epoch: u32) {
        let Some(record) = self.calls.get(&call) else { return };
        if record.ended_at.is_some() || record.epoch != epoch || record.pending_consult.is_some() {
            return;
        }
        let from_leg = record.legs.iter().position(|leg| leg.state.is_answered());
        let transferable = record.direction == Direction::Inbound && !record.transferred && record.consult.is_none();
        // An agent busy on another call (this one held meanwhile) does not start a transfer too.
        let free = from_leg.is_some_and(|leg| !self.engaged_elsewhere(record.legs[leg].agent, Some((call, leg))));
        if let (Some(from_leg), true) = (from_leg, transferable && free) {
            let from_agent = record.legs[from_leg].agent;
            let roll = self.rng.random::<f64>();
            let (blind, attended) =
                (self.scenario.blind_transfer_probability, self.scenario.attended_transfer_probability);
            if roll < blind + attended {
                if let Some(target) = self.idle_agent_other_than(from_agent) {
                    if roll < blind {
                        self.blind_transfer(call, from_leg, target);
                    } else {
                        self.start_consult(call, from_leg, target, true);
                    }
                    return;
                }
            }
        }
        self.end_call(call, EndCause::Normal, None);
    }

    fn idle_agent_other_than(&mut self, agent: usize) -> Option<usize> {
        let idle: Vec<usize> =
            (0..self.agents.len()).filter(|other| *other != agent && self.agents[*other].takes_calls()).collect();
        (!idle.is_empty()).then(|| idle[self.rng.random_range(0..idle.len())])
    }

    fn blind_transfer(&mut self, call: CallNo, from_leg: usize, target: usize) {
        self.end_leg(call, from_leg, EndCause::Normal);
        let record = self.call_mut(call);
        record.epoch += 1;
        record.transferred = true;
        // Whoever the transferring agent talked to (the caller, or a colleague on a call between
        // extensions) is who the new agent gets.
        let remote = record.legs[from_leg].remote.clone();
        let leg = self.add_leg(call, target, LegState::Ringing, remote);
        self.plan_ring(call, leg);
        self.dispatch();
    }

    /// Puts the call through to an outside number. The PBX follows no call that has left it with
    /// no extension on it (and the board counts such a call as ended when its last leg ends), so
    /// the agent's leg and the call end normally here.
    fn transfer_out(&mut self, call: CallNo, from_leg: usize) {
        self.end_leg(call, from_leg, EndCause::Normal);
        let record = self.call_mut(call);
        record.epoch += 1;
        record.transferred = true;
        self.end_call(call, EndCause::Normal, None);
    }

    fn start_consult(&mut self, call: CallNo, from_leg: usize, target: usize, automatic: bool) {
        self.set_leg(call, from_leg, LegState::Held);
        let from_agent = self.calls[&call].legs[from_leg].agent;
        let consult = self.new_call(Direction::Internal, Origin::Normal, None, Party::default());
        self.call_mut(consult).consult = Some(Consult { original: call, from_leg, automatic });
        let record = self.call_mut(call);
        record.epoch += 1;
        record.pending_consult = Some(consult);
        let (from_party, target_party) = (self.agents[from_agent].party(), self.agents[target].party());
        self.add_leg(consult, from_agent, LegState::RemoteRinging, target_party);
        let leg = self.add_leg(consult, target, LegState::Ringing, from_party);
        self.plan_ring(consult, leg);
        if !automatic {
            self.schedule_in(CONSULT_LIMIT_MS, Due::ConsultDone { consult });
        }
    }

    fn consult_done(&mut self, consult: CallNo) {
        let Some(record) = self.calls.get(&consult) else { return };
        let Some(link) = record.consult else { return };
        if record.ended_at.is_some() {
            return;
        }
        let both_up = record.legs.iter().all(|leg| leg.state == LegState::Active);
        let original_live = self.calls.get(&link.original).is_some_and(|original| original.ended_at.is_none());
        if both_up && original_live {
            self.complete_transfer(consult);
        } else {
            // Not completed in time (or nobody left to transfer): the consultation ends.
            self.end_call(consult, EndCause::Normal, None);
        }
    }

    /// The consulted agent takes over the original call; the consultation ends.
    fn complete_transfer(&mut self, consult: CallNo) {
        let Some(record) = self.calls.get(&consult) else { return };
        let Some(link) = record.consult else { return };
        if self.calls.get(&link.original).is_none_or(|original| original.ended_at.is_some()) {
            // The caller hung up while the agents talked: nothing to hand over.
            self.end_call(consult, EndCause::Normal, None);
            return;
        }
        let record = &self.calls[&consult];
        let target = record.legs[1].agent;
        let original = self.call_mut(link.original);
        original.pending_consult = None;
        original.transferred = true;
        original.epoch += 1;
        // Whoever the consulting agent talked to is who the consulted agent gets.
        let remote = match original.legs.get(link.from_leg) {
            Some(from) => from.remote.clone(),
            None => original.remote.clone(),
        };
        // The new leg first, so the consulted agent is never idle in between.
        let leg = self.add_leg(link.original, target, LegState::Active, remote);
        self.end_leg(link.original, link.from_leg, EndCause::Normal);
        self.end_call(consult, EndCause::Normal, None);
        self.plan_talk(link.original, leg);
        self.dispatch();
    }

    /// A consultation that failed: the consulting agent goes back to the caller.
    fn resume_after_consult(&mut self, link: Consult) {
        let Some(original) = self.calls.get_mut(&link.original) else { return };
        original.pending_consult = None;
        original.epoch += 1;
        original.transferred = true;
        if original.ended_at.is_some() {
            return;
        }
        // Back to the caller, unless the agent is busy on another call by now (say, one taken
        // back from hold meanwhile): then the caller stays held, as on a phone.
        if self.leg_state(link.original, link.from_leg) == Some(LegState::Held) {
            let agent = self.calls[&link.original].legs[link.from_leg].agent;
            if !self.engaged_elsewhere(agent, Some((link.original, link.from_leg))) {
                self.set_leg(link.original, link.from_leg, LegState::Active);
            }
        }
        self.plan_talk(link.original, link.from_leg);
    }

    fn take_break(&mut self, agent: usize) {
        if !self.agents[agent].takes_calls() {
            self.schedule_in(RETRY_MS, Due::Break { agent });
            return;
        }
        const REASONS: [(BreakReason, f64, f64); 6] = [
            (BreakReason::Brief, 0.35, 180.0),
            (BreakReason::Admin, 0.25, 300.0),
            (BreakReason::Private, 0.10, 240.0),
            (BreakReason::Meeting, 0.10, 900.0),
            (BreakReason::Training, 0.10, 1200.0),
            (BreakReason::Lunch, 0.10, 1800.0),
        ];
        let mut roll = self.rng.random::<f64>();
        let (reason, _, seconds) = REASONS
            .iter()
            .find(|(_, weight, _)| {
                roll -= weight;
                roll < 0.0
            })
            .unwrap_or(&REASONS[0])
            .clone();
        let length = (seconds * 1000.0 * self.rng.random_range(0.6..1.4)) as i64;
        self.set_status(agent, AgentStatus::Break(reason));
        self.schedule_in(length, Due::BreakOver { agent });
    }

    fn place_outbound(&mut self, agent: usize, number: String, origin: Origin) -> CallNo {
        let remote = Party { number: Some(number), ..Party::default() };
        let click_to_call = origin == Origin::ClickToCall;
        let call = self.new_call(Direction::Outbound, origin, None, remote.clone());
        if click_to_call {
            // The PBX rings the agent's own phone first.
            self.add_leg(call, agent, LegState::Ringing, remote);
            let after = self.uniform_ms(self.scenario.answer_after_s);
            self.schedule_in(after, Due::AgentAnswers { call, leg: 0 });
        } else {
            self.add_leg(call, agent, LegState::RemoteRinging, remote);
            self.plan_far_end(call);
        }
        call
    }

    /// `agent` dials a colleague's extension: their side dials while the colleague's phone
    /// rings, and the colleague answers (or not) as they would a call from the queue.
    fn place_internal(&mut self, agent: usize, target: usize) -> CallNo {
        let (from_party, target_party) = (self.agents[agent].party(), self.agents[target].party());
        let call = self.new_call(Direction::Internal, Origin::Normal, None, target_party.clone());
        self.add_leg(call, agent, LegState::RemoteRinging, target_party);
        let leg = self.add_leg(call, target, LegState::Ringing, from_party);
        self.plan_ring(call, leg);
        call
    }

    fn new_call(&mut self, direction: Direction, origin: Origin, queue: Option<usize>, remote: Party) -> CallNo {
        let number = self.next_call;
        self.next_call += 1;
        let id = CallId::new(&self.provider, &self.account, &format!("{}-{number}", self.run));
        self.calls_by_id.insert(id.clone(), number);
        self.calls.insert(
            number,
            SimCall {
                id,
                direction,
                origin,
                queue,
                remote,
                legs: Vec::new(),
                joined_at: None,
                waiting: false,
                answered: false,
                ended_at: None,
                epoch: 0,
                transferred: false,
                recording: Recording::Off,
                consult: None,
                pending_consult: None,
            },
        );
        number
    }

    fn add_leg(&mut self, call: CallNo, agent: usize, state: LegState, remote: Party) -> usize {
        let now = self.now;
        let record = self.calls.get_mut(&call).expect("legs are added to calls that exist");
        let index = record.legs.len();
        let id = LegId::new(&self.provider, &self.account, &format!("{}-{index}", record.id.native()));
        let last_at = now.saturating_sub(1);
        record.legs.push(SimLeg { id, agent, state, remote, end_cause: None, last_at, holds: 0 });
        let agent = &mut self.agents[agent];
        agent.live_legs += 1;
        self.emit_leg(call, index);
        index
    }

    fn leg_state(&self, call: CallNo, leg: usize) -> Option<LegState> {
        self.calls.get(&call).and_then(|record| record.legs.get(leg)).map(|leg| leg.state)
    }

    fn call_mut(&mut self, call: CallNo) -> &mut SimCall {
        self.calls.get_mut(&call).expect("the call was looked up a moment ago")
    }

    fn set_leg(&mut self, call: CallNo, leg: usize, state: LegState) {
        let sim_leg = &mut self.call_mut(call).legs[leg];
        sim_leg.state = state;
        if state == LegState::Held {
            // Every hold, even one that keeps a held leg held, voids the planned end of the last.
            sim_leg.holds = sim_leg.holds.wrapping_add(1);
        }
        self.emit_leg(call, leg);
    }

    fn end_leg(&mut self, call: CallNo, leg: usize, cause: EndCause) {
        let record = self.call_mut(call);
        let sim_leg = &mut record.legs[leg];
        if sim_leg.state.is_ended() {
            return;
        }
        sim_leg.state = LegState::Ended;
        sim_leg.end_cause = Some(cause);
        let agent = sim_leg.agent;
        let now = self.now;
        let agent = &mut self.agents[agent];
        agent.live_legs -= 1;
        agent.idle_since = now;
        self.emit_leg(call, leg);
    }

    fn leave_queue(&mut self, call: CallNo, outcome: QueueOutcome) {
        let record = self.call_mut(call);
        if !record.waiting {
            return;
        }
        record.waiting = false;
        let Some(queue) = record.queue else { return };
        let call_id = record.id.clone();
        let queue_record = &mut self.queues[queue];
        queue_record.waiting.retain(|waiting| *waiting != call);
        queue_record.tally.waiting -= 1;
        if outcome == QueueOutcome::Other {
            queue_record.tally.other += 1;
        }
        let queue_id = queue_record.id.clone();
        self.emit(EventKind::QueueLeft { queue: queue_id, call: call_id, outcome });
    }

    /// Ends every leg and the call. Legs that never connected end as the caller's hang-up
    /// (cancelled); answered ones end normally.
    fn end_call(&mut self, call: CallNo, cause: EndCause, outcome: Option<QueueOutcome>) {
        if self.calls[&call].ended_at.is_some() {
            return;
        }
        for leg in 0..self.calls[&call].legs.len() {
            let leg_cause = match (self.calls[&call].legs[leg].state, cause) {
                (state, _) if state.is_answered() => EndCause::Normal,
                (_, EndCause::QueueAbandoned | EndCause::Normal) => EndCause::Cancelled,
                (_, cause) => cause,
            };
            self.end_leg(call, leg, leg_cause);
        }
        self.leave_queue(call, outcome.unwrap_or(QueueOutcome::Other));
        let now = self.now;
        let record = self.call_mut(call);
        record.ended_at = Some(now);
        let id = record.id.clone();
        let pending = record.pending_consult.take();
        let consulting_for = record.consult;
        self.ended.push_back((self.now, call));
        self.emit(EventKind::CallEnded { call: id, cause, raw_cause: None });
        if let Some(link) = consulting_for {
            // A consultation that ended without a transfer hands the caller back.
            let still_pending = self.calls.get(&link.original).is_some_and(|o| o.pending_consult == Some(call));
            if still_pending {
                self.resume_after_consult(link);
            }
        }
        if let Some(consult) = pending {
            // The caller went while the agent was consulting: the consultation goes on alone.
            if let Some(consult) = self.calls.get_mut(&consult) {
                consult.consult = consult.consult.map(|link| Consult { automatic: true, ..link });
            }
        }
        self.dispatch();
    }

    fn set_status(&mut self, agent: usize, status: AgentStatus) {
        let record = &mut self.agents[agent];
        record.status = status;
        self.emit_status(agent);
    }

    fn emit_status(&mut self, agent: usize) {
        let now = self.now;
        let record = &mut self.agents[agent];
        let at = now.max(record.status_at.saturating_add(1));
        record.status_at = at;
        let raw = match &record.status {
            AgentStatus::Available => "available".to_owned(),
            AgentStatus::LoggedOut => "logged_out".to_owned(),
            AgentStatus::Break(reason) => format!("break:{}", break_name(reason)),
            AgentStatus::Unknown => "unknown".to_owned(),
        };
        let kind = EventKind::AgentStatus {
            extension: record.extension.clone(),
            status: record.status.clone(),
            raw_status: Some(raw),
        };
        self.events.push(Event::new(&self.provider, &self.account, at, kind));
    }

    fn emit_leg(&mut self, call: CallNo, leg: usize) {
        let now = self.now;
        let record = self.calls.get_mut(&call).expect("legs are emitted for calls that exist");
        let sim_leg = &mut record.legs[leg];
        let at = now.max(sim_leg.last_at.saturating_add(1));
        sim_leg.last_at = at;
        let agent = &self.agents[sim_leg.agent];
        let report = LegReport {
            leg: sim_leg.id.clone(),
            call: record.id.clone(),
            extension: Some(agent.extension.clone()),
            state: sim_leg.state,
            held_by: (sim_leg.state == LegState::Held).then_some(HeldBy::Local),
            direction: record.direction,
            origin: record.origin.clone(),
            local: agent.party(),
            remote: sim_leg.remote.clone(),
            queue: record.queue.map(|queue| self.queues[queue].id.clone()),
            end_cause: sim_leg.end_cause,
            raw_cause: None,
            raw_state: format!("{:?}", sim_leg.state).to_lowercase(),
            // An answered leg says how it is recorded, so the desk offers the controls that work.
            recording: matches!(sim_leg.state, LegState::Active | LegState::Held)
                .then(|| recording_report(record.recording)),
            revision: 0,
        };
        self.events.push(Event::new(&self.provider, &self.account, at, EventKind::Leg(report)));
    }

    fn emit(&mut self, kind: EventKind) {
        self.events.push(Event::new(&self.provider, &self.account, self.now, kind));
    }

    fn forget_ended(&mut self) {
        while let Some((at, call)) = self.ended.front().copied() {
            if at.saturating_add(FORGET_ENDED_MS) > self.now {
                break;
            }
            self.ended.pop_front();
            if let Some(record) = self.calls.remove(&call) {
                self.calls_by_id.remove(&record.id);
            }
        }
    }

    fn caller(&mut self) -> Party {
        let number = self.outside_number();
        let name = (self.rng.random::<f64>() < 0.5).then(|| {
            let index = self.rng.random_range(0..CALLER_NAMES.len());
            CALLER_NAMES[index].to_owned()
        });
        Party { number: Some(number), name, extension: None }
    }

    fn outside_number(&mut self) -> String {
        let prefix = ["+612", "+613", "+617", "+614"][self.rng.random_range(0..4)];
        format!("{prefix}{:08}", self.rng.random_range(0..100_000_000u32))
    }

    /// Does what a PBX does with a call-control request now, or says why it will not.
    pub fn command(&mut self, command: &Command) -> Result<String, String> {
        if command.action == Action::Dial {
            return self.dial(command);
        }
        let call = self.find_call(command)?;
        let record = &self.calls[&call];
        let leg = self.find_leg(call, command);
        let state = leg.map(|leg| record.legs[leg].state);
        match command.action {
            Action::Dial => unreachable!("handled above"),
            Action::Answer => match (leg, state) {
                (Some(leg), Some(LegState::Ringing)) => {
                    self.answer(call, leg);
                    Ok("answered".into())
                }
                _ => Err("the call is not ringing at that extension".into()),
            },
            Action::Hangup => match (leg, state) {
                // A leg or an extension named that is not live on this call: hanging up there
                // would end a call the requester is not on.
                (None, _) | (_, Some(LegState::Ended)) if command.leg.is_some() || command.extension.is_some() => {
                    Err(self.not_live_here(call, command))
                }
                (Some(leg), Some(LegState::Ringing)) if record.waiting => {
                    // Rejecting a queue call: the caller stays in the queue for the next agent.
                    self.end_leg(call, leg, EndCause::Rejected);
                    self.dispatch();
                    Ok("rejected; the caller stays in the queue".into())
                }
                _ => {
                    self.end_call(call, EndCause::Normal, None);
                    Ok("hung up".into())
                }
            },
            Action::Hold => match (leg, state) {
                (Some(leg), Some(LegState::Active)) => {
                    self.set_leg(call, leg, LegState::Held);
                    Ok("on hold".into())
                }
                (_, Some(LegState::Held)) => Err("the call is already on hold".into()),
                _ => Err("only an answered call can be put on hold".into()),
            },
            Action::Resume => match (leg, state) {
                (Some(leg), Some(LegState::Held)) => self.resume(call, leg),
                _ => Err("the call is not on hold".into()),
            },
            Action::BlindTransfer | Action::Consult => {
                let Some(leg) = leg.filter(|_| state.is_some_and(LegState::is_answered)) else {
                    return Err("only an answered call can be transferred".into());
                };
                if record.pending_consult.is_some() || record.consult.is_some() {
                    return Err("a consultation for this call is already in progress".into());
                }
                let from_agent = record.legs[leg].agent;
                if command.action == Action::BlindTransfer {
                    let number = command.number.as_deref().unwrap_or_default().trim();
                    if let Some(outside) = self.outside_number_in(number) {
                        self.transfer_out(call, leg);
                        return Ok(format!("transferred to {outside}"));
                    }
                }
                let target = self.target_agent(command, from_agent)?;
                if command.action == Action::BlindTransfer {
                    self.blind_transfer(call, leg, target);
                    Ok("transferred".into())
                } else {
                    self.start_consult(call, leg, target, false);
                    Ok("consulting".into())
                }
            }
            Action::CompleteTransfer => {
                let consult = match (record.pending_consult, record.consult) {
                    (Some(consult), _) => consult,
                    (None, Some(_)) => call,
                    (None, None) => return Err("there is no consultation to complete".into()),
                };
                let both_up =
                    self.calls.get(&consult).is_some_and(|c| c.legs.iter().all(|leg| leg.state == LegState::Active));
                if both_up {
                    self.complete_transfer(consult);
                    Ok("transferred".into())
                } else {
                    Err("the consulted extension has not answered yet".into())
                }
            }
            Action::RecordStart | Action::RecordPause | Action::RecordResume | Action::RecordStop => {
                if !record.answered {
                    return Err("only an answered call can be recorded".into());
                }
                let (from, to, done): (&[Recording], Recording, &str) = match command.action {
                    Action::RecordStart => (&[Recording::Off], Recording::On, "recording"),
                    Action::RecordPause => (&[Recording::On], Recording::Paused, "recording paused"),
                    Action::RecordResume => (&[Recording::Paused], Recording::On, "recording resumed"),
                    _ => (&[Recording::On, Recording::Paused], Recording::Off, "recording stopped"),
                };
                if !from.contains(&record.recording) {
                    let now = match record.recording {
                        Recording::Off => "not being recorded",
                        Recording::On => "already being recorded",
                        Recording::Paused => "paused",
                    };
                    return Err(format!("the call is {now}"));
                }
                self.call_mut(call).recording = to;
                let live: Vec<usize> = (0..self.calls[&call].legs.len())
                    .filter(|&leg| !self.calls[&call].legs[leg].state.is_ended())
                    .collect();
                for leg in live {
                    self.emit_leg(call, leg);
                }
                Ok(done.into())
            }
        }
    }

    fn dial(&mut self, command: &Command) -> Result<String, String> {
        let agent = self.command_agent(command)?.ok_or("dialling needs the extension that places the call")?;
        let number = command.number.as_deref().ok_or("dialling needs a number")?.trim();
        let digits = number.strip_prefix('+').unwrap_or(number);
        if !(2..=20).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("{number:?} is not a phone number"));
        }
        // A call on hold does not stop a new one, as on a phone; one ringing or talking does.
        match self.agents[agent].status {
            AgentStatus::LoggedOut => return Err(format!("extension {} is logged out", self.agents[agent].number)),
            _ if self.engaged_elsewhere(agent, None) => {
                return Err(format!("extension {} is on a call", self.agents[agent].number))
            }
            _ => {}
        }
        if let Some(&target) = self.agents_by_number.get(number) {
            // A colleague's extension: an internal call that rings them, not an outside number.
            let own = self.agents[agent].number.clone();
            if target == agent {
                return Err(format!("extension {own} cannot call itself"));
            }
            self.reachable(target)?;
            let call = self.place_internal(agent, target);
            return Ok(format!("calling extension {number} from extension {own}: {}", self.calls[&call].id));
        }
        let call = self.place_outbound(agent, number.to_owned(), Origin::ClickToCall);
        // Ends with the call's id: a face whose provider answers a dial with the new call's id
        // (VoipNow's MakeCall) reads it from there.
        Ok(format!("calling {number} from extension {}: {}", self.agents[agent].number, self.calls[&call].id))
    }

    fn find_call(&self, command: &Command) -> Result<CallNo, String> {
        let id = match (&command.call, &command.leg) {
            (Some(call), _) => call.clone(),
            (None, Some(leg)) => {
                let native = leg.native();
                let call = native.rsplit_once('-').map(|(call, _)| call).unwrap_or(native);
                CallId::new(&self.provider, &self.account, call)
            }
            (None, None) => return Err("the command names no call".into()),
        };
        match self.calls_by_id.get(&id) {
            Some(call) if self.calls[call].ended_at.is_none() => Ok(*call),
            Some(_) => Err(format!("call {id} has ended")),
            None => Err(format!("there is no call {id}")),
        }
    }

    /// The leg a command is about: the one named, else the live leg of the named extension
    /// (none for an extension the PBX does not have), else the first live leg.
    fn find_leg(&self, call: CallNo, command: &Command) -> Option<usize> {
        let record = &self.calls[&call];
        if let Some(leg) = &command.leg {
            return record.legs.iter().position(|candidate| &candidate.id == leg);
        }
        if command.extension.is_some() {
            return self.command_agent(command).ok().flatten().and_then(|agent| record.live_leg_of(agent));
        }
        record.legs.iter().position(|leg| !leg.state.is_ended())
    }

    /// Why the leg or extension a command names has nothing to act on in `call`.
    fn not_live_here(&self, call: CallNo, command: &Command) -> String {
        let id = &self.calls[&call].id;
        if let Some(leg) = &command.leg {
            return format!("leg {leg} is not live on call {id}");
        }
        match self.command_agent(command) {
            Err(words) => words,
            Ok(Some(agent)) => format!("extension {} is not on call {id}", self.agents[agent].number),
            Ok(None) => format!("the command names nothing on call {id}"),
        }
    }

    /// Every live leg of `agent`, with its call and state.
    fn legs_of(&self, agent: usize) -> Vec<(CallNo, usize, LegState)> {
        let mut legs = Vec::new();
        if self.agents[agent].live_legs == 0 {
            return legs;
        }
        for (number, record) in &self.calls {
            if record.ended_at.is_some() {
                continue;
            }
            for (index, sim_leg) in record.legs.iter().enumerate() {
                if sim_leg.agent == agent && !sim_leg.state.is_ended() {
                    legs.push((*number, index, sim_leg.state));
                }
            }
        }
        legs
    }

    /// Takes the held `leg` back, as a phone does: refused while the agent's other call rings or
    /// dials (they would be on two calls at once), and a call they are talking on is put on
    /// hold first (a swap).
    fn resume(&mut self, call: CallNo, leg: usize) -> Result<String, String> {
        let agent = self.calls[&call].legs[leg].agent;
        let others: Vec<(CallNo, usize, LegState)> =
            self.legs_of(agent).into_iter().filter(|(other, index, _)| (*other, *index) != (call, leg)).collect();
        let number = &self.agents[agent].number;
        for (_, _, state) in &others {
            match state {
                LegState::Held | LegState::Active => {}
                LegState::Ringing => {
                    return Err(format!("extension {number} has another call ringing: answer or end it first"))
                }
                _ => return Err(format!("extension {number} is dialling another call: end it first")),
            }
        }
        let mut swapped = false;
        for (other, index, state) in others {
            if state == LegState::Active {
                self.set_leg(other, index, LegState::Held);
                swapped = true;
            }
        }
        self.set_leg(call, leg, LegState::Active);
        Ok(if swapped { "resumed; the other call is on hold".into() } else { "resumed".into() })
    }

    /// `number` as an outside number a call can be put through to: a plain phone number (see
    /// [`dialable`]) that cannot be taken for an extension, as it starts with `+` or is longer
    /// than every extension number. `None` for anything else, an extension's own number too.
    fn outside_number_in(&self, number: &str) -> Option<String> {
        if self.agents_by_number.contains_key(number.trim()) {
            return None;
        }
        let dial = dialable(number)?;
        let digits = dial.strip_prefix('+').unwrap_or(&dial);
        let plain = (2..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
        let longest = self.agents.iter().map(|agent| agent.number.len()).max().unwrap_or(0);
        (plain && (dial.starts_with('+') || digits.len() > longest)).then_some(dial)
    }

    fn command_agent(&self, command: &Command) -> Result<Option<usize>, String> {
        let Some(extension) = &command.extension else { return Ok(None) };
        self.agents
            .iter()
            .position(|agent| &agent.extension == extension)
            .map(Some)
            .ok_or_else(|| format!("there is no extension {extension}"))
    }

    fn target_agent(&self, command: &Command, from_agent: usize) -> Result<usize, String> {
        let number = command.number.as_deref().ok_or("a transfer needs the extension to transfer to")?.trim();
        let target = *self.agents_by_number.get(number).ok_or_else(|| format!("there is no extension {number}"))?;
        if target == from_agent {
            return Err("a call cannot be transferred to the extension it is on".into());
        }
        self.reachable(target)?;
        Ok(target)
    }

    /// Whether a colleague can be rung directly (by a transfer or a call to their extension),
    /// or why not.
    fn reachable(&self, target: usize) -> Result<(), String> {
        let agent = &self.agents[target];
        if agent.status == AgentStatus::LoggedOut {
            return Err(format!("extension {} is logged out", agent.number));
        }
        // One call at a time: a colleague ringing or on a call (even one on hold) is busy. A
        // break is a queue status only: a colleague on break is still rung when called directly.
        if agent.live_legs > 0 {
            return Err(format!("extension {} is busy", agent.number));
        }
        Ok(())
    }
}

/// `seconds` in whole ms, at least `least_s` and at most [`MAX_DELAY_MS`] (a value that is not a
/// number counts as the least).
fn capped_ms(seconds: f64, least_s: f64) -> i64 {
    let ms = (seconds * 1000.0).round();
    if ms.is_nan() {
        return (least_s * 1000.0) as i64;
    }
    ms.max(least_s * 1000.0).min(MAX_DELAY_MS as f64) as i64
}

/// A call's recording as a leg reports it, with the recording commands the PBX takes now.
fn recording_report(recording: Recording) -> crate::model::Recording {
    let (state, controls) = match recording {
        Recording::Off => (RecordingState::Off, vec![Action::RecordStart]),
        Recording::On => (RecordingState::Started, vec![Action::RecordPause, Action::RecordStop]),
        Recording::Paused => (RecordingState::Paused, vec![Action::RecordResume, Action::RecordStop]),
    };
    crate::model::Recording { state, controls }
}

fn break_name(reason: &BreakReason) -> &str {
    match reason {
        BreakReason::Lunch => "lunch",
        BreakReason::Admin => "admin",
        BreakReason::Private => "private",
        BreakReason::Training => "training",
        BreakReason::Meeting => "meeting",
        BreakReason::Brief => "brief",
        BreakReason::Other(other) => other,
    }
}

const FIRST_NAMES: [&str; 20] = [
    "Ava", "Noah", "Mia", "Leo", "Isla", "Jack", "Zoe", "Liam", "Ruby", "Oliver", "Chloe", "Lucas", "Grace", "Henry",
    "Ella", "Mason", "Harper", "Ethan", "Willow", "Samir",
];
const LAST_NAMES: [&str; 12] =
    ["Nguyen", "Smith", "Patel", "Kelly", "Rossi", "Chen", "Brown", "Singh", "Walker", "Garcia", "Murphy", "Okafor"];
const CALLER_NAMES: [&str; 12] = [
    "ACME PTY LTD",
    "J CITIZEN",
    "DR A WONG",
    "BLUE GUM CAFE",
    "M O'BRIEN",
    "HARBOUR FREIGHT",
    "K TANAKA",
    "ST KILDA DENTAL",
    "P HOLLOWAY",
    "R SHARMA",
    "NORTHSIDE MOTORS",
    "L ANDERSSON",
];

/// A stable, readable name for the agent at a position.
fn agent_name(index: usize) -> String {
    let first = FIRST_NAMES[index % FIRST_NAMES.len()];
    let last = LAST_NAMES[(index / FIRST_NAMES.len() + index * 7) % LAST_NAMES.len()];
    format!("{first} {last}")
}
