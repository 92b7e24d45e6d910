//! App Service in-host steps on the live backend: the Kudu command API.
//!
//! - the script/answer parser (`mic_live::kudu`) as rstest tables, malformed answers included;
//! - mic-live's script interpreted by the fake cloud's Kudu (`mic_fake::kudu`) gives back the
//!   request the driver built, placeholders replaced by the site's environment;
//! - the App Service scenarios through `LiveBackend` against the fake cloud (Kudu standing in
//!   for Azure's), snapshots compared, with the time they take;
//! - a deployer token without publish access on the site is refused as Kudu refuses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mic_core::backend::{Backend, Environment, HttpRequest, HttpResponse, Route};
use mic_core::driver::Trial;
use mic_core::model::{BackendKind, HostKind, Os, Scenario};
use mic_core::{catalog, runner};
use mic_fake::{FakeCloud, FakeConfig};
use mic_live::kudu::{self, IDENTITY_ENDPOINT_PLACEHOLDER, IDENTITY_HEADER_PLACEHOLDER, KuduError};
use mic_live::progress::Progress;
use mic_live::runcommand::{InHostOutcome, RunCommandError};
use mic_live::transport::RetryPolicy;
use mic_live::{LiveBackend, LiveConfig, LiveOptions};
use rstest::rstest;
use serde_json::{Value, json};

fn frame_ok(nonce: &str, status: u16, body: &[u8]) -> String {
    mic_fake::runcommand::frame_response(
        nonce,
        status,
        &[("Content-Type".into(), "application/json".into())],
        body,
    )
}

fn kudu_json(output: &str, error: &str, exit: i64) -> Vec<u8> {
    json!({"Output": output, "Error": error, "ExitCode": exit})
        .to_string()
        .into_bytes()
}

#[derive(Debug)]
enum Want {
    Status(u16),
    NoAnswer(i32),
    NotAResult,
    Truncated,
    Incomplete,
    NoFrame,
    Malformed,
}

#[rstest]
#[case::ok(kudu_json(&frame_ok("n1", 200, b"{}"), "", 0), Want::Status(200))]
#[case::ok_with_noise(kudu_json(&format!("motd\r\n{}", frame_ok("n1", 404, b"x")), "warn\n", 0), Want::Status(404))]
#[case::lower_case_keys(json!({"output": frame_ok("n1", 400, b""), "error": null, "exitCode": 0}).to_string().into_bytes(), Want::Status(400))]
#[case::windows_crlf(kudu_json(&frame_ok("n1", 200, b"{}").replace('\n', "\r\n"), "", 0), Want::Status(200))]
#[case::no_answer(kudu_json(&mic_fake::runcommand::frame_no_answer("n1", 7, "curl: (7) refused"), "", 0), Want::NoAnswer(7))]
#[case::no_endpoint(kudu_json(&mic_fake::runcommand::frame_no_answer("n1", 3, "curl: (3) bad URL"), "", 0), Want::NoAnswer(3))]
#[case::not_json(b"<html>502 Bad Gateway</html>".to_vec(), Want::NotAResult)]
#[case::empty(Vec::new(), Want::NotAResult)]
#[case::array(b"[]".to_vec(), Want::NotAResult)]
#[case::no_exit_code(json!({"Output": "", "Error": ""}).to_string().into_bytes(), Want::NotAResult)]
#[case::exit_code_string(json!({"Output": "", "Error": "", "ExitCode": "0"}).to_string().into_bytes(), Want::NotAResult)]
#[case::output_number(json!({"Output": 5, "Error": "", "ExitCode": 0}).to_string().into_bytes(), Want::NotAResult)]
#[case::killed_idle(kudu_json("", "Command 'bash' aborted due to no output and CPU activity for 60 seconds.", -1), Want::NoFrame)]
#[case::foreign_nonce(kudu_json(&frame_ok("other", 200, b"{}"), "", 0), Want::NoFrame)]
#[case::cut_beginning(kudu_json("exit 0\nMIC-END v1 n1 2\n", "", 0), Want::Truncated)]
#[case::unfinished(
    kudu_json("MIC-BEGIN v1 n1\nexit 0\n", "gzip: broken pipe", 1),
    Want::Incomplete
)]
#[case::bad_length(kudu_json(&frame_ok("n1", 200, b"{}").replace("MIC-END v1 n1 2", "MIC-END v1 n1 9"), "", 0), Want::Malformed)]
#[case::bad_base64(
    kudu_json(
        "MIC-BEGIN v1 n1\nexit 0\nerror \nhead !!!\nbody \nMIC-END v1 n1 0\n",
        "",
        0
    ),
    Want::Malformed
)]
#[case::no_status_line(kudu_json(&format!("MIC-BEGIN v1 n1\nexit 0\nerror \nhead {}\nbody \nMIC-END v1 n1 0\n", B64.encode("garbage")), "", 0), Want::Malformed)]
#[case::no_exit_line(
    kudu_json("MIC-BEGIN v1 n1\nhead \nMIC-END v1 n1 0\n", "", 0),
    Want::Malformed
)]
fn kudu_answers_parse(#[case] body: Vec<u8>, #[case] want: Want) {
    let got = kudu::parse_result(&body, "n1");
    match (&want, &got) {
        (Want::Status(s), Ok(InHostOutcome::Response(r))) => assert_eq!(r.status, *s),
        (Want::NoAnswer(e), Ok(InHostOutcome::NoAnswer { exit, .. })) => assert_eq!(exit, e),
        (Want::NotAResult, Err(KuduError::NotAResult))
        | (Want::Truncated, Err(KuduError::Frame(RunCommandError::Truncated { .. })))
        | (Want::Incomplete, Err(KuduError::Frame(RunCommandError::Incomplete { .. })))
        | (Want::NoFrame, Err(KuduError::Frame(RunCommandError::NoFrame { .. })))
        | (Want::Malformed, Err(KuduError::Frame(RunCommandError::Malformed(_)))) => {}
        _ => panic!("wanted {want:?}, got {got:?}"),
    }
    // Errors never quote the output (it holds the token).
    if let Err(e) = got {
        assert!(!e.to_string().contains("MIC-BEGIN"), "{e}");
    }
}

