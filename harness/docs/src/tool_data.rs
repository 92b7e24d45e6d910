//! Replaying the data-plane and directory commands of the tutorials.
//!
//! `az storage blob upload|download|list`, `New-AzStorageContext` + `Set-|Get-AzStorageBlobContent`
//! (Put Blob / Get Blob / List Blobs), `az cosmosdb collection show` (removed from the CLI),
//! and the directory cmdlets `Connect-AzureAD`, `New-|Get-AzureADGroup`,
//! `Add-AzureADGroupMember`, `Get-AzureADServicePrincipal`, `Get-AzADServicePrincipal`,
//! `Get-AzADGroup` and `az ad sp list` (Azure AD Graph 1.6, as the signed-in operator).
//!
//! Authentication as the tools do it: an account key signs the request with Shared Key (through
//! [`Executor::sign_shared_key`], so the key never leaves the executor's signer), a SAS is
//! appended to the URL as given, `--auth-mode login` / `-UseConnectedAccount` sends the
//! operator's bearer token for `https://storage.azure.com/` (`<OPERATOR STORAGE TOKEN>`).
//!
//! A PowerShell storage context (`$ctx = New-AzStorageContext ...`) is local: the replay binds
//! `$ctx` to a description of it (`account=..;key=..`), and the blob cmdlets that take
//! `-Context $ctx` carry it in the `x-mic-context` pseudo-header until the replay turns it into
//! the account URL and the authentication (the pseudo-header is never sent).

use crate::exec::{ExecResponse, Executor, ResolvedRequest, resolve};
use crate::op::{Action, DocOperation, OpSource};
use crate::parse::az::AzCommand;
use crate::parse::pwsh::Cmdlet;
use crate::placeholder::World;
use crate::specs::Service;
use crate::tool::{Output, Replay, Replayed};
use serde::Serialize;
use serde_json::{Value, json};

/// `x-ms-version` az CLI 2.6x sends (its vendored track-2 blob SDK).
pub const AZ_BLOB_VERSION: &str = "2022-11-02";
/// `x-ms-version` Az.Storage 6.x sends (Azure.Storage.Blobs 12.x).
pub const PS_BLOB_VERSION: &str = "2023-01-03";
/// AD Graph version the AzureAD module and `az ad` (before Microsoft Graph) use.
pub const GRAPH_VERSION: &str = "1.6";
const CONTEXT_HEADER: &str = "x-mic-context";

/// What a data-plane or directory command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataOutput {
    /// `az storage blob upload`: the upload result (etag, lastModified, ...).
    AzBlobUpload,
    /// `az storage blob download`: the blob with its properties.
    AzBlobDownload,
    /// `az storage blob list`: the blobs.
    AzBlobList,
    /// `New-AzStorageContext`: local, binds the context.
    PsStorageContext,
    /// `Set-/Get-AzStorageBlobContent`: the `AzureStorageBlob` object.
    PsBlob,
    /// `New-AzureADGroup` / `Get-AzureADGroup`: the group (`ObjectId`, `DisplayName`...).
    PsAdGroup,
    /// `Get-AzureADServicePrincipal` and `Get-AzADServicePrincipal`.
    PsAdServicePrincipal,
    /// `Add-AzureADGroupMember`: prints nothing.
    PsNothing,
    /// `az ad sp list`: the service principals as Graph returns them.
    AzAdList,
}

#[allow(clippy::too_many_arguments)] // one constructor for every mapped command
fn op(
    line: usize,
    end_line: usize,
    source: OpSource,
    method: &str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    service: Service,
    what: String,
    replay: Option<Replay>,
) -> DocOperation {
    DocOperation {
        line,
        end_line,
        source,
        method: method.into(),
        url,
        headers,
        body,
        service,
        api_version: None,
        action: Action::DataPlane { what },
        inferred: true,
        issues: Vec::new(),
        replay,
    }
}

fn unmapped(line: usize, end_line: usize, source: OpSource, why: String) -> DocOperation {
    let mut o = op(
        line,
        end_line,
        source,
        "",
        String::new(),
        Vec::new(),
        None,
        Service::Local,
        String::new(),
        None,
    );
    o.action = Action::Unmapped { why };
    o
}

#[allow(clippy::unnecessary_wraps)] // the shape of `DocOperation::replay`
fn replay_of(tool: &'static str, out: DataOutput) -> Option<Replay> {
    Some(Replay {
        tool,
        lookups: Vec::new(),
        output: Output::Data(out),
    })
}

/// The file body a command uploads: the file an earlier block wrote
/// (`<FILE name>`, filled by the checker) or the world's sample text.
pub fn file_marker(name: &str) -> String {
    format!("<FILE {name}>")
}

