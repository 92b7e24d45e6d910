//! Small contract tables copied from `azure-specs/README.md` §3-4 and the protocol
//! catalog (Part D). They drive the static checks and the stub executor.

use serde::Serialize;

/// The service an operation talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    Arm,
    Imds,
    /// Legacy VM extension token endpoint (`localhost:50342`).
    Extension,
    Blob,
    KeyVault,
    DataLake,
    Graph,
    Cosmos,
    Sql,
    /// The operator's own CLI/PowerShell session (sign-in, token for the operator).
    Local,
    Unknown,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Arm => "Azure Resource Manager",
            Service::Imds => "IMDS token endpoint",
            Service::Extension => "VM extension token endpoint",
            Service::Blob => "Azure Storage (blob)",
            Service::KeyVault => "Key Vault (data plane)",
            Service::DataLake => "Data Lake Store (WebHDFS)",
            Service::Graph => "Azure AD Graph",
            Service::Cosmos => "Cosmos DB (data plane)",
            Service::Sql => "Azure SQL",
            Service::Local => "local tool",
            Service::Unknown => "unknown service",
        }
    }

    /// Service from a URL host (lower-case, may still contain placeholders).
    pub fn from_host(host: &str) -> Service {
        let h = host.to_ascii_lowercase();
        if h.starts_with("169.254.169.254") {
            Service::Imds
        } else if h.starts_with("localhost:50342")
            || h == "localhost"
            || h.starts_with("127.0.0.1:50342")
        {
            Service::Extension
        } else if h.starts_with("management.") {
            Service::Arm
        } else if h.contains(".blob.") {
            Service::Blob
        } else if h.contains(".vault.") || h.contains("key-vault") || h.contains("keyvault") {
            Service::KeyVault
        } else if h.contains("azuredatalakestore") {
            Service::DataLake
        } else if h.starts_with("graph.windows.net") || h.starts_with("graph.microsoft.com") {
            Service::Graph
        } else if h.contains("documents.azure.com") {
            Service::Cosmos
        } else if h.contains("database.windows.net") {
            Service::Sql
        } else {
            Service::Unknown
        }
    }
}

/// Accepted ARM api-versions per resource type (lower-case `namespace/type`).
/// Source: the swagger folders in `azure-specs` plus versions the 2019 tutorials use
/// that the catalog lists as valid.
pub const ARM_API_VERSIONS: &[(&str, &[&str])] = &[
    (
        "microsoft.resources/resourcegroups",
        &[
            "2016-06-01",
            "2016-09-01",
            "2018-05-01",
            "2019-05-01",
            "2024-03-01",
        ],
    ),
    (
        "microsoft.compute/virtualmachines",
        &[
            "2017-03-30",
            "2017-12-01",
            "2018-04-01",
            "2018-06-01",
            "2018-10-01",
            "2019-03-01",
            "2024-03-01",
        ],
    ),
    (
        "microsoft.compute/virtualmachinescalesets",
        &[
            "2017-03-30",
            "2017-12-01",
            "2018-04-01",
            "2018-06-01",
            "2018-10-01",
            "2019-03-01",
            "2024-03-01",
        ],
    ),
    (
        "microsoft.compute/virtualmachines/extensions",
        &[
            "2015-05-01-preview",
            "2017-03-30",
            "2017-12-01",
            "2018-06-01",
            "2018-10-01",
            "2024-03-01",
        ],
    ),
    (
        "microsoft.managedidentity/userassignedidentities",
        &["2015-08-31-preview", "2018-11-30", "2023-01-31"],
    ),
    (
        "microsoft.authorization/roleassignments",
        &[
            "2015-07-01",
            "2017-09-01",
            "2018-09-01-preview",
            "2022-04-01",
        ],
    ),
    (
        "microsoft.authorization/roledefinitions",
        &["2015-07-01", "2022-04-01"],
    ),
    (
        "microsoft.storage/storageaccounts",
        &[
            "2016-12-01",
            "2017-06-01",
            "2017-10-01",
            "2018-02-01",
            "2023-05-01",
        ],
    ),
    (
        "microsoft.documentdb/databaseaccounts",
        &[
            "2014-04-01",
            "2015-04-08",
            "2015-11-06",
            "2016-03-19",
            "2016-03-31",
            "2024-05-15",
        ],
    ),
    (
        "microsoft.keyvault/vaults",
        &["2016-10-01", "2018-02-14", "2023-07-01"],
    ),
    ("microsoft.sql/servers", &["2014-04-01", "2021-11-01"]),
    ("microsoft.datalakestore/accounts", &["2016-11-01"]),
];

