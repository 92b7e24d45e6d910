//! Microsoft.Sql: logical servers, databases and the server's Entra (Azure AD) admin.
//!
//! Creating a server starts its TDS endpoint ([`crate::sql`]); `fullyQualifiedDomainName`
//! is that endpoint's `127.0.0.1:<port>` (live: `<name>.database.windows.net`). A database
//! exists in the TDS server as soon as ARM created it; setting the admin
//! (`administrators/ActiveDirectory`) makes that principal `dbo` of every database.
//!
//! Admin bodies follow `serverAzureADAdministrators.json`: 2014-04-01 names the child
//! `activeDirectory` and requires `administratorType`, `login`, `sid` and `tenantId`;
//! 2021-11-01 names it `ActiveDirectory`, requires `administratorType`, `login`, `sid` and
//! reports `azureADOnlyAuthentication`. Both spellings are accepted (ARM is case-insensitive
//! on names); the response uses the api-version's spelling. Error codes are the ones the
//! 2021-11-01 spec lists (`InvalidServerAdministratorTypePropertyName`,
//! `InvalidResourceRequestBody`, ...). The admin's `sid` is its object id, or for an
//! application its application (client) id, as `Set-AzSqlServerActiveDirectoryAdministrator`
//! sends it.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, check_provider_version, empty, ok, versions};
use crate::error::ArmError;
use crate::util;
use crate::world::{Resource, World};

pub(crate) const SERVERS: &str = "Microsoft.Sql/servers";
const DATABASES: &str = "Microsoft.Sql/servers/databases";
const ADMINS: &str = "Microsoft.Sql/servers/administrators";

fn server_id(world: &World, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{SERVERS}/{name}",
        world.subscription_id
    )
}

fn parent_not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "ParentResourceNotFound",
        format!(
            "Can not perform requested operation on nested resource. Parent resource '{name}' not found."
        ),
    )
}

fn invalid_body() -> ArmError {
    ArmError::bad_request(
        "InvalidResourceRequestBody",
        "The resource or resource properties in the request body is empty or invalid.",
    )
}

/// Render a server (never the admin password).
pub(crate) fn render(world: &World, st: &crate::world::State, r: &Resource) -> Value {
    let _ = world;
    let mut m = super::resource_head(r);
    m.insert("kind".into(), json!("v12.0"));
    let mut p = Map::new();
    if let Some(login) = r.properties.get("administratorLogin") {
        p.insert("administratorLogin".into(), login.clone());
    }
    p.insert("version".into(), json!("12.0"));
    p.insert("state".into(), json!("Ready"));
    let fqdn = st
        .sql_servers
        .get(&r.id.to_ascii_lowercase())
        .map(crate::sql::SqlServer::fqdn);
    p.insert("fullyQualifiedDomainName".into(), json!(fqdn));
    p.insert("privateEndpointConnections".into(), json!([]));
    p.insert("minimalTlsVersion".into(), json!("1.2"));
    p.insert("publicNetworkAccess".into(), json!("Enabled"));
    p.insert("restrictOutboundNetworkAccess".into(), json!("Disabled"));
    m.insert("properties".into(), Value::Object(p));
    Value::Object(m)
}

