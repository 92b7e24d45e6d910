//! The whole live path (driver -> LiveBackend) against the mini ARM on wiremock: sign-in,
//! tags, ledger before creation, VM network prerequisites, LRO polling with capped
//! Retry-After, throttling and 5xx retries, Run Command, propagation waits, teardown,
//! and `mic sweep` after an interrupted run.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MiniArm, TempDir, vars, vm_system_assigned};
use mic_core::backend::Backend;
use mic_core::driver::{self, Trial};
use mic_core::model::Os;
use mic_live::ledger::LedgerFile;
use mic_live::progress::Progress;
use mic_live::sweep::{SweepOptions, sweep_with};
use mic_live::transport::RetryPolicy;
use mic_live::{LiveBackend, LiveConfig, LiveOptions};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

struct World {
    _server: MockServer,
    arm: MiniArm,
    backend: LiveBackend,
    ledger: TempDir,
    lines: Arc<Mutex<Vec<String>>>,
}

async fn world(extra: &[(&str, &str)]) -> World {
    let server = MockServer::start().await;
    let arm = MiniArm::new(&server.uri());
    Mock::given(any())
        .respond_with(arm.clone())
        .named("mini ARM")
        .mount(&server)
        .await;
    let ledger = TempDir::new();
    let mut v = vars(&server.uri(), &ledger.0);
    for (k, val) in extra {
        v.insert((*k).to_string(), (*val).to_string());
    }
    let config = LiveConfig::from_map(&v, None).expect("valid configuration");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let progress = Progress::lines(Arc::new(move |l: &str| {
        sink.lock().unwrap().push(l.to_string());
    }));
    let options = LiveOptions {
        retry: RetryPolicy::fast(),
        progress,
        default_poll_interval: Duration::from_millis(10),
        ..LiveOptions::default()
    };
    let backend = LiveBackend::new(config, options).expect("backend starts");
    World {
        _server: server,
        arm,
        backend,
        ledger,
        lines,
    }
}

#[tokio::test]
async fn a_tutorial_runs_end_to_end_through_run_command_and_leaves_nothing() {
    let w = world(&[]).await;
    // Throttling and a transient 5xx on the first ARM requests: retried, not failures.
    w.arm.st().faults.extend([429, 500]);
    let scenario = vm_system_assigned(Os::Linux);
    let outcome = driver::run(&w.backend, &scenario, Trial::Normal).await;
    assert!(
        outcome.passed(),
        "{}",
        outcome.failure_report().unwrap_or_default()
    );

    let st = w.arm.st();
    let log: Vec<String> = st.log.iter().map(|(m, p)| format!("{m} {p}")).collect();
    // The network prerequisites were created before the VM, and the VM got the size.
    let pos = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {log:#?}"))
    };
    assert!(pos("PUT /subscriptions") < pos("virtualNetworks/myVM-vnet"));
    assert!(pos("virtualNetworks/myVM-vnet") < pos("networkInterfaces/myVM-nic"));
    assert!(pos("networkInterfaces/myVM-nic") < pos("virtualMachines/myVM"));
    assert_eq!(
        st.run_commands, 1,
        "the IMDS request went through Run Command once"
    );
    assert_eq!(st.unauthorized, 0);
    assert!(st.faults.is_empty(), "the injected faults were consumed");
    // Teardown deleted the resource group and everything in it.
    assert!(
        st.resources.is_empty(),
        "left behind: {:?}",
        st.resources.keys().collect::<Vec<_>>()
    );
    drop(st);
    // The ledger was released and the run's file removed at the end.
    let file = LedgerFile::read(w.backend.ledger_path()).expect("ledger exists during the run");
    assert!(file.entries.is_empty(), "{:?}", file.entries);
    assert!(w.backend.finish());
    assert!(!w.backend.ledger_path().exists());
    // Progress lines were printed, without secrets or tokens.
    let lines = w.lines.lock().unwrap().join("\n");
    assert!(lines.contains("Run Command on myVM"), "{lines}");
    assert!(lines.contains("retrying"), "{lines}");
    assert!(
        !lines.contains(common::SECRET) && !lines.contains("eyJ"),
        "{lines}"
    );
}

