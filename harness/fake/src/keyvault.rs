//! Azure Key Vault: `Microsoft.KeyVault/vaults` through ARM and the secrets data plane.
//!
//! Each vault gets its own loopback server when ARM creates it (its `properties.vaultUri`);
//! the server is stopped when the vault or its group is deleted or the world shuts down.
//!
//! Data-plane rules, as Key Vault applies them:
//! - every request needs a bearer token for `https://vault.azure.net` (exactly: Key Vault
//!   answers AKV10022 for `https://vault.azure.net/` and for the vault's own URL) from the
//!   vault's tenant; without one the answer is 401 with the challenge
//!   `WWW-Authenticate: Bearer authorization="<login>/<tenant>", resource="https://vault.azure.net"`;
//! - the vault's permission model decides: access policies (secret permissions `get`, `list`,
//!   `set`, matched on tenant + object id) or, with `enableRbacAuthorization`, Azure RBAC data
//!   actions (`Microsoft.KeyVault/vaults/secrets/getSecret/action`, `setSecret/action`,
//!   `readMetadata/action`) at the secret's scope;
//! - errors are `{"error":{"code","message"[,"innererror":{"code"}]}}`.
//!
//! Differences from the real service worth knowing:
//! - the challenge's `authorization` names this world's token service; the real vault says
//!   `https://login.windows.net/<tenant>` (clients follow either);
//! - the ARM create is synchronous (200) in every api-version; 2023-07-01 is an LRO in Azure;
//! - `recoveryLevel` is `Recoverable+Purgeable` (soft delete has been mandatory since 2020)
//!   where the 2017 tutorials show `Purgeable`; a vault created with `enableSoftDelete: false`
//!   reports `Purgeable`;
//! - the exact AKV number of the expired / bad-signature token messages is not documented;
//!   the wording below follows what clients report (AKV10000, AKV10022, AKV10032 are).

#![allow(clippy::result_large_err, clippy::unnecessary_wraps)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::arm::{self, ArmResult, Req};
use crate::error::{ArmError, TokenError, json_response};
use crate::server::ServerHandle;
use crate::util;
use crate::world::{Resource, State as WorldState, World};

/// `Microsoft.KeyVault/vaults`.
pub(crate) const FULL: &str = "Microsoft.KeyVault/vaults";
/// The one audience the data plane accepts.
pub const VAULT_AUDIENCE: &str = "https://vault.azure.net";

/// ARM api-versions of Microsoft.KeyVault/vaults.
pub(crate) const ARM_VERSIONS: &[&str] = &[
    "2015-06-01",
    "2016-10-01",
    "2018-02-14",
    "2019-09-01",
    "2021-10-01",
    "2022-07-01",
    "2023-02-01",
    "2023-07-01",
    "2024-11-01",
];

/// Data-plane api-versions (secrets).
pub(crate) const DATA_VERSIONS: &[&str] = &[
    "2015-06-01",
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
];

/// One version of a secret.
#[derive(Debug, Clone)]
pub(crate) struct SecretVersion {
    pub version: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: Option<Value>,
    pub enabled: bool,
    pub created: i64,
}

/// Data-plane state of one vault (the ARM side lives in `State::resources`).
pub(crate) struct VaultData {
    #[allow(dead_code)] // kept for debugging output; URLs are named through `State::service_urls`.
    pub name: String,
    pub server: ServerHandle,
    /// Lower-case secret name -> (name as first set, versions oldest first).
    pub secrets: BTreeMap<String, (String, Vec<SecretVersion>)>,
}

fn vault_key(world: &World, rg: &str, name: &str) -> (String, String) {
    let id = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{FULL}/{name}",
        world.subscription_id
    );
    (id.to_ascii_lowercase(), id)
}

/// Forget a purged resource's data plane (called from ARM's purge).
pub(crate) fn forget(st: &mut WorldState, key: &str) {
    if let Some(v) = st.vaults.remove(key) {
        v.server.stop();
    }
}

