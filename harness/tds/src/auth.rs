//! The seam between the TDS server and whoever issues tokens.
//!
//! The fake SQL endpoint never decides on its own whether a bearer token is
//! genuine: the fake cloud's token service owns the signing keys and the
//! directory, so it plugs in through [`TokenAuthority`]. Keeping this a trait
//! lets tests use a self-contained RS256 authority and lets the fake cloud wire
//! in its real one later without this crate depending on it.

/// The identity a verified access token (or a directory lookup) stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPrincipal {
    /// Entra object id (`oid` claim); what contained users and the server
    /// admin are matched on.
    pub object_id: String,
    /// Application (client) id (`appid`/`azp` claim); for service principals
    /// and managed identities Azure SQL also records this as the user's SID.
    pub app_id: String,
    /// Display name; the name `CREATE USER [name] FROM EXTERNAL PROVIDER`
    /// resolves, and what `SUSER_SNAME()` reports.
    pub display_name: String,
    /// Tenant id (`tid` claim).
    pub tenant_id: String,
}

/// Why a display name could not be resolved to exactly one principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// More than one directory object carries the display name.
    #[error("more than one principal has this display name")]
    Ambiguous,
    /// No directory object carries the display name.
    #[error("no principal has this display name")]
    NotFound,
}

/// Verifies access tokens and resolves directory display names.
///
/// Implementations must never include the token itself in the returned
/// reason: the server records reasons for diagnostics.
pub trait TokenAuthority: Send + Sync {
    /// Verify signature, issuer, audience (`https://database.windows.net/`
    /// with or without the trailing slash) and `exp`/`nbf`; return the
    /// principal the token was issued to.
    fn verify(&self, token: &str) -> Result<TokenPrincipal, String>;

    /// Resolve a display name for `CREATE USER [name] FROM EXTERNAL
    /// PROVIDER`: `Ok` only if exactly one principal carries it.
    fn resolve_display_name(&self, name: &str) -> Result<TokenPrincipal, ResolveError>;
}