#[tokio::test]
async fn resource_groups_carry_the_run_tags_and_ids_are_ledgered_before_creation() {
    let w = world(&[]).await;
    let scenario = vm_system_assigned(Os::Linux);
    let env = w.backend.environment(&scenario).await.expect("environment");
    let tags: std::collections::BTreeMap<String, String> =
        env.resource_group_tags().into_iter().collect();
    assert_eq!(tags.get("mic-run").map(String::as_str), Some("test-run"));
    assert_eq!(
        tags.get("mic-scenario").map(String::as_str),
        Some("arm/linux-vm-system-assigned")
    );
    assert!(tags.get("DeleteAfter").is_some_and(|d| {
        time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339).is_ok()
    }));
    assert_eq!(
        env.deployer().object_id,
        common::DEPLOYER_OID,
        "from the token's oid claim"
    );
    env.before_create("/subscriptions/x/resourcegroups/rg1")
        .expect("ledger write");
    let file = LedgerFile::read(w.backend.ledger_path()).unwrap();
    assert_eq!(file.entries.len(), 1);
    assert_eq!(file.entries[0].id, "/subscriptions/x/resourcegroups/rg1");
    let text = std::fs::read_to_string(w.backend.ledger_path()).unwrap();
    assert!(!text.contains(common::SECRET) && !text.contains("eyJ"));
    env.teardown()
        .await
        .expect("teardown of a group that never existed succeeds");
    assert!(
        LedgerFile::read(w.backend.ledger_path())
            .unwrap()
            .entries
            .is_empty()
    );
}

#[tokio::test]
async fn a_call_after_a_grant_waits_for_propagation_and_reports_it() {
    let w = world(&[("MIC_LIVE_PROPAGATION_BUDGET_SECS", "10")]).await;
    w.arm.st().propagation_delay = Duration::from_secs(3);
    let outcome = driver::run(&w.backend, &vm_system_assigned(Os::Linux), Trial::Normal).await;
    assert!(
        outcome.passed(),
        "{}",
        outcome.failure_report().unwrap_or_default()
    );
    let call = outcome.steps.iter().find(|s| s.id == "read-rg").unwrap();
    let waited = call
        .propagation_wait
        .expect("a propagation wait was observed");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(
        call.exchanges.len() > 1,
        "the call was retried while the grant propagated"
    );
    let report = mic_live::report::scenario_report(&outcome, "Standard_B1s", Os::Linux);
    assert!(report.propagation_wait.is_some());
    assert!(
        report.created.iter().any(|c| c == "virtualMachines/myVM"),
        "{:?}",
        report.created
    );
    assert!(report.cost.usd.is_some_and(|u| u > 0.0));
    let text = mic_live::report::render(&[report]);
    assert!(text.contains("waited"), "{text}");
}

#[tokio::test]
async fn a_windows_host_gets_a_powershell_run_command_and_the_windows_size() {
    let w = world(&[]).await;
    let outcome = driver::run(&w.backend, &vm_system_assigned(Os::Windows), Trial::Normal).await;
    assert!(
        outcome.passed(),
        "{}",
        outcome.failure_report().unwrap_or_default()
    );
    let vm_put = outcome.steps[1]
        .exchanges
        .iter()
        .find(|e| e.request.method == "PUT")
        .unwrap();
    // The driver's transcript keeps its own request; the size rewrite happens on the wire.
    assert!(
        String::from_utf8_lossy(vm_put.request.body.as_deref().unwrap()).contains("Standard_B1s")
    );
    assert_eq!(w.arm.st().vm_sizes, vec!["Standard_B2s".to_string()]);
    assert_eq!(
        w.arm.st().command_ids,
        vec!["RunPowerShellScript".to_string()]
    );
}