/// Whether `scope` is an existing secret (`{vault id}/secrets/{name}`): Key Vault RBAC takes
/// role assignments at a single secret's scope.
pub(crate) fn scope_exists(st: &WorldState, scope: &str) -> bool {
    let lower = scope.trim_end_matches('/').to_ascii_lowercase();
    let Some((vault, name)) = lower.rsplit_once("/secrets/") else {
        return false;
    };
    !name.contains('/')
        && st.resources.contains_key(vault)
        && st
            .vaults
            .get(vault)
            .is_some_and(|v| v.secrets.contains_key(name))
}

fn vault_uri(st: &WorldState, key: &str) -> Option<String> {
    st.vaults.get(key).map(|v| format!("{}/", v.server.url()))
}

// ------------------------------------------------------------------------------ ARM

fn render(st: &WorldState, req: &Req, r: &Resource) -> Value {
    let key = r.id.to_ascii_lowercase();
    let mut m = arm::resource_head(r);
    let mut p = r.properties.as_object().cloned().unwrap_or_default();
    for (k, default) in [
        ("enabledForDeployment", false),
        ("enabledForDiskEncryption", false),
        ("enabledForTemplateDeployment", false),
    ] {
        p.entry(k).or_insert(json!(default));
    }
    p.entry("accessPolicies").or_insert(json!([]));
    if req.is_new_api("2019-09-01") {
        p.entry("enableRbacAuthorization").or_insert(json!(false));
        p.entry("enableSoftDelete").or_insert(json!(true));
        p.entry("softDeleteRetentionInDays").or_insert(json!(90));
        p.insert("provisioningState".into(), json!("Succeeded"));
        p.entry("publicNetworkAccess").or_insert(json!("Enabled"));
    }
    if let Some(uri) = vault_uri(st, &key) {
        p.insert("vaultUri".into(), json!(uri));
    }
    m.insert("properties".into(), Value::Object(p));
    Value::Object(m)
}

fn invalid(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("BadRequest", message)
}

/// Validate `accessPolicies` entries: `tenantId`, `objectId`, `permissions` are required.
fn check_policies(v: Option<&Value>) -> Result<Vec<Value>, ArmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(items) = v.as_array() else {
        return Err(invalid(
            "Invalid value found at accessPolicies: expected an array.",
        ));
    };
    let mut out = Vec::new();
    for (i, p) in items.iter().enumerate() {
        for field in ["tenantId", "objectId"] {
            if !p
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(util::is_guid)
            {
                return Err(invalid(format!(
                    "Invalid value found at accessPolicies[{i}].{field}: '{}' is not a valid GUID.",
                    p.get(field).and_then(Value::as_str).unwrap_or_default()
                )));
            }
        }
        if !p.get("permissions").is_some_and(Value::is_object) {
            return Err(invalid(format!(
                "Invalid value found at accessPolicies[{i}].permissions: the permissions are required."
            )));
        }
        out.push(p.clone());
    }
    Ok(out)
}

/// The typed properties of a vault body (`VaultProperties` in the 2023-07-01 spec).
const VAULT_TYPES: &[(&str, arm::Json)] = &[
    ("properties", arm::Json::Obj),
    ("properties.tenantId", arm::Json::Str),
    ("properties.sku", arm::Json::Obj),
    ("properties.sku.family", arm::Json::Str),
    ("properties.sku.name", arm::Json::Str),
    ("properties.accessPolicies", arm::Json::Arr),
    ("properties.enabledForDeployment", arm::Json::Bool),
    ("properties.enabledForDiskEncryption", arm::Json::Bool),
    ("properties.enabledForTemplateDeployment", arm::Json::Bool),
    ("properties.enableSoftDelete", arm::Json::Bool),
    ("properties.softDeleteRetentionInDays", arm::Json::Int),
    ("properties.enableRbacAuthorization", arm::Json::Bool),
    ("properties.enablePurgeProtection", arm::Json::Bool),
    (
        "properties.createMode",
        arm::Json::OneOf(&["recover", "default"]),
    ),
    ("properties.publicNetworkAccess", arm::Json::Str),
    ("properties.networkAcls", arm::Json::Obj),
    ("properties.vaultUri", arm::Json::Str),
];

