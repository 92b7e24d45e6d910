//! The state of one fake cloud ("world"): tenant, subscription, clock, directory,
//! resources, role assignments, long-running operations and per-host servers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::FakeConfig;
use crate::directory::{Directory, PrincipalKind, ServicePrincipal};
use crate::rbac::{self, RoleAssignment};
use crate::server::ServerHandle;

/// A system-assigned identity attached to a host.
#[derive(Debug, Clone)]
pub(crate) struct SystemIdentity {
    pub principal_id: String,
    /// Application (client) id of the identity's service principal.
    #[allow(dead_code)]
    pub client_id: String,
}

/// The `identity` of a VM / scale set / site.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostIdentity {
    pub system: Option<SystemIdentity>,
    /// User-assigned identity ids, as the caller spelled them (matched case-insensitively).
    pub user: Vec<String>,
}

impl HostIdentity {
    pub fn type_string(&self) -> &'static str {
        match (self.system.is_some(), !self.user.is_empty()) {
            (true, true) => "SystemAssigned, UserAssigned",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (false, false) => "None",
        }
    }
}

/// Facts of a user-assigned identity resource.
#[derive(Debug, Clone)]
pub(crate) struct UamiInfo {
    pub principal_id: String,
    pub client_id: String,
}

/// A tracked ARM resource (any type the fake knows).
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names)]
pub(crate) struct Resource {
    /// Canonical id: `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{child}/{name}]`.
    pub id: String,
    pub resource_group: String,
    /// Full type, e.g. `Microsoft.Compute/virtualMachines/extensions`.
    pub rtype: String,
    pub name: String,
    pub location: String,
    pub tags: Option<Value>,
    /// Client-supplied `properties` (read-only fields are added when rendering).
    pub properties: Value,
    /// Other top-level fields kept verbatim (`sku`, `kind`, `zones`, `plan`).
    pub extra: Map<String, Value>,
    pub identity: Option<HostIdentity>,
    pub uami: Option<UamiInfo>,
    /// A stable per-resource GUID (`vmId`, `uniqueId`).
    pub unique_id: String,
    pub created: SystemTime,
    /// World time until which the resource reports a transitional provisioning state.
    pub busy_until: Option<(SystemTime, &'static str)>,
}

/// A resource group.
#[derive(Debug, Clone)]
pub(crate) struct ResourceGroup {
    pub name: String,
    pub location: String,
    pub tags: Option<Value>,
    pub managed_by: Option<String>,
}

/// A long-running operation (async status / location polling).
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub started: SystemTime,
    pub done_at: SystemTime,
}

/// An injected IMDS fault and how far through it we are.
#[derive(Debug, Clone)]
pub(crate) struct FaultState {
    pub fault: crate::Fault,
    pub seen: u32,
    pub failed: u32,
}

/// What a host-side server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKind {
    Imds,
    Extension,
    AppService { secret: String },
}

pub(crate) struct HostServer {
    pub kind: HostKind,
    pub server: ServerHandle,
}

#[derive(Default)]
pub(crate) struct State {
    /// Keyed by lower-case name.
    pub resource_groups: BTreeMap<String, ResourceGroup>,
    /// Keyed by lower-case id.
    pub resources: BTreeMap<String, Resource>,
    pub directory: Directory,
    /// Keyed by lower-case assignment id.
    pub role_assignments: BTreeMap<String, RoleAssignment>,
    pub operations: HashMap<String, Operation>,
    /// Keyed by (lower-case host resource id, kind tag).
    pub hosts: HashMap<(String, u8), HostServer>,
    /// Keyed by lower-case host resource id.
    pub faults: HashMap<String, FaultState>,
    /// Servers of the world itself (token service, ARM).
    pub main_servers: Vec<ServerHandle>,
    /// Key Vault data planes, keyed by lower-case vault id.
    pub vaults: BTreeMap<String, crate::keyvault::VaultData>,
    /// Cosmos DB data planes, keyed by lower-case account id.
    pub cosmos_accounts: BTreeMap<String, crate::cosmos::AccountData>,
    /// Every data-plane base URL ever started, by logical name (`vault:<name>`): kept after
    /// the resource is deleted so transcripts rendered after teardown still name them.
    pub service_urls: BTreeMap<String, String>,
    /// Blob services of storage accounts, keyed by lower-case account name.
    pub blob_accounts: BTreeMap<String, crate::blob::Account>,
    /// Every blob service URL ever served, by logical name (kept after deletion for transcripts).
    pub blob_urls: Vec<(String, String)>,
    /// Data Lake Store Gen1 accounts and their WebHDFS servers.
    pub datalake: crate::datalake::AdlsState,
    /// Azure AD Graph: groups, memberships, app role assignments.
    pub graph: crate::graph::GraphState,
    /// Azure SQL logical servers (TDS endpoints), keyed by lower-case server resource id.
    pub sql_servers: HashMap<String, crate::sql::SqlServer>,
    /// `(sql:<name>, address)` of every logical server started, kept after deletion so
    /// transcripts rendered after teardown still name the endpoints.
    pub sql_endpoints: Vec<(String, String)>,
    /// Run Command operations by id (`arm/runcommand.rs`).
    pub run_commands: HashMap<String, crate::arm::runcommand::RunOp>,
    /// Injected ARM faults (`arm/faults.rs`).
    pub arm_faults: crate::arm::faults::FaultQueue,
    /// Kudu (SCM) sites of App Service apps, keyed by lower-case site id (`kudu.rs`).
    pub scm_sites: BTreeMap<String, crate::kudu::ScmSite>,
}

