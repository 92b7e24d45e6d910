//! The one list of known names: top-level keys, step kinds, their fields and outputs, and
//! the builtin references. The parser, the validator ("did you mean"), the driver and the
//! format reference in `scenarios/README.md` all read this table, so a new step kind is one
//! row here plus one arm in the driver.

use crate::model::{GrantKind, Phase, ProvisionKind, StepKind, TokenSource};

/// The type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string, may contain `${...}` references.
    Str,
    Bool,
    Int,
    /// An array of strings (each may contain references).
    StrList,
    /// A table of string -> string (each value may contain references), e.g. headers.
    StrTable,
    /// Any TOML value, converted to JSON (strings may contain references), e.g. a body.
    Json,
}

impl FieldType {
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Str => "a string",
            FieldType::Bool => "a boolean",
            FieldType::Int => "an integer",
            FieldType::StrList => "an array of strings",
            FieldType::StrTable => "a table of strings",
            FieldType::Json => "any value (sent as JSON)",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
    pub doc: &'static str,
}

const fn req(name: &'static str, ty: FieldType, doc: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
        doc,
    }
}
const fn opt(name: &'static str, ty: FieldType, doc: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
        doc,
    }
}

/// One step kind: `provision = "vm"`, `grant = "role_assignment"`, `fetch_token = "imds"`,
/// `call = "METHOD URL"`.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub phase: Phase,
    /// The value of the phase key (`vm`); for calls, `http`.
    pub key: &'static str,
    pub doc: &'static str,
    pub fields: &'static [FieldSpec],
    /// Names this step binds for later `${id.name}` references. A trailing `.*` means any
    /// path below it (JSON bodies).
    pub outputs: &'static [&'static str],
}

impl KindSpec {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether `path` (without the step id) names one of this kind's outputs.
    pub fn has_output(&self, path: &[String]) -> bool {
        let Some(first) = path.first() else {
            // `${token}` alone is allowed for fetch-token steps (means the access token).
            return self.phase == Phase::FetchToken;
        };
        self.outputs.iter().any(|o| {
            if let Some(prefix) = o.strip_suffix(".*") {
                let want: Vec<&str> = prefix.split('.').collect();
                path.len() >= want.len() && path.iter().zip(&want).all(|(a, b)| a == b)
            } else {
                let want: Vec<&str> = o.split('.').collect();
                path.len() == want.len() && path.iter().zip(&want).all(|(a, b)| a == b)
                    || (want.len() == 1 && *first == want[0] && path.len() == 1)
            }
        })
    }

    /// All output names, for "did you mean".
    pub fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .map(|o| o.trim_end_matches(".*").to_string())
            .collect()
    }
}

use FieldType::{Bool, Json, Str, StrList, StrTable};

/// Fields every step may carry besides its kind's own.
pub const STEP_COMMON: &[FieldSpec] = &[
    opt(
        "id",
        Str,
        "Name other steps use in `${id.output}` references (default `step-N`).",
    ),
    opt("note", Str, "Free text shown in reports."),
    opt(
        "lines",
        Str,
        "Line range in the article this step encodes, e.g. `\"396-398\"`.",
    ),
    opt(
        "expect",
        Json,
        "What the response must look like (see Expectations).",
    ),
    opt(
        "denied_without_grant",
        Json,
        "How this call must be denied when the scenario's grant steps are removed.",
    ),
    opt(
        "snapshot",
        Bool,
        "Put this step's redacted exchange in the snapshot (default: true for fetch_token and call).",
    ),
];

/// Keys of an `expect` / `denied_without_grant` table.
pub const EXPECT_FIELDS: &[FieldSpec] = &[
    opt("status", FieldType::Int, "HTTP status (default: any 2xx)."),
    opt(
        "code",
        Str,
        "The service's error code (ARM `error.code`, IMDS `error`, Storage `<Code>`...).",
    ),
    opt(
        "json",
        Json,
        "Table of dotted JSON paths to expected values.",
    ),
    opt(
        "json_types",
        StrTable,
        "Table of dotted JSON paths to JSON types (`string`, `number`, ...).",
    ),
    opt(
        "absent",
        StrList,
        "Dotted JSON paths that must not be present.",
    ),
    opt(
        "headers",
        StrTable,
        "Response headers that must have these values.",
    ),
    opt("body_contains", Str, "Text the response body must contain."),
];

