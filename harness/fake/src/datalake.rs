//! Azure Data Lake Store Gen1: `Microsoft.DataLakeStore/accounts` (ARM, 2016-11-01) and the
//! WebHDFS file system of each account on its own loopback server, with POSIX ACLs.
//!
//! Access control follows the Gen1 rules: super-users (holders of the Owner role on the
//! account) bypass ACL checks; everyone else needs execute (`--x`) on every folder above the
//! target and the operation's bits on the target (list `r-x`, read `r--`, create/mkdir `-wx`
//! on the parent). The owner class uses the owner bits, named users and groups (Graph groups
//! the caller belongs to, transitively) and the owning group are limited by the mask, and
//! everyone else gets the `other` bits. Default entries of a folder become the access (and
//! for folders, default) entries of new children. Only the owner or a super-user changes ACLs.
//!
//! Wire differences from the saved spec (`datalake-store-data/2016-11-01/filesystem.json`),
//! following the service and the tutorial (004 L659-680, L2410-2412):
//! - Bodies use WebHDFS casing: `FileStatuses.FileStatus`, `FileStatus`, `AclStatus`,
//!   `RemoteException` (the swagger's camelCase `fileStatuses`/`remoteException` is wrong for
//!   real clients); file statuses carry `replication`, which the swagger lacks.
//! - `api-version` is optional (the tutorial leaves it out; the swagger marks it required).
//! - `CREATE` (and `OPEN`) without `write=true` (`read=true`) answer `307 Temporary Redirect`
//!   with a `Location` adding it, as the tutorial shows (004 L698-716, L2428-2459).
//! - Responses carry `x-ms-webhdfs-version: 17.04.22.00` (004 L666).
//! - The ARM `properties.endpoint` of a fake account is the loopback base URL with its scheme
//!   (`http://127.0.0.1:PORT`); the service returns a bare host (`<name>.azuredatalakestore.net`)
//!   used with `https://`.
//!
//! Error messages: `AccessControlException` carries the service's `0x83090aa2 (Forbidden. ACL
//! verification failed. ...)` text; the `FileNotFoundException`, `SecurityException` (401) and
//! `IllegalArgumentException` wordings are modelled on the Hadoop client's and are not verified
//! against the live service.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::arm::{ArmResult, Req, authorize, empty, ok};
use crate::error::ArmError;
use crate::server::ServerHandle;
use crate::util;
use crate::world::{Resource, World};

const FULL: &str = "Microsoft.DataLakeStore/accounts";
/// api-versions of Microsoft.DataLakeStore/accounts.
pub(crate) const VERSIONS: &[&str] = &["2015-10-01-preview", "2016-11-01"];
/// The audience Data Lake Store accepts: exactly `https://datalake.azure.net/` (004 L630).
pub const DATALAKE_AUDIENCES: &[&str] = &["https://datalake.azure.net/"];
const WEBHDFS_VERSION: &str = "17.04.22.00";
/// Block size the service reports for files (256 MiB).
const FILE_BLOCK_SIZE: u64 = 268_435_456;

// ---------------------------------------------------------------------------------------
// ACL model (pure)
// ---------------------------------------------------------------------------------------

/// Permission bits `rwx` as 4/2/1.
pub type Perm = u8;
pub const R: Perm = 4;
pub const W: Perm = 2;
pub const X: Perm = 1;

/// Who an ACL entry names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// `user::` (empty name: the owner) or `user:<oid>:`.
    User(String),
    /// `group::` (empty name: the owning group) or `group:<oid>:`.
    Group(String),
    Mask,
    Other,
}

/// One ACL entry (`[default:]user:<oid>:r-x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub default: bool,
    pub kind: EntryKind,
    pub perm: Perm,
}

/// `rwx` / `r-x` / `---` to bits.
pub fn parse_perm(s: &str) -> Option<Perm> {
    let b = s.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let bit = |c: u8, want: u8, v: Perm| match c {
        _ if c == want => Some(v),
        b'-' => Some(0),
        _ => None,
    };
    Some(bit(b[0], b'r', R)? | bit(b[1], b'w', W)? | bit(b[2], b'x', X)?)
}

pub fn perm_string(p: Perm) -> String {
    format!(
        "{}{}{}",
        if p & R != 0 { 'r' } else { '-' },
        if p & W != 0 { 'w' } else { '-' },
        if p & X != 0 { 'x' } else { '-' }
    )
}

