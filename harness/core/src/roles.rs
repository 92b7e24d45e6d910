//! Azure built-in role definitions, embedded from `data/azure/builtin-roles.json`.
//!
//! Grant steps name roles the way the tutorials do (`role = "Reader"`); the validator checks
//! the name here so a typo is a diagnostic at load time instead of a `RoleDefinitionNotFound`
//! from live Azure after a VM has been provisioned. The fake cloud uses the same table to
//! evaluate `actions` / `dataActions`, so fake and live agree on what a role allows.

use std::sync::OnceLock;

use serde::Deserialize;

const BUILTIN_ROLES_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/azure/builtin-roles.json"
));

/// One built-in role definition (the subset of ARM's `roleDefinitions` shape that RBAC needs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    /// Display name, e.g. `Storage Blob Data Reader`.
    pub role_name: String,
    /// The role definition GUID (same in every tenant for built-in roles).
    pub id: String,
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// All built-in roles, in file order.
pub fn builtin_roles() -> &'static [RoleDefinition] {
    static ROLES: OnceLock<Vec<RoleDefinition>> = OnceLock::new();
    ROLES.get_or_init(|| {
        // The file is part of the repository and checked by a unit test below, so a parse
        // failure here is a build defect, not user input.
        serde_json::from_str(BUILTIN_ROLES_JSON)
            .expect("data/azure/builtin-roles.json is a JSON array of role definitions")
    })
}

/// Look a role up by name, case-insensitively (Azure's `roleName eq '...'` filter ignores case).
pub fn find_role(name: &str) -> Option<&'static RoleDefinition> {
    builtin_roles()
        .iter()
        .find(|r| r.role_name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn table_loads_and_is_well_formed() {
        let roles = builtin_roles();
        assert!(roles.len() >= 10, "only {} roles", roles.len());
        for r in roles {
            assert!(!r.role_name.is_empty());
            assert_eq!(
                r.id.len(),
                36,
                "{} has a malformed id {}",
                r.role_name,
                r.id
            );
        }
        let mut names: Vec<String> = roles.iter().map(|r| r.role_name.to_lowercase()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate role names");
    }

    #[rstest]
    #[case::exact("Reader", Some("acdd72a7-3385-48ef-bd42-f606fba81ae7"))]
    #[case::lower("reader", Some("acdd72a7-3385-48ef-bd42-f606fba81ae7"))]
    #[case::mixed(
        "storage BLOB data reader",
        Some("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
    )]
    #[case::typo("Reeder", None)]
    #[case::empty("", None)]
    fn finds(#[case] name: &str, #[case] id: Option<&str>) {
        assert_eq!(find_role(name).map(|r| r.id.as_str()), id);
    }
}
