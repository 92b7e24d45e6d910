//! Placeholders (`<SUBSCRIPTION ID>`, `$ArmToken`, ...) and the `World` that fills them.

use serde::Serialize;
use std::collections::BTreeMap;

/// A placeholder occurrence in a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    /// As written, e.g. `<SUBSCRIPTION ID>` or `$ArmToken`.
    pub text: String,
    /// Normalised key, e.g. `subscription_id` or `access_token`.
    pub key: String,
    /// Byte range in the scanned string.
    pub start: usize,
    pub end: usize,
}

/// Canonical key for a placeholder spelling: `<SUBSCRIPTION ID>`, `<SUBSCRIPTION-ID>`,
/// `<SUBSCRIPTIONID>`, `<subscription_id>` all map to `subscription_id`.
pub fn normalise(name: &str) -> String {
    let inner = name
        .trim()
        .trim_start_matches(['<', '{', '$'])
        .trim_end_matches(['>', '}']);
    let squashed: String = inner
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    let canonical = match squashed.as_str() {
        "SUBSCRIPTIONID" | "SUBSCRIPTION" | "SUBID" | "SUB" | "MYSUBSCRIPTIONID" => {
            "subscription_id"
        }
        "RESOURCEGROUP" | "RESOURCEGROUPNAME" | "RG" | "RGNAME" | "MYRESOURCEGROUP" => {
            "resource_group"
        }
        "ACCESSTOKEN" | "ARMTOKEN" | "TOKEN" | "BEARERTOKEN" => "access_token",
        "VMNAME" | "VIRTUALMACHINENAME" | "VM" | "VMORAPPLICATIONNAME" => "vm_name",
        "VMSSNAME" | "VIRTUALMACHINESCALESETNAME" => "vmss_name",
        "MSINAME" | "USERASSIGNEDIDENTITYNAME" | "IDENTITYNAME" | "UAMINAME" => "identity_name",
        "MSIID" | "USERASSIGNEDIDENTITYID" | "USERASSIGNEDIDENTITY" | "IDENTITYID" => "identity_id",
        "UAMICLIENTID" | "CLIENTID" | "MSICLIENTID" => "client_id",
        "LOCATION" | "REGION" => "location",
        "STORAGEACCOUNT" | "STORAGEACCOUNTNAME" => "storage_account",
        "COSMOSDBACCOUNTNAME" | "COSMODSDBACCOUNTNAME" | "COSMOSDBACCOUNT" => "cosmos_account",
        "PRINCIPALID"
        | "MIPRINCIPALID"
        | "VMOBJECTID"
        | "OBJECTID"
        | "OBJECTIDOFVMSERVICEPRINCIPAL" => "principal_id",
        "UAMIPRINCIPALID" | "USERASSIGNEDIDENTITYPRINCIPALID" | "MSIPRINCIPALID" => {
            "uami_principal_id"
        }
        "TENANTID" | "TENANT" => "tenant_id",
        _ => "",
    };
    if canonical.is_empty() {
        squashed.to_ascii_lowercase()
    } else {
        canonical.to_string()
    }
}

/// Find `<...>` placeholders and `$Variables` in `s`.
pub fn find(s: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                if let Some(rel) = s[i + 1..].find('>') {
                    let inner = &s[i + 1..i + 1 + rel];
                    let ok = !inner.is_empty()
                        && inner.len() <= 60
                        && inner
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic())
                        && inner
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || " _-.'".contains(c));
                    if ok {
                        let end = i + rel + 2;
                        out.push(Placeholder {
                            text: s[i..end].to_string(),
                            key: normalise(inner),
                            start: i,
                            end,
                        });
                        i = end;
                        continue;
                    }
                }
            }
            b'$' => {
                let rest = &s[i + 1..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                // `$filter`, `$metadata`, `$skipToken` are OData, not variables.
                let name = &rest[..len];
                if len > 0
                    && name.chars().next().is_some_and(char::is_alphabetic)
                    && !is_odata(name)
                {
                    let end = i + 1 + len;
                    out.push(Placeholder {
                        text: s[i..end].to_string(),
                        key: normalise(name),
                        start: i,
                        end,
                    });
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_odata(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "filter" | "metadata" | "skiptoken" | "top" | "expand" | "select" | "orderby"
    )
}

const SPACE_SENTINEL: char = '\u{1f}';

/// Replace spaces inside `<...>` placeholders with a sentinel so that word splitting
/// keeps `<SUBSCRIPTION ID>` in one piece. Undo with [`unprotect`].
pub fn protect(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for p in find(s) {
        if p.text.starts_with('<') {
            out.push_str(&s[last..p.start]);
            out.push_str(&p.text.replace(' ', &SPACE_SENTINEL.to_string()));
            last = p.end;
        }
    }
    out.push_str(&s[last..]);
    out
}

/// Undo [`protect`].
pub fn unprotect(s: &str) -> String {
    s.replace(SPACE_SENTINEL, " ")
}

/// Values for placeholders, keyed by normalised name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct World {
    values: BTreeMap<String, String>,
}

impl World {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a value; `name` may be any spelling (`<SUBSCRIPTION ID>`, `subscription_id`, `$ArmToken`).
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.values.insert(normalise(name), value.into());
        self
    }

    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// Every value the world holds.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.values().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(&normalise(name)).map(String::as_str)
    }

    /// Replace every known placeholder; returns the new string and the unresolved placeholders.
    pub fn substitute(&self, s: &str) -> (String, Vec<String>) {
        let mut out = String::with_capacity(s.len());
        let mut unresolved = Vec::new();
        let mut last = 0;
        for p in find(s) {
            out.push_str(&s[last..p.start]);
            if let Some(v) = self.values.get(&p.key) {
                out.push_str(v);
            } else {
                out.push_str(&p.text);
                if !unresolved.contains(&p.text) {
                    unresolved.push(p.text.clone());
                }
            }
            last = p.end;
        }
        out.push_str(&s[last..]);
        (out, unresolved)
    }
}

