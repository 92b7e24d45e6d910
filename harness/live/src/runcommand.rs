//! In-host requests through the VM Run Command API.
//!
//! The driver builds the tutorial's in-VM request (`GET http://169.254.169.254/metadata/
//! identity/oauth2/token?...` with `Metadata: true`); here it becomes a script that the VM
//! runs (`RunShellScript` with curl on Linux, `RunPowerShellScript` with Invoke-WebRequest
//! on Windows), and the script's output becomes the [`HttpResponse`] again.
//!
//! # Framing (version 1)
//!
//! Run Command returns the script's stdout as text, only its **last 4096 bytes**, mixed with
//! the extension's own words. So the script prints the response in a frame that cannot be
//! confused with anything else and that shows truncation:
//!
//! ```text
//! MIC-BEGIN v1 <nonce>
//! exit <curl exit code: 0 when an HTTP answer came back>
//! error <base64 of the client's error message, empty when exit is 0>
//! head <base64 of the raw header block: "HTTP/1.1 200 OK\r\nName: value\r\n...">
//! body-gz <base64 of the gzip of the body>        (or `body <base64 of the body>`)
//! MIC-END v1 <nonce> <body length in bytes>
//! ```
//!
//! The nonce is fresh per request, so a stale or foreign frame is never taken for this
//! one; the body is gzip'ed to stay well under the 4096-byte limit; when the beginning is
//! cut off (END without BEGIN) the error says so instead of misparsing. stdout is never
//! copied into an error message (it holds the token).
//!
//! # The request marker (for the fake ARM)
//!
//! Every script starts with a comment line `# mic-request v1 <nonce> <base64 of JSON>` where
//! the JSON is `{"method", "url", "headers": [[name, value]...], "body": base64 | null}`.
//! The fake cloud's Run Command does not run shells: it reads this line, sends the request
//! from inside the fake VM (its IMDS), and answers with the frame above in Azure's output
//! format, so the whole live path runs offline.

use std::fmt::Write as _;
use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mic_core::backend::{HttpRequest, HttpResponse};
use mic_core::model::Os;
use serde_json::{Value, json};

/// Run Command's output limit (the last bytes of stdout are kept).
pub const OUTPUT_LIMIT: usize = 4096;

/// The `runCommand` request body and the nonce its frame will carry.
#[derive(Debug, Clone)]
pub struct Script {
    pub command_id: &'static str,
    pub lines: Vec<String>,
    pub nonce: String,
}

impl Script {
    /// The body of `POST {vm}/runCommand`.
    pub fn body(&self) -> Value {
        json!({"commandId": self.command_id, "script": self.lines})
    }
}

/// The marker line that describes the request (see the module docs).
pub fn request_marker(req: &HttpRequest, nonce: &str) -> String {
    let headers: Vec<Value> = req.headers.iter().map(|(n, v)| json!([n, v])).collect();
    let doc = json!({
        "method": req.method,
        "url": req.url,
        "headers": headers,
        "body": req.body.as_ref().map(|b| B64.encode(b)),
    });
    format!("# mic-request v1 {nonce} {}", B64.encode(doc.to_string()))
}

/// Decode a request marker line (what the fake ARM does with a script).
pub fn parse_request_marker(script_line: &str) -> Option<(String, HttpRequest)> {
    let rest = script_line.trim().strip_prefix("# mic-request v1 ")?;
    let (nonce, doc) = rest.split_once(' ')?;
    let doc: Value = serde_json::from_slice(&B64.decode(doc.trim()).ok()?).ok()?;
    let mut req = HttpRequest::new(doc.get("method")?.as_str()?, doc.get("url")?.as_str()?);
    for h in doc.get("headers")?.as_array()? {
        req.headers.push((
            h.get(0)?.as_str()?.to_string(),
            h.get(1)?.as_str()?.to_string(),
        ));
    }
    req.body = match doc.get("body") {
        Some(Value::String(b)) => Some(B64.decode(b).ok()?),
        _ => None,
    };
    Some((nonce.to_string(), req))
}

/// The script for `os` that sends `req` from inside the VM and prints the frame.
pub fn script(os: Os, req: &HttpRequest, nonce: &str) -> Script {
    match os {
        Os::Linux => Script {
            command_id: "RunShellScript",
            lines: shell_script(req, nonce),
            nonce: nonce.to_string(),
        },
        Os::Windows => Script {
            command_id: "RunPowerShellScript",
            lines: powershell_script(req, nonce),
            nonce: nonce.to_string(),
        },
    }
}

