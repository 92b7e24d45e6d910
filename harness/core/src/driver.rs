//! The driver: runs one scenario on one backend, step by step, over the real wire protocols.
//!
//! Every step becomes HTTP requests built exactly as the tutorial (or the tool it uses) sends
//! them: provisioning and grants are ARM REST calls made as the deployer, tokens come from the
//! host's IMDS, calls go to the service with the token. The driver captures outputs into
//! [`Bindings`], checks expectations, records every exchange, and always tears down.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::backend::{Backend, DeployerAuth, Environment, HttpRequest, HttpResponse, Route};
use crate::bindings::{Bindings, RenderError};
use crate::expect::{Mismatch, check, error_code};
use crate::model::{
    BackendKind, Expect, GrantKind, Phase, ProvisionKind, Scenario, Step, StepKind, TokenSource,
};
use crate::redact::Redactor;
use crate::roles;

mod blob_sdk;
mod datalake;
mod graph;
mod kvcosmos;
pub mod sql;

/// Which variant of a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trial {
    /// The scenario as written.
    Normal,
    /// Grant steps removed: every call carrying `denied_without_grant` must be denied.
    WithoutGrant,
}

impl Trial {
    pub fn suffix(self) -> &'static str {
        match self {
            Trial::Normal => "",
            Trial::WithoutGrant => "::without-grant",
        }
    }
}

/// One request/response pair, unredacted (redaction happens when rendering).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub route: String,
    pub request: HttpRequest,
    pub response: Option<HttpResponse>,
    pub error: Option<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Passed,
    Failed,
    /// Not run (after a failure, or removed in the without-grant trial).
    Skipped(String),
}

/// What happened in one step.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub index: usize,
    pub id: String,
    pub kind: String,
    pub location: String,
    pub status: StepStatus,
    pub exchanges: Vec<Exchange>,
    /// Index into `exchanges` of the exchange the expectation applies to.
    pub primary: Option<usize>,
    pub snapshot: bool,
    pub duration: Duration,
    /// Time spent waiting for a grant to propagate before this call succeeded.
    pub propagation_wait: Option<Duration>,
    /// The shared fixture that provided this step's resource (nothing was sent).
    pub shared: Option<String>,
}

/// Why a run failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub step_index: usize,
    pub step_id: String,
    pub step_kind: String,
    pub location: String,
    pub message: String,
    pub mismatches: Vec<Mismatch>,
}

#[derive(Debug, Clone)]
pub enum Verdict {
    Passed,
    Failed(Failure),
    /// The backend could not run it (an ignored trial, not a pass).
    Unavailable(String),
}

/// The result of one scenario x backend x trial.
#[derive(Debug)]
pub struct RunOutcome {
    pub scenario_id: String,
    pub backend: BackendKind,
    pub trial: Trial,
    pub verdict: Verdict,
    pub steps: Vec<StepRecord>,
    pub duration: Duration,
    pub teardown_error: Option<String>,
    /// Redacted transcript of the snapshot steps (None when the run could not start).
    pub snapshot: Option<String>,
    /// Redacted transcript of every step (for reports and failure messages).
    pub transcript: String,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Passed) && self.teardown_error.is_none()
    }

    /// `arm/linux-vm-system-assigned::fake` (+ `::without-grant`).
    pub fn trial_name(&self) -> String {
        format!(
            "{}::{}{}",
            self.scenario_id,
            self.backend,
            self.trial.suffix()
        )
    }

    /// The command that reruns exactly this case.
    pub fn rerun_command(&self) -> String {
        let mut cmd = format!(
            "cargo run -q -p mic-cli -- run --scenario {} --backend {}",
            self.scenario_id, self.backend
        );
        if self.trial == Trial::WithoutGrant {
            cmd.push_str(" --trial without-grant");
        }
        cmd
    }

    /// A multi-line failure report: scenario, backend, step and place, expected vs actual,
    /// the last transcript entries and the rerun command.
    pub fn failure_report(&self) -> Option<String> {
        let mut out = String::new();
        match &self.verdict {
            Verdict::Failed(f) => {
                let _ = writeln!(
                    out,
                    "{} failed on backend `{}`{}",
                    self.scenario_id,
                    self.backend,
                    if self.trial == Trial::WithoutGrant {
                        " (grant-necessity trial: grant steps removed)"
                    } else {
                        ""
                    }
                );
                let _ = writeln!(
                    out,
                    "  step {} `{}` ({}) at {}",
                    f.step_index + 1,
                    f.step_id,
                    f.step_kind,
                    f.location
                );
                let _ = writeln!(out, "  {}", f.message);
                for m in &f.mismatches {
                    let _ = writeln!(
                        out,
                        "    {}: expected {}, got {}",
                        m.what, m.expected, m.actual
                    );
                }
                let tail: Vec<&str> = self.transcript.lines().collect();
                let start = tail.len().saturating_sub(24);
                let _ = writeln!(out, "  last transcript lines:");
                for l in &tail[start..] {
                    let _ = writeln!(out, "    | {l}");
                }
            }
            Verdict::Passed if self.teardown_error.is_some() => {}
            Verdict::Passed | Verdict::Unavailable(_) => return None,
        }
        if let Some(t) = &self.teardown_error {
            let _ = writeln!(out, "  teardown failed: {t}");
        }
        let _ = writeln!(out, "  rerun: {}", self.rerun_command());
        Some(out)
    }
}

/// Run one scenario on one backend.
pub async fn run(backend: &dyn Backend, scenario: &Scenario, trial: Trial) -> RunOutcome {
    run_with_fixture(backend, scenario, trial, None).await
}

/// Run one scenario, taking the steps `fixture` provides from it instead of running them
/// (see [`crate::share`]); `None` runs it isolated, as [`run`] does.
pub async fn run_with_fixture(
    backend: &dyn Backend,
    scenario: &Scenario,
    trial: Trial,
    fixture: Option<&Fixture>,
) -> RunOutcome {
    let started = Instant::now();
    let unavailable = |reason: String| RunOutcome {
        scenario_id: scenario.id.value.clone(),
        backend: backend.kind(),
        trial,
        verdict: Verdict::Unavailable(reason),
        steps: Vec::new(),
        duration: started.elapsed(),
        teardown_error: None,
        snapshot: None,
        transcript: String::new(),
    };
    if let Some(reason) = backend.unavailable_reason() {
        return unavailable(reason);
    }
    let env = match backend.environment(scenario).await {
        Ok(env) => env,
        Err(e) => {
            let mut out = unavailable(e.to_string());
            out.verdict = Verdict::Failed(Failure {
                step_index: 0,
                step_id: "(environment)".into(),
                step_kind: "start".into(),
                location: scenario.file.path.display().to_string(),
                message: e.to_string(),
                mismatches: vec![],
            });
            return out;
        }
    };
    let mut run = Run::new(env.as_ref(), scenario, trial);
    run.fixture = fixture;
    let verdict = run.steps().await;
    let teardown_error = run.teardown().await;
    let (snapshot, transcript) = run.render();
    RunOutcome {
        scenario_id: scenario.id.value.clone(),
        backend: backend.kind(),
        trial,
        verdict,
        steps: run.records,
        duration: started.elapsed(),
        teardown_error,
        snapshot: Some(snapshot),
        transcript,
    }
}

