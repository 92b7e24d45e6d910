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
//!
//! `shared_key` (Azure Storage Shared Key, blob/queue/file, version 2009-09-19 and later):
//! `sign = { scheme = "shared_key", account = "<account name>", key = "<base64 account key>" }`.
//! Adds `x-ms-date` (now, RFC 1123) when the request has none, builds the string-to-sign
//! (verb, the eleven standard headers, the canonicalized `x-ms-` headers and the canonicalized
//! resource `/<account><path>` plus sorted query parameters) and sets
//! `Authorization: SharedKey <account>:<base64 HMAC-SHA256>`.
//! Optional `resource_account`: the account named in the canonicalized resource when it
//! differs (never needed on Azure; path-style emulators sign `/<account>/<account>/...`
//! through the path itself, so it is not needed there either).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

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
pub const SCHEMES: &[&str] = &["cosmos_master", "shared_key"];

/// Sign `req` in place. `inputs` holds the rendered values of the `sign` table.
pub fn apply(inputs: &BTreeMap<String, String>, req: &mut HttpRequest) -> Result<(), SignError> {
    let scheme = inputs.get("scheme").cloned().unwrap_or_default();
    match scheme.as_str() {
        "cosmos_master" => cosmos_master(inputs, req),
        "shared_key" => {
            let need = |field: &'static str| {
                inputs
                    .get(field)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .ok_or(SignError::Missing {
                        scheme: scheme.clone(),
                        field,
                    })
            };
            let account = need("account")?;
            let key = need("key")?;
            shared_key(&account, &key, req)
        }
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
            let _ = write!(out, "%{b:02x}");
        }
    }
    Ok(out)
}

