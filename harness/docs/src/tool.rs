//! Replaying CLI and PowerShell commands.
//!
//! A docs example that prints `az identity create -g rg -n id` or
//! `New-AzRoleAssignment -ObjectId $spID -RoleDefinitionName Reader -Scope ...` does not show
//! the requests; the tool makes them. The checker replays what the *current* tools send
//! (az CLI 2.6x, Az PowerShell 12: their api-versions (pinned in [`api_version`]), the look-ups they make before the
//! write: role name -> role definition id, `--assignee` -> object id, the VM's current
//! identity before `az vm identity assign`), and turns the service's answer into what the
//! tool prints (az: the resource with `properties` flattened and `resourceGroup` added;
//! PowerShell: the object's properties), so that the example output the doc prints after
//! the command can be compared with what a reader would see today.
//!
//! AzureRM cmdlets are retired; they are replayed as their Az twins.

use crate::exec::{ExecResponse, Executor, ResolvedRequest, resolve};
use crate::op::{Action, DocOperation, split_url};
use crate::placeholder::{World, looks_like_guid};
use crate::specs::Service;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

/// The api-version the current tools send for a resource type.
pub fn api_version(resource_type: &str) -> Option<&'static str> {
    let t = resource_type.to_ascii_lowercase();
    Some(match t.as_str() {
        "microsoft.resources/resourcegroups" => "2024-03-01",
        "microsoft.managedidentity/userassignedidentities" => "2023-01-31",
        "microsoft.authorization/roleassignments" | "microsoft.authorization/roledefinitions" => {
            "2022-04-01"
        }
        t if t.starts_with("microsoft.compute/") => "2024-03-01",
        _ => return None,
    })
}

/// What the tool prints after the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// az: the resource JSON, `properties` flattened into the top level when the SDK model
    /// flattens it, `resourceGroup` added.
    AzResource { flatten: bool },
    /// az: `value` of a list, each item as [`Output::AzResource`].
    AzList { flatten: bool },
    /// `az vm create`: the summary object (id, identity, location, resourceGroup, power state,
    /// network facts).
    AzVmCreate,
    /// `az vm identity assign`: `systemAssignedIdentity` and `userAssignedIdentities`.
    AzVmIdentity,
    /// `az vm identity show`: the VM's `identity` object.
    AzIdentityShow,
    /// `az login --identity`: the subscriptions the identity can see.
    AzLogin,
    /// `New-/Get-AzUserAssignedIdentity`.
    PsIdentity,
    /// `New-/Get-AzResourceGroup`.
    PsResourceGroup,
    /// `Get-AzVM`, `Get-AzVmss`.
    PsVm,
    /// `New-AzRoleAssignment`.
    PsRoleAssignment,
    /// `Update-AzVM`, `Set-AzVMExtension`...: the operation result.
    PsUpdate,
    /// `Connect-AzAccount -Identity`.
    PsLogin,
    /// The command prints nothing.
    Nothing,
    /// Data-plane and directory commands ([`crate::tool_data`]).
    Data(crate::tool_data::DataOutput),
}

impl Output {
    pub fn is_powershell(self) -> bool {
        matches!(
            self,
            Output::PsIdentity
                | Output::PsResourceGroup
                | Output::PsVm
                | Output::PsRoleAssignment
                | Output::PsUpdate
                | Output::PsLogin
                | Output::Data(
                    crate::tool_data::DataOutput::PsBlob
                        | crate::tool_data::DataOutput::PsAdGroup
                        | crate::tool_data::DataOutput::PsAdServicePrincipal
                        | crate::tool_data::DataOutput::PsStorageContext
                        | crate::tool_data::DataOutput::PsNothing
                )
        )
    }
}

/// A request the tool makes before its main request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "lookup", rename_all = "kebab-case")]
pub enum Lookup {
    /// Role name (or id) at a scope -> role definition id, into `properties.roleDefinitionId`.
    RoleDefinition { scope: String, role: String },
    /// `--assignee` / `-ObjectId` -> the service principal (Graph), into
    /// `properties.principalId`.
    Principal { value: String },
    /// Read the resource (GET, same URL) and merge the identity change into the body.
    MergeIdentity {
        system: bool,
        user: Vec<String>,
        remove: bool,
    },
}

