//! Azure Storage request authentication as the service computes it: the Shared Key
//! string-to-sign (blob, queue and file service, version 2009-09-19 and later) and the
//! service SAS string-to-sign for blobs (versions 2015-04-05 and later). Pure functions:
//! the server side of `sign.rs` in mic-core, written independently from the documentation.

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The standard headers of the Shared Key string-to-sign, in order (after the verb).
pub const SIGNED_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// What a request looks like to the Shared Key algorithm.
#[derive(Debug, Clone, Default)]
pub struct SharedKeyInput<'a> {
    pub method: &'a str,
    /// The request path exactly as sent (percent-encoded), starting with `/`.
    pub raw_path: &'a str,
    /// The raw (encoded) query string, without `?`.
    pub raw_query: &'a str,
    /// Every request header (any case).
    pub headers: Vec<(String, String)>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Collapse runs of linear whitespace to one space and trim, as the canonicalized-headers
/// rule asks (whitespace inside quoted strings is left alone).
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut in_quotes = false;
    let mut pending_space = false;
    for c in v.trim().chars() {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if !in_quotes && matches!(c, ' ' | '\t' | '\r' | '\n') {
            pending_space = true;
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

fn pct_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `CanonicalizedHeaders`: every `x-ms-` header, lower-cased, sorted, `name:value\n`.
pub fn canonicalized_headers(headers: &[(String, String)]) -> String {
    let mut xms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), unfold(v)))
        .collect();
    xms.sort_by(|a, b| a.0.cmp(&b.0));
    // Repeated headers are joined with commas, as HTTP folds them.
    let mut out = String::new();
    let mut i = 0;
    while i < xms.len() {
        let name = &xms[i].0;
        let mut values = vec![xms[i].1.clone()];
        let mut j = i + 1;
        while j < xms.len() && xms[j].0 == *name {
            values.push(xms[j].1.clone());
            j += 1;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
        i = j;
    }
    out
}

/// `CanonicalizedResource` (2009-09-19 and later): `/account/path` and the query parameters,
/// lower-cased names sorted, values decoded, multiple values sorted and comma-joined.
pub fn canonicalized_resource(account: &str, raw_path: &str, raw_query: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let mut out = format!("/{account}{path}");
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = pct_decode(k).to_ascii_lowercase();
        let v = pct_decode(v);
        match params.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vals)) => vals.push(v),
            None => params.push((k, vec![v])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, mut vals) in params {
        vals.sort();
        out.push('\n');
        out.push_str(&k);
        out.push(':');
        out.push_str(&vals.join(","));
    }
    out
}

/// The Shared Key string-to-sign. `Content-Length` is empty when zero (version 2015-02-21
/// and later; the caller's `x-ms-version` decides), `Date` is empty when `x-ms-date` is sent.
pub fn shared_key_string_to_sign(account: &str, input: &SharedKeyInput<'_>) -> String {
    let version = header(&input.headers, "x-ms-version").unwrap_or("");
    let has_xms_date = header(&input.headers, "x-ms-date").is_some();
    let mut s = String::new();
    s.push_str(&input.method.to_ascii_uppercase());
    s.push('\n');
    for name in SIGNED_HEADERS {
        let v = header(&input.headers, name).unwrap_or("");
        let v = match name {
            "content-length" if v == "0" && version >= "2015-02-21" => "",
            "date" if has_xms_date => "",
            _ => v,
        };
        s.push_str(v);
        s.push('\n');
    }
    s.push_str(&canonicalized_headers(&input.headers));
    s.push_str(&canonicalized_resource(
        account,
        input.raw_path,
        input.raw_query,
    ));
    s
}

/// Base64 HMAC-SHA256 of `string_to_sign` under the base64 `key`; `None` if the key is not
/// base64.
pub fn hmac_b64(key_b64: &str, string_to_sign: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64.trim())
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(string_to_sign.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// The fields of a service SAS (decoded values, as they appear in the token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SasFields {
    pub sv: String,
    pub sr: String,
    pub sp: String,
    pub st: String,
    pub se: String,
    pub si: String,
    pub sip: String,
    pub spr: String,
    pub snapshot_time: String,
    pub ses: String,
    pub rscc: String,
    pub rscd: String,
    pub rsce: String,
    pub rscl: String,
    pub rsct: String,
}

