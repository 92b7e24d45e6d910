//! ARM response shapes across api-versions, checked against Microsoft's examples where they exist.

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;

use common::*;
use serde_json::{Value, json};

fn examples() -> Value {
    serde_json::from_str(include_str!("data/spec-examples.json")).unwrap()
}

#[tokio::test]
async fn user_assigned_identity_shapes() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let ex = examples();
    let created = create_uami(&cloud, &tok, "rg", "id1").await;
    assert_same_shape(&ex["msi_2018-11-30_create_201"], &created, "create");
    assert!(
        created["id"]
            .as_str()
            .unwrap()
            .contains("/resourcegroups/rg/")
    );
    let id = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        rg_id(&cloud, "rg")
    );
    for (v, key) in [
        ("2015-08-31-preview", "msi_2015-08-31-preview_get_200"),
        ("2023-01-31", "msi_2023-01-31_get_200"),
    ] {
        let r = call(
            "GET",
            &format!("{}{id}?api-version={v}", cloud.arm_url()),
            Some(&tok),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        assert_same_shape(&ex[key], &r.body, v);
    }
    // Update -> 200, list by RG and subscription, delete 200 then 204.
    let r = call(
        "PUT",
        &format!("{}{id}?api-version=2018-11-30", cloud.arm_url()),
        Some(&tok),
        Some(json!({"location": "westus", "tags": {"a": "b"}})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["properties"]["principalId"],
        created["properties"]["principalId"]
    );
    let r = call(
        "PATCH",
        &format!("{}{id}?api-version=2023-01-31", cloud.arm_url()),
        Some(&tok),
        Some(json!({"tags": {"c": "d"}})),
    )
    .await;
    assert_eq!((r.status, &r.body["tags"]), (200, &json!({"c": "d"})));
    for url in [
        format!(
            "{}{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2018-11-30",
            cloud.arm_url(),
            rg_id(&cloud, "rg")
        ),
        format!(
            "{}/subscriptions/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2018-11-30",
            cloud.arm_url(),
            cloud.subscription_id()
        ),
    ] {
        let r = call("GET", &url, Some(&tok), None).await;
        assert_eq!(r.body["value"].as_array().map(Vec::len), Some(1), "{url}");
    }
    let r = call(
        "PUT",
        &format!("{}{id}x?api-version=2018-11-30", cloud.arm_url()),
        Some(&tok),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("LocationRequired"))
    );
    assert_eq!(
        call(
            "DELETE",
            &format!("{}{id}?api-version=2018-11-30", cloud.arm_url()),
            Some(&tok),
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(
            "DELETE",
            &format!("{}{id}?api-version=2018-11-30", cloud.arm_url()),
            Some(&tok),
            None
        )
        .await
        .status,
        204
    );
    let r = call(
        "GET",
        &format!("{}{id}?api-version=2018-11-30", cloud.arm_url()),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
}

#[tokio::test]
async fn vm_identity_array_and_dictionary_shapes() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    create_uami(&cloud, &tok, "rg", "ID1").await;
    create_uami(&cloud, &tok, "rg", "ID2").await;
    let id1 = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ID1",
        rg_id(&cloud, "rg")
    );
    let id2 = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ID2",
        rg_id(&cloud, "rg")
    );

    // 2017-12-01: identityIds array.
    let (vm, body) = create_vm(
        &cloud,
        &tok,
        "rg",
        "vm",
        "2017-12-01",
        json!({"type": "userAssigned", "identityIds": [id1]}),
    )
    .await;
    assert_eq!(
        body["identity"],
        json!({"type": "UserAssigned", "identityIds": [id1]})
    );
    let url = |v: &str| format!("{}{vm}?api-version={v}", cloud.arm_url());
    let r = call(
        "PATCH",
        &url("2017-12-01"),
        Some(&tok),
        Some(
            json!({"identity": {"type": "SystemAssigned,UserAssigned", "identityIds": [id1, id2]}}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["identity"]["type"], "SystemAssigned, UserAssigned");
    assert_eq!(r.body["identity"]["identityIds"], json!([id1, id2]));
    let principal = r.body["identity"]["principalId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.body["identity"]["tenantId"], cloud.tenant_id());
    // Remove ID2 by listing only ID1 (replacement).
    let r = call(
        "PATCH",
        &url("2017-12-01"),
        Some(&tok),
        Some(json!({"identity": {"type": "SystemAssigned, UserAssigned", "identityIds": [id1]}})),
    )
    .await;
    assert_eq!(r.body["identity"]["identityIds"], json!([id1]));
    assert_eq!(
        r.body["identity"]["principalId"],
        principal.as_str(),
        "principal kept while enabled"
    );

    // 2018-06-01: dictionary with principalId/clientId.
    let r = call("GET", &url("2018-06-01"), Some(&tok), None).await;
    let d = &r.body["identity"]["userAssignedIdentities"];
    assert!(
        d[&id1]["principalId"].is_string() && d[&id1]["clientId"].is_string(),
        "{}",
        r.body
    );
    let r = call("PATCH", &url("2018-06-01"), Some(&tok), Some(json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {id2.clone(): {}}}}))).await;
    let keys: Vec<&String> = r.body["identity"]["userAssignedIdentities"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, [&id1, &id2], "PATCH merges the dictionary");
    let r = call("PATCH", &url("2018-06-01"), Some(&tok), Some(json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {id2.clone(): null}}}))).await;
    let keys: Vec<&String> = r.body["identity"]["userAssignedIdentities"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, [&id1], "null removes");
    // Disable system -> principal removed; enable again -> a new principal.
    let r = call(
        "PATCH",
        &url("2018-06-01"),
        Some(&tok),
        Some(json!({"identity": {"type": "UserAssigned"}})),
    )
    .await;
    assert_eq!(r.body["identity"]["type"], "UserAssigned");
    assert!(cloud.directory().get(&principal).is_none());
    let r = call(
        "PATCH",
        &url("2018-06-01"),
        Some(&tok),
        Some(json!({"identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(r.body["identity"]["type"], "SystemAssigned");
    assert_ne!(r.body["identity"]["principalId"], principal.as_str());
    assert!(r.body["identity"].get("userAssignedIdentities").is_none());
    let r = call(
        "PATCH",
        &url("2018-06-01"),
        Some(&tok),
        Some(json!({"identity": {"type": "none"}})),
    )
    .await;
    // Compute drops the block once no identity is left.
    assert!(
        r.body.get("identity").is_none() || r.body["identity"] == json!({"type": "None"}),
        "{}",
        r.body
    );

    // Errors: unknown type, missing user identity, missing location, LRO headers.
    let r = call(
        "PATCH",
        &url("2018-06-01"),
        Some(&tok),
        Some(json!({"identity": {"type": "Everything"}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidRequestFormat"))
    );
    let ghost = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ghost",
        rg_id(&cloud, "rg")
    );
    let r = call(
        "PATCH",
        &url("2018-06-01"),
        Some(&tok),
        Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {ghost: {}}}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("FailedIdentityOperation"))
    );
    let r = call(
        "PUT",
        &format!("{}{vm}2?api-version=2018-06-01", cloud.arm_url()),
        Some(&tok),
        Some(json!({"properties": {}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("LocationRequired"))
    );
    let r = call(
        "PUT",
        &url("2018-06-01"),
        Some(&tok),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    let op = r.headers["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(r.headers.contains_key("retry-after"));
    let s = call("GET", &op, Some(&tok), None).await;
    assert_eq!(s.body["status"], "Succeeded");
    let r = call("GET", &url("2099-01-01"), Some(&tok), None).await;
    assert_eq!(r.body["error"]["code"], "NoRegisteredProviderFound");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2018-06-01")
    );
}

#[tokio::test]
async fn lro_in_progress_then_succeeded() {
    let cloud = world_with(|c| c.lro_delay = std::time::Duration::from_secs(60)).await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let id = format!(
        "{}/providers/Microsoft.Compute/virtualMachineScaleSets/ss",
        rg_id(&cloud, "rg")
    );
    let r = call(
        "PUT",
        &format!("{}{id}?api-version=2018-06-01", cloud.arm_url()),
        Some(&tok),
        Some(json!({"location": "westus", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    assert!(cloud.imds_url(&id).is_some());
    let op = r.headers["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        call("GET", &op, Some(&tok), None).await.body["status"],
        "InProgress"
    );
    cloud.advance_clock(std::time::Duration::from_secs(61));
    assert_eq!(
        call("GET", &op, Some(&tok), None).await.body["status"],
        "Succeeded"
    );
    let r = call(
        "GET",
        &format!("{}{id}?api-version=2018-06-01", cloud.arm_url()),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    assert!(r.body["properties"]["uniqueId"].is_string());
}

#[tokio::test]
async fn resource_group_lifecycle() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let url = format!("{}?api-version=2016-09-01", rg_url(&cloud, "Life"));
    assert_eq!(call("HEAD", &url, Some(&tok), None).await.status, 404);
    let r = call("GET", &url, Some(&tok), None).await;
    assert_eq!(
        r.body,
        json!({"error": {"code": "ResourceGroupNotFound", "message": "Resource group 'Life' could not be found."}})
    );
    let r = call("PUT", &url, Some(&tok), Some(json!({"location": "westus"}))).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body,
        json!({"id": rg_id(&cloud, "Life"), "name": "Life", "location": "westus", "properties": {"provisioningState": "Succeeded"}})
    );
    assert_eq!(
        call("PUT", &url, Some(&tok), Some(json!({"location": "westus"})))
            .await
            .status,
        200
    );
    let r = call("PUT", &url, Some(&tok), Some(json!({"location": "eastus"}))).await;
    assert_eq!(r.body["error"]["code"], "InvalidResourceGroupLocation");
    // Paths are case-insensitive.
    let lower = format!(
        "{}/SUBSCRIPTIONS/{}/RESOURCEGROUPS/life/?api-version=2016-09-01",
        cloud.arm_url(),
        cloud.subscription_id()
    );
    assert_eq!(call("HEAD", &lower, Some(&tok), None).await.status, 204);
    let r = call(
        "GET",
        &format!("{}?api-version=2024-03-01", rg_url(&cloud, "Life")),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.body["type"], "Microsoft.Resources/resourceGroups");
    let r = call(
        "GET",
        &format!("{}?api-version=2015-13-01", rg_url(&cloud, "Life")),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.body["error"]["code"], "InvalidApiVersionParameter");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The api-version '2015-13-01' is invalid. The supported versions are '")
    );
    // Deleting removes contained resources, IMDS servers, role assignments.
    let (vm, body) = create_vm(
        &cloud,
        &tok,
        "Life",
        "vm",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let p = body["identity"]["principalId"].as_str().unwrap().to_owned();
    assert_eq!(
        assign(&cloud, &tok, &rg_id(&cloud, "Life"), READER, &p)
            .await
            .status,
        201
    );
    let r = call("DELETE", &url, Some(&tok), None).await;
    assert_eq!(r.status, 202);
    let loc = r.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(call("GET", &loc, Some(&tok), None).await.status, 200);
    assert_eq!(call("HEAD", &url, Some(&tok), None).await.status, 404);
    assert!(cloud.imds_url(&vm).is_none());
    assert!(cloud.resource_group_names().is_empty());
    assert!(!cloud.authorize(
        &p,
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        &rg_id(&cloud, "Life")
    ));
}

#[tokio::test]
async fn role_assignment_shapes() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let (_, body) = create_vm(
        &cloud,
        &tok,
        "rg",
        "vm",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let p = body["identity"]["principalId"].as_str().unwrap().to_owned();
    let ex = examples();
    let scope = rg_id(&cloud, "rg");
    let rd = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{READER}",
        cloud.subscription_id()
    );
    let base = format!(
        "{}{scope}/providers/Microsoft.Authorization/roleAssignments",
        cloud.arm_url()
    );
    let put = |v: &'static str, name: String, body: Value| {
        let url = format!("{base}/{name}?api-version={v}");
        let tok = tok.clone();
        async move { call("PUT", &url, Some(&tok), Some(body)).await }
    };
    let name = uuid::Uuid::new_v4().to_string();
    let r = put(
        "2015-07-01",
        name.clone(),
        json!({"properties": {"roleDefinitionId": rd, "principalId": p}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_same_shape(&ex["authz_2015-07-01_put_ra_201"], &r.body, "2015");
    // Duplicate (other name) -> 409.
    let r = put(
        "2022-04-01",
        uuid::Uuid::new_v4().to_string(),
        json!({"properties": {"roleDefinitionId": rd, "principalId": p}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists"))
    );
    // 2022-04-01 shape, with the extra properties.
    let r = put("2022-04-01", uuid::Uuid::new_v4().to_string(), json!({"properties": {"roleDefinitionId": rd.replace(READER, CONTRIBUTOR), "principalId": p, "principalType": "ServicePrincipal"}})).await;
    assert_eq!(r.status, 201);
    let props = r.body["properties"].as_object().unwrap();
    for k in [
        "roleDefinitionId",
        "principalId",
        "principalType",
        "scope",
        "condition",
        "conditionVersion",
        "createdOn",
        "updatedOn",
        "createdBy",
        "updatedBy",
        "delegatedManagedIdentityResourceId",
        "description",
    ] {
        assert!(props.contains_key(k), "{k}");
    }
    let mut trimmed = r.body.clone();
    for k in [
        "condition",
        "conditionVersion",
        "createdOn",
        "updatedOn",
        "createdBy",
        "updatedBy",
        "delegatedManagedIdentityResourceId",
        "description",
    ] {
        trimmed["properties"].as_object_mut().unwrap().remove(k);
    }
    assert_same_shape(&ex["authz_2022-04-01_put_ra_201"], &trimmed, "2022");
    // Errors.
    let r = put(
        "2022-04-01",
        "not-a-guid".into(),
        json!({"properties": {"roleDefinitionId": rd, "principalId": p}}),
    )
    .await;
    assert_eq!(r.body["error"]["code"], "InvalidRoleAssignmentId");
    let r = put("2022-04-01", uuid::Uuid::new_v4().to_string(), json!({"properties": {"roleDefinitionId": rd.replace(READER, "11111111-1111-1111-1111-111111111111"), "principalId": p}})).await;
    assert_eq!(r.body["error"]["code"], "RoleDefinitionDoesNotExist");
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = put(
        "2022-04-01",
        uuid::Uuid::new_v4().to_string(),
        json!({"properties": {"roleDefinitionId": rd, "principalId": ghost}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("PrincipalNotFound"))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "Principal {} does not exist in the directory {}.",
                ghost.replace('-', ""),
                cloud.tenant_id()
            ))
    );
    // Lists and filters.
    let list = |f: &str| {
        format!(
            "{}{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter={f}",
            cloud.arm_url()
        )
    };
    let r = call("GET", &list("atScope()"), Some(&tok), None).await;
    assert_eq!(
        r.body["value"].as_array().unwrap().len(),
        3,
        "two here + deployer's Owner above"
    );
    let r = call(
        "GET",
        &list(&format!("principalId eq '{p}'")),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2);
    // GET, DELETE 200 then 204.
    let one = format!(
        "{}{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01",
        cloud.arm_url()
    );
    assert_eq!(call("GET", &one, Some(&tok), None).await.status, 200);
    assert_eq!(call("DELETE", &one, Some(&tok), None).await.status, 200);
    assert_eq!(call("DELETE", &one, Some(&tok), None).await.status, 204);
    assert_eq!(
        call("GET", &one, Some(&tok), None).await.body["error"]["code"],
        "RoleAssignmentNotFound"
    );
}

#[tokio::test]
async fn role_definitions() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let ex = examples();
    let sub = format!("/subscriptions/{}", cloud.subscription_id());
    let r = call("GET", &format!("{}{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER}?api-version=2022-04-01", cloud.arm_url()), Some(&tok), None).await;
    assert_eq!(r.status, 200);
    let mut trimmed = r.body.clone();
    for k in ["createdOn", "updatedOn", "createdBy", "updatedBy"] {
        trimmed["properties"].as_object_mut().unwrap().remove(k);
    }
    assert_same_shape(&ex["authz_2022-04-01_get_rd_200"], &trimmed, "rd");
    let r = call("GET", &format!("{}{sub}/providers/Microsoft.Authorization/roleDefinitions?api-version=2015-07-01&$filter=roleName%20eq%20'Reader'", cloud.arm_url()), Some(&tok), None).await;
    let v = r.body["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["name"], READER);
    assert_eq!(
        v[0]["properties"]["permissions"],
        json!([{"actions": ["*/read"], "notActions": []}])
    );
    let r = call(
        "GET",
        &format!(
            "{}/providers/Microsoft.Authorization/roleDefinitions/{READER}?api-version=2022-04-01",
            cloud.arm_url()
        ),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(
        r.body["id"],
        format!("/providers/Microsoft.Authorization/roleDefinitions/{READER}"),
        "{}",
        r.body
    );
}
