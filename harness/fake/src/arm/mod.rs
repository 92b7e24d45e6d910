//! The ARM control plane: one fallback handler that parses paths case-insensitively as
//! ARM does, authenticates the bearer token, checks api-versions, authorizes the action
//! with RBAC and dispatches to the resource-provider modules.

// ArmError carries an owned envelope; it is only built on the (cold) error path. `ok`/`empty`
// return results so handlers can `return ok(..)` uniformly.
#![allow(clippy::result_large_err, clippy::unnecessary_wraps)]

pub(crate) mod authorization;
pub(crate) mod compute;
pub mod faults;
pub(crate) mod msi;
pub(crate) mod network;
pub(crate) mod resources;
pub mod runcommand;
pub(crate) mod sql;
pub(crate) mod storage;
pub(crate) mod tagfilter;
pub(crate) mod web;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::{ArmError, json_response};
use crate::token::{ARM_AUDIENCES, Claims};
use crate::util;
use crate::world::{Resource, World};

/// Bodies above this are refused with ARM's 413.
const MAX_BODY: usize = 4 * 1024 * 1024;

pub(crate) type ArmResult = Result<Response, ArmError>;

/// A parsed ARM request.
pub(crate) struct Req {
    pub method: Method,
    /// Decoded path without trailing slash (as the caller cased it).
    pub path: String,
    pub segs: Vec<String>,
    pub lsegs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub api_version: String,
    pub body: Bytes,
    pub caller: Claims,
}

impl Req {
    /// The JSON body as an object; empty body is `{}`.
    pub fn json(&self) -> Result<Map<String, Value>, ArmError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        let invalid = |why: String| {
            ArmError::bad_request(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: '{why}'."),
            )
        };
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| invalid("Unexpected character encountered while parsing value. Path '', line 1, position 1.".to_owned()))?;
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(invalid(format!(
                "Error converting value {} to type 'Microsoft.WindowsAzure.ResourceStack.Frontdoor.Data.Definitions.ResourceDefinition'. Path '', line 1, position {}.",
                truncate(&other.to_string(), 40),
                text.len()
            ))),
            Err(e) => Err(invalid(format!(
                "Unexpected character encountered while parsing value: {}. Path '', line {}, position {}.",
                text.chars()
                    .nth(e.column().saturating_sub(1))
                    .unwrap_or(' '),
                e.line(),
                e.column()
            ))),
        }
    }
    pub fn param(&self, k: &str) -> Option<&str> {
        util::param(&self.query, k)
    }
    pub fn is_new_api(&self, since: &str) -> bool {
        self.api_version.as_str() >= since
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub(crate) fn router(world: Arc<World>) -> Router {
    Router::new().fallback(handle).with_state(world)
}

async fn handle(State(world): State<Arc<World>>, req: Request) -> Response {
    let corr = req
        .headers()
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| util::is_guid(v))
        .map_or_else(util::guid, str::to_owned);
    let request_id = util::guid();
    let fault = faults::take(&world);
    let result = match fault {
        Some(r) => Ok(r),
        None => process(&world, req).await,
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-ms-request-id", request_id.as_str()),
        ("x-ms-correlation-request-id", corr.as_str()),
        ("x-ms-routing-request-id", "WESTUS:FAKE"),
        ("cache-control", "no-cache"),
        ("pragma", "no-cache"),
        ("expires", "-1"),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    resp
}

async fn process(world: &Arc<World>, req: Request) -> ArmResult {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ArmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The request content size exceeds the maximum size of {MAX_BODY} bytes."),
        )
    })?;
    let raw_path = parts.uri.path();
    let path = util::decode(raw_path, false);
    let path = path.trim_end_matches('/').to_owned();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let lsegs: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let query = util::parse_pairs(parts.uri.query().unwrap_or_default());
    let api_version = util::param(&query, "api-version").map(str::to_owned);
    let Some(api_version) = api_version.filter(|v| !v.is_empty()) else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    // Authentication.
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let caller = match auth {
        None => Err(crate::TokenError::Missing),
        Some(a) if !a.trim_start().to_ascii_lowercase().starts_with("bearer ") => {
            Err(crate::TokenError::Malformed)
        }
        Some(a) => world.verify(&a, ARM_AUDIENCES),
    };
    let caller = caller.map_err(|e| {
        let mut err = ArmError::new(StatusCode::UNAUTHORIZED, e.arm_code(), e.arm_message());
        err.headers.push((
            "WWW-Authenticate",
            format!(
                "Bearer authorization_uri=\"https://login.windows.net/{}\", error=\"invalid_token\", error_description=\"{}\"",
                world.tenant_id,
                e.arm_message().replace('"', "'")
            ),
        ));
        err
    })?;
    let req = Req {
        method: parts.method,
        path,
        segs,
        lsegs,
        query,
        api_version,
        body,
        caller,
    };
    dispatch(world, &req)
}

