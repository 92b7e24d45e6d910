//! Microsoft.Compute Run Command without shells: `POST {vm}/runCommand` and the scale-set
//! instance form `POST {vmss}/virtualMachines/{instanceId}/runCommand`.
//!
//! The fake does not run scripts. It reads the request marker the live backend puts on a
//! script's first line (`# mic-request v1 <nonce> <base64 of JSON>`, see `mic_live::runcommand`),
//! sends that HTTP request from inside the VM (`http://169.254.169.254` is the VM's IMDS,
//! `http://localhost:50342` its ManagedIdentityExtension endpoint, any other URL is sent as
//! is), prints the response frame the script would print, and answers like Compute: 202 with
//! `Azure-AsyncOperation`, `Location` and `Retry-After`; the status document carries
//! `properties.output`, the `Location` result is `{"value": [...]}` with the Linux
//! (`ProvisioningState/succeeded`, `[stdout]`/`[stderr]` message) or Windows
//! (`ComponentStatus/StdOut|StdErr/succeeded`) shape, and only the last 4096 bytes of stdout.
//! One Run Command per VM at a time (409 `Conflict` otherwise), as on Azure.
//!
//! The marker parser and the framer are re-implemented here (mic-fake does not depend on
//! mic-live); `harness/live/tests/against_fake.rs` round-trips them through mic-live's own
//! functions so the two cannot drift.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::{ArmResult, Req, authorize, check_provider_version, ok, versions, with_headers};
use crate::error::ArmError;
use crate::util;
use crate::world::{HostKind, World, host_key};

/// Run Command keeps only this many bytes of the end of stdout.
pub const OUTPUT_LIMIT: usize = 4096;
const IMDS: &str = "http://169.254.169.254";
const EXTENSION: &str = "http://localhost:50342";

/// The request a script's marker line describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedRequest {
    pub nonce: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Parse `# mic-request v1 <nonce> <base64 of {"method","url","headers":[[n,v]..],"body":b64|null}>`.
