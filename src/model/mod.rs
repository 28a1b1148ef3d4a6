//! The provider-neutral live model, shared by server and browser. No I/O lives here: every
//! connector feeds it and every test can drive it without a socket.

pub mod call;
pub mod command;
pub mod event;
pub mod extension;
pub mod frame;
pub mod ids;
pub mod phone;
pub mod queue;
pub mod state;

pub use call::{Call, Direction, EndCause, HeldBy, Leg, LegState, Origin, Party, Recording, RecordingState};
pub use command::{Action, Command};
pub use event::{Event, EventKind, ExtensionReport, LegReport, QueueOutcome};
pub use extension::{AgentStatus, BreakReason, Extension, Presence};
pub use frame::{Change, ConnectorHealth, Frame, Snapshot, PING};
pub use ids::{CallId, ExtensionId, LegId, QueueId, Timestamp};
pub use phone::{e164, Contact};
pub use queue::{HourFigures, Limits, Queue, QueueDay, QueueEntry, QueueFigures, QueueSettings, Thresholds};
pub use state::{LiveState, Outcome};
