//! Live configuration, from the process environment only (never from scenario files).
//!
//! [`LiveConfig::from_env`] reads every variable of [`VARIABLES`] and reports *all* missing
//! or invalid settings at once, each naming its variable, so a CI log shows the whole fix in
//! one run. Secret values are held in [`Secret`] (whose `Debug` prints `[redacted]`) and are
//! never echoed in error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mic_core::backend::Secret;

use crate::credential::CredentialSource;

/// Endpoints of one Azure cloud (what differs between the public and the sovereign clouds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// Preset name: `AzureCloud`, `AzureUSGovernment`, `AzureChinaCloud` (or `custom`).
    pub name: String,
    /// ARM base URL, no trailing slash.
    pub arm: String,
    /// Entra ID (login) base URL, no trailing slash.
    pub login: String,
    /// The ARM token audience (resource), with its trailing slash.
    pub arm_audience: String,
    pub storage_suffix: String,
    pub keyvault_suffix: String,
    pub sql_suffix: String,
    pub cosmos_suffix: String,
    /// Data Lake Store Gen1 exists only in the public cloud.
    pub datalake_suffix: Option<String>,
    /// Microsoft Graph base URL, no trailing slash.
    pub graph: String,
    /// Azure AD Graph base URL (`graph.windows.net`, api-version 1.6), which the tutorials'
    /// Graph steps call; Microsoft has retired it, so expect the nightly to report it.
    pub aad_graph: String,
}

impl CloudEndpoints {
    /// The preset names accepted by `MIC_LIVE_CLOUD`.
    pub const PRESETS: [&'static str; 3] = ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"];

    /// A preset by (case-insensitive) name.
    pub fn preset(name: &str) -> Option<Self> {
        let s = |v: &str| v.to_string();
        match name.to_ascii_lowercase().as_str() {
            "azurecloud" | "public" | "azurepubliccloud" => Some(Self {
                name: s("AzureCloud"),
                arm: s("https://management.azure.com"),
                login: s("https://login.microsoftonline.com"),
                arm_audience: s("https://management.azure.com/"),
                storage_suffix: s("core.windows.net"),
                keyvault_suffix: s("vault.azure.net"),
                sql_suffix: s("database.windows.net"),
                cosmos_suffix: s("documents.azure.com"),
                datalake_suffix: Some(s("azuredatalakestore.net")),
                graph: s("https://graph.microsoft.com"),
                aad_graph: s("https://graph.windows.net"),
            }),
            "azureusgovernment" | "usgov" => Some(Self {
                name: s("AzureUSGovernment"),
                arm: s("https://management.usgovcloudapi.net"),
                login: s("https://login.microsoftonline.us"),
                arm_audience: s("https://management.usgovcloudapi.net/"),
                storage_suffix: s("core.usgovcloudapi.net"),
                keyvault_suffix: s("vault.usgovcloudapi.net"),
                sql_suffix: s("database.usgovcloudapi.net"),
                cosmos_suffix: s("documents.azure.us"),
                datalake_suffix: None,
                graph: s("https://graph.microsoft.us"),
                aad_graph: s("https://graph.microsoftazure.us"),
            }),
            "azurechinacloud" | "china" => Some(Self {
                name: s("AzureChinaCloud"),
                arm: s("https://management.chinacloudapi.cn"),
                login: s("https://login.chinacloudapi.cn"),
                arm_audience: s("https://management.chinacloudapi.cn/"),
                storage_suffix: s("core.chinacloudapi.cn"),
                keyvault_suffix: s("vault.azure.cn"),
                sql_suffix: s("database.chinacloudapi.cn"),
                cosmos_suffix: s("documents.azure.cn"),
                datalake_suffix: None,
                graph: s("https://microsoftgraph.chinacloudapi.cn"),
                aad_graph: s("https://graph.chinacloudapi.cn"),
            }),
            _ => None,
        }
    }
}

/// How in-host requests (IMDS, the VM extension endpoint) are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InHostMode {
    /// Locally when mic runs on the target VM itself (detected through IMDS), else Run Command.
    Auto,
    /// Always locally (mic runs on the VM).
    Local,
    /// Always through the VM Run Command API.
    RunCommand,
}

