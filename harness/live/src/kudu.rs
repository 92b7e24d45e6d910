//! In-host requests on App Service through the Kudu (SCM site) command API.
//!
//! App Service has no Run Command; its counterpart is Kudu: `POST https://<app>.scm.
//! azurewebsites.net/api/command` with `{"command": "...", "dir": "..."}`, authenticated with
//! a Microsoft Entra bearer token for ARM (`https://management.azure.com/`) of a principal
//! allowed `Microsoft.Web/sites/publish/Action` on the site (Website Contributor,
//! Contributor, Owner; SCM basic auth may be off). Kudu runs the command in the site's
//! sandbox (Windows: `cmd /c`, `D:\home` as root; Linux: the Kudu container, `/home`), with
//! the site's environment: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (older `MSI_ENDPOINT`,
//! `MSI_SECRET`). It answers `200 {"Output", "Error", "ExitCode"}` when the command ran
//! (Kudu kills a command that prints nothing for `SCM_COMMAND_IDLE_TIMEOUT`, 60 s by
//! default; the front end gives up after 230 s), `400` without a JSON body, `401` without an
//! acceptable token and `403` when the principal may not publish to the site.
//!
//! # The identity endpoint from outside
//!
//! The driver builds the tutorial's request from the host's environment, which only the
//! site knows (the header rotates). [`host_environment`] hands it placeholders
//! ([`IDENTITY_ENDPOINT_PLACEHOLDER`], [`IDENTITY_HEADER_PLACEHOLDER`]); the script
//! replaces them by the site's own values (`$IDENTITY_ENDPOINT` ...), so transcripts read
//! `{IDENTITY_ENDPOINT}?...` and `[identity-header]` on every backend.
//!
//! # The command
//!
//! Linux: `echo <base64 of a bash script> | base64 -d | bash` (no quoting survives every
//! shell in between; base64 does). The script sets `mic_ep`/`mic_hd` from the environment,
//! runs one curl and prints the response frame of [`crate::runcommand`] (nonce, exit code,
//! head, gzip'ed body, length). Windows: `powershell -NoProfile -NonInteractive
//! -EncodedCommand <base64 of UTF-16LE>` with the Run Command PowerShell body. The fake
//! cloud's Kudu interprets the Linux script's curl line (`mic_fake::kudu`).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mic_core::backend::{HttpRequest, HttpResponse};
use mic_core::model::Os;
use serde_json::{Value, json};

use crate::runcommand::{self, InHostOutcome, Output, RunCommandError, ps_quote, sh_quote};

/// Stands for the site's `IDENTITY_ENDPOINT` in requests the driver builds.
pub const IDENTITY_ENDPOINT_PLACEHOLDER: &str = "http://identity-endpoint.mic.invalid/msi/token";
/// Stands for the site's `IDENTITY_HEADER`.
pub const IDENTITY_HEADER_PLACEHOLDER: &str = "mic-identity-header-of-the-site";
/// The ARM api-version used to read the site (its SCM host name).
pub const WEB_API: &str = "2022-03-01";

/// The host environment the driver sees for a site (placeholders, see the module docs).
pub fn host_environment() -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (
            "IDENTITY_ENDPOINT".to_string(),
            IDENTITY_ENDPOINT_PLACEHOLDER.to_string(),
        ),
        (
            "IDENTITY_HEADER".to_string(),
            IDENTITY_HEADER_PLACEHOLDER.to_string(),
        ),
    ])
}

/// `POST /api/command` body for `req` on a site running `os`.
pub fn command_body(os: Os, req: &HttpRequest, nonce: &str) -> Value {
    match os {
        Os::Linux => json!({
            "command": format!("echo {} | base64 -d | bash", B64.encode(linux_script(req, nonce))),
            "dir": "site/wwwroot",
        }),
        Os::Windows => {
            let utf16: Vec<u8> = windows_script(req, nonce)
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            json!({
                "command": format!(
                    "powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {}",
                    B64.encode(utf16)
                ),
                "dir": "site\\wwwroot",
            })
        }
    }
}

/// A shell word for `s` with the placeholders expanded from the site's environment.
fn sh_word(s: &str) -> String {
    join_pieces(s, sh_quote, "\"$mic_ep\"", "\"$mic_hd\"", "")
}

/// A PowerShell expression for `s` (placeholders become `$micEp` / `$micHd`).
fn ps_expr(s: &str) -> String {
    format!("({})", join_pieces(s, ps_quote, "$micEp", "$micHd", " + "))
}

fn join_pieces(s: &str, quote: fn(&str) -> String, ep: &str, hd: &str, sep: &str) -> String {
    let mut parts = Vec::new();
    for (i, a) in s.split(IDENTITY_ENDPOINT_PLACEHOLDER).enumerate() {
        if i > 0 {
            parts.push(ep.to_string());
        }
        for (j, b) in a.split(IDENTITY_HEADER_PLACEHOLDER).enumerate() {
            if j > 0 {
                parts.push(hd.to_string());
            }
            if !b.is_empty() {
                parts.push(quote(b));
            }
        }
    }
    if parts.is_empty() {
        parts.push(quote(""));
    }
    parts.join(sep)
}

