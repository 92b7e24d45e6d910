//! Azure AD Graph 1.6 (`https://graph.windows.net/{tenant|myorganization}/...?api-version=1.6`):
//! one world-level server. Service principals come from the world's directory (managed
//! identities appear with the host's name, as Entra shows them); groups, memberships and
//! app role assignments live here. App role assignments to the Graph service principal
//! (`Directory.Read.All`) become the `roles` claim of tokens minted afterwards for
//! `https://graph.windows.net` (see [`World::app_roles_for`]); a token minted before the
//! grant keeps lacking the role, as with Entra.
//!
//! Authorization: a caller may read the directory when its token carries `Directory.Read.All`
//! or `Directory.ReadWrite.All`, or when it holds the Company Administrator directory role
//! (the tutorials' operator is a Global Administrator; the fake's deployer is seeded as one).
//! Writes need `Directory.ReadWrite.All` or the directory role; app role assignments need
//! the directory role. Denials answer Graph's 403 `Authorization_RequestDenied`.
//!
//! Differences from the saved spec (`graphrbac/1.6`), following the tutorials and the service:
//! - `POST servicePrincipals/{id}/getMemberGroups` is served (the spec has it only for users
//!   and groups); `securityEnabledOnly` is accepted as a boolean and as the strings
//!   `"true"`/`"false"` (the Windows tutorial sends a string, 004 L2165).
//! - Responses carry `odata.metadata` (and entities `odata.type`), which the spec omits.
//! - `POST servicePrincipals/{id}/appRoleAssignments` and `POST groups/{id}/$links/members`
//!   are served (the spec lists only reads of assignments).
//! - Error messages carry `lang` beside `value` (the spec's `ErrorMessage` has only `value`).
//! - Entities carry properties the service returns and the spec does not declare: service
//!   principals `tokenEncryptionKeyId`; groups `description`, `dirSyncEnabled`,
//!   `lastDirSyncTime`, `onPremises*`, `provisioningErrors`, `proxyAddresses`; app role
//!   assignments `creationTimestamp`. `tests/graph.rs` pins this list.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::directory::{PrincipalKind, ServicePrincipal};
use crate::util;
use crate::world::World;

/// Application id of Azure AD Graph ("Windows Azure Active Directory").
pub const GRAPH_APP_ID: &str = "00000002-0000-0000-c000-000000000000";
/// Object id of Graph's service principal, as the tutorial prints it (004 L3580).
pub const GRAPH_SP_OBJECT_ID: &str = "81789304-ff96-402b-ae73-07ec0db26721";
/// Microsoft's tenant, owner of the Graph application (004 L3585).
const MICROSOFT_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
/// Application permissions (app roles) of Azure AD Graph the fake knows: (id, value, display name).
pub const GRAPH_APP_ROLES: &[(&str, &str, &str)] = &[
    (
        "5778995a-e1bf-45b8-affa-663a9f3f4d04",
        "Directory.Read.All",
        "Read directory data",
    ),
    (
        "78c8a3c8-a07e-4b9e-af1b-b5ccab50a175",
        "Directory.ReadWrite.All",
        "Read and write directory data",
    ),
];
/// App ID URIs under which tokens for Graph are issued.
pub const GRAPH_AUDIENCES: &[&str] = &[
    "https://graph.windows.net",
    "https://graph.windows.net/",
    GRAPH_APP_ID,
];
const API_VERSIONS: &[&str] = &["1.5", "1.6", "2013-04-05", "2013-11-08"];

/// A security group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub object_id: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub security_enabled: bool,
    pub mail_enabled: bool,
    pub description: Option<String>,
}

/// An app role assignment: `principal` holds role `role_id` of the resource application
/// whose service principal is `resource`.
#[derive(Debug, Clone)]
pub(crate) struct AppRoleAssignment {
    pub object_id: String,
    pub role_id: String,
    pub principal: String,
    pub resource: String,
    pub created: std::time::SystemTime,
}