#[rstest]
#[case::repository(json!({"properties": {"hostNameSslStates": [
    {"name": "app.azurewebsites.net", "hostType": "Standard"},
    {"name": "app.scm.azurewebsites.net", "hostType": "Repository"}]}}), "app.scm.azurewebsites.net")]
#[case::repository_case(json!({"properties": {"hostNameSslStates": [{"name": "127.0.0.1:4000", "hostType": "repository"}]}}), "127.0.0.1:4000")]
#[case::enabled_only(json!({"properties": {"enabledHostNames": ["app.azurewebsites.net", "app.SCM.azurewebsites.net"]}}), "app.SCM.azurewebsites.net")]
#[case::nothing(json!({"properties": {"defaultHostName": "app.azurewebsites.net"}}), "app.scm.azurewebsites.net")]
#[case::garbage(json!({"properties": {"hostNameSslStates": 5, "enabledHostNames": [1, null]}}), "app.scm.azurewebsites.net")]
#[case::not_an_object(json!("x"), "app.scm.azurewebsites.net")]
fn scm_host_from_the_site(#[case] site: Value, #[case] want: &str) {
    assert_eq!(kudu::scm_host(&site, "app", "scm.azurewebsites.net"), want);
}

#[rstest]
#[case(
    "app.scm.azurewebsites.net",
    "https://app.scm.azurewebsites.net/api/command"
)]
#[case("127.0.0.1:4000", "http://127.0.0.1:4000/api/command")]
#[case("localhost:80", "http://localhost:80/api/command")]
#[case("127.0.0.1.evil.example", "https://127.0.0.1.evil.example/api/command")]
fn command_url(#[case] host: &str, #[case] want: &str) {
    assert_eq!(kudu::command_url(host), want);
}

#[rstest]
#[case::public("AzureCloud", "scm.azurewebsites.net")]
#[case::usgov("AzureUSGovernment", "scm.azurewebsites.us")]
#[case::china("AzureChinaCloud", "scm.chinacloudsites.cn")]
#[case::custom("custom", "scm.azurewebsites.net")]
fn scm_suffix(#[case] cloud: &str, #[case] want: &str) {
    assert_eq!(kudu::scm_suffix(cloud), want);
}

