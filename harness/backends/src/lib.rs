//! Backends: where a scenario's requests go. `fake` starts an isolated fake cloud per
//! scenario run on loopback.

pub mod fake;

pub use fake::FakeBackend;
