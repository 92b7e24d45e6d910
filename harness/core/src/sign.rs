//! Client-side request signing for call steps that do not use a bearer token: the step's
//! `sign = { scheme = "...", ... }` table names the scheme and its inputs (rendered from
//! bindings). Each scheme computes exactly what the service's documented algorithm asks for,
//! so that the fake's verification and the real service's agree.
//!
//! `cosmos_master` (Cosmos DB master-key authorization, "Access control in the Azure Cosmos DB
//! SQL API"): inputs `key` (base64 account key), `resource_type` (`dbs`, `colls`, `docs`, or
//! empty for the account) and `resource_link` (`dbs/x/colls/y`; empty for a feed of databases).
//! The signature is base64(HMAC-SHA256(base64decode(key), payload)) with
//! `payload = verb\nresourceType\nresourceLink\ndate\n\n` (verb, type and date lower-cased),
//! sent as the URL-encoded `type=master&ver=1.0&sig=<signature>` in `authorization`. The date is
//! the request's `x-ms-date` if the step set one (to test a stale date), else now (RFC 1123).
//! `x-ms-version` defaults to `2018-12-31`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};

use crate::backend::HttpRequest;

/// Signing failures (bad inputs; never a network error).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("unknown signing scheme `{0}` (known: {known})", known = SCHEMES.join(", "))]
    UnknownScheme(String),
    #[error("signing scheme `{scheme}` needs `{field}`")]
    Missing { scheme: String, field: &'static str },
    #[error("signing scheme `{scheme}`: {message}")]
    Invalid { scheme: String, message: String },
}

/// Schemes a call step may name.
pub const SCHEMES: &[&str] = &["cosmos_master"];

/// Sign `req` in place. `inputs` holds the rendered values of the `sign` table.
pub fn apply(inputs: &BTreeMap<String, String>, req: &mut HttpRequest) -> Result<(), SignError> {
    let scheme = inputs.get("scheme").cloned().unwrap_or_default();
    match scheme.as_str() {
        "cosmos_master" => cosmos_master(inputs, req),
        _ => Err(SignError::UnknownScheme(scheme)),
    }
}

fn request_header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn cosmos_master(
    inputs: &BTreeMap<String, String>,
    req: &mut HttpRequest,
) -> Result<(), SignError> {
    let scheme = "cosmos_master".to_string();
    let key = inputs.get("key").ok_or(SignError::Missing {
        scheme: scheme.clone(),
        field: "key",
    })?;
    let resource_type = inputs.get("resource_type").ok_or(SignError::Missing {
        scheme: scheme.clone(),
        field: "resource_type",
    })?;
    let resource_link = inputs.get("resource_link").map_or("", String::as_str);
    let date = if let Some(d) = request_header(req, "x-ms-date") {
        d.to_string()
    } else {
        let d = httpdate::fmt_http_date(SystemTime::now());
        req.set_header("x-ms-date", d.clone());
        d
    };
    if request_header(req, "x-ms-version").is_none() {
        req.set_header("x-ms-version", "2018-12-31");
    }
    let auth = cosmos_authorization(&req.method, resource_type, resource_link, &date, key)
        .map_err(|message| SignError::Invalid { scheme, message })?;
    req.set_header("authorization", auth);
    Ok(())
}

/// The URL-encoded master-key `authorization` value (lower-case hex escapes, as the .NET
/// sample's `HttpUtility.UrlEncode` prints).
pub fn cosmos_authorization(
    verb: &str,
    resource_type: &str,
    resource_link: &str,
    date: &str,
    key_b64: &str,
) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .map_err(|e| format!("`key` is not base64: {e}"))?;
    let payload = format!(
        "{}\n{}\n{}\n{}\n\n",
        verb.to_ascii_lowercase(),
        resource_type.to_ascii_lowercase(),
        resource_link,
        date.to_ascii_lowercase()
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(payload.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let raw = format!("type=master&ver=1.0&sig={sig}");
    let mut out = String::new();
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'!' | b'*' | b'(' | b')')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Microsoft's documented example key ("Access control in the Azure Cosmos DB SQL API").
    const DOC_KEY: &str =
        "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==";

    #[rstest]
    #[case::documented_get_database(
        "GET",
        "dbs",
        "dbs/ToDoList",
        "Thu, 27 Apr 2017 00:51:12 GMT",
        "type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d"
    )]
    #[case::verb_and_date_case_do_not_matter(
        "get",
        "DBS",
        "dbs/ToDoList",
        "thu, 27 apr 2017 00:51:12 gmt",
        "type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d"
    )]
    fn documented_vectors(
        #[case] verb: &str,
        #[case] ty: &str,
        #[case] link: &str,
        #[case] date: &str,
        #[case] want: &str,
    ) {
        assert_eq!(
            cosmos_authorization(verb, ty, link, date, DOC_KEY).unwrap(),
            want
        );
    }

    #[rstest]
    #[case::link_case_matters("GET", "dbs", "dbs/todolist")]
    #[case::other_verb("POST", "dbs", "dbs/ToDoList")]
    #[case::other_type("GET", "colls", "dbs/ToDoList")]
    fn inputs_change_the_signature(#[case] verb: &str, #[case] ty: &str, #[case] link: &str) {
        let doc = cosmos_authorization(
            "GET",
            "dbs",
            "dbs/ToDoList",
            "Thu, 27 Apr 2017 00:51:12 GMT",
            DOC_KEY,
        )
        .unwrap();
        assert_ne!(
            cosmos_authorization(verb, ty, link, "Thu, 27 Apr 2017 00:51:12 GMT", DOC_KEY).unwrap(),
            doc
        );
    }

    #[test]
    fn apply_sets_headers_and_keeps_a_given_date() {
        let mut req = HttpRequest::new("GET", "http://x/dbs/ToDoList")
            .header("x-ms-date", "Thu, 27 Apr 2017 00:51:12 GMT");
        let inputs: BTreeMap<String, String> = [
            ("scheme", "cosmos_master"),
            ("key", DOC_KEY),
            ("resource_type", "dbs"),
            ("resource_link", "dbs/ToDoList"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        apply(&inputs, &mut req).unwrap();
        assert!(
            request_header(&req, "authorization")
                .unwrap()
                .ends_with("c%2bc%3d")
        );
        assert_eq!(request_header(&req, "x-ms-version"), Some("2018-12-31"));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut req = HttpRequest::new("GET", "http://x/");
        let mut inputs = BTreeMap::new();
        inputs.insert("scheme".to_string(), "cosmos_master".to_string());
        assert!(matches!(
            apply(&inputs, &mut req),
            Err(SignError::Missing { .. })
        ));
        inputs.insert("key".into(), "not base64!".into());
        inputs.insert("resource_type".into(), "dbs".into());
        assert!(matches!(
            apply(&inputs, &mut req),
            Err(SignError::Invalid { .. })
        ));
        inputs.insert("scheme".into(), "nope".into());
        assert!(matches!(
            apply(&inputs, &mut req),
            Err(SignError::UnknownScheme(_))
        ));
    }
}
