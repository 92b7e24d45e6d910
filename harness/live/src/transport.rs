//! HTTP transport with Azure's retry rules.
//!
//! ARM throttles with 429 and `Retry-After`, and has transient 5xx and dropped connections
//! on a busy day. A nightly run must ride those out without hiding real failures, so:
//!
//! - 429 is retried for every method (the request was not processed), waiting `Retry-After`
//!   (seconds or an HTTP date, or `x-ms-retry-after-ms`) capped by the policy;
//! - 408 and 5xx and mid-request connection failures are retried only for idempotent
//!   requests (GET, PUT, DELETE, PATCH to ARM, token requests): repeating a PUT with the
//!   same body and name yields the same resource, so a retried step never duplicates;
//! - failures to *connect* are retried for every method (nothing was sent);
//! - waits grow exponentially with full jitter, and attempts are bounded: when they run out
//!   the error says how many attempts over how long and what the last answer was.
//!
//! Log lines and errors show URLs without their query values (except `api-version`), so a
//! SAS signature or code never reaches a log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mic_core::backend::{HttpRequest, HttpResponse};
use rand::Rng as _;
use serde_json::Value;

/// Where transport and backend log lines go (the progress reporter, or a test's buffer).
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Bounds of the retry loop.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub base_delay: Duration,
    /// Cap of one backoff.
    pub max_delay: Duration,
    /// Cap of one wait asked for by `Retry-After`.
    pub max_retry_after: Duration,
    /// Timeout of one attempt.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_mins(1),
            max_retry_after: Duration::from_mins(2),
            request_timeout: Duration::from_mins(2),
        }
    }
}

impl RetryPolicy {
    /// Millisecond waits for tests (Retry-After is still read, then capped).
    pub fn fast() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// The backoff before attempt `attempt + 1` (attempt is 1-based): full jitter over an
    /// exponentially growing, capped window.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let window = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1))
            .min(self.max_delay);
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis.max(1)))
    }
}

/// Which failures may be retried for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// 429, 408, 5xx, connection failures.
    Idempotent,
    /// Only what surely was not processed: 429, 503 with `Retry-After`, failures to connect.
    NotIdempotent,
    /// Only failures to connect: data-plane calls whose status codes are what a scenario tests.
    ConnectOnly,
}

impl RetryClass {
    /// ARM's idempotent methods.
    pub fn for_arm_method(method: &str) -> Self {
        match method.to_ascii_uppercase().as_str() {
            "GET" | "HEAD" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" => Self::Idempotent,
            _ => Self::NotIdempotent,
        }
    }
}

/// Why a request got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("{method} {url}: {message}")]
    Connection {
        method: String,
        url: String,
        message: String,
    },
    #[error("{method} {url} failed after {attempts} attempts over {elapsed:.1?}: {last}")]
    Exhausted {
        method: String,
        url: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error("{method} {url}: invalid request: {message}")]
    Invalid {
        method: String,
        url: String,
        message: String,
    },
}

