//! Host-side token endpoints: the Instance Metadata Service (per VM / scale set), the legacy
//! VM extension endpoint (`/oauth2/token`, port 50342 in real life) and the App Service
//! identity endpoint. Each runs on its own loopback listener, started and stopped by ARM.

// Helpers return the ready error Response as Err; it is only built on the error path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::directory::ServicePrincipal;
use crate::error::json_response;
use crate::token::{is_known_resource, seconds_left, unknown_resource_description};
use crate::util;
use crate::world::{HostKind, HostServer, State as WorldState, World, host_key};
use crate::{FaultKind, server};

/// api-versions the IMDS identity endpoint accepts (the public "supported API versions"
/// list of the Azure IMDS documentation; the swaggers only enumerate 2018-02-01 and
/// 2018-10-01, the real service accepts all of these).
pub const IMDS_API_VERSIONS: &[&str] = &[
    "2017-03-01",
    "2017-04-02",
    "2017-08-01",
    "2017-10-01",
    "2017-12-01",
    "2018-02-01",
    "2018-04-02",
    "2018-10-01",
    "2019-02-01",
    "2019-03-11",
    "2019-04-30",
    "2019-06-01",
    "2019-06-04",
    "2019-08-01",
    "2019-08-15",
    "2019-11-01",
    "2020-06-01",
    "2020-07-15",
    "2020-09-01",
    "2020-10-01",
    "2020-12-01",
    "2021-01-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-10-01",
    "2021-11-01",
    "2021-11-15",
    "2021-12-13",
    "2023-07-01",
    "2023-11-15",
    "2024-03-15",
    "2024-07-17",
    "2025-04-07",
];

/// How long the Timeout fault holds a request before answering 500 (bounded so nothing
/// hangs forever; long enough to trip any sensible client timeout).
pub const TIMEOUT_HOLD: Duration = Duration::from_secs(30);

pub(crate) struct HostCtx {
    world: Arc<World>,
    host_id: String,
    stop: watch::Receiver<bool>,
    secret: Option<String>,
}

/// Start the server of `kind` for `host_id` (no-op if already running).
pub(crate) fn start_host(world: &Arc<World>, st: &mut WorldState, host_id: &str, kind: HostKind) {
    let key = host_key(host_id, &kind);
    if st.hosts.contains_key(&key) {
        return;
    }
    let secret = match &kind {
        HostKind::AppService { secret } => Some(secret.clone()),
        _ => None,
    };
    let w = world.clone();
    let hid = host_id.to_owned();
    let k2 = kind.clone();
    let made = server::spawn(world.config.latency, move |stop| {
        let ctx = Arc::new(HostCtx {
            world: w,
            host_id: hid,
            stop,
            secret,
        });
        match k2 {
            HostKind::Imds => Router::new().fallback(imds).with_state(ctx),
            HostKind::Extension => Router::new().fallback(extension).with_state(ctx),
            HostKind::AppService { .. } => Router::new().fallback(app_service).with_state(ctx),
        }
    });
    if let Ok(server) = made {
        st.hosts.insert(key, HostServer { kind, server });
    }
}

fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Apply an injected fault, if one is due for this request.
async fn fault(ctx: &HostCtx) -> Option<Response> {
    let kind = {
        let mut st = ctx.world.lock();
        let key = ctx.host_id.to_ascii_lowercase();
        let f = st.faults.get_mut(&key)?;
        if f.seen < f.fault.skip {
            f.seen += 1;
            return None;
        }
        if f.failed >= f.fault.count {
            st.faults.remove(&key);
            return None;
        }
        f.failed += 1;
        f.fault.kind
    };
    Some(match kind {
        FaultKind::Status(404) => imds_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "IMDS endpoint is updating",
        ),
        FaultKind::Status(410) => {
            // "410: IMDS is going through updates; IMDS will be available within 70 seconds"
            // (how-to-use-vm-token). Clients retry every 10 s for up to 70 s.
            let mut r = imds_error(
                StatusCode::GONE,
                "service_unavailable",
                "IMDS is going through updates. IMDS will be available within 70 seconds.",
            );
            r.headers_mut()
                .insert("Retry-After", HeaderValue::from_static("10"));
            r
        }
        FaultKind::Status(429) => {
            let mut r = imds_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "IMDS throttle limit reached. Retry with exponential back-off.",
            );
            r.headers_mut()
                .insert("Retry-After", HeaderValue::from_static("1"));
            r
        }
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            imds_error(
                status,
                "server_error",
                "An unexpected error occurred while fetching the token. Retry after waiting at least 1 second.",
            )
        }
        FaultKind::Timeout => {
            let mut stop = ctx.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(TIMEOUT_HOLD) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            imds_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Request timed out",
            )
        }
    })
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    util::parse_pairs(uri.query().unwrap_or_default())
}