/// Graph state of a world.
#[derive(Default)]
pub(crate) struct GraphState {
    /// Keyed by lower-case object id.
    pub groups: BTreeMap<String, Group>,
    /// Lower-case group id -> lower-case member object ids.
    pub members: BTreeMap<String, BTreeSet<String>>,
    pub assignments: Vec<AppRoleAssignment>,
    /// Lower-case object ids holding the Company Administrator (Global Administrator) role.
    pub admins: BTreeSet<String>,
    /// Base URL of the Graph server (`http://127.0.0.1:PORT`).
    pub url: String,
}

/// Put Graph's own service principal in the directory and make the deployer an administrator.
pub(crate) fn seed(st: &mut crate::world::State, deployer_object_id: &str) {
    st.directory.insert(ServicePrincipal {
        object_id: GRAPH_SP_OBJECT_ID.to_owned(),
        app_id: GRAPH_APP_ID.to_owned(),
        display_name: "Windows Azure Active Directory".to_owned(),
        kind: PrincipalKind::ServicePrincipal,
        resource_id: None,
        secret: None,
        roles: Vec::new(),
    });
    st.graph
        .admins
        .insert(deployer_object_id.to_ascii_lowercase());
}

impl World {
    /// Base URL of the Graph server.
    pub(crate) fn graph_base(&self) -> String {
        self.lock().graph.url.clone()
    }

    /// Values of the app roles `principal` holds on the application a token for `resource`
    /// is issued to (today: Azure AD Graph), for the `roles` claim.
    pub(crate) fn app_roles_for(&self, principal: &str, resource: &str) -> Vec<String> {
        let r = resource.trim().to_ascii_lowercase();
        if !GRAPH_AUDIENCES.iter().any(|a| a.eq_ignore_ascii_case(&r)) {
            return Vec::new();
        }
        let st = self.lock();
        let mut out: Vec<String> = st
            .graph
            .assignments
            .iter()
            .filter(|a| {
                a.principal.eq_ignore_ascii_case(principal)
                    && a.resource.eq_ignore_ascii_case(GRAPH_SP_OBJECT_ID)
            })
            .filter_map(|a| {
                GRAPH_APP_ROLES
                    .iter()
                    .find(|(id, _, _)| id.eq_ignore_ascii_case(&a.role_id))
                    .map(|(_, v, _)| (*v).to_owned())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Grant an app role of Graph (by value, e.g. `Directory.Read.All`) to a principal
    /// directly (tests and fixtures; scenarios go through the REST API).
    pub(crate) fn grant_graph_app_role(&self, principal: &str, value: &str) -> Option<String> {
        let (role_id, _, _) = GRAPH_APP_ROLES.iter().find(|(_, v, _)| *v == value)?;
        let id = util::guid();
        let now = self.now();
        self.lock().graph.assignments.push(AppRoleAssignment {
            object_id: id.clone(),
            role_id: (*role_id).to_owned(),
            principal: principal.to_owned(),
            resource: GRAPH_SP_OBJECT_ID.to_owned(),
            created: now,
        });
        Some(id)
    }
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

pub(crate) fn router(world: Arc<World>) -> Router {
    Router::new().fallback(handle).with_state(world)
}

/// A Graph error: `{"odata.error":{"code","message":{"lang":"en","value"}}}`.
pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (
        status,
        serde_json::to_string(
            &json!({"odata.error": {"code": code, "message": {"lang": "en", "value": message}}}),
        )
        .unwrap_or_default(),
    )
        .into_response();
    set_content_type(&mut r);
    r
}

fn set_content_type(r: &mut Response) {
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static(
            "application/json; odata=minimalmetadata; streaming=true; charset=utf-8",
        ),
    );
}

fn reply(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, serde_json::to_string(v).unwrap_or_default()).into_response();
    set_content_type(&mut r);
    r
}

fn denied() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn invalid_properties() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        "One or more properties are invalid.",
    )
}

/// What a caller may do.
struct Caller {
    oid: String,
    read: bool,
    write: bool,
    admin: bool,
}

