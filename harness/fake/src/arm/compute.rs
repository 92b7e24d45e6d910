//! Microsoft.Compute: virtual machines, scale sets (with managed identities) and VM
//! extensions (the legacy ManagedIdentityExtension starts the `/oauth2/token` endpoint).

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, check_provider_version, empty, ok, versions, with_headers};
use crate::directory::{PrincipalKind, ServicePrincipal};
use crate::error::{ArmError, json_response};
use crate::util;
use crate::world::{HostIdentity, HostKind, Resource, State, SystemIdentity, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostType {
    Vm,
    Vmss,
}

impl HostType {
    fn full(self) -> &'static str {
        match self {
            HostType::Vm => "Microsoft.Compute/virtualMachines",
            HostType::Vmss => "Microsoft.Compute/virtualMachineScaleSets",
        }
    }
    fn short(self) -> &'static str {
        match self {
            HostType::Vm => "virtualMachines",
            HostType::Vmss => "virtualMachineScaleSets",
        }
    }
}

/// Compute's answer to an identity type outside the closed enum.
fn bad_identity_type(value: &str) -> ArmError {
    ArmError::bad_request("InvalidRequestFormat", "Cannot parse the request.").with_details(json!([{
        "code": "InvalidJson",
        "message": format!("Error converting value \"{value}\" to type 'System.Nullable`1[Microsoft.Azure.Management.Compute.Models.ResourceIdentityType]'. Path 'identity.type'."),
    }]))
}

/// Parse `identity.type`. The enum is closed (`SystemAssigned`, `UserAssigned`,
/// `SystemAssigned, UserAssigned`, `None`), but the service parses it case-insensitively and
/// tolerates the missing space, which the docs rely on (`userAssigned`, `none`,
/// `SystemAssigned,UserAssigned`).
pub(crate) fn parse_identity_type(s: &str) -> Option<(bool, bool)> {
    let norm: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match norm.as_str() {
        "systemassigned" => Some((true, false)),
        "userassigned" => Some((false, true)),
        "systemassigned,userassigned" | "userassigned,systemassigned" => Some((true, true)),
        "none" => Some((false, false)),
        _ => None,
    }
}