/// A trial whose shared fixture could not be created: failed at the fixture's first step.
pub fn fixture_failed(
    backend: BackendKind,
    scenario: &Scenario,
    trial: Trial,
    plan: &crate::share::FixturePlan,
    message: &str,
) -> RunOutcome {
    let step = scenario
        .steps
        .iter()
        .find(|s| plan.steps.contains(&s.id.value));
    let failure = Failure {
        step_index: step.map_or(0, |s| s.index),
        step_id: step.map_or_else(|| "(fixture)".into(), |s| s.id.value.clone()),
        step_kind: step.map_or_else(|| "fixture".into(), |s| s.kind.value.qualified()),
        location: step.map_or_else(
            || scenario.file.path.display().to_string(),
            |s| scenario.file.location(s.span),
        ),
        message: format!(
            "the shared fixture `{}` could not be created: {message}",
            plan.name
        ),
        mismatches: vec![],
    };
    RunOutcome {
        scenario_id: scenario.id.value.clone(),
        backend,
        trial,
        verdict: Verdict::Failed(failure),
        steps: Vec::new(),
        duration: Duration::ZERO,
        teardown_error: None,
        snapshot: None,
        transcript: String::new(),
    }
}

/// Resource groups, user-assigned identities and hosts created once for several trials
/// (see [`crate::share`]). Lives until [`Fixture::teardown`].
pub struct Fixture {
    pub name: String,
    /// The fixture's own scenario: the member's id replaced by the fixture's name, only the
    /// fixture's steps.
    scenario: Scenario,
    env: Box<dyn Environment>,
    /// Bound outputs of each fixture step, by step id.
    outputs: BTreeMap<String, Value>,
    hosts: BTreeMap<String, String>,
    secrets: Vec<(String, &'static str)>,
    created_groups: Vec<String>,
    /// The creation's step records and how long it took.
    pub records: Vec<StepRecord>,
    pub creation: Duration,
    pub transcript: String,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// Create the fixture `plan` describes, with the definitions of `member` (any trial that
    /// shares it: their definitions are identical). On failure everything created is torn
    /// down and the error (with the creation's transcript tail) returned.
    ///
    /// # Errors
    /// A fixture step failed or the environment could not start.
    pub async fn create(
        backend: &dyn Backend,
        member: &Scenario,
        plan: &crate::share::FixturePlan,
    ) -> Result<Fixture, String> {
        let started = Instant::now();
        let mut scenario = member.clone();
        scenario.id.value.clone_from(&plan.name);
        scenario
            .steps
            .retain(|s| plan.steps.contains(&s.id.value) && s.phase() == Phase::Provision);
        let env = backend
            .environment(&scenario)
            .await
            .map_err(|e| e.to_string())?;
        let mut run = Run::new(env.as_ref(), &scenario, Trial::Normal);
        let verdict = run.steps().await;
        if let Verdict::Failed(f) = verdict {
            let teardown = run.teardown().await;
            let (_, transcript) = run.render();
            let tail: Vec<&str> = transcript.lines().collect();
            let tail = tail[tail.len().saturating_sub(12)..].join("\n    | ");
            return Err(format!(
                "step `{}` ({}): {}{}\n    | {tail}",
                f.step_id,
                f.step_kind,
                f.message,
                teardown
                    .map(|t| format!(" (teardown: {t})"))
                    .unwrap_or_default()
            ));
        }
        let outputs = scenario
            .steps
            .iter()
            .filter_map(|s| {
                run.bindings
                    .get_root(&s.id.value)
                    .map(|v| (s.id.value.clone(), v.clone()))
            })
            .collect();
        let (_, transcript) = run.render();
        let hosts = std::mem::take(&mut run.hosts);
        let secrets = std::mem::take(&mut run.secrets);
        let created_groups = std::mem::take(&mut run.created_groups);
        let records = std::mem::take(&mut run.records);
        drop(run);
        Ok(Fixture {
            name: plan.name.clone(),
            scenario,
            env,
            outputs,
            hosts,
            secrets,
            created_groups,
            records,
            creation: started.elapsed(),
            transcript,
        })
    }

    /// The fixture's run id (its resource names contain it).
    pub fn run_id(&self) -> &str {
        &self.env.endpoints().run_id
    }

    /// Delete what the fixture created; `Some(error)` when something could not be deleted.
    /// The teardown's step records are appended to [`Fixture::records`].
    pub async fn teardown(&mut self) -> Option<String> {
        let mut run = Run::new(self.env.as_ref(), &self.scenario, Trial::Normal);
        run.created_groups = std::mem::take(&mut self.created_groups);
        let error = run.teardown().await;
        self.records.append(&mut run.records);
        error
    }
}

/// The IMDS token endpoint every tutorial calls from inside the VM.
pub const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// The legacy VM extension's token endpoint.
pub const EXTENSION_TOKEN_URL: &str = "http://localhost:50342/oauth2/token";

const RG_API: &str = "2021-04-01";
const UAI_API: &str = "2018-11-30";
const VM_API: &str = "2018-06-01";
const STORAGE_API: &str = "2023-05-01";
const AUTHZ_API: &str = "2022-04-01";
const WEB_API: &str = "2022-03-01";

struct Run<'a> {
    env: &'a dyn Environment,
    scenario: &'a Scenario,
    trial: Trial,
    bindings: Bindings,
    records: Vec<StepRecord>,
    /// Resource groups created, in order, for teardown.
    created_groups: Vec<String>,
    deployer_token: Option<String>,
    /// Strings to redact as secrets.
    secrets: Vec<(String, &'static str)>,
    /// ARM id of each provisioned VM / scale set / site by step id.
    hosts: BTreeMap<String, String>,
    grants_done: bool,
    /// Run-specific base URLs to name in transcripts (e.g. `IDENTITY_ENDPOINT`).
    aliases: Vec<(String, String)>,
    /// The shared fixture this trial takes its resource groups, identities and host from.
    fixture: Option<&'a Fixture>,
}

/// A step-level error before or instead of an expectation mismatch.
struct StepError(String);

impl From<RenderError> for StepError {
    fn from(e: RenderError) -> Self {
        StepError(format!("could not render {e}"))
    }
}

impl<'a> Run<'a> {
    fn new(env: &'a dyn Environment, scenario: &'a Scenario, trial: Trial) -> Self {
        let ep = env.endpoints();
        let mut bindings = Bindings::default();
        bindings.bind("arm", json!(ep.arm));
        bindings.bind("login", json!(ep.login));
        bindings.bind("subscription_id", json!(ep.subscription_id));
        bindings.bind("tenant_id", json!(ep.tenant_id));
        bindings.bind("location", json!(ep.location));
        bindings.bind("run_id", json!(ep.run_id));
        bindings.bind(
            "host",
            json!({"name": scenario.host.name, "os": scenario.host.os.name()}),
        );
        bindings.bind("graph", json!(graph::base_url(env)));
        let d = env.deployer();
        bindings.bind(
            "deployer",
            json!({"object_id": d.object_id, "client_id": d.client_id}),
        );
        let mut secrets = Vec::new();
        match &d.auth {
            DeployerAuth::ClientSecret { secret, .. } => {
                secrets.push((secret.expose().to_string(), "client-secret"));
            }
            DeployerAuth::AccessToken(t) => {
                secrets.push((t.expose().to_string(), "deployer-token"));
            }
        }
        Self {
            env,
            scenario,
            trial,
            bindings,
            records: Vec::new(),
            created_groups: Vec::new(),
            deployer_token: None,
            secrets,
            hosts: BTreeMap::new(),
            grants_done: false,
            aliases: Vec::new(),
            fixture: None,
        }
    }

