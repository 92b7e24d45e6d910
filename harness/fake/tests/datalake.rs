//! Data Lake Store Gen1 over real HTTP: the ARM account, WebHDFS operations, the ACL rules
//! (each shown to deny when violated), token checks, spec conformance and malformed input.

#![allow(clippy::too_many_lines, clippy::many_single_char_names)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;
mod spec_schema;

use common::*;
use mic_fake::FakeCloud;
use serde_json::{Value, json};
use spec_schema::Check;

const DATALAKE: &str = "https://datalake.azure.net/";

/// A raw WebHDFS request: (status, location header, body text).
async fn hdfs(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Option<String>, String) {
    let no_redirect = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let mut rb = no_redirect
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .body(body.to_vec());
    if let Some(t) = token {
        rb = rb.header("Authorization", format!("Bearer {t}"));
    }
    let r = rb.send().await.unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), loc, r.text().await.unwrap())
}

fn js(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

struct Setup {
    cloud: FakeCloud,
    arm: String,
    vm: String,
    vm_oid: String,
    account_id: String,
    url: String,
    owner: String,
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
        "{}/providers/Microsoft.DataLakeStore/accounts/adls1",
        rg_id(&cloud, "rg")
    );
    let r = call(
        "PUT",
        &format!("{}{account_id}?api-version=2016-11-01", cloud.arm_url()),
        Some(&arm),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let url = r.body["properties"]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cloud.datalake_url(&account_id).as_deref(),
        Some(url.as_str())
    );
    let owner = deployer_token_for(&cloud, DATALAKE).await;
    let (s, _, b) = hdfs(
        "PUT",
        &format!("{url}/webhdfs/v1/TestFolder?op=MKDIRS"),
        Some(&owner),
        b"",
    )
    .await;
    assert_eq!((s, js(&b)), (200, json!({"boolean": true})));
    Setup {
        cloud,
        arm,
        vm,
        vm_oid,
        account_id,
        url,
        owner,
    }
}

async fn acl(s: &Setup, path: &str, spec: &str) -> u16 {
    let spec =
        percent_encoding::utf8_percent_encode(spec, percent_encoding::NON_ALPHANUMERIC).to_string();
    hdfs(
        "PUT",
        &format!(
            "{}/webhdfs/v1{path}?op=MODIFYACLENTRIES&aclspec={spec}",
            s.url
        ),
        Some(&s.owner),
        b"",
    )
    .await
    .0
}

