//! [`LiveBackend`] and [`LiveEnvironment`]: the driver's requests on real Azure.
//!
//! The driver builds every request; this environment only decides how it travels:
//!
//! - **ARM** (direct): with the deployer's cached token (a token the driver holds is swapped
//!   for a refreshed one when it nears expiry), with retries (429, 5xx, connection), and with
//!   the two things a tutorial's `az vm create` does implicitly: the VM's virtual network
//!   and NIC are created before the VM, and the VM size is the configured cheapest one.
//! - **data planes** (direct): sent once (their status codes are what scenarios check),
//!   retried only when the connection could not be made.
//! - **in-host** (IMDS, the extension endpoint): locally when mic runs on that very VM
//!   (detected through IMDS), otherwise through Run Command ([`crate::runcommand`]); on an
//!   App Service site through its Kudu command API ([`crate::kudu`]).
//!
//! Every resource group gets the run's tags; every id is written to the ledger before its
//! creation; teardown deletes what the ledger still lists for this environment and releases
//! it only when everything is gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mic_core::backend::{
    Backend, BackendError, Deployer, DeployerAuth, Endpoints, Environment, HttpRequest,
    HttpResponse, Route, Secret,
};
use mic_core::model::{BackendKind, Os, Scenario};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::arm::{ArmClient, LroOptions, resource_type};
use crate::config::{InHostMode, LiveConfig};
use crate::credential::TokenCache;
use crate::kudu;
use crate::ledger::{self, Ledger};
use crate::progress::Progress;
use crate::runcommand::{self, InHostOutcome};
use crate::sweep::{
    self, DELETE_AFTER_TAG, ENV_TAG, RUN_TAG, SCENARIO_TAG, SweepOptions, SweepReport,
};
use crate::transport::{LogSink, RetryClass, RetryPolicy, Transport, TransportError, redact_url};

/// Run Command api-version (VMs and scale-set instances).
pub const RUN_COMMAND_API: &str = "2023-03-01";
const NETWORK_API: &str = "2023-09-01";
const COMPUTE_API: &str = "2023-03-01";
/// The address IMDS answers on from inside every Azure VM.
pub const IMDS_BASE: &str = "http://169.254.169.254";

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not build the HTTP client: {0}")]
    Transport(#[from] TransportError),
    #[error("could not open the ledger in {path}: {message}")]
    Ledger { path: String, message: String },
}

/// Knobs that are not configuration (tests shorten waits; the CLI passes its reporter).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub retry: RetryPolicy,
    pub progress: Progress,
    /// Poll wait when the service gives no `Retry-After`.
    pub default_poll_interval: Duration,
    /// Give up on one long-running operation after this long.
    pub operation_deadline: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            progress: Progress::quiet(),
            default_poll_interval: Duration::from_secs(5),
            operation_deadline: Duration::from_mins(30),
        }
    }
}

/// The deployer's ARM client for a configuration.
pub(crate) fn arm_client(
    config: &LiveConfig,
    log: Option<LogSink>,
) -> Result<ArmClient, StartError> {
    arm_client_with(config, log, &LiveOptions::default())
}

fn arm_client_with(
    config: &LiveConfig,
    log: Option<LogSink>,
    options: &LiveOptions,
) -> Result<ArmClient, StartError> {
    let transport = Transport::new(options.retry.clone(), log)?;
    let tokens = Arc::new(TokenCache::new(
        config.credential.clone(),
        &config.cloud.login,
        &config.tenant_id,
        transport.clone(),
    ));
    let lro = LroOptions {
        max_poll_interval: config.max_poll_interval,
        default_poll_interval: options.default_poll_interval.min(config.max_poll_interval),
        deadline: options.operation_deadline,
    };
    Ok(ArmClient::new(
        transport,
        tokens,
        &config.cloud.arm,
        &config.cloud.arm_audience,
        lro,
    ))
}

