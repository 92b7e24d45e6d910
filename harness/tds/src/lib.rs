//! # mic-tds: a fake Azure SQL endpoint over TDS
//!
//! Tutorials such as "Use a Windows VM system-assigned managed identity to
//! access Azure SQL" end with a client presenting an Entra access token to
//! Azure SQL over the TDS protocol. To run those steps offline, the fake
//! cloud needs a SQL endpoint that speaks enough TDS for real drivers
//! (tiberius here, SqlClient in spirit), checks the token the way Azure SQL
//! does, and enforces the contained-user / database-role model the tutorial
//! sets up with `CREATE USER [VMName] FROM EXTERNAL PROVIDER` and
//! `ALTER ROLE db_datareader ADD MEMBER [VMName]`.
//!
//! One [`TdsServer`] is one simulated logical server on a loopback port.
//! Token verification and directory lookups are delegated to a
//! [`TokenAuthority`], which the fake cloud's token service implements.
//!
//! Scope: PRELOGIN without TLS (the server answers `ENCRYPT_NOT_SUP`), LOGIN7
//! with the FEDAUTH feature extension (SECURITYTOKEN library), SQLBatch and
//! parameterless `sp_executesql` RPCs, and a small T-SQL subset (see
//! [`sql`]). Everything outside it fails with a real SQL Server error number.
//! Tokens are never logged or stored.

mod auth;
mod catalog;
mod config;
mod engine;
mod error;
mod server;
pub mod sql;
mod tokens;
mod wire;

pub use auth::{ResolveError, TokenAuthority, TokenPrincipal};
pub use catalog::{
    Column, ColumnType, DbUser, FIXED_ROLES, LoginEvent, LoginOutcome, MASTER, TdsState, Value,
};
pub use config::{ServerOptions, TdsConfig};
pub use error::SqlError;
pub use server::{TOKEN_PRINCIPAL, TdsServer};