    async fn steps(&mut self) -> Verdict {
        let last_denied = self
            .scenario
            .steps
            .iter()
            .rposition(|s| s.denied_without_grant.is_some());
        let mut verdict = Verdict::Passed;
        for step in &self.scenario.steps {
            let location = self.scenario.file.location(step.span);
            let mut record = StepRecord {
                index: step.index,
                id: step.id.value.clone(),
                kind: step.kind.value.qualified(),
                location: location.clone(),
                status: StepStatus::Passed,
                exchanges: Vec::new(),
                primary: None,
                snapshot: step.snapshots(),
                duration: Duration::ZERO,
                propagation_wait: None,
                shared: None,
            };
            let skip = if !matches!(verdict, Verdict::Passed) {
                Some("an earlier step failed".to_string())
            } else if self.trial == Trial::WithoutGrant && step.phase() == Phase::Grant {
                Some("grant removed for the grant-necessity trial".to_string())
            } else if self.trial == Trial::WithoutGrant
                && last_denied.is_some_and(|l| step.index > l)
            {
                Some("after the last denied call of the grant-necessity trial".to_string())
            } else {
                None
            };
            if let Some(reason) = skip {
                record.status = StepStatus::Skipped(reason);
                self.records.push(record);
                continue;
            }
            if let Some(f) = self.fixture
                && let Some(value) = f.outputs.get(&step.id.value)
            {
                // Created once for several trials: take its outputs, send nothing.
                self.bindings.bind(step.id.value.clone(), value.clone());
                if let Some(host) = f.hosts.get(&step.id.value) {
                    self.hosts.insert(step.id.value.clone(), host.clone());
                }
                record.shared = Some(f.name.clone());
                self.records.push(record);
                continue;
            }
            let started = Instant::now();
            let result = self.step(step, &mut record).await;
            record.duration = started.elapsed();
            if let Err(failure) = result {
                record.status = StepStatus::Failed;
                verdict = Verdict::Failed(Failure {
                    step_index: step.index,
                    step_id: step.id.value.clone(),
                    step_kind: step.kind.value.qualified(),
                    location,
                    message: failure.0,
                    mismatches: failure.1,
                });
            }
            if step.phase() == Phase::Grant {
                self.grants_done = true;
            }
            self.records.push(record);
        }
        verdict
    }