/// Sign with Azure Storage Shared Key (see the module docs).
pub fn shared_key(account: &str, key_b64: &str, req: &mut HttpRequest) -> Result<(), SignError> {
    let invalid = |message: String| SignError::Invalid {
        scheme: "shared_key".into(),
        message,
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .map_err(|_| invalid("`key` is not base64".into()))?;
    let url =
        url::Url::parse(&req.url).map_err(|e| invalid(format!("bad URL `{}`: {e}", req.url)))?;
    if !req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-ms-date"))
    {
        req.set_header(
            "x-ms-date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        );
    }
    let sts = shared_key_string_to_sign(
        account,
        &req.method,
        url.path(),
        url.query().unwrap_or(""),
        &req.headers,
        req.body.as_ref().map_or(0, Vec::len),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| invalid(e.to_string()))?;
    mac.update(sts.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    req.set_header("Authorization", format!("SharedKey {account}:{sig}"));
    Ok(())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn pct_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The Shared Key string-to-sign for a request about to be sent with a body of `body_len`
/// bytes (the Content-Length the HTTP client will send; empty when zero for 2015-02-21+).
pub fn shared_key_string_to_sign(
    account: &str,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    body_len: usize,
) -> String {
    let version = header(headers, "x-ms-version").unwrap_or("");
    let length = match header(headers, "content-length") {
        Some(v) => v.to_string(),
        None if body_len > 0 => body_len.to_string(),
        None if matches!(method, "PUT" | "POST") => "0".into(),
        None => String::new(),
    };
    let length = if length == "0" && version >= "2015-02-21" {
        String::new()
    } else {
        length
    };
    let date = if header(headers, "x-ms-date").is_some() {
        ""
    } else {
        header(headers, "date").unwrap_or("")
    };
    let h = |n: &str| header(headers, n).unwrap_or("").to_string();
    let mut lines = vec![
        method.to_ascii_uppercase(),
        h("content-encoding"),
        h("content-language"),
        length,
        h("content-md5"),
        h("content-type"),
        date.to_string(),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range"),
    ];
    // Canonicalized headers: x-ms-*, lower-cased, sorted, whitespace folded.
    let mut xms: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if k.starts_with("x-ms-") {
            let folded = v.split_whitespace().collect::<Vec<_>>().join(" ");
            xms.entry(k).or_default().push(folded);
        }
    }
    let mut out = lines.drain(..).map(|l| l + "\n").collect::<String>();
    for (k, v) in xms {
        let _ = writeln!(out, "{k}:{}", v.join(","));
    }
    // Canonicalized resource.
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let _ = write!(out, "/{account}{path}");
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params
            .entry(pct_decode(k).to_ascii_lowercase())
            .or_default()
            .push(pct_decode(v));
    }
    for (k, mut v) in params {
        v.sort();
        let _ = write!(out, "\n{k}:{}", v.join(","));
    }
    out
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

#[cfg(test)]
mod shared_key_tests {
    use rstest::rstest;

    use super::*;

    fn hv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    // Vectors computed from the documented algorithm; the same requests are accepted by
    // Azurite and by the fake (harness/fake/tests/azurite_crosscheck.rs).
    #[rstest]
    #[case::get_blob("GET", "/mycontainer/hello.txt", "", &[("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"), ("x-ms-version", "2017-11-09")], 0,
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2017-11-09\n/myaccount/mycontainer/hello.txt")]
    #[case::put_blob_body_length("PUT", "/c/b", "", &[("Content-Type", "text/plain"), ("x-ms-blob-type", "BlockBlob"), ("x-ms-date", "D"), ("x-ms-version", "2017-11-09")], 21,
        "PUT\n\n\n21\n\ntext/plain\n\n\n\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/c/b")]
    #[case::empty_put_new_version("PUT", "/c", "restype=container", &[("x-ms-date", "D"), ("x-ms-version", "2017-11-09")], 0,
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/c\nrestype:container")]
    #[case::empty_put_old_version("PUT", "/c", "restype=container", &[("x-ms-date", "D"), ("x-ms-version", "2014-02-14")], 0,
        "PUT\n\n\n0\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2014-02-14\n/myaccount/c\nrestype:container")]
    #[case::query_sorted_and_merged("GET", "/c", "restype=container&comp=list&include=snapshots&include=metadata", &[("x-ms-date", "D"), ("x-ms-version", "2017-11-09")], 0,
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/c\ncomp:list\ninclude:metadata,snapshots\nrestype:container")]
    #[case::date_header_only("GET", "/c/b", "", &[("Date", "Sun, 11 Oct 2009 21:49:13 GMT"), ("x-ms-version", "2017-11-09")], 0,
        "GET\n\n\n\n\n\nSun, 11 Oct 2009 21:49:13 GMT\n\n\n\n\n\nx-ms-version:2017-11-09\n/myaccount/c/b")]
    #[case::encoded_path_folded_meta("GET", "/c/hello%20world.txt", "", &[("x-ms-date", "D"), ("X-MS-Meta-A", "  a   b "), ("x-ms-version", "2017-11-09")], 0,
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-meta-a:a b\nx-ms-version:2017-11-09\n/myaccount/c/hello%20world.txt")]
    #[case::path_style_emulator("GET", "/devstoreaccount1/c/b", "", &[("x-ms-date", "D"), ("x-ms-version", "2017-11-09")], 0,
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/devstoreaccount1/c/b")]
    fn string_to_sign(
        #[case] method: &str,
        #[case] path: &str,
        #[case] query: &str,
        #[case] headers: &[(&str, &str)],
        #[case] body_len: usize,
        #[case] expected: &str,
    ) {
        assert_eq!(
            shared_key_string_to_sign("myaccount", method, path, query, &hv(headers), body_len),
            expected
        );
    }

    #[test]
    fn signs_with_the_documented_hmac() {
        // HMAC-SHA256 under Azurite's published development key of a fixed string-to-sign.
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        let mut req = HttpRequest::new("GET", "http://127.0.0.1:10000/devstoreaccount1/c/b");
        req.set_header("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT");
        req.set_header("x-ms-version", "2017-11-09");
        let inputs: BTreeMap<String, String> = [
            ("scheme", "shared_key"),
            ("account", "devstoreaccount1"),
            ("key", key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        apply(&inputs, &mut req).unwrap();
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(
            auth,
            "SharedKey devstoreaccount1:xH7XG8lVXsedmkQW7VTsgF/406jy1vrG74lNbc0+dNc="
        );
    }

    #[test]
    fn adds_x_ms_date_and_rejects_bad_inputs() {
        let mut req = HttpRequest::new("GET", "http://h/c/b");
        let mut inputs: BTreeMap<String, String> =
            [("scheme", "shared_key"), ("account", "a"), ("key", "AAAA")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        apply(&inputs, &mut req).unwrap();
        assert!(req.headers.iter().any(|(k, _)| k == "x-ms-date"));
        inputs.insert("key".into(), "not base64!".into());
        assert!(matches!(
            apply(&inputs, &mut req),
            Err(SignError::Invalid { .. })
        ));
        inputs.remove("account");
        assert!(matches!(
            apply(&inputs, &mut req),
            Err(SignError::Missing {
                field: "account",
                ..
            })
        ));
        inputs.insert("scheme".into(), "nope".into());
        assert!(matches!(
            apply(&inputs, &mut req),
            Err(SignError::UnknownScheme(_))
        ));
    }
}
