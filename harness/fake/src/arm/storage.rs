//! Microsoft.Storage/storageAccounts as ARM resources: create/get/delete, `listKeys`,
//! `regenerateKey` and `listServiceSas`; each account gets a blob service (`crate::blob`)
//! whose base URL is `properties.primaryEndpoints.blob`.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, check_provider_version, empty, ok, versions};
use crate::error::ArmError;
use crate::world::{Resource, World};
use crate::{blob, util};

const FULL: &str = "Microsoft.Storage/storageAccounts";
/// Where the account's blob URL is kept in its stored properties (never rendered as such).
const BLOB_ENDPOINT: &str = "\u{0}blobEndpoint";

pub(crate) fn render(world: &World, r: &Resource) -> Value {
    let _ = world;
    let mut m = super::resource_head(r);
    let n = &r.name;
    let mut p = r.properties.as_object().cloned().unwrap_or_default();
    p.insert("provisioningState".into(), json!("Succeeded"));
    p.insert("creationTime".into(), json!(util::iso(r.created)));
    let blob = p.get(BLOB_ENDPOINT).and_then(Value::as_str).map_or_else(
        || format!("https://{n}.blob.core.windows.net/"),
        str::to_owned,
    );
    p.remove(BLOB_ENDPOINT);
    p.insert(
        "primaryEndpoints".into(),
        json!({
            "blob": blob,
            "queue": format!("https://{n}.queue.core.windows.net/"),
            "table": format!("https://{n}.table.core.windows.net/"),
            "file": format!("https://{n}.file.core.windows.net/"),
        }),
    );
    p.insert("primaryLocation".into(), json!(r.location));
    p.insert("statusOfPrimary".into(), json!("available"));
    m.insert("properties".into(), Value::Object(p));
    Value::Object(m)
}

fn keys_body(req: &Req, keys: &[String; 2]) -> Value {
    if req.api_version.as_str() < "2016-01-01" {
        return json!({"key1": keys[0], "key2": keys[1]});
    }
    json!({"keys": [
        {"keyName": "key1", "value": keys[0], "permissions": "FULL"},
        {"keyName": "key2", "value": keys[1], "permissions": "FULL"},
    ]})
}

/// The account a POST action addresses, after version, method and RBAC checks.
fn action_target(
    world: &Arc<World>,
    req: &Req,
    action: &str,
    since: &str,
) -> Result<String, ArmError> {
    check_provider_version(
        req,
        &world.config.location,
        "storageAccounts",
        versions::STORAGE,
    )?;
    if req.method != Method::POST {
        return Err(super::method_not_allowed(req));
    }
    if req.api_version.as_str() < since {
        let op = req.segs.get(8).cloned().unwrap_or_default();
        return Err(ArmError::bad_request(
            "InvalidResourceType",
            format!(
                "The resource type '{op}' could not be found in the namespace 'Microsoft.Storage' for api version '{}'.",
                req.api_version
            ),
        ));
    }
    let rg = super::rg_name(req);
    let name = req.segs[7].clone();
    let scope = req
        .path
        .trim_end_matches(|c| c != '/')
        .trim_end_matches('/')
        .to_owned();
    authorize(world, req, &format!("{FULL}/{action}"), &scope)?;
    let key = format!(
        "/subscriptions/{}/resourcegroups/{}/providers/{}/{}",
        world.subscription_id, rg, FULL, name
    )
    .to_ascii_lowercase();
    if !world.lock().resources.contains_key(&key) {
        return Err(super::resource_not_found(FULL, &name, &rg));
    }
    Ok(name)
}

fn invalid_values(field: &str) -> ArmError {
    ArmError::bad_request(
        "InvalidValuesForRequestParameters",
        format!("Values for request parameters are invalid: {field}."),
    )
}

pub(crate) fn list_keys(world: &Arc<World>, req: &Req) -> ArmResult {
    let name = action_target(world, req, "listkeys/action", "2015-05-01-preview")?;
    let keys = blob::keys_of(world, &name).ok_or_else(|| invalid_values("accountName"))?;
    ok(StatusCode::OK, &keys_body(req, &keys))
}

pub(crate) fn regenerate_key(world: &Arc<World>, req: &Req) -> ArmResult {
    let name = action_target(world, req, "regeneratekey/action", "2015-05-01-preview")?;
    let body = req.json()?;
    let index = match body.get("keyName").and_then(Value::as_str) {
        Some(k) if k.eq_ignore_ascii_case("key1") => 0,
        Some(k) if k.eq_ignore_ascii_case("key2") => 1,
        _ => return Err(invalid_values("keyName")),
    };
    blob::regenerate(world, &name, index);
    let keys = blob::keys_of(world, &name).ok_or_else(|| invalid_values("accountName"))?;
    ok(StatusCode::OK, &keys_body(req, &keys))
}

/// Normalise an ISO 8601 UTC time to `YYYY-MM-DDThh:mm:ssZ` as the SAS carries it.
fn sas_time(v: &str) -> Option<String> {
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).ok()?;
    let t = t.to_offset(time::UtcOffset::UTC);
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// The service SAS version `listServiceSas` signs with.
pub(crate) const LIST_SERVICE_SAS_VERSION: &str = "2015-04-05";

