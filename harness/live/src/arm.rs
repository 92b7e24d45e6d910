//! ARM requests as the deployer, and long-running operations.
//!
//! The driver makes the scenario's own ARM calls (and follows their operations itself); this
//! client serves what only the live backend does: network prerequisites of a VM, Run
//! Command, teardown checks and `mic sweep`.
//!
//! Long-running operations follow Azure's rules: poll `Azure-AsyncOperation` (a status
//! document: `InProgress` ... `Succeeded` / `Failed` / `Canceled`) when present, else
//! `Location` (202 until done, then the result); wait the service's `Retry-After` between
//! polls, capped by the configured interval; give up after a deadline. The final answer is
//! the operation's result: the `Location` result, the status document's `properties.output`
//! (Run Command) or a GET of the resource.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mic_core::backend::{HttpRequest, HttpResponse};
use serde_json::Value;

use crate::credential::{AuthError, TokenCache};
use crate::transport::{
    RetryClass, Transport, TransportError, describe_response, redact_url, retry_after,
};

/// Why an ARM request or operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("long-running operation {url} ended {status}: {detail}")]
    OperationFailed {
        url: String,
        status: String,
        detail: String,
    },
    #[error("long-running operation {url} did not finish within {limit:?}")]
    Timeout { url: String, limit: Duration },
    #[error("{method} {url} answered {status}: {detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
}

/// How operations are polled.
#[derive(Debug, Clone)]
pub struct LroOptions {
    /// Cap of one wait (the service's `Retry-After` is honoured up to this).
    pub max_poll_interval: Duration,
    /// Wait when the service gives no `Retry-After`.
    pub default_poll_interval: Duration,
    /// Give up after this long.
    pub deadline: Duration,
}

impl Default for LroOptions {
    fn default() -> Self {
        Self {
            max_poll_interval: Duration::from_secs(30),
            default_poll_interval: Duration::from_secs(5),
            deadline: Duration::from_mins(30),
        }
    }
}

/// ARM as the deployer.
#[derive(Debug, Clone)]
pub struct ArmClient {
    pub transport: Transport,
    pub tokens: Arc<TokenCache>,
    /// ARM base URL, no trailing slash.
    pub arm: String,
    pub audience: String,
    pub lro: LroOptions,
}

impl ArmClient {
    pub fn new(
        transport: Transport,
        tokens: Arc<TokenCache>,
        arm: &str,
        audience: &str,
        lro: LroOptions,
    ) -> Self {
        Self {
            transport,
            tokens,
            arm: arm.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            lro,
        }
    }

