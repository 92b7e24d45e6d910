//! Deployer credentials and a token cache.
//!
//! The deployer is the CI's own principal: it provisions, grants and tears down. It signs in
//! with a client secret, a federated OIDC token (a file, as workload identity provides, or
//! GitHub Actions' token request URL, read fresh on every sign-in because those tokens live
//! minutes), a ready access token, or the Azure CLI as a last resort. Tokens are cached per
//! audience and refreshed [`REFRESH_MARGIN`] before they expire; concurrent callers wait for
//! one refresh instead of signing in many times.
//!
//! Sign-in uses the v1 token endpoint (`{login}/{tenant}/oauth2/token` with `resource`), the
//! one the tutorials' deployer requests use and the fake token service implements.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use mic_core::backend::{HttpRequest, Secret};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::transport::{RetryClass, Transport, TransportError, redact_url};

/// A token is refreshed when less than this remains.
pub const REFRESH_MARGIN: Duration = Duration::from_mins(5);

/// Where the deployer's credentials come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    ClientSecret {
        client_id: String,
        secret: Secret,
    },
    /// A federated token in a file (re-read on every sign-in).
    FederatedTokenFile {
        client_id: String,
        path: PathBuf,
    },
    /// GitHub Actions' OIDC token, requested from `ACTIONS_ID_TOKEN_REQUEST_URL` with the
    /// audience `api://AzureADTokenExchange`, then exchanged like a federated token.
    GitHubOidc {
        client_id: String,
        request_url: String,
        request_token: Secret,
    },
    /// A ready ARM token; it cannot be refreshed.
    AccessToken(Secret),
    /// `az account get-access-token`.
    AzureCli {
        program: PathBuf,
    },
}

impl CredentialSource {
    /// A secret-free description, e.g. `client secret of application 1111...`.
    pub fn describe(&self) -> String {
        match self {
            Self::ClientSecret { client_id, .. } => {
                format!("client secret of application {client_id} (AZURE_CLIENT_SECRET)")
            }
            Self::FederatedTokenFile { client_id, path } => {
                format!(
                    "federated token file {} for application {client_id}",
                    path.display()
                )
            }
            Self::GitHubOidc { client_id, .. } => {
                format!("GitHub Actions OIDC token for application {client_id}")
            }
            Self::AccessToken(_) => "a ready access token (AZURE_ACCESS_TOKEN)".into(),
            Self::AzureCli { program } => {
                format!("the Azure CLI's signed-in account ({})", program.display())
            }
        }
    }

    /// The variables a user would fix when sign-in is refused.
    fn variables(&self) -> &'static str {
        match self {
            Self::ClientSecret { .. } => "AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET",
            Self::FederatedTokenFile { .. } => {
                "AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE (and the app's federated credential subject)"
            }
            Self::GitHubOidc { .. } => {
                "AZURE_TENANT_ID, AZURE_CLIENT_ID (and the app's federated credential subject for this repository/branch)"
            }
            Self::AccessToken(_) => "AZURE_ACCESS_TOKEN",
            Self::AzureCli { .. } => "the Azure CLI sign-in (`az login --tenant $AZURE_TENANT_ID`)",
        }
    }
}

/// An access token and when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: OffsetDateTime,
}

impl AccessToken {
    /// Claims of the token (not verified: only for `oid`/`appid`).
    pub fn claims(&self) -> Option<Value> {
        jwt_claims(self.token.expose())
    }

    fn fresh(&self) -> bool {
        self.expires_at - OffsetDateTime::now_utc() > REFRESH_MARGIN
    }
}

/// Why the deployer could not get a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "deployer sign-in ({method}) was refused with {status}: {code}: {description}\n  check {variables}"
    )]
    Refused {
        method: String,
        status: u16,
        code: String,
        description: String,
        variables: &'static str,
    },
    #[error("deployer sign-in ({method}) failed: {source}")]
    Transport {
        method: String,
        source: TransportError,
    },
    #[error("AZURE_FEDERATED_TOKEN_FILE `{path}` could not be read: {message}")]
    FederatedFile { path: String, message: String },
    #[error(
        "the GitHub Actions OIDC token request failed: {0} (does the job have `permissions: id-token: write`?)"
    )]
    GitHub(String),
    #[error("AZURE_ACCESS_TOKEN expired at {0}; get a fresh token (it cannot be refreshed)")]
    Expired(OffsetDateTime),
    #[error("`az account get-access-token` failed: {0}")]
    AzureCli(String),
    #[error("the token service answered without a usable token: {0}")]
    Malformed(String),
}

