//! `mic docs check` end to end: the seed articles against the fake cloud, and mutations of a
//! correct article flagged at the right line (through the CLI, JSON report).

mod common;
use common::{block_at, reason, status};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run `mic docs check --format json` on `articles`; (exit code, reports).
fn check(articles: &[&Path]) -> (i32, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_mic"))
        .current_dir(repo())
        .args(["docs", "check", "--format", "json"])
        .args(articles)
        .output()
        .expect("run mic");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report: {e}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), reports)
}

fn article<'a>(reports: &'a [Value], name: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["article"] == name)
        .unwrap_or_else(|| panic!("no report for {name}"))
}

fn has_finding(b: &Value, kind: &str, line: u64) -> bool {
    b["findings"].as_array().unwrap().iter().any(|f| {
        f["kind"] == kind
            && f["line"].as_u64().unwrap() <= line
            && line
                <= f["end_line"]
                    .as_u64()
                    .unwrap()
                    .max(f["line"].as_u64().unwrap())
    })
}

#[test]
fn seed_articles_against_the_fake_cloud() {
    let dir = repo().join("docs/articles");
    let (code, reports) = check(&[&dir]);
    assert_eq!(code, 1, "broken examples exit 1");
    assert_eq!(reports.len(), 5);
    for r in &reports {
        for b in r["blocks"].as_array().unwrap() {
            assert!(
                ["works", "drifted", "broken", "not-checkable"].contains(&status(b)),
                "{} L{}: {}",
                r["article"],
                b["start_line"],
                b["status"]
            );
            assert!(
                !reason(b).trim().is_empty(),
                "{} L{} has no reason",
                r["article"],
                b["start_line"]
            );
        }
    }
    let r004 = article(&reports, "004_68e52737ddb40452.txt");
    // Static: PowerShell hashtable written with `:`.
    let b = block_at(r004, 1130);
    assert_eq!(status(b), "broken");
    assert!(has_finding(b, "malformed-header", 1130), "{b:#}");
    // Static: an extra `}` after the example response.
    let b = block_at(r004, 3397);
    assert_eq!(status(b), "broken");
    assert!(has_finding(b, "malformed-json", 3397), "{b:#}");
    // Execution: the token response shows `expires_in` as a number; IMDS returns a string.
    let b = block_at(r004, 545);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(
        reason(b).contains("L545: expires_in: doc shows number 3599, service returns string"),
        "{}",
        reason(b)
    );
    // Execution: `<<SUBSCRIPTION ID>>` in the identity id makes Compute answer 400.
    let b = block_at(r004, 4971);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("L4971: service answered 400 FailedIdentityOperation"),
        "{}",
        reason(b)
    );
    assert!(reason(b).contains("<<SUBSCRIPTION ID>>"), "{}", reason(b));
    // Execution: a space inside `resourceGroup s` in the URL.
    let b = block_at(r004, 8883);
    assert_eq!(status(b), "broken");
    assert!(reason(b).contains("404 InvalidRequestUri"), "{}", reason(b));
    // Static: an api-version the scale-set provider does not accept.
    let b = block_at(r004, 7123);
    assert!(has_finding(b, "api-version-not-accepted", 7123));
    // `$spID = (Get-AzureRmUserAssignedIdentity ...).principalid` feeds the next cmdlet, whose
    // replayed output agrees with every property the doc lists.
    let b = block_at(article(&reports, "002_b842000a364b5c0e.txt"), 124);
    assert_eq!(status(b), "works", "{}", reason(b));
    // Replayed commands: today's `az identity create` prints no `clientSecretUrl`.
    let r000 = article(&reports, "000_44d34d0bde431b24.txt");
    let b = block_at(r000, 53);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(
        reason(b).contains(
            "L56: clientSecretUrl: doc shows the field, the tool's output does not have it"
        ),
        "{}",
        reason(b)
    );
    assert_eq!(status(block_at(r000, 47)), "works");
    // ... and `myStorageAcct` cannot be a storage account name.
    let b = block_at(r000, 71);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("not a valid storage account name"),
        "{}",
        reason(b)
    );
    // `Invoke-WebRequest` object listings are compared with the response object.
    let b = block_at(r004, 702);
    assert_eq!(status(b), "works", "{}", reason(b));
    // The IMDS and ARM examples of the tutorials run and match.
    for line in [531, 559, 565, 3782, 3812] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    let r002 = article(&reports, "002_b842000a364b5c0e.txt");
    assert_eq!(status(block_at(r002, 151)), "works");
    assert_eq!(
        status(block_at(r002, 160)),
        "works",
        "{}",
        reason(block_at(r002, 160))
    );
    // Data planes: the world's storage account, vault, Cosmos and Data Lake accounts and the
    // VM's data grants let the tutorials' data-plane requests run as written.
    for line in [653, 1783, 1902, 2165, 2405, 2606, 2776, 3241, 3407, 3657] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    // The Cosmos DB read-only keys response matches the doc.
    assert_eq!(status(block_at(r004, 3418)), "works");
    // Storage listKeys: the doc shows `"permissions": "Full"`, the service says "FULL".
    let b = block_at(r004, 2786);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(
        reason(b)
            .contains(r#"L2786: keys[0].permissions: doc shows "Full", service returns "FULL""#),
        "{}",
        reason(b)
    );
    // Key Vault: soft delete is on by default, the secret's recoveryLevel is no longer "Purgeable".
    let b = block_at(r004, 3254);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(
        reason(b).contains(r#"L3254: attributes.recoveryLevel: doc shows "Purgeable""#),
        "{}",
        reason(b)
    );
    // The SAS signature the listServiceSas example prints is masked in the report.
    let b = block_at(r004, 3038);
    assert_eq!(status(b), "drifted", "{b:#}");
    assert!(reason(b).contains("sig=[signature]"), "{}", reason(b));
    // The world granted Directory.Read.All up front: the Linux tutorial's repeat is not sent.
    let b = block_at(r004, 3619);
    assert_eq!(status(b), "not-checkable");
    assert!(reason(b).contains("already granted"), "{}", reason(b));
    // Reference-form requests: the request line, the "Request headers" table and the
    // "Request body" block are sent together.
    for line in [4808, 5036, 6567] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    let b = block_at(r004, 4982);
    assert_eq!(status(b), "broken");
    assert!(reason(b).contains("<<SUBSCRIPTION ID>>"), "{}", reason(b));
    // PowerShell variables carry across blocks: `$jsonParams = $params | ConvertTo-Json`
    // (L1391) is the body of listServiceSas (L1395); the Data Lake upload follows the
    // redirect held in `$HdfsRedirectResponse.Headers.Location` (L721).
    for line in [1395, 721, 727, 1540, 1552] {
        let b = block_at(r004, line);
        assert_eq!(status(b), "works", "L{line}: {}", reason(b));
    }
    // `$key = $keysContent.keys[0].value` feeds New-AzStorageContext; the SAS flow's own
    // `signedExpiry="2017-09-23T00:00:00Z"` has long expired.
    assert_eq!(
        status(block_at(r004, 1175)),
        "works",
        "{}",
        reason(block_at(r004, 1175))
    );
    let b = block_at(r004, 1430);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("AuthenticationFailed: Signature not valid in the specified time frame"),
        "{}",
        reason(b)
    );
    // `$_AllowedMemberTypes` (no dot) filters every app role out: the assignment gets no role.
    let b = block_at(r004, 2072);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("the pipeline item's property is `$_.AllowedMemberTypes`"),
        "{}",
        reason(b)
    );
    // `--scope ".../resourcegroups/<RESOURCE GROUP> "`: the trailing space reaches ARM.
    let b = block_at(r004, 3749);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("Resource group 'myResourceGroup ' could not be found"),
        "{}",
        reason(b)
    );
    // A raw request printed on one line with a quoted URL runs, and is flagged.
    let b = block_at(r004, 7508);
    assert_eq!(status(b), "drifted", "{}", reason(b));
    // `$setting = ...` then `-Setting $settings`.
    let b = block_at(r004, 8044);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("`$settings` is not what L8042 just set (`$setting`)"),
        "{}",
        reason(b)
    );
    // Data-plane and directory commands are replayed as today's tools send them.
    assert_eq!(status(block_at(r004, 2799)), "works");
    let b = block_at(r004, 2826);
    assert_eq!(status(b), "drifted");
    assert!(reason(b).contains("serverEncrypted"), "{}", reason(b));
    assert_eq!(status(block_at(r004, 2030)), "works");
    let b = block_at(r004, 3050);
    assert_eq!(status(b), "broken");
    assert!(reason(b).contains("expected one argument"), "{}", reason(b));
    let b = block_at(r004, 1915);
    assert_eq!(status(b), "broken");
    assert!(
        reason(b).contains("removed from the Azure CLI"),
        "{}",
        reason(b)
    );
    // Coverage comes from the scenario catalog's `lines`.
    let b = block_at(r004, 531);
    assert!(
        b["covered_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "arm/linux-vm-system-assigned/token"),
        "{b:#}"
    );
    assert!(r004["coverage"]["covered_blocks"].as_u64().unwrap() > 0);
}

