//! Shared test fixtures: a real RS256 token authority with a tiny directory,
//! token minting, and a tiberius connection helper.
//!
//! The authority verifies signatures with `jsonwebtoken` against an RSA key
//! generated once per test binary, so "signed by another key", "wrong
//! audience" and "expired" are genuine cryptographic/claim checks, not flags.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mic_tds::{ResolveError, TdsConfig, TdsServer, TokenAuthority, TokenPrincipal};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const SQL_AUDIENCE: &str = "https://database.windows.net/";
pub const ARM_AUDIENCE: &str = "https://management.azure.com/";
pub const SERVER: &str = "myserver";
pub const DB: &str = "mydb";

pub fn issuer() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

pub fn principal(object_id: &str, app_id: &str, name: &str) -> TokenPrincipal {
    TokenPrincipal {
        object_id: object_id.into(),
        app_id: app_id.into(),
        display_name: name.into(),
        tenant_id: TENANT.into(),
    }
}

/// The server's Entra admin (a user).
pub fn admin() -> TokenPrincipal {
    principal("a0000000-0000-0000-0000-00000000000a", "", "Helen Admin")
}

/// The VM's system-assigned identity.
pub fn vm() -> TokenPrincipal {
    principal(
        "b0000000-0000-0000-0000-00000000000b",
        "c0000000-0000-0000-0000-00000000000c",
        "myVM",
    )
}

/// Two service principals sharing a display name.
pub fn dup_a() -> TokenPrincipal {
    principal("d0000000-0000-0000-0000-0000000000d1", "e1", "dupApp")
}

pub fn dup_b() -> TokenPrincipal {
    principal("d0000000-0000-0000-0000-0000000000d2", "e2", "dupApp")
}

struct Keys {
    signing: EncodingKey,
    verifying: DecodingKey,
    rogue: EncodingKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 2048).expect("rsa key");
        let rogue = RsaPrivateKey::new(&mut rng, 2048).expect("rsa key");
        let pem = |k: &RsaPrivateKey| k.to_pkcs1_pem(LineEnding::LF).expect("pem").to_string();
        let public = key
            .to_public_key()
            .to_pkcs1_pem(LineEnding::LF)
            .expect("pem");
        Keys {
            signing: EncodingKey::from_rsa_pem(pem(&key).as_bytes()).expect("key"),
            verifying: DecodingKey::from_rsa_pem(public.as_bytes()).expect("key"),
            rogue: EncodingKey::from_rsa_pem(pem(&rogue).as_bytes()).expect("key"),
        }
    })
}

#[derive(Serialize, Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    oid: String,
    tid: String,
    sub: String,
    #[serde(default)]
    appid: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// How to mint a token.
#[derive(Clone, Debug)]
pub struct Mint {
    pub audience: String,
    pub issuer: String,
    /// Seconds from now.
    pub not_before: i64,
    /// Seconds from now.
    pub expires: i64,
    pub rogue_key: bool,
}

impl Default for Mint {
    fn default() -> Self {
        Self {
            audience: SQL_AUDIENCE.into(),
            issuer: issuer(),
            not_before: -300,
            expires: 3600,
            rogue_key: false,
        }
    }
}

fn offset(delta: i64) -> u64 {
    now().saturating_add_signed(delta)
}

pub fn token_with(p: &TokenPrincipal, mint: &Mint) -> String {
    let claims = Claims {
        aud: mint.audience.clone(),
        iss: mint.issuer.clone(),
        iat: offset(mint.not_before),
        nbf: offset(mint.not_before),
        exp: offset(mint.expires),
        oid: p.object_id.clone(),
        tid: p.tenant_id.clone(),
        sub: p.object_id.clone(),
        appid: p.app_id.clone(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key".into());
    let key = if mint.rogue_key {
        &keys().rogue
    } else {
        &keys().signing
    };
    jsonwebtoken::encode(&header, &claims, key).expect("sign")
}

pub fn token(p: &TokenPrincipal) -> String {
    token_with(p, &Mint::default())
}

/// A token authority with real RS256 verification and a fixed directory.
pub struct TestAuthority {
    pub directory: Vec<TokenPrincipal>,
}

impl TokenAuthority for TestAuthority {
    fn verify(&self, token: &str) -> Result<TokenPrincipal, String> {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[SQL_AUDIENCE, SQL_AUDIENCE.trim_end_matches('/')]);
        v.set_issuer(&[issuer()]);
        v.validate_nbf = true;
        v.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &keys().verifying, &v)
            .map_err(|e| format!("{:?}", e.kind()))?;
        self.directory
            .iter()
            .find(|p| p.object_id == data.claims.oid)
            .cloned()
            .ok_or_else(|| "object id not in directory".to_owned())
    }

    fn resolve_display_name(&self, name: &str) -> Result<TokenPrincipal, ResolveError> {
        let hits: Vec<_> = self
            .directory
            .iter()
            .filter(|p| p.display_name.eq_ignore_ascii_case(name))
            .collect();
        match hits.as_slice() {
            [] => Err(ResolveError::NotFound),
            [one] => Ok((*one).clone()),
            _ => Err(ResolveError::Ambiguous),
        }
    }
}

pub fn authority() -> Arc<TestAuthority> {
    Arc::new(TestAuthority {
        directory: vec![admin(), vm(), dup_a(), dup_b()],
    })
}

pub fn config() -> TdsConfig {
    TdsConfig {
        server_name: SERVER.into(),
        admin_object_id: admin().object_id,
        databases: vec![DB.into()],
    }
}

pub async fn start() -> TdsServer {
    TdsServer::start(config(), authority())
        .await
        .expect("start")
}

pub type Conn = Client<Compat<TcpStream>>;

pub async fn connect(server: &TdsServer, db: Option<&str>, token: &str) -> tiberius::Result<Conn> {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(server.addr().port());
    config.authentication(AuthMethod::aad_token(token));
    config.encryption(EncryptionLevel::NotSupported);
    if let Some(db) = db {
        config.database(db);
    }
    let tcp = TcpStream::connect(server.addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// The server error behind a tiberius error: (number, class, state,
/// message, server).
pub fn server_error(e: &tiberius::error::Error) -> (u32, u8, u8, String, String) {
    match e {
        tiberius::error::Error::Server(t) => (
            t.code(),
            t.class(),
            t.state(),
            t.message().to_owned(),
            t.server().to_owned(),
        ),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Runs the tutorial's admin steps in `mydb`: a table with rows, the
/// contained user for the VM, and (optionally) its db_datareader membership.
pub async fn tutorial_setup(server: &TdsServer, grant_reader: bool) {
    let mut admin = connect(server, Some(DB), &token(&admin()))
        .await
        .expect("admin login");
    admin
        .simple_query(
            "CREATE TABLE Products (id int PRIMARY KEY, name nvarchar(50) NOT NULL, code varchar(10));
             INSERT INTO Products (id, name, code) VALUES (1, N'Widget', 'W-1'), (2, N'Gädget ✓', NULL);
             CREATE USER [myVM] FROM EXTERNAL PROVIDER;",
        )
        .await
        .expect("setup batch")
        .into_results()
        .await
        .expect("setup results");
    if grant_reader {
        admin
            .simple_query("ALTER ROLE db_datareader ADD MEMBER [myVM]")
            .await
            .expect("alter role")
            .into_results()
            .await
            .expect("alter role results");
    }
    admin.close().await.expect("close");
}
