//! Microsoft.Web/sites (minimal) with a managed identity: creating a site with an identity
//! starts its App Service identity endpoint.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, empty, ok, versions};
use crate::util;
use crate::world::{HostKind, Resource, State, World, host_key};

const FULL: &str = "Microsoft.Web/sites";

pub(crate) fn render(world: &World, st: &State, req: &Req, r: &Resource) -> Value {
    let _ = req;
    let mut m = super::resource_head(r);
    if r.identity.is_some() {
        m.insert(
            "identity".into(),
            super::compute::identity_json(world, st, r.identity.as_ref(), true),
        );
    }
    let mut p = r.properties.as_object().cloned().unwrap_or_default();
    p.insert("state".into(), json!("Running"));
    let host = format!("{}.azurewebsites.net", r.name);
    // Azure lists `<site>.scm.azurewebsites.net` as the Repository host; the fake's Kudu
    // listens on loopback, so its `host:port` stands there (`kudu.rs`).
    let scm = crate::kudu::scm_host(st, &r.id)
        .unwrap_or_else(|| format!("{}.scm.azurewebsites.net", r.name));
    p.insert("enabledHostNames".into(), json!([host, scm]));
    p.insert(
        "hostNameSslStates".into(),
        json!([
            {"name": host, "sslState": "Disabled", "hostType": "Standard"},
            {"name": scm, "sslState": "Disabled", "hostType": "Repository"},
        ]),
    );
    p.insert("defaultHostName".into(), json!(host));
    p.insert("provisioningState".into(), json!("Succeeded"));
    m.insert("properties".into(), Value::Object(p));
    Value::Object(m)
}

pub(crate) fn site(world: &Arc<World>, req: &Req) -> ArmResult {
    let super::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = super::target(world, req, FULL, "sites", versions::WEB)?;
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
            let v = render(world, &st, req, r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT | Method::PATCH => {
            authorize(world, req, &format!("{FULL}/write"), &scope)?;
            let is_patch = req.method == Method::PATCH;
            let body = req.json()?;
            let tags = super::tags_of(&body)?;
            let Some(rg_loc) = rg_loc else {
                return Err(super::rg_not_found(&rg));
            };
            let mut st = world.lock();
            let existing = st.resources.get(&key).cloned();
            if is_patch && existing.is_none() {
                return Err(super::resource_not_found(FULL, &name, &rg));
            }
            let location = match (&existing, is_patch) {
                (Some(e), true) => e.location.clone(),
                _ => super::norm_location(&super::required_location(&body).unwrap_or(rg_loc)),
            };
            let identity = super::compute::apply_identity(
                world,
                &mut st,
                existing.as_ref().and_then(|e| e.identity.as_ref()),
                body.get("identity"),
                true,
                is_patch,
                &name,
                &id,
            )?;
            let r = Resource {
                id: id.clone(),
                resource_group: rg.clone(),
                rtype: FULL.to_owned(),
                name: name.clone(),
                location,
                tags: if body.contains_key("tags") {
                    tags
                } else {
                    existing.as_ref().and_then(|e| e.tags.clone())
                },
                properties: body
                    .get("properties")
                    .filter(|p| p.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({})),
                extra: Map::new(),
                identity,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            let has_identity = r.identity.is_some();
            st.resources.insert(key, r.clone());
            crate::kudu::ensure(world, &mut st, &id, &name);
            let secret_kind = HostKind::AppService {
                secret: String::new(),
            };
            if has_identity {
                if !st.hosts.contains_key(&host_key(&id, &secret_kind)) {
                    crate::imds::start_host(
                        world,
                        &mut st,
                        &id,
                        HostKind::AppService {
                            secret: util::random_b64(24),
                        },
                    );
                }
            } else if let Some(h) = st.hosts.remove(&host_key(&id, &secret_kind)) {
                h.server.stop();
            }
            let v = render(world, &st, req, &r);
            drop(st);
            ok(
                if existing.is_some() {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                &v,
            )
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
