//! `mic docs check --backend live` end to end, offline: the real `mic` binary configured like
//! CI configures the live backend, pointed at a fake cloud served by this test process (the
//! fake stands in for Azure: sign-in, ARM with operations, Run Command executing the in-VM
//! requests). Checks that IMDS examples run inside the VM through Run Command, ARM examples
//! run with the VM's token, a broken article is flagged at its line, the world is torn down
//! (no resource group, no ledger left), a Ctrl-C still tears down, no token reaches the
//! report, and a missing variable gives the clear error and exit 2.

mod common;
use common::{block_at, reason, status};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mic_fake::{FakeCloud, FakeConfig};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "mic-docs-live-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The variables `mic serve --print-env --print-credentials` prints, plus test knobs.
fn live_env(cloud: &FakeCloud, ledger: &Path) -> Vec<(&'static str, String)> {
    let d = cloud.deployer();
    vec![
        ("AZURE_TENANT_ID", cloud.tenant_id()),
        ("AZURE_SUBSCRIPTION_ID", cloud.subscription_id()),
        ("AZURE_LOCATION", cloud.location()),
        ("AZURE_CLIENT_ID", d.client_id),
        ("AZURE_CLIENT_SECRET", d.client_secret),
        ("MIC_LIVE_AUTH", "client-secret".into()),
        ("MIC_LIVE_ARM_ENDPOINT", cloud.arm_url()),
        (
            "MIC_LIVE_ARM_AUDIENCE",
            "https://management.azure.com/".into(),
        ),
        ("AZURE_AUTHORITY_HOST", cloud.login_url()),
        ("MIC_LIVE_IN_HOST", "run-command".into()),
        ("MIC_LIVE_LEDGER_DIR", ledger.display().to_string()),
        ("MIC_LIVE_MAX_POLL_SECS", "1".into()),
        ("MIC_LIVE_PROPAGATION_BUDGET_SECS", "20".into()),
    ]
}

