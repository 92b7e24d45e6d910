//! Azure Cosmos DB: `Microsoft.DocumentDB/databaseAccounts` through ARM (account, `listKeys`,
//! `readonlykeys`) and the SQL API data plane (databases, collections, documents) with
//! master-key authorization.
//!
//! Each account gets its own loopback server when ARM creates it (its
//! `properties.documentEndpoint`).
//!
//! Data-plane authorization is the documented master-key scheme: the `authorization` header is
//! the URL-encoded `type=master&ver=1.0&sig=<base64 HMAC-SHA256>` over
//! `verb\nresourceType\nresourceLink\ndate\n\n` (verb, type and date lower-cased; the link keeps
//! its case), keyed with the base64-decoded account key. [`string_to_sign`] and [`signature`]
//! are that algorithm; the client side is `mic_core::sign` (`scheme = "cosmos_master"`).
//!
//! What the service answers, and the fake with it:
//! - no `authorization` header: 401 `Unauthorized` "Required Header authorization is missing";
//! - a signature that matches no key: 401 `Unauthorized` "The input authorization token can't
//!   serve the request ... Server used the following payload to sign: '<payload>'";
//! - a write (POST, PUT, PATCH, DELETE) signed with a read-only key: the same 401 (Cosmos does
//!   not say "read-only"; azure-cosmos-dotnet-v2#123 reports exactly this for a delete);
//! - a correctly signed request whose `x-ms-date` is more than 15 minutes old or more than
//!   5 minutes ahead: 403 `Forbidden` "The authorization token is not valid at the current
//!   time" with the token's start and expiry and the server time (the wording clients report);
//! - errors are `{"code","message"}` with `\r\nActivityId: <guid>, Microsoft.Azure.Documents.Common/2.14.0`
//!   appended to the message, as the gateway does.
//!
//! Differences from the real service: the ARM create answers 200 with `Succeeded` at once
//! (Azure runs it as a long operation); `documentEndpoint` is plain `http://127.0.0.1:<port>/`
//! where Azure has `https://<account>.documents.azure.com:443/`; `_rid`s are random base64 of
//! the right length, not Cosmos's hierarchical encoding.

#![allow(clippy::result_large_err, clippy::unnecessary_wraps)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};

use crate::arm::{self, ArmResult, Req};
use crate::error::{ArmError, json_response};
use crate::server::ServerHandle;
use crate::util;
use crate::world::{Resource, State as WorldState, World};

/// Canonical type (ARM answers in this casing whatever the request used, e.g. `Microsoft.DocumentDb`).
pub(crate) const FULL: &str = "Microsoft.DocumentDB/databaseAccounts";

/// ARM api-versions of Microsoft.DocumentDB/databaseAccounts. There is no 2016-12-01: a
/// tutorial revision's `listKeys/?api-version=2016-12-01` fails with NoRegisteredProviderFound.
pub(crate) const ARM_VERSIONS: &[&str] = &[
    "2014-04-01",
    "2015-04-08",
    "2015-11-06",
    "2016-03-19",
    "2016-03-31",
    "2019-08-01",
    "2019-12-12",
    "2020-04-01",
    "2020-09-01",
    "2021-04-15",
    "2021-06-15",
    "2021-10-15",
    "2022-05-15",
    "2022-08-15",
    "2022-11-15",
    "2023-04-15",
    "2023-09-15",
    "2023-11-15",
    "2024-05-15",
    "2024-08-15",
    "2024-11-15",
];

const GATEWAY: &str = "Microsoft.Azure.Documents.Common/2.14.0";
/// How long a signed request stays valid after its `x-ms-date`, and how far ahead it may be.
#[allow(clippy::duration_suboptimal_units)] // from_mins is newer than the MSRV
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
#[allow(clippy::duration_suboptimal_units)]
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A database, collection or document.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub id: String,
    pub rid: String,
    pub ts: i64,
    pub etag: String,
    /// The client's body (documents, partitionKey, indexingPolicy...).
    pub body: Map<String, Value>,
}

