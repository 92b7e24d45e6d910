//! Driver code for Key Vault (vault, secret, access-policy grant) and Cosmos DB (account).
//!
//! Everything goes through the same wire protocols as the portal and the tutorials: ARM
//! REST as the deployer, and the vault's data plane with a deployer token for
//! `https://vault.azure.net` (client credentials, as `az keyvault secret set` signs in).

use serde_json::{Value, json};

use super::{Run, StepError, StepRecord};
use crate::backend::{HttpRequest, Route};
use crate::model::{ProvisionKind, Step};

const KEYVAULT_API: &str = "2023-07-01";
const KEYVAULT_DATA_API: &str = "7.4";
const COSMOS_API: &str = "2024-05-15";
const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// Key Vault Secrets Officer: the deployer's data role on an RBAC-model vault.
const SECRETS_OFFICER: &str = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7";
/// The portal's "Secret Management" access-policy template.
const SECRET_MANAGEMENT: &[&str] = &[
    "get", "list", "set", "delete", "recover", "backup", "restore",
];

impl Run<'_> {
    pub(super) async fn provision_kvcosmos(
        &mut self,
        kind: ProvisionKind,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let ep = self.env.endpoints().clone();
        let sub = format!("/subscriptions/{}", ep.subscription_id);
        let api = self.str_field(step, "api_version")?;
        let location = self
            .str_field(step, "location")?
            .unwrap_or_else(|| ep.location.clone());
        match kind {
            ProvisionKind::KeyVault => {
                let name = self.req_field(step, "name")?;
                let rg = self.req_field(step, "resource_group")?;
                let rbac = step
                    .fields
                    .bool("enable_rbac_authorization")
                    .unwrap_or(false);
                let mut perms = self.list_field(step, "deployer_secret_permissions")?;
                if perms.is_empty() {
                    perms = ["get", "list", "set", "delete"]
                        .iter()
                        .map(|s| (*s).to_string())
                        .collect();
                }
                let path =
                    format!("{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}");
                let api = api.unwrap_or_else(|| KEYVAULT_API.into());
                let deployer = self.env.deployer().object_id.clone();
                let policies = if rbac {
                    json!([])
                } else {
                    json!([{"tenantId": ep.tenant_id, "objectId": deployer, "permissions": {"keys": [], "secrets": perms, "certificates": []}}])
                };
                let mut properties = json!({
                    "tenantId": ep.tenant_id,
                    "sku": {"family": "A", "name": "standard"},
                    "accessPolicies": policies,
                });
                if rbac {
                    properties["enableRbacAuthorization"] = json!(true);
                }
                let body = json!({"location": location, "properties": properties});
                let put = self.arm("PUT", &path, &api, Some(&body), record).await?;
                if !Self::response(record, put)?.is_success() {
                    record.primary = Some(put);
                    return Ok(None);
                }
                if rbac {
                    // The deployer needs a data role to store the secret on an RBAC vault.
                    let ra = format!(
                        "{path}/providers/Microsoft.Authorization/roleAssignments/{}",
                        uuid::Uuid::new_v4()
                    );
                    let role = format!(
                        "{sub}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_OFFICER}"
                    );
                    let b = json!({"properties": {"roleDefinitionId": role, "principalId": deployer, "principalType": "ServicePrincipal"}});
                    let i = self.arm("PUT", &ra, "2022-04-01", Some(&b), record).await?;
                    if !Self::response(record, i)?.is_success() {
                        record.primary = Some(i);
                        return Ok(None);
                    }
                }
                let get = self.arm("GET", &path, &api, None, record).await?;
                record.primary = Some(get);
                let body = Self::response(record, get)?.json().unwrap_or(Value::Null);
                Ok(Some(json!({
                    "id": body.get("id").cloned().unwrap_or(json!(path)),
                    "name": name,
                    "vault_uri": body.pointer("/properties/vaultUri").cloned().unwrap_or(Value::Null),
                })))
            }
            ProvisionKind::KeyVaultSecret => {
                let uri = self.req_field(step, "vault_uri")?;
                let name = self.req_field(step, "name")?;
                let value = self.req_field(step, "value")?;
                self.secrets.push((value.clone(), "secret-value"));
                let api = api.unwrap_or_else(|| KEYVAULT_DATA_API.into());
                let token = self.deployer_token_for(VAULT_RESOURCE).await?;
                let url = format!(
                    "{}/secrets/{name}?api-version={api}",
                    uri.trim_end_matches('/')
                );
                let req = HttpRequest::new("PUT", url)
                    .header("Authorization", format!("Bearer {token}"))
                    .json(&json!({"value": value}));
                // On an RBAC vault the deployer's own Secrets Officer assignment (made with
                // the vault) propagates like any grant: retry a 403 within the budget.
                let budget = self.env.propagation_budget();
                let started = std::time::Instant::now();
                let mut wait = std::time::Duration::from_millis(50);
                let i = loop {
                    let i = self.send(Route::Direct, req.clone(), record).await;
                    let denied = record.exchanges[i]
                        .response
                        .as_ref()
                        .is_some_and(|r| r.status == 403);
                    if !denied || started.elapsed() + wait >= budget {
                        break i;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.env.max_poll_interval());
                };
                record.primary = Some(i);
                let body = Self::response(record, i)?.json().unwrap_or(Value::Null);
                let id = body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let version = id.rsplit('/').next().unwrap_or_default().to_string();
                Ok(Some(json!({"id": id, "name": name, "version": version})))
            }
            ProvisionKind::CosmosAccount => {
                let name = self.req_field(step, "name")?;
                let rg = self.req_field(step, "resource_group")?;
                let kind = self
                    .str_field(step, "kind")?
                    .unwrap_or_else(|| "GlobalDocumentDB".into());
                let path = format!(
                    "{sub}/resourceGroups/{rg}/providers/Microsoft.DocumentDB/databaseAccounts/{name}"
                );
                let api = api.unwrap_or_else(|| COSMOS_API.into());
                let body = json!({
                    "location": location,
                    "kind": kind,
                    "properties": {
                        "databaseAccountOfferType": "Standard",
                        "locations": [{"locationName": location, "failoverPriority": 0}],
                    },
                });
                let Some(body) = self.put_and_read(&path, &api, &body, record).await? else {
                    return Ok(None);
                };
                Ok(Some(json!({
                    "id": body.get("id").cloned().unwrap_or(json!(path)),
                    "name": name,
                    "document_endpoint": body.pointer("/properties/documentEndpoint").cloned().unwrap_or(Value::Null),
                })))
            }
            _ => Err(StepError(format!(
                "`{}` is not a Key Vault or Cosmos DB kind",
                kind.key()
            ))),
        }
    }

    /// `grant = "key_vault_access_policy"`: PUT `<vault>/accessPolicies/add` as the deployer.
    pub(super) async fn grant_access_policy(
        &mut self,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let ep = self.env.endpoints().clone();
        let vault = self.req_field(step, "vault")?;
        let rg = self.req_field(step, "resource_group")?;
        let principal = self.req_field(step, "principal")?;
        let tenant = self
            .str_field(step, "tenant")?
            .unwrap_or_else(|| ep.tenant_id.clone());
        let mut perms = self.list_field(step, "secret_permissions")?;
        if perms.is_empty() {
            perms = SECRET_MANAGEMENT.iter().map(|s| (*s).to_string()).collect();
        }
        let api = self
            .str_field(step, "api_version")?
            .unwrap_or_else(|| KEYVAULT_API.into());
        let path = format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/accessPolicies/add",
            ep.subscription_id
        );
        let body = json!({"properties": {"accessPolicies": [{
            "tenantId": tenant, "objectId": principal,
            "permissions": {"keys": [], "secrets": perms, "certificates": []},
        }]}});
        let i = self.arm("PUT", &path, &api, Some(&body), record).await?;
        record.primary = Some(i);
        Ok(Some(json!({})))
    }
}
