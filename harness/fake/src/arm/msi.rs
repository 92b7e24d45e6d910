//! Microsoft.ManagedIdentity/userAssignedIdentities in the 2015-08-31-preview,
//! 2018-11-30 and 2023-01-31 shapes.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, empty, ok, versions};
use crate::directory::{PrincipalKind, ServicePrincipal};
use crate::error::ArmError;
use crate::util;
use crate::world::{Resource, UamiInfo, World};

const FULL: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// The MSI resource provider prints ids with a lower-case `resourcegroups` segment (as all
/// its examples do), unlike most providers.
fn msi_id(r: &Resource) -> String {
    r.id.replacen("/resourceGroups/", "/resourcegroups/", 1)
}

pub(crate) fn render(world: &World, req: &Req, r: &Resource) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(msi_id(r)));
    m.insert("location".into(), json!(r.location));
    m.insert("name".into(), json!(r.name));
    let u = r.uami.clone().unwrap_or(UamiInfo {
        principal_id: String::new(),
        client_id: String::new(),
    });
    let mut p = Map::new();
    p.insert("clientId".into(), json!(u.client_id));
    // 2015-08-31-preview only: the credentials URL of the MSI data plane.
    if req.api_version == "2015-08-31-preview" {
        p.insert(
            "clientSecretUrl".into(),
            json!(format!(
                "https://control-{}.identity.azure.net{}/credentials?tid={}&oid={}&aid={}",
                r.location,
                msi_id(r),
                world.tenant_id,
                u.principal_id,
                u.client_id
            )),
        );
    }
    p.insert("principalId".into(), json!(u.principal_id));
    p.insert("tenantId".into(), json!(world.tenant_id));
    m.insert("properties".into(), Value::Object(p));
    m.insert("tags".into(), r.tags.clone().unwrap_or_else(|| json!({})));
    m.insert("type".into(), json!(FULL));
    Value::Object(m)
}

pub(crate) fn identity(world: &Arc<World>, req: &Req) -> ArmResult {
    let super::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = super::target(world, req, FULL, "userAssignedIdentities", versions::MSI)?;
    let scope = req.path.clone();
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{FULL}/read"), &scope)?;
            let st = world.lock();
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            let Some(r) = st.resources.get(&key) else {
                return Err(super::resource_not_found(FULL, &name, &rg));
            };
            let v = render(world, req, r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT | Method::PATCH => {
            authorize(world, req, &format!("{FULL}/write"), &scope)?;
            let is_patch = req.method == Method::PATCH;
            let body = req.json()?;
            let tags = super::tags_of(&body)?;
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            if name.len() < 3
                || name.len() > 128
                || !name.chars().next().is_some_and(char::is_alphanumeric)
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ArmError::bad_request(
                    "InvalidResourceName",
                    format!(
                        "Resource name {name} is invalid. The name can be 3-128 characters long and can contain only alphanumeric characters, hyphens and underscores, and must start with a letter or number."
                    ),
                ));
            }
            let mut st = world.lock();
            let existing = st.resources.get(&key).cloned();
            // PATCH in 2015-08-31-preview takes a full Identity, so `location` is required there;
            // 2018-11-30+ take IdentityUpdate with nothing required.
            let location = if is_patch && req.api_version != "2015-08-31-preview" {
                match (&existing, body.get("location").and_then(Value::as_str)) {
                    (Some(e), _) => e.location.clone(),
                    (None, _) => return Err(super::resource_not_found(FULL, &name, &rg)),
                }
            } else {
                super::norm_location(&super::required_location(&body)?)
            };
            if is_patch && existing.is_none() {
                return Err(super::resource_not_found(FULL, &name, &rg));
            }
            let created = existing.is_none();
            let uami = existing
                .as_ref()
                .and_then(|e| e.uami.clone())
                .unwrap_or_else(|| {
                    let sp = ServicePrincipal {
                        object_id: util::guid(),
                        app_id: util::guid(),
                        display_name: name.clone(),
                        kind: PrincipalKind::UserAssigned,
                        resource_id: Some(id.clone()),
                        secret: None,
                        roles: Vec::new(),
                    };
                    let u = UamiInfo {
                        principal_id: sp.object_id.clone(),
                        client_id: sp.app_id.clone(),
                    };
                    st.directory.insert(sp);
                    u
                });
            let r = Resource {
                id: existing
                    .as_ref()
                    .map_or_else(|| id.clone(), |e| e.id.clone()),
                resource_group: existing
                    .as_ref()
                    .map_or_else(|| rg.clone(), |e| e.resource_group.clone()),
                rtype: FULL.to_owned(),
                name: existing
                    .as_ref()
                    .map_or_else(|| name.clone(), |e| e.name.clone()),
                location,
                tags: if body.contains_key("tags") || !is_patch {
                    tags
                } else {
                    existing.as_ref().and_then(|e| e.tags.clone())
                },
                properties: json!({}),
                extra: Map::new(),
                identity: None,
                uami: Some(uami),
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            st.resources.insert(key, r.clone());
            drop(st);
            ok(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &render(world, req, &r),
            )
        }
        Method::DELETE => {
            authorize(world, req, &format!("{FULL}/delete"), &scope)?;
            let mut st = world.lock();
            if !st.resources.contains_key(&key) {
                return empty(StatusCode::NO_CONTENT);
            }
            // Deleting an identity does not detach it from hosts (as in Azure); the hosts
            // simply can no longer get tokens for it.
            super::resources::purge(&mut st, &id);
            drop(st);
            empty(StatusCode::OK)
        }
        _ => Err(super::method_not_allowed(req)),
    }
}