fn valid_vault_name(n: &str) -> bool {
    (3..=24).contains(&n.len())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && n.starts_with(|c: char| c.is_ascii_alphabetic())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !n.contains("--")
}

pub(crate) fn vault(world: &Arc<World>, req: &Req) -> ArmResult {
    let arm::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = arm::target(world, req, FULL, "vaults", ARM_VERSIONS)?;
    let scope = req.path.clone();
    match req.method {
        Method::GET => {
            arm::authorize(world, req, &format!("{FULL}/read"), &scope)?;
            if rg_loc.is_none() {
                return Err(arm::rg_not_found(&rg));
            }
            let st = world.lock();
            let Some(r) = st.resources.get(&key) else {
                return Err(arm::resource_not_found(FULL, &name, &rg));
            };
            let v = render(&st, req, r);
            drop(st);
            arm::ok(StatusCode::OK, &v)
        }
        Method::PUT | Method::PATCH => {
            arm::authorize(world, req, &format!("{FULL}/write"), &scope)?;
            let body = req.json()?;
            arm::check_types(&Value::Object(body.clone()), VAULT_TYPES)?;
            let existing = world.lock().resources.get(&key).cloned();
            if req.method == Method::PATCH && existing.is_none() {
                return Err(arm::resource_not_found(FULL, &name, &rg));
            }
            let location = match (&existing, req.method == Method::PATCH) {
                (Some(e), true) => e.location.clone(),
                _ => arm::norm_location(&arm::required_location(&body)?),
            };
            let tags = match body.get("tags") {
                None => existing.as_ref().and_then(|e| e.tags.clone()),
                Some(_) => arm::tags_of(&body)?,
            };
            if rg_loc.is_none() {
                return Err(arm::rg_not_found(&rg));
            }
            if !valid_vault_name(&name) {
                return Err(ArmError::bad_request(
                    "VaultNameNotValid",
                    format!(
                        "The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens. Follow this link for more information: https://go.microsoft.com/fwlink/?linkid=2147742"
                    ),
                ));
            }
            let given = body
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut props: Map<String, Value> = match (&existing, req.method == Method::PATCH) {
                (Some(e), true) => e.properties.as_object().cloned().unwrap_or_default(),
                _ => Map::new(),
            };
            for (k, v) in given {
                props.insert(k, v);
            }
            props.remove("vaultUri");
            props.remove("provisioningState");
            if !props
                .get("tenantId")
                .and_then(Value::as_str)
                .is_some_and(util::is_guid)
            {
                return Err(invalid(
                    "The parameter properties.tenantId is required and must be a valid GUID.",
                ));
            }
            if !props
                .get("sku")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|n| {
                    n.eq_ignore_ascii_case("standard") || n.eq_ignore_ascii_case("premium")
                })
            {
                return Err(invalid(
                    "The parameter properties.sku is required: {\"family\":\"A\",\"name\":\"standard\"|\"premium\"}.",
                ));
            }
            let policies = check_policies(props.get("accessPolicies"))?;
            props.insert("accessPolicies".into(), Value::Array(policies));
            let r = Resource {
                id: existing
                    .as_ref()
                    .map_or_else(|| id.clone(), |e| e.id.clone()),
                resource_group: rg.clone(),
                rtype: FULL.to_owned(),
                name: name.clone(),
                location,
                tags,
                properties: Value::Object(props),
                extra: Map::new(),
                identity: None,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            let needs_server = !world.lock().vaults.contains_key(&key);
            if needs_server {
                let w = world.clone();
                let k = key.clone();
                let server = crate::server::spawn(world.config.latency, move |_| data_router(w, k))
                    .map_err(|e| {
                        ArmError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerError",
                            format!("cannot start the vault's data plane: {e}"),
                        )
                    })?;
                let mut st = world.lock();
                st.service_urls
                    .insert(format!("vault:{name}"), server.url());
                st.vaults.insert(
                    key.clone(),
                    VaultData {
                        name: name.clone(),
                        server,
                        secrets: BTreeMap::new(),
                    },
                );
            }
            let mut st = world.lock();
            st.resources.insert(key, r.clone());
            let v = render(&st, req, &r);
            drop(st);
            arm::ok(StatusCode::OK, &v)
        }
        Method::DELETE => {
            arm::authorize(world, req, &format!("{FULL}/delete"), &scope)?;
            let mut st = world.lock();
            if !st.resources.contains_key(&key) {
                return arm::empty(StatusCode::NO_CONTENT);
            }
            arm::resources::purge(&mut st, &id);
            drop(st);
            arm::empty(StatusCode::OK)
        }
        _ => Err(arm::method_not_allowed(req)),
    }
}

