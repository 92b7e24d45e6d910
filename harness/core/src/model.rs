//! The scenario model: what a scenario file *means*, independent of how it was parsed.
//!
//! A scenario is metadata (which article and sections it encodes), a host (the VM or
//! App Service the in-host steps run on) and an ordered list of steps of four phases:
//! provision, grant, fetch-token and call-resource. Every value that came from the file
//! keeps its byte span so that validation and run-time failures can point at `path:line:col`.
//!
//! Step fields are kept as a typed map ([`Fields`]) checked against the kind's schema in
//! [`crate::schema`] rather than as one Rust struct per kind: new kinds (data planes) add a
//! schema row and a driver arm, and the parser, validator, diagnostics and the format
//! reference in `scenarios/README.md` follow from the table.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A byte range into a [`SourceFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        Self::new(r.start, r.end)
    }
}

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A scenario file's text and its display path (relative to the workspace root when possible).
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// 1-based line and column (in characters, as rustc and editors count) of a byte offset.
    /// Offsets past the end or inside a character are clamped, never a panic.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// `path:line` for a span, as used in run-time failure messages.
    pub fn location(&self, span: Span) -> String {
        let (line, _) = self.line_col(span.start);
        format!("{}:{line}", self.path.display())
    }
}

/// Which backends a scenario may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Fake,
    Live,
}

impl BackendKind {
    pub const ALL: [BackendKind; 2] = [BackendKind::Fake, BackendKind::Live];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Fake => "fake",
            BackendKind::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fake" => Some(Self::Fake),
            "live" => Some(Self::Live),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One parsed, validated scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: Arc<SourceFile>,
    /// `format = 1`.
    pub format: u32,
    /// `area/behaviour_outcome`, e.g. `arm/linux-vm-system-assigned`.
    pub id: Spanned<String>,
    pub title: String,
    pub description: Option<String>,
    pub article: Article,
    /// Backends this scenario supports (default: all).
    pub backends: Vec<BackendKind>,
    pub tags: Vec<String>,
    pub host: Host,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The area part of the id (`arm` in `arm/linux-vm-system-assigned`).
    pub fn area(&self) -> &str {
        self.id.split_once('/').map_or("misc", |(a, _)| a)
    }

    /// The name part of the id.
    pub fn name(&self) -> &str {
        self.id.split_once('/').map_or(self.id.as_str(), |(_, n)| n)
    }

    /// Whether any step grants access (such scenarios also get a grant-necessity trial).
    pub fn has_grants(&self) -> bool {
        self.steps.iter().any(|s| s.phase() == Phase::Grant)
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id.value == id)
    }
}

/// The article (seed file) a scenario encodes.
#[derive(Debug, Clone)]
pub struct Article {
    /// Seed file name, e.g. `004_68e52737ddb40452.txt`.
    pub file: String,
    /// Inclusive 1-based line range in the seed file.
    pub lines: Option<(u32, u32)>,
    /// Headings of the sections encoded.
    pub sections: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Vm,
    Vmss,
    AppService,
}

impl HostKind {
    pub fn name(self) -> &'static str {
        match self {
            HostKind::Vm => "vm",
            HostKind::Vmss => "vmss",
            HostKind::AppService => "app-service",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Windows,
}

impl Os {
    pub fn name(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }
}

/// The machine the in-host steps (fetch-token) run on.
#[derive(Debug, Clone)]
pub struct Host {
    pub kind: HostKind,
    pub os: Os,
    /// Resource name, e.g. `myVM`.
    pub name: String,
    /// Whether the host is meant to carry a system-assigned identity (documentation and
    /// the default for `provision = "vm"`).
    pub system_assigned: bool,
    /// Names of user-assigned identities the host is meant to carry.
    pub user_assigned: Vec<String>,
}

/// The four phases of a tutorial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Provision,
    Grant,
    FetchToken,
    Call,
}

impl Phase {
    /// The TOML key that introduces a step of this phase.
    pub fn key(self) -> &'static str {
        match self {
            Phase::Provision => "provision",
            Phase::Grant => "grant",
            Phase::FetchToken => "fetch_token",
            Phase::Call => "call",
        }
    }
}

