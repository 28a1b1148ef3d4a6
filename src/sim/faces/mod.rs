//! Provider faces: the simulated PBX rendered in each provider's own wire protocol over real
//! sockets, so connectors are tested against what they will meet.

pub mod noojee;
pub mod voipnow;
