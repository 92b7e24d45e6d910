//! Blob GET with Shared Key: requests per second from one client with keep-alive, against
//! the fake Blob service and (when `MIC_AZURITE_URL` is set) against Azurite, side by side in
//! one run with the same client and the same signing code (mic-core's `sign.rs`).
//!
//! `cargo bench -p mic-fake --bench blob_get` (ci/azurite.sh runs it with Azurite up).
//! `MIC_BENCH_SECS` sets the measuring time per target (default 3).

use std::time::{Duration, Instant};

use mic_core::backend::HttpRequest;
use mic_fake::{FakeCloud, FakeConfig};
use serde_json::{Value, json};

const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn send(c: &reqwest::Client, req: HttpRequest) -> (u16, usize) {
    let mut rb = c.request(
        reqwest::Method::from_bytes(req.method.as_bytes()).expect("method"),
        &req.url,
    );
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    if let Some(b) = req.body {
        rb = rb.body(b);
    }
    let r = rb.send().await.expect("send");
    let s = r.status().as_u16();
    let n = r.bytes().await.map_or(0, |b| b.len());
    (s, n)
}

fn signed(
    base: &str,
    account: &str,
    key: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpRequest {
    let mut req = HttpRequest::new(method, format!("{base}{path}"));
    req.set_header("x-ms-version", "2019-12-12");
    for (k, v) in headers {
        req.set_header(k, *v);
    }
    req.body = body.map(<[u8]>::to_vec);
    mic_core::sign::shared_key(account, key, &mut req).expect("sign");
    req
}

/// Measure GETs of one 1 KiB blob for `secs`; returns requests per second.
async fn measure(c: &reqwest::Client, base: &str, account: &str, key: &str, secs: u64) -> f64 {
    let container = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (s, _) = send(
        c,
        signed(
            base,
            account,
            key,
            "PUT",
            &format!("{container}?restype=container"),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(s, 201, "create container on {base}");
    let data = vec![b'x'; 1024];
    let (s, _) = send(
        c,
        signed(
            base,
            account,
            key,
            "PUT",
            &format!("{container}/blob"),
            &[("x-ms-blob-type", "BlockBlob")],
            Some(&data),
        ),
    )
    .await;
    assert_eq!(s, 201, "put blob on {base}");
    // Warm up, then measure.
    for _ in 0..50 {
        send(
            c,
            signed(
                base,
                account,
                key,
                "GET",
                &format!("{container}/blob"),
                &[],
                None,
            ),
        )
        .await;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let (s, len) = send(
            c,
            signed(
                base,
                account,
                key,
                "GET",
                &format!("{container}/blob"),
                &[],
                None,
            ),
        )
        .await;
        assert!(s == 200 && len == 1024, "GET on {base}: {s}");
        n += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let rps = n as f64 / start.elapsed().as_secs_f64();
    rps
}

async fn fake_account(cloud: &FakeCloud) -> (String, String) {
    let c = client();
    let d = cloud.deployer();
    let v: Value = c
        .post(format!(
            "{}/{}/oauth2/token",
            cloud.login_url(),
            cloud.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("resource", "https://management.azure.com/"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let tok = v["access_token"].as_str().expect("access_token").to_owned();
    let rg = format!(
        "{}/subscriptions/{}/resourceGroups/bench",
        cloud.arm_url(),
        cloud.subscription_id()
    );
    c.put(format!("{rg}?api-version=2021-04-01"))
        .bearer_auth(&tok)
        .json(&json!({"location": "westus"}))
        .send()
        .await
        .expect("rg");
    let acct = format!("{rg}/providers/Microsoft.Storage/storageAccounts/benchaccount");
    let v: Value = c
        .put(format!("{acct}?api-version=2023-01-01"))
        .bearer_auth(&tok)
        .json(&json!({"location": "westus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}))
        .send()
        .await
        .expect("account")
        .json()
        .await
        .expect("account json");
    let base = v["properties"]["primaryEndpoints"]["blob"]
        .as_str()
        .expect("blob endpoint")
        .to_owned();
    let keys: Value = c
        .post(format!("{acct}/listKeys?api-version=2023-01-01"))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("keys json");
    (
        base,
        keys["keys"][0]["value"].as_str().expect("key").to_owned(),
    )
}

fn main() {
    let secs: u64 = std::env::var("MIC_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cloud = FakeCloud::start(FakeConfig::default())
            .await
            .expect("fake cloud");
        let (base, key) = fake_account(&cloud).await;
        let c = client();
        let fake = measure(&c, &base, "benchaccount", &key, secs).await;
        println!("blob GET (Shared Key, 1 KiB, one keep-alive client): fake    {fake:>8.0} req/s");
        if let Ok(az) = std::env::var("MIC_AZURITE_URL") {
            let c = client();
            let base = format!("{}/{DEV_ACCOUNT}/", az.trim_end_matches('/'));
            let azurite = measure(&c, &base, DEV_ACCOUNT, DEV_KEY, secs).await;
            println!(
                "blob GET (Shared Key, 1 KiB, one keep-alive client): azurite {azurite:>8.0} req/s"
            );
            println!("ratio fake/azurite: {:.2}", fake / azurite);
        } else {
            println!("(MIC_AZURITE_URL not set: Azurite not measured)");
        }
        cloud.shutdown().await;
    });
}