fn metadata_ok(headers: &HeaderMap) -> bool {
    headers
        .get("metadata")
        .is_some_and(|v| v.as_bytes() == b"true")
}

/// Pick the identity for a token request. Selectors: `client_id`, `object_id`, `mi_res_id`
/// (and the swagger's `msi_res_id`). No selector: system-assigned, else the only
/// user-assigned, else an error.
fn select_identity(
    ctx: &HostCtx,
    q: &[(String, String)],
    allow_res_id: bool,
) -> Result<ServicePrincipal, Response> {
    let not_found = || {
        imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        )
    };
    let ids = ctx
        .world
        .host_identities(&ctx.host_id)
        .ok_or_else(not_found)?;
    let all: Vec<&ServicePrincipal> = ids.system.iter().chain(ids.user.iter()).collect();
    let client_id = util::param(q, "client_id").or_else(|| util::param(q, "principal_id_client"));
    let object_id = util::param(q, "object_id").or_else(|| util::param(q, "principal_id"));
    let res_id = if allow_res_id {
        util::param(q, "mi_res_id").or_else(|| util::param(q, "msi_res_id"))
    } else {
        None
    };
    if let Some(c) = client_id {
        return all
            .into_iter()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(c))
            .cloned()
            .ok_or_else(not_found);
    }
    if let Some(o) = object_id {
        return all
            .into_iter()
            .find(|sp| sp.object_id.eq_ignore_ascii_case(o))
            .cloned()
            .ok_or_else(not_found);
    }
    if let Some(r) = res_id {
        let r = util::fully_decode(r);
        return all
            .into_iter()
            .find(|sp| {
                sp.resource_id
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(r.trim_end_matches('/')))
            })
            .cloned()
            .ok_or_else(not_found);
    }
    if let Some(sys) = ids.system {
        return Ok(sys);
    }
    match ids.user.len() {
        0 => Err(not_found()),
        1 => Ok(ids.user[0].clone()),
        _ => Err(imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
        )),
    }
}

/// Validate `resource` and mint; returns the IMDS-shaped body (all values strings).
fn issue(ctx: &HostCtx, sp: &ServicePrincipal, resource: &str) -> Result<Value, Response> {
    if !is_known_resource(resource) {
        return Err(imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &unknown_resource_description(&ctx.world, resource),
        ));
    }
    let m = ctx.world.mint(sp, resource, Some(&ctx.host_id));
    let left = seconds_left(&ctx.world, m.exp).to_string();
    Ok(json!({
        "access_token": m.token,
        "client_id": sp.app_id,
        "expires_in": left,
        "expires_on": m.exp.to_string(),
        "ext_expires_in": left,
        "not_before": m.nbf.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
}

async fn imds(
    State(ctx): State<Arc<HostCtx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = fault(&ctx).await {
        return r;
    }
    let path = uri.path().trim_end_matches('/').to_ascii_lowercase();
    let q = query(&uri);
    // IMDS refuses anything that looks proxied (SSRF protection).
    if headers.contains_key("x-forwarded-for") {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Request contains X-Forwarded-For header. Requests through a proxy are not supported.",
        );
    }
    let known = matches!(
        path.as_str(),
        "/metadata/identity/oauth2/token" | "/metadata/identity/info" | "/metadata/versions"
    ) || path == "/metadata/instance"
        || path.starts_with("/metadata/instance/");
    if !known {
        return imds_error(StatusCode::NOT_FOUND, "not_found", "Resource not found");
    }
    if path == "/metadata/versions" {
        return json_response(StatusCode::OK, &json!({"apiVersions": IMDS_API_VERSIONS}));
    }
    if !metadata_ok(&headers) {
        if path.starts_with("/metadata/instance") {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "Bad request. Required metadata header not specified"}),
            );
        }
        return imds_error(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    if method != Method::GET {
        return imds_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("The request method {method} is not allowed. Use GET."),
        );
    }
    let Some(version) = util::param(&q, "api-version") else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    };
    if !IMDS_API_VERSIONS.contains(&version) {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({
                "error": "Bad request. api-version is invalid or was not specified in the URL. For more information refer to aka.ms/azureimds",
                "newest-versions": IMDS_API_VERSIONS.iter().rev().take(3).collect::<Vec<_>>(),
            }),
        );
    }
    match path.as_str() {
        "/metadata/identity/oauth2/token" => {
            let Some(resource) = util::param(&q, "resource").filter(|r| !r.trim().is_empty())
            else {
                return imds_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required query variable 'resource' is missing",
                );
            };
            let resource = util::fully_decode(resource);
            let sp = match select_identity(&ctx, &q, true) {
                Ok(sp) => sp,
                Err(r) => return r,
            };
            match issue(&ctx, &sp, &resource) {
                Ok(body) => json_response(StatusCode::OK, &body),
                Err(r) => r,
            }
        }
        "/metadata/identity/info" => {
            let ids = ctx.world.host_identities(&ctx.host_id).unwrap_or_default();
            if ids.system.is_none() && ids.user.is_empty() {
                return imds_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Identity not found",
                );
            }
            json_response(StatusCode::OK, &json!({"tenantId": ctx.world.tenant_id}))
        }
        _ => instance(&ctx, &path),
    }
}

