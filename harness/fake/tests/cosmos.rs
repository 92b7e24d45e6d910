//! Cosmos DB over real HTTP: the ARM account, `listKeys` / `readonlykeys` by role, the SQL API
//! data plane with master-key signatures, each rule shown to deny when violated (signature,
//! read-only key, `x-ms-date` window), spec conformance of the bodies, and malformed input.

#![allow(clippy::too_many_lines, clippy::many_single_char_names)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;
mod spec_schema;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::*;
use mic_fake::FakeCloud;
use serde_json::{Value, json};
use spec_schema::Check;

const API: &str = "2024-05-15";
const ACCOUNT_READER: &str = "fbdf93bf-df7d-467e-a4d2-9458aa1360c8";
const ACCOUNT_CONTRIBUTOR: &str = "5bd9cd88-fe45-4216-938b-f97437e15450";

async fn vm_token(cloud: &FakeCloud, vm: &str) -> String {
    let base = cloud.imds_url(vm).unwrap();
    let r = client()
        .get(format!(
            "{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

fn js(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// A raw request: (status, body as JSON or a string).
async fn raw(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
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
    let text = r.text().await.unwrap_or_default();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The client side of the master-key scheme (mic-core's signer, not the fake's verifier).
fn auth(verb: &str, rtype: &str, link: &str, date: &str, key: &str) -> String {
    mic_core::sign::cosmos_authorization(verb, rtype, link, date, key).unwrap()
}

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

struct Setup {
    cloud: FakeCloud,
    arm: String,
    vm: String,
    vm_oid: String,
    account_id: String,
    /// `properties.documentEndpoint`, with its trailing slash.
    endpoint: String,
    keys: Value,
}

impl Setup {
    fn key(&self, name: &str) -> String {
        self.keys[name].as_str().unwrap().to_owned()
    }

    fn arm_url(&self, suffix: &str, api: &str) -> String {
        format!(
            "{}{}{suffix}?api-version={api}",
            self.cloud.arm_url(),
            self.account_id
        )
    }

    /// A signed data-plane request dated now (world clock = wall clock unless advanced).
    async fn signed(
        &self,
        method: &str,
        path: &str,
        rtype: &str,
        link: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let date = http_date(SystemTime::now());
        self.signed_at(method, path, rtype, link, key, &date, body)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn signed_at(
        &self,
        method: &str,
        path: &str,
        rtype: &str,
        link: &str,
        key: &str,
        date: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let a = auth(method, rtype, link, date, key);
        raw(
            method,
            &format!("{}{path}", self.endpoint),
            &[
                ("authorization", a.as_str()),
                ("x-ms-date", date),
                ("x-ms-version", "2018-12-31"),
                ("content-type", "application/json"),
            ],
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        )
        .await
    }
}

async fn put_account(cloud: &FakeCloud, tok: &str, id: &str, body: Value) -> Resp {
    call(
        "PUT",
        &format!("{}{id}?api-version={API}", cloud.arm_url()),
        Some(tok),
        Some(body),
    )
    .await
}

fn account_body() -> Value {
    json!({"location": "westus", "kind": "GlobalDocumentDB", "properties": {
        "databaseAccountOfferType": "Standard",
        "locations": [{"locationName": "westus", "failoverPriority": 0}],
    }})
}

async fn setup() -> Setup {
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
    let account_id = format!(
        "{}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos1",
        rg_id(&cloud, "rg")
    );
    let r = put_account(&cloud, &arm, &account_id, account_body()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let endpoint = r.body["properties"]["documentEndpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(endpoint.ends_with('/'));
    let k = call(
        "POST",
        &format!("{}{account_id}/listKeys?api-version={API}", cloud.arm_url()),
        Some(&arm),
        None,
    )
    .await;
    assert_eq!(k.status, 200, "{}", k.body);
    let s = Setup {
        cloud,
        arm,
        vm,
        vm_oid,
        account_id,
        endpoint,
        keys: k.body,
    };
    let (st, b) = s
        .signed(
            "POST",
            "dbs",
            "dbs",
            "",
            &s.key("primaryMasterKey"),
            Some(json!({"id": "Test"})),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    s
}

fn assert_cosmos_error(got: &(u16, Value), status: u16, code: &str) {
    let (st, b) = got;
    assert_eq!(*st, status, "{b}");
    assert_eq!(b["code"], code, "{b}");
    let m = b["message"].as_str().unwrap_or_default();
    assert!(m.contains("\r\nActivityId: "), "{b}");
}

#[tokio::test]
async fn master_key_signatures_are_checked() {
    let s = setup().await;
    let pk = s.key("primaryMasterKey");
    // A correct signature, with each of the two read-write keys.
    for k in ["primaryMasterKey", "secondaryMasterKey"] {
        let (st, b) = s.signed("GET", "dbs", "dbs", "", &s.key(k), None).await;
        assert_eq!((st, &b["_count"]), (200, &json!(1)), "{k}: {b}");
        let (st, b) = s
            .signed("GET", "dbs/Test", "dbs", "dbs/Test", &s.key(k), None)
            .await;
        assert_eq!((st, b["id"].as_str()), (200, Some("Test")), "{b}");
    }
    let date = http_date(SystemTime::now());
    let good = auth("GET", "dbs", "", &date, &pk);
    let url = format!("{}dbs", s.endpoint);
    let send = |a: String, d: String| {
        let url = url.clone();
        async move {
            raw(
                "GET",
                &url,
                &[("authorization", a.as_str()), ("x-ms-date", d.as_str())],
                vec![],
            )
            .await
        }
    };
    assert_eq!(send(good.clone(), date.clone()).await.0, 200);
    // One flipped signature byte (the signature is the tail of the URL-encoded header).
    let mut flipped = good.clone().into_bytes();
    let at = good.find("sig%3d").unwrap() + 10;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let r = send(String::from_utf8(flipped).unwrap(), date.clone()).await;
    assert_cosmos_error(&r, 401, "Unauthorized");
    let m = r.1["message"].as_str().unwrap();
    assert!(
        m.starts_with("The input authorization token can't serve the request."),
        "{m}"
    );
    assert!(
        m.contains(&format!("'get\\ndbs\\n\\n{}\\n\\n'", date.to_lowercase())),
        "{m}"
    );
    // Another key, another verb, another resource link, another date than the one sent.
    let other_key =
        "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==";
    for a in [
        auth("GET", "dbs", "", &date, other_key),
        auth("POST", "dbs", "", &date, &pk),
        auth("GET", "dbs", "dbs/Test", &date, &pk),
        auth("GET", "colls", "", &date, &pk),
        auth("GET", "dbs", "", "Thu, 27 Apr 2017 00:51:12 GMT", &pk),
    ] {
        assert_cosmos_error(&send(a, date.clone()).await, 401, "Unauthorized");
    }
    // The token's other fields: type must be master, ver 1.0.
    let sig = good.split("sig%3d").nth(1).unwrap();
    for a in [
        format!("type%3dresource%26ver%3d1.0%26sig%3d{sig}"),
        format!("type%3dmaster%26ver%3d2.0%26sig%3d{sig}"),
        format!("type%3dmaster%26sig%3d{sig}"),
        "type%3dmaster%26ver%3d1.0".to_owned(),
        "garbage".to_owned(),
        String::new(),
    ] {
        assert_cosmos_error(&send(a, date.clone()).await, 401, "Unauthorized");
    }
    // Upper-case percent escapes (JavaScript's encodeURIComponent) are as good as .NET's
    // lower-case ones.
    let upper = good
        .replace("%3d", "%3D")
        .replace("%2b", "%2B")
        .replace("%2f", "%2F");
    assert_eq!(send(upper, date.clone()).await.0, 200);
    // No authorization header.
    let r = raw("GET", &url, &[("x-ms-date", date.as_str())], vec![]).await;
    assert_cosmos_error(&r, 401, "Unauthorized");
    assert!(
        r.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Required Header authorization is missing.")
    );
}

#[tokio::test]
async fn read_only_keys_read_but_do_not_write() {
    let s = setup().await;
    for k in ["primaryReadonlyMasterKey", "secondaryReadonlyMasterKey"] {
        let ro = s.key(k);
        let (st, b) = s.signed("GET", "dbs", "dbs", "", &ro, None).await;
        assert_eq!((st, &b["Databases"][0]["id"]), (200, &json!("Test")), "{b}");
        // A write with it: the same 401 as a wrong key (Cosmos does not say "read-only").
        let r = s
            .signed("POST", "dbs", "dbs", "", &ro, Some(json!({"id": "Other"})))
            .await;
        assert_cosmos_error(&r, 401, "Unauthorized");
        assert!(
            r.1["message"]
                .as_str()
                .unwrap()
                .contains("can't serve the request"),
            "{}",
            r.1
        );
        let r = s
            .signed("DELETE", "dbs/Test", "dbs", "dbs/Test", &ro, None)
            .await;
        assert_cosmos_error(&r, 401, "Unauthorized");
    }
    // Nothing was written.
    let (st, b) = s
        .signed("GET", "dbs", "dbs", "", &s.key("primaryMasterKey"), None)
        .await;
    assert_eq!((st, &b["_count"]), (200, &json!(1)));
}

#[tokio::test]
async fn the_date_window_is_enforced() {
    let s = setup().await;
    let pk = s.key("primaryMasterKey");
    let now = SystemTime::now();
    // Inside the window: 14 minutes old, 4 minutes ahead.
    for t in [
        now - Duration::from_secs(14 * 60),
        now + Duration::from_secs(4 * 60),
    ] {
        let (st, b) = s
            .signed_at("GET", "dbs", "dbs", "", &pk, &http_date(t), None)
            .await;
        assert_eq!(st, 200, "{b}");
    }
    // Stale (16 minutes old) or too far ahead (6 minutes): 403 with the token's times.
    for t in [
        now - Duration::from_secs(16 * 60),
        now + Duration::from_secs(6 * 60),
    ] {
        let r = s
            .signed_at("GET", "dbs", "dbs", "", &pk, &http_date(t), None)
            .await;
        assert_cosmos_error(&r, 403, "Forbidden");
        assert!(
            r.1["message"]
                .as_str()
                .unwrap()
                .starts_with("The authorization token is not valid at the current time."),
            "{}",
            r.1
        );
    }
    // A request signed now goes stale when the world's clock moves on.
    let date = http_date(SystemTime::now());
    let a = auth("GET", "dbs", "", &date, &pk);
    let url = format!("{}dbs", s.endpoint);
    let h = [("authorization", a.as_str()), ("x-ms-date", date.as_str())];
    assert_eq!(raw("GET", &url, &h, vec![]).await.0, 200);
    // Missing x-ms-date: the signature (over the date) no longer matches.
    let r = raw("GET", &url, &h[..1], vec![]).await;
    assert_cosmos_error(&r, 401, "Unauthorized");
    // `Date` stands in for a missing `x-ms-date`.
    let r = raw("GET", &url, &[h[0], ("date", date.as_str())], vec![]).await;
    assert_eq!(r.0, 200, "{}", r.1);
    // Signed over an empty date and sent without one: the date itself is refused.
    let empty = auth("GET", "dbs", "", "", &pk);
    let r = raw("GET", &url, &[("authorization", empty.as_str())], vec![]).await;
    assert_cosmos_error(&r, 401, "Unauthorized");
    assert!(
        r.1["message"].as_str().unwrap().contains("date header"),
        "{}",
        r.1
    );
    // A garbage date, correctly signed.
    let bad = "yesterday";
    let r = s.signed_at("GET", "dbs", "dbs", "", &pk, bad, None).await;
    assert_cosmos_error(&r, 401, "Unauthorized");
    s.cloud.advance_clock(Duration::from_secs(16 * 60));
    let r = raw("GET", &url, &h, vec![]).await;
    assert_cosmos_error(&r, 403, "Forbidden");
}

#[tokio::test]
async fn keys_by_role() {
    let s = setup().await;
    let vt = vm_token(&s.cloud, &s.vm).await;
    let list = s.arm_url("/listKeys", API);
    let ro = s.arm_url("/readonlykeys", API);
    // No role: neither.
    for (m, u) in [("POST", &list), ("POST", &ro), ("GET", &ro)] {
        let r = call(m, u, Some(&vt), None).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (403, Some("AuthorizationFailed")),
            "{m} {u}"
        );
    }
    // Cosmos DB Account Reader Role: read-only keys only.
    let a = assign(&s.cloud, &s.arm, &s.account_id, ACCOUNT_READER, &s.vm_oid).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let r = call("POST", &list, Some(&vt), None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.DocumentDB/databaseAccounts/listKeys/action")
    );
    for m in ["POST", "GET"] {
        let r = call(m, &ro, Some(&vt), None).await;
        assert_eq!(r.status, 200, "{m}: {}", r.body);
        let mut k: Vec<&String> = r.body.as_object().unwrap().keys().collect();
        k.sort();
        assert_eq!(
            k,
            vec!["primaryReadonlyMasterKey", "secondaryReadonlyMasterKey"]
        );
        assert_eq!(
            r.body["primaryReadonlyMasterKey"],
            s.keys["primaryReadonlyMasterKey"]
        );
    }
    // The reader cannot change the account either.
    let r = put_account(&s.cloud, &vt, &s.account_id, account_body()).await;
    assert_eq!(r.status, 403);
    // DocumentDB Account Contributor on a second identity's VM: both lists.
    let (vm2, b2) = create_vm(
        &s.cloud,
        &s.arm,
        "rg",
        "vm2",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let oid2 = b2["identity"]["principalId"].as_str().unwrap();
    let vt2 = vm_token(&s.cloud, &vm2).await;
    assert_eq!(call("POST", &list, Some(&vt2), None).await.status, 403);
    let a = assign(&s.cloud, &s.arm, &s.account_id, ACCOUNT_CONTRIBUTOR, oid2).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let r = call("POST", &list, Some(&vt2), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, s.keys);
    assert_eq!(r.body.as_object().unwrap().len(), 4);
    let r = call("POST", &ro, Some(&vt2), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A role on another account does not reach this one.
    let other = s.account_id.replace("cosmos1", "cosmos2");
    let r = put_account(&s.cloud, &s.arm, &other, account_body()).await;
    assert_eq!(r.status, 200);
    let r = call(
        "POST",
        &format!("{}{other}/listKeys?api-version={API}", s.cloud.arm_url()),
        Some(&vt),
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    // Methods: listKeys is POST only.
    let r = call("GET", &list, Some(&s.arm), None).await;
    assert!(r.status == 405 || r.status == 404, "{}", r.body);
    assert!(r.body["error"]["code"].is_string());
}

#[tokio::test]
async fn unsupported_api_versions() {
    let s = setup().await;
    for (m, suffix) in [
        ("POST", "/listKeys"),
        ("POST", "/readonlykeys"),
        ("GET", "/readonlykeys"),
        ("GET", ""),
    ] {
        for api in ["2016-12-01", "2099-01-01", ""] {
            let r = call(m, &s.arm_url(suffix, api), Some(&s.arm), None).await;
            assert_eq!(r.status, 400, "{m} {suffix} {api}: {}", r.body);
            let code = r.body["error"]["code"].as_str().unwrap();
            if api == "2016-12-01" {
                assert_eq!(code, "NoRegisteredProviderFound");
                assert!(
                    r.body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("API version '2016-12-01' for type 'databaseAccounts'"),
                    "{}",
                    r.body
                );
            }
        }
    }
    // The oldest and the tutorial's supported versions work.
    for api in ["2015-04-08", "2016-03-31", "2019-12-12", API] {
        let r = call("POST", &s.arm_url("/listKeys", api), Some(&s.arm), None).await;
        assert_eq!(r.status, 200, "{api}: {}", r.body);
    }
}

#[tokio::test]
async fn data_plane_resources() {
    let s = setup().await;
    let pk = s.key("primaryMasterKey");
    let r = s
        .signed(
            "POST",
            "dbs/Test/colls",
            "colls",
            "dbs/Test",
            &pk,
            Some(json!({"id": "Items", "partitionKey": {"paths": ["/id"], "kind": "Hash"}})),
        )
        .await;
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["partitionKey"]["paths"][0], "/id");
    let r = s
        .signed(
            "POST",
            "dbs/Test/colls/Items/docs",
            "docs",
            "dbs/Test/colls/Items",
            &pk,
            Some(json!({"id": "d1", "n": 1})),
        )
        .await;
    assert_eq!(r.0, 201, "{}", r.1);
    let r = s
        .signed(
            "GET",
            "dbs/Test/colls/Items/docs/d1",
            "docs",
            "dbs/Test/colls/Items/docs/d1",
            &pk,
            None,
        )
        .await;
    assert_eq!((r.0, &r.1["n"]), (200, &json!(1)), "{}", r.1);
    for k in ["_rid", "_self", "_etag", "_ts", "_attachments"] {
        assert!(!r.1[k].is_null(), "{k}: {}", r.1);
    }
    // Conflicts and not-found.
    let r = s
        .signed("POST", "dbs", "dbs", "", &pk, Some(json!({"id": "Test"})))
        .await;
    assert_cosmos_error(&r, 409, "Conflict");
    let r = s
        .signed("GET", "dbs/Nope", "dbs", "dbs/Nope", &pk, None)
        .await;
    assert_cosmos_error(&r, 404, "NotFound");
    let r = s
        .signed(
            "POST",
            "dbs/Nope/colls",
            "colls",
            "dbs/Nope",
            &pk,
            Some(json!({"id": "c"})),
        )
        .await;
    assert_cosmos_error(&r, 404, "NotFound");
    // The account root.
    let r = s.signed("GET", "", "", "", &pk, None).await;
    assert_eq!((r.0, r.1["id"].as_str()), (200, Some("cosmos1")), "{}", r.1);
    // Delete.
    let r = s
        .signed("DELETE", "dbs/Test", "dbs", "dbs/Test", &pk, None)
        .await;
    assert_eq!(r.0, 204, "{}", r.1);
    let (st, b) = s.signed("GET", "dbs", "dbs", "", &pk, None).await;
    assert_eq!((st, &b["_count"]), (200, &json!(0)));
}

#[tokio::test]
async fn responses_conform_to_the_spec() {
    let s = setup().await;
    let spec = js(include_str!("data/cosmos-db-2024-05-15.json"));
    let examples = js(include_str!("data/keyvault-cosmos-examples.json"));
    let r = call("GET", &s.arm_url("", API), Some(&s.arm), None).await;
    assert_eq!(r.status, 200);
    let mut c = Check::new(&spec, false);
    c.definition(&r.body, "DatabaseAccountGetResults")
        .assert_valid();
    // Undeclared keys: `readLocations[]`/`writeLocations[]` items are `Location`s, whose
    // declared keys cover what the fake prints; the spec has no `tags` on a GET without tags.
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    assert_eq!(r.body["kind"], "GlobalDocumentDB");
    assert_eq!(r.body["type"], "Microsoft.DocumentDB/databaseAccounts");
    // The PUT answer has the same shape.
    let p = put_account(&s.cloud, &s.arm, &s.account_id, account_body()).await;
    let mut c = Check::new(&spec, false);
    c.definition(&p.body, "DatabaseAccountGetResults")
        .assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    // Keys: exactly the examples' keys and types.
    let mut c = Check::new(&spec, false);
    c.definition(&s.keys, "DatabaseAccountListKeysResult")
        .assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    assert_same_shape(
        &examples["cosmos-db/2024-05-15/examples/CosmosDBDatabaseAccountListKeys.json"],
        &s.keys,
        "listKeys",
    );
    let r = call("POST", &s.arm_url("/readonlykeys", API), Some(&s.arm), None).await;
    let mut c = Check::new(&spec, false);
    c.definition(&r.body, "DatabaseAccountListReadOnlyKeysResult")
        .assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    assert_same_shape(
        &examples["cosmos-db/2024-05-15/examples/CosmosDBDatabaseAccountListReadOnlyKeys.json"],
        &r.body,
        "readonlykeys",
    );
    // Against the GET example: the fake prints a subset of the example's keys; what it leaves
    // out is pinned below (features the fake does not model).
    let ex = &examples["cosmos-db/2024-05-15/examples/CosmosDBDatabaseAccountGet.json"];
    let g = call("GET", &s.arm_url("", API), Some(&s.arm), None)
        .await
        .body;
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let (et, gt) = (keys(ex), keys(&g));
    assert!(gt.is_subset(&et), "{:?}", gt.difference(&et));
    assert_eq!(
        et.difference(&gt).cloned().collect::<Vec<_>>(),
        vec!["identity", "tags"]
    );
    let (ep, gp) = (keys(&ex["properties"]), keys(&g["properties"]));
    // In the schema, left out of the example, printed by Azure's GET.
    assert_eq!(
        gp.difference(&ep).cloned().collect::<Vec<_>>(),
        vec![
            "disableLocalAuth",
            "enableAutomaticFailover",
            "enableMultipleWriteLocations",
            "publicNetworkAccess"
        ]
    );
    // In the example, not printed by the fake: features it does not model (analytical storage,
    // backup, CORS, firewall and network rules, private endpoints, key metadata, free tier...).
    // A test that reads one of these must first add it to the fake.
    assert_eq!(
        ep.difference(&gp).cloned().collect::<Vec<_>>(),
        vec![
            "analyticalStorageConfiguration",
            "apiProperties",
            "backupPolicy",
            "cors",
            "createMode",
            "defaultIdentity",
            "disableKeyBasedMetadataWriteAccess",
            "enableAnalyticalStorage",
            "enableBurstCapacity",
            "enableFreeTier",
            "enablePartitionMerge",
            "failoverPolicies",
            "instanceId",
            "ipRules",
            "isVirtualNetworkFilterEnabled",
            "keysMetadata",
            "minimalTlsVersion",
            "networkAclBypass",
            "networkAclBypassResourceIds",
            "privateEndpointConnections",
            "virtualNetworkRules",
        ]
    );
}

async fn assert_cosmos_alive(s: &Setup) {
    let pk = s.key("primaryMasterKey");
    let (st, b) = s
        .signed("POST", "dbs", "dbs", "", &pk, Some(json!({"id": "Again"})))
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = s
        .signed("GET", "dbs/Again", "dbs", "dbs/Again", &pk, None)
        .await;
    assert_eq!(st, 200, "{b}");
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
        b"{\"id\": 5}".to_vec(),
        b"{\"id\": \"\"}".to_vec(),
        b"{\"id\": \"a/b\"}".to_vec(),
        b"{\"id\": null, \"partitionKey\": 3}".to_vec(),
        b"{\"location\": 5, \"kind\": [], \"properties\": \"x\", \"tags\": [1]}".to_vec(),
        b"{\"location\": \"westus\", \"properties\": {\"databaseAccountOfferType\": 5, \"locations\": {}}}".to_vec(),
        b"{\"location\": \"westus\", \"properties\": {\"databaseAccountOfferType\": \"Premium\"}}".to_vec(),
        vec![b'a'; 3 * 1024 * 1024],
    ]
}

#[tokio::test]
async fn malformed_input_gets_cosmos_errors() {
    let s = setup().await;
    let pk = s.key("primaryMasterKey");
    let date = http_date(SystemTime::now());
    let paths = [
        ("dbs", "dbs", ""),
        ("dbs/Test", "dbs", "dbs/Test"),
        ("dbs/Test/colls", "colls", "dbs/Test"),
        ("dbs/Test/colls/x/docs", "docs", "dbs/Test/colls/x"),
        ("dbs/Test/users", "users", "dbs/Test"),
        ("dbs/%FF%00", "dbs", "dbs/\u{fffd}\u{0}"),
        ("dbs/a/b/c/d/e/f/g/h", "dbs", "dbs/a"),
        ("dbs/../../etc", "dbs", ""),
        ("offers", "offers", ""),
        ("//dbs//Test", "dbs", "dbs/Test"),
        ("", "", ""),
    ];
    for (path, rtype, link) in paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let good = auth(method, rtype, link, &date, &pk);
            let headers: Vec<Vec<(&str, &str)>> = vec![
                vec![
                    ("authorization", good.as_str()),
                    ("x-ms-date", date.as_str()),
                ],
                vec![("authorization", good.as_str())],
                vec![
                    ("authorization", "type%3dmaster%26ver%3d1.0%26sig%3d%FF%FE"),
                    ("x-ms-date", date.as_str()),
                ],
                vec![
                    ("authorization", "%%%&&&==="),
                    ("x-ms-date", "Thu, 31 Feb 2026 25:61:61 GMT"),
                ],
                vec![("x-ms-date", date.as_str())],
            ];
            for h in &headers {
                let bodies = if method == "POST" && h.len() == 2 && h[0].1 == good {
                    garbage_bodies()
                } else {
                    vec![b"{".to_vec()]
                };
                for body in bodies {
                    let (st, b) = raw(method, &format!("{}{path}", s.endpoint), h, body).await;
                    assert!(st < 500, "{method} {path} {h:?}: {st} {b}");
                    if st >= 400 {
                        assert!(
                            b["code"].is_string() && b["message"].is_string(),
                            "{method} {path} {h:?}: {st} {b}"
                        );
                    }
                }
            }
        }
    }
    assert_cosmos_alive(&s).await;
}

#[tokio::test]
async fn malformed_input_gets_arm_errors() {
    let spec = js(include_str!("data/cosmos-db-2024-05-15.json"));
    let s = setup().await;
    let arm = s.cloud.arm_url();
    let auth = format!("Bearer {}", s.arm);
    let id = &s.account_id;
    let targets = [
        format!("{arm}{id}?api-version={API}"),
        format!(
            "{arm}{}?api-version={API}",
            id.replace("cosmos1", "cosmosnew")
        ),
        format!(
            "{arm}{}?api-version={API}",
            id.replace("cosmos1", "Bad_Name")
        ),
        format!("{arm}{id}/listKeys?api-version={API}"),
        format!("{arm}{id}/readonlykeys?api-version={API}"),
        format!("{arm}{id}/readOnlyKeys?api-version={API}"),
        format!(
            "{arm}{}/listKeys?api-version={API}",
            id.replace("cosmos1", "nope")
        ),
        format!("{arm}{id}/listKeys/x?api-version={API}"),
        format!("{arm}{id}/%FF?api-version={API}"),
        format!("{arm}{id}/listKeys?api-version=%FF"),
        format!("{arm}{id}/listKeys"),
    ];
    for t in &targets {
        for method in ["GET", "PUT", "PATCH", "POST", "DELETE"] {
            let bodies = if method == "PUT" {
                garbage_bodies()
            } else {
                vec![b"{".to_vec()]
            };
            for body in bodies {
                for h in [
                    vec![
                        ("Authorization", auth.as_str()),
                        ("Content-Type", "application/json"),
                    ],
                    vec![("Authorization", "Bearer garbage")],
                    vec![],
                ] {
                    let (st, b) = raw(method, t, &h, body.clone()).await;
                    assert!(st < 500, "{method} {t}: {st} {b}");
                    // Whatever the fake accepts, it must print in the spec's shape.
                    if st < 300 && method == "PUT" && !t.contains("/accessPolicies/") {
                        let mut c = Check::new(&spec, false);
                        c.definition(&b.clone(), "DatabaseAccountGetResults");
                        assert!(
                            c.errors.is_empty(),
                            "{method} {t} {:?}: {:?}",
                            String::from_utf8_lossy(&body[..body.len().min(300)]),
                            c.errors
                        );
                    }
                    if st >= 400 {
                        assert!(b["error"]["code"].is_string(), "{method} {t}: {st} {b}");
                    }
                }
            }
        }
    }
    // Wrong JSON types in otherwise valid bodies: refused (400), never stored and echoed back.
    for (field, bad) in [
        ("kind", json!([])),
        ("tags", json!({"a": 1})),
        ("properties.locations", json!({})),
        ("properties.locations", json!([{"locationName": 5}])),
        ("properties.consistencyPolicy", json!("strong")),
        (
            "properties.consistencyPolicy",
            json!({"defaultConsistencyLevel": "Sometimes"}),
        ),
        ("properties.enableAutomaticFailover", json!("no")),
        ("properties.enableMultipleWriteLocations", json!(1)),
        ("properties.disableLocalAuth", json!("false")),
        ("properties.publicNetworkAccess", json!(true)),
        ("properties.ipRules", json!("0.0.0.0")),
    ] {
        let mut b = account_body();
        match field.strip_prefix("properties.") {
            Some(p) => b["properties"][p] = bad,
            None => b[field] = bad,
        }
        let r = put_account(&s.cloud, &s.arm, &id.replace("cosmos1", "cosmostyped"), b).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{}", r.body);
    }
    // The server still answers valid requests: a new account, its keys, its data plane.
    let other = id.replace("cosmos1", "cosmosafter");
    let r = put_account(&s.cloud, &s.arm, &other, account_body()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let endpoint = r.body["properties"]["documentEndpoint"].as_str().unwrap();
    let k = call(
        "POST",
        &format!("{arm}{other}/listKeys?api-version={API}"),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(k.status, 200);
    let date = http_date(SystemTime::now());
    let a = auth_header(&date, k.body["primaryMasterKey"].as_str().unwrap());
    let r = raw(
        "GET",
        &format!("{endpoint}dbs"),
        &[("authorization", a.as_str()), ("x-ms-date", date.as_str())],
        vec![],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
}

fn auth_header(date: &str, key: &str) -> String {
    auth("GET", "dbs", "", date, key)
}
