//! The data planes of the live docs world: the storage account with the tutorials' container
//! and blob, and the key vault with their secret, provisioned as the live scenarios do
//! (`scenarios/storage`, `scenarios/keyvault`): ARM REST as the deployer (ledger first), the
//! blob uploaded with the account key (Shared Key, as the portal does for its user), the
//! secret stored with the deployer's Key Vault token from the configured credential, and the
//! grants the tutorials give `myVM`'s system-assigned identity (Storage Blob Data Reader and
//! Storage Account Contributor on the account, a "Secret Management" access policy).
//!
//! Storage account and vault names are global: the run's are `micdocs<run id>`; the docs'
//! names (`mystorageaccount`, `mykeyvault`) are mapped to them on the way out and back in
//! the answers, like the resource groups.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use mic_core::backend::{HttpRequest, HttpResponse, Route};
use serde_json::{Value, json};

use super::{Deployer, describe};
use crate::docs::{BLOB, CONTAINER, LINUX_VM, SECRET};

pub(super) const STORAGE_API: &str = "2023-05-01";
pub(super) const KEYVAULT_API: &str = "2023-07-01";
const KEYVAULT_DATA_API: &str = "7.4";
const BLOB_VERSION: &str = "2017-11-09";
pub(super) const STORAGE_RESOURCE: &str = "https://storage.azure.com/";
pub(super) const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// The tutorials' sample file and secret (their example outputs print them).
const BLOB_TEXT: &str = "Hello world! :)";
const SECRET_VALUE: &str = "p@ssw0rd!";
/// The portal's "Secret Management" access-policy template.
const SECRET_MANAGEMENT: [&str; 7] = [
    "get", "list", "set", "delete", "recover", "backup", "restore",
];

/// The world's storage account and key vault on live.
#[derive(Default)]
pub(super) struct LiveData {
    /// Why they are not there (a subscription policy refusing Shared Key, a quota ...): the
    /// check goes on without them, their examples are "not checkable" with this reason.
    pub failed: Option<String>,
    /// The account's name on Azure (`micdocs<run id>`).
    pub account: String,
    pub account_id: String,
    /// `properties.primaryEndpoints.blob`, without the trailing slash.
    pub blob_base: String,
    pub vault: String,
    /// `properties.vaultUri`, without the trailing slash.
    pub vault_base: String,
    /// The account's first key (`<STORAGE ACCOUNT KEY>`).
    pub storage_key: String,
    /// Every key listKeys returned: masked in reports.
    pub keys: Vec<String>,
    /// `myVM`'s tokens for Storage and Key Vault (fetched from IMDS inside the VM).
    pub vm_storage_token: String,
    pub vm_vault_token: String,
    /// The deployer's Key Vault token (it stored the secret).
    pub deployer_vault_token: String,
}

impl LiveData {
    pub(super) fn unavailable(reason: String) -> Self {
        Self {
            failed: Some(reason),
            ..Self::default()
        }
    }

    /// Why the examples of the data planes cannot run, if they cannot.
    pub(super) fn refusal(&self) -> Option<String> {
        self.failed.as_ref().map(|why| {
            format!(
                "the world's storage account and key vault could not be provisioned on live: {why}"
            )
        })
    }
}

