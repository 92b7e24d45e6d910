//! mic-core: the scenario model, parser and diagnostics, the driver that runs scenarios on a
//! [`backend::Backend`], redaction, transcripts, snapshots and reporters.
//!
//! The flow shared by `cargo test` and the `mic` CLI:
//! discover -> parse -> validate (all files, all problems) -> plan per backend -> start
//! environment -> run steps -> teardown (always) -> redact -> snapshot -> report.
//!
//! This crate does not depend on the fake cloud: backends plug in through [`backend`].

pub mod backend;
pub mod bindings;
pub mod catalog;
pub mod diagnostic;
pub mod driver;
pub mod expect;
pub mod model;
pub mod parse;
pub mod redact;
pub mod report;
pub mod roles;
pub mod runner;
pub mod schema;
pub mod share;
pub mod sign;
pub mod snapshot;
pub mod template;
pub mod validate;