/// One `[[step]]`.
#[derive(Debug, Clone)]
pub struct Step {
    /// 0-based position in the file.
    pub index: usize,
    /// `id = "..."`; defaults to `step-N` (1-based) when absent (span is then the table's).
    pub id: Spanned<String>,
    /// The whole `[[step]]` table.
    pub span: Span,
    pub kind: Spanned<StepKind>,
    /// Kind-specific fields, checked against [`crate::schema::KindSpec`].
    pub fields: Fields,
    /// What must come back (default: any 2xx).
    pub expect: Option<Expect>,
    /// For the grant-necessity trial: how this call must be denied when the scenario's
    /// grant steps are removed.
    pub denied_without_grant: Option<Expect>,
    /// Whether this step's redacted exchange goes into the scenario snapshot
    /// (default: true for fetch-token and call steps, false otherwise).
    pub snapshot: Option<bool>,
    pub note: Option<String>,
    /// Inclusive 1-based line range in the article that this step encodes.
    pub doc_lines: Option<(u32, u32)>,
}

impl Step {
    pub fn phase(&self) -> Phase {
        self.kind.value.phase()
    }

    pub fn snapshots(&self) -> bool {
        self.snapshot
            .unwrap_or(matches!(self.phase(), Phase::FetchToken | Phase::Call))
    }
}

/// The step's kind: the phase key and its value.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `provision = "vm"` etc.
    Provision(ProvisionKind),
    /// `grant = "role_assignment"` etc.
    Grant(GrantKind),
    /// `fetch_token = "imds"` etc.
    FetchToken(TokenSource),
    /// `call = "GET ${arm}/subscriptions/..."` (HTTP), or `call = "SQL <server>/<database>"`
    /// (a TDS connection and a query).
    Call { method: String, url: Template },
}

impl StepKind {
    pub fn phase(&self) -> Phase {
        match self {
            StepKind::Provision(_) => Phase::Provision,
            StepKind::Grant(_) => Phase::Grant,
            StepKind::FetchToken(_) => Phase::FetchToken,
            StepKind::Call { .. } => Phase::Call,
        }
    }

    /// The schema key of this kind (`vm`, `role_assignment`, `imds`, `http`).
    pub fn key(&self) -> &'static str {
        match self {
            StepKind::Provision(k) => k.key(),
            StepKind::Grant(k) => k.key(),
            StepKind::FetchToken(k) => k.key(),
            StepKind::Call { method, .. } if method == crate::schema::SQL_METHOD => "sql",
            StepKind::Call { method, .. } if method == crate::schema::BLOB_METHOD => "blob",
            StepKind::Call { .. } => "http",
        }
    }

    /// `provision.vm`, `grant.role_assignment`, `fetch_token.imds`, `call.http`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.phase().key(), self.key())
    }
}

macro_rules! keyed_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $key:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn key(self) -> &'static str {
                match self { $($name::$variant => $key),* }
            }

            pub fn from_key(s: &str) -> Option<Self> {
                match s { $($key => Some($name::$variant),)* _ => None }
            }
        }
    };
}

keyed_enum! {
    /// What a `provision` step creates or changes (always through ARM REST as the deployer).
    ProvisionKind {
        ResourceGroup => "resource_group",
        UserAssignedIdentity => "user_assigned_identity",
        Vm => "vm",
        Vmss => "vmss",
        VmIdentity => "vm_identity",
        VmssIdentity => "vmss_identity",
        StorageAccount => "storage_account",
        AppService => "app_service",
        KeyVault => "key_vault",
        KeyVaultSecret => "key_vault_secret",
        CosmosAccount => "cosmos_account",
        DatalakeStore => "datalake_store",
        SqlServer => "sql_server",
        SqlDatabase => "sql_database",
        SqlEntraAdmin => "sql_entra_admin",
    }
}

keyed_enum! {
    /// What a `grant` step gives the identity.
    GrantKind {
        RoleAssignment => "role_assignment",
        KeyVaultAccessPolicy => "key_vault_access_policy",
        AdlsAcl => "adls_acl",
        GraphAppRole => "graph_app_role",
        GraphGroupMember => "graph_group_member",
        SqlContainedUser => "sql_contained_user",
    }
}

keyed_enum! {
    /// Which in-host token endpoint a `fetch_token` step calls.
    TokenSource {
        Imds => "imds",
        AppService => "app_service",
        Extension => "vm_extension",
    }
}

/// A string with `${...}` references, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub raw: String,
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Literal(String),
    Ref(Reference),
}

/// `${root.path.segments}`: `root` is a step id or a builtin (`arm`, `subscription_id`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub root: String,
    pub path: Vec<String>,
    /// Span of the text inside `${...}` in the source file (when known).
    pub span: Span,
}

