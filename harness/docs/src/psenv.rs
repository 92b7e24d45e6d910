//! PowerShell variables across an article's blocks.
//!
//! The tutorials build values in one block and use them in the next:
//!
//! ```text
//! $params = @{canonicalizedResource="/blob/acct/container";signedResource="c";...}
//! $jsonParams = $params | ConvertTo-Json
//! $sasResponse = Invoke-WebRequest -Uri https://management.azure.com/... -Method POST -Body $jsonParams ...
//! $sasContent = $sasResponse.Content | ConvertFrom-Json
//! $sasCred = $sasContent.serviceSasToken
//! ```
//!
//! [`PsEnv`] evaluates the small expression language those lines use (hashtable and string
//! literals, `$var.Property[0].Path`, `| ConvertFrom-Json`, `| ConvertTo-Json`, parentheses),
//! binds `$var = Invoke-WebRequest ...` to the response object the request produced, and
//! substitutes `$var` / `$var.Path` in later requests. Anything else is left unevaluated, and
//! the request that needs it stays "not checkable" with the variable named.

use crate::exec::ExecResponse;
use crate::parse::pwsh::parse_hashtable;
use serde_json::{Map, Value, json};

/// Variables set by an article's PowerShell lines (names compared case-insensitively).
#[derive(Debug, Default, Clone)]
pub struct PsEnv {
    vars: Vec<(String, Value)>,
}

/// Result of evaluating an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eval {
    /// Evaluated.
    Set,
    /// Reads a known variable's path that is not there (the expression as written).
    Missing(String),
    /// Outside the evaluator's language, or an unknown variable.
    Unknown,
}

/// `$name = rhs` (not `$a.b = `, not `==`).
pub fn assignment(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    if !t.starts_with('$') {
        return None;
    }
    let (lhs, rhs) = t.split_once('=')?;
    let lhs = lhs.trim();
    let ok = lhs.len() > 1
        && lhs[1..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ok && !rhs.starts_with('=')).then(|| (lhs, rhs.trim()))
}

