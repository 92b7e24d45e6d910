//! mic-live: the live Azure backend.
pub mod arm;
pub mod backend;
pub mod config;
pub mod credential;
pub mod ledger;
pub mod progress;
pub mod runcommand;
pub mod sweep;
pub mod transport;

pub use backend::{LiveBackend, LiveEnvironment, LiveOptions, StartError};
pub use config::{ConfigError, LiveConfig};
