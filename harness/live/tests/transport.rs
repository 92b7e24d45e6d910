//! Retries and long-running operations against wiremock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mic_core::backend::{HttpRequest, Secret};
use mic_live::arm::{ArmClient, ArmError, LroOptions};
use mic_live::credential::{CredentialSource, TokenCache};
use mic_live::transport::{RetryClass, RetryPolicy, Transport, TransportError};
use serde_json::json;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn transport(lines: Option<Arc<std::sync::Mutex<Vec<String>>>>) -> Transport {
    let sink = lines.map(|l| -> mic_live::transport::LogSink {
        Arc::new(move |s: &str| l.lock().unwrap().push(s.to_string()))
    });
    Transport::new(RetryPolicy::fast(), sink).unwrap()
}

fn client(server: &MockServer) -> ArmClient {
    let token = common::jwt(&json!({"oid": common::DEPLOYER_OID, "exp": common::now() + 3600}));
    let t = transport(None);
    let tokens = Arc::new(TokenCache::new(
        CredentialSource::AccessToken(Secret::new(token)),
        &server.uri(),
        common::TENANT,
        t.clone(),
    ));
    let lro = LroOptions {
        max_poll_interval: Duration::from_millis(30),
        default_poll_interval: Duration::from_millis(5),
        deadline: Duration::from_secs(5),
    };
    ArmClient::new(
        t,
        tokens,
        &server.uri(),
        "https://management.azure.com/",
        lro,
    )
}

/// Answers a sequence of templates, then repeats the last.
struct Seq(Vec<ResponseTemplate>, AtomicUsize);

impl Respond for Seq {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.1.fetch_add(1, Ordering::SeqCst);
        self.0[i.min(self.0.len() - 1)].clone()
    }
}

fn seq(v: Vec<ResponseTemplate>) -> Seq {
    Seq(v, AtomicUsize::new(0))
}

#[tokio::test]
async fn throttled_429_is_retried_after_the_capped_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(seq(vec![
            ResponseTemplate::new(429).insert_header("Retry-After", "3600"),
            ResponseTemplate::new(200).set_body_string("ok"),
        ]))
        .expect(2)
        .named("throttled once")
        .mount(&server)
        .await;
    let started = Instant::now();
    let resp = transport(None)
        .send(
            &HttpRequest::new("GET", format!("{}/x", server.uri())),
            RetryClass::Idempotent,
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    // An hour's Retry-After is honoured but capped by the policy.
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn transient_5xx_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(seq(vec![
            ResponseTemplate::new(503),
            ResponseTemplate::new(500),
            ResponseTemplate::new(200),
        ]))
        .expect(3)
        .mount(&server)
        .await;
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let resp = transport(Some(lines.clone()))
        .send(
            &HttpRequest::new(
                "GET",
                format!("{}/x?sig=SECRETSIG&api-version=1", server.uri()),
            ),
            RetryClass::Idempotent,
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let lines = lines.lock().unwrap().join("\n");
    assert_eq!(lines.matches("retrying").count(), 2, "{lines}");
    assert!(
        !lines.contains("SECRETSIG"),
        "query values never reach the log: {lines}"
    );
    assert!(lines.contains("api-version=1"));
}

#[tokio::test]
async fn exhausted_retries_give_a_clear_error() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": "ServerBusy", "message": "The server is busy."}}),
        ))
        .expect(4)
        .mount(&server)
        .await;
    let err = transport(None)
        .send(
            &HttpRequest::new("PUT", format!("{}/rg", server.uri())),
            RetryClass::Idempotent,
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, TransportError::Exhausted { attempts: 4, .. }),
        "{text}"
    );
    assert!(
        text.contains("failed after 4 attempts")
            && text.contains("503")
            && text.contains("ServerBusy"),
        "{text}"
    );
}

#[tokio::test]
async fn a_non_idempotent_post_is_not_retried_on_500_but_is_on_429() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/a"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/b"))
        .respond_with(seq(vec![
            ResponseTemplate::new(429),
            ResponseTemplate::new(202),
        ]))
        .expect(2)
        .mount(&server)
        .await;
    let t = transport(None);
    assert_eq!(
        t.send(
            &HttpRequest::new("POST", format!("{}/a", server.uri())),
            RetryClass::NotIdempotent
        )
        .await
        .unwrap()
        .status,
        500
    );
    assert_eq!(
        t.send(
            &HttpRequest::new("POST", format!("{}/b", server.uri())),
            RetryClass::NotIdempotent
        )
        .await
        .unwrap()
        .status,
        202
    );
}