/// Map `az storage blob ...`, `az cosmosdb collection show`, `az ad sp list`.
pub fn from_az(cmd: &AzCommand, line: usize, end_line: usize) -> Option<DocOperation> {
    // The text export wraps `--account-key` as `--` + newline + `account-key`.
    let mut fixed = cmd.clone();
    for (k, v) in &mut fixed.args {
        if k.is_empty() && !v.is_empty() {
            *k = v.remove(0);
        }
    }
    let cmd = &fixed;
    let path = cmd.path_str();
    let src = OpSource::AzCli(format!("az {path}"));
    match path.as_str() {
        "storage blob upload" | "storage blob download" | "storage blob list" => {
            // az rejects an option written without its value before sending anything.
            for (k, v) in &cmd.args {
                if v.is_empty()
                    && matches!(
                        k.as_str(),
                        "container-name"
                            | "name"
                            | "file"
                            | "account-name"
                            | "account-key"
                            | "sas-token"
                    )
                {
                    let mut o = unmapped(line, end_line, src, String::new());
                    o.action = Action::DataPlane {
                        what: format!("az {path}"),
                    };
                    o.issues.push(format!(
                        "`--{k}` has no value: az stops with \"argument --{k}: expected one argument\" before sending anything"
                    ));
                    return Some(o);
                }
            }
            let account = cmd.arg("account-name").unwrap_or("<STORAGE ACCOUNT NAME>");
            let container = cmd
                .arg("container-name")
                .or(cmd.arg("c"))
                .unwrap_or("<CONTAINER NAME>");
            let mut headers = vec![("x-ms-version".to_string(), AZ_BLOB_VERSION.to_string())];
            let mut sas = None;
            if let Some(k) = cmd.arg("account-key") {
                headers.push(("Authorization".into(), format!("SharedKey {account}:{k}")));
            } else if let Some(s) = cmd.arg("sas-token") {
                sas = Some(s.trim_start_matches('?').to_string());
            } else if cmd.arg("auth-mode") == Some("login") {
                headers.push((
                    "Authorization".into(),
                    "Bearer <OPERATOR STORAGE TOKEN>".into(),
                ));
            } else {
                // Without credentials az lists the account keys through ARM first; the
                // checker does not replay that fallback.
                return Some(unmapped(
                    line,
                    end_line,
                    src,
                    format!(
                        "`az {path}` without --account-key, --sas-token or --auth-mode login looks the key up through ARM, which the checker does not replay"
                    ),
                ));
            }
            let base = format!("https://{account}.blob.core.windows.net/{container}");
            let (method, mut url, body, out) = match path.as_str() {
                "storage blob upload" => {
                    let file = cmd.arg("file").or(cmd.arg("f")).unwrap_or("<FILE>");
                    let name = cmd.arg("name").unwrap_or(file);
                    headers.push(("x-ms-blob-type".into(), "BlockBlob".into()));
                    // az guesses the content type from the file's extension (again since
                    // 2.35, Azure/azure-cli#21591).
                    headers.push((
                        "x-ms-blob-content-type".into(),
                        content_type_of(file).into(),
                    ));
                    (
                        "PUT",
                        format!("{base}/{name}"),
                        Some(file_marker(file)),
                        DataOutput::AzBlobUpload,
                    )
                }
                "storage blob download" => (
                    "GET",
                    format!("{base}/{}", cmd.arg("name").unwrap_or("<BLOB NAME>")),
                    None,
                    DataOutput::AzBlobDownload,
                ),
                _ => (
                    "GET",
                    format!("{base}?restype=container&comp=list"),
                    None,
                    DataOutput::AzBlobList,
                ),
            };
            if let Some(s) = sas {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&s);
            }
            Some(op(
                line,
                end_line,
                src,
                method,
                url,
                headers,
                body,
                Service::Blob,
                format!("az {path}"),
                replay_of("az", out),
            ))
        }
        "cosmosdb collection show" | "cosmosdb collection list" | "cosmosdb database show" => {
            let mut o = unmapped(line, end_line, src, String::new());
            o.action = Action::DataPlane {
                what: format!("az {path}"),
            };
            o.service = Service::Cosmos;
            o.issues.push(format!(
                "`az {path}` was removed from the Azure CLI (the key-based `cosmosdb database|collection` groups); today's CLI has `az cosmosdb sql container show -a <account> -g <group> -d <database> -n <container>` through Resource Manager"
            ));
            Some(o)
        }
        "ad sp list" => {
            let filter = if let Some(n) = cmd.arg("display-name") {
                format!("&$filter=startswith(displayName,'{n}')")
            } else if let Some(f) = cmd.arg("filter") {
                format!("&$filter={f}")
            } else {
                String::new()
            };
            Some(graph_get(
                line,
                end_line,
                src,
                format!(
                    "https://graph.windows.net/<TENANT ID>/servicePrincipals?api-version={GRAPH_VERSION}{filter}"
                ),
                "az",
                DataOutput::AzAdList,
            ))
        }
        _ => None,
    }
}

fn graph_get(
    line: usize,
    end_line: usize,
    src: OpSource,
    url: String,
    tool: &'static str,
    out: DataOutput,
) -> DocOperation {
    op(
        line,
        end_line,
        src,
        "GET",
        url,
        vec![(
            "Authorization".into(),
            "Bearer <OPERATOR GRAPH TOKEN>".into(),
        )],
        None,
        Service::Graph,
        "Azure AD Graph read".into(),
        replay_of(tool, out),
    )
}