/// `<prefix><run id>`: 3-24 lower-case letters and digits (storage), starting with a letter
/// (Key Vault). The account is `micdocs<run id>`, the vault `micdocskv<run id>` (distinct, so
/// that answers map back to the docs' names unambiguously).
pub(super) fn global_name(prefix: &str, run_id: &str) -> String {
    let mut s = String::from(prefix);
    s.extend(
        run_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
    s.truncate(24);
    s
}

fn field(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string()
}

impl Deployer {
    /// An ARM request as the deployer that must succeed.
    async fn arm_call(&self, method: &str, id: &str, api: &str) -> Result<Value> {
        let req = HttpRequest::new(method, self.url(id, api))
            .header("Authorization", format!("Bearer {}", self.token));
        let resp = self.send(Route::Direct, req).await?;
        if !resp.is_success() {
            bail!("{method} {id} answered {}", describe(&resp));
        }
        Ok(resp.json().unwrap_or(Value::Null))
    }

    /// A data-plane request that must succeed, retried while a new account or vault is not
    /// reachable yet (DNS) or the deployer's access is not effective yet (403), within
    /// `budget`. `make` builds the request afresh each time (Shared Key signs the date).
    async fn data_call(
        &self,
        what: &str,
        budget: Duration,
        make: impl Fn() -> Result<HttpRequest>,
    ) -> Result<HttpResponse> {
        let started = Instant::now();
        loop {
            let last = match self.send(Route::Direct, make()?).await {
                // A retried create the service had already done.
                Ok(r)
                    if r.is_success()
                        || (r.status == 409 && summary(&r).contains("AlreadyExists")) =>
                {
                    return Ok(r);
                }
                Ok(r) if r.status != 403 && r.status != 404 => {
                    bail!("{what} answered {} {}", r.status, summary(&r));
                }
                Ok(r) => format!("{} {}", r.status, summary(&r)),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= budget {
                bail!("{what} did not succeed within {budget:?}: {last}");
            }
            tokio::time::sleep(self.poll()).await;
        }
    }
}

/// A short, key-free summary of a data-plane error (JSON `error`, or the storage XML code).
fn summary(r: &HttpResponse) -> String {
    let text = r.text();
    if let Some(e) = r.json().and_then(|b| b.get("error").cloned()) {
        return format!(
            "{}: {}",
            e.get("code").and_then(Value::as_str).unwrap_or(""),
            e.get("message").and_then(Value::as_str).unwrap_or("")
        );
    }
    text.split("<Code>")
        .nth(1)
        .and_then(|t| t.split("</Code>").next())
        .unwrap_or("")
        .to_string()
}

/// What the data planes need from the world already provisioned.
pub(super) struct Ctx<'a> {
    pub deployer: &'a Deployer,
    pub rg_id: &'a str,
    pub location: &'a str,
    pub tenant_id: &'a str,
    pub run_id: &'a str,
    pub host_vm_id: &'a str,
    pub vm_principal: &'a str,
    pub vm_arm_token: &'a str,
    pub budget: Duration,
}

impl Ctx<'_> {
    pub(super) async fn provision(&self, notes: &mut Vec<String>) -> Result<LiveData> {
        let d = self.deployer;
        let (rg, loc, vm, budget) = (self.rg_id, self.location, self.vm_principal, self.budget);
        let name = global_name("micdocs", self.run_id);
        let vault_name = global_name("micdocskv", self.run_id);
        // Storage: a StorageV2 account (the cheapest redundancy), the tutorials' container
        // and blob uploaded with the account key.
        let account_id = format!("{rg}/providers/Microsoft.Storage/storageAccounts/{name}");
        d.put(
            &account_id,
            STORAGE_API,
            &json!({"location": loc, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}),
        )
        .await?;
        let account = d.arm_call("GET", &account_id, STORAGE_API).await?;
        let blob_base = field(&account, "/properties/primaryEndpoints/blob");
        if blob_base.is_empty() {
            bail!("storage account {name} has no primaryEndpoints.blob");
        }
        let keys = d
            .arm_call("POST", &format!("{account_id}/listKeys"), STORAGE_API)
            .await?;
        let storage_key = field(&keys, "/keys/0/value");
        if storage_key.is_empty() {
            bail!("listKeys of {name} gave no key");
        }
        let mut all_keys = Vec::new();
        crate::docs::collect_strings(&keys, &mut all_keys);
        all_keys.retain(|k| k.len() >= 20);
        for (path, body) in [
            (format!("{CONTAINER}?restype=container"), None),
            (format!("{CONTAINER}/{BLOB}"), Some(BLOB_TEXT)),
        ] {
            let url = format!("{blob_base}/{path}");
            let make = || {
                let mut req =
                    HttpRequest::new("PUT", url.clone()).header("x-ms-version", BLOB_VERSION);
                if let Some(b) = body {
                    req = req
                        .header("x-ms-blob-type", "BlockBlob")
                        .header("Content-Type", "text/plain");
                    req.body = Some(b.as_bytes().to_vec());
                }
                mic_core::sign::shared_key(&name, &storage_key, &mut req)
                    .map_err(|e| anyhow!("signing the upload: {e}"))?;
                Ok(req)
            };
            d.data_call(
                &format!("PUT {CONTAINER}/{}", if body.is_some() { BLOB } else { "" }),
                budget,
                make,
            )
            .await?;
        }
        for role in ["Storage Blob Data Reader", "Storage Account Contributor"] {
            d.grant_role(&account_id, role, vm, budget).await?;
        }
        // Key Vault: the deployer's access policy (to store the secret), the secret, and the
        // "Secret Management" policy the tutorial gives the VM. Soft-deleted vaults cost
        // nothing; the shortest retention keeps the run's name reserved for 7 days only.
        let vault_id = format!("{rg}/providers/Microsoft.KeyVault/vaults/{vault_name}");
        let tenant = self.tenant_id;
        let deployer_oid = d.env.deployer().object_id.clone();
        d.put(
            &vault_id,
            KEYVAULT_API,
            &json!({"location": loc, "properties": {
                "tenantId": tenant, "sku": {"family": "A", "name": "standard"},
                "softDeleteRetentionInDays": 7,
                "accessPolicies": [{"tenantId": tenant, "objectId": deployer_oid, "permissions": {"keys": [], "secrets": ["get", "list", "set", "delete"], "certificates": []}}],
            }}),
        )
        .await?;
        d.put(
            &format!("{vault_id}/accessPolicies/add"),
            KEYVAULT_API,
            &json!({"properties": {"accessPolicies": [{
                "tenantId": tenant, "objectId": vm,
                "permissions": {"keys": [], "secrets": SECRET_MANAGEMENT, "certificates": []},
            }]}}),
        )
        .await?;
        let vault = d.arm_call("GET", &vault_id, KEYVAULT_API).await?;
        let vault_base = field(&vault, "/properties/vaultUri");
        if vault_base.is_empty() {
            bail!("key vault {vault_name} has no vaultUri");
        }
        let deployer_vault_token = match d.env.deployer_token_for(VAULT_RESOURCE).await {
            Some(t) => t.map_err(|e| anyhow!("the deployer's Key Vault token: {e}"))?,
            None => bail!("the live environment gives no Key Vault token"),
        };
        let secret_url = format!("{vault_base}/secrets/{SECRET}?api-version={KEYVAULT_DATA_API}");
        d.data_call(&format!("PUT secret {SECRET}"), budget, || {
            Ok(HttpRequest::new("PUT", secret_url.clone())
                .header("Authorization", format!("Bearer {deployer_vault_token}"))
                .json(&json!({"value": SECRET_VALUE})))
        })
        .await?;
        // The VM's data-plane tokens, from IMDS inside the VM.
        let vm_storage_token = d
            .imds_token(self.host_vm_id, STORAGE_RESOURCE, budget)
            .await?;
        let vm_vault_token = d
            .imds_token(self.host_vm_id, VAULT_RESOURCE, budget)
            .await?;
        let data = LiveData {
            failed: None,
            account: name,
            account_id,
            blob_base,
            vault: vault_name,
            vault_base,
            storage_key,
            keys: all_keys,
            vm_storage_token,
            vm_vault_token,
            deployer_vault_token,
        };
        self.wait_for_grants(&data, notes).await;
        Ok(data)
    }

    /// Propagation: the VM reads the blob with its Storage token, lists the keys with its
    /// ARM token and reads the secret with its Key Vault token, once its grants are
    /// effective (bounded by the budget; what is not confirmed becomes a note).
    async fn wait_for_grants(&self, data: &LiveData, notes: &mut Vec<String>) {
        let d = self.deployer;
        let checks: [(&str, HttpRequest); 3] = [
            (
                "the VM's Storage Blob Data Reader grant",
                HttpRequest::new("GET", format!("{}/{CONTAINER}/{BLOB}", data.blob_base))
                    .header("x-ms-version", BLOB_VERSION)
                    .header("Authorization", format!("Bearer {}", data.vm_storage_token)),
            ),
            (
                "the VM's Storage Account Contributor grant",
                HttpRequest::new(
                    "POST",
                    d.url(&format!("{}/listKeys", data.account_id), STORAGE_API),
                )
                .header("Authorization", format!("Bearer {}", self.vm_arm_token)),
            ),
            (
                "the VM's Key Vault access policy",
                HttpRequest::new(
                    "GET",
                    format!(
                        "{}/secrets/{SECRET}?api-version={KEYVAULT_DATA_API}",
                        data.vault_base
                    ),
                )
                .header("Authorization", format!("Bearer {}", data.vm_vault_token)),
            ),
        ];
        let mut pending: Vec<(&str, HttpRequest, u16)> =
            checks.into_iter().map(|(w, r)| (w, r, 0)).collect();
        let started = Instant::now();
        loop {
            let mut still = Vec::new();
            for (what, req, _) in pending {
                let status = d
                    .send(Route::Direct, req.clone())
                    .await
                    .map_or(0, |r| r.status);
                if !(200..300).contains(&status) {
                    still.push((what, req, status));
                }
            }
            pending = still;
            if pending.is_empty() {
                return;
            }
            if started.elapsed() >= self.budget {
                for (what, _, status) in pending {
                    notes.push(format!(
                        "{what} was not effective within {} s (last answer {status}): {LINUX_VM}'s requests may be denied",
                        self.budget.as_secs()
                    ));
                }
                return;
            }
            tokio::time::sleep(d.poll()).await;
        }
    }
}
