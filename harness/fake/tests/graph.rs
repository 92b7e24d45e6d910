//! Azure AD Graph 1.6 over real HTTP: service principals, groups, memberships, app role
//! assignments and the `roles` claim, each rule shown to deny when violated; spec conformance
//! and malformed input.

#![allow(clippy::too_many_lines, clippy::many_single_char_names)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;
mod spec_schema;

use common::*;
use mic_fake::FakeCloud;
use serde_json::{Value, json};
use spec_schema::Check;

const GRAPH_SP: &str = "81789304-ff96-402b-ae73-07ec0db26721";
const READ_ALL: &str = "5778995a-e1bf-45b8-affa-663a9f3f4d04";

async fn vm_token(cloud: &FakeCloud, vm: &str) -> (String, Value) {
    let base = cloud.imds_url(vm).unwrap();
    let r = client()
        .get(format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.windows.net"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let t = v["access_token"].as_str().unwrap().to_owned();
    let payload = t.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    (t, claims)
}

async fn raw(method: &str, url: &str, token: Option<&str>, body: &[u8]) -> (u16, Value, String) {
    let mut rb = client()
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .body(body.to_vec())
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let st = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or(Value::Null), ct)
}

fn graph_spec() -> Value {
    serde_json::from_str(include_str!("data/graph-1.6-definitions.json")).unwrap()
}

/// Properties Graph 1.6 returns that the spec does not declare (documented in the fake's
/// `graph.rs`): OData annotations, and fields of the live service missing from the swagger.
const SP_EXTRAS: &[&str] = &["odata.metadata", "odata.type", "tokenEncryptionKeyId"];
const GROUP_EXTRAS: &[&str] = &[
    "odata.metadata",
    "odata.type",
    "description",
    "dirSyncEnabled",
    "lastDirSyncTime",
    "onPremisesDomainName",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "provisioningErrors",
    "proxyAddresses",
];
const ASSIGNMENT_EXTRAS: &[&str] = &["odata.metadata", "odata.type", "creationTimestamp"];

fn only_documented_extras(c: &Check, allowed: &[&str]) {
    for k in &c.unknown {
        let key = k.strip_prefix("value[].").unwrap_or(k);
        assert!(allowed.contains(&key), "undeclared key {k}");
    }
}

