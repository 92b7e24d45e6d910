//! `mic docs check --backend live`: the articles' requests against live Azure.
//!
//! The scenario world is the ARM/IMDS part of the fake world ([`crate::docs::FakeDocsWorld`]),
//! provisioned through mic-live (the same configuration variables as `mic run --backend
//! live`, the same ARM transport with its retries and operation polling, the same ledger,
//! tags and teardown):
//!
//! - resource group `mic-docs-<env>` standing for the docs' `myResourceGroup` (tagged with the
//!   run id, `DeleteAfter` and the environment; written to the ledger before its creation),
//!   one more group per resource group the articles' setup steps create (`myResourceGroupVM`
//!   becomes `mic-docs-<env>-1` ...), and the identities those steps reference;
//! - user-assigned identity `myUserAssignedIdentity`;
//! - Linux VM `myVM` (the configured cheapest size, Ubuntu 22.04, with its virtual network and
//!   NIC) with its system-assigned identity and `myUserAssignedIdentity`;
//! - Reader for both identities on every group; then the VM's ARM token is fetched from IMDS
//!   (inside the VM) and used until Resource Manager lets it read the group (the propagation
//!   wait, bounded by `MIC_LIVE_PROPAGATION_BUDGET_SECS`);
//! - the two data planes the articles use most ([`data`]): storage account `mystorageaccount`
//!   (as `micdocs<env>`: storage and vault names are global) with `mycontainer/hello.txt`,
//!   `myVM` Storage Blob Data Reader and Storage Account Contributor on it; key vault
//!   `mykeyvault` (as `micdocskv<env>`) with secret `MyTestSecret` and a Secret Management
//!   access policy for `myVM`; the VM's Storage and Key Vault tokens come from IMDS inside the
//!   VM, and the check starts once the VM reads the blob, lists the keys and reads the secret
//!   (or the budget is spent: then a note says so).
//!
//! Routing ([`LiveExecutor`]): IMDS requests run inside `myVM` through Run Command (or locally
//! when mic runs on that VM); ARM requests go to the configured Resource Manager, writes (and
//! commands mapped from az/PowerShell) with the deployer's token, reads with the VM's token as
//! the tutorials do. The literal `myResourceGroup` of the docs is mapped to the run's group on
//! the way out and back in the answers, so reports read like the fake backend's; so are
//! `mystorageaccount` and `mykeyvault` (ARM paths, the SAS request's canonicalized resource,
//! the tools' Shared Key account). Blob and Key Vault hosts
//! (`mystorageaccount.blob.core.windows.net`, `mykeyvault.vault.azure.net`, the run's own, or
//! the base URL the ARM answer gave, which on the fake cloud is a loopback server) go to the
//! world's account and vault, with `myVM`'s token for that service where the doc sends
//! `<ACCESS TOKEN>`.
//!
//! Not on live (reported "not checkable" with the reason): `myWindowsVM`, `myVMSS`, the
//! deprecated VM extension endpoint (`localhost:50342`), storage accounts and vaults other than
//! the world's, and the other data planes (Cosmos DB, Data Lake, Graph, SQL) with their ARM
//! resources; so are the tools' `--auth-mode login` storage commands (the deployer has no data
//! role on the account). ARM writes outside the world's groups, and deletions or re-creations
//! of the world itself (its group, VM, account, vault), are never sent.
//!
//! Teardown always runs: after the check, when provisioning fails, and on Ctrl-C / SIGTERM /
//! a panic (mic-live's guard deletes what the ledger lists). Tokens, account keys and SAS
//! signatures never reach the report (the world's tokens and keys, every JWT-shaped string
//! and every `sig=` value are masked) and the ledger only holds ids.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use mic_core::backend::{Backend, DeployerAuth, Environment, HttpRequest, HttpResponse, Route};
use mic_core::model::Scenario;
use mic_docs::exec::{ExecResponse, Executor, ResolvedRequest};
use mic_docs::specs::Service;
use mic_docs::{ArticleReport, CoverageEntry, World};
use mic_live::backend::IMDS_BASE;
use mic_live::progress::Progress;
use mic_live::{LiveBackend, LiveConfig, LiveOptions, guard};
use serde_json::{Value, json};

use crate::docs::{
    BLOB, CONTAINER, LINUX_VM, Prerequisites, RG, SECRET, STORAGE_ACCOUNT, UAMI, VAULT, VM_API,
    check_files, compute_body, mask_secrets, prerequisites, split_origin,
};

mod data;

const RG_API: &str = "2021-04-01";
const UAMI_API: &str = "2018-11-30";
const ROLE_API: &str = "2022-04-01";

/// The scenario the live environment is opened for (its id tags the resources; its host is
/// the Linux VM the in-host requests run on).
const WORLD_SCENARIO: &str = r#"format = 1
id = "docs/live-check"
title = "mic docs check --backend live: the scenario world of the articles"

[article]
file = "004_68e52737ddb40452.txt"

[host]
kind = "vm"
os = "linux"
name = "myVM"
system_assigned = true
user_assigned = ["myUserAssignedIdentity"]

[[step]]
id = "rg"
provision = "resource_group"
name = "mic-docs"
"#;

fn world_scenario() -> Result<Scenario> {
    mic_core::parse::parse_str("docs-live-check.toml", WORLD_SCENARIO.to_string())
        .map_err(|d| anyhow!("the docs world scenario does not parse: {d:?}"))
}

/// The world's ARM calls as the deployer, through the live environment (ledger, retries,
/// network prerequisites of the VM, fresh tokens).
#[derive(Clone)]
struct Deployer {
    backend: LiveBackend,
    env: Arc<dyn Environment>,
    /// The token handed to this environment (the environment swaps it for a fresh one).
    token: String,
}

