//! The logical server's state: databases, contained users, role membership,
//! tables and rows, plus a record of login attempts.
//!
//! It lives behind one mutex shared by all connections (critical sections are
//! short and never span an await) and is exposed read-only through
//! [`TdsState`] so scenario steps and tests can assert on what the tutorial's
//! T-SQL did, or seed state without a TDS round trip.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::auth::TokenPrincipal;
use crate::config::TdsConfig;
use crate::error::SqlError;

/// Most rows the fake keeps in one table.
pub(crate) const MAX_ROWS_PER_TABLE: usize = 100_000;
/// Most tables the fake keeps in one database.
pub(crate) const MAX_TABLES_PER_DATABASE: usize = 1_000;
/// Most login events kept (oldest dropped first).
const MAX_LOGIN_EVENTS: usize = 1_000;

/// The database every logical server has.
pub const MASTER: &str = "master";

/// Fixed database roles of Azure SQL Database.
pub const FIXED_ROLES: &[&str] = &[
    "db_owner",
    "db_accessadmin",
    "db_securityadmin",
    "db_ddladmin",
    "db_backupoperator",
    "db_datareader",
    "db_datawriter",
    "db_denydatareader",
    "db_denydatawriter",
];

/// A column data type the fake supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `int`.
    Int,
    /// `bigint`.
    BigInt,
    /// `bit`.
    Bit,
    /// `nvarchar(n)`, n in characters (1..=4000).
    NVarChar(u16),
    /// `varchar(n)`, n in bytes (1..=8000), Windows-1252.
    VarChar(u16),
}

impl ColumnType {
    /// The T-SQL spelling, as used in error messages.
    pub fn sql_name(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::BigInt => "bigint",
            ColumnType::Bit => "bit",
            ColumnType::NVarChar(_) => "nvarchar",
            ColumnType::VarChar(_) => "varchar",
        }
    }
}

/// A stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// Any integer column (`bit` stores 0 or 1).
    Int(i64),
    /// Any string column.
    Str(String),
}

/// A contained database user created `FROM EXTERNAL PROVIDER`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUser {
    /// The name given in `CREATE USER [name]`.
    pub name: String,
    /// Entra object id of the principal.
    pub object_id: String,
    /// Application id, for service principals and managed identities.
    pub app_id: String,
    /// Tenant of the principal.
    pub tenant_id: String,
    /// Fixed roles the user is a member of (lower case).
    pub roles: BTreeSet<String>,
}

impl DbUser {
    /// Whether a token principal is this user: object id, or application id
    /// for service principals (what Azure SQL records as their SID).
    pub(crate) fn matches(&self, p: &TokenPrincipal) -> bool {
        self.object_id.eq_ignore_ascii_case(&p.object_id)
            || (!self.app_id.is_empty() && self.app_id.eq_ignore_ascii_case(&p.app_id))
    }

    pub(crate) fn in_role(&self, role: &str) -> bool {
        self.roles.contains(&role.to_ascii_lowercase())
    }
}

/// A table column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Data type.
    pub ty: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether this column is the primary key.
    pub primary_key: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Database {
    pub name: String,
    pub users: Vec<DbUser>,
    pub tables: Vec<Table>,
}

impl Database {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            users: Vec::new(),
            tables: Vec::new(),
        }
    }

    pub fn user_named(&self, name: &str) -> Option<&DbUser> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    pub fn user_for(&self, p: &TokenPrincipal) -> Option<&DbUser> {
        self.users.iter().find(|u| u.matches(p))
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    pub fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables
            .iter_mut()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

/// How a login attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// LOGINACK was sent.
    Accepted,
    /// An error was sent and the connection closed; `reason` is the server's
    /// own explanation (never the token), `error` the number the client saw.
    Rejected {
        /// Error number sent to the client (18456, 4060, 4002).
        error: u32,
        /// Why, for diagnostics.
        reason: String,
    },
}

/// One login attempt, for diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginEvent {
    /// Database named in LOGIN7 (or `master`).
    pub database: String,
    /// The verified principal, if the token verified.
    pub principal: Option<TokenPrincipal>,
    /// What happened.
    pub outcome: LoginOutcome,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: TdsConfig,
    pub databases: Vec<Database>,
    pub events: Vec<LoginEvent>,
}