/// How to replay a command: look-ups, then the operation's request, then the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    pub tool: &'static str,
    pub lookups: Vec<Lookup>,
    pub output: Output,
}

/// Result of replaying one command.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The main request's answer (or the failed look-up's).
    pub outcome: Result<ExecResponse, String>,
    /// What the tool prints, when the command succeeded.
    pub output: Option<Value>,
    /// The tool stopped with its own error (e.g. role not found) before the main request.
    pub tool_error: Option<String>,
    pub unresolved: Vec<String>,
}

fn get(url: String, service: Service, resource_type: &str, line: usize) -> ResolvedRequest {
    ResolvedRequest {
        method: "GET".into(),
        url,
        headers: vec![("Authorization".into(), "Bearer <ACCESS TOKEN>".into())],
        body: None,
        service,
        action: Action::Arm {
            resource_type: resource_type.into(),
            action: format!("{resource_type}/read"),
        },
        inferred: true,
        line,
        unresolved: Vec::new(),
    }
}

fn fill_token(mut r: ResolvedRequest, world: &World) -> ResolvedRequest {
    for (_, v) in &mut r.headers {
        *v = world.substitute(v).0;
    }
    r.url = world.substitute(&r.url).0;
    r
}

fn json_of(resp: &ExecResponse) -> Value {
    serde_json::from_str(&resp.body).unwrap_or(Value::Null)
}

fn set_property(body: &mut Value, key: &str, v: Value) {
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert(key.into(), v);
    }
}