/// Apply an `identity` block to a host. `dictionary_api`: the 2018-06-01+ `userAssignedIdentities`
/// map; otherwise the 2017-12-01 `identityIds` array (replacement semantics).
/// PATCH merges the map (`{}` adds, `null` removes); PUT replaces.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_identity(
    world: &World,
    st: &mut State,
    existing: Option<&HostIdentity>,
    identity: Option<&Value>,
    dictionary_api: bool,
    is_patch: bool,
    host_name: &str,
    host_id: &str,
) -> Result<Option<HostIdentity>, ArmError> {
    let identity = match identity {
        None => return Ok(existing.cloned()),
        Some(Value::Null) => return Ok(if is_patch { existing.cloned() } else { None }),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(bad_identity_type(&other.to_string())),
    };
    let (sys, user) = match identity.get("type") {
        Some(Value::String(t)) => parse_identity_type(t).ok_or_else(|| bad_identity_type(t))?,
        None | Some(Value::Null) => {
            return Err(ArmError::bad_request(
                "InvalidParameter",
                "The value of parameter identity.type is invalid.",
            ));
        }
        Some(other) => return Err(bad_identity_type(&other.to_string())),
    };
    let mut ids: Vec<String> = if is_patch {
        existing.map(|e| e.user.clone()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut given = false;
    if dictionary_api {
        match identity.get("userAssignedIdentities") {
            Some(Value::Object(map)) => {
                given = true;
                for (k, v) in map {
                    ids.retain(|x| !x.eq_ignore_ascii_case(k));
                    match v {
                        Value::Null => {}
                        Value::Object(_) => ids.push(k.clone()),
                        _ => {
                            return Err(ArmError::bad_request("InvalidRequestFormat", "Cannot parse the request.").with_details(json!([{
                                "code": "InvalidJson",
                                "message": format!("Unexpected value for user assigned identity '{k}'. Path 'identity.userAssignedIdentities'."),
                            }])));
                        }
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(ArmError::bad_request(
                    "InvalidRequestFormat",
                    "Cannot parse the request.",
                ));
            }
        }
    } else {
        match identity.get("identityIds") {
            Some(Value::Array(arr)) => {
                given = true;
                ids = Vec::new();
                for v in arr {
                    let Some(s) = v.as_str() else {
                        return Err(ArmError::bad_request(
                            "InvalidRequestFormat",
                            "Cannot parse the request.",
                        ));
                    };
                    if !ids.iter().any(|x| x.eq_ignore_ascii_case(s)) {
                        ids.push(s.to_owned());
                    }
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(ArmError::bad_request(
                    "InvalidRequestFormat",
                    "Cannot parse the request.",
                ));
            }
        }
    }
    if !given
        && !is_patch
        && let Some(e) = existing
    {
        ids.clone_from(&e.user);
    }
    if !user {
        ids.clear();
    } else if ids.is_empty() {
        return Err(ArmError::bad_request(
            "InvalidParameter",
            "The value of parameter identity.userAssignedIdentities is invalid. At least one user assigned identity must be specified when the identity type is 'UserAssigned'.",
        ));
    }
    // Every referenced user-assigned identity must exist.
    for id in &ids {
        let found = st
            .resources
            .get(&id.trim_end_matches('/').to_ascii_lowercase())
            .is_some_and(|r| r.uami.is_some());
        if !found {
            return Err(ArmError::bad_request(
                "FailedIdentityOperation",
                format!(
                    "Identity operation for resource '{host_id}' failed with error 'Failed to perform resource identity operation. Status: 'NotFound'. Response: '{{\"error\":{{\"code\":\"InvalidUserAssignedIdentity\",\"message\":\"Resource '{id}' was not found.\"}}}}'.'."
                ),
            ));
        }
    }
    let system = if sys {
        match existing.and_then(|e| e.system.clone()) {
            Some(s) if st.directory.get(&s.principal_id).is_some() => Some(s),
            _ => {
                let sp = ServicePrincipal {
                    object_id: util::guid(),
                    app_id: util::guid(),
                    display_name: host_name.to_owned(),
                    kind: PrincipalKind::SystemAssigned,
                    resource_id: Some(host_id.to_owned()),
                    secret: None,
                    roles: Vec::new(),
                };
                let s = SystemIdentity {
                    principal_id: sp.object_id.clone(),
                    client_id: sp.app_id.clone(),
                };
                st.directory.insert(sp);
                Some(s)
            }
        }
    } else {
        if let Some(old) = existing.and_then(|e| e.system.as_ref()) {
            st.directory.remove(&old.principal_id);
        }
        None
    };
    let _ = world;
    if system.is_none() && ids.is_empty() {
        return Ok(None);
    }
    Ok(Some(HostIdentity { system, user: ids }))
}

/// The `identity` block in the requested version's shape.
pub(crate) fn identity_json(
    world: &World,
    st: &State,
    idn: Option<&HostIdentity>,
    dictionary_api: bool,
) -> Value {
    let Some(idn) = idn else {
        return json!({"type": "None"});
    };
    let mut m = Map::new();
    m.insert("type".into(), json!(idn.type_string()));
    if let Some(sys) = &idn.system {
        m.insert("principalId".into(), json!(sys.principal_id));
        m.insert("tenantId".into(), json!(world.tenant_id));
    }
    if !idn.user.is_empty() {
        if dictionary_api {
            let mut d = Map::new();
            for id in &idn.user {
                let facts = st
                    .resources
                    .get(&id.to_ascii_lowercase())
                    .and_then(|r| r.uami.clone());
                d.insert(
                    id.clone(),
                    match facts {
                        Some(u) => json!({"principalId": u.principal_id, "clientId": u.client_id}),
                        None => json!({}),
                    },
                );
            }
            m.insert("userAssignedIdentities".into(), Value::Object(d));
        } else {
            m.insert("identityIds".into(), json!(idn.user));
        }
    }
    Value::Object(m)
}

fn provisioning_state(world: &World, r: &Resource) -> &'static str {
    match r.busy_until {
        Some((until, state)) if world.now() < until => state,
        _ => "Succeeded",
    }
}

pub(crate) fn render(world: &World, st: &State, req: &Req, r: &Resource) -> Value {
    let mut m = super::resource_head(r);
    let dictionary_api = req.is_new_api("2018-06-01");
    if r.identity.is_some() {
        m.insert(
            "identity".into(),
            identity_json(world, st, r.identity.as_ref(), dictionary_api),
        );
    }
    let mut props = r.properties.as_object().cloned().unwrap_or_default();
    let id_key = if r.rtype.ends_with("ScaleSets") {
        "uniqueId"
    } else {
        "vmId"
    };
    props.insert(id_key.into(), json!(r.unique_id));
    props.insert(
        "provisioningState".into(),
        json!(provisioning_state(world, r)),
    );
    m.insert("properties".into(), Value::Object(props));
    Value::Object(m)
}

fn host_id(world: &World, req: &Req, ty: HostType) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{}/{}",
        world.subscription_id,
        super::rg_name(req),
        ty.full(),
        req.segs[7]
    )
}

pub(crate) fn host(world: &Arc<World>, req: &Req, ty: HostType) -> ArmResult {
    let rg = super::rg_name(req);
    let rg_loc = world
        .lock()
        .resource_groups
        .get(&rg.to_ascii_lowercase())
        .map(|g| g.location.clone());
    check_provider_version(
        req,
        rg_loc.as_deref().unwrap_or(&world.config.location),
        ty.short(),
        versions::COMPUTE,
    )?;
    let scope = req.path.clone();
    let id = host_id(world, req, ty);
    let key = id.to_ascii_lowercase();
    let name = req.segs[7].clone();
    let dictionary_api = req.is_new_api("2018-06-01");
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{}/read", ty.full()), &scope)?;
            let st = world.lock();
            if !st.resource_groups.contains_key(&rg.to_ascii_lowercase()) {
                return Err(super::rg_not_found(&rg));
            }
            let Some(r) = st.resources.get(&key) else {
                return Err(super::resource_not_found(ty.full(), &name, &rg));
            };
            let v = render(world, &st, req, r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT | Method::PATCH => {
            authorize(world, req, &format!("{}/write", ty.full()), &scope)?;
            let is_patch = req.method == Method::PATCH;
            let body = req.json()?;
            let tags = super::tags_of(&body)?;
            let mut st = world.lock();
            let Some(rg_loc) = rg_loc else {
                return Err(super::rg_not_found(&rg));
            };
            let existing = st.resources.get(&key).cloned();
            if is_patch && existing.is_none() {
                return Err(super::resource_not_found(ty.full(), &name, &rg));
            }
            let location = if is_patch {
                existing.as_ref().map_or(rg_loc, |e| e.location.clone())
            } else {
                super::norm_location(&super::required_location(&body)?)
            };
            if let Some(p) = body.get("properties")
                && !p.is_object()
                && !p.is_null()
            {
                {
                    return Err(ArmError::bad_request(
                        "InvalidRequestFormat",
                        "Cannot parse the request.",
                    ));
                }
            }
            let identity = apply_identity(
                world,
                &mut st,
                existing.as_ref().and_then(|e| e.identity.as_ref()),
                body.get("identity"),
                dictionary_api,
                is_patch,
                &name,
                &id,
            )?;
            let mut properties = existing
                .as_ref()
                .map_or_else(|| json!({}), |e| e.properties.clone());
            if let Some(Value::Object(p)) = body.get("properties") {
                if is_patch {
                    if let Some(obj) = properties.as_object_mut() {
                        for (k, v) in p {
                            obj.insert(k.clone(), v.clone());
                        }
                    }
                } else {
                    properties = Value::Object(p.clone());
                }
            }
            if let Some(obj) = properties.as_object_mut() {
                obj.remove("provisioningState");
                obj.remove("vmId");
                obj.remove("uniqueId");
            }
            let mut extra = existing
                .as_ref()
                .map(|e| e.extra.clone())
                .unwrap_or_default();
            for k in ["sku", "zones", "plan"] {
                if let Some(v) = body.get(k) {
                    extra.insert(k.to_owned(), v.clone());
                }
            }
            let created = existing.is_none();
            let delay = world.lro_delay_for(ty.full());
            let busy = if delay.is_zero() {
                None
            } else {
                Some((
                    world.now() + delay,
                    if created { "Creating" } else { "Updating" },
                ))
            };
            let r = Resource {
                id: id.clone(),
                resource_group: existing
                    .as_ref()
                    .map_or_else(|| rg.clone(), |e| e.resource_group.clone()),
                rtype: ty.full().to_owned(),
                name: existing
                    .as_ref()
                    .map_or_else(|| name.clone(), |e| e.name.clone()),
                location: location.clone(),
                tags: if body.contains_key("tags") {
                    tags
                } else {
                    existing.as_ref().and_then(|e| e.tags.clone())
                },
                properties,
                extra,
                identity,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: busy,
            };
            st.resources.insert(key, r.clone());
            // Every VM / scale set gets an IMDS endpoint.
            crate::imds::start_host(world, &mut st, &id, HostKind::Imds);
            let v = render(world, &st, req, &r);
            drop(st);
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let headers = super::lro_headers(world, req, "Microsoft.Compute", &location, false);
            Ok(with_headers(json_response(status, &v), &headers))
        }
        Method::DELETE => {
            authorize(world, req, &format!("{}/delete", ty.full()), &scope)?;
            let mut st = world.lock();
            let Some(r) = st.resources.get(&key).cloned() else {
                return empty(StatusCode::NO_CONTENT);
            };
            super::resources::purge(&mut st, &r.id);
            drop(st);
            let headers = super::lro_headers(world, req, "Microsoft.Compute", &r.location, true);
            Ok(with_headers(
                axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
                &headers,
            ))
        }
        _ => Err(super::method_not_allowed(req)),
    }
}

const MI_EXTENSIONS: &[&str] = &[
    "ManagedIdentityExtensionForWindows",
    "ManagedIdentityExtensionForLinux",
];

pub(crate) fn render_extension(world: &World, r: &Resource) -> Value {
    let mut m = super::resource_head(r);
    let mut props = r.properties.as_object().cloned().unwrap_or_default();
    props.insert(
        "provisioningState".into(),
        json!(provisioning_state(world, r)),
    );
    m.insert("properties".into(), Value::Object(props));
    Value::Object(m)
}

pub(crate) fn list_extensions(world: &Arc<World>, req: &Req) -> ArmResult {
    check_provider_version(
        req,
        &world.config.location,
        "virtualMachines/extensions",
        versions::COMPUTE,
    )?;
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    authorize(
        world,
        req,
        "Microsoft.Compute/virtualMachines/extensions/read",
        &req.path,
    )?;
    let prefix = format!(
        "{}/",
        host_id(world, req, HostType::Vm).to_ascii_lowercase()
    );
    let st = world.lock();
    let value: Vec<Value> = st
        .resources
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, r)| render_extension(world, r))
        .collect();
    drop(st);
    ok(StatusCode::OK, &json!({"value": value}))
}