struct Shared {
    config: LiveConfig,
    arm: ArmClient,
    /// For IMDS from the VM itself: never through a proxy.
    local: Transport,
    ledger: Ledger,
    progress: Progress,
    local_vm: tokio::sync::OnceCell<Option<String>>,
    delete_after: String,
    /// One lock per VM / scale-set instance: its Run Commands, one at a time.
    run_commands: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// SCM (Kudu) host name per App Service site (lower-case id).
    scm_hosts: std::sync::Mutex<HashMap<String, String>>,
}

/// The live backend: one [`LiveEnvironment`] per scenario trial, all sharing one deployer
/// token cache, one transport and one ledger file.
#[derive(Clone)]
pub struct LiveBackend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LiveBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveBackend")
            .field("run_id", &self.shared.config.run_id)
            .finish_non_exhaustive()
    }
}

impl LiveBackend {
    /// # Errors
    /// The HTTP client cannot be built or the ledger cannot be opened.
    pub fn new(config: LiveConfig, options: LiveOptions) -> Result<Self, StartError> {
        let log = Some(options.progress.sink());
        let arm = arm_client_with(&config, log.clone(), &options)?;
        let local = Transport::new_no_proxy(
            RetryPolicy {
                max_attempts: 3,
                ..options.retry.clone()
            },
            log,
        )?;
        let ledger = Ledger::open(&config.ledger_dir, &config.run_id, config.ttl).map_err(|e| {
            StartError::Ledger {
                path: config.ledger_dir.display().to_string(),
                message: e.to_string(),
            }
        })?;
        let delete_after = ledger::delete_after(OffsetDateTime::now_utc(), config.ttl);
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                arm,
                local,
                ledger,
                progress: options.progress,
                local_vm: tokio::sync::OnceCell::new(),
                delete_after,
                run_commands: std::sync::Mutex::new(HashMap::new()),
                scm_hosts: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &LiveConfig {
        &self.shared.config
    }

    pub fn run_id(&self) -> &str {
        &self.shared.config.run_id
    }

    /// This run's ledger file.
    pub fn ledger_path(&self) -> &std::path::Path {
        self.shared.ledger.path()
    }

    pub fn progress(&self) -> &Progress {
        &self.shared.progress
    }

    /// The deployer's ARM client (for sweeps and checks by the CLI).
    pub fn arm(&self) -> &ArmClient {
        &self.shared.arm
    }

    /// Delete everything this run's ledger still lists, without waiting for the deletions
    /// to finish (Ctrl-C, a panic): ids confirmed gone or accepted for deletion leave the
    /// ledger, so an immediately following `mic sweep` only retries what failed.
    pub async fn cleanup_run(&self) -> SweepReport {
        let s = &self.shared;
        let mut report = SweepReport::default();
        let entries = match s.ledger.read() {
            Ok(f) => f.entries,
            Err(e) => {
                report
                    .failed
                    .push((s.ledger.path().display().to_string(), e.to_string()));
                return report;
            }
        };
        let options = SweepOptions {
            wait: false,
            ..SweepOptions::default()
        };
        sweep::delete_entries(
            &s.arm,
            &entries,
            "run interrupted",
            &options,
            &mut BTreeSet::new(),
            &mut report,
        )
        .await;
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(id, _)| id.to_ascii_lowercase())
            .collect();
        let released: Vec<String> = entries
            .iter()
            .map(|e| e.id.clone())
            .filter(|id| {
                let lower = id.to_ascii_lowercase();
                !failed.iter().any(|f| {
                    *f == lower || crate::arm::resource_group_of(&lower).is_some_and(|rg| rg == *f)
                })
            })
            .collect();
        let _ = s.ledger.release_ids(&released);
        let _ = s.ledger.finish();
        report
    }

    /// At the end of a run: remove the ledger file when nothing is left in it. Returns
    /// `false` when entries remain (something was not torn down; `mic sweep` will).
    pub fn finish(&self) -> bool {
        self.shared.progress.finish();
        self.shared.ledger.finish().unwrap_or(false)
    }