/// Is this example value a stand-in that should not be compared literally
/// (placeholder, sample GUID, timestamp, truncated token, ellipsis)?
pub fn is_wildcard_value(v: &str) -> bool {
    let t = v.trim();
    if t.is_empty() {
        return false;
    }
    if t.contains("...") || t.contains('\u{2026}') || t.starts_with("eyJ") {
        return true;
    }
    if !find(t).is_empty() {
        return true;
    }
    if looks_like_guid(t) {
        return true;
    }
    // Unix timestamps and ISO dates.
    if t.len() >= 9 && t.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let b = t.as_bytes();
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && b[..4].iter().all(u8::is_ascii_digit) {
        return true;
    }
    // Storage ETags (`"0x8D4F9929765C139"`): minted per write.
    let unquoted = t.trim_matches('"');
    if unquoted.len() >= 10
        && unquoted.starts_with("0x")
        && unquoted[2..].chars().all(|c| c.is_ascii_hexdigit())
    {
        return true;
    }
    // Resource IDs and URLs with sample GUIDs in them.
    t.split(['/', '=', '&', '?']).any(looks_like_guid)
}

/// 8-4-4-4-12 groups of alphanumerics (the docs' sample GUIDs are not always hex).
pub fn looks_like_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("<SUBSCRIPTION ID>", "subscription_id")]
    #[case("<SUBSCRIPTION-ID>", "subscription_id")]
    #[case("<SUBSCRIPTIONID>", "subscription_id")]
    #[case("<SUBSCRIPTION_ID>", "subscription_id")]
    #[case("$ArmToken", "access_token")]
    #[case("<ACCESS TOKEN>", "access_token")]
    #[case("<ACCESS-TOKEN>", "access_token")]
    #[case("<ACCESS_TOKEN>", "access_token")]
    #[case("<RESOURCE-GROUP>", "resource_group")]
    #[case("<VM NAME>", "vm_name")]
    #[case("<YOUR-KEY-VAULT-URL>", "yourkeyvaulturl")]
    fn normalises(#[case] input: &str, #[case] key: &str) {
        assert_eq!(normalise(input), key);
    }

    #[test]
    fn finds_and_substitutes() {
        let w = World::new()
            .with("subscription id", "sub-1")
            .with("<ACCESS TOKEN>", "tok");
        let (s, un) = w.substitute("https://m/subscriptions/<SUBSCRIPTION-ID>/resourceGroups/<RESOURCE GROUP>?$filter=x Bearer $ArmToken");
        assert_eq!(
            s,
            "https://m/subscriptions/sub-1/resourceGroups/<RESOURCE GROUP>?$filter=x Bearer tok"
        );
        assert_eq!(un, vec!["<RESOURCE GROUP>"]);
    }

    #[rstest]
    #[case("9391e5b1-dada-4a8z-834a-43ad44f296bl", true)]
    #[case("1504130527", true)]
    #[case("2017-12-21T20:49:37.5590544Z", true)]
    #[case("eyJ0eXAiOi...", true)]
    #[case("<ObjectID of VM's group membership>", true)]
    #[case("Bearer", false)]
    #[case("3599", false)]
    #[case("https://management.azure.com/", false)]
    fn wildcards(#[case] v: &str, #[case] w: bool) {
        assert_eq!(is_wildcard_value(v), w);
    }
}