pub(crate) fn extension(world: &Arc<World>, req: &Req) -> ArmResult {
    check_provider_version(
        req,
        &world.config.location,
        "virtualMachines/extensions",
        versions::COMPUTE,
    )?;
    let vm_id = host_id(world, req, HostType::Vm);
    let vm_name = req.segs[7].clone();
    let ext_name = req.segs[9].clone();
    let id = format!("{vm_id}/extensions/{ext_name}");
    let key = id.to_ascii_lowercase();
    let rg = super::rg_name(req);
    let full = "Microsoft.Compute/virtualMachines/extensions";
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{full}/read"), &req.path)?;
            let st = world.lock();
            match st.resources.get(&key) {
                Some(r) => {
                    let v = render_extension(world, r);
                    drop(st);
                    ok(StatusCode::OK, &v)
                }
                None => Err(super::resource_not_found(
                    full,
                    &format!("{vm_name}/{ext_name}"),
                    &rg,
                )),
            }
        }
        Method::PUT | Method::PATCH => {
            authorize(world, req, &format!("{full}/write"), &req.path)?;
            let body = req.json()?;
            let mut st = world.lock();
            let Some(vm) = st.resources.get(&vm_id.to_ascii_lowercase()).cloned() else {
                return Err(ArmError::not_found(
                    "ParentResourceNotFound",
                    format!(
                        "Can not perform requested operation on nested resource. Parent resource '{vm_name}' not found."
                    ),
                ));
            };
            let existing = st.resources.get(&key).cloned();
            let mut props = existing
                .as_ref()
                .map_or_else(|| json!({}), |e| e.properties.clone());
            match body.get("properties") {
                Some(Value::Object(p)) => {
                    if let Some(obj) = props.as_object_mut() {
                        for (k, v) in p {
                            obj.insert(k.clone(), v.clone());
                        }
                    }
                }
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(ArmError::bad_request(
                        "InvalidRequestFormat",
                        "Cannot parse the request.",
                    ));
                }
            }
            let ext_type = props
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or(&ext_name)
                .to_owned();
            let r = Resource {
                id: id.clone(),
                resource_group: vm.resource_group.clone(),
                rtype: full.to_owned(),
                name: ext_name.clone(),
                location: vm.location.clone(),
                tags: super::tags_of(&body)?,
                properties: props,
                extra: Map::new(),
                identity: None,
                uami: None,
                unique_id: util::guid(),
                created: world.now(),
                busy_until: None,
            };
            st.resources.insert(key, r.clone());
            if MI_EXTENSIONS
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&ext_type))
            {
                crate::imds::start_host(world, &mut st, &vm.id, HostKind::Extension);
            }
            drop(st);
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let headers = super::lro_headers(world, req, "Microsoft.Compute", &vm.location, false);
            Ok(with_headers(
                json_response(status, &render_extension(world, &r)),
                &headers,
            ))
        }
        Method::DELETE => {
            authorize(world, req, &format!("{full}/delete"), &req.path)?;
            let mut st = world.lock();
            let Some(r) = st.resources.remove(&key) else {
                return empty(StatusCode::NO_CONTENT);
            };
            let still = st.resources.iter().any(|(k, e)| {
                k.starts_with(&format!("{}/extensions/", vm_id.to_ascii_lowercase()))
                    && MI_EXTENSIONS.iter().any(|t| {
                        e.properties
                            .get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(t))
                    })
            });
            if !still
                && let Some(h) = st
                    .hosts
                    .remove(&crate::world::host_key(&vm_id, &HostKind::Extension))
            {
                h.server.stop();
            }
            drop(st);
            let headers = super::lro_headers(world, req, "Microsoft.Compute", &r.location, true);
            Ok(with_headers(
                axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
                &headers,
            ))
        }
        _ => Err(super::method_not_allowed(req)),
    }
}