    /// The expectation that applies to a step in this trial.
    fn expectation<'s>(&self, step: &'s Step) -> Option<&'s Expect> {
        match (self.trial, &step.denied_without_grant) {
            (Trial::WithoutGrant, Some(denied)) => Some(denied),
            _ => step.expect.as_ref(),
        }
    }

    async fn step(
        &mut self,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<(), (String, Vec<Mismatch>)> {
        let outcome = match &step.kind.value {
            StepKind::Provision(kind) => self.provision(*kind, step, record).await,
            StepKind::Grant(kind) => self.grant(*kind, step, record).await,
            StepKind::FetchToken(source) => self.fetch_token(*source, step, record).await,
            StepKind::Call { method, url } if method == crate::schema::SQL_METHOD => {
                self.sql_call(url, step, record).await
            }
            StepKind::Call { method, url } if method == crate::schema::BLOB_METHOD => {
                self.blob_sdk_call(url, step, record).await
            }
            StepKind::Call { method, url } => self.call(method, url, step, record).await,
        };
        let output = outcome.map_err(|e| (e.0, Vec::new()))?;
        let Some(primary) = record.primary.and_then(|i| record.exchanges.get(i)) else {
            return Err(("the step sent no request".into(), Vec::new()));
        };
        let Some(resp) = &primary.response else {
            return Err((
                primary
                    .error
                    .clone()
                    .unwrap_or_else(|| "no response".into()),
                Vec::new(),
            ));
        };
        let expect = self.expectation(step);
        // Fetch-token expectations may look at the decoded claims as well as the body.
        let view = output
            .as_ref()
            .filter(|_| step.phase() == Phase::FetchToken);
        let mismatches = check(expect, resp, &self.bindings, view);
        if !mismatches.is_empty() {
            let what = if self.trial == Trial::WithoutGrant && step.denied_without_grant.is_some() {
                "the call was not denied as expected without the grant"
            } else {
                "the response is not what the step expects"
            };
            return Err((what.into(), mismatches));
        }
        // Bind outputs: the step's own view, plus status/body for every kind.
        let mut value = output.unwrap_or_else(|| json!({}));
        if let Value::Object(map) = &mut value {
            map.entry("status").or_insert(json!(resp.status));
            map.entry("body")
                .or_insert(resp.json().unwrap_or(Value::Null));
            map.entry("text").or_insert(json!(resp.text()));
            let headers: serde_json::Map<String, Value> = resp
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
                .collect();
            map.entry("headers").or_insert(Value::Object(headers));
        }
        self.bindings.bind(step.id.value.clone(), value);
        Ok(())
    }

    // ---------------------------------------------------------------- transport

    async fn send(&mut self, route: Route<'_>, req: HttpRequest, record: &mut StepRecord) -> usize {
        let started = Instant::now();
        let route_name = match route {
            Route::Direct => "direct".to_string(),
            Route::InHost(h) => format!("in-host {h}"),
        };
        let result = self.env.send(route, req.clone()).await;
        let (response, error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        };
        record.exchanges.push(Exchange {
            route: route_name,
            request: req,
            response,
            error,
            duration: started.elapsed(),
        });
        record.exchanges.len() - 1
    }

    fn response(record: &StepRecord, i: usize) -> Result<&HttpResponse, StepError> {
        let ex = &record.exchanges[i];
        ex.response.as_ref().ok_or_else(|| {
            StepError(format!(
                "{} {}: {}",
                ex.request.method,
                ex.request.url,
                ex.error.clone().unwrap_or_default()
            ))
        })
    }

    async fn deployer_token(&mut self) -> Result<String, StepError> {
        if let Some(t) = &self.deployer_token {
            return Ok(t.clone());
        }
        let d = self.env.deployer().clone();
        let token = match &d.auth {
            DeployerAuth::AccessToken(t) => t.expose().to_string(),
            DeployerAuth::ClientSecret { client_id, secret } => {
                let ep = self.env.endpoints();
                let url = format!("{}/{}/oauth2/token", ep.login, ep.tenant_id);
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", secret.expose())
                    .append_pair("resource", "https://management.azure.com/")
                    .finish();
                let mut req = HttpRequest::new("POST", url.clone());
                req.set_header("Content-Type", "application/x-www-form-urlencoded");
                req.body = Some(form.into_bytes());
                let resp = self
                    .env
                    .send(Route::Direct, req)
                    .await
                    .map_err(|e| StepError(format!("deployer sign-in failed: {e}")))?;
                let body = resp.json().unwrap_or(Value::Null);
                match body.get("access_token").and_then(Value::as_str) {
                    Some(t) if resp.is_success() => t.to_string(),
                    _ => {
                        return Err(StepError(format!(
                            "deployer sign-in at {url} failed with {}: {}",
                            resp.status,
                            body.get("error_description")
                                .and_then(Value::as_str)
                                .unwrap_or("(no description)")
                        )));
                    }
                }
            }
        };
        self.secrets.push((token.clone(), "deployer-token"));
        self.bindings.bind(
            "deployer",
            json!({
                "object_id": d.object_id, "client_id": d.client_id, "access_token": token
            }),
        );
        self.deployer_token = Some(token.clone());
        Ok(token)
    }

    /// An ARM request as the deployer; follows long-running operations to the end.
    async fn arm(
        &mut self,
        method: &str,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
        record: &mut StepRecord,
    ) -> Result<usize, StepError> {
        let token = self.deployer_token().await?;
        if method == "PUT" {
            self.env
                .before_create(path)
                .map_err(|e| StepError(e.to_string()))?;
        }
        let ep = self.env.endpoints();
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version={api_version}", ep.arm);
        let mut req =
            HttpRequest::new(method, url).header("Authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req.json(b);
        }
        let i = self.send(Route::Direct, req, record).await;
        let resp = Self::response(record, i)?.clone();
        if resp.is_success() {
            self.follow_lro(&resp, &token, record).await?;
        }
        Ok(i)
    }

    async fn follow_lro(
        &mut self,
        resp: &HttpResponse,
        token: &str,
        record: &mut StepRecord,
    ) -> Result<(), StepError> {
        let async_op = resp.header("Azure-AsyncOperation").map(str::to_string);
        let location = resp
            .header("Location")
            .filter(|_| resp.status == 202)
            .map(str::to_string);
        let Some(url) = async_op.or(location) else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_mins(30);
        let mut wait = retry_after(resp);
        loop {
            tokio::time::sleep(wait.min(self.env.max_poll_interval())).await;
            let req = HttpRequest::new("GET", url.clone())
                .header("Authorization", format!("Bearer {token}"));
            let i = self.send(Route::Direct, req, record).await;
            let poll = Self::response(record, i)?.clone();
            let status = poll
                .json()
                .and_then(|b| b.get("status").and_then(Value::as_str).map(str::to_string));
            match (poll.status, status.as_deref()) {
                (202, _)
                | (
                    200,
                    Some(
                        "InProgress" | "Accepted" | "Running" | "Creating" | "Updating"
                        | "Deleting",
                    ),
                ) => {}
                (200 | 204, Some("Succeeded") | None) => return Ok(()),
                (_, Some(s)) => {
                    return Err(StepError(format!(
                        "long-running operation ended with status {s} ({})",
                        poll.text()
                    )));
                }
                (code, None) => return Err(StepError(format!("polling {url} returned {code}"))),
            }
            if Instant::now() > deadline {
                return Err(StepError(format!(
                    "long-running operation {url} did not finish in 30 minutes"
                )));
            }
            wait = retry_after(&poll);
        }
    }

    /// PUT a resource as the deployer and read it back (as the tools do after a create).
    /// `None` when the PUT was refused (its response is then the step's primary exchange);
    /// otherwise the GET body, which is the primary exchange.
    async fn put_and_read(
        &mut self,
        path: &str,
        api: &str,
        body: &Value,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let put = self.arm("PUT", path, api, Some(body), record).await?;
        if !Self::response(record, put)?.is_success() {
            record.primary = Some(put);
            return Ok(None);
        }
        let get = self.arm("GET", path, api, None, record).await?;
        record.primary = Some(get);
        Ok(Some(
            Self::response(record, get)?.json().unwrap_or(Value::Null),
        ))
    }

    fn str_field(&self, step: &Step, name: &str) -> Result<Option<String>, StepError> {
        step.fields
            .template(name)
            .map(|t| self.bindings.render(t))
            .transpose()
            .map_err(Into::into)
    }

    fn req_field(&self, step: &Step, name: &str) -> Result<String, StepError> {
        self.str_field(step, name)?
            .ok_or_else(|| StepError(format!("field `{name}` is required")))
    }

    fn list_field(&self, step: &Step, name: &str) -> Result<Vec<String>, StepError> {
        step.fields
            .templates(name)
            .into_iter()
            .map(|t| self.bindings.render(t).map_err(Into::into))
            .collect()
    }

    // ---------------------------------------------------------------- provision

    async fn provision(
        &mut self,
        kind: ProvisionKind,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let ep = self.env.endpoints().clone();
        let sub = format!("/subscriptions/{}", ep.subscription_id);
        let api = self.str_field(step, "api_version")?;
        let location = self
            .str_field(step, "location")?
            .unwrap_or_else(|| ep.location.clone());
        match kind {
            ProvisionKind::ResourceGroup => {
                let name = self.req_field(step, "name")?;
                let path = format!("{sub}/resourcegroups/{name}");
                self.created_groups.push(name.clone());
                let mut body = json!({"location": location});
                let tags = self.env.resource_group_tags();
                if !tags.is_empty() {
                    body["tags"] = tags
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect::<serde_json::Map<_, _>>()
                        .into();
                }
                let i = self
                    .arm(
                        "PUT",
                        &path,
                        api.as_deref().unwrap_or(RG_API),
                        Some(&body),
                        record,
                    )
                    .await?;
                record.primary = Some(i);
                let body = Self::response(record, i)?.json().unwrap_or(Value::Null);
                Ok(Some(json!({
                    "id": body.get("id").cloned().unwrap_or(json!(format!("{sub}/resourceGroups/{name}"))),
                    "name": name, "location": location,
                })))
            }
            ProvisionKind::UserAssignedIdentity => {
                let name = self.req_field(step, "name")?;
                let rg = self.req_field(step, "resource_group")?;
                let path = format!(
                    "{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
                );
                let i = self
                    .arm(
                        "PUT",
                        &path,
                        api.as_deref().unwrap_or(UAI_API),
                        Some(&json!({"location": location})),
                        record,
                    )
                    .await?;
                record.primary = Some(i);
                let body = Self::response(record, i)?.json().unwrap_or(Value::Null);
                let p = |k: &str| {
                    body.pointer(&format!("/properties/{k}"))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                Ok(Some(json!({
                    "id": body.get("id").cloned().unwrap_or(json!(path)), "name": name,
                    "client_id": p("clientId"), "principal_id": p("principalId"), "tenant_id": p("tenantId"),
                })))
            }
            ProvisionKind::Vm | ProvisionKind::Vmss => {
                let is_vm = kind == ProvisionKind::Vm;
                let name = self
                    .str_field(step, "name")?
                    .unwrap_or_else(|| self.scenario.host.name.clone());
                let rg = self.req_field(step, "resource_group")?;
                let system = step
                    .fields
                    .bool("system_assigned")
                    .unwrap_or(self.scenario.host.system_assigned);
                let users = self.list_field(step, "user_assigned")?;
                let api = api.unwrap_or_else(|| VM_API.to_string());
                let ty = if is_vm {
                    "virtualMachines"
                } else {
                    "virtualMachineScaleSets"
                };
                let path =
                    format!("{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/{ty}/{name}");
                let password = random_password();
                self.secrets.push((password.clone(), "password"));
                let body = compute_body(
                    is_vm,
                    &name,
                    &location,
                    self.scenario.host.os,
                    &identity_body(&api, system, &users, &[]),
                    &format!("{sub}/resourceGroups/{rg}"),
                    &password,
                );
                let Some(body) = self.put_and_read(&path, &api, &body, record).await? else {
                    return Ok(None);
                };
                self.hosts.insert(step.id.value.clone(), path.clone());
                Ok(Some(identity_outputs(&path, &name, &body)))
            }
            ProvisionKind::VmIdentity | ProvisionKind::VmssIdentity => {
                let is_vm = kind == ProvisionKind::VmIdentity;
                let name = self.req_field(step, if is_vm { "vm" } else { "vmss" })?;
                let rg = self.req_field(step, "resource_group")?;
                let api = api.unwrap_or_else(|| VM_API.to_string());
                let ty = if is_vm {
                    "virtualMachines"
                } else {
                    "virtualMachineScaleSets"
                };
                let path =
                    format!("{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/{ty}/{name}");
                // As the REST how-to says: read the current identities first, because an
                // update that leaves out assigned identities would remove them.
                let get = self.arm("GET", &path, &api, None, record).await?;
                let current = Self::response(record, get)?.json().unwrap_or(Value::Null);
                let (had_system, had_users) = current_identity(&current);
                let system = step.fields.bool("system_assigned").unwrap_or(had_system);
                let assign = self.list_field(step, "assign")?;
                let remove = self.list_field(step, "remove")?;
                let mut users: Vec<String> = had_users
                    .into_iter()
                    .filter(|u| !remove.iter().any(|r| r.eq_ignore_ascii_case(u)))
                    .collect();
                for a in &assign {
                    if !users.iter().any(|u| u.eq_ignore_ascii_case(a)) {
                        users.push(a.clone());
                    }
                }
                let identity = identity_body(&api, system, &users, &remove);
                let patch = self
                    .arm(
                        "PATCH",
                        &path,
                        &api,
                        Some(&json!({"identity": identity})),
                        record,
                    )
                    .await?;
                if !Self::response(record, patch)?.is_success() {
                    record.primary = Some(patch);
                    return Ok(None);
                }
                let get = self.arm("GET", &path, &api, None, record).await?;
                record.primary = Some(get);
                let body = Self::response(record, get)?.json().unwrap_or(Value::Null);
                self.hosts.insert(step.id.value.clone(), path.clone());
                Ok(Some(identity_outputs(&path, &name, &body)))
            }
            ProvisionKind::AppService => {
                let name = self
                    .str_field(step, "name")?
                    .unwrap_or_else(|| self.scenario.host.name.clone());
                let rg = self.req_field(step, "resource_group")?;
                let system = step
                    .fields
                    .bool("system_assigned")
                    .unwrap_or(self.scenario.host.system_assigned);
                let users = self.list_field(step, "user_assigned")?;
                let api = api.unwrap_or_else(|| WEB_API.to_string());
                let path =
                    format!("{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}");
                let body = json!({"location": location, "kind": "app", "identity": identity_body(&api, system, &users, &[]), "properties": {}});
                let Some(body) = self.put_and_read(&path, &api, &body, record).await? else {
                    return Ok(None);
                };
                self.hosts.insert(step.id.value.clone(), path.clone());
                Ok(Some(identity_outputs(&path, &name, &body)))
            }
            ProvisionKind::KeyVault
            | ProvisionKind::KeyVaultSecret
            | ProvisionKind::CosmosAccount => self.provision_kvcosmos(kind, step, record).await,
            ProvisionKind::SqlServer
            | ProvisionKind::SqlDatabase
            | ProvisionKind::SqlEntraAdmin => self.provision_sql(kind, step, record).await,
            ProvisionKind::StorageAccount => {
                let name = self.req_field(step, "name")?;
                let rg = self.req_field(step, "resource_group")?;
                let kind = self
                    .str_field(step, "kind")?
                    .unwrap_or_else(|| "StorageV2".into());
                let sku = self
                    .str_field(step, "sku")?
                    .unwrap_or_else(|| "Standard_LRS".into());
                let path = format!(
                    "{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"
                );
                let api = api.unwrap_or_else(|| STORAGE_API.into());
                let body = json!({"location": location, "kind": kind, "sku": {"name": sku}});
                if self
                    .put_and_read(&path, &api, &body, record)
                    .await?
                    .is_none()
                {
                    return Ok(None);
                }
                Ok(Some(json!({"id": path, "name": name})))
            }
            ProvisionKind::DatalakeStore => self.datalake_store(step, record).await,
        }
    }

    // ---------------------------------------------------------------- grant

    async fn grant(
        &mut self,
        kind: GrantKind,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        match kind {
            GrantKind::KeyVaultAccessPolicy => self.grant_access_policy(step, record).await,
            GrantKind::RoleAssignment => {
                let role = self.req_field(step, "role")?;
                let principal = self.req_field(step, "principal")?;
                let scope = self.req_field(step, "scope")?;
                let api = self
                    .str_field(step, "api_version")?
                    .unwrap_or_else(|| AUTHZ_API.into());
                let principal_type = self
                    .str_field(step, "principal_type")?
                    .unwrap_or_else(|| "ServicePrincipal".into());
                // As `az role assignment create --role Reader` does: look the role up by name.
                let filter = percent_encoding::utf8_percent_encode(
                    &format!("roleName eq '{role}'"),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string();
                let lookup = self.arm("GET", &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter={filter}"), &api, None, record).await?;
                let defs = Self::response(record, lookup)?
                    .json()
                    .unwrap_or(Value::Null);
                let role_definition_id = defs
                    .pointer("/value/0/id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        roles::find_role(&role).map(|r| format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}", self.env.endpoints().subscription_id, r.id))
                    })
                    .ok_or_else(|| StepError(format!("role `{role}` was not found at scope {scope}")))?;
                let name = uuid::Uuid::new_v4().to_string();
                let mut properties =
                    json!({"roleDefinitionId": role_definition_id, "principalId": principal});
                if api.as_str() >= "2018-09-01-preview" {
                    properties["principalType"] = json!(principal_type);
                }
                let path =
                    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
                let put = self
                    .arm(
                        "PUT",
                        &path,
                        &api,
                        Some(&json!({"properties": properties})),
                        record,
                    )
                    .await?;
                record.primary = Some(put);
                let body = Self::response(record, put)?.json().unwrap_or(Value::Null);
                Ok(Some(json!({
                    "id": body.get("id").cloned().unwrap_or(json!(path)),
                    "name": name,
                    "role_definition_id": role_definition_id,
                })))
            }
            GrantKind::AdlsAcl => self.adls_acl(step, record).await,
            GrantKind::GraphAppRole => self.graph_app_role(step, record).await,
            GrantKind::GraphGroupMember => self.graph_group_member(step, record).await,
            GrantKind::SqlContainedUser => self.grant_sql(kind, step, record).await,
        }
    }

    // ---------------------------------------------------------------- fetch token

    fn host_id(&self, step: &Step) -> Result<String, StepError> {
        if let Some(h) = step.fields.template("host") {
            let id = self.bindings.render(h)?;
            return self
                .hosts
                .get(&id)
                .cloned()
                .ok_or_else(|| StepError(format!("`host = \"{id}\"` does not name a provision step that created a VM, scale set or site")));
        }
        // The host is the VM/VMSS provisioned with the host's name (or the only one).
        let by_name = self.scenario.steps.iter().find(|s| {
            self.hosts.contains_key(&s.id.value)
                && self
                    .bindings
                    .get_root(&s.id.value)
                    .and_then(|v| v.get("name"))
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&self.scenario.host.name))
        });
        by_name
            .and_then(|s| self.hosts.get(&s.id.value).cloned())
            .or_else(|| self.hosts.values().next().cloned())
            .ok_or_else(|| {
                StepError("no host has been provisioned before this fetch_token step".into())
            })
    }

    async fn fetch_token(
        &mut self,
        source: TokenSource,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let host = self.host_id(step)?;
        let resource = self.req_field(step, "resource")?;
        let omit: Vec<String> = self
            .list_field(step, "omit")?
            .into_iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let encode = step.fields.bool("encode_resource").unwrap_or(false);
        let default_api = match source {
            TokenSource::Imds => Some("2018-02-01"),
            TokenSource::AppService => Some("2019-08-01"),
            TokenSource::Extension => None,
        };
        let api = self
            .str_field(step, "api_version")?
            .or(default_api.map(str::to_string));
        let base = match source {
            TokenSource::Imds => IMDS_TOKEN_URL.to_string(),
            TokenSource::Extension => EXTENSION_TOKEN_URL.to_string(),
            TokenSource::AppService => self
                .env
                .host_environment(&host)
                .get("IDENTITY_ENDPOINT")
                .cloned()
                .ok_or_else(|| StepError(format!("host {host} has no IDENTITY_ENDPOINT (is it an App Service with an identity?)")))?,
        };
        if source == TokenSource::AppService {
            // A loopback URL with a random port on App Service too: name it in transcripts.
            self.aliases
                .push(("IDENTITY_ENDPOINT".into(), base.clone()));
        }
        let mut query = Vec::new();
        if let Some(api) = api.filter(|_| !omit.iter().any(|o| o == "api-version")) {
            query.push(format!("api-version={api}"));
        }
        if !omit.iter().any(|o| o == "resource") {
            let r = if encode {
                percent_encoding::utf8_percent_encode(&resource, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            } else {
                resource.clone()
            };
            query.push(format!("resource={r}"));
        }
        let principal_param = if source == TokenSource::AppService {
            "principal_id"
        } else {
            "object_id"
        };
        for (field, param) in [
            ("client_id", "client_id"),
            ("object_id", principal_param),
            ("mi_res_id", "mi_res_id"),
        ] {
            if let Some(v) = self.str_field(step, field)? {
                query.push(format!("{param}={v}"));
            }
        }
        let url = if query.is_empty() {
            base
        } else {
            format!("{base}?{}", query.join("&"))
        };
        let mut req = HttpRequest::new("GET", url);
        match source {
            TokenSource::Imds | TokenSource::Extension => req.set_header("Metadata", "true"),
            TokenSource::AppService => {
                if let Some(h) = self.env.host_environment(&host).get("IDENTITY_HEADER") {
                    self.secrets.push((h.clone(), "identity-header"));
                    req.set_header("X-IDENTITY-HEADER", h.clone());
                }
            }
        }
        for (name, value) in step.fields.template_table("headers") {
            req.set_header(name, self.bindings.render(value)?);
        }
        for o in &omit {
            if !matches!(o.as_str(), "api-version" | "resource") {
                req.remove_header(o);
            }
        }
        let i = self.send(Route::InHost(&host), req, record).await;
        record.primary = Some(i);
        let resp = Self::response(record, i)?;
        let mut body = resp.json().unwrap_or(Value::Null);
        if let Some(token) = body
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            self.secrets.push((token.clone(), "access-token"));
            if let Value::Object(map) = &mut body {
                map.insert(
                    "claims".into(),
                    decode_claims(&token).unwrap_or(Value::Null),
                );
            }
        }
        Ok(Some(body))
    }

    // ---------------------------------------------------------------- call

    async fn call(
        &mut self,
        method: &str,
        url: &crate::model::Template,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let url = self.bindings.render(url)?;
        let mut req = HttpRequest::new(method, url);
        if step.fields.bool("as_deployer") == Some(true) {
            let t = self.deployer_token().await?;
            req.set_header("Authorization", format!("Bearer {t}"));
        }
        if let Some(resource) = self.str_field(step, "as_deployer_for")? {
            let t = self.deployer_token_for(&resource).await?;
            req.set_header("Authorization", format!("Bearer {t}"));
        }
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
                })?
                .to_string();
            req.set_header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in step.fields.template_table("headers") {
            req.set_header(name, self.bindings.render(value)?);
        }
        if let Some(body) = step.fields.get("body") {
            match &body.value {
                crate::model::FieldValue::Str(t) => {
                    req.body = Some(self.bindings.render(t)?.into_bytes());
                }
                other => {
                    let json = self.bindings.render_json(other)?;
                    req.body = Some(json.to_string().into_bytes());
                    if !req
                        .headers
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                    {
                        req.set_header("Content-Type", "application/json");
                    }
                }
            }
        }
        let sign_table = step.fields.template_table("sign");
        if !sign_table.is_empty() {
            let mut inputs = std::collections::BTreeMap::new();
            for (k, t) in sign_table {
                let v = self.bindings.render(t)?;
                if matches!(k, "key" | "account_key" | "master_key") {
                    self.secrets.push((v.clone(), "key"));
                }
                inputs.insert(k.to_string(), v);
            }
            crate::sign::apply(&inputs, &mut req).map_err(|e| StepError(e.to_string()))?;
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
            let i = self.send(Route::Direct, req.clone(), record).await;
            record.primary = Some(i);
            let denied = record.exchanges[i]
                .response
                .as_ref()
                .is_some_and(|r| matches!(r.status, 401 | 403));
            if !(may_wait && denied && started.elapsed() + wait < budget) {
                if may_wait && started.elapsed() > Duration::ZERO && record.exchanges.len() > 1 {
                    record.propagation_wait = Some(started.elapsed());
                }
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.env.max_poll_interval());
        }
        Ok(None)
    }

    // ---------------------------------------------------------------- teardown

    async fn teardown(&mut self) -> Option<String> {
        let mut errors = Vec::new();
        let groups: Vec<String> = self.created_groups.drain(..).rev().collect();
        if !groups.is_empty() {
            let mut record = StepRecord {
                index: usize::MAX,
                id: "teardown".into(),
                kind: "teardown".into(),
                location: self.scenario.file.path.display().to_string(),
                status: StepStatus::Passed,
                exchanges: vec![],
                primary: None,
                snapshot: false,
                duration: Duration::ZERO,
                propagation_wait: None,
                shared: None,
            };
            let sub = format!("/subscriptions/{}", self.env.endpoints().subscription_id);
            for rg in groups {
                match self
                    .arm(
                        "DELETE",
                        &format!("{sub}/resourcegroups/{rg}"),
                        RG_API,
                        None,
                        &mut record,
                    )
                    .await
                {
                    Ok(i) => {
                        let status = record.exchanges[i]
                            .response
                            .as_ref()
                            .map_or(0, |r| r.status);
                        if !matches!(status, 200 | 202 | 204 | 404) {
                            errors.push(format!(
                                "DELETE resource group {rg}: {status} {}",
                                record.exchanges[i]
                                    .response
                                    .as_ref()
                                    .and_then(error_code)
                                    .unwrap_or_default()
                            ));
                        }
                    }
                    Err(e) => errors.push(format!("DELETE resource group {rg}: {}", e.0)),
                }
            }
            self.records.push(record);
        }
        if let Err(e) = self.env.teardown().await {
            errors.push(e.to_string());
        }
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    // ---------------------------------------------------------------- transcript

    /// (snapshot text, full transcript text), both redacted.
    fn render(&self) -> (String, String) {
        // Two redactors: the snapshot's GUID numbering must depend only on what the snapshot
        // shows, not on provisioning responses that differ between backends.
        let mut aliases = self.env.aliases();
        aliases.extend(self.aliases.iter().cloned());
        let mut redactor = Redactor::with_aliases(self.env.endpoints(), &aliases);
        let mut snap_redactor = Redactor::with_aliases(self.env.endpoints(), &aliases);
        for (s, label) in &self.secrets {
            redactor.add_secret(s, label);
            snap_redactor.add_secret(s, label);
        }
        if let Some(f) = self.fixture {
            // The fixture's names carry its run id: it reads as this run's.
            redactor.add_run_id(f.run_id());
            snap_redactor.add_run_id(f.run_id());
            for (s, label) in &f.secrets {
                redactor.add_secret(s, label);
                snap_redactor.add_secret(s, label);
            }
        }
        let mut snapshot = String::new();
        let mut full = String::new();
        for rec in &self.records {
            let header = format!(
                "step {} `{}` {}{}",
                if rec.index == usize::MAX {
                    "-".to_string()
                } else {
                    (rec.index + 1).to_string()
                },
                rec.id,
                rec.kind,
                match (&rec.status, &rec.shared) {
                    (StepStatus::Skipped(why), _) => format!(" (skipped: {why})"),
                    (StepStatus::Failed, _) => " (FAILED)".to_string(),
                    (StepStatus::Passed, Some(f)) => format!(" (shared fixture {f})"),
                    (StepStatus::Passed, None) => String::new(),
                }
            );
            let _ = writeln!(full, "{header}");
            for ex in &rec.exchanges {
                full.push_str(&render_exchange(&mut redactor, ex, true));
            }
            if rec.snapshot && !matches!(rec.status, StepStatus::Skipped(_)) {
                let _ = writeln!(snapshot, "{header}");
                if let Some(p) = rec.primary.and_then(|i| rec.exchanges.get(i)) {
                    snapshot.push_str(&render_exchange(&mut snap_redactor, p, false));
                }
            }
        }
        (snapshot, full)
    }
}