/// A GUID for a new role assignment, stable for a given request (the world is fresh per run).
fn new_guid(seed: &str) -> String {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    let a = h.finish();
    "mic-docs".hash(&mut h);
    let b = h.finish();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn arm_base(url: &str) -> String {
    let p = split_url(url);
    format!("{}://{}", p.scheme, p.host)
}

/// Replay a command-derived operation through the executor.
pub fn replay(op: &DocOperation, replay: &Replay, world: &World, exec: &dyn Executor) -> Replayed {
    if let Output::Data(d) = replay.output {
        return crate::tool_data::replay(op, d, world, exec);
    }
    let mut op = op.clone();
    if op.url.contains("<NEW GUID>") {
        let g = new_guid(&format!("{}{}", op.line, op.url));
        op.url = op.url.replace("<NEW GUID>", &g);
    }
    let mut req = resolve(&op, world);
    let fail = |outcome: Result<ExecResponse, String>, req: &ResolvedRequest| Replayed {
        outcome,
        output: None,
        tool_error: None,
        unresolved: req.unresolved.clone(),
    };
    let tool_error = |msg: String, req: &ResolvedRequest| Replayed {
        outcome: Err(msg.clone()),
        output: None,
        tool_error: Some(msg),
        unresolved: req.unresolved.clone(),
    };
    let mut facts = Map::new();
    let needs = |v: &str| -> Option<String> {
        let (_, missing) = world.substitute(v);
        (!missing.is_empty()).then(|| {
            format!(
                "needs {} which the scenario world does not provide",
                missing.join(", ")
            )
        })
    };
    for l in &replay.lookups {
        let input = match l {
            Lookup::RoleDefinition { scope, role } => format!("{scope} {role}"),
            Lookup::Principal { value } => value.clone(),
            Lookup::MergeIdentity { user, .. } => user.join(" "),
        };
        if let Some(why) = needs(&input) {
            return fail(Err(why), &req);
        }
        if input.contains('$') {
            return fail(
                Err(format!(
                    "needs the PowerShell variable in `{input}`, which no earlier block sets"
                )),
                &req,
            );
        }
        match l {
            Lookup::RoleDefinition { scope, role } => {
                let scope = world.substitute(scope).0;
                let id = if looks_like_guid(role) {
                    format!(
                        "{}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                        scope.trim_end_matches('/')
                    )
                } else if role.to_ascii_lowercase().contains("/roledefinitions/") {
                    role.clone()
                } else {
                    let url = format!(
                        "{}{}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20%27{}%27&api-version=2022-04-01",
                        arm_base(&req.url),
                        scope.trim_end_matches('/'),
                        role.replace(' ', "%20")
                    );
                    let r = fill_token(
                        get(
                            url,
                            Service::Arm,
                            "Microsoft.Authorization/roleDefinitions",
                            op.line,
                        ),
                        world,
                    );
                    match exec.execute(&r) {
                        Ok(resp) if resp.status < 400 => {
                            let v = json_of(&resp);
                            match v["value"][0]["id"].as_str() {
                                Some(id) => {
                                    facts.insert("roleName".into(), json!(role));
                                    id.to_string()
                                }
                                None => {
                                    return tool_error(
                                        format!("Role '{role}' doesn't exist."),
                                        &req,
                                    );
                                }
                            }
                        }
                        other => return fail(other, &req),
                    }
                };
                facts.insert("roleDefinitionId".into(), json!(id));
            }
            Lookup::Principal { value } => {
                let value = world.substitute(value).0;
                let tenant = world
                    .get("tenant_id")
                    .unwrap_or("myorganization")
                    .to_string();
                let mut found = None;
                for prop in ["objectId", "appId"] {
                    let url = format!(
                        "https://graph.windows.net/{tenant}/servicePrincipals?$filter={prop}%20eq%20%27{value}%27&api-version=1.6"
                    );
                    let mut r = fill_token(
                        get(
                            url,
                            Service::Graph,
                            "Microsoft.Graph/servicePrincipals",
                            op.line,
                        ),
                        world,
                    );
                    r.action = Action::DataPlane {
                        what: "Graph service principal look-up".into(),
                    };
                    match exec.execute(&r) {
                        Ok(resp) if resp.status < 400 => {
                            let v = json_of(&resp);
                            if let Some(sp) = v["value"].get(0) {
                                found = Some(sp.clone());
                                break;
                            }
                        }
                        Ok(resp) if resp.status == 400 => {}
                        other => return fail(other, &req),
                    }
                }
                let Some(sp) = found else {
                    return tool_error(
                        format!(
                            "Cannot find user or service principal in graph database for '{value}'."
                        ),
                        &req,
                    );
                };
                facts.insert("principalId".into(), sp["objectId"].clone());
                facts.insert("displayName".into(), sp["displayName"].clone());
            }
            Lookup::MergeIdentity {
                system,
                user,
                remove,
            } => {
                let mut r = req.clone();
                r.method = "GET".into();
                r.body = None;
                let current = match exec.execute(&r) {
                    Ok(resp) if resp.status < 400 => json_of(&resp),
                    other => return fail(other, &req),
                };
                // Names (`--identities myId`) are ids in the VM's resource group.
                let rg_path = split_url(&req.url).path;
                let rg_path = rg_path
                    .to_ascii_lowercase()
                    .find("/providers/")
                    .map_or(rg_path.as_str(), |i| &rg_path[..i])
                    .to_string();
                let user: Vec<String> = user
                    .iter()
                    .map(|u| {
                        let u = world.substitute(u).0;
                        if u.starts_with('/') {
                            u
                        } else {
                            format!(
                                "{rg_path}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{u}"
                            )
                        }
                    })
                    .collect();
                let merged = merge_identity(&current["identity"], *system, &user, *remove);
                let mut body: Value = req
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or_else(|| json!({}));
                body["identity"] = merged;
                req.body = Some(body.to_string());
            }
        }
    }
    if let Some(b) = req.body.as_deref()
        && let Ok(mut body) = serde_json::from_str::<Value>(b)
        && body.get("properties").is_some()
        && (facts.contains_key("roleDefinitionId") || facts.contains_key("principalId"))
    {
        if let Some(id) = facts.get("roleDefinitionId") {
            set_property(&mut body, "roleDefinitionId", id.clone());
        }
        if let Some(p) = facts.get("principalId") {
            set_property(&mut body, "principalId", p.clone());
            set_property(&mut body, "principalType", json!("ServicePrincipal"));
        }
        req.body = Some(body.to_string());
    }
    let mut outcome = exec.execute(&req);
    if let Ok(resp) = &outcome
        && resp.status == 409
        && resp.body.contains("RoleAssignmentExists")
        && let Some(existing) = existing_assignment(&req, exec)
    {
        outcome = Ok(existing);
    }
    let mut output = None;
    if let Ok(resp) = &outcome
        && resp.status < 400
    {
        let v = json_of(resp);
        output = match replay.output {
            Output::AzLogin => Some(az_login(&req, &v, world, exec)),
            Output::PsLogin => Some(ps_login(&req, world)),
            o => project(o, &v, &facts, resp),
        };
    }
    Replayed {
        outcome,
        output,
        tool_error: None,
        unresolved: req.unresolved,
    }
}

/// The scenario world grants some roles up front (so that token examples work): when an
/// example's role assignment already exists, compare the existing one.
fn existing_assignment(req: &ResolvedRequest, exec: &dyn Executor) -> Option<ExecResponse> {
    let body: Value = serde_json::from_str(req.body.as_deref()?).ok()?;
    let principal = body["properties"]["principalId"].as_str()?;
    let role = body["properties"]["roleDefinitionId"].as_str()?;
    let lower = req.url.to_ascii_lowercase();
    let cut = lower.find("/providers/microsoft.authorization/roleassignments/")?;
    let url = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20%27{principal}%27&api-version=2022-04-01",
        &req.url[..cut]
    );
    let mut r = req.clone();
    r.method = "GET".into();
    r.url = url;
    r.body = None;
    let resp = exec.execute(&r).ok().filter(|x| x.status == 200)?;
    let list = json_of(&resp);
    let scope_path = split_url(&req.url[..cut]).path.to_ascii_lowercase();
    let found = list["value"].as_array()?.iter().find(|a| {
        let p = &a["properties"];
        p["roleDefinitionId"]
            .as_str()
            .is_some_and(|x| x.eq_ignore_ascii_case(role))
            && p["scope"].as_str().is_some_and(|x| {
                x.trim_end_matches('/')
                    .eq_ignore_ascii_case(scope_path.trim_end_matches('/'))
            })
    })?;
    Some(ExecResponse {
        status: 200,
        headers: resp.headers.clone(),
        body: found.to_string(),
    })
}

