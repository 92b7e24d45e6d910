//! What a simulated logical server is, and how defensive its listener is.

use std::time::Duration;

/// One simulated Azure SQL logical server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdsConfig {
    /// Logical server name (`myserver` of `myserver.database.windows.net`);
    /// sent as the server name of every ERROR/INFO token.
    pub server_name: String,
    /// Object id of the server's Entra admin; that principal is `dbo` in
    /// every database.
    pub admin_object_id: String,
    /// User databases (`master` always exists as well).
    pub databases: Vec<String>,
}

/// Limits that keep a misbehaving client from hanging or bloating the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Longest wait for the rest of a message once its first byte arrived,
    /// and for PRELOGIN/LOGIN7 after connecting.
    pub read_timeout: Duration,
    /// Longest wait for the next request on a logged-in connection.
    pub idle_timeout: Duration,
    /// Longest wait for the client to take a response.
    pub write_timeout: Duration,
    /// Largest request message (all packets together) accepted.
    pub max_message_bytes: usize,
    /// Most connections served at once; further ones are closed at once.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            max_message_bytes: 1 << 20,
            max_connections: 256,
        }
    }
}