/// Everything the live backend needs, read from the environment.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub tenant_id: String,
    pub subscription_id: String,
    pub location: String,
    pub cloud: CloudEndpoints,
    pub credential: CredentialSource,
    /// Deployer object id when known up front (otherwise read from the token's `oid`).
    pub deployer_object_id: Option<String>,
    /// Run id: tags, ledger file name. Default: `gh{GITHUB_RUN_ID}-{attempt}` or random.
    pub run_id: String,
    /// Resource groups are tagged `DeleteAfter` = start + this.
    pub ttl: Duration,
    pub ledger_dir: PathBuf,
    /// VM size for Linux hosts (default `Standard_B1s`, the cheapest that runs Ubuntu 22.04).
    pub linux_vm_size: String,
    /// VM size for Windows hosts (default `Standard_B2s`: 1 GiB B1s is too small for Windows).
    pub windows_vm_size: String,
    pub in_host: InHostMode,
    /// How long a call after a grant may be retried while the role assignment propagates.
    pub propagation_budget: Duration,
    /// Upper bound of one wait between polls of a long-running operation.
    pub max_poll_interval: Duration,
    /// IMDS base URL used to detect that mic runs on an Azure VM (tests point it elsewhere).
    pub imds_url: String,
}

/// One environment variable the live backend reads.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub required: bool,
    pub secret: bool,
    pub help: &'static str,
}

macro_rules! vars {
    ($($id:ident = $name:literal, $req:literal, $secret:literal, $help:literal;)*) => {
        $(pub const $id: &str = $name;)*
        /// Every variable, for `--help` texts and documentation.
        pub const VARIABLES: &[Variable] = &[$(Variable { name: $name, required: $req, secret: $secret, help: $help }),*];
    };
}

vars! {
    TENANT_ID = "AZURE_TENANT_ID", true, false, "Entra tenant (directory) id of the deployer principal";
    SUBSCRIPTION_ID = "AZURE_SUBSCRIPTION_ID", true, false, "subscription (GUID) where resource groups are created";
    LOCATION = "AZURE_LOCATION", true, false, "Azure region name, e.g. eastus";
    CLOUD = "MIC_LIVE_CLOUD", false, false, "AzureCloud (default), AzureUSGovernment or AzureChinaCloud";
    ARM_ENDPOINT = "MIC_LIVE_ARM_ENDPOINT", false, false, "override of the cloud's ARM URL";
    ARM_AUDIENCE = "MIC_LIVE_ARM_AUDIENCE", false, false, "override of the ARM token audience (default: the cloud's, or MIC_LIVE_ARM_ENDPOINT with a trailing slash)";
    LOGIN_ENDPOINT = "AZURE_AUTHORITY_HOST", false, false, "override of the cloud's login URL";
    STORAGE_SUFFIX = "MIC_LIVE_STORAGE_SUFFIX", false, false, "override of the storage endpoint suffix";
    KEYVAULT_SUFFIX = "MIC_LIVE_KEYVAULT_SUFFIX", false, false, "override of the Key Vault suffix";
    SQL_SUFFIX = "MIC_LIVE_SQL_SUFFIX", false, false, "override of the SQL server suffix";
    COSMOS_SUFFIX = "MIC_LIVE_COSMOS_SUFFIX", false, false, "override of the Cosmos DB suffix";
    DATALAKE_SUFFIX = "MIC_LIVE_DATALAKE_SUFFIX", false, false, "override of the Data Lake Store suffix";
    GRAPH_ENDPOINT = "MIC_LIVE_GRAPH_ENDPOINT", false, false, "override of the Graph URL";
    AAD_GRAPH_ENDPOINT = "MIC_LIVE_AAD_GRAPH_ENDPOINT", false, false, "override of the Azure AD Graph URL the Graph tutorials call";
    AUTH = "MIC_LIVE_AUTH", false, false, "auto (default), client-secret, federated, github-oidc, access-token or azure-cli";
    CLIENT_ID = "AZURE_CLIENT_ID", false, false, "application (client) id of the deployer";
    CLIENT_SECRET = "AZURE_CLIENT_SECRET", false, true, "client secret of the deployer application";
    FEDERATED_TOKEN_FILE = "AZURE_FEDERATED_TOKEN_FILE", false, false, "file holding a federated OIDC token (re-read on every sign-in)";
    GITHUB_TOKEN_URL = "ACTIONS_ID_TOKEN_REQUEST_URL", false, false, "GitHub Actions OIDC token request URL (permissions: id-token: write)";
    GITHUB_TOKEN_REQUEST = "ACTIONS_ID_TOKEN_REQUEST_TOKEN", false, true, "GitHub Actions OIDC request bearer";
    ACCESS_TOKEN = "AZURE_ACCESS_TOKEN", false, true, "a ready ARM access token (e.g. from `az account get-access-token`)";
    AZ_PATH = "MIC_LIVE_AZ", false, false, "Azure CLI program for the azure-cli fallback (default: az on PATH)";
    DEPLOYER_OBJECT_ID = "MIC_LIVE_DEPLOYER_OBJECT_ID", false, false, "deployer object id (default: the token's oid claim)";
    RUN_ID = "MIC_LIVE_RUN_ID", false, false, "run id for tags and the ledger (default: from GITHUB_RUN_ID or random)";
    TTL_HOURS = "MIC_LIVE_TTL_HOURS", false, false, "hours after which `mic sweep` may delete a run's resources (default 6)";
    LEDGER_DIR = "MIC_LIVE_LEDGER_DIR", false, false, "directory of the ledger files (default .mic/ledger)";
    VM_SIZE = "MIC_LIVE_VM_SIZE", false, false, "Linux VM size (default Standard_B1s)";
    WINDOWS_VM_SIZE = "MIC_LIVE_WINDOWS_VM_SIZE", false, false, "Windows VM size (default Standard_B2s)";
    IN_HOST = "MIC_LIVE_IN_HOST", false, false, "auto (default), local or run-command";
    PROPAGATION_SECS = "MIC_LIVE_PROPAGATION_BUDGET_SECS", false, false, "seconds a call may wait for a grant to propagate (default 600)";
    MAX_POLL_SECS = "MIC_LIVE_MAX_POLL_SECS", false, false, "cap of one long-running-operation poll wait (default 30)";
    IMDS_URL = "MIC_LIVE_IMDS_URL", false, false, "IMDS base URL for local detection (default http://169.254.169.254)";
}