/// Parse an `aclspec` (`user:<oid>:r-x,default:user:<oid>:rwx,mask::rwx`).
pub fn parse_aclspec(spec: &str) -> Option<Vec<AclEntry>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (default, rest) = match item.strip_prefix("default:") {
            Some(r) => (true, r),
            None => (false, item),
        };
        let mut parts = rest.split(':');
        let ty = parts.next()?;
        let name = parts.next()?.trim().to_ascii_lowercase();
        let perm = parse_perm(parts.next()?.trim())?;
        if parts.next().is_some() {
            return None;
        }
        let kind = match ty {
            "user" => EntryKind::User(name),
            "group" => EntryKind::Group(name),
            "mask" if name.is_empty() => EntryKind::Mask,
            "other" if name.is_empty() => EntryKind::Other,
            _ => return None,
        };
        out.push(AclEntry {
            default,
            kind,
            perm,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// The ACL of one file or folder: the base bits (owner, owning group, other) plus named
/// entries, an optional mask, and (folders) default entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub owner: String,
    pub group: String,
    pub owner_perm: Perm,
    pub group_perm: Perm,
    pub other_perm: Perm,
    /// Named `user:`/`group:` access entries.
    pub named: Vec<AclEntry>,
    pub mask: Option<Perm>,
    /// Default entries (all kinds), folders only.
    pub defaults: Vec<AclEntry>,
}

impl Acl {
    pub fn new(owner: &str, group: &str, mode: u16) -> Self {
        let bits = |shift: u16| Perm::try_from((mode >> shift) & 7).unwrap_or(0);
        Acl {
            owner: owner.to_ascii_lowercase(),
            group: group.to_ascii_lowercase(),
            owner_perm: bits(6),
            group_perm: bits(3),
            other_perm: bits(0),
            named: Vec::new(),
            mask: None,
            defaults: Vec::new(),
        }
    }

    /// The octal permission string (`770`); with named entries the group digit is the mask.
    pub fn permission(&self) -> String {
        let g = self.mask.unwrap_or(self.group_perm);
        format!("{}{}{}", self.owner_perm, g, self.other_perm)
    }

    pub fn has_extended(&self) -> bool {
        !self.named.is_empty() || !self.defaults.is_empty()
    }

    /// Apply entries: MODIFYACLENTRIES merges (`replace = false`), SETACL replaces.
    pub fn apply(&mut self, entries: &[AclEntry], replace: bool) {
        if replace {
            self.named.clear();
            self.defaults.clear();
            self.mask = None;
        }
        let mut explicit_mask = false;
        let mut explicit_default_mask = false;
        for e in entries {
            if e.default {
                explicit_default_mask |= e.kind == EntryKind::Mask;
                self.defaults.retain(|d| d.kind != e.kind);
                self.defaults.push(e.clone());
                continue;
            }
            match &e.kind {
                EntryKind::User(n) if n.is_empty() => self.owner_perm = e.perm,
                EntryKind::Group(n) if n.is_empty() => self.group_perm = e.perm,
                EntryKind::Other => self.other_perm = e.perm,
                EntryKind::Mask => {
                    explicit_mask = true;
                    self.mask = Some(e.perm);
                }
                EntryKind::User(_) | EntryKind::Group(_) => {
                    self.named.retain(|n| n.kind != e.kind);
                    self.named.push(e.clone());
                }
            }
        }
        // Without an explicit mask, the mask becomes the union of the group class.
        if !explicit_mask && !self.named.is_empty() {
            self.mask = Some(self.named.iter().fold(self.group_perm, |m, e| m | e.perm));
        }
        if !self.defaults.is_empty() {
            // A default ACL needs its base entries; copy them from the access ACL if absent.
            for (kind, perm) in [
                (EntryKind::User(String::new()), self.owner_perm),
                (EntryKind::Group(String::new()), self.group_perm),
                (EntryKind::Other, self.other_perm),
            ] {
                if !self.defaults.iter().any(|d| d.kind == kind) {
                    self.defaults.push(AclEntry {
                        default: true,
                        kind,
                        perm,
                    });
                }
            }
            if !explicit_default_mask {
                let union = self
                    .defaults
                    .iter()
                    .filter(|d| {
                        matches!(&d.kind, EntryKind::User(n) if !n.is_empty())
                            || matches!(d.kind, EntryKind::Group(_))
                    })
                    .fold(0, |m, d| m | d.perm);
                self.defaults.retain(|d| d.kind != EntryKind::Mask);
                self.defaults.push(AclEntry {
                    default: true,
                    kind: EntryKind::Mask,
                    perm: union,
                });
            }
            self.defaults.sort_by(|a, b| a.kind.cmp(&b.kind));
        }
    }

    /// The ACL of a new child created by `owner` under a folder with this ACL.
    #[must_use]
    pub fn child(&self, owner: &str, is_dir: bool) -> Acl {
        let mode = if is_dir { 0o770 } else { 0o660 };
        let mut acl = Acl::new(owner, &self.group, mode);
        if self.defaults.is_empty() {
            return acl;
        }
        let get = |k: &EntryKind| self.defaults.iter().find(|d| &d.kind == k).map(|d| d.perm);
        let cap = if is_dir { 7 } else { 6 };
        acl.owner_perm = get(&EntryKind::User(String::new())).unwrap_or(acl.owner_perm) & cap;
        acl.group_perm = get(&EntryKind::Group(String::new())).unwrap_or(acl.group_perm) & cap;
        acl.other_perm = get(&EntryKind::Other).unwrap_or(acl.other_perm) & cap;
        acl.named = self
            .defaults
            .iter()
            .filter(
                |d| matches!(&d.kind, EntryKind::User(n) | EntryKind::Group(n) if !n.is_empty()),
            )
            .map(|d| AclEntry {
                default: false,
                kind: d.kind.clone(),
                perm: d.perm,
            })
            .collect();
        acl.mask = get(&EntryKind::Mask).map(|m| m & cap);
        if is_dir {
            acl.defaults.clone_from(&self.defaults);
        }
        acl
    }

    /// POSIX evaluation: may `principal` (member of `groups`) have all of `want`?
    pub fn allows(&self, principal: &str, groups: &BTreeSet<String>, want: Perm) -> bool {
        let p = principal.to_ascii_lowercase();
        if p == self.owner {
            return self.owner_perm & want == want;
        }
        let mask = self.mask.unwrap_or(7);
        if let Some(e) = self
            .named
            .iter()
            .find(|e| matches!(&e.kind, EntryKind::User(n) if *n == p))
        {
            return e.perm & mask & want == want;
        }
        let mut in_group_class = false;
        let mut granted = false;
        if groups.contains(&self.group) || p == self.group {
            in_group_class = true;
            granted |= self.group_perm & mask & want == want;
        }
        for e in &self.named {
            if let EntryKind::Group(g) = &e.kind
                && groups.contains(g)
            {
                in_group_class = true;
                granted |= e.perm & mask & want == want;
            }
        }
        if in_group_class {
            return granted;
        }
        self.other_perm & want == want
    }

    /// `AclStatus.entries`: access entries then default entries.
    pub fn entries(&self) -> Vec<String> {
        let mut out = vec![format!("user::{}", perm_string(self.owner_perm))];
        let named = |out: &mut Vec<String>, list: &[AclEntry], prefix: &str| {
            for e in list {
                match &e.kind {
                    EntryKind::User(n) if !n.is_empty() => {
                        out.push(format!("{prefix}user:{n}:{}", perm_string(e.perm)));
                    }
                    EntryKind::Group(n) if !n.is_empty() => {
                        out.push(format!("{prefix}group:{n}:{}", perm_string(e.perm)));
                    }
                    _ => {}
                }
            }
        };
        named(&mut out, &self.named, "");
        out.push(format!("group::{}", perm_string(self.group_perm)));
        if let Some(m) = self.mask {
            out.push(format!("mask::{}", perm_string(m)));
        }
        out.push(format!("other::{}", perm_string(self.other_perm)));
        for d in &self.defaults {
            match &d.kind {
                EntryKind::User(n) if n.is_empty() => {
                    out.push(format!("default:user::{}", perm_string(d.perm)));
                }
                EntryKind::Group(n) if n.is_empty() => {
                    out.push(format!("default:group::{}", perm_string(d.perm)));
                }
                EntryKind::Mask => out.push(format!("default:mask::{}", perm_string(d.perm))),
                EntryKind::Other => out.push(format!("default:other::{}", perm_string(d.perm))),
                EntryKind::User(_) | EntryKind::Group(_) => {
                    named(&mut out, std::slice::from_ref(d), "default:");
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub is_dir: bool,
    pub acl: Acl,
    pub data: Vec<u8>,
    pub modified: SystemTime,
    pub accessed: SystemTime,
}

pub(crate) struct Account {
    pub id: String,
    pub url: String,
    pub server: ServerHandle,
    /// Normalized path (`/`, `/TestFolder`) -> node.
    pub fs: BTreeMap<String, Node>,
}

/// Data Lake Store state of a world.
#[derive(Default)]
pub(crate) struct AdlsState {
    /// Keyed by lower-case ARM id.
    pub accounts: BTreeMap<String, Account>,
    /// `(datalake:<name>, base url)` of every account ever created in this world: transcripts
    /// are rendered after teardown, when the accounts are gone.
    pub names: Vec<(String, String)>,
}

/// Stop and forget the account `id` (ARM delete, resource-group delete).
pub(crate) fn on_purge(st: &mut crate::world::State, id: &str) {
    let lower = id.to_ascii_lowercase();
    let prefix = format!("{lower}/");
    st.datalake.accounts.retain(|k, a| {
        if *k == lower || k.starts_with(&prefix) {
            a.server.stop();
            false
        } else {
            true
        }
    });
}

/// Every account's servers, for shutdown.
pub(crate) fn drain_servers(st: &mut crate::world::State) -> Vec<ServerHandle> {
    std::mem::take(&mut st.datalake.accounts)
        .into_values()
        .map(|a| a.server)
        .collect()
}

/// `(datalake:<name>, base url)` of every account.
pub(crate) fn service_urls(st: &crate::world::State) -> Vec<(String, String)> {
    st.datalake.names.clone()
}

// ---------------------------------------------------------------------------------------
// ARM: Microsoft.DataLakeStore/accounts
// ---------------------------------------------------------------------------------------

fn render(r: &Resource, url: &str) -> Value {
    let mut m = crate::arm::resource_head(r);
    let mut p = r.properties.as_object().cloned().unwrap_or_default();
    for k in ["provisioningState", "state", "endpoint", "accountId"] {
        p.remove(k);
    }
    let mut props = Map::new();
    props.insert("provisioningState".into(), json!("Succeeded"));
    props.insert("state".into(), json!("Active"));
    props.insert("creationTime".into(), json!(util::iso(r.created)));
    props.insert("lastModifiedTime".into(), json!(util::iso(r.created)));
    props.insert("endpoint".into(), json!(url));
    props.insert("accountId".into(), json!(r.unique_id));
    props.insert("encryptionState".into(), json!("Enabled"));
    props.insert("encryptionConfig".into(), json!({"type": "ServiceManaged"}));
    props.insert("firewallState".into(), json!("Disabled"));
    props.insert("firewallAllowAzureIps".into(), json!("Disabled"));
    props.insert("firewallRules".into(), json!([]));
    props.insert("virtualNetworkRules".into(), json!([]));
    props.insert("trustedIdProviderState".into(), json!("Disabled"));
    props.insert("trustedIdProviders".into(), json!([]));
    props.insert("newTier".into(), json!("Consumption"));
    props.insert("currentTier".into(), json!("Consumption"));
    for (k, v) in p {
        props.entry(k).or_insert(v);
    }
    m.insert("properties".into(), Value::Object(props));
    Value::Object(m)
}

// ArmError is the shared ARM envelope (see arm/mod.rs).
#[allow(clippy::too_many_lines, clippy::result_large_err)]
pub(crate) fn account(world: &Arc<World>, req: &Req) -> ArmResult {
    let crate::arm::Target {
        rg,
        rg_loc,
        name,
        id,
        key,
    } = crate::arm::target(world, req, FULL, "accounts", VERSIONS)?;
    let scope = req.path.clone();
    match req.method {
        Method::GET => {
            authorize(world, req, &format!("{FULL}/read"), &scope)?;
            if rg_loc.is_none() {
                return Err(crate::arm::rg_not_found(&rg));
            }
            let st = world.lock();
            let (Some(r), Some(a)) = (st.resources.get(&key), st.datalake.accounts.get(&key))
            else {
                return Err(crate::arm::resource_not_found("accounts", &name, &rg));
            };
            let v = render(r, &a.url);
            drop(st);
            ok(StatusCode::OK, &v)
        }
        Method::PUT => {
            authorize(world, req, &format!("{FULL}/write"), &scope)?;
            let body = req.json()?;
            let location = crate::arm::norm_location(&crate::arm::required_location(&body)?);
            let tags = crate::arm::tags_of(&body)?;
            if rg_loc.is_none() {
                return Err(crate::arm::rg_not_found(&rg));
            }
            if name.len() < 3
                || name.len() > 24
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                return Err(ArmError::bad_request(
                    "InvalidAccountName",
                    format!(
                        "The account name '{name}' is not valid. Account names must be 3 to 24 characters long and contain only lower-case letters and digits."
                    ),
                ));
            }
            let existing = world.lock().resources.get(&key).cloned();
            let r = Resource {
                id: existing
                    .as_ref()
                    .map_or_else(|| id.clone(), |e| e.id.clone()),
                resource_group: rg.clone(),
                rtype: FULL.to_owned(),
                name: name.clone(),
                location,
                tags,
                properties: body
                    .get("properties")
                    .filter(|p| p.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({})),
                extra: Map::new(),
                identity: None,
                uami: None,
                unique_id: existing
                    .as_ref()
                    .map_or_else(util::guid, |e| e.unique_id.clone()),
                created: existing.as_ref().map_or_else(|| world.now(), |e| e.created),
                busy_until: None,
            };
            let created = existing.is_none();
            if created {
                let w = world.clone();
                let account_key = key.clone();
                let server =
                    crate::server::spawn(world.config.latency, move |_| router(w, account_key))
                        .map_err(|e| {
                            ArmError::new(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "InternalServerError",
                                e.to_string(),
                            )
                        })?;
                let now = world.now();
                let mut fs = BTreeMap::new();
                // The creator owns the root: `rwxrwx---` (004 L672 shows 770 folders).
                fs.insert(
                    "/".to_owned(),
                    Node {
                        is_dir: true,
                        acl: Acl::new(&req.caller.oid, &req.caller.oid, 0o770),
                        data: Vec::new(),
                        modified: now,
                        accessed: now,
                    },
                );
                let url = server.url();
                let mut st = world.lock();
                st.datalake
                    .names
                    .push((format!("datalake:{name}"), url.clone()));
                st.datalake.accounts.insert(
                    key.clone(),
                    Account {
                        id: r.id.clone(),
                        url,
                        server,
                        fs,
                    },
                );
                st.resources.insert(key.clone(), r.clone());
            } else {
                world.lock().resources.insert(key.clone(), r.clone());
            }
            let st = world.lock();
            let url = st
                .datalake
                .accounts
                .get(&key)
                .map(|a| a.url.clone())
                .unwrap_or_default();
            drop(st);
            // The service runs creation as a long-running operation; the fake completes at once.
            ok(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &render(&r, &url),
            )
        }
        Method::DELETE => {
            authorize(world, req, &format!("{FULL}/delete"), &scope)?;
            let mut st = world.lock();
            if !st.resources.contains_key(&key) {
                return empty(StatusCode::NO_CONTENT);
            }
            crate::arm::resources::purge(&mut st, &id);
            drop(st);
            empty(StatusCode::OK)
        }
        _ => Err(crate::arm::method_not_allowed(req)),
    }
}

// ---------------------------------------------------------------------------------------
// WebHDFS
// ---------------------------------------------------------------------------------------

fn router(world: Arc<World>, account_key: String) -> Router {
    Router::new()
        .fallback(handle)
        .with_state((world, Arc::new(account_key)))
}

fn request_id() -> String {
    util::guid()
}

fn headers(mut r: Response, req_id: &str) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        ("x-ms-request-id", req_id),
        ("x-ms-webhdfs-version", WEBHDFS_VERSION),
        ("Status", "0x0"),
        ("X-Content-Type-Options", "nosniff"),
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    r
}

fn json_reply(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, serde_json::to_string(v).unwrap_or_default()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// `{"RemoteException":{"exception","message","javaClassName"}}`.
pub(crate) fn remote_exception(status: StatusCode, exception: &str, message: &str) -> Response {
    let java = match exception {
        "AccessControlException" => "org.apache.hadoop.security.AccessControlException",
        "FileNotFoundException" => "java.io.FileNotFoundException",
        "FileAlreadyExistsException" => "org.apache.hadoop.fs.FileAlreadyExistsException",
        "SecurityException" => "java.lang.SecurityException",
        "UnsupportedOperationException" => "java.lang.UnsupportedOperationException",
        _ => "java.lang.IllegalArgumentException",
    };
    json_reply(
        status,
        &json!({"RemoteException": {"exception": exception, "message": message, "javaClassName": java}}),
    )
}

fn ts(world: &World) -> String {
    util::entra_timestamp(world.now())
        .replace(' ', "T")
        .trim_end_matches('Z')
        .to_owned()
}

fn acl_denied(world: &World, op: &str, rid: &str) -> Response {
    remote_exception(
        StatusCode::FORBIDDEN,
        "AccessControlException",
        &format!(
            "{op} failed with error 0x83090aa2 (Forbidden. ACL verification failed. Either the resource does not exist or the user is not authorized to perform the requested operation.). [{rid}][{}]",
            ts(world)
        ),
    )
}

fn not_found(path: &str, rid: &str) -> Response {
    remote_exception(
        StatusCode::NOT_FOUND,
        "FileNotFoundException",
        &format!("File/Folder does not exist: {path} [{rid}]"),
    )
}

fn illegal(message: &str) -> Response {
    remote_exception(StatusCode::BAD_REQUEST, "IllegalArgumentException", message)
}

/// Normalize a WebHDFS path (`/webhdfs/v1/` stripped): `/`, `/a/b`. `None` on `..`.
pub fn normalize(path: &str) -> Option<String> {
    let mut out = Vec::new();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if seg == ".." {
            return None;
        }
        out.push(seg);
    }
    Some(format!("/{}", out.join("/")))
}

fn parent(path: &str) -> Option<String> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 {
        "/".to_owned()
    } else {
        path[..i].to_owned()
    })
}

/// Every ancestor folder of `path` (root first), excluding `path`.
fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = parent(path);
    while let Some(p) = cur {
        cur = parent(&p);
        out.push(p);
    }
    out.reverse();
    out
}