fn content_type_of(file: &str) -> &'static str {
    match file
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html",
        _ => "application/octet-stream",
    }
}

/// Map the storage and directory cmdlets.
pub fn from_cmdlet(c: &Cmdlet, line: usize, end_line: usize) -> Option<DocOperation> {
    let src = OpSource::Cmdlet(c.name.clone());
    // AzureAD cmdlets are keyed `azuread<noun>` (`Get-AzureADGroup` -> `azureadgroup`).
    let noun = if c.module == crate::parse::pwsh::CmdletModule::AzureAd {
        format!("azuread{}", c.noun.to_ascii_lowercase())
    } else {
        c.noun.to_ascii_lowercase()
    };
    let p = |n: &str| c.param_text(n);
    match (c.verb.as_str(), noun.as_str()) {
        ("New", "storagecontext") => {
            let account =
                p("StorageAccountName").unwrap_or_else(|| "<STORAGE ACCOUNT NAME>".into());
            let auth = if let Some(k) = p("StorageAccountKey") {
                format!("key={k}")
            } else if let Some(s) = p("SasToken") {
                format!("sas={}", s.trim_start_matches('?'))
            } else if c.has_switch("UseConnectedAccount") {
                "login".into()
            } else {
                return Some(unmapped(
                    line,
                    end_line,
                    src,
                    "`New-AzStorageContext` without -StorageAccountKey, -SasToken or -UseConnectedAccount is anonymous".into(),
                ));
            };
            Some(op(
                line,
                end_line,
                src,
                "CONTEXT",
                format!("local:storage-context/{account}"),
                vec![(CONTEXT_HEADER.into(), format!("account={account};{auth}"))],
                None,
                Service::Local,
                "storage context (local)".into(),
                replay_of("Az PowerShell", DataOutput::PsStorageContext),
            ))
        }
        ("Set" | "Get", "storageblobcontent") => {
            let Some(ctx) = p("Context") else {
                return Some(unmapped(
                    line,
                    end_line,
                    src,
                    format!(
                        "`{}` without -Context uses the signed-in account's key look-up, which the checker does not replay",
                        c.name
                    ),
                ));
            };
            let container = p("Container").unwrap_or_else(|| "<CONTAINER NAME>".into());
            let mut headers = vec![
                (CONTEXT_HEADER.to_string(), ctx),
                ("x-ms-version".into(), PS_BLOB_VERSION.into()),
            ];
            let (method, blob, body) = if c.verb == "Set" {
                let file = p("File").unwrap_or_else(|| "<FILE>".into());
                let blob = p("Blob").unwrap_or_else(|| file.clone());
                headers.push(("x-ms-blob-type".into(), "BlockBlob".into()));
                // Set-AzStorageBlobContent does not guess a content type (no -Properties).
                headers.push((
                    "x-ms-blob-content-type".into(),
                    "application/octet-stream".into(),
                ));
                ("PUT", blob, Some(file_marker(&file)))
            } else {
                (
                    "GET",
                    p("Blob").unwrap_or_else(|| "<BLOB NAME>".into()),
                    None,
                )
            };
            Some(op(
                line,
                end_line,
                src,
                method,
                format!("https://<STORAGE CONTEXT>.blob.core.windows.net/{container}/{blob}"),
                headers,
                body,
                Service::Blob,
                c.name.clone(),
                replay_of("Az PowerShell", DataOutput::PsBlob),
            ))
        }
        ("Connect", "azuread") => Some({
            let mut o = unmapped(line, end_line, src, String::new());
            o.action = Action::SignIn {
                managed_identity: false,
            };
            o
        }),
        ("Get", "azureadserviceprincipal" | "adserviceprincipal") => {
            let tool = if noun.starts_with("azuread") {
                "AzureAD"
            } else {
                "Az PowerShell"
            };
            let url = if let Some(id) = p("ObjectId") {
                format!(
                    "https://graph.windows.net/<TENANT ID>/servicePrincipals/{id}?api-version={GRAPH_VERSION}"
                )
            } else {
                let filter = if let Some(f) = p("Filter") {
                    f
                } else if let Some(s) = p("SearchString").or(p("DisplayName")) {
                    format!("startswith(displayName,'{s}')")
                } else if let Some(a) = p("ApplicationId") {
                    format!("appId eq '{a}'")
                } else {
                    String::new()
                };
                let filter = if filter.is_empty() {
                    String::new()
                } else {
                    format!("&$filter={filter}")
                };
                format!(
                    "https://graph.windows.net/<TENANT ID>/servicePrincipals?api-version={GRAPH_VERSION}{filter}"
                )
            };
            Some(graph_get(
                line,
                end_line,
                src,
                url,
                tool,
                DataOutput::PsAdServicePrincipal,
            ))
        }
        ("Get", "azureadgroup" | "adgroup") => {
            let url = if let Some(id) = p("ObjectId") {
                format!(
                    "https://graph.windows.net/<TENANT ID>/groups/{id}?api-version={GRAPH_VERSION}"
                )
            } else if let Some(f) = p("Filter") {
                format!(
                    "https://graph.windows.net/<TENANT ID>/groups?api-version={GRAPH_VERSION}&$filter={f}"
                )
            } else if let Some(n) = p("DisplayName").or(p("SearchString")) {
                format!(
                    "https://graph.windows.net/<TENANT ID>/groups?api-version={GRAPH_VERSION}&$filter=displayName eq '{n}'"
                )
            } else {
                format!("https://graph.windows.net/<TENANT ID>/groups?api-version={GRAPH_VERSION}")
            };
            Some(graph_get(
                line,
                end_line,
                src,
                url,
                "AzureAD",
                DataOutput::PsAdGroup,
            ))
        }
        ("New", "azureadgroup") => {
            let flag = |n: &str| {
                p(n).is_some_and(|v| v.trim_start_matches('$').eq_ignore_ascii_case("true"))
            };
            let body = json!({
                "displayName": p("DisplayName").unwrap_or_default(),
                "mailEnabled": flag("MailEnabled"),
                "mailNickname": p("MailNickName").unwrap_or_default(),
                "securityEnabled": flag("SecurityEnabled"),
            });
            let mut o = graph_get(
                line,
                end_line,
                src,
                format!("https://graph.windows.net/<TENANT ID>/groups?api-version={GRAPH_VERSION}"),
                "AzureAD",
                DataOutput::PsAdGroup,
            );
            o.method = "POST".into();
            o.headers
                .push(("Content-Type".into(), "application/json".into()));
            o.body = Some(body.to_string());
            o.action = Action::DataPlane {
                what: "Azure AD Graph write".into(),
            };
            Some(o)
        }
        ("Add", "azureadgroupmember") => {
            let group = p("ObjectId").unwrap_or_else(|| "<GROUP OBJECT ID>".into());
            let member = p("RefObjectId").unwrap_or_else(|| "<MEMBER OBJECT ID>".into());
            let mut o = graph_get(
                line,
                end_line,
                src,
                format!(
                    "https://graph.windows.net/<TENANT ID>/groups/{group}/%24links/members?api-version={GRAPH_VERSION}"
                ),
                "AzureAD",
                DataOutput::PsNothing,
            );
            o.method = "POST".into();
            o.headers
                .push(("Content-Type".into(), "application/json".into()));
            o.body = Some(
                json!({"url": format!("https://graph.windows.net/<TENANT ID>/directoryObjects/{member}")})
                    .to_string(),
            );
            o.action = Action::DataPlane {
                what: "Azure AD Graph write".into(),
            };
            Some(o)
        }
        (_, n) if n.starts_with("azuread") => Some(unmapped(
            line,
            end_line,
            src,
            format!(
                "cmdlet `{}` is not replayed (its arguments come from PowerShell pipelines the checker does not evaluate)",
                c.name
            ),
        )),
        _ => None,
    }
}

