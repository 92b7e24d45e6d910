//! Error types of the public API and the wire-level error envelopes.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Failure to start a world.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("cannot bind a loopback listener: {0}")]
    Bind(#[from] std::io::Error),
}

/// Why a bearer token was refused. `arm_code`/`arm_message` give ARM's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("invalid signature")]
    InvalidSignature,
    #[error("wrong issuer {issuer}, expected {expected}")]
    WrongIssuer { issuer: String, expected: String },
    #[error("wrong audience {audience}")]
    WrongAudience {
        audience: String,
        allowed: Vec<String>,
    },
    #[error("expired at {exp}, now {now}")]
    Expired { exp: i64, now: i64 },
    #[error("not valid before {nbf}, now {now}")]
    NotYetValid { nbf: i64, now: i64 },
}

impl TokenError {
    /// ARM's error code for this failure.
    pub fn arm_code(&self) -> &'static str {
        match self {
            TokenError::Missing => "AuthenticationFailed",
            TokenError::Malformed
            | TokenError::InvalidSignature
            | TokenError::NotYetValid { .. } => "InvalidAuthenticationToken",
            // The real ARM answers a correctly signed token from another directory with
            // InvalidAuthenticationTokenTenant (not InvalidAuthenticationToken).
            TokenError::WrongIssuer { .. } => "InvalidAuthenticationTokenTenant",
            TokenError::WrongAudience { .. } => "InvalidAuthenticationTokenAudience",
            TokenError::Expired { .. } => "ExpiredAuthenticationToken",
        }
    }

    /// ARM's message for this failure.
    pub fn arm_message(&self) -> String {
        match self {
            TokenError::Missing => {
                "Authentication failed. The 'Authorization' header is missing.".to_owned()
            }
            TokenError::Malformed => "The access token is invalid.".to_owned(),
            TokenError::InvalidSignature => "The access token has invalid signature.".to_owned(),
            TokenError::NotYetValid { .. } => "The access token is not yet valid.".to_owned(),
            TokenError::WrongIssuer { issuer, expected } => {
                let tid = expected
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                format!(
                    "The access token is from the wrong issuer '{issuer}'. It must match the tenant '{expected}' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{tid}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later."
                )
            }
            TokenError::WrongAudience { audience, allowed } => {
                let list = allowed
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(",");
                format!(
                    "The access token has been obtained for wrong audience or resource '{audience}'. It should exactly match with one of the allowed audiences {list}."
                )
            }
            TokenError::Expired { exp, now } => format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                crate::util::dotnet_utc(*exp),
                crate::util::dotnet_utc(*now)
            ),
        }
    }
}

/// An ARM error: `{"error":{"code","message"}}` with a status and optional extra headers.
#[derive(Debug, Clone)]
pub(crate) struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn body(&self) -> Value {
        let mut err = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.details {
            err["details"] = d.clone();
        }
        json!({ "error": err })
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, json_body(&self.body())).into_response();
        for (k, v) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp
    }
}

/// A JSON body with `application/json; charset=utf-8`, serialized in insertion order.
pub(crate) fn json_body(v: &Value) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "application/json; charset=utf-8")],
        serde_json::to_string(v).unwrap_or_else(|_| "{}".to_owned()),
    )
}

/// A JSON response with a status.
pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, json_body(v)).into_response()
}
