//! mic fake: a fake Azure cloud on loopback for the managed-identity scenarios.
//!
//! One [`FakeCloud`] is an isolated world (tenant, subscription, deployer principal) with:
//! - a token service (`login_url`): Entra v1/v2 client-credentials, OpenID configuration, JWKS;
//! - ARM (`arm_url`): resource groups, VMs / scale sets with identities, user-assigned
//!   identities, storage accounts, web sites, VM extensions, role definitions and assignments,
//!   with every call authenticated and authorized by the RBAC engine;
//! - per host: an IMDS endpoint per VM / scale set, the legacy VM-extension endpoint while the
//!   extension exists, the App Service identity endpoint for sites with an identity.
//!
//! Data planes (storage, key vault, sql, ...) plug in as further modules using
//! [`FakeCloud::verify_token`], [`FakeCloud::authorize_data_action`] and [`FakeCloud::directory`].

mod arm;
pub mod blob;
pub mod cosmos;
pub mod datalake;
pub mod directory;
mod error;
pub mod graph;
mod imds;
mod keys;
pub mod keyvault;
pub mod kudu;
pub mod rbac;
mod server;
pub mod sql;
pub mod token;
mod util;
mod world;

use std::sync::Arc;
use std::time::Duration;

pub use arm::faults::ArmFaults;
pub use arm::runcommand;
pub use directory::{Directory, PrincipalKind, ServicePrincipal};
pub use error::{FakeError, TokenError};
pub use imds::{IMDS_API_VERSIONS, TIMEOUT_HOLD};
pub use token::{ARM_AUDIENCES, Claims, KNOWN_RESOURCES};

use world::{FaultState, HostKind, World, host_key};

/// Configuration of a world.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Default location (`westus`).
    pub location: String,
    /// How long a new role assignment takes to become effective (world clock).
    pub propagation_delay: Duration,
    /// How long long-running operations stay `InProgress` (world clock).
    pub lro_delay: Duration,
    /// Latency added to every request on every server.
    pub latency: Duration,
    /// Per resource type (e.g. `Microsoft.Compute/virtualMachines`, case-insensitive): how
    /// long its operations take instead of `lro_delay` (a VM create is slower).
    pub lro_delays: Vec<(String, Duration)>,
    /// How long a Run Command takes at least (world clock).
    pub run_command_delay: Duration,
    /// Periodic ARM faults (429 with `Retry-After`, 500, 503); see also
    /// [`FakeCloud::inject_arm_faults`].
    pub arm_faults: Option<ArmFaults>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            location: "westus".to_owned(),
            propagation_delay: Duration::ZERO,
            lro_delay: Duration::ZERO,
            latency: Duration::ZERO,
            lro_delays: Vec::new(),
            run_command_delay: Duration::ZERO,
            arm_faults: None,
        }
    }
}

/// The CI's own principal: a service principal with a client secret, Owner on the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployer {
    pub client_id: String,
    pub client_secret: String,
    pub object_id: String,
}

/// What an injected IMDS fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (404, 410, 429, 500 are modelled; others answer `server_error`).
    Status(u16),
    /// Hold the request open (up to [`TIMEOUT_HOLD`]) so the client times out.
    Timeout,
}

/// An IMDS fault: let `skip` requests through, then fail `count` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub skip: u32,
    pub count: u32,
}

/// Handle to a running world (cheap to clone).
#[derive(Clone)]
pub struct FakeCloud {
    world: Arc<World>,
}

impl std::fmt::Debug for FakeCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloud")
            .field("tenant_id", &self.world.tenant_id)
            .field("subscription_id", &self.world.subscription_id)
            .field("login_url", &self.login_url())
            .field("arm_url", &self.arm_url())
            .finish_non_exhaustive()
    }
}

impl FakeCloud {
    /// Start a fresh world: new tenant, subscription and deployer; token service and ARM on
    /// `127.0.0.1:0`. Must be called inside a tokio runtime.
    #[allow(clippy::unused_async)] // async by contract: binds on the caller's runtime.
    pub async fn start(config: FakeConfig) -> Result<FakeCloud, FakeError> {
        // Make sure the shared signing key exists before the first request.
        let _ = keys::signing_key();
        let world = Arc::new(World::new(config));
        let latency = world.config.latency;
        let w = world.clone();
        let login = server::spawn(latency, move |_| token::router(w))?;
        let w = world.clone();
        let arm = match server::spawn(latency, move |_| arm::router(w)) {
            Ok(a) => a,
            Err(e) => {
                login.stop();
                return Err(e.into());
            }
        };
        *world
            .login_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = login.url();
        *world
            .arm_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = arm.url();
        let w = world.clone();
        let graph = match server::spawn(latency, move |_| graph::router(w)) {
            Ok(g) => g,
            Err(e) => {
                login.stop();
                arm.stop();
                return Err(e.into());
            }
        };
        {
            let mut st = world.lock();
            st.graph.url = graph.url();
            st.main_servers.push(login);
            st.main_servers.push(arm);
            st.main_servers.push(graph);
        }
        Ok(FakeCloud { world })
    }