fn render_database(r: &Resource) -> Value {
    let mut m = super::resource_head(r);
    m.insert("type".into(), json!(DATABASES));
    m.insert("kind".into(), json!("v12.0,user,vcore"));
    m.insert(
        "sku".into(),
        r.extra
            .get("sku")
            .cloned()
            .unwrap_or_else(|| json!({"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2})),
    );
    m.insert(
        "properties".into(),
        json!({
            "collation": "SQL_Latin1_General_CP1_CI_AS",
            "maxSizeBytes": 34_359_738_368_u64,
            "status": "Online",
            "databaseId": r.unique_id,
            "creationDate": util::iso(r.created),
            "catalogCollation": "SQL_Latin1_General_CP1_CI_AS",
            "zoneRedundant": false,
            "readScale": "Disabled",
            "requestedBackupStorageRedundancy": "Geo",
            "isLedgerOn": false,
        }),
    );
    Value::Object(m)
}

fn rg_location(world: &World, rg: &str) -> Option<String> {
    world
        .lock()
        .resource_groups
        .get(&rg.to_ascii_lowercase())
        .map(|g| g.location.clone())
}

fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(crate) fn server(world: &Arc<World>, req: &Req) -> ArmResult {
    let rg = super::rg_name(req);
    let rg_loc = rg_location(world, &rg);
    check_provider_version(
        req,
        rg_loc.as_deref().unwrap_or(&world.config.location),
        "servers",
        versions::SQL,
    )?;
    let name = req.segs[7].clone();
    let id = server_id(world, &rg, &name);
    let key = id.to_ascii_lowercase();
    let scope = req.path.clone();
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{SERVERS}/read"), &scope)?;
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            let st = world.lock();
            let Some(r) = st.resources.get(&key) else {
                return Err(super::resource_not_found(SERVERS, &name, &rg));
            };
            let v = render(world, &st, r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT => {
            authorize(world, req, &format!("{SERVERS}/write"), &scope)?;
            let body = req.json()?;
            let location = super::norm_location(&super::required_location(&body)?);
            let tags = super::tags_of(&body)?;
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            if !valid_server_name(&name) {
                return Err(ArmError::bad_request(
                    "InvalidServerName",
                    format!(
                        "Invalid server name '{name}'. Server names must be 1 to 63 lower-case letters, digits or hyphens, and cannot start or end with a hyphen."
                    ),
                ));
            }
            let props = body.get("properties").and_then(Value::as_object);
            let login = props
                .and_then(|p| p.get("administratorLogin"))
                .and_then(Value::as_str);
            let password = props
                .and_then(|p| p.get("administratorLoginPassword"))
                .and_then(Value::as_str);
            let aad_only = props
                .and_then(|p| p.get("administrators"))
                .and_then(|a| a.get("azureADOnlyAuthentication"))
                .and_then(Value::as_bool)
                == Some(true);
            let exists = world.lock().resources.contains_key(&key);
            if !exists && !aad_only {
                if login.is_none_or(str::is_empty) {
                    return Err(ArmError::bad_request(
                        "InvalidParameterValue",
                        "Invalid value given for parameter Login. Specify a valid parameter value.",
                    ));
                }
                if password.is_none_or(str::is_empty) {
                    return Err(ArmError::bad_request(
                        "InvalidParameterValue",
                        "Invalid value given for parameter Password. Specify a valid parameter value.",
                    ));
                }
            }
            let mut st = world.lock();
            let existing = st.resources.get(&key).cloned();
            let stored_login = login.map(str::to_owned).or_else(|| {
                existing.as_ref().and_then(|e| {
                    e.properties
                        .get("administratorLogin")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
            });
            let r = Resource {
                id: existing
                    .as_ref()
                    .map_or_else(|| id.clone(), |e| e.id.clone()),
                resource_group: rg.clone(),
                rtype: SERVERS.to_owned(),
                name: name.clone(),
                location: location.clone(),
                tags,
                properties: stored_login
                    .map_or_else(|| json!({}), |l| json!({"administratorLogin": l})),
                extra: Map::new(),
                identity: None,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            if !st.sql_servers.contains_key(&key) {
                let server = crate::sql::start(world, &name).map_err(|e| {
                    ArmError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalServerError",
                        format!("An unexpected error occured while processing the request: {e}"),
                    )
                })?;
                st.sql_endpoints
                    .push((format!("sql:{name}"), server.fqdn()));
                st.sql_servers.insert(key.clone(), server);
            }
            st.resources.insert(key, r);
            drop(st);
            // Servers are created asynchronously: 202 + Azure-AsyncOperation, then GET.
            let headers = super::lro_headers(world, req, "Microsoft.Sql", &location, true);
            let resp = crate::error::json_response(
                StatusCode::ACCEPTED,
                &json!({
                    "operation": "UpsertLogicalServer",
                    "startTime": util::iso(world.now()),
                }),
            );
            Ok(super::with_headers(resp, &headers))
        }
        Method::DELETE => {
            authorize(world, req, &format!("{SERVERS}/delete"), &scope)?;
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

/// The server a child request is under, or `ParentResourceNotFound`.
fn parent(world: &World, req: &Req) -> Result<(String, String), ArmError> {
    let rg = super::rg_name(req);
    if rg_location(world, &rg).is_none() {
        return Err(super::rg_not_found(&rg));
    }
    let name = req.segs[7].clone();
    let id = server_id(world, &rg, &name);
    if !world
        .lock()
        .resources
        .contains_key(&id.to_ascii_lowercase())
    {
        return Err(parent_not_found(&name));
    }
    Ok((id, name))
}

pub(crate) fn database(world: &Arc<World>, req: &Req) -> ArmResult {
    check_provider_version(
        req,
        &world.config.location,
        "servers/databases",
        versions::SQL,
    )?;
    let db = req.segs[9].clone();
    let scope = req.path.clone();
    let action = |verb: &str| format!("{DATABASES}/{verb}");
    match req.method {
        Method::GET => {
            authorize(world, req, &action("read"), &scope)?;
            let (server_id, server) = parent(world, req)?;
            let key = format!("{server_id}/databases/{db}").to_ascii_lowercase();
            let st = world.lock();
            let Some(r) = st.resources.get(&key) else {
                return Err(ArmError::not_found(
                    "ResourceNotFound",
                    format!(
                        "The requested resource of type '{DATABASES}' with name '{server}/{db}' was not found."
                    ),
                ));
            };
            let v = render_database(r);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT => {
            authorize(world, req, &action("write"), &scope)?;
            let body = req.json()?;
            let location = super::norm_location(&super::required_location(&body)?);
            let tags = super::tags_of(&body)?;
            let (server_id, _) = parent(world, req)?;
            if db.eq_ignore_ascii_case(mic_tds::MASTER) {
                return Err(ArmError::bad_request(
                    "ReservedDatabaseName",
                    format!("The database name '{db}' is reserved."),
                ));
            }
            let id = format!("{server_id}/databases/{db}");
            let key = id.to_ascii_lowercase();
            let mut extra = Map::new();
            if let Some(sku) = body.get("sku").filter(|s| s.is_object()) {
                extra.insert("sku".into(), sku.clone());
            }
            let mut st = world.lock();
            let existing = st.resources.get(&key).cloned();
            let r = Resource {
                id: existing
                    .as_ref()
                    .map_or_else(|| id.clone(), |e| e.id.clone()),
                resource_group: super::rg_name(req),
                rtype: DATABASES.to_owned(),
                name: db.clone(),
                location: location.clone(),
                tags,
                properties: json!({}),
                extra,
                identity: None,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            if let Some(s) = st.sql_servers.get(&server_id.to_ascii_lowercase()) {
                s.tds.state().create_database(&db);
            }
            st.resources.insert(key, r);
            drop(st);
            let headers = super::lro_headers(world, req, "Microsoft.Sql", &location, true);
            let resp = crate::error::json_response(
                StatusCode::ACCEPTED,
                &json!({
                    "operation": "CreateLogicalDatabase",
                    "startTime": util::iso(world.now()),
                }),
            );
            Ok(super::with_headers(resp, &headers))
        }
        Method::DELETE => {
            authorize(world, req, &action("delete"), &scope)?;
            let (server_id, _) = parent(world, req)?;
            let id = format!("{server_id}/databases/{db}");
            let mut st = world.lock();
            if st.resources.remove(&id.to_ascii_lowercase()).is_none() {
                return empty(StatusCode::NO_CONTENT);
            }
            if let Some(s) = st.sql_servers.get(&server_id.to_ascii_lowercase()) {
                s.tds.state().drop_database(&db);
            }
            drop(st);
            empty(StatusCode::OK)
        }
        _ => Err(super::method_not_allowed(req)),
    }
}

/// The admin's name in the api-version's spelling.
fn admin_name(req: &Req) -> &'static str {
    if req.is_new_api("2017") {
        "ActiveDirectory"
    } else {
        "activeDirectory"
    }
}

fn render_admin(req: &Req, server_id: &str, props: &Value) -> Value {
    let name = admin_name(req);
    let mut p = props.as_object().cloned().unwrap_or_default();
    let mut m = Map::new();
    m.insert(
        "id".into(),
        json!(format!("{server_id}/administrators/{name}")),
    );
    m.insert("name".into(), json!(name));
    if req.is_new_api("2017") {
        m.insert("type".into(), json!(ADMINS));
        p.insert("azureADOnlyAuthentication".into(), json!(false));
    } else {
        p.remove("azureADOnlyAuthentication");
    }
    m.insert("properties".into(), Value::Object(p));
    Value::Object(m)
}

pub(crate) fn administrator(world: &Arc<World>, req: &Req) -> ArmResult {
    check_provider_version(
        req,
        &world.config.location,
        "servers/administrators",
        versions::SQL,
    )?;
    let scope = req.path.clone();
    let child = req.segs[9].clone();
    let action = |verb: &str| format!("{ADMINS}/{verb}");
    let verb = match req.method {
        Method::GET => "read",
        Method::PUT => "write",
        Method::DELETE => "delete",
        _ => return Err(super::method_not_allowed(req)),
    };
    authorize(world, req, &action(verb), &scope)?;
    let (server_id, server) = parent(world, req)?;
    let key = format!("{server_id}/administrators/activeDirectory").to_ascii_lowercase();
    if !child.eq_ignore_ascii_case("activedirectory") {
        return Err(ArmError::not_found(
            "ResourceNotFound",
            format!(
                "The requested resource of type '{ADMINS}' with name '{server}/{child}' was not found."
            ),
        ));
    }
    let server_key = server_id.to_ascii_lowercase();
    match req.method {
        Method::GET => {
            let st = world.lock();
            let Some(r) = st.resources.get(&key) else {
                return Err(ArmError::not_found(
                    "ResourceNotFound",
                    format!(
                        "The requested resource of type '{ADMINS}' with name '{server}/{child}' was not found."
                    ),
                ));
            };
            let v = render_admin(req, &server_id, &r.properties);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT => {
            let body = req.json()?;
            let Some(props) = body.get("properties").and_then(Value::as_object) else {
                return Err(invalid_body());
            };
            let text = |k: &str| {
                props
                    .get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            match text("administratorType") {
                Some(t) if t.eq_ignore_ascii_case("ActiveDirectory") => {}
                Some(_) => {
                    return Err(ArmError::bad_request(
                        "InvalidServerAdministratorTypePropertyName",
                        "Server active directory administrator type should be ActiveDirectory",
                    ));
                }
                None => return Err(invalid_body()),
            }
            let (Some(login), Some(sid)) = (text("login"), text("sid")) else {
                return Err(invalid_body());
            };
            let tenant = text("tenantId");
            if !req.is_new_api("2017") && tenant.is_none() {
                return Err(invalid_body());
            }
            if !util::is_guid(sid) || tenant.is_some_and(|t| !util::is_guid(t)) {
                return Err(invalid_body());
            }
            let mut st = world.lock();
            // The sid is an object id (users, groups) or, for applications, the app id.
            let admin_oid = st
                .directory
                .by_app_id(sid)
                .or_else(|| st.directory.get(sid))
                .map_or_else(|| sid.to_owned(), |sp| sp.object_id.clone());
            let stored = json!({
                "administratorType": "ActiveDirectory",
                "login": login,
                "sid": sid,
                "tenantId": tenant.map_or_else(|| world.tenant_id.clone(), str::to_owned),
            });
            let created = !st.resources.contains_key(&key);
            let r = Resource {
                id: format!("{server_id}/administrators/activeDirectory"),
                resource_group: super::rg_name(req),
                rtype: ADMINS.to_owned(),
                name: "activeDirectory".to_owned(),
                location: String::new(),
                tags: None,
                properties: stored.clone(),
                extra: Map::new(),
                identity: None,
                uami: None,
                unique_id: util::guid(),
                created: world.now(),
                busy_until: None,
            };
            st.resources.insert(key, r);
            if let Some(s) = st.sql_servers.get(&server_key) {
                s.tds.state().set_admin(&admin_oid);
            }
            drop(st);
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            ok(status, &render_admin(req, &server_id, &stored))
        }
        _ => {
            let mut st = world.lock();
            if st.resources.remove(&key).is_none() {
                return empty(StatusCode::NO_CONTENT);
            }
            if let Some(s) = st.sql_servers.get(&server_key) {
                s.tds.state().set_admin("");
            }
            drop(st);
            empty(StatusCode::OK)
        }
    }
}
