//! Runs parsed statements against the catalog with Azure SQL's permission
//! model, reduced to what the tutorials exercise: the Entra admin is `dbo`
//! everywhere, contained users get rights only through fixed database roles.
//!
//! Every statement validates completely before it mutates anything, so a
//! failing statement leaves the state untouched (statement atomicity).

use std::collections::BTreeSet;

use crate::auth::{ResolveError, TokenAuthority, TokenPrincipal};
use crate::catalog::{
    Column, ColumnType, DbUser, FIXED_ROLES, MAX_ROWS_PER_TABLE, MAX_TABLES_PER_DATABASE, Shared,
    Table, Value,
};
use crate::error::SqlError;
use crate::sql::{Expr, Function, Literal, SelectItem, Statement};

/// Reported by `@@VERSION`.
pub(crate) const VERSION_TEXT: &str =
    "Microsoft SQL Azure (RTM) - 12.0.2000.8 (mic fake TDS endpoint)";

/// Who is running statements, and where.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub principal: TokenPrincipal,
    pub is_admin: bool,
    /// Canonical database name.
    pub database: String,
}

/// A result-set column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutColumn {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
}

/// What a statement produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No result set; `rows` is the affected-row count, if any.
    Done { rows: Option<u64>, cmd: u16 },
    /// A result set.
    Rows {
        columns: Vec<OutColumn>,
        rows: Vec<Vec<Value>>,
    },
}

/// DONE `CurCmd` values (the server's statement token ids).
pub(crate) mod cmd {
    pub const SELECT: u16 = 0xC1;
    pub const INSERT: u16 = 0xC3;
    pub const CREATE_TABLE: u16 = 0xC6;
    pub const OTHER: u16 = 0;
}

#[derive(Clone, Copy)]
enum Right {
    Read,
    Write,
    Ddl,
    Security,
}

fn has_right(session: &Session, user: Option<&DbUser>, right: Right) -> bool {
    if session.is_admin {
        return true;
    }
    let Some(user) = user else { return false };
    if user.in_role("db_owner") {
        return match right {
            Right::Read => !user.in_role("db_denydatareader"),
            Right::Write => !user.in_role("db_denydatawriter"),
            Right::Ddl | Right::Security => true,
        };
    }
    match right {
        Right::Read => user.in_role("db_datareader") && !user.in_role("db_denydatareader"),
        Right::Write => user.in_role("db_datawriter") && !user.in_role("db_denydatawriter"),
        Right::Ddl => user.in_role("db_ddladmin"),
        Right::Security => false,
    }
}