pub(crate) fn host_key(id: &str, kind: &HostKind) -> (String, u8) {
    let tag = match kind {
        HostKind::Imds => 0,
        HostKind::Extension => 1,
        HostKind::AppService { .. } => 2,
    };
    (id.to_ascii_lowercase(), tag)
}

/// One world.
pub(crate) struct World {
    pub config: FakeConfig,
    pub tenant_id: String,
    pub subscription_id: String,
    pub deployer: crate::Deployer,
    clock_offset: Mutex<Duration>,
    state: Mutex<State>,
    pub login_url: Mutex<String>,
    pub arm_url: Mutex<String>,
}

/// The identities a host can use, resolved against the directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResolvedIdentities {
    pub system: Option<ServicePrincipal>,
    pub user: Vec<ServicePrincipal>,
}

impl World {
    pub fn new(config: FakeConfig) -> World {
        let tenant_id = crate::util::guid();
        let subscription_id = crate::util::guid();
        let deployer = crate::Deployer {
            client_id: crate::util::guid(),
            client_secret: format!("fake~{}", crate::util::random_b64(30)),
            object_id: crate::util::guid(),
        };
        let mut state = State::default();
        state.directory.insert(ServicePrincipal {
            object_id: deployer.object_id.clone(),
            app_id: deployer.client_id.clone(),
            display_name: "mic-deployer".to_owned(),
            kind: PrincipalKind::ServicePrincipal,
            resource_id: None,
            secret: Some(deployer.client_secret.clone()),
            roles: Vec::new(),
        });
        // The deployer is Owner on the subscription, effective from the beginning of time.
        let owner = rbac::role_by_name("Owner").map_or_else(
            || "8e3af657-a8ff-443c-a75c-2fe8c4bcb635".to_owned(),
            |r| r.id.clone(),
        );
        let ra = RoleAssignment {
            name: crate::util::guid(),
            scope: format!("/subscriptions/{subscription_id}"),
            role_definition_id: owner,
            principal_id: deployer.object_id.clone(),
            principal_type: "ServicePrincipal".to_owned(),
            description: None,
            condition: None,
            condition_version: None,
            created_by: deployer.object_id.clone(),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        };
        state
            .role_assignments
            .insert(ra.id().to_ascii_lowercase(), ra);
        crate::graph::seed(&mut state, &deployer.object_id);
        World {
            config,
            tenant_id,
            subscription_id,
            deployer,
            clock_offset: Mutex::new(Duration::ZERO),
            state: Mutex::new(state),
            login_url: Mutex::new(String::new()),
            arm_url: Mutex::new(String::new()),
        }
    }

    /// Lock the state (a poisoned lock is recovered: state stays usable after a panic elsewhere).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The world's clock.
    pub fn now(&self) -> SystemTime {
        let off = *self
            .clock_offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        SystemTime::now() + off
    }

    pub fn advance_clock(&self, by: Duration) {
        let mut off = self
            .clock_offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *off += by;
    }

    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id)
    }

    pub fn arm_base(&self) -> String {
        self.arm_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// RBAC: does `principal` hold `action` (or data action) at `scope`?
    pub fn check(&self, principal: &str, op: &str, scope: &str, data: bool) -> bool {
        let now = self.now();
        let delay = self.config.propagation_delay;
        let st = self.lock();
        st.role_assignments.values().any(|ra| {
            ra.principal_id.eq_ignore_ascii_case(principal)
                && ra.created_at + delay <= now
                && rbac::scope_covers(&ra.scope, scope)
                && rbac::role_by_id(&ra.role_definition_id).is_some_and(|role| {
                    if data {
                        role.permits_data_action(op)
                    } else {
                        role.permits_action(op)
                    }
                })
        })
    }

    /// The identities of a host (VM, scale set, site) resolved against the directory;
    /// `None` when the host does not exist.
    pub fn host_identities(&self, host_id: &str) -> Option<ResolvedIdentities> {
        let st = self.lock();
        let host = st.resources.get(&host_id.to_ascii_lowercase())?;
        let mut out = ResolvedIdentities::default();
        if let Some(idn) = &host.identity {
            if let Some(sys) = &idn.system {
                out.system = st.directory.get(&sys.principal_id).cloned();
            }
            for uid in &idn.user {
                if let Some(sp) = st.directory.by_resource_id(uid) {
                    out.user.push(sp.clone());
                }
            }
        }
        Some(out)
    }

    /// Start a new long-running operation; returns its id.
    pub fn start_operation(&self) -> String {
        self.start_operation_after(self.config.lro_delay)
    }

    /// Start a long-running operation that takes `delay`; returns its id.
    pub fn start_operation_after(&self, delay: Duration) -> String {
        let id = crate::util::guid();
        let now = self.now();
        self.lock().operations.insert(
            id.clone(),
            Operation {
                started: now,
                done_at: now + delay,
            },
        );
        id
    }

    /// How long operations on `resource_type` (e.g. `Microsoft.Compute/virtualMachines`)
    /// take: `FakeConfig::lro_delays`, else `lro_delay`.
    pub fn lro_delay_for(&self, resource_type: &str) -> Duration {
        self.config
            .lro_delays
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(resource_type))
            .map_or(self.config.lro_delay, |(_, d)| *d)
    }

    /// Stop and forget every host server of `host_id` (IMDS, extension, App Service).
    pub fn stop_hosts(st: &mut State, host_id: &str) {
        let lower = host_id.to_ascii_lowercase();
        st.hosts.retain(|(id, _), h| {
            if *id == lower {
                h.server.stop();
                false
            } else {
                true
            }
        });
        st.faults.remove(&lower);
        crate::blob::forget(st, host_id);
    }
}
