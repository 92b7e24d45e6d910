//! Microsoft.Network, minimal: virtual networks (with inline subnets) and network
//! interfaces, which the live backend creates before a VM as `az vm create` does. A NIC's
//! subnet must exist (ARM's `InvalidResourceReference`); VMs are not required to reference
//! an existing NIC (the fake backend's driver does not create one).

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ArmResult, Req, authorize, empty, ok, with_headers};
use crate::error::{ArmError, json_response};
use crate::util;
use crate::world::{Resource, World};

/// Supported api-versions (what Network lists in its version errors).
pub(crate) const VERSIONS: &[&str] = &[
    "2018-08-01",
    "2019-02-01",
    "2019-11-01",
    "2020-05-01",
    "2020-11-01",
    "2021-02-01",
    "2021-05-01",
    "2021-08-01",
    "2022-01-01",
    "2022-05-01",
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    VirtualNetwork,
    NetworkInterface,
}

impl Kind {
    fn full(self) -> &'static str {
        match self {
            Kind::VirtualNetwork => "Microsoft.Network/virtualNetworks",
            Kind::NetworkInterface => "Microsoft.Network/networkInterfaces",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Kind::VirtualNetwork => "virtualNetworks",
            Kind::NetworkInterface => "networkInterfaces",
        }
    }
}

fn child_ids(id: &str, props: &mut Map<String, Value>, key: &str, child: &str) {
    if let Some(Value::Array(items)) = props.get_mut(key) {
        for item in items.iter_mut() {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(o) = item.as_object_mut() {
                o.insert("id".into(), json!(format!("{id}/{child}/{name}")));
                let p = o.entry("properties").or_insert_with(|| json!({}));
                if let Some(p) = p.as_object_mut() {
                    p.insert("provisioningState".into(), json!("Succeeded"));
                }
            }
        }
    }
}

/// A virtual network or NIC in Network's shape.
pub(crate) fn render(r: &Resource) -> Value {
    let mut m = super::resource_head(r);
    m.insert("etag".into(), json!(format!("W/\"{}\"", r.unique_id)));
    let mut props = r.properties.as_object().cloned().unwrap_or_default();
    props.insert("provisioningState".into(), json!("Succeeded"));
    props.insert("resourceGuid".into(), json!(r.unique_id));
    if r.rtype.eq_ignore_ascii_case(Kind::VirtualNetwork.full()) {
        child_ids(&r.id, &mut props, "subnets", "subnets");
    } else {
        child_ids(&r.id, &mut props, "ipConfigurations", "ipConfigurations");
        if let Some(Value::Array(ips)) = props.get_mut("ipConfigurations") {
            for (i, ip) in ips.iter_mut().enumerate() {
                if let Some(p) = ip.get_mut("properties").and_then(Value::as_object_mut) {
                    p.entry("privateIPAddress")
                        .or_insert_with(|| json!(format!("10.0.0.{}", i + 4)));
                    p.entry("privateIPAllocationMethod")
                        .or_insert_with(|| json!("Dynamic"));
                }
            }
        }
    }
    m.insert("properties".into(), Value::Object(props));
    Value::Object(m)
}

/// Every `ipConfigurations[].properties.subnet.id` must name a subnet of an existing network.
fn check_subnets(world: &World, nic_id: &str, props: &Value) -> Result<(), ArmError> {
    let st = world.lock();
    for ip in props
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(subnet) = ip.pointer("/properties/subnet/id").and_then(Value::as_str) else {
            continue;
        };
        let found = subnet.rsplit_once("/subnets/").is_some_and(|(vnet, name)| {
            st.resources
                .get(&vnet.to_ascii_lowercase())
                .and_then(|v| v.properties.get("subnets").and_then(Value::as_array))
                .is_some_and(|subs| {
                    subs.iter().any(|s| {
                        s.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    })
                })
        });
        if !found {
            return Err(ArmError::bad_request(
                "InvalidResourceReference",
                format!(
                    "Resource {subnet} referenced by resource {nic_id} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
                ),
            ));
        }
    }
    Ok(())
}

/// PUT / GET / DELETE of a virtual network or NIC.
pub(crate) fn handle(world: &Arc<World>, req: &Req, kind: Kind) -> ArmResult {
    let super::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = super::target(world, req, kind.full(), kind.short(), VERSIONS)?;
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{}/read", kind.full()), &req.path)?;
            let st = world.lock();
            if rg_loc.is_none() {
                return Err(super::rg_not_found(&rg));
            }
            match st.resources.get(&key) {
                Some(r) => {
                    let v = render(r);
                    drop(st);
                    ok(StatusCode::OK, &v)
                }
                None => Err(super::resource_not_found(kind.full(), &name, &rg)),
            }
        }
        Method::PUT => {
            authorize(world, req, &format!("{}/write", kind.full()), &req.path)?;
            let body = req.json()?;
            let Some(_) = rg_loc else {
                return Err(super::rg_not_found(&rg));
            };
            let location = super::norm_location(&super::required_location(&body)?);
            let tags = super::tags_of(&body)?;
            let properties = match body.get("properties") {
                None | Some(Value::Null) => json!({}),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => {
                    return Err(ArmError::bad_request(
                        "InvalidRequestFormat",
                        "Cannot parse the request.",
                    ));
                }
            };
            if kind == Kind::NetworkInterface {
                check_subnets(world, &id, &properties)?;
            }
            let mut st = world.lock();
            let existing = st.resources.get(&key).cloned();
            let r = Resource {
                id: id.clone(),
                resource_group: rg.clone(),
                rtype: kind.full().to_owned(),
                name: existing.as_ref().map_or(name, |e| e.name.clone()),
                location: location.clone(),
                tags,
                properties,
                extra: Map::new(),
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
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let headers = super::lro_headers(world, req, "Microsoft.Network", &location, false);
            Ok(with_headers(json_response(status, &render(&r)), &headers))
        }
        Method::DELETE => {
            authorize(world, req, &format!("{}/delete", kind.full()), &req.path)?;
            let mut st = world.lock();
            let Some(r) = st.resources.get(&key).cloned() else {
                return empty(StatusCode::NO_CONTENT);
            };
            super::resources::purge(&mut st, &r.id);
            drop(st);
            let headers = super::lro_headers(world, req, "Microsoft.Network", &r.location, true);
            Ok(with_headers(
                axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
                &headers,
            ))
        }
        _ => Err(super::method_not_allowed(req)),
    }
}
