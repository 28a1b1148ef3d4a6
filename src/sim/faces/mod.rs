//! Provider faces: the simulated PBX rendered in each provider's own wire protocol over real
//! sockets, so connectors are tested against what they will meet.

pub mod netaxis;
pub mod noojee;
pub mod versature;
pub mod voicenter;
pub mod voipnow;

use crate::model::{Direction, LegReport, LegState, Presence};

/// Presence as a provider's events can show it: none of them tells hold apart from talking.
fn presence_name(presence: Presence) -> &'static str {
    match presence {
        Presence::Idle => "idle",
        Presence::Ringing => "ringing",
        Presence::Busy | Presence::OnHold => "busy",
    }
}

/// Whether the first extension leg of a call is that extension's own call out, from the call's
/// direction (as the seeds define the originator), not from the leg's first state: a
/// click-to-call rings its own extension first, yet the extension placed it. Only a call of
/// unknown direction is judged by how its leg began.
fn dials_out(report: &LegReport) -> bool {
    match report.direction {
        Direction::Outbound | Direction::Internal => true,
        Direction::Inbound => false,
        _ => matches!(report.state, LegState::Initiating | LegState::RemoteRinging),
    }
}

/// 101's click-to-call to +61299990000 as the simulated PBX reports its one leg, in `state`:
/// the faces' tests send it through their wire and the connector back.
#[cfg(test)]
pub(crate) fn click_to_call_report(state: LegState) -> LegReport {
    use crate::model::{CallId, ExtensionId, LegId, Origin, Party};
    LegReport {
        leg: LegId::new("sim", "cc", "r-1-0"),
        call: CallId::new("sim", "cc", "r-1"),
        extension: Some(ExtensionId::new("sim", "cc", "101")),
        state,
        held_by: None,
        direction: Direction::Outbound,
        origin: Origin::ClickToCall,
        local: Party { number: Some("101".into()), name: Some("Ava Nguyen".into()), extension: Some("101".into()) },
        remote: Party { number: Some("+61299990000".into()), ..Party::default() },
        queue: None,
        end_cause: None,
        raw_cause: None,
        raw_state: String::new(),
        recording: None,
        revision: 0,
    }
}