/// What is wrong with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The variable(s) to set or fix, e.g. `AZURE_TENANT_ID` or `AZURE_CLIENT_SECRET`.
    pub variable: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// Every problem found in the environment (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// The variables named by the problems, in order.
    pub fn variables(&self) -> Vec<&str> {
        self.problems.iter().map(|p| p.variable.as_str()).collect()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "the live backend is not configured ({n} problem{}); set these environment variables:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads variables through a function so tests need not touch the process environment.
struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    fn opt(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn req(&mut self, name: &str) -> Option<String> {
        let v = self.opt(name);
        if v.is_none() {
            let help = VARIABLES
                .iter()
                .find(|v| v.name == name)
                .map_or("", |v| v.help);
            self.problem(name, format!("not set ({help})"));
        }
        v
    }

    fn problem(&mut self, variable: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable: variable.to_string(),
            message: message.into(),
        });
    }

    fn url(&mut self, name: &str, default: String) -> String {
        match self.opt(name) {
            None => default,
            Some(v) => {
                let v = v.trim_end_matches('/').to_string();
                match url::Url::parse(&v) {
                    Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
                        v
                    }
                    Ok(_) => {
                        self.problem(
                            name,
                            format!(
                                "`{v}` must be an https URL (http is accepted for loopback only)"
                            ),
                        );
                        default
                    }
                    Err(e) => {
                        self.problem(name, format!("`{v}` is not a URL ({e})"));
                        default
                    }
                }
            }
        }
    }

    fn number(&mut self, name: &str, default: u64) -> u64 {
        match self.opt(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problem(name, format!("`{v}` is not a whole number"));
                default
            }),
        }
    }
}

fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

pub(crate) fn is_guid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