fn file_status(n: &Node, suffix: &str) -> Value {
    let ms = |t: SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    let mut v = json!({
        "length": if n.is_dir { 0 } else { n.data.len() },
        "pathSuffix": suffix,
        "type": if n.is_dir { "DIRECTORY" } else { "FILE" },
        "blockSize": if n.is_dir { 0 } else { FILE_BLOCK_SIZE },
        "accessTime": ms(n.accessed),
        "modificationTime": ms(n.modified),
        "replication": u8::from(!n.is_dir),
        "permission": n.acl.permission(),
        "owner": n.acl.owner,
        "group": n.acl.group,
    });
    if n.acl.has_extended() {
        v["aclBit"] = json!(true);
    }
    v
}

struct Ctx<'a> {
    world: &'a World,
    key: &'a str,
    caller: String,
    groups: BTreeSet<String>,
    superuser: bool,
    rid: String,
}

impl Ctx<'_> {
    /// Check traversal (`--x` on every ancestor) and `want` on `target` (if it exists).
    fn check(&self, fs: &BTreeMap<String, Node>, path: &str, target: Option<(&str, Perm)>) -> bool {
        if self.superuser {
            return true;
        }
        for a in ancestors(path) {
            if let Some(n) = fs.get(&a)
                && !n.acl.allows(&self.caller, &self.groups, X)
            {
                return false;
            }
        }
        match target {
            Some((p, want)) => fs
                .get(p)
                .is_none_or(|n| n.acl.allows(&self.caller, &self.groups, want)),
            None => true,
        }
    }
}

