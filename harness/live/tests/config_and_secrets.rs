//! Configuration errors name every missing variable; credentials sign in and cache; no
//! secret reaches Debug, Display, errors, plans or logs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{CLIENT, SECRET, SUB, TENANT, TempDir};
use mic_core::model::Os;
use mic_live::config::CloudEndpoints;
use mic_live::credential::{AuthError, CredentialSource, TokenCache};
use mic_live::shard::Shard;
use mic_live::transport::{RetryPolicy, Transport};
use mic_live::{LiveConfig, plan};
use rstest::rstest;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

const BASE: &[(&str, &str)] = &[
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_SUBSCRIPTION_ID", SUB),
    ("AZURE_LOCATION", "eastus"),
];

#[rstest]
#[case::nothing_set(&[], None, &["AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION", "deployer credentials"])]
#[case::only_credentials(&[("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET)], None, &["AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION"])]
#[case::client_id_without_secret(&[("AZURE_TENANT_ID", TENANT), ("AZURE_SUBSCRIPTION_ID", SUB), ("AZURE_LOCATION", "eastus"), ("AZURE_CLIENT_ID", CLIENT)], None, &["AZURE_CLIENT_SECRET"])]
#[case::secret_mode_missing_both(&[("MIC_LIVE_AUTH", "client-secret")], None, &["AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"])]
#[case::github_mode_missing(&[("MIC_LIVE_AUTH", "github-oidc"), ("AZURE_CLIENT_ID", CLIENT)], None, &["AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"])]
#[case::federated_file_missing(&[("AZURE_TENANT_ID", TENANT), ("AZURE_SUBSCRIPTION_ID", SUB), ("AZURE_LOCATION", "eastus"), ("AZURE_CLIENT_ID", CLIENT), ("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token")], None, &["AZURE_FEDERATED_TOKEN_FILE"])]
#[case::invalid_values(&[("AZURE_TENANT_ID", TENANT), ("AZURE_SUBSCRIPTION_ID", "not-a-guid"), ("AZURE_LOCATION", "East US"), ("MIC_LIVE_CLOUD", "Mars"), ("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET), ("MIC_LIVE_TTL_HOURS", "soon"), ("MIC_LIVE_ARM_ENDPOINT", "http://example.com")], None, &["AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION", "MIC_LIVE_CLOUD", "MIC_LIVE_ARM_ENDPOINT", "MIC_LIVE_TTL_HOURS"])]
#[case::az_mode_without_az(&[("AZURE_TENANT_ID", TENANT), ("AZURE_SUBSCRIPTION_ID", SUB), ("AZURE_LOCATION", "eastus"), ("MIC_LIVE_AUTH", "azure-cli")], None, &["MIC_LIVE_AZ"])]
#[case::expired_access_token(&[("AZURE_TENANT_ID", TENANT), ("AZURE_SUBSCRIPTION_ID", SUB), ("AZURE_LOCATION", "eastus"), ("AZURE_ACCESS_TOKEN", "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjEwMDB9.c2ln")], None, &["AZURE_ACCESS_TOKEN"])]
fn every_problem_is_reported_with_its_variable(
    #[case] vars: &[(&str, &str)],
    #[case] az: Option<&Path>,
    #[case] expected: &[&str],
) {
    let err = LiveConfig::from_map(&map(vars), az).expect_err("incomplete configuration");
    assert_eq!(err.variables(), expected, "{err}");
    let text = err.to_string();
    for v in expected {
        assert!(text.contains(v), "{text}");
    }
    assert!(!text.contains(SECRET), "{text}");
}

