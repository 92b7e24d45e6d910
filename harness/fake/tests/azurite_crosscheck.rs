//! Independent cross-check of the fake Blob service against Azurite (Microsoft's emulator):
//! the Shared Key and service-SAS request sequences of the Storage scenarios are replayed
//! against both, and both must accept the valid requests and reject the same invalid ones
//! with the same status and error code. Shared Key requests are signed by mic-core's
//! `sign.rs` (the client the scenarios use); SAS tokens are computed client-side with the
//! string-to-sign the fake's `listServiceSas` uses (Azurite has no ARM).
//!
//! Runs only when `MIC_AZURITE_URL` is set (e.g. `http://127.0.0.1:10000`); `ci/azurite.sh`
//! starts a pinned Azurite and sets it.

#![allow(clippy::too_many_lines)]

mod common;

use std::fmt::Write as _;

use common::*;
use mic_core::backend::HttpRequest;
use mic_fake::blob::auth::{self, SasFields};
use serde_json::json;

/// Azurite's published development account and key.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const WRONG_KEY: &str =
    "AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One blob service: base URL ending in `/` (host-style on the fake, path-style on Azurite).
struct Target {
    name: &'static str,
    base: String,
    account: String,
    key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    status: u16,
    code: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{} {}", self.status, self.code)
        }
    }
}

async fn send(req: &HttpRequest) -> (Outcome, String) {
    let mut rb = client().request(
        reqwest::Method::from_bytes(req.method.as_bytes()).unwrap(),
        &req.url,
    );
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    if let Some(b) = &req.body {
        rb = rb.body(b.clone());
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.url));
    let status = r.status().as_u16();
    let header_code = r
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = r.text().await.unwrap_or_default();
    let code = header_code.unwrap_or_else(|| {
        text.split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(c, _)| c.to_owned())
            .unwrap_or_default()
    });
    (Outcome { status, code }, text)
}

/// A Shared Key request signed by mic-core (`tamper` edits the request after signing).
fn signed(
    t: &Target,
    key: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    tamper: fn(&mut HttpRequest),
) -> HttpRequest {
    let mut req = HttpRequest::new(method, format!("{}{path}", t.base));
    req.set_header("x-ms-version", "2019-12-12");
    for (k, v) in headers {
        req.set_header(k, *v);
    }
    req.body = body.map(<[u8]>::to_vec);
    mic_core::sign::shared_key(&t.account, key, &mut req).unwrap();
    tamper(&mut req);
    req
}

/// A service SAS computed client-side with the fake's listServiceSas string-to-sign.
fn sas(t: &Target, key: &str, f: &SasFields, resource: &str) -> String {
    let canonical = format!("/blob/{}/{resource}", t.account);
    let sig = auth::hmac_b64(key, &auth::service_sas_string_to_sign(f, &canonical)).unwrap();
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut q = format!("sv={}&sr={}", enc(&f.sv), enc(&f.sr));
    for (k, v) in [("spr", &f.spr), ("st", &f.st), ("se", &f.se), ("sp", &f.sp)] {
        if !v.is_empty() {
            let _ = write!(q, "&{k}={}", enc(v));
        }
    }
    let _ = write!(q, "&sig={}", enc(&sig));
    q
}

fn fields(sv: &str, sr: &str, sp: &str, se: &str) -> SasFields {
    SasFields {
        sv: sv.into(),
        sr: sr.into(),
        sp: sp.into(),
        se: se.into(),
        spr: "https,http".into(),
        ..SasFields::default()
    }
}