/// Top-level keys.
pub const TOP_LEVEL: &[FieldSpec] = &[
    req("format", FieldType::Int, "Format version; must be `1`."),
    req(
        "id",
        Str,
        "`area/behaviour_outcome`, unique across the suite.",
    ),
    req("title", Str, "One line: what the scenario shows."),
    opt("description", Str, "Longer prose."),
    req(
        "article",
        Json,
        "The seed article and sections this scenario encodes.",
    ),
    opt(
        "backends",
        StrList,
        "Backends the scenario runs on: `fake`, `live` (default both).",
    ),
    opt("tags", StrList, "Free labels for `--tag` filtering."),
    req(
        "host",
        Json,
        "The VM, scale set or App Service the in-host steps run on.",
    ),
    req("step", Json, "The ordered steps (`[[step]]`)."),
];

pub const ARTICLE_FIELDS: &[FieldSpec] = &[
    req(
        "file",
        Str,
        "Seed file name under `docs/articles/`, e.g. `004_68e52737ddb40452.txt`.",
    ),
    opt("lines", Str, "Inclusive line range, e.g. `\"438-572\"`."),
    opt("sections", StrList, "Headings of the sections encoded."),
];

pub const HOST_FIELDS: &[FieldSpec] = &[
    req("kind", Str, "`vm`, `vmss` or `app-service`."),
    req("os", Str, "`linux` or `windows`."),
    req("name", Str, "Resource name of the host, e.g. `myVM`."),
    opt(
        "system_assigned",
        Bool,
        "The host carries a system-assigned identity (default false).",
    ),
    opt(
        "user_assigned",
        StrList,
        "Names of user-assigned identities the host carries.",
    ),
];

const API: FieldSpec = opt(
    "api_version",
    Str,
    "ARM api-version to call with (each kind has a default).",
);
const RG: FieldSpec = req("resource_group", Str, "Resource group name.");
const LOC: FieldSpec = opt(
    "location",
    Str,
    "Azure region (default: the backend's location).",
);

const IMDS_FIELDS: &[FieldSpec] = &[
    req(
        "resource",
        Str,
        "The `resource` query parameter: the audience asked for.",
    ),
    opt(
        "api_version",
        Str,
        "`api-version` query parameter (default `2018-02-01`; App Service `2019-08-01`).",
    ),
    opt(
        "client_id",
        Str,
        "Select a user-assigned identity by client id.",
    ),
    opt(
        "object_id",
        Str,
        "Select a user-assigned identity by object (principal) id.",
    ),
    opt(
        "mi_res_id",
        Str,
        "Select a user-assigned identity by resource id.",
    ),
    opt(
        "encode_resource",
        Bool,
        "Percent-encode `resource` as some tutorials do (default false).",
    ),
    opt(
        "headers",
        StrTable,
        "Extra or replacement request headers (e.g. `Metadata = \"True\"`).",
    ),
    opt(
        "omit",
        StrList,
        "Request parts to leave out: `Metadata`, `api-version`, `resource`.",
    ),
    opt(
        "host",
        Str,
        "Id of the provision step whose VM runs this request (default: the host's).",
    ),
];

/// Outputs of the kinds that create or change an identity-bearing host (VM, scale set, site).
const HOST_OUTPUTS: &[&str] = &[
    "id",
    "name",
    "identity.principal_id",
    "identity.tenant_id",
    "identity.type",
    "identity.*",
    "body.*",
];

