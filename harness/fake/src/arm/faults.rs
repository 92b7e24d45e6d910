//! Injected ARM faults: throttling (429 with `Retry-After`) and transient server errors
//! (500, 503), the way Azure answers now and then, so a client's retries can be exercised.
//!
//! Two sources: [`crate::FakeConfig::arm_faults`] (every `every`-th ARM request fails, the
//! statuses taken in turn) and [`crate::FakeCloud::inject_arm_faults`] (the next requests
//! fail, once each). Faults apply to ARM only (not to the token service, IMDS or data planes).

use std::collections::VecDeque;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ArmError;
use crate::world::World;

/// Periodic ARM faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmFaults {
    /// Every `every`-th ARM request fails (0 disables).
    pub every: u32,
    /// Statuses used in turn: 429 (with `Retry-After`), 500, 503 (others answer 500's body).
    pub statuses: Vec<u16>,
    /// `Retry-After` seconds sent with 429 and 503.
    pub retry_after_secs: u32,
}

/// Fault bookkeeping in the world state.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    /// One-shot faults for the next requests.
    pub next: VecDeque<u16>,
    /// ARM requests seen (for the periodic faults).
    pub seen: u64,
    /// Faults served so far.
    pub served: u64,
}

/// The error response for an injected `status`.
pub(crate) fn response(status: u16, retry_after: u32) -> Response {
    let (code, message, status) = match status {
        429 => (
            "TooManyRequests",
            "The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        503 => (
            "ServiceUnavailable",
            "The server is currently unable to handle the request due to a temporary overloading or maintenance. Please retry the request later.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        _ => (
            "InternalServerError",
            "Encountered internal server error. Diagnostic information: timestamp '', subscription id '', tracking id '', request correlation id ''.",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    };
    let mut err = ArmError::new(status, code, message);
    if matches!(status.as_u16(), 429 | 503) {
        err.headers
            .push(("Retry-After", retry_after.max(1).to_string()));
    }
    err.into_response()
}

/// The fault this request gets, if any (counts the request).
pub(crate) fn take(world: &World) -> Option<Response> {
    let periodic = world.config.arm_faults.clone();
    let mut st = world.lock();
    let q = &mut st.arm_faults;
    q.seen += 1;
    let status = q.next.pop_front().or_else(|| {
        let f = periodic.as_ref()?;
        if f.every == 0 || f.statuses.is_empty() || !q.seen.is_multiple_of(u64::from(f.every)) {
            return None;
        }
        let i = usize::try_from(q.seen / u64::from(f.every)).unwrap_or(0) % f.statuses.len();
        Some(f.statuses[i])
    })?;
    q.served += 1;
    drop(st);
    let retry = periodic.as_ref().map_or(1, |f| f.retry_after_secs);
    Some(response(status, retry))
}
