//! mic-core: the scenario model, parser and diagnostics, the driver that runs scenarios on a
//! [`backend::Backend`], redaction, transcripts, snapshots and reporters.
//!
//! The flow shared by `cargo test` and the `mic` CLI:
//! discover -> parse -> validate (all files, all problems) -> plan per backend -> start
//! environment -> run steps -> teardown (always) -> redact -> snapshot -> report.
//!
//! This crate does not depend on the fake cloud: backends plug in through [`backend`].

pub mod catalog;
pub mod diagnostic;
pub mod model;
pub mod parse;
pub mod roles;
pub mod schema;
pub mod template;
pub mod validate;
pub mod backend;
pub mod bindings;
pub mod redact;
pub mod expect;
pub mod driver;
pub mod snapshot;
pub mod report;
pub mod runner;
pub mod sign;