/// Versions whose service-SAS layout the fake knows.
pub const SAS_MIN_VERSION: &str = "2015-04-05";

/// The blob service SAS string-to-sign for `sv` (2015-04-05 and later), with
/// `canonical` = `/blob/{account}/{container}[/{blob}]`. Layout changes: 2018-11-09 adds
/// `signedResource` and `signedSnapshotTime`; 2020-12-06 adds `signedEncryptionScope`.
pub fn service_sas_string_to_sign(f: &SasFields, canonical: &str) -> String {
    let mut parts: Vec<&str> = vec![&f.sp, &f.st, &f.se, canonical, &f.si, &f.sip, &f.spr, &f.sv];
    if f.sv.as_str() >= "2018-11-09" {
        parts.push(&f.sr);
        parts.push(&f.snapshot_time);
    }
    if f.sv.as_str() >= "2020-12-06" {
        parts.push(&f.ses);
    }
    parts.extend([
        f.rscc.as_str(),
        f.rscd.as_str(),
        f.rsce.as_str(),
        f.rscl.as_str(),
        f.rsct.as_str(),
    ]);
    parts.join("\n")
}

/// The permission letters of a blob service SAS, in the order Azure requires them.
pub const SAS_PERMISSION_ORDER: &str = "racwdxltmeop";

