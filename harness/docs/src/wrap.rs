//! Re-joining of command lines: explicit continuations (`\`, backtick) and the
//! line breaks the PDF export inserted into long commands. Every logical line
//! keeps the source line span it came from.

use serde::Serialize;

/// One logical command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogicalLine {
    pub text: String,
    /// 1-based first source line.
    pub start_line: usize,
    /// 1-based last source line.
    pub end_line: usize,
    /// True when lines were joined without an explicit continuation character.
    pub rewrapped: bool,
}

/// Words that start a new command (so a line starting with one is not a continuation).
const COMMAND_STARTS: &[&str] = &[
    "curl",
    "az",
    "echo",
    "ssh",
    "cat",
    "sudo",
    "export",
    "set",
    "cd",
    "ls",
    "wget",
    "http",
    "python",
    "dotnet",
    "go",
    "java",
    "PS",
    "Connect-",
    "Install-",
    "Import-",
    "Login-",
    "Add-",
    "Get-",
    "New-",
    "Set-",
    "Update-",
    "Remove-",
    "Invoke-",
    "Select-",
    "Write-",
    "ConvertFrom-",
    "ConvertTo-",
    "Register-",
    "Start-",
    "Stop-",
    "Restart-",
    "Disconnect-",
];

fn starts_new_command(t: &str) -> bool {
    if t.starts_with('$') && t.contains('=') && !t.starts_with("$filter") {
        return true;
    }
    if t.starts_with('#') || t.starts_with("//") {
        return true;
    }
    COMMAND_STARTS.iter().any(|w| {
        if w.ends_with('-') {
            t.starts_with(w)
        } else {
            t == *w || t.starts_with(&format!("{w} "))
        }
    })
}

/// Quote state at the end of `s`, given the state at its start.
fn quote_state(s: &str, mut state: Option<char>) -> Option<char> {
    let mut prev = '\0';
    for c in s.chars() {
        match state {
            None => {
                if (c == '\'' || c == '"') && prev != '\\' && prev != '`' {
                    state = Some(c);
                }
            }
            Some(q) => {
                if c == q && prev != '\\' && prev != '`' {
                    state = None;
                }
            }
        }
        prev = c;
    }
    state
}

fn brace_depth(s: &str) -> i64 {
    let mut d = 0i64;
    let mut q: Option<char> = None;
    for c in s.chars() {
        match q {
            Some(x) if c == x => q = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => q = Some(c),
                '{' | '(' => d += 1,
                '}' | ')' => d -= 1,
                _ => {}
            },
        }
    }
    d
}

/// A `<PLACEHOLDER` opened on this line and not closed.
fn open_placeholder(s: &str) -> bool {
    if let Some(pos) = s.rfind('<') {
        let rest = &s[pos + 1..];
        !rest.contains('>') && rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
    } else {
        false
    }
}

/// Public form of the open-placeholder test (used by the raw HTTP parser).
pub fn ends_in_open_placeholder(s: &str) -> bool {
    open_placeholder(s)
}

/// Does the text end with a parameter name that still expects a value?
fn ends_with_param(t: &str) -> bool {
    let last = t.split_whitespace().last().unwrap_or("");
    let is_param = last.len() > 1
        && last.starts_with('-')
        && last[1..]
            .trim_start_matches('-')
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic());
    is_param && !last.eq_ignore_ascii_case("-UseBasicParsing")
}

fn join_without_space(prev: &str, next: &str, quote: char) -> bool {
    let p = prev.trim_end();
    if open_placeholder(p) {
        return false;
    }
    // Inside a quoted JSON body (`-d '{...`) the export broke a compact line: no space.
    if let Some(q) = p.rfind(quote)
        && p[q + quote.len_utf8()..]
            .trim_start()
            .starts_with(['{', '['])
    {
        return true;
    }
    p.ends_with(['-', '?', '/', '=', '&', ':', '%', '.'])
        || next.starts_with(['&', '?', '=', '/', '%'])
}

