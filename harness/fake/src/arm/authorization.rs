//! Microsoft.Authorization: role definitions (built-in) and role assignments at any scope.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, check_provider_version, empty, ok, versions};
use crate::error::ArmError;
use crate::rbac::{self, RoleAssignment, RoleDefinition};
use crate::util;
use crate::world::World;

pub(crate) fn handle(world: &Arc<World>, req: &Req, scope: &str, rest: &[String]) -> ArmResult {
    let lrest: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lrest: Vec<&str> = lrest.iter().map(String::as_str).collect();
    let scope = if scope.is_empty() { "/" } else { scope };
    match lrest.as_slice() {
        ["roleassignments"] => {
            check_provider_version(req, "global", "roleAssignments", versions::AUTHORIZATION)?;
            check_scope(world, scope)?;
            list_assignments(world, req, scope)
        }
        ["roleassignments", _] => {
            check_provider_version(req, "global", "roleAssignments", versions::AUTHORIZATION)?;
            check_scope(world, scope)?;
            assignment(world, req, scope, &rest[1])
        }
        ["roledefinitions"] => {
            check_provider_version(req, "global", "roleDefinitions", versions::AUTHORIZATION)?;
            check_scope(world, scope)?;
            list_definitions(world, req, scope)
        }
        ["roledefinitions", _] => {
            check_provider_version(req, "global", "roleDefinitions", versions::AUTHORIZATION)?;
            check_scope(world, scope)?;
            definition(world, req, scope, &rest[1])
        }
        _ => Err(ArmError::bad_request(
            "InvalidResourceType",
            format!(
                "The resource type '{}' could not be found in the namespace 'Microsoft.Authorization' for api version '{}'.",
                rest.first().map_or("", String::as_str),
                req.api_version
            ),
        )),
    }
}

/// The scope must be the root, the subscription, or something under it.
fn check_scope(world: &World, scope: &str) -> Result<(), ArmError> {
    if scope == "/" {
        return Ok(());
    }
    let segs: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    if segs
        .first()
        .is_none_or(|s| !s.eq_ignore_ascii_case("subscriptions"))
        || segs.len() < 2
    {
        return Err(ArmError::bad_request(
            "InvalidScope",
            format!("The scope '{scope}' is not valid."),
        ));
    }
    if !segs[1].eq_ignore_ascii_case(&world.subscription_id) {
        return Err(ArmError::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", segs[1]),
        ));
    }
    Ok(())
}

/// For writes: the resource group / resource the scope names must exist.
fn check_scope_exists(world: &World, scope: &str) -> Result<(), ArmError> {
    let segs: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    if segs.len() >= 4 && segs[2].eq_ignore_ascii_case("resourcegroups") {
        let st = world.lock();
        if !st
            .resource_groups
            .contains_key(&segs[3].to_ascii_lowercase())
        {
            return Err(super::rg_not_found(segs[3]));
        }
        if segs.len() >= 8
            && !st.resources.contains_key(&rbac::normalize_scope(scope))
            && !crate::blob::scope_exists(&st, scope)
            && !crate::keyvault::scope_exists(&st, scope)
        {
            let ty = segs[5..segs.len() - 1].join("/");
            return Err(super::resource_not_found(
                &ty,
                segs[segs.len() - 1],
                segs[3],
            ));
        }
    }
    Ok(())
}

fn role_definition_full_id(world: &World, scope: &str, guid: &str) -> String {
    if scope == "/" {
        format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}")
    } else {
        format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            world.subscription_id
        )
    }
}

fn assignment_json(world: &World, req: &Req, ra: &RoleAssignment) -> Value {
    let mut p = Map::new();
    p.insert(
        "roleDefinitionId".into(),
        json!(role_definition_full_id(
            world,
            "sub",
            &ra.role_definition_id
        )),
    );
    p.insert("principalId".into(), json!(ra.principal_id));
    if req.is_new_api("2018-09-01-preview") {
        p.insert("principalType".into(), json!(ra.principal_type));
    }
    p.insert("scope".into(), json!(ra.scope));
    if req.is_new_api("2020-04-01-preview") {
        p.insert("condition".into(), json!(ra.condition));
        p.insert("conditionVersion".into(), json!(ra.condition_version));
        p.insert("createdOn".into(), json!(util::iso(ra.created_at)));
        p.insert("updatedOn".into(), json!(util::iso(ra.updated_at)));
        p.insert("createdBy".into(), json!(ra.created_by));
        p.insert("updatedBy".into(), json!(ra.created_by));
        p.insert("delegatedManagedIdentityResourceId".into(), Value::Null);
        p.insert("description".into(), json!(ra.description));
    }
    json!({
        "properties": p,
        "id": ra.id(),
        "type": "Microsoft.Authorization/roleAssignments",
        "name": ra.name,
    })
}

