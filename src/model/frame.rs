//! The websocket frames the server sends and the browser reads.

use super::call::Call;
use super::extension::Extension;
use super::ids::{CallId, Timestamp};
use super::queue::Queue;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The text a browser sends on `/ws` to ask whether the link is alive; the server answers
/// that browser alone with a `pong` frame (see `Frame::Pong`).
pub const PING: &str = "ping";

/// How one connector is doing, for the admin and the `/api/v1/connectors` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorHealth {
    /// The configured provider name.
    pub name: String,
    /// The provider kind (`noojee`, `voicenter`, ..., or `demo`). Not `kind`: in a delta this
    /// object sits beside the change's own `kind` tag, and a reader that keeps the last of two
    /// equal keys (JavaScript's `JSON.parse`) would lose the tag.
    pub provider_kind: String,
    /// `starting`, `preparing`, `ready`, `degraded` or `down`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<Timestamp>,
    pub events: u64,
    /// Events refused by the transition function or malformed on the wire.
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Webhook deliveries with a wrong secret, counted apart from `errors` so a stranger
    /// probing `/hooks/` cannot hide the provider's own last error.
    #[serde(default)]
    pub turned_away: u64,
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
///
/// Read by `FirstFieldTag` rather than serde's derive, see there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Call(Call),
    CallRemoved { id: CallId },
    Extension(Extension),
    Queue(Queue),
    Connector(ConnectorHealth),
}

/// One websocket text frame: a full snapshot, then deltas whose `seq` rises by exactly one.
///
/// Read by `FirstFieldTag` rather than serde's derive, see there.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The answer to a browser's `ping` text, sent to that browser alone and outside the
    /// numbering: the link is alive, and this is the server's clock now (timers drift from a
    /// browser clock set once from a snapshot days ago).
    Pong {
        server_time: Timestamp,
    },
}

impl Frame {
    /// The sequence number the browser is current at after applying this frame; a pong is not
    /// numbered.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Frame::Snapshot { seq, .. } | Frame::Delta { seq, .. } => Some(*seq),
            Frame::Pong { .. } => None,
        }
    }
}

/// An internally tagged enum, read straight into its variant when the tag is the object's
/// first field, as the server always writes it. serde's derive would first copy every frame
/// into a generic tree and then read the variant from that tree: the browser parsed every
/// snapshot and delta twice. Objects whose tag comes later are still read, through a JSON
/// value.
trait TaggedByFirstField: Sized {
    /// The tag's field name.
    const TAG: &'static str;
    /// The tag values, for the error an unknown one gets.
    const VARIANTS: &'static [&'static str];
    /// Reads the variant named `tag` from the object's other fields.
    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error>;
}

/// The visitor behind every `TaggedByFirstField` type.
struct FirstFieldTag<T>(std::marker::PhantomData<T>);

impl<'de, T: TaggedByFirstField + de::DeserializeOwned> Visitor<'de> for FirstFieldTag<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(formatter, "an object tagged by \"{}\"", T::TAG)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(de::Error::missing_field(T::TAG));
        };
        if first == T::TAG {
            let tag = map.next_value::<String>()?;
            return T::variant(&tag, de::value::MapAccessDeserializer::new(map));
        }
        let mut object = serde_json::Map::new();
        object.insert(first, map.next_value()?);
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            object.insert(key, value);
        }
        let tag = match object.remove(T::TAG) {
            Some(serde_json::Value::String(tag)) => tag,
            Some(_) => return Err(de::Error::custom(format_args!("\"{}\" is not a string", T::TAG))),
            None => return Err(de::Error::missing_field(T::TAG)),
        };
        // Written again with the tag first and read as JSON: the variants are then read only
        // by the deserializer the first-field path uses, which keeps the browser bundle small.
        let rest = serde_json::Value::Object(object).to_string();
        let separator = if rest.len() > 2 { "," } else { "" };
        let text =
            format!("{{{}:{}{separator}{}", serde_json::Value::from(T::TAG), serde_json::Value::from(tag), &rest[1..]);
        serde_json::from_str(&text).map_err(de::Error::custom)
    }
}

/// The fields of `Change::CallRemoved`.
#[derive(Deserialize)]
struct Removed {
    id: CallId,
}

impl TaggedByFirstField for Change {
    const TAG: &'static str = "kind";
    const VARIANTS: &'static [&'static str] = &["call", "call_removed", "extension", "queue", "connector"];

    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error> {
        match tag {
            "call" => Call::deserialize(rest).map(Change::Call),
            "call_removed" => Removed::deserialize(rest).map(|removed| Change::CallRemoved { id: removed.id }),
            "extension" => Extension::deserialize(rest).map(Change::Extension),
            "queue" => Queue::deserialize(rest).map(Change::Queue),
            "connector" => ConnectorHealth::deserialize(rest).map(Change::Connector),
            other => Err(de::Error::unknown_variant(other, Self::VARIANTS)),
        }
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FirstFieldTag(std::marker::PhantomData))
    }
}