    pub fn tenant_id(&self) -> String {
        self.world.tenant_id.clone()
    }
    pub fn subscription_id(&self) -> String {
        self.world.subscription_id.clone()
    }
    pub fn location(&self) -> String {
        self.world.config.location.clone()
    }
    /// Base URL of the token service (`http://127.0.0.1:PORT`); paths are `/{tenant}/oauth2/...`.
    pub fn login_url(&self) -> String {
        self.world
            .login_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
    /// Base URL of ARM (`http://127.0.0.1:PORT`).
    pub fn arm_url(&self) -> String {
        self.world.arm_base()
    }
    pub fn deployer(&self) -> Deployer {
        self.world.deployer.clone()
    }

    fn host_url(&self, id: &str, kind: &HostKind) -> Option<String> {
        self.world
            .lock()
            .hosts
            .get(&host_key(id.trim_end_matches('/'), kind))
            .map(|h| h.server.url())
    }

    /// Base URL of the IMDS of a VM or scale set (ids matched case-insensitively).
    pub fn imds_url(&self, host_resource_id: &str) -> Option<String> {
        self.host_url(host_resource_id, &HostKind::Imds)
    }

    /// Base URL of the legacy VM-extension endpoint (serves `/oauth2/token`), only while the VM
    /// has a ManagedIdentityExtensionFor{Windows,Linux} extension.
    pub fn extension_url(&self, vm_resource_id: &str) -> Option<String> {
        self.host_url(vm_resource_id, &HostKind::Extension)
    }

    /// `(IDENTITY_ENDPOINT, IDENTITY_HEADER)` of a site with a managed identity.
    pub fn app_service_identity(&self, site_resource_id: &str) -> Option<(String, String)> {
        let st = self.world.lock();
        let key = host_key(
            site_resource_id.trim_end_matches('/'),
            &HostKind::AppService {
                secret: String::new(),
            },
        );
        let h = st.hosts.get(&key)?;
        match &h.kind {
            HostKind::AppService { secret } => {
                Some((format!("{}/msi/token", h.server.url()), secret.clone()))
            }
            _ => None,
        }
    }

    /// Make the IMDS of a host fail: after `skip` good requests, `count` failures.
    pub fn inject_imds_fault(&self, host_resource_id: &str, fault: Fault) {
        self.world.lock().faults.insert(
            host_resource_id.trim_end_matches('/').to_ascii_lowercase(),
            FaultState {
                fault,
                seen: 0,
                failed: 0,
            },
        );
    }

    /// Make the next ARM requests fail, one status each (429 carries `Retry-After`).
    pub fn inject_arm_faults(&self, statuses: &[u16]) {
        self.world
            .lock()
            .arm_faults
            .next
            .extend(statuses.iter().copied());
    }

    /// `(ARM requests seen, injected faults served)`.
    pub fn arm_fault_counts(&self) -> (u64, u64) {
        let st = self.world.lock();
        (st.arm_faults.seen, st.arm_faults.served)
    }

    /// Resource groups with their tags (`None`: untagged).
    pub fn resource_groups(&self) -> Vec<(String, Option<serde_json::Value>)> {
        self.world
            .lock()
            .resource_groups
            .values()
            .map(|g| (g.name.clone(), g.tags.clone()))
            .collect()
    }

    /// Move the world's clock forward (token lifetimes, propagation, operations).
    pub fn advance_clock(&self, by: Duration) {
        self.world.advance_clock(by);
    }

    pub fn resource_group_names(&self) -> Vec<String> {
        self.world
            .lock()
            .resource_groups
            .values()
            .map(|g| g.name.clone())
            .collect()
    }

    /// Human-readable endpoint list.
    /// Data-plane base URLs by logical name (e.g. `blob:myaccount`), for transcripts: the
    /// same service must get the same name on the live backend. Data planes register here.
    pub fn service_urls(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = {
            let st = self.world.lock();
            let mut v: Vec<(String, String)> = st
                .service_urls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            v.push(("graph".to_owned(), st.graph.url.clone()));
            v.extend(datalake::service_urls(&st));
            v
        };
        v.extend(blob::service_urls(&self.world));
        let mut sql = self.world.lock().sql_endpoints.clone();
        sql.sort();
        sql.dedup();
        v.extend(sql);
        v
    }

    /// Base URL of Azure AD Graph (`http://127.0.0.1:PORT`; live `https://graph.windows.net`).
    pub fn graph_url(&self) -> String {
        self.world.graph_base()
    }

    /// WebHDFS base URL of a Data Lake Store account by ARM id.
    pub fn datalake_url(&self, account_id: &str) -> Option<String> {
        self.world.datalake_url(account_id)
    }

    /// Grant an app role of Azure AD Graph (e.g. `Directory.Read.All`) to a principal;
    /// tokens minted afterwards for `https://graph.windows.net` carry it in `roles`.
    /// Returns the assignment id, `None` for an unknown role.
    pub fn grant_graph_app_role(&self, principal_object_id: &str, role: &str) -> Option<String> {
        self.world.grant_graph_app_role(principal_object_id, role)
    }

    /// The state of the Azure SQL logical server `name` (databases, contained users, rows,
    /// login attempts), for tests.
    pub fn sql_server(&self, name: &str) -> Option<mic_tds::TdsState> {
        self.world
            .lock()
            .sql_servers
            .values()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| s.tds.state().clone())
    }

