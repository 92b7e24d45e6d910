//! The Kudu (SCM) site of an App Service app: `POST {scm}/api/command`, the App Service
//! counterpart of a VM's Run Command.
//!
//! Every site gets its own SCM server (host-style, one port per site, like the data planes),
//! started when ARM creates the site, stopped when it is deleted; its base URL is registered
//! as `scm:<site>` and rendered in the site's `hostNameSslStates` (`hostType: Repository`)
//! and `enabledHostNames`, where Azure lists `<site>.scm.azurewebsites.net`.
//!
//! The contract (Kudu's `CommandController`): a JSON body `{"command": "...", "dir": "..."}`;
//! no body or a body that is not a JSON object answers `400` with an empty body; otherwise
//! `200` with `{"Output": stdout, "Error": stderr, "ExitCode": n}` whatever the command did.
//! Authentication with Microsoft Entra (SCM basic auth may be off): a bearer token for ARM
//! (`https://management.azure.com/`), else `401`; its principal needs
//! `Microsoft.Web/sites/publish/Action` on the site (Website Contributor, Contributor,
//! Owner), else `403`.
//!
//! The fake does not run shells. It interprets the one script shape mic's live backend sends
//! (`mic_live::kudu`): `echo <base64 of a bash script> | base64 -d | bash`, where the script
//! sets `mic_ep`/`mic_hd` from the site's environment (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`,
//! older `MSI_ENDPOINT`/`MSI_SECRET`), runs one `curl` (method, headers, URL, optional body
//! piped from `base64 -d`) and prints the response frame of `mic_live::runcommand`. The curl
//! line is tokenized like a shell would (single quotes, double quotes with `$var`,
//! `${var}` and `${var:-word}` expansion); the request is sent from inside the site (the
//! identity endpoint is the site's loopback server) and the frame is printed on `Output`.
//! Any other command answers `ExitCode` 127 with an explanation on `Error`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::arm::runcommand::frame_no_answer;
use crate::server::ServerHandle;
use crate::world::{HostKind, State as WorldState, World, host_key};

/// The action Kudu requires of a Microsoft Entra caller.
pub const PUBLISH_ACTION: &str = "Microsoft.Web/sites/publish/Action";

/// One site's SCM server.
pub(crate) struct ScmSite {
    pub server: ServerHandle,
}

struct Ctx {
    world: Arc<World>,
    /// The site's ARM id as created.
    site_id: String,
}

/// Start the SCM server of a site (idempotent); returns its base URL.
pub(crate) fn ensure(world: &Arc<World>, st: &mut WorldState, site_id: &str, name: &str) {
    let key = site_id.to_ascii_lowercase();
    if st.scm_sites.contains_key(&key) {
        return;
    }
    let ctx = Arc::new(Ctx {
        world: world.clone(),
        site_id: site_id.to_owned(),
    });
    let made = crate::server::spawn(world.config.latency, move |_| {
        Router::new().fallback(handle).with_state(ctx)
    });
    if let Ok(server) = made {
        st.service_urls.insert(format!("scm:{name}"), server.url());
        st.scm_sites.insert(key, ScmSite { server });
    }
}

/// The `host:port` of a site's SCM server, for `hostNameSslStates`.
pub(crate) fn scm_host(st: &WorldState, site_id: &str) -> Option<String> {
    st.scm_sites
        .get(&site_id.to_ascii_lowercase())
        .map(|s| s.server.addr.to_string())
}

/// Stop the SCM server of a deleted site.
pub(crate) fn forget(st: &mut WorldState, key: &str) {
    if let Some(s) = st.scm_sites.remove(&key.to_ascii_lowercase()) {
        s.server.stop();
    }
}

/// Every SCM server (shutdown).
pub(crate) fn drain_servers(st: &mut WorldState) -> Vec<ServerHandle> {
    std::mem::take(&mut st.scm_sites)
        .into_values()
        .map(|s| s.server)
        .collect()
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
    )
        .into_response()
}

fn result(output: &str, error: &str, exit: i64) -> Response {
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        json!({"Output": output, "Error": error, "ExitCode": exit}).to_string(),
    )
        .into_response()
}

