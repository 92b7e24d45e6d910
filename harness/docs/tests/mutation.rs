//! Mutation test: a correct article passes; each mutation is flagged at the right line.

use mic_docs::{
    ArticleReport, CheckOptions, FindingKind, Status, StubCloud, World, check_article,
    report::BlockReport,
};

const ARTICLE: &str = include_str!("data/linux_vm_arm.md");

fn world() -> World {
    World::new()
        .with("<SUBSCRIPTION ID>", "00000000-1111-2222-3333-444444444444")
        .with("<RESOURCE GROUP>", "myResourceGroup")
        .with("<PRINCIPAL ID>", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
        .with(
            "<ACCESS TOKEN>",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.stub.sig",
        )
}

fn run(text: &str) -> ArticleReport {
    let w = world();
    let opts = CheckOptions {
        world: &w,
        executor: &StubCloud,
        coverage: &[],
    };
    check_article("linux_vm_arm.md", text, &opts)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle in article")
}

fn block_at(r: &ArticleReport, line: usize) -> &BlockReport {
    r.blocks
        .iter()
        .find(|b| b.start_line <= line && line <= b.end_line)
        .expect("block at line")
}

fn mutate(from: &str, to: &str) -> String {
    assert!(
        ARTICLE.contains(from),
        "mutation source `{from}` not in article"
    );
    ARTICLE.replacen(from, to, 1)
}

#[test]
fn correct_article_works() {
    let r = run(ARTICLE);
    assert!(
        r.findings
            .iter()
            .all(|f| f.severity != mic_docs::Severity::Error),
        "{:#?}",
        r.findings
    );
    for b in &r.blocks {
        assert_eq!(b.status, Status::Works, "L{}: {}", b.start_line, b.reason);
    }
    assert_eq!(r.blocks.len(), 5);
}

#[test]
fn wrong_arm_api_version_is_flagged_at_its_line() {
    let text = mutate("api-version=2016-09-01", "api-version=2016-09-31");
    let r = run(&text);
    let line = line_of(&text, "2016-09-31");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::ApiVersionNotAccepted && f.line == line),
        "{:#?}",
        r.findings
    );
    let b = block_at(&r, line);
    assert_eq!(b.status, Status::Broken);
    assert!(b.reason.contains("2016-09-31"), "{}", b.reason);
}

#[test]
fn wrong_imds_api_version_is_flagged_by_the_stub() {
    let text = mutate("api-version=2018-02-01", "api-version=2017-01-01");
    let r = run(&text);
    let line = line_of(&text, "2017-01-01");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::ApiVersionNotAccepted && f.line == line)
    );
    assert_eq!(block_at(&r, line).status, Status::Broken);
}

#[test]
fn unknown_token_resource_is_flagged() {
    let text = mutate("management.azure.com%2F'", "management.azure.comm%2F'");
    let r = run(&text);
    let line = line_of(&text, "azure.comm");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::UnknownAudience && f.line == line),
        "{:#?}",
        r.findings
    );
    let b = block_at(&r, line);
    assert_eq!(b.status, Status::Broken);
}

#[test]
fn unknown_token_resource_is_flagged_by_execution_alone() {
    // Execution-only view: the static finding says the same thing; the stub answers 400.
    let text = mutate("management.azure.com%2F'", "management.azure.comm%2F'");
    let w = world();
    let opts = CheckOptions {
        world: &w,
        executor: &StubCloud,
        coverage: &[],
    };
    let (_, blocks) = mic_docs::analyse(&text);
    let op = &blocks
        .iter()
        .find(|b| !b.ops.is_empty() && b.ops[0].service == mic_docs::specs::Service::Imds)
        .unwrap()
        .ops[0];
    let resp = opts
        .executor
        .execute(&mic_docs::exec::resolve(op, &w))
        .unwrap();
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("invalid_resource"));
}

#[test]
fn missing_metadata_header_is_flagged() {
    let text = mutate(" -H Metadata:true", "");
    let r = run(&text);
    let line = line_of(&text, "169.254.169.254");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::MissingHeader
                && f.line == line
                && f.message.contains("Metadata")),
        "{:#?}",
        r.findings
    );
    let b = block_at(&r, line);
    assert_eq!(b.status, Status::Broken);
}