#[tokio::test]
async fn tutorial_flow() {
    let cloud = world().await;
    let arm = deployer_token(&cloud).await;
    create_rg(&cloud, &arm, "rg").await;
    let (vm, body) = create_vm(
        &cloud,
        &arm,
        "rg",
        "myVM",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let vm_oid = body["identity"]["principalId"].as_str().unwrap().to_owned();
    let g = cloud.graph_url();
    let t = cloud.tenant_id();
    let op = deployer_token_for(&cloud, "https://graph.windows.net/").await;
    let spec = graph_spec();

    // The VM's service principal by display name (both filter forms).
    for f in [
        "displayName%20eq%20%27myVM%27",
        "startswith%28displayName%2C%27myVM%27%29",
    ] {
        let (st, v, ct) = raw(
            "GET",
            &format!("{g}/myorganization/servicePrincipals?$filter={f}&api-version=1.6"),
            Some(&op),
            b"",
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert!(ct.starts_with("application/json; odata=minimalmetadata"));
        assert_eq!(v["value"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["value"][0]["objectId"], vm_oid.as_str());
        assert_eq!(v["value"][0]["servicePrincipalType"], "ManagedIdentity");
        let mut c = Check::new(&spec, false);
        c.definition(&v, "ServicePrincipalListResult")
            .assert_valid();
        only_documented_extras(&c, SP_EXTRAS);
    }
    // Graph's own service principal and its app role.
    let (st, v, _) = raw("GET", &format!("{g}/myorganization/servicePrincipals?api-version=1.6&$filter=appId%20eq%20%2700000002-0000-0000-c000-000000000000%27"), Some(&op), b"").await;
    assert_eq!(st, 200);
    assert_eq!(v["value"][0]["objectId"], GRAPH_SP);
    assert_eq!(
        v["value"][0]["appDisplayName"],
        "Windows Azure Active Directory"
    );
    let role = v["value"][0]["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "Directory.Read.All")
        .unwrap();
    assert_eq!(
        (role["id"].as_str(), &role["allowedMemberTypes"]),
        (Some(READ_ALL), &json!(["Application"]))
    );
    // An unsupported filter.
    let (st, v, _) = raw(
        "GET",
        &format!(
            "{g}/myorganization/servicePrincipals?api-version=1.6&$filter=tags%20eq%20%27x%27"
        ),
        Some(&op),
        b"",
    )
    .await;
    assert_eq!(
        (st, v["odata.error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );

    // A group and the membership.
    let (st, grp, _) = raw("POST", &format!("{g}/myorganization/groups?api-version=1.6"), Some(&op), br#"{"displayName":"myGroup","mailEnabled":false,"mailNickname":"NotSet","securityEnabled":true}"#).await;
    assert_eq!(st, 201, "{grp}");
    let mut c = Check::new(&spec, false);
    c.definition(&grp, "ADGroup").assert_valid();
    only_documented_extras(&c, GROUP_EXTRAS);
    let gid = grp["objectId"].as_str().unwrap().to_owned();
    let (st, v, _) = raw(
        "POST",
        &format!("{g}/myorganization/groups?api-version=1.6"),
        Some(&op),
        br#"{"displayName":"x","mailEnabled":true,"mailNickname":"x","securityEnabled":true}"#,
    )
    .await;
    assert_eq!(
        (st, v["odata.error"]["code"].as_str()),
        (400, Some("Request_BadRequest"))
    );
    let link = json!({"url": format!("{g}/{t}/directoryObjects/{vm_oid}")}).to_string();
    let members = format!("{g}/myorganization/groups/{gid}/$links/members?api-version=1.6");
    assert_eq!(
        raw("POST", &members, Some(&op), link.as_bytes()).await.0,
        204
    );
    let (st, v, _) = raw("POST", &members, Some(&op), link.as_bytes()).await;
    assert_eq!(
        (st, v["odata.error"]["code"].as_str()),
        (400, Some("Request_BadRequest"))
    );
    let nobody =
        json!({"url": format!("{g}/{t}/directoryObjects/{}", uuid::Uuid::new_v4())}).to_string();
    assert_eq!(
        raw("POST", &members, Some(&op), nobody.as_bytes()).await.0,
        404
    );

    // Before the app role: no `roles`, 403 with Graph's exact body.
    let (early, claims) = vm_token(&cloud, &vm).await;
    assert!(claims.get("roles").is_none());
    let mg = format!("{g}/{t}/servicePrincipals/{vm_oid}/getMemberGroups?api-version=1.6");
    let (st, v, _) = raw(
        "POST",
        &mg,
        Some(&early),
        br#"{"securityEnabledOnly":"false"}"#,
    )
    .await;
    assert_eq!(
        (st, &v),
        (
            403,
            &json!({"odata.error":{"code":"Authorization_RequestDenied","message":{"lang":"en","value":"Insufficient privileges to complete the operation."}}})
        )
    );
    let mut c = Check::new(&spec, false);
    c.definition(&v, "GraphError").assert_valid();
    assert_eq!(
        c.unknown.iter().collect::<Vec<_>>(),
        vec!["odata.error.message.lang"]
    );
    // The identity may not grant itself the role.
    let assign =
        format!("{g}/myorganization/servicePrincipals/{vm_oid}/appRoleAssignments?api-version=1.6");
    let body = json!({"id": READ_ALL, "principalId": vm_oid, "resourceId": GRAPH_SP}).to_string();
    assert_eq!(
        raw("POST", &assign, Some(&early), body.as_bytes()).await.0,
        403
    );
    // The operator grants it.
    let (st, a, _) = raw("POST", &assign, Some(&op), body.as_bytes()).await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(
        (
            a["principalDisplayName"].as_str(),
            a["resourceDisplayName"].as_str()
        ),
        (Some("myVM"), Some("Windows Azure Active Directory"))
    );
    let mut c = Check::new(&spec, false);
    c.definition(&a, "AppRoleAssignment").assert_valid();
    only_documented_extras(&c, ASSIGNMENT_EXTRAS);
    // A repeat, an unknown role, a mismatched principal: "one or more properties are invalid".
    for b in [
        body.clone(),
        json!({"id": uuid::Uuid::new_v4().to_string(), "principalId": vm_oid, "resourceId": GRAPH_SP}).to_string(),
        json!({"id": READ_ALL, "principalId": uuid::Uuid::new_v4().to_string(), "resourceId": GRAPH_SP}).to_string(),
    ] {
        let (st, v, _) = raw("POST", &assign, Some(&op), b.as_bytes()).await;
        assert_eq!((st, v["odata.error"]["message"]["value"].as_str()), (400, Some("One or more properties are invalid.")));
    }
    let (st, v, _) = raw("GET", &assign, Some(&op), b"").await;
    assert_eq!((st, v["value"].as_array().map(Vec::len)), (200, Some(1)));
    // The early token still lacks the role.
    assert_eq!(
        raw(
            "POST",
            &mg,
            Some(&early),
            br#"{"securityEnabledOnly":"false"}"#
        )
        .await
        .0,
        403
    );
    // A new token carries it; both forms of securityEnabledOnly work, under both tenant forms.
    let (tok, claims) = vm_token(&cloud, &vm).await;
    assert_eq!(claims["roles"], json!(["Directory.Read.All"]));
    for (url, b) in [
        (mg.clone(), &br#"{"securityEnabledOnly":"false"}"#[..]),
        (
            mg.replace(&t, "myorganization"),
            br#"{"securityEnabledOnly": false}"#,
        ),
        (mg.clone(), br#"{"securityEnabledOnly": true}"#),
    ] {
        let (st, v, _) = raw("POST", &url, Some(&tok), b).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["value"], json!([gid]));
        let tenant_seg = if url.contains("myorganization") {
            "myorganization"
        } else {
            t.as_str()
        };
        assert_eq!(
            v["odata.metadata"],
            format!("{g}/{tenant_seg}/$metadata#Collection(Edm.String)")
        );
        let mut c = Check::new(&spec, false);
        c.definition(&v, "GroupGetMemberGroupsResult")
            .assert_valid();
        assert_eq!(c.unknown.iter().collect::<Vec<_>>(), vec!["odata.metadata"]);
    }
    let (st, _, _) = raw(
        "POST",
        &mg,
        Some(&tok),
        br#"{"securityEnabledOnly":"maybe"}"#,
    )
    .await;
    assert_eq!(st, 400);
    // Directory.Read.All reads, it does not write.
    let (st, v, _) = raw(
        "POST",
        &format!("{g}/myorganization/groups?api-version=1.6"),
        Some(&tok),
        br#"{"displayName":"x","mailEnabled":false,"mailNickname":"x","securityEnabled":true}"#,
    )
    .await;
    assert_eq!(
        (st, v["odata.error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    // A token for Graph does not carry the role for another audience.
    let base = cloud.imds_url(&vm).unwrap();
    let r: Value = client().get(format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/")).header("Metadata", "true").send().await.unwrap().json().await.unwrap();
    let payload = r["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let arm_claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert!(arm_claims.get("roles").is_none());
}

#[tokio::test]
async fn authentication_and_request_errors() {
    let cloud = world().await;
    let g = cloud.graph_url();
    let op = deployer_token_for(&cloud, "https://graph.windows.net/").await;
    let arm = deployer_token(&cloud).await;
    let list = format!("{g}/myorganization/servicePrincipals?api-version=1.6");
    assert_eq!(raw("GET", &list, Some(&op), b"").await.0, 200);
    for bad in [
        None,
        Some(arm.clone()),
        Some(format!("{}x", &op[..op.len() - 1])),
        Some("x".to_owned()),
    ] {
        let (st, v, _) = raw("GET", &list, bad.as_deref(), b"").await;
        assert_eq!(
            (st, v["odata.error"]["code"].as_str()),
            (401, Some("Authentication_MissingOrMalformed")),
            "{v}"
        );
    }
    for (url, code) in [
        (format!("{g}/myorganization/servicePrincipals"), 400),
        (
            format!("{g}/myorganization/servicePrincipals?api-version=9.9"),
            400,
        ),
        (
            format!(
                "{g}/{}/servicePrincipals?api-version=1.6",
                uuid::Uuid::new_v4()
            ),
            400,
        ),
        (
            format!(
                "{g}/myorganization/servicePrincipals/{}?api-version=1.6",
                uuid::Uuid::new_v4()
            ),
            404,
        ),
        (format!("{g}/myorganization/nothing?api-version=1.6"), 400),
    ] {
        let (st, v, _) = raw("GET", &url, Some(&op), b"").await;
        assert_eq!(st, code, "{url}: {v}");
        assert!(v["odata.error"]["code"].is_string(), "{url}: {v}");
    }
    // The public grant API gives the role to tokens minted afterwards.
    let d = cloud.deployer();
    assert!(
        cloud
            .grant_graph_app_role(&d.object_id, "Directory.Read.All")
            .is_some()
    );
    assert!(
        cloud
            .grant_graph_app_role(&d.object_id, "No.Such.Role")
            .is_none()
    );
    let t2 = deployer_token_for(&cloud, "https://graph.windows.net").await;
    let payload = t2.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["roles"], json!(["Directory.Read.All"]));
    // Expired tokens.
    cloud.advance_clock(std::time::Duration::from_secs(7200));
    let (st, v, _) = raw("GET", &list, Some(&op), b"").await;
    assert_eq!(
        (st, v["odata.error"]["code"].as_str()),
        (401, Some("Authentication_ExpiredToken"))
    );
}

#[tokio::test]
async fn malformed_input_gets_graph_errors() {
    let cloud = world().await;
    let g = cloud.graph_url();
    let op = deployer_token_for(&cloud, "https://graph.windows.net/").await;
    let sp = cloud.deployer().object_id;
    let garbage: [&[u8]; 6] = [
        b"{",
        b"not json",
        &[0xff, 0xfe, 0x00],
        b"[1]",
        b"{\"securityEnabledOnly\": 5, \"url\": 7, \"id\": []}",
        b"",
    ];
    for path in [
        "groups".to_owned(),
        format!("groups/{}/$links/members", uuid::Uuid::new_v4()),
        format!("servicePrincipals/{sp}/getMemberGroups"),
        format!("servicePrincipals/{sp}/appRoleAssignments"),
        format!("groups/{}/getMemberGroups", uuid::Uuid::new_v4()),
    ] {
        for b in garbage {
            let (st, v, _) = raw(
                "POST",
                &format!("{g}/myorganization/{path}?api-version=1.6"),
                Some(&op),
                b,
            )
            .await;
            assert!((400..500).contains(&st), "{path}: {st} {v}");
            assert!(v["odata.error"]["code"].is_string(), "{path}: {v}");
        }
    }
    for q in [
        "$filter=",
        "$filter=%FF%FE",
        "$filter=startswith(",
        "$filter=displayName%20eq",
    ] {
        let (st, v, _) = raw(
            "GET",
            &format!("{g}/myorganization/servicePrincipals?api-version=1.6&{q}"),
            Some(&op),
            b"",
        )
        .await;
        assert_eq!(st, 400, "{q}: {v}");
    }
}
