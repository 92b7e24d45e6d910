//! The world's directory (Entra ID): service principals of managed identities and of the
//! deployer. Data planes look principals up here.

use std::collections::BTreeMap;

/// What kind of principal this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// System-assigned managed identity of a VM / scale set / site.
    SystemAssigned,
    /// User-assigned managed identity (Microsoft.ManagedIdentity/userAssignedIdentities).
    UserAssigned,
    /// An application's service principal with a client secret (the deployer).
    ServicePrincipal,
}

/// A service principal in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    pub object_id: String,
    /// Application (client) id.
    pub app_id: String,
    pub display_name: String,
    pub kind: PrincipalKind,
    /// ARM id of the identity: the host for system-assigned, the identity resource for
    /// user-assigned, `None` for plain service principals.
    pub resource_id: Option<String>,
    pub(crate) secret: Option<String>,
    /// App roles granted (for the `roles` claim; Graph comes later).
    pub roles: Vec<String>,
}

impl ServicePrincipal {
    /// `ServicePrincipal` is the principalType role assignments report for all three kinds.
    pub fn principal_type(&self) -> &'static str {
        "ServicePrincipal"
    }
    pub fn is_managed_identity(&self) -> bool {
        matches!(
            self.kind,
            PrincipalKind::SystemAssigned | PrincipalKind::UserAssigned
        )
    }
}

/// A snapshot of the directory (cloned out of the world).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_oid: BTreeMap<String, ServicePrincipal>,
}

impl Directory {
    pub(crate) fn insert(&mut self, sp: ServicePrincipal) {
        self.by_oid.insert(sp.object_id.to_ascii_lowercase(), sp);
    }
    pub(crate) fn remove(&mut self, object_id: &str) -> Option<ServicePrincipal> {
        self.by_oid.remove(&object_id.to_ascii_lowercase())
    }
    /// By object (principal) id, case-insensitive; accepts the dash-less form too.
    pub fn get(&self, object_id: &str) -> Option<&ServicePrincipal> {
        let key = object_id.to_ascii_lowercase();
        self.by_oid.get(&key).or_else(|| {
            self.by_oid
                .values()
                .find(|sp| crate::util::undash(&sp.object_id) == key)
        })
    }
    /// By application (client) id.
    pub fn by_app_id(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.by_oid
            .values()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
    }
    /// By the ARM id of the identity.
    pub fn by_resource_id(&self, resource_id: &str) -> Option<&ServicePrincipal> {
        self.by_oid.values().find(|sp| {
            sp.resource_id
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(resource_id))
        })
    }
    pub fn all(&self) -> impl Iterator<Item = &ServicePrincipal> {
        self.by_oid.values()
    }
    pub fn len(&self) -> usize {
        self.by_oid.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_oid.is_empty()
    }
}
