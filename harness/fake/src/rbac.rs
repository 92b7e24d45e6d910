//! Azure RBAC: built-in role definitions, role assignments and the evaluation of
//! actions / data actions over scopes.

use std::sync::OnceLock;

use serde::Deserialize;

const BUILTIN_ROLES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/azure/builtin-roles.json"
));

/// A role definition (built-in only for now).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    pub role_name: String,
    /// Bare GUID.
    pub id: String,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

impl RoleDefinition {
    /// `actions` minus `notActions` (Azure's semantics: notActions subtract, they do not deny).
    pub fn permits_action(&self, action: &str) -> bool {
        permits(&self.actions, &self.not_actions, action)
    }
    pub fn permits_data_action(&self, data_action: &str) -> bool {
        permits(&self.data_actions, &self.not_data_actions, data_action)
    }
}

fn permits(allow: &[String], deny: &[String], action: &str) -> bool {
    allow.iter().any(|p| action_matches(p, action))
        && !deny.iter().any(|p| action_matches(p, action))
}

/// The built-in roles from `data/azure/builtin-roles.json`.
pub fn builtin_roles() -> &'static [RoleDefinition] {
    static ROLES: OnceLock<Vec<RoleDefinition>> = OnceLock::new();
    ROLES.get_or_init(|| serde_json::from_str(BUILTIN_ROLES).unwrap_or_default())
}

/// Look a built-in role up by GUID (case-insensitive).
pub fn role_by_id(guid: &str) -> Option<&'static RoleDefinition> {
    builtin_roles()
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(guid))
}

/// Look a built-in role up by name (case-insensitive).
pub fn role_by_name(name: &str) -> Option<&'static RoleDefinition> {
    builtin_roles()
        .iter()
        .find(|r| r.role_name.eq_ignore_ascii_case(name))
}

/// Whether a permission pattern (with `*` wildcards) matches an operation, case-insensitively.
/// `*` matches any run of characters including `/` (`*/read` matches every read).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<u8> = pattern.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let a: Vec<u8> = action.bytes().map(|b| b.to_ascii_lowercase()).collect();
    glob(&p, &a)
}

fn glob(p: &[u8], a: &[u8]) -> bool {
    // Iterative wildcard match with backtracking on the last `*`.
    let (mut pi, mut ai) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ai));
            pi += 1;
        } else if pi < p.len() && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if let Some((sp, sa)) = star {
            pi = sp + 1;
            ai = sa + 1;
            star = Some((sp, sa + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Normalise a scope for comparison: lower case, no trailing slash, `/` for the root.
pub fn normalize_scope(scope: &str) -> String {
    let s = scope.trim().trim_end_matches('/').to_ascii_lowercase();
    if s.is_empty() { "/".to_owned() } else { s }
}

/// Whether an assignment at `assigned` applies to `target` (same scope or a descendant).
pub fn scope_covers(assigned: &str, target: &str) -> bool {
    let a = normalize_scope(assigned);
    let t = normalize_scope(target);
    a == "/" || t == a || t.starts_with(&format!("{a}/"))
}

/// A role assignment.
#[derive(Debug, Clone)]
pub struct RoleAssignment {
    /// The GUID name.
    pub name: String,
    /// Scope as given by the caller (canonical casing kept).
    pub scope: String,
    /// Bare GUID of the role definition.
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: Option<String>,
    pub condition: Option<String>,
    pub condition_version: Option<String>,
    pub created_by: String,
    /// World-clock creation time (unix seconds); effective from `created_at + propagation_delay`.
    pub created_at: std::time::SystemTime,
    pub updated_at: std::time::SystemTime,
}

impl RoleAssignment {
    pub fn id(&self) -> String {
        let scope = self.scope.trim_end_matches('/');
        format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{}",
            self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load() {
        assert!(role_by_name("Reader").is_some());
        assert!(role_by_id("8E3AF657-A8FF-443C-A75C-2FE8C4BCB635").is_some());
    }

    #[test]
    fn scopes() {
        assert!(scope_covers(
            "/subscriptions/A",
            "/subscriptions/a/resourceGroups/rg"
        ));
        assert!(!scope_covers(
            "/subscriptions/a/resourceGroups/rg",
            "/subscriptions/a"
        ));
        assert!(!scope_covers(
            "/subscriptions/a/resourceGroups/rg",
            "/subscriptions/a/resourceGroups/rg2"
        ));
        assert!(scope_covers("/", "/subscriptions/a"));
    }
}