async fn handle(State(world): State<Arc<World>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return graph_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request_BadRequest",
            "The request body is too large.",
        );
    };
    let path = util::decode(parts.uri.path(), false);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let query = util::parse_pairs(parts.uri.query().unwrap_or_default());
    // Authentication first, as the service does.
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let claims = match world.verify(&auth, GRAPH_AUDIENCES) {
        Ok(c) => c,
        Err(crate::TokenError::Expired { .. }) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "Authentication_ExpiredToken",
                "Your access token has expired. Please renew it before submitting the request.",
            );
        }
        Err(_) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "Authentication_MissingOrMalformed",
                "Access Token missing or malformed.",
            );
        }
    };
    let Some(tenant) = segs.first().copied() else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid domain name in the request url.",
        );
    };
    if !(tenant.eq_ignore_ascii_case(&world.tenant_id)
        || tenant.eq_ignore_ascii_case("myorganization")
        || tenant.eq_ignore_ascii_case("me"))
        || !claims.tid.eq_ignore_ascii_case(&world.tenant_id)
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid domain name in the request url.",
        );
    }
    match util::param(&query, "api-version") {
        None | Some("") => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "A valid api-version must be specified in the request url.",
            );
        }
        Some(v) if !API_VERSIONS.contains(&v) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "The specified api-version is invalid. The value must exactly match a supported version.",
            );
        }
        Some(_) => {}
    }
    let roles = claims.roles.clone().unwrap_or_default();
    let has = |r: &str| roles.iter().any(|x| x == r);
    let admin = world
        .lock()
        .graph
        .admins
        .contains(&claims.oid.to_ascii_lowercase());
    let caller = Caller {
        oid: claims.oid.clone(),
        read: admin || has("Directory.Read.All") || has("Directory.ReadWrite.All"),
        write: admin || has("Directory.ReadWrite.All"),
        admin,
    };
    let base = format!("{}/{tenant}", world.graph_base());
    let rest: Vec<String> = segs[1..].iter().map(|s| (*s).to_owned()).collect();
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let method = parts.method;
    match (method.clone(), l.as_slice()) {
        (Method::GET, ["serviceprincipals"]) => {
            if !caller.read {
                return denied();
            }
            list_service_principals(&world, &base, util::param(&query, "$filter"))
        }
        (Method::GET, ["serviceprincipals", _]) => {
            if !caller.read {
                return denied();
            }
            let dir = world.lock().directory.clone();
            match dir.get(&rest[1]) {
                Some(sp) => {
                    let mut v = render_sp(&world, &base, sp);
                    if let Value::Object(m) = &mut v {
                        let mut out = Map::new();
                        out.insert(
                            "odata.metadata".into(),
                            json!(format!("{base}/$metadata#directoryObjects/Microsoft.DirectoryServices.ServicePrincipal/@Element")),
                        );
                        out.extend(m.clone());
                        *m = out;
                    }
                    reply(StatusCode::OK, &v)
                }
                None => not_found(&rest[1]),
            }
        }
        (Method::GET, ["serviceprincipals", _, "approleassignments"]) => {
            if !caller.read {
                return denied();
            }
            list_assignments(&world, &base, &rest[1])
        }
        (Method::POST, ["serviceprincipals", _, "approleassignments"]) => {
            if !caller.admin {
                return denied();
            }
            create_assignment(&world, &base, &rest[1], &body)
        }
        (Method::POST, ["serviceprincipals" | "groups", _, "getmembergroups"]) => {
            // A principal may always ask for its own memberships? Not with an app token:
            // Graph requires a directory read permission for service principals.
            if !caller.read {
                return denied();
            }
            get_member_groups(&world, &base, l[0] == "groups", &rest[1], &body)
        }
        (Method::POST, ["groups"]) => {
            if !caller.write {
                return denied();
            }
            create_group(&world, &base, &body)
        }
        (Method::GET, ["groups"]) => {
            if !caller.read {
                return denied();
            }
            let st = world.lock();
            let items: Vec<Value> = st.graph.groups.values().map(render_group).collect();
            drop(st);
            reply(
                StatusCode::OK,
                &json!({"odata.metadata": format!("{base}/$metadata#directoryObjects/Microsoft.DirectoryServices.Group"), "value": items}),
            )
        }
        (Method::GET, ["groups", _]) => {
            if !caller.read {
                return denied();
            }
            let g = world.lock().graph.groups.get(&lower[1]).map(render_group);
            match g {
                Some(Value::Object(m)) => {
                    let mut out = Map::new();
                    out.insert(
                        "odata.metadata".into(),
                        json!(format!("{base}/$metadata#directoryObjects/Microsoft.DirectoryServices.Group/@Element")),
                    );
                    out.extend(m);
                    reply(StatusCode::OK, &Value::Object(out))
                }
                _ => not_found(&rest[1]),
            }
        }
        (Method::POST, ["groups", _, "$links", "members"]) => {
            if !caller.write {
                return denied();
            }
            add_member(&world, &lower[1], &body)
        }
        (Method::GET, ["groups", _, "$links", "members"]) => {
            if !caller.read {
                return denied();
            }
            let st = world.lock();
            if !st.graph.groups.contains_key(&lower[1]) {
                drop(st);
                return not_found(&rest[1]);
            }
            let urls: Vec<Value> = st
                .graph
                .members
                .get(&lower[1])
                .into_iter()
                .flatten()
                .map(|m| json!({"url": format!("{base}/directoryObjects/{m}")}))
                .collect();
            drop(st);
            reply(
                StatusCode::OK,
                &json!({"odata.metadata": format!("{base}/$metadata#directoryObjects/$links/members"), "value": urls}),
            )
        }
        _ => {
            let _ = caller.oid;
            graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("Unsupported request: {method} {}", rest.join("/")),
            )
        }
    }
}

