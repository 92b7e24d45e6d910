//! Azure SQL in the fake cloud, over real ARM HTTP and real TDS (tiberius, no TLS):
//! servers, databases and the Entra admin through ARM; logins verified with the world's
//! token service (signature, issuer, audience, lifetime against the world clock); contained
//! users resolved through the directory. Every rule is shown to fail when violated.

mod common;

use std::time::Duration;

use common::{
    call, create_rg, create_vm, deployer_token, deployer_token_for, rg_id, vm_token, world,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mic_fake::{Claims, FakeCloud};
use serde_json::{Value, json};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

const SQL: &str = "https://database.windows.net/";
const LOGIN_FAILED: &str = "Login failed for user '<token-identified principal>'.";
const RG: &str = "sqlrg";
const SERVER: &str = "micsql1";
const DB: &str = "mydb";

type Conn = Client<Compat<TcpStream>>;

struct Setup {
    cloud: FakeCloud,
    arm_token: String,
    server_id: String,
    fqdn: String,
    vm: String,
}

fn server_id(cloud: &FakeCloud, rg: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Sql/servers/{name}",
        rg_id(cloud, rg)
    )
}

async fn put(cloud: &FakeCloud, tok: &str, path: &str, api: &str, body: Value) -> common::Resp {
    call(
        "PUT",
        &format!("{}{path}?api-version={api}", cloud.arm_url()),
        Some(tok),
        Some(body),
    )
    .await
}

async fn get(cloud: &FakeCloud, tok: &str, path: &str, api: &str) -> common::Resp {
    call(
        "GET",
        &format!("{}{path}?api-version={api}", cloud.arm_url()),
        Some(tok),
        None,
    )
    .await
}

async fn connect(addr: &str, db: &str, token: &str) -> tiberius::Result<Conn> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut config = Config::new();
    config.host(host);
    config.port(port.parse().unwrap());
    config.database(db);
    config.authentication(AuthMethod::aad_token(token));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(addr).await?;
    Client::connect(config, tcp.compat_write()).await
}

fn server_error(e: &tiberius::error::Error) -> (u32, String) {
    match e {
        tiberius::error::Error::Server(t) => (t.code(), t.message().to_owned()),
        other => panic!("expected a server error, got {other:?}"),
    }
}

async fn run(conn: &mut Conn, sql: &str) -> tiberius::Result<Vec<Vec<tiberius::Row>>> {
    conn.simple_query(sql).await?.into_results().await
}

