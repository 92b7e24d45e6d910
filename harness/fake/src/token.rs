//! Access tokens (minting and validation) and the Entra token service:
//! `/{tenant}/oauth2/token` (v1), `/{tenant}/oauth2/v2.0/token`, OpenID configuration, JWKS.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::directory::{PrincipalKind, ServicePrincipal};
use crate::error::{TokenError, json_response};
use crate::keys::signing_key;
use crate::util;
use crate::world::World;

/// Claims of the v1 access tokens Entra issues to managed identities and apps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default)]
    pub aio: String,
    #[serde(default)]
    pub appid: String,
    #[serde(default)]
    pub appidacr: String,
    #[serde(default)]
    pub idp: String,
    #[serde(default)]
    pub idtyp: String,
    #[serde(default)]
    pub oid: String,
    #[serde(default)]
    pub rh: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub tid: String,
    #[serde(default)]
    pub uti: String,
    #[serde(default)]
    pub ver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_az_rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
}

/// The audiences (App ID URIs) the fake tenant knows. Entra matches a requested resource
/// against the registered URIs ignoring one trailing slash; the token's `aud` is the
/// resource exactly as requested.
pub const KNOWN_RESOURCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://storage.azure.com",
    "https://vault.azure.net",
    "https://database.windows.net",
    "https://datalake.azure.net",
    "https://graph.windows.net",
    "https://graph.microsoft.com",
    "https://cosmos.azure.com",
    "https://ossrdbms-aad.database.windows.net",
    "https://eventhubs.azure.net",
    "https://servicebus.azure.net",
    "https://management.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
];

/// ARM's accepted audiences, in the order ARM lists them in its error message.
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
];

pub(crate) fn is_known_resource(resource: &str) -> bool {
    let r = resource.trim().trim_end_matches('/').to_ascii_lowercase();
    if r.is_empty() {
        return false;
    }
    KNOWN_RESOURCES.iter().any(|k| *k == r)
        || r.strip_suffix(".blob.core.windows.net")
            .or_else(|| r.strip_suffix(".vault.azure.net"))
            .is_some_and(|h| h.starts_with("https://"))
}

/// The AADSTS500011 error text for an unknown resource.
/// (The 2019 IMDS docs print the older `AADSTS50001: The application named <URI> was not
/// found in the tenant named <TENANT>` wording; today's service says AADSTS500011.)
pub(crate) fn unknown_resource_description(world: &World, resource: &str) -> String {
    format!(
        "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
        world.tenant_id
    )
}

/// A freshly minted token and its times.
#[derive(Debug, Clone)]
pub(crate) struct Minted {
    pub token: String,
    pub nbf: i64,
    pub exp: i64,
    pub expires_in: i64,
}

/// Token lifetime: `exp = now + 3600`, `iat = nbf = now - 300` (the docs' samples show
/// `expires_on - not_before = 3900` with `expires_in = 3599`).
const LIFETIME: i64 = 3600;
const BACKDATE: i64 = 300;