/// A service principal in Graph 1.6's shape.
fn render_sp(world: &World, base: &str, sp: &ServicePrincipal) -> Value {
    let graph = sp.object_id.eq_ignore_ascii_case(GRAPH_SP_OBJECT_ID);
    let mi = sp.is_managed_identity();
    let app_roles: Vec<Value> = if graph {
        GRAPH_APP_ROLES
            .iter()
            .map(|(id, value, name)| {
                json!({
                    "allowedMemberTypes": ["Application"],
                    "description": format!("Allows the app to {} without a signed-in user.", name.to_ascii_lowercase()),
                    "displayName": name,
                    "id": id,
                    "isEnabled": true,
                    "value": value,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let alternative: Vec<Value> = match (&sp.kind, &sp.resource_id) {
        (PrincipalKind::SystemAssigned, Some(id)) => vec![json!("isExplicit=False"), json!(id)],
        (PrincipalKind::UserAssigned, Some(id)) => vec![json!("isExplicit=True"), json!(id)],
        _ => Vec::new(),
    };
    let mut names = vec![json!(sp.app_id)];
    if graph {
        names.push(json!("https://graph.windows.net"));
    }
    let _ = base;
    json!({
        "odata.type": "Microsoft.DirectoryServices.ServicePrincipal",
        "objectType": "ServicePrincipal",
        "objectId": sp.object_id,
        "deletionTimestamp": null,
        "accountEnabled": true,
        "alternativeNames": alternative,
        "appDisplayName": if mi { Value::Null } else { json!(sp.display_name) },
        "appId": sp.app_id,
        "appOwnerTenantId": if graph { json!(MICROSOFT_TENANT) } else if mi { Value::Null } else { json!(world.tenant_id) },
        "appRoleAssignmentRequired": false,
        "appRoles": app_roles,
        "displayName": sp.display_name,
        "errorUrl": null,
        "homepage": null,
        "keyCredentials": [],
        "logoutUrl": null,
        "oauth2Permissions": [],
        "passwordCredentials": [],
        "preferredTokenSigningKeyThumbprint": null,
        "publisherName": if graph { json!("Microsoft Services") } else { Value::Null },
        "replyUrls": [],
        "samlMetadataUrl": null,
        "servicePrincipalNames": names,
        "servicePrincipalType": if mi { "ManagedIdentity" } else { "Application" },
        "tags": [],
        "tokenEncryptionKeyId": null,
    })
}

fn render_group(g: &Group) -> Value {
    json!({
        "odata.type": "Microsoft.DirectoryServices.Group",
        "objectType": "Group",
        "objectId": g.object_id,
        "deletionTimestamp": null,
        "description": g.description,
        "dirSyncEnabled": null,
        "displayName": g.display_name,
        "lastDirSyncTime": null,
        "mail": null,
        "mailNickname": g.mail_nickname,
        "mailEnabled": g.mail_enabled,
        "onPremisesDomainName": null,
        "onPremisesNetBiosName": null,
        "onPremisesSamAccountName": null,
        "onPremisesSecurityIdentifier": null,
        "provisioningErrors": [],
        "proxyAddresses": [],
        "securityEnabled": g.security_enabled,
    })
}

/// The `$filter` forms the tutorials use: `displayName eq 'x'`, `appId eq 'x'`,
/// `startswith(displayName,'x')`. Returns (property, operator, value).
pub(crate) fn parse_filter(f: &str) -> Option<(String, &'static str, String)> {
    let f = f.trim();
    let unquote = |s: &str| -> Option<String> {
        let s = s.trim();
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    };
    if let Some(args) = f
        .strip_prefix("startswith(")
        .or_else(|| f.strip_prefix("startsWith("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let (prop, val) = args.split_once(',')?;
        return Some((prop.trim().to_owned(), "startswith", unquote(val)?));
    }
    let mut parts = f.splitn(3, ' ');
    let prop = parts.next()?.trim();
    let op = parts.next()?.trim();
    let val = parts.next()?;
    if !op.eq_ignore_ascii_case("eq") || prop.is_empty() {
        return None;
    }
    Some((prop.to_owned(), "eq", unquote(val)?))
}

fn list_service_principals(world: &World, base: &str, filter: Option<&str>) -> Response {
    let dir = world.lock().directory.clone();
    let matcher: Box<dyn Fn(&ServicePrincipal) -> bool> = match filter {
        None => Box::new(|_| true),
        Some(f) => {
            let Some((prop, op, val)) = parse_filter(f) else {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!("Invalid filter clause: {f}"),
                );
            };
            let field: fn(&ServicePrincipal) -> &str = match prop.to_ascii_lowercase().as_str() {
                "displayname" => |sp| sp.display_name.as_str(),
                "appid" if op == "eq" => |sp| sp.app_id.as_str(),
                "objectid" if op == "eq" => |sp| sp.object_id.as_str(),
                _ => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        &format!(
                            "Unsupported or invalid query filter clause specified for property '{prop}' of resource 'ServicePrincipal'."
                        ),
                    );
                }
            };
            let val = val.to_ascii_lowercase();
            if op == "startswith" {
                Box::new(move |sp| field(sp).to_ascii_lowercase().starts_with(&val))
            } else {
                Box::new(move |sp| field(sp).eq_ignore_ascii_case(&val))
            }
        }
    };
    let items: Vec<Value> = dir
        .all()
        .filter(|sp| matcher(sp))
        .map(|sp| render_sp(world, base, sp))
        .collect();
    reply(
        StatusCode::OK,
        &json!({
            "odata.metadata": format!("{base}/$metadata#directoryObjects/Microsoft.DirectoryServices.ServicePrincipal"),
            "value": items,
        }),
    )
}

fn render_assignment(world: &World, a: &AppRoleAssignment) -> Value {
    let dir = world.lock().directory.clone();
    let name = |id: &str| dir.get(id).map_or(Value::Null, |sp| json!(sp.display_name));
    json!({
        "odata.type": "Microsoft.DirectoryServices.AppRoleAssignment",
        "objectType": "AppRoleAssignment",
        "objectId": a.object_id,
        "deletionTimestamp": null,
        "creationTimestamp": util::iso(a.created),
        "id": a.role_id,
        "principalDisplayName": name(&a.principal),
        "principalId": a.principal,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": name(&a.resource),
        "resourceId": a.resource,
    })
}

fn list_assignments(world: &World, base: &str, sp_id: &str) -> Response {
    if world.lock().directory.get(sp_id).is_none() {
        return not_found(sp_id);
    }
    let list: Vec<AppRoleAssignment> = world
        .lock()
        .graph
        .assignments
        .iter()
        .filter(|a| a.principal.eq_ignore_ascii_case(sp_id))
        .cloned()
        .collect();
    let items: Vec<Value> = list.iter().map(|a| render_assignment(world, a)).collect();
    reply(
        StatusCode::OK,
        &json!({"odata.metadata": format!("{base}/$metadata#directoryObjects/{sp_id}/Microsoft.DirectoryServices.ServicePrincipal/appRoleAssignments"), "value": items}),
    )
}

fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn malformed_body() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        "Invalid request body was specified.",
    )
}

fn create_assignment(world: &World, base: &str, sp_id: &str, body: &[u8]) -> Response {
    let Some(b) = json_object(body) else {
        return malformed_body();
    };
    let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(role), Some(principal), Some(resource)) =
        (s("id"), s("principalId"), s("resourceId"))
    else {
        return invalid_properties();
    };
    let dir = world.lock().directory.clone();
    let Some(sp) = dir.get(sp_id) else {
        return not_found(sp_id);
    };
    // The principal must be the object the assignment is created under, the resource must
    // be a service principal declaring the role for applications.
    if !principal.eq_ignore_ascii_case(&sp.object_id)
        || !resource.eq_ignore_ascii_case(GRAPH_SP_OBJECT_ID)
        || !GRAPH_APP_ROLES
            .iter()
            .any(|(id, _, _)| id.eq_ignore_ascii_case(&role))
    {
        return invalid_properties();
    }
    let now = world.now();
    let a = {
        let mut st = world.lock();
        if st.graph.assignments.iter().any(|a| {
            a.principal.eq_ignore_ascii_case(&principal)
                && a.resource.eq_ignore_ascii_case(&resource)
                && a.role_id.eq_ignore_ascii_case(&role)
        }) {
            // The tutorial's repeat shows "one or more properties are invalid" (004 L2094-2096).
            return invalid_properties();
        }
        let a = AppRoleAssignment {
            object_id: util::random_b64(32),
            role_id: role.to_ascii_lowercase(),
            principal: sp.object_id.clone(),
            resource: GRAPH_SP_OBJECT_ID.to_owned(),
            created: now,
        };
        st.graph.assignments.push(a.clone());
        a
    };
    let mut out = Map::new();
    out.insert(
        "odata.metadata".into(),
        json!(format!("{base}/$metadata#directoryObjects/Microsoft.DirectoryServices.AppRoleAssignment/@Element")),
    );
    if let Value::Object(m) = render_assignment(world, &a) {
        out.extend(m);
    }
    reply(StatusCode::CREATED, &Value::Object(out))
}