fn describe(resp: &HttpResponse) -> String {
    let body = resp.json();
    let err = body.as_ref().and_then(|b| b.get("error"));
    match err {
        Some(e) => format!(
            "{} {}: {}",
            resp.status,
            e.get("code").and_then(Value::as_str).unwrap_or(""),
            e.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        None => resp.status.to_string(),
    }
}

impl Deployer {
    fn url(&self, path: &str, api: &str) -> String {
        self.backend.arm().url(path, api)
    }

    async fn send(&self, route: Route<'_>, req: HttpRequest) -> Result<HttpResponse> {
        self.env
            .send(route, req)
            .await
            .map_err(|e| anyhow!(e.to_string()))
    }

    /// Create (or update) `id`, recorded in the ledger first; follows the operation.
    async fn put(&self, id: &str, api: &str, body: &Value) -> Result<Value> {
        self.env
            .before_create(id)
            .map_err(|e| anyhow!(e.to_string()))?;
        let url = self.url(id, api);
        let req = HttpRequest::new("PUT", url.clone())
            .header("Authorization", format!("Bearer {}", self.token))
            .json(body);
        let resp = self.send(Route::Direct, req).await?;
        if !resp.is_success() {
            bail!("PUT {id} answered {}", describe(&resp));
        }
        let done = self
            .backend
            .arm()
            .follow("PUT", &url, resp)
            .await
            .with_context(|| format!("PUT {id}"))?;
        Ok(done.json().unwrap_or(Value::Null))
    }

    /// `role` for `principal` on `scope`, retried while the new principal replicates.
    async fn grant_role(
        &self,
        scope: &str,
        role: &str,
        principal: &str,
        budget: Duration,
    ) -> Result<()> {
        let reader = mic_core::roles::find_role(role).ok_or_else(|| anyhow!("no role {role}"))?;
        let sub = self.env.endpoints().subscription_id.clone();
        let id = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
            uuid::Uuid::new_v4()
        );
        let body = json!({"properties": {
            "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", reader.id),
            "principalId": principal, "principalType": "ServicePrincipal"}});
        let started = Instant::now();
        loop {
            match self.put(&id, ROLE_API, &body).await {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.to_string().contains("PrincipalNotFound")
                        && started.elapsed() < budget =>
                {
                    tokio::time::sleep(self.poll()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn poll(&self) -> Duration {
        self.backend
            .config()
            .max_poll_interval
            .min(Duration::from_secs(5))
    }

    /// A token of `host`'s system-assigned identity from IMDS, inside the VM; retried while
    /// the identity is not ready yet.
    async fn imds_token(&self, host: &str, resource: &str, budget: Duration) -> Result<String> {
        let url = format!(
            "{IMDS_BASE}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}"
        );
        let started = Instant::now();
        loop {
            let req = HttpRequest::new("GET", url.clone()).header("Metadata", "true");
            let last = match self.send(Route::InHost(host), req).await {
                Ok(r) if r.is_success() => {
                    if let Some(t) = r
                        .json()
                        .and_then(|b| b.get("access_token")?.as_str().map(str::to_string))
                    {
                        return Ok(t);
                    }
                    "an answer without access_token".to_string()
                }
                Ok(r) => format!(
                    "{} {}",
                    r.status,
                    r.text().chars().take(200).collect::<String>()
                ),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= budget {
                bail!("IMDS in {LINUX_VM} gave no token for {resource} within {budget:?}: {last}");
            }
            tokio::time::sleep(self.poll()).await;
        }
    }
}

/// The scenario world on live Azure.
pub struct LiveDocsWorld {
    deployer: Deployer,
    pub placeholders: World,
    /// Tokens of the world, masked in reports.
    pub secrets: Vec<String>,
    subscription_id: String,
    /// ARM base URL of the configured cloud (no trailing slash).
    arm: String,
    /// (name in the docs, name on Azure), main group first.
    groups: Vec<(String, String)>,
    host_vm_id: String,
    uami_id: String,
    uami_client_id: String,
    uami_principal_id: String,
    vm_principal_id: String,
    /// `myVM`'s ARM token (what `$ArmToken` / `<ACCESS TOKEN>` hold).
    vm_token: String,
    /// The storage account and the key vault.
    data: data::LiveData,
    extra_identities: Vec<String>,
    /// What the reader should know about this run (propagation not confirmed ...).
    notes: Mutex<Vec<String>>,
}

/// What `--backend live` will create, printed before anything is created.
pub fn plan(config: &LiveConfig, prereqs: &Prerequisites) -> String {
    let price = mic_live::cost::hourly_price(&config.linux_vm_size, false)
        .map_or_else(String::new, |p| {
            format!(", about ${p:.4}/h while it exists")
        });
    let mut s = format!(
        "mic docs check --backend live will create, in subscription {} ({}, {}), run {}:\n  \
         - resource group mic-docs-<env> for {RG} (tags mic-run, mic-env, DeleteAfter = now + {} h; in the ledger {} before creation)\n  \
         - user-assigned identity {UAMI}\n  \
         - Linux VM {LINUX_VM} ({}, Ubuntu 22.04, Standard_LRS OS disk, virtual network and NIC, no public IP{price}) with its system-assigned identity and {UAMI}\n  \
         - Reader role assignments for both identities on the group(s)\n  \
         - storage account micdocs<env> for {STORAGE_ACCOUNT} (StorageV2, Standard_LRS) with {CONTAINER}/{BLOB}; {LINUX_VM} gets Storage Blob Data Reader and Storage Account Contributor on it\n  \
         - key vault micdocskv<env> for {VAULT} (standard, soft-delete retention 7 days) with secret {SECRET}; {LINUX_VM} gets a Secret Management access policy\n    \
         (both cost cents at most: a few KB stored and a few hundred operations)",
        config.subscription_id,
        config.cloud.name,
        config.location,
        config.run_id,
        config.ttl.as_secs() / 3600,
        config.ledger_dir.display(),
        config.linux_vm_size,
    );
    let extra: Vec<&String> = prereqs
        .resource_groups
        .iter()
        .filter(|g| !g.eq_ignore_ascii_case(RG))
        .collect();
    if !extra.is_empty() || !prereqs.identities.is_empty() {
        let ids: Vec<String> = prereqs
            .identities
            .iter()
            .filter(|(g, n)| !(g.eq_ignore_ascii_case(RG) && n.eq_ignore_ascii_case(UAMI)))
            .map(|(g, n)| format!("{g}/{n}"))
            .collect();
        let _ = write!(
            s,
            "\n  - from the articles' setup steps: groups {}; identities {}",
            if extra.is_empty() {
                "-".to_string()
            } else {
                extra
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            if ids.is_empty() {
                "-".to_string()
            } else {
                ids.join(", ")
            }
        );
    }
    s.push_str(
        "\n  and deletes all of it when the check ends (also on Ctrl-C; otherwise `mic sweep`).\n  \
         In-host requests run through Run Command (tens of seconds each on Azure).",
    );
    s
}

impl LiveDocsWorld {
    /// Provision the world in `env` (the caller tears the environment down in every case).
    async fn provision(
        backend: &LiveBackend,
        env: Arc<dyn Environment>,
        prereqs: &Prerequisites,
    ) -> Result<Self> {
        let config = backend.config().clone();
        let token = match &env.deployer().auth {
            DeployerAuth::AccessToken(t) => t.expose().to_string(),
            DeployerAuth::ClientSecret { .. } => bail!("the live environment gave no token"),
        };
        let deployer = Deployer {
            backend: backend.clone(),
            env: env.clone(),
            token,
        };
        let ep = env.endpoints().clone();
        let sub = format!("/subscriptions/{}", ep.subscription_id);
        let loc = ep.location.clone();
        let budget = config.propagation_budget;
        let tags: serde_json::Map<String, Value> = env
            .resource_group_tags()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let main = format!("mic-docs-{}", ep.run_id);
        let mut groups = vec![(RG.to_string(), main.clone())];
        for (i, g) in prereqs
            .resource_groups
            .iter()
            .filter(|g| !g.eq_ignore_ascii_case(RG))
            .enumerate()
        {
            groups.push((g.clone(), format!("{main}-{}", i + 1)));
        }
        let group_id = |real: &str| format!("{sub}/resourceGroups/{real}");
        for (_, real) in &groups {
            deployer
                .put(
                    &group_id(real),
                    RG_API,
                    &json!({"location": loc, "tags": tags}),
                )
                .await?;
        }
        let rg_id = group_id(&main);
        let uami_real =
            format!("{rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{UAMI}");
        let uami = deployer
            .put(&uami_real, UAMI_API, &json!({"location": loc}))
            .await?;
        let field = |v: &Value, p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let uami_client_id = field(&uami, "/properties/clientId");
        let uami_principal_id = field(&uami, "/properties/principalId");
        let mut extra_identities = Vec::new();
        for (g, n) in &prereqs.identities {
            if g.eq_ignore_ascii_case(RG) && n.eq_ignore_ascii_case(UAMI) {
                continue;
            }
            let Some((_, real)) = groups.iter().find(|(d, _)| d.eq_ignore_ascii_case(g)) else {
                continue;
            };
            let id = format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}",
                group_id(real)
            );
            deployer
                .put(&id, UAMI_API, &json!({"location": loc}))
                .await?;
            extra_identities.push(format!("{g}/{n}"));
        }
        let host_vm_id = format!("{rg_id}/providers/Microsoft.Compute/virtualMachines/{LINUX_VM}");
        let identity =
            mic_core::driver::identity_body(VM_API, true, std::slice::from_ref(&uami_real), &[]);
        let mut body = compute_body(true, LINUX_VM, &loc, "linux", &identity, &rg_id);
        body["properties"]["hardwareProfile"]["vmSize"] = json!(config.linux_vm_size);
        let vm = deployer.put(&host_vm_id, VM_API, &body).await?;
        let mut vm_principal_id = field(&vm, "/identity/principalId");
        if vm_principal_id.is_empty() {
            // Some answers to the operation omit the identity: read the VM.
            let url = deployer.url(&host_vm_id, VM_API);
            let req = HttpRequest::new("GET", url)
                .header("Authorization", format!("Bearer {}", deployer.token));
            let r = deployer.send(Route::Direct, req).await?;
            vm_principal_id = r
                .json()
                .map(|v| field(&v, "/identity/principalId"))
                .unwrap_or_default();
        }
        if vm_principal_id.is_empty() {
            bail!("{LINUX_VM} has no system-assigned principal after its creation");
        }
        for (_, real) in &groups {
            for p in [&vm_principal_id, &uami_principal_id] {
                deployer
                    .grant_role(&group_id(real), "Reader", p, budget)
                    .await?;
            }
        }
        let audience = config.cloud.arm_audience.clone();
        let vm_token = deployer.imds_token(&host_vm_id, &audience, budget).await?;
        let mut notes = Vec::new();
        // Propagation: the VM's token reads the group once its Reader grant is effective.
        let started = Instant::now();
        loop {
            let req = HttpRequest::new("GET", deployer.url(&rg_id, RG_API))
                .header("Authorization", format!("Bearer {vm_token}"));
            let status = deployer
                .send(Route::Direct, req)
                .await
                .map_or(0, |r| r.status);
            if status == 200 {
                break;
            }
            if started.elapsed() >= budget {
                notes.push(format!(
                    "the VM's Reader grant was not effective within {} s (last answer {status}): ARM reads may be denied",
                    budget.as_secs()
                ));
                break;
            }
            tokio::time::sleep(deployer.poll()).await;
        }
        let data = data::Ctx {
            deployer: &deployer,
            rg_id: &rg_id,
            location: &loc,
            tenant_id: &ep.tenant_id,
            run_id: &ep.run_id,
            host_vm_id: &host_vm_id,
            vm_principal: &vm_principal_id,
            vm_arm_token: &vm_token,
            budget,
        }
        .provision(&mut notes)
        .await
        .unwrap_or_else(|e| {
            // What was created is in the ledger and goes with the teardown; the check goes on.
            let why = format!("{e:#}");
            notes.push(format!(
                "the storage account and key vault could not be provisioned ({why}): their examples are not checkable"
            ));
            data::LiveData::unavailable(why)
        });
        let uami_doc = format!(
            "{sub}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{UAMI}"
        );
        let mut w = World::new();
        w.set("subscription_id", ep.subscription_id.clone())
            .set("resource_group", RG)
            .set("vm_name", LINUX_VM)
            .set("identity_name", UAMI)
            .set("identity_id", uami_doc)
            .set("client_id", uami_client_id.clone())
            .set("principal_id", vm_principal_id.clone())
            .set("tenant_id", ep.tenant_id.clone())
            .set("location", loc)
            .set("access_token", vm_token.clone())
            // The data planes under the docs' names (mapped to the run's on the way out).
            .set("storage_account", STORAGE_ACCOUNT)
            .set("containername", CONTAINER)
            .set("filename", BLOB)
            .set("yourkeyvaulturl", format!("{VAULT}.vault.azure.net"))
            .set("secretname", SECRET)
            .set("expirationtime", "2099-01-01T00:00:00Z")
            .set("storage account key", data.storage_key.clone())
            .set("keyvaulttoken", data.vm_vault_token.clone());
        let secrets = data
            .keys
            .iter()
            .cloned()
            .chain([
                vm_token.clone(),
                deployer.token.clone(),
                data.storage_key.clone(),
                data.vm_storage_token.clone(),
                data.vm_vault_token.clone(),
                data.deployer_vault_token.clone(),
            ])
            .collect();
        Ok(Self {
            secrets,
            placeholders: w,
            subscription_id: ep.subscription_id.clone(),
            arm: config.cloud.arm.clone(),
            groups,
            host_vm_id,
            uami_id: uami_real,
            uami_client_id,
            uami_principal_id,
            vm_principal_id,
            vm_token,
            data,
            extra_identities,
            notes: Mutex::new(notes),
            deployer,
        })
    }

    /// One line per fact (the text report indents them, Markdown joins them).
    pub fn describe(&self) -> String {
        let c = self.deployer.backend.config();
        let mut s = format!(
            "live Azure ({}, subscription {}, {}, run {})\nscenario world: resource group {RG} (as {}); {LINUX_VM} (Linux, {}, system-assigned + {UAMI}, IMDS host, in-host requests {}); identities are Reader on the groups",
            c.cloud.name,
            self.subscription_id,
            c.location,
            c.run_id,
            self.groups[0].1,
            c.linux_vm_size,
            match c.in_host {
                mic_live::config::InHostMode::Local => "run locally",
                mic_live::config::InHostMode::RunCommand => "through Run Command",
                mic_live::config::InHostMode::Auto =>
                    "through Run Command (locally when mic runs on the VM)",
            }
        );
        if self.groups.len() > 1 || !self.extra_identities.is_empty() {
            let groups: Vec<String> = self.groups[1..]
                .iter()
                .map(|(d, r)| format!("{d} (as {r})"))
                .collect();
            let _ = write!(
                s,
                "\nfrom the articles' setup steps: groups {}; identities {}",
                if groups.is_empty() {
                    "-".into()
                } else {
                    groups.join(", ")
                },
                if self.extra_identities.is_empty() {
                    "-".into()
                } else {
                    self.extra_identities.join(", ")
                }
            );
        }
        if self.data.failed.is_none() {
            let _ = write!(
                s,
                "\ndata planes: storage account {STORAGE_ACCOUNT} (as {}) with {CONTAINER}/{BLOB}, {LINUX_VM} Storage Blob Data Reader + Storage Account Contributor; key vault {VAULT} (as {}) with secret {SECRET}, {LINUX_VM} has a Secret Management access policy",
                self.data.account, self.data.vault
            );
        }
        s.push_str("\nnot on live: myWindowsVM, myVMSS, the VM extension endpoint, Cosmos DB, Data Lake, Graph, SQL");
        for n in self
            .notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = write!(s, "\nnote: {n}");
        }
        s
    }

    /// The data plane whose base URL is `origin` (the run's account or vault).
    fn data_service_of(&self, origin: &str) -> Option<Service> {
        let o = origin.trim_end_matches('/');
        if self.data.failed.is_some() || o.is_empty() {
            None
        } else if o.eq_ignore_ascii_case(&self.data.blob_base) {
            Some(Service::Blob)
        } else if o.eq_ignore_ascii_case(&self.data.vault_base) {
            Some(Service::KeyVault)
        } else {
            None
        }
    }

    fn is_world_group(&self, real: &str) -> bool {
        self.groups
            .iter()
            .any(|(_, r)| r.eq_ignore_ascii_case(real))
    }

    /// The docs' names mapped to the run's: groups (`/resourceGroups/myResourceGroup`),
    /// the storage account (`/storageAccounts/mystorageaccount`, `/blob/mystorageaccount/` of
    /// a SAS request) and the vault (`/vaults/mykeyvault`).
    fn map_groups(&self, s: &str) -> String {
        let s = map_segments(s, &self.groups, false);
        if self.data.failed.is_some() {
            return s;
        }
        let account = [(STORAGE_ACCOUNT.to_string(), self.data.account.clone())];
        let vault = [(VAULT.to_string(), self.data.vault.clone())];
        let s = map_after(&s, "/storageaccounts/", &account);
        let s = map_after(&s, "/blob/", &account);
        map_after(&s, "/vaults/", &vault)
    }

    /// The run's names mapped back to the docs' in an answer (the data planes' base URLs
    /// become the docs' hosts).
    fn unmap_groups(&self, s: &str) -> String {
        let d = &self.data;
        let mut pairs: Vec<(String, String)> = self.groups.clone();
        pairs.push((
            format!("https://{STORAGE_ACCOUNT}.blob.core.windows.net"),
            d.blob_base.clone(),
        ));
        pairs.push((
            format!("https://{VAULT}.vault.azure.net"),
            d.vault_base.clone(),
        ));
        pairs.push((STORAGE_ACCOUNT.to_string(), d.account.clone()));
        pairs.push((VAULT.to_string(), d.vault.clone()));
        pairs.sort_by_key(|(_, r)| std::cmp::Reverse(r.len()));
        let mut out = s.to_string();
        for (doc, real) in pairs.iter().filter(|(_, r)| !r.is_empty()) {
            out = out.replace(real.as_str(), doc);
        }
        out
    }

    /// Put `myVM`'s identities back after a doc example rewrote them.
    async fn restore_host(&self) {
        let identity =
            mic_core::driver::identity_body(VM_API, true, std::slice::from_ref(&self.uami_id), &[]);
        let url = self.deployer.url(&self.host_vm_id, VM_API);
        let req = HttpRequest::new("PATCH", url.clone())
            .header("Authorization", format!("Bearer {}", self.deployer.token))
            .json(&json!({"identity": identity}));
        if let Ok(resp) = self.deployer.send(Route::Direct, req).await
            && resp.is_success()
        {
            let done = self
                .deployer
                .backend
                .arm()
                .follow("PATCH", &url, resp)
                .await;
            let principal = done.ok().and_then(|r| r.json()).and_then(|v| {
                v.pointer("/identity/principalId")?
                    .as_str()
                    .map(str::to_string)
            });
            if principal.is_some_and(|p| !p.eq_ignore_ascii_case(&self.vm_principal_id)) {
                self.note(&format!(
                    "an example removed {LINUX_VM}'s system-assigned identity; the one put back is a new principal without the world's grants ($ArmToken still holds the first principal's token)"
                ));
            }
        }
    }

    fn note(&self, n: &str) {
        let mut notes = self
            .notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !notes.iter().any(|x| x == n) {
            notes.push(n.to_string());
        }
    }
}

/// Replace `/resourceGroups/<from>` segments (case-insensitive) by `<to>` for each pair
/// (`(doc, real)`; reversed when `back`).
fn map_segments(s: &str, pairs: &[(String, String)], back: bool) -> String {
    if back {
        let swapped: Vec<(String, String)> =
            pairs.iter().map(|(d, r)| (r.clone(), d.clone())).collect();
        map_after(s, "/resourcegroups/", &swapped)
    } else {
        map_after(s, "/resourcegroups/", pairs)
    }
}

/// Replace the whole segment after `mark` (lower-case, case-insensitive match) when it is
/// the first of a pair `(from, to)` (case-insensitive).
fn map_after(s: &str, mark: &str, pairs: &[(String, String)]) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    while let Some(i) = lower[from..].find(mark).map(|i| i + from) {
        let start = i + mark.len();
        let end = s[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.()".contains(c)))
            .map_or(s.len(), |j| start + j);
        out.push_str(&s[from..start]);
        let seg = &s[start..end];
        let hit = pairs
            .iter()
            .find_map(|(a, b)| a.eq_ignore_ascii_case(seg).then_some(b.as_str()));
        out.push_str(hit.unwrap_or(seg));
        from = end;
    }
    out.push_str(&s[from..]);
    out
}

/// `(resource group, top-level resource (lowercase type, name))` of an ARM path.
fn locate(path: &str) -> (Option<String>, Option<(String, String)>) {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let group = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| parts.get(i + 1))
        .map(|g| (*g).to_string());
    let top = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("providers"))
        .and_then(|i| {
            let ns = parts.get(i + 1)?;
            let ty = parts.get(i + 2)?;
            let name = parts.get(i + 3).copied().unwrap_or("");
            Some((format!("{ns}/{ty}").to_ascii_lowercase(), name.to_string()))
        });
    (group, top)
}

/// Runs the docs' requests against the live world (sync trait: `block_on` from the blocking
/// thread the check runs on).
pub struct LiveExecutor {
    handle: tokio::runtime::Handle,
    world: Arc<LiveDocsWorld>,
}

impl LiveExecutor {
    pub fn new(handle: tokio::runtime::Handle, world: Arc<LiveDocsWorld>) -> Self {
        Self { handle, world }
    }

    fn request(req: &ResolvedRequest, url: String, body: Option<String>) -> HttpRequest {
        let mut out = HttpRequest::new(&req.method, url);
        for (k, v) in &req.headers {
            if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            out.headers.push((k.clone(), v.clone()));
        }
        out.body = body.map(String::into_bytes);
        out
    }

    fn response(&self, resp: &HttpResponse) -> ExecResponse {
        let body = self.world.unmap_groups(&resp.text());
        // Errors read better in the doc's own terms than with the world's ids.
        let body = if resp.status >= 400 {
            body.replace(&self.world.subscription_id, "<SUBSCRIPTION ID>")
        } else {
            body
        };
        ExecResponse {
            status: resp.status,
            headers: resp
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), self.world.unmap_groups(v)))
                .collect(),
            body,
        }
    }

    async fn in_host(&self, req: &ResolvedRequest, rest: &str) -> Result<ExecResponse, String> {
        let url = format!(
            "{IMDS_BASE}{}",
            crate::docs::sample_identity(
                rest,
                &crate::docs::WorldIdentities {
                    uami_client: &self.world.uami_client_id,
                    uami_principal: &self.world.uami_principal_id,
                    vm_principal: &self.world.vm_principal_id
                }
            )
        );
        let http = Self::request(req, url, req.body.clone());
        let w = &self.world;
        match w.deployer.send(Route::InHost(&w.host_vm_id), http).await {
            Ok(r) => Ok(self.response(&r)),
            Err(e) => Err(format!("in {LINUX_VM}: {e}")),
        }
    }

    /// A blob or Key Vault request: the docs' host (`mystorageaccount.blob.core.windows.net`,
    /// `mykeyvault.vault.azure.net`, or the run's own) goes to the world's account or vault,
    /// `<ACCESS TOKEN>` is `myVM`'s token for that service.
    async fn data_plane(
        &self,
        req: &ResolvedRequest,
        origin: &str,
        rest: &str,
    ) -> Result<ExecResponse, String> {
        let w = &self.world;
        let d = &w.data;
        let host = origin
            .split("://")
            .nth(1)
            .unwrap_or(origin)
            .to_ascii_lowercase();
        let first = host.split('.').next().unwrap_or("");
        let own = w.data_service_of(origin) == Some(req.service);
        let (base, token, ours) = if req.service == Service::Blob {
            (
                &d.blob_base,
                &d.vm_storage_token,
                own || first == STORAGE_ACCOUNT || first == d.account,
            )
        } else {
            (
                &d.vault_base,
                &d.vm_vault_token,
                own || first == VAULT || first == d.vault,
            )
        };
        if !ours {
            return Err(format!(
                "the scenario world has no {} `{host}` (on live it has {STORAGE_ACCOUNT} and {VAULT})",
                req.service.name()
            ));
        }
        let mut http = Self::request(req, format!("{base}{rest}"), req.body.clone());
        for (k, v) in &mut http.headers {
            if k.eq_ignore_ascii_case("authorization") {
                *v = v.replace(&w.vm_token, token);
            }
        }
        let resp = w
            .deployer
            .send(Route::Direct, http)
            .await
            .map_err(|e| format!("could not send the request: {e}"))?;
        Ok(self.response(&resp))
    }

    /// Why an ARM request is not sent on live, if it is not.
    fn arm_refusal(
        &self,
        method: &str,
        path: &str,
        inferred: bool,
        body: Option<&str>,
    ) -> Option<String> {
        let write = !matches!(method, "GET" | "HEAD");
        let (group, top) = locate(path);
        let in_world = group
            .as_deref()
            .is_some_and(|g| self.world.is_world_group(g));
        // A path with a space is no resource id: Resource Manager cannot route it and
        // answers InvalidRequestUri without touching anything, so it is sent as written.
        let bare = path.split('?').next().unwrap_or(path).to_ascii_lowercase();
        let unroutable = bare.contains(' ') || bare.contains("%20");
        if write && !in_world && !unroutable {
            return Some(
                "not sent on live: the example writes outside the scenario world's resource groups"
                    .into(),
            );
        }
        if !in_world {
            return None;
        }
        let Some((ty, name)) = top else {
            return (method == "DELETE").then(|| {
                "not sent on live: it would delete the scenario world's resource group".into()
            });
        };
        let host = ty == "microsoft.compute/virtualmachines";
        if host && inferred && write && name.eq_ignore_ascii_case(LINUX_VM) {
            let lower = path.to_ascii_lowercase();
            let drops_system = !lower.contains("/extensions/")
                && !lower.contains("/runcommand")
                && (method == "DELETE"
                    || body
                        .and_then(|b| serde_json::from_str::<Value>(b).ok())
                        .and_then(|b| b["identity"]["type"].as_str().map(str::to_ascii_lowercase))
                        .is_some_and(|t| !t.contains("systemassigned")));
            if drops_system {
                return Some(format!(
                    "not replayed: it would take the system-assigned identity of the world's {LINUX_VM} away, which later examples use (a re-enabled identity gets a new principal); checked statically"
                ));
            }
        }
        if host && !name.eq_ignore_ascii_case(LINUX_VM) {
            return Some(format!(
                "virtual machine `{name}` is not provisioned on live by the docs checker yet (only {LINUX_VM})"
            ));
        }
        if host {
            let lower = path.to_ascii_lowercase();
            let own = !lower.contains("/extensions/") && !lower.contains("/runcommand");
            if method == "DELETE" && own {
                return Some("not sent on live: it would delete the scenario world's VM".into());
            }
            if method == "PUT" && own {
                return Some(format!(
                    "not sent on live: the example creates {LINUX_VM}, which the live world already runs (a PUT would try to re-create it with the doc's image, size and password)"
                ));
            }
            if write && lower.contains("/extensions/") {
                return Some("not sent on live: installs a VM extension (the deprecated managed identity extension is not part of the live world)".into());
            }
            return None;
        }
        let d = &self.world.data;
        if let Some(why) = d.refusal()
            && ((ty == "microsoft.storage/storageaccounts"
                && name.eq_ignore_ascii_case(STORAGE_ACCOUNT))
                || (ty == "microsoft.keyvault/vaults" && name.eq_ignore_ascii_case(VAULT)))
        {
            return Some(why);
        }
        let data = d.failed.is_none()
            && ((ty == "microsoft.storage/storageaccounts"
                && name.eq_ignore_ascii_case(&d.account))
                || (ty == "microsoft.keyvault/vaults" && name.eq_ignore_ascii_case(&d.vault)));
        if data {
            let own = bare
                .trim_end_matches('/')
                .ends_with(&format!("/{}", name.to_ascii_lowercase()));
            if own && matches!(method, "PUT" | "DELETE") {
                return Some(format!(
                    "not sent on live: it would {} the scenario world's {ty} (the data-plane examples use it)",
                    if method == "PUT" {
                        "re-create"
                    } else {
                        "delete"
                    }
                ));
            }
            return None;
        }
        let known = ty == "microsoft.managedidentity/userassignedidentities"
            || ty.starts_with("microsoft.authorization/")
            || ty.starts_with("microsoft.network/");
        (!known).then(|| {
            format!(
                "{ty} `{name}` is not provisioned on live by the docs checker yet (the fake backend checks it)"
            )
        })
    }

    async fn arm(
        &self,
        req: &ResolvedRequest,
        origin: &str,
        rest: &str,
    ) -> Result<ExecResponse, String> {
        let w = &self.world;
        let o = origin.to_ascii_lowercase();
        if o != "https://management.azure.com" && o != w.arm.to_ascii_lowercase() {
            return Err(format!(
                "`{origin}` is not the public-cloud Resource Manager the live world runs in"
            ));
        }
        if req.inferred && !rest.to_ascii_lowercase().contains("api-version=") {
            return Err("CLI/PowerShell command: the api-version its tool sends is not known to the checker yet; not sent".into());
        }
        let path = w.map_groups(&crate::docs::sample_subscription(
            rest,
            &self.world.subscription_id,
        ));
        let method = req.method.to_ascii_uppercase();
        if let Some(why) = self.arm_refusal(&method, &path, req.inferred, req.body.as_deref()) {
            return Err(why);
        }
        let write = !matches!(method.as_str(), "GET" | "HEAD");
        let mut body = req.body.as_deref().map(|b| w.map_groups(b));
        let bare = path.split('?').next().unwrap_or(&path).to_string();
        let (group, top) = locate(&bare);
        // A PUT of a world group (`az group create`, the REST how-to) keeps the run's tags
        // (sweep finds the group by them) and the world's location (Azure answers 409
        // InvalidResourceGroupLocation otherwise, which says nothing about the doc).
        if method == "PUT"
            && top.is_none()
            && group.is_some()
            && let Some(b) = &body
            && let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(b)
        {
            let tags: serde_json::Map<String, Value> = w
                .deployer
                .env
                .resource_group_tags()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            m.insert("tags".into(), Value::Object(tags));
            m.insert(
                "location".into(),
                json!(w.deployer.env.endpoints().location),
            );
            body = Some(Value::Object(m).to_string());
        }
        let url = format!("{}{path}", w.arm);
        let mut http = Self::request(req, url.clone(), body);
        // Writes are the operator's (`az account get-access-token`), so are the tools' own
        // requests; reads use the VM identity's token as the tutorials do.
        if write || req.inferred {
            let mut has_auth = false;
            for (k, v) in &mut http.headers {
                if k.eq_ignore_ascii_case("authorization") {
                    has_auth = true;
                    *v = v.replace(&w.vm_token, &w.deployer.token);
                }
            }
            if !has_auth && req.inferred {
                http.headers.push((
                    "Authorization".into(),
                    format!("Bearer {}", w.deployer.token),
                ));
            }
        }
        if method == "PUT" {
            w.deployer
                .env
                .before_create(&bare)
                .map_err(|e| format!("not sent: {e}"))?;
        }
        let resp = w
            .deployer
            .send(Route::Direct, http)
            .await
            .map_err(|e| format!("could not send the request: {e}"))?;
        let out = self.response(&resp);
        if write && resp.is_success() {
            // The next example finds the resource settled (Azure refuses a second operation
            // on a VM while one runs).
            let _ = w.deployer.backend.arm().follow(&method, &url, resp).await;
            if bare
                .to_ascii_lowercase()
                .starts_with(&w.host_vm_id.to_ascii_lowercase())
            {
                w.restore_host().await;
            }
        }
        Ok(out)
    }
}

