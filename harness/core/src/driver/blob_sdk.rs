//! `call = "BLOB <operation> <url>"` steps: the official Azure Storage SDK for Rust
//! (`azure_storage_blob` 1.x) does the call, as the Windows tutorial's .NET Storage SDK does.
//!
//! Operations: `download <blob url>` (the blob's content), `upload <blob url>` (a block blob
//! from the step's `body`) and `list <container url>` (the first page of blob names).
//!
//! The SDK's real requests travel over the environment's seam: a custom azure_core
//! [`HttpClient`] hands each request to the driver through a channel, the driver sends it with
//! [`Run::send`] (so it is recorded, redacted and routed exactly like an HTTP step) and hands
//! the response back. Credentials are small per-try pipeline policies that run after every
//! other policy: `token = "<fetch step>"` sets `Authorization: Bearer` (the SDK's own bearer
//! policy refuses plain-http endpoints, which the fake serves), `sign = { scheme =
//! "shared_key", account, key }` signs with [`crate::sign::shared_key`], and a SAS URL needs
//! nothing. The step's `headers` are set on every request (an `x-ms-version` there replaces the
//! SDK's default service version). The SDK's retry policy is off (each try would be a
//! transcript entry) and its `User-Agent` (rustc version and OS) is not sent, so transcripts
//! are the same on every machine.
//!
//! Expectations see the last response on the wire (status, Storage XML error code, body); the
//! step fails if the SDK itself rejects a response the wire accepted (e.g. a body it cannot
//! parse). Outputs: `content` (download, as text) and `blobs` (list, names in order).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, Context, HttpClient, Request, RequestContent,
    RetryOptions, StatusCode, Transport, Url, headers::Headers,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
};
use futures::TryStreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{Run, StepError, StepRecord, Trial};
use crate::backend::{HttpRequest, HttpResponse, Route};
use crate::model::{Step, Template};

/// Operations a `BLOB` call step may name.
pub const OPERATIONS: &[&str] = &["download", "upload", "list"];

type Reply = oneshot::Sender<Result<HttpResponse, String>>;

/// The azure_core transport: forwards each request to the driver, which sends and records it.
#[derive(Debug)]
struct Seam(mpsc::UnboundedSender<(HttpRequest, Reply)>);

fn sdk_error(kind: ErrorKind, message: impl Into<String>) -> azure_core::Error {
    azure_core::Error::with_message(kind, message.into())
}

/// An azure_core request as the driver's [`HttpRequest`] (headers sorted by name).
fn to_mic(request: &Request) -> azure_core::Result<HttpRequest> {
    let mut req = HttpRequest::new(request.method().as_ref(), request.url().as_str());
    let mut headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
        .collect();
    headers.sort();
    req.headers = headers;
    match request.body() {
        Body::Bytes(b) if b.is_empty() => {}
        Body::Bytes(b) => req.body = Some(b.to_vec()),
        Body::SeekableStream(_) => {
            return Err(sdk_error(
                ErrorKind::Other,
                "streamed request bodies are not supported by the mic transport",
            ));
        }
    }
    Ok(req)
}

#[async_trait]
impl HttpClient for Seam {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut req = to_mic(request)?;
        req.remove_header("user-agent");
        let (reply, answer) = oneshot::channel();
        self.0
            .send((req, reply))
            .map_err(|_| sdk_error(ErrorKind::Io, "the step has ended"))?;
        let resp = answer
            .await
            .map_err(|_| sdk_error(ErrorKind::Io, "the step has ended"))?
            .map_err(|e| sdk_error(ErrorKind::Io, e))?;
        let mut headers = Headers::new();
        for (k, v) in resp.headers {
            headers.insert(k.to_ascii_lowercase(), v);
        }
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::from(resp.status),
            headers,
            resp.body,
        ))
    }
}

/// How the step authenticates.
#[derive(Debug, Clone)]
enum Credential {
    /// A SAS in the URL, or nothing.
    None,
    Bearer(String),
    SharedKey {
        account: String,
        key: String,
    },
}