/// Tokens of one deployer, cached per audience.
pub struct TokenCache {
    source: CredentialSource,
    login: String,
    tenant: String,
    transport: Transport,
    cache: Mutex<HashMap<String, AccessToken>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.source)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(source: CredentialSource, login: &str, tenant: &str, transport: Transport) -> Self {
        Self {
            source,
            login: login.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            transport,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// A token for `audience` (e.g. `https://management.azure.com/`), from the cache while
    /// it has more than [`REFRESH_MARGIN`] left.
    ///
    /// # Errors
    /// [`AuthError`] naming the variables to check.
    pub async fn token(&self, audience: &str) -> Result<AccessToken, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.get(audience).filter(|t| t.fresh()) {
            return Ok(t.clone());
        }
        let t = self.acquire(audience).await?;
        cache.insert(audience.to_string(), t.clone());
        Ok(t)
    }

    async fn acquire(&self, audience: &str) -> Result<AccessToken, AuthError> {
        match &self.source {
            CredentialSource::ClientSecret { client_id, secret } => {
                self.sign_in(
                    "client secret",
                    client_id,
                    &[("client_secret", secret.expose())],
                    audience,
                )
                .await
            }
            CredentialSource::FederatedTokenFile { client_id, path } => {
                let assertion =
                    std::fs::read_to_string(path).map_err(|e| AuthError::FederatedFile {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                let assertion = assertion.trim();
                if assertion.is_empty() {
                    return Err(AuthError::FederatedFile {
                        path: path.display().to_string(),
                        message: "the file is empty".into(),
                    });
                }
                self.sign_in(
                    "federated token file",
                    client_id,
                    &assertion_params(assertion),
                    audience,
                )
                .await
            }
            CredentialSource::GitHubOidc {
                client_id,
                request_url,
                request_token,
            } => {
                let assertion = self.github_token(request_url, request_token).await?;
                self.sign_in(
                    "GitHub Actions OIDC",
                    client_id,
                    &assertion_params(assertion.expose()),
                    audience,
                )
                .await
            }
            CredentialSource::AccessToken(t) => {
                let expires_at = jwt_expiry(t.expose())
                    .unwrap_or_else(|| OffsetDateTime::now_utc() + time::Duration::hours(1));
                if expires_at <= OffsetDateTime::now_utc() {
                    return Err(AuthError::Expired(expires_at));
                }
                Ok(AccessToken {
                    token: t.clone(),
                    expires_at,
                })
            }
            CredentialSource::AzureCli { program } => {
                azure_cli_token(program, audience, &self.tenant).await
            }
        }
    }

    async fn sign_in(
        &self,
        method: &str,
        client_id: &str,
        extra: &[(&str, &str)],
        audience: &str,
    ) -> Result<AccessToken, AuthError> {
        let url = format!("{}/{}/oauth2/token", self.login, self.tenant);
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", client_id)
                .append_pair("resource", audience);
            for (k, v) in extra {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let mut req = HttpRequest::new("POST", url)
            .header("Content-Type", "application/x-www-form-urlencoded");
        req.body = Some(form.into_bytes());
        let resp = self
            .transport
            .send(&req, RetryClass::Idempotent)
            .await
            .map_err(|source| AuthError::Transport {
                method: method.into(),
                source,
            })?;
        let body = resp.json().unwrap_or(Value::Null);
        if !resp.is_success() {
            return Err(AuthError::Refused {
                method: method.into(),
                status: resp.status,
                code: body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("(no error code)")
                    .into(),
                // Entra's descriptions name the problem (AADSTS7000215: invalid client secret)
                // and never echo the secret; keep the first line only.
                description: body
                    .get("error_description")
                    .and_then(Value::as_str)
                    .and_then(|d| d.lines().next())
                    .unwrap_or("(no description)")
                    .into(),
                variables: self.source.variables(),
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::Malformed("no access_token in the response".into()))?;
        let expires_in = body.get("expires_in").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        let expires_at = match expires_in {
            Some(s) => OffsetDateTime::now_utc() + Duration::from_secs(s),
            None => jwt_expiry(token)
                .ok_or_else(|| AuthError::Malformed("no expires_in and no exp claim".into()))?,
        };
        Ok(AccessToken {
            token: Secret::new(token),
            expires_at,
        })
    }

    async fn github_token(
        &self,
        request_url: &str,
        request_token: &Secret,
    ) -> Result<Secret, AuthError> {
        let sep = if request_url.contains('?') { '&' } else { '?' };
        let url = format!("{request_url}{sep}audience=api%3A%2F%2FAzureADTokenExchange");
        let req = HttpRequest::new("GET", url).header(
            "Authorization",
            format!("Bearer {}", request_token.expose()),
        );
        let resp = self
            .transport
            .send(&req, RetryClass::Idempotent)
            .await
            .map_err(|e| AuthError::GitHub(e.to_string()))?;
        if !resp.is_success() {
            return Err(AuthError::GitHub(format!(
                "{} answered {}",
                redact_url(request_url),
                resp.status
            )));
        }
        resp.json()
            .and_then(|b| b.get("value").and_then(Value::as_str).map(Secret::new))
            .ok_or_else(|| AuthError::GitHub("the answer has no `value`".into()))
    }
}

fn assertion_params(assertion: &str) -> [(&'static str, &str); 2] {
    [
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ]
}

async fn azure_cli_token(
    program: &std::path::Path,
    audience: &str,
    tenant: &str,
) -> Result<AccessToken, AuthError> {
    let out = tokio::process::Command::new(program)
        .args([
            "account",
            "get-access-token",
            "--resource",
            audience,
            "--tenant",
            tenant,
            "--output",
            "json",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| AuthError::AzureCli(format!("could not start {}: {e}", program.display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)");
        return Err(AuthError::AzureCli(format!(
            "{} (exit {}); run `az login`",
            first.trim(),
            out.status.code().unwrap_or(-1)
        )));
    }
    let body: Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        AuthError::AzureCli("its output is not JSON (is this the Azure CLI?)".into())
    })?;
    let token = body
        .get("accessToken")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::AzureCli("its output has no accessToken".into()))?;
    let expires_at = body
        .get("expires_on")
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .or_else(|| jwt_expiry(token))
        .unwrap_or_else(|| OffsetDateTime::now_utc() + REFRESH_MARGIN * 2);
    Ok(AccessToken {
        token: Secret::new(token),
        expires_at,
    })
}

/// The (unverified) claims of a JWT.
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `exp` claim of a JWT.
pub fn jwt_expiry(token: &str) -> Option<OffsetDateTime> {
    jwt_claims(token)?
        .get("exp")?
        .as_i64()
        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
}