fn mic(env: &[(&str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mic"));
    c.current_dir(repo());
    for v in [
        "AZURE_CLIENT_SECRET",
        "AZURE_ACCESS_TOKEN",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MIC_LIVE_RUN_ID",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// JWT-shaped strings (three base64url parts, long): a real token leaked into the output.
fn jwts(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .filter(|w| w.starts_with("eyJ") && w.matches('.').count() == 2 && w.len() > 60)
        .map(str::to_string)
        .collect()
}

fn assert_torn_down(cloud: &FakeCloud, ledger: &Path, output: &str) {
    assert!(
        cloud.resource_group_names().is_empty(),
        "left: {:?}\n{output}",
        cloud.resource_group_names()
    );
    let files: Vec<_> = std::fs::read_dir(ledger)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "the ledger was not finished: {files:?}");
}

/// The keys of the world's storage account, read from the fake cloud as the deployer while
/// the check runs (the account is gone after the teardown).
async fn storage_keys_while_running(cloud: FakeCloud) -> Vec<String> {
    mic_backends::install_crypto_provider();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let account = loop {
        if let Some((name, _)) = cloud
            .service_urls()
            .into_iter()
            .find(|(n, _)| n.starts_with("blob:micdocs"))
        {
            break name["blob:".len()..].to_string();
        }
        if started.elapsed() > Duration::from_mins(2) {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let d = cloud.deployer();
    let token: Value = client
        .post(format!(
            "{}/{}/oauth2/token",
            cloud.login_url(),
            cloud.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("resource", "https://management.azure.com/"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = account.trim_start_matches("micdocs");
    let url = format!(
        "{}/subscriptions/{}/resourceGroups/mic-docs-{run}/providers/Microsoft.Storage/storageAccounts/{account}/listKeys?api-version=2023-05-01",
        cloud.arm_url(),
        cloud.subscription_id()
    );
    let keys: Value = client
        .post(url)
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    keys["keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const ARTICLE: &str = include_str!("data/docs_linux_vm_arm.md");

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .expect("needle")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorials_run_on_the_live_path_and_the_world_is_torn_down() {
    // Operations finish at once: each one would otherwise cost a whole-second poll (the
    // smallest MIC_LIVE_MAX_POLL_SECS), and the seed article has dozens of Run Commands and
    // VM updates. The interruption test below keeps operations in progress.
    let cloud = FakeCloud::start(FakeConfig {
        latency: Duration::from_millis(1),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let ledger = TempDir::new("ledger");
    let articles = TempDir::new("articles");
    // A correct article and the same article without the Metadata header, checked together
    // with the tutorials' seed article in one world.
    let mutated = ARTICLE.replacen("' -H Metadata:true", "'", 1);
    assert_ne!(mutated, ARTICLE);
    std::fs::write(articles.0.join("correct.md"), ARTICLE).unwrap();
    std::fs::write(articles.0.join("no-metadata.md"), &mutated).unwrap();
    let mut c = mic(&live_env(&cloud, &ledger.0));
    c.args([
        "docs",
        "check",
        "--backend",
        "live",
        "--format",
        "json",
        "--timings",
    ])
    .arg("docs/articles/004_68e52737ddb40452.txt")
    .arg(articles.0.join("correct.md"))
    .arg(articles.0.join("no-metadata.md"));
    let keys = tokio::spawn(storage_keys_while_running(cloud.clone()));
    let started = Instant::now();
    let out = run(c).await;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("docs check --backend live took {took:.1?}");
    for l in stderr.lines().filter(|l| l.starts_with("timing:")) {
        eprintln!("{l}");
    }
    let reports: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\nstderr: {stderr}"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "broken examples exit 1\n{stderr}"
    );
    // What it creates is printed before it creates it.
    assert!(
        stderr.contains("will create") && stderr.contains("Linux VM myVM"),
        "{stderr}"
    );

    let r004 = &reports[0];
    // IMDS token requests ran inside the VM through Run Command (system- and user-assigned).
    for line in [531, 3782] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    assert!(stderr.contains("Run Command on myVM"), "{stderr}");
    // The in-VM answer is compared with the doc: IMDS returns expires_in as a string.
    let b = block_at(r004, 545);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(
        reason(b).contains("L545: expires_in: doc shows number 3599, service returns string"),
        "{}",
        reason(b)
    );
    // ARM reads with the VM's token, and their example outputs.
    for line in [559, 565, 3812] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    // An ARM write as the deployer on the world's VM (PATCH, followed to its end).
    let b = block_at(r004, 4905);
    assert_eq!(status(b), "works", "L4905: {}", reason(b));
    // A doc bug found only by sending: a space inside `resourceGroup s`.
    let b = block_at(r004, 8883);
    assert_eq!(status(b), "broken", "{b:#}");
    assert!(reason(b).contains("404 InvalidRequestUri"), "{}", reason(b));
    // The storage account and the key vault of the world: the VM's token for the data
    // plane fetched inside the VM, the bearer-token blob read, listKeys / listServiceSas with
    // the VM's ARM token, the tools' Shared Key upload and download with the listed key, the
    // Key Vault secret read (curl and PowerShell).
    for line in [
        2598, 2606, 2752, 2776, 2799, 2818, 2985, 3219, 3241, 1154, 1175, 1196, 1395, 1763, 1783,
    ] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    // Their example outputs are compared like on the fake backend; the SAS signature of the
    // answer is masked.
    let b = block_at(r004, 3246);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(reason(b).contains("recoveryLevel"), "{}", reason(b));
    let b = block_at(r004, 3038);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(
        reason(b).contains("service returns \"sv=") && reason(b).contains("sig=[signature]"),
        "{}",
        reason(b)
    );
    assert!(
        stderr.contains("storage account micdocs") && stderr.contains("key vault micdocskv"),
        "{stderr}"
    );
    // What the live world does not have is "not checkable" with the reason, never broken.
    for (line, why) in [
        (653, "Data Lake Store"),
        (653, "not provisioned on live"),
        (1902, "not provisioned on live"),
        (8097, "VM extension"),
        (6671, "myVMSS"),
    ] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "not-checkable", "L{line}: {}", reason(b));
        assert!(reason(b).contains(why), "L{line}: {}", reason(b));
    }

    // The correct article works; the mutation is broken at its line.
    let correct = &reports[1];
    for b in correct["blocks"].as_array().unwrap() {
        if b["kind"] != "az-cli" {
            assert_eq!(status(b), "works", "L{}: {}", b["start_line"], reason(b));
        }
    }
    let line = line_of(&mutated, "169.254.169.254");
    let b = block_at(&reports[2], line);
    assert_eq!(status(b), "broken", "L{line}: {b:#}");
    assert!(reason(b).contains(&format!("L{line}")), "{}", reason(b));
    assert!(reason(b).contains("Metadata"), "{}", reason(b));

    // Torn down: no group, the ledger finished; nothing secret printed (no token, no SAS
    // signature, none of the account's keys the examples listed).
    assert_torn_down(&cloud, &ledger.0, &stderr);
    let secret = cloud.deployer().client_secret;
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    let keys = keys.await.unwrap();
    assert!(
        !keys.is_empty(),
        "the world's storage account was never seen"
    );
    for k in &keys {
        assert!(!stdout.contains(k.as_str()) && !stderr.contains(k.as_str()));
    }
    for out in [&stdout, &stderr] {
        for (i, _) in out.match_indices("sig=") {
            let next = out[i + 4..].chars().next();
            assert!(
                out[i..].starts_with("sig=[signature]")
                    || !next.is_some_and(|c| c.is_ascii_alphanumeric() || "%+/".contains(c)),
                "an unmasked SAS signature: {}",
                &out[i..(i + 40).min(out.len())]
            );
        }
    }
    assert!(jwts(&stdout).is_empty(), "{:?}", jwts(&stdout));
    assert!(jwts(&stderr).is_empty(), "{:?}", jwts(&stderr));
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_live_check_still_tears_the_world_down() {
    let cloud = FakeCloud::start(FakeConfig {
        latency: Duration::from_millis(1),
        lro_delay: Duration::from_millis(50),
        // Run Commands far longer than the test: the check is surely interrupted in one.
        run_command_delay: Duration::from_mins(10),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let ledger = TempDir::new("ledger-int");
    let mut c = mic(&live_env(&cloud, &ledger.0));
    c.args(["docs", "check", "--backend", "live"])
        .arg("harness/cli/tests/data/docs_linux_vm_arm.md")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let started = Instant::now();
    while !cloud.describe().contains("IMDS") {
        assert!(child.try_wait().unwrap().is_none(), "the check ended early");
        assert!(started.elapsed() < Duration::from_mins(1), "no VM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The cleanup does not wait for the deletions to finish (a second Ctrl-C must stay
    // quick): give the accepted deletion its operation time.
    let waited = Instant::now();
    while !cloud.resource_group_names().is_empty() && waited.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_torn_down(&cloud, &ledger.0, &stderr);
    cloud.shutdown().await;
}

#[test]
fn a_missing_variable_is_named_and_exits_2_without_creating_anything() {
    let ledger = TempDir::new("ledger-cfg");
    let secret = "Sup3r~Secret.value-never-printed";
    let out = mic(&[
        (
            "AZURE_CLIENT_ID",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
        ),
        ("AZURE_CLIENT_SECRET", secret.into()),
        ("MIC_LIVE_AUTH", "client-secret".into()),
        (
            "AZURE_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000001".into(),
        ),
        ("MIC_LIVE_LEDGER_DIR", ledger.0.display().to_string()),
    ])
    .env_remove("AZURE_TENANT_ID")
    .env_remove("AZURE_LOCATION")
    .args([
        "docs",
        "check",
        "--backend",
        "live",
        "docs/articles/004_68e52737ddb40452.txt",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the live backend is not configured"),
        "{stderr}"
    );
    for v in ["AZURE_TENANT_ID", "AZURE_LOCATION"] {
        assert_eq!(
            stderr.lines().filter(|l| l.contains(v)).count(),
            1,
            "{v}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("AZURE_SUBSCRIPTION_ID"), "{stderr}");
    assert!(!stderr.contains(secret) && !stdout.contains(secret));
    assert!(stdout.is_empty(), "no report: {stdout}");
    assert!(
        std::fs::read_dir(&ledger.0).unwrap().next().is_none(),
        "no ledger for a run that never started"
    );
}

const DATA_ARTICLE: &str = r#"# Storage and Key Vault from a Linux VM

Read the blob:

```bash
curl https://<STORAGE ACCOUNT>.blob.core.windows.net/<CONTAINER NAME>/<FILE NAME> -H "x-ms-version: 2017-11-09" -H "Authorization: Bearer <ACCESS TOKEN>"
```

List the keys:

```bash
curl https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>/providers/Microsoft.Storage/storageAccounts/<STORAGE ACCOUNT NAME>/listKeys?api-version=2016-12-01 --request POST -d "" -H "Authorization: Bearer <ACCESS TOKEN>"
```

Read the secret:

```bash
curl https://<YOUR-KEY-VAULT-URL>/secrets/<SECRET-NAME>?api-version=2016-10-01 -H "Authorization: Bearer <ACCESS TOKEN>"
```
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_data_planes_the_world_still_checks_and_says_why() {
    // IMDS in myVM fails once the storage account exists (after the VM's ARM token was
    // fetched): the VM gets no Storage token within the budget, the data planes are given
    // up, the check goes on and everything is torn down.
    let cloud = FakeCloud::start(FakeConfig {
        latency: Duration::from_millis(1),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let ledger = TempDir::new("ledger-nodata");
    let articles = TempDir::new("articles-nodata");
    std::fs::write(articles.0.join("data.md"), DATA_ARTICLE).unwrap();
    let mut env = live_env(&cloud, &ledger.0);
    env.retain(|(k, _)| *k != "MIC_LIVE_PROPAGATION_BUDGET_SECS");
    env.push(("MIC_LIVE_PROPAGATION_BUDGET_SECS", "2".into()));
    let mut c = mic(&env);
    c.args(["docs", "check", "--backend", "live", "--format", "json"])
        .arg(articles.0.join("data.md"));
    let faults = {
        let cloud = cloud.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            while started.elapsed() < Duration::from_mins(1) {
                if let Some((name, _)) = cloud
                    .service_urls()
                    .into_iter()
                    .find(|(n, _)| n.starts_with("blob:micdocs"))
                {
                    let run = &name["blob:micdocs".len()..];
                    let vm = format!(
                        "/subscriptions/{}/resourceGroups/mic-docs-{run}/providers/Microsoft.Compute/virtualMachines/myVM",
                        cloud.subscription_id()
                    );
                    cloud.inject_imds_fault(
                        &vm,
                        mic_fake::Fault {
                            kind: mic_fake::FaultKind::Status(500),
                            skip: 0,
                            count: 100,
                        },
                    );
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            false
        })
    };
    let out = run(c).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        faults.await.unwrap(),
        "no storage account was created\n{stderr}"
    );
    let reports: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("JSON report: {e}\nstderr: {stderr}"));
    for needle in ["blob.core.windows.net", "listKeys", "/secrets/"] {
        let line = line_of(DATA_ARTICLE, needle);
        let b = block_at(&reports[0], line);
        assert_eq!(status(b), "not-checkable", "L{line}: {}", reason(b));
        assert!(
            reason(b).contains("could not be provisioned on live")
                && reason(b).contains("IMDS in myVM gave no token"),
            "L{line}: {}",
            reason(b)
        );
    }
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_torn_down(&cloud, &ledger.0, &stderr);
    assert!(jwts(&stdout).is_empty() && jwts(&stderr).is_empty());
    cloud.shutdown().await;
}