/// `securityEnabledOnly`: a boolean, or the strings `"true"`/`"false"` (case-insensitive).
pub(crate) fn security_enabled_only(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn get_member_groups(world: &World, base: &str, of_group: bool, id: &str, body: &[u8]) -> Response {
    let Some(b) = json_object(body) else {
        return malformed_body();
    };
    let Some(security_only) = security_enabled_only(b.get("securityEnabledOnly")) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value specified for property 'securityEnabledOnly' of resource 'DirectoryObject'.",
        );
    };
    let st = world.lock();
    let exists = if of_group {
        st.graph.groups.contains_key(&id.to_ascii_lowercase())
    } else {
        st.directory.get(id).is_some()
    };
    if !exists {
        drop(st);
        return not_found(id);
    }
    let oid = if of_group {
        id.to_ascii_lowercase()
    } else {
        st.directory
            .get(id)
            .map(|sp| sp.object_id.to_ascii_lowercase())
            .unwrap_or_default()
    };
    // Transitive membership.
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![oid];
    while let Some(cur) = frontier.pop() {
        for (g, members) in &st.graph.members {
            if members.contains(&cur) && found.insert(g.clone()) {
                frontier.push(g.clone());
            }
        }
    }
    let ids: Vec<Value> = found
        .iter()
        .filter_map(|g| st.graph.groups.get(g))
        .filter(|g| !security_only || g.security_enabled)
        .map(|g| json!(g.object_id))
        .collect();
    drop(st);
    reply(
        StatusCode::OK,
        &json!({"odata.metadata": format!("{base}/$metadata#Collection(Edm.String)"), "value": ids}),
    )
}