    async fn local_vm(&self) -> Option<String> {
        let s = &self.shared;
        s.local_vm
            .get_or_init(|| async {
                let url = format!(
                    "{}/metadata/instance/compute?api-version=2021-02-01",
                    s.config.imds_url
                );
                let req = HttpRequest::new("GET", url).header("Metadata", "true");
                let probe =
                    tokio::time::timeout(Duration::from_secs(2), s.local.send_once(&req)).await;
                let id = match probe {
                    Ok(Ok(r)) if r.is_success() => r.json().and_then(|b| {
                        b.get("resourceId")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    }),
                    _ => None,
                };
                if let Some(id) = &id {
                    s.progress.log(&format!(
                        "running on Azure VM {id}: in-host steps on it run locally"
                    ));
                }
                id
            })
            .await
            .clone()
    }
}

#[async_trait]
impl Backend for LiveBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Live
    }

    /// Every environment works in the one subscription: a fixture one created serves others.
    fn shares_fixtures(&self) -> bool {
        true
    }

    async fn environment(&self, scenario: &Scenario) -> Result<Box<dyn Environment>, BackendError> {
        let s = &self.shared;
        let token = s
            .arm
            .tokens
            .token(&s.config.cloud.arm_audience)
            .await
            .map_err(|e| BackendError::Unavailable {
                backend: "live".into(),
                reason: e.to_string(),
            })?;
        let claims = token.claims().unwrap_or(Value::Null);
        let claim = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
        let object_id = s
            .config
            .deployer_object_id
            .clone()
            .or_else(|| claim("oid"))
            .ok_or_else(|| BackendError::Unavailable {
                backend: "live".into(),
                reason: "the deployer's token has no `oid` claim: set MIC_LIVE_DEPLOYER_OBJECT_ID"
                    .into(),
            })?;
        let client_id = match &s.config.credential {
            crate::credential::CredentialSource::ClientSecret { client_id, .. }
            | crate::credential::CredentialSource::FederatedTokenFile { client_id, .. }
            | crate::credential::CredentialSource::GitHubOidc { client_id, .. } => {
                client_id.clone()
            }
            _ => claim("appid").or_else(|| claim("azp")).unwrap_or_default(),
        };
        let env_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let key = format!("{}#{env_id}", scenario.id.value);
        s.progress.scenario_started(&key);
        Ok(Box::new(LiveEnvironment {
            backend: self.clone(),
            scenario_id: scenario.id.value.clone(),
            os: scenario.host.os,
            endpoints: Endpoints {
                arm: s.config.cloud.arm.clone(),
                login: s.config.cloud.login.clone(),
                subscription_id: s.config.subscription_id.clone(),
                tenant_id: s.config.tenant_id.clone(),
                location: s.config.location.clone(),
                run_id: env_id.clone(),
                // `${graph}` in the Graph tutorials' steps: Azure AD Graph.
                aliases: vec![(
                    "graph".to_string(),
                    s.config.cloud.aad_graph.trim_end_matches('/').to_string(),
                )],
            },
            deployer: Deployer {
                object_id,
                client_id,
                auth: DeployerAuth::AccessToken(token.token.clone()),
            },
            handed_out: token.token,
            env_id,
            key,
        }))
    }
}

/// One scenario trial on Azure.
pub struct LiveEnvironment {
    backend: LiveBackend,
    scenario_id: String,
    os: Os,
    env_id: String,
    key: String,
    endpoints: Endpoints,
    deployer: Deployer,
    /// The token given to the driver (swapped for a fresh one on the way out).
    handed_out: Secret,
}

impl std::fmt::Debug for LiveEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEnvironment")
            .field("scenario", &self.scenario_id)
            .field("env", &self.env_id)
            .finish_non_exhaustive()
    }
}

fn transport_error(url: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Transport {
        url: redact_url(url),
        message: e.to_string(),
    }
}

impl LiveEnvironment {
    fn shared(&self) -> &Shared {
        &self.backend.shared
    }

