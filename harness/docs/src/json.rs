//! Lenient JSON reading of doc examples, and the comparison of a documented
//! response with what a service returned.

use crate::placeholder::is_wildcard_value;
use serde::Serialize;
use serde_json::Value;

/// JSON that does not parse, with the 1-based line (relative to the text given) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonProblem {
    pub line: usize,
    pub message: String,
}

/// Parsed JSON plus what had to be forgiven.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LenientJson {
    pub value: Value,
    /// e.g. "contains `//` comments", "a string was wrapped across lines by the export".
    pub notes: Vec<String>,
}

/// Parse strictly, then forgive comments and strings the export wrapped across lines.
/// Errors report the line of the first strict error that remains.
pub fn parse_lenient(text: &str) -> Result<LenientJson, JsonProblem> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(LenientJson {
            value,
            notes: Vec::new(),
        });
    }
    let mut notes = Vec::new();
    // Pass 1: drop `//` comments outside strings (line count preserved).
    let mut had_comment = false;
    let mut lines: Vec<String> = Vec::new();
    let mut prev_comment = false;
    for l in text.lines() {
        let t = l.trim_start();
        // A comment the export wrapped: its tail is on the next line and is not JSON.
        if prev_comment && !t.is_empty() && !t.starts_with(['"', '{', '}', '[', ']', ',', '/']) {
            lines.push(String::new());
            continue;
        }
        let (code, comment) = split_comment(l);
        had_comment |= comment;
        prev_comment = comment;
        lines.push(code);
    }
    if had_comment {
        notes.push("contains `//` comments (illustrative, not JSON)".into());
    }
    // Pass 2: re-join lines that end inside an open string; keep a map to source lines.
    let mut joined: Vec<(String, usize)> = Vec::new();
    let mut open = false;
    let mut wrapped = false;
    for (i, l) in lines.into_iter().enumerate() {
        if open && let Some((last, _)) = joined.last_mut() {
            last.push(' ');
            last.push_str(l.trim_start());
            wrapped = true;
            open = ends_in_string(last);
            continue;
        }
        open = ends_in_string(&l);
        joined.push((l, i + 1));
    }
    if wrapped {
        notes.push("a string was wrapped across lines by the export".into());
    }
    let text2: String = joined
        .iter()
        .map(|(l, _)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    match serde_json::from_str::<Value>(&text2) {
        Ok(value) => Ok(LenientJson { value, notes }),
        Err(_)
            if text2.trim_start().starts_with('"') && !text2.trim_start().starts_with("\"\"") =>
        {
            // A fragment (`"identity": {...},`) meant to be pasted into a larger document.
            let frag = format!("{{\n{}\n}}", text2.trim_end().trim_end_matches(','));
            match serde_json::from_str::<Value>(&frag) {
                Ok(value) => {
                    notes.push("fragment of a larger JSON document".into());
                    Ok(LenientJson { value, notes })
                }
                Err(e) => {
                    let line = joined
                        .get(e.line().saturating_sub(2))
                        .map_or(e.line(), |(_, n)| *n);
                    Err(JsonProblem {
                        line,
                        message: describe(&e),
                    })
                }
            }
        }
        Err(e) => {
            let line = joined
                .get(e.line().saturating_sub(1))
                .map_or(e.line(), |(_, n)| *n);
            Err(JsonProblem {
                line,
                message: describe(&e),
            })
        }
    }
}

fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    // strip serde's " at line X column Y" — we report the article line ourselves
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn split_comment(l: &str) -> (String, bool) {
    let mut in_str = false;
    let mut prev = '\0';
    for (i, c) in l.char_indices() {
        if c == '"' && prev != '\\' {
            in_str = !in_str;
        }
        if !in_str && c == '/' && prev == '/' {
            return (l[..i - 1].to_string(), true);
        }
        prev = if prev == '\\' && c == '\\' { '\0' } else { c };
    }
    (l.to_string(), false)
}

fn ends_in_string(l: &str) -> bool {
    let mut in_str = false;
    let mut escaped = false;
    for c in l.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_str = !in_str;
        }
    }
    in_str
}

/// One difference between the documented and the actual response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// JSON path, e.g. `expires_in` or `properties.provisioningState`.
    pub path: String,
    pub message: String,
    /// True for differences that make the doc wrong (missing field, type, value);
    /// false for fields the service adds that the doc leaves out.
    pub drift: bool,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `number 3599`, `string "x"`, `null`.
