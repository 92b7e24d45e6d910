//! Redaction: turn a run's exchanges into text that is stable across runs and backends and
//! holds no secret.
//!
//! Structural, not blind: a JWT keeps its audience and loses its signature and ids; GUIDs
//! become `[guid-N]` numbered by first appearance (so "the same principal twice" stays
//! visible); the run's subscription, tenant and run id, and the backends' base URLs become
//! fixed names; timestamps and epoch fields become placeholders of the same JSON type; known
//! secret fields (keys, SAS tokens, passwords) and anything registered as a secret become
//! `[secret]`.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use regex::Regex;
use serde_json::{Map, Value};

use crate::backend::Endpoints;

static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").expect("valid regex")
});
static GUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
        .expect("valid regex")
});
static ISO_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
        .expect("valid regex")
});
static HTTP_DATE: LazyLock<Regex> = LazyLock::new(|| {
    // Case-insensitive: Cosmos DB echoes the lower-cased date of its string-to-sign.
    Regex::new(
        r"(?i)(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT",
    )
    .expect("valid regex")
});
static SAS_SIG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(sig=)[^&\s]+").expect("valid regex"));
static SHARED_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(SharedKey(?:Lite)? [^:\s]+:)[A-Za-z0-9+/=]+").expect("valid regex")
});
static COSMOS_AUTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(type%3dmaster%26ver%3d1\.0%26sig%3d|type=master&ver=1\.0&sig=)[^&\s]+")
        .expect("valid regex")
});
/// Long base64 runs (account keys, signatures) that slipped past the structural rules.
static LONG_B64: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/]{40,}={0,2}").expect("valid regex"));

/// JSON keys whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "client_secret",
    "password",
    "adminPassword",
    "primaryMasterKey",
    "secondaryMasterKey",
    "primaryReadonlyMasterKey",
    "secondaryReadonlyMasterKey",
    "serviceSasToken",
    "accountSasToken",
    "connectionString",
    "refresh_token_value",
];

/// Tags the harness puts on resource groups it creates (see `Environment::resource_group_tags`).
const HARNESS_TAGS: &[&str] = &["mic-run", "mic-scenario", "mic-env", "DeleteAfter"];

/// JSON keys whose values are epoch seconds (kept as the same JSON type).
const EPOCH_KEYS: &[&str] = &[
    "expires_on",
    "not_before",
    "expires_in",
    "ext_expires_in",
    "iat",
    "nbf",
    "exp",
    // Key Vault secret attributes and Cosmos DB system properties (unix seconds).
    "created",
    "updated",
    "_ts",
    // WebHDFS times (epoch milliseconds).
    "accessTime",
    "modificationTime",
    "msExpirationTime",
];

/// JSON keys whose values are per-run opaque ids (Cosmos DB `_rid`, `_self`, `_etag`).
const OPAQUE_KEYS: &[&str] = &["_rid", "_self", "_etag"];

/// Key Vault object versions: 32 lower-case hex digits (as the last segment of an id).
static HEX_VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/[0-9a-f]{32}\b").expect("valid regex"));

/// Redacts one run's transcript; numbering of GUIDs is per redactor.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Exact strings -> placeholders, longest first.
    fixed: Vec<(String, String)>,
    guids: HashMap<String, usize>,
}

impl Redactor {
    pub fn new(endpoints: &Endpoints) -> Self {
        Self::with_aliases(endpoints, &endpoints.aliases)
    }

    /// Like [`Redactor::new`], with the environment's current aliases.
    pub fn with_aliases(endpoints: &Endpoints, aliases: &[(String, String)]) -> Self {
        let mut r = Self::default();
        r.add_fixed(&endpoints.arm, "{arm}");
        r.add_fixed(&endpoints.login, "{login}");
        for (name, url) in aliases {
            r.add_fixed(url.trim_end_matches('/'), &format!("{{{name}}}"));
        }
        r.add_fixed(&endpoints.subscription_id, "[subscription-id]");
        r.add_fixed(&endpoints.tenant_id, "[tenant-id]");
        r.add_fixed(&endpoints.run_id, "[run-id]");
        r
    }

    /// Another run id to show as `[run-id]` (a shared fixture's, whose resource names carry it).
    pub fn add_run_id(&mut self, run_id: &str) {
        self.add_fixed(run_id, "[run-id]");
    }

    fn add_fixed(&mut self, value: &str, placeholder: &str) {
        if value.len() < 3 {
            return;
        }
        self.fixed
            .push((value.to_string(), placeholder.to_string()));
        if GUID.is_match(value) {
            self.fixed
                .push((value.to_ascii_lowercase(), placeholder.to_string()));
            self.fixed
                .push((value.to_ascii_uppercase(), placeholder.to_string()));
        }
        self.fixed.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    }

    /// Register a secret value (a key, a client secret, a SAS token) to be replaced everywhere.
    pub fn add_secret(&mut self, value: &str, label: &str) {
        if value.len() >= 6 {
            self.add_fixed(value, &format!("[{label}]"));
        }
    }