/// Merge the secret (and key, certificate, storage) permissions of `add` into `into`.
fn merge_permissions(into: &mut Value, add: &Value, remove: bool) {
    for kind in ["keys", "secrets", "certificates", "storage"] {
        let mut cur: Vec<String> = into
            .get(kind)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let delta: Vec<String> = add
            .get(kind)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if remove {
            cur.retain(|p| !delta.iter().any(|d| d.eq_ignore_ascii_case(p)));
        } else {
            for d in delta {
                if !cur.iter().any(|p| p.eq_ignore_ascii_case(&d)) {
                    cur.push(d);
                }
            }
        }
        if let Value::Object(m) = into {
            m.insert(kind.to_owned(), json!(cur));
        }
    }
}

fn same_principal(a: &Value, b: &Value) -> bool {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    s(a, "tenantId") == s(b, "tenantId")
        && s(a, "objectId") == s(b, "objectId")
        && s(a, "applicationId") == s(b, "applicationId")
}

/// `PUT .../vaults/{name}/accessPolicies/{add|replace|remove}` (Vaults_UpdateAccessPolicy).
pub(crate) fn access_policies(world: &Arc<World>, req: &Req, kind: &str) -> ArmResult {
    arm::check_provider_version(
        req,
        &world.config.location,
        "vaults/accessPolicies",
        ARM_VERSIONS,
    )?;
    if req.method != Method::PUT {
        return Err(arm::method_not_allowed(req));
    }
    let rg = arm::rg_name(req);
    let name = req.segs[7].clone();
    let (key, id) = vault_key(world, &rg, &name);
    let vault_scope = format!("/{}", req.segs[..8].join("/"));
    arm::authorize(
        world,
        req,
        &format!("{FULL}/accessPolicies/write"),
        &vault_scope,
    )?;
    let kind = kind.to_ascii_lowercase();
    if !matches!(kind.as_str(), "add" | "replace" | "remove") {
        return Err(invalid(format!(
            "The value '{}' is not valid for operationKind: use add, replace or remove.",
            req.segs[9]
        )));
    }
    let body = req.json()?;
    let given = check_policies(body.get("properties").and_then(|p| p.get("accessPolicies")))?;
    if given.is_empty() {
        return Err(invalid(
            "The parameter properties.accessPolicies is required.",
        ));
    }
    let mut st = world.lock();
    let Some(r) = st.resources.get_mut(&key) else {
        return Err(arm::resource_not_found(FULL, &name, &rg));
    };
    let mut current: Vec<Value> = r
        .properties
        .get("accessPolicies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for g in &given {
        let perms = g.get("permissions").cloned().unwrap_or_else(|| json!({}));
        let found = current.iter_mut().find(|c| same_principal(c, g));
        match (kind.as_str(), found) {
            ("add", Some(c)) => merge_permissions(&mut c["permissions"], &perms, false),
            ("remove", Some(c)) => merge_permissions(&mut c["permissions"], &perms, true),
            ("replace", Some(c)) => c["permissions"] = perms,
            ("add" | "replace", None) => current.push(g.clone()),
            _ => {}
        }
    }
    // An entry left without any permission disappears, as in the portal.
    current.retain(|c| {
        c.get("permissions")
            .and_then(Value::as_object)
            .is_some_and(|m| {
                m.values()
                    .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            })
    });
    if let Value::Object(p) = &mut r.properties {
        p.insert("accessPolicies".into(), json!(current));
    }
    drop(st);
    arm::ok(
        StatusCode::OK,
        &json!({
            "id": format!("{id}/accessPolicies/{kind}"),
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "properties": {"accessPolicies": given},
        }),
    )
}