/// Parse a bound storage context (`account=x;key=k` | `sas=...` | `login`).
fn parse_context(ctx: &str) -> (Option<String>, Option<(&'static str, String)>) {
    let mut account = None;
    let mut auth = None;
    for part in ctx.split(';') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k.trim() {
            "account" => account = Some(v.to_string()),
            "key" => auth = Some(("key", v.to_string())),
            "sas" => auth = Some(("sas", v.to_string())),
            "login" => auth = Some(("login", String::new())),
            _ => {}
        }
    }
    (account, auth)
}

fn needs(missing: &[String]) -> String {
    format!(
        "needs {} which the scenario world does not provide",
        missing.join(", ")
    )
}

/// Replay a data-plane or directory command.
pub fn replay(op: &DocOperation, out: DataOutput, world: &World, exec: &dyn Executor) -> Replayed {
    let done = |outcome: Result<ExecResponse, String>, output: Option<Value>| Replayed {
        outcome,
        output,
        tool_error: None,
        unresolved: Vec::new(),
    };
    if out == DataOutput::PsStorageContext {
        // Local: nothing is sent. The bound value is the context description.
        let ctx = op
            .header_value(CONTEXT_HEADER)
            .unwrap_or_default()
            .to_string();
        return done(
            Ok(ExecResponse {
                status: 200,
                headers: Vec::new(),
                body: String::new(),
            }),
            Some(json!({"Id": ctx, "StorageAccountName": parse_context(&ctx).0})),
        );
    }
    let mut op = op.clone();
    // The uploaded file: the checker put in what the doc wrote to it earlier; a file no
    // block writes gets a sample text.
    if op
        .body
        .as_deref()
        .is_some_and(|b| b.starts_with("<FILE ") && b.ends_with('>'))
    {
        op.body = Some("Hello world! :)".to_string());
    }
    let mut shared_key: Option<(String, String)> = None;
    if let Some(ctx) = op.header_value(CONTEXT_HEADER).map(str::to_string) {
        op.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(CONTEXT_HEADER));
        if ctx.starts_with('$') {
            return done(
                Err(format!(
                    "needs the storage context `{ctx}`, which no earlier block sets"
                )),
                None,
            );
        }
        let (account, auth) = parse_context(&ctx);
        let account = account.unwrap_or_else(|| "<STORAGE ACCOUNT NAME>".into());
        op.url = op.url.replace("<STORAGE CONTEXT>", &account);
        match auth {
            Some(("key", k)) => shared_key = Some((account, k)),
            Some(("sas", s)) => {
                op.url.push(if op.url.contains('?') { '&' } else { '?' });
                op.url.push_str(&s);
            }
            _ => op.headers.push((
                "Authorization".into(),
                "Bearer <OPERATOR STORAGE TOKEN>".into(),
            )),
        }
    } else if let Some(i) = op
        .headers
        .iter()
        .position(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.starts_with("SharedKey "))
    {
        let (_, v) = op.headers.remove(i);
        let (a, k) = v["SharedKey ".len()..].split_once(':').unwrap_or(("", ""));
        shared_key = Some((a.to_string(), k.to_string()));
    }
    let mut req = resolve(&op, world);
    if let Some((account, key)) = &shared_key {
        let (account, mut missing) = world.substitute(account);
        let (key, m2) = world.substitute(key);
        missing.extend(m2);
        missing.extend(req.unresolved.iter().cloned());
        if !missing.is_empty() {
            let mut seen = Vec::new();
            missing.retain(|m| {
                let fresh = !seen.contains(m);
                seen.push(m.clone());
                fresh
            });
            return done(Err(needs(&missing)), None);
        }
        if let Err(e) = exec.sign_shared_key(&mut req, &account, &key) {
            return done(Err(e), None);
        }
    }
    if !req.unresolved.is_empty() {
        return done(Err(needs(&req.unresolved)), None);
    }
    // What the scenario world already did (the tutorial's own setup, repeated) is adopted:
    // the group it created, the member it added.
    let existing = (req.service == Service::Graph
        && req.method == "POST"
        && req
            .url
            .split('?')
            .next()
            .is_some_and(|u| u.to_ascii_lowercase().ends_with("/groups")))
    .then(|| existing_group(&req, exec))
    .flatten();
    let mut outcome = match existing {
        Some(e) => Ok(e),
        None => exec.execute(&req),
    };
    if let Ok(resp) = &outcome
        && req.service == Service::Graph
        && req.method == "POST"
        && let Some(adopted) = adopt_member_repeat(&req, resp)
    {
        outcome = Ok(adopted);
    }
    let output = match &outcome {
        Ok(resp) if resp.status < 400 => project(out, &req, resp, exec),
        _ => None,
    };
    Replayed {
        outcome,
        output,
        tool_error: None,
        unresolved: req.unresolved,
    }
}