/// Executes one statement.
pub(crate) fn execute(
    shared: &mut Shared,
    auth: &dyn TokenAuthority,
    session: &Session,
    stmt: &Statement,
) -> Result<Outcome, SqlError> {
    let server_name = shared.config.server_name.clone();
    let Some(db) = shared.database_mut(&session.database) else {
        // The database existed at login; nothing removes databases.
        return Err(SqlError::cannot_open_database(&session.database));
    };
    let db_name = db.name.clone();
    let me = db.user_for(&session.principal).cloned();
    let me = me.as_ref();

    match stmt {
        Statement::Use { database } => {
            if database.eq_ignore_ascii_case(&db_name) {
                Ok(Outcome::Done {
                    rows: None,
                    cmd: cmd::OTHER,
                })
            } else {
                Err(SqlError::use_not_supported())
            }
        }
        Statement::CreateExternalUser { name } => {
            if !has_right(session, me, Right::Security) {
                return Err(SqlError::no_permission());
            }
            if db.user_named(name).is_some()
                || FIXED_ROLES.iter().any(|r| r.eq_ignore_ascii_case(name))
                || name.eq_ignore_ascii_case("dbo")
            {
                return Err(SqlError::user_exists(name));
            }
            let principal = auth.resolve_display_name(name).map_err(|e| match e {
                ResolveError::NotFound => SqlError::principal_not_found(name),
                ResolveError::Ambiguous => SqlError::principal_duplicate_display_name(name),
            })?;
            if db.user_for(&principal).is_some() {
                return Err(SqlError {
                    number: 15063,
                    state: 1,
                    class: 16,
                    message: "The login already has an account under a different user name.".into(),
                });
            }
            db.users.push(DbUser {
                name: name.clone(),
                object_id: principal.object_id,
                app_id: principal.app_id,
                tenant_id: principal.tenant_id,
                roles: BTreeSet::new(),
            });
            Ok(Outcome::Done {
                rows: None,
                cmd: cmd::OTHER,
            })
        }
        Statement::DropUser { name } => {
            if !has_right(session, me, Right::Security) {
                return Err(SqlError::cannot_drop_user(name));
            }
            let Some(pos) = db
                .users
                .iter()
                .position(|u| u.name.eq_ignore_ascii_case(name))
            else {
                return Err(SqlError::cannot_drop_user(name));
            };
            db.users.remove(pos);
            Ok(Outcome::Done {
                rows: None,
                cmd: cmd::OTHER,
            })
        }
        Statement::AlterRole { role, member, add } => {
            let Some(role) = FIXED_ROLES.iter().find(|r| r.eq_ignore_ascii_case(role)) else {
                return Err(SqlError::cannot_alter_role(role));
            };
            if !has_right(session, me, Right::Security) {
                return Err(SqlError::cannot_alter_role(role));
            }
            let Some(user) = db
                .users
                .iter_mut()
                .find(|u| u.name.eq_ignore_ascii_case(member))
            else {
                return Err(if *add {
                    SqlError::cannot_add_principal(member)
                } else {
                    SqlError::cannot_drop_principal(member)
                });
            };
            if *add {
                user.roles.insert((*role).to_owned());
            } else {
                user.roles.remove(*role);
            }
            Ok(Outcome::Done {
                rows: None,
                cmd: cmd::OTHER,
            })
        }
        Statement::CreateTable { name, columns } => {
            if !has_right(session, me, Right::Ddl) {
                return Err(SqlError::statement_permission_denied(
                    "CREATE TABLE",
                    &db_name,
                ));
            }
            if db.table(name).is_some() {
                return Err(SqlError::object_exists(name));
            }
            if db.tables.len() >= MAX_TABLES_PER_DATABASE {
                return Err(SqlError::table_full(name));
            }
            for (i, c) in columns.iter().enumerate() {
                if columns[..i]
                    .iter()
                    .any(|o| o.name.eq_ignore_ascii_case(&c.name))
                {
                    return Err(SqlError::duplicate_column(&c.name, name));
                }
            }
            if columns.iter().filter(|c| c.primary_key).count() > 1 {
                return Err(SqlError {
                    number: 8110,
                    state: 0,
                    class: 16,
                    message: format!(
                        "Cannot add multiple PRIMARY KEY constraints to table '{name}'."
                    ),
                });
            }
            db.tables.push(Table {
                name: name.clone(),
                columns: columns
                    .iter()
                    .map(|c| Column {
                        name: c.name.clone(),
                        ty: c.ty,
                        nullable: c.nullable,
                        primary_key: c.primary_key,
                    })
                    .collect(),
                rows: Vec::new(),
            });
            Ok(Outcome::Done {
                rows: None,
                cmd: cmd::CREATE_TABLE,
            })
        }
        Statement::Insert {
            table,
            columns,
            rows,
        } => {
            let can_write = has_right(session, me, Right::Write);
            let Some(t) = db.table_mut(table) else {
                return Err(SqlError::invalid_object(table));
            };
            if !can_write {
                return Err(SqlError::permission_denied("INSERT", &t.name, &db_name));
            }
            let targets: Vec<usize> = match columns {
                None => (0..t.columns.len()).collect(),
                Some(names) => {
                    let mut idx = Vec::with_capacity(names.len());
                    for n in names {
                        let Some(i) = t.column(n) else {
                            return Err(SqlError::invalid_column(n));
                        };
                        if idx.contains(&i) {
                            return Err(SqlError::column_listed_twice(&t.columns[i].name));
                        }
                        idx.push(i);
                    }
                    idx
                }
            };
            let mut new_rows = Vec::with_capacity(rows.len());
            for row in rows {
                if row.len() != targets.len() {
                    return Err(SqlError::insert_arity(targets.len() > row.len()));
                }
                let mut values = vec![Value::Null; t.columns.len()];
                for (lit, &i) in row.iter().zip(&targets) {
                    values[i] = coerce(lit, &t.columns[i], &db_name, &t.name)?;
                }
                for (c, v) in t.columns.iter().zip(&values) {
                    if *v == Value::Null && !c.nullable {
                        return Err(SqlError::null_not_allowed(&c.name, &db_name, &t.name));
                    }
                }
                new_rows.push(values);
            }
            if let Some(pk) = t.columns.iter().position(|c| c.primary_key) {
                for (i, r) in new_rows.iter().enumerate() {
                    let dup = t
                        .rows
                        .iter()
                        .chain(&new_rows[..i])
                        .any(|o| same(&o[pk], &r[pk]));
                    if dup {
                        return Err(SqlError::duplicate_key(&t.name, &display(&r[pk])));
                    }
                }
            }
            if t.rows.len() + new_rows.len() > MAX_ROWS_PER_TABLE {
                return Err(SqlError::table_full(&t.name));
            }
            let count = new_rows.len() as u64;
            t.rows.extend(new_rows);
            Ok(Outcome::Done {
                rows: Some(count),
                cmd: cmd::INSERT,
            })
        }
        Statement::Select {
            items,
            from,
            filter,
        } => {
            let ctx = EvalContext {
                session,
                user: me,
                db_name: &db_name,
                server_name: &server_name,
            };
            match from {
                None => select_constants(&ctx, items),
                Some(table) => {
                    let Some(t) = db.table(table) else {
                        return Err(SqlError::invalid_object(table));
                    };
                    select_from(&ctx, t, items, filter.as_ref())
                }
            }
        }
    }
}