/// Single-quote for POSIX shells.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Single-quote for PowerShell.
pub(crate) fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn shell_script(req: &HttpRequest, nonce: &str) -> Vec<String> {
    let mut curl = format!(
        "curl -sS -g --noproxy '*' --max-time 60 -X {}",
        sh_quote(&req.method)
    );
    for (n, v) in &req.headers {
        let _ = write!(curl, " -H {}", sh_quote(&format!("{n}: {v}")));
    }
    let _ = write!(curl, " -D \"$mic_h\" -o \"$mic_b\" {}", sh_quote(&req.url));
    let send = match &req.body {
        Some(b) => format!(
            "mic_err=$(printf '%s' {} | base64 -d | {curl} --data-binary @- 2>&1)",
            sh_quote(&B64.encode(b))
        ),
        None => format!("mic_err=$({curl} </dev/null 2>&1)"),
    };
    vec![
        request_marker(req, nonce),
        "mic_h=$(mktemp); mic_b=$(mktemp); trap 'rm -f \"$mic_h\" \"$mic_b\"' EXIT".into(),
        send,
    ]
    .into_iter()
    .chain(shell_frame_lines(nonce))
    .collect()
}

/// The shell lines after the curl line (`mic_err`, `$mic_h`, `$mic_b`): print the frame.
pub(crate) fn shell_frame_lines(nonce: &str) -> Vec<String> {
    vec![
        "mic_rc=$?".into(),
        format!("echo 'MIC-BEGIN v1 {nonce}'"),
        "echo \"exit $mic_rc\"".into(),
        "echo \"error $(printf '%s' \"$mic_err\" | base64 -w0)\"".into(),
        "echo \"head $(base64 -w0 < \"$mic_h\")\"".into(),
        "if command -v gzip >/dev/null 2>&1; then echo \"body-gz $(gzip -c -n < \"$mic_b\" | base64 -w0)\"; else echo \"body $(base64 -w0 < \"$mic_b\")\"; fi".into(),
        format!("echo \"MIC-END v1 {nonce} $(wc -c < \"$mic_b\" | tr -d ' ')\""),
        "exit 0".into(),
    ]
}

fn powershell_script(req: &HttpRequest, nonce: &str) -> Vec<String> {
    powershell_request_lines(req, nonce, vec![request_marker(req, nonce)], ps_quote)
}

/// A PowerShell script sending `req` with `Invoke-WebRequest` and printing the frame:
/// `preamble` first (marker, variables), URL and header values written with `value` (quoted
/// literally, or as expressions that expand the host's own variables).
pub(crate) fn powershell_request_lines(
    req: &HttpRequest,
    nonce: &str,
    preamble: Vec<String>,
    value: fn(&str) -> String,
) -> Vec<String> {
    let mut headers = Vec::new();
    let mut content_type = None;
    for (n, v) in &req.headers {
        if n.eq_ignore_ascii_case("content-type") {
            content_type = Some(v.clone());
        } else {
            headers.push(format!("{} = {}", ps_quote(n), value(v)));
        }
    }
    let mut lines = preamble;
    lines.extend([
        "$ProgressPreference = 'SilentlyContinue'".into(),
        "$micExit = 0; $micErr = ''; $micHead = ''; [byte[]]$micBody = @()".into(),
        format!(
            "$micArgs = @{{ Uri = {}; Method = {}; Headers = @{{ {} }}; UseBasicParsing = $true; TimeoutSec = 60; ErrorAction = 'Stop' }}",
            value(&req.url),
            ps_quote(&req.method),
            headers.join("; ")
        ),
    ]);
    if let Some(ct) = content_type {
        lines.push(format!("$micArgs.ContentType = {}", ps_quote(&ct)));
    }
    if let Some(b) = &req.body {
        lines.push(format!(
            "$micArgs.Body = [Convert]::FromBase64String({})",
            ps_quote(&B64.encode(b))
        ));
    }
    lines.extend(powershell_frame_lines(nonce));
    lines
}