/// Every step kind.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        phase: Phase::Provision,
        key: "resource_group",
        doc: "PUT a resource group.",
        fields: &[req("name", Str, "Resource group name."), LOC, API],
        outputs: &["id", "name", "location", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "user_assigned_identity",
        doc: "PUT a user-assigned managed identity (Microsoft.ManagedIdentity/userAssignedIdentities).",
        fields: &[req("name", Str, "Identity name."), RG, LOC, API],
        outputs: &[
            "id",
            "name",
            "client_id",
            "principal_id",
            "tenant_id",
            "body.*",
        ],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "vm",
        doc: "PUT a virtual machine with the identity settings given (defaults from `[host]`).",
        fields: &[
            opt("name", Str, "VM name (default: `host.name`)."),
            RG,
            LOC,
            opt(
                "system_assigned",
                Bool,
                "Enable the system-assigned identity (default: `host.system_assigned`).",
            ),
            opt(
                "user_assigned",
                StrList,
                "Resource ids of user-assigned identities to attach.",
            ),
            API,
        ],
        outputs: HOST_OUTPUTS,
    },
    KindSpec {
        phase: Phase::Provision,
        key: "vmss",
        doc: "PUT a virtual machine scale set with the identity settings given.",
        fields: &[
            opt("name", Str, "Scale set name (default: `host.name`)."),
            RG,
            LOC,
            opt(
                "system_assigned",
                Bool,
                "Enable the system-assigned identity.",
            ),
            opt(
                "user_assigned",
                StrList,
                "Resource ids of user-assigned identities to attach.",
            ),
            API,
        ],
        outputs: HOST_OUTPUTS,
    },
    KindSpec {
        phase: Phase::Provision,
        key: "vm_identity",
        doc: "GET the VM, then PATCH its identity as the REST how-to does (array form before 2018-06-01, dictionary form after).",
        fields: &[
            req("vm", Str, "VM name."),
            RG,
            opt(
                "system_assigned",
                Bool,
                "Enable (true) or disable (false) the system-assigned identity; unchanged if absent.",
            ),
            opt(
                "assign",
                StrList,
                "User-assigned identity resource ids to add.",
            ),
            opt(
                "remove",
                StrList,
                "User-assigned identity resource ids to remove.",
            ),
            API,
        ],
        outputs: HOST_OUTPUTS,
    },
    KindSpec {
        phase: Phase::Provision,
        key: "vmss_identity",
        doc: "GET the scale set, then PATCH its identity.",
        fields: &[
            req("vmss", Str, "Scale set name."),
            RG,
            opt(
                "system_assigned",
                Bool,
                "Enable or disable the system-assigned identity.",
            ),
            opt(
                "assign",
                StrList,
                "User-assigned identity resource ids to add.",
            ),
            opt(
                "remove",
                StrList,
                "User-assigned identity resource ids to remove.",
            ),
            API,
        ],
        outputs: HOST_OUTPUTS,
    },
    KindSpec {
        phase: Phase::Provision,
        key: "storage_account",
        doc: "PUT a storage account (Microsoft.Storage/storageAccounts).",
        fields: &[
            req(
                "name",
                Str,
                "Account name (3-24 lower-case letters and digits).",
            ),
            RG,
            LOC,
            opt("kind", Str, "Account kind (default `StorageV2`)."),
            opt("sku", Str, "SKU name (default `Standard_LRS`)."),
            API,
        ],
        outputs: &["id", "name", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "app_service",
        doc: "PUT an App Service site (Microsoft.Web/sites) with a system-assigned identity; its code sees IDENTITY_ENDPOINT and IDENTITY_HEADER.",
        fields: &[
            opt("name", Str, "Site name (default: `host.name`)."),
            RG,
            LOC,
            opt(
                "system_assigned",
                Bool,
                "Enable the system-assigned identity (default: `host.system_assigned`).",
            ),
            opt(
                "user_assigned",
                StrList,
                "Resource ids of user-assigned identities to attach.",
            ),
            API,
        ],
        outputs: HOST_OUTPUTS,
    },
    KindSpec {
        phase: Phase::Provision,
        key: "key_vault",
        doc: "PUT a key vault (Microsoft.KeyVault/vaults) as the deployer, who gets data access: an access policy (access-policy model) or Key Vault Secrets Officer on the vault (RBAC model).",
        fields: &[
            req(
                "name",
                Str,
                "Vault name (3-24 letters, digits and hyphens).",
            ),
            RG,
            LOC,
            opt(
                "enable_rbac_authorization",
                Bool,
                "Use the Azure RBAC permission model instead of access policies (default false).",
            ),
            opt(
                "deployer_secret_permissions",
                StrList,
                "Secret permissions of the deployer's own access policy (default `get`, `list`, `set`, `delete`).",
            ),
            API,
        ],
        outputs: &["id", "name", "vault_uri", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "key_vault_secret",
        doc: "PUT a secret into a vault's data plane as the deployer (with a deployer token for `https://vault.azure.net`).",
        fields: &[
            req(
                "vault_uri",
                Str,
                "The vault's `properties.vaultUri`, e.g. `${kv.vault_uri}`.",
            ),
            req("name", Str, "Secret name."),
            req("value", Str, "Secret value (redacted in transcripts)."),
            opt(
                "api_version",
                Str,
                "Data-plane api-version (default `7.4`).",
            ),
        ],
        outputs: &["id", "name", "version", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "cosmos_account",
        doc: "PUT a Cosmos DB account (Microsoft.DocumentDB/databaseAccounts, SQL API).",
        fields: &[
            req(
                "name",
                Str,
                "Account name (3-50 lower-case letters, digits and hyphens).",
            ),
            RG,
            LOC,
            opt("kind", Str, "Account kind (default `GlobalDocumentDB`)."),
            API,
        ],
        outputs: &["id", "name", "document_endpoint", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "datalake_store",
        doc: "PUT a Data Lake Store Gen1 account (Microsoft.DataLakeStore/accounts, 2016-11-01); the deployer owns its root folder and is its super-user.",
        fields: &[
            req(
                "name",
                Str,
                "Account name (3-24 lower-case letters and digits).",
            ),
            RG,
            LOC,
            API,
        ],
        outputs: &["id", "name", "endpoint", "url", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "sql_server",
        doc: "PUT an Azure SQL logical server (Microsoft.Sql/servers) with a SQL admin login and a random password, then GET it.",
        fields: &[
            req(
                "name",
                Str,
                "Server name (lower-case letters, digits and hyphens; unique in Azure).",
            ),
            RG,
            LOC,
            opt(
                "admin_login",
                Str,
                "SQL administrator login (default `micadmin`); the password is random and redacted.",
            ),
            API,
        ],
        outputs: &["id", "name", "fqdn", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "sql_database",
        doc: "PUT a database on a logical server (Microsoft.Sql/servers/databases), then GET it.",
        fields: &[
            req("name", Str, "Database name."),
            req("server", Str, "Server name."),
            RG,
            LOC,
            API,
        ],
        outputs: &["id", "name", "body.*"],
    },
    KindSpec {
        phase: Phase::Provision,
        key: "sql_entra_admin",
        doc: "PUT the server's Entra (Azure AD) admin (`administrators/ActiveDirectory`; `activeDirectory` before 2017): by default the deployer, identified by its application id.",
        fields: &[
            req("server", Str, "Server name."),
            RG,
            opt(
                "login",
                Str,
                "Display name recorded as the admin's login (default `mic-deployer`).",
            ),
            opt(
                "sid",
                Str,
                "Object id of a user or group, or application id of an application (default: the deployer's client id).",
            ),
            API,
        ],
        outputs: &["id", "name", "body.*"],
    },
    KindSpec {
        phase: Phase::Grant,
        key: "role_assignment",
        doc: "Look the role up by name (GET roleDefinitions?$filter=roleName eq '...') and PUT a role assignment at the scope.",
        fields: &[
            req("role", Str, "Built-in role name, e.g. `Reader`."),
            req("principal", Str, "Object (principal) id of the identity."),
            req(
                "scope",
                Str,
                "ARM scope: a subscription, resource group or resource id.",
            ),
            opt(
                "principal_type",
                Str,
                "`ServicePrincipal` (default), `User`, `Group`.",
            ),
            API,
        ],
        outputs: &["id", "name", "role_definition_id", "body.*"],
    },
    KindSpec {
        phase: Phase::Grant,
        key: "key_vault_access_policy",
        doc: "Add a Key Vault access policy through ARM (PUT `<vault>/accessPolicies/add`) as the deployer, as the portal's access-policy templates do.",
        fields: &[
            req("vault", Str, "Vault name."),
            RG,
            req("principal", Str, "Object (principal) id of the identity."),
            opt(
                "tenant",
                Str,
                "Tenant of the principal (default: the run's tenant).",
            ),
            opt(
                "secret_permissions",
                StrList,
                "Secret permissions (default: the portal's Secret Management template: `get`, `list`, `set`, `delete`, `recover`, `backup`, `restore`).",
            ),
            API,
        ],
        outputs: &["body.*"],
    },
    KindSpec {
        phase: Phase::Grant,
        key: "adls_acl",
        doc: "Add POSIX ACL entries for a principal on a Data Lake Store path (WebHDFS PUT ?op=MODIFYACLENTRIES as the deployer, the account's super-user).",
        fields: &[
            req(
                "account",
                Str,
                "Name of the Data Lake Store account (created by a `provision = \"datalake_store\"` step).",
            ),
            req(
                "path",
                Str,
                "File or folder path, e.g. `/` or `/TestFolder`.",
            ),
            req("principal", Str, "Object (principal) id of the identity."),
            req(
                "permissions",
                Str,
                "Permission bits as `rwx`, `r-x`, `--x`...",
            ),
            opt(
                "default",
                Bool,
                "Also add the entry as a default entry, inherited by new children (the portal's \"An access permission entry and a default permission entry\"; default false).",
            ),
        ],
        outputs: &["aclspec", "body.*"],
    },
    KindSpec {
        phase: Phase::Grant,
        key: "graph_app_role",
        doc: "Grant an application permission (app role) as the deployer through Azure AD Graph: look the resource application's service principal up by appId, then POST servicePrincipals/{principal}/appRoleAssignments.",
        fields: &[
            req(
                "principal",
                Str,
                "Object id of the identity's service principal.",
            ),
            req("role", Str, "App role value, e.g. `Directory.Read.All`."),
            opt(
                "app_id",
                Str,
                "Application id of the resource application (default Azure AD Graph, `00000002-0000-0000-c000-000000000000`).",
            ),
        ],
        outputs: &["id", "app_role_id", "resource_id", "body.*"],
    },
    KindSpec {
        phase: Phase::Grant,
        key: "graph_group_member",
        doc: "Add a directory object to a group as the deployer through Azure AD Graph (POST groups/{group}/$links/members).",
        fields: &[
            req("group", Str, "Object id of the group."),
            req(
                "member",
                Str,
                "Object id of the member (e.g. the identity's service principal).",
            ),
        ],
        outputs: &["group", "member"],
    },
    KindSpec {
        phase: Phase::Grant,
        key: "sql_contained_user",
        doc: "Connect to the database as the server's Entra admin (the deployer, with its own token for `https://database.windows.net/`) and run `CREATE USER [name] FROM EXTERNAL PROVIDER`, then `ALTER ROLE <role> ADD MEMBER [name]` for each role.",
        fields: &[
            req(
                "server",
                Str,
                "The server's address: `properties.fullyQualifiedDomainName` of the `sql_server` step.",
            ),
            req("database", Str, "Database name."),
            req(
                "name",
                Str,
                "Display name of the principal (the tutorial's `VMName`).",
            ),
            opt(
                "roles",
                StrList,
                "Database roles to add the user to, e.g. `[\"db_datareader\"]`.",
            ),
        ],
        outputs: &["name", "status", "body.*"],
    },
    KindSpec {
        phase: Phase::FetchToken,
        key: "imds",
        doc: "GET http://169.254.169.254/metadata/identity/oauth2/token from inside the host.",
        fields: IMDS_FIELDS,
        outputs: &[
            "access_token",
            "expires_in",
            "expires_on",
            "not_before",
            "resource",
            "token_type",
            "client_id",
            "claims.*",
            "status",
            "body.*",
        ],
    },
    KindSpec {
        phase: Phase::FetchToken,
        key: "app_service",
        doc: "GET $IDENTITY_ENDPOINT with X-IDENTITY-HEADER (App Service, api-version 2019-08-01).",
        fields: IMDS_FIELDS,
        outputs: &[
            "access_token",
            "expires_in",
            "expires_on",
            "not_before",
            "resource",
            "token_type",
            "client_id",
            "claims.*",
            "status",
            "body.*",
        ],
    },
    KindSpec {
        phase: Phase::FetchToken,
        key: "vm_extension",
        doc: "GET http://localhost:50342/oauth2/token (the legacy VM extension).",
        fields: IMDS_FIELDS,
        outputs: &[
            "access_token",
            "expires_in",
            "expires_on",
            "not_before",
            "resource",
            "token_type",
            "client_id",
            "claims.*",
            "status",
            "body.*",
        ],
    },
    KindSpec {
        phase: Phase::Call,
        key: "http",
        doc: "An HTTP request: `call = \"METHOD URL\"`.",
        fields: &[
            opt("headers", StrTable, "Request headers."),
            opt(
                "body",
                Json,
                "Request body: a string is sent as is, a table as JSON.",
            ),
            opt(
                "token",
                Str,
                "Id of a fetch_token step: sends `Authorization: Bearer <its token>`.",
            ),
            opt(
                "as_deployer",
                Bool,
                "Send the deployer's ARM token (as the operator in the REST how-tos).",
            ),
            opt(
                "as_deployer_for",
                Str,
                "Send a deployer token for this resource, e.g. `https://graph.windows.net/` (as `az account get-access-token --resource` gives the operator).",
            ),
            opt(
                "sign",
                StrTable,
                "Sign the request instead of a bearer token: `scheme` plus that scheme's inputs (see `sign.rs`).",
            ),
        ],
        outputs: &["status", "headers.*", "body.*", "text"],
    },
    KindSpec {
        phase: Phase::Call,
        key: "sql",
        doc: "A T-SQL batch over TDS (tiberius, token authentication): `call = \"SQL <server address>/<database>\"`. The response is JSON: `{\"rows\": [...], \"rows_affected\": [...]}`, or `{\"error\": {\"code\": \"18456\", \"number\", \"state\", \"class\", \"message\", \"server\"}}` with status 401 (login failed), 403 (permission denied) or 400 (other errors).",
        fields: &[
            req("query", Str, "The T-SQL batch to run."),
            opt(
                "token",
                Str,
                "Id of a fetch_token step: logs in with its access token.",
            ),
            opt(
                "as_deployer",
                Bool,
                "Log in with the deployer's token for `https://database.windows.net/` (the server's Entra admin).",
            ),
        ],
        outputs: &["status", "body.*", "text"],
    },
    KindSpec {
        phase: Phase::Call,
        key: "blob",
        doc: "A Blob Storage call made by the official Azure Storage SDK (`azure_storage_blob`), as the tutorial's .NET Storage SDK does: `call = \"BLOB download <blob url>\"` (outputs the blob as `content`), `\"BLOB upload <blob url>\"` (a block blob from `body`) or `\"BLOB list <container url>\"` (outputs the first page of blob names as `blobs`). The SDK's requests go over the same transport as HTTP steps and are recorded; expectations see the last response (status, Storage error `code`, body).",
        fields: &[
            opt(
                "token",
                Str,
                "Id of a fetch_token step: the SDK sends its access token as `Authorization: Bearer`.",
            ),
            opt(
                "sign",
                StrTable,
                "Sign with the account key instead: `{ scheme = \"shared_key\", account, key }`. A SAS URL needs neither.",
            ),
            opt(
                "headers",
                StrTable,
                "Headers set on every request the SDK sends; `x-ms-version` replaces the SDK's service version.",
            ),
            opt("body", Str, "The content of `BLOB upload`."),
        ],
        outputs: &[
            "status",
            "headers.*",
            "body.*",
            "text",
            "content",
            "blobs.*",
        ],
    },
];

/// Builtin reference roots, available to every step.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "arm",
        "Base URL of Azure Resource Manager (`https://management.azure.com` live).",
    ),
    (
        "login",
        "Base URL of the token service (`https://login.microsoftonline.com` live).",
    ),
    ("subscription_id", "The subscription the run uses."),
    ("tenant_id", "The tenant the run uses."),
    ("location", "The default region."),
    (
        "run_id",
        "A short id unique to this run (use it in names that must be unique).",
    ),
    (
        "deployer",
        "The deployer principal: `deployer.object_id`, `deployer.client_id`, `deployer.access_token`.",
    ),
    ("host", "The host: `host.name`, `host.os`."),
    (
        "graph",
        "Base URL of Azure AD Graph (`https://graph.windows.net` live).",
    ),
];

/// Output paths of the `deployer` and `host` builtins.
pub const BUILTIN_PATHS: &[(&str, &[&str])] = &[
    ("deployer", &["object_id", "client_id", "access_token"]),
    ("host", &["name", "os"]),
];

/// The schema of a kind.
pub fn kind_spec(kind: &StepKind) -> &'static KindSpec {
    kind_spec_by_key(kind.phase(), kind.key()).expect("every StepKind has a schema row")
}

pub fn kind_spec_by_key(phase: Phase, key: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.phase == phase && k.key == key)
}

/// Keys valid for a phase (for "did you mean" on unknown kinds).
pub fn kind_keys(phase: Phase) -> Vec<&'static str> {
    KINDS
        .iter()
        .filter(|k| k.phase == phase)
        .map(|k| k.key)
        .collect()
}

/// Map a (phase, key) to the model kind; calls are parsed separately (`METHOD URL`).
pub fn step_kind_from_key(phase: Phase, key: &str) -> Option<StepKind> {
    match phase {
        Phase::Provision => ProvisionKind::from_key(key).map(StepKind::Provision),
        Phase::Grant => GrantKind::from_key(key).map(StepKind::Grant),
        Phase::FetchToken => TokenSource::from_key(key).map(StepKind::FetchToken),
        Phase::Call => None,
    }
}

/// The method of a SQL call step: `call = "SQL <server>/<database>"`.
pub const SQL_METHOD: &str = "SQL";

/// The method of a Storage SDK call step: `call = "BLOB <operation> <url>"`.
pub const BLOB_METHOD: &str = "BLOB";

/// HTTP methods a call step may use.
pub const METHODS: &[&str] = &["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"];