struct EvalContext<'a> {
    session: &'a Session,
    user: Option<&'a DbUser>,
    db_name: &'a str,
    server_name: &'a str,
}

impl EvalContext<'_> {
    fn function(&self, f: Function) -> String {
        match f {
            Function::SuserSname => self.session.principal.display_name.clone(),
            Function::UserName => {
                if self.session.is_admin {
                    "dbo".to_owned()
                } else {
                    self.user.map(|u| u.name.clone()).unwrap_or_default()
                }
            }
            Function::DbName => self.db_name.to_owned(),
            Function::ServerName => self.server_name.to_owned(),
            Function::Version => VERSION_TEXT.to_owned(),
        }
    }
}

fn literal_column(lit: &Literal, alias: Option<&String>) -> (OutColumn, Value) {
    let name = alias.cloned().unwrap_or_default();
    match lit {
        Literal::Null => (
            OutColumn {
                name,
                ty: ColumnType::Int,
                nullable: true,
            },
            Value::Null,
        ),
        Literal::Int(i) => (
            OutColumn {
                name,
                ty: if i32::try_from(*i).is_ok() {
                    ColumnType::Int
                } else {
                    ColumnType::BigInt
                },
                nullable: false,
            },
            Value::Int(*i),
        ),
        Literal::Str { value, unicode } => {
            let units = value.encode_utf16().count().clamp(1, 4000);
            let len = u16::try_from(units).unwrap_or(4000);
            let ty = if *unicode {
                ColumnType::NVarChar(len)
            } else {
                ColumnType::VarChar(len.min(8000))
            };
            let value = if *unicode {
                value.clone()
            } else {
                to_cp1252_lossy(value)
            };
            (
                OutColumn {
                    name,
                    ty,
                    nullable: false,
                },
                Value::Str(value),
            )
        }
    }
}