impl Shared {
    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    pub fn database_mut(&mut self, name: &str) -> Option<&mut Database> {
        self.databases
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    pub fn is_admin(&self, p: &TokenPrincipal) -> bool {
        !self.config.admin_object_id.is_empty()
            && self
                .config
                .admin_object_id
                .eq_ignore_ascii_case(&p.object_id)
    }

    pub fn record(&mut self, event: LoginEvent) {
        if self.events.len() >= MAX_LOGIN_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }
}

/// A handle on the server's state, for inspection and seeding.
#[derive(Clone, Debug)]
pub struct TdsState {
    pub(crate) inner: Arc<Mutex<Shared>>,
}

impl TdsState {
    pub(crate) fn new(config: TdsConfig) -> Self {
        let mut databases = vec![Database::new(MASTER)];
        for name in &config.databases {
            if !databases.iter().any(|d| d.name.eq_ignore_ascii_case(name)) {
                databases.push(Database::new(name));
            }
        }
        Self {
            inner: Arc::new(Mutex::new(Shared {
                config,
                databases,
                events: Vec::new(),
            })),
        }
    }

    /// Locks the state; a poisoned lock is still usable (every mutation
    /// validates before it writes, so state is consistent between
    /// statements).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Database names, `master` first.
    pub fn databases(&self) -> Vec<String> {
        self.lock()
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect()
    }

    /// Contained users of a database, or `None` if it does not exist.
    pub fn users(&self, database: &str) -> Option<Vec<DbUser>> {
        self.lock().database(database).map(|d| d.users.clone())
    }

    /// Columns and rows of `dbo.table`, or `None` if either does not exist.
    pub fn table(&self, database: &str, table: &str) -> Option<(Vec<Column>, Vec<Vec<Value>>)> {
        let shared = self.lock();
        let t = shared.database(database)?.table(table)?;
        Some((t.columns.clone(), t.rows.clone()))
    }

    /// Login attempts so far, oldest first (bounded).
    pub fn login_events(&self) -> Vec<LoginEvent> {
        self.lock().events.clone()
    }

    /// Makes `object_id` the server's Entra admin (empty: no admin), as
    /// `PUT .../administrators/ActiveDirectory` does. Takes effect for the
    /// next login.
    pub fn set_admin(&self, object_id: &str) {
        object_id.clone_into(&mut self.lock().config.admin_object_id);
    }

    /// Object id of the server's Entra admin (empty when none is set).
    pub fn admin_object_id(&self) -> String {
        self.lock().config.admin_object_id.clone()
    }

    /// Adds an empty user database; `false` if it already exists.
    pub fn create_database(&self, name: &str) -> bool {
        let mut shared = self.lock();
        if shared.database(name).is_some() {
            return false;
        }
        shared.databases.push(Database::new(name));
        shared.config.databases.push(name.to_owned());
        true
    }

    /// Drops a user database and everything in it; `false` if it did not
    /// exist (`master` cannot be dropped).
    pub fn drop_database(&self, name: &str) -> bool {
        if name.eq_ignore_ascii_case(MASTER) {
            return false;
        }
        let mut shared = self.lock();
        let before = shared.databases.len();
        shared
            .databases
            .retain(|d| !d.name.eq_ignore_ascii_case(name));
        shared
            .config
            .databases
            .retain(|d| !d.eq_ignore_ascii_case(name));
        shared.databases.len() != before
    }

    /// Seeds a contained user for `principal` named `name` (as if the admin
    /// had run `CREATE USER [name] FROM EXTERNAL PROVIDER`), with `roles`.
    pub fn add_user(
        &self,
        database: &str,
        name: &str,
        principal: &TokenPrincipal,
        roles: &[&str],
    ) -> Result<(), SqlError> {
        let mut shared = self.lock();
        let Some(db) = shared.database_mut(database) else {
            return Err(SqlError::cannot_open_database(database));
        };
        if db.user_named(name).is_some() {
            return Err(SqlError::user_exists(name));
        }
        let mut set = BTreeSet::new();
        for role in roles {
            if !FIXED_ROLES.iter().any(|r| r.eq_ignore_ascii_case(role)) {
                return Err(SqlError::cannot_alter_role(role));
            }
            set.insert(role.to_ascii_lowercase());
        }
        db.users.push(DbUser {
            name: name.to_owned(),
            object_id: principal.object_id.clone(),
            app_id: principal.app_id.clone(),
            tenant_id: principal.tenant_id.clone(),
            roles: set,
        });
        Ok(())
    }
}
