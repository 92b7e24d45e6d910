//! The Blob service data plane: one loopback server per storage account (host-style: the
//! port stands for `https://{account}.blob.core.windows.net`), containers and block blobs,
//! with every request authenticated as Azure Storage does: a Microsoft Entra bearer token
//! authorized by the data actions of the caller's roles, Shared Key (the account key signs
//! the canonicalized request), or a service SAS (the key signs the SAS fields).
//!
//! The endpoint is plain HTTP on loopback; the fake treats it as the HTTPS endpoint it stands
//! for (a SAS with `spr=https` is accepted, Bearer is accepted as over TLS).

pub mod auth;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::ServerHandle;
use crate::token::Claims;
use crate::util;
use crate::world::World;

use auth::{SasFields, SharedKeyInput};

/// Bodies above this are refused (the fake keeps blobs in memory).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The oldest version that accepts an OAuth bearer token.
pub const BEARER_MIN_VERSION: &str = "2017-11-09";
/// Shared Key requests may be this far from the service clock.
#[allow(clippy::duration_suboptimal_units)] // from_mins is newer than the MSRV.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// Audiences the Blob service accepts.
pub const STORAGE_AUDIENCES: &[&str] = &["https://storage.azure.com/", "https://storage.azure.com"];
const BLOB_DATA: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";
const CONTAINERS: &str = "Microsoft.Storage/storageAccounts/blobServices/containers";

/// A block blob.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub data: Bytes,
    pub content_type: String,
    pub content_md5: String,
    pub etag: String,
    pub created: SystemTime,
    pub modified: SystemTime,
}

/// A container.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub etag: String,
    pub modified: SystemTime,
    pub blobs: BTreeMap<String, Blob>,
}

/// One storage account's blob service.
pub(crate) struct Account {
    pub name: String,
    /// ARM id of the storage account (RBAC scope).
    pub resource_id: String,
    /// `key1`, `key2` (base64 of 64 random bytes).
    pub keys: [String; 2],
    pub server: ServerHandle,
    pub containers: BTreeMap<String, Container>,
}

impl Account {
    pub fn url(&self) -> String {
        format!("{}/", self.server.url())
    }
}

fn new_key() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut k = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut k);
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// Create the blob service of a new account (idempotent); returns its base URL.
pub(crate) fn ensure_account(
    world: &Arc<World>,
    name: &str,
    resource_id: &str,
) -> std::io::Result<String> {
    let key = name.to_ascii_lowercase();
    if let Some(a) = world.lock().blob_accounts.get(&key) {
        return Ok(a.url());
    }
    let w = world.clone();
    let acct = name.to_owned();
    let server = crate::server::spawn(world.config.latency, move |_| router(w, acct))?;
    let mut st = world.lock();
    if let Some(a) = st.blob_accounts.get(&key) {
        server.stop();
        return Ok(a.url());
    }
    let a = Account {
        name: name.to_owned(),
        resource_id: resource_id.to_owned(),
        keys: [new_key(), new_key()],
        server,
        containers: BTreeMap::new(),
    };
    let url = a.url();
    st.blob_urls
        .push((format!("blob:{}", a.name), a.server.url()));
    st.blob_accounts.insert(key, a);
    Ok(url)
}

/// Stop and forget the blob service of the account with this ARM id (no-op for others).
pub(crate) fn forget(st: &mut crate::world::State, resource_id: &str) {
    st.blob_accounts.retain(|_, a| {
        if a.resource_id.eq_ignore_ascii_case(resource_id) {
            a.server.stop();
            false
        } else {
            true
        }
    });
}

fn router(world: Arc<World>, account: String) -> Router {
    Router::new().fallback(handle).with_state((world, account))
}

// ------------------------------------------------------------------------------- errors

/// A Storage error: status, `<Code>`, message and optional extra XML elements.
#[derive(Debug)]
pub(crate) struct StorageError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
}