/// Request headers worth showing in a snapshot (others vary by client and backend).
const SNAPSHOT_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "metadata",
    "x-identity-header",
    "x-forwarded-for",
    "content-type",
    "x-ms-version",
    "x-ms-date",
    "x-ms-blob-type",
    "x-ms-documentdb-isquery",
];
const SNAPSHOT_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "www-authenticate",
    "location",
    "retry-after",
];

fn render_exchange(redactor: &mut Redactor, ex: &Exchange, all_headers: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  > {} {}",
        ex.request.method,
        redactor.text(&ex.request.url)
    );
    let mut headers: Vec<&(String, String)> = ex.request.headers.iter().collect();
    headers.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    for (n, v) in headers {
        if all_headers || SNAPSHOT_REQUEST_HEADERS.contains(&n.to_ascii_lowercase().as_str()) {
            let _ = writeln!(out, "  > {n}: {}", redactor.text(v));
        }
    }
    if let Some(body) = &ex.request.body {
        let _ = writeln!(out, "  > {}", indent(&render_body(redactor, body), "  > "));
    }
    match (&ex.response, &ex.error) {
        (Some(r), _) => {
            let _ = writeln!(out, "  < {}", r.status);
            let mut headers: Vec<&(String, String)> = r.headers.iter().collect();
            headers.sort_by_key(|(n, _)| n.to_ascii_lowercase());
            for (n, v) in headers {
                let lower = n.to_ascii_lowercase();
                if SNAPSHOT_RESPONSE_HEADERS.contains(&lower.as_str())
                    || (all_headers && lower.starts_with("x-ms-error"))
                {
                    let _ = writeln!(out, "  < {lower}: {}", redactor.text(v));
                }
            }
            if !r.body.is_empty() {
                let _ = writeln!(
                    out,
                    "  < {}",
                    indent(&render_body(redactor, &r.body), "  < ")
                );
            }
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "  ! {}", redactor.text(e));
        }
        (None, None) => {}
    }
    out
}

