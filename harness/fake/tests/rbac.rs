//! RBAC: the unit table for wildcards / notActions, and the end-to-end VM identity flow.

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;

use std::time::Duration;

use common::*;
use mic_fake::rbac::{RoleDefinition, action_matches, role_by_name, scope_covers};
use rstest::rstest;
use serde_json::json;

#[rstest]
#[case("*", "Microsoft.Compute/virtualMachines/read", true)]
#[case(
    "*/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    true
)]
#[case("*/read", "Microsoft.Compute/virtualMachines/write", false)]
#[case("Microsoft.Compute/*", "microsoft.compute/virtualmachines/write", true)]
#[case(
    "Microsoft.Compute/*/read",
    "Microsoft.Compute/virtualMachines/extensions/read",
    true
)]
#[case(
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/roleAssignments/write",
    true
)]
#[case(
    "Microsoft.Storage/storageAccounts/listkeys/action",
    "Microsoft.Storage/storageAccounts/listKeys/action",
    true
)]
#[case("Microsoft.Storage/*", "Microsoft.StorageSync/x/read", false)]
#[case("Microsoft.Web/sites/read", "Microsoft.Web/sites/read/extra", false)]
fn wildcard_table(#[case] pattern: &str, #[case] action: &str, #[case] expected: bool) {
    assert_eq!(
        action_matches(pattern, action),
        expected,
        "{pattern} vs {action}"
    );
}

#[rstest]
#[case("Owner", "Microsoft.Authorization/roleAssignments/write", true)]
#[case("Contributor", "Microsoft.Compute/virtualMachines/write", true)]
#[case("Contributor", "Microsoft.Authorization/roleAssignments/write", false)]
#[case("Contributor", "Microsoft.Authorization/roleAssignments/delete", false)]
#[case("Contributor", "Microsoft.Authorization/roleAssignments/read", true)]
#[case(
    "Reader",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    true
)]
#[case(
    "Reader",
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    false
)]
#[case("Reader", "Microsoft.Storage/storageAccounts/listKeys/action", false)]
#[case(
    "Storage Account Key Operator Service Role",
    "Microsoft.Storage/storageAccounts/listkeys/action",
    true
)]
fn role_actions(#[case] role: &str, #[case] action: &str, #[case] expected: bool) {
    assert_eq!(role_by_name(role).unwrap().permits_action(action), expected);
}

#[rstest]
#[case(&["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"], &[], "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", true)]
#[case(&["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"], &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"], "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete", false)]
#[case(&["*"], &["*/delete"], "Microsoft.KeyVault/vaults/secrets/delete", false)]
#[case(&[], &[], "Microsoft.KeyVault/vaults/secrets/getSecret/action", false)]
fn data_action_table(
    #[case] allow: &[&str],
    #[case] deny: &[&str],
    #[case] action: &str,
    #[case] expected: bool,
) {
    let role = RoleDefinition {
        role_name: "t".into(),
        id: "x".into(),
        actions: vec![],
        not_actions: vec![],
        data_actions: allow.iter().map(|s| (*s).to_owned()).collect(),
        not_data_actions: deny.iter().map(|s| (*s).to_owned()).collect(),
    };
    assert_eq!(role.permits_data_action(action), expected);
    assert!(
        !role.permits_action(action),
        "data actions never grant control-plane actions"
    );
}

#[rstest]
#[case("/subscriptions/s", "/subscriptions/S/resourceGroups/rg", true)]
#[case(
    "/subscriptions/s/resourceGroups/rg",
    "/subscriptions/s/resourceGroups/rg/",
    true
)]
#[case(
    "/subscriptions/s/resourceGroups/rg",
    "/subscriptions/s/resourceGroups/rg2",
    false
)]
#[case(
    "/subscriptions/s/resourceGroups/rg/providers/p/t/n",
    "/subscriptions/s/resourceGroups/rg",
    false
)]
fn scope_table(#[case] assigned: &str, #[case] target: &str, #[case] expected: bool) {
    assert_eq!(scope_covers(assigned, target), expected);
}