// ------------------------------------------------------------------------------ data plane

/// A Key Vault error response.
fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut err = json!({"code": code, "message": message});
    if let Some(i) = inner {
        err["innererror"] = json!({"code": i});
    }
    json_response(status, &json!({"error": err}))
}

fn challenge(world: &World, code_message: &str) -> Response {
    let mut r = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", code_message, None);
    let login = world
        .login_url
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let v = format!(
        "Bearer authorization=\"{login}/{}\", resource=\"{VAULT_AUDIENCE}\"",
        world.tenant_id
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn token_message(e: &TokenError, tenant: &str) -> String {
    match e {
        TokenError::Missing | TokenError::Malformed => {
            "AKV10000: Request is missing a Bearer or PoP token.".to_owned()
        }
        TokenError::InvalidSignature => {
            "Token validation failed: the signature is invalid.".to_owned()
        }
        TokenError::WrongAudience { audience, .. } => {
            format!("AKV10022: Invalid audience. Expected {VAULT_AUDIENCE}, found: {audience}.")
        }
        TokenError::WrongIssuer { issuer, .. } => format!(
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant}/, https://login.microsoftonline.com/{tenant}/v2.0, found {issuer}."
        ),
        TokenError::Expired { .. } => "Token validation failed: the token is expired.".to_owned(),
        TokenError::NotYetValid { .. } => {
            "Token validation failed: the token is not yet valid.".to_owned()
        }
    }
}

fn data_router(world: Arc<World>, key: String) -> Router {
    Router::new()
        .fallback(data_handle)
        .with_state((world, Arc::new(key)))
}

/// What a data-plane request asks for.
enum Op {
    Get {
        name: String,
        version: Option<String>,
    },
    Set {
        name: String,
    },
    List,
}

impl Op {
    fn permission(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Set { .. } => "set",
            Op::List => "list",
        }
    }
    fn data_action(&self) -> &'static str {
        match self {
            Op::Get { .. } => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            Op::Set { .. } => "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            Op::List => "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        }
    }
    fn name(&self) -> Option<&str> {
        match self {
            Op::Get { name, .. } | Op::Set { name } => Some(name),
            Op::List => None,
        }
    }
}