#[tokio::test]
async fn an_interrupted_run_is_swept_to_nothing() {
    let w = world(&[]).await;
    // Slow ARM: the run is still provisioning when it is killed.
    let backend = w.backend.clone();
    let scenario = vm_system_assigned(Os::Linux);
    let run = tokio::spawn(async move { driver::run(&backend, &scenario, Trial::Normal).await });
    // Kill it once the VM exists (no teardown runs: like a killed process).
    for _ in 0..200 {
        if w.arm
            .st()
            .resources
            .keys()
            .any(|k| k.contains("virtualmachines"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    assert!(
        !w.arm.groups().is_empty(),
        "the interrupted run left a resource group"
    );
    assert!(
        !LedgerFile::read(w.backend.ledger_path())
            .unwrap()
            .entries
            .is_empty()
    );

    // Later (past DeleteAfter), another process sweeps.
    let options = SweepOptions {
        wait: true,
        now: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(7)),
        ..SweepOptions::default()
    };
    let report = sweep_with(w.backend.arm(), common::SUB, &w.ledger.0, None, &options)
        .await
        .expect("sweep");
    assert!(report.ok(), "{report}");
    assert!(
        w.arm.groups().is_empty(),
        "groups left: {:?}",
        w.arm.groups()
    );
    assert!(w.arm.st().resources.is_empty());
    assert!(
        !w.backend.ledger_path().exists(),
        "the stale ledger was removed"
    );
    assert!(report.to_string().contains("deleted"), "{report}");
}

#[tokio::test]
async fn cleanup_run_deletes_what_the_ledger_lists_on_interrupt() {
    let w = world(&[]).await;
    let backend = w.backend.clone();
    let scenario = vm_system_assigned(Os::Linux);
    let run = tokio::spawn(async move { driver::run(&backend, &scenario, Trial::Normal).await });
    for _ in 0..200 {
        if !w.arm.groups().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    let report = w.backend.cleanup_run().await;
    assert!(report.ok(), "{report}");
    assert!(w.arm.groups().is_empty());
    assert!(
        !w.backend.ledger_path().exists(),
        "nothing left: the ledger file is gone"
    );
}

#[tokio::test]
async fn sweep_keeps_groups_of_active_runs_and_untagged_groups() {
    let w = world(&[]).await;
    let scenario = vm_system_assigned(Os::Linux);
    let env = w.backend.environment(&scenario).await.unwrap();
    // An active run's group (DeleteAfter ahead) and its ledger with a live pid (ours).
    let tags: serde_json::Map<String, serde_json::Value> = env
        .resource_group_tags()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    let active = format!("/subscriptions/{}/resourcegroups/active", common::SUB);
    env.before_create(&active).unwrap();
    w.arm.st().resources.insert(
        active.clone(),
        serde_json::json!({"id": active, "tags": tags}),
    );
    let foreign = format!("/subscriptions/{}/resourcegroups/not-ours", common::SUB);
    w.arm.st().resources.insert(
        foreign.clone(),
        serde_json::json!({"id": foreign, "tags": {"owner": "someone"}}),
    );
    let report = sweep_with(
        w.backend.arm(),
        common::SUB,
        &w.ledger.0,
        None,
        &SweepOptions {
            wait: true,
            ..SweepOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.deleted.is_empty(), "{report}");
    assert_eq!(report.kept.len(), 1, "{report}");
    assert_eq!(w.arm.groups().len(), 2);
}

#[test]
fn a_ledger_whose_process_is_gone_is_stale_and_a_torn_line_is_skipped() {
    let dir = TempDir::new();
    let ledger = mic_live::ledger::Ledger::open(&dir.0, "r1", Duration::from_hours(1)).unwrap();
    ledger
        .record("e1", "arm/x", "/subscriptions/s/resourcegroups/a")
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        LedgerFile::read(ledger.path()).unwrap().stale_reason(now),
        None,
        "our own process is alive"
    );
    // The same ledger written by a process that has exited (killed), plus a torn last line.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let text = std::fs::read_to_string(ledger.path()).unwrap().replace(
        &format!("\"pid\":{}", std::process::id()),
        &format!("\"pid\":{dead}"),
    );
    std::fs::write(
        ledger.path(),
        format!("{text}{{\"op\":\"create\",\"env\":\"e1\",\"sce"),
    )
    .unwrap();
    let file = LedgerFile::read(ledger.path()).unwrap();
    assert_eq!(file.entries.len(), 1);
    assert!(
        file.stale_reason(now)
            .is_some_and(|r| r.contains("is gone")),
        "{:?}",
        file.stale_reason(now)
    );
    assert!(
        file.stale_reason(now + time::Duration::hours(2))
            .is_some_and(|r| r.contains("DeleteAfter"))
    );
    ledger.release("e1").unwrap();
    assert!(ledger.finish().unwrap());
}