fn definition_json(world: &World, req: &Req, scope: &str, r: &RoleDefinition) -> Value {
    let mut perm = Map::new();
    perm.insert("actions".into(), json!(r.actions));
    perm.insert("notActions".into(), json!(r.not_actions));
    // 2015-07-01's Permission has only actions / notActions.
    if req.is_new_api("2018-01-01-preview") {
        perm.insert("dataActions".into(), json!(r.data_actions));
        perm.insert("notDataActions".into(), json!(r.not_data_actions));
    }
    let mut p = Map::new();
    p.insert("roleName".into(), json!(r.role_name));
    p.insert("type".into(), json!("BuiltInRole"));
    p.insert(
        "description".into(),
        json!(format!("Built-in role {}", r.role_name)),
    );
    p.insert("assignableScopes".into(), json!(["/"]));
    p.insert("permissions".into(), json!([perm]));
    if req.is_new_api("2018-01-01-preview") {
        p.insert("createdOn".into(), json!("2015-02-02T21:55:09.8806423Z"));
        p.insert("updatedOn".into(), json!("2021-11-11T20:13:47.8628684Z"));
        p.insert("createdBy".into(), Value::Null);
        p.insert("updatedBy".into(), Value::Null);
    }
    json!({
        "properties": p,
        "id": role_definition_full_id(world, scope, &r.id),
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": r.id,
    })
}

/// The quoted value after `key eq '` in an OData filter.
fn filter_value(filter: &str, key: &str) -> Option<String> {
    let lower = filter.to_ascii_lowercase();
    let pat = format!("{} eq '", key.to_ascii_lowercase());
    let start = lower.find(&pat)? + pat.len();
    let end = filter[start..].find('\'')? + start;
    Some(filter[start..end].to_owned())
}

fn list_assignments(world: &Arc<World>, req: &Req, scope: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    authorize(
        world,
        req,
        "Microsoft.Authorization/roleAssignments/read",
        &req.path,
    )?;
    let filter = req.param("$filter").unwrap_or_default().to_owned();
    let at_scope = filter.to_ascii_lowercase().contains("atscope()");
    let principal = filter_value(&filter, "principalId").or_else(|| {
        let lower = filter.to_ascii_lowercase();
        let start = lower.find("assignedto('")? + "assignedto('".len();
        let end = filter[start..].find('\'')? + start;
        Some(filter[start..end].to_owned())
    });
    let list: Vec<RoleAssignment> = world.lock().role_assignments.values().cloned().collect();
    let value: Vec<Value> = list
        .iter()
        .filter(|ra| {
            let above_or_at = rbac::scope_covers(&ra.scope, scope);
            let below = rbac::scope_covers(scope, &ra.scope);
            (above_or_at || (!at_scope && below))
                && principal
                    .as_ref()
                    .is_none_or(|p| ra.principal_id.eq_ignore_ascii_case(p))
        })
        .map(|ra| assignment_json(world, req, ra))
        .collect();
    ok(StatusCode::OK, &json!({"value": value}))
}

