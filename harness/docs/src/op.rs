//! Mapping of requests and commands to the operation they perform (`DocOperation`).

use crate::parse::az::AzCommand;
use crate::parse::pwsh::{Cmdlet, PsValue};
use crate::parse::{HttpRequest, RequestTool};
use crate::specs::Service;
use crate::tool::{self, Lookup, Output, Replay};
use percent_encoding::percent_decode_str;
use serde::Serialize;

/// Where an operation comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tool", content = "command", rename_all = "kebab-case")]
pub enum OpSource {
    Request(RequestTool),
    AzCli(String),
    Cmdlet(String),
}

/// Which identity an IMDS token request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "value", rename_all = "kebab-case")]
pub enum IdentitySelector {
    /// No selector: system-assigned, or the only user-assigned identity.
    Default,
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
}

/// What the operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Token request to IMDS or the VM extension.
    ImdsToken {
        /// `resource` as written (may be URL-encoded).
        resource_raw: Option<String>,
        /// `resource` decoded.
        resource: Option<String>,
        identity: IdentitySelector,
    },
    /// ARM operation, e.g. `Microsoft.Compute/virtualMachines/write`.
    Arm {
        resource_type: String,
        action: String,
    },
    /// The operator's own token (`az account get-access-token`).
    OperatorToken { resource: String },
    /// Sign-in of the tool (`az login`, `Connect-AzAccount`), with the VM identity or not.
    SignIn { managed_identity: bool },
    /// Data-plane call (blob, Key Vault secret, WebHDFS, Graph ...).
    DataPlane { what: String },
    /// Command the checker does not map.
    Unmapped { why: String },
}

/// One operation an example performs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocOperation {
    /// Source lines of the command (re-joined span).
    pub line: usize,
    pub end_line: usize,
    pub source: OpSource,
    pub method: String,
    /// URL template as written (placeholders kept). Empty for local actions.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub service: Service,
    pub api_version: Option<String>,
    pub action: Action,
    /// True when the doc prints a tool command and the request is what the tool sends.
    pub inferred: bool,
    /// Problems in the example's own syntax.
    pub issues: Vec<String>,
    /// How to replay the command (tool commands only): look-ups and what the tool prints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
}

impl DocOperation {
    /// First header with this name (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parts of a URL that may contain placeholders (so `url::Url` cannot parse it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    pub scheme: String,
    pub host: String,
    pub path: String,
    pub query: Vec<(String, String)>,
}

/// Split a URL by hand; query values are percent-decoded.
pub fn split_url(url: &str) -> UrlParts {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (hostpath, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = match hostpath.find('/') {
        Some(i) => (&hostpath[..i], &hostpath[i..]),
        None => (hostpath, ""),
    };
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect();
    UrlParts {
        scheme: scheme.to_string(),
        host: host.to_string(),
        path: path.to_string(),
        query,
    }
}

impl UrlParts {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Raw (undecoded) value of a query parameter.
pub fn raw_query_value(url: &str, name: &str) -> Option<String> {
    let (_, q) = url.split_once('?')?;
    q.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.eq_ignore_ascii_case(name).then(|| v.to_string())
    })
}

/// ARM resource type and action for a path, e.g.
/// `/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm` + PUT
/// -> (`Microsoft.Compute/virtualMachines`, `Microsoft.Compute/virtualMachines/write`).
pub fn arm_type_and_action(method: &str, path: &str) -> (String, String) {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut resource_type = String::new();
    let mut trailing_action: Option<&str> = None;
    if let Some(p) = segs
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
    {
        let ns = segs.get(p + 1).copied().unwrap_or("");
        let rest = &segs[(p + 2).min(segs.len())..];
        let mut types = vec![ns.to_string()];
        let mut i = 0;
        while i < rest.len() {
            if i + 1 < rest.len() {
                types.push(rest[i].to_string());
                i += 2;
            } else {
                // odd count: a collection (list) or an action
                if method == "POST" {
                    trailing_action = Some(rest[i]);
                } else {
                    types.push(rest[i].to_string());
                }
                i += 1;
            }
        }
        resource_type = types.join("/");
    } else if segs.len() >= 3 && segs[2].eq_ignore_ascii_case("resourcegroups") {
        resource_type = "Microsoft.Resources/resourceGroups".into();
    } else if segs
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"))
    {
        resource_type = "Microsoft.Resources/subscriptions".into();
    }
    let action = match (method, trailing_action) {
        (_, Some(a)) => format!("{resource_type}/{a}/action"),
        ("GET" | "HEAD", _) => format!("{resource_type}/read"),
        ("PUT" | "PATCH", _) => format!("{resource_type}/write"),
        ("DELETE", _) => format!("{resource_type}/delete"),
        (m, _) => format!("{resource_type}/{}", m.to_ascii_lowercase()),
    };
    (resource_type, action)
}

