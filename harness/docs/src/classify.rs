//! Block classification: what kind of example a code block is, and why we think so.

use crate::extract::CodeBlock;
use crate::parse::raw_http;
use crate::wrap::LogicalLine;
use serde::Serialize;

/// What a code block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockKind {
    /// curl, Invoke-WebRequest/Invoke-RestMethod, or a raw `GET ... HTTP/1.1` request.
    HttpRequest,
    /// `az ...` commands.
    AzCli,
    /// Az / AzureRM / AzureAD PowerShell cmdlets.
    Cmdlet,
    /// JSON, PowerShell object listing, or raw HTTP response shown as output.
    ExampleResponse,
    /// JSON body printed on its own under "Request body".
    RequestBody,
    /// C#, Java, Go, Python, T-SQL ... samples.
    SourceCode,
    /// ARM deployment template (or template fragment).
    Template,
    Other,
}

impl BlockKind {
    pub fn label(self) -> &'static str {
        match self {
            BlockKind::HttpRequest => "http-request",
            BlockKind::AzCli => "az-cli",
            BlockKind::Cmdlet => "cmdlet",
            BlockKind::ExampleResponse => "example-response",
            BlockKind::RequestBody => "request-body",
            BlockKind::SourceCode => "source-code",
            BlockKind::Template => "template",
            BlockKind::Other => "other",
        }
    }

    /// Blocks that perform a request or command (counted by coverage).
    pub fn is_actionable(self) -> bool {
        matches!(
            self,
            BlockKind::HttpRequest | BlockKind::AzCli | BlockKind::Cmdlet
        )
    }
}

/// Sub-form of an example response or detail of another kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub kind: BlockKind,
    /// e.g. `curl`, `invoke-webrequest`, `raw-http`, `json`, `powershell-object`, `http-response`, `C#`.
    pub detail: String,
    pub reason: String,
}

fn c(kind: BlockKind, detail: &str, reason: impl Into<String>) -> Classification {
    Classification {
        kind,
        detail: detail.to_string(),
        reason: reason.into(),
    }
}

fn word_at_command_position(line: &str, word: &str) -> bool {
    let t = line.trim_start_matches(['$', '(', ' ']);
    let t = t.trim_start();
    t.starts_with(&format!("{word} "))
        || t == word
        || line.contains(&format!("$({word} "))
        || line.contains(&format!("= {word} "))
}

fn is_cmdlet_line(line: &str) -> bool {
    crate::parse::pwsh::cmdlets(line).iter().any(|c| {
        c.module != crate::parse::pwsh::CmdletModule::Other
            || matches!(c.noun.as_str(), "Credential" | "Module")
            || c.verb == "Connect"
    })
}

fn looks_like_ps_object(lines: &[&str]) -> bool {
    let content: Vec<&&str> = lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !matches!(l.trim(), "{" | "}"))
        .collect();
    if content.is_empty() {
        return false;
    }
    let kv = content
        .iter()
        .filter(|l| {
            let t = l.trim_start();
            match t.split_once(':') {
                Some((k, _)) => {
                    let k = k.trim();
                    !k.is_empty()
                        && k.len() < 40
                        && k.chars().all(|c| c.is_ascii_alphanumeric())
                        && k.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                }
                None => false,
            }
        })
        .count();
    kv * 2 >= content.len() && kv >= 2
}

fn is_template(text: &str) -> bool {
    text.contains("deploymentTemplate.json")
        || (text.contains("\"apiVersion\"") && text.contains("\"type\""))
        || text.contains("\"[parameters(")
        || text.contains("\"[variables(")
        || text.contains("\"[resourceGroup()")
        || text.contains("\"[concat(")
        || text.contains("\"[reference(")
}