impl World {
    /// Mint a v1 access token for `sp` and `resource`.
    /// `host_id` is the compute resource the identity is used from (`xms_az_rid`).
    pub(crate) fn mint(
        &self,
        sp: &ServicePrincipal,
        resource: &str,
        host_id: Option<&str>,
    ) -> Minted {
        let now = util::unix(self.now());
        let iss = self.issuer();
        let mi = sp.is_managed_identity();
        let claims = Claims {
            aud: resource.to_owned(),
            iss: iss.clone(),
            iat: now - BACKDATE,
            nbf: now - BACKDATE,
            exp: now + LIFETIME,
            aio: util::random_b64(42),
            appid: sp.app_id.clone(),
            appidacr: if mi { "2" } else { "1" }.to_owned(),
            idp: iss,
            idtyp: "app".to_owned(),
            oid: sp.object_id.clone(),
            rh: format!("0.{}.", util::random_b64(40)),
            roles: {
                // Directly set roles plus app roles granted on the token's resource (Graph).
                let mut roles = sp.roles.clone();
                roles.extend(self.app_roles_for(&sp.object_id, resource));
                if roles.is_empty() { None } else { Some(roles) }
            },
            sub: sp.object_id.clone(),
            tid: self.tenant_id.clone(),
            uti: util::random_b64(16),
            ver: "1.0".to_owned(),
            xms_az_rid: if mi { host_id.map(str::to_owned) } else { None },
            xms_mirid: match sp.kind {
                PrincipalKind::SystemAssigned => sp.resource_id.clone(),
                // As the MSI provider prints the identity's id (lower-case `resourcegroups`),
                // which is also how real user-assigned tokens spell it.
                PrincipalKind::UserAssigned => sp
                    .resource_id
                    .as_ref()
                    .map(|id| id.replacen("/resourceGroups/", "/resourcegroups/", 1)),
                PrincipalKind::ServicePrincipal => None,
            },
        };
        Minted {
            token: sign(&claims),
            nbf: claims.nbf,
            exp: claims.exp,
            expires_in: LIFETIME - 1,
        }
    }

    /// Validate a bearer token: signature, issuer, audience, lifetime (world clock).
    pub(crate) fn verify(&self, bearer: &str, audiences: &[&str]) -> Result<Claims, TokenError> {
        let raw = bearer.trim();
        let raw = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        if raw.is_empty() {
            return Err(TokenError::Missing);
        }
        let header = jsonwebtoken::decode_header(raw).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::InvalidSignature);
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(raw, &signing_key().decoding, &v).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::InvalidSignature,
                _ => TokenError::Malformed,
            },
        )?;
        let c = data.claims;
        let expected = self.issuer();
        if c.iss != expected {
            return Err(TokenError::WrongIssuer {
                issuer: c.iss,
                expected,
            });
        }
        if !audiences.iter().any(|a| *a == c.aud) {
            return Err(TokenError::WrongAudience {
                audience: c.aud,
                allowed: audiences.iter().map(|a| (*a).to_owned()).collect(),
            });
        }
        let now = util::unix(self.now());
        if c.exp <= now {
            return Err(TokenError::Expired { exp: c.exp, now });
        }
        // Five minutes of clock skew, as Entra's validators allow.
        if c.nbf > now + 300 {
            return Err(TokenError::NotYetValid { nbf: c.nbf, now });
        }
        Ok(c)
    }
}

