//! PowerShell: a small tokenizer, hashtable literals, `Invoke-WebRequest` /
//! `Invoke-RestMethod`, and generic cmdlet invocations (Az and AzureRM).

use super::{HttpRequest, ParseError, RequestTool};
use serde::Serialize;

/// One PowerShell token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PsToken {
    /// Bare word: cmdlet name, `-Parameter`, unquoted argument, `$variable`.
    Word(String),
    /// Quoted string (quotes removed, escapes resolved; `$var` kept literally).
    Str { value: String, quote: char },
    /// `@{ ... }` hashtable literal; the text between the braces.
    Hashtable(String),
    /// `( ... )` sub-expression; the text between the parentheses.
    Paren(String),
    /// `|`, `;` or `=`.
    Op(char),
}

/// Tokenize one logical line. Never fails: unterminated constructs run to the end.
pub fn tokenize(s: &str) -> Vec<PsToken> {
    use crate::placeholder::unprotect;
    tokenize_raw(&crate::placeholder::protect(s))
        .into_iter()
        .map(|t| match t {
            PsToken::Word(w) => PsToken::Word(unprotect(&w)),
            PsToken::Str { value, quote } => PsToken::Str {
                value: unprotect(&value),
                quote,
            },
            PsToken::Hashtable(h) => PsToken::Hashtable(unprotect(&h)),
            PsToken::Paren(p) => PsToken::Paren(unprotect(&p)),
            op @ PsToken::Op(_) => op,
        })
        .collect()
}

fn tokenize_raw(s: &str) -> Vec<PsToken> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '@' && chars.get(i + 1) == Some(&'{') {
            let (inner, next) = balanced(&chars, i + 1, '{', '}');
            out.push(PsToken::Hashtable(inner));
            i = next;
        } else if c == '(' {
            let (inner, next) = balanced(&chars, i, '(', ')');
            out.push(PsToken::Paren(inner));
            i = next;
        } else if c == '\'' || c == '"' || c == '\u{2018}' || c == '\u{201c}' {
            let (value, next) = quoted(&chars, i);
            out.push(PsToken::Str {
                value,
                quote: if c == '\'' || c == '\u{2018}' {
                    '\''
                } else {
                    '"'
                },
            });
            i = next;
        } else if c == '|' || c == ';' || c == '=' {
            out.push(PsToken::Op(c));
            i += 1;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '|' | ';' | '(' | ')')
            {
                if chars[i] == '='
                    && i > start
                    && !chars[start..i].contains(&'?')
                    && !chars[start..i].contains(&':')
                {
                    break;
                }
                i += 1;
            }
            if i == start {
                // stray ')' or similar
                i += 1;
                continue;
            }
            out.push(PsToken::Word(chars[start..i].iter().collect()));
        }
    }
    out
}

fn balanced(chars: &[char], open_at: usize, open: char, close: char) -> (String, usize) {
    let mut depth = 0usize;
    let mut i = open_at;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == open => depth += 1,
            None if c == close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return (chars[open_at + 1..i].iter().collect(), i + 1);
                }
            }
            Some(_) | None => {}
        }
        i += 1;
    }
    (
        chars[(open_at + 1).min(chars.len())..].iter().collect(),
        chars.len(),
    )
}

fn quoted(chars: &[char], at: usize) -> (String, usize) {
    let open = chars[at];
    let close = match open {
        '\u{2018}' => '\u{2019}',
        '\u{201c}' => '\u{201d}',
        c => c,
    };
    let mut out = String::new();
    let mut i = at + 1;
    while i < chars.len() {
        let c = chars[i];
        if open == '"' && c == '`' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == close {
            if chars.get(i + 1) == Some(&close) && close != '\u{201d}' {
                out.push(c);
                i += 2;
                continue;
            }
            return (out, i + 1);
        }
        out.push(c);
        i += 1;
    }
    (out, chars.len())
}

/// A parsed hashtable literal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hashtable {
    pub entries: Vec<(String, String)>,
    /// Syntax problems (e.g. `@{'Metadata':'true'}` uses `:` instead of `=`).
    pub issues: Vec<String>,
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    for (a, b) in [
        ('\'', '\''),
        ('"', '"'),
        ('\u{2018}', '\u{2019}'),
        ('\u{201c}', '\u{201d}'),
    ] {
        if t.len() >= 2 && t.starts_with(a) && t.ends_with(b) {
            return t[a.len_utf8()..t.len() - b.len_utf8()].to_string();
        }
    }
    t.to_string()
}