impl StorageError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }
    fn with(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((element, value.into()));
        self
    }
    fn auth_failed(detail: impl Into<String>) -> Self {
        StorageError::new(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        )
        .with("AuthenticationErrorDetail", detail)
    }
    fn permission_mismatch() -> Self {
        StorageError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        )
    }
    fn resource_type_mismatch() -> Self {
        StorageError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationResourceTypeMismatch",
            "This request is not authorized to perform this operation using this resource type.",
        )
    }
    fn container_not_found() -> Self {
        StorageError::new(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        )
    }
    fn blob_not_found() -> Self {
        StorageError::new(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        )
    }
    fn into_response(self, request_id: &str, now: SystemTime) -> Response {
        let mut body = format!(
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}\nRequestId:{request_id}\nTime:{}</Message>",
            self.code,
            xml_escape(&self.message),
            util::iso(now)
        );
        for (k, v) in &self.extra {
            let _ = write!(body, "<{k}>{}</{k}>", xml_escape(v));
        }
        body.push_str("</Error>");
        let mut r = (self.status, body).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        if let Ok(v) = HeaderValue::from_str(self.code) {
            h.insert("x-ms-error-code", v);
        }
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        r
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------- requests

/// The blob operations the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateContainer,
    DeleteContainer,
    GetContainerProperties,
    ListBlobs,
    PutBlob,
    GetBlob,
    GetBlobProperties,
    DeleteBlob,
}

impl Op {
    fn is_container_level(self) -> bool {
        matches!(
            self,
            Op::CreateContainer | Op::DeleteContainer | Op::GetContainerProperties | Op::ListBlobs
        )
    }
    /// The RBAC action (`false`) or data action (`true`) a bearer caller needs.
    fn rbac(self, exists: bool) -> (String, bool) {
        match self {
            Op::CreateContainer => (format!("{CONTAINERS}/write"), false),
            Op::DeleteContainer => (format!("{CONTAINERS}/delete"), false),
            Op::GetContainerProperties => (format!("{CONTAINERS}/read"), false),
            Op::ListBlobs | Op::GetBlob | Op::GetBlobProperties => {
                (format!("{BLOB_DATA}/read"), true)
            }
            Op::PutBlob if exists => (format!("{BLOB_DATA}/write"), true),
            Op::PutBlob => (format!("{BLOB_DATA}/write"), true),
            Op::DeleteBlob => (format!("{BLOB_DATA}/delete"), true),
        }
    }
}

struct Parsed {
    method: Method,
    raw_path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    container: String,
    blob: String,
    body: Bytes,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn param(&self, k: &str) -> Option<&str> {
        util::param(&self.query, k)
    }
}

async fn handle(State((world, account)): State<(Arc<World>, String)>, req: Request) -> Response {
    let request_id = util::guid();
    let version_echo = req
        .headers()
        .get("x-ms-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let client_request_id = req
        .headers()
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut resp = match process(&world, &account, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(&request_id, world.now()),
    };
    let h = resp.headers_mut();
    let mut set = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set("x-ms-request-id", &request_id);
    set("server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0");
    set("date", &httpdate::fmt_http_date(world.now()));
    if let Some(v) = version_echo {
        set("x-ms-version", &v);
    }
    if let Some(v) = client_request_id {
        set("x-ms-client-request-id", &v);
    }
    resp
}

fn headers_vec(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

async fn process(
    world: &Arc<World>,
    account: &str,
    req: Request,
) -> Result<Response, StorageError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        StorageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
        .with("MaxLimit", MAX_BODY.to_string())
    })?;
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let decoded = util::decode(&raw_path, false);
    let trimmed = decoded.trim_start_matches('/');
    let (container, blob) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let p = Parsed {
        method: parts.method,
        query: util::parse_pairs(&raw_query),
        raw_path,
        raw_query,
        headers: headers_vec(&parts.headers),
        container: container.to_owned(),
        blob: blob.to_owned(),
        body,
    };
    if let Some(v) = p.header("x-ms-version")
        && !valid_version(v)
    {
        return Err(invalid_header("x-ms-version", v));
    }
    let op = operation(&p)?;
    let caller = authenticate(world, account, &p, op)?;
    execute(world, account, &p, op, caller.as_ref())
}

fn valid_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && ("2009-09-19"..="2026-12-31").contains(&v)
}

fn invalid_header(name: &str, value: &str) -> StorageError {
    StorageError::new(
        StatusCode::BAD_REQUEST,
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
    )
    .with("HeaderName", name)
    .with("HeaderValue", value)
}