impl PsEnv {
    pub fn get(&self, name: &str) -> Option<&Value> {
        let n = name.trim_start_matches('$');
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v)
    }

    pub fn set(&mut self, name: &str, v: Value) {
        let n = name.trim_start_matches('$').to_string();
        self.vars.retain(|(k, _)| !k.eq_ignore_ascii_case(&n));
        self.vars.push((n, v));
    }

    /// The variables as they are now (for [`PsEnv::changed_since`]).
    pub fn snapshot(&self) -> Vec<(String, Value)> {
        self.vars.clone()
    }

    /// `$names` set or changed since `before`.
    pub fn changed_since(&self, before: &[(String, Value)]) -> Vec<String> {
        self.vars
            .iter()
            .filter(|(k, v)| !before.iter().any(|(bk, bv)| bk == k && bv == v))
            .map(|(k, _)| format!("${k}"))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Names of the variables set so far.
    pub fn names(&self) -> Vec<String> {
        self.vars.iter().map(|(k, _)| format!("${k}")).collect()
    }

    /// `$var = Invoke-WebRequest ...`: the response object (`Invoke-RestMethod`: the parsed
    /// body).
    pub fn bind_response(&mut self, var: &str, resp: &ExecResponse, rest_method: bool) {
        if rest_method {
            let v = serde_json::from_str(&resp.body).unwrap_or_else(|_| json!(resp.body));
            self.set(var, v);
            return;
        }
        let headers: Map<String, Value> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        self.set(
            var,
            json!({
                "StatusCode": resp.status,
                "Content": resp.body,
                "Headers": headers,
            }),
        );
    }

    /// Evaluate `$var = <expression>`; bind the result when `bind`.
    pub fn eval_assignment(&mut self, line: &str, bind: bool) -> Eval {
        let Some((var, rhs)) = assignment(line) else {
            return Eval::Unknown;
        };
        if let Some(v) = self.eval(rhs) {
            if bind {
                self.set(var, v);
            }
            Eval::Set
        } else {
            // `$known.Missing.Path`: the value the line reads is not in the response.
            let base = rhs.trim().trim_start_matches('(');
            let name_end = base
                .get(1..)
                .and_then(|b| b.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
                .map_or(base.len(), |i| i + 1);
            if base.starts_with('$')
                && self.get(&base[..name_end]).is_some()
                && !rhs.contains('|')
                && !rhs.contains('(')
            {
                Eval::Missing(rhs.trim().to_string())
            } else {
                Eval::Unknown
            }
        }
    }

    /// Evaluate an expression.
    pub fn eval(&self, expr: &str) -> Option<Value> {
        let e = expr.trim();
        if let Some((lhs, rhs)) = split_pipe(e) {
            let input = self.eval(lhs)?;
            let cmd = rhs.trim().to_ascii_lowercase();
            return match cmd.split_whitespace().next()? {
                "convertfrom-json" => serde_json::from_str(input.as_str()?.trim()).ok(),
                "convertto-json" => Some(Value::String(serde_json::to_string_pretty(&input).ok()?)),
                _ => None,
            };
        }
        if let Some(inner) = e.strip_prefix("@{").and_then(|x| x.strip_suffix('}')) {
            let h = parse_hashtable(inner);
            let mut m = Map::new();
            for (k, v) in h.entries {
                m.insert(k, Value::String(self.interpolate(&unquote(&v))));
            }
            return Some(Value::Object(m));
        }
        if e.starts_with('(') {
            // `( expr )` and `( expr ).Path`.
            let close = matching_paren(e)?;
            let inner = self.eval(&e[1..close])?;
            return apply_path(inner, &e[close + 1..]);
        }
        if (e.starts_with('"') && e.ends_with('"') && e.len() >= 2)
            || (e.starts_with('\'') && e.ends_with('\'') && e.len() >= 2)
        {
            let s = &e[1..e.len() - 1];
            return Some(Value::String(if e.starts_with('"') {
                self.interpolate(s)
            } else {
                s.to_string()
            }));
        }
        if e.starts_with('$') {
            return self.path(e);
        }
        None
    }

    /// `$var.A.B[0].C`.
    fn path(&self, e: &str) -> Option<Value> {
        let end = e[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(e.len(), |i| i + 1);
        apply_path(self.get(&e[1..end])?.clone(), &e[end..])
    }

    /// `"... $var ..."` with known string variables filled in.
    fn interpolate(&self, s: &str) -> String {
        self.substitute(s)
    }

    /// Replace `$var` and `$var.Path` references whose value is a string (or number) with it;
    /// unknown variables stay as written.
    pub fn substitute(&self, text: &str) -> String {
        if self.vars.is_empty() || !text.contains('$') {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let word = |mut at: usize| {
            while at < text.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            at
        };
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        while pos < text.len() {
            if bytes[pos] == b'$' {
                // The longest `$name(.prop|[n])*` that resolves to a scalar.
                let mut best = None;
                let mut stop = word(pos + 1);
                loop {
                    if let Some(v) = self.path(&text[pos..stop]).filter(is_scalar) {
                        best = Some((stop, v));
                    }
                    if stop < text.len() && bytes[stop] == b'.' {
                        let next = word(stop + 1);
                        if next == stop + 1 {
                            break;
                        }
                        stop = next;
                    } else if stop < text.len() && bytes[stop] == b'[' {
                        match text[stop..].find(']') {
                            Some(close) => stop += close + 1,
                            None => break,
                        }
                    } else {
                        break;
                    }
                }
                if let Some((stop, v)) = best {
                    out.push_str(&scalar_text(&v));
                    pos = stop;
                    continue;
                }
            }
            let ch = text[pos..].chars().next().unwrap_or(' ');
            out.push(ch);
            pos += ch.len_utf8();
        }
        out
    }
}

/// `.A.B[0].C` applied to a value (property names case-insensitive).
fn apply_path(mut cur: Value, mut rest: &str) -> Option<Value> {
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let n = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            let key = &r[..n];
            cur = match &cur {
                Value::Object(m) => m
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.clone())?,
                _ => return None,
            };
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            let i: usize = r[..close].trim().parse().ok()?;
            cur = cur.get(i)?.clone();
            rest = &r[close + 1..];
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Index of the `)` closing the `(` at the start of `e`.
fn matching_paren(e: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in e.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn unquote(v: &str) -> String {
    let t = v.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

/// The last top-level `|` (outside quotes, braces and parentheses).
fn split_pipe(e: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut at = None;
    for (i, c) in e.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '{' | '[') => depth += 1,
            (None, ')' | '}' | ']') => depth -= 1,
            (None, '|') if depth == 0 => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| (&e[..i], &e[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn env() -> PsEnv {
        let mut e = PsEnv::default();
        e.bind_response(
            "$sasResponse",
            &ExecResponse {
                status: 200,
                headers: vec![("Location".into(), "https://h/x?op=CREATE".into())],
                body: r#"{"serviceSasToken":"sv=2015&sig=abc","keys":[{"value":"k1"}]}"#.into(),
            },
            false,
        );
        e
    }

    #[rstest]
    #[case(
        "$sasContent = $sasResponse.Content | ConvertFrom-Json",
        "$sasContent.serviceSasToken",
        Some("sv=2015&sig=abc")
    )]
    #[case(
        "$k = ($sasResponse.Content | ConvertFrom-Json).keys[0].value",
        "$k",
        Some("k1")
    )]
    #[case(
        "$loc = $sasResponse.Headers.Location",
        "$loc",
        Some("https://h/x?op=CREATE")
    )]
    #[case("$n = \"a $unknown b\"", "$n", Some("a $unknown b"))]
    #[case("$s = 'lit $x'", "$s", Some("lit $x"))]
    #[case("$x = Get-Thing -Name y", "$x", None)]
    fn evaluates(#[case] line: &str, #[case] expr: &str, #[case] want: Option<&str>) {
        let mut e = env();
        e.eval_assignment(line, true);
        let got = e.eval(expr);
        assert_eq!(got.as_ref().and_then(Value::as_str), want, "{got:?}");
    }

    #[test]
    fn hashtable_to_json_body() {
        let mut e = PsEnv::default();
        assert_eq!(
            e.eval_assignment(
                r#"$params = @{canonicalizedResource="/blob/acct/c";signedResource="c";signedExpiry="2017-09-23T00:00:00Z"}"#,
                true
            ),
            Eval::Set
        );
        assert_eq!(
            e.eval_assignment("$jsonParams = $params | ConvertTo-Json", true),
            Eval::Set
        );
        assert_eq!(
            e.eval_assignment("$t = $params.access_token", true),
            Eval::Missing("$params.access_token".into())
        );
        assert_eq!(e.eval_assignment("$t = $nope.x", true), Eval::Unknown);
        let body = e.substitute("$jsonParams");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["signedResource"], "c");
        assert_eq!(v["canonicalizedResource"], "/blob/acct/c");
    }

    #[test]
    fn substitutes_paths_and_keeps_unknowns() {
        let e = env();
        assert_eq!(
            e.substitute("-Uri $sasResponse.Headers.Location -Method PUT $Other"),
            "-Uri https://h/x?op=CREATE -Method PUT $Other"
        );
        // An object-valued variable is not a string: left as written.
        assert_eq!(e.substitute("$sasResponse.Headers"), "$sasResponse.Headers");
    }

    #[rstest]
    #[case("$a = 1", Some(("$a", "1")))]
    #[case("$a.b = 1", None)]
    #[case("$a -eq 1", None)]
    #[case("x = 1", None)]
    fn assignments(#[case] line: &str, #[case] want: Option<(&str, &str)>) {
        assert_eq!(assignment(line), want);
    }
}
