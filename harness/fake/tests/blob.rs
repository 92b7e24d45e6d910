//! The Blob data plane over real HTTP: every authorization rule shown to fail when violated
//! (a flipped Shared Key or SAS signature byte, a removed permission letter, a regenerated
//! key, an expired SAS, a token without a data role, the wrong audience, no `x-ms-version`).

#![allow(clippy::too_many_lines)]
#![allow(clippy::duration_suboptimal_units)]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use mic_fake::FakeCloud;
use mic_fake::blob::auth;
use serde_json::{Value, json};

struct Account {
    id: String,
    name: String,
    blob: String,
    keys: Vec<String>,
}

async fn account(cloud: &FakeCloud, tok: &str) -> Account {
    create_rg(cloud, tok, "rg").await;
    let name = "mystorage1";
    let id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{name}",
        rg_id(cloud, "rg")
    );
    let r = call(
        "PUT",
        &format!("{}{id}?api-version=2017-06-01", cloud.arm_url()),
        Some(tok),
        Some(json!({"location": "westus", "sku": {"name": "Standard_LRS"}, "kind": "Storage"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let blob = r.body["properties"]["primaryEndpoints"]["blob"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(blob.starts_with("http://127.0.0.1:") && blob.ends_with('/'));
    let keys = list_keys(cloud, tok, &id, "2016-12-01").await;
    Account {
        id,
        name: name.into(),
        blob,
        keys,
    }
}

async fn list_keys(cloud: &FakeCloud, tok: &str, id: &str, v: &str) -> Vec<String> {
    let r = call(
        "POST",
        &format!("{}{id}/listKeys?api-version={v}", cloud.arm_url()),
        Some(tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["value"].as_str().unwrap().to_owned())
        .collect()
}

struct Out {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Out {
    fn code(&self) -> &str {
        self.headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn send(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Out {
    let mut rb = client().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    if !body.is_empty() {
        rb = rb.body(body.to_vec());
    }
    let r = rb.send().await.unwrap();
    Out {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

/// Headers of a Shared Key request, signed with `key` (optionally tampered with by `tamper`).
fn shared_key_headers(
    acct: &str,
    key: &str,
    method: &str,
    url: &str,
    extra: &[(&str, &str)],
    body_len: usize,
    tamper: impl Fn(String) -> String,
) -> Vec<(String, String)> {
    let u = url::Url::parse(url).unwrap();
    let mut h: Vec<(String, String)> = vec![
        (
            "x-ms-date".into(),
            httpdate::fmt_http_date(SystemTime::now()),
        ),
        ("x-ms-version".into(), "2017-11-09".into()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut signed = h.clone();
    if body_len > 0 {
        signed.push(("Content-Length".into(), body_len.to_string()));
    }
    let sts = auth::shared_key_string_to_sign(
        acct,
        &auth::SharedKeyInput {
            method,
            raw_path: u.path(),
            raw_query: u.query().unwrap_or(""),
            headers: signed,
        },
    );
    let sig = tamper(auth::hmac_b64(key, &sts).unwrap());
    h.push(("Authorization".into(), format!("SharedKey {acct}:{sig}")));
    h
}

fn flip_first(s: String) -> String {
    let mut b = s.into_bytes();
    b[0] = if b[0] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

async fn sk(
    a: &Account,
    key: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Out {
    let url = format!("{}{path}", a.blob);
    let h = shared_key_headers(&a.name, key, method, &url, extra, body.len(), |s| s);
    send(method, &url, &h, body).await
}

#[tokio::test]
async fn shared_key_is_verified() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let a = account(&cloud, &tok).await;
    let k1 = a.keys[0].clone();

    let r = sk(&a, &k1, "PUT", "mycontainer?restype=container", &[], b"").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = sk(&a, &k1, "PUT", "mycontainer?restype=container", &[], b"").await;
    assert_eq!((r.status, r.code()), (409, "ContainerAlreadyExists"));
    let r = sk(
        &a,
        &k1,
        "PUT",
        "mycontainer/hello%20world.txt",
        &[
            ("x-ms-blob-type", "BlockBlob"),
            ("Content-Type", "text/plain"),
        ],
        b"Hello world! :)",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = sk(
        &a,
        &a.keys[1],
        "GET",
        "mycontainer/hello%20world.txt",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (200, "Hello world! :)"),
        "key2 signs too"
    );
    assert!(r.headers.contains_key("x-ms-request-id"));
    let r = sk(
        &a,
        &k1,
        "GET",
        "mycontainer?restype=container&comp=list",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.contains("<Name>hello world.txt</Name>"),
        "{}",
        r.text
    );
    let r = sk(&a, &k1, "PUT", "mycontainer/x", &[], b"abc").await;
    assert_eq!((r.status, r.code()), (400, "MissingRequiredHeader"));

    // One flipped signature byte.
    let url = format!("{}mycontainer/hello%20world.txt", a.blob);
    let h = shared_key_headers(&a.name, &k1, "GET", &url, &[], 0, flip_first);
    let r = send("GET", &url, &h, b"").await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    assert!(r.text.contains("<Code>AuthenticationFailed</Code>"));
    assert!(r.text.contains("is not the same as any computed signature"));
    assert!(r.headers.contains_key("x-ms-request-id"));
    // A signed header changed after signing.
    let mut h = shared_key_headers(&a.name, &k1, "GET", &url, &[], 0, |s| s);
    h.push((
        "x-ms-client-request-id".into(),
        "added-after-signing".into(),
    ));
    assert_eq!(send("GET", &url, &h, b"").await.status, 403);
    // Another account's name, a key that is not the account's, no date.
    let h = shared_key_headers("otheraccount", &k1, "GET", &url, &[], 0, |s| s);
    assert_eq!(
        send("GET", &url, &h, b"").await.code(),
        "AuthenticationFailed"
    );
    let wrong =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    assert_eq!(
        sk(&a, wrong, "GET", "mycontainer/hello%20world.txt", &[], b"")
            .await
            .status,
        403
    );
    let h: Vec<(String, String)> = shared_key_headers(&a.name, &k1, "GET", &url, &[], 0, |s| s)
        .into_iter()
        .filter(|(k, _)| k != "x-ms-date")
        .collect();
    assert_eq!(
        send("GET", &url, &h, b"").await.code(),
        "AuthenticationFailed"
    );

    // Regenerating key1 invalidates it; key2 keeps working.
    let r = call(
        "POST",
        &format!(
            "{}{}/regenerateKey?api-version=2016-12-01",
            cloud.arm_url(),
            a.id
        ),
        Some(&tok),
        Some(json!({"keyName": "key1"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.body["keys"][0]["value"].as_str().unwrap(), k1);
    let r = sk(&a, &k1, "GET", "mycontainer/hello%20world.txt", &[], b"").await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    assert_eq!(
        sk(
            &a,
            &a.keys[1],
            "GET",
            "mycontainer/hello%20world.txt",
            &[],
            b""
        )
        .await
        .status,
        200
    );

    // Not found, delete.
    let k2 = a.keys[1].clone();
    assert_eq!(
        sk(&a, &k2, "GET", "nocontainer/b", &[], b"").await.code(),
        "ContainerNotFound"
    );
    assert_eq!(
        sk(&a, &k2, "GET", "mycontainer/nob", &[], b"").await.code(),
        "BlobNotFound"
    );
    assert_eq!(
        sk(&a, &k2, "DELETE", "mycontainer/hello%20world.txt", &[], b"")
            .await
            .status,
        202
    );
    assert_eq!(
        sk(&a, &k2, "HEAD", "mycontainer/hello%20world.txt", &[], b"")
            .await
            .status,
        404
    );
    // Anonymous.
    let r = send("GET", &format!("{}mycontainer/x", a.blob), &[], b"").await;
    assert_eq!((r.status, r.code()), (401, "NoAuthenticationInformation"));
    cloud.shutdown().await;
}

async fn service_sas(
    cloud: &FakeCloud,
    tok: &str,
    a: &Account,
    body: Value,
    path: &str,
) -> (u16, String) {
    let r = call(
        "POST",
        &format!("{}{}/{path}", cloud.arm_url(), a.id),
        Some(tok),
        Some(body),
    )
    .await;
    (
        r.status,
        r.body["serviceSasToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn sas_body(a: &Account, sr: &str, resource: &str, sp: &str, se: &str) -> Value {
    json!({"canonicalizedResource": format!("/blob/{}/{resource}", a.name), "signedResource": sr,
           "signedPermission": sp, "signedProtocol": "https", "signedExpiry": se})
}

fn replace_param(token: &str, key: &str, f: impl Fn(&str) -> String) -> String {
    token
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) if k == key => format!("{k}={}", f(v)),
            _ => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn service_sas_is_verified() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let a = account(&cloud, &tok).await;
    let k1 = a.keys[0].clone();
    assert_eq!(
        sk(&a, &k1, "PUT", "cont1?restype=container", &[], b"")
            .await
            .status,
        201
    );
    let put = |sas: String| {
        let url = format!("{}cont1/testblob?{sas}", a.blob);
        async move {
            send(
                "PUT",
                &url,
                &[
                    ("x-ms-blob-type".into(), "BlockBlob".into()),
                    ("x-ms-version".into(), "2017-11-09".into()),
                ],
                b"This is a test file.",
            )
            .await
        }
    };
    let get = |sas: String, blob: &str| {
        let url = format!("{}cont1/{blob}?{sas}", a.blob);
        async move { send("GET", &url, &[], b"").await }
    };
    // The tutorial's path spelling (trailing slash) and the swagger's.
    let (s, sas) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(&a, "c", "cont1", "rcw", "2099-01-01T00:00:00Z"),
        "listServiceSas/?api-version=2017-06-01",
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        sas.starts_with("sv=2015-04-05&sr=c&spr=https&se=2099-01-01T00%3A00%3A00Z&sp=rcw&sig="),
        "{sas}"
    );
    let (s, sas2) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(&a, "c", "cont1", "rcw", "2099-01-01T00:00:00Z"),
        "ListServiceSas?api-version=2023-01-01",
    )
    .await;
    assert_eq!((s, &sas2), (200, &sas));
    let (s, _) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(&a, "c", "cont1", "rcw", "2099-01-01T00:00:00Z"),
        "listServiceSas?api-version=2016-12-01",
    )
    .await;
    assert_eq!(s, 400, "listServiceSas is 2017-06-01 and later");
    let (s, _) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(&a, "c", "cont1", "wr", "2099-01-01T00:00:00Z"),
        "listServiceSas?api-version=2017-06-01",
    )
    .await;
    assert_eq!(s, 400, "permissions out of order");

    let r = put(sas.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = get(sas.clone(), "testblob").await;
    assert_eq!((r.status, r.text.as_str()), (200, "This is a test file."));

    // One changed byte of sig; one permission letter removed; resource widened.
    let r = get(
        replace_param(&sas, "sig", |v| flip_first(v.to_owned())),
        "testblob",
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    assert!(r.text.contains("Signature did not match"), "{}", r.text);
    let r = get(replace_param(&sas, "sp", |_| "rc".into()), "testblob").await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    let r = get(replace_param(&sas, "sp", |_| "rcwd".into()), "testblob").await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    let r = get(
        replace_param(&sas, "se", |_| "2199-01-01T00%3A00%3A00Z".into()),
        "testblob",
    )
    .await;
    assert_eq!(r.status, 403);

    // Read-only SAS cannot write; no `l` cannot list; blob SAS only for its blob.
    let (_, ro) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(&a, "c", "cont1", "r", "2099-01-01T00:00:00Z"),
        "listServiceSas?api-version=2017-06-01",
    )
    .await;
    let r = put(ro.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationPermissionMismatch")
    );
    let r = send(
        "GET",
        &format!("{}cont1?restype=container&comp=list&{ro}", a.blob),
        &[],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationPermissionMismatch")
    );
    let (_, bsas) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(&a, "b", "cont1/testblob", "r", "2099-01-01T00:00:00Z"),
        "listServiceSas?api-version=2017-06-01",
    )
    .await;
    assert_eq!(get(bsas.clone(), "testblob").await.status, 200);
    assert_eq!(get(bsas, "otherblob").await.code(), "AuthenticationFailed");
    // Another container.
    assert_eq!(
        sk(&a, &k1, "PUT", "cont2?restype=container", &[], b"")
            .await
            .status,
        201
    );
    let r = send("GET", &format!("{}cont2/testblob?{sas}", a.blob), &[], b"").await;
    assert_eq!(r.code(), "AuthenticationFailed");
    // Expiry and start against the world clock.
    let (_, soon) = service_sas(
        &cloud,
        &tok,
        &a,
        sas_body(
            &a,
            "c",
            "cont1",
            "r",
            &time::OffsetDateTime::now_utc()
                .saturating_add(time::Duration::hours(1))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        ),
        "listServiceSas?api-version=2017-06-01",
    )
    .await;
    assert_eq!(get(soon.clone(), "testblob").await.status, 200);
    cloud.advance_clock(Duration::from_secs(2 * 3600));
    let r = get(soon, "testblob").await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    assert!(
        r.text
            .contains("Signature not valid in the specified time frame")
    );
    // keyToSign=key2 is valid; regenerating key2 revokes it.
    let tok = deployer_token(&cloud).await;
    let mut b = sas_body(&a, "c", "cont1", "r", "2199-01-01T00:00:00Z");
    b["keyToSign"] = json!("key2");
    let (_, k2sas) =
        service_sas(&cloud, &tok, &a, b, "listServiceSas?api-version=2017-06-01").await;
    assert_eq!(get(k2sas.clone(), "testblob").await.status, 200);
    call(
        "POST",
        &format!(
            "{}{}/regenerateKey?api-version=2017-06-01",
            cloud.arm_url(),
            a.id
        ),
        Some(&tok),
        Some(json!({"keyName": "key2"})),
    )
    .await;
    assert_eq!(get(k2sas, "testblob").await.code(), "AuthenticationFailed");
    cloud.shutdown().await;
}

#[tokio::test]
async fn bearer_needs_a_data_role() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let a = account(&cloud, &tok).await;
    assert_eq!(
        sk(&a, &a.keys[0], "PUT", "cnt?restype=container", &[], b"")
            .await
            .status,
        201
    );
    assert_eq!(
        sk(
            &a,
            &a.keys[0],
            "PUT",
            "cnt/b",
            &[("x-ms-blob-type", "BlockBlob")],
            b"data"
        )
        .await
        .status,
        201
    );
    let st = deployer_token_for(&cloud, "https://storage.azure.com/").await;
    let bearer = |t: &str, v: Option<&str>| {
        let mut h = vec![("Authorization".to_owned(), format!("Bearer {t}"))];
        if let Some(v) = v {
            h.push(("x-ms-version".to_owned(), v.to_owned()));
        }
        h
    };
    let url = format!("{}cnt/b", a.blob);
    // Owner of the subscription, no data role.
    let r = send("GET", &url, &bearer(&st, Some("2017-11-09")), b"").await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationPermissionMismatch")
    );
    // Version rules come first.
    let r = send("GET", &url, &bearer(&st, None), b"").await;
    assert_eq!((r.status, r.code()), (403, "AuthenticationFailed"));
    assert!(
        r.text
            .contains("Authentication scheme Bearer is not supported in this version.")
    );
    let r = send("GET", &url, &bearer(&st, Some("2017-07-29")), b"").await;
    assert_eq!(r.code(), "AuthenticationFailed");
    // Wrong audience, tampered token.
    let r = send("GET", &url, &bearer(&tok, Some("2017-11-09")), b"").await;
    assert_eq!((r.status, r.code()), (401, "InvalidAuthenticationInfo"));
    assert!(r.headers.contains_key("www-authenticate"));
    let r = send(
        "GET",
        &url,
        &bearer(&format!("{st}x"), Some("2017-11-09")),
        b"",
    )
    .await;
    assert_eq!(r.status, 401);

    // Storage Blob Data Reader on the container reads, cannot write.
    let me = cloud.deployer().object_id;
    let assign = |role: &str, scope: String| {
        let role_id = mic_fake::rbac::role_by_name(role).unwrap().id.clone();
        let url = format!(
            "{}{scope}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
            cloud.arm_url(),
            uuid::Uuid::new_v4()
        );
        let body = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role_id}", cloud.subscription_id()), "principalId": me}});
        let tok = tok.clone();
        async move {
            let r = call("PUT", &url, Some(&tok), Some(body)).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    };
    assign(
        "Storage Blob Data Reader",
        format!("{}/blobServices/default/containers/cnt", a.id),
    )
    .await;
    let st = deployer_token_for(&cloud, "https://storage.azure.com").await;
    let r = send("GET", &url, &bearer(&st, Some("2017-11-09")), b"").await;
    assert_eq!((r.status, r.text.as_str()), (200, "data"));
    let mut h = bearer(&st, Some("2017-11-09"));
    h.push(("x-ms-blob-type".into(), "BlockBlob".into()));
    let r = send("PUT", &url, &h, b"new").await;
    assert_eq!(
        (r.status, r.code()),
        (403, "AuthorizationPermissionMismatch")
    );
    // Contributor writes.
    assign("Storage Blob Data Contributor", a.id.clone()).await;
    let r = send("PUT", &url, &h, b"new").await;
    assert_eq!(r.status, 201, "{}", r.text);
    cloud.shutdown().await;
}

#[tokio::test]
async fn garbage_to_the_blob_service() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let a = account(&cloud, &tok).await;
    let paths = [
        "",
        "c",
        "c/",
        "%zz/%",
        "c/b?comp=weird",
        "c?restype=container&comp=x",
        "A_B/c",
        "c/b?sig=x",
        "c/b?sig=&sv=2015-04-05&sr=q&sp=zz&se=garbage",
        "c/b?sv=9999-99-99&sig=x&sr=c&sp=r&se=2099-01-01",
    ];
    let auths = [
        "",
        "Bearer",
        "Bearer x.y.z",
        "SharedKey",
        "SharedKey :",
        "SharedKey mystorage1:@@@",
        "SharedKeyLite mystorage1:x",
        "Basic abc",
    ];
    for p in paths {
        for au in auths {
            for m in ["GET", "PUT", "DELETE", "HEAD", "POST", "PATCH"] {
                let mut h = vec![
                    ("x-ms-version".to_owned(), "2017-11-09".to_owned()),
                    ("x-ms-date".to_owned(), "garbage".to_owned()),
                ];
                if !au.is_empty() {
                    h.push(("Authorization".to_owned(), au.to_owned()));
                }
                let r = send(m, &format!("{}{p}", a.blob), &h, &[0xff, 0xfe]).await;
                assert!((400..500).contains(&r.status), "{m} {p} {au}: {}", r.status);
                if m != "HEAD" {
                    assert!(r.text.contains("<Code>"), "{m} {p} {au}: {}", r.text);
                }
            }
        }
    }
    // A bad x-ms-version.
    let r = send(
        "GET",
        &format!("{}cnt/b", a.blob),
        &[("x-ms-version".into(), "2017-13-99x".into())],
        b"",
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "InvalidHeaderValue"));
    // The service stops with the account.
    let r = call(
        "DELETE",
        &format!("{}{}?api-version=2017-06-01", cloud.arm_url(), a.id),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    cloud.shutdown().await;
}