const ARTICLE: &str = include_str!("data/docs_linux_vm_arm.md");

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .expect("needle")
}

fn check_text(name: &str, text: &str) -> (i32, Value) {
    let dir = std::env::temp_dir().join(format!("mic-docs-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, text).unwrap();
    let (code, mut reports) = check(&[&path]);
    let _ = std::fs::remove_dir_all(&dir);
    (code, reports.remove(0))
}

fn mutate(from: &str, to: &str) -> String {
    assert!(ARTICLE.contains(from), "`{from}` not in the article");
    ARTICLE.replacen(from, to, 1)
}

#[test]
fn correct_article_works_on_the_fake_cloud() {
    let (code, r) = check_text("correct", ARTICLE);
    assert_eq!(code, 0);
    // The az command is replayed as az sends it (role look-up, principal look-up, PUT).
    for b in r["blocks"].as_array().unwrap() {
        assert_eq!(status(b), "works", "L{}: {}", b["start_line"], reason(b));
    }
}

#[test]
fn mutations_are_flagged_at_their_line() {
    // (name, from, to, marker to find the line, expected status, text the reason must contain)
    let cases = [
        (
            "arm-api-version",
            "api-version=2016-09-01",
            "api-version=2016-09-31",
            "2016-09-31",
            "broken",
            "2016-09-31",
        ),
        (
            "unknown-resource",
            "management.azure.com%2F'",
            "management.azure.comm%2F'",
            "azure.comm",
            "broken",
            "management.azure.comm",
        ),
        (
            "no-metadata",
            "' -H Metadata:true",
            "'",
            "169.254.169.254",
            "broken",
            "Metadata",
        ),
        (
            "renamed-field",
            "\"token_type\": \"Bearer\"",
            "\"tokenType\": \"Bearer\"",
            "tokenType",
            "drifted",
            "tokenType",
        ),
        // Found only by execution: the resource group does not exist, so Resource Manager denies.
        (
            "other-group",
            "<RESOURCE GROUP>?api-version",
            "otherGroup?api-version",
            "otherGroup?api",
            "broken",
            "AuthorizationFailed",
        ),
    ];
    for (name, from, to, marker, want, why) in cases {
        let text = mutate(from, to);
        let line = line_of(&text, marker);
        let (code, r) = check_text(name, &text);
        let b = block_at(&r, line);
        assert_eq!(status(b), want, "{name}: L{line}: {}", reason(b));
        assert!(
            reason(b).contains(&format!("L{line}")),
            "{name}: reason names the line: {}",
            reason(b)
        );
        assert!(reason(b).contains(why), "{name}: {}", reason(b));
        assert_eq!(code, i32::from(want == "broken"), "{name}: exit code");
    }
}

/// A command's example output is compared with what the tool prints after replaying it.
const TOOL_ARTICLE: &str = r#"# Create an identity

```azurecli
az identity create -g myResourceGroup -n myUserAssignedIdentity
```

The output:

```json
{
  "clientId": "73444643-8088-4d70-9532-c3a0fdc190fz",
  "id": "/subscriptions/<SUBSCRIPTION ID>/resourcegroups/myResourceGroup/providers/Microsoft.ManagedIdentity/userAssignedIdentities/myUserAssignedIdentity",
  "location": "westus",
  "name": "myUserAssignedIdentity",
  "principalId": "e5fdfdc1-ed84-4d48-8551-fe9fb9dedfll",
  "resourceGroup": "myResourceGroup",
  "tenantId": "733a8f0e-ec41-4e69-8ad8-971fc4b533bl",
  "type": "Microsoft.ManagedIdentity/userAssignedIdentities"
}
```

## Show it with PowerShell

```azurepowershell
Get-AzUserAssignedIdentity -ResourceGroupName myResourceGroup -Name myUserAssignedIdentity
```

```azurepowershell
Name              : myUserAssignedIdentity
ResourceGroupName : myResourceGroup
Type              : Microsoft.ManagedIdentity/userAssignedIdentities
```
"#;

#[test]
fn replayed_command_output_is_compared() {
    let (code, r) = check_text("tool", TOOL_ARTICLE);
    assert_eq!(code, 0);
    for b in r["blocks"].as_array().unwrap() {
        assert_eq!(status(b), "works", "L{}: {}", b["start_line"], reason(b));
    }
    // A renamed field in az's output, a wrong value in the cmdlet's object listing.
    let text = TOOL_ARTICLE
        .replacen("\"principalId\"", "\"principalID\"", 1)
        .replacen(
            "Type              : Microsoft.ManagedIdentity/userAssignedIdentities",
            "Type              : Microsoft.ManagedIdentity/identities",
            1,
        );
    let (_, r) = check_text("tool-mutated", &text);
    let az_out = block_at(&r, line_of(&text, "principalID"));
    assert_eq!(status(az_out), "drifted");
    assert!(
        reason(az_out).contains("principalID: doc shows the field, the tool's output does not have it (service has `principalId`)"),
        "{}",
        reason(az_out)
    );
    let ps_out = block_at(&r, line_of(&text, "Microsoft.ManagedIdentity/identities"));
    assert_eq!(status(ps_out), "drifted");
    assert!(
        reason(ps_out).contains(&format!(
            "L{}: `Type`: doc shows `Microsoft.ManagedIdentity/identities`, actual `Microsoft.ManagedIdentity/userAssignedIdentities`",
            line_of(&text, "Microsoft.ManagedIdentity/identities")
        )),
        "{}",
        reason(ps_out)
    );
}

const DATA_ARTICLE: &str = r#"# Storage and directory

## Write a file

```bash
echo "This is a test file." > test.txt
```

## Upload

```azurecli
az storage blob upload -c mycontainer -n test.txt -f test.txt --account-name mystorageaccount --account-key <STORAGE ACCOUNT KEY>
```

## Download

```azurecli
az storage blob download -c mycontainer -n test.txt -f out.txt --account-name mystorageaccount --account-key <STORAGE ACCOUNT KEY>
```

```json
{
  "name": "test.txt",
  "properties": {
    "blobType": "BlockBlob",
    "contentLength": 21,
    "contentSettings": {
      "contentType": "text/plain"
    }
  }
}
```

## Group

```powershell
Get-AzureADGroup -Filter "displayName eq 'myGroup'"
```

```
ObjectId        : 11111111-2222-3333-4444-555555555555
DisplayName     : myGroup
SecurityEnabled : True
```
"#;

#[test]
fn data_plane_and_directory_commands_are_replayed() {
    let (_, r) = check_text("data", DATA_ARTICLE);
    for b in r["blocks"].as_array().unwrap() {
        let s = status(b);
        assert!(
            s == "works" || s == "not-checkable",
            "L{}: {s} {}",
            b["start_line"],
            reason(b)
        );
    }
    let up = block_at(&r, line_of(DATA_ARTICLE, "az storage blob upload"));
    assert_eq!(status(up), "works", "{}", reason(up));
    let out = block_at(&r, line_of(DATA_ARTICLE, "\"contentLength\": 21"));
    assert_eq!(status(out), "works", "{}", reason(out));
    let text = DATA_ARTICLE
        .replacen("\"name\": \"test.txt\"", "\"name\": \"wrong.txt\"", 1)
        .replacen(
            "DisplayName     : myGroup",
            "DisplayName     : otherGroup",
            1,
        );
    let (_, r) = check_text("data-mutated", &text);
    let out = block_at(&r, line_of(&text, "wrong.txt"));
    assert_eq!(status(out), "drifted");
    assert!(reason(out).contains("wrong.txt"), "{}", reason(out));
    let line = line_of(&text, "otherGroup");
    let out = block_at(&r, line);
    assert_eq!(status(out), "drifted");
    assert!(
        reason(out).contains(&format!(
            "L{line}: `DisplayName`: doc shows `otherGroup`, actual `myGroup`"
        )),
        "{}",
        reason(out)
    );
}