fn operation(p: &Parsed) -> Result<Op, StorageError> {
    let restype = p.param("restype");
    let comp = p.param("comp");
    let unsupported = || {
        StorageError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedHttpVerb",
            "The resource doesn't support specified Http Verb.",
        )
    };
    if p.container.is_empty() {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        ));
    }
    if restype.is_some_and(|r| r.eq_ignore_ascii_case("container")) && p.blob.is_empty() {
        return match (&p.method, comp) {
            (&Method::PUT, None) => Ok(Op::CreateContainer),
            (&Method::DELETE, None) => Ok(Op::DeleteContainer),
            (&Method::GET | &Method::HEAD, None) => Ok(Op::GetContainerProperties),
            (&Method::GET, Some(c)) if c.eq_ignore_ascii_case("list") => Ok(Op::ListBlobs),
            (_, Some(c)) => Err(StorageError::new(
                StatusCode::BAD_REQUEST,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid.",
            )
            .with("QueryParameterName", "comp")
            .with("QueryParameterValue", c)),
            _ => Err(unsupported()),
        };
    }
    if p.blob.is_empty() {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        ));
    }
    if let Some(c) = comp {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
        .with("QueryParameterName", "comp")
        .with("QueryParameterValue", c));
    }
    match p.method {
        Method::PUT => Ok(Op::PutBlob),
        Method::GET => Ok(Op::GetBlob),
        Method::HEAD => Ok(Op::GetBlobProperties),
        Method::DELETE => Ok(Op::DeleteBlob),
        _ => Err(unsupported()),
    }
}

// ---------------------------------------------------------------------- authentication

/// Who made an authenticated request.
enum Caller {
    Bearer(Claims),
    SharedKey,
    Sas(SasFields),
}

fn authenticate(
    world: &Arc<World>,
    account: &str,
    p: &Parsed,
    op: Op,
) -> Result<Option<Caller>, StorageError> {
    if let Some(auth) = p.header("authorization") {
        let auth = auth.trim();
        let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return bearer(world, account, p, rest).map(|c| Some(Caller::Bearer(c)));
        }
        if scheme == "SharedKey" {
            return shared_key(world, account, p, rest).map(|()| Some(Caller::SharedKey));
        }
        return Err(StorageError::auth_failed(format!(
            "The authorization header '{auth}' is not in the correct format."
        ))
        .redact_detail_if(scheme == "SharedKeyLite"));
    }
    if p.param("sig").is_some() {
        return sas(world, account, p, op).map(|f| Some(Caller::Sas(f)));
    }
    let mut e = StorageError::new(
        StatusCode::UNAUTHORIZED,
        "NoAuthenticationInformation",
        "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
    );
    e.headers.push(("www-authenticate", challenge(world)));
    Err(e)
}

impl StorageError {
    /// SharedKeyLite is a real scheme the fake does not implement: say so plainly.
    fn redact_detail_if(self, lite: bool) -> Self {
        if lite {
            StorageError::auth_failed("The SharedKeyLite scheme is not supported by the fake.")
        } else {
            self
        }
    }
}

fn challenge(world: &World) -> String {
    format!(
        "Bearer authorization_uri=https://login.microsoftonline.com/{}/oauth2/authorize resource_id=https://storage.azure.com",
        world.tenant_id
    )
}

fn bearer(
    world: &Arc<World>,
    account: &str,
    p: &Parsed,
    token: &str,
) -> Result<Claims, StorageError> {
    let version = p.header("x-ms-version").unwrap_or("");
    if version < BEARER_MIN_VERSION {
        return Err(StorageError::auth_failed(
            "Authentication scheme Bearer is not supported in this version.",
        ));
    }
    let acct_aud = format!("https://{account}.blob.core.windows.net");
    let acct_aud_slash = format!("{acct_aud}/");
    let mut audiences: Vec<&str> = STORAGE_AUDIENCES.to_vec();
    audiences.push(&acct_aud);
    audiences.push(&acct_aud_slash);
    world.verify(token, &audiences).map_err(|e| {
        use crate::TokenError as T;
        let detail = match e {
            T::Missing | T::Malformed => "Bearer token is malformed.",
            T::InvalidSignature => "Signature validation failed.",
            T::WrongIssuer { .. } => "Issuer validation failed. Issuer did not match.",
            T::WrongAudience { .. } => "Audience validation failed. Audience did not match.",
            T::Expired { .. } => "Lifetime validation failed. The token is expired.",
            T::NotYetValid { .. } => "Lifetime validation failed. The token is not yet valid.",
        };
        let mut err = StorageError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationInfo",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
        .with("AuthenticationErrorDetail", detail);
        err.headers.push(("www-authenticate", challenge(world)));
        err
    })
}

