//! Microsoft.Resources: subscriptions, resource groups, operation polling.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{ArmResult, Req, authorize, check_arm_version, empty, ok, versions, with_headers};
use crate::error::ArmError;
use crate::rbac;
use crate::util;
use crate::world::{ResourceGroup, State, World};

const RG_READ: &str = "Microsoft.Resources/subscriptions/resourceGroups/read";
const RG_WRITE: &str = "Microsoft.Resources/subscriptions/resourceGroups/write";
const RG_DELETE: &str = "Microsoft.Resources/subscriptions/resourceGroups/delete";

fn subscription_json(world: &World) -> Value {
    json!({
        "id": format!("/subscriptions/{}", world.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": world.subscription_id,
        "tenantId": world.tenant_id,
        "displayName": "mic fake subscription",
        "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
    })
}

pub(crate) fn list_subscriptions(world: &Arc<World>, req: &Req) -> ArmResult {
    check_arm_version(req, versions::SUBSCRIPTIONS)?;
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    // Only subscriptions the caller holds some role in are listed.
    let scope = format!("/subscriptions/{}", world.subscription_id);
    let visible = world.lock().role_assignments.values().any(|ra| {
        ra.principal_id.eq_ignore_ascii_case(&req.caller.oid)
            && (rbac::scope_covers(&ra.scope, &scope) || rbac::scope_covers(&scope, &ra.scope))
    });
    let value: Vec<Value> = if visible {
        vec![subscription_json(world)]
    } else {
        vec![]
    };
    ok(
        StatusCode::OK,
        &json!({"value": value, "count": {"type": "Total", "value": value.len()}}),
    )
}

pub(crate) fn subscription(world: &Arc<World>, req: &Req) -> ArmResult {
    check_arm_version(req, versions::SUBSCRIPTIONS)?;
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    authorize(
        world,
        req,
        "Microsoft.Resources/subscriptions/read",
        &req.path,
    )?;
    ok(StatusCode::OK, &subscription_json(world))
}

fn rg_json(world: &World, req: &Req, g: &ResourceGroup, state: &str) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "id".into(),
        json!(format!(
            "/subscriptions/{}/resourceGroups/{}",
            world.subscription_id, g.name
        )),
    );
    m.insert("name".into(), json!(g.name));
    // `type` appears in responses from 2018-05-01 on (the 2016-09-01 schema has no `type`).
    if req.is_new_api("2018-05-01") {
        m.insert("type".into(), json!("Microsoft.Resources/resourceGroups"));
    }
    m.insert("location".into(), json!(g.location));
    if let Some(mb) = &g.managed_by {
        m.insert("managedBy".into(), json!(mb));
    }
    if let Some(t) = &g.tags {
        m.insert("tags".into(), t.clone());
    }
    m.insert("properties".into(), json!({"provisioningState": state}));
    Value::Object(m)
}

pub(crate) fn list_groups(world: &Arc<World>, req: &Req) -> ArmResult {
    check_arm_version(req, versions::RESOURCE_GROUPS)?;
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    let filter = super::tagfilter::parse(req)?;
    // ARM filters the list to the groups the caller can read rather than failing.
    let groups: Vec<ResourceGroup> = world.lock().resource_groups.values().cloned().collect();
    let value: Vec<Value> = groups
        .iter()
        .filter(|g| {
            let scope = format!(
                "/subscriptions/{}/resourceGroups/{}",
                world.subscription_id, g.name
            );
            world.check(&req.caller.oid, RG_READ, &scope, false)
                && filter.as_ref().is_none_or(|f| f.matches(g.tags.as_ref()))
        })
        .map(|g| rg_json(world, req, g, "Succeeded"))
        .collect();
    ok(
        StatusCode::OK,
        &super::tagfilter::page(req, &world.arm_base(), value)?,
    )
}