async fn handle(
    State(ctx): State<Arc<Ctx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Authentication comes first on every path, as the SCM front end does it.
    let Some(auth) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return unauthorized();
    };
    if !auth
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("bearer ")
    {
        return unauthorized();
    }
    let Ok(claims) = ctx.world.verify(auth, crate::token::ARM_AUDIENCES) else {
        return unauthorized();
    };
    if !ctx
        .world
        .check(&claims.oid, PUBLISH_ACTION, &ctx.site_id, false)
    {
        return plain(
            StatusCode::FORBIDDEN,
            "403 - Forbidden: the caller does not have permission 'Microsoft.Web/sites/publish/Action' on the site.",
        );
    }
    let path = uri.path().trim_end_matches('/').to_ascii_lowercase();
    if path != "/api/command" {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    if method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(command) = input.get("command").and_then(Value::as_str) else {
        return result(
            "",
            "System.ArgumentNullException: Value cannot be null. (Parameter 'command')",
            -1,
        );
    };
    let env = site_environment(&ctx.world, &ctx.site_id);
    let Some(script) = decode_command(command) else {
        return result(
            "",
            "mic fake cloud: Kudu here only runs mic's in-host script (`echo <base64> | base64 -d | bash`)\n",
            127,
        );
    };
    match interpret(&script, &env) {
        Ok(plan) => {
            let stdout = execute(&plan).await;
            result(&stdout, "", 0)
        }
        Err(why) => result("", &format!("bash: {why}\n"), 2),
    }
}

/// The site's environment as its processes (and Kudu's) see it.
fn site_environment(world: &World, site_id: &str) -> BTreeMap<String, String> {
    let st = world.lock();
    let mut env = BTreeMap::new();
    let key = host_key(
        site_id,
        &HostKind::AppService {
            secret: String::new(),
        },
    );
    if let Some(h) = st.hosts.get(&key)
        && let HostKind::AppService { secret } = &h.kind
    {
        let endpoint = format!("{}/msi/token", h.server.url());
        env.insert("IDENTITY_ENDPOINT".to_owned(), endpoint.clone());
        env.insert("IDENTITY_HEADER".to_owned(), secret.clone());
        env.insert("MSI_ENDPOINT".to_owned(), endpoint);
        env.insert("MSI_SECRET".to_owned(), secret.clone());
    }
    env
}

/// `echo <b64> | base64 -d | bash` (the base64 optionally quoted) → the script.
pub fn decode_command(command: &str) -> Option<String> {
    let rest = command.trim().strip_prefix("echo ")?;
    let (b64, tail) = rest.split_once('|')?;
    let tail: Vec<&str> = tail.split('|').map(str::trim).collect();
    if tail != ["base64 -d", "bash"] {
        return None;
    }
    let b64 = b64.trim().trim_matches('\'').trim_matches('"');
    let bytes = B64.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// What the script's curl line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlPlan {
    pub nonce: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Interpret the script: variable assignments, the curl line, the frame's nonce.
///
/// # Errors
/// A message when the script is not of the expected shape.
pub fn interpret(script: &str, env: &BTreeMap<String, String>) -> Result<CurlPlan, String> {
    let mut vars = env.clone();
    let mut nonce = None;
    let mut plan = None;
    for line in script.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("echo 'MIC-BEGIN v1 ") {
            let n = rest.trim_end_matches('\'');
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err("malformed frame nonce".into());
            }
            nonce = Some(n.to_owned());
        } else if let Some(cmd) = line
            .strip_prefix("mic_err=$(")
            .and_then(|r| r.strip_suffix(')'))
        {
            plan = Some(curl_line(cmd, &vars)?);
        } else if let Some((name, value)) = assignment(line) {
            let words = words(value, &vars)?;
            vars.insert(name.to_owned(), words.concat());
        }
    }
    let (method, url, headers, body) = plan.ok_or("the script runs no curl")?;
    Ok(CurlPlan {
        nonce: nonce.ok_or("the script prints no frame")?,
        method,
        url,
        headers,
        body,
    })
}