fn function_column(
    ctx: &EvalContext<'_>,
    f: Function,
    alias: Option<&String>,
) -> (OutColumn, Value) {
    let len = if f == Function::Version { 4000 } else { 128 };
    (
        OutColumn {
            name: alias.cloned().unwrap_or_default(),
            ty: ColumnType::NVarChar(len),
            nullable: true,
        },
        Value::Str(ctx.function(f)),
    )
}

fn select_constants(ctx: &EvalContext<'_>, items: &[SelectItem]) -> Result<Outcome, SqlError> {
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in items {
        let (col, value) = match item {
            SelectItem::Star => return Err(SqlError::syntax("*")),
            SelectItem::Expr { expr, alias } => match expr {
                Expr::Column(c) => return Err(SqlError::invalid_column(c)),
                Expr::Literal(l) => literal_column(l, alias.as_ref()),
                Expr::Function(f) => function_column(ctx, *f, alias.as_ref()),
            },
        };
        columns.push(col);
        row.push(value);
    }
    Ok(Outcome::Rows {
        columns,
        rows: vec![row],
    })
}

enum Source {
    Column(usize),
    Constant(Value),
}

fn select_from(
    ctx: &EvalContext<'_>,
    t: &Table,
    items: &[SelectItem],
    filter: Option<&(String, Literal)>,
) -> Result<Outcome, SqlError> {
    // Binding (208/207) comes before the permission check (229), as in SQL
    // Server.
    let mut columns = Vec::new();
    let mut sources = Vec::new();
    for item in items {
        match item {
            SelectItem::Star => {
                for (i, c) in t.columns.iter().enumerate() {
                    columns.push(OutColumn {
                        name: c.name.clone(),
                        ty: c.ty,
                        nullable: c.nullable,
                    });
                    sources.push(Source::Column(i));
                }
            }
            SelectItem::Expr { expr, alias } => match expr {
                Expr::Column(name) => {
                    let Some(i) = t.column(name) else {
                        return Err(SqlError::invalid_column(name));
                    };
                    let c = &t.columns[i];
                    columns.push(OutColumn {
                        name: alias.clone().unwrap_or_else(|| c.name.clone()),
                        ty: c.ty,
                        nullable: c.nullable,
                    });
                    sources.push(Source::Column(i));
                }
                Expr::Literal(l) => {
                    let (col, v) = literal_column(l, alias.as_ref());
                    columns.push(col);
                    sources.push(Source::Constant(v));
                }
                Expr::Function(f) => {
                    let (col, v) = function_column(ctx, *f, alias.as_ref());
                    columns.push(col);
                    sources.push(Source::Constant(v));
                }
            },
        }
    }
    let predicate = match filter {
        None => None,
        Some((name, lit)) => {
            let Some(i) = t.column(name) else {
                return Err(SqlError::invalid_column(name));
            };
            Some((i, lit))
        }
    };
    if !has_right(ctx.session, ctx.user, Right::Read) {
        return Err(SqlError::permission_denied("SELECT", &t.name, ctx.db_name));
    }
    let mut rows = Vec::new();
    for row in &t.rows {
        if let Some((i, lit)) = predicate
            && !matches_literal(&row[i], t.columns[i].ty, lit)?
        {
            continue;
        }
        rows.push(
            sources
                .iter()
                .map(|s| match s {
                    Source::Column(i) => row[*i].clone(),
                    Source::Constant(v) => v.clone(),
                })
                .collect(),
        );
    }
    Ok(Outcome::Rows { columns, rows })
}