#[rstest]
#[case::client_secret(&[("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET)], "client secret")]
#[case::github(&[("AZURE_CLIENT_ID", CLIENT), ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://token.actions.example/x?api-version=2.0"), ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", SECRET)], "GitHub Actions OIDC")]
#[case::azure_cli(&[], "Azure CLI")]
fn complete_configurations_pick_their_credential(
    #[case] creds: &[(&str, &str)],
    #[case] kind: &str,
) {
    let mut vars = map(BASE);
    vars.extend(map(creds));
    let config = LiveConfig::from_map(&vars, Some(Path::new("/usr/bin/az"))).unwrap();
    assert!(
        config.credential.describe().contains(kind),
        "{}",
        config.credential.describe()
    );
    assert_eq!(config.cloud, CloudEndpoints::preset("AzureCloud").unwrap());
    for text in [format!("{config:?}"), config.summary()] {
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn sovereign_cloud_presets_and_overrides() {
    let mut vars = map(BASE);
    vars.extend(map(&[
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
        ("MIC_LIVE_CLOUD", "azurechinacloud"),
        ("MIC_LIVE_STORAGE_SUFFIX", ".core.example"),
    ]));
    let c = LiveConfig::from_map(&vars, None).unwrap();
    assert_eq!(c.cloud.arm, "https://management.chinacloudapi.cn");
    assert_eq!(c.cloud.login, "https://login.chinacloudapi.cn");
    assert_eq!(c.cloud.storage_suffix, "core.example");
    assert_eq!(
        CloudEndpoints::preset("AzureUSGovernment")
            .unwrap()
            .keyvault_suffix,
        "vault.usgovcloudapi.net"
    );
}

fn cache(server: &MockServer, source: CredentialSource) -> TokenCache {
    TokenCache::new(
        source,
        &server.uri(),
        TENANT,
        Transport::new(RetryPolicy::fast(), None).unwrap(),
    )
}

#[tokio::test]
async fn client_secret_sign_in_is_cached_and_refused_sign_in_names_the_variables() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/{TENANT}/oauth2/token")))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_secret=Sup3r"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "tok-1", "expires_in": "3599"})),
        )
        .expect(1)
        .named("one sign-in for two token requests")
        .mount(&server)
        .await;
    let c = cache(
        &server,
        CredentialSource::ClientSecret {
            client_id: CLIENT.into(),
            secret: mic_core::backend::Secret::new(SECRET),
        },
    );
    assert_eq!(
        c.token("https://management.azure.com/")
            .await
            .unwrap()
            .token
            .expose(),
        "tok-1"
    );
    assert_eq!(
        c.token("https://management.azure.com/")
            .await
            .unwrap()
            .token
            .expose(),
        "tok-1"
    );
    assert!(!format!("{c:?}").contains(SECRET));

    let bad = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"})))
        .mount(&bad)
        .await;
    let c = cache(
        &bad,
        CredentialSource::ClientSecret {
            client_id: CLIENT.into(),
            secret: mic_core::backend::Secret::new(SECRET),
        },
    );
    let err = c.token("https://management.azure.com/").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AuthError::Refused { status: 401, .. }));
    assert!(
        text.contains("AADSTS7000215")
            && text.contains("AZURE_CLIENT_SECRET")
            && !text.contains(SECRET),
        "{text}"
    );
}

#[tokio::test]
async fn an_expiring_token_is_refreshed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "short", "expires_in": 60})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let c = cache(
        &server,
        CredentialSource::ClientSecret {
            client_id: CLIENT.into(),
            secret: mic_core::backend::Secret::new(SECRET),
        },
    );
    c.token("a").await.unwrap();
    c.token("a").await.unwrap();
}