/// `New-AzureADGroup` of the group the world already created, `Add-AzureADGroupMember` of a
/// member it already added: the world's state stands for the tutorial's earlier step.
fn adopt_member_repeat(req: &ResolvedRequest, resp: &ExecResponse) -> Option<ExecResponse> {
    let url = req.url.to_ascii_lowercase();
    if url.contains("/%24links/members") || url.contains("/$links/members") {
        return (resp.status == 400 && resp.body.contains("already exist")).then(|| ExecResponse {
            status: 204,
            headers: Vec::new(),
            body: String::new(),
        });
    }
    None
}

/// Before `New-AzureADGroup`: the group of that name the world already has, if any.
pub fn existing_group(req: &ResolvedRequest, exec: &dyn Executor) -> Option<ExecResponse> {
    let body: Value = serde_json::from_str(req.body.as_deref()?).ok()?;
    let name = body["displayName"].as_str()?;
    let (base, _) = req.url.split_once('?')?;
    let mut r = req.clone();
    r.method = "GET".into();
    r.body = None;
    r.url = format!(
        "{base}?api-version={GRAPH_VERSION}&$filter=displayName%20eq%20%27{}%27",
        name.replace('\'', "''").replace(' ', "%20")
    );
    let resp = exec.execute(&r).ok().filter(|x| x.status == 200)?;
    let v: Value = serde_json::from_str(&resp.body).ok()?;
    let g = v["value"]
        .as_array()?
        .iter()
        .find(|g| g["displayName"].as_str() == Some(name))?;
    Some(ExecResponse {
        status: 201,
        headers: resp.headers.clone(),
        body: g.to_string(),
    })
}

fn header<'a>(resp: &'a ExecResponse, name: &str) -> Option<&'a str> {
    resp.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn blob_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    let after = path.find("://").map_or(path, |i| &path[i + 3..]);
    let mut segs = after.splitn(3, '/');
    let _host = segs.next();
    let _container = segs.next();
    segs.next().unwrap_or_default().to_string()
}

fn container_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    let after = path.find("://").map_or(path, |i| &path[i + 3..]);
    after.split('/').nth(1).unwrap_or_default().to_string()
}