fn create_group(world: &World, base: &str, body: &[u8]) -> Response {
    let Some(b) = json_object(body) else {
        return malformed_body();
    };
    let invalid = |p: &str| {
        graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Invalid value specified for property '{p}' of resource 'Group'."),
        )
    };
    let Some(display_name) = b
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
    else {
        return invalid("displayName");
    };
    let Some(nick) = b
        .get("mailNickname")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty() && !s.contains(' '))
    else {
        return invalid("mailNickname");
    };
    // Graph 1.6 creates only pure security groups.
    if b.get("mailEnabled").and_then(Value::as_bool) != Some(false) {
        return invalid("mailEnabled");
    }
    if b.get("securityEnabled").and_then(Value::as_bool) != Some(true) {
        return invalid("securityEnabled");
    }
    let g = Group {
        object_id: util::guid(),
        display_name: display_name.to_owned(),
        mail_nickname: nick.to_owned(),
        security_enabled: true,
        mail_enabled: false,
        description: b
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    world
        .lock()
        .graph
        .groups
        .insert(g.object_id.clone(), g.clone());
    let mut out = Map::new();
    out.insert(
        "odata.metadata".into(),
        json!(format!(
            "{base}/$metadata#directoryObjects/Microsoft.DirectoryServices.Group/@Element"
        )),
    );
    if let Value::Object(m) = render_group(&g) {
        out.extend(m);
    }
    reply(StatusCode::CREATED, &Value::Object(out))
}