pub(crate) fn list_service_sas(world: &Arc<World>, req: &Req) -> ArmResult {
    let name = action_target(world, req, "listServiceSas/action", "2017-06-01")?;
    let body = req.json()?;
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let resource =
        field("canonicalizedResource").ok_or_else(|| invalid_values("canonicalizedResource"))?;
    let sr = field("signedResource").ok_or_else(|| invalid_values("signedResource"))?;
    let sp = field("signedPermission").ok_or_else(|| invalid_values("signedPermission"))?;
    let se = field("signedExpiry")
        .as_deref()
        .and_then(sas_time)
        .ok_or_else(|| invalid_values("signedExpiry"))?;
    let st = match field("signedStart") {
        None => String::new(),
        Some(v) => sas_time(&v).ok_or_else(|| invalid_values("signedStart"))?,
    };
    let spr = field("signedProtocol").unwrap_or_default();
    if !matches!(spr.as_str(), "" | "https" | "https,http") {
        return Err(invalid_values("signedProtocol"));
    }
    let key_index = match field("keyToSign").as_deref() {
        None => 0,
        Some(k) if k.eq_ignore_ascii_case("key1") => 0,
        Some(k) if k.eq_ignore_ascii_case("key2") => 1,
        Some(_) => return Err(invalid_values("keyToSign")),
    };
    if !matches!(sr.as_str(), "b" | "c") {
        return Err(invalid_values("signedResource"));
    }
    if !blob::auth::sas_permissions_well_formed(&sp) {
        return Err(invalid_values("signedPermission"));
    }
    // `/blob/{account}/{container}` for sr=c, `/blob/{account}/{container}/{blob}` for sr=b.
    let rest = resource
        .strip_prefix("/blob/")
        .and_then(|r| r.split_once('/'))
        .filter(|(acct, _)| acct.eq_ignore_ascii_case(&name));
    let Some((_, path)) = rest else {
        return Err(invalid_values("canonicalizedResource"));
    };
    let shape_ok = match sr.as_str() {
        "c" => !path.is_empty() && !path.contains('/'),
        _ => path
            .split_once('/')
            .is_some_and(|(c, b)| !c.is_empty() && !b.is_empty()),
    };
    if !shape_ok {
        return Err(invalid_values("canonicalizedResource"));
    }
    let keys = blob::keys_of(world, &name).ok_or_else(|| invalid_values("accountName"))?;
    let f = blob::auth::SasFields {
        sv: LIST_SERVICE_SAS_VERSION.to_owned(),
        sr,
        sp,
        st,
        se,
        spr,
        ..blob::auth::SasFields::default()
    };
    let canonical = format!("/blob/{}/{path}", name.to_ascii_lowercase());
    let token = blob::issue_service_sas(&keys[key_index], &f, &canonical)
        .ok_or_else(|| invalid_values("keyToSign"))?;
    ok(StatusCode::OK, &json!({"serviceSasToken": token}))
}

pub(crate) fn account(world: &Arc<World>, req: &Req) -> ArmResult {
    let super::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = super::target(world, req, FULL, "storageAccounts", versions::STORAGE)?;
    let scope = req.path.clone();
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{FULL}/read"), &scope)?;
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            let st = world.lock();
            let Some(r) = st.resources.get(&key) else {
                return Err(super::resource_not_found(FULL, &name, &rg));
            };
            let v = render(world, r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT => {
            authorize(world, req, &format!("{FULL}/write"), &scope)?;
            let body = req.json()?;
            let location = super::norm_location(&super::required_location(&body)?);
            let tags = super::tags_of(&body)?;
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            if name.len() < 3
                || name.len() > 24
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                return Err(ArmError::bad_request(
                    "AccountNameInvalid",
                    format!(
                        "{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."
                    ),
                ));
            }
            if !body
                .get("sku")
                .is_some_and(|s| s.get("name").is_some_and(Value::is_string))
            {
                return Err(ArmError::bad_request(
                    "MissingRequiredProperty",
                    "The required property 'sku' is missing from the request.",
                ));
            }
            let mut extra = Map::new();
            for k in ["sku", "kind"] {
                if let Some(v) = body.get(k) {
                    extra.insert(k.to_owned(), v.clone());
                }
            }
            let mut properties = body
                .get("properties")
                .filter(|p| p.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            let url = blob::ensure_account(world, &name, &id).map_err(|e| {
                ArmError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    e.to_string(),
                )
            })?;
            if let Some(p) = properties.as_object_mut() {
                p.remove("primaryEndpoints");
                p.insert(BLOB_ENDPOINT.into(), json!(url));
            }
            let mut st = world.lock();
            let existing = st.resources.get(&key).cloned();
            let r = Resource {
                id: existing
                    .as_ref()
                    .map_or_else(|| id.clone(), |e| e.id.clone()),
                resource_group: rg.clone(),
                rtype: FULL.to_owned(),
                name: name.clone(),
                location,
                tags,
                properties,
                extra,
                identity: None,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            st.resources.insert(key, r.clone());
            drop(st);
            // Storage may answer 202 and poll; the fake completes synchronously with 200.
            ok(StatusCode::OK, &render(world, &r))
        }
        Method::DELETE => {
            authorize(world, req, &format!("{FULL}/delete"), &scope)?;
            let mut st = world.lock();
            if !st.resources.contains_key(&key) {
                return empty(StatusCode::NO_CONTENT);
            }
            super::resources::purge(&mut st, &id);
            drop(st);
            empty(StatusCode::OK)
        }
        _ => Err(super::method_not_allowed(req)),
    }
}