/// What the tool prints.
fn project(
    out: DataOutput,
    req: &ResolvedRequest,
    resp: &ExecResponse,
    exec: &dyn Executor,
) -> Option<Value> {
    let h = |n: &str| header(resp, n).map_or(Value::Null, |v| json!(v));
    Some(match out {
        DataOutput::PsStorageContext | DataOutput::PsNothing => return None,
        // az 2.6x prints the upload result of the track-2 SDK.
        DataOutput::AzBlobUpload => json!({
            "client_request_id": "...",
            "content_md5": "...",
            "date": "...",
            "encryption_key_sha256": null,
            "encryption_scope": null,
            "etag": h("etag"),
            "lastModified": "...",
            "request_id": h("x-ms-request-id"),
            "request_server_encrypted": true,
            "version": h("x-ms-version"),
            "version_id": null,
        }),
        DataOutput::AzBlobDownload => {
            let len: u64 = header(resp, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(resp.body.len() as u64);
            json!({
                "container": container_name(&req.url),
                // The bytes go to `--file`: the printed blob carries no content.
                "content": null,
                "contentMd5": null,
                "deleted": false,
                "metadata": {},
                "name": blob_name(&req.url),
                "properties": {
                    "appendBlobCommittedBlockCount": null,
                    "blobType": h("x-ms-blob-type"),
                    "contentLength": len,
                    // The whole blob was read: az prints the range it asked for.
                    "contentRange": format!("bytes 0-{}/{len}", len.saturating_sub(1)),
                    "contentSettings": {
                        "cacheControl": null,
                        "contentDisposition": null,
                        "contentEncoding": null,
                        "contentLanguage": null,
                        // The fake's Content-MD5 is a stable digest, not an MD5 of the body.
                        "contentMd5": "...",
                        "contentType": h("content-type"),
                    },
                    "copy": {"completionTime": null, "id": null, "progress": null, "source": null, "status": null, "statusDescription": null},
                    "etag": h("etag"),
                    // Upload time: any value.
                    "lastModified": "...",
                    "lease": {"duration": null, "state": "available", "status": "unlocked"},
                    "pageBlobSequenceNumber": null,
                    // Azure encrypts every blob at rest (since 2017).
                    "serverEncrypted": true,
                },
                "snapshot": null,
            })
        }
        DataOutput::AzBlobList => Value::Array(
            xml_blobs(&resp.body)
                .into_iter()
                .map(|(name, len, ty)| json!({"name": name, "properties": {"contentLength": len, "contentSettings": {"contentType": ty}, "blobType": "BlockBlob"}}))
                .collect(),
        ),
        DataOutput::PsBlob => {
            // Set-AzStorageBlobContent reads the blob's properties after the upload.
            let props = if req.method == "PUT" {
                let mut r = req.clone();
                r.method = "HEAD".into();
                r.body = None;
                r.headers.retain(|(k, _)| {
                    !k.eq_ignore_ascii_case("x-ms-blob-type")
                        && !k.to_ascii_lowercase().starts_with("x-ms-blob-content")
                });
                exec.execute(&r).ok().filter(|x| x.status == 200)?
            } else {
                resp.clone()
            };
            let p = |n: &str| header(&props, n).unwrap_or_default().to_string();
            json!({
                "ICloudBlob": "Microsoft.Azure.Storage.Blob.CloudBlockBlob",
                "BlobType": p("x-ms-blob-type"),
                // A file written with PowerShell's `>`: Windows PowerShell 5.1 writes UTF-16LE
                // with a BOM, PowerShell 7 UTF-8; the replay cannot tell which shell the reader
                // used, so any length matches.
                "Length": "...",
                "IsDeleted": false,
                "ContentType": p("content-type"),
                // Upload time: any value.
                "LastModified": "...",
                "SnapshotTime": "",
                "ContinuationToken": "",
                "VersionId": "",
                "AccessTier": "Hot",
                "Context": "Microsoft.WindowsAzure.Commands.Storage.AzureStorageContext",
                "Name": blob_name(&req.url),
            })
        }
        DataOutput::PsAdGroup => {
            let v: Value = serde_json::from_str(&resp.body).ok()?;
            let g = v["value"].get(0).cloned().unwrap_or(v);
            if g.is_null() {
                return None;
            }
            json!({
                "ObjectId": g["objectId"],
                "DisplayName": g["displayName"],
                "Description": g["description"],
                "MailEnabled": g["mailEnabled"],
                "MailNickName": g["mailNickname"],
                "SecurityEnabled": g["securityEnabled"],
                "ObjectType": "Group",
            })
        }
        DataOutput::PsAdServicePrincipal => {
            let v: Value = serde_json::from_str(&resp.body).ok()?;
            let sp = v["value"].get(0).cloned().unwrap_or(v);
            if sp.is_null() {
                return None;
            }
            json!({
                "ObjectId": sp["objectId"],
                "Id": sp["objectId"],
                "AppId": sp["appId"],
                "DisplayName": sp["displayName"],
                "ServicePrincipalType": sp["servicePrincipalType"],
                "AppRoles": sp["appRoles"],
                "ObjectType": "ServicePrincipal",
            })
        }
        DataOutput::AzAdList => {
            let v: Value = serde_json::from_str(&resp.body).ok()?;
            v["value"].clone()
        }
    })
}

/// (name, length, content type) of each blob in a List Blobs answer.
fn xml_blobs(xml: &str) -> Vec<(String, u64, String)> {
    let tag = |s: &str, t: &str| -> Option<String> {
        let open = format!("<{t}>");
        let i = s.find(&open)? + open.len();
        let j = s[i..].find(&format!("</{t}>"))? + i;
        Some(s[i..j].to_string())
    };
    xml.split("<Blob>")
        .skip(1)
        .filter_map(|b| {
            Some((
                tag(b, "Name")?,
                tag(b, "Content-Length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
                tag(b, "Content-Type").unwrap_or_default(),
            ))
        })
        .collect()
}

/// Files a block writes with `echo "text" > name` (bash: the text and a newline).
pub fn written_files(lines: &[crate::wrap::LogicalLine]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let t = l.text.trim();
            let rest = t.strip_prefix("echo ")?;
            let (text, file) = rest.rsplit_once('>')?;
            let text = text.trim().trim_end_matches('>').trim();
            let text = text
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| text.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(text);
            let file = file.trim();
            (!file.is_empty() && !file.contains(' '))
                .then(|| (file.to_string(), format!("{text}\n")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{az, pwsh};
    use rstest::rstest;

    #[rstest]
    #[case(
        "az storage blob upload -c mycontainer -n test.txt -f test.txt --account-name acct --account-key KEY",
        "PUT",
        "https://acct.blob.core.windows.net/mycontainer/test.txt",
        &[("x-ms-version", "2022-11-02"), ("Authorization", "SharedKey acct:KEY"), ("x-ms-blob-type", "BlockBlob"), ("x-ms-blob-content-type", "text/plain")]
    )]
    #[case(
        "az storage blob download -c c1 -n b1 -f out.txt --account-name acct --sas-token ?sv=2015&sig=x",
        "GET",
        "https://acct.blob.core.windows.net/c1/b1?sv=2015&sig=x",
        &[("x-ms-version", "2022-11-02")]
    )]
    #[case(
        "az storage blob list -c c1 --account-name acct --auth-mode login",
        "GET",
        "https://acct.blob.core.windows.net/c1?restype=container&comp=list",
        &[("Authorization", "Bearer <OPERATOR STORAGE TOKEN>")]
    )]
    #[case(
        "az ad sp list --display-name myVM",
        "GET",
        "https://graph.windows.net/<TENANT ID>/servicePrincipals?api-version=1.6&$filter=startswith(displayName,'myVM')",
        &[("Authorization", "Bearer <OPERATOR GRAPH TOKEN>")]
    )]
    fn az_data_commands(
        #[case] line: &str,
        #[case] method: &str,
        #[case] url: &str,
        #[case] headers: &[(&str, &str)],
    ) {
        let op = from_az(&az::parse(line).unwrap(), 1, 1).unwrap();
        assert_eq!(op.method, method);
        assert_eq!(op.url, url);
        for (k, v) in headers {
            assert_eq!(op.header_value(k), Some(*v), "{k}");
        }
        assert!(op.replay.is_some());
    }

    #[test]
    fn echo_writes_files() {
        let l = crate::wrap::LogicalLine {
            text: "echo \"This is a test file.\" > test.txt".into(),
            start_line: 1,
            end_line: 1,
            rewrapped: false,
        };
        assert_eq!(
            written_files(&[l]),
            vec![("test.txt".to_string(), "This is a test file.\n".to_string())]
        );
    }

    #[test]
    fn az_options_without_values_stop_the_tool() {
        let op = from_az(
            &az::parse(
                "az storage blob upload --container-name --file --name --account-name --sas-token",
            )
            .unwrap(),
            1,
            1,
        )
        .unwrap();
        assert!(op.url.is_empty());
        assert!(
            op.issues[0].contains("expected one argument"),
            "{:?}",
            op.issues
        );
        let removed = from_az(
            &az::parse("az cosmosdb collection show -c Test -d Test --url-connection u --key k")
                .unwrap(),
            1,
            1,
        )
        .unwrap();
        assert!(removed.issues[0].contains("removed"));
    }

    #[rstest]
    #[case(
        "New-AzStorageContext -StorageAccountName acct -StorageAccountKey $key",
        "CONTEXT",
        "local:storage-context/acct",
        Some("account=acct;key=$key")
    )]
    #[case(
        "New-AzStorageContext -StorageAccountName acct -SasToken $sasCred",
        "CONTEXT",
        "local:storage-context/acct",
        Some("account=acct;sas=$sasCred")
    )]
    #[case(
        "New-AzStorageContext -StorageAccountName acct -UseConnectedAccount",
        "CONTEXT",
        "local:storage-context/acct",
        Some("account=acct;login")
    )]
    #[case(
        "Set-AzStorageBlobContent -File test.txt -Container c1 -Blob testblob -Context $ctx",
        "PUT",
        "https://<STORAGE CONTEXT>.blob.core.windows.net/c1/testblob",
        Some("$ctx")
    )]
    #[case(
        "Get-AzStorageBlobContent -Blob testblob -Container c1 -Destination test2.txt -Context $ctx",
        "GET",
        "https://<STORAGE CONTEXT>.blob.core.windows.net/c1/testblob",
        Some("$ctx")
    )]
    #[case(
        "Get-AzureADServicePrincipal -Filter \"displayName eq 'myVM'\"",
        "GET",
        "https://graph.windows.net/<TENANT ID>/servicePrincipals?api-version=1.6&$filter=displayName eq 'myVM'",
        None
    )]
    #[case(
        "Get-AzADServicePrincipal -DisplayName myVM",
        "GET",
        "https://graph.windows.net/<TENANT ID>/servicePrincipals?api-version=1.6&$filter=startswith(displayName,'myVM')",
        None
    )]
    #[case(
        "Get-AzureADGroup -Filter \"displayName eq 'myGroup'\"",
        "GET",
        "https://graph.windows.net/<TENANT ID>/groups?api-version=1.6&$filter=displayName eq 'myGroup'",
        None
    )]
    #[case(
        "New-AzureADGroup -DisplayName \"myGroup\" -MailEnabled $false -SecurityEnabled $true -MailNickName \"NotSet\"",
        "POST",
        "https://graph.windows.net/<TENANT ID>/groups?api-version=1.6",
        None
    )]
    #[case(
        "Add-AzureADGroupMember -ObjectId $g.ObjectId -RefObjectId $sp.ObjectId",
        "POST",
        "https://graph.windows.net/<TENANT ID>/groups/$g.ObjectId/%24links/members?api-version=1.6",
        None
    )]
    fn cmdlet_data_commands(
        #[case] line: &str,
        #[case] method: &str,
        #[case] url: &str,
        #[case] ctx: Option<&str>,
    ) {
        let c = &pwsh::cmdlets(line)[0];
        let op = from_cmdlet(c, 1, 1).unwrap();
        assert_eq!(op.method, method);
        assert_eq!(op.url, url);
        assert_eq!(op.header_value(CONTEXT_HEADER), ctx);
        if let Some(b) = &op.body
            && b.starts_with('{')
        {
            let v: Value = serde_json::from_str(b).unwrap();
            if line.starts_with("New-AzureADGroup") {
                assert_eq!(
                    v,
                    json!({"displayName": "myGroup", "mailEnabled": false, "mailNickname": "NotSet", "securityEnabled": true})
                );
            }
        }
    }

    #[rstest]
    #[case("account=acct;key=abc==", Some("acct"), Some(("key", "abc==")))]
    #[case("account=a;sas=sv=1&sig=x", Some("a"), Some(("sas", "sv=1&sig=x")))]
    #[case("account=a;login", Some("a"), Some(("login", "")))]
    fn contexts(
        #[case] ctx: &str,
        #[case] account: Option<&str>,
        #[case] auth: Option<(&str, &str)>,
    ) {
        let (a, au) = parse_context(ctx);
        assert_eq!(a.as_deref(), account);
        assert_eq!(au.as_ref().map(|(k, v)| (*k, v.as_str())), auth);
    }

    #[test]
    fn projections() {
        let resp = ExecResponse {
            status: 200,
            headers: vec![
                ("content-length".into(), "21".into()),
                ("content-type".into(), "text/plain".into()),
                ("x-ms-blob-type".into(), "BlockBlob".into()),
                ("etag".into(), "\"0x8D\"".into()),
            ],
            body: "This is a test file.\n".into(),
        };
        let req = ResolvedRequest {
            method: "GET".into(),
            url: "https://a.blob.core.windows.net/c1/test.txt".into(),
            headers: Vec::new(),
            body: None,
            service: Service::Blob,
            action: Action::DataPlane {
                what: String::new(),
            },
            inferred: true,
            line: 1,
            unresolved: Vec::new(),
        };
        let v = project(
            DataOutput::AzBlobDownload,
            &req,
            &resp,
            &crate::exec::NotExecuted,
        )
        .unwrap();
        assert_eq!(v["name"], "test.txt");
        assert_eq!(v["container"], "c1");
        assert_eq!(v["properties"]["contentLength"], 21);
        assert_eq!(v["properties"]["contentRange"], "bytes 0-20/21");
        assert_eq!(
            v["properties"]["contentSettings"]["contentType"],
            "text/plain"
        );
        let ps = project(DataOutput::PsBlob, &req, &resp, &crate::exec::NotExecuted).unwrap();
        assert_eq!(ps["Name"], "test.txt");
        assert_eq!(ps["BlobType"], "BlockBlob");
        let xml = "<EnumerationResults><Blobs><Blob><Name>hello.txt</Name><Properties><Content-Length>15</Content-Length><Content-Type>text/plain</Content-Type></Properties></Blob></Blobs></EnumerationResults>";
        assert_eq!(
            xml_blobs(xml),
            vec![("hello.txt".to_string(), 15, "text/plain".to_string())]
        );
        let group = ExecResponse {
            status: 200,
            headers: Vec::new(),
            body: json!({"value": [{"objectId": "g1", "displayName": "myGroup", "mailEnabled": false, "mailNickname": "NotSet", "securityEnabled": true}]}).to_string(),
        };
        let g = project(
            DataOutput::PsAdGroup,
            &req,
            &group,
            &crate::exec::NotExecuted,
        )
        .unwrap();
        assert_eq!(g["ObjectId"], "g1");
        assert_eq!(g["DisplayName"], "myGroup");
    }
}