impl Executor for LiveExecutor {
    fn execute(&self, req: &ResolvedRequest) -> Result<ExecResponse, String> {
        let url = req.url.trim();
        if url.is_empty() {
            return Err("local command: checked statically; nothing to send".into());
        }
        if !req.inferred
            && req.service == Service::Arm
            && req.headers.is_empty()
            && req.body.is_none()
        {
            return Err("request line only (the doc lists its headers separately); nothing to send as written".into());
        }
        let (origin, rest) = split_origin(url);
        // A URL a data plane handed out itself (the fake's loopback base in an answer,
        // held in a variable): send it there, as that service.
        let mut req = std::borrow::Cow::Borrowed(req);
        if matches!(req.service, Service::Unknown | Service::Local)
            && let Some(service) = self.world.data_service_of(origin)
        {
            req.to_mut().service = service;
        }
        let req = req.as_ref();
        // What the live world does not have is the reason, before missing values.
        if req.service == Service::Arm {
            let path = self.world.map_groups(&crate::docs::sample_subscription(
                rest,
                &self.world.subscription_id,
            ));
            if let Some(why) = self.arm_refusal(
                &req.method.to_ascii_uppercase(),
                &path,
                req.inferred,
                req.body.as_deref(),
            ) {
                return Err(why);
            }
        }
        let refused = match req.service {
            Service::Extension => Some("the VM extension endpoint (localhost:50342) belongs to the deprecated managed identity VM extension, which the live world does not install".to_string()),
            Service::Local | Service::Unknown => Some(format!(
                "`{origin}` is not a service the checker can call"
            )),
            Service::Blob | Service::KeyVault => self.world.data.refusal(),
            Service::Imds | Service::Arm => None,
            data => Some(format!(
                "{} `{}` is not provisioned on live by the docs checker yet (only the storage account and the key vault are; the fake backend checks it)",
                data.name(),
                origin.split("://").nth(1).unwrap_or(origin)
            )),
        };
        if let Some(why) = refused {
            return Err(why);
        }
        if !req.unresolved.is_empty() {
            return Err(format!(
                "needs {} which the scenario world does not provide",
                req.unresolved.join(", ")
            ));
        }
        match req.service {
            Service::Imds => self.handle.block_on(self.in_host(req, rest)),
            Service::Blob | Service::KeyVault => {
                self.handle.block_on(self.data_plane(req, origin, rest))
            }
            _ => self.handle.block_on(self.arm(req, origin, rest)),
        }
    }