/// A PUT whose first attempt is processed but answered with 500 (as when ARM's front door
/// fails after the write): the retry of the same idempotent PUT leaves one resource.
struct Store(std::sync::Mutex<Vec<String>>, AtomicUsize);

impl Respond for Store {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let id = req.url.path().to_string();
        let existed = s.contains(&id);
        if !existed {
            s.push(id);
        }
        if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
            return ResponseTemplate::new(500);
        }
        ResponseTemplate::new(if existed { 200 } else { 201 })
    }
}

struct Shared(Arc<Store>);

impl Respond for Shared {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        self.0.respond(r)
    }
}

#[tokio::test]
async fn an_idempotent_put_retried_once_does_not_duplicate() {
    let server = MockServer::start().await;
    let store = Arc::new(Store(
        std::sync::Mutex::new(Vec::new()),
        AtomicUsize::new(0),
    ));
    Mock::given(method("PUT"))
        .respond_with(Shared(store.clone()))
        .expect(2)
        .named("PUT rg")
        .mount(&server)
        .await;
    let resp = client(&server)
        .request(
            "PUT",
            "/subscriptions/s/resourcegroups/rg",
            "2021-04-01",
            Some(&json!({"location": "eastus"})),
        )
        .await
        .unwrap();
    assert_eq!(
        resp.status, 200,
        "the retry found the resource the first attempt made"
    );
    assert_eq!(store.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let t = transport(None);
    let err = t
        .send(
            &HttpRequest::new("POST", "http://127.0.0.1:9/x"),
            RetryClass::NotIdempotent,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Exhausted { attempts: 4, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn lro_follows_azure_async_operation_then_reads_the_resource() {
    let server = MockServer::start().await;
    let op = format!("{}/op/1", server.uri());
    Mock::given(method("PUT"))
        .and(path("/vm"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Azure-AsyncOperation", op.as_str())
                .insert_header("Retry-After", "600")
                .set_body_json(json!({"provisioningState": "Creating"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/op/1"))
        .and(header_exists("authorization"))
        .respond_with(seq(vec![
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "InProgress"}))
                .insert_header("Retry-After", "600"),
            ResponseTemplate::new(200).set_body_json(json!({"status": "InProgress"})),
            ResponseTemplate::new(200).set_body_json(json!({"status": "Succeeded"})),
        ]))
        .expect(3)
        .named("operation status")
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/vm"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"provisioningState": "Succeeded"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let done = client(&server)
        .request_lro("PUT", "/vm", "2023-03-01", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(done.json().unwrap()["provisioningState"], "Succeeded");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "Retry-After was capped by max_poll_interval"
    );
}

#[tokio::test]
async fn lro_follows_location_until_the_result() {
    let server = MockServer::start().await;
    let loc = format!("{}/result/1", server.uri());
    Mock::given(method("POST"))
        .and(path("/vm/runCommand"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", loc.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/result/1"))
        .respond_with(seq(vec![
            ResponseTemplate::new(202).insert_header("Retry-After", "1"),
            ResponseTemplate::new(200).set_body_json(json!({"value": []})),
        ]))
        .expect(2)
        .mount(&server)
        .await;
    let done = client(&server)
        .request_lro("POST", "/vm/runCommand", "2023-03-01", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(done.json().unwrap(), json!({"value": []}));
}

#[tokio::test]
async fn a_failed_operation_is_an_error_with_its_code() {
    let server = MockServer::start().await;
    let op = format!("{}/op/2", server.uri());
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(202).insert_header("Azure-AsyncOperation", op.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/op/2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "Failed", "error": {"code": "Conflict", "message": "in use"}}),
        ))
        .mount(&server)
        .await;
    let err = client(&server)
        .request_lro("DELETE", "/rg", "2021-04-01", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::OperationFailed { .. }), "{err}");
    assert!(err.to_string().contains("Conflict: in use"), "{err}");
}

#[tokio::test]
async fn an_operation_past_its_deadline_times_out() {
    let server = MockServer::start().await;
    let op = format!("{}/op/3", server.uri());
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(201).insert_header("Azure-AsyncOperation", op.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/op/3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "InProgress"})))
        .mount(&server)
        .await;
    let mut c = client(&server);
    c.lro.deadline = Duration::from_millis(100);
    let err = c
        .request_lro("PUT", "/x", "1", Some(&json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, ArmError::Timeout { .. }), "{err}");
}