fn render_body(redactor: &mut Redactor, body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let red = redactor.json(&json);
        serde_json::to_string_pretty(&red).unwrap_or_default()
    } else {
        let text = String::from_utf8_lossy(body);
        // Form bodies (token requests) hide their secrets through the registered secrets.
        redactor.text(&text)
    }
}

fn indent(s: &str, prefix: &str) -> String {
    s.lines().collect::<Vec<_>>().join(&format!("\n{prefix}"))
}

fn retry_after(resp: &HttpResponse) -> Duration {
    resp.header("Retry-After")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_millis(200), Duration::from_secs)
}

fn decode_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let mut claims: Value = serde_json::from_slice(&bytes).ok()?;
    // Claims are safe to bind, but never the signature.
    if let Value::Object(m) = &mut claims {
        m.remove("signature");
    }
    Some(claims)
}

fn random_password() -> String {
    // Meets Azure's complexity rules: upper, lower, digit, symbol.
    format!("Mic!{}a9", uuid::Uuid::new_v4().simple())
}

/// The `identity` block of a VM/VMSS body in the shape of the api-version: the
/// `identityIds` array before 2018-06-01, the `userAssignedIdentities` dictionary after.
/// `removed` ids are sent as `null` entries in the dictionary form (as the REST how-to does).
pub fn identity_body(
    api_version: &str,
    system: bool,
    users: &[String],
    removed: &[String],
) -> Value {
    let ty = match (system, users.is_empty()) {
        (true, false) => "SystemAssigned, UserAssigned",
        (true, true) => "SystemAssigned",
        (false, false) => "UserAssigned",
        (false, true) => "None",
    };
    if users.is_empty() {
        return json!({"type": ty});
    }
    if api_version < "2018-06-01" {
        json!({"type": ty, "identityIds": users})
    } else {
        let mut dict = serde_json::Map::new();
        for u in users {
            dict.insert(u.clone(), json!({}));
        }
        for r in removed {
            dict.insert(r.clone(), Value::Null);
        }
        json!({"type": ty, "userAssignedIdentities": dict})
    }
}