fn source_language(text: &str, info: &str) -> Option<&'static str> {
    let i = info.to_ascii_lowercase();
    let by_info = match i.as_str() {
        "csharp" | "cs" | "c#" => Some("C#"),
        "java" => Some("Java"),
        "go" | "golang" => Some("Go"),
        "python" | "py" => Some("Python"),
        "javascript" | "js" | "nodejs" => Some("JavaScript"),
        "sql" | "tsql" => Some("T-SQL"),
        _ => None,
    };
    if by_info.is_some() {
        return by_info;
    }
    if text.contains("using System")
        || text.contains("HttpWebRequest")
        || text.contains("new AzureServiceTokenProvider")
        || text.contains("SqlConnection")
        || (text.contains("var ") && text.contains(");"))
    {
        return Some("C#");
    }
    if text.contains("package main") || text.contains("func main") || text.contains(":= ") {
        return Some("Go");
    }
    if text.contains("import java")
        || text.contains("public static void")
        || text.contains("HttpURLConnection")
    {
        return Some("Java");
    }
    if text.contains("import requests") || text.contains("def ") && text.contains("):") {
        return Some("Python");
    }
    let upper = text.to_ascii_uppercase();
    if upper.contains("CREATE USER")
        || upper.contains("ALTER ROLE")
        || upper.contains("FROM EXTERNAL PROVIDER")
    {
        return Some("T-SQL");
    }
    if text.contains("public class")
        || text.contains("static async")
        || text.contains("await ") && text.contains(';')
    {
        return Some("C#");
    }
    None
}