fn instance(ctx: &HostCtx, path: &str) -> Response {
    let (name, rg, location, vm_id) = {
        let st = ctx.world.lock();
        match st.resources.get(&ctx.host_id.to_ascii_lowercase()) {
            Some(r) => (
                r.name.clone(),
                r.resource_group.clone(),
                r.location.clone(),
                r.unique_id.clone(),
            ),
            None => return json_response(StatusCode::NOT_FOUND, &json!({"error": "Not found"})),
        }
    };
    let doc = json!({
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "location": location,
            "name": name,
            "osType": "Linux",
            "resourceGroupName": rg,
            "resourceId": ctx.host_id,
            "subscriptionId": ctx.world.subscription_id,
            "vmId": vm_id,
        },
        "network": {"interface": []},
    });
    // Leaf paths like /metadata/instance/compute/location.
    let mut cur = &doc;
    for seg in path
        .trim_start_matches("/metadata/instance")
        .split('/')
        .filter(|s| !s.is_empty())
    {
        let found = cur.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                .map(|(_, v)| v)
        });
        match found {
            Some(v) => cur = v,
            None => return json_response(StatusCode::NOT_FOUND, &json!({"error": "Not found"})),
        }
    }
    json_response(StatusCode::OK, cur)
}

/// The legacy VM extension endpoint: `GET|POST /oauth2/token`, `Metadata: true`,
/// `resource` in the query or the form body, no api-version.
async fn extension(State(ctx): State<Arc<HostCtx>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return imds_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "Request body too large",
        );
    };
    if !uri
        .path()
        .trim_end_matches('/')
        .eq_ignore_ascii_case("/oauth2/token")
    {
        return imds_error(
            StatusCode::UNAUTHORIZED,
            "unknown_source",
            &format!("Unknown Source {uri}"),
        );
    }
    if !metadata_ok(&headers) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    let mut q = query(&uri);
    match method {
        Method::GET => {}
        Method::POST => q.extend(util::parse_pairs(&String::from_utf8_lossy(&body))),
        _ => {
            return imds_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Only GET and POST are supported",
            );
        }
    }
    let Some(resource) = util::param(&q, "resource").filter(|r| !r.trim().is_empty()) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let resource = util::fully_decode(resource);
    let sp = match select_identity(&ctx, &q, false) {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    match issue(&ctx, &sp, &resource) {
        Ok(mut body) => {
            // The extension answered with the v1 token-endpoint shape (no client_id).
            if let Some(o) = body.as_object_mut() {
                o.remove("client_id");
                o.insert("refresh_token".to_owned(), json!(""));
            }
            json_response(StatusCode::OK, &body)
        }
        Err(r) => r,
    }
}

/// App Service: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...` with
/// `X-IDENTITY-HEADER: {IDENTITY_HEADER}`.
async fn app_service(
    State(ctx): State<Arc<HostCtx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let q = query(&uri);
    if !uri
        .path()
        .trim_end_matches('/')
        .eq_ignore_ascii_case("/msi/token")
    {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"statusCode": 404, "message": "Not Found"}),
        );
    }
    if method != Method::GET {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"statusCode": 405, "message": "Method Not Allowed"}),
        );
    }
    let presented = headers.get("x-identity-header").map(HeaderValue::as_bytes);
    let expected = ctx.secret.as_deref().map(str::as_bytes);
    match presented {
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"statusCode": 400, "message": "X-IDENTITY-HEADER header is missing or empty."}),
            );
        }
        Some(p) if Some(p) != expected => {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER value is not valid."}),
            );
        }
        Some(_) => {}
    }
    match util::param(&q, "api-version") {
        Some("2019-08-01") => {}
        other => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"statusCode": 400, "message": format!("The api-version '{}' is not supported. Use 2019-08-01.", other.unwrap_or_default())}),
            );
        }
    }
    let Some(resource) = util::param(&q, "resource").filter(|r| !r.trim().is_empty()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"statusCode": 400, "message": "The 'resource' query parameter is required."}),
        );
    };
    let resource = util::fully_decode(resource);
    let sp = match select_identity(&ctx, &q, true) {
        Ok(sp) => sp,
        Err(r) => return r,
    };
    match issue(&ctx, &sp, &resource) {
        Ok(body) => json_response(
            StatusCode::OK,
            &json!({
                "access_token": body["access_token"],
                "expires_on": body["expires_on"],
                "resource": resource,
                "token_type": "Bearer",
                "client_id": sp.app_id,
            }),
        ),
        Err(r) => r,
    }
}