pub(crate) fn group(world: &Arc<World>, req: &Req) -> ArmResult {
    check_arm_version(req, versions::RESOURCE_GROUPS)?;
    let name = super::rg_name(req);
    let key = name.to_ascii_lowercase();
    let scope = req.path.clone();
    match req.method {
        Method::GET | Method::HEAD => {
            authorize(world, req, RG_READ, &scope)?;
            let g = world.lock().resource_groups.get(&key).cloned();
            match (g, req.method == Method::HEAD) {
                (Some(_), true) => empty(StatusCode::NO_CONTENT),
                (None, true) => empty(StatusCode::NOT_FOUND),
                (Some(g), false) => ok(StatusCode::OK, &rg_json(world, req, &g, "Succeeded")),
                (None, false) => Err(super::rg_not_found(&name)),
            }
        }
        Method::PUT => {
            authorize(world, req, RG_WRITE, &scope)?;
            let body = req.json()?;
            let location = super::required_location(&body)?;
            let tags = super::tags_of(&body)?;
            if name.len() > 90
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
                || name.ends_with('.')
            {
                return Err(ArmError::bad_request(
                    "InvalidResourceGroupName",
                    format!(
                        "The provided resource group name '{name}' has these invalid characters: '{}'. The name can only be a letter, digit, '-', '.', '(', ')' or '_'.",
                        name.chars()
                            .filter(|c| !(c.is_alphanumeric() || "-_.()".contains(*c)))
                            .collect::<String>()
                    ),
                ));
            }
            let managed_by = body
                .get("managedBy")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut st = world.lock();
            let loc = super::norm_location(&location);
            if let Some(existing) = st.resource_groups.get_mut(&key) {
                if existing.location != loc {
                    return Err(ArmError::new(
                        StatusCode::CONFLICT,
                        "InvalidResourceGroupLocation",
                        format!(
                            "Invalid resource group location '{loc}'. The Resource group already exists in location '{}'.",
                            existing.location
                        ),
                    ));
                }
                existing.tags = tags;
                if managed_by.is_some() {
                    existing.managed_by = managed_by;
                }
                let g = existing.clone();
                drop(st);
                return ok(StatusCode::OK, &rg_json(world, req, &g, "Succeeded"));
            }
            let g = ResourceGroup {
                name: name.clone(),
                location: loc,
                tags,
                managed_by,
            };
            st.resource_groups.insert(key, g.clone());
            drop(st);
            ok(StatusCode::CREATED, &rg_json(world, req, &g, "Succeeded"))
        }
        Method::PATCH => {
            authorize(world, req, RG_WRITE, &scope)?;
            let body = req.json()?;
            let tags = super::tags_of(&body)?;
            let mut st = world.lock();
            let Some(g) = st.resource_groups.get_mut(&key) else {
                return Err(super::rg_not_found(&name));
            };
            if body.contains_key("tags") {
                g.tags = tags;
            }
            let g = g.clone();
            drop(st);
            ok(StatusCode::OK, &rg_json(world, req, &g, "Succeeded"))
        }
        Method::DELETE => {
            authorize(world, req, RG_DELETE, &scope)?;
            let mut st = world.lock();
            let Some(g) = st.resource_groups.remove(&key) else {
                return Err(super::rg_not_found(&name));
            };
            let rg_id = format!(
                "/subscriptions/{}/resourceGroups/{}",
                world.subscription_id, g.name
            );
            let ids: Vec<String> = st
                .resources
                .values()
                .filter(|r| r.resource_group.eq_ignore_ascii_case(&g.name))
                .map(|r| r.id.clone())
                .collect();
            for id in ids {
                purge(&mut st, &id);
            }
            st.role_assignments
                .retain(|_, ra| !rbac::scope_covers(&rg_id, &ra.scope));
            drop(st);
            // Deletion is applied at once; the operation URL reports 202 until lro_delay has passed.
            let op = world.start_operation();
            let location = format!(
                "{}/subscriptions/{}/operationresults/{op}?api-version={}",
                world.arm_base(),
                world.subscription_id,
                req.api_version
            );
            Ok(with_headers(
                axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
                &[
                    ("Location", location),
                    (
                        "Retry-After",
                        util::ceil_secs(world.config.lro_delay).max(1).to_string(),
                    ),
                ],
            ))
        }
        _ => Err(super::method_not_allowed(req)),
    }
}

/// Remove a resource, its children, the servers of its hosts, the principals it owns and
/// the role assignments at its scope and below.
pub(crate) fn purge(st: &mut State, id: &str) {
    let lower = id.to_ascii_lowercase();
    let prefix = format!("{lower}/");
    let doomed: Vec<String> = st
        .resources
        .keys()
        .filter(|k| **k == lower || k.starts_with(&prefix))
        .cloned()
        .collect();
    for key in doomed {
        crate::keyvault::forget(st, &key);
        crate::cosmos::forget(st, &key);
        crate::kudu::forget(st, &key);
        if let Some(r) = st.resources.remove(&key) {
            World::stop_hosts(st, &r.id);
            crate::datalake::on_purge(st, &r.id);
            if let Some(sys) = r.identity.as_ref().and_then(|i| i.system.as_ref()) {
                st.directory.remove(&sys.principal_id);
            }
            if let Some(u) = &r.uami {
                st.directory.remove(&u.principal_id);
            }
        }
    }
    st.role_assignments
        .retain(|_, ra| !rbac::scope_covers(id, &ra.scope));
    crate::sql::stop_under(st, id);
}

/// `Location` polling of a resource-group deletion: 202 while running, then 200.
pub(crate) fn operation_result(world: &Arc<World>, req: &Req, id: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    let op = world.lock().operations.get(id).cloned();
    let Some(op) = op else {
        return Err(ArmError::not_found(
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        ));
    };
    if world.now() < op.done_at {
        let r = axum::response::IntoResponse::into_response(StatusCode::ACCEPTED);
        return Ok(with_headers(
            r,
            &[
                (
                    "Location",
                    format!(
                        "{}{}?api-version={}",
                        world.arm_base(),
                        req.path,
                        req.api_version
                    ),
                ),
                ("Retry-After", "1".to_owned()),
            ],
        ));
    }
    empty(StatusCode::OK)
}

/// `Azure-AsyncOperation` status: `{status: InProgress|Succeeded}`.
pub(crate) fn operation_status(world: &Arc<World>, req: &Req, id: &str) -> ArmResult {
    if let Some(r) = super::runcommand::status(world, req, id) {
        return r;
    }
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    let op = world.lock().operations.get(id).cloned();
    let Some(op) = op else {
        return Err(ArmError::not_found(
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        ));
    };
    let now = world.now();
    if now < op.done_at {
        return ok(
            StatusCode::OK,
            &json!({"startTime": util::iso(op.started), "status": "InProgress", "name": id}),
        );
    }
    if req.param("monitor").is_some() {
        return empty(StatusCode::OK);
    }
    ok(
        StatusCode::OK,
        &json!({"startTime": util::iso(op.started), "endTime": util::iso(op.done_at), "status": "Succeeded", "name": id}),
    )
}