pub fn parse_request_marker(line: &str) -> Option<MarkedRequest> {
    let rest = line.trim().strip_prefix("# mic-request v1 ")?;
    let (nonce, doc) = rest.split_once(' ')?;
    if nonce.is_empty() || !nonce.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let doc: Value = serde_json::from_slice(&B64.decode(doc.trim()).ok()?).ok()?;
    let mut headers = Vec::new();
    for h in doc.get("headers")?.as_array()? {
        headers.push((
            h.get(0)?.as_str()?.to_owned(),
            h.get(1)?.as_str()?.to_owned(),
        ));
    }
    let body = match doc.get("body") {
        Some(Value::String(b)) => Some(B64.decode(b).ok()?),
        None | Some(Value::Null) => None,
        Some(_) => return None,
    };
    Some(MarkedRequest {
        nonce: nonce.to_owned(),
        method: doc.get("method")?.as_str()?.to_owned(),
        url: doc.get("url")?.as_str()?.to_owned(),
        headers,
        body,
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to memory cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// The frame the script prints for an HTTP answer (`head` is the raw header block).
pub fn frame_response(
    nonce: &str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    format!(
        "MIC-BEGIN v1 {nonce}\nexit 0\nerror \nhead {}\nbody-gz {}\nMIC-END v1 {nonce} {}\n",
        B64.encode(head),
        B64.encode(gzip(body)),
        body.len()
    )
}

/// The frame for a request that got no HTTP answer (`exit` in curl's numbering).
pub fn frame_no_answer(nonce: &str, exit: i32, message: &str) -> String {
    format!(
        "MIC-BEGIN v1 {nonce}\nexit {exit}\nerror {}\nhead \nbody-gz {}\nMIC-END v1 {nonce} 0\n",
        B64.encode(message),
        B64.encode(gzip(b""))
    )
}

/// The last `limit` bytes of `s` (on a character boundary), as Run Command keeps them.
pub fn keep_tail(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut start = s.len() - limit;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Azure's `{"value": [...]}` for a finished command (Linux or Windows shape).
pub fn azure_output(windows: bool, stdout: &str, stderr: &str, succeeded: bool) -> Value {
    let stdout = keep_tail(stdout, OUTPUT_LIMIT);
    let stderr = keep_tail(stderr, OUTPUT_LIMIT);
    if windows {
        json!({"value": [
            {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": stdout},
            {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": stderr},
        ]})
    } else {
        let (code, level, display, verb) = if succeeded {
            (
                "ProvisioningState/succeeded",
                "Info",
                "Provisioning succeeded",
                "Enable succeeded",
            )
        } else {
            (
                "ProvisioningState/failed/1",
                "Error",
                "Provisioning failed",
                "Enable failed",
            )
        };
        json!({"value": [{
            "code": code, "level": level, "displayStatus": display,
            "message": format!("{verb}: \n[stdout]\n{stdout}\n[stderr]\n{stderr}"),
        }]})
    }
}

/// A Run Command in flight or finished.
#[derive(Debug, Clone)]
pub(crate) struct RunOp {
    /// Lower-case id of the VM / scale-set instance (one at a time per target).
    pub target: String,
    pub started: SystemTime,
    /// Not finished before this (world clock): `FakeConfig::run_command_delay`.
    pub not_before: SystemTime,
    /// `{"value": [...]}` once the in-VM request has been answered.
    pub output: Option<Value>,
}

/// Which form of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Vm,
    VmssInstance,
}

fn is_windows(props: &Value) -> Option<bool> {
    let p = props.get("virtualMachineProfile").unwrap_or(props).clone();
    if p.pointer("/osProfile/windowsConfiguration").is_some() {
        return Some(true);
    }
    if p.pointer("/osProfile/linuxConfiguration").is_some() {
        return Some(false);
    }
    if let Some(t) = p
        .pointer("/storageProfile/osDisk/osType")
        .and_then(Value::as_str)
    {
        return Some(t.eq_ignore_ascii_case("windows"));
    }
    p.pointer("/storageProfile/imageReference/publisher")
        .and_then(Value::as_str)
        .map(|s| s.to_ascii_lowercase().contains("windows"))
}

/// `POST .../runCommand`.
pub(crate) fn handle(world: &Arc<World>, req: &Req, target: Target) -> ArmResult {
    let rg = super::rg_name(req);
    check_provider_version(
        req,
        &world.config.location,
        match target {
            Target::Vm => "virtualMachines/runCommand",
            Target::VmssInstance => "virtualMachineScaleSets/virtualMachines/runCommand",
        },
        versions::COMPUTE,
    )?;
    if req.method != Method::POST {
        return Err(super::method_not_allowed(req));
    }
    let (host_type, action) = match target {
        Target::Vm => (
            "Microsoft.Compute/virtualMachines",
            "Microsoft.Compute/virtualMachines/runCommand/action",
        ),
        Target::VmssInstance => (
            "Microsoft.Compute/virtualMachineScaleSets",
            "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action",
        ),
    };
    let scope = req
        .path
        .rsplit_once('/')
        .map_or(req.path.as_str(), |(s, _)| s)
        .to_owned();
    authorize(world, req, action, &scope)?;
    let host_id = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/{host_type}/{}",
        world.subscription_id, req.segs[7]
    );
    let (location, props) = {
        let st = world.lock();
        if !st.resource_groups.contains_key(&rg.to_ascii_lowercase()) {
            return Err(super::rg_not_found(&rg));
        }
        match st.resources.get(&host_id.to_ascii_lowercase()) {
            Some(r) => (r.location.clone(), r.properties.clone()),
            None => {
                return Err(super::resource_not_found(host_type, &req.segs[7], &rg));
            }
        }
    };
    if target == Target::VmssInstance && req.segs[9] != "0" {
        return Err(ArmError::not_found(
            "NotFound",
            format!(
                "The entity was not found in this Azure location. (instance '{}' of '{}')",
                req.segs[9], req.segs[7]
            ),
        ));
    }
    let body = req.json()?;
    let command_id = match body.get("commandId") {
        Some(Value::String(c)) => c.clone(),
        None | Some(Value::Null) => {
            return Err(ArmError::bad_request(
                "InvalidParameter",
                "Required parameter 'commandId' is missing (null).",
            ));
        }
        Some(_) => {
            return Err(ArmError::bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request.",
            ));
        }
    };
    let windows = if command_id.eq_ignore_ascii_case("RunShellScript") {
        false
    } else if command_id.eq_ignore_ascii_case("RunPowerShellScript") {
        true
    } else {
        return Err(ArmError::bad_request(
            "InvalidParameter",
            format!("The value '{command_id}' of parameter 'commandId' is invalid."),
        ));
    };
    // The fake's own wording (Azure's exact message for this case is not documented).
    if is_windows(&props).is_some_and(|w| w != windows) {
        return Err(ArmError::new(
            StatusCode::CONFLICT,
            "OperationNotAllowed",
            format!(
                "The command '{command_id}' is not supported on this {} virtual machine.",
                if windows { "Linux" } else { "Windows" }
            ),
        ));
    }
    let lines: Vec<String> = match body.get("script") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Err(ArmError::bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request.",
            ));
        }
    };
    let target_key = scope.to_ascii_lowercase();
    let now = world.now();
    let op_id = util::guid();
    {
        let mut st = world.lock();
        let busy = st
            .run_commands
            .values()
            .any(|o| o.target == target_key && (o.output.is_none() || world.now() < o.not_before));
        if busy {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
            ));
        }
        st.run_commands.insert(
            op_id.clone(),
            RunOp {
                target: target_key,
                started: now,
                not_before: now + world.config.run_command_delay,
                output: None,
            },
        );
    }
    let marked = lines.iter().find_map(|l| parse_request_marker(l));
    let w = world.clone();
    let id = op_id.clone();
    let host = host_id.clone();
    tokio::spawn(async move {
        let output = match marked {
            Some(m) => {
                let stdout = send_from_host(&w, &host, &m, windows).await;
                azure_output(windows, &stdout, "", true)
            }
            None => azure_output(
                windows,
                "",
                "mic fake cloud: Run Command here only executes scripts that start with a `# mic-request v1` marker line",
                true,
            ),
        };
        if let Some(op) = w.lock().run_commands.get_mut(&id) {
            op.output = Some(output);
        }
    });
    let base = format!(
        "{}/subscriptions/{}/providers/Microsoft.Compute/locations/{}/operations/{op_id}",
        world.arm_base(),
        world.subscription_id,
        super::norm_location(&location)
    );
    Ok(with_headers(
        axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
        &[
            (
                "Azure-AsyncOperation",
                format!("{base}?api-version={}", req.api_version),
            ),
            (
                "Location",
                format!("{base}?monitor=true&api-version={}", req.api_version),
            ),
            (
                "Retry-After",
                util::ceil_secs(world.config.run_command_delay).to_string(),
            ),
        ],
    ))
}

fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_mins(1))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .ok()
        })
        .as_ref()
}

/// Send the marked request from inside `host` and return what the script prints.
async fn send_from_host(world: &World, host: &str, m: &MarkedRequest, windows: bool) -> String {
    let refused = |what: &str| {
        let msg = if windows {
            "Unable to connect to the remote server".to_owned()
        } else {
            format!("curl: (7) Failed to connect to {what}: Connection refused")
        };
        frame_no_answer(&m.nonce, 7, &msg)
    };
    let local = |prefix: &str, kind: HostKind| -> Option<Option<String>> {
        let rest = m.url.strip_prefix(prefix)?;
        let st = world.lock();
        Some(
            st.hosts
                .get(&host_key(host, &kind))
                .map(|h| format!("{}{rest}", h.server.url())),
        )
    };
    let url = match (
        local(IMDS, HostKind::Imds),
        local(EXTENSION, HostKind::Extension),
    ) {
        (Some(Some(u)), _) | (_, Some(Some(u))) => u,
        (Some(None), _) => return refused("169.254.169.254 port 80"),
        (_, Some(None)) => return refused("localhost port 50342"),
        (None, None) => m.url.clone(),
    };
    send_framed(&m.nonce, &m.method, &url, &m.headers, m.body.as_ref()).await
}

