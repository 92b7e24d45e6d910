//! Client-side request signing for call steps that do not use a bearer token: the step's
//! `sign = { scheme = "...", ... }` table names the scheme and its inputs (rendered from
//! bindings). Each scheme computes exactly what the service's documented algorithm asks for,
//! so that the fake's verification and the real service's agree.

use std::collections::BTreeMap;

use crate::backend::HttpRequest;

/// Signing failures (bad inputs; never a network error).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("unknown signing scheme `{0}` (known: {known})", known = SCHEMES.join(", "))]
    UnknownScheme(String),
    #[error("signing scheme `{scheme}` needs `{field}`")]
    Missing { scheme: String, field: &'static str },
    #[error("signing scheme `{scheme}`: {message}")]
    Invalid { scheme: String, message: String },
}

/// Schemes a call step may name.
pub const SCHEMES: &[&str] = &[];

/// Sign `req` in place. `inputs` holds the rendered values of the `sign` table.
pub fn apply(inputs: &BTreeMap<String, String>, req: &mut HttpRequest) -> Result<(), SignError> {
    let scheme = inputs.get("scheme").cloned().unwrap_or_default();
    let _ = req;
    Err(SignError::UnknownScheme(scheme))
}