    /// `path` (`/subscriptions/...`) or an absolute URL, plus `api-version`.
    pub fn url(&self, path: &str, api_version: &str) -> String {
        let base = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.arm)
        };
        if api_version.is_empty() {
            return base;
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}api-version={api_version}")
    }

    async fn authorized(
        &self,
        method: &str,
        url: String,
        body: Option<&Value>,
    ) -> Result<HttpRequest, ArmError> {
        let token = self.tokens.token(&self.audience).await?;
        let mut req = HttpRequest::new(method, url)
            .header("Authorization", format!("Bearer {}", token.token.expose()));
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req)
    }

    /// One request with retries; any status is returned.
    ///
    /// # Errors
    /// Sign-in and transport failures (including exhausted retries).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, ArmError> {
        let req = self
            .authorized(method, self.url(path, api_version), body)
            .await?;
        Ok(self
            .transport
            .send(&req, RetryClass::for_arm_method(method))
            .await?)
    }

    /// A request whose answer must be a success, followed to the end of its operation.
    ///
    /// # Errors
    /// [`ArmError::Status`] for a non-2xx answer, and the failures of [`ArmClient::follow`].
    pub async fn request_lro(
        &self,
        method: &str,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, ArmError> {
        let url = self.url(path, api_version);
        let resp = self.request(method, path, api_version, body).await?;
        if !resp.is_success() {
            return Err(ArmError::Status {
                method: method.into(),
                url: redact_url(&url),
                status: resp.status,
                detail: describe_response(&resp),
            });
        }
        self.follow(method, &url, resp).await
    }

    /// Follow the operation started by `initial` (the answer to `method url`) to its result.
    ///
    /// # Errors
    /// The operation failed or was canceled, polling failed, or the deadline passed.
    pub async fn follow(
        &self,
        method: &str,
        url: &str,
        initial: HttpResponse,
    ) -> Result<HttpResponse, ArmError> {
        let async_op = initial.header("Azure-AsyncOperation").map(str::to_string);
        let location = initial
            .header("Location")
            .filter(|_| initial.status == 202)
            .map(str::to_string);
        if async_op.is_none() && location.is_none() {
            return Ok(initial);
        }
        let started = Instant::now();
        let mut wait = self.poll_wait(&initial);
        if let Some(op) = async_op {
            let status_doc = loop {
                self.sleep_or_timeout(started, &op, wait).await?;
                let poll = self.get(&op).await?;
                if poll.status == 202
                    || (poll.is_success() && op_status(&poll).is_none_or(|s| !is_terminal(&s)))
                {
                    wait = self.poll_wait(&poll);
                    continue;
                }
                if !poll.is_success() {
                    return Err(ArmError::OperationFailed {
                        url: redact_url(&op),
                        status: poll.status.to_string(),
                        detail: describe_response(&poll),
                    });
                }
                break poll;
            };
            let status = op_status(&status_doc).unwrap_or_default();
            if !status.eq_ignore_ascii_case("Succeeded") {
                return Err(ArmError::OperationFailed {
                    url: redact_url(&op),
                    status,
                    detail: operation_error(&status_doc),
                });
            }
            if let Some(loc) = location {
                let result = self.get(&loc).await?;
                if result.status != 202 {
                    return Ok(result);
                }
            }
            if status_doc
                .json()
                .is_some_and(|b| b.pointer("/properties/output").is_some())
            {
                return Ok(status_doc);
            }
            return match method.to_ascii_uppercase().as_str() {
                "PUT" | "PATCH" => self.get(url).await,
                _ => Ok(status_doc),
            };
        }
        let loc = location.expect("checked above");
        loop {
            self.sleep_or_timeout(started, &loc, wait).await?;
            let poll = self.get(&loc).await?;
            match poll.status {
                202 => wait = self.poll_wait(&poll),
                s if (200..300).contains(&s) => return Ok(poll),
                s => {
                    return Err(ArmError::OperationFailed {
                        url: redact_url(&loc),
                        status: s.to_string(),
                        detail: describe_response(&poll),
                    });
                }
            }
        }
    }

    async fn get(&self, url: &str) -> Result<HttpResponse, ArmError> {
        let req = self.authorized("GET", url.to_string(), None).await?;
        Ok(self.transport.send(&req, RetryClass::Idempotent).await?)
    }

    fn poll_wait(&self, resp: &HttpResponse) -> Duration {
        retry_after(resp)
            .unwrap_or(self.lro.default_poll_interval)
            .min(self.lro.max_poll_interval)
    }

    async fn sleep_or_timeout(
        &self,
        started: Instant,
        url: &str,
        wait: Duration,
    ) -> Result<(), ArmError> {
        if started.elapsed() + wait > self.lro.deadline {
            return Err(ArmError::Timeout {
                url: redact_url(url),
                limit: self.lro.deadline,
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

fn op_status(resp: &HttpResponse) -> Option<String> {
    resp.json()?
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn is_terminal(status: &str) -> bool {
    ["Succeeded", "Failed", "Canceled", "Cancelled"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(status))
}

fn operation_error(resp: &HttpResponse) -> String {
    resp.json()
        .and_then(|b| {
            let e = b.get("error")?;
            Some(format!(
                "{}: {}",
                e.get("code").and_then(Value::as_str).unwrap_or("(no code)"),
                e.get("message").and_then(Value::as_str).unwrap_or("")
            ))
        })
        .unwrap_or_else(|| "(no error details)".into())
}

/// `(type path, name)` of an ARM id's last segment pair, e.g.
/// `("Microsoft.Compute/virtualMachines", "myVM")`; resource groups give `("resourceGroups", name)`.
pub fn resource_type(id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    if let Some(p) = lower.iter().rposition(|p| p == "providers") {
        let rest = &parts[p + 1..];
        if rest.len() >= 3 && rest.len() % 2 == 1 {
            let namespace = rest[0];
            let types: Vec<&str> = rest[1..].iter().step_by(2).copied().collect();
            return Some((
                format!("{namespace}/{}", types.join("/")),
                (*rest.last()?).to_string(),
            ));
        }
        return None;
    }
    match lower.as_slice() {
        [s, _, rg, _] if s == "subscriptions" && rg == "resourcegroups" => {
            Some(("resourceGroups".into(), parts[3].to_string()))
        }
        _ => None,
    }
}

/// The resource group id (`/subscriptions/{s}/resourceGroups/{rg}`, lowercase) an id lives in.
pub fn resource_group_of(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [s, sub, rg, name, ..]
            if s.eq_ignore_ascii_case("subscriptions")
                && rg.eq_ignore_ascii_case("resourcegroups") =>
        {
            Some(format!("/subscriptions/{sub}/resourcegroups/{name}").to_ascii_lowercase())
        }
        _ => None,
    }
}

/// An api-version that can DELETE this resource type (ledger entries, sweep).
pub fn delete_api_version(resource_type: &str) -> Option<&'static str> {
    let t = resource_type.to_ascii_lowercase();
    Some(match t.as_str() {
        "resourcegroups" => "2021-04-01",
        "microsoft.authorization/roleassignments" => "2022-04-01",
        "microsoft.compute/virtualmachines" | "microsoft.compute/virtualmachinescalesets" => {
            "2023-03-01"
        }
        "microsoft.managedidentity/userassignedidentities" => "2023-01-31",
        "microsoft.storage/storageaccounts" => "2023-05-01",
        "microsoft.web/sites" | "microsoft.web/serverfarms" => "2022-03-01",
        t if t.starts_with("microsoft.network/") => "2023-09-01",
        _ => return None,
    })
}