fn account_keys(world: &World, account: &str) -> Option<[String; 2]> {
    world
        .lock()
        .blob_accounts
        .get(&account.to_ascii_lowercase())
        .map(|a| a.keys.clone())
}

fn shared_key(
    world: &Arc<World>,
    account: &str,
    p: &Parsed,
    cred: &str,
) -> Result<(), StorageError> {
    let Some((name, sig)) = cred.trim().split_once(':') else {
        return Err(StorageError::auth_failed(format!(
            "The authorization header 'SharedKey {cred}' is not in the correct format."
        )));
    };
    let date = p.header("x-ms-date").or_else(|| p.header("date"));
    let Some(date) = date else {
        return Err(StorageError::auth_failed(
            "Request date header not specified.",
        ));
    };
    let Ok(at) = httpdate::parse_http_date(date) else {
        return Err(StorageError::auth_failed(format!(
            "The Date header in the request is incorrect. Date:{date}"
        )));
    };
    let now = world.now();
    let skew = now.duration_since(at).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(StorageError::auth_failed(format!(
            "Request date header too old: '{date}'"
        )));
    }
    if name != account {
        return Err(StorageError::auth_failed(format!(
            "Issuer validation failed. The account name '{name}' in the authorization header does not match the account being accessed."
        )));
    }
    let keys = account_keys(world, account).unwrap_or_default();
    let input = SharedKeyInput {
        method: p.method.as_str(),
        raw_path: &p.raw_path,
        raw_query: &p.raw_query,
        headers: p.headers.clone(),
    };
    let sts = auth::shared_key_string_to_sign(account, &input);
    let ok = keys
        .iter()
        .filter_map(|k| auth::hmac_b64(k, &sts))
        .any(|expected| constant_eq(expected.as_bytes(), sig.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(StorageError::auth_failed(format!(
            "The MAC signature found in the HTTP request '{sig}' is not the same as any computed signature. Server used following string to sign: '{sts}'."
        )))
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_sas_time(s: &str) -> Option<SystemTime> {
    // ISO 8601 UTC: `YYYY-MM-DD`, `YYYY-MM-DDThh:mmZ`, `YYYY-MM-DDThh:mm:ss[.fffffff]Z`.
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else if s.len() == 17 && s.ends_with('Z') {
        format!("{}:00Z", &s[..16])
    } else {
        s.to_owned()
    };
    time::OffsetDateTime::parse(&full, &time::format_description::well_known::Rfc3339)
        .ok()
        .filter(|t| t.offset().is_utc())
        .map(SystemTime::from)
}

fn sas(world: &Arc<World>, account: &str, p: &Parsed, op: Op) -> Result<SasFields, StorageError> {
    let get = |k: &str| p.param(k).unwrap_or_default().to_owned();
    let f = SasFields {
        sv: get("sv"),
        sr: get("sr"),
        sp: get("sp"),
        st: get("st"),
        se: get("se"),
        si: get("si"),
        sip: get("sip"),
        spr: get("spr"),
        snapshot_time: get("sst"),
        ses: get("ses"),
        rscc: get("rscc"),
        rscd: get("rscd"),
        rsce: get("rsce"),
        rscl: get("rscl"),
        rsct: get("rsct"),
    };
    let sig = get("sig");
    if p.param("ss").is_some() || p.param("srt").is_some() {
        return Err(StorageError::auth_failed(
            "Account SAS is not supported by the fake; use a service SAS.",
        ));
    }
    if f.sv.is_empty() || !valid_version(&f.sv) || f.sv.as_str() < auth::SAS_MIN_VERSION {
        return Err(StorageError::auth_failed(format!(
            "Signed version '{}' is not supported.",
            f.sv
        )));
    }
    if f.sr.is_empty() {
        return Err(StorageError::auth_failed(
            "sr is mandatory. Cannot be empty",
        ));
    }
    if f.se.is_empty() && f.si.is_empty() {
        return Err(StorageError::auth_failed(
            "se is mandatory. Cannot be empty",
        ));
    }
    if f.sp.is_empty() && f.si.is_empty() {
        return Err(StorageError::auth_failed(
            "sp is mandatory. Cannot be empty",
        ));
    }
    if !f.si.is_empty() {
        return Err(StorageError::auth_failed(
            "Stored access policies are not supported by the fake.",
        ));
    }
    if !matches!(f.spr.as_str(), "" | "https" | "https,http") {
        return Err(StorageError::auth_failed(
            "Signature fields not well formed.",
        ));
    }
    let canonical = match f.sr.as_str() {
        "c" => format!("/blob/{account}/{}", p.container),
        "b" if !op.is_container_level() => format!("/blob/{account}/{}/{}", p.container, p.blob),
        "b" => return Err(StorageError::resource_type_mismatch()),
        _ => {
            return Err(StorageError::auth_failed(format!(
                "Invalid signed resource '{}'.",
                f.sr
            )));
        }
    };
    let sts = auth::service_sas_string_to_sign(&f, &canonical);
    let keys = account_keys(world, account).unwrap_or_default();
    let ok = keys
        .iter()
        .filter_map(|k| auth::hmac_b64(k, &sts))
        .any(|expected| constant_eq(expected.as_bytes(), sig.as_bytes()));
    if !ok {
        return Err(StorageError::auth_failed(format!(
            "Signature did not match. String to sign used was {sts}"
        )));
    }
    if !auth::sas_permissions_well_formed(&f.sp) {
        return Err(StorageError::auth_failed(
            "Signature fields not well formed.",
        ));
    }
    let now = world.now();
    let start = if f.st.is_empty() {
        None
    } else {
        Some(
            parse_sas_time(&f.st)
                .ok_or_else(|| StorageError::auth_failed("Signature fields not well formed."))?,
        )
    };
    let expiry = parse_sas_time(&f.se)
        .ok_or_else(|| StorageError::auth_failed("Signature fields not well formed."))?;
    if start.is_some_and(|s| s > now) || expiry < now {
        let fmt = |t: SystemTime| httpdate::fmt_http_date(t);
        return Err(StorageError::auth_failed(format!(
            "Signature not valid in the specified time frame: Start [{}] - Expiry [{}] - Current [{}]",
            start.map(fmt).unwrap_or_default(),
            fmt(expiry),
            fmt(now)
        )));
    }
    Ok(f)
}

/// Permission letters that allow `op` under a service SAS (any one suffices).
fn sas_letters(op: Op, blob_exists: bool) -> &'static str {
    match op {
        Op::GetBlob | Op::GetBlobProperties => "r",
        Op::PutBlob if blob_exists => "w",
        Op::PutBlob => "cw",
        Op::DeleteBlob => "d",
        Op::ListBlobs => "l",
        Op::CreateContainer | Op::DeleteContainer | Op::GetContainerProperties => "",
    }
}

fn authorize(
    world: &World,
    account: &str,
    p: &Parsed,
    op: Op,
    caller: Option<&Caller>,
    blob_exists: bool,
) -> Result<(), StorageError> {
    match caller {
        None | Some(Caller::SharedKey) => Ok(()),
        Some(Caller::Sas(f)) => {
            if op.is_container_level() && op != Op::ListBlobs {
                return Err(StorageError::resource_type_mismatch());
            }
            if op == Op::ListBlobs && f.sr != "c" {
                return Err(StorageError::resource_type_mismatch());
            }
            let need = sas_letters(op, blob_exists);
            if need.chars().any(|c| f.sp.contains(c)) {
                Ok(())
            } else {
                Err(StorageError::permission_mismatch())
            }
        }
        Some(Caller::Bearer(claims)) => {
            let id = world
                .lock()
                .blob_accounts
                .get(&account.to_ascii_lowercase())
                .map(|a| a.resource_id.clone())
                .unwrap_or_default();
            let mut scope = format!("{id}/blobServices/default/containers/{}", p.container);
            if !p.blob.is_empty() {
                let _ = write!(scope, "/blobs/{}", p.blob);
            }
            let (action, data) = op.rbac(blob_exists);
            if world.check(&claims.oid, &action, &scope, data) {
                Ok(())
            } else {
                Err(StorageError::permission_mismatch())
            }
        }
    }
}

// ------------------------------------------------------------------------- operations

fn etag() -> String {
    use rand::RngCore as _;
    format!(
        "\"0x8D{:013X}\"",
        rand::thread_rng().next_u64() & 0x000F_FFFF_FFFF_FFFF
    )
}

fn valid_container_name(n: &str) -> bool {
    (3..=63).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.contains("--")
}

/// `bytes=<start>-[<end>]` (the only form Get Blob serves); anything else is ignored, as
/// Azure ignores a malformed range and returns the whole blob.
fn byte_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (start, end) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some((start, end))
}