fn add_member(world: &World, group: &str, body: &[u8]) -> Response {
    let Some(b) = json_object(body) else {
        return malformed_body();
    };
    let Some(url) = b.get("url").and_then(Value::as_str) else {
        return invalid_properties();
    };
    let member = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !url.to_ascii_lowercase().contains("/directoryobjects/") {
        return invalid_properties();
    }
    let mut st = world.lock();
    if !st.graph.groups.contains_key(group) {
        drop(st);
        return not_found(group);
    }
    let known = st.directory.get(&member).is_some() || st.graph.groups.contains_key(&member);
    if !known {
        drop(st);
        return not_found(&member);
    }
    let set = st.graph.members.entry(group.to_owned()).or_default();
    if !set.insert(member) {
        drop(st);
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
        );
    }
    drop(st);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::display_eq("displayName eq 'myVM'", Some(("displayName", "eq", "myVM")))]
    #[case::app_id("appId eq '00000002-0000-0000-c000-000000000000'", Some(("appId", "eq", GRAPH_APP_ID)))]
    #[case::startswith("startswith(displayName,'myVM')", Some(("displayName", "startswith", "myVM")))]
    #[case::quote_escape("displayName eq 'O''Brien'", Some(("displayName", "eq", "O'Brien")))]
    #[case::unquoted("displayName eq myVM", None)]
    #[case::other_op("displayName ne 'x'", None)]
    #[case::empty("", None)]
    #[case::garbage("startswith(", None)]
    fn filters(#[case] f: &str, #[case] want: Option<(&str, &str, &str)>) {
        let got = parse_filter(f);
        assert_eq!(
            got.as_ref().map(|(p, o, v)| (p.as_str(), *o, v.as_str())),
            want
        );
    }

    #[rstest]
    #[case(json!(false), Some(false))]
    #[case(json!(true), Some(true))]
    #[case(json!("false"), Some(false))]
    #[case(json!("True"), Some(true))]
    #[case(json!("no"), None)]
    #[case(json!(0), None)]
    fn security_enabled_only_forms(#[case] v: Value, #[case] want: Option<bool>) {
        assert_eq!(security_enabled_only(Some(&v)), want);
    }
}