    pub fn describe(&self) -> String {
        let mut out = format!(
            "fake Azure cloud\n  tenant:        {}\n  subscription:  {}\n  location:      {}\n  token service: {}/{}/oauth2/token (v2: /oauth2/v2.0/token)\n  ARM:           {}\n  deployer:      client_id={} object_id={}\n",
            self.world.tenant_id,
            self.world.subscription_id,
            self.world.config.location,
            self.login_url(),
            self.world.tenant_id,
            self.arm_url(),
            self.world.deployer.client_id,
            self.world.deployer.object_id,
        );
        let st = self.world.lock();
        out.push_str("  Graph:         ");
        out.push_str(&st.graph.url);
        out.push('\n');
        for (name, url) in datalake::service_urls(&st) {
            out.push_str("  ");
            out.push_str(&name);
            out.push_str("  ");
            out.push_str(&url);
            out.push('\n');
        }
        let mut hosts: Vec<String> = st
            .hosts
            .iter()
            .map(|((id, _), h)| {
                let what = match h.kind {
                    HostKind::Imds => "IMDS",
                    HostKind::Extension => "VM extension",
                    HostKind::AppService { .. } => "App Service identity",
                };
                let rid = st.resources.get(id).map_or(id.as_str(), |r| r.id.as_str());
                format!("  {what:<21} {} for {rid}\n", h.server.url())
            })
            .collect();
        hosts.sort();
        for h in hosts {
            out.push_str(&h);
        }
        out
    }

    /// Stop every server of the world.
    pub async fn shutdown(self) {
        let servers: Vec<server::ServerHandle> = {
            let mut st = self.world.lock();
            let mut v: Vec<server::ServerHandle> =
                st.hosts.drain().map(|(_, h)| h.server).collect();
            v.extend(
                std::mem::take(&mut st.blob_accounts)
                    .into_values()
                    .map(|a| a.server),
            );
            v.extend(datalake::drain_servers(&mut st));
            v.extend(kudu::drain_servers(&mut st));
            v.append(&mut st.main_servers);
            v.extend(
                std::mem::take(&mut st.vaults)
                    .into_values()
                    .map(|d| d.server),
            );
            v.extend(
                std::mem::take(&mut st.cosmos_accounts)
                    .into_values()
                    .map(|d| d.server),
            );
            for (_, s) in st.sql_servers.drain() {
                s.tds.shutdown();
            }
            v
        };
        for s in &servers {
            s.stop();
        }
        for s in servers {
            s.stop_and_wait().await;
        }
    }

    /// Validate a bearer token (with or without the `Bearer ` prefix) for one of `audiences`:
    /// signature, issuer (this world's tenant), audience, lifetime against the world clock.
    pub fn verify_token(&self, bearer: &str, audiences: &[&str]) -> Result<Claims, TokenError> {
        self.world.verify(bearer, audiences)
    }

    /// RBAC: may `principal_object_id` perform `action` at `scope`?
    pub fn authorize(&self, principal_object_id: &str, action: &str, scope: &str) -> bool {
        self.world.check(principal_object_id, action, scope, false)
    }

    /// RBAC for data planes: may `principal_object_id` perform `data_action` at `scope`?
    pub fn authorize_data_action(
        &self,
        principal_object_id: &str,
        data_action: &str,
        scope: &str,
    ) -> bool {
        self.world
            .check(principal_object_id, data_action, scope, true)
    }

    /// A snapshot of the directory's service principals.
    pub fn directory(&self) -> Directory {
        self.world.lock().directory.clone()
    }
}