/// Graph groups `oid` belongs to (transitively), lower-case.
fn groups_of(st: &crate::world::State, oid: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut frontier = vec![oid.to_ascii_lowercase()];
    while let Some(cur) = frontier.pop() {
        for (g, members) in &st.graph.members {
            if members.contains(&cur) && found.insert(g.clone()) {
                frontier.push(g.clone());
            }
        }
    }
    found
}

/// Super-users: holders of the Owner role at the account's scope or above.
fn is_superuser(
    st: &crate::world::State,
    now: SystemTime,
    delay: std::time::Duration,
    oid: &str,
    account_id: &str,
) -> bool {
    st.role_assignments.values().any(|ra| {
        ra.principal_id.eq_ignore_ascii_case(oid)
            && ra.created_at + delay <= now
            && crate::rbac::scope_covers(&ra.scope, account_id)
            && crate::rbac::role_by_id(&ra.role_definition_id)
                .is_some_and(|r| r.role_name == "Owner")
    })
}

#[allow(clippy::too_many_lines)]
async fn handle(
    State((world, key)): State<(Arc<World>, Arc<String>)>,
    req: axum::extract::Request,
) -> Response {
    let rid = request_id();
    let resp = process(&world, &key, &rid, req).await;
    headers(resp, &rid)
}