#[tokio::test]
async fn federated_file_and_github_oidc_send_a_client_assertion() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/gh"))
        .and(wiremock::matchers::query_param(
            "audience",
            "api://AzureADTokenExchange",
        ))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer gh-request-secret",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": "gh-assertion"})))
        .expect(1)
        .mount(&server)
        .await;
    for assertion in ["file-assertion", "gh-assertion"] {
        Mock::given(method("POST"))
            .and(body_string_contains(format!("client_assertion={assertion}").as_str()))
            .and(body_string_contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": format!("tok-{assertion}"), "expires_in": 3600})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let dir = TempDir::new();
    let file = dir.0.join("token");
    std::fs::write(&file, "file-assertion\n").unwrap();
    let c = cache(
        &server,
        CredentialSource::FederatedTokenFile {
            client_id: CLIENT.into(),
            path: file,
        },
    );
    assert_eq!(
        c.token("a").await.unwrap().token.expose(),
        "tok-file-assertion"
    );
    let c = cache(
        &server,
        CredentialSource::GitHubOidc {
            client_id: CLIENT.into(),
            request_url: format!("{}/gh?api-version=2.0", server.uri()),
            request_token: mic_core::backend::Secret::new("gh-request-secret"),
        },
    );
    assert_eq!(
        c.token("a").await.unwrap().token.expose(),
        "tok-gh-assertion"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_azure_cli_fallback_runs_az_account_get_access_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new();
    let az = dir.0.join("az");
    let exp = common::now() + 3600;
    std::fs::write(
        &az,
        format!("#!/bin/sh\n[ \"$1 $2\" = \"account get-access-token\" ] || exit 3\necho '{{\"accessToken\": \"cli-token\", \"expires_on\": {exp}, \"tokenType\": \"Bearer\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = MockServer::start().await;
    let c = cache(
        &server,
        CredentialSource::AzureCli {
            program: az.clone(),
        },
    );
    let t = c.token("https://management.azure.com/").await.unwrap();
    assert_eq!(t.token.expose(), "cli-token");
    assert_eq!(t.expires_at.unix_timestamp(), exp);

    std::fs::write(
        &az,
        "#!/bin/sh\necho 'ERROR: Please run az login to setup account.' >&2\nexit 1\n",
    )
    .unwrap();
    let c = cache(&server, CredentialSource::AzureCli { program: az });
    let err = c.token("x").await.unwrap_err().to_string();
    assert!(err.contains("Please run az login"), "{err}");
}

#[test]
fn sharding_is_a_stable_partition() {
    let ids: Vec<String> = (0..200).map(|i| format!("area/scenario-{i}")).collect();
    for n in 1..=6 {
        let shards: Vec<Shard> = (1..=n)
            .map(|i| format!("{i}/{n}").parse().unwrap())
            .collect();
        for id in &ids {
            assert_eq!(
                shards.iter().filter(|s| s.contains(id)).count(),
                1,
                "{id} in exactly one of {n} shards"
            );
        }
        if n > 1 {
            assert!(
                shards
                    .iter()
                    .all(|s| !s.select(ids.iter(), |x| x.as_str()).is_empty()),
                "no empty shard of {n}"
            );
        }
    }
    // Stable: a fixed value, whatever the platform.
    assert_eq!(
        mic_live::shard::stable_hash("arm/linux-vm-system-assigned"),
        mic_live::shard::stable_hash("arm/linux-vm-system-assigned")
    );
    assert_eq!(mic_live::shard::stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    for bad in ["0/2", "3/2", "1/0", "x", "1-2"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

#[test]
fn the_dry_run_plan_lists_resources_and_cost_without_secrets() {
    let mut vars = map(BASE);
    vars.extend(map(&[
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ]));
    let config = LiveConfig::from_map(&vars, None).unwrap();
    let s = common::vm_system_assigned(Os::Linux);
    let text = plan::render(&[&s], Ok(&config));
    for want in [
        "resource group myResourceGroup-${run_id}",
        "virtual network myVM-vnet",
        "network interface myVM-nic",
        "VM myVM",
        "Standard_B1s",
        "role assignment Reader",
        "Run Command",
        "estimate: ~$",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }
    assert!(!text.contains(SECRET));
    let err = LiveConfig::from_map(&BTreeMap::new(), None).unwrap_err();
    let text = plan::render(&[&s], Err(&err));
    assert!(
        text.contains("AZURE_TENANT_ID") && text.contains("VM myVM"),
        "{text}"
    );
}

#[test]
fn progress_lines_are_plain_in_ci() {
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let p = mic_live::progress::Progress::lines(Arc::new(move |l: &str| {
        sink.lock().unwrap().push(l.to_string());
    }));
    p.scenario_started("arm/x#1");
    p.activity("arm/x#1", "PUT virtualMachines/myVM");
    p.scenario_finished("arm/x#1", "passed");
    let l = lines.lock().unwrap();
    assert_eq!(l.len(), 3);
    assert!(
        l[1].ends_with("arm/x#1: PUT virtualMachines/myVM"),
        "{}",
        l[1]
    );
}