/// `name="..."` (a plain shell assignment of one word).
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once('=')?;
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && value.starts_with('"')
        && value.ends_with('"')
        && value.len() >= 2;
    ok.then_some((name, value))
}

type CurlParts = (String, String, Vec<(String, String)>, Option<Vec<u8>>);

/// `[printf '%s' '<b64>' | base64 -d | ]curl <args> [</dev/null] 2>&1`.
fn curl_line(cmd: &str, vars: &BTreeMap<String, String>) -> Result<CurlParts, String> {
    let (body, curl) = match cmd.split_once("| base64 -d |") {
        Some((printf, curl)) => {
            let w = words(printf, vars)?;
            let [p, fmt, b64] = w.as_slice() else {
                return Err("unexpected body pipeline".into());
            };
            if p != "printf" || fmt != "%s" {
                return Err("unexpected body pipeline".into());
            }
            let bytes = B64
                .decode(b64)
                .map_err(|_| "base64: invalid input".to_owned())?;
            (Some(bytes), curl)
        }
        None => (None, cmd),
    };
    let args = words(curl, vars)?;
    let mut it = args.iter();
    if it.next().map(String::as_str) != Some("curl") {
        return Err("the command substitution does not run curl".into());
    }
    let mut method = None;
    let mut url = None;
    let mut headers = Vec::new();
    let mut data = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "-sS" | "-s" | "-S" | "-g" => {}
            "-X" => method = it.next().cloned(),
            "-H" => {
                let h = it.next().ok_or("curl: option -H: requires parameter")?;
                let (n, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("curl: malformed header `{h}`"))?;
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
            "-D" | "-o" | "--max-time" | "--noproxy" => {
                it.next()
                    .ok_or_else(|| format!("curl: option {a}: requires parameter"))?;
            }
            "--data-binary" => {
                let d = it
                    .next()
                    .ok_or("curl: option --data-binary: requires parameter")?;
                if d != "@-" {
                    return Err("curl: only --data-binary @- is understood".into());
                }
                data = true;
            }
            "<" | "2>&1" => break,
            s if s.starts_with('-') => return Err(format!("curl: option {s}: is unknown")),
            s => url = Some(s.to_owned()),
        }
    }
    let body = if data {
        body.or(Some(Vec::new()))
    } else {
        None
    };
    Ok((
        method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned()),
        url.unwrap_or_default(),
        headers,
        body,
    ))
}

/// Split shell words with quoting and parameter expansion; stops at an unquoted `<`, `>` or
/// `)` (redirections end the simple command; they are returned as their own word).
fn words(s: &str, vars: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                i += 1;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or("unexpected EOF while looking for matching `''")?;
                cur.extend(&chars[i + 1..i + 1 + end]);
                in_word = true;
                i += end + 2;
            }
            '"' => {
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unexpected EOF while looking for matching `\"'".into());
                    };
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            cur.push(chars[i + 1]);
                            i += 2;
                        }
                        '$' => i = expand(&chars, i, vars, &mut cur)?,
                        '`' => return Err("command substitution is not supported".into()),
                        c => {
                            cur.push(c);
                            i += 1;
                        }
                    }
                }
                in_word = true;
                i += 1;
            }
            '$' => {
                i = expand(&chars, i, vars, &mut cur)?;
                in_word = true;
            }
            '<' | '>' | ')' | '|' | ';' | '&' | '`' | '(' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                let op: String = if chars[i..].starts_with(&['2', '>', '&', '1']) {
                    "2>&1".into()
                } else {
                    c.to_string()
                };
                if c == '>' && out.last().is_some_and(|w| w == "2") {
                    out.pop();
                    out.push("2>&1".into());
                } else {
                    out.push(op);
                }
                break;
            }
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    cur.push(n);
                }
                in_word = true;
                i += 2;
            }
            c => {
                cur.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Expand `$name`, `${name}` or `${name:-word}` at `chars[i] == '$'`; returns the next index.
fn expand(
    chars: &[char],
    i: usize,
    vars: &BTreeMap<String, String>,
    out: &mut String,
) -> Result<usize, String> {
    let lookup = |n: &str| vars.get(n).cloned().unwrap_or_default();
    if chars.get(i + 1) == Some(&'{') {
        let end = chars[i + 2..]
            .iter()
            .position(|&c| c == '}')
            .ok_or("bad substitution")?;
        let inner: String = chars[i + 2..i + 2 + end].iter().collect();
        if let Some((name, word)) = inner.split_once(":-") {
            let v = lookup(name);
            if v.is_empty() {
                out.push_str(&words(word, vars)?.concat());
            } else {
                out.push_str(&v);
            }
        } else {
            if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("${{{inner}}}: bad substitution"));
            }
            out.push_str(&lookup(&inner));
        }
        return Ok(i + 3 + end);
    }
    let len = chars[i + 1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    if len == 0 {
        out.push('$');
        return Ok(i + 1);
    }
    let name: String = chars[i + 1..=i + len].iter().collect();
    out.push_str(&lookup(&name));
    Ok(i + 1 + len)
}

