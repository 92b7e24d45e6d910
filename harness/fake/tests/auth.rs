//! Token service and ARM authentication: the rules must be able to fail.

#![allow(clippy::many_single_char_names, clippy::too_many_lines)]
// Durations stay in seconds: `from_mins`/`from_hours` are newer than the workspace MSRV.
#![allow(clippy::duration_suboptimal_units)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn decode_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn decode_header(token: &str) -> Value {
    use base64::Engine as _;
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn deployer_token_v1_and_v2() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let h = decode_header(&tok);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["kid"], h["x5t"]);
    let c = decode_claims(&tok);
    assert_eq!(c["aud"], ARM);
    assert_eq!(
        c["iss"],
        format!("https://sts.windows.net/{}/", cloud.tenant_id())
    );
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["oid"], cloud.deployer().object_id);

    let d = cloud.deployer();
    let r = client()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            cloud.login_url(),
            cloud.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("scope", "https://management.core.windows.net//.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["expires_in"].is_number());
    let c = decode_claims(v["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "https://management.core.windows.net/");
    // The token works against ARM.
    let r = call(
        "GET",
        &format!(
            "{}/subscriptions/{}?api-version=2016-06-01",
            cloud.arm_url(),
            cloud.subscription_id()
        ),
        v["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    cloud.shutdown().await;
}

#[rstest::rstest]
#[case::bad_secret(&[("grant_type", "client_credentials"), ("client_id", "$CID"), ("client_secret", "nope"), ("resource", ARM)], 401, "invalid_client", 7_000_215)]
#[case::unknown_client(&[("grant_type", "client_credentials"), ("client_id", "00000000-0000-0000-0000-000000000001"), ("client_secret", "x"), ("resource", ARM)], 400, "unauthorized_client", 700_016)]
#[case::grant_type(&[("grant_type", "password"), ("client_id", "$CID"), ("client_secret", "$SECRET"), ("resource", ARM)], 400, "unsupported_grant_type", 70003)]
#[case::missing_grant(&[("client_id", "$CID")], 400, "invalid_request", 900_144)]
#[case::missing_secret(&[("grant_type", "client_credentials"), ("client_id", "$CID"), ("resource", ARM)], 401, "invalid_client", 7_000_218)]
#[case::unknown_resource(&[("grant_type", "client_credentials"), ("client_id", "$CID"), ("client_secret", "$SECRET"), ("resource", "https://nothing.example/")], 400, "invalid_resource", 500_011)]
#[tokio::test]
async fn token_service_errors(
    #[case] form: &[(&str, &str)],
    #[case] status: u16,
    #[case] error: &str,
    #[case] code: u64,
) {
    let cloud = world().await;
    let d = cloud.deployer();
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                v.replace("$CID", &d.client_id)
                    .replace("$SECRET", &d.client_secret),
            )
        })
        .collect();
    let r = client()
        .post(format!(
            "{}/{}/oauth2/token",
            cloud.login_url(),
            cloud.tenant_id()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), status);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], error);
    assert_eq!(v["error_codes"], json!([code]));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:"))
    );
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(v[k].is_string(), "{k}");
    }
}

#[tokio::test]
async fn unknown_tenant_and_discovery() {
    let cloud = world().await;
    let r = client()
        .post(format!(
            "{}/{}/oauth2/token",
            cloud.login_url(),
            uuid::Uuid::new_v4()
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_codes"], json!([90002]));

    let r = call(
        "GET",
        &format!(
            "{}/{}/.well-known/openid-configuration",
            cloud.login_url(),
            cloud.tenant_id()
        ),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["issuer"],
        format!("https://sts.windows.net/{}/", cloud.tenant_id())
    );
    let jwks = call("GET", r.body["jwks_uri"].as_str().unwrap(), None, None).await;
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kty"], "RSA");
    // The JWKS key validates a real token.
    let tok = deployer_token(&cloud).await;
    assert_eq!(decode_header(&tok)["kid"], key["kid"]);
    let dk = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(&tok, &dk, &v).unwrap();
}

fn foreign_signed(claims: &Value) -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let der = key.to_pkcs1_der().unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.typ = Some("JWT".into());
    jsonwebtoken::encode(
        &h,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn arm_rejects_bad_tokens() {
    let cloud = world().await;
    let url = format!(
        "{}/subscriptions/{}/resourcegroups?api-version=2016-09-01",
        cloud.arm_url(),
        cloud.subscription_id()
    );
    let good = deployer_token(&cloud).await;
    assert_eq!(call("GET", &url, Some(&good), None).await.status, 200);

    // Missing header.
    let r = call("GET", &url, None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "AuthenticationFailed");
    assert_eq!(
        r.body["error"]["message"],
        "Authentication failed. The 'Authorization' header is missing."
    );
    assert!(r.headers.contains_key("www-authenticate"));

    // Garbage.
    let r = call("GET", &url, Some("not.a.jwt"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationToken");

    // Same claims, signed by another key.
    let forged = foreign_signed(&decode_claims(&good));
    let r = call("GET", &url, Some(&forged), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationToken");
    assert!(cloud.verify_token(&forged, &[ARM]).is_err());

    // Wrong audience.
    let d = cloud.deployer();
    let r = client()
        .post(format!(
            "{}/{}/oauth2/token",
            cloud.login_url(),
            cloud.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("resource", "https://vault.azure.net"),
        ])
        .send()
        .await
        .unwrap();
    let vault: Value = r.json().await.unwrap();
    let r = call("GET", &url, vault["access_token"].as_str(), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["error"]["code"],
        "InvalidAuthenticationTokenAudience"
    );
    assert_eq!(
        r.body["error"]["message"],
        "The access token has been obtained for wrong audience or resource 'https://vault.azure.net'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
    );

    // A token of another world (same signing key, other issuer).
    let other = world().await;
    let other_tok = deployer_token(&other).await;
    let r = call("GET", &url, Some(&other_tok), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationTokenTenant");

    // Expired.
    cloud.advance_clock(Duration::from_secs(2 * 3600));
    let r = call("GET", &url, Some(&good), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], "ExpiredAuthenticationToken");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("The access token expiry UTC time '")
            && msg.contains("' is earlier than current UTC time '"),
        "{msg}"
    );
    assert!(matches!(
        cloud.verify_token(&good, &[ARM]),
        Err(mic_fake::TokenError::Expired { .. })
    ));
    cloud.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn missing_api_version_comes_first() {
    let cloud = world().await;
    let r = call(
        "GET",
        &format!(
            "{}/subscriptions/{}/resourcegroups",
            cloud.arm_url(),
            cloud.subscription_id()
        ),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "MissingApiVersionParameter");
    assert_eq!(
        r.body["error"]["message"],
        "The api-version query parameter (?api-version=) is required for all requests."
    );
    assert!(r.headers.contains_key("x-ms-request-id"));
    assert!(r.headers.contains_key("x-ms-correlation-request-id"));
}
