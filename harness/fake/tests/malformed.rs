//! Garbage to every endpoint: always a well-formed error from the service, never a panic or a

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]
//! dropped connection.

mod common;

use common::*;
use serde_json::{Value, json};

fn garbage_bodies() -> Vec<Vec<u8>> {
    vec![
        b"{".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"[1,2,3]".to_vec(),
        b"\"str\"".to_vec(),
        b"{\"location\": 5, \"identity\": {\"type\": 7, \"userAssignedIdentities\": [1]}, \"properties\": \"x\", \"tags\": [1]}".to_vec(),
        b"{\"identity\": {\"type\": \"UserAssigned\", \"userAssignedIdentities\": {\"x\": 5}, \"identityIds\": \"y\"}, \"location\": \"westus\"}".to_vec(),
        b"{\"properties\": {\"roleDefinitionId\": 5, \"principalId\": null}}".to_vec(),
        vec![b'a'; 5 * 1024 * 1024],
    ]
}

async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let mut rb = client()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .body(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: connection failed: {e}"));
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn garbage_everywhere() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    create_uami(&cloud, &tok, "rg", "id1").await;
    let (vm, _) = create_vm(
        &cloud,
        &tok,
        "rg",
        "vm",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let site = format!("{}/providers/Microsoft.Web/sites/app", rg_id(&cloud, "rg"));
    call(
        "PUT",
        &format!("{}{site}?api-version=2018-02-01", cloud.arm_url()),
        Some(&tok),
        Some(json!({"location": "westus", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    let ext = format!("{vm}/extensions/ManagedIdentityExtensionForWindows");
    call("PUT", &format!("{}{ext}?api-version=2018-06-01", cloud.arm_url()), Some(&tok), Some(json!({"location": "westus", "properties": {"type": "ManagedIdentityExtensionForWindows"}}))).await;

    // Token service.
    let login = cloud.login_url();
    for path in [
        format!("/{}/oauth2/token", cloud.tenant_id()),
        format!("/{}/oauth2/v2.0/token", cloud.tenant_id()),
        "/x/oauth2/token".to_owned(),
        "/".to_owned(),
    ] {
        for method in ["GET", "POST", "PUT"] {
            for body in garbage_bodies() {
                let (s, text) = send(
                    method,
                    &format!("{login}{path}"),
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    body,
                )
                .await;
                assert!(s < 500, "{method} {path} -> {s}");
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path} -> {s} {text:?}"));
                assert!(v["error"].is_string(), "{text}");
            }
        }
    }

    // IMDS, extension, App Service.
    let imds = cloud.imds_url(&vm).unwrap();
    let ext_url = cloud.extension_url(&vm).unwrap();
    let (app, secret) = cloud.app_service_identity(&site).unwrap();
    let queries = [
        "",
        "?api-version=2018-02-01",
        "?api-version=2018-02-01&resource=%ZZ%00",
        "?api-version=2018-02-01&resource=https://management.azure.com/&client_id=%FF&object_id=&mi_res_id=%2F%2F",
        "?resource&api-version&&&=&",
    ];
    let targets = [
        format!("{imds}/metadata/identity/oauth2/token"),
        format!("{imds}/metadata/identity/info"),
        format!("{imds}/metadata/instance/compute/%FF"),
        format!("{imds}/"),
        format!("{ext_url}/oauth2/token"),
        format!("{ext_url}/x"),
        app.clone(),
        format!("{app}/../x"),
    ];
    for t in &targets {
        for q in queries {
            for method in ["GET", "POST", "DELETE"] {
                for headers in [
                    vec![("Metadata", "true"), ("X-IDENTITY-HEADER", secret.as_str())],
                    vec![("Metadata", "yes")],
                    vec![],
                ] {
                    let (s, text) = send(
                        method,
                        &format!("{t}{q}"),
                        &headers,
                        b"\xff\xfe garbage".to_vec(),
                    )
                    .await;
                    assert!(
                        s < 500 || s == 500 && text.contains("server_error"),
                        "{method} {t}{q} -> {s} {text}"
                    );
                    if s >= 400 {
                        let v: Value = serde_json::from_str(&text)
                            .unwrap_or_else(|_| panic!("{method} {t}{q} -> {s} {text:?}"));
                        assert!(v.is_object(), "{text}");
                    }
                }
            }
        }
    }
    assert_eq!(imds_token(&cloud, &vm, "").await.status, 200);

    // ARM (last: valid DELETEs remove things).
    let arm = cloud.arm_url();
    let sub = format!("/subscriptions/{}", cloud.subscription_id());
    let arm_paths = vec![
        format!("{sub}/resourceGroups/rg"),
        format!("{sub}/resourceGroups/r%00g%ZZ"),
        format!("{sub}/resourcegroups"),
        vm.clone(),
        format!(
            "{}/providers/Microsoft.Compute/virtualMachineScaleSets/ss",
            rg_id(&cloud, "rg")
        ),
        ext.clone(),
        format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
            rg_id(&cloud, "rg")
        ),
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/acct",
            rg_id(&cloud, "rg")
        ),
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/acct/listKeys",
            rg_id(&cloud, "rg")
        ),
        site.clone(),
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            rg_id(&cloud, "rg"),
            uuid::Uuid::new_v4()
        ),
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/x",
            rg_id(&cloud, "rg")
        ),
        format!("{sub}/providers/Microsoft.Authorization/roleDefinitions"),
        format!("{sub}/providers/Microsoft.Nope/things/x"),
        format!("{sub}/providers/Microsoft.Compute/locations/westus/operations/nothing"),
        format!("{sub}/operationresults/nothing"),
        "/".to_owned(),
        "/random/../path".to_owned(),
    ];
    let bearer = format!("Bearer {tok}");
    let header_sets: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        vec![("Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJ9.")],
        vec![("Authorization", "Basic Zm9vOmJhcg==")],
        vec![],
    ];
    for path in &arm_paths {
        for version in ["2018-06-01", "2022-04-01", "garbage", ""] {
            for method in ["GET", "PUT", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS"] {
                for headers in &header_sets {
                    let bodies = if matches!(method, "PUT" | "PATCH" | "POST")
                        && headers.len() == 2
                        && !version.is_empty()
                    {
                        garbage_bodies()
                    } else {
                        vec![Vec::new()]
                    };
                    for body in bodies {
                        let url = if version.is_empty() {
                            format!("{arm}{path}")
                        } else {
                            format!("{arm}{path}?api-version={version}")
                        };
                        let (s, text) = send(method, &url, headers, body).await;
                        assert!(s < 500, "{method} {url} -> {s} {text}");
                        if method != "HEAD" && s >= 400 {
                            let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                                panic!("{method} {url} -> {s} non-JSON {text:?}")
                            });
                            assert!(
                                v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                                "{method} {url} -> {text}"
                            );
                        }
                    }
                }
            }
        }
    }

    cloud.shutdown().await;
}