/// mic-live's Linux script, read by the fake's interpreter, is the driver's request with the
/// site's values in place of the placeholders; quoting survives.
#[rstest]
#[case::token(HttpRequest::new("GET", format!("{IDENTITY_ENDPOINT_PLACEHOLDER}?api-version=2019-08-01&resource=https://vault.azure.net&principal_id=x")).header("X-IDENTITY-HEADER", IDENTITY_HEADER_PLACEHOLDER), None)]
#[case::no_header(HttpRequest::new("GET", format!("{IDENTITY_ENDPOINT_PLACEHOLDER}?resource=a%20b")), None)]
#[case::quotes_and_body(HttpRequest::new("POST", "http://example.test/it's?\"q\"=$HOME").header("X-Odd", "a 'b' \"c\" $d `e` \\f"), Some(b"\x00\xff body 'quoted'".to_vec()))]
#[case::placeholder_inside(HttpRequest::new("GET", IDENTITY_ENDPOINT_PLACEHOLDER).header("X-Both", format!("pre-{IDENTITY_HEADER_PLACEHOLDER}-post")), None)]
fn the_fake_kudu_reads_mic_lives_script(
    #[case] mut req: HttpRequest,
    #[case] body: Option<Vec<u8>>,
) {
    req.body = body;
    let env = BTreeMap::from([
        (
            "IDENTITY_ENDPOINT".to_string(),
            "http://127.0.0.1:41566/msi/token".to_string(),
        ),
        ("IDENTITY_HEADER".to_string(), "AD36SECRET".to_string()),
    ]);
    let cmd = kudu::command_body(Os::Linux, &req, "nonce42");
    assert_eq!(cmd["dir"], "site/wwwroot");
    let script = mic_fake::kudu::decode_command(cmd["command"].as_str().unwrap()).expect("decodes");
    assert_eq!(script, kudu::linux_script(&req, "nonce42"));
    let plan = mic_fake::kudu::interpret(&script, &env).expect("interprets");
    let subst = |s: &str| {
        s.replace(IDENTITY_ENDPOINT_PLACEHOLDER, &env["IDENTITY_ENDPOINT"])
            .replace(IDENTITY_HEADER_PLACEHOLDER, &env["IDENTITY_HEADER"])
    };
    assert_eq!(plan.nonce, "nonce42");
    assert_eq!(plan.method, req.method);
    assert_eq!(plan.url, subst(&req.url));
    let want: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), subst(v)))
        .collect();
    assert_eq!(plan.headers, want);
    assert_eq!(plan.body, req.body);
    // The older variable names are the fallback.
    let old = BTreeMap::from([
        ("MSI_ENDPOINT".to_string(), env["IDENTITY_ENDPOINT"].clone()),
        ("MSI_SECRET".to_string(), env["IDENTITY_HEADER"].clone()),
    ]);
    assert_eq!(mic_fake::kudu::interpret(&script, &old).unwrap(), plan);
    // Windows: PowerShell, encoded; the placeholders become the environment's values.
    let win = kudu::command_body(Os::Windows, &req, "nonce42");
    let enc = win["command"].as_str().unwrap().rsplit(' ').next().unwrap();
    let utf16: Vec<u16> = B64
        .decode(enc)
        .unwrap()
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let ps = String::from_utf16(&utf16).unwrap();
    assert_eq!(ps, kudu::windows_script(&req, "nonce42"));
    assert!(
        !ps.contains(IDENTITY_ENDPOINT_PLACEHOLDER) && !ps.contains(IDENTITY_HEADER_PLACEHOLDER)
    );
    assert!(ps.contains("MIC-BEGIN v1 nonce42"));
}

