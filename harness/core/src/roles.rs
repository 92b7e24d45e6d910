//! Built-in role definitions (copied from Microsoft's list into `data/azure/`).
//! (Provisional: replaced by the parser branch's version on merge.)

use std::sync::LazyLock;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    pub role_name: String,
    pub id: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
}

static ROLES: LazyLock<Vec<RoleDefinition>> = LazyLock::new(|| {
    serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/azure/builtin-roles.json")))
        .expect("data/azure/builtin-roles.json is valid")
});

pub fn builtin_roles() -> &'static [RoleDefinition] {
    &ROLES
}

pub fn find_role(name: &str) -> Option<&'static RoleDefinition> {
    ROLES.iter().find(|r| r.role_name.eq_ignore_ascii_case(name))
}