/// Supported api-versions per resource type (what ARM lists in its version errors).
pub(crate) mod versions {
    pub const RESOURCE_GROUPS: &[&str] = &[
        "2014-04-01",
        "2014-04-01-preview",
        "2015-01-01",
        "2015-11-01",
        "2016-02-01",
        "2016-06-01",
        "2016-07-01",
        "2016-09-01",
        "2017-05-10",
        "2017-06-01",
        "2017-08-01",
        "2018-02-01",
        "2018-05-01",
        "2019-03-01",
        "2019-05-01",
        "2019-05-10",
        "2019-07-01",
        "2019-08-01",
        "2019-10-01",
        "2020-06-01",
        "2020-08-01",
        "2020-10-01",
        "2021-01-01",
        "2021-04-01",
        "2022-01-01",
        "2022-03-01-preview",
        "2022-09-01",
        "2022-12-01",
        "2023-07-01",
        "2024-03-01",
        "2024-07-01",
        "2024-11-01",
        "2025-03-01",
        "2025-04-01",
    ];
    pub const COMPUTE: &[&str] = &[
        "2015-05-01-preview",
        "2015-06-15",
        "2016-03-30",
        "2016-04-30-preview",
        "2016-08-30",
        "2017-03-30",
        "2017-12-01",
        "2018-04-01",
        "2018-06-01",
        "2018-10-01",
        "2019-03-01",
        "2019-07-01",
        "2019-12-01",
        "2020-06-01",
        "2020-12-01",
        "2021-03-01",
        "2021-04-01",
        "2021-07-01",
        "2021-11-01",
        "2022-03-01",
        "2022-08-01",
        "2022-11-01",
        "2023-03-01",
        "2023-07-01",
        "2023-09-01",
        "2024-03-01",
        "2024-07-01",
        "2024-11-01",
    ];
    pub const MSI: &[&str] = &[
        "2015-08-31-preview",
        "2018-11-30",
        "2021-09-30-preview",
        "2022-01-31-preview",
        "2023-01-31",
        "2023-07-31-preview",
        "2024-11-30",
    ];
    pub const STORAGE: &[&str] = &[
        "2015-05-01-preview",
        "2015-06-15",
        "2016-01-01",
        "2016-05-01",
        "2016-12-01",
        "2017-06-01",
        "2017-10-01",
        "2018-02-01",
        "2018-03-01-preview",
        "2018-07-01",
        "2018-11-01",
        "2019-04-01",
        "2019-06-01",
        "2020-08-01-preview",
        "2021-01-01",
        "2021-02-01",
        "2021-04-01",
        "2021-06-01",
        "2021-08-01",
        "2021-09-01",
        "2022-05-01",
        "2022-09-01",
        "2023-01-01",
        "2023-04-01",
        "2023-05-01",
        "2024-01-01",
        "2025-01-01",
    ];
    pub const WEB: &[&str] = &[
        "2014-04-01",
        "2015-08-01",
        "2016-03-01",
        "2016-08-01",
        "2018-02-01",
        "2018-11-01",
        "2019-08-01",
        "2020-06-01",
        "2020-12-01",
        "2021-02-01",
        "2021-03-01",
        "2022-03-01",
        "2022-09-01",
        "2023-01-01",
        "2023-12-01",
        "2024-04-01",
    ];
    pub const AUTHORIZATION: &[&str] = &[
        "2014-04-01-preview",
        "2014-07-01-preview",
        "2014-10-01-preview",
        "2015-05-01-preview",
        "2015-06-01",
        "2015-07-01",
        "2016-07-01",
        "2017-05-01",
        "2017-09-01",
        "2017-10-01-preview",
        "2018-01-01-preview",
        "2018-07-01",
        "2018-09-01-preview",
        "2018-12-01-preview",
        "2019-04-01-preview",
        "2020-03-01-preview",
        "2020-04-01-preview",
        "2020-08-01-preview",
        "2020-10-01-preview",
        "2021-04-01-preview",
        "2022-01-01-preview",
        "2022-04-01",
        "2022-05-01-preview",
    ];
    pub const SUBSCRIPTIONS: &[&str] = RESOURCE_GROUPS;
    pub const SQL: &[&str] = &[
        "2014-04-01",
        "2015-05-01-preview",
        "2017-03-01-preview",
        "2017-10-01-preview",
        "2018-06-01-preview",
        "2019-06-01-preview",
        "2020-02-02-preview",
        "2020-08-01-preview",
        "2020-11-01-preview",
        "2021-02-01-preview",
        "2021-05-01-preview",
        "2021-08-01-preview",
        "2021-11-01",
        "2022-05-01-preview",
        "2022-08-01-preview",
        "2022-11-01-preview",
        "2023-05-01-preview",
        "2023-08-01",
    ];
}