fn plain(
    t: &Target,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpRequest {
    let mut req = HttpRequest::new(method, format!("{}{path_and_query}", t.base));
    req.set_header("x-ms-version", "2019-12-12");
    for (k, v) in headers {
        req.set_header(k, *v);
    }
    req.body = body.map(<[u8]>::to_vec);
    req
}

fn flip_sig_byte(req: &mut HttpRequest) {
    for (k, v) in &mut req.headers {
        if k.eq_ignore_ascii_case("authorization") {
            let i = v.find(':').unwrap() + 1;
            let c = if &v[i..=i] == "A" { "B" } else { "A" };
            v.replace_range(i..=i, c);
        }
    }
}

fn add_header_after_signing(req: &mut HttpRequest) {
    req.set_header("x-ms-meta-added", "after-signing");
}

fn keep(_: &mut HttpRequest) {}

fn tamper_query(q: &str, key: &str, f: impl Fn(&str) -> String) -> String {
    q.split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) if k == key => format!("{k}={}", f(v)),
            _ => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The sequence: (label, request builder, expected outcome on both).
async fn run_cases(t: &Target, container: &str) -> Vec<(String, Outcome, String)> {
    let k = t.key.clone();
    let blob = format!("{container}/hello%20world.txt");
    let far = "2099-01-01T00:00:00Z";
    let rcw = sas(t, &k, &fields("2015-04-05", "c", "rcw", far), container);
    let ro = sas(t, &k, &fields("2015-04-05", "c", "r", far), container);
    let rl_2020 = sas(t, &k, &fields("2020-12-06", "c", "rl", far), container);
    let r_only_2020 = sas(t, &k, &fields("2020-12-06", "c", "r", far), container);
    let blob_2018 = sas(
        t,
        &k,
        &fields("2018-11-09", "b", "r", far),
        &format!("{container}/testblob"),
    );
    let expired = sas(
        t,
        &k,
        &fields("2015-04-05", "c", "rcw", "2017-09-22T02:00:00Z"),
        container,
    );
    let wrong_key_sas = sas(
        t,
        WRONG_KEY,
        &fields("2015-04-05", "c", "rcw", far),
        container,
    );
    let bb = [("x-ms-blob-type", "BlockBlob")];
    let cases: Vec<(&str, HttpRequest)> = vec![
        (
            "shared key: create container",
            signed(
                t,
                &k,
                "PUT",
                &format!("{container}?restype=container"),
                &[],
                None,
                keep,
            ),
        ),
        (
            "shared key: put blob (name with a space)",
            signed(
                t,
                &k,
                "PUT",
                &blob,
                &[
                    ("x-ms-blob-type", "BlockBlob"),
                    ("Content-Type", "text/plain"),
                ],
                Some(b"Hello world! :)"),
                keep,
            ),
        ),
        (
            "shared key: get blob",
            signed(t, &k, "GET", &blob, &[], None, keep),
        ),
        (
            "shared key: get blob properties",
            signed(t, &k, "HEAD", &blob, &[], None, keep),
        ),
        (
            "shared key: list blobs",
            signed(
                t,
                &k,
                "GET",
                &format!("{container}?restype=container&comp=list"),
                &[],
                None,
                keep,
            ),
        ),
        (
            "shared key: wrong key",
            signed(t, WRONG_KEY, "GET", &blob, &[], None, keep),
        ),
        (
            "shared key: one signature byte changed",
            signed(t, &k, "GET", &blob, &[], None, flip_sig_byte),
        ),
        (
            "shared key: x-ms- header added after signing",
            signed(t, &k, "GET", &blob, &[], None, add_header_after_signing),
        ),
        (
            "shared key: missing container",
            signed(t, &k, "GET", "nosuchcontainer/b", &[], None, keep),
        ),
        (
            "shared key: missing blob",
            signed(
                t,
                &k,
                "GET",
                &format!("{container}/nosuchblob"),
                &[],
                None,
                keep,
            ),
        ),
        (
            "sas rcw: put blob",
            plain(
                t,
                "PUT",
                &format!("{container}/testblob?{rcw}"),
                &bb,
                Some(b"This is a test file."),
            ),
        ),
        (
            "sas rcw: get blob",
            plain(t, "GET", &format!("{container}/testblob?{rcw}"), &[], None),
        ),
        (
            "sas: one sig byte changed",
            plain(
                t,
                "GET",
                &format!(
                    "{container}/testblob?{}",
                    tamper_query(&rcw, "sig", |v| format!("A{}", &v[1..]))
                ),
                &[],
                None,
            ),
        ),
        (
            "sas: permission letter removed (rcw -> rc)",
            plain(
                t,
                "GET",
                &format!(
                    "{container}/testblob?{}",
                    tamper_query(&rcw, "sp", |_| "rc".into())
                ),
                &[],
                None,
            ),
        ),
        (
            "sas: permission letter added (rcw -> rcwd)",
            plain(
                t,
                "DELETE",
                &format!(
                    "{container}/testblob?{}",
                    tamper_query(&rcw, "sp", |_| "rcwd".into())
                ),
                &[],
                None,
            ),
        ),
        (
            "sas r: put blob (no c/w)",
            plain(
                t,
                "PUT",
                &format!("{container}/testblob?{ro}"),
                &bb,
                Some(b"x"),
            ),
        ),
        (
            "sas r: get blob",
            plain(t, "GET", &format!("{container}/testblob?{ro}"), &[], None),
        ),
        (
            "sas expired (tutorial's 2017 expiry)",
            plain(
                t,
                "GET",
                &format!("{container}/testblob?{expired}"),
                &[],
                None,
            ),
        ),
        (
            "sas signed with another key",
            plain(
                t,
                "GET",
                &format!("{container}/testblob?{wrong_key_sas}"),
                &[],
                None,
            ),
        ),
        (
            "sas 2020-12-06 rl: list blobs",
            plain(
                t,
                "GET",
                &format!("{container}?restype=container&comp=list&{rl_2020}"),
                &[],
                None,
            ),
        ),
        (
            "sas 2020-12-06 r: list blobs (no l)",
            plain(
                t,
                "GET",
                &format!("{container}?restype=container&comp=list&{r_only_2020}"),
                &[],
                None,
            ),
        ),
        (
            "sas 2018-11-09 sr=b: get its blob",
            plain(
                t,
                "GET",
                &format!("{container}/testblob?{blob_2018}"),
                &[],
                None,
            ),
        ),
        (
            "sas 2018-11-09 sr=b: another blob",
            plain(t, "GET", &format!("{blob}?{blob_2018}"), &[], None),
        ),
        (
            "shared key: delete blob",
            signed(t, &k, "DELETE", &blob, &[], None, keep),
        ),
        (
            "shared key: get deleted blob",
            signed(t, &k, "GET", &blob, &[], None, keep),
        ),
    ];
    let mut out = Vec::new();
    for (label, req) in cases {
        let (o, text) = send(&req).await;
        out.push((label.to_owned(), o, text));
    }
    out
}

#[tokio::test]
async fn fake_and_azurite_agree() {
    let Ok(azurite) = std::env::var("MIC_AZURITE_URL") else {
        eprintln!(
            "MIC_AZURITE_URL not set: skipping the Azurite cross-check (ci/azurite.sh runs it)"
        );
        return;
    };
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    create_rg(&cloud, &tok, "rg").await;
    let id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/crosscheck1",
        rg_id(&cloud, "rg")
    );
    let r = call(
        "PUT",
        &format!("{}{id}?api-version=2023-01-01", cloud.arm_url()),
        Some(&tok),
        Some(json!({"location": "westus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let base = r.body["properties"]["primaryEndpoints"]["blob"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = call(
        "POST",
        &format!("{}{id}/listKeys?api-version=2023-01-01", cloud.arm_url()),
        Some(&tok),
        None,
    )
    .await;
    let fake = Target {
        name: "fake",
        base,
        account: "crosscheck1".into(),
        key: keys.body["keys"][0]["value"].as_str().unwrap().to_owned(),
    };
    let az = Target {
        name: "azurite",
        base: format!("{}/{DEV_ACCOUNT}/", azurite.trim_end_matches('/')),
        account: DEV_ACCOUNT.into(),
        key: DEV_KEY.into(),
    };
    let container = format!("xcheck{}", uuid::Uuid::new_v4().simple());
    let container = &container[..20];
    let a = run_cases(&fake, container).await;
    let b = run_cases(&az, container).await;
    let mut report = format!("{:<48} {:<36} {:<36}\n", "case", fake.name, az.name);
    let mut diverged = Vec::new();
    let mut known = 0;
    for ((label, fo, ft), (_, ao, at)) in a.iter().zip(&b) {
        // Known Azurite divergence: it answers authentication failures (bad Shared Key or SAS
        // signature, expired SAS) with `AuthorizationFailure`; Azure Storage answers
        // `AuthenticationFailed` (same status, same message). The fake follows Azure.
        let azurite_auth_code = fo.status == ao.status
            && fo.code == "AuthenticationFailed"
            && ao.code == "AuthorizationFailure"
            && at.contains("Server failed to authenticate the request");
        let same = fo == ao || azurite_auth_code;
        let mark = if fo == ao {
            ""
        } else if azurite_auth_code {
            known += 1;
            "  (known Azurite divergence: Azure says AuthenticationFailed)"
        } else {
            "  <-- DIVERGES"
        };
        let _ = writeln!(
            report,
            "{label:<48} {:<36} {:<36}{mark}",
            fo.to_string(),
            ao.to_string()
        );
        if !same {
            diverged.push(format!(
                "{label}: fake {fo} ({}) / azurite {ao} ({})",
                ft.chars().take(300).collect::<String>(),
                at.chars().take(300).collect::<String>()
            ));
        }
    }
    let _ = writeln!(
        report,
        "{} cases, {} identical, {known} differ only by Azurite's AuthorizationFailure code, {} diverge",
        a.len(),
        a.len() - known - diverged.len(),
        diverged.len()
    );
    println!("{report}");
    // Valid requests must be accepted by both, invalid ones refused by both.
    for (label, o, _) in &a {
        let should_pass = !label.contains("wrong")
            && !label.contains("changed")
            && !label.contains("after signing")
            && !label.contains("missing")
            && !label.contains("removed")
            && !label.contains("added (")
            && !label.contains("(no ")
            && !label.contains("expired")
            && !label.contains("another")
            && !label.contains("deleted blob");
        assert_eq!(
            (200..300).contains(&o.status),
            should_pass,
            "fake: {label}: {o}"
        );
    }
    cloud.shutdown().await;
    assert!(
        diverged.is_empty(),
        "fake and Azurite disagree:\n{}",
        diverged.join("\n")
    );
}