/// (system-assigned enabled, user-assigned ids) from a VM/VMSS GET body, either shape.
fn current_identity(body: &Value) -> (bool, Vec<String>) {
    let identity = body.get("identity");
    let ty = identity
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("None");
    let system = ty.to_ascii_lowercase().contains("systemassigned");
    let mut users: Vec<String> = identity
        .and_then(|i| i.get("userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(ids) = identity
        .and_then(|i| i.get("identityIds"))
        .and_then(Value::as_array)
    {
        users.extend(ids.iter().filter_map(Value::as_str).map(str::to_string));
    }
    (system, users)
}

/// Outputs of a VM/VMSS step: ids plus `identity.{principal_id, tenant_id, type}` and
/// `identity.user_assigned.<identity name>.{client_id, principal_id}`.
fn identity_outputs(path: &str, name: &str, body: &Value) -> Value {
    let identity = body.get("identity").cloned().unwrap_or(Value::Null);
    let mut users = serde_json::Map::new();
    if let Some(map) = identity
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
    {
        for (id, v) in map {
            let short = id.rsplit('/').next().unwrap_or(id).to_string();
            users.insert(
                short,
                json!({
                    "id": id,
                    "client_id": v.get("clientId").cloned().unwrap_or(Value::Null),
                    "principal_id": v.get("principalId").cloned().unwrap_or(Value::Null),
                }),
            );
        }
    }
    json!({
        "id": body.get("id").cloned().unwrap_or(json!(path)),
        "name": name,
        "identity": {
            "type": identity.get("type").cloned().unwrap_or(json!("None")),
            "principal_id": identity.get("principalId").cloned().unwrap_or(Value::Null),
            "tenant_id": identity.get("tenantId").cloned().unwrap_or(Value::Null),
            "user_assigned": users,
        },
    })
}

/// The body the REST how-to sends to create a VM (004 L4821-4878) or a scale set
/// (L6584-6644), with the identity block of the scenario.
fn compute_body(
    is_vm: bool,
    name: &str,
    location: &str,
    os: crate::model::Os,
    identity: &Value,
    rg_id: &str,
    password: &str,
) -> Value {
    let image = match os {
        crate::model::Os::Windows => {
            json!({"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2019-Datacenter", "version": "latest"})
        }
        crate::model::Os::Linux => {
            json!({"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"})
        }
    };
    let storage = json!({
        "imageReference": image,
        "osDisk": {"caching": "ReadWrite", "managedDisk": {"storageAccountType": "Standard_LRS"}, "createOption": "FromImage"},
    });
    if is_vm {
        json!({
            "location": location,
            "identity": identity.clone(),
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_B1s"},
                "storageProfile": storage,
                "osProfile": {"adminUsername": "azureuser", "computerName": name, "adminPassword": password},
                "networkProfile": {"networkInterfaces": [{"id": format!("{rg_id}/providers/Microsoft.Network/networkInterfaces/{name}-nic"), "properties": {"primary": true}}]},
            },
        })
    } else {
        json!({
            "location": location,
            "identity": identity.clone(),
            "sku": {"name": "Standard_B1s", "tier": "Standard", "capacity": 1},
            "properties": {
                "overprovision": false,
                "upgradePolicy": {"mode": "Manual"},
                "virtualMachineProfile": {
                    "storageProfile": storage,
                    "osProfile": {"computerNamePrefix": name, "adminUsername": "azureuser", "adminPassword": password},
                    "networkProfile": {"networkInterfaceConfigurations": [{"name": name, "properties": {"primary": true, "ipConfigurations": [{"name": name, "properties": {"subnet": {"id": format!("{rg_id}/providers/Microsoft.Network/virtualNetworks/{name}-vnet/subnets/default")}}}]}}]},
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::system_only("2018-06-01", true, &[], json!({"type": "SystemAssigned"}))]
    #[case::none("2018-06-01", false, &[], json!({"type": "None"}))]
    #[case::array_form("2017-12-01", false, &["/x/ID1"], json!({"type": "UserAssigned", "identityIds": ["/x/ID1"]}))]
    #[case::dict_form("2018-06-01", true, &["/x/ID1"], json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/x/ID1": {}}}))]
    fn identity_shapes(
        #[case] api: &str,
        #[case] system: bool,
        #[case] users: &[&str],
        #[case] want: Value,
    ) {
        let users: Vec<String> = users.iter().map(|s| (*s).to_string()).collect();
        assert_eq!(identity_body(api, system, &users, &[]), want);
    }

    #[test]
    fn removal_in_dictionary_form_sends_null() {
        let b = identity_body("2018-06-01", true, &["/x/ID1".into()], &["/x/ID2".into()]);
        assert_eq!(b["userAssignedIdentities"]["/x/ID2"], Value::Null);
        assert_eq!(b["userAssignedIdentities"]["/x/ID1"], json!({}));
    }

    #[test]
    fn current_identity_reads_both_shapes() {
        let (s, u) = current_identity(
            &json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/a": {}}}}),
        );
        assert!(s);
        assert_eq!(u, vec!["/a".to_string()]);
        let (s, u) =
            current_identity(&json!({"identity": {"type": "userAssigned", "identityIds": ["/b"]}}));
        assert!(!s);
        assert_eq!(u, vec!["/b".to_string()]);
    }
}
