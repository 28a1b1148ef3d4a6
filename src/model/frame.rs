//! The websocket frames the server sends and the browser reads.

use super::call::Call;
use super::extension::Extension;
use super::ids::{CallId, Timestamp};
use super::queue::Queue;
use serde::{Deserialize, Serialize};

/// How one connector is doing, for the admin and the `/api/v1/connectors` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorHealth {
    /// The configured provider name.
    pub name: String,
    /// The provider kind (`noojee`, `voicenter`, ..., or `demo`).
    pub kind: String,
    /// `starting`, `preparing`, `ready`, `degraded` or `down`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<Timestamp>,
    pub events: u64,
    /// Events refused by the transition function or malformed on the wire.
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The commands this provider can carry out: the desk shows only these buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<super::command::Action>,
}

/// Everything the browser shows, as of one sequence number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub extensions: Vec<Extension>,
    pub calls: Vec<Call>,
    pub queues: Vec<Queue>,
    pub connectors: Vec<ConnectorHealth>,
    /// Server time when the snapshot was taken, so browsers can correct their clock for timers.
    pub server_time: Timestamp,
    /// Identifies the server process that numbered these frames: a resume is only possible
    /// within one epoch, so a browser never resumes into a restarted server's numbering.
    #[serde(default)]
    pub epoch: u64,
}

/// One changed object, sent whole: applying it is an upsert by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Call(Call),
    CallRemoved { id: CallId },
    Extension(Extension),
    Queue(Queue),
    Connector(ConnectorHealth),
}

/// One websocket text frame: a full snapshot, then deltas whose `seq` rises by exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Snapshot {
        seq: u64,
        #[serde(flatten)]
        snapshot: Snapshot,
    },
    Delta {
        seq: u64,
        changes: Vec<Change>,
    },
}

impl Frame {
    /// The sequence number the browser is current at after applying this frame.
    pub fn seq(&self) -> u64 {
        match self {
            Frame::Snapshot { seq, .. } | Frame::Delta { seq, .. } => *seq,
        }
    }
}
