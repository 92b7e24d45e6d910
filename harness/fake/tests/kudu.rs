//! The Kudu (SCM) site of an App Service app over real HTTP: `POST /api/command` runs mic's
//! in-host script against the site's identity endpoint; Entra bearer tokens for ARM with
//! `Microsoft.Web/sites/publish/Action` on the site only (401 / 403 otherwise); garbage never
//! makes it panic or drop the connection.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use serde_json::{Value, json};

const WEB_API: &str = "2022-03-01";

struct Site {
    id: String,
    scm: String,
}

async fn site(cloud: &mic_fake::FakeCloud, tok: &str, identity: bool) -> Site {
    create_rg(cloud, tok, "rg").await;
    let id = format!("{}/providers/Microsoft.Web/sites/myapp", rg_id(cloud, "rg"));
    let mut body = json!({"location": "westus", "kind": "app", "properties": {}});
    if identity {
        body["identity"] = json!({"type": "SystemAssigned"});
    }
    let r = call(
        "PUT",
        &format!("{}{id}?api-version={WEB_API}", cloud.arm_url()),
        Some(tok),
        Some(body),
    )
    .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let states = r.body["properties"]["hostNameSslStates"]
        .as_array()
        .unwrap()
        .clone();
    let repo = states
        .iter()
        .find(|s| s["hostType"] == "Repository")
        .expect("a Repository host");
    let scm = format!("http://{}", repo["name"].as_str().unwrap());
    assert!(
        r.body["properties"]["enabledHostNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == &repo["name"])
    );
    // Registered under the name the live backend would use.
    assert!(
        cloud
            .service_urls()
            .iter()
            .any(|(n, u)| n == "scm:myapp" && *u == scm),
        "{:?}",
        cloud.service_urls()
    );
    Site { id, scm }
}

/// The script shape mic-live sends (`mic_live::kudu::linux_script`), by hand.
fn script(nonce: &str, header: Option<&str>, query: &str) -> String {
    let h = header.map_or(String::new(), |v| format!(" -H {v}"));
    format!(
        "mic_ep=\"${{IDENTITY_ENDPOINT:-$MSI_ENDPOINT}}\"\n\
         mic_hd=\"${{IDENTITY_HEADER:-$MSI_SECRET}}\"\n\
         mic_h=$(mktemp); mic_b=$(mktemp)\n\
         mic_err=$(curl -sS -g --noproxy '*' --max-time 60 -X 'GET'{h} -D \"$mic_h\" -o \"$mic_b\" \"$mic_ep\"'{query}' </dev/null 2>&1)\n\
         mic_rc=$?\n\
         echo 'MIC-BEGIN v1 {nonce}'\n"
    )
}

fn command(script: &str) -> Value {
    json!({"command": format!("echo {} | base64 -d | bash", B64.encode(script)), "dir": "site/wwwroot"})
}

/// The frame's status line and body from Kudu's `Output`.
fn frame(output: &str, nonce: &str) -> (u16, Value) {
    let begin = output
        .find(&format!("MIC-BEGIN v1 {nonce}"))
        .expect("frame");
    let mut head = None;
    let mut body = None;
    for l in output[begin..].lines() {
        if let Some(h) = l.strip_prefix("head ") {
            head = Some(String::from_utf8(B64.decode(h).unwrap()).unwrap());
        }
        if let Some(b) = l.strip_prefix("body-gz ") {
            let gz = B64.decode(b).unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut out)
                .unwrap();
            body = Some(serde_json::from_slice(&out).unwrap_or(Value::Null));
        }
    }
    let status = head
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (status, body.unwrap())
}

const Q: &str = "?api-version=2019-08-01&resource=https://management.azure.com/";

