#![allow(dead_code)]

use std::time::Duration;

use mic_fake::{FakeCloud, FakeConfig};
use serde_json::{Value, json};

pub const ARM: &str = "https://management.azure.com/";

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn world() -> FakeCloud {
    FakeCloud::start(FakeConfig::default()).await.unwrap()
}

pub async fn world_with(f: impl FnOnce(&mut FakeConfig)) -> FakeCloud {
    let mut c = FakeConfig::default();
    f(&mut c);
    FakeCloud::start(c).await.unwrap()
}

/// A deployer token from the v1 token endpoint, for ARM.
pub async fn deployer_token(cloud: &FakeCloud) -> String {
    deployer_token_for(cloud, ARM).await
}

/// A deployer token (client credentials, v1 endpoint) for any resource.
pub async fn deployer_token_for(cloud: &FakeCloud, resource: &str) -> String {
    let d = cloud.deployer();
    let r = client()
        .post(format!(
            "{}/{}/oauth2/token",
            cloud.login_url(),
            cloud.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("resource", resource),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// A token from a VM's IMDS (`vm` is its ARM id) for `resource`.
pub async fn vm_token(cloud: &FakeCloud, vm: &str, resource: &str) -> String {
    let base = cloud.imds_url(vm).expect("the VM has an IMDS");
    let r = client()
        .get(format!(
            "{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = client().request(m, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

pub fn rg_url(cloud: &FakeCloud, rg: &str) -> String {
    format!(
        "{}/subscriptions/{}/resourceGroups/{rg}",
        cloud.arm_url(),
        cloud.subscription_id()
    )
}

pub fn rg_id(cloud: &FakeCloud, rg: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{rg}",
        cloud.subscription_id()
    )
}

pub async fn create_rg(cloud: &FakeCloud, tok: &str, rg: &str) {
    let r = call(
        "PUT",
        &format!("{}?api-version=2016-09-01", rg_url(cloud, rg)),
        Some(tok),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
}

/// Create a VM with `identity`; returns (vm id, response body).
pub async fn create_vm(
    cloud: &FakeCloud,
    tok: &str,
    rg: &str,
    name: &str,
    version: &str,
    identity: Value,
) -> (String, Value) {
    let id = format!(
        "{}/providers/Microsoft.Compute/virtualMachines/{name}",
        rg_id(cloud, rg)
    );
    let r = call(
        "PUT",
        &format!("{}{id}?api-version={version}", cloud.arm_url()),
        Some(tok),
        Some(json!({"location": "westus", "identity": identity, "properties": {"hardwareProfile": {"vmSize": "Standard_DS1_v2"}}})),
    )
    .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    (id, r.body)
}

pub async fn create_uami(cloud: &FakeCloud, tok: &str, rg: &str, name: &str) -> Value {
    let id = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        rg_id(cloud, rg)
    );
    let r = call(
        "PUT",
        &format!("{}{id}?api-version=2018-11-30", cloud.arm_url()),
        Some(tok),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

pub async fn assign(
    cloud: &FakeCloud,
    tok: &str,
    scope: &str,
    role_guid: &str,
    principal: &str,
) -> Resp {
    let name = uuid::Uuid::new_v4();
    call(
        "PUT",
        &format!("{}{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01", cloud.arm_url()),
        Some(tok),
        Some(json!({"properties": {
            "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}", cloud.subscription_id()),
            "principalId": principal,
        }})),
    )
    .await
}

pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

/// IMDS token for a host.
pub async fn imds_token(cloud: &FakeCloud, host_id: &str, extra: &str) -> Resp {
    let base = cloud.imds_url(host_id).expect("imds");
    let r = client()
        .get(format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F{extra}"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// Same keys (recursively) and same JSON kinds as a spec example. `null` in either matches anything.
pub fn assert_same_shape(example: &Value, actual: &Value, path: &str) {
    match (example, actual) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(e), Value::Object(a)) => {
            let mut ek: Vec<&String> = e.keys().collect();
            let mut ak: Vec<&String> = a.keys().collect();
            ek.sort();
            ak.sort();
            assert_eq!(ek, ak, "keys differ at {path}");
            for (k, v) in e {
                // Free-form maps (tags) only need to be objects.
                if k == "tags" {
                    assert!(a[k].is_object(), "{path}.tags");
                    continue;
                }
                assert_same_shape(v, &a[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e0), Some(a0)) = (e.first(), a.first()) {
                assert_same_shape(e0, a0, &format!("{path}[0]"));
            }
        }
        (e, a) => assert_eq!(
            std::mem::discriminant(e),
            std::mem::discriminant(a),
            "kind differs at {path}: {e} vs {a}"
        ),
    }
}
