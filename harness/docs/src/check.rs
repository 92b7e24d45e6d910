//! Per-article analysis: blocks -> logical lines -> classification -> operations,
//! static consistency checks, execution through the [`Executor`], comparison of
//! example responses, and the per-block status.

use crate::classify::{BlockKind, Classification, classify};
use crate::exec::{ExecResponse, Executor, resolve};
use crate::extract::{CodeBlock, SourceFormat, extract};
use crate::json::{Difference, JsonProblem, LenientJson, compare, parse_lenient};
use crate::op::{Action, DocOperation, OpSource, from_az, from_cmdlet, from_http, split_url};
use crate::parse::pwsh::{Cmdlet, cmdlets};
use crate::parse::{az, curl, pwsh, raw_http};
use crate::placeholder::World;
use crate::psenv::{self, PsEnv};
use crate::report::{
    ArticleReport, BlockReport, CoverageEntry, Finding, FindingKind, OpSummary, Severity, Status,
};
use crate::specs::{self, Service};
use crate::tool::{self, Lookup, Output};
use crate::wrap::{LogicalLine, logical_lines};
use serde_json::Value;
use std::fmt::Write as _;

/// Inputs of a check run.
pub struct CheckOptions<'a> {
    pub world: &'a World,
    pub executor: &'a dyn Executor,
    /// Scenario coverage entries (all articles; filtered by file name).
    pub coverage: &'a [CoverageEntry],
}

/// Everything the checker learned about one block.
#[derive(Debug, Clone)]
pub struct BlockAnalysis {
    pub block: CodeBlock,
    pub logical: Vec<LogicalLine>,
    pub class: Classification,
    pub ops: Vec<DocOperation>,
    pub cmdlets: Vec<(usize, Cmdlet)>,
    /// (line, message) for command lines that did not parse.
    pub parse_errors: Vec<(usize, String)>,
    /// JSON content (responses, request bodies, templates).
    pub json: Option<Result<LenientJson, JsonProblem>>,
    /// PowerShell assignments of a cmdlet's result: (index in `ops`, `$var`, property).
    pub binds: Vec<(usize, String, Option<String>)>,
}

/// Parse and classify every block of an article (no checks, no execution).
pub fn analyse(text: &str) -> (SourceFormat, Vec<BlockAnalysis>) {
    let (format, blocks) = extract(text);
    let mut out: Vec<BlockAnalysis> = Vec::with_capacity(blocks.len());
    for block in blocks {
        let logical = logical_lines(&block.lines, block.content_start);
        let prev = out.last().map(|b| b.class.kind);
        let class = classify(&block, &logical, prev);
        let mut a = BlockAnalysis {
            block,
            logical,
            class,
            ops: Vec::new(),
            cmdlets: Vec::new(),
            parse_errors: Vec::new(),
            json: None,
            binds: Vec::new(),
        };
        fill_operations(&mut a);
        out.push(a);
    }
    assemble_reference_requests(text, &mut out);
    (format, out)
}