#[tokio::test]
async fn kudu_runs_the_in_host_script_against_the_sites_identity_endpoint() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let s = site(&cloud, &tok, true).await;
    let url = format!("{}/api/command", s.scm);

    let r = call(
        "POST",
        &url,
        Some(&tok),
        Some(command(&script(
            "n1",
            Some("\"X-IDENTITY-HEADER: $mic_hd\""),
            Q,
        ))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["ExitCode"], 0, "{}", r.body);
    assert_eq!(r.body["Error"], "");
    let (status, body) = frame(r.body["Output"].as_str().unwrap(), "n1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    let claims = cloud.verify_token(token, &[ARM]).unwrap();
    let principal = cloud.directory();
    assert!(principal.get(&claims.oid).is_some());

    // Without the header: the identity endpoint's own 400, through Kudu.
    let r = call(
        "POST",
        &url,
        Some(&tok),
        Some(command(&script("n2", None, Q))),
    )
    .await;
    let (status, body) = frame(r.body["Output"].as_str().unwrap(), "n2");
    assert_eq!(status, 400, "{body}");

    // A site without identity has no IDENTITY_ENDPOINT: curl cannot even start (exit 3).
    let r = call(
        "DELETE",
        &format!("{}{}?api-version={WEB_API}", cloud.arm_url(), s.id),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    // The deleted site's Kudu is gone.
    assert!(
        client()
            .post(&url)
            .bearer_auth(&tok)
            .json(&json!({}))
            .send()
            .await
            .is_err()
    );
    let bare = site(&cloud, &tok, false).await;
    let r = call(
        "POST",
        &format!("{}/api/command", bare.scm),
        Some(&tok),
        Some(command(&script(
            "n3",
            Some("\"X-IDENTITY-HEADER: $mic_hd\""),
            Q,
        ))),
    )
    .await;
    let out = r.body["Output"].as_str().unwrap();
    assert!(out.contains("MIC-BEGIN v1 n3\nexit 3\n"), "{out}");
    cloud.shutdown().await;
}

#[tokio::test]
async fn kudu_wants_an_arm_token_with_publish_access_on_the_site() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let s = site(&cloud, &tok, true).await;
    let url = format!("{}/api/command", s.scm);
    let body = command(&script("n", None, Q));

    // No token, a non-bearer scheme, a token for another audience, a flipped signature: 401.
    let vault_tok = deployer_token_for(&cloud, "https://vault.azure.net").await;
    let mut flipped = tok.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for t in [None, Some(vault_tok.as_str()), Some(flipped.as_str())] {
        let r = call("POST", &url, t, Some(body.clone())).await;
        assert_eq!(r.status, 401, "{t:?}: {}", r.body);
    }
    let r = client()
        .post(&url)
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The site's own identity: a valid ARM token, but no right on the site: 403; Reader is
    // not enough either; Contributor (sites/publish/Action through `*`) is.
    let (ep, secret) = cloud.app_service_identity(&s.id).unwrap();
    let r = client()
        .get(format!("{ep}{Q}"))
        .header("X-IDENTITY-HEADER", &secret)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let site_tok = v["access_token"].as_str().unwrap().to_owned();
    let oid = cloud.verify_token(&site_tok, &[ARM]).unwrap().oid;
    let r = call("POST", &url, Some(&site_tok), Some(body.clone())).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .as_str()
            .unwrap()
            .contains("Microsoft.Web/sites/publish/Action")
    );
    assert_eq!(assign(&cloud, &tok, &s.id, READER, &oid).await.status, 201);
    let r = call("POST", &url, Some(&site_tok), Some(body.clone())).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        assign(&cloud, &tok, &s.id, CONTRIBUTOR, &oid).await.status,
        201
    );
    let r = call("POST", &url, Some(&site_tok), Some(body.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    cloud.shutdown().await;
}

#[tokio::test]
async fn kudu_answers_garbage_like_kudu_and_never_panics() {
    let cloud = world().await;
    let tok = deployer_token(&cloud).await;
    let s = site(&cloud, &tok, true).await;
    let url = format!("{}/api/command", s.scm);
    let send = |method: &'static str, url: String, body: Vec<u8>, auth: bool| {
        let tok = tok.clone();
        async move {
            let mut rb = client()
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    &url,
                )
                .body(body);
            if auth {
                rb = rb.bearer_auth(tok);
            }
            let r = rb
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: connection failed: {e}"));
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    // Not a JSON object: 400 with an empty body, as Kudu's controller answers.
    for body in [
        b"".to_vec(),
        b"{".to_vec(),
        b"[1]".to_vec(),
        b"\"x\"".to_vec(),
        vec![0xff, 0xfe, 0x00],
    ] {
        let (st, text) = send("POST", url.clone(), body, true).await;
        assert_eq!(st, 400, "{text}");
        assert!(text.is_empty());
    }
    // Too large to buffer: refused before parsing.
    let (st, _) = send("POST", url.clone(), vec![b'a'; 3 * 1024 * 1024], true).await;
    assert_eq!(st, 413);
    // A JSON object whose command is missing, not ours, or a broken variant of ours: 200 and
    // the failure in `Error` / `ExitCode`, never a 5xx.
    let broken = [
        "mic_err=$(curl 'http://x' 2>&1)",
        "echo 'MIC-BEGIN v1 n'\nmic_err=$(curl '",
        "echo 'MIC-BEGIN v1 n'\nmic_err=$(curl -H)",
        "echo 'MIC-BEGIN v1 n'\nmic_err=$(curl --frobnicate x)",
        "echo 'MIC-BEGIN v1 n'\nmic_err=$(printf '%s' '!!' | base64 -d | curl --data-binary @- 'http://x')",
        "echo 'MIC-BEGIN v1 n'\nx=\"${\"\nmic_err=$(curl \"${IDENTITY_ENDPOINT:-\" 2>&1)",
        "echo 'MIC-BEGIN v1 n'\nmic_err=$(curl -X 'BAD METHOD' 'http://127.0.0.1:1/' 2>&1)",
        "echo 'MIC-BEGIN v1 n'\nmic_err=$(curl 'ftp://x' 2>&1)",
        "echo 'MIC-BEGIN v1 \u{1F600}'\nmic_err=$(curl 'http://x' 2>&1)",
    ];
    let mut bodies = vec![
        json!({}),
        json!({"command": 5}),
        json!({"command": null, "dir": 7}),
        json!({"command": "ls -la"}),
        json!({"command": "echo !!! | base64 -d | bash"}),
        json!({"command": "echo | base64 -d | bash"}),
        json!({"command": format!("echo {} | base64 -d | bash", B64.encode([0xff, 0xfe]))}),
    ];
    bodies.extend(broken.iter().map(|s| command(s)));
    for b in bodies {
        let (st, text) = send("POST", url.clone(), b.to_string().into_bytes(), true).await;
        assert_eq!(st, 200, "{b}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["ExitCode"].is_i64(), "{text}");
        assert!(v["Output"].is_string() && v["Error"].is_string(), "{text}");
    }
    // Other methods and paths; without a token everything is 401 first.
    for (m, path) in [
        ("GET", "/api/command"),
        ("PUT", "/api/command"),
        ("POST", "/api/x"),
        ("GET", "/"),
        ("POST", "/api/command/%FF"),
    ] {
        let (st, _) = send(m, format!("{}{path}", s.scm), b"{}".to_vec(), true).await;
        assert!((400..500).contains(&st), "{m} {path}: {st}");
        let (st, _) = send(m, format!("{}{path}", s.scm), b"{}".to_vec(), false).await;
        assert_eq!(st, 401, "{m} {path}");
    }
    cloud.shutdown().await;
}