fn split_top(s: &str, seps: &[char]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    cur.push(c);
                } else if c == '{' || c == '(' {
                    depth += 1;
                    cur.push(c);
                } else if c == '}' || c == ')' {
                    depth -= 1;
                    cur.push(c);
                } else if depth == 0 && seps.contains(&c) {
                    parts.push(std::mem::take(&mut cur));
                } else {
                    cur.push(c);
                }
            }
        }
    }
    parts.push(cur);
    parts
}

/// Parse the inside of `@{ ... }`.
pub fn parse_hashtable(inner: &str) -> Hashtable {
    let mut h = Hashtable::default();
    for entry in split_top(inner, &[';', '\n']) {
        let e = entry.trim();
        if e.is_empty() {
            continue;
        }
        let eq = split_top(e, &['=']);
        if eq.len() >= 2 {
            let key = unquote(&eq[0]);
            let value = unquote(&eq[1..].join("="));
            h.entries.push((key, value));
            continue;
        }
        let colon = split_top(e, &[':']);
        if colon.len() >= 2 {
            let key = unquote(&colon[0]);
            let value = unquote(&colon[1..].join(":"));
            h.issues.push(format!(
                "hashtable entry `{e}` uses `:` instead of `=`; PowerShell rejects `@{{{e}}}` (write `@{{{key}=\"{value}\"}}`)"
            ));
            h.entries.push((key, value));
        } else {
            h.issues.push(format!("hashtable entry `{e}` has no `=`"));
        }
    }
    h
}

/// A parameter value of a cmdlet call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PsValue {
    Text(String),
    Hashtable(Hashtable),
    /// Sub-expression or variable whose value is not known statically.
    Expr(String),
}

impl PsValue {
    pub fn as_text(&self) -> String {
        match self {
            PsValue::Text(s) | PsValue::Expr(s) => s.clone(),
            PsValue::Hashtable(h) => {
                let parts: Vec<String> =
                    h.entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("@{{{}}}", parts.join(";"))
            }
        }
    }
}

/// One cmdlet invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmdlet {
    /// As written, e.g. `New-AzureRmUserAssignedIdentity`.
    pub name: String,
    pub verb: String,
    /// Noun without the module prefix, e.g. `UserAssignedIdentity`.
    pub noun: String,
    pub module: CmdletModule,
    /// `(parameter name without dash, value)`; switches have `None`.
    pub params: Vec<(String, Option<PsValue>)>,
    /// Positional arguments.
    pub positional: Vec<PsValue>,
}

/// Which module family a cmdlet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CmdletModule {
    Az,
    AzureRm,
    AzureAd,
    Other,
}