/// Accepted api-versions for data-plane services (`None` = not restricted here).
pub fn data_plane_versions(service: Service) -> Option<&'static [&'static str]> {
    match service {
        Service::Imds => Some(&[
            "2018-02-01",
            "2018-10-01",
            "2019-08-01",
            "2019-11-01",
            "2020-06-01",
            "2021-02-01",
            "2023-07-01",
        ]),
        Service::KeyVault => Some(&["2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5"]),
        Service::Graph => Some(&["1.6"]),
        Service::DataLake => Some(&["2016-11-01"]),
        _ => None,
    }
}

/// Accepted api-versions for an ARM resource type, if the table knows it.
pub fn arm_versions(resource_type: &str) -> Option<&'static [&'static str]> {
    let t = resource_type.to_ascii_lowercase();
    ARM_API_VERSIONS
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, v)| *v)
}

/// Token audiences (`resource` values) the token service knows, and the service they open.
/// Trailing-slash variants are listed explicitly (D.1 of the catalog).
pub const AUDIENCES: &[(&str, Service)] = &[
    ("https://management.azure.com/", Service::Arm),
    ("https://management.azure.com", Service::Arm),
    ("https://management.core.windows.net/", Service::Arm),
    ("https://management.usgovcloudapi.net/", Service::Arm),
    ("https://management.microsoftazure.de/", Service::Arm),
    ("https://management.chinacloudapi.cn", Service::Arm),
    ("https://storage.azure.com/", Service::Blob),
    ("https://storage.azure.com", Service::Blob),
    ("https://vault.azure.net", Service::KeyVault),
    ("https://vault.azure.net/", Service::KeyVault),
    ("https://vault.usgovcloudapi.net", Service::KeyVault),
    ("https://vault.microsoftazure.de", Service::KeyVault),
    ("https://vault.azure.cn", Service::KeyVault),
    ("https://database.windows.net/", Service::Sql),
    ("https://database.usgovcloudapi.net/", Service::Sql),
    ("https://database.cloudapi.de/", Service::Sql),
    ("https://database.chinacloudapi.cn/", Service::Sql),
    ("https://datalake.azure.net/", Service::DataLake),
    ("https://graph.windows.net", Service::Graph),
    ("https://graph.windows.net/", Service::Graph),
    ("https://eventhubs.azure.net", Service::Unknown),
    ("https://servicebus.azure.net", Service::Unknown),
    ("https://cosmos.azure.com", Service::Cosmos),
];

/// The service a token audience opens, if the token service knows the audience.
pub fn audience_service(resource: &str) -> Option<Service> {
    let r = resource.trim();
    AUDIENCES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(r))
        .map(|(_, s)| *s)
}

/// Headers a service requires: (name, required exact value if any, why).
pub fn required_headers(
    service: Service,
) -> &'static [(&'static str, Option<&'static str>, &'static str)] {
    match service {
        Service::Imds => &[(
            "Metadata",
            Some("true"),
            "IMDS answers 400 bad_request_102 without `Metadata: true` (lower-case value)",
        )],
        Service::Extension => &[(
            "Metadata",
            Some("true"),
            "the extension endpoint requires `Metadata: true`",
        )],
        Service::Arm | Service::KeyVault | Service::Graph | Service::DataLake => &[(
            "Authorization",
            None,
            "the service needs `Authorization: Bearer <token>`",
        )],
        Service::Blob => &[(
            "x-ms-version",
            None,
            "Blob storage needs `x-ms-version` (2017-11-09 or later) with bearer tokens",
        )],
        _ => &[],
    }
}

/// Api-version from which Compute takes `userAssignedIdentities` (dictionary) instead of `identityIds` (array).
pub const COMPUTE_DICT_IDENTITY_FROM: &str = "2018-06-01";

/// `identity.type` closed enum of Microsoft.Compute (README §3.9).
pub const COMPUTE_IDENTITY_TYPES: &[&str] = &[
    "SystemAssigned",
    "UserAssigned",
    "SystemAssigned, UserAssigned",
    "None",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(Service::from_host("169.254.169.254"), Service::Imds);
        assert_eq!(Service::from_host("management.azure.com"), Service::Arm);
        assert_eq!(
            Service::from_host("<YOUR-KEY-VAULT-URL>"),
            Service::KeyVault
        );
        assert_eq!(
            audience_service("https://vault.azure.net"),
            Some(Service::KeyVault)
        );
        assert_eq!(audience_service("https://management.azure.comm/"), None);
        assert!(
            arm_versions("Microsoft.Compute/virtualMachineScaleSets")
                .is_some_and(|v| v.contains(&"2018-06-01"))
        );
        assert!(
            arm_versions("Microsoft.Compute/virtualMachineScaleSets")
                .is_some_and(|v| !v.contains(&"2018-12-01"))
        );
        assert!(data_plane_versions(Service::Imds).is_some_and(|v| v.contains(&"2018-02-01")));
    }
}