/// The fields of `Frame::Snapshot`: its `seq` beside the snapshot's own, as the wire has them.
#[derive(Deserialize)]
struct SnapshotFields {
    seq: u64,
    extensions: Vec<Extension>,
    calls: Vec<Call>,
    queues: Vec<Queue>,
    connectors: Vec<ConnectorHealth>,
    server_time: Timestamp,
    #[serde(default)]
    epoch: u64,
}

/// The fields of `Frame::Delta`.
#[derive(Deserialize)]
struct DeltaFields {
    seq: u64,
    changes: Vec<Change>,
}

/// The fields of `Frame::Pong`.
#[derive(Deserialize)]
struct PongFields {
    server_time: Timestamp,
}

impl TaggedByFirstField for Frame {
    const TAG: &'static str = "type";
    const VARIANTS: &'static [&'static str] = &["snapshot", "delta", "pong"];

    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error> {
        match tag {
            "snapshot" => SnapshotFields::deserialize(rest).map(|fields| Frame::Snapshot {
                seq: fields.seq,
                snapshot: Snapshot {
                    extensions: fields.extensions,
                    calls: fields.calls,
                    queues: fields.queues,
                    connectors: fields.connectors,
                    server_time: fields.server_time,
                    epoch: fields.epoch,
                },
            }),
            "delta" => {
                DeltaFields::deserialize(rest).map(|fields| Frame::Delta { seq: fields.seq, changes: fields.changes })
            }
            "pong" => PongFields::deserialize(rest).map(|fields| Frame::Pong { server_time: fields.server_time }),
            other => Err(de::Error::unknown_variant(other, Self::VARIANTS)),
        }
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FirstFieldTag(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentStatus, BreakReason, ExtensionId, Presence};

    fn extension() -> Extension {
        Extension {
            id: ExtensionId::new("p", "a", "201"),
            number: "201".into(),
            name: Some("Ann".into()),
            sip_user: None,
            online_user: None,
            agent_status: AgentStatus::Break(BreakReason::Lunch),
            raw_status: Some("3".into()),
            status_since: 4,
            presence: Presence::Busy,
            last_call_at: Some(2),
            last_answered_at: None,
            last_hangup_at: None,
        }
    }

    #[test]
    fn frames_read_back_what_the_server_writes() {
        let frames = [
            Frame::Snapshot {
                seq: 7,
                snapshot: Snapshot { extensions: vec![extension()], server_time: 5, epoch: 3, ..Snapshot::default() },
            },
            Frame::Delta {
                seq: 8,
                changes: vec![
                    Change::Extension(extension()),
                    Change::CallRemoved { id: CallId::new("p", "a", "c1") },
                    Change::Connector(ConnectorHealth { name: "demo".into(), ..ConnectorHealth::default() }),
                ],
            },
            Frame::Pong { server_time: 1_700_000_000_000 },
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(serde_json::from_str::<Frame>(&text).unwrap(), frame, "{text}");
        }
    }

    #[test]
    fn a_tag_that_is_not_the_first_field_still_reads() {
        let text = r#"{"seq":2,"changes":[{"id":"p/a/c1","kind":"call_removed"}],"type":"delta"}"#;
        let expected = Frame::Delta { seq: 2, changes: vec![Change::CallRemoved { id: CallId::new("p", "a", "c1") }] };
        assert_eq!(serde_json::from_str::<Frame>(text).unwrap(), expected);
        let snapshot =
            r#"{"seq":1,"extensions":[],"calls":[],"queues":[],"connectors":[],"server_time":9,"type":"snapshot"}"#;
        assert_eq!(
            serde_json::from_str::<Frame>(snapshot).unwrap(),
            Frame::Snapshot { seq: 1, snapshot: Snapshot { server_time: 9, ..Snapshot::default() } }
        );
    }

    #[test]
    fn unknown_missing_or_misplaced_tags_are_clear_errors() {
        let unknown = serde_json::from_str::<Frame>(r#"{"type":"hello","seq":1}"#).unwrap_err().to_string();
        assert!(unknown.contains("unknown variant `hello`"), "{unknown}");
        let missing = serde_json::from_str::<Frame>(r#"{"seq":1}"#).unwrap_err().to_string();
        assert!(missing.contains("missing field `type`"), "{missing}");
        let empty = serde_json::from_str::<Frame>("{}").unwrap_err().to_string();
        assert!(empty.contains("missing field `type`"), "{empty}");
        let not_text = serde_json::from_str::<Frame>(r#"{"seq":1,"type":4}"#).unwrap_err().to_string();
        assert!(not_text.contains("is not a string"), "{not_text}");
        let bad_change = r#"{"type":"delta","seq":1,"changes":[{"kind":"call_removed"}]}"#;
        let bad_change = serde_json::from_str::<Frame>(bad_change).unwrap_err().to_string();
        assert!(bad_change.contains("missing field `id`"), "{bad_change}");
        assert!(serde_json::from_str::<Frame>("[1]").is_err());
    }
}
