//! Run Command scripts and output parsing: Linux and Windows framings, truncation,
//! client failures, and the Linux script run for real with bash and curl.

use mic_core::backend::{HttpRequest, HttpResponse};
use mic_core::model::Os;
use mic_live::runcommand::{self, InHostOutcome, Output, RunCommandError};
use serde_json::json;

const TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/";

fn token_response() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json; charset=utf-8".into())],
        body: json!({"access_token": "eyJ0eXAi.eyJhdWQi.sig", "expires_in": "86399", "token_type": "Bearer"}).to_string().into_bytes(),
    }
}

fn parse(
    os: Os,
    stdout: &str,
    stderr: &str,
    ok: bool,
    nonce: &str,
) -> Result<InHostOutcome, RunCommandError> {
    let result = runcommand::azure_output(os, stdout, stderr, ok);
    runcommand::parse_output(&runcommand::split_output(&result)?, nonce)
}

#[test]
fn linux_output_with_a_frame_becomes_the_response() {
    let stdout = format!(
        "some noise\n{}",
        runcommand::frame("n1", &token_response(), true)
    );
    let InHostOutcome::Response(r) = parse(Os::Linux, &stdout, "", true, "n1").unwrap() else {
        panic!("no response")
    };
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.json().unwrap()["expires_in"], "86399");
}

#[test]
fn windows_output_in_two_streams_becomes_the_response() {
    let stdout = runcommand::frame(
        "n2",
        &HttpResponse {
            status: 400,
            headers: vec![],
            body: b"{\"error\":\"invalid_request\"}".to_vec(),
        },
        false,
    );
    let result = runcommand::azure_output(Os::Windows, &stdout.replace('\n', "\r\n"), "", true);
    let out = runcommand::split_output(&result).unwrap();
    assert_eq!(out.code, "ComponentStatus/StdOut/succeeded");
    let InHostOutcome::Response(r) = runcommand::parse_output(&out, "n2").unwrap() else {
        panic!()
    };
    assert_eq!(r.status, 400);
    assert_eq!(r.json().unwrap()["error"], "invalid_request");
}

#[test]
fn the_status_document_shape_is_accepted_too() {
    let stdout = runcommand::frame("n3", &token_response(), true);
    let doc = json!({"status": "Succeeded", "properties": {"output": runcommand::azure_output(Os::Linux, &stdout, "", true)}});
    assert!(runcommand::split_output(&doc).is_ok());
    assert_eq!(
        runcommand::split_output(&json!({"status": "Succeeded"})),
        Err(RunCommandError::NoOutput)
    );
}

