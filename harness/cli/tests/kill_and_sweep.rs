//! The real `mic` binary on the live backend against a fake cloud served by this test
//! process: a run killed with SIGKILL midway (no teardown can run) leaves a tagged resource
//! group and a ledger; `mic sweep` with the same environment deletes it. Also: missing
//! settings give one message per variable and no secret is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mic_fake::{FakeCloud, FakeConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mic(env: &[(&str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mic"));
    c.current_dir(repo());
    for v in [
        "AZURE_CLIENT_SECRET",
        "AZURE_ACCESS_TOKEN",
        "AZURE_FEDERATED_TOKEN_FILE",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_live_run_is_swept_and_leaves_no_resource_group() {
    let cloud = FakeCloud::start(FakeConfig {
        latency: Duration::from_millis(2),
        lro_delay: Duration::from_millis(100),
        // A VM create far longer than the test: the run is surely killed while it waits.
        lro_delays: vec![(
            "Microsoft.Compute/virtualMachines".into(),
            Duration::from_mins(10),
        )],
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let ledger = std::env::temp_dir().join(format!("mic-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ledger);
    let mut env: Vec<(&str, String)> = Vec::new();
    // What `mic serve --print-env --print-credentials` prints.
    for (k, v) in mic_cli_env(&cloud) {
        env.push((k, v));
    }
    env.push(("MIC_LIVE_LEDGER_DIR", ledger.display().to_string()));
    env.push(("MIC_LIVE_RUN_ID", "killed-run".into()));
    env.push(("MIC_LIVE_MAX_POLL_SECS", "1".into()));

    let mut run = mic(&env)
        .args([
            "run",
            "--backend",
            "live",
            "-s",
            "arm/linux-vm-system-assigned",
            "--trial",
            "normal",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the VM is being created (the ledger lists it, its IMDS is up).
    let started = Instant::now();
    loop {
        let ledgered = std::fs::read_dir(&ledger)
            .into_iter()
            .flatten()
            .flatten()
            .any(|f| {
                std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains("virtualMachines"))
            });
        if ledgered && cloud.describe().contains("IMDS") {
            break;
        }
        assert!(
            run.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_mins(1), "no VM create");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.kill().unwrap(); // SIGKILL: no signal handler, no teardown
    run.wait().unwrap();
    assert_eq!(
        cloud.resource_group_names().len(),
        1,
        "the killed run left its group"
    );
    let (_, tags) = &cloud.resource_groups()[0];
    assert_eq!(tags.as_ref().unwrap()["mic-run"], "killed-run");

    let sweep = {
        let mut c = mic(&env);
        c.args(["sweep", "--wait"]);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    };
    let stdout = String::from_utf8_lossy(&sweep.stdout);
    let stderr = String::from_utf8_lossy(&sweep.stderr);
    assert!(sweep.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("deleted"), "{stdout}");
    assert!(
        cloud.resource_group_names().is_empty(),
        "left: {:?}\n{stdout}",
        cloud.resource_group_names()
    );
    let secret = cloud.deployer().client_secret;
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    assert!(
        std::fs::read_dir(&ledger).unwrap().next().is_none(),
        "the stale ledger was removed"
    );
    let _ = std::fs::remove_dir_all(&ledger);
    cloud.shutdown().await;
}

/// The variables `mic serve --print-env --print-credentials` prints (checked below).
fn mic_cli_env(cloud: &FakeCloud) -> Vec<(&'static str, String)> {
    let d = cloud.deployer();
    vec![
        ("AZURE_TENANT_ID", cloud.tenant_id()),
        ("AZURE_SUBSCRIPTION_ID", cloud.subscription_id()),
        ("AZURE_LOCATION", cloud.location()),
        ("AZURE_CLIENT_ID", d.client_id),
        ("MIC_LIVE_AUTH", "client-secret".into()),
        ("MIC_LIVE_ARM_ENDPOINT", cloud.arm_url()),
        (
            "MIC_LIVE_ARM_AUDIENCE",
            "https://management.azure.com/".into(),
        ),
        ("AZURE_AUTHORITY_HOST", cloud.login_url()),
        ("MIC_LIVE_IN_HOST", "run-command".into()),
        ("AZURE_CLIENT_SECRET", d.client_secret),
    ]
}

#[test]
fn serve_prints_the_live_environment_and_the_secret_only_on_request() {
    use std::io::BufRead as _;
    for with_secret in [false, true] {
        let mut args = vec!["serve", "--print-env", "--vm-create-ms", "600"];
        if with_secret {
            args.push("--print-credentials");
        }
        let mut child = mic(&[])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut vars = Vec::new();
        for line in out.lines() {
            let line = line.unwrap();
            if line == "# ready" {
                break;
            }
            vars.push(line.split_once('=').map(|(k, _)| k.to_string()).unwrap());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for v in [
            "AZURE_TENANT_ID",
            "AZURE_SUBSCRIPTION_ID",
            "AZURE_CLIENT_ID",
            "MIC_LIVE_ARM_ENDPOINT",
            "AZURE_AUTHORITY_HOST",
            "MIC_LIVE_IN_HOST",
        ] {
            assert!(vars.iter().any(|x| x == v), "{v} in {vars:?}");
        }
        assert_eq!(
            vars.iter().any(|x| x == "AZURE_CLIENT_SECRET"),
            with_secret,
            "{vars:?}"
        );
    }
}

#[test]
fn missing_settings_are_named_once_each_and_no_secret_is_printed() {
    let secret = "Sup3r~Secret.value-never-printed";
    let out = mic(&[
        (
            "AZURE_CLIENT_ID",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        ),
        ("AZURE_CLIENT_SECRET", secret.into()),
        ("MIC_LIVE_AUTH", "client-secret".into()),
    ])
    .env_remove("AZURE_TENANT_ID")
    .env_remove("AZURE_SUBSCRIPTION_ID")
    .env_remove("AZURE_LOCATION")
    .args([
        "run",
        "--backend",
        "live",
        "-s",
        "arm/linux-vm-system-assigned",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    for v in ["AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"] {
        assert_eq!(
            stderr.lines().filter(|l| l.contains(v)).count(),
            1,
            "{v}:\n{stderr}"
        );
    }
    assert!(!stderr.contains(secret) && !stdout.contains(secret));
}