/// RG, a VM `myVM` with a system-assigned identity, server, database and the deployer as
/// Entra admin (sid = its application id, as for applications).
async fn setup() -> Setup {
    let cloud = world().await;
    let arm_token = deployer_token(&cloud).await;
    create_rg(&cloud, &arm_token, RG).await;
    let (vm, _) = create_vm(
        &cloud,
        &arm_token,
        RG,
        "myVM",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let server_id = server_id(&cloud, RG, SERVER);
    let r = put(
        &cloud,
        &arm_token,
        &server_id,
        "2021-11-01",
        json!({"location": "westus", "properties": {"administratorLogin": "micadmin", "administratorLoginPassword": "Secret!Passw0rd"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(r.headers.contains_key("azure-asyncoperation"));
    let r = get(&cloud, &arm_token, &server_id, "2021-11-01").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["properties"]
            .get("administratorLoginPassword")
            .is_none()
    );
    let fqdn = r.body["properties"]["fullyQualifiedDomainName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fqdn.starts_with("127.0.0.1:"), "{fqdn}");
    let r = put(
        &cloud,
        &arm_token,
        &format!("{server_id}/databases/{DB}"),
        "2021-11-01",
        json!({"location": "westus"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let d = cloud.deployer();
    let r = put(
        &cloud,
        &arm_token,
        &format!("{server_id}/administrators/ActiveDirectory"),
        "2021-11-01",
        json!({"properties": {"administratorType": "ActiveDirectory", "login": "mic-deployer", "sid": d.client_id, "tenantId": cloud.tenant_id()}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    Setup {
        cloud,
        arm_token,
        server_id,
        fqdn,
        vm,
    }
}

async fn admin_conn(s: &Setup) -> Conn {
    let tok = deployer_token_for(&s.cloud, SQL).await;
    connect(&s.fqdn, DB, &tok).await.expect("admin login")
}

#[tokio::test]
async fn tutorial_end_to_end_over_arm_and_tds() {
    let s = setup().await;
    let mut admin = admin_conn(&s).await;
    run(
        &mut admin,
        "CREATE TABLE Products (id int PRIMARY KEY, name nvarchar(50) NOT NULL);
         INSERT INTO Products (id, name) VALUES (1, N'Widget');",
    )
    .await
    .unwrap();

    // Before the grant, the VM's token is genuine but the VM is no user: 18456.
    let vm_tok = vm_token(&s.cloud, &s.vm, SQL).await;
    let e = connect(&s.fqdn, DB, &vm_tok).await.unwrap_err();
    assert_eq!(server_error(&e), (18456, LOGIN_FAILED.to_owned()));

    run(&mut admin, "CREATE USER [myVM] FROM EXTERNAL PROVIDER")
        .await
        .unwrap();
    // A user without db_datareader logs in, but cannot read: 229.
    let mut vm = connect(&s.fqdn, DB, &vm_tok).await.expect("vm login");
    let e = run(&mut vm, "SELECT * FROM Products").await.unwrap_err();
    assert_eq!(server_error(&e).0, 229);

    run(&mut admin, "ALTER ROLE db_datareader ADD MEMBER [myVM]")
        .await
        .unwrap();
    let rows = run(&mut vm, "SELECT * FROM Products").await.unwrap();
    assert_eq!(rows[0][0].get::<&str, _>("name"), Some("Widget"));

    // The contained user is the VM's system-assigned identity.
    let users = s.cloud.sql_server(SERVER).unwrap().users(DB).unwrap();
    let principal = s
        .cloud
        .directory()
        .all()
        .find(|p| p.display_name == "myVM")
        .cloned()
        .unwrap();
    assert_eq!(users[0].object_id, principal.object_id);
}

/// Re-sign a token's claims with a key the world never published.
fn resign_with_rogue_key(token: &str, claims: &Claims) -> String {
    let _ = token;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem =
        rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&key, rsa::pkcs1::LineEnding::LF).unwrap();
    let enc = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &enc).unwrap()
}

fn claims_of(token: &str) -> Claims {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn logins_are_refused_with_18456() {
    let s = setup().await;
    let mut admin = admin_conn(&s).await;
    run(
        &mut admin,
        "CREATE USER [myVM] FROM EXTERNAL PROVIDER; ALTER ROLE db_datareader ADD MEMBER [myVM];",
    )
    .await
    .unwrap();
    let good = vm_token(&s.cloud, &s.vm, SQL).await;
    connect(&s.fqdn, DB, &good)
        .await
        .expect("control: the genuine token logs in");
    // Azure SQL accepts its audience without the trailing slash too.
    let no_slash = vm_token(&s.cloud, &s.vm, "https://database.windows.net").await;
    connect(&s.fqdn, DB, &no_slash)
        .await
        .expect("audience without slash");

    let arm = vm_token(&s.cloud, &s.vm, "https://management.azure.com/").await;
    let storage = vm_token(&s.cloud, &s.vm, "https://storage.azure.com/").await;
    let rogue = resign_with_rogue_key(&good, &claims_of(&good));
    let mut flipped = good.clone().into_bytes();
    let last = flipped.len() - 5;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for (why, tok) in [
        ("ARM audience", arm.as_str()),
        ("Storage audience", storage.as_str()),
        ("signed by another key", rogue.as_str()),
        ("flipped signature byte", flipped.as_str()),
        ("not a JWT", "not-a-token"),
    ] {
        let e = connect(&s.fqdn, DB, tok).await.unwrap_err();
        assert_eq!(server_error(&e), (18456, LOGIN_FAILED.to_owned()), "{why}");
    }

    // The deployer's own SQL token works against master only because it is the admin;
    // an identity that is no user of the database (a second VM) is refused.
    let (other, _) = create_vm(
        &s.cloud,
        &s.arm_token,
        RG,
        "otherVM",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let other_tok = vm_token(&s.cloud, &other, SQL).await;
    let e = connect(&s.fqdn, DB, &other_tok).await.unwrap_err();
    assert_eq!(server_error(&e).0, 18456, "principal that is not a user");

    // Expiry against the world clock: two hours later the same token is refused.
    s.cloud.advance_clock(Duration::from_hours(2));
    let e = connect(&s.fqdn, DB, &good).await.unwrap_err();
    assert_eq!(
        server_error(&e),
        (18456, LOGIN_FAILED.to_owned()),
        "expired"
    );
    let events = s.cloud.sql_server(SERVER).unwrap().login_events();
    let last = events.last().unwrap();
    assert!(
        format!("{:?}", last.outcome).contains("expired"),
        "{last:?}"
    );
    // A fresh token works again.
    let fresh = vm_token(&s.cloud, &s.vm, SQL).await;
    connect(&s.fqdn, DB, &fresh).await.expect("fresh token");
}

#[tokio::test]
async fn display_names_must_resolve_to_one_principal() {
    let s = setup().await;
    create_rg(&s.cloud, &s.arm_token, "rg2").await;
    create_vm(
        &s.cloud,
        &s.arm_token,
        RG,
        "twin",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    create_vm(
        &s.cloud,
        &s.arm_token,
        "rg2",
        "twin",
        "2018-06-01",
        json!({"type": "SystemAssigned"}),
    )
    .await;
    let mut admin = admin_conn(&s).await;
    let e = run(&mut admin, "CREATE USER [twin] FROM EXTERNAL PROVIDER")
        .await
        .unwrap_err();
    assert_eq!(server_error(&e).0, 33131);
    let e = run(&mut admin, "CREATE USER [nobody] FROM EXTERNAL PROVIDER")
        .await
        .unwrap_err();
    assert_eq!(server_error(&e).0, 33130);
    // Only the admin may create users: a reader VM cannot.
    run(
        &mut admin,
        "CREATE USER [myVM] FROM EXTERNAL PROVIDER; ALTER ROLE db_datareader ADD MEMBER [myVM];",
    )
    .await
    .unwrap();
    let vm_tok = vm_token(&s.cloud, &s.vm, SQL).await;
    let mut vm = connect(&s.fqdn, DB, &vm_tok).await.unwrap();
    let e = run(&mut vm, "CREATE USER [twin] FROM EXTERNAL PROVIDER")
        .await
        .unwrap_err();
    assert_ne!(server_error(&e).0, 0);
    assert!(s.cloud.sql_server(SERVER).unwrap().users(DB).unwrap().len() == 1);
}

#[tokio::test]
async fn without_an_entra_admin_nobody_logs_in_and_admin_removal_takes_effect() {
    let s = setup().await;
    let tok = deployer_token_for(&s.cloud, SQL).await;
    let path = format!("{}/administrators/ActiveDirectory", s.server_id);
    let r = call(
        "DELETE",
        &format!("{}{path}?api-version=2021-11-01", s.cloud.arm_url()),
        Some(&s.arm_token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = connect(&s.fqdn, DB, &tok).await.unwrap_err();
    assert_eq!(server_error(&e).0, 18456);
    // The deployer's object id works as sid too (users and groups are named by object id).
    let d = s.cloud.deployer();
    let r = put(&s.cloud, &s.arm_token, &path, "2021-11-01", json!({"properties": {"administratorType": "ActiveDirectory", "login": "x", "sid": d.object_id}})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    connect(&s.fqdn, DB, &tok).await.expect("admin again");
}

fn example_body(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sql")
        .join(file);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["responses"]["200"]["body"].clone()
}

#[tokio::test]
async fn admin_resource_follows_both_api_versions() {
    let s = setup().await;
    let d = s.cloud.deployer();
    let old = format!("{}/administrators/activeDirectory", s.server_id);
    let body = |tenant: bool| {
        let mut p = json!({"administratorType": "ActiveDirectory", "login": "mic-deployer", "sid": d.client_id});
        if tenant {
            p["tenantId"] = json!(s.cloud.tenant_id());
        }
        json!({"properties": p})
    };
    // 2014-04-01 requires tenantId.
    let r = put(&s.cloud, &s.arm_token, &old, "2014-04-01", body(false)).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidResourceRequestBody"))
    );
    let r = put(&s.cloud, &s.arm_token, &old, "2014-04-01", body(true)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&s.cloud, &s.arm_token, &old, "2014-04-01").await;
    assert_eq!(r.body["name"], "activeDirectory");
    common::assert_same_shape(&example_body("2014-04-01-ServerAdminGet.json"), &r.body, "");
    let new = format!("{}/administrators/ActiveDirectory", s.server_id);
    let r = get(&s.cloud, &s.arm_token, &new, "2021-11-01").await;
    assert_eq!(r.body["name"], "ActiveDirectory");
    common::assert_same_shape(
        &example_body("2021-11-01-AdministratorGet.json"),
        &r.body,
        "",
    );
    // Rules.
    let mut wrong_type = body(true);
    wrong_type["properties"]["administratorType"] = json!("SqlLogin");
    let r = put(&s.cloud, &s.arm_token, &new, "2021-11-01", wrong_type).await;
    assert_eq!(
        r.body["error"]["code"],
        "InvalidServerAdministratorTypePropertyName"
    );
    let r = put(
        &s.cloud,
        &s.arm_token,
        &new,
        "2021-11-01",
        json!({"properties": {"administratorType": "ActiveDirectory", "login": "x"}}),
    )
    .await;
    assert_eq!(r.body["error"]["code"], "InvalidResourceRequestBody");
    let r = put(&s.cloud, &s.arm_token, &new, "2021-11-01", json!({})).await;
    assert_eq!(r.body["error"]["code"], "InvalidResourceRequestBody");
    let missing = format!(
        "{}/administrators/ActiveDirectory",
        server_id(&s.cloud, RG, "nosuchserver")
    );
    let r = put(&s.cloud, &s.arm_token, &missing, "2021-11-01", body(true)).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("ParentResourceNotFound"))
    );
    let r = get(&s.cloud, &s.arm_token, &s.server_id, "2099-01-01").await;
    assert_eq!(r.body["error"]["code"], "NoRegisteredProviderFound");
}

#[tokio::test]
async fn sql_arm_is_authorized_by_rbac() {
    let s = setup().await;
    // The VM's identity has no role: it can neither read nor create servers.
    let tok = vm_token(&s.cloud, &s.vm, "https://management.azure.com/").await;
    let r = get(&s.cloud, &tok, &s.server_id, "2021-11-01").await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed"))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.Sql/servers/read")
    );
    let admin = format!("{}/administrators/ActiveDirectory", s.server_id);
    let r = put(
        &s.cloud,
        &tok,
        &admin,
        "2021-11-01",
        json!({"properties": {}}),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.Sql/servers/administrators/write")
    );
    // A SQL token is no ARM token.
    let sql_tok = deployer_token_for(&s.cloud, SQL).await;
    let r = get(&s.cloud, &sql_tok, &s.server_id, "2021-11-01").await;
    assert_eq!(r.status, 401);
    // Server creation needs an admin login and password.
    let other = server_id(&s.cloud, RG, "micsql2");
    let r = put(
        &s.cloud,
        &s.arm_token,
        &other,
        "2021-11-01",
        json!({"location": "westus"}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("InvalidParameterValue"))
    );
    let r = put(&s.cloud, &s.arm_token, &server_id(&s.cloud, RG, "Bad_Name"), "2021-11-01", json!({"location": "westus", "properties": {"administratorLogin": "a", "administratorLoginPassword": "b"}})).await;
    assert_eq!(r.body["error"]["code"], "InvalidServerName");
}

#[tokio::test]
async fn deleting_the_server_or_its_group_stops_the_tds_endpoint() {
    let s = setup().await;
    let r = call(
        "DELETE",
        &format!(
            "{}{}?api-version=2021-11-01",
            s.cloud.arm_url(),
            s.server_id
        ),
        Some(&s.arm_token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(&s.fqdn).await.is_err(),
        "listener still open"
    );
    assert!(s.cloud.sql_server(SERVER).is_none());
    let r = get(&s.cloud, &s.arm_token, &s.server_id, "2021-11-01").await;
    assert_eq!(r.status, 404);

    // Recreate, then delete the resource group.
    let r = put(&s.cloud, &s.arm_token, &s.server_id, "2021-11-01", json!({"location": "westus", "properties": {"administratorLogin": "a", "administratorLoginPassword": "Secret!Passw0rd"}})).await;
    assert_eq!(r.status, 202);
    let fqdn = get(&s.cloud, &s.arm_token, &s.server_id, "2021-11-01")
        .await
        .body["properties"]["fullyQualifiedDomainName"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        "DELETE",
        &format!(
            "{}{}?api-version=2021-04-01",
            s.cloud.arm_url(),
            rg_id(&s.cloud, RG)
        ),
        Some(&s.arm_token),
        None,
    )
    .await;
    assert!(matches!(r.status, 200 | 202), "{}", r.body);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(&fqdn).await.is_err(),
        "listener still open after group deletion"
    );
}

#[tokio::test]
async fn garbage_never_panics_or_hangs() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup().await;
    // ARM: malformed bodies on every SQL path get a 4xx.
    for path in [
        s.server_id.clone(),
        format!("{}/databases/{DB}", s.server_id),
        format!("{}/administrators/ActiveDirectory", s.server_id),
    ] {
        for body in [
            "{",
            "[]",
            "null",
            "\"x\"",
            "{\"properties\": 5}",
            "{\"location\": 7}",
        ] {
            let r = common::client()
                .put(format!(
                    "{}{path}?api-version=2021-11-01",
                    s.cloud.arm_url()
                ))
                .bearer_auth(&s.arm_token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_client_error(),
                "{path} {body}: {}",
                r.status()
            );
        }
    }
    // TDS: garbage packets get an error or a clean disconnect, within the timeouts.
    for bytes in [
        vec![0u8; 0],
        vec![0xff; 8],
        vec![0x12, 0x01, 0x00, 0x08, 0, 0, 0, 0],
        vec![0x10, 0x01, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ] {
        let mut tcp = TcpStream::connect(&s.fqdn).await.unwrap();
        tcp.write_all(&bytes).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "hung on {bytes:?}");
    }
    // The server still serves after the garbage.
    let _ = admin_conn(&s).await;
}