/// `az vm identity assign/remove` and friends: the identity after the change.
fn merge_identity(current: &Value, system: bool, user: &[String], remove: bool) -> Value {
    let ty = current["type"]
        .as_str()
        .unwrap_or("None")
        .to_ascii_lowercase();
    let mut has_system = ty.contains("systemassigned");
    let mut users: Vec<String> = current["userAssignedIdentities"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut removed = Vec::new();
    if remove {
        if system {
            has_system = false;
        }
        for u in user {
            if let Some(i) = users.iter().position(|x| x.eq_ignore_ascii_case(u)) {
                removed.push(users.remove(i));
            }
        }
    } else {
        has_system |= system;
        for u in user {
            if !users.iter().any(|x| x.eq_ignore_ascii_case(u)) {
                users.push(u.clone());
            }
        }
    }
    let ty = match (has_system, users.is_empty()) {
        (true, false) => "SystemAssigned, UserAssigned",
        (true, true) => "SystemAssigned",
        (false, false) => "UserAssigned",
        (false, true) => "None",
    };
    let mut out = json!({ "type": ty });
    if !users.is_empty() || !removed.is_empty() {
        let mut m = Map::new();
        for u in users {
            m.insert(u, json!({}));
        }
        for u in removed {
            m.insert(u, Value::Null);
        }
        out["userAssignedIdentities"] = Value::Object(m);
    }
    out
}

/// The resource group named in a resource id.
fn resource_group(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| parts.get(i + 1))
        .map(|s| (*s).to_string())
}

/// az's rendering of a resource: `properties` flattened (when the SDK model does), and
/// `resourceGroup` added from the id.
fn az_resource(v: &Value, flatten: bool) -> Value {
    let Value::Object(o) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, val) in o {
        if flatten && k == "properties" {
            if let Value::Object(p) = val {
                for (pk, pv) in p {
                    out.insert(pk.clone(), pv.clone());
                }
            }
        } else {
            out.insert(k.clone(), val.clone());
        }
    }
    if let Some(rg) = o.get("id").and_then(Value::as_str).and_then(resource_group)
        && !out.contains_key("resourceGroup")
        && o.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups"))
    {
        out.insert("resourceGroup".into(), json!(rg));
    }
    Value::Object(out)
}