    /// The environment's id (`Endpoints::run_id`, the `mic-env` tag, ledger lines).
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    fn arm_path<'u>(&self, url: &'u str) -> Option<&'u str> {
        let rest = url.strip_prefix(&self.shared().config.cloud.arm)?;
        Some(rest.split('?').next().unwrap_or(rest))
    }

    async fn send_direct(&self, mut req: HttpRequest) -> Result<HttpResponse, BackendError> {
        let s = self.shared();
        let arm_path = self.arm_path(&req.url).map(str::to_string);
        if let Some(path) = &arm_path {
            let stale = format!("Bearer {}", self.handed_out.expose());
            if req
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("authorization") && *v == stale)
            {
                let fresh = s
                    .arm
                    .tokens
                    .token(&s.config.cloud.arm_audience)
                    .await
                    .map_err(|e| transport_error(&req.url, e))?;
                req.set_header("Authorization", format!("Bearer {}", fresh.token.expose()));
            }
            if !req.method.eq_ignore_ascii_case("GET") {
                s.progress
                    .activity(&self.key, &format!("{} {}", req.method, short_id(path)));
            }
            if req.method.eq_ignore_ascii_case("PUT") {
                self.prepare_compute(path, &mut req).await?;
            }
        }
        let class = if arm_path.is_some() || req.url.starts_with(&s.config.cloud.login) {
            RetryClass::for_arm_method(&req.method)
        } else {
            RetryClass::ConnectOnly
        };
        s.arm
            .transport
            .send(&req, class)
            .await
            .map_err(|e| transport_error(&req.url, e))
    }

    /// Before a VM or scale-set PUT: the configured size, and the network the body refers to.
    async fn prepare_compute(&self, path: &str, req: &mut HttpRequest) -> Result<(), BackendError> {
        let Some((ty, _)) = resource_type(path) else {
            return Ok(());
        };
        let is_vm = ty.eq_ignore_ascii_case("Microsoft.Compute/virtualMachines");
        if !is_vm && !ty.eq_ignore_ascii_case("Microsoft.Compute/virtualMachineScaleSets") {
            return Ok(());
        }
        let Some(mut body) = req
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        else {
            return Ok(());
        };
        let config = &self.shared().config;
        let size = match self.os {
            Os::Linux => &config.linux_vm_size,
            Os::Windows => &config.windows_vm_size,
        };
        let slot = if is_vm {
            body.pointer_mut("/properties/hardwareProfile/vmSize")
        } else {
            body.pointer_mut("/sku/name")
        };
        if let Some(v) = slot {
            *v = json!(size);
        }
        let location = body
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or(&config.location)
            .to_string();
        if is_vm {
            let nics: Vec<String> = body
                .pointer("/properties/networkProfile/networkInterfaces")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for nic in nics {
                let Some((rg, _)) = nic.split_once("/providers/") else {
                    continue;
                };
                let nic_name = nic.rsplit('/').next().unwrap_or_default();
                let vnet_name = format!("{}-vnet", nic_name.trim_end_matches("-nic"));
                let subnet = self
                    .ensure_vnet(rg, &vnet_name, "default", &location)
                    .await?;
                let nic_body = json!({"location": location, "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"}}]}});
                self.create(&nic, NETWORK_API, &nic_body).await?;
            }
        } else {
            let subnets: Vec<String> = body
                .pointer("/properties/virtualMachineProfile/networkProfile/networkInterfaceConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| c.pointer("/properties/ipConfigurations").and_then(Value::as_array).cloned().unwrap_or_default())
                .filter_map(|ip| ip.pointer("/properties/subnet/id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for subnet in subnets {
                // {rg}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{name}
                let Some((vnet_id, name)) = subnet.rsplit_once("/subnets/") else {
                    continue;
                };
                let Some((rg, _)) = vnet_id.split_once("/providers/") else {
                    continue;
                };
                let vnet = vnet_id.rsplit('/').next().unwrap_or_default();
                self.ensure_vnet(rg, vnet, name, &location).await?;
            }
        }
        req.body = Some(body.to_string().into_bytes());
        Ok(())
    }

    /// Create `{rg}/providers/Microsoft.Network/virtualNetworks/{name}` with one subnet;
    /// returns the subnet id.
    async fn ensure_vnet(
        &self,
        rg: &str,
        name: &str,
        subnet: &str,
        location: &str,
    ) -> Result<String, BackendError> {
        let id = format!("{rg}/providers/Microsoft.Network/virtualNetworks/{name}");
        let body = json!({"location": location, "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": subnet, "properties": {"addressPrefix": "10.0.0.0/24"}}],
        }});
        self.create(&id, NETWORK_API, &body).await?;
        Ok(format!("{id}/subnets/{subnet}"))
    }

    async fn create(&self, id: &str, api: &str, body: &Value) -> Result<(), BackendError> {
        self.before_create(id)?;
        self.shared()
            .progress
            .activity(&self.key, &format!("PUT {}", short_id(id)));
        self.shared()
            .arm
            .request_lro("PUT", id, api, Some(body))
            .await
            .map_err(|e| transport_error(id, e))?;
        Ok(())
    }

    async fn send_in_host(
        &self,
        host: &str,
        req: HttpRequest,
    ) -> Result<HttpResponse, BackendError> {
        let s = self.shared();
        if is_site(host) {
            return self.kudu(host, &req).await;
        }
        let local = match s.config.in_host {
            InHostMode::Local => true,
            InHostMode::RunCommand => false,
            InHostMode::Auto => self
                .backend
                .local_vm()
                .await
                .is_some_and(|id| id.eq_ignore_ascii_case(host)),
        };
        if local {
            let mut req = req;
            if let Some(rest) = req.url.strip_prefix(IMDS_BASE) {
                req.url = format!("{}{rest}", s.config.imds_url);
            }
            return s
                .local
                .send(&req, RetryClass::ConnectOnly)
                .await
                .map_err(|e| transport_error(&req.url, e));
        }
        self.run_command(host, &req).await
    }

    async fn run_command(
        &self,
        host: &str,
        req: &HttpRequest,
    ) -> Result<HttpResponse, BackendError> {
        let s = self.shared();
        let (ty, name) =
            resource_type(host).ok_or_else(|| BackendError::UnknownHost(host.to_string()))?;
        let target = match ty.to_ascii_lowercase().as_str() {
            "microsoft.compute/virtualmachines" => host.to_string(),
            "microsoft.compute/virtualmachinescalesets" => self.first_instance(host).await?,
            _ => {
                return Err(BackendError::Unavailable {
                    backend: "live".into(),
                    reason: format!(
                        "in-host requests on {ty} are not supported by the live backend (only VMs and scale sets, through Run Command)"
                    ),
                });
            }
        };
        // Azure runs one Run Command per VM at a time; trials sharing a VM take turns.
        let turn = s
            .run_commands
            .lock()
            .expect("not poisoned")
            .entry(target.to_ascii_lowercase())
            .or_default()
            .clone();
        let _one_at_a_time = turn.lock().await;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let script = runcommand::script(self.os, req, &nonce);
        s.progress.activity(
            &self.key,
            &format!(
                "Run Command on {name}: {} {}",
                req.method,
                redact_url(&req.url)
            ),
        );
        let path = format!("{target}/runCommand");
        let url = s.arm.url(&path, RUN_COMMAND_API);
        let mut attempt = 0;
        let accepted = loop {
            attempt += 1;
            let resp = s
                .arm
                .request("POST", &path, RUN_COMMAND_API, Some(&script.body()))
                .await
                .map_err(|e| transport_error(&url, e))?;
            // 409: another Run Command (an earlier one of ours, or the portal's) is running.
            if resp.status == 409 && attempt < s.arm.transport.policy().max_attempts {
                tokio::time::sleep(s.arm.transport.policy().backoff(attempt)).await;
                continue;
            }
            if !resp.is_success() {
                return Err(transport_error(
                    &url,
                    format!(
                        "Run Command on {name} was refused: {}",
                        crate::transport::describe_response(&resp)
                    ),
                ));
            }
            break resp;
        };
        let result = s
            .arm
            .follow("POST", &url, accepted)
            .await
            .map_err(|e| transport_error(&url, e))?;
        let body = result.json().unwrap_or(Value::Null);
        let parsed =
            runcommand::split_output(&body).and_then(|o| runcommand::parse_output(&o, &nonce));
        match parsed {
            Ok(InHostOutcome::Response(r)) => Ok(r),
            Ok(InHostOutcome::NoAnswer { exit, message }) => Err(BackendError::Transport {
                url: redact_url(&req.url),
                message: format!(
                    "{} (inside VM {name}: client exit {exit}: {message})",
                    InHostOutcome::explain(exit)
                ),
            }),
            Err(e) => Err(transport_error(
                &req.url,
                format!("Run Command on {name}: {e}"),
            )),
        }
    }

    /// An in-host request on an App Service site, through its Kudu command API.
    async fn kudu(&self, site: &str, req: &HttpRequest) -> Result<HttpResponse, BackendError> {
        let s = self.shared();
        let name = resource_type(site)
            .map(|(_, n)| n)
            .ok_or_else(|| BackendError::UnknownHost(site.to_string()))?;
        let scm = self.scm_host(site, &name).await;
        let url = kudu::command_url(&scm);
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let body = kudu::command_body(self.os, req, &nonce);
        s.progress.activity(
            &self.key,
            &format!("Kudu on {name}: {} {}", req.method, redact_url(&req.url)),
        );
        let token = s
            .arm
            .tokens
            .token(&s.config.cloud.arm_audience)
            .await
            .map_err(|e| transport_error(&url, e))?;
        let post = HttpRequest::new("POST", url.clone())
            .header("Authorization", format!("Bearer {}", token.token.expose()))
            .json(&body);
        // The command only fetches (a token); sending it again is harmless: retry 429/5xx.
        let resp = s
            .arm
            .transport
            .send(&post, RetryClass::Idempotent)
            .await
            .map_err(|e| transport_error(&url, e))?;
        if !resp.is_success() {
            return Err(transport_error(
                &url,
                format!("on {name}: {}", kudu::explain_refusal(&resp)),
            ));
        }
        match kudu::parse_result(&resp.body, &nonce) {
            Ok(InHostOutcome::Response(r)) => Ok(r),
            Ok(InHostOutcome::NoAnswer { exit, message }) => Err(BackendError::Transport {
                url: redact_url(&req.url),
                message: format!(
                    "{} (inside site {name}, through Kudu: client exit {exit}: {message})",
                    if exit == 3 {
                        "no usable URL (is IDENTITY_ENDPOINT set, i.e. has the site an identity?)"
                    } else {
                        InHostOutcome::explain(exit)
                    }
                ),
            }),
            Err(e) => Err(transport_error(&req.url, format!("Kudu on {name}: {e}"))),
        }
    }

    /// The site's SCM host: from its ARM representation, else `<name>.<cloud's SCM suffix>`.
    async fn scm_host(&self, site: &str, name: &str) -> String {
        let s = self.shared();
        let key = site.to_ascii_lowercase();
        if let Some(h) = s.scm_hosts.lock().expect("not poisoned").get(&key) {
            return h.clone();
        }
        let suffix = kudu::scm_suffix(&s.config.cloud.name);
        let host = match s.arm.request("GET", site, kudu::WEB_API, None).await {
            Ok(r) if r.is_success() => {
                kudu::scm_host(&r.json().unwrap_or(Value::Null), name, suffix)
            }
            _ => format!("{name}.{suffix}"),
        };
        s.scm_hosts
            .lock()
            .expect("not poisoned")
            .insert(key, host.clone());
        host
    }

    async fn first_instance(&self, vmss: &str) -> Result<String, BackendError> {
        let s = self.shared();
        let path = format!("{vmss}/virtualMachines");
        let resp = s
            .arm
            .request("GET", &path, COMPUTE_API, None)
            .await
            .map_err(|e| transport_error(&path, e))?;
        resp.json()
            .and_then(|b| {
                b.pointer("/value/0/instanceId")
                    .and_then(Value::as_str)
                    .map(|i| format!("{vmss}/virtualMachines/{i}"))
            })
            .ok_or_else(|| {
                transport_error(
                    &path,
                    format!(
                        "scale set has no instance to run the step on ({})",
                        resp.status
                    ),
                )
            })
    }
}

