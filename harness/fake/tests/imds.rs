//! IMDS protocol: error table, identity selection, faults, the legacy extension endpoint and

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]
//! the App Service identity endpoint.

mod common;

use std::time::Duration;

use common::*;
use mic_fake::{FakeCloud, Fault, FaultKind};
use rstest::rstest;
use serde_json::{Value, json};

struct Host {
    cloud: FakeCloud,
    vm: String,
}

async fn vm_with(identity: Value) -> Host {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    for n in ["id1", "id2"] {
        create_uami(&cloud, &tok, "rg", n).await;
    }
    let identity =
        serde_json::from_str(&identity.to_string().replace("$RG", &rg_id(&cloud, "rg"))).unwrap();
    let (vm, _) = create_vm(&cloud, &tok, "rg", "vm", "2018-06-01", identity).await;
    Host { cloud, vm }
}

async fn raw(url: &str, method: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = client().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

const ARM_Q: &str = "resource=https%3A%2F%2Fmanagement.azure.com%2F";

#[rstest]
#[case::no_metadata("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&$Q", &[], 400, "bad_request_102")]
#[case::metadata_capital("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&$Q", &[("Metadata", "True")], 400, "bad_request_102")]
#[case::forwarded("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&$Q", &[("Metadata", "true"), ("X-Forwarded-For", "10.0.0.1")], 400, "bad_request")]
#[case::no_api_version("GET", "/metadata/identity/oauth2/token?$Q", &[("Metadata", "true")], 400, "invalid_request")]
#[case::no_resource("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01", &[("Metadata", "true")], 400, "invalid_request")]
#[case::unknown_resource("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://nothing.example/", &[("Metadata", "true")], 400, "invalid_resource")]
#[case::bad_client_id("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&$Q&client_id=00000000-0000-0000-0000-000000000000", &[("Metadata", "true")], 400, "invalid_request")]
#[case::post("POST", "/metadata/identity/oauth2/token?api-version=2018-02-01&$Q", &[("Metadata", "true")], 405, "method_not_allowed")]
#[case::unknown_path("GET", "/metadata/nothing?api-version=2018-02-01", &[("Metadata", "true")], 404, "not_found")]
#[tokio::test]
async fn imds_error_table(
    #[case] method: &str,
    #[case] path: &str,
    #[case] headers: &[(&str, &str)],
    #[case] status: u16,
    #[case] error: &str,
) {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    let url = format!(
        "{}{}",
        h.cloud.imds_url(&h.vm).unwrap(),
        path.replace("$Q", ARM_Q)
    );
    let (s, body) = raw(&url, method, headers).await;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn imds_bad_api_version_and_messages() {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    let base = h.cloud.imds_url(&h.vm).unwrap();
    let (s, body) = raw(
        &format!("{base}/metadata/identity/oauth2/token?api-version=2099-01-01&{ARM_Q}"),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(s, 400);
    assert!(body["newest-versions"].is_array());
    let (_, body) = raw(
        &format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&{ARM_Q}"),
        "GET",
        &[],
    )
    .await;
    assert_eq!(
        body["error_description"],
        "Required metadata header not specified"
    );
    let (_, body) = raw(&format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://nothing.example/"), "GET", &[("Metadata", "true")]).await;
    let d = body["error_description"].as_str().unwrap();
    assert!(d.starts_with("AADSTS500011: The resource principal named https://nothing.example/ was not found in the tenant named"), "{d}");
}

#[rstest]
#[case::raw(
    "resource=https://management.azure.com/",
    "https://management.azure.com/"
)]
#[case::encoded(
    "resource=https%3A%2F%2Fmanagement.azure.com%2F",
    "https://management.azure.com/"
)]
#[case::half(
    "resource=https%3A%2F%2Fmanagement.azure.com/",
    "https://management.azure.com/"
)]
#[case::no_slash(
    "resource=https://management.azure.com",
    "https://management.azure.com"
)]
#[case::vault("resource=https%3A%2F%2Fvault.azure.net", "https://vault.azure.net")]
#[tokio::test]
async fn imds_success_shape(#[case] q: &str, #[case] aud: &str) {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    let (s, body) = raw(
        &format!(
            "{}/metadata/identity/oauth2/token?api-version=2021-02-01&{q}",
            h.cloud.imds_url(&h.vm).unwrap()
        ),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    for k in [
        "access_token",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
        "client_id",
    ] {
        assert!(body[k].is_string(), "{k} must be a string: {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], aud);
    assert_eq!(body["expires_in"], "3599");
    let on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let nb: i64 = body["not_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(on - nb, 3900);
    let c = h
        .cloud
        .verify_token(body["access_token"].as_str().unwrap(), &[aud])
        .unwrap();
    assert_eq!(c.aud, aud);
    assert_eq!(c.xms_az_rid.as_deref(), Some(h.vm.as_str()));
}

#[tokio::test]
async fn identity_selection_rules() {
    // System + two user identities: no selector -> system.
    let h = vm_with(json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1": {}, "$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2": {}}})).await;
    let dir = h.cloud.directory();
    let id1 = dir
        .by_resource_id(&format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
            rg_id(&h.cloud, "rg")
        ))
        .unwrap()
        .clone();
    let r = imds_token(&h.cloud, &h.vm, "").await;
    assert_eq!(r.status, 200);
    let c = h
        .cloud
        .verify_token(r.body["access_token"].as_str().unwrap(), &[ARM])
        .unwrap();
    assert_eq!(c.xms_mirid.as_deref(), Some(h.vm.as_str()));
    // By client_id, object_id, mi_res_id, msi_res_id.
    for sel in [
        format!("&client_id={}", id1.app_id),
        format!("&object_id={}", id1.object_id),
        format!("&mi_res_id={}", id1.resource_id.clone().unwrap()),
        format!(
            "&msi_res_id={}",
            id1.resource_id.clone().unwrap().to_ascii_lowercase()
        ),
    ] {
        let r = imds_token(&h.cloud, &h.vm, &sel).await;
        assert_eq!(r.status, 200, "{sel}: {}", r.body);
        assert_eq!(r.body["client_id"], id1.app_id.as_str());
        let c = h
            .cloud
            .verify_token(r.body["access_token"].as_str().unwrap(), &[ARM])
            .unwrap();
        assert_eq!(c.oid, id1.object_id);
        // ARM ids compare case-insensitively; the token spells the segment as the MSI
        // provider prints the identity's id (`resourcegroups`).
        assert!(
            c.xms_mirid
                .as_deref()
                .unwrap()
                .eq_ignore_ascii_case(id1.resource_id.as_deref().unwrap()),
            "{:?}",
            c.xms_mirid
        );
    }

    // Two user identities, no system: ambiguous.
    let h = vm_with(json!({"type": "UserAssigned", "userAssignedIdentities": {"$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1": {}, "$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2": {}}})).await;
    let r = imds_token(&h.cloud, &h.vm, "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error_description"],
        "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"
    );

    // One user identity: used without selector.
    let h = vm_with(json!({"type": "userAssigned", "userAssignedIdentities": {"$RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id2": {}}})).await;
    assert_eq!(imds_token(&h.cloud, &h.vm, "").await.status, 200);

    // No identity at all.
    let h = vm_with(json!({"type": "None"})).await;
    let r = imds_token(&h.cloud, &h.vm, "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "invalid_request", "error_description": "Identity not found"})
    );
}

#[rstest]
#[case(404)]
#[case(410)]
#[case(429)]
#[case(500)]
#[tokio::test]
async fn injected_status_faults(#[case] code: u16) {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    h.cloud.inject_imds_fault(
        &h.vm.to_uppercase(),
        Fault {
            kind: FaultKind::Status(code),
            skip: 1,
            count: 2,
        },
    );
    assert_eq!(imds_token(&h.cloud, &h.vm, "").await.status, 200);
    for _ in 0..2 {
        let r = imds_token(&h.cloud, &h.vm, "").await;
        assert_eq!(r.status, code);
        assert!(r.body["error"].is_string());
        if code == 410 {
            assert!(r.headers.contains_key("retry-after"));
        }
    }
    assert_eq!(imds_token(&h.cloud, &h.vm, "").await.status, 200);
}

#[tokio::test]
async fn injected_timeout_trips_client_timeout() {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    h.cloud.inject_imds_fault(
        &h.vm,
        Fault {
            kind: FaultKind::Timeout,
            skip: 0,
            count: 1,
        },
    );
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&{ARM_Q}",
        h.cloud.imds_url(&h.vm).unwrap()
    );
    let err = client()
        .get(&url)
        .header("Metadata", "true")
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(err.is_err_and(|e| e.is_timeout()));
    assert_eq!(imds_token(&h.cloud, &h.vm, "").await.status, 200);
    // Shutdown is not held up by the held request.
    let started = std::time::Instant::now();
    h.cloud.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn identity_info_and_instance() {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    let base = h.cloud.imds_url(&h.vm).unwrap();
    let (s, body) = raw(
        &format!("{base}/metadata/identity/info?api-version=2018-02-01"),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["tenantId"], h.cloud.tenant_id());
    let (s, body) = raw(
        &format!("{base}/metadata/instance?api-version=2021-02-01"),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["compute"]["subscriptionId"], h.cloud.subscription_id());
    let (s, body) = raw(
        &format!("{base}/metadata/instance/compute/name?api-version=2021-02-01"),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!((s, body), (200, json!("vm")));
}

#[tokio::test]
async fn imds_stops_when_vm_deleted() {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    let tok = deployer_token(&h.cloud).await;
    assert!(h.cloud.imds_url(&h.vm).is_some());
    let r = call(
        "DELETE",
        &format!("{}{}?api-version=2018-06-01", h.cloud.arm_url(), h.vm),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 202);
    assert!(r.headers.contains_key("azure-asyncoperation"));
    assert!(h.cloud.imds_url(&h.vm).is_none());
}

#[tokio::test]
async fn legacy_extension_endpoint() {
    let h = vm_with(json!({"type": "SystemAssigned"})).await;
    let tok = deployer_token(&h.cloud).await;
    assert!(h.cloud.extension_url(&h.vm).is_none());
    let ext = format!(
        "{}{}/extensions/ManagedIdentityExtensionForLinux?api-version=2018-06-01",
        h.cloud.arm_url(),
        h.vm
    );
    let body = json!({"location": "westus", "properties": {"publisher": "Microsoft.ManagedIdentity", "type": "ManagedIdentityExtensionForLinux", "typeHandlerVersion": "1.0", "autoUpgradeMinorVersion": true, "settings": {"port": 50342}}});
    let r = call("PUT", &ext, Some(&tok), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let base = h.cloud.extension_url(&h.vm).unwrap();
    let (s, body) = raw(
        &format!("{base}/oauth2/token?{ARM_Q}"),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["resource"], ARM);
    let r = client()
        .post(format!("{base}/oauth2/token"))
        .header("Metadata", "true")
        .form(&[("resource", ARM)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, body) = raw(&format!("{base}/oauth2/token?{ARM_Q}"), "GET", &[]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("bad_request_102")));
    let (s, body) = raw(
        &format!("{base}/oauth2/tok?{ARM_Q}"),
        "GET",
        &[("Metadata", "true")],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (401, Some("unknown_source")));
    assert_eq!(call("DELETE", &ext, Some(&tok), None).await.status, 202);
    assert!(h.cloud.extension_url(&h.vm).is_none());
}

#[tokio::test]
async fn app_service_identity_endpoint() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let site = format!("{}/providers/Microsoft.Web/sites/app1", rg_id(&cloud, "rg"));
    let r = call(
        "PUT",
        &format!("{}{site}?api-version=2018-02-01", cloud.arm_url()),
        Some(&tok),
        Some(json!({"location": "westus", "identity": {"type": "SystemAssigned"}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let principal = r.body["identity"]["principalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (endpoint, secret) = cloud.app_service_identity(&site).unwrap();
    let url = format!("{endpoint}?api-version=2019-08-01&resource=https://vault.azure.net");
    let (s, body) = raw(&url, "GET", &[("X-IDENTITY-HEADER", secret.as_str())]).await;
    assert_eq!(s, 200, "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_on",
            "resource",
            "token_type",
            "client_id"
        ]
    );
    assert_eq!(
        cloud
            .verify_token(
                body["access_token"].as_str().unwrap(),
                &["https://vault.azure.net"]
            )
            .unwrap()
            .oid,
        principal
    );
    assert_eq!(
        raw(&url, "GET", &[("X-IDENTITY-HEADER", "wrong")]).await.0,
        401
    );
    assert_eq!(raw(&url, "GET", &[]).await.0, 400);
}
