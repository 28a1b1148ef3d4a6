//! The simulated call center: a seeded scenario engine that is the ground truth, the runner that
//! plays it in real time (or faster), fault injection for the provider faces, the direct face
//! that feeds the hub in-process, and the harness that compares a hub with the truth.
//!
//! Demo mode and `callboard sim` are built from these parts; so are the connector tests.

pub mod cli;
pub mod demo;
pub mod direct;
pub mod faces;
pub mod faults;
pub mod harness;
pub mod pbx;
pub mod runner;
pub mod scenario;

pub use pbx::{Pbx, QueueTally};
pub use scenario::Scenario;