/// The step's headers and credential, applied to every try just before the transport.
#[derive(Debug)]
struct StepPolicy {
    headers: Vec<(String, String)>,
    credential: Credential,
}

#[async_trait]
impl Policy for StepPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        for (k, v) in &self.headers {
            request.insert_header(k.to_ascii_lowercase(), v.clone());
        }
        match &self.credential {
            Credential::None => {}
            Credential::Bearer(token) => {
                request.insert_header("authorization", format!("Bearer {token}"));
            }
            Credential::SharedKey { account, key } => {
                let mut req = to_mic(request)?;
                crate::sign::shared_key(account, key, &mut req)
                    .map_err(|e| sdk_error(ErrorKind::Credential, e.to_string()))?;
                for name in ["x-ms-date", "authorization"] {
                    if let Some(v) = req
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    {
                        request.insert_header(name, v.1.clone());
                    }
                }
            }
        }
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// `download <url>` -> (operation, url).
fn split_target(target: &str) -> Result<(&str, &str), StepError> {
    let bad = || {
        StepError(format!(
            "`call = \"BLOB {target}\"`: expected `<operation> <url>` with an operation among {}",
            OPERATIONS.join(", ")
        ))
    };
    let (op, url) = target
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(bad)?;
    if !OPERATIONS.contains(&op) {
        return Err(bad());
    }
    Ok((op, url.trim()))
}