/// `column = literal` with SQL Server's implicit conversions and a
/// case-insensitive, trailing-space-insensitive collation.
fn matches_literal(value: &Value, ty: ColumnType, lit: &Literal) -> Result<bool, SqlError> {
    let lit_value = match (ty, lit) {
        (_, Literal::Null) => return Ok(false),
        (
            ColumnType::Int | ColumnType::BigInt | ColumnType::Bit,
            Literal::Str { value, unicode },
        ) => Value::Int(parse_int(value, *unicode, ty)?),
        (ColumnType::NVarChar(_) | ColumnType::VarChar(_), Literal::Int(i)) => {
            // The string column converts to int, row by row.
            return match value {
                Value::Str(s) => Ok(parse_int(s, false, ColumnType::Int)? == *i),
                _ => Ok(false),
            };
        }
        (_, Literal::Int(i)) => Value::Int(*i),
        (_, Literal::Str { value, .. }) => Value::Str(value.clone()),
    };
    Ok(same(value, &lit_value))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => {
            x.trim_end_matches(' ').to_lowercase() == y.trim_end_matches(' ').to_lowercase()
        }
        _ => false,
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::Null => "<NULL>".into(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
    }
}

fn parse_int(text: &str, unicode: bool, ty: ColumnType) -> Result<i64, SqlError> {
    let source = if unicode { "nvarchar" } else { "varchar" };
    let n: i64 = text.trim().parse().map_err(|_| SqlError {
        number: 245,
        state: 1,
        class: 16,
        message: format!(
            "Conversion failed when converting the {source} value '{text}' to data type {}.",
            ty.sql_name()
        ),
    })?;
    check_range(n, ty)
}

fn check_range(n: i64, ty: ColumnType) -> Result<i64, SqlError> {
    match ty {
        ColumnType::Int if i32::try_from(n).is_err() => Err(SqlError::arithmetic_overflow("int")),
        ColumnType::Bit => Ok(i64::from(n != 0)),
        _ => Ok(n),
    }
}

/// Converts a literal for storage in `column`.
fn coerce(lit: &Literal, column: &Column, db: &str, table: &str) -> Result<Value, SqlError> {
    match (lit, column.ty) {
        (Literal::Null, _) => Ok(Value::Null),
        (Literal::Int(i), ColumnType::Int | ColumnType::BigInt | ColumnType::Bit) => {
            check_range(*i, column.ty).map(Value::Int)
        }
        (
            Literal::Str { value, unicode },
            ColumnType::Int | ColumnType::BigInt | ColumnType::Bit,
        ) => parse_int(value, *unicode, column.ty).map(Value::Int),
        (Literal::Int(i), ColumnType::NVarChar(n) | ColumnType::VarChar(n)) => {
            store_string(&i.to_string(), column, n, db, table)
        }
        (Literal::Str { value, .. }, ColumnType::NVarChar(n) | ColumnType::VarChar(n)) => {
            store_string(value, column, n, db, table)
        }
    }
}

fn store_string(
    s: &str,
    column: &Column,
    max: u16,
    db: &str,
    table: &str,
) -> Result<Value, SqlError> {
    let (stored, len) = match column.ty {
        ColumnType::VarChar(_) => {
            let s = to_cp1252_lossy(s);
            let len = s.chars().count();
            (s, len)
        }
        _ => (s.to_owned(), s.encode_utf16().count()),
    };
    // Trailing spaces beyond the length are silently trimmed, as with
    // ANSI_PADDING ON.
    if len > usize::from(max) {
        let trimmed = stored.trim_end_matches(' ');
        let trimmed_len = match column.ty {
            ColumnType::VarChar(_) => trimmed.chars().count(),
            _ => trimmed.encode_utf16().count(),
        };
        if trimmed_len > usize::from(max) {
            let shown: String = stored.chars().take(usize::from(max)).collect();
            return Err(SqlError::truncated(db, table, &column.name, &shown));
        }
        let cut: String = stored.chars().take(usize::from(max)).collect();
        return Ok(Value::Str(cut));
    }
    Ok(Value::Str(stored))
}

/// What a `varchar` column with a Latin1 (code page 1252) collation keeps
/// of a string: Latin-1 characters survive, everything else becomes `?`.
pub(crate) fn to_cp1252_lossy(s: &str) -> String {
    s.chars()
        .map(|c| {
            if u32::from(c) < 0x80 || (0xA0..=0xFF).contains(&u32::from(c)) {
                c
            } else {
                '?'
            }
        })
        .collect()
}