/// A ranged Get Blob: 206 with `Content-Range` and the whole blob's MD5 as
/// `x-ms-blob-content-md5`, or 416 `InvalidRange` when the range starts past the end.
fn ranged(
    headers: &[(&'static str, String)],
    data: &[u8],
    start: u64,
    end: Option<u64>,
) -> Result<Response, StorageError> {
    let len = data.len() as u64;
    if start >= len {
        return Err(StorageError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        ));
    }
    let last = end.map_or(len - 1, |e| e.min(len - 1));
    let mut h: Vec<(&'static str, String)> = headers
        .iter()
        .filter(|(k, _)| !matches!(*k, "content-length" | "content-md5"))
        .cloned()
        .collect();
    h.push(("content-length", (last - start + 1).to_string()));
    h.push(("content-range", format!("bytes {start}-{last}/{len}")));
    if let Some((_, md5)) = headers.iter().find(|(k, _)| *k == "content-md5") {
        h.push(("x-ms-blob-content-md5", md5.clone()));
    }
    let slice = usize::try_from(start).ok().zip(usize::try_from(last).ok());
    let body = slice.map_or_else(Vec::new, |(s, e)| data[s..=e].to_vec());
    Ok(respond(StatusCode::PARTIAL_CONTENT, &h, Body::from(body)))
}

fn respond(status: StatusCode, headers: &[(&'static str, String)], body: Body) -> Response {
    let mut r = (status, body).into_response();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

#[allow(clippy::too_many_lines)]
fn execute(
    world: &Arc<World>,
    account: &str,
    p: &Parsed,
    op: Op,
    caller: Option<&Caller>,
) -> Result<Response, StorageError> {
    let key = account.to_ascii_lowercase();
    let blob_exists = {
        let st = world.lock();
        st.blob_accounts
            .get(&key)
            .and_then(|a| a.containers.get(&p.container))
            .is_some_and(|c| c.blobs.contains_key(&p.blob))
    };
    authorize(world, account, p, op, caller, blob_exists)?;
    if !valid_container_name(&p.container) {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name contains invalid characters.",
        ));
    }
    if !p.blob.is_empty() && p.blob.chars().count() > 1024 {
        return Err(StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name length is not within the permissible limits.",
        ));
    }
    let now = world.now();
    let mut st = world.lock();
    let Some(acct) = st.blob_accounts.get_mut(&key) else {
        return Err(StorageError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        ));
    };
    let base = acct.url();
    let last_modified = |t: SystemTime| httpdate::fmt_http_date(t);
    match op {
        Op::CreateContainer => {
            if acct.containers.contains_key(&p.container) {
                return Err(StorageError::new(
                    StatusCode::CONFLICT,
                    "ContainerAlreadyExists",
                    "The specified container already exists.",
                ));
            }
            let c = Container {
                etag: etag(),
                modified: now,
                blobs: BTreeMap::new(),
            };
            let h = [
                ("etag", c.etag.clone()),
                ("last-modified", last_modified(now)),
            ];
            acct.containers.insert(p.container.clone(), c);
            Ok(respond(StatusCode::CREATED, &h, Body::empty()))
        }
        Op::DeleteContainer => {
            if acct.containers.remove(&p.container).is_none() {
                return Err(StorageError::container_not_found());
            }
            Ok(respond(StatusCode::ACCEPTED, &[], Body::empty()))
        }
        Op::GetContainerProperties => {
            let c = acct
                .containers
                .get(&p.container)
                .ok_or_else(StorageError::container_not_found)?;
            let h = [
                ("etag", c.etag.clone()),
                ("last-modified", last_modified(c.modified)),
                ("x-ms-lease-status", "unlocked".to_owned()),
                ("x-ms-lease-state", "available".to_owned()),
                ("x-ms-has-immutability-policy", "false".to_owned()),
                ("x-ms-has-legal-hold", "false".to_owned()),
            ];
            Ok(respond(StatusCode::OK, &h, Body::empty()))
        }
        Op::ListBlobs => {
            let c = acct
                .containers
                .get(&p.container)
                .ok_or_else(StorageError::container_not_found)?;
            let prefix = p.param("prefix").unwrap_or_default();
            let mut xml = format!(
                "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}\" ContainerName=\"{}\">",
                xml_escape(&base),
                xml_escape(&p.container)
            );
            if !prefix.is_empty() {
                let _ = write!(xml, "<Prefix>{}</Prefix>", xml_escape(prefix));
            }
            xml.push_str("<Blobs>");
            for (name, b) in c.blobs.iter().filter(|(n, _)| n.starts_with(prefix)) {
                let _ = write!(
                    xml,
                    "<Blob><Name>{}</Name><Properties><Creation-Time>{}</Creation-Time><Last-Modified>{}</Last-Modified><Etag>{}</Etag><Content-Length>{}</Content-Length><Content-Type>{}</Content-Type><Content-Encoding /><Content-Language /><Content-CRC64 /><Content-MD5>{}</Content-MD5><Cache-Control /><Content-Disposition /><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties><OrMetadata /></Blob>",
                    xml_escape(name),
                    last_modified(b.created),
                    last_modified(b.modified),
                    b.etag.trim_matches('"'),
                    b.data.len(),
                    xml_escape(&b.content_type),
                    b.content_md5
                );
            }
            xml.push_str("</Blobs><NextMarker /></EnumerationResults>");
            Ok(respond(
                StatusCode::OK,
                &[("content-type", "application/xml".to_owned())],
                Body::from(xml),
            ))
        }
        Op::PutBlob => {
            let blob_type = p.header("x-ms-blob-type");
            match blob_type {
                None => {
                    return Err(StorageError::new(
                        StatusCode::BAD_REQUEST,
                        "MissingRequiredHeader",
                        "An HTTP header that's mandatory for this request is not specified.",
                    )
                    .with("HeaderName", "x-ms-blob-type"));
                }
                Some("BlockBlob") => {}
                Some(other) => return Err(invalid_header("x-ms-blob-type", other)),
            }
            let c = acct
                .containers
                .get_mut(&p.container)
                .ok_or_else(StorageError::container_not_found)?;
            let md5 = {
                use base64::Engine as _;
                use sha2::Digest as _;
                // Content-MD5 is MD5 on Azure; the fake has no MD5 and prints a stable digest
                // of the same length (only ever compared to itself).
                let d = sha2::Sha256::digest(&p.body);
                base64::engine::general_purpose::STANDARD.encode(&d[..16])
            };
            let created = c.blobs.get(&p.blob).map_or(now, |b| b.created);
            let b = Blob {
                data: p.body.clone(),
                content_type: p
                    .header("x-ms-blob-content-type")
                    .or_else(|| p.header("content-type"))
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                content_md5: md5,
                etag: etag(),
                created,
                modified: now,
            };
            let h = [
                ("etag", b.etag.clone()),
                ("last-modified", last_modified(now)),
                ("content-md5", b.content_md5.clone()),
                ("x-ms-request-server-encrypted", "true".to_owned()),
            ];
            c.blobs.insert(p.blob.clone(), b);
            c.modified = now;
            Ok(respond(StatusCode::CREATED, &h, Body::empty()))
        }
        Op::GetBlob | Op::GetBlobProperties => {
            let c = acct
                .containers
                .get(&p.container)
                .ok_or_else(StorageError::container_not_found)?;
            let b = c
                .blobs
                .get(&p.blob)
                .ok_or_else(StorageError::blob_not_found)?;
            let h = [
                ("content-type", b.content_type.clone()),
                ("content-length", b.data.len().to_string()),
                ("content-md5", b.content_md5.clone()),
                ("etag", b.etag.clone()),
                ("last-modified", last_modified(b.modified)),
                ("x-ms-creation-time", last_modified(b.created)),
                ("x-ms-blob-type", "BlockBlob".to_owned()),
                ("x-ms-lease-status", "unlocked".to_owned()),
                ("x-ms-lease-state", "available".to_owned()),
                ("x-ms-server-encrypted", "true".to_owned()),
                ("accept-ranges", "bytes".to_owned()),
            ];
            if op == Op::GetBlob
                && let Some(range) = p.header("x-ms-range").or_else(|| p.header("range"))
                && let Some((start, end)) = byte_range(range)
            {
                return ranged(&h, &b.data, start, end);
            }
            let body = if op == Op::GetBlob {
                Body::from(b.data.clone())
            } else {
                Body::empty()
            };
            Ok(respond(StatusCode::OK, &h, body))
        }
        Op::DeleteBlob => {
            let c = acct
                .containers
                .get_mut(&p.container)
                .ok_or_else(StorageError::container_not_found)?;
            if c.blobs.remove(&p.blob).is_none() {
                return Err(StorageError::blob_not_found());
            }
            Ok(respond(
                StatusCode::ACCEPTED,
                &[("x-ms-delete-type-permanent", "true".to_owned())],
                Body::empty(),
            ))
        }
    }
}

// ------------------------------------------------------------------- ARM-side helpers

/// The keys of an account (for `listKeys`).
pub(crate) fn keys_of(world: &World, account: &str) -> Option<[String; 2]> {
    account_keys(world, account)
}

/// Replace `key1` or `key2` with a fresh key; `false` if there is no such account.
pub(crate) fn regenerate(world: &World, account: &str, index: usize) -> bool {
    let mut st = world.lock();
    match st.blob_accounts.get_mut(&account.to_ascii_lowercase()) {
        Some(a) if index < 2 => {
            a.keys[index] = new_key();
            true
        }
        _ => false,
    }
}

/// Whether `scope` names an existing blob container or blob service of an account
/// (`{account id}/blobServices/default[/containers/{name}]`), so that role assignments can
/// be made there as on Azure.
pub(crate) fn scope_exists(st: &crate::world::State, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    let lower = scope.to_ascii_lowercase();
    st.blob_accounts.values().any(|a| {
        let base = format!(
            "{}/blobservices/default",
            a.resource_id.to_ascii_lowercase()
        );
        if lower == base {
            return true;
        }
        lower
            .strip_prefix(&format!("{base}/containers/"))
            .filter(|c| !c.contains('/'))
            .is_some_and(|_| {
                let name =
                    &scope[scope.len() - (lower.len() - base.len() - "/containers/".len())..];
                a.containers.contains_key(name)
            })
    })
}

/// `(blob:<account>, url)` for every account.
pub(crate) fn service_urls(world: &World) -> Vec<(String, String)> {
    world.lock().blob_urls.clone()
}

/// Sign a service SAS as `listServiceSas` does; returns the token (query string).
pub(crate) fn issue_service_sas(key: &str, f: &SasFields, canonical: &str) -> Option<String> {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let sts = auth::service_sas_string_to_sign(f, canonical);
    let sig = auth::hmac_b64(key, &sts)?;
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SET).to_string();
    let mut out = format!("sv={}&sr={}", enc(&f.sv), enc(&f.sr));
    if !f.spr.is_empty() {
        let _ = write!(out, "&spr={}", enc(&f.spr));
    }
    if !f.st.is_empty() {
        let _ = write!(out, "&st={}", enc(&f.st));
    }
    let _ = write!(
        out,
        "&se={}&sp={}&sig={}",
        enc(&f.se),
        enc(&f.sp),
        enc(&sig)
    );
    Some(out)
}

