//! The fake backend: one fresh [`mic_fake::FakeCloud`] per scenario run.
//!
//! The only fake-specific code on the driver's path lives here, and it is small: endpoints
//! and deployer credentials come from the fake world, and an "inside the host" request to
//! `http://169.254.169.254` (IMDS) or `http://localhost:50342` (VM extension) is sent to
//! that VM's loopback endpoint instead. Everything else is plain HTTP.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use mic_core::backend::{
    Backend, BackendError, Deployer, DeployerAuth, Endpoints, Environment, HttpRequest, HttpResponse, Route, Secret,
};
use mic_core::model::{BackendKind, Scenario};
use mic_fake::{FakeCloud, FakeConfig};

/// Runs every scenario against its own embedded fake cloud.
#[derive(Debug, Clone, Default)]
pub struct FakeBackend {
    pub config: FakeConfig,
}

impl FakeBackend {
    pub fn new(config: FakeConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fake
    }

    async fn environment(&self, _scenario: &Scenario) -> Result<Box<dyn Environment>, BackendError> {
        let cloud = FakeCloud::start(self.config.clone())
            .await
            .map_err(|e| BackendError::Start(e.to_string()))?;
        Ok(Box::new(FakeEnvironment::new(cloud, self.config.propagation_delay, self.config.lro_delay)?))
    }
}

/// One scenario's fake world.
pub struct FakeEnvironment {
    cloud: FakeCloud,
    endpoints: Endpoints,
    deployer: Deployer,
    client: reqwest::Client,
    propagation_budget: Duration,
    lro_poll: Duration,
}

impl FakeEnvironment {
    pub fn new(cloud: FakeCloud, propagation_delay: Duration, lro_delay: Duration) -> Result<Self, BackendError> {
        let d = cloud.deployer();
        let endpoints = Endpoints {
            arm: cloud.arm_url(),
            login: cloud.login_url(),
            subscription_id: cloud.subscription_id(),
            tenant_id: cloud.tenant_id(),
            location: cloud.location(),
            run_id: short_run_id(),
            aliases: Vec::new(),
        };
        let deployer = Deployer {
            object_id: d.object_id.clone(),
            client_id: d.client_id.clone(),
            auth: DeployerAuth::ClientSecret { client_id: d.client_id.clone(), secret: Secret::new(d.client_secret.clone()) },
        };
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BackendError::Start(e.to_string()))?;
        Ok(Self {
            cloud,
            endpoints,
            deployer,
            client,
            // Give a propagating grant a generous budget over the configured delay.
            lro_poll: lro_delay / 4,
            propagation_budget: if propagation_delay.is_zero() { Duration::ZERO } else { propagation_delay * 3 + Duration::from_secs(1) },
        })
    }

    /// The fake world behind this environment (for tests that inspect or perturb it).
    pub fn cloud(&self) -> &FakeCloud {
        &self.cloud
    }

    fn in_host_url(&self, host: &str, url: &str) -> Result<String, BackendError> {
        const IMDS: &str = "http://169.254.169.254";
        const EXTENSION: &str = "http://localhost:50342";
        if let Some(rest) = url.strip_prefix(IMDS) {
            let base = self.cloud.imds_url(host).ok_or_else(|| BackendError::UnknownHost(host.to_string()))?;
            return Ok(format!("{base}{rest}"));
        }
        if let Some(rest) = url.strip_prefix(EXTENSION) {
            // Without the extension installed nothing listens on 50342: the connection is
            // refused, as on a real VM.
            let base = self.cloud.extension_url(host).ok_or_else(|| BackendError::Transport {
                url: url.to_string(),
                message: "connection refused (the ManagedIdentityExtension is not installed on this VM)".into(),
            })?;
            return Ok(format!("{base}{rest}"));
        }
        Ok(url.to_string())
    }
}

fn short_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Send a request with reqwest and collect the whole response.
pub async fn send_with(client: &reqwest::Client, url: &str, req: &HttpRequest) -> Result<HttpResponse, BackendError> {
    let transport = |e: reqwest::Error| BackendError::Transport { url: url.to_string(), message: e.to_string() };
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| BackendError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let mut builder = client.request(method, url);
    for (n, v) in &req.headers {
        builder = builder.header(n, v);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let resp = builder.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = resp.bytes().await.map_err(transport)?.to_vec();
    Ok(HttpResponse { status, headers, body })
}

#[async_trait]
impl Environment for FakeEnvironment {
    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn deployer(&self) -> &Deployer {
        &self.deployer
    }

    async fn send(&self, route: Route<'_>, request: HttpRequest) -> Result<HttpResponse, BackendError> {
        let url = match route {
            Route::Direct => request.url.clone(),
            Route::InHost(host) => self.in_host_url(host, &request.url)?,
        };
        send_with(&self.client, &url, &request).await
    }

    fn aliases(&self) -> Vec<(String, String)> {
        let mut all = self.endpoints.aliases.clone();
        all.extend(self.cloud.service_urls());
        all
    }

    fn host_environment(&self, host_resource_id: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some((endpoint, header)) = self.cloud.app_service_identity(host_resource_id) {
            env.insert("IDENTITY_ENDPOINT".into(), endpoint);
            env.insert("IDENTITY_HEADER".into(), header);
        }
        env
    }

    fn propagation_budget(&self) -> Duration {
        self.propagation_budget
    }

    fn max_poll_interval(&self) -> Duration {
        // With no simulated LRO delay the first poll already succeeds: do not sleep.
        self.lro_poll
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        self.cloud.clone().shutdown().await;
        Ok(())
    }
}