/// What every `.../providers/{namespace}/{type}/{name}` handler starts from: the resource
/// group (and its location, `None` when it does not exist), the api-version checked against
/// the type's supported list, the name, and the canonical id and its map key.
pub(crate) struct Target {
    pub rg: String,
    pub rg_loc: Option<String>,
    pub name: String,
    pub id: String,
    pub key: String,
}

/// Resolve a [`Target`]; fails with `NoRegisteredProviderFound` for an unsupported version.
pub(crate) fn target(
    world: &Arc<World>,
    req: &Req,
    full_type: &str,
    short_type: &str,
    supported: &[&str],
) -> Result<Target, ArmError> {
    let rg = rg_name(req);
    let rg_loc = world
        .lock()
        .resource_groups
        .get(&rg.to_ascii_lowercase())
        .map(|g| g.location.clone());
    check_provider_version(
        req,
        rg_loc.as_deref().unwrap_or(&world.config.location),
        short_type,
        supported,
    )?;
    let name = req.segs[7].clone();
    let id = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{full_type}/{name}",
        world.subscription_id
    );
    let key = id.to_ascii_lowercase();
    Ok(Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    })
}

/// `NoRegisteredProviderFound` for a provider resource type.
pub(crate) fn check_provider_version(
    req: &Req,
    location: &str,
    short_type: &str,
    supported: &[&str],
) -> Result<(), ArmError> {
    if supported.contains(&req.api_version.as_str()) {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for location '{location}' and API version '{}' for type '{short_type}'. The supported api-versions are '{}'. The supported locations are 'eastus, eastus2, westus, centralus, northcentralus, southcentralus, northeurope, westeurope, eastasia, southeastasia, japaneast, japanwest, australiaeast, brazilsouth, westus2, westcentralus, uksouth, ukwest, canadacentral, canadaeast, koreacentral, francecentral'.",
            req.api_version,
            supported.join(", ")
        ),
    ))
}

/// `InvalidApiVersionParameter` (ARM's own types: resource groups, subscriptions).
pub(crate) fn check_arm_version(req: &Req, supported: &[&str]) -> Result<(), ArmError> {
    if supported.contains(&req.api_version.as_str()) {
        return Ok(());
    }
    let mut list: Vec<&str> = supported.to_vec();
    list.reverse();
    Err(ArmError::bad_request(
        "InvalidApiVersionParameter",
        format!(
            "The api-version '{}' is invalid. The supported versions are '{}'.",
            req.api_version,
            list.join(",")
        ),
    ))
}

/// RBAC gate: 403 `AuthorizationFailed` with ARM's message.
pub(crate) fn authorize(
    world: &World,
    req: &Req,
    action: &str,
    scope: &str,
) -> Result<(), ArmError> {
    if world.check(&req.caller.oid, action, scope, false) {
        return Ok(());
    }
    let oid = &req.caller.oid;
    Err(ArmError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    ))
}

pub(crate) fn method_not_allowed(req: &Req) -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HttpMethodNotAllowed",
        format!(
            "The http method '{}' is not allowed for the request '{}'.",
            req.method, req.path
        ),
    )
}

pub(crate) fn ok(status: StatusCode, v: &Value) -> ArmResult {
    Ok(json_response(status, v))
}

pub(crate) fn empty(status: StatusCode) -> ArmResult {
    Ok(status.into_response())
}

/// Add headers to a response.
pub(crate) fn with_headers(mut r: Response, headers: &[(&'static str, String)]) -> Response {
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// The common top of a tracked resource's JSON.
pub(crate) fn resource_head(res: &Resource) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(res.id));
    m.insert("name".into(), json!(res.name));
    m.insert("type".into(), json!(res.rtype));
    m.insert("location".into(), json!(res.location));
    if let Some(t) = &res.tags {
        m.insert("tags".into(), t.clone());
    }
    for (k, v) in &res.extra {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// Validate `location` (required on create) and tags.
pub(crate) fn required_location(body: &Map<String, Value>) -> Result<String, ArmError> {
    match body.get("location") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Null) | None => Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )),
        Some(_) => Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'Error converting value to type 'System.String'. Path 'location'.'.",
        )),
    }
}