impl Reference {
    pub fn dotted(&self) -> String {
        std::iter::once(self.root.as_str())
            .chain(self.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl Template {
    /// A template without references.
    pub fn literal(s: impl Into<String>) -> Self {
        let s = s.into();
        Self {
            parts: vec![TemplatePart::Literal(s.clone())],
            raw: s,
        }
    }

    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Ref(r) => Some(r),
            TemplatePart::Literal(_) => None,
        })
    }
}

/// A field value as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Str(Template),
    Bool(bool),
    Int(i64),
    Float(f64),
    List(Vec<Spanned<FieldValue>>),
    Table(BTreeMap<String, Spanned<FieldValue>>),
}

impl FieldValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Str(_) => "string",
            FieldValue::Bool(_) => "boolean",
            FieldValue::Int(_) => "integer",
            FieldValue::Float(_) => "float",
            FieldValue::List(_) => "array",
            FieldValue::Table(_) => "table",
        }
    }

    /// Every template inside this value (for reference validation).
    pub fn templates(&self) -> Vec<&Template> {
        let mut out = Vec::new();
        self.collect_templates(&mut out);
        out
    }

    fn collect_templates<'a>(&'a self, out: &mut Vec<&'a Template>) {
        match self {
            FieldValue::Str(t) => out.push(t),
            FieldValue::List(items) => items.iter().for_each(|i| i.value.collect_templates(out)),
            FieldValue::Table(map) => map.values().for_each(|v| v.value.collect_templates(out)),
            FieldValue::Bool(_) | FieldValue::Int(_) | FieldValue::Float(_) => {}
        }
    }
}

/// The kind-specific fields of a step: name -> value, with the span of each key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub map: BTreeMap<String, Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key_span: Span,
    pub value: Spanned<FieldValue>,
}

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Spanned<FieldValue>> {
        self.map.get(name).map(|f| &f.value)
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
        match self.get(name).map(|v| &v.value) {
            Some(FieldValue::Str(t)) => Some(t),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name).map(|v| &v.value) {
            Some(FieldValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name).map(|v| &v.value) {
            Some(FieldValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A list of strings (templates).
    pub fn templates(&self, name: &str) -> Vec<&Template> {
        match self.get(name).map(|v| &v.value) {
            Some(FieldValue::List(items)) => items
                .iter()
                .filter_map(|i| match &i.value {
                    FieldValue::Str(t) => Some(t),
                    _ => None,
                })
                .collect(),
            Some(FieldValue::Str(t)) => vec![t],
            _ => Vec::new(),
        }
    }

    /// A table of string templates (e.g. `headers`).
    pub fn template_table(&self, name: &str) -> Vec<(&str, &Template)> {
        match self.get(name).map(|v| &v.value) {
            Some(FieldValue::Table(map)) => map
                .iter()
                .filter_map(|(k, v)| match &v.value {
                    FieldValue::Str(t) => Some((k.as_str(), t)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What a step's response must look like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub span: Span,
    /// HTTP status (default: any 2xx).
    pub status: Option<Spanned<u16>>,
    /// The service's error code: ARM `error.code`, IMDS `error`, Storage `<Code>`,
    /// Graph `odata.error.code`, WebHDFS `RemoteException.exception`, SQL error number.
    pub code: Option<Spanned<Template>>,
    /// Dotted JSON paths (`properties.provisioningState`, `value.0.name`) -> expected value.
    pub json: Vec<(Spanned<String>, Spanned<FieldValue>)>,
    /// Dotted JSON paths -> expected JSON type (`string`, `number`, `boolean`, `object`,
    /// `array`, `null`).
    pub json_types: Vec<(Spanned<String>, Spanned<String>)>,
    /// Dotted JSON paths that must be absent.
    pub absent: Vec<Spanned<String>>,
    /// Response headers (case-insensitive names) -> expected value.
    pub headers: Vec<(Spanned<String>, Spanned<Template>)>,
    /// Substring the body must contain (e.g. part of an error message).
    pub body_contains: Option<Spanned<Template>>,
}

impl Expect {
    pub fn templates(&self) -> Vec<&Template> {
        let mut out: Vec<&Template> = Vec::new();
        if let Some(c) = &self.code {
            out.push(&c.value);
        }
        for (_, v) in &self.json {
            out.extend(v.value.templates());
        }
        for (_, v) in &self.headers {
            out.push(&v.value);
        }
        if let Some(b) = &self.body_contains {
            out.push(&b.value);
        }
        out
    }
}
