//! The seam between the driver and a cloud: a [`Backend`] makes one isolated
//! [`Environment`] per scenario run, and the environment carries requests to the cloud.
//!
//! Backends supply endpoints, credentials, "inside the host" execution and teardown, never
//! behaviour: the driver builds every request exactly as the tutorial does (ARM REST, the
//! IMDS URL `http://169.254.169.254/...`) and the environment only decides where it goes.
//! The fake backend rewrites in-host requests to the simulated VM's loopback IMDS; the live
//! backend runs them on the VM (locally or through Run Command).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{BackendKind, Scenario};

/// An HTTP request as the driver builds it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self {
            method: method.to_string(),
            url: url.into(),
            ..Self::default()
        }
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Replace (case-insensitively) or add a header.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    #[must_use]
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.set_header("Content-Type", "application/json");
        self
    }
}

/// An HTTP response as the cloud returned it.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Where a request is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// From the harness (ARM calls, data-plane calls with a token).
    Direct,
    /// From inside the host whose ARM resource id is given (IMDS, VM extension, App Service
    /// identity endpoint).
    InHost(&'a str),
}

/// Endpoints and identifiers of the cloud an environment talks to.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// ARM base URL without trailing slash.
    pub arm: String,
    /// Token service base URL without trailing slash.
    pub login: String,
    pub subscription_id: String,
    pub tenant_id: String,
    pub location: String,
    /// Short id unique to this run.
    pub run_id: String,
    /// Base URLs that the redactor replaces by `{name}` in transcripts (e.g. `arm`, `imds`).
    pub aliases: Vec<(String, String)>,
}

/// A secret string: never printed by `Debug`/`Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How the deployer (the CI's own principal that provisions and grants) authenticates.
#[derive(Debug, Clone)]
pub enum DeployerAuth {
    /// OAuth2 client credentials against `{login}/{tenant}/oauth2/token`.
    ClientSecret { client_id: String, secret: Secret },
    /// A ready ARM access token (e.g. from `az account get-access-token`).
    AccessToken(Secret),
}

#[derive(Debug, Clone)]
pub struct Deployer {
    pub object_id: String,
    pub client_id: String,
    pub auth: DeployerAuth,
}

/// Failures of the transport or the backend itself (not of the cloud's answer).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend `{backend}` is not available: {reason}")]
    Unavailable { backend: String, reason: String },
    #[error("could not start the environment: {0}")]
    Start(String),
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("host `{0}` is not known to this environment (was it provisioned?)")]
    UnknownHost(String),
    #[error("teardown failed: {0}")]
    Teardown(String),
}

/// A factory of isolated environments, one per scenario run.
#[async_trait]
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// `Some(reason)` when this backend cannot run here (the trial is then ignored, not passed).
    fn unavailable_reason(&self) -> Option<String> {
        None
    }

    async fn environment(&self, scenario: &Scenario) -> Result<Box<dyn Environment>, BackendError>;

    /// Whether a resource one environment created is usable from another (one cloud behind
    /// all environments), so that trials may share fixtures ([`crate::share`]). The fake
    /// backend starts a fresh cloud per environment: no.
    fn shares_fixtures(&self) -> bool {
        false
    }
}

/// One scenario's world.
#[async_trait]
pub trait Environment: Send + Sync {
    fn endpoints(&self) -> &Endpoints;

    fn deployer(&self) -> &Deployer;

    /// Send a request, from the harness or from inside a host.
    async fn send(
        &self,
        route: Route<'_>,
        request: HttpRequest,
    ) -> Result<HttpResponse, BackendError>;

    /// Base URLs to name in transcripts, asked for when the transcript is rendered (data-plane
    /// endpoints appear during a run): `(name, base url)` becomes `{name}`. The same service
    /// must get the same name on every backend (e.g. `blob:myaccount`).
    fn aliases(&self) -> Vec<(String, String)> {
        self.endpoints().aliases.clone()
    }

    /// Process environment variables the host's code sees (App Service: `IDENTITY_ENDPOINT`,
    /// `IDENTITY_HEADER`).
    fn host_environment(&self, host_resource_id: &str) -> BTreeMap<String, String> {
        let _ = host_resource_id;
        BTreeMap::new()
    }

    /// How long a call after a grant may keep being retried while the grant propagates.
    fn propagation_budget(&self) -> Duration {
        Duration::ZERO
    }

    /// Tags every resource group the driver creates carries (live: run id and `DeleteAfter`,
    /// so that `mic sweep` can find what an interrupted run left behind).
    fn resource_group_tags(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Called with a resource's ARM id *before* the request that creates it is sent (live:
    /// writes the id to the ledger).
    fn before_create(&self, resource_id: &str) -> Result<(), BackendError> {
        let _ = resource_id;
        Ok(())
    }

    /// Upper bound on one wait between polls of a long-running operation.
    fn max_poll_interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// The deployer's token for another audience (Key Vault, Graph, Azure SQL), when the
    /// environment signs in itself (live: the configured credential, whatever its kind).
    /// `None`: the driver signs in with [`DeployerAuth::ClientSecret`].
    async fn deployer_token_for(&self, audience: &str) -> Option<Result<String, BackendError>> {
        let _ = audience;
        None
    }

    /// Release everything the environment holds. Called exactly once, also after failures.
    async fn teardown(&self) -> Result<(), BackendError>;
}