/// Classify a block. `logical` are its re-joined lines; `prev` is the previous block's kind
/// (a JSON block right after a request is its response unless headed "Request body").
pub fn classify(
    block: &CodeBlock,
    logical: &[LogicalLine],
    prev: Option<BlockKind>,
) -> Classification {
    let raw = block.raw();
    let text = raw.trim();
    let info = block.info.to_ascii_lowercase();
    if text.is_empty() {
        return c(BlockKind::Other, "empty", "the block is empty");
    }
    let lines: Vec<&str> = raw.lines().collect();
    let first = logical.first().map_or("", |l| l.text.as_str());

    if let Some(lang) = source_language(text, &info) {
        return c(
            BlockKind::SourceCode,
            lang,
            format!("{lang} source sample (info `{}`)", block.info),
        );
    }
    if first.starts_with("HTTP/1.") || first.starts_with("HTTP/2") {
        return c(
            BlockKind::ExampleResponse,
            "http-response",
            "starts with an HTTP status line",
        );
    }
    if raw_http::is_request_line(first)
        || raw_http::split_inline(first)
            .first()
            .is_some_and(|l| l != first && raw_http::is_request_line(l))
    {
        return c(
            BlockKind::HttpRequest,
            "raw-http",
            format!("raw HTTP request line `{}`", truncate(first, 60)),
        );
    }
    if logical
        .iter()
        .any(|l| word_at_command_position(&l.text, "curl"))
    {
        return c(BlockKind::HttpRequest, "curl", "contains a curl command");
    }
    if logical.iter().any(|l| {
        let lower = l.text.to_ascii_lowercase();
        lower.contains("invoke-webrequest") || lower.contains("invoke-restmethod")
    }) {
        return c(
            BlockKind::HttpRequest,
            "invoke-webrequest",
            "contains Invoke-WebRequest/Invoke-RestMethod",
        );
    }
    if logical
        .iter()
        .any(|l| word_at_command_position(&l.text, "az"))
    {
        return c(BlockKind::AzCli, "az", "contains an `az` command");
    }
    if logical.iter().any(|l| is_cmdlet_line(&l.text)) {
        return c(
            BlockKind::Cmdlet,
            "powershell",
            "contains Az/AzureRM/AzureAD cmdlets",
        );
    }
    if looks_like_ps_object(&lines) {
        return c(
            BlockKind::ExampleResponse,
            "powershell-object",
            "`Name : value` listing printed by PowerShell",
        );
    }
    if text.starts_with('{') || text.starts_with('[') || text.starts_with('"') {
        if is_template(text) {
            return c(
                BlockKind::Template,
                "arm-template",
                "JSON with template expressions or apiVersion/type resources",
            );
        }
        let context = format!("{} {}", block.heading, block.prose).to_ascii_lowercase();
        if context.contains("template") && text.starts_with('"') {
            return c(
                BlockKind::Template,
                "arm-template",
                "JSON fragment to paste into a template (the prose talks about the template)",
            );
        }
        let prose_tail = block.prose.to_ascii_lowercase();
        if block.heading.to_ascii_lowercase().contains("request body")
            || prose_tail.trim_end().ends_with("request body:")
        {
            return c(
                BlockKind::RequestBody,
                "json",
                "JSON under a \"Request body\" heading",
            );
        }
        if context.contains("response")
            || context.contains("return")
            || context.contains("output")
            || prev.is_some_and(BlockKind::is_actionable)
            || info == "json"
        {
            return c(
                BlockKind::ExampleResponse,
                "json",
                "JSON shown as the result of the previous step",
            );
        }
        return c(BlockKind::ExampleResponse, "json", "JSON example");
    }
    if text.starts_with("PS ") || text.starts_with("PS>") {
        return c(BlockKind::Other, "prompt", "PowerShell prompt transcript");
    }
    if logical
        .iter()
        .all(|l| l.text.starts_with('$') || l.text.starts_with('#'))
    {
        return c(
            BlockKind::Other,
            "powershell-local",
            "local PowerShell statements (no cmdlet or request)",
        );
    }
    if logical.iter().any(|l| {
        ["echo ", "ssh ", "cat ", "sudo ", "export "]
            .iter()
            .any(|w| l.text.starts_with(w))
    }) {
        return c(BlockKind::Other, "shell-local", "local shell command");
    }
    if info.starts_with("azurecli") {
        return c(BlockKind::AzCli, "az", "info string says Azure CLI");
    }
    c(
        BlockKind::Other,
        "text",
        "no request, command, response or code recognised",
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrap::logical_lines;
    use rstest::rstest;

    fn block(info: &str, body: &str, heading: &str) -> CodeBlock {
        CodeBlock {
            index: 0,
            start_line: 1,
            end_line: 3,
            content_start: 2,
            info: info.into(),
            lines: body.lines().map(str::to_string).collect(),
            fenced: true,
            nested: false,
            heading: heading.into(),
            article_title: String::new(),
            article_line: 0,
            prose: String::new(),
        }
    }

    #[rstest]
    #[case(
        "",
        "curl 'http://169.254.169.254/x' -H Metadata:true",
        "",
        BlockKind::HttpRequest,
        "curl"
    )]
    #[case(
        "azurepowershell",
        "$response = Invoke-WebRequest -Uri http://x -Method GET",
        "",
        BlockKind::HttpRequest,
        "invoke-webrequest"
    )]
    #[case(
        "",
        "GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01 HTTP/1.1\nMetadata: true",
        "",
        BlockKind::HttpRequest,
        "raw-http"
    )]
    #[case(
        "azurecli-interactive",
        "az identity create -g rg -n id",
        "",
        BlockKind::AzCli,
        "az"
    )]
    #[case(
        "azurepowershell-interactive",
        "New-AzureRmResourceGroup -ResourceGroupName \"x\" -Location \"EastUS\"",
        "",
        BlockKind::Cmdlet,
        "powershell"
    )]
    #[case("json", "{\"a\": 1}", "", BlockKind::ExampleResponse, "json")]
    #[case(
        "",
        "{\"location\": \"westus\"}",
        "Request body",
        BlockKind::RequestBody,
        "json"
    )]
    #[case(
        "azurepowershell",
        "{\nId: /subscriptions/x\nName: ID1\nLocation: westus\n}",
        "",
        BlockKind::ExampleResponse,
        "powershell-object"
    )]
    #[case(
        "",
        "HTTP/1.1 200 OK\nContent-Type: application/json",
        "",
        BlockKind::ExampleResponse,
        "http-response"
    )]
    #[case("csharp", "var x = 1;", "", BlockKind::SourceCode, "C#")]
    #[case("", "package main\nimport \"fmt\"", "", BlockKind::SourceCode, "Go")]
    #[case(
        "json",
        "{\"type\": \"Microsoft.Compute/virtualMachines\", \"apiVersion\": \"2018-06-01\"}",
        "",
        BlockKind::Template,
        "arm-template"
    )]
    #[case("", "echo \"hi\" > test.txt", "", BlockKind::Other, "shell-local")]
    #[case(
        "",
        "$content = $response.Content | ConvertFrom-Json",
        "",
        BlockKind::Other,
        "powershell-local"
    )]
    #[case(
        "",
        "CREATE USER [VMName] FROM EXTERNAL PROVIDER",
        "",
        BlockKind::SourceCode,
        "T-SQL"
    )]
    fn classifies(
        #[case] info: &str,
        #[case] body: &str,
        #[case] heading: &str,
        #[case] kind: BlockKind,
        #[case] detail: &str,
    ) {
        let b = block(info, body, heading);
        let l = logical_lines(&b.lines, 2);
        let got = classify(&b, &l, None);
        assert_eq!(
            (got.kind, got.detail.as_str()),
            (kind, detail),
            "{}",
            got.reason
        );
        assert!(!got.reason.is_empty());
    }
}