impl Cmdlet {
    /// Value of a parameter (case-insensitive, PowerShell-style unambiguous prefix allowed).
    pub fn param(&self, name: &str) -> Option<&PsValue> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_ref())
    }

    pub fn param_text(&self, name: &str) -> Option<String> {
        self.param(name).map(PsValue::as_text)
    }

    pub fn has_switch(&self, name: &str) -> bool {
        self.params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

const VERBS: &[&str] = &[
    "Add",
    "Connect",
    "ConvertFrom",
    "ConvertTo",
    "Disconnect",
    "Get",
    "Import",
    "Install",
    "Invoke",
    "Login",
    "New",
    "Register",
    "Remove",
    "Restart",
    "Select",
    "Set",
    "Start",
    "Stop",
    "Update",
    "Write",
    "Out",
    "Format",
];

fn split_cmdlet_name(word: &str) -> Option<(String, String, CmdletModule)> {
    let (verb, rest) = word.split_once('-')?;
    let verb = VERBS.iter().find(|v| v.eq_ignore_ascii_case(verb))?;
    if rest.is_empty() || !rest.chars().next().is_some_and(char::is_alphabetic) {
        return None;
    }
    let (module, noun) = if let Some(n) = strip_prefix_ci(rest, "AzureRm") {
        (CmdletModule::AzureRm, n)
    } else if let Some(n) = strip_prefix_ci(rest, "AzureAd") {
        (CmdletModule::AzureAd, n)
    } else if let Some(n) =
        strip_prefix_ci(rest, "Az").filter(|n| n.starts_with(char::is_uppercase))
    {
        (CmdletModule::Az, n)
    } else {
        (CmdletModule::Other, rest)
    };
    Some(((*verb).to_string(), noun.to_string(), module))
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    if s.len() >= p.len() && s.is_char_boundary(p.len()) && s[..p.len()].eq_ignore_ascii_case(p) {
        Some(&s[p.len()..])
    } else {
        None
    }
}

fn token_value(t: &PsToken) -> Option<PsValue> {
    match t {
        PsToken::Word(w) if w.starts_with('$') => Some(PsValue::Expr(w.clone())),
        PsToken::Word(w) => Some(PsValue::Text(w.clone())),
        PsToken::Str { value, .. } => Some(PsValue::Text(value.clone())),
        PsToken::Hashtable(h) => Some(PsValue::Hashtable(parse_hashtable(h))),
        PsToken::Paren(p) => Some(PsValue::Expr(format!("({p})"))),
        PsToken::Op(_) => None,
    }
}

fn is_param(t: &PsToken) -> Option<(String, Option<String>)> {
    if let PsToken::Word(w) = t
        && w.len() > 1
        && w.starts_with('-')
        && w[1..].chars().next().is_some_and(char::is_alphabetic)
    {
        let body = &w[1..];
        return Some(match body.split_once(':') {
            Some((k, v)) if !k.is_empty() => (k.to_string(), Some(v.to_string())),
            _ => (body.to_string(), None),
        });
    }
    None
}

/// All cmdlet invocations on a logical line, including those inside `( ... )`.
pub fn cmdlets(line: &str) -> Vec<Cmdlet> {
    let mut out = Vec::new();
    collect_cmdlets(&tokenize(line), &mut out, 0);
    out
}

fn collect_cmdlets(tokens: &[PsToken], out: &mut Vec<Cmdlet>, depth: usize) {
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            PsToken::Paren(inner) if depth < 8 => {
                collect_cmdlets(&tokenize(inner), out, depth + 1);
                i += 1;
            }
            PsToken::Word(w) => {
                if let Some((verb, noun, module)) = split_cmdlet_name(w) {
                    let mut c = Cmdlet {
                        name: w.clone(),
                        verb,
                        noun,
                        module,
                        params: Vec::new(),
                        positional: Vec::new(),
                    };
                    i += 1;
                    while i < tokens.len() {
                        if matches!(tokens[i], PsToken::Op('|' | ';')) {
                            break;
                        }
                        if let Some((name, inline)) = is_param(&tokens[i]) {
                            if let Some(v) = inline {
                                c.params.push((name, Some(PsValue::Text(v))));
                                i += 1;
                                continue;
                            }
                            let next = tokens.get(i + 1);
                            let takes_value = next.is_some_and(|n| {
                                is_param(n).is_none() && !matches!(n, PsToken::Op(_))
                            });
                            if takes_value {
                                c.params.push((name, next.and_then(token_value)));
                                i += 2;
                            } else {
                                c.params.push((name, None));
                                i += 1;
                            }
                        } else {
                            if let PsToken::Paren(inner) = &tokens[i] {
                                collect_cmdlets(&tokenize(inner), out, depth + 1);
                            }
                            if let Some(v) = token_value(&tokens[i]) {
                                c.positional.push(v);
                            }
                            i += 1;
                        }
                    }
                    out.push(c);
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
}

/// Find a parameter by unambiguous prefix among known names.
fn canonical_iwr_param(name: &str) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "Uri",
        "Method",
        "Headers",
        "Body",
        "ContentType",
        "UseBasicParsing",
        "InFile",
        "OutFile",
        "MaximumRedirection",
        "TimeoutSec",
        "UserAgent",
        "Credential",
        "UseDefaultCredentials",
        "WebSession",
        "SessionVariable",
        "Proxy",
        "DisableKeepAlive",
        "PassThru",
    ];
    if let Some(exact) = NAMES.iter().find(|n| n.eq_ignore_ascii_case(name)) {
        return Some(exact);
    }
    let lower = name.to_ascii_lowercase();
    let matches: Vec<&&str> = NAMES
        .iter()
        .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
        .collect();
    if matches.len() == 1 {
        Some(matches[0])
    } else {
        None
    }
}

/// Form-encode like .NET does for a GET `-Body` dictionary.
fn form_encode(entries: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(entries.iter().map(|(k, v)| (k, v)))
        .finish()
}

/// Parse an `Invoke-WebRequest` / `Invoke-RestMethod` call on a logical line.
pub fn parse_web_request(line: &str) -> Result<HttpRequest, ParseError> {
    let all = cmdlets(line);
    let c = all
        .into_iter()
        .find(|c| {
            c.verb == "Invoke"
                && (c.noun.eq_ignore_ascii_case("WebRequest")
                    || c.noun.eq_ignore_ascii_case("RestMethod"))
        })
        .ok_or(ParseError::NotThisTool("Invoke-WebRequest"))?;
    let tool = if c.noun.eq_ignore_ascii_case("RestMethod") {
        RequestTool::InvokeRestMethod
    } else {
        RequestTool::InvokeWebRequest
    };
    let mut issues = Vec::new();
    let mut uri: Option<String> = None;
    let mut method: Option<String> = None;
    let mut headers = Vec::new();
    let mut body_value: Option<PsValue> = None;
    let mut content_type: Option<String> = None;
    for (name, value) in &c.params {
        let Some(canon) = canonical_iwr_param(name) else {
            issues.push(format!("unknown parameter `-{name}`"));
            continue;
        };
        match (canon, value) {
            ("Uri", Some(v)) => uri = Some(v.as_text()),
            ("Method", Some(v)) => method = Some(v.as_text().to_ascii_uppercase()),
            ("Headers", Some(PsValue::Hashtable(h))) => {
                issues.extend(h.issues.iter().cloned());
                headers.extend(h.entries.iter().cloned());
            }
            ("Headers", Some(v)) => issues.push(format!(
                "`-Headers {}` is not a hashtable literal",
                v.as_text()
            )),
            ("Body", Some(v)) => body_value = Some(v.clone()),
            ("ContentType", Some(v)) => content_type = Some(v.as_text()),
            ("Uri" | "Method" | "Headers" | "Body" | "ContentType", None) => {
                issues.push(format!("`-{canon}` has no value"));
            }
            _ => {}
        }
    }
    if uri.is_none() {
        uri = c.positional.first().map(PsValue::as_text);
    }
    let mut url = uri.ok_or(ParseError::NoUrl)?;
    let method = method.unwrap_or_else(|| "GET".into());
    let mut body = None;
    match body_value {
        Some(PsValue::Hashtable(h)) => {
            issues.extend(h.issues.iter().cloned());
            let encoded = form_encode(&h.entries);
            if method == "GET" {
                // PowerShell appends a dictionary body to the query string for GET.
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&encoded);
            } else {
                body = Some(encoded);
                if content_type.is_none() {
                    content_type = Some("application/x-www-form-urlencoded".into());
                }
            }
        }
        Some(v) => body = Some(v.as_text()),
        None => {}
    }
    if let Some(ct) = content_type {
        headers.push(("Content-Type".into(), ct));
    }
    Ok(HttpRequest {
        tool,
        method,
        url,
        headers,
        body,
        issues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::body_to_query(
        "$response = Invoke-WebRequest -Uri http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01 -Body @{resource=\"https://management.azure.com/\"} -Method GET -Headers @{Metadata=\"true\"}",
        "GET",
        "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F",
        &[("Metadata", "true")], None, 0
    )]
    #[case::paren_content(
        "(Invoke-WebRequest -Uri https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>?api-version=2016-06-01 -Method GET -ContentType \"application/json\" -Headers @{ Authorization = \"Bearer $ArmToken\"}).content",
        "GET",
        "https://management.azure.com/subscriptions/<SUBSCRIPTION ID>/resourceGroups/<RESOURCE GROUP>?api-version=2016-06-01",
        &[("Authorization", "Bearer $ArmToken"), ("Content-Type", "application/json")], None, 0
    )]
    #[case::colon_hashtable(
        "$response = Invoke-WebRequest -Uri 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F' -Method GET -Headers @{'Metadata':'true'}",
        "GET",
        "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F",
        &[("Metadata", "true")], None, 1
    )]
    #[case::post_string_body(
        "Invoke-RestMethod -Uri https://x/y -Method POST -Body '{\"a\":1}' -ContentType application/json",
        "POST", "https://x/y", &[("Content-Type", "application/json")], Some("{\"a\":1}"), 0
    )]
    #[case::post_form_body(
        "Invoke-WebRequest -Uri http://localhost:50342/oauth2/token -Method POST -Body @{resource='https://vault.azure.net'}",
        "POST", "http://localhost:50342/oauth2/token",
        &[("Content-Type", "application/x-www-form-urlencoded")], Some("resource=https%3A%2F%2Fvault.azure.net"), 0
    )]
    #[case::positional_and_prefix("iwr-free Invoke-WebRequest 'https://x/z' -Meth Put -Head @{A='b';C=\"d\"}", "PUT", "https://x/z", &[("A", "b"), ("C", "d")], None, 0)]
    fn web_requests(
        #[case] line: &str,
        #[case] method: &str,
        #[case] url: &str,
        #[case] headers: &[(&str, &str)],
        #[case] body: Option<&str>,
        #[case] issues: usize,
    ) {
        let r = parse_web_request(line).unwrap();
        assert_eq!(r.method, method);
        assert_eq!(r.url, url);
        let h: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(h, headers);
        assert_eq!(r.body.as_deref(), body);
        assert_eq!(r.issues.len(), issues, "{:?}", r.issues);
    }

    #[rstest]
    #[case("New-AzUserAssignedIdentity -ResourceGroupName myRG -Name ID1", "New", "UserAssignedIdentity", CmdletModule::Az, &["ResourceGroupName", "Name"])]
    #[case("Get-AzureRmUserAssignedIdentity -ResourceGroupName myResourceGroupVM -Name ID1", "Get", "UserAssignedIdentity", CmdletModule::AzureRm, &["ResourceGroupName", "Name"])]
    #[case("Update-AzVM -ResourceGroupName TestRG -VM $vm -IdentityType \"UserAssigned\" -IdentityID \"/subscriptions/x\"", "Update", "VM", CmdletModule::Az, &["ResourceGroupName", "VM", "IdentityType", "IdentityID"])]
    #[case("New-AzureRmRoleAssignment -ObjectId $spID -RoleDefinitionName \"Reader\" -Scope \"/subscriptions/<SUBSCRIPTIONID>/resourcegroups/rg/\"", "New", "RoleAssignment", CmdletModule::AzureRm, &["ObjectId", "RoleDefinitionName", "Scope"])]
    #[case("Set-AzVMExtension -ResourceGroupName myResourceGroup -Location WestUS -VMName myVM -Name \"ManagedIdentityExtensionForWindows\" -Type \"ManagedIdentityExtensionForWindows\" -Publisher \"Microsoft.ManagedIdentity\" -TypeHandlerVersion \"1.0\" -Settings $settings", "Set", "VMExtension", CmdletModule::Az, &["ResourceGroupName", "Location", "VMName", "Name", "Type", "Publisher", "TypeHandlerVersion", "Settings"])]
    #[case("Update-AzVM -ResourceGroupName myResourceGroup -VM $vm -AssignIdentity:$SystemAssigned", "Update", "VM", CmdletModule::Az, &["ResourceGroupName", "VM", "AssignIdentity"])]
    #[case("$vm = Get-AzureRmVM -ResourceGroupName myResourceGroup -Name myVM", "Get", "VM", CmdletModule::AzureRm, &["ResourceGroupName", "Name"])]
    fn cmdlet_calls(
        #[case] line: &str,
        #[case] verb: &str,
        #[case] noun: &str,
        #[case] module: CmdletModule,
        #[case] params: &[&str],
    ) {
        let cs = cmdlets(line);
        assert_eq!(cs.len(), 1, "{cs:?}");
        assert_eq!(cs[0].verb, verb);
        assert_eq!(cs[0].noun, noun);
        assert_eq!(cs[0].module, module);
        let names: Vec<&str> = cs[0].params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, params);
    }

    #[test]
    fn nested_cmdlet_in_paren() {
        let cs = cmdlets(
            "$spID = (Get-AzureRmUserAssignedIdentity -ResourceGroupName myResourceGroupVM -Name ID1).principalid",
        );
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].param_text("Name").as_deref(), Some("ID1"));
    }

    #[rstest]
    #[case("Metadata=\"true\"", &[("Metadata", "true")], 0)]
    #[case(" Authorization = \"Bearer $ArmToken\"", &[("Authorization", "Bearer $ArmToken")], 0)]
    #[case("'Metadata':'true'", &[("Metadata", "true")], 1)]
    #[case(" \"port\" = 50342 ", &[("port", "50342")], 0)]
    #[case("a=1; b='x=y'", &[("a", "1"), ("b", "x=y")], 0)]
    #[case("garbage", &[], 1)]
    fn hashtables(#[case] inner: &str, #[case] entries: &[(&str, &str)], #[case] issues: usize) {
        let h = parse_hashtable(inner);
        let e: Vec<(&str, &str)> = h
            .entries
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(e, entries);
        assert_eq!(h.issues.len(), issues);
    }
}
