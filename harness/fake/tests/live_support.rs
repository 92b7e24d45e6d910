//! What the live backend needs from the fake ARM, over real HTTP: Run Command (RBAC, one at a
//! time, Azure's result shape), resource-group tag filters and paging, Network references,
//! injected faults.

mod common;

use base64::Engine as _;
use common::{call, create_rg, create_vm, deployer_token, rg_id, world};
use mic_fake::{FakeCloud, runcommand};
use serde_json::{Value, json};

fn marker(url: &str) -> String {
    let doc = json!({"method": "GET", "url": url, "headers": [["Metadata", "true"]], "body": null});
    format!(
        "# mic-request v1 n0nce {}",
        base64::engine::general_purpose::STANDARD.encode(doc.to_string())
    )
}

async fn run_command(cloud: &FakeCloud, tok: &str, vm: &str, body: Value) -> common::Resp {
    call(
        "POST",
        &format!("{}{vm}/runCommand?api-version=2023-03-01", cloud.arm_url()),
        Some(tok),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn run_command_sends_the_marked_request_from_inside_the_vm() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rc").await;
    let (vm, _) = create_vm(
        &cloud,
        &tok,
        "rc",
        "vm1",
        "2023-03-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let url = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/";
    let r = run_command(
        &cloud,
        &tok,
        &vm,
        json!({"commandId": "RunShellScript", "script": [marker(url), "echo hi"]}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    assert!(r.headers.contains_key("azure-asyncoperation"));
    // Poll the Location until the result.
    let mut result = Value::Null;
    for _ in 0..100 {
        let p = call("GET", &location, Some(&tok), None).await;
        if p.status == 200 {
            result = p.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let msg = result["value"][0]["message"].as_str().unwrap();
    assert_eq!(result["value"][0]["code"], "ProvisioningState/succeeded");
    assert!(
        msg.starts_with("Enable succeeded: \n[stdout]\nMIC-BEGIN v1 n0nce\nexit 0\n"),
        "{msg}"
    );
    assert!(msg.len() < runcommand::OUTPUT_LIMIT + 100);

    let other = run_command(
        &cloud,
        "not-a-token",
        &vm,
        json!({"commandId": "RunShellScript"}),
    )
    .await;
    assert_eq!(other.status, 401);
    // Wrong OS (a Linux image), missing commandId, unknown VM.
    let linux = format!(
        "{}/providers/Microsoft.Compute/virtualMachines/lin",
        rg_id(&cloud, "rc")
    );
    let r = call("PUT", &format!("{}{linux}?api-version=2023-03-01", cloud.arm_url()), Some(&tok), Some(json!({"location": "westus", "properties": {"storageProfile": {"imageReference": {"publisher": "Canonical"}}}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = run_command(
        &cloud,
        &tok,
        &linux,
        json!({"commandId": "RunPowerShellScript", "script": []}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = run_command(&cloud, &tok, &vm, json!({"script": []})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    let r = run_command(
        &cloud,
        &tok,
        &format!(
            "{}/providers/Microsoft.Compute/virtualMachines/nope",
            rg_id(&cloud, "rc")
        ),
        json!({"commandId": "RunShellScript"}),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn run_command_needs_the_run_command_action() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rc").await;
    let (vm, body) = create_vm(
        &cloud,
        &tok,
        "rc",
        "vm1",
        "2023-03-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    // The VM's identity with Reader on the group: reading is allowed, running commands not.
    let principal = body["identity"]["principalId"].as_str().unwrap().to_owned();
    let a = common::assign(
        &cloud,
        &tok,
        &rg_id(&cloud, "rc"),
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        &principal,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let mi = common::imds_token(&cloud, &vm, "").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = run_command(
        &cloud,
        &mi,
        &vm,
        json!({"commandId": "RunShellScript", "script": []}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.Compute/virtualMachines/runCommand/action")
    );
}

#[tokio::test]
async fn groups_filter_by_tag_and_page_and_nics_need_their_subnet() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let sub = cloud.subscription_id();
    for (name, tags) in [
        ("a", json!({"mic-run": "r1"})),
        ("b", json!({"MIC-RUN": "r2"})),
        ("c", json!({"other": "x"})),
    ] {
        let r = call(
            "PUT",
            &format!(
                "{}/subscriptions/{sub}/resourcegroups/{name}?api-version=2021-04-01",
                cloud.arm_url()
            ),
            Some(&tok),
            Some(json!({"location": "westus", "tags": tags})),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    let list = |q: &str| {
        format!(
            "{}/subscriptions/{sub}/resourcegroups?{q}&api-version=2021-04-01",
            cloud.arm_url()
        )
    };
    let names = |v: &Value| {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let r = call(
        "GET",
        &list("%24filter=tagName%20eq%20%27mic-run%27"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        names(&r.body),
        ["a", "b"],
        "tag names match case-insensitively"
    );
    let r = call(
        "GET",
        &list("%24filter=tagName%20eq%20%27mic-run%27%20and%20tagValue%20eq%20%27r2%27"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(names(&r.body), ["b"]);
    let r = call(
        "GET",
        &list("%24filter=name%20eq%20%27a%27"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call("GET", &list("%24top=2"), Some(&tok), None).await;
    assert_eq!(names(&r.body), ["a", "b"]);
    let next = r.body["nextLink"].as_str().unwrap();
    let r = call("GET", next, Some(&tok), None).await;
    assert_eq!(names(&r.body), ["c"]);
    assert!(r.body.get("nextLink").is_none());

    // A NIC must reference an existing subnet.
    let rg = format!("/subscriptions/{sub}/resourceGroups/a/providers/Microsoft.Network");
    let nic = json!({"location": "westus", "properties": {"ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": format!("{rg}/virtualNetworks/v/subnets/default")}}}]}});
    let nic_url = format!(
        "{}{rg}/networkInterfaces/n?api-version=2023-09-01",
        cloud.arm_url()
    );
    let put_nic = || call("PUT", &nic_url, Some(&tok), Some(nic.clone()));
    let r = put_nic().await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidResourceReference"))
    );
    let r = call("PUT", &format!("{}{rg}/virtualNetworks/v?api-version=2023-09-01", cloud.arm_url()), Some(&tok), Some(json!({"location": "westus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = put_nic().await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.0.4"
    );
}

#[tokio::test]
async fn injected_faults_answer_like_azure_then_stop() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    cloud.inject_arm_faults(&[429, 503, 500]);
    let url = format!(
        "{}/subscriptions/{}/resourcegroups?api-version=2021-04-01",
        cloud.arm_url(),
        cloud.subscription_id()
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = call("GET", &url, Some(&tok), None).await;
        seen.push((r.status, r.headers.get("retry-after").is_some()));
    }
    assert_eq!(seen, [(429, true), (503, true), (500, false), (200, false)]);
    assert_eq!(cloud.arm_fault_counts(), (4, 3));
}