/// Split block lines into logical command lines.
///
/// `first_line` is the 1-based source line of `lines[0]`.
pub fn logical_lines(lines: &[String], first_line: usize) -> Vec<LogicalLine> {
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut cur: Option<LogicalLine> = None;
    let mut quote: Option<char> = None;
    for (i, raw) in lines.iter().enumerate() {
        let lineno = first_line + i;
        let t = raw.trim();
        if let Some(mut c) = cur.take() {
            let prev = c.text.clone();
            let explicit = prev.ends_with('\\') || prev.ends_with('`');
            let continues = if t.is_empty() {
                explicit || quote.is_some()
            } else if explicit
                || quote.is_some()
                || open_placeholder(&prev)
                || prev.ends_with(" -")
                || prev.ends_with(" --")
                || prev == "-"
                || brace_depth(&prev) > 0
            {
                true
            } else if starts_new_command(t) {
                false
            } else {
                ends_with_param(&prev)
                    || (t.starts_with('-')
                        && t.chars()
                            .nth(1)
                            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '-'))
                    || t.starts_with("@{")
                    || t.starts_with("http")
                    || t.starts_with('\'')
                    || t.starts_with('"')
                    || t.starts_with('<')
                    || t.starts_with('|')
            };
            if continues {
                if explicit {
                    c.text.pop();
                    c.text = c.text.trim_end().to_string();
                    c.text.push(' ');
                    c.text.push_str(t);
                } else {
                    c.rewrapped = true;
                    if quote.is_some_and(|q| join_without_space(&prev, t, q))
                        || prev.ends_with(" -")
                        || prev.ends_with(" --")
                        || prev == "-"
                    {
                        c.text.push_str(t);
                    } else if !t.is_empty() {
                        c.text.push(' ');
                        c.text.push_str(t);
                    }
                }
                c.end_line = lineno;
                quote = quote_state(t, quote);
                cur = Some(c);
                continue;
            }
            out.push(c);
        }
        if t.is_empty() {
            quote = None;
            continue;
        }
        quote = quote_state(t, None);
        cur = Some(LogicalLine {
            text: t.to_string(),
            start_line: lineno,
            end_line: lineno,
            rewrapped: false,
        });
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ll(text: &str) -> Vec<LogicalLine> {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        logical_lines(&lines, 10)
    }

    #[rstest]
    #[case::dash_split(
        "Invoke-WebRequest -Uri https://x/webhdfs/v1/?op=LISTSTATUS -\nHeaders @{Authorization=\"Bearer $AccessToken\"}",
        "Invoke-WebRequest -Uri https://x/webhdfs/v1/?op=LISTSTATUS -Headers @{Authorization=\"Bearer $AccessToken\"}"
    )]
    #[case::quoted_query(
        "curl 'https://graph.windows.net/myorganization/servicePrincipals?\n$filter=startswith%28displayName%2C%27myVM%27%29&api-version=1.6' -H \"Authorization: Bearer <ACCESS\nTOKEN>\"",
        "curl 'https://graph.windows.net/myorganization/servicePrincipals?$filter=startswith%28displayName%2C%27myVM%27%29&api-version=1.6' -H \"Authorization: Bearer <ACCESS TOKEN>\""
    )]
    #[case::api_dash(
        "curl \"https://graph.windows.net/x?api-\nversion=1.6\" -H \"Authorization: Bearer\n<ACCESS TOKEN>\"",
        "curl \"https://graph.windows.net/x?api-version=1.6\" -H \"Authorization: Bearer <ACCESS TOKEN>\""
    )]
    #[case::uri_next_line(
        "$r = Invoke-WebRequest -Uri\nhttps://a/b?op=CREATE -Method PUT -\nHeaders @{A=\"b\"} -Infile t.txt",
        "$r = Invoke-WebRequest -Uri https://a/b?op=CREATE -Method PUT -Headers @{A=\"b\"} -Infile t.txt"
    )]
    #[case::backtick(
        "New-AzureRmVm `\n    -Name \"myVM\" `\n    -Location \"East US\"",
        "New-AzureRmVm -Name \"myVM\" -Location \"East US\""
    )]
    #[case::bash_backslash("az vm create \\\n  --name x", "az vm create --name x")]
    #[case::split_double_dash(
        "az storage blob upload -c c --account-name a --\naccount-key <KEY>",
        "az storage blob upload -c c --account-name a --account-key <KEY>"
    )]
    fn joins_one_command(#[case] input: &str, #[case] expected: &str) {
        let out = ll(input);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].text, expected);
        assert_eq!(out[0].start_line, 10);
        assert_eq!(out[0].end_line, 10 + input.lines().count() - 1);
    }

    #[rstest]
    #[case("az login\naz group create -n x -l westus", 2)]
    #[case("$vm = Get-AzVM -Name a\nUpdate-AzVM -VM $vm", 2)]
    #[case(
        "$settings = @{ \"port\" = 50342 }\nSet-AzVMExtension -Name\n\"x\" -Type y",
        2
    )]
    fn keeps_commands_apart(#[case] input: &str, #[case] n: usize) {
        assert_eq!(ll(input).len(), n, "{:?}", ll(input));
    }
}