/// The REST how-tos print a request in reference form: the request line in one block, the
/// headers in a "Request headers" table in the prose, the body in a "Request body" block.
/// Put them together so the request can be sent as the article specifies it.
fn assemble_reference_requests(text: &str, blocks: &mut [BlockAnalysis]) {
    let lines: Vec<&str> = text.lines().collect();
    for i in 0..blocks.len() {
        let a = &blocks[i];
        let bare = a.class.kind == BlockKind::HttpRequest
            && a.class.detail == "raw-http"
            && a.ops.len() == 1
            && a.ops[0].headers.is_empty()
            && a.ops[0].body.is_none();
        if !bare {
            continue;
        }
        // The prose and blocks up to the next request or command (at most 3 blocks on).
        let mut body = None;
        let mut bad_body = false;
        let mut region_end = lines.len();
        for b in blocks.iter().skip(i + 1).take(3) {
            if b.class.kind.is_actionable() {
                region_end = b.block.start_line.saturating_sub(1);
                break;
            }
            if b.class.kind == BlockKind::RequestBody {
                // The lenient parse re-joins strings the text export wrapped across lines; a
                // body that is not JSON is reported on its own block.
                match &b.json {
                    Some(Ok(j)) => body = Some(j.value.to_string()),
                    _ => bad_body = true,
                }
                region_end = b.block.start_line.saturating_sub(1);
                break;
            }
        }
        let from = a.block.end_line.min(lines.len());
        let prose = lines[from..region_end.min(lines.len()).max(from)].join("\n");
        let prose = prose.to_ascii_lowercase();
        // Only when the article gives the headers, and the body (if it names one) as JSON.
        if !prose.contains("request header")
            || bad_body
            || (prose.contains("request body") && body.is_none())
        {
            continue;
        }
        let mut headers = Vec::new();
        if prose.contains("authorization") {
            headers.push((
                "Authorization".to_string(),
                "Bearer <ACCESS TOKEN>".to_string(),
            ));
        }
        if prose.contains("content-type") {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        if prose.contains("metadata") && prose.contains("true") {
            headers.push(("Metadata".to_string(), "true".to_string()));
        }
        let op = &mut blocks[i].ops[0];
        op.headers = headers;
        op.body = body;
    }
}

fn fill_operations(a: &mut BlockAnalysis) {
    match a.class.kind {
        BlockKind::HttpRequest if a.class.detail == "raw-http" => {
            // Raw request: first logical line is the request line; the rest headers/body.
            match raw_http::parse(&a.block.lines) {
                Ok(r) => a
                    .ops
                    .push(from_http(&r, a.block.content_start, a.block.end_line)),
                Err(e) => a.parse_errors.push((a.block.content_start, e.to_string())),
            }
        }
        BlockKind::HttpRequest | BlockKind::AzCli | BlockKind::Cmdlet => {
            let mut vm_vars: Vec<(String, String)> = Vec::new();
            for l in &a.logical {
                let t = l.text.as_str();
                let lower = t.to_ascii_lowercase();
                if lower.contains("curl ") || lower.starts_with("curl") {
                    match curl::parse(t) {
                        Ok(r) => a.ops.push(from_http(&r, l.start_line, l.end_line)),
                        Err(e) => a.parse_errors.push((l.start_line, format!("curl: {e}"))),
                    }
                } else if lower.contains("invoke-webrequest") || lower.contains("invoke-restmethod")
                {
                    match pwsh::parse_web_request(t) {
                        Ok(r) => a.ops.push(from_http(&r, l.start_line, l.end_line)),
                        Err(e) => a
                            .parse_errors
                            .push((l.start_line, format!("Invoke-WebRequest: {e}"))),
                    }
                } else if t.starts_with("az ") || t.contains("$(az ") || t.contains("= az ") {
                    match az::parse(t) {
                        Ok(c) => a.ops.push(from_az(&c, l.start_line, l.end_line)),
                        Err(e) => a.parse_errors.push((l.start_line, format!("az: {e}"))),
                    }
                } else {
                    let found = cmdlets(t);
                    // `$vm = Get-AzVM -Name myVM` binds $vm for later Update-AzVM -VM $vm.
                    if let Some((var, _)) = t.split_once('=')
                        && var.trim().starts_with('$')
                        && let Some(c) = found.first()
                        && let Some(n) = c.param_text("Name")
                    {
                        vm_vars.push((var.trim().to_string(), n));
                    }
                    // `$spID = (Get-AzUserAssignedIdentity ...).principalid` binds `$spID` to
                    // a property of the replayed cmdlet's output.
                    if let Some((var, rhs)) = t.split_once('=')
                        && var.trim().starts_with('$')
                        && !var.trim().contains(['.', '['])
                        && found
                            .first()
                            .is_some_and(|c| c.module != pwsh::CmdletModule::Other)
                    {
                        let prop = rhs
                            .trim()
                            .rsplit_once(").")
                            .map(|(_, p)| p.trim().to_string());
                        let prop = prop.filter(|p| p.chars().all(|c| c.is_ascii_alphanumeric()));
                        a.binds.push((a.ops.len(), var.trim().to_string(), prop));
                    }
                    for c in found {
                        if c.module == pwsh::CmdletModule::Other {
                            continue;
                        }
                        a.ops
                            .push(from_cmdlet(&c, l.start_line, l.end_line, &vm_vars));
                        a.cmdlets.push((l.start_line, c));
                    }
                }
            }
        }
        // The tutorials' T-SQL runs in the query editor as the server's Entra admin.
        BlockKind::SourceCode if a.class.detail == "T-SQL" => {
            let sql = a.block.raw().replace("[VMName]", "[<VM NAME>]");
            if !sql.trim().is_empty() {
                a.ops.push(DocOperation {
                    line: a.block.content_start,
                    end_line: a.block.end_line,
                    source: OpSource::Request(crate::parse::RequestTool::RawHttp),
                    method: "SQL".into(),
                    url: "mssql://<SQL SERVER>/<DATABASE>".into(),
                    headers: vec![("Authorization".into(), "Bearer <SQL ADMIN TOKEN>".into())],
                    body: Some(sql.trim().to_string()),
                    service: Service::Sql,
                    api_version: None,
                    action: Action::DataPlane {
                        what: "T-SQL batch as the server's Entra admin".into(),
                    },
                    inferred: false,
                    issues: Vec::new(),
                    replay: None,
                });
            }
        }
        BlockKind::ExampleResponse | BlockKind::RequestBody | BlockKind::Template
            if a.class.detail != "powershell-object" && a.class.detail != "http-response" =>
        {
            a.json = Some(parse_lenient(&a.block.raw()));
        }
        _ => {}
    }
}

fn finding(
    kind: FindingKind,
    severity: Severity,
    line: usize,
    end_line: usize,
    block: usize,
    message: String,
) -> Finding {
    Finding {
        kind,
        severity,
        line,
        end_line,
        block: Some(block),
        message,
    }
}

fn heading_api_version(heading: &str) -> Option<String> {
    let lower = heading.to_ascii_lowercase();
    let pos = lower.find("api version")?;
    let rest = heading[pos + "api version".len()..].trim();
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Static checks on one operation.
fn check_op(op: &DocOperation, a: &BlockAnalysis, out: &mut Vec<Finding>) {
    let bi = a.block.index;
    let (line, end) = (op.line, op.end_line);
    for issue in &op.issues {
        // Notes: the example runs, but is not written as the format says.
        if let Some(note) = issue.strip_prefix("note: ") {
            out.push(finding(
                FindingKind::InvalidSyntax,
                Severity::Warning,
                line,
                end,
                bi,
                note.to_string(),
            ));
            continue;
        }
        let kind = if issue.contains("Metadata") {
            FindingKind::MalformedHeader
        } else {
            FindingKind::InvalidSyntax
        };
        let msg = if kind == FindingKind::MalformedHeader {
            format!(
                "{issue}: the request is never sent, so the required `Metadata: true` header does not reach {}",
                op.service.name()
            )
        } else {
            issue.clone()
        };
        out.push(finding(kind, Severity::Error, line, end, bi, msg));
    }
    // Storage account names Azure accepts: 3-24 lower-case letters and digits.
    let mut texts = vec![op.url.clone()];
    if let Some(r) = &op.replay {
        for l in &r.lookups {
            if let Lookup::RoleDefinition { scope, .. } = l {
                texts.push(scope.clone());
            }
        }
    }
    for t in &texts {
        let lower = t.to_ascii_lowercase();
        if let Some(i) = lower.find("/providers/microsoft.storage/storageaccounts/") {
            let rest = &t[i + "/providers/microsoft.storage/storageaccounts/".len()..];
            let name = rest.split(['/', '?']).next().unwrap_or_default();
            let literal = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            let valid = (3..=24).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if literal && !valid {
                out.push(finding(
                    FindingKind::InvalidSyntax,
                    Severity::Error,
                    line,
                    end,
                    bi,
                    format!(
                        "`{name}` is not a valid storage account name (3-24 lower-case letters and digits), so no such account can exist"
                    ),
                ));
                break;
            }
        }
    }
    if op.url.is_empty() {
        if let Action::OperatorToken { resource } = &op.action
            && specs::audience_service(resource).is_none()
        {
            out.push(finding(
                FindingKind::UnknownAudience,
                Severity::Error,
                line,
                end,
                bi,
                format!("the token service does not know the resource `{resource}`"),
            ));
        }
        return;
    }
    // api-version
    let version = op.api_version.as_deref().filter(|v| !v.contains('<'));
    match (&op.action, version) {
        (Action::Arm { resource_type, .. }, Some(v)) => {
            if let Some(accepted) = specs::arm_versions(resource_type)
                && !accepted.contains(&v)
            {
                out.push(finding(
                    FindingKind::ApiVersionNotAccepted,
                    Severity::Error,
                    line,
                    end,
                    bi,
                    format!(
                        "`{resource_type}` does not accept api-version {v} (accepted: {})",
                        accepted.join(", ")
                    ),
                ));
            }
        }
        (Action::Arm { .. }, None) if !op.inferred && op.api_version.is_none() => {
            out.push(finding(
                FindingKind::ApiVersionNotAccepted,
                Severity::Error,
                line,
                end,
                bi,
                "ARM request without `api-version`".into(),
            ));
        }
        (_, v) => {
            if let Some(accepted) = specs::data_plane_versions(op.service) {
                match v {
                    Some(v) if !accepted.contains(&v) => out.push(finding(
                        FindingKind::ApiVersionNotAccepted,
                        Severity::Error,
                        line,
                        end,
                        bi,
                        format!(
                            "{} does not accept api-version {v} (accepted: {})",
                            op.service.name(),
                            accepted.join(", ")
                        ),
                    )),
                    None if op.service == Service::Imds && op.api_version.is_none() => {
                        out.push(finding(
                            FindingKind::ApiVersionNotAccepted,
                            Severity::Error,
                            line,
                            end,
                            bi,
                            "IMDS token request without `api-version`".into(),
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    if let (Some(hv), Some(v)) = (heading_api_version(&a.block.heading), version)
        && hv != v
    {
        out.push(finding(
            FindingKind::ApiVersionNotAccepted,
            Severity::Warning,
            line,
            end,
            bi,
            format!(
                "section \"{}\" is for api-version {hv} but the request uses {v}",
                a.block.heading
            ),
        ));
    }
    // headers
    let summary_line = op.source
        == crate::op::OpSource::Request(crate::parse::RequestTool::RawHttp)
        && op.headers.is_empty();
    if !op.inferred && !summary_line {
        for (name, value, why) in specs::required_headers(op.service) {
            if op.service == Service::Blob && op.header_value("Authorization").is_none() {
                continue;
            }
            if let Some(v) = op.header_value(name) {
                if let Some(want) = value
                    && v.trim() != *want
                {
                    out.push(finding(
                        FindingKind::MalformedHeader,
                        Severity::Error,
                        line,
                        end,
                        bi,
                        format!("header `{name}: {v}` must be `{name}: {want}`: {why}"),
                    ));
                }
                if *name == "Authorization" && !v.starts_with("Bearer ") {
                    out.push(finding(FindingKind::MalformedHeader, Severity::Error, line, end, bi, format!("`Authorization: {v}` is not a bearer token (`Bearer <token>`, capital B)")));
                }
            } else {
                let near = op.headers.iter().find(|(k, _)| {
                    let d = edit_distance(k, name);
                    d > 0 && d <= 2 && !k.eq_ignore_ascii_case(name)
                });
                let msg = match near {
                    Some((k, _)) => {
                        format!("header `{k}` looks like a misspelling of `{name}`: {why}")
                    }
                    None => format!("required header `{name}` is missing: {why}"),
                };
                let kind = if near.is_some() {
                    FindingKind::MalformedHeader
                } else {
                    FindingKind::MissingHeader
                };
                out.push(finding(kind, Severity::Error, line, end, bi, msg));
            }
        }
        if op.service == Service::Arm
            && matches!(op.method.as_str(), "PUT" | "PATCH" | "POST")
            && op
                .body
                .as_deref()
                .is_some_and(|x| x.trim_start().starts_with('{'))
            && op.header_value("Content-Type").is_none()
        {
            out.push(finding(
                FindingKind::MissingHeader,
                Severity::Warning,
                line,
                end,
                bi,
                "JSON body sent without `Content-Type: application/json` (curl -d sends application/x-www-form-urlencoded)".into(),
            ));
        }
    }
    // token audience
    if let Action::ImdsToken {
        resource,
        resource_raw,
        ..
    } = &op.action
    {
        match resource {
            None => out.push(finding(
                FindingKind::UnknownAudience,
                Severity::Error,
                line,
                end,
                bi,
                "token request without `resource`".into(),
            )),
            Some(r) if !r.contains('<') && specs::audience_service(r).is_none() => {
                out.push(finding(
                    FindingKind::UnknownAudience,
                    Severity::Error,
                    line,
                    end,
                    bi,
                    format!("the token service does not know the resource `{r}`"),
                ));
            }
            Some(r) => {
                if let Some(raw) = resource_raw
                    && raw.contains("%2F")
                    && raw.contains('/')
                {
                    out.push(finding(
                        FindingKind::InvalidSyntax,
                        Severity::Note,
                        line,
                        end,
                        bi,
                        format!("resource `{raw}` is half URL-encoded (decodes to `{r}`)"),
                    ));
                }
            }
        }
    }
    // body
    if let Some(body) = op
        .body
        .as_deref()
        .filter(|x| x.trim_start().starts_with(['{', '[']))
    {
        match serde_json::from_str::<Value>(body) {
            Ok(v) => check_identity_body(&v, op, a, line, end, out),
            Err(err) => out.push(finding(
                FindingKind::MalformedJson,
                Severity::Error,
                line,
                end,
                bi,
                format!("request body is not valid JSON: {err}"),
            )),
        }
    }
}

fn check_identity_body(
    v: &Value,
    op: &DocOperation,
    a: &BlockAnalysis,
    l: usize,
    e: usize,
    out: &mut Vec<Finding>,
) {
    let Action::Arm { resource_type, .. } = &op.action else {
        return;
    };
    let rt = resource_type.to_ascii_lowercase();
    if !(rt == "microsoft.compute/virtualmachines"
        || rt == "microsoft.compute/virtualmachinescalesets")
    {
        return;
    }
    identity_shape(
        v.get("identity"),
        op.api_version.as_deref(),
        a.block.index,
        l,
        e,
        "request body",
        out,
    );
}

fn identity_shape(
    identity: Option<&Value>,
    version: Option<&str>,
    block: usize,
    l: usize,
    e: usize,
    what: &str,
    out: &mut Vec<Finding>,
) {
    let Some(id) = identity else { return };
    let Some(v) = version.filter(|v| !v.contains('<')) else {
        return;
    };
    let dict_era = v >= specs::COMPUTE_DICT_IDENTITY_FROM;
    if dict_era && id.get("identityIds").is_some() {
        out.push(finding(
            FindingKind::BodyShapeMismatch,
            Severity::Error,
            l,
            e,
            block,
            format!("{what} uses the 2017-12-01 `identityIds` array with api-version {v}; from {} the service takes the `userAssignedIdentities` dictionary", specs::COMPUTE_DICT_IDENTITY_FROM),
        ));
    }
    if !dict_era && id.get("userAssignedIdentities").is_some() {
        out.push(finding(
            FindingKind::BodyShapeMismatch,
            Severity::Error,
            l,
            e,
            block,
            format!("{what} uses the `userAssignedIdentities` dictionary with api-version {v}; before {} the service takes the `identityIds` array", specs::COMPUTE_DICT_IDENTITY_FROM),
        ));
    }
    if let Some(t) = id.get("type").and_then(Value::as_str)
        && !specs::COMPUTE_IDENTITY_TYPES.contains(&t)
    {
        out.push(finding(
            FindingKind::InvalidSyntax,
            Severity::Note,
            l,
            e,
            block,
            format!(
                "identity.type `{t}` is not spelled as in the closed enum ({})",
                specs::COMPUTE_IDENTITY_TYPES.join(" | ")
            ),
        ));
    }
    if let Some(Value::Object(m)) = id.get("userAssignedIdentities") {
        for k in m.keys() {
            if !k.starts_with('/') && !k.starts_with('[') && !k.starts_with('<') {
                out.push(finding(
                    FindingKind::InvalidSyntax,
                    Severity::Warning,
                    l,
                    e,
                    block,
                    format!(
                        "userAssignedIdentities key `{k}` is not a resource ID (no leading `/`)"
                    ),
                ));
            }
        }
    }
}

/// Walk a template for resources with `type` + `apiVersion` and check them.
fn check_template(v: &Value, a: &BlockAnalysis, out: &mut Vec<Finding>) {
    let mut stack = vec![v];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(m) => {
                if let (Some(Value::String(t)), Some(Value::String(ver))) =
                    (m.get("type"), m.get("apiVersion"))
                {
                    let line =
                        find_line(&a.block, &format!("\"{ver}\"")).unwrap_or(a.block.start_line);
                    if let Some(accepted) = specs::arm_versions(t)
                        && !ver.starts_with('[')
                        && !accepted.contains(&ver.as_str())
                    {
                        out.push(finding(
                            FindingKind::ApiVersionNotAccepted,
                            Severity::Error,
                            line,
                            line,
                            a.block.index,
                            format!("template resource `{t}` uses apiVersion {ver}, which the service does not accept (accepted: {})", accepted.join(", ")),
                        ));
                    }
                    let tl = t.to_ascii_lowercase();
                    if tl == "microsoft.compute/virtualmachines"
                        || tl == "microsoft.compute/virtualmachinescalesets"
                    {
                        identity_shape(
                            m.get("identity"),
                            Some(ver),
                            a.block.index,
                            line,
                            line,
                            "template resource",
                            out,
                        );
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(xs) => stack.extend(xs.iter()),
            _ => {}
        }
    }
}

fn find_line(block: &CodeBlock, needle: &str) -> Option<usize> {
    block
        .lines
        .iter()
        .position(|l| l.contains(needle))
        .map(|i| block.line_of(i))
}

fn intent_verbs(heading: &str) -> Option<(&'static str, &'static [&'static str])> {
    let h = heading.to_ascii_lowercase();
    let first = h.split_whitespace().next().unwrap_or("");
    match first {
        "create" | "add" => Some(("create", &["New", "Add", "Set"])),
        "remove" | "delete" | "disable" => Some(("remove", &["Remove", "Update", "Set"])),
        "assign" | "enable" | "grant" => Some(("assign", &["Update", "Set", "New", "Add"])),
        _ => None,
    }
}

fn check_cmdlet_verbs(a: &BlockAnalysis, out: &mut Vec<Finding>) {
    let relevant: Vec<&(usize, Cmdlet)> = a
        .cmdlets
        .iter()
        .filter(|(_, c)| c.module != pwsh::CmdletModule::Other && c.noun != "Credential")
        .collect();
    let Some((first_line, first)) = relevant.first().map(|(l, c)| (*l, c)) else {
        return;
    };
    // Prose names a cmdlet for the same noun with another verb.
    let named: Vec<Cmdlet> = cmdlets(
        &a.block
            .prose
            .replace(
                ['[', ']', '(', ')', '`', ',', ';', ':', '!', '?', '"', '\''],
                " ",
            )
            .replace(". ", " "),
    )
    .into_iter()
    .filter(|c| c.module != pwsh::CmdletModule::Other)
    .collect();
    for n in named
        .iter()
        .filter(|n| matches!(n.verb.as_str(), "New" | "Remove" | "Update" | "Set"))
    {
        let same_noun: Vec<&&(usize, Cmdlet)> = relevant
            .iter()
            .filter(|(_, c)| c.noun.eq_ignore_ascii_case(&n.noun))
            .collect();
        if let Some((l, used)) = same_noun.first().map(|x| (&x.0, &x.1))
            && same_noun.iter().all(|(_, c)| c.verb == "Get")
        {
            out.push(finding(
                FindingKind::CmdletVerbMismatch,
                Severity::Error,
                *l,
                *l,
                a.block.index,
                format!(
                    "the prose says `{}` but the block runs `{}`, which does not {}",
                    n.name,
                    used.name,
                    verb_meaning(&n.verb)
                ),
            ));
            return;
        }
    }
    // A step whose heading promises a change but whose only command is a standalone Get.
    let squash = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let heading = squash(&a.block.heading);
    let noun = squash(&first.noun);
    let related = heading.contains(&noun)
        || (noun.contains("identity") && (heading.contains("msi") || heading.contains("identity")));
    let standalone_get = related
        && relevant.len() == 1
        && first.verb == "Get"
        && a.logical.iter().any(|l| {
            l.start_line == first_line && !l.text.starts_with('$') && !l.text.starts_with('(')
        });
    if let Some((intent, verbs)) = intent_verbs(&a.block.heading)
        && standalone_get
        && !verbs.contains(&first.verb.as_str())
    {
        out.push(finding(
            FindingKind::CmdletVerbMismatch,
            Severity::Error,
            first_line,
            first_line,
            a.block.index,
            format!(
                "step \"{}\" should {intent}, but `{}` only reads",
                a.block.heading, first.name
            ),
        ));
    }
}

fn verb_meaning(verb: &str) -> &'static str {
    match verb {
        "New" => "create anything",
        "Remove" => "remove anything",
        "Update" | "Set" => "change anything",
        _ => "do the same thing",
    }
}

/// Literal (no placeholder) resource references of an operation: (kind, name, resource group).
fn resource_refs(op: &DocOperation) -> Vec<(String, String, String)> {
    if op.service != Service::Arm || op.url.is_empty() {
        return Vec::new();
    }
    let parts = split_url(&op.url);
    let segs: Vec<&str> = parts.path.trim_matches('/').split('/').collect();
    let mut rg = None;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < segs.len() {
        if segs[i].eq_ignore_ascii_case("resourcegroups") {
            rg = Some(segs[i + 1]);
        }
        if (segs[i].eq_ignore_ascii_case("virtualMachines")
            || segs[i].eq_ignore_ascii_case("virtualMachineScaleSets")
            || segs[i].eq_ignore_ascii_case("userAssignedIdentities"))
            && let Some(r) = rg
        {
            out.push((
                segs[i].to_ascii_lowercase(),
                segs[i + 1].to_string(),
                r.to_string(),
            ));
        }
        i += 1;
    }
    out.retain(|(_, n, r)| !n.contains('<') && !r.contains('<') && !n.contains('$'));
    out
}

fn section_key(a: &BlockAnalysis) -> (usize, &str) {
    (a.block.article_line, a.block.article_title.as_str())
}

/// Cross-block checks: naming consistency and token audiences.
fn check_article_consistency(blocks: &[BlockAnalysis], out: &mut Vec<Finding>) {
    let mut i = 0;
    while i < blocks.len() {
        let key = section_key(&blocks[i]);
        let mut j = i;
        while j < blocks.len() && section_key(&blocks[j]) == key {
            j += 1;
        }
        let section = &blocks[i..j];
        // same resource, different resource group
        let mut seen: Vec<(String, String, String, usize)> = Vec::new();
        for a in section {
            for op in &a.ops {
                for (kind, name, rg) in resource_refs(op) {
                    if let Some((_, _, first_rg, first_line)) = seen
                        .iter()
                        .find(|(k, n, _, _)| *k == kind && n.eq_ignore_ascii_case(&name))
                    {
                        if !first_rg.eq_ignore_ascii_case(&rg) {
                            out.push(finding(
                                FindingKind::ResourceNameMismatch,
                                Severity::Error,
                                op.line,
                                op.end_line,
                                a.block.index,
                                format!("`{name}` is in resource group `{first_rg}` (L{first_line}) but this step uses resource group `{rg}`"),
                            ));
                        }
                    } else {
                        seen.push((kind, name, rg, op.line));
                    }
                }
            }
        }
        // token audience vs service called
        let mut last_token: Option<(String, Service, usize)> = None;
        for a in section {
            for op in &a.ops {
                match &op.action {
                    Action::ImdsToken {
                        resource: Some(r), ..
                    }
                    | Action::OperatorToken { resource: r } => {
                        if let Some(s) = specs::audience_service(r) {
                            last_token = Some((r.clone(), s, op.line));
                        }
                    }
                    _ => {
                        if op.inferred
                            || op
                                .header_value("Authorization")
                                .is_none_or(|v| !v.starts_with("Bearer"))
                        {
                            continue;
                        }
                        if let Some((aud, svc, line)) = &last_token
                            && *svc != op.service
                            && op.service != Service::Unknown
                        {
                            out.push(finding(
                                FindingKind::AudienceMismatch,
                                Severity::Error,
                                op.line,
                                op.end_line,
                                a.block.index,
                                format!("the token fetched at L{line} is for `{aud}` ({}) but this request goes to {}", svc.name(), op.service.name()),
                            ));
                        }
                    }
                }
            }
        }
        i = j;
    }
}

/// Resource-group responses whose `id` names another group than `name`.
fn check_response_consistency(a: &BlockAnalysis, v: &Value, out: &mut Vec<Finding>) {
    if let (Some(Value::String(id)), Some(Value::String(name))) = (v.get("id"), v.get("name")) {
        let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
        if segs.len() == 4
            && segs[2].eq_ignore_ascii_case("resourceGroups")
            && !segs[3].eq_ignore_ascii_case(name)
            && !segs[3].contains('<')
        {
            let line = find_line(&a.block, "\"id\"").unwrap_or(a.block.content_start);
            out.push(finding(
                FindingKind::ResourceNameMismatch,
                Severity::Warning,
                line,
                line,
                a.block.index,
                format!(
                    "example response: `id` names resource group `{}` but `name` is `{name}`",
                    segs[3]
                ),
            ));
        }
    }
}

/// Run every static check on the analysed blocks.
pub fn static_findings(blocks: &[BlockAnalysis]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut last_request_op: Option<(usize, &DocOperation)> = None;
    for a in blocks {
        let bi = a.block.index;
        for (line, msg) in &a.parse_errors {
            out.push(finding(
                FindingKind::InvalidSyntax,
                Severity::Error,
                *line,
                *line,
                bi,
                msg.clone(),
            ));
        }
        for op in &a.ops {
            check_op(op, a, &mut out);
            if !op.inferred && op.service == Service::Arm {
                last_request_op = Some((bi, op));
            }
        }
        check_cmdlet_verbs(a, &mut out);
        match (&a.json, a.class.kind) {
            (Some(Err(p)), kind) => out.push(finding(
                FindingKind::MalformedJson,
                if kind == BlockKind::Template {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                a.block.line_of(p.line.saturating_sub(1)),
                a.block.line_of(p.line.saturating_sub(1)),
                bi,
                format!(
                    "{} is not valid JSON: {}",
                    a.class.kind.label().replace('-', " "),
                    p.message
                ),
            )),
            (Some(Ok(j)), kind) => {
                for note in &j.notes {
                    let fragment_response =
                        kind == BlockKind::ExampleResponse && note.starts_with("fragment");
                    let (sev, msg) = if fragment_response {
                        (Severity::Error, "example response is not a complete JSON document (outer braces missing)".to_string())
                    } else {
                        (Severity::Note, note.clone())
                    };
                    out.push(finding(
                        FindingKind::MalformedJson,
                        sev,
                        a.block.content_start,
                        a.block.end_line,
                        bi,
                        msg,
                    ));
                }
                match kind {
                    BlockKind::Template => check_template(&j.value, a, &mut out),
                    BlockKind::ExampleResponse => check_response_consistency(a, &j.value, &mut out),
                    BlockKind::RequestBody => {
                        if let Some((rb, op)) = last_request_op
                            && bi.saturating_sub(rb) <= 3
                        {
                            if let Action::Arm { resource_type, .. } = &op.action {
                                let rt = resource_type.to_ascii_lowercase();
                                if rt.starts_with("microsoft.compute/virtualmachine") {
                                    identity_shape(
                                        j.value.get("identity"),
                                        op.api_version.as_deref(),
                                        bi,
                                        a.block.content_start,
                                        a.block.end_line,
                                        "request body",
                                        &mut out,
                                    );
                                }
                            }
                            // The separately printed body should be what the request sends.
                            if let Some(Ok(sent)) =
                                op.body.as_deref().map(serde_json::from_str::<Value>)
                            {
                                let diffs = compare(&j.value, &sent);
                                let both: Vec<&Difference> =
                                    diffs.iter().filter(|d| d.drift).collect();
                                if let Some(d) = both.first() {
                                    out.push(finding(
                                        FindingKind::BodyShapeMismatch,
                                        Severity::Warning,
                                        a.block.content_start,
                                        a.block.end_line,
                                        bi,
                                        format!(
                                            "request body differs from the body the command at L{} sends ({} differences; first: {})",
                                            op.line,
                                            both.len(),
                                            d.message.replace("service response does not have it", "the command's body does not have it").replace("service has", "command has")
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    check_article_consistency(blocks, &mut out);
    check_variable_names(blocks, &mut out);
    out.sort_by_key(|f| (f.line, f.kind));
    out.dedup_by(|a, b| a.line == b.line && a.kind == b.kind && a.message == b.message);
    out
}

/// Outcome of executing one operation.
#[derive(Debug, Clone)]
struct ExecResult {
    line: usize,
    inferred: bool,
    outcome: Result<ExecResponse, String>,
    unresolved: Vec<String>,
    /// A replayed command: what the tool prints (None: prints nothing or failed).
    replay: Option<(Output, Option<Value>)>,
    /// The tool stopped with its own error before the request.
    tool_error: Option<String>,
}

/// Values an article's later steps copy from an earlier step's output (`--assignee
/// <clientId from the output above>`): the doc's sample value -> the value the replay got.
#[derive(Debug, Default)]
struct Learned(Vec<(String, String)>);

impl Learned {
    fn apply(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (doc, actual) in &self.0 {
            if doc.starts_with('$') {
                out = replace_variable(&out, doc, actual);
            } else if out.contains(doc.as_str()) {
                out = out.replace(doc.as_str(), actual);
            }
        }
        out
    }

    /// A PowerShell variable set from a replayed cmdlet's output.
    fn bind(&mut self, var: &str, value: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(var));
        self.0.push((var.to_string(), value.to_string()));
    }

    fn op(&self, op: &DocOperation) -> DocOperation {
        if self.0.is_empty() {
            return op.clone();
        }
        let mut o = op.clone();
        o.url = self.apply(&o.url);
        o.body = o.body.as_deref().map(|b| self.apply(b));
        for (_, v) in &mut o.headers {
            *v = self.apply(v);
        }
        if let Some(r) = &mut o.replay {
            for l in &mut r.lookups {
                match l {
                    Lookup::RoleDefinition { scope, role } => {
                        *scope = self.apply(scope);
                        *role = self.apply(role);
                    }
                    Lookup::Principal { value } => *value = self.apply(value),
                    Lookup::MergeIdentity { user, .. } => {
                        for u in user {
                            *u = self.apply(u);
                        }
                    }
                }
            }
        }
        o
    }

    /// Learn from a documented output and the replayed one: sample GUIDs (alone or inside
    /// ids and URLs) map to the values the replay got, in order.
    fn learn(&mut self, doc: &Value, actual: &Value) {
        fn guids(s: &str) -> Vec<&str> {
            s.split(['/', '=', '&', '?', ' '])
                .filter(|p| crate::placeholder::looks_like_guid(p))
                .collect()
        }
        match (doc, actual) {
            (Value::Object(d), Value::Object(a)) => {
                for (k, dv) in d {
                    if let Some(av) = a.get(k).or_else(|| {
                        a.iter()
                            .find(|(ak, _)| ak.eq_ignore_ascii_case(k))
                            .map(|x| x.1)
                    }) {
                        self.learn(dv, av);
                    }
                }
            }
            (Value::Array(d), Value::Array(a)) => {
                for (dv, av) in d.iter().zip(a) {
                    self.learn(dv, av);
                }
            }
            (Value::String(d), Value::String(a)) if d != a => {
                let (dg, ag) = (guids(d), guids(a));
                if dg.len() == ag.len() {
                    for (x, y) in dg.into_iter().zip(ag) {
                        if x != y && !self.0.iter().any(|(k, _)| k == x) {
                            self.0.push((x.to_string(), y.to_string()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Replace `$var` where it is the whole variable name (not `$variable`), case-insensitive.
fn replace_variable(s: &str, var: &str, value: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let needle = var.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle).map(|i| i + from) {
        let end = i + needle.len();
        let boundary = !lower[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if boundary {
            out.push_str(&s[last..i]);
            out.push_str(value);
            last = end;
        }
        from = end;
    }
    out.push_str(&s[last..]);
    out
}

/// A command naming a resource group that no example of the article creates (`myRG` next
/// to the world's `myResourceGroup`) stands for the reader's own: not checkable, not broken.
fn sample_group(
    outcome: Result<ExecResponse, String>,
    created: &[String],
) -> Result<ExecResponse, String> {
    if let Ok(resp) = &outcome
        && resp.status == 404
        && let Ok(v) = serde_json::from_str::<Value>(&resp.body)
        && v["error"]["code"] == "ResourceGroupNotFound"
    {
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        let name = msg.split('\'').nth(1).unwrap_or_default();
        // `"<RESOURCE GROUP> "`: a name with spaces around it is the example's own mistake.
        if name == name.trim() && !created.iter().any(|g| g.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "needs resource group `{name}`, which no example of the article creates (it stands for the reader's own)"
            ));
        }
    }
    outcome
}

/// Resource groups an article's examples create.
fn created_groups(blocks: &[BlockAnalysis]) -> Vec<String> {
    blocks
        .iter()
        .flat_map(|b| &b.ops)
        .filter(|o| {
            o.method == "PUT"
                && matches!(&o.action, Action::Arm { resource_type, .. } if resource_type.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups"))
        })
        .filter_map(|o| {
            split_url(&o.url)
                .path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .map(str::to_string)
        })
        .collect()
}

/// The documented output of a block, as JSON (JSON examples, or PowerShell listings as an
/// object of strings).
fn documented_output(a: &BlockAnalysis) -> Option<Value> {
    match &a.json {
        Some(Ok(j)) => Some(j.value.clone()),
        _ if a.class.detail == "powershell-object" => {
            tool::parse_listing(&a.block.raw()).map(Value::Object)
        }
        _ => None,
    }
}

/// Blocks whose lines are PowerShell (cmdlets, `Invoke-WebRequest`, local statements).
fn is_powershell(a: &BlockAnalysis) -> bool {
    match a.class.kind {
        BlockKind::Cmdlet => true,
        BlockKind::HttpRequest => a.class.detail == "invoke-webrequest",
        BlockKind::Other => a.class.detail == "powershell-local",
        _ => false,
    }
}

/// Evaluate logical line `i` of a PowerShell block when it is a local assignment (no cmdlet
/// or request on it). A variable the scenario world defines (`$ArmToken`) keeps the world's
/// value, but the line is still evaluated to see that what it reads is there.
fn eval_local(
    ps: &mut PsEnv,
    a: &BlockAnalysis,
    i: usize,
    world: &World,
) -> Option<(usize, psenv::Eval)> {
    let l = &a.logical[i];
    if a.ops.iter().any(|o| o.line == l.start_line) {
        return None;
    }
    let (var, _) = psenv::assignment(&l.text)?;
    let bind = world.get(var).is_none();
    Some((l.start_line, ps.eval_assignment(&l.text, bind)))
}

/// A cmdlet argument `$settings` that no line of the article sets, next to a `$setting`
/// that one does: the example fails (PowerShell passes `$null`).
fn check_variable_names(blocks: &[BlockAnalysis], out: &mut Vec<Finding>) {
    // (article title, variable, line): the text export holds many articles.
    let mut all: Vec<(&str, String, usize)> = Vec::new();
    for a in blocks {
        for l in &a.logical {
            for part in l.text.split(';') {
                if let Some((var, _)) = psenv::assignment(part) {
                    all.push((
                        &a.block.article_title,
                        var.to_ascii_lowercase(),
                        l.start_line,
                    ));
                }
            }
        }
    }
    for a in blocks {
        // `$_AllowedMemberTypes`: a variable of its own, not the pipeline item's property.
        for l in &a.logical {
            let t = &l.text;
            let mut from = 0;
            while let Some(i) = t[from..].find("$_").map(|i| i + from) {
                let rest = &t[i + 2..];
                let word: String = rest
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if word.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                    out.push(finding(
                        FindingKind::InvalidSyntax,
                        Severity::Error,
                        l.start_line,
                        l.end_line,
                        a.block.index,
                        format!(
                            "`$_{word}` is an (unset) variable of its own; the pipeline item's property is `$_.{word}`"
                        ),
                    ));
                }
                from = i + 2;
            }
        }
        for (line, c) in &a.cmdlets {
            // What the reader's session holds at this line, in this article.
            let before: Vec<(&str, usize)> = all
                .iter()
                .filter(|(t, _, at)| *t == a.block.article_title && at < line)
                .map(|(_, v, at)| (v.as_str(), *at))
                .collect();
            for (_, v) in &c.params {
                let Some(text) = v.as_ref().map(crate::parse::pwsh::PsValue::as_text) else {
                    continue;
                };
                let t = text.trim();
                if !t.starts_with('$')
                    || t.len() < 3
                    || !t[1..]
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                {
                    continue;
                }
                let lower = t.to_ascii_lowercase();
                let exact = before
                    .iter()
                    .filter(|(v, _)| *v == lower)
                    .map(|(_, at)| *at)
                    .max();
                // A near-miss set after the last exact assignment (or with none) is what the
                // example meant: `$setting = ...` then `-Setting $settings`.
                let near = before
                    .iter()
                    .filter(|(v, at)| {
                        *v != lower
                            && edit_distance(v, &lower) <= 1
                            && exact.is_none_or(|e| *at > e)
                    })
                    .max_by_key(|(_, at)| *at);
                if let Some((near, at)) = near {
                    let earlier = exact
                        .map(|e| format!(" (L{e} set it for another example)"))
                        .unwrap_or_default();
                    out.push(finding(
                        FindingKind::ResourceNameMismatch,
                        Severity::Error,
                        *line,
                        *line,
                        a.block.index,
                        format!(
                            "`{t}` is not what L{at} just set (`{near}`){earlier}: the cmdlet gets the wrong value, or `$null`"
                        ),
                    ));
                }
            }
        }
    }
}

/// Local PowerShell statements: evaluated against the earlier blocks' responses.
fn local_status(evals: &[(usize, psenv::Eval)], set: &[String]) -> (Status, String) {
    let missing: Vec<String> = evals
        .iter()
        .filter_map(|(line, e)| match e {
            psenv::Eval::Missing(expr) => {
                Some(format!("L{line}: `{expr}` is not in the response it reads"))
            }
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        return (Status::Drifted, missing.join("; "));
    }
    let all = !evals.is_empty() && evals.iter().all(|(_, e)| *e == psenv::Eval::Set);
    match (all, set.is_empty()) {
        (true, true) => (
            Status::Works,
            "local PowerShell statements: evaluated against the earlier responses".into(),
        ),
        (true, false) => (
            Status::Works,
            format!(
                "local PowerShell statements: evaluated against the earlier responses; set {}",
                set.join(", ")
            ),
        ),
        _ => (
            Status::NotCheckable,
            "local PowerShell statements the checker cannot evaluate (unknown variables or expressions)".into(),
        ),
    }
}

/// Fill `$var` / `$var.Path` from the PowerShell variables set so far; a URL that was a
/// variable gets the service of the host it resolves to.
fn with_variables(op: &DocOperation, ps: &PsEnv) -> DocOperation {
    if ps.is_empty() {
        return op.clone();
    }
    let mut o = op.clone();
    o.url = ps.substitute(&o.url);
    o.body = o.body.as_deref().map(|b| ps.substitute(b));
    for (_, v) in &mut o.headers {
        *v = ps.substitute(v);
    }
    if o.url != op.url && o.service == Service::Unknown {
        o.service = Service::from_host(&split_url(&o.url).host);
        if matches!(o.action, Action::Unmapped { .. }) {
            o.action = Action::DataPlane {
                what: format!("request to {}", op.url),
            };
        }
    }
    o
}

fn run_op(
    op: &DocOperation,
    opts: &CheckOptions<'_>,
    learned: &Learned,
    created_groups: &[String],
    ps: &PsEnv,
) -> ExecResult {
    let op = learned.op(&with_variables(op, ps));
    if op.inferred
        && let Some(r) = &op.replay
    {
        let done = tool::replay(&op, r, opts.world, opts.executor);
        return ExecResult {
            line: op.line,
            inferred: true,
            outcome: sample_group(done.outcome, created_groups),
            unresolved: done.unresolved,
            replay: Some((r.output, done.output)),
            tool_error: done.tool_error,
        };
    }
    if op.inferred {
        let what = match &op.source {
            OpSource::AzCli(c) | OpSource::Cmdlet(c) => c.clone(),
            OpSource::Request(_) => "the command".into(),
        };
        return ExecResult {
            line: op.line,
            inferred: true,
            outcome: Err(format!(
                "`{what}` is checked statically; the checker does not replay it"
            )),
            unresolved: Vec::new(),
            replay: None,
            tool_error: None,
        };
    }
    let req = resolve(&op, opts.world);
    ExecResult {
        line: op.line,
        inferred: op.inferred,
        outcome: opts.executor.execute(&req),
        unresolved: req.unresolved,
        replay: None,
        tool_error: None,
    }
}

fn is_executable(op: &DocOperation) -> bool {
    !op.url.is_empty() && (!matches!(op.action, Action::Unmapped { .. }) || op.url.starts_with('$'))
}

/// Full check of one article.
pub fn check_article(name: &str, text: &str, opts: &CheckOptions<'_>) -> ArticleReport {
    let (format, blocks) = analyse(text);
    let findings = static_findings(&blocks);
    let mut exec: Vec<Vec<ExecResult>> = Vec::with_capacity(blocks.len());
    let mut learned = Learned::default();
    let mut ps = PsEnv::default();
    let mut set_by_block: Vec<Vec<String>> = Vec::with_capacity(blocks.len());
    let mut evals_by_block: Vec<Vec<(usize, psenv::Eval)>> = Vec::with_capacity(blocks.len());
    let groups = created_groups(&blocks);
    for (i, a) in blocks.iter().enumerate() {
        let mut results = Vec::new();
        let before = ps.snapshot();
        let powershell = is_powershell(a);
        let mut cursor = 0;
        let mut evals = Vec::new();
        // `echo "text" > file`: what a later upload of `file` sends.
        for (name, content) in crate::tool_data::written_files(&a.logical) {
            learned.bind(&crate::tool_data::file_marker(&name), &content);
        }
        for (k, op) in a.ops.iter().enumerate().filter(|(_, o)| is_executable(o)) {
            if powershell {
                // Assignments before this line (`$jsonParams = $params | ConvertTo-Json`).
                while cursor < a.logical.len() && a.logical[cursor].start_line < op.line {
                    evals.extend(eval_local(&mut ps, a, cursor, opts.world));
                    cursor += 1;
                }
            }
            let r = run_op(op, opts, &learned, &groups, &ps);
            if powershell
                && let Ok(resp) = &r.outcome
                && let Some(l) = a.logical.iter().find(|l| l.start_line == op.line)
                && let Some((var, rhs)) = psenv::assignment(&l.text)
                && opts.world.get(var).is_none()
            {
                let rhs = rhs.to_ascii_lowercase();
                if rhs.starts_with("invoke-webrequest") || rhs.starts_with("invoke-restmethod") {
                    ps.bind_response(var, resp, rhs.starts_with("invoke-restmethod"));
                }
            }
            if let Some(Some((_, Some(out)))) = Some(r.replay.as_ref())
                && let Some((_, var, prop)) = a.binds.iter().find(|(i, _, _)| *i == k)
            {
                let v = match prop {
                    Some(p) => out
                        .as_object()
                        .and_then(|o| o.iter().find(|(ok, _)| ok.eq_ignore_ascii_case(p)))
                        .map(|(_, v)| v.clone()),
                    None => out.get("Id").or_else(|| out.get("id")).cloned(),
                };
                // `$group.ObjectId` reads a property of the bound object.
                if prop.is_none()
                    && let Some(o) = out.as_object()
                {
                    for (k, pv) in o {
                        if let Value::String(s) = pv {
                            learned.bind(&format!("{var}.{k}"), s);
                        }
                    }
                }
                if let Some(Value::String(v)) = v {
                    learned.bind(var, &v);
                }
            }
            results.push(r);
        }
        if powershell {
            while cursor < a.logical.len() {
                evals.extend(eval_local(&mut ps, a, cursor, opts.world));
                cursor += 1;
            }
        }
        evals_by_block.push(evals);
        // The example output after a replayed command tells which of the doc's sample
        // values later steps copy from it.
        if let Some(Some((_, Some(out)))) = results.last().map(|r| r.replay.as_ref())
            && let Some(next) = blocks.get(i + 1)
            && next.class.kind == BlockKind::ExampleResponse
            && let Some(doc) = documented_output(next)
        {
            learned.learn(&doc, out);
        }
        set_by_block.push(ps.changed_since(&before));
        exec.push(results);
    }
    let coverage: Vec<&CoverageEntry> = opts
        .coverage
        .iter()
        .filter(|c| article_matches(&c.article, name))
        .collect();
    let mut reports = Vec::with_capacity(blocks.len());
    let mut last_actionable: Option<usize> = None;
    let mut paired: Vec<bool> = vec![false; blocks.len()];
    for (i, a) in blocks.iter().enumerate() {
        let block_findings: Vec<Finding> = findings
            .iter()
            .filter(|f| f.block == Some(a.block.index))
            .cloned()
            .collect();
        let mut response_to = None;
        let (status, reason) = if a.class.kind.is_actionable() || !a.ops.is_empty() {
            last_actionable = Some(i);
            actionable_status(a, &exec[i], &block_findings)
        } else if a.class.kind == BlockKind::ExampleResponse {
            let req = last_actionable
                .filter(|&r| !paired[r] && section_key(&blocks[r]) == section_key(a) && i - r <= 4);
            if let Some(r) = req {
                paired[r] = true;
                response_to = Some(blocks[r].block.index);
            }
            response_status(
                a,
                req.map(|r| (&blocks[r], exec[r].as_slice())),
                &block_findings,
                opts.world,
            )
        } else {
            match other_status(a, &block_findings) {
                (Status::NotCheckable, _) if a.class.detail == "powershell-local" => {
                    local_status(&evals_by_block[i], &set_by_block[i])
                }
                other => other,
            }
        };
        let covered_by = coverage
            .iter()
            .filter(|c| c.start_line <= a.block.end_line && c.end_line >= a.block.start_line)
            .map(|c| format!("{}/{}", c.scenario, c.step))
            .collect();
        reports.push(BlockReport {
            index: a.block.index,
            start_line: a.block.start_line,
            end_line: a.block.end_line,
            article_title: a.block.article_title.clone(),
            heading: a.block.heading.clone(),
            info: a.block.info.clone(),
            kind: a.class.kind,
            detail: a.class.detail.clone(),
            kind_reason: a.class.reason.clone(),
            status,
            reason,
            operations: a.ops.iter().map(OpSummary::from).collect(),
            findings: block_findings,
            covered_by,
            response_to,
        });
    }
    ArticleReport::new(name, format, reports, findings)
}

fn article_matches(entry: &str, name: &str) -> bool {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    base(entry) == base(name)
}

fn first_with(findings: &[Finding], sev: Severity) -> Option<&Finding> {
    findings.iter().find(|f| f.severity == sev)
}

fn with_more(f: &Finding, all: &[Finding], sev: Severity) -> String {
    let n = all.iter().filter(|x| x.severity == sev).count();
    if n > 1 {
        format!("L{}: {} (+{} more)", f.line, f.message, n - 1)
    } else {
        format!("L{}: {}", f.line, f.message)
    }
}

/// `Code: message` of an ARM (`{"error":{"code","message"}}`) or OAuth
/// (`{"error","error_description"}`) error body; else the start of the body.
fn error_summary(body: &str) -> String {
    let cut = |s: &str, n: usize| {
        if s.chars().count() > n {
            format!("{}...", s.chars().take(n).collect::<String>())
        } else {
            s.to_string()
        }
    };
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let e = v.get("error").unwrap_or(&Value::Null);
        let (code, msg) = match e {
            Value::Object(o) => (
                o.get("code").and_then(Value::as_str),
                o.get("message").and_then(Value::as_str),
            ),
            Value::String(c) => (
                Some(c.as_str()),
                v.get("error_description").and_then(Value::as_str),
            ),
            _ => (None, None),
        };
        if let Some(c) = code {
            // Compute wraps the real cause in its message: show the innermost one.
            let inner = msg.and_then(|m| {
                let i = m.rfind("\"message\":\"")? + "\"message\":\"".len();
                let rest = &m[i..];
                Some(rest[..rest.find('"').unwrap_or(rest.len())].to_string())
            });
            return match (msg, inner) {
                (Some(_), Some(inner)) => format!("{c}: {}", cut(&inner, 300)),
                (Some(m), None) => format!("{c}: {}", cut(m, 300)),
                (None, _) => c.to_string(),
            };
        }
    }
    let b = body.trim().trim_start_matches('\u{feff}');
    // Storage's XML errors: `<Code>`, and the detail when there is one.
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let i = b.find(&open)? + open.len();
        let j = b[i..].find(&format!("</{t}>"))? + i;
        Some(b[i..j].trim().to_string())
    };
    if let Some(code) = tag("Code") {
        let detail = tag("AuthenticationErrorDetail")
            .or_else(|| tag("Message").map(|m| m.lines().next().unwrap_or_default().to_string()))
            .unwrap_or_default();
        return format!("{code}: {}", cut(&detail, 300));
    }
    if b.is_empty() {
        "(empty body)".into()
    } else {
        cut(b, 200)
    }
}

fn actionable_status(
    a: &BlockAnalysis,
    results: &[ExecResult],
    findings: &[Finding],
) -> (Status, String) {
    if let Some(f) = first_with(findings, Severity::Error) {
        return (Status::Broken, with_more(f, findings, Severity::Error));
    }
    for r in results {
        if let Some(e) = &r.tool_error {
            return (
                Status::Broken,
                format!("L{}: replayed, the tool stops before sending: {e}", r.line),
            );
        }
        if let Ok(resp) = &r.outcome
            && resp.status >= 400
        {
            return (
                Status::Broken,
                format!(
                    "L{}: service answered {} {}",
                    r.line,
                    resp.status,
                    error_summary(&resp.body)
                ),
            );
        }
    }
    if let Some(f) = first_with(findings, Severity::Warning) {
        return (Status::Drifted, with_more(f, findings, Severity::Warning));
    }
    // Commands the checker did not run: the block is only partly checked.
    let skipped: Vec<String> = a
        .ops
        .iter()
        .filter_map(|o| match &o.action {
            Action::Unmapped { why } if !results.is_empty() && !is_executable(o) => {
                Some(format!("L{}: {why}", o.line))
            }
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        return (
            Status::NotCheckable,
            format!(
                "partly checked: the other commands ran; {}",
                skipped.join("; ")
            ),
        );
    }
    if results.is_empty() {
        let why = if a.ops.is_empty() {
            "no operation recognised in the block".to_string()
        } else {
            let local: Vec<String> = a
                .ops
                .iter()
                .map(|o| match &o.action {
                    Action::Unmapped { why } => why.clone(),
                    Action::SignIn { .. } => "sign-in of the tool".into(),
                    Action::OperatorToken { .. } => "operator token from the CLI".into(),
                    Action::DataPlane { what } => format!("data-plane tool command ({what})"),
                    _ => "local step".into(),
                })
                .collect();
            format!("parsed; nothing to execute: {}", local.join("; "))
        };
        return (Status::NotCheckable, why);
    }
    if let Some(r) = results.iter().find(|r| r.outcome.is_err()) {
        let msg = r.outcome.as_ref().err().cloned().unwrap_or_default();
        return (
            Status::NotCheckable,
            format!("parsed and statically consistent; L{}: {msg}", r.line),
        );
    }
    let unresolved: Vec<&String> = results.iter().flat_map(|r| r.unresolved.iter()).collect();
    let inferred = results.iter().all(|r| r.inferred);
    let mut reason = if inferred {
        "the request the command maps to succeeded".to_string()
    } else {
        "request succeeded".to_string()
    };
    if !unresolved.is_empty() {
        let _ = write!(
            reason,
            " (placeholders left as written: {})",
            unresolved
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    (Status::Works, reason)
}

/// The value at a `compare` path (`a.b[0].c`).
fn value_at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (key, idx) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn response_status(
    a: &BlockAnalysis,
    req: Option<(&BlockAnalysis, &[ExecResult])>,
    findings: &[Finding],
    world: &World,
) -> (Status, String) {
    if let Some(f) = first_with(findings, Severity::Error) {
        return (Status::Broken, with_more(f, findings, Severity::Error));
    }
    if let Some(w) = first_with(findings, Severity::Warning) {
        return (Status::Drifted, with_more(w, findings, Severity::Warning));
    }
    let Some((rb, results)) = req else {
        return (
            Status::NotCheckable,
            "no request or command precedes this example output".into(),
        );
    };
    let Some(last) = results.last() else {
        return (
            Status::NotCheckable,
            format!(
                "output of the block at L{} which has nothing to execute",
                rb.block.start_line
            ),
        );
    };
    let resp = match &last.outcome {
        Err(e) => {
            return (
                Status::NotCheckable,
                format!("output of L{}, which was not executed: {e}", last.line),
            );
        }
        Ok(r) => r,
    };
    if resp.status >= 400 {
        return (
            Status::Broken,
            format!(
                "the request at L{} failed ({}), so this output cannot be produced",
                last.line, resp.status
            ),
        );
    }
    let listing = (a.class.detail == "powershell-object")
        .then(|| tool::parse_listing(&a.block.raw()))
        .flatten();
    let actual: Value = if last.inferred {
        match &last.replay {
            Some((Output::Nothing, _)) => {
                return (
                    Status::Drifted,
                    format!(
                        "the command at L{} prints nothing with the current tool; the doc shows output",
                        last.line
                    ),
                );
            }
            Some((_, Some(out))) => out.clone(),
            Some((_, None)) => {
                return (
                    Status::NotCheckable,
                    format!(
                        "the command at L{} succeeded but its printed output could not be rebuilt",
                        last.line
                    ),
                );
            }
            None => {
                return (
                    Status::NotCheckable,
                    format!(
                        "output of a CLI/PowerShell command (L{}) the checker does not replay",
                        last.line
                    ),
                );
            }
        }
    } else if listing.is_some() {
        tool::web_response_object(resp)
    } else if !matches!(a.json, Some(Ok(_))) {
        return (
            Status::NotCheckable,
            format!("{} output is not compared (only JSON is)", a.class.detail),
        );
    } else {
        match serde_json::from_str::<Value>(&resp.body) {
            Ok(v) => v,
            Err(_) => {
                return (
                    Status::Drifted,
                    format!("the service at L{} did not return JSON", last.line),
                );
            }
        }
    };
    if let Some(doc) = &listing {
        return listing_status(a, doc, &actual, last.line, world);
    }
    let doc = match &a.json {
        Some(Ok(j)) => &j.value,
        _ => {
            return (
                Status::NotCheckable,
                format!("{} output is not compared (only JSON is)", a.class.detail),
            );
        }
    };
    // JSON that shares no field with the response is not its output (request parameters the
    // prose introduces, a different call's result).
    if let (Value::Object(d), Value::Object(act)) = (doc, &actual)
        && d.len() >= 2
        && !act.is_empty()
        && !d
            .keys()
            .any(|k| act.keys().any(|ak| ak.eq_ignore_ascii_case(k)))
    {
        return (
            Status::NotCheckable,
            format!(
                "shares no field with the response of L{}: not that request's output (request parameters or another call's result); checked as JSON only",
                last.line
            ),
        );
    }
    let mut diffs = compare(doc, &actual);
    if last.inferred {
        for d in &mut diffs {
            d.message = d
                .message
                .replace(
                    "service response does not have it",
                    "the tool's output does not have it",
                )
                .replace("service returns", "the tool prints");
        }
    }
    // A value the world filled in (the reader's own resource group, VM...) where the doc
    // shows its sample name is not drift.
    let filled = |d: &Difference| {
        value_at(&actual, &d.path)
            .and_then(Value::as_str)
            .is_some_and(|s| {
                world
                    .values()
                    .any(|w| !w.is_empty() && (s == w || (w.len() >= 8 && s.contains(w))))
            })
            && value_at(doc, &d.path).is_some_and(Value::is_string)
    };
    // The world's VM has both identity kinds; a tutorial's VM may have only one.
    let world_identity = |d: &Difference| {
        d.path.ends_with("identity.type")
            && matches!(
                (value_at(doc, &d.path), value_at(&actual, &d.path)),
                (Some(Value::String(ds)), Some(Value::String(a))) if a.split(", ").any(|p| p.eq_ignore_ascii_case(ds))
            )
    };
    let drift: Vec<&Difference> = diffs
        .iter()
        .filter(|d| d.drift && !filled(d) && !world_identity(d))
        .collect();
    if drift.is_empty() {
        let extra = diffs.len();
        if extra > 0 {
            (
                Status::Works,
                format!(
                    "matches the response of L{} ({extra} extra field(s) the doc leaves out)",
                    last.line
                ),
            )
        } else {
            (
                Status::Works,
                format!("matches the response of L{}", last.line),
            )
        }
    } else {
        let msgs: Vec<String> = drift
            .iter()
            .map(|d| {
                let key = d.path.rsplit('.').next().unwrap_or(&d.path);
                let key = key.split('[').next().unwrap_or(key);
                match find_line(&a.block, &format!("\"{key}\"")) {
                    Some(l) => format!("L{l}: {}", d.message),
                    None => d.message.clone(),
                }
            })
            .collect();
        (Status::Drifted, msgs.join("; "))
    }
}

/// Compare a PowerShell object listing with the object the cmdlet (or `Invoke-WebRequest`)
/// returns: every property the doc lists must exist, and agree where the doc's value is
/// not a sample, truncated or a nested object.
fn listing_status(
    a: &BlockAnalysis,
    doc: &serde_json::Map<String, Value>,
    actual: &Value,
    line: usize,
    world: &World,
) -> (Status, String) {
    let mut drift = Vec::new();
    for (k, dv) in doc {
        let d = dv.as_str().unwrap_or_default();
        let at = find_line(&a.block, k).unwrap_or(a.block.content_start);
        let found = actual
            .as_object()
            .and_then(|o| o.iter().find(|(ak, _)| ak.eq_ignore_ascii_case(k)));
        match found {
            None => drift.push(format!(
                "L{at}: `{k}`: the doc lists the property, the object has none"
            )),
            Some((_, av)) => {
                let filled = av.as_str().is_some_and(|s| {
                    world
                        .values()
                        .any(|w| !w.is_empty() && (s == w || (w.len() >= 8 && s.contains(w))))
                });
                if !filled && !tool::listing_value_agrees(d, av) {
                    let shown = match av {
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
                        other => other.to_string(),
                    };
                    let shown: String = shown.chars().take(80).collect();
                    drift.push(format!("L{at}: `{k}`: doc shows `{d}`, actual `{shown}`"));
                }
            }
        }
    }
    if drift.is_empty() {
        (
            Status::Works,
            format!("every property listed agrees with the object of L{line}"),
        )
    } else {
        (Status::Drifted, drift.join("; "))
    }
}

fn other_status(a: &BlockAnalysis, findings: &[Finding]) -> (Status, String) {
    if let Some(f) = first_with(findings, Severity::Error) {
        return (Status::Broken, with_more(f, findings, Severity::Error));
    }
    if let Some(f) = first_with(findings, Severity::Warning) {
        return (Status::Drifted, with_more(f, findings, Severity::Warning));
    }
    let why = match a.class.kind {
        BlockKind::SourceCode => format!(
            "{} source sample: not compiled or run by the checker",
            a.class.detail
        ),
        BlockKind::Template => {
            "template: api-versions and identity shapes checked statically; not deployed".into()
        }
        BlockKind::RequestBody => "request body: JSON and identity shape checked statically".into(),
        _ => format!("not checkable: {}", a.class.reason),
    };
    (Status::NotCheckable, why)
}
