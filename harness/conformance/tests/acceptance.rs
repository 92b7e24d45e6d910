//! Acceptance properties that hold across the whole scenario suite: the grant is what makes
//! each positive scenario pass, the audience matters, teardown always runs, and nothing
//! secret reaches a transcript, snapshot or report.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mic_backends::FakeBackend;
use mic_backends::fake::FakeEnvironment;
use mic_core::backend::{Backend, BackendError, Environment};
use mic_core::driver::{self, Trial, Verdict};
use mic_core::model::{BackendKind, FieldValue, Phase, Scenario, StepKind, Template};
use mic_core::runner::{RunReport, TrialResult};
use mic_core::{catalog, report};
use mic_fake::{FakeCloud, FakeConfig};
use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn scenarios() -> Vec<Scenario> {
    let root = root();
    let cat = catalog::load_dir(&root.join("scenarios"), &root);
    assert!(cat.diagnostics.is_empty(), "scenario files have problems");
    cat.scenarios
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Positive scenarios: they grant access and some call that succeeds with the grant must be
/// denied without it.
fn granting(s: &Scenario) -> bool {
    s.has_grants()
        && s.steps.iter().any(|st| {
            st.denied_without_grant.is_some()
                && st.expect.as_ref().is_none_or(|e| {
                    e.code.is_none()
                        && e.status
                            .as_ref()
                            .is_none_or(|x| (200..300).contains(&x.value))
                })
        })
}

#[test]
fn removing_the_grant_steps_makes_every_positive_scenario_fail_with_the_services_denial() {
    let rt = rt();
    let backend = FakeBackend::default();
    let mut checked = 0;
    let mut arm_checked = 0;
    for mut s in scenarios().into_iter().filter(granting) {
        // (status, error code) of each expected denial; either may be unspecified.
        let denials: Vec<(Option<u16>, Option<String>)> = s
            .steps
            .iter()
            .filter_map(|st| st.denied_without_grant.as_ref())
            .map(|d| {
                (
                    d.status.as_ref().map(|x| x.value),
                    d.code.as_ref().map(|c| c.value.raw.clone()),
                )
            })
            .collect();
        s.steps.retain(|st| st.phase() != Phase::Grant);
        let out = rt.block_on(driver::run(&backend, &s, Trial::Normal));
        let Verdict::Failed(f) = &out.verdict else {
            panic!("{} passed without its grant", s.id.value)
        };
        // What the failing step got back.
        let failed = out
            .steps
            .iter()
            .find(|r| r.index == f.step_index)
            .expect("failed step recorded");
        let resp = failed
            .primary
            .and_then(|i| failed.exchanges[i].response.clone())
            .expect("the failing step got a response");
        let (got_status, got_code) = (resp.status, mic_core::expect::error_code(&resp));
        let status = format!("{got_status} {}", got_code.clone().unwrap_or_default());
        assert!(
            denials.iter().any(|(st, code)| {
                st.is_none_or(|x| x == got_status)
                    && code.as_ref().is_none_or(|c| got_code.as_ref() == Some(c))
            }),
            "{}: expected one of {denials:?}, got {status} ({})",
            s.id.value,
            f.message
        );
        if status.contains("AuthorizationFailed") {
            // ARM names the missing action in its message.
            assert!(
                out.transcript
                    .contains("does not have authorization to perform action '"),
                "{}: the 403 does not name the missing action:\n{}",
                s.id.value,
                out.transcript
            );
            arm_checked += 1;
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} positive scenarios found");
    assert!(arm_checked >= 8, "only {arm_checked} ARM denials checked");
}

#[test]
fn a_token_for_another_audience_is_refused_by_arm_with_401() {
    let rt = rt();
    let backend = FakeBackend::default();
    let mut checked = 0;
    for mut s in scenarios()
        .into_iter()
        .filter(|s| s.area() == "arm" && granting(s))
    {
        for st in &mut s.steps {
            if matches!(st.kind.value, StepKind::FetchToken(_)) {
                let f = st
                    .fields
                    .map
                    .get_mut("resource")
                    .expect("fetch_token has a resource");
                f.value.value = FieldValue::Str(Template::literal("https://vault.azure.net"));
                st.expect = None;
            }
        }
        let out = rt.block_on(driver::run(&backend, &s, Trial::Normal));
        let Verdict::Failed(f) = &out.verdict else {
            panic!("{} passed with a Key Vault token", s.id.value)
        };
        let status = f
            .mismatches
            .iter()
            .find(|m| m.what == "status")
            .map(|m| m.actual.clone())
            .unwrap_or_default();
        assert_eq!(
            status, "401 InvalidAuthenticationTokenAudience",
            "{}",
            s.id.value
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} ARM scenarios checked");
}

/// A backend that keeps a handle on each fake cloud so the test can look inside afterwards.
#[derive(Default)]
struct Inspecting {
    clouds: Mutex<Vec<FakeCloud>>,
}

#[async_trait]
impl Backend for Inspecting {
    fn kind(&self) -> BackendKind {
        BackendKind::Fake
    }
    async fn environment(&self, _s: &Scenario) -> Result<Box<dyn Environment>, BackendError> {
        let cloud = FakeCloud::start(FakeConfig::default())
            .await
            .map_err(|e| BackendError::Start(e.to_string()))?;
        self.clouds.lock().unwrap().push(cloud.clone());
        Ok(Box::new(KeepAlive(FakeEnvironment::new(
            cloud,
            Duration::default(),
            Duration::default(),
        )?)))
    }
}

/// Like the fake environment, but teardown does not stop the servers (so the test can look).
struct KeepAlive(FakeEnvironment);

#[async_trait]
impl Environment for KeepAlive {
    fn endpoints(&self) -> &mic_core::backend::Endpoints {
        self.0.endpoints()
    }
    fn deployer(&self) -> &mic_core::backend::Deployer {
        self.0.deployer()
    }
    async fn send(
        &self,
        route: mic_core::backend::Route<'_>,
        req: mic_core::backend::HttpRequest,
    ) -> Result<mic_core::backend::HttpResponse, BackendError> {
        self.0.send(route, req).await
    }
    async fn teardown(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[test]
fn teardown_removes_every_resource_group_even_after_a_failure() {
    let rt = rt();
    let backend = Inspecting::default();
    for mut s in scenarios().into_iter().filter(granting).take(4) {
        // Break the scenario in its last step: the run fails, teardown must still clean up.
        let last = s.steps.last_mut().unwrap();
        last.expect = Some(mic_core::model::Expect {
            status: Some(mic_core::model::Spanned::new(
                418,
                mic_core::model::Span::default(),
            )),
            ..Default::default()
        });
        let out = rt.block_on(driver::run(&backend, &s, Trial::Normal));
        assert!(
            matches!(out.verdict, Verdict::Failed(_)),
            "{} should have failed",
            s.id.value
        );
        assert!(out.teardown_error.is_none(), "{:?}", out.teardown_error);
    }
    let clouds = backend.clouds.lock().unwrap();
    assert_eq!(clouds.len(), 4);
    for c in clouds.iter() {
        assert_eq!(
            c.resource_group_names(),
            Vec::<String>::new(),
            "a resource group survived teardown"
        );
    }
}

#[test]
fn no_secret_reaches_a_transcript_snapshot_or_report() {
    let rt = rt();
    let jwt =
        Regex::new(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}").unwrap();
    // Account and master keys are padded base64 (88 characters for 64 bytes); SAS signatures
    // travel URL-encoded in `sig=`.
    let b64_key = Regex::new(r"[A-Za-z0-9+/]{40,}={1,2}").unwrap();
    let sas_sig = Regex::new(r"sig=[A-Za-z0-9%+/]{20,}").unwrap();
    let secret_param = Regex::new(r"client_secret=[^\[&\s]").unwrap();
    let backend: Arc<dyn Backend> = Arc::new(FakeBackend::default());
    let all: Vec<Arc<Scenario>> = scenarios().into_iter().map(Arc::new).collect();
    let work = all
        .iter()
        .flat_map(|s| {
            mic_core::runner::trials(s)
                .into_iter()
                .map(move |t| (s.clone(), t))
        })
        .collect();
    let rep: RunReport = rt.block_on(mic_core::runner::run_all(backend, work, 4, None));
    assert!(rep.failed() == 0, "{}", report::console(&rep));
    let mut texts: Vec<(String, String)> = Vec::new();
    for TrialResult { outcome, .. } in &rep.results {
        texts.push((
            format!("{} transcript", outcome.trial_name()),
            outcome.transcript.clone(),
        ));
        texts.push((
            format!("{} snapshot", outcome.trial_name()),
            outcome.snapshot.clone().unwrap_or_default(),
        ));
        assert!(
            outcome.transcript.contains("[jwt aud="),
            "{}: no token was redacted, so the scan proves nothing",
            outcome.trial_name()
        );
    }
    texts.push(("json report".into(), report::json(&rep).to_string()));
    texts.push(("junit report".into(), report::junit(&rep)));
    for entry in walk(&root().join("snapshots")) {
        texts.push((
            entry.display().to_string(),
            std::fs::read_to_string(&entry).unwrap_or_default(),
        ));
    }
    for (what, text) in &texts {
        assert!(!jwt.is_match(text), "{what} contains a JWT");
        assert!(
            !b64_key.is_match(text),
            "{what} contains something that looks like a key: {:?}",
            b64_key.find(text).map(|m| m.as_str())
        );
        assert!(!sas_sig.is_match(text), "{what} contains a SAS signature");
        assert!(
            !text.contains("Mic!"),
            "{what} contains a generated VM password"
        );
        assert!(
            !secret_param.is_match(text),
            "{what} contains a client secret"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