/// The bash script (Linux sites).
pub fn linux_script(req: &HttpRequest, nonce: &str) -> String {
    let mut curl = format!(
        "curl -sS -g --noproxy '*' --max-time 60 -X {}",
        sh_quote(&req.method)
    );
    for (n, v) in &req.headers {
        let _ = write!(curl, " -H {}", sh_word(&format!("{n}: {v}")));
    }
    let _ = write!(curl, " -D \"$mic_h\" -o \"$mic_b\" {}", sh_word(&req.url));
    let send = match &req.body {
        Some(b) => format!(
            "mic_err=$(printf '%s' {} | base64 -d | {curl} --data-binary @- 2>&1)",
            sh_quote(&B64.encode(b))
        ),
        None => format!("mic_err=$({curl} </dev/null 2>&1)"),
    };
    let mut lines = vec![
        format!("# mic in-host request v1 {nonce}"),
        "mic_ep=\"${IDENTITY_ENDPOINT:-$MSI_ENDPOINT}\"".to_string(),
        "mic_hd=\"${IDENTITY_HEADER:-$MSI_SECRET}\"".to_string(),
        "mic_h=$(mktemp); mic_b=$(mktemp); trap 'rm -f \"$mic_h\" \"$mic_b\"' EXIT".to_string(),
        send,
    ];
    lines.extend(runcommand::shell_frame_lines(nonce));
    lines.join("\n") + "\n"
}

/// The PowerShell script (Windows sites).
pub fn windows_script(req: &HttpRequest, nonce: &str) -> String {
    let preamble = vec![
        format!("# mic in-host request v1 {nonce}"),
        "$micEp = if ($env:IDENTITY_ENDPOINT) { $env:IDENTITY_ENDPOINT } else { $env:MSI_ENDPOINT }".to_string(),
        "$micHd = if ($env:IDENTITY_HEADER) { $env:IDENTITY_HEADER } else { $env:MSI_SECRET }".to_string(),
    ];
    runcommand::powershell_request_lines(req, nonce, preamble, ps_expr).join("\r\n") + "\r\n"
}

/// Why a Kudu answer could not be turned into a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KuduError {
    #[error("Kudu's answer is not the command result JSON (`Output`, `Error`, `ExitCode`)")]
    NotAResult,
    #[error("{0}")]
    Frame(#[from] RunCommandError),
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Kudu's `{"Output", "Error", "ExitCode"}` (any letter case) as stdout, stderr and status.
///
/// # Errors
/// [`KuduError::NotAResult`] when the body is not that object.
pub fn split_result(body: &[u8]) -> Result<Output, KuduError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| KuduError::NotAResult)?;
    let text = |k: &str| -> Result<String, KuduError> {
        match field(&v, k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(KuduError::NotAResult),
        }
    };
    let exit = match field(&v, "ExitCode") {
        Some(Value::Number(n)) => n.as_i64().ok_or(KuduError::NotAResult)?,
        _ => return Err(KuduError::NotAResult),
    };
    Ok(Output {
        stdout: text("Output")?,
        stderr: text("Error")?,
        code: if exit == 0 {
            "ExitCode 0".into()
        } else {
            format!("ExitCode {exit} (failed)")
        },
    })
}

/// Parse the frame with `nonce` out of Kudu's answer body.
///
/// # Errors
/// [`KuduError`]: not Kudu's result JSON, or the frame is missing, cut or malformed.
pub fn parse_result(body: &[u8], nonce: &str) -> Result<InHostOutcome, KuduError> {
    let out = split_result(body)?;
    Ok(runcommand::parse_output(&out, nonce)?)
}

/// The SCM host name of a site from its ARM representation: the `hostNameSslStates` entry of
/// `hostType` `Repository`, else an `enabledHostNames` entry with `.scm.`, else
/// `<name>.<suffix>`.
pub fn scm_host(site: &Value, name: &str, suffix: &str) -> String {
    let props = site.get("properties").unwrap_or(&Value::Null);
    let repo = props
        .get("hostNameSslStates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|s| {
            s.get("hostType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("Repository"))
        })
        .and_then(|s| s.get("name").and_then(Value::as_str));
    let enabled = || {
        props
            .get("enabledHostNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|h| h.to_ascii_lowercase().contains(".scm."))
    };
    repo.or_else(enabled)
        .map_or_else(|| format!("{name}.{suffix}"), str::to_string)
}

/// `https://{host}/api/command`; plain http for a loopback host (the fake cloud).
pub fn command_url(host: &str) -> String {
    let h = host.to_ascii_lowercase();
    let loopback = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|l| h == *l || h.starts_with(&format!("{l}:")));
    let scheme = if loopback { "http" } else { "https" };
    format!("{scheme}://{host}/api/command")
}

/// The SCM DNS suffix of a cloud preset (`AzureCloud`, `AzureUSGovernment`, `AzureChinaCloud`).
pub fn scm_suffix(cloud_name: &str) -> &'static str {
    match cloud_name.to_ascii_lowercase().as_str() {
        "azureusgovernment" => "scm.azurewebsites.us",
        "azurechinacloud" => "scm.chinacloudsites.cn",
        _ => "scm.azurewebsites.net",
    }
}

/// A reader's explanation of a Kudu refusal.
pub fn explain_refusal(resp: &HttpResponse) -> String {
    let hint = match resp.status {
        401 => {
            " (Kudu accepts a Microsoft Entra token for ARM; is the SCM site reachable with bearer tokens?)"
        }
        403 => {
            " (the deployer needs Microsoft.Web/sites/publish/Action on the site: Website Contributor, Contributor or Owner)"
        }
        404 => " (no Kudu at this host: is the SCM host name right?)",
        _ => "",
    };
    format!("Kudu answered {}{hint}", resp.status)
}
