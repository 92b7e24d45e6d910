//! Resource-group listing options: `$filter=tagName eq 'n' [and tagValue eq 'v']` and
//! `$top` with `nextLink` paging (`$skiptoken`).

use serde_json::{Value, json};

use super::Req;
use crate::error::ArmError;

/// A parsed tag filter. Tag names match case-insensitively, values exactly (as in ARM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagFilter {
    pub name: String,
    pub value: Option<String>,
}

fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn clause<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let s = s.trim();
    let (k, rest) = s.split_once(char::is_whitespace)?;
    if !k.eq_ignore_ascii_case(key) {
        return None;
    }
    let (op, value) = rest.trim_start().split_once(char::is_whitespace)?;
    op.eq_ignore_ascii_case("eq").then_some(value)
}

/// Parse `$filter` (absent: `None`).
pub(crate) fn parse(req: &Req) -> Result<Option<TagFilter>, ArmError> {
    let Some(raw) = req.param("$filter") else {
        return Ok(None);
    };
    let invalid = || {
        ArmError::bad_request(
            "InvalidFilterInQueryString",
            format!("Invalid $filter '{raw}' specified in the query string."),
        )
    };
    let lower = raw.to_ascii_lowercase();
    let (first, second) = match lower.find(" and ") {
        Some(i) => (&raw[..i], Some(&raw[i + 5..])),
        None => (raw, None),
    };
    let name = clause(first, "tagName")
        .and_then(quoted)
        .ok_or_else(invalid)?;
    let value = match second {
        Some(s) => Some(clause(s, "tagValue").and_then(quoted).ok_or_else(invalid)?),
        None => None,
    };
    Ok(Some(TagFilter { name, value }))
}

impl TagFilter {
    pub fn matches(&self, tags: Option<&Value>) -> bool {
        tags.and_then(Value::as_object).is_some_and(|m| {
            m.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(&self.name)
                    && self
                        .value
                        .as_ref()
                        .is_none_or(|want| v.as_str() == Some(want.as_str()))
            })
        })
    }
}

/// `{"value": [...]}` with `$top` paging: a `nextLink` carries `$skiptoken` (an offset).
pub(crate) fn page(req: &Req, base: &str, items: Vec<Value>) -> Result<Value, ArmError> {
    let top = match req.param("$top") {
        None => None,
        Some(t) => Some(t.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ArmError::bad_request(
                "InvalidTopInQueryString",
                format!("Invalid $top '{t}' specified in the query string."),
            )
        })?),
    };
    let skip: usize = req
        .param("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let Some(top) = top else {
        return Ok(json!({"value": items}));
    };
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    let mut out = json!({"value": value});
    if skip + top < total {
        let query: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        out["nextLink"] = json!(format!(
            "{base}{}?{}&%24skiptoken={}",
            req.path,
            query.join("&"),
            skip + top
        ));
    }
    Ok(out)
}