#[tokio::test]
async fn account_conforms_to_the_spec() {
    let s = setup().await;
    let r = call(
        "GET",
        &format!(
            "{}{}?api-version=2016-11-01",
            s.cloud.arm_url(),
            s.account_id
        ),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let spec = js(include_str!("data/datalake-account-2016-11-01.json"));
    let mut c = Check::new(&spec, false);
    c.definition(&r.body, "DataLakeStoreAccount").assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    // Unsupported api-version, wrong name.
    let r = call(
        "GET",
        &format!(
            "{}{}?api-version=2017-01-01",
            s.cloud.arm_url(),
            s.account_id
        ),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("NoRegisteredProviderFound"))
    );
    let bad = s.account_id.replace("adls1", "Bad_Name");
    let r = call(
        "PUT",
        &format!("{}{bad}?api-version=2016-11-01", s.cloud.arm_url()),
        Some(&s.arm),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert_eq!(r.status, 400);
    // The identity may not create accounts (RBAC).
    let vt = vm_token(&s.cloud, &s.vm, "https://management.azure.com/").await;
    let r = call(
        "PUT",
        &format!(
            "{}{}?api-version=2016-11-01",
            s.cloud.arm_url(),
            s.account_id.replace("adls1", "adls2")
        ),
        Some(&vt),
        Some(json!({"location": "westus"})),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
    // Deleting the account stops its file system.
    let r = call(
        "DELETE",
        &format!(
            "{}{}?api-version=2016-11-01",
            s.cloud.arm_url(),
            s.account_id
        ),
        Some(&s.arm),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(s.cloud.datalake_url(&s.account_id).is_none());
    let gone = client()
        .get(format!("{}/webhdfs/v1/?op=LISTSTATUS", s.url))
        .send()
        .await;
    assert!(gone.is_err(), "the account's server still answers");
}

#[tokio::test]
async fn tutorial_flow_and_webhdfs_shapes() {
    let s = setup().await;
    let spec = js(include_str!("data/datalake-filesystem-2016-11-01.json"));
    let vt = vm_token(&s.cloud, &s.vm, "https%3A%2F%2Fdatalake.azure.net%2F").await;
    let list_root = format!("{}/webhdfs/v1/?op=LISTSTATUS", s.url);
    // No ACL entry: the identity is `other` on a 770 root.
    let (st, _, b) = hdfs("GET", &list_root, Some(&vt), b"").await;
    assert_eq!(st, 403);
    let err = js(&b);
    assert_eq!(
        err["RemoteException"]["exception"],
        "AccessControlException"
    );
    assert_eq!(
        err["RemoteException"]["javaClassName"],
        "org.apache.hadoop.security.AccessControlException"
    );
    assert!(
        err["RemoteException"]["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "LISTSTATUS failed with error 0x83090aa2 (Forbidden. ACL verification failed."
            )
    );
    let mut c = Check::new(&spec, true);
    c.definition(&err, "AdlsError").assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    // The tutorial's grants.
    assert_eq!(acl(&s, "/", &format!("user:{}:r-x", s.vm_oid)).await, 200);
    assert_eq!(
        acl(
            &s,
            "/TestFolder",
            &format!("user:{0}:rwx,default:user:{0}:rwx", s.vm_oid)
        )
        .await,
        200
    );
    let (st, _, b) = hdfs("GET", &list_root, Some(&vt), b"").await;
    assert_eq!(st, 200, "{b}");
    let v = js(&b);
    let entry = &v["FileStatuses"]["FileStatus"][0];
    assert_eq!(
        (
            entry["pathSuffix"].as_str(),
            entry["type"].as_str(),
            entry["permission"].as_str()
        ),
        (Some("TestFolder"), Some("DIRECTORY"), Some("770"))
    );
    assert_eq!(entry["replication"], 0);
    let mut c = Check::new(&spec, true);
    c.definition(&v, "FileStatusesResult").assert_valid();
    // The documented differences: WebHDFS casing is matched case-insensitively; `replication`
    // is the one field the swagger lacks.
    assert_eq!(
        c.unknown.iter().collect::<Vec<_>>(),
        vec!["FileStatuses.FileStatus[].replication"]
    );
    assert!(b.starts_with("{\"FileStatuses\":{\"FileStatus\":["), "{b}");
    // Upload in two legs.
    let create = format!("{}/webhdfs/v1/TestFolder/Test1.txt?op=CREATE", s.url);
    let (st, loc, b) = hdfs("PUT", &create, Some(&vt), b"Test file.\n").await;
    assert_eq!((st, b.as_str()), (307, ""));
    let loc = loc.unwrap();
    assert_eq!(loc, format!("{create}&write=true"));
    assert!(!s.cloud.directory().is_empty());
    let (st, _, _) = hdfs("PUT", &loc, Some(&vt), b"Test file.\n").await;
    assert_eq!(st, 201);
    let (st, _, b) = hdfs("PUT", &loc, Some(&vt), b"again").await;
    assert_eq!(
        (st, js(&b)["RemoteException"]["exception"].as_str()),
        (403, Some("FileAlreadyExistsException"))
    );
    let (st, _, _) = hdfs(
        "PUT",
        &format!("{loc}&overwrite=true"),
        Some(&vt),
        b"Test file.\n",
    )
    .await;
    assert_eq!(st, 201);
    // Read back (OPEN redirects to read=true first).
    let open = format!("{}/webhdfs/v1/TestFolder/Test1.txt?op=OPEN", s.url);
    let (st, loc, _) = hdfs("GET", &open, Some(&vt), b"").await;
    assert_eq!(
        (st, loc.as_deref()),
        (307, Some(format!("{open}&read=true").as_str()))
    );
    let (st, _, b) = hdfs("GET", &format!("{open}&read=true"), Some(&vt), b"").await;
    assert_eq!((st, b.as_str()), (200, "Test file.\n"));
    // The new file belongs to the identity and inherited the folder's default entry.
    let (st, _, b) = hdfs(
        "GET",
        &format!("{}/webhdfs/v1/TestFolder/Test1.txt?op=GETFILESTATUS", s.url),
        Some(&vt),
        b"",
    )
    .await;
    assert_eq!(st, 200);
    let fsv = js(&b);
    assert_eq!(
        (
            fsv["FileStatus"]["owner"].as_str(),
            fsv["FileStatus"]["length"].as_u64()
        ),
        (Some(s.vm_oid.as_str()), Some(11))
    );
    let mut c = Check::new(&spec, true);
    c.definition(&fsv, "FileStatusResult").assert_valid();
    let (st, _, b) = hdfs(
        "GET",
        &format!("{}/webhdfs/v1/TestFolder?op=GETACLSTATUS", s.url),
        Some(&vt),
        b"",
    )
    .await;
    assert_eq!(st, 200);
    let a = js(&b);
    let entries: Vec<&str> = a["AclStatus"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        entries.contains(&format!("user:{}:rwx", s.vm_oid).as_str()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&format!("default:user:{}:rwx", s.vm_oid).as_str()),
        "{entries:?}"
    );
    let mut c = Check::new(&spec, true);
    c.definition(&a, "AclStatusResult").assert_valid();
    assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    // A missing path.
    let (st, _, b) = hdfs(
        "GET",
        &format!("{}/webhdfs/v1/TestFolder/nope?op=GETFILESTATUS", s.url),
        Some(&vt),
        b"",
    )
    .await;
    assert_eq!(
        (st, js(&b)["RemoteException"]["exception"].as_str()),
        (404, Some("FileNotFoundException"))
    );
    // The identity is not the owner of TestFolder: it may not change its ACL.
    let spec_q = percent_encoding::utf8_percent_encode(
        "user:someone:rwx",
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    let (st, _, _) = hdfs(
        "PUT",
        &format!(
            "{}/webhdfs/v1/TestFolder?op=MODIFYACLENTRIES&aclspec={spec_q}",
            s.url
        ),
        Some(&vt),
        b"",
    )
    .await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn acl_rules_deny_when_violated() {
    let s = setup().await;
    let vt = vm_token(&s.cloud, &s.vm, DATALAKE).await;
    let folder = format!("{}/webhdfs/v1/TestFolder?op=LISTSTATUS", s.url);
    // rwx on the folder but no execute on the root: denied.
    assert_eq!(
        acl(&s, "/TestFolder", &format!("user:{}:rwx", s.vm_oid)).await,
        200
    );
    assert_eq!(hdfs("GET", &folder, Some(&vt), b"").await.0, 403);
    // Execute alone on the root is enough to traverse it (not to list it).
    assert_eq!(acl(&s, "/", &format!("user:{}:--x", s.vm_oid)).await, 200);
    assert_eq!(hdfs("GET", &folder, Some(&vt), b"").await.0, 200);
    assert_eq!(
        hdfs(
            "GET",
            &format!("{}/webhdfs/v1/?op=LISTSTATUS", s.url),
            Some(&vt),
            b""
        )
        .await
        .0,
        403
    );
    // Read without write on the folder: creating a file is denied.
    assert_eq!(
        acl(&s, "/TestFolder", &format!("user:{}:r-x", s.vm_oid)).await,
        200
    );
    let create = format!("{}/webhdfs/v1/TestFolder/f.txt?op=CREATE&write=true", s.url);
    assert_eq!(hdfs("PUT", &create, Some(&vt), b"x").await.0, 403);
    // rwx limited by a mask of r-x: still denied; mask rwx: allowed.
    assert_eq!(
        acl(
            &s,
            "/TestFolder",
            &format!("user:{}:rwx,mask::r-x", s.vm_oid)
        )
        .await,
        200
    );
    assert_eq!(hdfs("PUT", &create, Some(&vt), b"x").await.0, 403);
    assert_eq!(acl(&s, "/TestFolder", "mask::rwx").await, 200);
    assert_eq!(hdfs("PUT", &create, Some(&vt), b"x").await.0, 201);
    // Without a default entry, a new sub-folder does not grant the identity anything.
    assert_eq!(
        hdfs(
            "PUT",
            &format!("{}/webhdfs/v1/TestFolder/sub?op=MKDIRS", s.url),
            Some(&s.owner),
            b""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        hdfs(
            "GET",
            &format!("{}/webhdfs/v1/TestFolder/sub?op=LISTSTATUS", s.url),
            Some(&vt),
            b""
        )
        .await
        .0,
        403
    );
    // With a default entry it does.
    assert_eq!(
        acl(&s, "/TestFolder", &format!("default:user:{}:r-x", s.vm_oid)).await,
        200
    );
    assert_eq!(
        hdfs(
            "PUT",
            &format!("{}/webhdfs/v1/TestFolder/sub2?op=MKDIRS", s.url),
            Some(&s.owner),
            b""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        hdfs(
            "GET",
            &format!("{}/webhdfs/v1/TestFolder/sub2?op=LISTSTATUS", s.url),
            Some(&vt),
            b""
        )
        .await
        .0,
        200
    );
    // SETACL replaces: the identity's entries are gone.
    let spec = percent_encoding::utf8_percent_encode(
        "user::rwx,group::rwx,other::---",
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    assert_eq!(
        hdfs(
            "PUT",
            &format!("{}/webhdfs/v1/TestFolder?op=SETACL&aclspec={spec}", s.url),
            Some(&s.owner),
            b""
        )
        .await
        .0,
        200
    );
    assert_eq!(hdfs("GET", &folder, Some(&vt), b"").await.0, 403);
}

#[tokio::test]
async fn tokens_are_checked() {
    let s = setup().await;
    let list = format!("{}/webhdfs/v1/?op=LISTSTATUS", s.url);
    // The super-user passes every ACL check.
    assert_eq!(hdfs("GET", &list, Some(&s.owner), b"").await.0, 200);
    for bad in [
        None,
        Some(s.arm.clone()), // ARM audience
        Some(vm_token(&s.cloud, &s.vm, "https://datalake.azure.net").await), // no trailing slash
        Some(format!("{}x", &s.owner[..s.owner.len() - 1])), // flipped signature byte
        Some("garbage".to_owned()),
    ] {
        let (st, _, b) = hdfs("GET", &list, bad.as_deref(), b"").await;
        assert_eq!(
            (st, js(&b)["RemoteException"]["exception"].as_str()),
            (401, Some("SecurityException")),
            "{b}"
        );
    }
    // An expired token.
    s.cloud.advance_clock(std::time::Duration::from_secs(7200));
    assert_eq!(hdfs("GET", &list, Some(&s.owner), b"").await.0, 401);
}

#[tokio::test]
async fn malformed_input_gets_webhdfs_errors() {
    let s = setup().await;
    let u = &s.url;
    let t = Some(s.owner.as_str());
    for (method, url, body) in [
        ("GET", format!("{u}/webhdfs/v1/"), &b""[..]),
        ("GET", format!("{u}/webhdfs/v1/?op=NOPE"), b""),
        ("GET", format!("{u}/webhdfs/v1/?op="), b""),
        ("POST", format!("{u}/webhdfs/v1/?op=LISTSTATUS"), b"{"),
        ("PUT", format!("{u}/webhdfs/v1/?op=LISTSTATUS"), b""),
        ("GET", format!("{u}/other/path?op=LISTSTATUS"), b""),
        (
            "GET",
            format!("{u}/webhdfs/v1/a/../../b?op=LISTSTATUS"),
            b"",
        ),
        (
            "PUT",
            format!("{u}/webhdfs/v1/TestFolder?op=MODIFYACLENTRIES"),
            b"",
        ),
        (
            "PUT",
            format!("{u}/webhdfs/v1/TestFolder?op=MODIFYACLENTRIES&aclspec=user:x:rwz"),
            b"",
        ),
        (
            "PUT",
            format!("{u}/webhdfs/v1/TestFolder?op=SETACL&aclspec=%FF%FE"),
            b"",
        ),
        ("PUT", format!("{u}/webhdfs/v1/?op=CREATE&write=true"), b"x"),
        (
            "PUT",
            format!("{u}/webhdfs/v1/nofolder/x?op=CREATE&write=true"),
            b"x",
        ),
        (
            "GET",
            format!("{u}/webhdfs/v1/TestFolder?op=OPEN&read=true&offset=zz"),
            b"",
        ),
        (
            "GET",
            format!("{u}/webhdfs/v1/%00%ZZ?op=GETFILESTATUS"),
            b"",
        ),
        (
            "PUT",
            format!("{u}/webhdfs/v1/TestFolder/f?op=CREATE&write=true"),
            &[0xff, 0xfe, 0x00][..],
        ),
    ] {
        let (st, _, b) = hdfs(method, &url, t, body).await;
        assert!(st < 500, "{method} {url}: {st} {b}");
        if st >= 400 {
            assert!(
                js(&b)["RemoteException"]["exception"].is_string(),
                "{method} {url}: {b}"
            );
        }
    }
}