/// The PowerShell lines after `$micArgs` is built: send, then print the frame.
pub(crate) fn powershell_frame_lines(nonce: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    lines.extend(
        [
            "try {",
            "  $r = Invoke-WebRequest @micArgs",
            "  $micHead = \"HTTP/1.1 $([int]$r.StatusCode) $($r.StatusDescription)`r`n\"",
            "  foreach ($k in $r.Headers.Keys) { $micHead += \"${k}: $($r.Headers[$k])`r`n\" }",
            "  $micBody = $r.RawContentStream.ToArray()",
            "} catch [System.Net.WebException] {",
            "  $resp = $_.Exception.Response",
            "  if ($null -eq $resp) {",
            "    $micErr = $_.Exception.Message",
            "    $micExit = switch ([string]$_.Exception.Status) { 'ConnectFailure' { 7 } 'Timeout' { 28 } 'NameResolutionFailure' { 6 } default { 56 } }",
            "  } else {",
            "    $micHead = \"HTTP/1.1 $([int]$resp.StatusCode) $($resp.StatusDescription)`r`n\"",
            "    foreach ($k in $resp.Headers.AllKeys) { $micHead += \"${k}: $($resp.Headers[$k])`r`n\" }",
            "    try { $s = $resp.GetResponseStream(); $m = New-Object System.IO.MemoryStream; $s.CopyTo($m); $micBody = $m.ToArray() } catch { }",
            "    if ($micBody.Length -eq 0 -and $_.ErrorDetails.Message) { $micBody = [Text.Encoding]::UTF8.GetBytes($_.ErrorDetails.Message) }",
            "  }",
            "} catch { $micExit = 1; $micErr = $_.Exception.Message }",
            "$gzm = New-Object System.IO.MemoryStream",
            "$gz = New-Object System.IO.Compression.GZipStream($gzm, [System.IO.Compression.CompressionMode]::Compress)",
            "$gz.Write($micBody, 0, $micBody.Length); $gz.Close()",
        ]
        .map(str::to_string),
    );
    lines.extend([
        format!("Write-Output 'MIC-BEGIN v1 {nonce}'"),
        "Write-Output \"exit $micExit\"".into(),
        "Write-Output ('error ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($micErr)))".into(),
        "Write-Output ('head ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($micHead)))".into(),
        "Write-Output ('body-gz ' + [Convert]::ToBase64String($gzm.ToArray()))".into(),
        format!("Write-Output \"MIC-END v1 {nonce} $($micBody.Length)\""),
    ]);
    lines
}

/// stdout and stderr of a finished Run Command, and its status code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// The instance view's code, e.g. `ProvisioningState/succeeded`.
    pub code: String,
}

impl Output {
    fn failed(&self) -> bool {
        self.code.to_ascii_lowercase().contains("failed")
    }
}

/// Why a Run Command result could not be turned into a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunCommandError {
    #[error("the Run Command result has no output (`value` is missing or empty)")]
    NoOutput,
    #[error(
        "the Run Command output was truncated: Azure keeps the last {OUTPUT_LIMIT} bytes of stdout and the response frame's beginning was cut off ({body_len} body bytes)"
    )]
    Truncated { body_len: usize },
    #[error("the script stopped before finishing its output (status {code}); stderr: {stderr}")]
    Incomplete { code: String, stderr: String },
    #[error("the script printed no response frame (status {code}); stderr: {stderr}")]
    NoFrame { code: String, stderr: String },
    #[error("the response frame is malformed: {0}")]
    Malformed(String),
}

/// What the in-VM client got.
#[derive(Debug, Clone)]
pub enum InHostOutcome {
    Response(HttpResponse),
    /// No HTTP answer: the client's exit code (curl's numbering) and message.
    NoAnswer {
        exit: i32,
        message: String,
    },
}

impl InHostOutcome {
    /// A reader's explanation of a client exit code.
    pub fn explain(exit: i32) -> &'static str {
        match exit {
            6 => "could not resolve the host",
            7 => "connection refused (nothing listens there from inside the VM)",
            28 => "timed out",
            52 => "the server closed the connection without answering",
            56 => "the connection broke",
            _ => "the request failed",
        }
    }
}

/// Split an operation result (`{"value": [...]}` or a status document with
/// `properties.output.value`) into stdout, stderr and status.
///
/// # Errors
/// [`RunCommandError::NoOutput`].
pub fn split_output(result: &Value) -> Result<Output, RunCommandError> {
    let values = result
        .get("value")
        .or_else(|| result.pointer("/properties/output/value"))
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or(RunCommandError::NoOutput)?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = Output::default();
    for v in values {
        let code = text(v, "code");
        let message = text(v, "message");
        let lower = code.to_ascii_lowercase();
        if lower.contains("/stdout/") {
            // Windows: one entry per stream.
            out.stdout = message;
            out.code = code;
        } else if lower.contains("/stderr/") {
            out.stderr = message;
        } else {
            // Linux: "Enable succeeded: \n[stdout]\n...\n[stderr]\n...".
            out.code = code;
            match message.split_once("[stdout]\n") {
                Some((_, rest)) => match rest.rsplit_once("[stderr]\n") {
                    Some((o, e)) => {
                        out.stdout = o.strip_suffix('\n').unwrap_or(o).to_string();
                        out.stderr = e.to_string();
                    }
                    None => out.stdout = rest.to_string(),
                },
                None => out.stderr = message,
            }
        }
    }
    Ok(out)
}

fn tail(s: &str, n: usize) -> String {
    let s = s.trim();
    let start = s.char_indices().rev().nth(n).map_or(0, |(i, _)| i);
    if s.is_empty() {
        "(empty)".into()
    } else {
        s[start..].to_string()
    }
}