impl LiveConfig {
    /// Read the configuration from the process environment.
    ///
    /// # Errors
    /// Every missing or invalid setting, each naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let az = std::env::var_os("MIC_LIVE_AZ")
            .map(PathBuf::from)
            .or_else(|| find_on_path("az"));
        Self::from_lookup(&|name| std::env::var(name).ok(), az.as_deref())
    }

    /// Read the configuration from a map (tests, or a CLI that collected variables itself).
    ///
    /// # Errors
    /// As [`LiveConfig::from_env`].
    pub fn from_map(
        vars: &BTreeMap<String, String>,
        az_program: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| vars.get(name).cloned(), az_program)
    }

    /// Read the configuration through `get`; `az_program` is the Azure CLI when one is
    /// installed (the last-resort credential).
    ///
    /// # Errors
    /// As [`LiveConfig::from_env`].
    pub fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
        az_program: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let mut r = Reader {
            get,
            problems: Vec::new(),
        };
        let tenant_id = r.req(TENANT_ID);
        if let Some(t) = &tenant_id
            && (t.contains(char::is_whitespace) || t.contains('/'))
        {
            r.problem(
                TENANT_ID,
                format!(
                    "`{t}` is not a tenant id (a GUID or a domain like contoso.onmicrosoft.com)"
                ),
            );
        }
        let subscription_id = r.req(SUBSCRIPTION_ID);
        if let Some(s) = &subscription_id
            && !is_guid(s)
        {
            r.problem(SUBSCRIPTION_ID, format!("`{s}` is not a subscription id (a GUID like 00000000-0000-0000-0000-000000000000)"));
        }
        let location = r.req(LOCATION);
        if let Some(l) = &location
            && !l
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            r.problem(
                LOCATION,
                format!(
                    "`{l}` is not a region name (lowercase, no spaces, e.g. eastus or westeurope)"
                ),
            );
        }
        let cloud_name = r.opt(CLOUD).unwrap_or_else(|| "AzureCloud".into());
        let mut cloud = CloudEndpoints::preset(&cloud_name).unwrap_or_else(|| {
            r.problem(
                CLOUD,
                format!(
                    "`{cloud_name}` is not a known cloud (one of {})",
                    CloudEndpoints::PRESETS.join(", ")
                ),
            );
            CloudEndpoints::preset("AzureCloud").expect("the public cloud preset exists")
        });
        let arm = r.url(ARM_ENDPOINT, cloud.arm.clone());
        if arm != cloud.arm {
            cloud.arm_audience = format!("{arm}/");
            cloud.name = "custom".into();
            cloud.arm = arm;
        }
        if let Some(aud) = r.opt(ARM_AUDIENCE).filter(|a| !a.trim().is_empty()) {
            cloud.arm_audience = aud.trim().to_string();
        }
        cloud.login = r.url(LOGIN_ENDPOINT, cloud.login.clone());
        cloud.graph = r.url(GRAPH_ENDPOINT, cloud.graph.clone());
        cloud.aad_graph = r.url(AAD_GRAPH_ENDPOINT, cloud.aad_graph.clone());
        for (var, slot) in [
            (STORAGE_SUFFIX, &mut cloud.storage_suffix),
            (KEYVAULT_SUFFIX, &mut cloud.keyvault_suffix),
            (SQL_SUFFIX, &mut cloud.sql_suffix),
            (COSMOS_SUFFIX, &mut cloud.cosmos_suffix),
        ] {
            if let Some(v) = r.opt(var) {
                *slot = v.trim_start_matches('.').to_string();
            }
        }
        if let Some(v) = r.opt(DATALAKE_SUFFIX) {
            cloud.datalake_suffix = Some(v.trim_start_matches('.').to_string());
        }

        let credential = read_credential(&mut r, az_program);

        let deployer_object_id = r.opt(DEPLOYER_OBJECT_ID);
        if let Some(o) = &deployer_object_id
            && !is_guid(o)
        {
            r.problem(
                DEPLOYER_OBJECT_ID,
                format!("`{o}` is not an object id (GUID)"),
            );
        }
        let run_id = r
            .opt(RUN_ID)
            .unwrap_or_else(|| default_run_id(&|n| (r.get)(n)));
        if !run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || run_id.len() > 40
        {
            r.problem(
                RUN_ID,
                format!("`{run_id}` must be at most 40 letters, digits or dashes"),
            );
        }
        let ttl = Duration::from_secs(r.number(TTL_HOURS, 6) * 3600);
        let ledger_dir = r
            .opt(LEDGER_DIR)
            .map_or_else(|| PathBuf::from(".mic/ledger"), PathBuf::from);
        let linux_vm_size = r.opt(VM_SIZE).unwrap_or_else(|| "Standard_B1s".into());
        let windows_vm_size = r
            .opt(WINDOWS_VM_SIZE)
            .unwrap_or_else(|| "Standard_B2s".into());
        let in_host = match r
            .opt(IN_HOST)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("auto") => InHostMode::Auto,
            Some("local") => InHostMode::Local,
            Some("run-command" | "runcommand") => InHostMode::RunCommand,
            Some(other) => {
                r.problem(
                    IN_HOST,
                    format!("`{other}` is not one of auto, local, run-command"),
                );
                InHostMode::Auto
            }
        };
        let propagation_budget = Duration::from_secs(r.number(PROPAGATION_SECS, 600));
        let max_poll_interval = Duration::from_secs(r.number(MAX_POLL_SECS, 30).max(1));
        let imds_url = r.url(IMDS_URL, "http://169.254.169.254".into());

        match (tenant_id, subscription_id, location, credential) {
            (Some(tenant_id), Some(subscription_id), Some(location), Some(credential))
                if r.problems.is_empty() =>
            {
                Ok(Self {
                    tenant_id,
                    subscription_id,
                    location,
                    cloud,
                    credential,
                    deployer_object_id,
                    run_id,
                    ttl,
                    ledger_dir,
                    linux_vm_size,
                    windows_vm_size,
                    in_host,
                    propagation_budget,
                    max_poll_interval,
                    imds_url,
                })
            }
            _ => Err(ConfigError {
                problems: r.problems,
            }),
        }
    }

    /// A multi-line, secret-free summary (for `--dry-run` and logs).
    pub fn summary(&self) -> String {
        format!(
            "cloud {} (ARM {}), tenant {}, subscription {}, location {}\n\
             deployer: {}\n\
             run id {}, resources deletable after {} h, ledger {}\n\
             VM sizes: {} (Linux), {} (Windows); in-host steps: {:?}; propagation budget {} s",
            self.cloud.name,
            self.cloud.arm,
            self.tenant_id,
            self.subscription_id,
            self.location,
            self.credential.describe(),
            self.run_id,
            self.ttl.as_secs() / 3600,
            self.ledger_dir.display(),
            self.linux_vm_size,
            self.windows_vm_size,
            self.in_host,
            self.propagation_budget.as_secs(),
        )
    }
}

