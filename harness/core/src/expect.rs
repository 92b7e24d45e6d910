//! Checking a response against a step's expectation.

use serde_json::Value;

use crate::backend::HttpResponse;
use crate::bindings::{Bindings, json_path};
use crate::model::{Expect, FieldValue};

/// One way a response differs from what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// The service's error code, whatever the service's error shape: ARM/Key Vault
/// `{"error":{"code"}}`, IMDS/Entra `{"error":"..."}`, Graph `{"odata.error":{"code"}}`,
/// WebHDFS `{"RemoteException":{"exception"}}`, Cosmos `{"code"}`, Storage XML `<Code>`.
pub fn error_code(resp: &HttpResponse) -> Option<String> {
    if let Some(json) = resp.json() {
        let candidates = [
            json.pointer("/error/code"),
            json.get("error").filter(|e| e.is_string()),
            json.pointer("/odata.error/code"),
            json.pointer("/RemoteException/exception"),
            json.get("code").filter(|c| c.is_string()),
        ];
        return candidates
            .into_iter()
            .flatten()
            .find_map(|v| v.as_str().map(str::to_string));
    }
    let text = resp.text();
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_string())
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

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!("{}...", &s[..200])
    } else {
        s
    }
}

/// Compare a response with an expectation (`None` means "any 2xx"). JSON paths are looked up
/// in `view` when given (a fetch-token step's body plus its decoded `claims`), else in the body.
pub fn check(
    expect: Option<&Expect>,
    resp: &HttpResponse,
    bindings: &Bindings,
    view: Option<&Value>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let Some(e) = expect else {
        if !resp.is_success() {
            out.push(Mismatch {
                what: "status".into(),
                expected: "2xx".into(),
                actual: format!(
                    "{}{}",
                    resp.status,
                    error_code(resp)
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                ),
            });
        }
        return out;
    };
    match &e.status {
        Some(s) if s.value != resp.status => out.push(Mismatch {
            what: "status".into(),
            expected: s.value.to_string(),
            actual: format!(
                "{}{}",
                resp.status,
                error_code(resp)
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default()
            ),
        }),
        // An expected error code without a status accepts any status (SQL errors have none).
        None if !resp.is_success() && e.code.is_none() => out.push(Mismatch {
            what: "status".into(),
            expected: "2xx".into(),
            actual: resp.status.to_string(),
        }),
        _ => {}
    }
    let render = |t| bindings.render(t).unwrap_or_else(|err| format!("<{err}>"));
    if let Some(code) = &e.code {
        let want = render(&code.value);
        let got = error_code(resp);
        if got.as_deref() != Some(want.as_str()) {
            out.push(Mismatch {
                what: "error code".into(),
                expected: want,
                actual: got.unwrap_or_else(|| "(none)".into()),
            });
        }
    }
    let body = view.cloned().or_else(|| resp.json());
    let need_json = !e.json.is_empty() || !e.json_types.is_empty() || !e.absent.is_empty();
    if need_json && body.is_none() {
        out.push(Mismatch {
            what: "body".into(),
            expected: "JSON".into(),
            actual: format!("{:?}", truncate(&resp.text(), 120)),
        });
    }
    if let Some(body) = &body {
        for (path, want) in &e.json {
            let want_json = match &want.value {
                FieldValue::Str(t) => Value::String(render(t)),
                other => bindings.render_json(other).unwrap_or(Value::Null),
            };
            match json_path(body, path) {
                Some(got) if values_agree(got, &want_json) => {}
                Some(got) => out.push(Mismatch {
                    what: format!("json `{}`", path.value),
                    expected: short(&want_json),
                    actual: short(got),
                }),
                None => out.push(Mismatch {
                    what: format!("json `{}`", path.value),
                    expected: short(&want_json),
                    actual: "(absent)".into(),
                }),
            }
        }
        for (path, ty) in &e.json_types {
            let got = json_path(body, path).map_or("absent", type_name);
            if got != ty.value {
                out.push(Mismatch {
                    what: format!("type of `{}`", path.value),
                    expected: ty.value.clone(),
                    actual: got.into(),
                });
            }
        }
        for path in &e.absent {
            if let Some(v) = json_path(body, path) {
                out.push(Mismatch {
                    what: format!("json `{}`", path.value),
                    expected: "(absent)".into(),
                    actual: short(v),
                });
            }
        }
    }
    for (name, want) in &e.headers {
        let want = render(&want.value);
        let got = resp.header(name);
        if got != Some(want.as_str()) {
            out.push(Mismatch {
                what: format!("header `{}`", name.value),
                expected: want,
                actual: got.unwrap_or("(absent)").to_string(),
            });
        }
    }
    if let Some(needle) = &e.body_contains {
        let want = render(&needle.value);
        if !resp.text().contains(&want) {
            out.push(Mismatch {
                what: "body".into(),
                expected: format!("to contain {want:?}"),
                actual: truncate(&resp.text(), 200),
            });
        }
    }
    out
}

/// Strings compare exactly; numbers by value (so `200` in TOML matches `200.0`).
fn values_agree(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => got == want,
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}...", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[rstest]
    #[case::arm(
        r#"{"error":{"code":"AuthorizationFailed","message":"m"}}"#,
        Some("AuthorizationFailed")
    )]
    #[case::imds(
        r#"{"error":"bad_request_102","error_description":"d"}"#,
        Some("bad_request_102")
    )]
    #[case::graph(
        r#"{"odata.error":{"code":"Authorization_RequestDenied"}}"#,
        Some("Authorization_RequestDenied")
    )]
    #[case::webhdfs(
        r#"{"RemoteException":{"exception":"AccessControlException"}}"#,
        Some("AccessControlException")
    )]
    #[case::cosmos(r#"{"code":"Unauthorized","message":"m"}"#, Some("Unauthorized"))]
    #[case::storage_xml(
        "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code><Message>m</Message></Error>",
        Some("AuthenticationFailed")
    )]
    #[case::none("hello", None)]
    fn extracts_error_codes(#[case] body: &str, #[case] want: Option<&str>) {
        assert_eq!(error_code(&resp(400, body)).as_deref(), want);
    }

    #[test]
    fn default_expectation_wants_success() {
        assert!(check(None, &resp(200, "{}"), &Bindings::default(), None).is_empty());
        let m = check(
            None,
            &resp(403, r#"{"error":{"code":"AuthorizationFailed"}}"#),
            &Bindings::default(),
            None,
        );
        assert_eq!(m[0].actual, "403 AuthorizationFailed");
    }
}