/// Whether an ARM id is an App Service site (`Microsoft.Web/sites`).
fn is_site(id: &str) -> bool {
    resource_type(id).is_some_and(|(ty, _)| ty.eq_ignore_ascii_case("Microsoft.Web/sites"))
}

/// `virtualMachines/myVM` from an ARM path.
fn short_id(path: &str) -> String {
    match resource_type(path) {
        Some((ty, name)) => format!("{}/{name}", ty.rsplit('/').next().unwrap_or(&ty)),
        None => path
            .rsplit('/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/"),
    }
}

#[async_trait]
impl Environment for LiveEnvironment {
    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn deployer(&self) -> &Deployer {
        &self.deployer
    }

    async fn send(
        &self,
        route: Route<'_>,
        request: HttpRequest,
    ) -> Result<HttpResponse, BackendError> {
        match route {
            Route::Direct => self.send_direct(request).await,
            Route::InHost(host) => self.send_in_host(host, request).await,
        }
    }

    /// App Service sites: placeholders the Kudu script replaces by the site's own values.
    fn host_environment(
        &self,
        host_resource_id: &str,
    ) -> std::collections::BTreeMap<String, String> {
        if is_site(host_resource_id) {
            kudu::host_environment()
        } else {
            std::collections::BTreeMap::new()
        }
    }

    fn propagation_budget(&self) -> Duration {
        self.shared().config.propagation_budget
    }

    /// Tokens for Key Vault, Graph or Azure SQL from the configured credential (client
    /// secret, federated token, GitHub OIDC or the Azure CLI), cached like the ARM token.
    async fn deployer_token_for(&self, audience: &str) -> Option<Result<String, BackendError>> {
        let s = self.shared();
        Some(
            s.arm
                .tokens
                .token(audience)
                .await
                .map(|t| t.token.expose().to_string())
                .map_err(|e| BackendError::Unavailable {
                    backend: "live".into(),
                    reason: e.to_string(),
                }),
        )
    }

    fn resource_group_tags(&self) -> Vec<(String, String)> {
        vec![
            (RUN_TAG.into(), self.shared().config.run_id.clone()),
            (SCENARIO_TAG.into(), self.scenario_id.clone()),
            (ENV_TAG.into(), self.env_id.clone()),
            (DELETE_AFTER_TAG.into(), self.shared().delete_after.clone()),
        ]
    }

    fn before_create(&self, resource_id: &str) -> Result<(), BackendError> {
        self.shared()
            .ledger
            .record(&self.env_id, &self.scenario_id, resource_id)
            .map_err(|e| {
                BackendError::Start(format!(
                    "could not write the ledger {} ({e}); not creating {resource_id}",
                    self.shared().ledger.path().display()
                ))
            })
    }

    fn max_poll_interval(&self) -> Duration {
        self.shared().config.max_poll_interval
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let s = self.shared();
        s.progress.activity(&self.key, "teardown");
        let entries = s
            .ledger
            .entries_of(&self.env_id)
            .map_err(|e| BackendError::Teardown(format!("reading the ledger: {e}")))?;
        let mut report = SweepReport::default();
        let options = SweepOptions {
            wait: true,
            ..SweepOptions::default()
        };
        sweep::delete_entries(
            &s.arm,
            &entries,
            "teardown",
            &options,
            &mut BTreeSet::new(),
            &mut report,
        )
        .await;
        if report.failed.is_empty() {
            s.ledger
                .release(&self.env_id)
                .map_err(|e| BackendError::Teardown(format!("releasing the ledger: {e}")))?;
            s.progress.scenario_finished(&self.key, "torn down");
            Ok(())
        } else {
            let list: Vec<String> = report
                .failed
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect();
            s.progress.scenario_finished(
                &self.key,
                "teardown FAILED (kept in the ledger for `mic sweep`)",
            );
            Err(BackendError::Teardown(list.join("; ")))
        }
    }
}