fn default_run_id(get: &dyn Fn(&str) -> Option<String>) -> String {
    match (get("GITHUB_RUN_ID"), get("GITHUB_RUN_ATTEMPT")) {
        (Some(id), attempt) if id.chars().all(|c| c.is_ascii_digit()) => {
            let attempt = attempt
                .filter(|a| a.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or_else(|| "1".into());
            // Shards of one workflow run share GITHUB_RUN_ID: the job name keeps them apart.
            let job = get("MIC_LIVE_SHARD")
                .map(|s| format!("-s{}", s.replace('/', "of")))
                .unwrap_or_default();
            format!("gh{id}-{attempt}{job}")
        }
        _ => format!("local-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        [
            program.to_string(),
            format!("{program}.cmd"),
            format!("{program}.exe"),
        ]
        .into_iter()
        .map(|p| dir.join(p))
        .find(|p| p.is_file())
    })
}

const CREDENTIAL_CHOICES: &str = "set AZURE_CLIENT_ID with AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE or \
     (in GitHub Actions with `permissions: id-token: write`) ACTIONS_ID_TOKEN_REQUEST_URL; or set AZURE_ACCESS_TOKEN; \
     or install the Azure CLI and run `az login`";

fn read_credential(r: &mut Reader<'_>, az_program: Option<&Path>) -> Option<CredentialSource> {
    let mode = r
        .opt(AUTH)
        .map_or_else(|| "auto".into(), |m| m.to_ascii_lowercase());
    let client_id = r.opt(CLIENT_ID);
    if let Some(c) = &client_id
        && !is_guid(c)
    {
        r.problem(
            CLIENT_ID,
            format!("`{c}` is not an application (client) id (GUID)"),
        );
    }
    let secret = r.opt(CLIENT_SECRET);
    let file = r.opt(FEDERATED_TOKEN_FILE);
    let gh_url = r.opt(GITHUB_TOKEN_URL);
    let gh_token = r.opt(GITHUB_TOKEN_REQUEST);
    let access = r.opt(ACCESS_TOKEN);
    let mode = match mode.as_str() {
        "auto" => {
            if secret.is_some() {
                "client-secret"
            } else if file.is_some() {
                "federated"
            } else if gh_url.is_some() && client_id.is_some() {
                "github-oidc"
            } else if access.is_some() {
                "access-token"
            } else if client_id.is_some() {
                r.problem(
                    CLIENT_SECRET,
                    "AZURE_CLIENT_ID is set but no secret goes with it: set AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE \
                     (or, in GitHub Actions, grant `id-token: write` so ACTIONS_ID_TOKEN_REQUEST_URL is set)",
                );
                return None;
            } else if az_program.is_some() {
                "azure-cli"
            } else {
                r.problem(
                    "deployer credentials",
                    format!("none found: {CREDENTIAL_CHOICES}"),
                );
                return None;
            }
        }
        m @ ("client-secret" | "federated" | "github-oidc" | "access-token" | "azure-cli") => m,
        other => {
            r.problem(AUTH, format!("`{other}` is not one of auto, client-secret, federated, github-oidc, access-token, azure-cli"));
            return None;
        }
    };
    let need_client = |r: &mut Reader<'_>| {
        if client_id.is_none() {
            r.problem(
                CLIENT_ID,
                format!("not set (needed for {mode} sign-in: the deployer's application id)"),
            );
        }
        client_id.clone()
    };
    match mode {
        "client-secret" => {
            let c = need_client(r);
            if secret.is_none() {
                r.problem(
                    CLIENT_SECRET,
                    "not set (the deployer application's client secret)",
                );
            }
            Some(CredentialSource::ClientSecret {
                client_id: c?,
                secret: Secret::new(secret?),
            })
        }
        "federated" => {
            let c = need_client(r);
            let Some(f) = file else {
                r.problem(
                    FEDERATED_TOKEN_FILE,
                    "not set (a file holding the federated OIDC token)",
                );
                return None;
            };
            if !Path::new(&f).is_file() {
                r.problem(
                    FEDERATED_TOKEN_FILE,
                    format!("`{f}` does not exist or is not a file"),
                );
                return None;
            }
            Some(CredentialSource::FederatedTokenFile {
                client_id: c?,
                path: PathBuf::from(f),
            })
        }
        "github-oidc" => {
            let c = need_client(r);
            if gh_url.is_none() {
                r.problem(
                    GITHUB_TOKEN_URL,
                    "not set (give the workflow job `permissions: id-token: write`)",
                );
            }
            if gh_token.is_none() {
                r.problem(
                    GITHUB_TOKEN_REQUEST,
                    "not set (give the workflow job `permissions: id-token: write`)",
                );
            }
            Some(CredentialSource::GitHubOidc {
                client_id: c?,
                request_url: gh_url?,
                request_token: Secret::new(gh_token?),
            })
        }
        "access-token" => {
            let Some(t) = access else {
                r.problem(ACCESS_TOKEN, "not set (e.g. `export AZURE_ACCESS_TOKEN=$(az account get-access-token --query accessToken -o tsv)`)");
                return None;
            };
            match crate::credential::jwt_expiry(&t) {
                Some(exp) if exp <= time::OffsetDateTime::now_utc() => {
                    r.problem(
                        ACCESS_TOKEN,
                        format!("the token expired at {exp}; get a fresh one"),
                    );
                    None
                }
                _ if t.split('.').count() != 3 => {
                    r.problem(ACCESS_TOKEN, "is not a JWT access token");
                    None
                }
                _ => Some(CredentialSource::AccessToken(Secret::new(t))),
            }
        }
        _ => {
            let Some(program) = az_program else {
                r.problem(
                    AZ_PATH,
                    format!("the Azure CLI (`az`) was not found on PATH; {CREDENTIAL_CHOICES}"),
                );
                return None;
            };
            Some(CredentialSource::AzureCli {
                program: program.to_path_buf(),
            })
        }
    }
}
