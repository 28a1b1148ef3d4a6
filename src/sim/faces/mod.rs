//! Provider faces: the simulated PBX rendered in each provider's own wire protocol over real
//! sockets, so connectors are tested against what they will meet.

pub mod netaxis;
pub mod noojee;
pub mod versature;
pub mod voicenter;
pub mod voipnow;

use crate::model::Presence;

/// Presence as a provider's events can show it: none of them tells hold apart from talking.
fn presence_name(presence: Presence) -> &'static str {
    match presence {
        Presence::Idle => "idle",
        Presence::Ringing => "ringing",
        Presence::Busy | Presence::OnHold => "busy",
    }
}