#[test]
fn misspelled_metadata_header_is_flagged() {
    let text = mutate("-H Metadata:true", "-H Metdata:true");
    let r = run(&text);
    let line = line_of(&text, "Metdata");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::MalformedHeader
                && f.line == line
                && f.message.contains("misspelling")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn renamed_response_field_is_drift_at_its_line() {
    let text = mutate("\"access_token\":", "\"accessToken\":");
    let r = run(&text);
    let line = line_of(&text, "accessToken");
    let b = block_at(&r, line);
    assert_eq!(b.status, Status::Drifted, "{}", b.reason);
    assert!(
        b.reason.contains(&format!("L{line}: accessToken")),
        "{}",
        b.reason
    );
    assert!(
        b.reason.contains("access_token"),
        "hint names the service field: {}",
        b.reason
    );
}

#[test]
fn numeric_expires_in_is_type_drift() {
    let text = mutate("\"expires_in\": \"3599\"", "\"expires_in\": 3599");
    let r = run(&text);
    let line = line_of(&text, "expires_in");
    let b = block_at(&r, line);
    assert_eq!(b.status, Status::Drifted);
    assert!(
        b.reason
            .contains("expires_in: doc shows number 3599, service returns string \"3599\""),
        "{}",
        b.reason
    );
}

#[test]
fn token_for_another_audience_is_flagged_on_the_call() {
    let text = mutate(
        "resource=https%3A%2F%2Fmanagement.azure.com%2F",
        "resource=https%3A%2F%2Fvault.azure.net",
    );
    let r = run(&text);
    let line = line_of(&text, "resourceGroups/<RESOURCE GROUP>?api-version");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::AudienceMismatch && f.line == line),
        "{:#?}",
        r.findings
    );
}

#[test]
fn malformed_example_response_is_flagged() {
    let text = mutate(
        "  \"token_type\": \"Bearer\"\n}",
        "  \"token_type\": \"Bearer\"}\n}",
    );
    let r = run(&text);
    let line = line_of(&text, "\"Bearer\"}");
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == FindingKind::MalformedJson && f.line == line + 1),
        "{:#?}",
        r.findings
    );
}

/// PowerShell lines read earlier responses: a property the response does not have is flagged
/// at its line, a correct one works.
#[test]
fn powershell_variables_read_the_earlier_response() {
    let article = "# Token\n\n## Get a token\n\n```powershell\n$response = Invoke-WebRequest -Uri 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/' -Method GET -Headers @{Metadata=\"true\"}\n```\n\n```powershell\n$content = $response.Content | ConvertFrom-Json\n```\n\n```powershell\n$ArmToken = $content.access_token\n```\n";
    let r = run(article);
    for b in &r.blocks {
        assert_eq!(b.status, Status::Works, "L{}: {}", b.start_line, b.reason);
    }
    let mutated = article.replace("$content.access_token", "$content.accessToken");
    let r = run(&mutated);
    let line = line_of(&mutated, "$content.accessToken");
    let b = block_at(&r, line);
    assert_eq!(b.status, Status::Drifted, "{}", b.reason);
    assert!(
        b.reason.contains(&format!(
            "L{line}: `$content.accessToken` is not in the response it reads"
        )),
        "{}",
        b.reason
    );
}

/// `$setting = ...` then `-Setting $settings`: flagged at the use, naming the line that set
/// the near-miss; the exact name passes.
#[test]
fn misspelled_powershell_variable_is_flagged() {
    let ok = "# Extension\n\n## Provision it\n\n```powershell\n$settings = @{ \"port\" = 50342 }\nSet-AzVMExtension -ResourceGroupName myResourceGroup -Location westus -VMName myVM -Name \"ManagedIdentityExtensionForWindows\" -Type \"ManagedIdentityExtensionForWindows\" -Publisher \"Microsoft.ManagedIdentity\" -TypeHandlerVersion \"1.0\" -Settings $settings\n```\n";
    let r = run(ok);
    assert!(
        !r.findings.iter().any(|f| f.message.contains("just set")),
        "{:#?}",
        r.findings
    );
    let bad = ok.replacen("$settings = ", "$setting = ", 1);
    let r = run(&bad);
    let line = line_of(&bad, "-Settings $settings");
    let f = r
        .findings
        .iter()
        .find(|f| f.message.contains("just set"))
        .expect("finding");
    assert_eq!(f.line, line);
    assert!(
        f.message
            .starts_with("`$settings` is not what L6 just set (`$setting`)"),
        "{}",
        f.message
    );
    assert_eq!(block_at(&r, line).status, Status::Broken);
}
