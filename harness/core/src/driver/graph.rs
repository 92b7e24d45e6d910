//! Azure AD Graph steps (`grant = "graph_app_role"`, `grant = "graph_group_member"`) and
//! operator tokens for other resources than ARM (`as_deployer_for`).

use serde_json::{Value, json};

use super::{Run, StepError, StepRecord};
use crate::backend::{DeployerAuth, Environment, HttpRequest, Route};
use crate::model::Step;

/// Azure AD Graph's application id.
const GRAPH_APP_ID: &str = "00000002-0000-0000-c000-000000000000";
/// The resource the operator asks a Graph token for (004 L3555, with the trailing slash).
const GRAPH_RESOURCE: &str = "https://graph.windows.net/";
const GRAPH_API: &str = "api-version=1.6";
const ARM_RESOURCES: &[&str] = &[
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
];

/// The Graph base URL of an environment: its `graph` alias, else the public one.
pub(super) fn base_url(env: &dyn Environment) -> String {
    env.aliases()
        .into_iter()
        .find(|(n, _)| n == "graph")
        .map_or_else(
            || "https://graph.windows.net".to_string(),
            |(_, u)| u.trim_end_matches('/').to_string(),
        )
}

impl Run<'_> {
    fn graph_base(&self) -> String {
        self.bindings
            .get_root("graph")
            .and_then(Value::as_str)
            .unwrap_or("https://graph.windows.net")
            .to_string()
    }

    /// A deployer token for `resource` (client credentials), as `az account get-access-token
    /// --resource <resource>` gives the operator. ARM resources reuse the deployer's ARM token.
    pub(super) async fn deployer_token_for(&mut self, resource: &str) -> Result<String, StepError> {
        if ARM_RESOURCES.contains(&resource) {
            return self.deployer_token().await;
        }
        if let Some(t) = self.env.deployer_token_for(resource).await {
            let t =
                t.map_err(|e| StepError(format!("deployer sign-in for {resource} failed: {e}")))?;
            self.secrets.push((t.clone(), "deployer-token"));
            return Ok(t);
        }
        let d = self.env.deployer().clone();
        let DeployerAuth::ClientSecret { client_id, secret } = &d.auth else {
            return Err(StepError(format!(
                "a deployer token for {resource} needs client-secret deployer credentials (this backend only has an ARM token)"
            )));
        };
        let ep = self.env.endpoints();
        let url = format!("{}/{}/oauth2/token", ep.login, ep.tenant_id);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", secret.expose())
            .append_pair("resource", resource)
            .finish();
        let mut req = HttpRequest::new("POST", url.clone());
        req.set_header("Content-Type", "application/x-www-form-urlencoded");
        req.body = Some(form.into_bytes());
        let resp = self
            .env
            .send(Route::Direct, req)
            .await
            .map_err(|e| StepError(format!("deployer sign-in for {resource} failed: {e}")))?;
        let body = resp.json().unwrap_or(Value::Null);
        match body.get("access_token").and_then(Value::as_str) {
            Some(t) if resp.is_success() => {
                self.secrets.push((t.to_string(), "deployer-token"));
                Ok(t.to_string())
            }
            _ => Err(StepError(format!(
                "deployer sign-in for {resource} at {url} failed with {}",
                resp.status
            ))),
        }
    }

    pub(super) async fn graph_app_role(
        &mut self,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let principal = self.req_field(step, "principal")?;
        let role = self.req_field(step, "role")?;
        let app_id = self
            .str_field(step, "app_id")?
            .unwrap_or_else(|| GRAPH_APP_ID.into());
        let base = self.graph_base();
        let token = self.deployer_token_for(GRAPH_RESOURCE).await?;
        let auth = format!("Bearer {token}");
        // As the tutorial does (004 L3566-3572): find the resource app's service principal and its role id.
        let filter = percent_encoding::utf8_percent_encode(
            &format!("appId eq '{app_id}'"),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let lookup = HttpRequest::new(
            "GET",
            format!("{base}/myorganization/servicePrincipals?{GRAPH_API}&$filter={filter}"),
        )
        .header("Authorization", auth.clone());
        let i = self.send(Route::Direct, lookup, record).await;
        let found = Self::response(record, i)?.json().unwrap_or(Value::Null);
        let sp = found.pointer("/value/0").cloned().ok_or_else(|| {
            StepError(format!("no service principal with appId {app_id}: {found}"))
        })?;
        let resource_id = sp
            .get("objectId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let role_id = sp
            .get("appRoles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| {
                r.get("value").and_then(Value::as_str) == Some(role.as_str())
                    && r.get("allowedMemberTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.iter().any(|m| m == "Application"))
            })
            .and_then(|r| r.get("id").and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| {
                StepError(format!(
                    "application {app_id} has no app role `{role}` for applications"
                ))
            })?;
        // 004 L3615-3621.
        let body = json!({"id": role_id, "principalId": principal, "resourceId": resource_id});
        let post = HttpRequest::new(
            "POST",
            format!(
                "{base}/myorganization/servicePrincipals/{principal}/appRoleAssignments?{GRAPH_API}"
            ),
        )
        .header("Authorization", auth)
        .json(&body);
        let i = self.send(Route::Direct, post, record).await;
        record.primary = Some(i);
        let created = Self::response(record, i)?.json().unwrap_or(Value::Null);
        Ok(Some(json!({
            "id": created.get("objectId").cloned().unwrap_or(Value::Null),
            "app_role_id": role_id,
            "resource_id": resource_id,
        })))
    }

    pub(super) async fn graph_group_member(
        &mut self,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let group = self.req_field(step, "group")?;
        let member = self.req_field(step, "member")?;
        let base = self.graph_base();
        let tenant = self.env.endpoints().tenant_id.clone();
        let token = self.deployer_token_for(GRAPH_RESOURCE).await?;
        let body = json!({"url": format!("{base}/{tenant}/directoryObjects/{member}")});
        let req = HttpRequest::new(
            "POST",
            format!("{base}/myorganization/groups/{group}/$links/members?{GRAPH_API}"),
        )
        .header("Authorization", format!("Bearer {token}"))
        .json(&body);
        let i = self.send(Route::Direct, req, record).await;
        record.primary = Some(i);
        Ok(Some(json!({"group": group, "member": member})))
    }
}
