//! Microsoft.Storage/storageAccounts as ARM resources (minimal; the data plane comes later).

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, check_provider_version, empty, ok, versions};
use crate::error::ArmError;
use crate::util;
use crate::world::{Resource, World};

const FULL: &str = "Microsoft.Storage/storageAccounts";

pub(crate) fn render(world: &World, r: &Resource) -> Value {
    let _ = world;
    let mut m = super::resource_head(r);
    let n = &r.name;
    let mut p = r.properties.as_object().cloned().unwrap_or_default();
    p.insert("provisioningState".into(), json!("Succeeded"));
    p.insert("creationTime".into(), json!(util::iso(r.created)));
    p.insert(
        "primaryEndpoints".into(),
        json!({
            "blob": format!("https://{n}.blob.core.windows.net/"),
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

fn keys(r: &Resource) -> Value {
    // Deterministic per account, stable across calls.
    use sha2::Digest as _;
    let k = |n: &str| {
        let d = sha2::Sha512::digest(format!("{}:{n}", r.unique_id).as_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, d)
    };
    json!({"keys": [
        {"keyName": "key1", "value": k("key1"), "permissions": "FULL"},
        {"keyName": "key2", "value": k("key2"), "permissions": "FULL"},
    ]})
}

pub(crate) fn list_keys(world: &Arc<World>, req: &Req) -> ArmResult {
    check_provider_version(
        req,
        &world.config.location,
        "storageAccounts",
        versions::STORAGE,
    )?;
    if req.method != Method::POST {
        return Err(super::method_not_allowed(req));
    }
    let rg = super::rg_name(req);
    let name = req.segs[7].clone();
    let scope = req
        .path
        .trim_end_matches(|c| c != '/')
        .trim_end_matches('/')
        .to_owned();
    authorize(world, req, &format!("{FULL}/listkeys/action"), &scope)?;
    let key = format!(
        "/subscriptions/{}/resourcegroups/{}/providers/{}/{}",
        world.subscription_id, rg, FULL, name
    )
    .to_ascii_lowercase();
    let st = world.lock();
    match st.resources.get(&key) {
        Some(r) => {
            let v = keys(r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        None => Err(super::resource_not_found(FULL, &name, &rg)),
    }
}

pub(crate) fn account(world: &Arc<World>, req: &Req) -> ArmResult {
    let rg = super::rg_name(req);
    let rg_loc = world
        .lock()
        .resource_groups
        .get(&rg.to_ascii_lowercase())
        .map(|g| g.location.clone());
    check_provider_version(
        req,
        rg_loc.as_deref().unwrap_or(&world.config.location),
        "storageAccounts",
        versions::STORAGE,
    )?;
    let name = req.segs[7].clone();
    let id = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{FULL}/{name}",
        world.subscription_id
    );
    let key = id.to_ascii_lowercase();
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
                properties: body
                    .get("properties")
                    .filter(|p| p.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({})),
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