#[test]
fn a_truncated_output_is_reported_as_truncated() {
    let full = runcommand::frame("n4", &token_response(), false);
    // Azure keeps the last 4096 bytes: cut the beginning off.
    let cut = &full[full.find("head").unwrap()..];
    let err = parse(Os::Linux, cut, "", true, "n4").unwrap_err();
    assert!(matches!(err, RunCommandError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("4096"));
}

#[test]
fn a_frame_of_another_request_is_not_taken() {
    let stdout = runcommand::frame("other", &token_response(), true);
    assert!(matches!(
        parse(Os::Linux, &stdout, "", true, "mine").unwrap_err(),
        RunCommandError::NoFrame { .. }
    ));
}

#[test]
fn a_client_failure_inside_the_vm_is_no_answer_with_its_exit_code() {
    let stdout = "MIC-BEGIN v1 n5\nexit 7\nerror Y3VybDogKDcpIEZhaWxlZCB0byBjb25uZWN0\nhead \nbody \nMIC-END v1 n5 0\n";
    let InHostOutcome::NoAnswer { exit, message } =
        parse(Os::Linux, stdout, "", true, "n5").unwrap()
    else {
        panic!()
    };
    assert_eq!(exit, 7);
    assert_eq!(message, "curl: (7) Failed to connect");
    assert!(InHostOutcome::explain(7).contains("connection refused"));
}

#[test]
fn a_failed_script_reports_its_stderr_but_never_its_stdout() {
    let err = parse(
        Os::Linux,
        "half a token eyJhbGciOi",
        "bash: base64: command not found",
        false,
        "n6",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ProvisioningState/failed/1") && text.contains("base64: command not found"),
        "{text}"
    );
    assert!(!text.contains("eyJhbGciOi"));
    let err = parse(
        Os::Linux,
        "MIC-BEGIN v1 n7\nexit 0\n",
        "killed",
        false,
        "n7",
    )
    .unwrap_err();
    assert!(matches!(err, RunCommandError::Incomplete { .. }), "{err}");
}

#[test]
fn a_body_length_mismatch_is_malformed() {
    let stdout = runcommand::frame("n8", &token_response(), false)
        .replace("MIC-END v1 n8 ", "MIC-END v1 n8 1");
    assert!(matches!(
        parse(Os::Linux, &stdout, "", true, "n8").unwrap_err(),
        RunCommandError::Malformed(_)
    ));
}

#[test]
fn the_request_marker_round_trips_and_scripts_quote_safely() {
    let mut req =
        HttpRequest::new("GET", format!("{TOKEN_URL}&x='quoted'")).header("Metadata", "true");
    req.body = Some(b"it's a body".to_vec());
    for os in [Os::Linux, Os::Windows] {
        let s = runcommand::script(os, &req, "abc");
        let (nonce, back) = runcommand::parse_request_marker(&s.lines[0]).unwrap();
        assert_eq!(nonce, "abc");
        assert_eq!(back.url, req.url);
        assert_eq!(back.headers, req.headers);
        assert_eq!(back.body, req.body);
        let body = s.body();
        assert_eq!(
            body["commandId"],
            if os == Os::Linux {
                "RunShellScript"
            } else {
                "RunPowerShellScript"
            }
        );
    }
    let linux = runcommand::script(Os::Linux, &req, "abc").lines.join("\n");
    assert!(linux.contains(r"x='\''quoted'\''"), "{linux}");
    assert!(linux.contains("--noproxy '*'"), "IMDS must not be proxied");
    let windows = runcommand::script(Os::Windows, &req, "abc")
        .lines
        .join("\n");
    assert!(
        windows.contains("x=''quoted''") && windows.contains("Invoke-WebRequest"),
        "{windows}"
    );
    let output = Output {
        stdout: String::new(),
        stderr: String::new(),
        code: "x".into(),
    };
    assert!(runcommand::parse_output(&output, "abc").is_err());
}

/// The generated Linux script, run by bash with curl against a local server, prints a frame
/// that parses back into the server's response.
#[tokio::test]
async fn the_linux_script_really_runs_with_bash_and_curl() {
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("metadata", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            String::from_utf8(token_response().body).unwrap(),
            "application/json; charset=utf-8",
        ))
        .mount(&server)
        .await;
    let req = HttpRequest::new(
        "GET",
        format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
            server.uri()
        ),
    )
    .header("Metadata", "true");
    let script = runcommand::script(Os::Linux, &req, "live1")
        .lines
        .join("\n");
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let InHostOutcome::Response(r) = parse(Os::Linux, &stdout, "", true, "live1").unwrap() else {
        panic!("{stdout}")
    };
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["token_type"], "Bearer");
    assert!(stdout.len() < runcommand::OUTPUT_LIMIT);

    // Nothing listens: curl's exit code comes back as "no answer".
    let dead = HttpRequest::new("GET", "http://127.0.0.1:9/metadata/identity/oauth2/token")
        .header("Metadata", "true");
    let script = runcommand::script(Os::Linux, &dead, "live2")
        .lines
        .join("\n");
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .unwrap();
    let InHostOutcome::NoAnswer { exit, .. } = parse(
        Os::Linux,
        &String::from_utf8_lossy(&out.stdout),
        "",
        true,
        "live2",
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(exit, 7);
}