/// Map a parsed HTTP request.
pub fn from_http(req: &HttpRequest, line: usize, end_line: usize) -> DocOperation {
    let parts = split_url(&req.url);
    let service = Service::from_host(&parts.host);
    let api_version = parts.query_value("api-version").map(str::to_string);
    let action = match service {
        Service::Imds | Service::Extension if parts.path.contains("oauth2/token") => {
            let body_parts = req
                .body
                .as_deref()
                .map(|b| split_url(&format!("x://h/?{b}")));
            let get = |n: &str| {
                parts.query_value(n).map(str::to_string).or_else(|| {
                    body_parts
                        .as_ref()
                        .and_then(|b| b.query_value(n).map(str::to_string))
                })
            };
            let identity = if let Some(v) = get("client_id") {
                IdentitySelector::ClientId(v)
            } else if let Some(v) = get("object_id") {
                IdentitySelector::ObjectId(v)
            } else if let Some(v) = get("mi_res_id").or_else(|| get("msi_res_id")) {
                IdentitySelector::ResourceId(v)
            } else {
                IdentitySelector::Default
            };
            Action::ImdsToken {
                resource_raw: raw_query_value(&req.url, "resource"),
                resource: get("resource"),
                identity,
            }
        }
        Service::Arm => {
            let (resource_type, action) = arm_type_and_action(&req.method, &parts.path);
            Action::Arm {
                resource_type,
                action,
            }
        }
        Service::Unknown => Action::Unmapped {
            why: format!("host `{}` is not a known service", parts.host),
        },
        s => Action::DataPlane {
            what: format!("{} {} {}", s.name(), req.method, parts.path),
        },
    };
    DocOperation {
        line,
        end_line,
        source: OpSource::Request(req.tool),
        method: req.method.clone(),
        url: req.url.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        service,
        api_version,
        action,
        inferred: false,
        issues: req.issues.clone(),
        replay: None,
    }
}

const ARM: &str = "https://management.azure.com";
const SUB: &str = "/subscriptions/<SUBSCRIPTION ID>";