fn assignment(world: &Arc<World>, req: &Req, scope: &str, name: &str) -> ArmResult {
    let id_key = format!(
        "{}/providers/microsoft.authorization/roleassignments/{}",
        rbac::normalize_scope(scope).trim_end_matches('/'),
        name.to_ascii_lowercase()
    );
    let id_key = if scope == "/" {
        format!(
            "/providers/microsoft.authorization/roleassignments/{}",
            name.to_ascii_lowercase()
        )
    } else {
        id_key
    };
    match req.method {
        Method::GET => {
            authorize(
                world,
                req,
                "Microsoft.Authorization/roleAssignments/read",
                &req.path,
            )?;
            let ra = world.lock().role_assignments.get(&id_key).cloned();
            match ra {
                Some(ra) => ok(StatusCode::OK, &assignment_json(world, req, &ra)),
                None => Err(ArmError::not_found(
                    "RoleAssignmentNotFound",
                    format!("The role assignment '{name}' is not found."),
                )),
            }
        }
        Method::DELETE => {
            authorize(
                world,
                req,
                "Microsoft.Authorization/roleAssignments/delete",
                &req.path,
            )?;
            let ra = world.lock().role_assignments.remove(&id_key);
            match ra {
                Some(ra) => ok(StatusCode::OK, &assignment_json(world, req, &ra)),
                None => empty(StatusCode::NO_CONTENT),
            }
        }
        Method::PUT => {
            authorize(
                world,
                req,
                "Microsoft.Authorization/roleAssignments/write",
                &req.path,
            )?;
            if !util::is_guid(name) {
                return Err(ArmError::bad_request(
                    "InvalidRoleAssignmentId",
                    format!(
                        "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
                    ),
                ));
            }
            check_scope_exists(world, scope)?;
            let body = req.json()?;
            let props = match body.get("properties") {
                Some(Value::Object(p)) => p.clone(),
                _ => {
                    return Err(ArmError::bad_request(
                        "InvalidRoleDefinitionId",
                        "The role definition ID '' is not valid.",
                    ));
                }
            };
            let rd = props
                .get("roleDefinitionId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let rd_guid = rd
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if !util::is_guid(rd_guid) {
                return Err(ArmError::bad_request(
                    "InvalidRoleDefinitionId",
                    format!("The role definition ID '{rd_guid}' is not valid."),
                ));
            }
            let Some(role) = rbac::role_by_id(rd_guid) else {
                return Err(ArmError::bad_request(
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{rd_guid}' does not exist."),
                ));
            };
            let principal = props
                .get("principalId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if !util::is_guid(&principal) {
                return Err(ArmError::bad_request(
                    "InvalidPrincipalId",
                    format!(
                        "The principal ID '{principal}' is not valid. Principal ID must be a GUID."
                    ),
                ));
            }
            let description = props
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let condition = props
                .get("condition")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let condition_version = props
                .get("conditionVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let now = world.now();
            let mut st = world.lock();
            let Some(sp) = st.directory.get(&principal).cloned() else {
                let tail = if req.is_new_api("2020-01-01") {
                    " Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype"
                } else {
                    ""
                };
                return Err(ArmError::bad_request(
                    "PrincipalNotFound",
                    format!(
                        "Principal {} does not exist in the directory {}.{tail}",
                        util::undash(&principal),
                        world.tenant_id
                    ),
                ));
            };
            if let Some(existing) = st.role_assignments.get_mut(&id_key) {
                if !existing.principal_id.eq_ignore_ascii_case(&sp.object_id)
                    || !existing.role_definition_id.eq_ignore_ascii_case(&role.id)
                {
                    return Err(ArmError::bad_request(
                        "RoleAssignmentUpdateNotPermitted",
                        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                    ));
                }
                existing.description = description;
                existing.condition = condition;
                existing.condition_version = condition_version;
                existing.updated_at = now;
                let ra = existing.clone();
                drop(st);
                // 2015-07-01 declares only 201.
                let status = if req.is_new_api("2018-01-01-preview") {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                return ok(status, &assignment_json(world, req, &ra));
            }
            let duplicate = st.role_assignments.values().any(|ra| {
                ra.principal_id.eq_ignore_ascii_case(&sp.object_id)
                    && ra.role_definition_id.eq_ignore_ascii_case(&role.id)
                    && rbac::normalize_scope(&ra.scope) == rbac::normalize_scope(scope)
            });
            if duplicate {
                return Err(ArmError::new(
                    StatusCode::CONFLICT,
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                ));
            }
            let ra = RoleAssignment {
                name: name.to_ascii_lowercase(),
                scope: scope.to_owned(),
                role_definition_id: role.id.clone(),
                principal_id: sp.object_id.clone(),
                principal_type: sp.principal_type().to_owned(),
                description,
                condition,
                condition_version,
                created_by: req.caller.oid.clone(),
                created_at: now,
                updated_at: now,
            };
            st.role_assignments.insert(id_key, ra.clone());
            drop(st);
            ok(StatusCode::CREATED, &assignment_json(world, req, &ra))
        }
        _ => Err(super::method_not_allowed(req)),
    }
}

fn list_definitions(world: &Arc<World>, req: &Req, scope: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    // Built-in role definitions are readable by every principal of the tenant (no RBAC
    // check), as `az role definition list` works for anyone signed in.
    let filter = req.param("$filter").unwrap_or_default();
    let name = filter_value(filter, "roleName");
    let ty = filter_value(filter, "type");
    let value: Vec<Value> = rbac::builtin_roles()
        .iter()
        .filter(|r| {
            name.as_ref()
                .is_none_or(|n| r.role_name.eq_ignore_ascii_case(n))
        })
        .filter(|_| {
            ty.as_ref()
                .is_none_or(|t| t.eq_ignore_ascii_case("BuiltInRole"))
        })
        .map(|r| definition_json(world, req, scope, r))
        .collect();
    ok(StatusCode::OK, &json!({"value": value}))
}

fn definition(world: &Arc<World>, req: &Req, scope: &str, id: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    // Built-in role definitions are readable by every principal of the tenant (no RBAC
    // check), as `az role definition list` works for anyone signed in.
    match rbac::role_by_id(id) {
        Some(r) => ok(StatusCode::OK, &definition_json(world, req, scope, r)),
        None => Err(ArmError::not_found(
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{id}' does not exist."),
        )),
    }
}
