//! Extensions and the agents logged in at them.

use super::ids::{ExtensionId, Timestamp};
use serde::{Deserialize, Serialize};

/// Why an agent is not taking calls, as the providers that report it name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakReason {
    Lunch,
    Admin,
    Private,
    Training,
    Meeting,
    Brief,
    Other(String),
}

/// What the agent chose, independent of whether a call is up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum AgentStatus {
    Available,
    LoggedOut,
    Break(BreakReason),
    /// The provider reports no agent status, or a code we have no mapping for.
    #[default]
    Unknown,
}

impl AgentStatus {
    /// The status without its detail, named as its JSON `status` tag is: the value of the desk's
    /// `data-agent-status` hook.
    pub fn as_str(&self) -> &'static str {
        match self {
            AgentStatus::Available => "available",
            AgentStatus::LoggedOut => "logged_out",
            AgentStatus::Break(_) => "break",
            AgentStatus::Unknown => "unknown",
        }
    }
}

/// What a tile's colour means, derived from the extension's live legs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    #[default]
    Idle,
    Ringing,
    Busy,
    OnHold,
}

impl Presence {
    /// The value of the tile's `data-state` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Idle => "idle",
            Presence::Ringing => "ringing",
            Presence::Busy => "busy",
            Presence::OnHold => "on_hold",
        }
    }
}

/// One extension as the wallboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub id: ExtensionId,
    /// What people dial.
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_user: Option<String>,
    /// Who is logged in now, when it differs from the owner (hot desking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_user: Option<String>,
    pub agent_status: AgentStatus,
    /// The provider's own code for the agent status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_status: Option<String>,
    pub status_since: Timestamp,
    pub presence: Presence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_call_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_answered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hangup_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_named_as_its_json_tag() {
        let statuses = [
            AgentStatus::Available,
            AgentStatus::LoggedOut,
            AgentStatus::Break(BreakReason::Lunch),
            AgentStatus::Break(BreakReason::Other("Coaching".into())),
            AgentStatus::Unknown,
        ];
        for status in statuses {
            assert_eq!(serde_json::to_value(&status).unwrap()["status"], status.as_str());
        }
    }
}