/// Collection id -> (collection, document id -> document).
pub(crate) type Collections = BTreeMap<String, (Item, BTreeMap<String, Item>)>;

/// Data-plane state of one account.
pub(crate) struct AccountData {
    pub name: String,
    pub server: ServerHandle,
    /// Four keys: primary, secondary, primary read-only, secondary read-only.
    pub keys: [String; 4],
    /// Database id -> (database, collection id -> (collection, document id -> document)).
    pub dbs: BTreeMap<String, (Item, Collections)>,
}

/// The string a master-key signature covers.
pub fn string_to_sign(verb: &str, resource_type: &str, resource_link: &str, date: &str) -> String {
    format!(
        "{}\n{}\n{}\n{}\n\n",
        verb.to_ascii_lowercase(),
        resource_type.to_ascii_lowercase(),
        resource_link,
        date.to_ascii_lowercase()
    )
}

/// base64(HMAC-SHA256(base64decode(key), payload)); `None` when the key is not base64.
pub fn signature(key_b64: &str, payload: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .ok()?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(payload.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

fn account_key(world: &World, rg: &str, name: &str) -> (String, String) {
    let id = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{FULL}/{name}",
        world.subscription_id
    );
    (id.to_ascii_lowercase(), id)
}

/// Forget a purged resource's data plane (called from ARM's purge).
pub(crate) fn forget(st: &mut WorldState, key: &str) {
    if let Some(a) = st.cosmos_accounts.remove(key) {
        a.server.stop();
    }
}

fn random_key() -> String {
    let mut buf = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

fn random_rid(len: usize) -> String {
    let mut buf = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

// ------------------------------------------------------------------------------ ARM

fn render(st: &WorldState, req: &Req, r: &Resource) -> Value {
    let mut m = arm::resource_head(r);
    let mut p = r.properties.as_object().cloned().unwrap_or_default();
    p.insert("provisioningState".into(), json!("Succeeded"));
    if let Some(a) = st.cosmos_accounts.get(&r.id.to_ascii_lowercase()) {
        p.insert(
            "documentEndpoint".into(),
            json!(format!("{}/", a.server.url())),
        );
    }
    p.entry("databaseAccountOfferType")
        .or_insert(json!("Standard"));
    p.entry("consistencyPolicy").or_insert(json!({
        "defaultConsistencyLevel": "Session", "maxIntervalInSeconds": 5, "maxStalenessPrefix": 100
    }));
    let loc = json!([{
        "id": format!("{}-{}", r.name, r.location),
        "locationName": r.location,
        "documentEndpoint": p.get("documentEndpoint").cloned().unwrap_or(Value::Null),
        "provisioningState": "Succeeded",
        "failoverPriority": 0,
    }]);
    p.insert("writeLocations".into(), loc.clone());
    p.insert("readLocations".into(), loc);
    if req.is_new_api("2019-08-01") {
        p.entry("enableAutomaticFailover").or_insert(json!(false));
        p.entry("enableMultipleWriteLocations")
            .or_insert(json!(false));
        p.entry("disableLocalAuth").or_insert(json!(false));
        p.entry("publicNetworkAccess").or_insert(json!("Enabled"));
    }
    m.insert("properties".into(), Value::Object(p));
    m.entry("kind").or_insert(json!("GlobalDocumentDB"));
    Value::Object(m)
}

/// The typed properties of an account body (`DatabaseAccountCreateUpdateParameters`, 2024-05-15).
const ACCOUNT_TYPES: &[(&str, arm::Json)] = &[
    (
        "kind",
        arm::Json::OneOf(&["GlobalDocumentDB", "MongoDB", "Parse"]),
    ),
    ("properties", arm::Json::Obj),
    ("properties.databaseAccountOfferType", arm::Json::Str),
    ("properties.locations", arm::Json::Arr),
    ("properties.locations.[].locationName", arm::Json::Str),
    ("properties.locations.[].failoverPriority", arm::Json::Int),
    ("properties.locations.[].isZoneRedundant", arm::Json::Bool),
    ("properties.consistencyPolicy", arm::Json::Obj),
    (
        "properties.consistencyPolicy.defaultConsistencyLevel",
        arm::Json::OneOf(&[
            "Eventual",
            "Session",
            "BoundedStaleness",
            "Strong",
            "ConsistentPrefix",
        ]),
    ),
    (
        "properties.consistencyPolicy.maxStalenessPrefix",
        arm::Json::Int,
    ),
    (
        "properties.consistencyPolicy.maxIntervalInSeconds",
        arm::Json::Int,
    ),
    ("properties.enableAutomaticFailover", arm::Json::Bool),
    ("properties.enableMultipleWriteLocations", arm::Json::Bool),
    ("properties.disableLocalAuth", arm::Json::Bool),
    ("properties.isVirtualNetworkFilterEnabled", arm::Json::Bool),
    ("properties.enableFreeTier", arm::Json::Bool),
    ("properties.enableAnalyticalStorage", arm::Json::Bool),
    (
        "properties.disableKeyBasedMetadataWriteAccess",
        arm::Json::Bool,
    ),
    (
        "properties.publicNetworkAccess",
        arm::Json::OneOf(&["Enabled", "Disabled", "SecuredByPerimeter"]),
    ),
    ("properties.ipRules", arm::Json::Arr),
    ("properties.virtualNetworkRules", arm::Json::Arr),
    ("properties.capabilities", arm::Json::Arr),
];

fn valid_account_name(n: &str) -> bool {
    (3..=50).contains(&n.len())
        && n.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

pub(crate) fn account(world: &Arc<World>, req: &Req) -> ArmResult {
    let arm::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = arm::target(world, req, FULL, "databaseAccounts", ARM_VERSIONS)?;
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
        Method::PUT => {
            arm::authorize(world, req, &format!("{FULL}/write"), &scope)?;
            let body = req.json()?;
            arm::check_types(&Value::Object(body.clone()), ACCOUNT_TYPES)?;
            let location = arm::norm_location(&arm::required_location(&body)?);
            let tags = arm::tags_of(&body)?;
            if rg_loc.is_none() {
                return Err(arm::rg_not_found(&rg));
            }
            if !valid_account_name(&name) {
                return Err(ArmError::bad_request(
                    "InvalidResourceName",
                    format!(
                        "Resource name '{name}' is invalid. The name can contain only lowercase letters, numbers and the '-' character, must be between 3 and 50 characters, and cannot start or end with '-'."
                    ),
                ));
            }
            let props = body
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !props
                .get("databaseAccountOfferType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("Standard"))
            {
                return Err(ArmError::bad_request(
                    "BadRequest",
                    "The required property 'databaseAccountOfferType' is missing or invalid: the only offer type is 'Standard'.",
                ));
            }
            let mut extra = Map::new();
            extra.insert(
                "kind".into(),
                body.get("kind")
                    .cloned()
                    .unwrap_or_else(|| json!("GlobalDocumentDB")),
            );
            let existing = world.lock().resources.get(&key).cloned();
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
                extra,
                identity: None,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            if !world.lock().cosmos_accounts.contains_key(&key) {
                let w = world.clone();
                let k = key.clone();
                let server = crate::server::spawn(world.config.latency, move |_| data_router(w, k))
                    .map_err(|e| {
                        ArmError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerError",
                            format!("cannot start the account's data plane: {e}"),
                        )
                    })?;
                let mut st = world.lock();
                st.service_urls
                    .insert(format!("cosmos:{name}"), server.url());
                st.cosmos_accounts.insert(
                    key.clone(),
                    AccountData {
                        name: name.clone(),
                        server,
                        keys: [random_key(), random_key(), random_key(), random_key()],
                        dbs: BTreeMap::new(),
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

/// `POST listKeys` (all four keys), `GET|POST readonlykeys` (the two read-only keys).
pub(crate) fn keys(world: &Arc<World>, req: &Req, op: &str) -> ArmResult {
    arm::check_provider_version(
        req,
        &world.config.location,
        "databaseAccounts",
        ARM_VERSIONS,
    )?;
    let read_only = op.eq_ignore_ascii_case("readonlykeys");
    let action = match (read_only, &req.method) {
        (false, &Method::POST) => "listKeys/action",
        (true, &Method::POST) => "readonlykeys/action",
        (true, &Method::GET) => "readonlykeys/read",
        _ => return Err(arm::method_not_allowed(req)),
    };
    let rg = arm::rg_name(req);
    let name = req.segs[7].clone();
    let (key, _) = account_key(world, &rg, &name);
    let scope = format!("/{}", req.segs[..8].join("/"));
    arm::authorize(world, req, &format!("{FULL}/{action}"), &scope)?;
    let st = world.lock();
    let Some(a) = st.cosmos_accounts.get(&key) else {
        return Err(arm::resource_not_found(FULL, &name, &rg));
    };
    let v = if read_only {
        json!({"primaryReadonlyMasterKey": a.keys[2], "secondaryReadonlyMasterKey": a.keys[3]})
    } else {
        json!({
            "primaryMasterKey": a.keys[0], "secondaryMasterKey": a.keys[1],
            "primaryReadonlyMasterKey": a.keys[2], "secondaryReadonlyMasterKey": a.keys[3],
        })
    };
    drop(st);
    arm::ok(StatusCode::OK, &v)
}

// ------------------------------------------------------------------------------ data plane

fn data_router(world: Arc<World>, key: String) -> Router {
    Router::new()
        .fallback(data_handle)
        .with_state((world, Arc::new(key)))
}

fn cosmos_error(status: StatusCode, code: &str, message: &str, activity: &str) -> Response {
    json_response(
        status,
        &json!({"code": code, "message": format!("{message}\r\nActivityId: {activity}, {GATEWAY}")}),
    )
}

async fn data_handle(
    State((world, key)): State<(Arc<World>, Arc<String>)>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 2 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let activity = util::guid();
    let mut resp = data_process(&world, &key, &parts, &body, &activity);
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-ms-activity-id", activity.clone()),
        ("x-ms-request-charge", "1".to_owned()),
        ("x-ms-gatewayversion", "version=2.14.0".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

/// (resource type, resource link, the path's segments) of a SQL API path.
fn classify(segs: &[&str], method: &Method) -> Option<(&'static str, String)> {
    let _ = method;
    let link = segs.join("/");
    let n = segs.len();
    let ty = match (n, segs.first()) {
        (0, _) => "",
        (1 | 2, Some(&"dbs")) => "dbs",
        (3 | 4, Some(&"dbs")) if segs[2] == "colls" => "colls",
        (5 | 6, Some(&"dbs")) if segs[2] == "colls" && segs[4] == "docs" => "docs",
        _ => return None,
    };
    // A feed (`GET /dbs`) or a create (`POST /dbs/x/colls`) is signed with the parent's link.
    let link = if n % 2 == 1 {
        segs[..n - 1].join("/")
    } else {
        link
    };
    Some((ty, link))
}

fn parse_auth(raw: &str) -> Option<(String, String)> {
    let decoded = util::decode(raw, true);
    let mut kind = None;
    let mut sig = None;
    let mut ver = None;
    for pair in decoded.split('&') {
        let (k, v) = pair.split_once('=')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "type" => kind = Some(v.trim().to_owned()),
            "ver" => ver = Some(v.trim().to_owned()),
            "sig" => sig = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    (ver.as_deref() == Some("1.0")).then_some(())?;
    Some((kind?, sig?))
}

#[allow(clippy::too_many_lines)]
fn data_process(
    world: &Arc<World>,
    key: &str,
    parts: &axum::http::request::Parts,
    body: &Bytes,
    activity: &str,
) -> Response {
    let path = util::decode(parts.uri.path(), false);
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let Some((rtype, link)) = classify(&segs, &parts.method) else {
        return cosmos_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested resource could not be found.",
            activity,
        );
    };
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let Some(auth) = header("authorization") else {
        return cosmos_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Required Header authorization is missing. Ensure a valid Authorization token is passed.",
            activity,
        );
    };
    let date = header("x-ms-date")
        .or_else(|| header("date"))
        .unwrap_or_default();
    let verb = parts.method.as_str().to_ascii_lowercase();
    let payload = string_to_sign(&verb, rtype, &link, &date);
    let mismatch = || {
        cosmos_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &format!(
                "The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. For more info: https://aka.ms/cosmosdb-tsg-unauthorized. Server used the following payload to sign: '{}'",
                payload.replace('\n', "\\n")
            ),
            activity,
        )
    };
    let Some((kind, sig)) = parse_auth(&auth) else {
        return mismatch();
    };
    if !kind.eq_ignore_ascii_case("master") {
        return mismatch();
    }
    let keys = match world.lock().cosmos_accounts.get(key) {
        Some(a) => a.keys.clone(),
        None => {
            return cosmos_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The account was not found.",
                activity,
            );
        }
    };
    let matched = keys
        .iter()
        .position(|k| signature(k, &payload).is_some_and(|s| s == sig));
    let write = !matches!(parts.method, Method::GET | Method::HEAD);
    match matched {
        None => return mismatch(),
        // Read-only keys sign reads only; a write gets the same answer as a wrong key.
        Some(i) if i >= 2 && write => return mismatch(),
        Some(_) => {}
    }
    // The signature is right: now the time window of the token.
    let Ok(when) = httpdate::parse_http_date(date.trim()) else {
        return cosmos_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The input date header is invalid format. Please pass in RFC 1123 style date format.",
            activity,
        );
    };
    let now = world.now();
    if now + CLOCK_SKEW < when || when + TOKEN_LIFETIME < now {
        return cosmos_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "The authorization token is not valid at the current time. Please create another token and retry (token start time: {}, token expiry time: {}, current server time: {}).",
                httpdate::fmt_http_date(when),
                httpdate::fmt_http_date(when + TOKEN_LIFETIME),
                httpdate::fmt_http_date(now)
            ),
            activity,
        );
    }
    operate(world, key, &parts.method, &segs, body, activity)
}

fn not_found(activity: &str) -> Response {
    cosmos_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "Entity with the specified id does not exist in the system. More info: https://aka.ms/cosmosdb-tsg-not-found",
        activity,
    )
}

fn new_item(world: &World, id: &str, body: Map<String, Value>) -> Item {
    Item {
        id: id.to_owned(),
        rid: random_rid(6),
        ts: util::unix(world.now()),
        etag: format!("\"{}\"", util::guid()),
        body,
    }
}

fn item_json(item: &Item, self_link: &str, kind: &str) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(item.id));
    for (k, v) in &item.body {
        if k != "id" {
            m.insert(k.clone(), v.clone());
        }
    }
    if kind == "colls" {
        m.entry("indexingPolicy").or_insert(json!({
            "indexingMode": "consistent", "automatic": true,
            "includedPaths": [{"path": "/*"}], "excludedPaths": [{"path": "/\"_etag\"/?"}]
        }));
    }
    m.insert("_rid".into(), json!(item.rid));
    m.insert("_ts".into(), json!(item.ts));
    m.insert("_self".into(), json!(self_link));
    m.insert("_etag".into(), json!(item.etag));
    match kind {
        "dbs" => {
            m.insert("_colls".into(), json!("colls/"));
            m.insert("_users".into(), json!("users/"));
        }
        "colls" => {
            for k in ["docs", "sprocs", "triggers", "udfs", "conflicts"] {
                m.insert(format!("_{k}"), json!(format!("{k}/")));
            }
        }
        _ => {
            m.insert("_attachments".into(), json!("attachments/"));
        }
    }
    Value::Object(m)
}

#[allow(clippy::too_many_lines)]
fn operate(
    world: &Arc<World>,
    key: &str,
    method: &Method,
    segs: &[&str],
    body: &Bytes,
    activity: &str,
) -> Response {
    let parse_body = || -> Result<(String, Map<String, Value>), Response> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => match m.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() && !id.contains(['/', '\\', '?', '#']) => {
                    Ok((id.to_owned(), m))
                }
                _ => Err(cosmos_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The input content is invalid because the required properties - 'id; ' - are missing",
                    activity,
                )),
            },
            _ => Err(cosmos_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The input content is invalid: the body must be a JSON object.",
                activity,
            )),
        }
    };
    let conflict = || {
        cosmos_error(
            StatusCode::CONFLICT,
            "Conflict",
            "Entity with the specified id already exists in the system.",
            activity,
        )
    };
    let mut st = world.lock();
    let Some(acct) = st.cosmos_accounts.get_mut(key) else {
        return not_found(activity);
    };
    let now_world = world.clone();
    match (method.clone(), segs) {
        (Method::GET, []) => {
            let url = acct.server.url();
            json_response(
                StatusCode::OK,
                &json!({
                    "id": acct.name, "_rid": format!("{}.documents.azure.com", acct.name), "media": "//media/",
                    "addresses": "//addresses/", "_dbs": "//dbs/",
                    "writableLocations": [{"name": world.config.location, "databaseAccountEndpoint": format!("{url}/")}],
                    "readableLocations": [{"name": world.config.location, "databaseAccountEndpoint": format!("{url}/")}],
                    "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
                }),
            )
        }
        (Method::GET, ["dbs"]) => {
            let list: Vec<Value> = acct
                .dbs
                .values()
                .map(|(db, _)| item_json(db, &format!("dbs/{}/", db.rid), "dbs"))
                .collect();
            let n = list.len();
            json_response(
                StatusCode::OK,
                &json!({"_rid": "", "Databases": list, "_count": n}),
            )
        }
        (Method::POST, ["dbs"]) => {
            let (id, b) = match parse_body() {
                Ok(x) => x,
                Err(r) => return r,
            };
            if acct.dbs.contains_key(&id) {
                return conflict();
            }
            let db = new_item(&now_world, &id, b);
            let v = item_json(&db, &format!("dbs/{}/", db.rid), "dbs");
            acct.dbs.insert(id, (db, BTreeMap::new()));
            json_response(StatusCode::CREATED, &v)
        }
        (Method::GET, ["dbs", d]) => match acct.dbs.get(*d) {
            Some((db, _)) => json_response(
                StatusCode::OK,
                &item_json(db, &format!("dbs/{}/", db.rid), "dbs"),
            ),
            None => not_found(activity),
        },
        (Method::DELETE, ["dbs", d]) => match acct.dbs.remove(*d) {
            Some(_) => axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT),
            None => not_found(activity),
        },
        (Method::GET, ["dbs", d, "colls"]) => match acct.dbs.get(*d) {
            Some((db, colls)) => {
                let list: Vec<Value> = colls
                    .values()
                    .map(|(c, _)| {
                        item_json(c, &format!("dbs/{}/colls/{}/", db.rid, c.rid), "colls")
                    })
                    .collect();
                let n = list.len();
                json_response(
                    StatusCode::OK,
                    &json!({"_rid": db.rid, "DocumentCollections": list, "_count": n}),
                )
            }
            None => not_found(activity),
        },
        (Method::POST, ["dbs", d, "colls"]) => {
            let (id, b) = match parse_body() {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Some((db, colls)) = acct.dbs.get_mut(*d) else {
                return not_found(activity);
            };
            if colls.contains_key(&id) {
                return conflict();
            }
            let c = new_item(&now_world, &id, b);
            let v = item_json(&c, &format!("dbs/{}/colls/{}/", db.rid, c.rid), "colls");
            colls.insert(id, (c, BTreeMap::new()));
            json_response(StatusCode::CREATED, &v)
        }
        (Method::GET, ["dbs", d, "colls", c]) => match acct
            .dbs
            .get(*d)
            .and_then(|(db, cs)| Some((db, cs.get(*c)?)))
        {
            Some((db, (c, _))) => json_response(
                StatusCode::OK,
                &item_json(c, &format!("dbs/{}/colls/{}/", db.rid, c.rid), "colls"),
            ),
            None => not_found(activity),
        },
        (Method::DELETE, ["dbs", d, "colls", c]) => {
            match acct.dbs.get_mut(*d).and_then(|(_, cs)| cs.remove(*c)) {
                Some(_) => axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT),
                None => not_found(activity),
            }
        }
        (Method::GET, ["dbs", d, "colls", c, "docs"]) => match acct
            .dbs
            .get(*d)
            .and_then(|(db, cs)| Some((db, cs.get(*c)?)))
        {
            Some((db, (coll, docs))) => {
                let list: Vec<Value> = docs
                    .values()
                    .map(|doc| {
                        item_json(
                            doc,
                            &format!("dbs/{}/colls/{}/docs/{}/", db.rid, coll.rid, doc.rid),
                            "docs",
                        )
                    })
                    .collect();
                let n = list.len();
                json_response(
                    StatusCode::OK,
                    &json!({"_rid": coll.rid, "Documents": list, "_count": n}),
                )
            }
            None => not_found(activity),
        },
        (Method::POST, ["dbs", d, "colls", c, "docs"]) => {
            let (id, b) = match parse_body() {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Some((db, (coll, docs))) = acct
                .dbs
                .get_mut(*d)
                .and_then(|(db, cs)| Some((&*db, cs.get_mut(*c)?)))
            else {
                return not_found(activity);
            };
            if docs.contains_key(&id) {
                return conflict();
            }
            let doc = new_item(&now_world, &id, b);
            let v = item_json(
                &doc,
                &format!("dbs/{}/colls/{}/docs/{}/", db.rid, coll.rid, doc.rid),
                "docs",
            );
            docs.insert(id, doc);
            json_response(StatusCode::CREATED, &v)
        }
        (Method::GET, ["dbs", d, "colls", c, "docs", i]) => {
            match acct.dbs.get(*d).and_then(|(db, cs)| {
                let (coll, docs) = cs.get(*c)?;
                Some((db, coll, docs.get(*i)?))
            }) {
                Some((db, coll, doc)) => json_response(
                    StatusCode::OK,
                    &item_json(
                        doc,
                        &format!("dbs/{}/colls/{}/docs/{}/", db.rid, coll.rid, doc.rid),
                        "docs",
                    ),
                ),
                None => not_found(activity),
            }
        }
        _ => cosmos_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("Request method '{method}' is not supported on this resource."),
            activity,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Microsoft's documented example ("Access control in the Azure Cosmos DB SQL API").
    const DOC_KEY: &str =
        "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==";

    #[rstest]
    #[case::doc_example(
        "GET",
        "dbs",
        "dbs/ToDoList",
        "Thu, 27 Apr 2017 00:51:12 GMT",
        "c09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu+c+c="
    )]
    fn documented_signature(
        #[case] verb: &str,
        #[case] ty: &str,
        #[case] link: &str,
        #[case] date: &str,
        #[case] want: &str,
    ) {
        assert_eq!(
            signature(DOC_KEY, &string_to_sign(verb, ty, link, date)).as_deref(),
            Some(want)
        );
    }

    #[rstest]
    #[case::feed(&["dbs"], Method::GET, "dbs", "")]
    #[case::create_db(&["dbs"], Method::POST, "dbs", "")]
    #[case::read_db(&["dbs", "x"], Method::GET, "dbs", "dbs/x")]
    #[case::create_coll(&["dbs", "x", "colls"], Method::POST, "colls", "dbs/x")]
    #[case::read_coll(&["dbs", "x", "colls", "y"], Method::GET, "colls", "dbs/x/colls/y")]
    #[case::create_doc(&["dbs", "x", "colls", "y", "docs"], Method::POST, "docs", "dbs/x/colls/y")]
    fn resource_links(
        #[case] segs: &[&str],
        #[case] m: Method,
        #[case] ty: &str,
        #[case] link: &str,
    ) {
        assert_eq!(
            classify(segs, &m).map(|(t, l)| (t.to_owned(), l)),
            Some((ty.to_owned(), link.to_owned()))
        );
    }
}