/// Send the request from inside the site and print the frame the script would print.
async fn execute(plan: &CurlPlan) -> String {
    let nonce = &plan.nonce;
    let lower = plan.url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return frame_no_answer(
            nonce,
            3,
            "curl: (3) URL using bad/illegal format or missing URL",
        );
    }
    crate::arm::runcommand::send_framed(
        nonce,
        &plan.method,
        &plan.url,
        &plan.headers,
        plan.body.as_ref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "IDENTITY_ENDPOINT".to_owned(),
                "http://ep/msi/token".to_owned(),
            ),
            ("IDENTITY_HEADER".to_owned(), "s3cr3t".to_owned()),
        ])
    }

    #[test]
    fn words_quote_and_expand() {
        let v = env();
        assert_eq!(
            words(
                r#"a 'b c' "d $IDENTITY_HEADER" "${NOPE:-$IDENTITY_ENDPOINT}"'?x=1' 'e'\''f'"#,
                &v
            )
            .unwrap(),
            ["a", "b c", "d s3cr3t", "http://ep/msi/token?x=1", "e'f"]
        );
        assert_eq!(words("x </dev/null 2>&1", &v).unwrap(), ["x", "<"]);
        assert!(words("'open", &v).is_err());
        assert!(words("\"open", &v).is_err());
        assert!(words("${", &v).is_err());
        assert!(words("${a b}", &v).is_err());
        assert_eq!(words("$ $$", &v).unwrap(), ["$", "$$"]);
    }

    #[test]
    fn decode_rejects_other_commands() {
        assert_eq!(decode_command("ls -la"), None);
        assert_eq!(decode_command("echo !!! | base64 -d | bash"), None);
        assert_eq!(decode_command("echo aGk= | base64 -d | sh"), None);
        assert_eq!(
            decode_command("echo 'aGk=' | base64 -d | bash").as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn interpret_needs_frame_and_curl() {
        let v = env();
        assert!(interpret("", &v).is_err());
        assert!(interpret("echo 'MIC-BEGIN v1 n1'", &v).is_err());
        assert!(interpret("mic_err=$(curl 'http://x' 2>&1)", &v).is_err());
        let p = interpret(
            "mic_ep=\"${IDENTITY_ENDPOINT:-$MSI_ENDPOINT}\"\nmic_err=$(curl -sS -X 'GET' -H \"X-IDENTITY-HEADER: $IDENTITY_HEADER\" \"$mic_ep\"'?a=b' </dev/null 2>&1)\necho 'MIC-BEGIN v1 n1'",
            &v,
        )
        .unwrap();
        assert_eq!(p.url, "http://ep/msi/token?a=b");
        assert_eq!(p.headers, [("X-IDENTITY-HEADER".into(), "s3cr3t".into())]);
        assert_eq!(p.nonce, "n1");
        assert!(
            interpret(
                "mic_err=$(curl --frobnicate 'http://x' 2>&1)\necho 'MIC-BEGIN v1 n'",
                &v
            )
            .is_err()
        );
    }
}