impl Run<'_> {
    fn blob_credential(&mut self, step: &Step) -> Result<Credential, StepError> {
        if let Some(t) = step.fields.template("token") {
            let id = self.bindings.render(t)?;
            let token = self
                .bindings
                .get_root(&id)
                .and_then(|v| v.get("access_token"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    StepError(format!(
                        "`token = \"{id}\"`: that step produced no access token"
                    ))
                })?;
            return Ok(Credential::Bearer(token.to_string()));
        }
        let sign = step.fields.template_table("sign");
        if sign.is_empty() {
            return Ok(Credential::None);
        }
        let mut scheme = String::new();
        let mut account = String::new();
        let mut key = String::new();
        for (k, t) in sign {
            let v = self.bindings.render(t)?;
            match k {
                "scheme" => scheme = v,
                "account" => account = v,
                "key" => {
                    self.secrets.push((v.clone(), "key"));
                    key = v;
                }
                other => {
                    return Err(StepError(format!(
                        "`sign`: `{other}` is not an input of `shared_key`"
                    )));
                }
            }
        }
        if scheme != "shared_key" || account.is_empty() || key.is_empty() {
            return Err(StepError(
                "`BLOB` steps sign with `sign = { scheme = \"shared_key\", account, key }`".into(),
            ));
        }
        Ok(Credential::SharedKey { account, key })
    }

    pub(super) async fn blob_sdk_call(
        &mut self,
        target: &Template,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let rendered = self.bindings.render(target)?;
        let (op, url) = split_target(&rendered)?;
        let url = Url::parse(url).map_err(|e| StepError(format!("bad URL `{url}`: {e}")))?;
        let credential = self.blob_credential(step)?;
        let mut headers = Vec::new();
        let mut version = None;
        for (name, value) in step.fields.template_table("headers") {
            let value = self.bindings.render(value)?;
            if name.eq_ignore_ascii_case("x-ms-version") {
                version = Some(value.clone());
            }
            headers.push((name.to_string(), value));
        }
        let body = match step.fields.template("body") {
            Some(t) => Some(self.bindings.render(t)?),
            None => None,
        };
        if op == "upload" && body.is_none() {
            return Err(StepError("`BLOB upload` needs a `body`".into()));
        }

        let expect = self.expectation(step).cloned();
        let wants_success = expect
            .as_ref()
            .and_then(|e| e.status.as_ref())
            .is_none_or(|s| (200..300).contains(&s.value));
        let may_wait = self.trial == Trial::Normal && self.grants_done && wants_success;
        let budget = self.env.propagation_budget();
        let started = Instant::now();
        let mut wait = Duration::from_millis(50);
        loop {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let client_options = ClientOptions {
                transport: Some(Transport::new(Arc::new(Seam(tx)))),
                retry: RetryOptions::none(),
                per_try_policies: vec![Arc::new(StepPolicy {
                    headers: headers.clone(),
                    credential: credential.clone(),
                })],
                ..ClientOptions::default()
            };
            let first = record.exchanges.len();
            let work = sdk_operation(
                op,
                url.clone(),
                client_options,
                version.clone(),
                body.clone(),
            );
            let outcome = self.serve(work, &mut rx, record).await;
            if record.exchanges.len() == first {
                return Err(StepError(match outcome {
                    Err(e) => format!("the Storage SDK sent no request: {e}"),
                    Ok(_) => "the Storage SDK sent no request".into(),
                }));
            }
            let last = record.exchanges.len() - 1;
            record.primary = Some(last);
            let wire = record.exchanges[last].response.as_ref();
            let output = match outcome {
                Ok(v) => Some(v),
                // The service's own error: expectations judge the response on the wire.
                Err(e) if matches!(e.kind(), ErrorKind::HttpResponse { .. }) => None,
                Err(e) if wire.is_some() => {
                    return Err(StepError(format!("the Storage SDK failed: {e}")));
                }
                Err(_) => None,
            };
            let denied = wire.is_some_and(|r| matches!(r.status, 401 | 403));
            if !(may_wait && denied && started.elapsed() + wait < budget) {
                if may_wait && record.exchanges.len() > 1 && first > 0 {
                    record.propagation_wait = Some(started.elapsed());
                }
                return Ok(output);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.env.max_poll_interval());
        }
    }

    /// Drive `work` while sending and recording the requests it makes.
    async fn serve<T>(
        &mut self,
        work: impl Future<Output = T>,
        rx: &mut mpsc::UnboundedReceiver<(HttpRequest, Reply)>,
        record: &mut StepRecord,
    ) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                Some((req, reply)) = rx.recv() => {
                    let i = self.send(Route::Direct, req, record).await;
                    let ex = &record.exchanges[i];
                    let answer = ex
                        .response
                        .clone()
                        .ok_or_else(|| ex.error.clone().unwrap_or_default());
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

/// One SDK operation; its output view.
async fn sdk_operation(
    op: &str,
    url: Url,
    client_options: ClientOptions,
    version: Option<String>,
    body: Option<String>,
) -> azure_core::Result<Value> {
    if op == "list" {
        let mut options = BlobContainerClientOptions {
            client_options,
            ..Default::default()
        };
        if let Some(v) = version {
            options.version = v;
        }
        let client = BlobContainerClient::new(url, None, Some(options))?;
        let mut pages = client.list_blobs(None)?.into_pages();
        let mut names = Vec::new();
        if let Some(page) = pages.try_next().await? {
            let page = page.into_model()?;
            names.extend(page.blob_items.into_iter().filter_map(|b| b.name));
        }
        return Ok(json!({ "blobs": names }));
    }
    let mut options = BlobClientOptions {
        client_options,
        ..Default::default()
    };
    if let Some(v) = version {
        options.version = v;
    }
    let client = BlobClient::new(url, None, Some(options))?;
    if op == "upload" {
        let content = body.unwrap_or_default().into_bytes();
        client.upload(RequestContent::from(content), None).await?;
        Ok(json!({}))
    } else {
        let result = client.download(None).await?;
        let content = result.body.collect_string().await?;
        Ok(json!({ "content": content }))
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::split_target;

    #[rstest]
    #[case("download http://h/c/b", Some(("download", "http://h/c/b")))]
    #[case("  list   http://h/c ", Some(("list", "http://h/c")))]
    #[case("upload http://h/c/b", Some(("upload", "http://h/c/b")))]
    #[case("delete http://h/c/b", None)]
    #[case("http://h/c/b", None)]
    #[case("", None)]
    fn splits_operation_and_url(#[case] target: &str, #[case] want: Option<(&str, &str)>) {
        assert_eq!(split_target(target).ok(), want);
    }
}
