//! Execution seam: the checker hands each operation, with placeholders filled from
//! the [`World`], to an [`Executor`]. The fake cloud (or live Azure) plugs in here.
//!
//! The trait is synchronous: the checker walks an article in order and every step
//! depends on the previous one; an async backend can `block_on` inside `execute`.
//!
//! Contract: `Ok(response)` means the request reached a service (any HTTP status);
//! `Err(message)` means it was not executed (no backend, unsupported service,
//! transport failure) and the block is reported "not checkable" with that message.

use crate::op::{Action, DocOperation, split_url};
use crate::placeholder::World;
use crate::specs::{self, Service};
use serde::Serialize;

/// A request ready to send: placeholders replaced where the world knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub service: Service,
    pub action: Action,
    /// Request inferred from a CLI/PowerShell command rather than printed by the doc.
    pub inferred: bool,
    /// 1-based article line of the command.
    pub line: usize,
    /// Placeholders left as written because the world has no value for them.
    pub unresolved: Vec<String>,
}

impl ResolvedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the backend answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Runs resolved requests against a backend.
pub trait Executor {
    fn execute(&self, op: &ResolvedRequest) -> Result<ExecResponse, String>;

    /// Sign a storage request with Shared Key (`Authorization: SharedKey account:sig`, adds
    /// `x-ms-date`). The key stays with the executor's signer; backends that cannot sign
    /// say why (the command is then not checkable).
    fn sign_shared_key(
        &self,
        _req: &mut ResolvedRequest,
        _account: &str,
        _key: &str,
    ) -> Result<(), String> {
        Err("this backend does not sign Shared Key requests".into())
    }
}

/// Fill placeholders of an operation from the world.
pub fn resolve(op: &DocOperation, world: &World) -> ResolvedRequest {
    let mut unresolved = Vec::new();
    let mut sub = |s: &str| {
        let (v, u) = world.substitute(s);
        for x in u {
            if !unresolved.contains(&x) {
                unresolved.push(x);
            }
        }
        v
    };
    let url = sub(&op.url);
    let headers = op
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), sub(v)))
        .collect();
    let body = op.body.as_deref().map(&mut sub);
    ResolvedRequest {
        method: op.method.clone(),
        url,
        headers,
        body,
        service: op.service,
        action: op.action.clone(),
        inferred: op.inferred,
        line: op.line,
        unresolved,
    }
}

/// Executor for offline runs: executes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotExecuted;

impl Executor for NotExecuted {
    fn execute(&self, _op: &ResolvedRequest) -> Result<ExecResponse, String> {
        Err("not executed (offline run, no executor)".into())
    }
}

/// A stub that behaves like IMDS and ARM enough for tests: it enforces the contract
/// facts of the spec tables (Metadata header, api-versions, known audiences, bearer
/// token) and answers with the documented shapes (token fields are all strings).
#[derive(Debug, Clone, Default)]
pub struct StubCloud;