#[cfg(test)]
mod range_tests {
    use rstest::rstest;

    use super::byte_range;

    #[rstest]
    #[case("bytes=0-4194303", Some((0, Some(4_194_303))))]
    #[case("bytes=5-", Some((5, None)))]
    #[case(" bytes=2-2 ", Some((2, Some(2))))]
    #[case("bytes=3-1", None)]
    #[case("bytes=-5", None)]
    #[case("items=0-1", None)]
    #[case("bytes=a-b", None)]
    #[case("", None)]
    fn parses_byte_ranges(#[case] value: &str, #[case] want: Option<(u64, Option<u64>)>) {
        assert_eq!(byte_range(value), want);
    }

    #[test]
    fn ranged_get_answers_206_or_416() {
        let h = [
            ("content-md5", "md5".to_owned()),
            ("content-length", "5".to_owned()),
        ];
        let r = super::ranged(&h, b"hello", 1, Some(9)).unwrap();
        assert_eq!(r.status(), axum::http::StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-range"], "bytes 1-4/5");
        assert_eq!(r.headers()["content-length"], "4");
        assert_eq!(r.headers()["x-ms-blob-content-md5"], "md5");
        assert!(r.headers().get("content-md5").is_none());
        let e = super::ranged(&h, b"hello", 5, None).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::RANGE_NOT_SATISFIABLE);
    }
}