/// Send what the in-host script's `curl` would, and frame the answer (or curl's failure) the
/// way the script prints it. Shared by Run Command and the Kudu command API.
pub(crate) async fn send_framed(
    nonce: &str,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&Vec<u8>>,
) -> String {
    let Some(client) = client() else {
        return frame_no_answer(nonce, 2, "the HTTP client could not start");
    };
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return frame_no_answer(nonce, 3, "bad method");
    };
    let mut rb = client.request(method, url);
    for (n, v) in headers {
        rb = rb.header(n, v);
    }
    if let Some(b) = body {
        rb = rb.body(b.clone());
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => {
            let exit = if e.is_builder() {
                3
            } else if e.is_timeout() {
                28
            } else if e.is_connect() {
                7
            } else {
                56
            };
            return frame_no_answer(nonce, exit, &format!("curl: ({exit}) {e}"));
        }
    };
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    match resp.bytes().await {
        Ok(body) => frame_response(nonce, status, &headers, &body),
        Err(e) => frame_no_answer(nonce, 56, &format!("curl: (56) {e}")),
    }
}

/// Polling of a Run Command operation (`None`: not a Run Command operation).
pub(crate) fn status(world: &World, req: &Req, id: &str) -> Option<ArmResult> {
    let op = world.lock().run_commands.get(id).cloned()?;
    if req.method != Method::GET {
        return Some(Err(super::method_not_allowed(req)));
    }
    let now = world.now();
    let done = op.output.as_ref().filter(|_| now >= op.not_before);
    let monitor = req.param("monitor").is_some();
    Some(match (done, monitor) {
        (None, true) => Ok(with_headers(
            axum::response::IntoResponse::into_response(StatusCode::ACCEPTED),
            &[
                (
                    "Location",
                    format!(
                        "{}{}?monitor=true&api-version={}",
                        world.arm_base(),
                        req.path,
                        req.api_version
                    ),
                ),
                ("Retry-After", "1".to_owned()),
            ],
        )),
        (None, false) => ok(
            StatusCode::OK,
            &json!({"startTime": util::iso(op.started), "status": "InProgress", "name": id}),
        ),
        (Some(out), true) => ok(StatusCode::OK, out),
        (Some(out), false) => ok(
            StatusCode::OK,
            &json!({"startTime": util::iso(op.started), "endTime": util::iso(now.max(op.not_before)), "status": "Succeeded", "properties": {"output": out}, "name": id}),
        ),
    })
}

/// `GET {vmss}/virtualMachines`: the scale set's one instance (`0`).
pub(crate) fn list_instances(world: &Arc<World>, req: &Req) -> ArmResult {
    check_provider_version(
        req,
        &world.config.location,
        "virtualMachineScaleSets/virtualMachines",
        versions::COMPUTE,
    )?;
    if req.method != Method::GET {
        return Err(super::method_not_allowed(req));
    }
    authorize(
        world,
        req,
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        &req.path,
    )?;
    let rg = super::rg_name(req);
    let vmss_id = format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
        world.subscription_id, req.segs[7]
    );
    let st = world.lock();
    let Some(r) = st.resources.get(&vmss_id.to_ascii_lowercase()) else {
        return Err(super::resource_not_found(
            "Microsoft.Compute/virtualMachineScaleSets",
            &req.segs[7],
            &rg,
        ));
    };
    let v = json!({"value": [{
        "name": format!("{}_0", r.name),
        "id": format!("{}/virtualMachines/0", r.id),
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "instanceId": "0",
        "location": r.location,
        "properties": {"latestModelApplied": true, "vmId": r.unique_id, "provisioningState": "Succeeded"},
    }]});
    drop(st);
    ok(StatusCode::OK, &v)
}
