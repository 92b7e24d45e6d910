//! Key Vault over real HTTP: the ARM vault and its access policies, the secrets data plane,
//! each rule shown to deny when violated (token, audience, signature, lifetime, access policy,
//! RBAC), spec conformance of the bodies, and malformed input.

#![allow(clippy::too_many_lines)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;
mod spec_schema;

use std::collections::BTreeSet;

use common::*;
use mic_fake::FakeCloud;
use serde_json::{Value, json};
use spec_schema::Check;

const VAULT: &str = "https://vault.azure.net";
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const SECRETS_OFFICER: &str = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
const KV_API: &str = "2023-07-01";

async fn token_for(cloud: &FakeCloud, resource: &str) -> String {
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

async fn vm_token(cloud: &FakeCloud, vm: &str, resource: &str) -> String {
    let base = cloud.imds_url(vm).unwrap();
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

/// A raw request: (status, headers, body text).
async fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, String) {
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
    let h = r.headers().clone();
    (s, h, r.text().await.unwrap_or_default())
}

fn js(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// Flip one character in the middle of a JWT's signature (not the last one: its low bits are
/// base64url padding a lenient decoder ignores).
fn flip_signature(jwt: &str) -> String {
    let at = jwt.rfind('.').unwrap() + 10;
    let mut b = jwt.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

struct Setup {
    cloud: FakeCloud,
    arm: String,
    vm: String,
    vm_oid: String,
    vault_id: String,
    /// `properties.vaultUri`, with its trailing slash.
    uri: String,
    /// A data-plane token of the deployer (who has an all-secrets access policy).
    owner: String,
}

fn vault_id(cloud: &FakeCloud, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.KeyVault/vaults/{name}",
        rg_id(cloud, "rg")
    )
}

async fn put_vault(cloud: &FakeCloud, arm: &str, name: &str, properties: &Value) -> Resp {
    call(
        "PUT",
        &format!(
            "{}{}?api-version={KV_API}",
            cloud.arm_url(),
            vault_id(cloud, name)
        ),
        Some(arm),
        Some(json!({"location": "westus", "properties": properties})),
    )
    .await
}

async fn setup(rbac: bool) -> Setup {
    let cloud = world().await;
    let arm = deployer_token(&cloud).await;
    create_rg(&cloud, &arm, "rg").await;
    let (vm, body) = create_vm(
        &cloud,
        &arm,
        "rg",
        "vm",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let vm_oid = body["identity"]["principalId"].as_str().unwrap().to_owned();
    let tenant = cloud.tenant_id();
    let mut props = json!({
        "tenantId": tenant,
        "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [{
            "tenantId": tenant,
            "objectId": cloud.deployer().object_id,
            "permissions": {"secrets": ["get", "list", "set"]},
        }],
    });
    if rbac {
        props["enableRbacAuthorization"] = json!(true);
        props["accessPolicies"] = json!([]);
    }
    let r = put_vault(&cloud, &arm, "kv1", &props).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let uri = r.body["properties"]["vaultUri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uri.ends_with('/'), "{uri}");
    let vault_id = vault_id(&cloud, "kv1");
    if rbac {
        let a = assign(
            &cloud,
            &arm,
            &vault_id,
            SECRETS_OFFICER,
            &cloud.deployer().object_id,
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let owner = token_for(&cloud, VAULT).await;
    let r = call(
        "PUT",
        &format!("{uri}secrets/MyTestSecret?api-version=7.4"),
        Some(&owner),
        Some(json!({"value": "p@ssw0rd!"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Setup {
        cloud,
        arm,
        vm,
        vm_oid,
        vault_id,
        uri,
        owner,
    }
}

async fn policy(s: &Setup, kind: &str, oid: &str, secrets: &[&str]) -> Resp {
    call(
        "PUT",
        &format!(
            "{}{}/accessPolicies/{kind}?api-version={KV_API}",
            s.cloud.arm_url(),
            s.vault_id
        ),
        Some(&s.arm),
        Some(json!({"properties": {"accessPolicies": [{
            "tenantId": s.cloud.tenant_id(), "objectId": oid, "permissions": {"secrets": secrets},
        }]}})),
    )
    .await
}

fn assert_kv_error(r: &Resp, status: u16, code: &str, inner: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert!(r.body["error"]["message"].is_string(), "{}", r.body);
    assert_eq!(
        r.body["error"]["innererror"]["code"].as_str(),
        inner,
        "{}",
        r.body
    );
}

#[tokio::test]
async fn tokens_are_checked() {
    let s = setup(false).await;
    let url = format!("{}secrets/MyTestSecret?api-version=7.4", s.uri);
    assert_eq!(call("GET", &url, Some(&s.owner), None).await.status, 200);
    // No token: 401 and the exact challenge.
    let r = call("GET", &url, None, None).await;
    assert_kv_error(&r, 401, "Unauthorized", None);
    assert_eq!(
        r.body["error"]["message"],
        "AKV10000: Request is missing a Bearer or PoP token."
    );
    let want = format!(
        "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
        s.cloud.login_url(),
        s.cloud.tenant_id()
    );
    assert_eq!(
        r.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(want.as_str())
    );
    // Not a bearer token.
    let (st, h, b) = raw(
        "GET",
        &url,
        &[("Authorization", "Basic dXNlcjpwdw==")],
        vec![],
    )
    .await;
    assert_eq!(
        (st, js(&b)["error"]["code"].as_str()),
        (401, Some("Unauthorized"))
    );
    assert!(h.contains_key("www-authenticate"));
    // Another audience: ARM, the vault audience with a trailing slash.
    for other in [
        s.arm.clone(),
        token_for(&s.cloud, "https://vault.azure.net/").await,
    ] {
        let r = call("GET", &url, Some(&other), None).await;
        assert_kv_error(&r, 401, "Unauthorized", None);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("AKV10022: Invalid audience."),
            "{}",
            r.body
        );
        assert!(r.headers.contains_key("www-authenticate"));
    }
    // Signed by another key: one flipped signature byte.
    let r = call("GET", &url, Some(&flip_signature(&s.owner)), None).await;
    assert_kv_error(&r, 401, "Unauthorized", None);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{}",
        r.body
    );
    // Garbage.
    for g in ["garbage", "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30."] {
        let r = call("GET", &url, Some(g), None).await;
        assert_kv_error(&r, 401, "Unauthorized", None);
    }
    // Expired: the same token that worked above.
    s.cloud.advance_clock(std::time::Duration::from_secs(7200));
    let r = call("GET", &url, Some(&s.owner), None).await;
    assert_kv_error(&r, 401, "Unauthorized", None);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        r.body
    );
    // A fresh token works again.
    let fresh = token_for(&s.cloud, VAULT).await;
    assert_eq!(call("GET", &url, Some(&fresh), None).await.status, 200);
}

#[tokio::test]
async fn access_policy_decides() {
    let s = setup(false).await;
    let url = format!("{}secrets/MyTestSecret?api-version=7.4", s.uri);
    let vt = vm_token(&s.cloud, &s.vm, "https%3A%2F%2Fvault.azure.net").await;
    // No policy for the identity.
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByPolicy"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not have secrets get permission"),
        "{}",
        r.body
    );
    // `list` is not `get`.
    assert_eq!(policy(&s, "add", &s.vm_oid, &["list"]).await.status, 200);
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByPolicy"));
    assert_eq!(
        call(
            "GET",
            &format!("{}secrets?api-version=7.4", s.uri),
            Some(&vt),
            None
        )
        .await
        .status,
        200
    );
    // `get` reads; it does not write.
    assert_eq!(policy(&s, "add", &s.vm_oid, &["get"]).await.status, 200);
    let r = call("GET", &url, Some(&vt), None).await;
    assert_eq!(
        (r.status, r.body["value"].as_str()),
        (200, Some("p@ssw0rd!"))
    );
    let r = call("PUT", &url, Some(&vt), Some(json!({"value": "x"}))).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByPolicy"));
    // Removing `get` denies again; the ARM view shows the remaining permission.
    assert_eq!(policy(&s, "remove", &s.vm_oid, &["get"]).await.status, 200);
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByPolicy"));
    let v = call(
        "GET",
        &format!("{}{}?api-version={KV_API}", s.cloud.arm_url(), s.vault_id),
        Some(&s.arm),
        None,
    )
    .await;
    let mine: Vec<&Value> = v.body["properties"]["accessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["objectId"] == s.vm_oid)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["permissions"]["secrets"], json!(["list"]));
    // An RBAC role does not help a vault in the access-policy model.
    assert_eq!(
        assign(&s.cloud, &s.arm, &s.vault_id, SECRETS_USER, &s.vm_oid)
            .await
            .status,
        201
    );
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByPolicy"));
    // Who may change policies: the identity (no role at the vault) may not.
    let vt_arm = vm_token(&s.cloud, &s.vm, "https://management.azure.com/").await;
    let r = call(
        "PUT",
        &format!(
            "{}{}/accessPolicies/add?api-version={KV_API}",
            s.cloud.arm_url(),
            s.vault_id
        ),
        Some(&vt_arm),
        Some(json!({"properties": {"accessPolicies": [{
            "tenantId": s.cloud.tenant_id(), "objectId": s.vm_oid, "permissions": {"secrets": ["get"]},
        }]}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
}

#[tokio::test]
async fn rbac_model_decides() {
    let s = setup(true).await;
    let url = format!("{}secrets/MyTestSecret?api-version=7.4", s.uri);
    let vt = vm_token(&s.cloud, &s.vm, "https%3A%2F%2Fvault.azure.net").await;
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByRbac"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.KeyVault/vaults/secrets/getSecret/action"),
        "{}",
        r.body
    );
    // An access policy means nothing in the RBAC model.
    assert_eq!(policy(&s, "add", &s.vm_oid, &["get"]).await.status, 200);
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByRbac"));
    // A control-plane role (Reader) carries no data action.
    assert_eq!(
        assign(&s.cloud, &s.arm, &s.vault_id, READER, &s.vm_oid)
            .await
            .status,
        201
    );
    let r = call("GET", &url, Some(&vt), None).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByRbac"));
    // Key Vault Secrets User reads, lists, does not write.
    assert_eq!(
        assign(&s.cloud, &s.arm, &s.vault_id, SECRETS_USER, &s.vm_oid)
            .await
            .status,
        201
    );
    let r = call("GET", &url, Some(&vt), None).await;
    assert_eq!(
        (r.status, r.body["value"].as_str()),
        (200, Some("p@ssw0rd!"))
    );
    let r = call(
        "GET",
        &format!("{}secrets?api-version=7.4", s.uri),
        Some(&vt),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call("PUT", &url, Some(&vt), Some(json!({"value": "x"}))).await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByRbac"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("setSecret/action")
    );
}

#[tokio::test]
async fn rbac_role_at_another_secret_does_not_reach() {
    let s = setup(true).await;
    let vt = vm_token(&s.cloud, &s.vm, "https%3A%2F%2Fvault.azure.net").await;
    let r = call(
        "PUT",
        &format!("{}secrets/Other?api-version=7.4", s.uri),
        Some(&s.owner),
        Some(json!({"value": "o"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let scope = format!("{}/secrets/Other", s.vault_id);
    let a = assign(&s.cloud, &s.arm, &scope, SECRETS_USER, &s.vm_oid).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let r = call(
        "GET",
        &format!("{}secrets/Other?api-version=7.4", s.uri),
        Some(&vt),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        "GET",
        &format!("{}secrets/MyTestSecret?api-version=7.4", s.uri),
        Some(&vt),
        None,
    )
    .await;
    assert_kv_error(&r, 403, "Forbidden", Some("ForbiddenByRbac"));
}

#[tokio::test]
async fn secret_reads_by_name_slash_and_version() {
    let s = setup(false).await;
    let t = Some(s.owner.as_str());
    let first = call(
        "GET",
        &format!("{}secrets/MyTestSecret?api-version=7.4", s.uri),
        t,
        None,
    )
    .await;
    assert_eq!(first.status, 200);
    let id1 = first.body["id"].as_str().unwrap().to_owned();
    let v1 = id1.rsplit('/').next().unwrap().to_owned();
    assert_eq!(v1.len(), 32, "{id1}");
    assert!(id1.starts_with(&format!("{}secrets/MyTestSecret/", s.uri)));
    // A second version.
    let r = call(
        "PUT",
        &format!("{}secrets/MyTestSecret?api-version=7.4", s.uri),
        t,
        Some(json!({"value": "second", "contentType": "text/plain", "tags": {"a": "b"}})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["contentType"], "text/plain");
    let v2 = r.body["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(v1, v2);
    for (path, want) in [
        ("secrets/MyTestSecret", "second"),
        ("secrets/MyTestSecret/", "second"),
        ("secrets/mytestsecret", "second"), // names are case-insensitive
        (&format!("secrets/MyTestSecret/{v1}"), "p@ssw0rd!"),
        (
            &format!("secrets/MyTestSecret/{}", v1.to_uppercase()),
            "p@ssw0rd!",
        ),
        (&format!("secrets/MyTestSecret/{v2}"), "second"),
    ] {
        let r = call("GET", &format!("{}{path}?api-version=7.4", s.uri), t, None).await;
        assert_eq!(
            (r.status, r.body["value"].as_str()),
            (200, Some(want)),
            "{path}: {}",
            r.body
        );
        // The id keeps the name as first set.
        assert!(
            r.body["id"]
                .as_str()
                .unwrap()
                .contains("/secrets/MyTestSecret/")
        );
    }
    // Older api-versions: 2016-10-01 has no recoverableDays.
    let r = call(
        "GET",
        &format!("{}secrets/MyTestSecret?api-version=2016-10-01", s.uri),
        t,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body["attributes"].get("recoverableDays").is_none());
    let r = call(
        "GET",
        &format!("{}secrets/MyTestSecret?api-version=7.4", s.uri),
        t,
        None,
    )
    .await;
    assert_eq!(r.body["attributes"]["recoverableDays"], 90);
    // Not found: by name, by version.
    for path in [
        "secrets/Nope".to_owned(),
        "secrets/Nope/".to_owned(),
        "secrets/MyTestSecret/00000000000000000000000000000000".to_owned(),
    ] {
        let r = call("GET", &format!("{}{path}?api-version=7.4", s.uri), t, None).await;
        assert_kv_error(&r, 404, "SecretNotFound", None);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("A secret with (name/id) "),
            "{}",
            r.body
        );
    }
    // The list shows one item per name, without versions or values.
    let r = call("GET", &format!("{}secrets?api-version=7.4", s.uri), t, None).await;
    assert_eq!(r.status, 200);
    let items = r.body["value"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], format!("{}secrets/MyTestSecret", s.uri));
    assert!(items[0].get("value").is_none());
    // Set with wrong JSON types: BadParameter, nothing stored.
    for bad in [
        json!({"value": 5}),
        json!({"value": null}),
        json!({"value": "x", "contentType": {}}),
        json!({"value": "x", "tags": "t"}),
        json!({"value": "x", "tags": {"a": 1}}),
        json!({"value": "x", "attributes": 3}),
        json!({"value": "x", "attributes": {"enabled": "yes"}}),
        json!({"value": "x", "attributes": {"exp": "tomorrow"}}),
        json!(["value"]),
    ] {
        let r = call(
            "PUT",
            &format!("{}secrets/Typed?api-version=7.4", s.uri),
            t,
            Some(bad.clone()),
        )
        .await;
        assert_kv_error(&r, 400, "BadParameter", None);
    }
    let r = call(
        "GET",
        &format!("{}secrets/Typed?api-version=7.4", s.uri),
        t,
        None,
    )
    .await;
    assert_kv_error(&r, 404, "SecretNotFound", None);
    // api-version: missing, unknown.
    for q in [
        "",
        "?api-version=",
        "?api-version=9.9",
        "?api-version=2023-07-01",
    ] {
        let r = call("GET", &format!("{}secrets/MyTestSecret{q}", s.uri), t, None).await;
        assert_kv_error(&r, 400, "BadParameter", None);
    }
}

#[tokio::test]
async fn arm_vault_rules() {
    let s = setup(false).await;
    let tenant = s.cloud.tenant_id();
    // Bad names, missing tenant / sku, bad policies.
    for (name, props, code) in [
        (
            "kv_bad",
            json!({"tenantId": tenant, "sku": {"family": "A", "name": "standard"}}),
            "VaultNameNotValid",
        ),
        (
            "1kv",
            json!({"tenantId": tenant, "sku": {"family": "A", "name": "standard"}}),
            "VaultNameNotValid",
        ),
        (
            "kv--x",
            json!({"tenantId": tenant, "sku": {"family": "A", "name": "standard"}}),
            "VaultNameNotValid",
        ),
        (
            "kv2",
            json!({"sku": {"family": "A", "name": "standard"}}),
            "BadRequest",
        ),
        (
            "kv2",
            json!({"tenantId": "nope", "sku": {"family": "A", "name": "standard"}}),
            "BadRequest",
        ),
        ("kv2", json!({"tenantId": tenant}), "BadRequest"),
        (
            "kv2",
            json!({"tenantId": tenant, "sku": {"name": "gold"}}),
            "BadRequest",
        ),
        (
            "kv2",
            json!({"tenantId": tenant, "sku": {"name": "standard"}, "accessPolicies": {}}),
            "InvalidRequestContent",
        ),
        (
            "kv2",
            json!({"tenantId": tenant, "sku": {"name": "standard"}, "accessPolicies": [{"tenantId": tenant, "objectId": "x", "permissions": {}}]}),
            "BadRequest",
        ),
        (
            "kv2",
            json!({"tenantId": tenant, "sku": {"name": "standard"}, "accessPolicies": [{"tenantId": tenant, "objectId": s.vm_oid}]}),
            "BadRequest",
        ),
    ] {
        let r = put_vault(&s.cloud, &s.arm, name, &props).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{name} {props}: {}",
            r.body
        );
    }
    // Unsupported api-version.
    let r = call(
        "GET",
        &format!("{}{}?api-version=2017-01-01", s.cloud.arm_url(), s.vault_id),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("NoRegisteredProviderFound"))
    );
    // A bad operation kind, an empty policy list, a missing vault.
    for (kind, body, status) in [
        (
            "merge",
            json!({"properties": {"accessPolicies": [{"tenantId": tenant, "objectId": s.vm_oid, "permissions": {"secrets": ["get"]}}]}}),
            400,
        ),
        ("add", json!({"properties": {"accessPolicies": []}}), 400),
        ("add", json!({}), 400),
    ] {
        let r = call(
            "PUT",
            &format!(
                "{}{}/accessPolicies/{kind}?api-version={KV_API}",
                s.cloud.arm_url(),
                s.vault_id
            ),
            Some(&s.arm),
            Some(body),
        )
        .await;
        assert_eq!(r.status, status, "{kind}: {}", r.body);
        assert!(r.body["error"]["code"].is_string());
    }
    let r = call(
        "PUT",
        &format!(
            "{}{}/accessPolicies/add?api-version={KV_API}",
            s.cloud.arm_url(),
            vault_id(&s.cloud, "nokv")
        ),
        Some(&s.arm),
        Some(json!({"properties": {"accessPolicies": [{"tenantId": tenant, "objectId": s.vm_oid, "permissions": {"secrets": ["get"]}}]}})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    // The identity may not create vaults.
    let vt = vm_token(&s.cloud, &s.vm, "https://management.azure.com/").await;
    let r = put_vault(
        &s.cloud,
        &vt,
        "kv3",
        &json!({"tenantId": tenant, "sku": {"family": "A", "name": "standard"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
    // Deleting the vault stops its data plane.
    let r = call(
        "DELETE",
        &format!("{}{}?api-version={KV_API}", s.cloud.arm_url(), s.vault_id),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let gone = client()
        .get(format!("{}secrets?api-version=7.4", s.uri))
        .send()
        .await;
    assert!(gone.is_err(), "the vault's server still answers");
}

fn names(v: &BTreeSet<String>) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn responses_conform_to_the_spec() {
    let s = setup(false).await;
    let examples = js(include_str!("data/keyvault-cosmos-examples.json"));
    let mgmt = js(include_str!("data/keyvault-mgmt-2023-07-01.json"));
    let data = js(include_str!("data/keyvault-secrets-7.5.json"));
    // The vault (ARM, 2023-07-01).
    let r = call(
        "GET",
        &format!("{}{}?api-version={KV_API}", s.cloud.arm_url(), s.vault_id),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let mut c = Check::new(&mgmt, false);
    c.definition(&r.body, "Vault").assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    // Against the spec's example: the fake emits the schema's soft-delete and RBAC properties
    // that the 2023-07-01 example omits (Azure's own GET prints them), and leaves out what this
    // fake does not model (`hsmPoolResourceId`, `systemData`) or was not given (`tags`).
    let ex = &examples["keyvault-mgmt/2023-07-01/examples/getVault.json"];
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let (et, gt) = (keys(ex), keys(&r.body));
    assert_eq!(
        names(&et.difference(&gt).cloned().collect()),
        vec!["systemData", "tags"]
    );
    assert!(gt.is_subset(&et), "{gt:?}");
    let (ep, gp) = (keys(&ex["properties"]), keys(&r.body["properties"]));
    assert_eq!(
        names(&ep.difference(&gp).cloned().collect()),
        vec!["hsmPoolResourceId"]
    );
    assert_eq!(
        names(&gp.difference(&ep).cloned().collect()),
        vec![
            "enableRbacAuthorization",
            "enableSoftDelete",
            "softDeleteRetentionInDays"
        ]
    );
    // The access policies answer.
    let r = policy(&s, "add", &s.vm_oid, &["get"]).await;
    assert_eq!(r.status, 200);
    let mut c = Check::new(&mgmt, false);
    c.definition(&r.body, "VaultAccessPolicyParameters")
        .assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    // The secret bundle (7.5) and the example's keys.
    let r = call(
        "GET",
        &format!("{}secrets/MyTestSecret?api-version=7.5", s.uri),
        Some(&s.owner),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let mut c = Check::new(&data, false);
    c.definition(&r.body, "SecretBundle").assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    let ex = &examples["keyvault-data/7.5/examples/GetSecret-example.json"];
    // `recoverableDays` is in the schema (7.x with soft delete) but not in the 2017 example.
    let mut body = r.body.clone();
    body["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("recoverableDays");
    assert_same_shape(ex, &body, "secret");
    // The list and an error.
    let r = call(
        "GET",
        &format!("{}secrets?api-version=7.5", s.uri),
        Some(&s.owner),
        None,
    )
    .await;
    let mut c = Check::new(&data, false);
    c.definition(&r.body, "SecretListResult").assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    let r = call(
        "GET",
        &format!("{}secrets/nope?api-version=7.5", s.uri),
        Some(&s.owner),
        None,
    )
    .await;
    let mut c = Check::new(&data, false);
    c.definition(&r.body, "KeyVaultError").assert_valid();
    assert!(names(&c.unknown).is_empty(), "{:?}", c.unknown);
}

async fn assert_kv_alive(s: &Setup) {
    let r = call(
        "GET",
        &format!("{}secrets/MyTestSecret?api-version=7.4", s.uri),
        Some(&s.owner),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn garbage_bodies() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"{".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"[1,2,3]".to_vec(),
        b"\"str\"".to_vec(),
        b"null".to_vec(),
        b"{\"value\": 5}".to_vec(),
        b"{\"value\": null, \"attributes\": 3, \"tags\": [1], \"contentType\": {}}".to_vec(),
        b"{\"value\": \"x\", \"attributes\": {\"enabled\": \"yes\"}, \"tags\": \"t\"}".to_vec(),
        b"{\"location\": 5, \"properties\": \"x\", \"tags\": [1]}".to_vec(),
        b"{\"location\": \"westus\", \"properties\": {\"tenantId\": 7, \"sku\": \"standard\", \"accessPolicies\": [1, null, {\"permissions\": []}]}}".to_vec(),
        b"{\"properties\": {\"accessPolicies\": [{\"tenantId\": [], \"objectId\": {}, \"permissions\": {\"secrets\": \"get\"}}]}}".to_vec(),
        b"{\"properties\": {\"accessPolicies\": \"all\"}}".to_vec(),
        vec![b'a'; 3 * 1024 * 1024],
    ]
}

#[tokio::test]
async fn malformed_input_gets_key_vault_errors() {
    let s = setup(false).await;
    let u = s.uri.trim_end_matches('/');
    let owner = format!("Bearer {}", s.owner);
    let auths: Vec<Vec<(&str, &str)>> = vec![
        vec![("Authorization", owner.as_str())],
        vec![
            ("Authorization", owner.as_str()),
            ("Content-Type", "application/json"),
        ],
        vec![],
        vec![("Authorization", "Bearer")],
        vec![("Authorization", "Bearer \t")],
        vec![("Authorization", "bearer a.b.c")],
        vec![("Authorization", "Bearer eyJ.eyJ.sig")],
        vec![("Authorization", "PoP xyz")],
    ];
    let paths = [
        "/secrets/MyTestSecret?api-version=7.4".to_owned(),
        "/secrets/New?api-version=7.4".to_owned(),
        "/secrets?api-version=7.4".to_owned(),
        "/secrets/My_Secret?api-version=7.4".to_owned(),
        "/secrets/%FF%00?api-version=7.4".to_owned(),
        "/secrets/a/b/c/d?api-version=7.4".to_owned(),
        "/secrets/a/../../x?api-version=7.4".to_owned(),
        format!("/secrets/{}?api-version=7.4", "a".repeat(5000)),
        "/secrets/x?api-version=%FF".to_owned(),
        "/secrets/x?api-version&&&=&".to_owned(),
        "/keys/k?api-version=7.4".to_owned(),
        "/?api-version=7.4".to_owned(),
        "//secrets//?api-version=7.4".to_owned(),
    ];
    for path in &paths {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            for h in &auths {
                let bodies = if method == "PUT" && !h.is_empty() {
                    garbage_bodies()
                } else {
                    vec![b"{".to_vec()]
                };
                for body in bodies {
                    let (st, _, b) = raw(method, &format!("{u}{path}"), h, body).await;
                    assert!(st < 500, "{method} {path} {h:?}: {st} {b}");
                    if st >= 400 {
                        let v = js(&b);
                        assert!(
                            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                            "{method} {path} {h:?}: {st} {b}"
                        );
                    }
                }
            }
        }
    }
    assert_kv_alive(&s).await;
}

#[tokio::test]
async fn malformed_input_gets_arm_errors() {
    let spec = js(include_str!("data/keyvault-mgmt-2023-07-01.json"));
    let s = setup(false).await;
    let arm = s.cloud.arm_url();
    let auth = format!("Bearer {}", s.arm);
    let targets = [
        format!("{arm}{}?api-version={KV_API}", s.vault_id),
        format!("{arm}{}?api-version={KV_API}", vault_id(&s.cloud, "kvnew")),
        format!(
            "{arm}{}/accessPolicies/add?api-version={KV_API}",
            s.vault_id
        ),
        format!(
            "{arm}{}/accessPolicies/replace?api-version={KV_API}",
            s.vault_id
        ),
        format!(
            "{arm}{}/accessPolicies/%FF?api-version={KV_API}",
            s.vault_id
        ),
        format!("{arm}{}/accessPolicies?api-version={KV_API}", s.vault_id),
        format!(
            "{arm}{}/accessPolicies/add/x/y?api-version={KV_API}",
            s.vault_id
        ),
        format!("{arm}{}/secrets/x?api-version={KV_API}", s.vault_id),
        format!("{arm}{}?api-version=%FF", s.vault_id),
        format!("{arm}{}", s.vault_id),
    ];
    for t in &targets {
        for method in ["GET", "PUT", "PATCH", "POST", "DELETE"] {
            let bodies = if method == "PUT" || method == "PATCH" {
                garbage_bodies()
            } else {
                vec![Vec::new()]
            };
            for body in bodies {
                for h in [
                    vec![
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ],
                    vec![("Authorization", "Bearer garbage")],
                ] {
                    let (st, _, b) = raw(method, t, &h, body.clone()).await;
                    assert!(st < 500, "{method} {t}: {st} {b}");
                    // Whatever the fake accepts, it must print in the spec's shape.
                    if st < 300 && method == "PUT" && !t.contains("/accessPolicies/") {
                        let mut c = Check::new(&spec, false);
                        c.definition(&js(&b), "Vault");
                        assert!(
                            c.errors.is_empty(),
                            "{method} {t} {:?}: {:?}",
                            String::from_utf8_lossy(&body[..body.len().min(300)]),
                            c.errors
                        );
                    }
                    if st >= 400 {
                        assert!(
                            js(&b)["error"]["code"].is_string(),
                            "{method} {t}: {st} {b}"
                        );
                    }
                }
            }
        }
    }
    // Wrong JSON types in otherwise valid bodies: refused (400), never stored and echoed back.
    let tenant = s.cloud.tenant_id();
    let sku = json!({"family": "A", "name": "standard"});
    for (field, bad) in [
        ("enableRbacAuthorization", json!("yes")),
        ("enableSoftDelete", json!(1)),
        ("enabledForDeployment", json!("true")),
        ("enabledForDiskEncryption", json!([])),
        ("enabledForTemplateDeployment", json!({})),
        ("enablePurgeProtection", json!("x")),
        ("softDeleteRetentionInDays", json!("ninety")),
        ("publicNetworkAccess", json!(5)),
        ("sku", json!({"family": "A", "name": 5})),
        ("networkAcls", json!("open")),
    ] {
        let mut props = json!({"tenantId": tenant, "sku": sku});
        props[field] = bad;
        let r = put_vault(&s.cloud, &s.arm, "kvtyped", &props).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{}", r.body);
    }
    let r = call(
        "PUT",
        &format!("{arm}{}?api-version={KV_API}", vault_id(&s.cloud, "kvtyped")),
        Some(&s.arm),
        Some(json!({"location": "westus", "tags": {"a": 1}, "properties": {"tenantId": tenant, "sku": sku}})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The server still answers valid requests: a new vault, a secret in it.
    let r = put_vault(
        &s.cloud,
        &s.arm,
        "kvafter",
        &json!({"tenantId": s.cloud.tenant_id(), "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [{"tenantId": s.cloud.tenant_id(), "objectId": s.cloud.deployer().object_id,
                "permissions": {"secrets": ["get", "set"]}}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let uri = r.body["properties"]["vaultUri"].as_str().unwrap();
    let r = call(
        "PUT",
        &format!("{uri}secrets/s?api-version=7.4"),
        Some(&s.owner),
        Some(json!({"value": "v"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