fn user_identities_summary(identity: &Value) -> Value {
    match identity["userAssignedIdentities"].as_object() {
        Some(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({"clientId": v["clientId"], "principalId": v["principalId"]}),
                    )
                })
                .collect(),
        ),
        None => json!({}),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

fn project(o: Output, v: &Value, facts: &Map<String, Value>, resp: &ExecResponse) -> Option<Value> {
    let props = &v["properties"];
    Some(match o {
        Output::Nothing | Output::AzLogin | Output::PsLogin | Output::Data(_) => return None,
        Output::AzResource { flatten } => az_resource(v, flatten),
        Output::AzList { flatten } => Value::Array(
            v["value"]
                .as_array()
                .map(|a| a.iter().map(|x| az_resource(x, flatten)).collect())
                .unwrap_or_default(),
        ),
        Output::AzVmCreate => {
            let identity = &v["identity"];
            let id_summary = if identity.is_null() {
                Value::Null
            } else {
                json!({
                    "systemAssignedIdentity": identity["principalId"].as_str().unwrap_or(""),
                    "userAssignedIdentities": user_identities_summary(identity),
                })
            };
            // Network facts come from resources `az vm create` also deploys (NIC, public
            // IP); the replay does not create them: `...` matches any value the doc shows.
            json!({
                "fqdns": "...",
                "id": v["id"],
                "identity": id_summary,
                "location": v["location"],
                "macAddress": "...",
                "powerState": "VM running",
                "privateIpAddress": "...",
                "publicIpAddress": "...",
                "resourceGroup": v["id"].as_str().and_then(resource_group),
                "zones": "",
            })
        }
        Output::AzVmIdentity => {
            let identity = &v["identity"];
            json!({
                "systemAssignedIdentity": identity["principalId"].as_str().unwrap_or(""),
                "userAssignedIdentities": user_identities_summary(identity),
            })
        }
        Output::AzIdentityShow => v["identity"].clone(),
        Output::PsIdentity => json!({
            "Id": v["id"],
            "ResourceGroupName": v["id"].as_str().and_then(resource_group),
            "Name": v["name"],
            "Location": v["location"],
            "TenantId": props["tenantId"],
            "PrincipalId": props["principalId"],
            "ClientId": props["clientId"],
            "Type": v["type"],
            "Tag": v["tags"],
        }),
        Output::PsResourceGroup => json!({
            "ResourceGroupName": v["name"],
            "Location": v["location"],
            "ProvisioningState": props["provisioningState"],
            "Tags": v["tags"],
            "ResourceId": v["id"],
        }),
        Output::PsVm => json!({
            "ResourceGroupName": v["id"].as_str().and_then(resource_group),
            "Id": v["id"],
            "VmId": props["vmId"],
            "Name": v["name"],
            "Type": v["type"],
            "Location": v["location"],
            "Tags": v["tags"],
            "Identity": v["identity"],
            "ProvisioningState": props["provisioningState"],
        }),
        Output::PsRoleAssignment => {
            let role_id = text(&props["roleDefinitionId"]);
            json!({
                "RoleAssignmentName": v["name"],
                "RoleAssignmentId": v["id"],
                "Scope": props["scope"],
                "DisplayName": facts.get("displayName").cloned().unwrap_or(Value::Null),
                "SignInName": "",
                "RoleDefinitionName": facts.get("roleName").cloned().unwrap_or(Value::Null),
                "RoleDefinitionId": role_id.rsplit('/').next().unwrap_or(""),
                "ObjectId": props["principalId"],
                "ObjectType": "ServicePrincipal",
                "CanDelegate": false,
                "Description": "",
                "ConditionVersion": "",
                "Condition": "",
            })
        }
        Output::PsUpdate => json!({
            "RequestId": "",
            "IsSuccessStatusCode": resp.status < 300,
            "StatusCode": reason(resp.status).replace(' ', ""),
            "ReasonPhrase": reason(resp.status),
        }),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        _ => "",
    }
}

/// `az login --identity`: with the IMDS token, az lists the subscriptions the identity sees.
fn az_login(req: &ResolvedRequest, token: &Value, world: &World, exec: &dyn Executor) -> Value {
    let Some(t) = token["access_token"].as_str() else {
        return Value::Null;
    };
    let parts = split_url(&req.url);
    let user = match parts
        .query
        .iter()
        .find(|(k, _)| matches!(k.as_str(), "client_id" | "object_id" | "msi_res_id"))
    {
        Some((k, v)) => {
            let kind = match k.as_str() {
                "client_id" => "MSIClient",
                "object_id" => "MSIObject",
                _ => "MSIResource",
            };
            json!({"assignedIdentityInfo": format!("{kind}-{v}"), "name": "userAssignedIdentity", "type": "servicePrincipal"})
        }
        None => {
            json!({"assignedIdentityInfo": "MSI", "name": "systemAssignedIdentity", "type": "servicePrincipal"})
        }
    };
    let list = ResolvedRequest {
        method: "GET".into(),
        url: "https://management.azure.com/subscriptions?api-version=2022-12-01".into(),
        headers: vec![("Authorization".into(), format!("Bearer {t}"))],
        body: None,
        service: Service::Arm,
        action: Action::Arm {
            resource_type: "Microsoft.Resources/subscriptions".into(),
            action: "Microsoft.Resources/subscriptions/read".into(),
        },
        // Sent with the identity's own token, as az does.
        inferred: false,
        line: req.line,
        unresolved: Vec::new(),
    };
    let subs = match exec.execute(&list) {
        Ok(r) if r.status < 400 => json_of(&r),
        _ => return Value::Null,
    };
    let tenant = world.get("tenant_id").unwrap_or_default().to_string();
    Value::Array(
        subs["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, s)| {
                        json!({
                            "environmentName": "AzureCloud",
                            "homeTenantId": s.get("tenantId").cloned().unwrap_or(json!(tenant)),
                            "id": s["subscriptionId"],
                            "isDefault": i == 0,
                            "managedByTenants": [],
                            "name": s["displayName"],
                            "state": s["state"],
                            "tenantId": s.get("tenantId").cloned().unwrap_or(json!(tenant)),
                            "user": user,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn ps_login(_req: &ResolvedRequest, world: &World) -> Value {
    json!({
        "Account": "MSI@50342",
        "SubscriptionName": "...",
        "SubscriptionId": world.get("subscription_id"),
        "TenantId": world.get("tenant_id"),
        "Environment": "AzureCloud",
    })
}

/// Parse a PowerShell object listing (`Name : value`, continuation lines indented) into
/// an object of strings. `None` when the block is not such a listing.
pub fn parse_listing(text: &str) -> Option<Map<String, Value>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        let t = line.trim();
        if t.is_empty() || t == "{" || t == "}" || t.starts_with("PS ") || t.starts_with("----") {
            continue;
        }
        let key_val = t.split_once(':').and_then(|(k, v)| {
            let k = k.trim();
            (!k.is_empty()
                && !k.contains(' ')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !raw.starts_with([' ', '\t']))
            .then(|| (k.to_string(), v.trim().to_string()))
        });
        if let Some(kv) = key_val {
            out.push(kv);
        } else {
            let last = out.last_mut()?;
            if !last.1.is_empty() {
                last.1.push(' ');
            }
            last.1.push_str(t);
        }
    }
    if out.len() < 2 {
        return None;
    }
    Some(
        out.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// `Invoke-WebRequest`'s response object for a listing comparison.
pub fn web_response_object(resp: &ExecResponse) -> Value {
    let status = reason(resp.status);
    let status = if status.is_empty() {
        match resp.status {
            307 => "Temporary Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "...",
        }
    } else {
        status
    };
    // Windows PowerShell's `BasicHtmlWebResponseObject`; the header order of `RawContent`
    // and `Headers` is the server's, so only their presence is checked (`...`).
    json!({
        "StatusCode": resp.status.to_string(),
        "StatusDescription": status,
        "Content": resp.body,
        "RawContent": "...",
        "Headers": "...",
        "Forms": "{}",
        "Images": "{}",
        "InputFields": "{}",
        "Links": "{}",
        "ParsedHtml": "...",
        // The doc's length is its own response's.
        "RawContentLength": "...",
    })
}

/// A listing's value agrees with the tool's value (PowerShell prints nested objects as
/// `{...}` or type names, and truncates long values with `...`).
pub fn listing_value_agrees(doc: &str, actual: &Value) -> bool {
    let d = doc.trim();
    if d.is_empty()
        || d.starts_with('{')
        || d.starts_with("System.")
        || d.starts_with("Microsoft.Azure.")
        || crate::placeholder::is_wildcard_value(d)
    {
        return true;
    }
    let a = text(actual);
    if a == "..." {
        return true;
    }
    if let Some(prefix) = d.strip_suffix("...") {
        return a.starts_with(prefix.trim_end());
    }
    d.eq_ignore_ascii_case(&a)
        || d.eq_ignore_ascii_case(a.trim_end_matches('/'))
        || d.trim_end_matches('/').eq_ignore_ascii_case(&a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(json!({"type":"SystemAssigned","principalId":"p"}), false, &["/u/a"], false, json!({"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/u/a":{}}}))]
    #[case(json!({"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/u/a":{}}}), false, &["/U/A"], true, json!({"type":"SystemAssigned","userAssignedIdentities":{"/u/a":null}}))]
    #[case(json!(null), true, &[], false, json!({"type":"SystemAssigned"}))]
    #[case(json!({"type":"SystemAssigned"}), true, &[], true, json!({"type":"None"}))]
    #[case(json!({"type":"UserAssigned","userAssignedIdentities":{"/u/a":{}}}), true, &[], false, json!({"type":"SystemAssigned, UserAssigned","userAssignedIdentities":{"/u/a":{}}}))]
    fn identity_merge(
        #[case] current: Value,
        #[case] system: bool,
        #[case] user: &[&str],
        #[case] remove: bool,
        #[case] want: Value,
    ) {
        let user: Vec<String> = user.iter().map(|s| (*s).to_string()).collect();
        assert_eq!(merge_identity(&current, system, &user, remove), want);
    }

    #[test]
    fn az_flattens_properties_and_adds_resource_group() {
        let v = json!({"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1","name":"id1","type":"Microsoft.ManagedIdentity/userAssignedIdentities","properties":{"clientId":"c","principalId":"p","tenantId":"t"}});
        let out = az_resource(&v, true);
        assert_eq!(out["clientId"], "c");
        assert_eq!(out["resourceGroup"], "rg");
        assert!(out.get("properties").is_none());
        let rg = json!({"id":"/subscriptions/s/resourceGroups/rg","name":"rg","type":"Microsoft.Resources/resourceGroups","properties":{"provisioningState":"Succeeded"}});
        let out = az_resource(&rg, false);
        assert!(out.get("resourceGroup").is_none());
        assert_eq!(out["properties"]["provisioningState"], "Succeeded");
    }

    #[test]
    fn listing_parses_keys_and_continuations() {
        let text = "StatusCode      : 200\nStatusDescription : OK\nContent         : {\"a\":\n                  1}\nRawContentLength : 556\n";
        let m = parse_listing(text).unwrap();
        assert_eq!(m["StatusCode"], "200");
        assert_eq!(m["Content"], "{\"a\": 1}");
        assert_eq!(m.len(), 4);
        let braces = "{\nId: /subscriptions/x\nName: ID1\n}";
        assert_eq!(parse_listing(braces).unwrap()["Name"], "ID1");
        assert!(parse_listing("just text\nmore").is_none());
    }

    #[rstest]
    #[case("ID1", json!("ID1"), true)]
    #[case("ID1", json!("ID2"), false)]
    #[case("False", json!(false), true)]
    #[case("{[Pragma, no-cache]...}", json!("x"), true)]
    #[case("HTTP/1.1 200 OK Pragma...", json!("HTTP/1.1 200 OK Pragma: x"), true)]
    #[case("westus", json!("westus2"), false)]
    #[case("af825a31-b0e0-471f-baea-96de555632f9", json!("other"), true)]
    fn listing_values(#[case] doc: &str, #[case] actual: Value, #[case] agrees: bool) {
        assert_eq!(listing_value_agrees(doc, &actual), agrees);
    }

    #[test]
    fn new_guids_are_guids_and_stable() {
        let a = new_guid("12/scope");
        assert!(looks_like_guid(&a), "{a}");
        assert_eq!(a, new_guid("12/scope"));
        assert_ne!(a, new_guid("13/scope"));
    }
}