fn arm_op(
    line: usize,
    end_line: usize,
    source: OpSource,
    method: &str,
    path: &str,
    api: Option<&str>,
    body: Option<String>,
) -> DocOperation {
    let (resource_type, action) = arm_type_and_action(method, path);
    // The tools send their own api-version (the doc does not show it).
    let api = api.or_else(|| tool::api_version(&resource_type));
    let url = match api {
        Some(v) => format!("{ARM}{path}?api-version={v}"),
        None => format!("{ARM}{path}"),
    };
    let mut headers = vec![(
        "Authorization".to_string(),
        "Bearer <ACCESS TOKEN>".to_string(),
    )];
    if body.is_some() {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    DocOperation {
        line,
        end_line,
        source,
        method: method.into(),
        url,
        headers,
        body,
        service: Service::Arm,
        api_version: api.map(str::to_string),
        action: Action::Arm {
            resource_type,
            action,
        },
        inferred: true,
        issues: Vec::new(),
        replay: None,
    }
}

fn local_op(
    line: usize,
    end_line: usize,
    source: OpSource,
    service: Service,
    action: Action,
    issues: Vec<String>,
) -> DocOperation {
    DocOperation {
        line,
        end_line,
        source,
        method: String::new(),
        url: String::new(),
        headers: Vec::new(),
        body: None,
        service,
        api_version: None,
        action,
        inferred: true,
        issues,
        replay: None,
    }
}

fn or_ph<'a>(v: Option<&'a str>, ph: &'a str) -> &'a str {
    v.filter(|s| !s.is_empty()).unwrap_or(ph)
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Map an `az` command to the ARM call it makes (or a local action).
pub fn from_az(cmd: &AzCommand, line: usize, end_line: usize) -> DocOperation {
    if let Some(mut op) = crate::tool_data::from_az(cmd, line, end_line) {
        // The command line's own problems come first.
        let mut issues = cmd.issues.clone();
        issues.append(&mut op.issues);
        op.issues = issues;
        return op;
    }
    let src = OpSource::AzCli(format!("az {}", cmd.path_str()));
    let rg = or_ph(cmd.arg("resource-group"), "<RESOURCE GROUP>");
    let name = cmd.arg("name");
    let issues = cmd.issues.clone();
    let path = cmd.path_str();
    let mut op = match path.as_str() {
        "login" if cmd.has("identity") => return az_login_identity(cmd, line, end_line),
        "login" => local_op(
            line,
            end_line,
            src,
            if cmd.has("identity") {
                Service::Imds
            } else {
                Service::Local
            },
            Action::SignIn {
                managed_identity: cmd.has("identity"),
            },
            Vec::new(),
        ),
        "account get-access-token" => {
            let resource = cmd
                .arg("resource")
                .unwrap_or("https://management.azure.com/")
                .to_string();
            local_op(
                line,
                end_line,
                src,
                Service::Local,
                Action::OperatorToken { resource },
                Vec::new(),
            )
        }
        "group create" => {
            let n = or_ph(name, "<RESOURCE GROUP>");
            let body = format!(
                "{{\"location\":{}}}",
                json_str(or_ph(cmd.arg("location"), "<LOCATION>"))
            );
            arm_op(
                line,
                end_line,
                src,
                "PUT",
                &format!("{SUB}/resourcegroups/{n}"),
                None,
                Some(body),
            )
        }
        "group delete" => arm_op(
            line,
            end_line,
            src,
            "DELETE",
            &format!("{SUB}/resourcegroups/{}", or_ph(name, "<RESOURCE GROUP>")),
            None,
            None,
        ),
        "identity create" | "identity show" | "identity delete" | "identity list" => {
            let base = format!(
                "{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
            );
            let n = or_ph(name, "<USER ASSIGNED IDENTITY NAME>");
            match path.as_str() {
                "identity create" => {
                    let body = format!(
                        "{{\"location\":{}}}",
                        json_str(or_ph(cmd.arg("location"), "<LOCATION>"))
                    );
                    arm_op(
                        line,
                        end_line,
                        src,
                        "PUT",
                        &format!("{base}/{n}"),
                        None,
                        Some(body),
                    )
                }
                "identity show" => arm_op(
                    line,
                    end_line,
                    src,
                    "GET",
                    &format!("{base}/{n}"),
                    None,
                    None,
                ),
                "identity delete" => arm_op(
                    line,
                    end_line,
                    src,
                    "DELETE",
                    &format!("{base}/{n}"),
                    None,
                    None,
                ),
                _ => arm_op(line, end_line, src, "GET", &base, None, None),
            }
        }
        p if p.starts_with("vm ") || p.starts_with("vmss ") => {
            let (ty, ph) = if p.starts_with("vmss") {
                ("virtualMachineScaleSets", "<VMSS NAME>")
            } else {
                ("virtualMachines", "<VM NAME>")
            };
            let n = or_ph(name, ph);
            let res = format!("{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/{ty}/{n}");
            let sub = p.split_once(' ').map_or("", |(_, s)| s);
            match sub {
                "create" => {
                    let identity = if cmd.has("assign-identity") {
                        let ids = cmd.values("assign-identity");
                        if ids.is_empty() || ids.iter().all(|i| i == "[system]") {
                            "{\"type\":\"SystemAssigned\"}".to_string()
                        } else {
                            let map: Vec<String> = ids
                                .iter()
                                .filter(|i| *i != "[system]")
                                .map(|i| format!("{}:{{}}", json_str(i)))
                                .collect();
                            format!(
                                "{{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{{{}}}}}",
                                map.join(",")
                            )
                        }
                    } else {
                        "null".into()
                    };
                    arm_op(
                        line,
                        end_line,
                        src,
                        "PUT",
                        &res,
                        None,
                        Some(format!(
                            "{{\"location\":\"<LOCATION>\",\"identity\":{identity}}}"
                        )),
                    )
                }
                "identity assign" | "assign-identity" | "identity remove" | "remove-identity"
                | "update" => {
                    let body = if let Some(set) = cmd.values("set").first() {
                        let (k, v) = set.split_once('=').unwrap_or((set, ""));
                        if k == "identity.type" {
                            format!("{{\"identity\":{{\"type\":{}}}}}", json_str(v))
                        } else {
                            format!("{{\"_set\":{}}}", json_str(set))
                        }
                    } else {
                        let ids = cmd.values("identities");
                        let removing = sub.contains("remove");
                        let map: Vec<String> = ids
                            .iter()
                            .map(|i| {
                                format!("{}:{}", json_str(i), if removing { "null" } else { "{}" })
                            })
                            .collect();
                        format!(
                            "{{\"identity\":{{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{{{}}}}}}}",
                            map.join(",")
                        )
                    };
                    arm_op(line, end_line, src, "PATCH", &res, None, Some(body))
                }
                "show" | "identity show" => arm_op(line, end_line, src, "GET", &res, None, None),
                "delete" => arm_op(line, end_line, src, "DELETE", &res, None, None),
                "extension delete" | "extension set" => {
                    let ext_owner = if p.starts_with("vmss") {
                        cmd.arg("vmss-name")
                    } else {
                        cmd.arg("vm-name")
                    };
                    let ext_res = format!(
                        "{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/{ty}/{}/extensions/{}",
                        or_ph(ext_owner, ph),
                        or_ph(name, "<EXTENSION NAME>")
                    );
                    arm_op(
                        line,
                        end_line,
                        src,
                        if sub == "extension delete" {
                            "DELETE"
                        } else {
                            "PUT"
                        },
                        &ext_res,
                        None,
                        None,
                    )
                }
                _ => local_op(
                    line,
                    end_line,
                    src,
                    Service::Arm,
                    Action::Unmapped {
                        why: format!("`az {p}` is not mapped"),
                    },
                    issues.clone(),
                ),
            }
        }
        "role assignment create" => {
            let scope = or_ph(
                cmd.arg("scope"),
                "/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>",
            );
            let body = format!(
                "{{\"properties\":{{\"roleDefinitionId\":{},\"principalId\":{}}}}}",
                json_str(or_ph(cmd.arg("role"), "<ROLE>")),
                json_str(or_ph(cmd.arg("assignee"), "<PRINCIPAL ID>"))
            );
            arm_op(
                line,
                end_line,
                src,
                "PUT",
                &format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments/<NEW GUID>",
                    scope.trim_end_matches('/')
                ),
                None,
                Some(body),
            )
        }
        "resource show" => {
            let id = or_ph(
                cmd.arg("ids").or(cmd.arg("id")),
                "/subscriptions/<SUBSCRIPTION ID>",
            );
            arm_op(line, end_line, src, "GET", id, cmd.arg("api-version"), None)
        }
        p if p.starts_with("storage ") => local_op(
            line,
            end_line,
            src,
            Service::Blob,
            Action::DataPlane {
                what: format!("az {p}"),
            },
            issues.clone(),
        ),
        p if p.starts_with("cosmosdb ") => local_op(
            line,
            end_line,
            src,
            Service::Cosmos,
            Action::DataPlane {
                what: format!("az {p}"),
            },
            issues.clone(),
        ),
        p => local_op(
            line,
            end_line,
            src,
            Service::Local,
            Action::Unmapped {
                why: format!("`az {p}` is not mapped"),
            },
            issues.clone(),
        ),
    };
    if op.issues.is_empty() {
        op.issues = issues;
    }
    op.replay = az_replay(cmd, &path);
    op
}

/// How `az <path>` is replayed (see [`crate::tool`]).
fn az_replay(cmd: &AzCommand, path: &str) -> Option<Replay> {
    let out = |output| {
        Some(Replay {
            tool: "az",
            lookups: Vec::new(),
            output,
        })
    };
    // Names are expanded to ids in the VM's group at replay time, after placeholders
    // (`<MSI ID>` is a whole id, `<UAMI NAME>` a name) are filled.
    let identities = |_: &str| -> Vec<String> { cmd.values("identities").to_vec() };
    let rg = or_ph(cmd.arg("resource-group"), "<RESOURCE GROUP>");
    match path {
        "login" if cmd.has("identity") => out(Output::AzLogin),
        "group create" | "group show" | "resource show" => {
            out(Output::AzResource { flatten: false })
        }
        "identity create" | "identity show" | "vm show" | "vmss show" | "vm update"
        | "vmss update" | "vm extension set" => out(Output::AzResource { flatten: true }),
        "identity list" => out(Output::AzList { flatten: true }),
        "vm create" | "vmss create" => out(Output::AzVmCreate),
        "vm identity show" | "vmss identity show" => out(Output::AzIdentityShow),
        "group delete"
        | "identity delete"
        | "vm delete"
        | "vm extension delete"
        | "vmss extension delete" => out(Output::Nothing),
        "vm identity assign"
        | "vm assign-identity"
        | "vmss identity assign"
        | "vmss assign-identity"
        | "vm identity remove"
        | "vm remove-identity"
        | "vmss identity remove"
        | "vmss remove-identity" => {
            let user = identities(rg);
            let remove = path.contains("remove");
            // `--identities` defaults to `[system]` for assign and remove.
            let ids = cmd.values("identities");
            let system = ids.is_empty() || ids.iter().any(|i| i == "[system]");
            let user = user
                .into_iter()
                .filter(|u| !u.ends_with("[system]"))
                .collect();
            Some(Replay {
                tool: "az",
                lookups: vec![Lookup::MergeIdentity {
                    system,
                    user,
                    remove,
                }],
                output: if remove {
                    Output::Nothing
                } else {
                    Output::AzVmIdentity
                },
            })
        }
        "role assignment create" => {
            let scope = or_ph(
                cmd.arg("scope"),
                "/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>",
            )
            .trim_end_matches('/')
            .to_string();
            let mut lookups = vec![Lookup::RoleDefinition {
                scope,
                role: or_ph(cmd.arg("role"), "<ROLE>").to_string(),
            }];
            if let Some(a) = cmd.arg("assignee").or(cmd.arg("assignee-object-id")) {
                lookups.push(Lookup::Principal {
                    value: a.to_string(),
                });
            }
            Some(Replay {
                tool: "az",
                lookups,
                output: Output::AzResource { flatten: true },
            })
        }
        _ => None,
    }
}

/// `az login --identity [--username ID]`: the token request az sends to IMDS.
fn az_login_identity(cmd: &AzCommand, line: usize, end_line: usize) -> DocOperation {
    let selector = match cmd.arg("username").or(cmd.arg("client-id")) {
        Some(u) if u.starts_with('/') => format!("&msi_res_id={u}"),
        Some(u) if cmd.has("object-id") => format!("&object_id={u}"),
        Some(u) => format!("&client_id={u}"),
        None => cmd
            .arg("object-id")
            .map(|o| format!("&object_id={o}"))
            .unwrap_or_default(),
    };
    identity_sign_in(
        &selector,
        line,
        end_line,
        OpSource::AzCli("az login".into()),
        az_replay(cmd, "login"),
    )
}

/// A tool's sign-in with the managed identity: the IMDS token request it sends (audience
/// `https://management.core.windows.net/`, as az and Az PowerShell ask for it).
fn identity_sign_in(
    selector: &str,
    line: usize,
    end_line: usize,
    source: OpSource,
    replay: Option<Replay>,
) -> DocOperation {
    let url = format!(
        "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.core.windows.net/{selector}"
    );
    let req = HttpRequest {
        tool: RequestTool::Curl,
        method: "GET".into(),
        url,
        headers: vec![("Metadata".into(), "true".into())],
        body: None,
        issues: Vec::new(),
    };
    let mut op = from_http(&req, line, end_line);
    op.source = source;
    op.inferred = true;
    op.replay = replay;
    op
}

/// Map a cmdlet to the ARM call it makes (or a local action). `vm_names` resolves `$vm`
/// variables set earlier in the block by `Get-AzVM -Name x`.
pub fn from_cmdlet(
    c: &Cmdlet,
    line: usize,
    end_line: usize,
    vm_names: &[(String, String)],
) -> DocOperation {
    if c.verb == "Connect"
        && matches!(
            c.noun.to_ascii_lowercase().as_str(),
            "account" | "rmaccount"
        )
        && c.has_switch("Identity")
    {
        let selector = c
            .param_text("AccountId")
            .map(|a| format!("&client_id={a}"))
            .unwrap_or_default();
        return identity_sign_in(
            &selector,
            line,
            end_line,
            OpSource::Cmdlet(c.name.clone()),
            Some(Replay {
                tool: "Az PowerShell",
                lookups: Vec::new(),
                output: Output::PsLogin,
            }),
        );
    }
    if let Some(op) = crate::tool_data::from_cmdlet(c, line, end_line) {
        return op;
    }
    let mut op = cmdlet_op(c, line, end_line, vm_names);
    op.replay = cmdlet_replay(c, &op);
    op
}

/// How a cmdlet is replayed (see [`crate::tool`]).
fn cmdlet_replay(c: &Cmdlet, op: &DocOperation) -> Option<Replay> {
    if op.url.is_empty() {
        return None;
    }
    let noun = c.noun.to_ascii_lowercase();
    let mut lookups = Vec::new();
    let output = match (c.verb.as_str(), noun.as_str()) {
        ("Remove", _) => Output::Nothing,
        ("New" | "Get", "userassignedidentity") => Output::PsIdentity,
        ("New" | "Get", "resourcegroup") => Output::PsResourceGroup,
        ("Get", "vm" | "vmss") => Output::PsVm,
        ("New", "roleassignment") => {
            let scope = c
                .param_text("Scope")
                .unwrap_or_else(|| {
                    "/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>".into()
                })
                .trim_end_matches('/')
                .to_string();
            lookups.push(Lookup::RoleDefinition {
                scope,
                role: c
                    .param_text("RoleDefinitionName")
                    .or(c.param_text("RoleDefinitionId"))
                    .unwrap_or_else(|| "<ROLE>".into()),
            });
            if let Some(o) = c
                .param_text("ObjectId")
                .or(c.param_text("ApplicationId"))
                .or(c.param_text("ServicePrincipalName"))
            {
                lookups.push(Lookup::Principal { value: o });
            }
            Output::PsRoleAssignment
        }
        ("Update" | "Set", _) => Output::PsUpdate,
        _ => return None,
    };
    Some(Replay {
        tool: "Az PowerShell",
        lookups,
        output,
    })
}

fn cmdlet_op(
    c: &Cmdlet,
    line: usize,
    end_line: usize,
    vm_names: &[(String, String)],
) -> DocOperation {
    let src = OpSource::Cmdlet(c.name.clone());
    let rg_text = c.param_text("ResourceGroupName");
    let rg = or_ph(rg_text.as_deref(), "<RESOURCE GROUP>").to_string();
    let name_text = c.param_text("Name");
    let noun = c.noun.to_ascii_lowercase();
    let verb = c.verb.as_str();
    let method = match verb {
        "New" | "Update" | "Set" | "Add" => "PUT",
        "Get" => "GET",
        "Remove" => "DELETE",
        _ => "",
    };
    match (verb, noun.as_str()) {
        ("Connect" | "Login" | "Add", "account" | "rmaccount") => local_op(
            line,
            end_line,
            src,
            Service::Local,
            Action::SignIn {
                managed_identity: c.has_switch("Identity"),
            },
            Vec::new(),
        ),
        (_, "resourcegroup") if !method.is_empty() => {
            let n = or_ph(
                rg_text.as_deref().or(name_text.as_deref()),
                "<RESOURCE GROUP>",
            )
            .to_string();
            let body = (verb == "New").then(|| {
                format!(
                    "{{\"location\":{}}}",
                    json_str(or_ph(c.param_text("Location").as_deref(), "<LOCATION>"))
                )
            });
            arm_op(
                line,
                end_line,
                src,
                method,
                &format!("{SUB}/resourcegroups/{n}"),
                None,
                body,
            )
        }
        (_, "userassignedidentity") if !method.is_empty() => {
            let n = or_ph(name_text.as_deref(), "<USER ASSIGNED IDENTITY NAME>");
            let body = (verb == "New").then(|| {
                format!(
                    "{{\"location\":{}}}",
                    json_str(or_ph(c.param_text("Location").as_deref(), "<LOCATION>"))
                )
            });
            arm_op(
                line,
                end_line,
                src,
                method,
                &format!(
                    "{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}"
                ),
                None,
                body,
            )
        }
        (_, "vm" | "vmss") if !method.is_empty() => {
            let ty = if noun == "vm" {
                "virtualMachines"
            } else {
                "virtualMachineScaleSets"
            };
            let var = c.param_text(if noun == "vm" {
                "VM"
            } else {
                "VirtualMachineScaleSet"
            });
            let from_var = var.and_then(|v| {
                vm_names
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&v))
                    .map(|(_, n)| n.clone())
            });
            let named = name_text
                .clone()
                .or(c.param_text("VMName"))
                .or(c.param_text("VMScaleSetName"))
                .or(from_var);
            // `Get-AzVM` / `Get-AzVmss` without a name lists them (in the group, or the
            // subscription).
            if verb == "Get"
                && named.is_none()
                && !c.params.iter().any(|(k, _)| k.eq_ignore_ascii_case("Name"))
            {
                let path = if rg_text.is_some() {
                    format!("{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/{ty}")
                } else {
                    format!("{SUB}/providers/Microsoft.Compute/{ty}")
                };
                return arm_op(line, end_line, src, "GET", &path, None, None);
            }
            let mut issues = Vec::new();
            if c.params
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("Name") && v.is_none())
            {
                issues.push(
                    "`-Name` is given no value: the next word starts with `-`, so PowerShell reads it as another parameter".to_string(),
                );
            }
            let n = named.unwrap_or_else(|| "<VM NAME>".into());
            let body = match (c.param_text("IdentityType"), c.param_text("IdentityID")) {
                (Some(t), Some(id)) => Some(format!(
                    "{{\"identity\":{{\"type\":{},\"userAssignedIdentities\":{{{}:{{}}}}}}}}",
                    json_str(&t),
                    json_str(&id)
                )),
                (Some(t), None) => Some(format!("{{\"identity\":{{\"type\":{}}}}}", json_str(&t))),
                _ if c.has_switch("AssignIdentity") => {
                    Some("{\"identity\":{\"type\":\"SystemAssigned\"}}".into())
                }
                _ => None,
            };
            let m = if verb == "Update" { "PATCH" } else { method };
            let mut op = arm_op(
                line,
                end_line,
                src,
                m,
                &format!("{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/{ty}/{n}"),
                None,
                body,
            );
            op.issues = issues;
            op
        }
        (_, "roleassignment") if !method.is_empty() => {
            let scope = or_ph(
                c.param_text("Scope").as_deref(),
                "/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>",
            )
            .trim_end_matches('/')
            .to_string();
            let body = (verb == "New").then(|| {
                format!(
                    "{{\"properties\":{{\"roleDefinitionId\":{},\"principalId\":{}}}}}",
                    json_str(or_ph(
                        c.param_text("RoleDefinitionName").as_deref(),
                        "<ROLE>"
                    )),
                    json_str(or_ph(c.param_text("ObjectId").as_deref(), "<PRINCIPAL ID>"))
                )
            });
            arm_op(
                line,
                end_line,
                src,
                method,
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/<NEW GUID>"),
                None,
                body,
            )
        }
        (_, "vmextension" | "vmssextension") if !method.is_empty() => {
            let owner = c.param_text("VMName").unwrap_or_else(|| "<VM NAME>".into());
            let n = or_ph(name_text.as_deref(), "<EXTENSION NAME>");
            let settings = match c.param("Settings") {
                Some(PsValue::Hashtable(h)) => Some(
                    h.entries
                        .iter()
                        .map(|(k, v)| format!("{}:{}", json_str(k), v))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            };
            let body = (verb != "Get" && verb != "Remove").then(|| {
                format!(
                    "{{\"location\":\"<LOCATION>\",\"properties\":{{\"settings\":{{{}}}}}}}",
                    settings.unwrap_or_default()
                )
            });
            arm_op(
                line,
                end_line,
                src,
                method,
                &format!(
                    "{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{owner}/extensions/{n}"
                ),
                None,
                body,
            )
        }
        _ => local_op(
            line,
            end_line,
            src,
            Service::Local,
            Action::Unmapped {
                why: format!("cmdlet `{}` is not mapped", c.name),
            },
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{az, curl, pwsh};
    use rstest::rstest;

    #[rstest]
    #[case(
        "GET",
        "/subscriptions/s/resourceGroups/rg",
        "Microsoft.Resources/resourceGroups",
        "Microsoft.Resources/resourceGroups/read"
    )]
    #[case(
        "PUT",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/virtualMachines/write"
    )]
    #[case(
        "POST",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/listKeys",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Storage/storageAccounts/listKeys/action"
    )]
    #[case(
        "POST",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/listServiceSas/",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Storage/storageAccounts/listServiceSas/action"
    )]
    #[case(
        "PUT",
        "/subscriptions/s/resourcegroups/rg/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/g",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.Authorization/roleAssignments/write"
    )]
    #[case(
        "GET",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.ManagedIdentity/userAssignedIdentities/read"
    )]
    #[case(
        "DELETE",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/extensions/e",
        "Microsoft.Compute/virtualMachines/extensions",
        "Microsoft.Compute/virtualMachines/extensions/delete"
    )]
    fn arm_actions(#[case] m: &str, #[case] path: &str, #[case] ty: &str, #[case] action: &str) {
        assert_eq!(
            arm_type_and_action(m, path),
            (ty.to_string(), action.to_string())
        );
    }

    #[test]
    fn imds_token_op() {
        let r = curl::parse("curl 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&client_id=<UAMI CLIENT ID>&resource=https%3A%2F%2Fmanagement.azure.com/' -H Metadata:true").unwrap();
        let op = from_http(&r, 5, 5);
        assert_eq!(op.service, Service::Imds);
        assert_eq!(op.api_version.as_deref(), Some("2018-02-01"));
        match op.action {
            Action::ImdsToken {
                resource,
                resource_raw,
                identity,
            } => {
                assert_eq!(resource.as_deref(), Some("https://management.azure.com/"));
                assert_eq!(
                    resource_raw.as_deref(),
                    Some("https%3A%2F%2Fmanagement.azure.com/")
                );
                assert_eq!(
                    identity,
                    IdentitySelector::ClientId("<UAMI CLIENT ID>".into())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case(
        "az group create --name rg1 --location westus",
        "PUT",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourcegroups/rg1?api-version=2024-03-01"
    )]
    #[case(
        "az identity create -g rgPrivate -n msiServiceApp",
        "PUT",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/rgPrivate/providers/Microsoft.ManagedIdentity/userAssignedIdentities/msiServiceApp?api-version=2023-01-31"
    )]
    #[case(
        "az vm identity assign -g rg -n myVm --identities id1",
        "PATCH",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/myVm?api-version=2024-03-01"
    )]
    #[case(
        "az vmss identity remove -g rg -n myVMSS --identities id1",
        "PATCH",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/myVMSS?api-version=2024-03-01"
    )]
    #[case(
        "az vm update -n myVM -g rg --set identity.type=\"none\"",
        "PATCH",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2024-03-01"
    )]
    #[case(
        "az role assignment create --assignee x --role Reader --scope /subscriptions/s/resourcegroups/rg",
        "PUT",
        "https://management.azure.com/subscriptions/s/resourcegroups/rg/providers/Microsoft.Authorization/roleAssignments/<NEW GUID>?api-version=2022-04-01"
    )]
    #[case(
        "az resource show --id /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm --api-version 2017-12-01",
        "GET",
        "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm?api-version=2017-12-01"
    )]
    #[case(
        "az vm create --resource-group rg --name myVM --image UbuntuLTS --assign-identity",
        "PUT",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2024-03-01"
    )]
    #[case(
        "az login --identity",
        "GET",
        "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.core.windows.net/"
    )]
    #[case("az account get-access-token", "", "")]
    fn az_ops(#[case] line: &str, #[case] method: &str, #[case] url: &str) {
        let op = from_az(&az::parse(line).unwrap(), 1, 1);
        assert_eq!(op.method, method);
        assert_eq!(op.url, url);
        if let Some(b) = &op.body {
            serde_json::from_str::<serde_json::Value>(b).unwrap();
        }
    }

    #[rstest]
    #[case(
        "New-AzUserAssignedIdentity -ResourceGroupName myResourceGroupVM -Name ID1",
        "PUT",
        "Microsoft.ManagedIdentity/userAssignedIdentities/write"
    )]
    #[case(
        "Get-AzureRmUserAssignedIdentity -ResourceGroupName myResourceGroupVM -Name ID1",
        "GET",
        "Microsoft.ManagedIdentity/userAssignedIdentities/read"
    )]
    #[case(
        "Update-AzVM -ResourceGroupName TestRG -VM $vm -IdentityType \"UserAssigned\" -IdentityID \"/subscriptions/x/id\"",
        "PATCH",
        "Microsoft.Compute/virtualMachines/write"
    )]
    #[case(
        "New-AzRoleAssignment -ObjectId $spID -RoleDefinitionName \"Reader\" -Scope \"/subscriptions/s/resourcegroups/rg/\"",
        "PUT",
        "Microsoft.Authorization/roleAssignments/write"
    )]
    #[case(
        "Get-AzVM -ResourceGroupName myResourceGroup -Name myVM",
        "GET",
        "Microsoft.Compute/virtualMachines/read"
    )]
    #[case(
        "Set-AzVMExtension -ResourceGroupName rg -Location WestUS -VMName myVM -Name \"X\" -Type \"X\" -Settings @{port=50342}",
        "PUT",
        "Microsoft.Compute/virtualMachines/extensions/write"
    )]
    #[case(
        "New-AzureRmResourceGroup -ResourceGroupName \"myResourceGroupVM\" -Location \"EastUS\"",
        "PUT",
        "Microsoft.Resources/resourceGroups/write"
    )]
    fn cmdlet_ops(#[case] line: &str, #[case] method: &str, #[case] action: &str) {
        let c = &pwsh::cmdlets(line)[0];
        let op = from_cmdlet(c, 1, 1, &[("$vm".into(), "myVM".into())]);
        assert_eq!(op.method, method);
        match &op.action {
            Action::Arm { action: a, .. } => assert_eq!(a, action),
            other => panic!("{other:?}"),
        }
        if let Some(b) = &op.body {
            serde_json::from_str::<serde_json::Value>(b).unwrap();
        }
    }
}