/// Parse the frame with `nonce` out of a Run Command's output.
///
/// # Errors
/// [`RunCommandError`]: truncation, an unfinished or missing frame, or a malformed one.
pub fn parse_output(output: &Output, nonce: &str) -> Result<InHostOutcome, RunCommandError> {
    let begin = format!("MIC-BEGIN v1 {nonce}");
    let end = format!("MIC-END v1 {nonce} ");
    let lines: Vec<&str> = output
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    let b = lines.iter().position(|l| l.trim() == begin);
    let e = lines.iter().position(|l| l.starts_with(&end));
    let (b, e) = match (b, e) {
        (Some(b), Some(e)) if b < e => (b, e),
        (None, Some(e)) => {
            return Err(RunCommandError::Truncated {
                body_len: lines[e][end.len()..].trim().parse().unwrap_or(0),
            });
        }
        (Some(_), _) => {
            return Err(RunCommandError::Incomplete {
                code: output.code.clone(),
                stderr: tail(&output.stderr, 300),
            });
        }
        (None, None) => {
            return Err(RunCommandError::NoFrame {
                code: if output.failed() {
                    output.code.clone()
                } else {
                    format!("{} (exit 0)", output.code)
                },
                stderr: tail(&output.stderr, 300),
            });
        }
    };
    let body_len: usize = lines[e][end.len()..]
        .trim()
        .parse()
        .map_err(|_| RunCommandError::Malformed("bad body length".into()))?;
    let mut fields = std::collections::HashMap::new();
    for l in &lines[b + 1..e] {
        let (k, v) = l.split_once(' ').unwrap_or((l, ""));
        fields.insert(k.to_string(), v.trim().to_string());
    }
    let decode = |k: &str| -> Result<Vec<u8>, RunCommandError> {
        B64.decode(fields.get(k).map_or("", String::as_str))
            .map_err(|_| RunCommandError::Malformed(format!("`{k}` is not base64")))
    };
    let exit: i32 = fields
        .get("exit")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| RunCommandError::Malformed("no `exit` line".into()))?;
    if exit != 0 {
        let message = String::from_utf8_lossy(&decode("error")?)
            .trim()
            .to_string();
        return Ok(InHostOutcome::NoAnswer { exit, message });
    }
    let body = if fields.contains_key("body-gz") {
        let gz = decode("body-gz")?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| RunCommandError::Malformed(format!("`body-gz` is not gzip: {e}")))?;
        out
    } else {
        decode("body")?
    };
    if body.len() != body_len {
        return Err(RunCommandError::Malformed(format!(
            "the body has {} bytes, the frame says {body_len}",
            body.len()
        )));
    }
    let head = String::from_utf8_lossy(&decode("head")?).into_owned();
    let (status, headers) = parse_head(&head)?;
    Ok(InHostOutcome::Response(HttpResponse {
        status,
        headers,
        body,
    }))
}

/// The last header block of a curl `-D` dump (earlier ones are `100 Continue` or redirects).
fn parse_head(head: &str) -> Result<(u16, Vec<(String, String)>), RunCommandError> {
    let lines: Vec<&str> = head.lines().map(|l| l.trim_end_matches('\r')).collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("HTTP/"))
        .ok_or_else(|| RunCommandError::Malformed("no HTTP status line".into()))?;
    let status = lines[start]
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RunCommandError::Malformed(format!("bad status line `{}`", lines[start])))?;
    let headers = lines[start + 1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

/// Render a response as the frame (what the fake ARM prints, and what tests feed the parser).
pub fn frame(nonce: &str, resp: &HttpResponse, gzip: bool) -> String {
    let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
    for (n, v) in &resp.headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &resp.body).expect("writing to memory");
        format!(
            "body-gz {}",
            B64.encode(enc.finish().expect("writing to memory"))
        )
    } else {
        format!("body {}", B64.encode(&resp.body))
    };
    format!(
        "MIC-BEGIN v1 {nonce}\nexit 0\nerror \nhead {}\n{body}\nMIC-END v1 {nonce} {}\n",
        B64.encode(head),
        resp.body.len()
    )
}

/// Wrap stdout/stderr in Azure's output format for `os` (the fake ARM's answer shape).
pub fn azure_output(os: Os, stdout: &str, stderr: &str, succeeded: bool) -> Value {
    match os {
        Os::Linux => json!({"value": [{
            "code": if succeeded { "ProvisioningState/succeeded" } else { "ProvisioningState/failed/1" },
            "level": if succeeded { "Info" } else { "Error" },
            "displayStatus": if succeeded { "Provisioning succeeded" } else { "Provisioning failed" },
            "message": format!("{}: \n[stdout]\n{stdout}\n[stderr]\n{stderr}", if succeeded { "Enable succeeded" } else { "Enable failed" }),
        }]}),
        Os::Windows => json!({"value": [
            {"code": "ComponentStatus/StdOut/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": stdout},
            {"code": "ComponentStatus/StdErr/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "message": stderr},
        ]}),
    }
}