pub(crate) fn tags_of(body: &Map<String, Value>) -> Result<Option<Value>, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => {
            Ok(Some(Value::Object(m.clone())))
        }
        Some(_) => Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'Error converting value to type 'System.Collections.Generic.Dictionary`2[System.String,System.String]'. Path 'tags'.'.",
        )),
    }
}

/// The JSON type a body property must have (see [`check_types`]).
#[derive(Clone, Copy)]
pub(crate) enum Json {
    Bool,
    Int,
    Str,
    Obj,
    Arr,
    /// A string from a closed set (matched ignoring case, as the RPs' enum converters do).
    OneOf(&'static [&'static str]),
}

/// `InvalidRequestContent` for properties of the wrong JSON type, as ARM's deserializer answers
/// (absent and `null` properties pass). `rules` are `(dotted path, type)`; a `[]` segment checks
/// every item of an array.
pub(crate) fn check_types(body: &Value, rules: &[(&str, Json)]) -> Result<(), ArmError> {
    fn walk<'a>(v: &'a Value, path: &[&str], at: String, out: &mut Vec<(String, &'a Value)>) {
        match path.split_first() {
            None => out.push((at, v)),
            Some((&"[]", rest)) => {
                for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                    walk(item, rest, format!("{at}[{i}]"), out);
                }
            }
            Some((k, rest)) => {
                if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
                    let at = if at.is_empty() {
                        (*k).to_owned()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(x, rest, at, out);
                }
            }
        }
    }
    for (path, want) in rules {
        let segs: Vec<&str> = path.split('.').collect();
        let mut found = Vec::new();
        walk(body, &segs, String::new(), &mut found);
        for (at, v) in found {
            let (ok, ty) = match want {
                Json::Bool => (v.is_boolean(), "System.Boolean"),
                Json::Int => (v.is_i64() || v.is_u64(), "System.Int32"),
                Json::Str => (v.is_string(), "System.String"),
                Json::Obj => (v.is_object(), "an object"),
                Json::Arr => (v.is_array(), "an array"),
                Json::OneOf(set) => (
                    v.as_str()
                        .is_some_and(|s| set.iter().any(|x| x.eq_ignore_ascii_case(s))),
                    "an enumeration value",
                ),
            };
            if !ok {
                return Err(ArmError::bad_request(
                    "InvalidRequestContent",
                    format!(
                        "The request content was invalid and could not be deserialized: 'Error converting value {v} to type '{ty}'. Path '{at}'.'."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Normalise the display form of a location (`West US` -> `westus`).
pub(crate) fn norm_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

pub(crate) fn rg_not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{name}' could not be found."),
    )
}

pub(crate) fn resource_not_found(short_type: &str, name: &str, rg: &str) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{short_type}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// The LRO headers ARM/Compute send: `Azure-AsyncOperation` + `Retry-After` (+ `Location`).
pub(crate) fn lro_headers(
    world: &World,
    req: &Req,
    namespace: &str,
    location: &str,
    with_location: bool,
) -> Vec<(&'static str, String)> {
    let delay = world.lro_delay_for(&request_type(req));
    let op = world.start_operation_after(delay);
    let base = format!(
        "{}/subscriptions/{}/providers/{namespace}/locations/{}/operations/{op}",
        world.arm_base(),
        world.subscription_id,
        norm_location(location)
    );
    let mut h = vec![
        (
            "Azure-AsyncOperation",
            format!("{base}?api-version={}", req.api_version),
        ),
        ("Retry-After", util::ceil_secs(delay).to_string()),
    ];
    if with_location {
        h.push((
            "Location",
            format!("{base}?monitor=true&api-version={}", req.api_version),
        ));
    }
    h
}

/// `Microsoft.Compute/virtualMachines` (top-level type) of a request path.
pub(crate) fn request_type(req: &Req) -> String {
    req.lsegs
        .iter()
        .position(|s| s == "providers")
        .and_then(|i| Some(format!("{}/{}", req.segs.get(i + 1)?, req.segs.get(i + 2)?)))
        .unwrap_or_default()
}

fn dispatch(world: &Arc<World>, req: &Req) -> ArmResult {
    let l: Vec<&str> = req.lsegs.iter().map(String::as_str).collect();
    // {scope}/providers/Microsoft.Authorization/...
    if let Some(i) = (0..l.len().saturating_sub(1))
        .rev()
        .find(|&i| l[i] == "providers" && l[i + 1] == "microsoft.authorization")
    {
        let scope = format!("/{}", req.segs[..i].join("/"));
        return authorization::handle(world, req, &scope, &req.segs[i + 2..]);
    }
    if l.first() != Some(&"subscriptions") {
        return Err(ArmError::not_found(
            "InvalidRequestUri",
            format!("The request uri '{}' is not valid.", req.path),
        ));
    }
    if l.len() == 1 {
        return resources::list_subscriptions(world, req);
    }
    if !l[1].eq_ignore_ascii_case(&world.subscription_id) {
        return Err(ArmError::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", req.segs[1]),
        ));
    }
    match l.as_slice() {
        [_, _] => resources::subscription(world, req),
        [_, _, "resourcegroups"] => resources::list_groups(world, req),
        [_, _, "resourcegroups", _] => resources::group(world, req),
        [_, _, "operationresults", id] => resources::operation_result(world, req, id),
        [_, _, "providers", _, "locations", _, "operations", id] => {
            resources::operation_status(world, req, id)
        }
        [_, _, "providers", ns, ty] => list_by_type(world, req, ns, ty, None),
        [_, _, "resourcegroups", _, "providers", ns, ty] => {
            list_by_type(world, req, ns, ty, Some(&rg_name(req)))
        }
        [_, _, "resourcegroups", _, "providers", ns, ty, _, rest @ ..] => {
            let key = format!("{ns}/{ty}");
            match (key.as_str(), rest) {
                ("microsoft.compute/virtualmachines", []) => {
                    compute::host(world, req, compute::HostType::Vm)
                }
                ("microsoft.compute/virtualmachinescalesets", []) => {
                    compute::host(world, req, compute::HostType::Vmss)
                }
                ("microsoft.compute/virtualmachines", ["extensions", _]) => {
                    compute::extension(world, req)
                }
                ("microsoft.compute/virtualmachines", ["extensions"]) => {
                    compute::list_extensions(world, req)
                }
                ("microsoft.managedidentity/userassignedidentities", []) => {
                    msi::identity(world, req)
                }
                ("microsoft.storage/storageaccounts", []) => storage::account(world, req),
                ("microsoft.storage/storageaccounts", ["listkeys"]) => {
                    storage::list_keys(world, req)
                }
                ("microsoft.storage/storageaccounts", ["regeneratekey"]) => {
                    storage::regenerate_key(world, req)
                }
                ("microsoft.storage/storageaccounts", ["listservicesas"]) => {
                    storage::list_service_sas(world, req)
                }
                ("microsoft.web/sites", []) => web::site(world, req),
                ("microsoft.keyvault/vaults", []) => crate::keyvault::vault(world, req),
                ("microsoft.keyvault/vaults", ["accesspolicies", kind]) => {
                    crate::keyvault::access_policies(world, req, kind)
                }
                ("microsoft.documentdb/databaseaccounts", []) => crate::cosmos::account(world, req),
                ("microsoft.documentdb/databaseaccounts", [op @ ("listkeys" | "readonlykeys")]) => {
                    crate::cosmos::keys(world, req, op)
                }
                ("microsoft.datalakestore/accounts", []) => crate::datalake::account(world, req),
                ("microsoft.sql/servers", []) => sql::server(world, req),
                ("microsoft.sql/servers", ["databases", _]) => sql::database(world, req),
                ("microsoft.sql/servers", ["administrators", _]) => sql::administrator(world, req),
                ("microsoft.compute/virtualmachines", ["runcommand"]) => {
                    runcommand::handle(world, req, runcommand::Target::Vm)
                }
                ("microsoft.compute/virtualmachinescalesets", ["virtualmachines"]) => {
                    runcommand::list_instances(world, req)
                }
                (
                    "microsoft.compute/virtualmachinescalesets",
                    ["virtualmachines", _, "runcommand"],
                ) => runcommand::handle(world, req, runcommand::Target::VmssInstance),
                ("microsoft.network/virtualnetworks", []) => {
                    network::handle(world, req, network::Kind::VirtualNetwork)
                }
                ("microsoft.network/networkinterfaces", []) => {
                    network::handle(world, req, network::Kind::NetworkInterface)
                }
                _ => Err(unknown_type(req, ns, ty)),
            }
        }
        _ => Err(ArmError::not_found(
            "InvalidRequestUri",
            format!("The request uri '{}' is not valid.", req.path),
        )),
    }
}

pub(crate) fn rg_name(req: &Req) -> String {
    req.segs.get(3).cloned().unwrap_or_default()
}

fn unknown_type(req: &Req, ns: &str, ty: &str) -> ArmError {
    let known_ns = [
        "microsoft.compute",
        "microsoft.managedidentity",
        "microsoft.storage",
        "microsoft.web",
        "microsoft.resources",
        "microsoft.authorization",
        "microsoft.keyvault",
        "microsoft.documentdb",
        "microsoft.datalakestore",
        "microsoft.sql",
        "microsoft.network",
    ];
    let ns_orig = req
        .segs
        .iter()
        .find(|s| s.eq_ignore_ascii_case(ns))
        .cloned()
        .unwrap_or_default();
    if known_ns.contains(&ns) {
        let ty_orig = req
            .segs
            .iter()
            .find(|s| s.eq_ignore_ascii_case(ty))
            .cloned()
            .unwrap_or_default();
        ArmError::bad_request(
            "InvalidResourceType",
            format!(
                "The resource type '{ty_orig}' could not be found in the namespace '{ns_orig}' for api version '{}'.",
                req.api_version
            ),
        )
    } else {
        ArmError::new(
            StatusCode::CONFLICT,
            "MissingSubscriptionRegistration",
            format!("The subscription is not registered to use namespace '{ns_orig}'. See https://aka.ms/rps-not-found for how to register subscriptions."),
        )
        .with_details(json!([{"code": "MissingSubscriptionRegistration", "target": ns_orig, "message": format!("The subscription is not registered to use namespace '{ns_orig}'. See https://aka.ms/rps-not-found for how to register subscriptions.")}]))
    }
}

fn list_by_type(world: &Arc<World>, req: &Req, ns: &str, ty: &str, rg: Option<&str>) -> ArmResult {
    let key = format!("{ns}/{ty}");
    let (full, supported): (&str, &[&str]) = match key.as_str() {
        "microsoft.compute/virtualmachines" => {
            ("Microsoft.Compute/virtualMachines", versions::COMPUTE)
        }
        "microsoft.compute/virtualmachinescalesets" => (
            "Microsoft.Compute/virtualMachineScaleSets",
            versions::COMPUTE,
        ),
        "microsoft.managedidentity/userassignedidentities" => (
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            versions::MSI,
        ),
        "microsoft.storage/storageaccounts" => {
            ("Microsoft.Storage/storageAccounts", versions::STORAGE)
        }
        "microsoft.web/sites" => ("Microsoft.Web/sites", versions::WEB),
        "microsoft.sql/servers" => (sql::SERVERS, versions::SQL),
        _ => return Err(unknown_type(req, ns, ty)),
    };
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let short = full.split_once('/').map_or(full, |(_, t)| t);
    check_provider_version(req, &world.config.location, short, supported)?;
    authorize(world, req, &format!("{full}/read"), &req.path)?;
    if let Some(rg) = &rg
        && !world
            .lock()
            .resource_groups
            .contains_key(&rg.to_ascii_lowercase())
    {
        return Err(rg_not_found(rg));
    }
    let items: Vec<Value> = {
        let st = world.lock();
        st.resources
            .values()
            .filter(|r| r.rtype.eq_ignore_ascii_case(full))
            .filter(|r| {
                rg.as_ref()
                    .is_none_or(|g| r.resource_group.eq_ignore_ascii_case(g))
            })
            .map(|r| render(world, &st, req, r))
            .collect()
    };
    ok(StatusCode::OK, &json!({"value": items}))
}

/// Render any resource in the requested api-version's shape.
pub(crate) fn render(world: &World, st: &crate::world::State, req: &Req, r: &Resource) -> Value {
    match r.rtype.to_ascii_lowercase().as_str() {
        "microsoft.managedidentity/userassignedidentities" => msi::render(world, req, r),
        "microsoft.storage/storageaccounts" => storage::render(world, r),
        "microsoft.web/sites" => web::render(world, st, req, r),
        "microsoft.sql/servers" => sql::render(world, st, r),
        "microsoft.compute/virtualmachines/extensions" => compute::render_extension(world, r),
        "microsoft.network/virtualnetworks" | "microsoft.network/networkinterfaces" => {
            network::render(r)
        }
        _ => compute::render(world, st, req, r),
    }
}