    /// Redact free text (URLs, header values, non-JSON bodies).
    pub fn text(&mut self, s: &str) -> String {
        let s = JWT.replace_all(s, |c: &regex::Captures<'_>| describe_jwt(&c[0]));
        let mut s = s.into_owned();
        for (value, placeholder) in &self.fixed {
            if s.contains(value.as_str()) {
                s = s.replace(value.as_str(), placeholder);
            }
        }
        let s = SAS_SIG.replace_all(&s, "${1}[signature]");
        let s = SHARED_KEY.replace_all(&s, "${1}[signature]");
        let s = COSMOS_AUTH.replace_all(&s, "${1}[signature]");
        let s = HTTP_DATE.replace_all(&s, "[http-date]");
        let s = HEX_VERSION.replace_all(&s, "/[version]");
        let s = ISO_TIME.replace_all(&s, "[timestamp]");
        let s = LONG_B64.replace_all(&s, |c: &regex::Captures<'_>| {
            if looks_random(&c[0]) {
                "[secret]".to_string()
            } else {
                c[0].to_string()
            }
        });
        let guids = &mut self.guids;
        GUID.replace_all(&s, |c: &regex::Captures<'_>| {
            let key = c[0].to_ascii_lowercase();
            let next = guids.len() + 1;
            let n = *guids.entry(key).or_insert(next);
            format!("[guid-{n}]")
        })
        .into_owned()
    }

    /// Redact a JSON value; object keys are sorted so key order never makes a difference.
    pub fn json(&mut self, v: &Value) -> Value {
        self.json_at(None, v)
    }

    fn json_at(&mut self, key: Option<&str>, v: &Value) -> Value {
        if let Some(k) = key {
            if SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                return match v {
                    Value::Null => Value::Null,
                    _ => Value::String("[secret]".into()),
                };
            }
            if OPAQUE_KEYS.contains(&k) && v.is_string() {
                return Value::String("[opaque]".into());
            }
            if k == "vmSize" {
                // Sizes are a backend setting (live picks the cheapest that works).
                return Value::String("[vm-size]".into());
            }
            if EPOCH_KEYS.contains(&k) {
                let label = if k.ends_with("expires_in") {
                    "[seconds]"
                } else {
                    "[epoch]"
                };
                return match v {
                    Value::String(_) => Value::String(label.into()),
                    Value::Number(_) => Value::from(0),
                    other => other.clone(),
                };
            }
        }
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => {
                // Storage listKeys: {"keys":[{"keyName","value","permissions"}]}
                Value::Array(items.iter().map(|i| self.json_at(None, i)).collect())
            }
            Value::Object(map) => {
                let is_key_entry = map.contains_key("keyName") && map.contains_key("value");
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    let mut val = &map[k];
                    let stripped;
                    if k == "tags"
                        && let Value::Object(tags) = val
                    {
                        // The harness's own bookkeeping tags (live: run id, DeleteAfter)
                        // are not part of any tutorial's answer.
                        let kept: Map<String, Value> = tags
                            .iter()
                            .filter(|(t, _)| {
                                !HARNESS_TAGS.iter().any(|h| h.eq_ignore_ascii_case(t))
                            })
                            .map(|(t, v)| (t.clone(), v.clone()))
                            .collect();
                        if kept.is_empty() {
                            continue;
                        }
                        stripped = Value::Object(kept);
                        val = &stripped;
                    }
                    let redacted = if is_key_entry && k == "value" {
                        Value::String("[secret]".into())
                    } else {
                        self.json_at(Some(k), val)
                    };
                    out.insert(self.text(k), redacted);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

/// Keys and signatures are random base64: mixed case and digits, few slashes. Paths and
/// action names (`Microsoft.Resources/subscriptions/resourceGroups/read`) are not.
fn looks_random(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let upper = s.chars().filter(char::is_ascii_uppercase).count();
    let lower = s.chars().filter(char::is_ascii_lowercase).count();
    let slashes = s.matches('/').count();
    digits >= 2 && upper >= 2 && lower >= 2 && slashes * 16 <= s.len()
}

/// `[jwt aud=...]`: the audience is the one claim that is both stable and meaningful.
fn describe_jwt(token: &str) -> String {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    match claims
        .as_ref()
        .and_then(|c| c.get("aud"))
        .and_then(Value::as_str)
    {
        Some(aud) => format!("[jwt aud={aud}]"),
        None => "[jwt]".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn endpoints() -> Endpoints {
        Endpoints {
            arm: "http://127.0.0.1:4001".into(),
            login: "http://127.0.0.1:4002".into(),
            subscription_id: "11111111-2222-3333-4444-555555555555".into(),
            tenant_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            location: "westus".into(),
            run_id: "r1x2y3".into(),
            aliases: vec![],
        }
    }

    fn jwt(aud: &str) -> String {
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
            e(&json!({"alg":"RS256","typ":"JWT"})),
            e(&json!({"aud": aud, "oid": "0b1c2d3e-0000-4000-8000-000000000001"}))
        )
    }

    #[rstest]
    #[case::arm_url(
        "GET http://127.0.0.1:4001/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-r1x2y3",
        "GET {arm}/subscriptions/[subscription-id]/resourceGroups/rg-[run-id]"
    )]
    #[case::guids_numbered(
        "a 0b1c2d3e-0000-4000-8000-000000000001 b 0B1C2D3E-0000-4000-8000-000000000001 c 9b1c2d3e-0000-4000-8000-000000000009",
        "a [guid-1] b [guid-1] c [guid-2]"
    )]
    #[case::sas(
        "https://a.blob.core.windows.net/c?sv=2017-11-09&sig=abc%2Bdef%3D&sp=r",
        "https://a.blob.core.windows.net/c?sv=2017-11-09&sig=[signature]&sp=r"
    )]
    #[case::shared_key(
        "SharedKey myacct:Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==",
        "SharedKey myacct:[signature]"
    )]
    #[case::iso_time("created 2026-11-23T05:31:45.1234567Z", "created [timestamp]")]
    #[case::action_names_stay(
        "action 'Microsoft.Resources/subscriptions/resourceGroups/read'",
        "action 'Microsoft.Resources/subscriptions/resourceGroups/read'"
    )]
    #[case::http_date("Mon, 23 Nov 2026 05:31:45 GMT", "[http-date]")]
    #[case::account_key(
        "key Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4OQ==",
        "key [secret]"
    )]
    fn redacts_text(#[case] input: &str, #[case] want: &str) {
        let mut r = Redactor::new(&endpoints());
        assert_eq!(r.text(input), want);
    }

    #[test]
    fn jwt_keeps_only_the_audience() {
        let mut r = Redactor::new(&endpoints());
        let out = r.text(&format!("Bearer {}", jwt("https://management.azure.com/")));
        assert_eq!(out, "Bearer [jwt aud=https://management.azure.com/]");
    }

    #[test]
    fn json_keeps_types_and_hides_secrets() {
        let mut r = Redactor::new(&endpoints());
        let token = jwt("https://vault.azure.net");
        let v = json!({
            "token_type": "Bearer", "expires_in": "3599", "expires_on": 1_700_000_000,
            "access_token": token,
            "keys": [{"keyName": "key1", "value": "c2hvcnQ=", "permissions": "Full"}],
            "adminPassword": "myPassword12"
        });
        let out = r.json(&v);
        assert_eq!(out["expires_in"], "[seconds]");
        assert_eq!(out["expires_on"], 0);
        assert_eq!(out["access_token"], "[jwt aud=https://vault.azure.net]");
        assert_eq!(out["keys"][0]["value"], "[secret]");
        assert_eq!(out["keys"][0]["keyName"], "key1");
        assert_eq!(out["adminPassword"], "[secret]");
        let text = serde_json::to_string(&out).unwrap();
        assert!(
            !text.contains("eyJ") && !text.contains("myPassword12"),
            "{text}"
        );
    }

    #[test]
    fn key_vault_versions_and_cosmos_system_properties_are_stable() {
        let mut r = Redactor::new(&endpoints());
        let v = serde_json::json!({
            "id": "https://kv.vault.azure.net/secrets/s/7c2204c6093c4d859bc5b9eff8f29050",
            "attributes": {"created": 1_505_088_747, "updated": 1_505_088_747},
            "_rid": "AbCdEA==", "_self": "dbs/AbCdEA==/", "_etag": "\"00000000-0000\"", "_ts": 1_700_000_000,
        });
        let out = r.json(&v);
        assert_eq!(out["id"], "https://kv.vault.azure.net/secrets/s/[version]");
        assert_eq!(out["attributes"]["created"], 0);
        assert_eq!(out["_rid"], "[opaque]");
        assert_eq!(out["_self"], "[opaque]");
        assert_eq!(out["_etag"], "[opaque]");
        assert_eq!(out["_ts"], 0);
    }

    #[test]
    fn webhdfs_times_become_zero() {
        let mut r = Redactor::new(&endpoints());
        let v = json!({"FileStatus": {"accessTime": 1_507_934_941_392_u64, "modificationTime": 1_507_944_835_699_u64, "length": 11}});
        let out = r.json(&v);
        assert_eq!(out["FileStatus"]["accessTime"], 0);
        assert_eq!(out["FileStatus"]["modificationTime"], 0);
        assert_eq!(out["FileStatus"]["length"], 11);
    }

    #[test]
    fn harness_tags_and_vm_sizes_are_not_part_of_the_answer() {
        let mut r = Redactor::new(&endpoints());
        let out = r.json(&json!({"tags": {"mic-run": "r1", "DeleteAfter": "2026-11-24T00:00:00Z"}, "name": "rg"}));
        assert_eq!(out, json!({"name": "rg"}));
        let out = r.json(&json!({"tags": {"mic-run": "r1", "owner": "docs"}, "hardwareProfile": {"vmSize": "Standard_B2s"}}));
        assert_eq!(
            out,
            json!({"hardwareProfile": {"vmSize": "[vm-size]"}, "tags": {"owner": "docs"}})
        );
    }

    #[test]
    fn registered_secrets_are_replaced() {
        let mut r = Redactor::new(&endpoints());
        r.add_secret("s3cr3t-value", "client-secret");
        assert_eq!(r.text("x=s3cr3t-value"), "x=[client-secret]");
    }
}