/// Whether `sp` only uses known letters, each once, in the required order.
pub fn sas_permissions_well_formed(sp: &str) -> bool {
    let mut last = None;
    for c in sp.chars() {
        let Some(i) = SAS_PERMISSION_ORDER.find(c) else {
            return false;
        };
        if last.is_some_and(|l| i <= l) {
            return false;
        }
        last = Some(i);
    }
    !sp.is_empty()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[rstest]
    #[case::get_blob(
        "GET", "/mycontainer/hello.txt", "",
        &[("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"), ("x-ms-version", "2017-11-09")],
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2017-11-09\n/myaccount/mycontainer/hello.txt"
    )]
    #[case::put_blob_length(
        "PUT", "/c/b", "",
        &[("Content-Length", "21"), ("Content-Type", "text/plain"), ("x-ms-blob-type", "BlockBlob"), ("x-ms-date", "D"), ("x-ms-version", "2017-11-09")],
        "PUT\n\n\n21\n\ntext/plain\n\n\n\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/c/b"
    )]
    #[case::zero_length_new_version(
        "PUT", "/c", "restype=container",
        &[("Content-Length", "0"), ("x-ms-date", "D"), ("x-ms-version", "2017-11-09")],
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/c\nrestype:container"
    )]
    #[case::zero_length_old_version(
        "PUT", "/c", "restype=container",
        &[("Content-Length", "0"), ("x-ms-date", "D"), ("x-ms-version", "2014-02-14")],
        "PUT\n\n\n0\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2014-02-14\n/myaccount/c\nrestype:container"
    )]
    #[case::list_query_sorted(
        "GET", "/c", "restype=container&comp=list&include=metadata&include=snapshots",
        &[("x-ms-date", "D"), ("x-ms-version", "2017-11-09")],
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/c\ncomp:list\ninclude:metadata,snapshots\nrestype:container"
    )]
    #[case::date_kept_without_xms_date(
        "GET", "/c/b", "",
        &[("Date", "Sun, 11 Oct 2009 21:49:13 GMT"), ("x-ms-version", "2017-11-09")],
        "GET\n\n\n\n\n\nSun, 11 Oct 2009 21:49:13 GMT\n\n\n\n\n\nx-ms-version:2017-11-09\n/myaccount/c/b"
    )]
    #[case::encoded_path_and_folded_header(
        "GET", "/c/hello%20world.txt", "",
        &[("x-ms-date", "D"), ("X-MS-Meta-A", "  a   b "), ("x-ms-version", "2017-11-09")],
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-meta-a:a b\nx-ms-version:2017-11-09\n/myaccount/c/hello%20world.txt"
    )]
    #[case::account_root(
        "GET", "/", "comp=list",
        &[("x-ms-date", "D"), ("x-ms-version", "2017-11-09")],
        "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\nx-ms-version:2017-11-09\n/myaccount/\ncomp:list"
    )]
    fn shared_key_vectors(
        #[case] method: &str,
        #[case] path: &str,
        #[case] query: &str,
        #[case] headers: &[(&str, &str)],
        #[case] expected: &str,
    ) {
        let input = SharedKeyInput {
            method,
            raw_path: path,
            raw_query: query,
            headers: h(headers),
        };
        assert_eq!(shared_key_string_to_sign("myaccount", &input), expected);
    }

    /// The Azurite dev key and a vector confirmed against Azurite (see ci/azurite.sh).
    #[test]
    fn hmac_vector() {
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        let sig = hmac_b64(key, "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2017-11-09\n/devstoreaccount1/devstoreaccount1/c/b").unwrap();
        // Computed independently (Python hmac/hashlib) from the same string.
        assert_eq!(sig, "xH7XG8lVXsedmkQW7VTsgF/406jy1vrG74lNbc0+dNc=");
        assert_eq!(hmac_b64("not base64!", "x"), None);
    }

    #[rstest]
    #[case::v2015_container(
        SasFields { sv: "2015-04-05".into(), sr: "c".into(), sp: "rcw".into(), se: "2017-09-23T00:00:00Z".into(), spr: "https".into(), ..SasFields::default() },
        "/blob/myaccount/mycontainer",
        "rcw\n\n2017-09-23T00:00:00Z\n/blob/myaccount/mycontainer\n\n\nhttps\n2015-04-05\n\n\n\n\n"
    )]
    #[case::v2015_with_start(
        SasFields { sv: "2015-04-05".into(), sr: "c".into(), sp: "rcw".into(), st: "2017-09-22T00:10:00Z".into(), se: "2017-09-22T02:00:00Z".into(), spr: "https".into(), ..SasFields::default() },
        "/blob/myaccount/mycontainer",
        "rcw\n2017-09-22T00:10:00Z\n2017-09-22T02:00:00Z\n/blob/myaccount/mycontainer\n\n\nhttps\n2015-04-05\n\n\n\n\n"
    )]
    #[case::v2018_blob(
        SasFields { sv: "2018-11-09".into(), sr: "b".into(), sp: "r".into(), se: "2030-01-01T00:00:00Z".into(), ..SasFields::default() },
        "/blob/myaccount/c/b",
        "r\n\n2030-01-01T00:00:00Z\n/blob/myaccount/c/b\n\n\n\n2018-11-09\nb\n\n\n\n\n\n"
    )]
    #[case::v2020_encryption_scope(
        SasFields { sv: "2020-12-06".into(), sr: "c".into(), sp: "rl".into(), se: "2030-01-01T00:00:00Z".into(), spr: "https,http".into(), ..SasFields::default() },
        "/blob/myaccount/c",
        "rl\n\n2030-01-01T00:00:00Z\n/blob/myaccount/c\n\n\nhttps,http\n2020-12-06\nc\n\n\n\n\n\n\n"
    )]
    fn sas_vectors(#[case] f: SasFields, #[case] canonical: &str, #[case] expected: &str) {
        assert_eq!(service_sas_string_to_sign(&f, canonical), expected);
    }

    #[rstest]
    #[case("rcw", true)]
    #[case("racwdl", true)]
    #[case("r", true)]
    #[case("wr", false)]
    #[case("rr", false)]
    #[case("rq", false)]
    #[case("", false)]
    fn permission_order(#[case] sp: &str, #[case] ok: bool) {
        assert_eq!(sas_permissions_well_formed(sp), ok);
    }
}