#[allow(clippy::too_many_lines)]
async fn process(world: &World, key: &str, rid: &str, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 32 * 1024 * 1024).await else {
        return illegal("The request body is too large.");
    };
    let raw_path = util::decode(parts.uri.path(), false);
    let Some(rest) = raw_path.strip_prefix("/webhdfs/v1") else {
        return illegal(&format!("Invalid path: {raw_path}"));
    };
    let Some(path) = normalize(rest) else {
        return illegal(&format!("Invalid path: {rest}"));
    };
    let query = util::parse_pairs(parts.uri.query().unwrap_or_default());
    let q = |k: &str| util::param(&query, k).map(str::to_owned);
    // Authentication.
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let claims = match world.verify(&auth, DATALAKE_AUDIENCES) {
        Ok(c) => c,
        Err(e) => {
            return remote_exception(
                StatusCode::UNAUTHORIZED,
                "SecurityException",
                &format!("Failed to validate the access token: {e}. [{rid}]"),
            );
        }
    };
    let Some(op) = q("op").map(|o| o.to_ascii_uppercase()) else {
        return illegal("Invalid value for webhdfs parameter \"op\": null");
    };
    let method = parts.method;
    let expected = match op.as_str() {
        "LISTSTATUS" | "GETFILESTATUS" | "GETACLSTATUS" | "OPEN" => Method::GET,
        "MKDIRS" | "CREATE" | "SETACL" | "MODIFYACLENTRIES" => Method::PUT,
        _ => {
            return illegal(&format!(
                "Invalid value for webhdfs parameter \"op\": No enum constant {op}"
            ));
        }
    };
    if method != expected {
        return remote_exception(
            StatusCode::BAD_REQUEST,
            "UnsupportedOperationException",
            &format!("{op} is not supported with the {method} method."),
        );
    }
    let mut st = world.lock();
    let now = world.now();
    let Some(account_id) = st.datalake.accounts.get(key).map(|a| a.id.clone()) else {
        return not_found(&path, rid);
    };
    let ctx = Ctx {
        world,
        key,
        caller: claims.oid.to_ascii_lowercase(),
        groups: groups_of(&st, &claims.oid),
        superuser: is_superuser(
            &st,
            now,
            world.config.propagation_delay,
            &claims.oid,
            &account_id,
        ),
        rid: rid.to_owned(),
    };
    let _ = ctx.key;
    let Some(account) = st.datalake.accounts.get_mut(key) else {
        return not_found(&path, rid);
    };
    let fs = &mut account.fs;
    match op.as_str() {
        "LISTSTATUS" => {
            if !ctx.check(fs, &path, Some((&path, R | X))) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            let Some(node) = fs.get(&path) else {
                return not_found(&path, &ctx.rid);
            };
            let list: Vec<Value> = if node.is_dir {
                let prefix = if path == "/" {
                    "/".to_owned()
                } else {
                    format!("{path}/")
                };
                fs.iter()
                    .filter(|(p, _)| {
                        p.starts_with(&prefix)
                            && p.len() > prefix.len()
                            && !p[prefix.len()..].contains('/')
                    })
                    .map(|(p, n)| file_status(n, &p[prefix.len()..]))
                    .collect()
            } else {
                vec![file_status(node, "")]
            };
            json_reply(
                StatusCode::OK,
                &json!({"FileStatuses": {"FileStatus": list}}),
            )
        }
        "GETFILESTATUS" => {
            if !ctx.check(fs, &path, None) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            match fs.get(&path) {
                Some(n) => json_reply(StatusCode::OK, &json!({"FileStatus": file_status(n, "")})),
                None => not_found(&path, &ctx.rid),
            }
        }
        "GETACLSTATUS" => {
            if !ctx.check(fs, &path, None) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            match fs.get(&path) {
                Some(n) => json_reply(
                    StatusCode::OK,
                    &json!({"AclStatus": {
                        "entries": n.acl.entries(),
                        "group": n.acl.group,
                        "owner": n.acl.owner,
                        "permission": n.acl.permission(),
                        "stickyBit": false,
                    }}),
                ),
                None => not_found(&path, &ctx.rid),
            }
        }
        "MKDIRS" => {
            if path == "/" || fs.get(&path).is_some_and(|n| n.is_dir) {
                return json_reply(StatusCode::OK, &json!({"boolean": true}));
            }
            // Create missing folders from the deepest existing ancestor down.
            let mut chain = ancestors(&path);
            chain.push(path.clone());
            let Some(first_missing) = chain.iter().position(|p| !fs.contains_key(p)) else {
                return json_reply(StatusCode::OK, &json!({"boolean": true}));
            };
            let existing_parent = chain[first_missing - 1].clone();
            if fs.get(&existing_parent).is_some_and(|n| !n.is_dir) {
                return remote_exception(
                    StatusCode::FORBIDDEN,
                    "FileAlreadyExistsException",
                    &format!(
                        "Parent path is not a folder: {existing_parent} [{}]",
                        ctx.rid
                    ),
                );
            }
            if !ctx.check(fs, &existing_parent, Some((&existing_parent, W | X))) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            for p in &chain[first_missing..] {
                let parent_acl = parent(p).and_then(|pp| fs.get(&pp)).map(|n| n.acl.clone());
                let Some(parent_acl) = parent_acl else { break };
                fs.insert(
                    p.clone(),
                    Node {
                        is_dir: true,
                        acl: parent_acl.child(&ctx.caller, true),
                        data: Vec::new(),
                        modified: now,
                        accessed: now,
                    },
                );
            }
            json_reply(StatusCode::OK, &json!({"boolean": true}))
        }
        "CREATE" => {
            let Some(par) = parent(&path) else {
                return illegal("Cannot create a file at the root path.");
            };
            let Some(parent_node) = fs.get(&par) else {
                return not_found(&par, &ctx.rid);
            };
            if !parent_node.is_dir {
                return not_found(&par, &ctx.rid);
            }
            if !ctx.check(fs, &par, Some((&par, W | X))) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            let write = q("write").is_some_and(|w| w.eq_ignore_ascii_case("true"));
            if !write {
                // First leg: redirect to the same URL with write=true (no data is taken).
                let base = account.url.clone();
                let sep = if parts.uri.query().is_some() {
                    "&"
                } else {
                    "?"
                };
                let location = format!(
                    "{base}{}{}{sep}write=true",
                    parts.uri.path(),
                    parts
                        .uri
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default()
                );
                let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert("location", v);
                }
                r.headers_mut()
                    .insert("ContentLength", HeaderValue::from_static("0"));
                return r;
            }
            let overwrite = q("overwrite").is_some_and(|w| w.eq_ignore_ascii_case("true"));
            if let Some(existing) = fs.get(&path) {
                if existing.is_dir || !overwrite {
                    return remote_exception(
                        StatusCode::FORBIDDEN,
                        "FileAlreadyExistsException",
                        &format!(
                            "{op} failed with error 0x83090455 (File already exists.). [{}]",
                            ctx.rid
                        ),
                    );
                }
                if !ctx.check(fs, &path, Some((&path, W))) {
                    return acl_denied(ctx.world, &op, &ctx.rid);
                }
            }
            let acl = fs.get(&path).map_or_else(
                || parent_node_acl(fs, &par).child(&ctx.caller, false),
                |n| n.acl.clone(),
            );
            fs.insert(
                path.clone(),
                Node {
                    is_dir: false,
                    acl,
                    data: body.to_vec(),
                    modified: now,
                    accessed: now,
                },
            );
            let mut r = StatusCode::CREATED.into_response();
            r.headers_mut()
                .insert("ContentLength", HeaderValue::from_static("0"));
            r
        }
        "OPEN" => {
            if !ctx.check(fs, &path, Some((&path, R))) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            let Some(node) = fs.get_mut(&path) else {
                return not_found(&path, &ctx.rid);
            };
            if node.is_dir {
                return remote_exception(
                    StatusCode::BAD_REQUEST,
                    "IllegalArgumentException",
                    &format!("{path} is a folder, not a file. [{}]", ctx.rid),
                );
            }
            let read = q("read").is_some_and(|w| w.eq_ignore_ascii_case("true"));
            if !read {
                let base = account.url.clone();
                let location = format!(
                    "{base}{}?{}&read=true",
                    parts.uri.path(),
                    parts.uri.query().unwrap_or_default()
                );
                let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert("location", v);
                }
                return r;
            }
            node.accessed = now;
            let offset = q("offset")
                .and_then(|o| o.parse::<usize>().ok())
                .unwrap_or(0);
            let data = node
                .data
                .get(offset.min(node.data.len())..)
                .unwrap_or_default()
                .to_vec();
            let mut r = (StatusCode::OK, data).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        "SETACL" | "MODIFYACLENTRIES" => {
            let Some(entries) = q("aclspec").as_deref().and_then(parse_aclspec) else {
                return illegal(&format!(
                    "Invalid value for webhdfs parameter \"aclspec\": {}",
                    q("aclspec").unwrap_or_default()
                ));
            };
            if !ctx.check(fs, &path, None) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            let Some(node) = fs.get_mut(&path) else {
                return not_found(&path, &ctx.rid);
            };
            // Only the owner or a super-user changes an ACL.
            if !(ctx.superuser || node.acl.owner == ctx.caller) {
                return acl_denied(ctx.world, &op, &ctx.rid);
            }
            if !node.is_dir && entries.iter().any(|e| e.default) {
                return illegal("Default ACL entries can only be set on folders.");
            }
            node.acl.apply(&entries, op == "SETACL");
            StatusCode::OK.into_response()
        }
        _ => illegal("unsupported"),
    }
}