    /// Shared Key with the repo's signer, as the storage tools sign; the docs' account name
    /// is the run's account.
    fn sign_shared_key(
        &self,
        req: &mut ResolvedRequest,
        account: &str,
        key: &str,
    ) -> Result<(), String> {
        let d = &self.world.data;
        let account = if account.eq_ignore_ascii_case(STORAGE_ACCOUNT) {
            d.account.as_str()
        } else {
            account
        };
        let mut r = HttpRequest::new(&req.method, req.url.clone());
        r.headers.clone_from(&req.headers);
        r.body = req.body.as_ref().map(|b| b.as_bytes().to_vec());
        mic_core::sign::shared_key(account, key, &mut r)
            .map_err(|e| format!("signing the storage request: {e}"))?;
        req.headers = r.headers;
        Ok(())
    }
}

/// Mask the world's tokens, SAS signatures and anything shaped like a JWT.
pub fn mask_report_text(text: &str, secrets: &[String]) -> String {
    let s = mask_secrets(text, secrets);
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(tail.len());
        let cand = &tail[..end];
        if cand.matches('.').count() >= 2 && cand.len() >= 40 {
            out.push_str("[token]");
        } else {
            out.push_str(cand);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `mic docs check --backend live`: provision, check, tear down. `Err(code)` when the run
/// could not happen (configuration, interruption).
pub async fn check(
    inputs: Vec<(String, String)>,
    coverage: Vec<CoverageEntry>,
    timings: bool,
) -> Result<Result<(Vec<ArticleReport>, String), ExitCode>> {
    let config = match LiveConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the live backend is not configured:\n{e}");
            return Ok(Err(ExitCode::from(2)));
        }
    };
    let scenario = world_scenario()?;
    let prereqs = prerequisites(&inputs);
    eprintln!("{}", plan(&config, &prereqs));
    let progress = Progress::auto(1);
    let backend = LiveBackend::new(
        config,
        LiveOptions {
            progress: progress.clone(),
            ..LiveOptions::default()
        },
    )?;
    let b = backend.clone();
    let run = async move {
        let started = Instant::now();
        let env: Arc<dyn Environment> = Arc::from(
            b.environment(&scenario)
                .await
                .map_err(|e| anyhow!(e.to_string()))?,
        );
        let world = LiveDocsWorld::provision(&b, env.clone(), &prereqs).await;
        let outcome = match world {
            Err(e) => Err(e.context("provisioning the docs scenario world on live Azure")),
            Ok(world) => {
                if timings {
                    eprintln!(
                        "timing: scenario world on live: {:.0} ms",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                }
                let world = Arc::new(world);
                let exec = LiveExecutor::new(tokio::runtime::Handle::current(), world.clone());
                let placeholders = world.placeholders.clone();
                let reports = tokio::task::spawn_blocking(move || {
                    check_files(&inputs, &placeholders, &exec, &coverage, |n, d| {
                        if timings {
                            eprintln!("timing: {n}: {:.0} ms", d.as_secs_f64() * 1e3);
                        }
                    })
                })
                .await
                .map_err(|e| anyhow!("the check panicked: {e}"));
                reports.map(|mut reports| {
                    for r in &mut reports {
                        for blk in &mut r.blocks {
                            blk.reason = mask_report_text(&blk.reason, &world.secrets);
                            for f in &mut blk.findings {
                                f.message = mask_report_text(&f.message, &world.secrets);
                            }
                        }
                    }
                    (reports, world.describe())
                })
            }
        };
        let torn = Instant::now();
        let teardown = env.teardown().await;
        if timings {
            eprintln!(
                "timing: teardown on live: {:.0} ms",
                torn.elapsed().as_secs_f64() * 1e3
            );
        }
        match (outcome, teardown) {
            (Ok(x), Ok(())) => Ok(x),
            (Ok((reports, line)), Err(e)) => {
                eprintln!("error: teardown failed: {e}\nrun `mic sweep` to delete what is left");
                Ok((reports, format!("{line}\nTEARDOWN FAILED: run `mic sweep`")))
            }
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(t)) => {
                Err(e.context(format!("teardown failed too ({t}): run `mic sweep`")))
            }
        }
    };
    match guard::guarded(&backend, run).await {
        guard::Guarded::Finished(result) => {
            if !backend.finish() {
                eprintln!("some resources may be left behind: run `mic sweep`");
            }
            result.map(Ok)
        }
        guard::Guarded::Interrupted { signal, cleanup } => {
            eprintln!("interrupted by {signal}; cleaned up:\n{cleanup}");
            Ok(Err(ExitCode::from(130)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_scenario_parses() {
        let s = world_scenario().unwrap();
        assert_eq!(s.host.name, LINUX_VM);
    }

    #[test]
    fn group_names_map_both_ways_and_only_whole_segments() {
        let pairs = vec![
            ("myResourceGroup".to_string(), "mic-docs-ab12".to_string()),
            (
                "myResourceGroupVM".to_string(),
                "mic-docs-ab12-1".to_string(),
            ),
        ];
        assert_eq!(
            map_segments(
                "/subscriptions/s/resourceGroups/myResourceGroup/providers/X/y/z?api-version=1",
                &pairs,
                false
            ),
            "/subscriptions/s/resourceGroups/mic-docs-ab12/providers/X/y/z?api-version=1"
        );
        assert_eq!(
            map_segments("/resourcegroups/MYRESOURCEGROUPVM\"", &pairs, false),
            "/resourcegroups/mic-docs-ab12-1\""
        );
        assert_eq!(
            map_segments("/resourceGroups/otherGroup/x", &pairs, false),
            "/resourceGroups/otherGroup/x"
        );
        assert_eq!(
            locate(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/listKeys?x"
            ),
            (
                Some("g".to_string()),
                Some((
                    "microsoft.storage/storageaccounts".to_string(),
                    "a".to_string()
                ))
            )
        );
        assert_eq!(
            locate("/subscriptions/s/resourceGroups/g"),
            (Some("g".into()), None)
        );
    }

    #[test]
    fn storage_and_vault_names_map_in_paths_and_sas_bodies() {
        let account = [("mystorageaccount".to_string(), "micdocsab12".to_string())];
        assert_eq!(
            map_after(
                "/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/myStorageAccount/listKeys?x",
                "/storageaccounts/",
                &account
            ),
            "/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/micdocsab12/listKeys?x"
        );
        assert_eq!(
            map_after(
                r#"{"canonicalizedResource":"/blob/mystorageaccount/mycontainer"}"#,
                "/blob/",
                &account
            ),
            r#"{"canonicalizedResource":"/blob/micdocsab12/mycontainer"}"#
        );
        // Only the whole segment: another account keeps its name.
        assert_eq!(
            map_after(
                "/storageAccounts/mystorageaccount2",
                "/storageaccounts/",
                &account
            ),
            "/storageAccounts/mystorageaccount2"
        );
        assert_eq!(data::global_name("micdocs", "65667CB9"), "micdocs65667cb9");
        assert_eq!(
            data::global_name("micdocskv", "local-1234"),
            "micdocskvlocal1234"
        );
        assert!(data::global_name("micdocskv", &"a".repeat(40)).len() <= 24);
        // The account's name is no part of the vault's (answers map back unambiguously).
        assert!(
            !data::global_name("micdocskv", "ab12").contains(&data::global_name("micdocs", "ab12"))
        );
    }

    #[test]
    fn tokens_are_masked() {
        let jwt = format!(
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.c2ln",
            "eyJvaWQiOiJ4In0".repeat(3)
        );
        let text = format!("doc shows \"eyJ0eXAi...\", service returns \"{jwt}\"; sig=abc&x eyJ");
        assert_eq!(
            mask_report_text(&text, &[]),
            "doc shows \"eyJ0eXAi...\", service returns \"[token]\"; sig=[signature]&x eyJ"
        );
        assert_eq!(
            mask_report_text("secret-value-123", &["secret-value-123".into()]),
            "[secret]"
        );
    }
}