async fn data_handle(
    State((world, key)): State<(Arc<World>, Arc<String>)>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut resp = data_process(&world, &key, &parts, &body);
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-ms-request-id", util::guid()),
        ("x-ms-keyvault-service-version", "1.9.1.0".to_owned()),
        ("x-ms-keyvault-region", world.config.location.clone()),
        ("cache-control", "no-cache".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

fn bad_parameter(message: &str) -> Response {
    kv_error(StatusCode::BAD_REQUEST, "BadParameter", message, None)
}

#[allow(clippy::too_many_lines)]
fn data_process(
    world: &Arc<World>,
    key: &str,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> Response {
    // 1. Authentication comes first: an anonymous request only learns where to sign in.
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let claims = match auth {
        None => {
            return challenge(
                world,
                &token_message(&TokenError::Missing, &world.tenant_id),
            );
        }
        Some(a) if !a.trim_start().to_ascii_lowercase().starts_with("bearer ") => {
            return challenge(
                world,
                &token_message(&TokenError::Missing, &world.tenant_id),
            );
        }
        Some(a) => match world.verify(&a, &[VAULT_AUDIENCE]) {
            Ok(c) => c,
            Err(e) => return challenge(world, &token_message(&e, &world.tenant_id)),
        },
    };
    // 2. api-version.
    let query = util::parse_pairs(parts.uri.query().unwrap_or_default());
    match util::param(&query, "api-version") {
        None | Some("") => return bad_parameter("The api-version query parameter is missing."),
        Some(v) if !DATA_VERSIONS.contains(&v) => {
            return bad_parameter(&format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version (7.5)."
            ));
        }
        Some(_) => {}
    }
    let api = util::param(&query, "api-version")
        .unwrap_or_default()
        .to_owned();
    // 3. The operation: `/secrets`, `/secrets/{name}`, `/secrets/{name}/`, `/secrets/{name}/{version}`.
    let path = util::decode(parts.uri.path(), false);
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let valid_name = |n: &str| {
        !n.is_empty() && n.len() <= 127 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let op = match (segs.as_slice(), &parts.method) {
        (["secrets"] | ["secrets", ""], &Method::GET) => Op::List,
        (["secrets", n] | ["secrets", n, ""], &Method::GET) => Op::Get {
            name: (*n).to_owned(),
            version: None,
        },
        (["secrets", n, v], &Method::GET) => Op::Get {
            name: (*n).to_owned(),
            version: Some((*v).to_owned()),
        },
        (["secrets", n] | ["secrets", n, ""], &Method::PUT) => Op::Set {
            name: (*n).to_owned(),
        },
        (["secrets", ..], _) => {
            return kv_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadParameter",
                &format!(
                    "The requested method {} is not allowed on this resource.",
                    parts.method
                ),
                None,
            );
        }
        _ => {
            return kv_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("The requested resource {path} was not found."),
                None,
            );
        }
    };
    if let Some(n) = op.name()
        && !valid_name(n)
    {
        return bad_parameter(&format!(
            "The request URI contains an invalid name: {n}. Secret names may contain only 0-9, a-z, A-Z, and -."
        ));
    }
    // 4. Authorization by the vault's permission model.
    let (vault_id, vault_name, location, rbac, policies, soft_delete) = {
        let st = world.lock();
        let Some(r) = st.resources.get(key) else {
            return kv_error(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                "The vault was not found.",
                None,
            );
        };
        let p = &r.properties;
        (
            r.id.clone(),
            r.name.clone(),
            r.location.clone(),
            p.get("enableRbacAuthorization").and_then(Value::as_bool) == Some(true),
            p.get("accessPolicies")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            p.get("enableSoftDelete").and_then(Value::as_bool) != Some(false),
        )
    };
    if claims.tid != world.tenant_id {
        return challenge(
            world,
            &format!(
                "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{}/, found {}.",
                world.tenant_id, claims.iss
            ),
        );
    }
    let caller = format!(
        "appid={};oid={};iss={}",
        claims.appid, claims.oid, claims.iss
    );
    if rbac {
        let resource = match op.name() {
            Some(n) => format!("{vault_id}/secrets/{n}"),
            None => vault_id.clone(),
        };
        if !world.check(&claims.oid, op.data_action(), &resource, true) {
            let message = format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: {caller}\r\nAction: '{}'\r\nResource: '{}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: {vault_name};location={location}\r\n",
                op.data_action(),
                resource.to_ascii_lowercase()
            );
            return kv_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &message,
                Some("ForbiddenByRbac"),
            );
        }
    } else {
        let wanted = op.permission();
        let allowed = policies.iter().any(|p| {
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
            s("tenantId").eq_ignore_ascii_case(&claims.tid)
                && s("objectId").eq_ignore_ascii_case(&claims.oid)
                && (s("applicationId").is_empty()
                    || s("applicationId").eq_ignore_ascii_case(&claims.appid))
                && p.pointer("/permissions/secrets")
                    .and_then(Value::as_array)
                    .is_some_and(|a| {
                        a.iter().filter_map(Value::as_str).any(|x| {
                            x.eq_ignore_ascii_case(wanted) || x.eq_ignore_ascii_case("all")
                        })
                    })
        });
        if !allowed {
            let message = format!(
                "The user, group or application '{caller}' does not have secrets {wanted} permission on key vault '{vault_name};location={location}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
            );
            return kv_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &message,
                Some("ForbiddenByPolicy"),
            );
        }
    }
    // 5. The operation.
    let seven = api.starts_with('7');
    let recovery = if soft_delete {
        "Recoverable+Purgeable"
    } else {
        "Purgeable"
    };
    let attributes = |v: &SecretVersion| {
        let mut a = json!({"enabled": v.enabled, "created": v.created, "updated": v.created, "recoveryLevel": recovery});
        if seven && soft_delete {
            a["recoverableDays"] = json!(90);
        }
        a
    };
    let mut st = world.lock();
    let Some(vault) = st.vaults.get_mut(key) else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "The vault was not found.",
            None,
        );
    };
    let base = vault.server.url();
    let bundle = |name: &str, v: &SecretVersion| {
        let mut b = json!({"value": v.value, "id": format!("{base}/secrets/{name}/{}", v.version), "attributes": attributes(v)});
        if let Some(ct) = &v.content_type {
            b["contentType"] = json!(ct);
        }
        if let Some(t) = &v.tags {
            b["tags"] = t.clone();
        }
        b
    };
    match op {
        Op::List => {
            let items: Vec<Value> = vault
                .secrets
                .values()
                .filter_map(|(name, versions)| {
                    let v = versions.last()?;
                    let mut item = json!({"id": format!("{base}/secrets/{name}"), "attributes": attributes(v)});
                    if let Some(ct) = &v.content_type {
                        item["contentType"] = json!(ct);
                    }
                    if let Some(t) = &v.tags {
                        item["tags"] = t.clone();
                    }
                    Some(item)
                })
                .collect();
            json_response(StatusCode::OK, &json!({"value": items, "nextLink": null}))
        }
        Op::Get { name, version } => {
            let found =
                vault
                    .secrets
                    .get(&name.to_ascii_lowercase())
                    .and_then(|(stored, versions)| {
                        let v = match &version {
                            None => versions.last(),
                            Some(want) => versions
                                .iter()
                                .find(|v| v.version.eq_ignore_ascii_case(want)),
                        }?;
                        Some((stored.clone(), v.clone()))
                    });
            if let Some((stored, v)) = found {
                json_response(StatusCode::OK, &bundle(&stored, &v))
            } else {
                let what = version.map_or_else(|| name.clone(), |v| format!("{name}/{v}"));
                kv_error(
                    StatusCode::NOT_FOUND,
                    "SecretNotFound",
                    &format!(
                        "A secret with (name/id) {what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
                    ),
                    None,
                )
            }
        }
        Op::Set { name } => {
            let parsed: Result<Value, _> = serde_json::from_slice(body);
            let Ok(Value::Object(b)) = parsed else {
                return bad_parameter(
                    "The request body is not valid JSON: an object with a 'value' is expected.",
                );
            };
            let Some(value) = b.get("value").and_then(Value::as_str) else {
                return bad_parameter("Property 'value' is required and must be a string.");
            };
            // Key Vault refuses a body whose optional fields have the wrong JSON type.
            let typed =
                |k: &str, ok: fn(&Value) -> bool| b.get(k).is_none_or(|v| v.is_null() || ok(v));
            let attrs_ok = |v: &Value| {
                v.as_object().is_some_and(|a| {
                    a.get("enabled")
                        .is_none_or(|e| e.is_null() || e.is_boolean())
                        && ["nbf", "exp"]
                            .iter()
                            .all(|k| a.get(*k).is_none_or(|t| t.is_null() || t.is_i64()))
                })
            };
            let tags_ok = |v: &Value| {
                v.as_object()
                    .is_some_and(|m| m.values().all(Value::is_string))
            };
            if !typed("contentType", Value::is_string)
                || !typed("tags", tags_ok)
                || !typed("attributes", attrs_ok)
            {
                return bad_parameter(
                    "The request body is invalid: 'contentType' must be a string, 'tags' an object of strings, 'attributes' an object with a boolean 'enabled' and integer 'nbf'/'exp'.",
                );
            }
            let enabled = b
                .get("attributes")
                .and_then(|a| a.get("enabled"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let v = SecretVersion {
                version: uuid::Uuid::new_v4().simple().to_string(),
                value: value.to_owned(),
                content_type: b
                    .get("contentType")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                tags: b.get("tags").filter(|t| t.is_object()).cloned(),
                enabled,
                created: util::unix(world.now()),
            };
            let entry = vault
                .secrets
                .entry(name.to_ascii_lowercase())
                .or_insert_with(|| (name.clone(), Vec::new()));
            entry.1.push(v.clone());
            let stored = entry.0.clone();
            let out = bundle(&stored, &v);
            drop(st);
            json_response(StatusCode::OK, &out)
        }
    }
}