fn parent_node_acl(fs: &BTreeMap<String, Node>, parent: &str) -> Acl {
    fs.get(parent)
        .map_or_else(|| Acl::new("", "", 0o770), |n| n.acl.clone())
}

impl World {
    /// The WebHDFS base URL of a Data Lake Store account (by ARM id).
    pub(crate) fn datalake_url(&self, account_id: &str) -> Option<String> {
        self.lock()
            .datalake
            .accounts
            .get(&account_id.to_ascii_lowercase())
            .map(|a| a.url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const OWNER: &str = "owner";
    const VM: &str = "vm";

    fn folder_with(spec: &str) -> Acl {
        let mut a = Acl::new(OWNER, OWNER, 0o770);
        if !spec.is_empty() {
            a.apply(&parse_aclspec(spec).unwrap(), false);
        }
        a
    }

    #[rstest]
    #[case::owner_rwx("", OWNER, R | W | X, true)]
    #[case::other_nothing("", VM, X, false)]
    #[case::named_rx("user:vm:r-x", VM, R | X, true)]
    #[case::named_rx_no_w("user:vm:r-x", VM, W, false)]
    #[case::named_rwx("user:vm:rwx", VM, R | W | X, true)]
    #[case::mask_limits("user:vm:rwx,mask::r--", VM, X, false)]
    #[case::mask_allows("user:vm:rwx,mask::r-x", VM, R | X, true)]
    #[case::default_only("default:user:vm:rwx", VM, X, false)]
    #[case::other_bits("other::--x", VM, X, true)]
    #[case::group_member("group:grp:r-x", VM, R, true)]
    fn evaluation(#[case] spec: &str, #[case] who: &str, #[case] want: Perm, #[case] ok: bool) {
        let a = folder_with(spec);
        let groups: BTreeSet<String> = if who == VM {
            ["grp".to_owned()].into()
        } else {
            BTreeSet::new()
        };
        assert_eq!(a.allows(who, &groups, want), ok, "{spec} {who} {want}");
    }

    #[rstest]
    #[case("rwx", Some(7))]
    #[case("r-x", Some(5))]
    #[case("---", Some(0))]
    #[case("xwr", None)]
    #[case("rw", None)]
    #[case("", None)]
    fn perms(#[case] s: &str, #[case] want: Option<Perm>) {
        assert_eq!(parse_perm(s), want);
        if let Some(p) = want {
            assert_eq!(perm_string(p), s);
        }
    }

    #[rstest]
    #[case::named("user:abc:r-x", true)]
    #[case::default("default:user:abc:rwx", true)]
    #[case::mask("mask::rwx", true)]
    #[case::bad_type("role:abc:rwx", false)]
    #[case::bad_perm("user:abc:rwz", false)]
    #[case::named_mask("mask:abc:rwx", false)]
    #[case::extra("user:abc:rwx:x", false)]
    #[case::empty("", false)]
    fn aclspecs(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(parse_aclspec(s).is_some(), ok);
    }

    #[test]
    fn defaults_are_inherited_by_new_children() {
        let parent = folder_with("user:vm:rwx,default:user:vm:rwx");
        let dir = parent.child(OWNER, true);
        assert!(dir.allows(VM, &BTreeSet::new(), R | W | X));
        assert!(!dir.defaults.is_empty());
        let file = parent.child(VM, false);
        assert_eq!(file.owner, VM);
        assert!(file.allows(VM, &BTreeSet::new(), R | W));
        // Without defaults, a new child is 770 for the creator only.
        let plain = folder_with("user:vm:rwx").child(OWNER, true);
        assert!(!plain.allows(VM, &BTreeSet::new(), X));
        assert_eq!(plain.permission(), "770");
    }

    #[test]
    fn permission_shows_the_mask() {
        let a = folder_with("user:vm:r-x");
        assert_eq!(a.permission(), "770");
        let b = folder_with("user:vm:r-x,mask::r-x");
        assert_eq!(b.permission(), "750");
        assert!(b.entries().contains(&"user:vm:r-x".to_owned()));
    }

    #[rstest]
    #[case("/", Some("/"))]
    #[case("", Some("/"))]
    #[case("/a/b/", Some("/a/b"))]
    #[case("//a//./b", Some("/a/b"))]
    #[case("/a/../b", None)]
    fn paths(#[case] p: &str, #[case] want: Option<&str>) {
        assert_eq!(normalize(p).as_deref(), want);
    }

    #[test]
    fn ancestors_root_first() {
        assert_eq!(ancestors("/a/b/c"), vec!["/", "/a", "/a/b"]);
        assert!(ancestors("/").is_empty());
    }
}