/// One HTTP client and a retry policy.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    policy: RetryPolicy,
    log: Option<LogSink>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Install rustls' `ring` provider once (reqwest is built without a default provider).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Transport {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(policy: RetryPolicy, log: Option<LogSink>) -> Result<Self, TransportError> {
        Self::build(policy, log, false)
    }

    /// A transport that never goes through a proxy (for IMDS from the VM itself: IMDS
    /// rejects proxied requests).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new_no_proxy(policy: RetryPolicy, log: Option<LogSink>) -> Result<Self, TransportError> {
        Self::build(policy, log, true)
    }

    fn build(
        policy: RetryPolicy,
        log: Option<LogSink>,
        no_proxy: bool,
    ) -> Result<Self, TransportError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .connect_timeout(Duration::from_secs(10).min(policy.request_timeout))
            .redirect(reqwest::redirect::Policy::none());
        if no_proxy {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| TransportError::Invalid {
            method: String::new(),
            url: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self {
            client,
            policy,
            log,
        })
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn log(&self, line: &str) {
        if let Some(l) = &self.log {
            l(line);
        }
    }

    pub fn log_sink(&self) -> Option<LogSink> {
        self.log.clone()
    }

    /// Send once, no retries.
    ///
    /// # Errors
    /// Connection failures and invalid requests.
    pub async fn send_once(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.attempt(req).await.map_err(|(e, _)| e)
    }

    /// Send with retries according to `class`.
    ///
    /// # Errors
    /// A connection failure that may not be retried, or [`TransportError::Exhausted`].
    pub async fn send(
        &self,
        req: &HttpRequest,
        class: RetryClass,
    ) -> Result<HttpResponse, TransportError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.attempt(req).await;
            let (wait, what) = match &result {
                Ok(resp) => match retry_wait(resp, class, &self.policy, attempt) {
                    Some(wait) => (wait, describe_response(resp)),
                    None => return result.map_err(|(e, _)| e),
                },
                Err((e, connect)) => {
                    let retry = *connect || class == RetryClass::Idempotent;
                    if !retry {
                        return Err(e.clone());
                    }
                    (self.policy.backoff(attempt), e.to_string())
                }
            };
            if attempt >= self.policy.max_attempts {
                return Err(TransportError::Exhausted {
                    method: req.method.clone(),
                    url: redact_url(&req.url),
                    attempts: attempt,
                    elapsed: started.elapsed(),
                    last: what,
                });
            }
            self.log(&format!(
                "retrying {} {} in {:.1?} (attempt {attempt} of {}): {what}",
                req.method,
                redact_url(&req.url),
                wait,
                self.policy.max_attempts
            ));
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt; the error's flag tells whether it failed before anything was sent.
    async fn attempt(&self, req: &HttpRequest) -> Result<HttpResponse, (TransportError, bool)> {
        let url = redact_url(&req.url);
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| {
            (
                TransportError::Invalid {
                    method: req.method.clone(),
                    url: url.clone(),
                    message: e.to_string(),
                },
                false,
            )
        })?;
        let mut builder = self.client.request(method, &req.url);
        for (n, v) in &req.headers {
            builder = builder.header(n, v);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let failed = |e: &reqwest::Error| {
            (
                TransportError::Connection {
                    method: req.method.clone(),
                    url: url.clone(),
                    message: describe_reqwest(e),
                },
                e.is_connect(),
            )
        };
        let resp = builder.send().await.map_err(|e| failed(&e))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.bytes().await.map_err(|e| failed(&e))?.to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The wait before retrying `resp`, or `None` when it is final.
pub fn retry_wait(
    resp: &HttpResponse,
    class: RetryClass,
    policy: &RetryPolicy,
    attempt: u32,
) -> Option<Duration> {
    let retryable = match (resp.status, class) {
        (503, RetryClass::NotIdempotent) => retry_after(resp).is_some(),
        (429, RetryClass::Idempotent | RetryClass::NotIdempotent)
        | (408 | 500 | 502 | 503 | 504, RetryClass::Idempotent) => true,
        _ => false,
    };
    retryable.then(|| {
        retry_after(resp).map_or_else(
            || policy.backoff(attempt),
            |d| d.min(policy.max_retry_after),
        )
    })
}

/// `Retry-After` (seconds or HTTP date) or `x-ms-retry-after-ms`.
pub fn retry_after(resp: &HttpResponse) -> Option<Duration> {
    if let Some(ms) = resp
        .header("x-ms-retry-after-ms")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    let v = resp.header("Retry-After")?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `503 (ServerBusy: The server is busy)` from an ARM error body, first 200 characters.
pub fn describe_response(resp: &HttpResponse) -> String {
    let detail = resp.json().and_then(|b| {
        let e = b.get("error")?;
        let code = e
            .get("code")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())?;
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        Some(format!("{code}: {message}"))
    });
    match detail {
        Some(d) => format!(
            "last answer {} ({})",
            resp.status,
            d.chars().take(200).collect::<String>()
        ),
        None => format!("last answer {}", resp.status),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL with its query: rebuild the message without it.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// A URL without its query values, except `api-version` (for logs and errors).
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("api-version") => format!("{k}={v}"),
            Some((k, _)) => format!("{k}=…"),
            None => p.to_string(),
        })
        .collect();
    format!("{base}?{}", kept.join("&"))
}