fn typed(v: &Value) -> String {
    if v.is_null() {
        "null".into()
    } else {
        format!("{} {}", type_name(v), show(v))
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Compare a documented example response with the actual one.
pub fn compare(doc: &Value, actual: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(doc, actual, "", &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(doc: &Value, actual: &Value, path: &str, out: &mut Vec<Difference>) {
    match (doc, actual) {
        (Value::Object(d), Value::Object(a)) => {
            for (k, dv) in d {
                if let Some(av) = a.get(k) {
                    walk(dv, av, &join(path, k), out);
                } else {
                    let near = a
                        .keys()
                        .find(|ak| ak.eq_ignore_ascii_case(k) || strip(ak) == strip(k));
                    let hint = near
                        .map(|n| format!(" (service has `{n}`)"))
                        .unwrap_or_default();
                    out.push(Difference {
                        path: join(path, k),
                        message: format!(
                            "{}: doc shows the field, service response does not have it{hint}",
                            join(path, k)
                        ),
                        drift: true,
                    });
                }
            }
            for k in a.keys() {
                if !d.contains_key(k) {
                    out.push(Difference {
                        path: join(path, k),
                        message: format!(
                            "{}: service also returns this field (not shown in the doc)",
                            join(path, k)
                        ),
                        drift: false,
                    });
                }
            }
        }
        (Value::Array(d), Value::Array(a)) => {
            for (i, (dv, av)) in d.iter().zip(a.iter()).enumerate() {
                walk(dv, av, &format!("{path}[{i}]"), out);
            }
        }
        (d, a) if type_name(d) != type_name(a) => {
            // A documented placeholder string stands for any value.
            if let Value::String(s) = d
                && !matches!(a, Value::Object(_) | Value::Array(_))
                && crate::placeholder::find(s)
                    .iter()
                    .any(|p| p.text.starts_with('<'))
            {
                return;
            }
            out.push(Difference {
                path: path.to_string(),
                message: format!(
                    "{path}: doc shows {}, service returns {}",
                    typed(d),
                    typed(a)
                ),
                drift: true,
            });
        }
        (Value::String(d), Value::String(a)) => {
            if d != a && !is_wildcard_value(d) && !is_wildcard_value(a) {
                out.push(Difference {
                    path: path.to_string(),
                    message: format!("{path}: doc shows \"{d}\", service returns \"{a}\""),
                    drift: true,
                });
            }
        }
        (d, a) => {
            if d != a {
                let numeric_sample =
                    matches!(d, Value::Number(_)) && is_wildcard_value(&d.to_string());
                if !numeric_sample {
                    out.push(Difference {
                        path: path.to_string(),
                        message: format!(
                            "{path}: doc shows {}, service returns {}",
                            show(d),
                            show(a)
                        ),
                        drift: true,
                    });
                }
            }
        }
    }
}

fn strip(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case("{\"a\": 1}", true, 0)]
    #[case("{\n \"a\": \"x\n y\"\n}", true, 1)]
    #[case("{\n \"a\": 1 // c\n}", true, 1)]
    #[case("{\n  \"a\": 1}\n}", false, 3)]
    #[case("\n\"odata.metadata\":\"x\",\n\"value\":[]\n", true, 1)]
    #[case("\"a\": 1,\n\"b\": }", false, 2)]
    fn lenient(#[case] text: &str, #[case] ok: bool, #[case] n: usize) {
        match parse_lenient(text) {
            Ok(j) => {
                assert!(ok);
                assert_eq!(j.notes.len(), n);
            }
            Err(p) => {
                assert!(!ok, "{p:?}");
                assert_eq!(p.line, n, "{p:?}");
            }
        }
    }

    #[test]
    fn compare_types_values_and_fields() {
        let doc = json!({"access_token":"eyJ0eXAi...","expires_in":3599,"resource":"https://management.azure.com","token_type":"Bearer","accessToken2":"x"});
        let actual = json!({"access_token":"abc","expires_in":"3599","resource":"https://management.azure.com/","token_type":"Bearer","not_before":"1"});
        let d = compare(&doc, &actual);
        let msgs: Vec<&str> = d.iter().map(|x| x.message.as_str()).collect();
        assert!(
            msgs.contains(&"expires_in: doc shows number 3599, service returns string \"3599\""),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("resource: doc shows \"https://management.azure.com\""))
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("accessToken2: doc shows the field"))
        );
        assert!(d.iter().any(|x| x.path == "not_before" && !x.drift));
        assert_eq!(d.iter().filter(|x| x.drift).count(), 3);
    }

    #[test]
    fn renamed_field_hint() {
        let d = compare(&json!({"accessToken":"x"}), &json!({"access_token":"x"}));
        assert!(d[0].message.contains("service has `access_token`"), "{d:?}");
    }
}