fn sign(claims: &Claims) -> String {
    let key = signing_key();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(key.kid.clone());
    header.x5t = Some(key.kid.clone());
    // Encoding with a valid key and serializable claims cannot fail.
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Token service
// ---------------------------------------------------------------------------------------

pub(crate) fn router(world: Arc<World>) -> Router {
    Router::new().fallback(handle).with_state(world)
}

/// An Entra error body.
fn entra_error(world: &World, status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = util::guid();
    let corr = util::guid();
    let ts = util::entra_timestamp(world.now());
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

async fn handle(State(world): State<Arc<World>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let (method, uri) = (parts.method, parts.uri);
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return entra_error(
            &world,
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            90020,
            "The request body is too large.",
        );
    };
    let path = util::decode(uri.path(), false);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let tenant = segs.first().copied().unwrap_or_default();
    let rest: Vec<String> = segs
        .iter()
        .skip(1)
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let known_tenant = tenant.eq_ignore_ascii_case(&world.tenant_id);
    match (method.clone(), rest.as_slice()) {
        (
            _,
            [".well-known", "openid-configuration"]
            | ["v2.0", ".well-known", "openid-configuration"],
        ) => {
            if method != Method::GET {
                return entra_error(
                    &world,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request",
                    900_561,
                    "The endpoint only accepts GET requests.",
                );
            }
            if !known_tenant {
                return tenant_not_found(&world, tenant);
            }
            let v2 = rest.first() == Some(&"v2.0");
            openid_configuration(&world, v2)
        }
        (_, ["discovery", "keys"] | ["discovery", "v2.0", "keys"]) => {
            let k = signing_key();
            json_response(
                StatusCode::OK,
                &json!({"keys": [{"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid, "n": k.n, "e": k.e}]}),
            )
        }
        (_, ["oauth2", "token"] | ["oauth2", "v2.0", "token"]) => {
            let v2 = rest.len() == 3;
            if method != Method::POST {
                return entra_error(
                    &world,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request",
                    900_561,
                    "The endpoint only accepts POST, OPTIONS requests. Received a GET request.",
                );
            }
            if !known_tenant {
                return tenant_not_found(&world, tenant);
            }
            token_request(&world, &body, v2)
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

fn tenant_not_found(world: &World, tenant: &str) -> Response {
    entra_error(
        world,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn openid_configuration(world: &World, v2: bool) -> Response {
    let base = world
        .login_url
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let t = &world.tenant_id;
    let (token_ep, jwks, issuer) = if v2 {
        (
            format!("{base}/{t}/oauth2/v2.0/token"),
            format!("{base}/{t}/discovery/v2.0/keys"),
            format!("https://login.microsoftonline.com/{t}/v2.0"),
        )
    } else {
        (
            format!("{base}/{t}/oauth2/token"),
            format!("{base}/{t}/discovery/keys"),
            world.issuer(),
        )
    };
    json_response(
        StatusCode::OK,
        &json!({
            "token_endpoint": token_ep,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": jwks,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": issuer,
            "request_uri_parameter_supported": false,
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }),
    )
}

fn token_request(world: &World, body: &[u8], v2: bool) -> Response {
    let text = String::from_utf8_lossy(body);
    let form = util::parse_pairs(&text);
    let p = |k: &str| util::param(&form, k).map(str::to_owned);
    let Some(grant) = p("grant_type") else {
        return entra_error(
            world,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    };
    if grant != "client_credentials" {
        return entra_error(
            world,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = p("client_id") else {
        return entra_error(
            world,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    // Resource: v1 `resource`, v2 `scope=<resource>/.default`.
    let resource = if v2 {
        let Some(scope) = p("scope") else {
            return entra_error(
                world,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'scope'.",
            );
        };
        let Some(r) = scope.trim().strip_suffix("/.default") else {
            return entra_error(
                world,
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1_002_012,
                &format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            );
        };
        r.to_owned()
    } else {
        let Some(r) = p("resource") else {
            return entra_error(
                world,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900_144,
                "The request body must contain the following parameter: 'resource'.",
            );
        };
        r
    };
    let sp = world.lock().directory.by_app_id(&client_id).cloned();
    let Some(sp) = sp.filter(|s| s.secret.is_some()) else {
        return entra_error(
            world,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                world.tenant_id
            ),
        );
    };
    let Some(secret) = p("client_secret") else {
        return entra_error(
            world,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    if sp.secret.as_deref() != Some(secret.as_str()) {
        return entra_error(
            world,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        );
    }
    if !is_known_resource(&resource) {
        let code = if v2 {
            "invalid_scope"
        } else {
            "invalid_resource"
        };
        return entra_error(
            world,
            StatusCode::BAD_REQUEST,
            code,
            500_011,
            unknown_resource_description(world, &resource).trim_start_matches("AADSTS500011: "),
        );
    }
    let m = world.mint(&sp, &resource, None);
    if v2 {
        json_response(
            StatusCode::OK,
            &json!({"token_type": "Bearer", "expires_in": m.expires_in, "ext_expires_in": m.expires_in, "access_token": m.token}),
        )
    } else {
        // v1 returns every number as a string.
        json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "expires_in": m.expires_in.to_string(),
                "ext_expires_in": m.expires_in.to_string(),
                "expires_on": m.exp.to_string(),
                "not_before": m.nbf.to_string(),
                "resource": resource,
                "access_token": m.token,
            }),
        )
    }
}

/// Seconds until `exp` from the world clock, as IMDS reports `expires_in`.
pub(crate) fn seconds_left(world: &World, exp: i64) -> i64 {
    (exp - util::unix(world.now()) - 1).max(0)
}
