//! Values captured from earlier steps and the builtins, and the rendering of `${...}`
//! templates against them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{FieldValue, Reference, Template, TemplatePart};

/// Reference roots -> captured JSON values.
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    roots: BTreeMap<String, Value>,
}

/// A reference that could not be resolved at run time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`${{{reference}}}` {reason}")]
pub struct RenderError {
    pub reference: String,
    pub reason: String,
}

impl Bindings {
    pub fn bind(&mut self, root: impl Into<String>, value: Value) {
        self.roots.insert(root.into(), value);
    }

    pub fn get_root(&self, root: &str) -> Option<&Value> {
        self.roots.get(root)
    }

    /// Look a reference up: object keys and array indices along the path.
    pub fn lookup(&self, reference: &Reference) -> Result<&Value, RenderError> {
        let err = |reason: String| RenderError {
            reference: reference.dotted(),
            reason,
        };
        let mut cur = self
            .roots
            .get(&reference.root)
            .ok_or_else(|| err("has no value: its step did not run or produced nothing".into()))?;
        // `${token}` alone means the access token of a fetch-token step.
        if reference.path.is_empty() {
            if let Some(t) = cur.get("access_token") {
                return Ok(t);
            }
        }
        for (i, seg) in reference.path.iter().enumerate() {
            let next = match cur {
                Value::Object(map) => map.get(seg).or_else(|| {
                    // JSON from services is matched case-insensitively as a fallback.
                    map.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                        .map(|(_, v)| v)
                }),
                Value::Array(items) => seg.parse::<usize>().ok().and_then(|n| items.get(n)),
                _ => None,
            };
            cur = next.ok_or_else(|| {
                let at = std::iter::once(reference.root.as_str())
                    .chain(reference.path[..=i].iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(".");
                err(format!("is not there: the value has no `{at}`"))
            })?;
        }
        Ok(cur)
    }

    /// Render a template to a string.
    pub fn render(&self, template: &Template) -> Result<String, RenderError> {
        let mut out = String::with_capacity(template.raw.len());
        for part in &template.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Ref(r) => out.push_str(&value_to_text(self.lookup(r)?)),
            }
        }
        Ok(out)
    }

    /// Table keys may hold references too (`{ "${id1.id}" = {} }` in an identity body).
    fn render_key(&self, key: &str) -> Result<String, RenderError> {
        if !key.contains("${") {
            return Ok(key.to_string());
        }
        let template = crate::template::parse(key).map_err(|errs| RenderError {
            reference: key.to_string(),
            reason: errs.first().map_or_else(|| "is not a valid template".into(), crate::template::TemplateError::message),
        })?;
        self.render(&template)
    }

    /// Render a field value to JSON: strings are rendered (a string that is exactly one
    /// reference keeps the referenced JSON type), tables become objects.
    pub fn render_json(&self, value: &FieldValue) -> Result<Value, RenderError> {
        Ok(match value {
            FieldValue::Str(t) => {
                if let [TemplatePart::Ref(r)] = t.parts.as_slice() {
                    self.lookup(r)?.clone()
                } else {
                    Value::String(self.render(t)?)
                }
            }
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::Int(i) => Value::from(*i),
            FieldValue::Float(f) => Value::from(*f),
            FieldValue::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_json(&i.value))
                    .collect::<Result<_, _>>()?,
            ),
            FieldValue::Table(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((self.render_key(k)?, self.render_json(&v.value)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
        })
    }
}

/// The text of a JSON value when substituted into a string.
pub fn value_to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Walk a dotted path (`properties.provisioningState`, `value.0.name`) in a JSON value.
pub fn json_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    let mut cur = value;
    for seg in split_path(path) {
        cur = match cur {
            Value::Object(map) => map.get(&seg)?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Split a dotted path; a segment may be quoted with backticks to contain dots
/// (`` headers.`x-ms-version` `` is not needed, but `` body.`odata.metadata` `` is).
fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '`' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Span;
    use serde_json::json;

    fn r(root: &str, path: &[&str]) -> Reference {
        Reference {
            root: root.into(),
            path: path.iter().map(|s| (*s).to_string()).collect(),
            span: Span::default(),
        }
    }

    #[test]
    fn lookup_walks_objects_and_arrays() {
        let mut b = Bindings::default();
        b.bind("vm", json!({"identity": {"principal_id": "p1"}, "list": [{"n": 1}]}));
        assert_eq!(b.lookup(&r("vm", &["identity", "principal_id"])).unwrap(), "p1");
        assert_eq!(b.lookup(&r("vm", &["list", "0", "n"])).unwrap(), 1);
        let e = b.lookup(&r("vm", &["identity", "client_id"])).unwrap_err();
        assert!(e.to_string().contains("vm.identity.client_id"), "{e}");
        assert!(b.lookup(&r("nope", &[])).is_err());
    }

    #[test]
    fn json_path_handles_quoted_segments() {
        let v = json!({"odata.metadata": "m", "a": {"b": [1, 2]}});
        assert_eq!(json_path(&v, "`odata.metadata`").unwrap(), "m");
        assert_eq!(json_path(&v, "a.b.1").unwrap(), 2);
        assert!(json_path(&v, "a.c").is_none());
    }
}