// ------------------------------------------------------------ through the live backend

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("mic-kudu-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Azure's latencies / 100, as in `against_fake.rs` (a site is created in ~10 s on Azure).
fn scaled_config() -> FakeConfig {
    FakeConfig {
        latency: Duration::from_millis(2),
        lro_delay: Duration::from_millis(100),
        propagation_delay: Duration::from_millis(600),
        ..FakeConfig::default()
    }
}

fn backend(cloud: &FakeCloud, ledger: &Path, lines: &Arc<Mutex<Vec<String>>>) -> LiveBackend {
    let d = cloud.deployer();
    let vars: BTreeMap<String, String> = [
        ("AZURE_TENANT_ID", cloud.tenant_id()),
        ("AZURE_SUBSCRIPTION_ID", cloud.subscription_id()),
        ("AZURE_LOCATION", cloud.location()),
        ("AZURE_CLIENT_ID", d.client_id),
        ("AZURE_CLIENT_SECRET", d.client_secret),
        ("MIC_LIVE_ARM_ENDPOINT", cloud.arm_url()),
        (
            "MIC_LIVE_ARM_AUDIENCE",
            "https://management.azure.com/".to_string(),
        ),
        ("AZURE_AUTHORITY_HOST", cloud.login_url()),
        ("MIC_LIVE_IN_HOST", "run-command".into()),
        ("MIC_LIVE_RUN_ID", "kudu-run".into()),
        ("MIC_LIVE_MAX_POLL_SECS", "1".into()),
        ("MIC_LIVE_PROPAGATION_BUDGET_SECS", "20".into()),
        ("MIC_LIVE_LEDGER_DIR", ledger.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut config = LiveConfig::from_map(&vars, None).expect("valid config");
    config.max_poll_interval = Duration::from_millis(10);
    let sink = lines.clone();
    LiveBackend::new(
        config,
        LiveOptions {
            retry: RetryPolicy {
                max_attempts: 8,
                ..RetryPolicy::fast()
            },
            progress: Progress::lines(Arc::new(move |l: &str| {
                sink.lock().unwrap().push(l.to_string());
            })),
            default_poll_interval: Duration::from_millis(20),
            ..LiveOptions::default()
        },
    )
    .expect("backend starts")
}

fn app_service_scenarios() -> Vec<Arc<Scenario>> {
    let root = repo();
    let cat = catalog::load_dir(&root.join("scenarios"), &root);
    assert!(cat.diagnostics.is_empty(), "{:?}", cat.diagnostics);
    cat.scenarios
        .into_iter()
        .filter(|s| s.backends.contains(&BackendKind::Live) && s.host.kind == HostKind::AppService)
        .map(Arc::new)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_service_scenarios_pass_through_kudu_against_the_fake_cloud() {
    let scenarios = app_service_scenarios();
    assert!(!scenarios.is_empty());
    let cloud = FakeCloud::start(scaled_config()).await.unwrap();
    // Throttling and a failure on the first requests (ARM; Kudu's are retried the same way).
    cloud.inject_arm_faults(&[429, 500]);
    let dir = TempDir::new();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let live = backend(&cloud, &dir.0, &lines);
    let work: Vec<(Arc<Scenario>, Trial)> = scenarios
        .iter()
        .flat_map(|s| runner::trials(s).into_iter().map(move |t| (s.clone(), t)))
        .collect();
    let trials = work.len();
    let b: Arc<dyn Backend> = Arc::new(live.clone());
    let started = Instant::now();
    let rep = runner::run_all(b, work, trials, Some(&repo().join("snapshots"))).await;
    let wall = started.elapsed();
    let console = mic_core::report::console(&rep);
    let failures: Vec<String> = rep
        .results
        .iter()
        .filter(|r| !r.outcome.passed())
        .map(|r| r.outcome.failure_report().unwrap_or_default())
        .collect();
    assert!(failures.is_empty(), "{console}\n{}", failures.join("\n\n"));
    // The transcripts redact to the fake backend's snapshots: `{IDENTITY_ENDPOINT}` and
    // `[identity-header]` stand where the site's values were.
    for r in &rep.results {
        assert!(
            matches!(r.snapshot, Some(mic_core::snapshot::Comparison::Matches)),
            "{}: {:?}",
            r.outcome.trial_name(),
            r.snapshot
        );
    }
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("Kudu on "), "{log}");
    assert!(!log.contains("eyJ"), "{log}");
    assert!(cloud.resource_group_names().is_empty());
    assert!(live.finish());
    let kudu_steps: Vec<Duration> = rep
        .results
        .iter()
        .flat_map(|r| r.outcome.steps.iter())
        .filter(|s| s.id.contains("token") || s.id.contains("header"))
        .map(|s| s.duration)
        .collect();
    println!(
        "App Service through Kudu against the fake: {} scenarios, {trials} trials, wall {:.2}s; in-site steps {:?}",
        scenarios.len(),
        wall.as_secs_f64(),
        kudu_steps
    );
    cloud.shutdown().await;
}

/// A deployer whose token may not publish to the site: Kudu's 403, named with what is missing.
#[tokio::test]
async fn a_deployer_without_publish_access_is_refused_as_kudu_refuses() {
    let cloud = FakeCloud::start(FakeConfig::default()).await.unwrap();
    let dir = TempDir::new();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let live = backend(&cloud, &dir.0, &lines);
    let scenario = app_service_scenarios().remove(0);
    let env = live.environment(&scenario).await.unwrap();
    let arm = env.endpoints().arm.clone();
    let sub = env.endpoints().subscription_id.clone();
    let tok = match &env.deployer().auth {
        mic_core::backend::DeployerAuth::AccessToken(t) => t.expose().to_string(),
        mic_core::backend::DeployerAuth::ClientSecret { .. } => unreachable!(),
    };
    let rg = format!("/subscriptions/{sub}/resourceGroups/kudu-rg");
    let site = format!("{rg}/providers/Microsoft.Web/sites/app1");
    for (path, api, body) in [
        (&rg, "2021-04-01", json!({"location": "westus"})),
        (
            &site,
            kudu::WEB_API,
            json!({"location": "westus", "identity": {"type": "SystemAssigned"}, "properties": {}}),
        ),
    ] {
        env.before_create(path).unwrap();
        let r = env
            .send(
                Route::Direct,
                HttpRequest::new("PUT", format!("{arm}{path}?api-version={api}"))
                    .header("Authorization", format!("Bearer {tok}"))
                    .json(&body),
            )
            .await
            .unwrap();
        assert!(r.is_success(), "{}", r.text());
    }
    let token_req = |env: &dyn Environment| {
        let e = env.host_environment(&site);
        HttpRequest::new(
            "GET",
            format!(
                "{}?api-version=2019-08-01&resource=https://management.azure.com/",
                e["IDENTITY_ENDPOINT"]
            ),
        )
        .header("X-IDENTITY-HEADER", e["IDENTITY_HEADER"].clone())
    };
    // The deployer (Owner) can: the site's token comes back through Kudu.
    let r: HttpResponse = env
        .send(Route::InHost(&site), token_req(env.as_ref()))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // Take the deployer's Owner away at the subscription; Reader on the group stays: Kudu
    // refuses (403) and the error says what is missing.
    let oid = env.deployer().object_id.clone();
    let list = env
        .send(
            Route::Direct,
            HttpRequest::new(
                "GET",
                format!("{arm}/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
            )
            .header("Authorization", format!("Bearer {tok}")),
        )
        .await
        .unwrap();
    let owner_assignment = list.json().unwrap()["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["properties"]["principalId"] == oid.as_str())
        .and_then(|a| a["id"].as_str())
        .unwrap()
        .to_string();
    let reader = json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        "principalId": oid,
    }});
    let r = env
        .send(
            Route::Direct,
            HttpRequest::new(
                "PUT",
                format!("{arm}{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01", uuid::Uuid::new_v4()),
            )
            .header("Authorization", format!("Bearer {tok}"))
            .json(&reader),
        )
        .await
        .unwrap();
    assert!(r.is_success(), "{}", r.text());
    let r = env
        .send(
            Route::Direct,
            HttpRequest::new(
                "DELETE",
                format!("{arm}{owner_assignment}?api-version=2022-04-01"),
            )
            .header("Authorization", format!("Bearer {tok}")),
        )
        .await
        .unwrap();
    assert!(r.is_success(), "{}", r.text());
    let err = env
        .send(Route::InHost(&site), token_req(env.as_ref()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Kudu answered 403"), "{err}");
    assert!(err.contains("Microsoft.Web/sites/publish/Action"), "{err}");
    assert!(!err.contains("eyJ"), "{err}");
    cloud.shutdown().await;
}