#[tokio::test]
async fn vm_identity_needs_a_role_assignment() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg1").await;
    create_rg(&cloud, &tok, "rg2").await;
    let (vm, body) = create_vm(
        &cloud,
        &tok,
        "rg1",
        "myVM",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let principal = body["identity"]["principalId"].as_str().unwrap().to_owned();
    let sp = cloud.directory().get(&principal).cloned().unwrap();
    assert_eq!(sp.display_name, "myVM");
    assert_eq!(sp.kind, mic_fake::PrincipalKind::SystemAssigned);

    let t = imds_token(&cloud, &vm, "").await;
    assert_eq!(t.status, 200, "{}", t.body);
    let vm_tok = t.body["access_token"].as_str().unwrap().to_owned();
    let claims = cloud.verify_token(&vm_tok, &[ARM]).unwrap();
    assert_eq!(claims.oid, principal);
    assert_eq!(claims.appidacr, "2");
    assert_eq!(claims.xms_mirid.as_deref(), Some(vm.as_str()));

    let rg_get = format!("{}?api-version=2016-09-01", rg_url(&cloud, "rg1"));
    let r = call("GET", &rg_get, Some(&vm_tok), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["code"], "AuthorizationFailed");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "The client '{principal}' with object id '{principal}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/read' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            rg_id(&cloud, "rg1")
        )
    );

    // Reader on the VM itself does not grant the resource group.
    let r = assign(&cloud, &tok, &vm, READER, &principal).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(call("GET", &rg_get, Some(&vm_tok), None).await.status, 403);
    let vm_get = format!("{}{vm}?api-version=2018-06-01", cloud.arm_url());
    assert_eq!(call("GET", &vm_get, Some(&vm_tok), None).await.status, 200);

    // Reader on the group does.
    assert_eq!(
        assign(&cloud, &tok, &rg_id(&cloud, "rg1"), READER, &principal)
            .await
            .status,
        201
    );
    let r = call("GET", &rg_get, Some(&vm_tok), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    // ...but not the other group, nor writes.
    assert_eq!(
        call(
            "GET",
            &format!("{}?api-version=2016-09-01", rg_url(&cloud, "rg2")),
            Some(&vm_tok),
            None
        )
        .await
        .status,
        403
    );
    let r = call(
        "PUT",
        &rg_get,
        Some(&vm_tok),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resourceGroups/write")
    );
    // Listing groups is filtered, not refused.
    let r = call(
        "GET",
        &format!(
            "{}/subscriptions/{}/resourcegroups?api-version=2016-09-01",
            cloud.arm_url(),
            cloud.subscription_id()
        ),
        Some(&vm_tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    assert!(cloud.authorize(&principal, "Microsoft.Compute/virtualMachines/read", &vm));
    assert!(!cloud.authorize(&principal, "Microsoft.Compute/virtualMachines/write", &vm));
    cloud.shutdown().await;
}

#[tokio::test]
async fn propagation_delay_is_honoured() {
    let cloud = world_with(|c| c.propagation_delay = Duration::from_secs(300)).await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let (vm, body) = create_vm(
        &cloud,
        &tok,
        "rg",
        "vm",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let principal = body["identity"]["principalId"].as_str().unwrap().to_owned();
    assert_eq!(
        assign(&cloud, &tok, &rg_id(&cloud, "rg"), READER, &principal)
            .await
            .status,
        201
    );
    let vm_tok = imds_token(&cloud, &vm, "").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}?api-version=2016-09-01", rg_url(&cloud, "rg"));
    assert_eq!(call("GET", &url, Some(&vm_tok), None).await.status, 403);
    cloud.advance_clock(Duration::from_secs(301));
    assert_eq!(call("GET", &url, Some(&vm_tok), None).await.status, 200);
    cloud.shutdown().await;
}

#[tokio::test]
async fn contributor_cannot_assign_roles() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let (vm, body) = create_vm(
        &cloud,
        &tok,
        "rg",
        "vm",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let principal = body["identity"]["principalId"].as_str().unwrap().to_owned();
    assert_eq!(
        assign(&cloud, &tok, &rg_id(&cloud, "rg"), CONTRIBUTOR, &principal)
            .await
            .status,
        201
    );
    let vm_tok = imds_token(&cloud, &vm, "").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = assign(&cloud, &vm_tok, &rg_id(&cloud, "rg"), READER, &principal).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'Microsoft.Authorization/roleAssignments/write'")
    );
    // But it can create a storage account in the group.
    let r = call(
        "PUT",
        &format!(
            "{}{}/providers/Microsoft.Storage/storageAccounts/acct1?api-version=2017-06-01",
            cloud.arm_url(),
            rg_id(&cloud, "rg")
        ),
        Some(&vm_tok),
        Some(json!({"location": "westus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    cloud.shutdown().await;
}