fn json_response(status: u16, body: &serde_json::Value) -> ExecResponse {
    ExecResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

impl StubCloud {
    fn imds(req: &ResolvedRequest) -> ExecResponse {
        use serde_json::json;
        let parts = split_url(&req.url);
        if req.method != "GET" && req.service == Service::Imds {
            return json_response(
                405,
                &json!({"error":"method_not_allowed","error_description":"Method not allowed"}),
            );
        }
        if req.header("Metadata") != Some("true") {
            return json_response(
                400,
                &json!({"error":"bad_request_102","error_description":"Required metadata header not specified"}),
            );
        }
        if req.service == Service::Imds {
            let Some(v) = parts.query_value("api-version") else {
                return json_response(
                    400,
                    &json!({"error":"invalid_request","error_description":"Required query variable 'api-version' is missing"}),
                );
            };
            if !specs::data_plane_versions(Service::Imds).is_some_and(|vs| vs.contains(&v)) {
                return json_response(
                    400,
                    &json!({"error":"invalid_request","error_description":format!("Invalid version '{v}'")}),
                );
            }
        }
        let resource = match &req.action {
            Action::ImdsToken {
                resource: Some(r), ..
            } => r.clone(),
            _ => {
                return json_response(
                    400,
                    &json!({"error":"invalid_request","error_description":"Required query variable 'resource' is missing"}),
                );
            }
        };
        if specs::audience_service(&resource).is_none() {
            return json_response(
                400,
                &json!({"error":"invalid_resource","error_description":format!("AADSTS50001: The application named {resource} was not found in the tenant named 00000000-0000-0000-0000-000000000000.")}),
            );
        }
        json_response(
            200,
            &json!({
                "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.stub.sig",
                "refresh_token": "",
                "expires_in": "3599",
                "expires_on": "1504130527",
                "not_before": "1504126627",
                "resource": resource,
                "token_type": "Bearer"
            }),
        )
    }

    fn arm(req: &ResolvedRequest) -> ExecResponse {
        use serde_json::json;
        let parts = split_url(&req.url);
        let auth = req.header("Authorization").unwrap_or("");
        if !auth.starts_with("Bearer ") || auth.len() <= 7 {
            return json_response(
                401,
                &json!({"error":{"code":"AuthenticationFailed","message":"Authentication failed. The 'Authorization' header is missing."}}),
            );
        }
        // Requests inferred from a CLI/PowerShell command carry the tool's own version.
        let v = match parts.query_value("api-version") {
            Some(v) => v.to_string(),
            None if req.inferred => String::new(),
            None => {
                return json_response(
                    400,
                    &json!({"error":{"code":"MissingApiVersionParameter","message":"The api-version query parameter (?api-version=) is required for all requests."}}),
                );
            }
        };
        let v = v.as_str();
        let Action::Arm { resource_type, .. } = &req.action else {
            return json_response(
                400,
                &json!({"error":{"code":"InvalidRequest","message":"not an ARM operation"}}),
            );
        };
        if let Some(accepted) = specs::arm_versions(resource_type)
            && !v.is_empty()
            && !accepted.contains(&v)
        {
            return json_response(
                400,
                &json!({"error":{"code":"NoRegisteredProviderFound","message":format!("No registered resource provider found for location 'westus' and API version '{v}' for type '{resource_type}'. The supported api-versions are '{}'.", accepted.join(", "))}}),
            );
        }
        let path = parts.path.trim_end_matches('/');
        let name = path.rsplit('/').next().unwrap_or("");
        if req.method == "GET" && name.eq_ignore_ascii_case("roleDefinitions") {
            // Three built-in roles, enough for the look-up `--role <name>` makes.
            const ROLES: [(&str, &str); 3] = [
                ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
                ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
                ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
            ];
            let filter = parts.query_value("$filter").unwrap_or_default();
            let value: Vec<serde_json::Value> = ROLES
                .iter()
                .filter(|(n, _)| filter.contains(&format!("'{n}'")))
                .map(|(n, id)| json!({"id": format!("{path}/{id}"), "name": id, "properties": {"roleName": n}}))
                .collect();
            return json_response(200, &json!({ "value": value }));
        }
        let mut body = if resource_type.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups") {
            json!({"id": path, "name": name, "location": "westus", "properties": {"provisioningState": "Succeeded"}})
        } else if req.method == "POST" && path.to_ascii_lowercase().ends_with("listkeys") {
            json!({"keys":[{"keyName":"key1","permissions":"Full","value":"stubkey1=="},{"keyName":"key2","permissions":"Full","value":"stubkey2=="}]})
        } else {
            json!({"id": path, "name": name, "type": resource_type, "location": "westus"})
        };
        if let (Some(b), serde_json::Value::Object(out)) = (req.body.as_deref(), &mut body)
            && let Ok(serde_json::Value::Object(sent)) =
                serde_json::from_str::<serde_json::Value>(b)
        {
            for (k, v) in sent {
                out.entry(k).or_insert(v);
            }
        }
        json_response(if req.method == "PUT" { 201 } else { 200 }, &body)
    }
}

impl Executor for StubCloud {
    fn execute(&self, req: &ResolvedRequest) -> Result<ExecResponse, String> {
        use serde_json::json;
        match req.service {
            Service::Imds | Service::Extension => Ok(Self::imds(req)),
            Service::Arm if !req.url.is_empty() => Ok(Self::arm(req)),
            // The service-principal look-up of `--assignee`: any GUID is a principal.
            Service::Graph if req.method == "GET" && req.url.contains("/servicePrincipals?") => {
                let parts = split_url(&req.url);
                let filter = parts.query_value("$filter").unwrap_or_default();
                let id = filter.split('\'').nth(1).unwrap_or_default();
                let value =
                    if filter.starts_with("objectId") && crate::placeholder::looks_like_guid(id) {
                        vec![json!({"objectId": id, "appId": id, "displayName": "stub principal"})]
                    } else {
                        Vec::new()
                    };
                Ok(json_response(200, &json!({ "value": value })))
            }
            s => Err(format!("stub cloud does not simulate {}", s.name())),
        }
    }
}
