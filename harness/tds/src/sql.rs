//! A deliberately tiny T-SQL parser.
//!
//! The tutorials only need a handful of statements (contained-user and role
//! DDL, a table to read, and `SELECT`s), so this is a hand-written tokenizer
//! and recursive-descent parser for exactly those, with T-SQL's lexical rules
//! (case-insensitive keywords, `[bracketed]` and `"quoted"` identifiers,
//! `N'unicode'` literals with `''` escapes, `--` and `/* */` comments).
//! Anything else is rejected with the error number SQL Server would use, so a
//! scenario that drifts outside the supported subset fails loudly instead of
//! silently doing something else.

use crate::catalog::ColumnType;
use crate::error::SqlError;

/// Longest identifier SQL Server accepts (`sysname`).
const MAX_IDENTIFIER_CHARS: usize = 128;

/// A literal value in a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// An integer literal.
    Int(i64),
    /// A string literal; `unicode` for `N'...'`.
    Str {
        /// The unescaped text.
        value: String,
        /// Whether it was written `N'...'`.
        unicode: bool,
    },
}

/// A column in `CREATE TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Declared type.
    pub ty: ColumnType,
    /// `NULL` (default) or `NOT NULL`.
    pub nullable: bool,
    /// `PRIMARY KEY` (implies `NOT NULL`).
    pub primary_key: bool,
}

/// A built-in function the fake evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// `SUSER_SNAME()` / `SUSER_NAME()` / `SYSTEM_USER` / `ORIGINAL_LOGIN()`.
    SuserSname,
    /// `USER_NAME()` / `CURRENT_USER` / `USER`.
    UserName,
    /// `DB_NAME()`.
    DbName,
    /// `@@SERVERNAME`.
    ServerName,
    /// `@@VERSION`.
    Version,
}

/// What a select-list item computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A column of the `FROM` table.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// A built-in function.
    Function(Function),
}

/// One entry of a select list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectItem {
    /// `*`.
    Star,
    /// An expression with an optional `AS alias`.
    Expr {
        /// The expression.
        expr: Expr,
        /// `AS alias`, if given.
        alias: Option<String>,
    },
}

/// A parsed statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// `CREATE USER [name] FROM EXTERNAL PROVIDER`.
    CreateExternalUser {
        /// Display name to resolve.
        name: String,
    },
    /// `DROP USER [name]`.
    DropUser {
        /// User name.
        name: String,
    },
    /// `ALTER ROLE role ADD|DROP MEMBER [name]` (or `sp_addrolemember`).
    AlterRole {
        /// Role name.
        role: String,
        /// Member name.
        member: String,
        /// `ADD` (true) or `DROP` (false).
        add: bool,
    },
    /// `CREATE TABLE t (col type, ...)`.
    CreateTable {
        /// Table name (schema `dbo`).
        name: String,
        /// Columns in order.
        columns: Vec<ColumnDef>,
    },
    /// `INSERT INTO t [(cols)] VALUES (...), (...)`.
    Insert {
        /// Table name.
        table: String,
        /// Explicit column list, if any.
        columns: Option<Vec<String>>,
        /// Value rows.
        rows: Vec<Vec<Literal>>,
    },
    /// `SELECT items [FROM t [WHERE col = literal]]`.
    Select {
        /// Select list.
        items: Vec<SelectItem>,
        /// Source table.
        from: Option<String>,
        /// `WHERE column = literal`.
        filter: Option<(String, Literal)>,
    },
    /// `USE db` (rejected at run time, as Azure SQL does).
    Use {
        /// Database name.
        database: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A bare word: keyword or regular identifier.
    Word(String),
    /// A `[bracketed]` or `"quoted"` identifier.
    Quoted(String),
    Str(String, bool),
    Num(String),
    /// `@@NAME`.
    Global(String),
    Sym(char),
}

impl Tok {
    /// How SQL Server would quote this token in "Incorrect syntax near".
    fn display(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => q.clone(),
            Tok::Str(s, _) => s.clone(),
            Tok::Num(n) => n.clone(),
            Tok::Global(g) => format!("@@{g}"),
            Tok::Sym(c) => c.to_string(),
        }
    }
}

fn tokenize(sql: &str) -> Result<Vec<Tok>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // T-SQL block comments nest.
            let mut depth = 0usize;
            loop {
                if i >= chars.len() {
                    return Err(SqlError::syntax("*/"));
                }
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '[' {
            let (text, next) = delimited(&chars, i + 1, ']')?;
            toks.push(Tok::Quoted(identifier(text)?));
            i = next;
        } else if c == '"' {
            let (text, next) = delimited(&chars, i + 1, '"')?;
            toks.push(Tok::Quoted(identifier(text)?));
            i = next;
        } else if c == '\'' {
            let (text, next) = delimited(&chars, i + 1, '\'')?;
            toks.push(Tok::Str(text, false));
            i = next;
        } else if (c == 'N' || c == 'n') && chars.get(i + 1) == Some(&'\'') {
            let (text, next) = delimited(&chars, i + 2, '\'')?;
            toks.push(Tok::Str(text, true));
            i = next;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            toks.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '@' && chars.get(i + 1) == Some(&'@') {
            let start = i + 2;
            i = start;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            toks.push(Tok::Global(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' || c == '#' || c == '@' {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            if i == start {
                i += 1;
            }
            toks.push(Tok::Word(identifier(chars[start..i].iter().collect())?));
        } else if "(),;*=.-".contains(c) {
            toks.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(SqlError::syntax(&c.to_string()));
        }
    }
    Ok(toks)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '#' | '@' | '$')
}

fn identifier(text: String) -> Result<String, SqlError> {
    if text.chars().count() > MAX_IDENTIFIER_CHARS {
        let shown: String = text.chars().take(MAX_IDENTIFIER_CHARS).collect();
        return Err(SqlError {
            number: 103,
            state: 4,
            class: 15,
            message: format!(
                "The identifier that starts with '{shown}' is too long. Maximum length is 128."
            ),
        });
    }
    if text.is_empty() {
        return Err(SqlError {
            number: 1038,
            state: 1,
            class: 15,
            message: "An object or column name is missing or empty. For SELECT INTO statements, verify each column has a name. For other statements, look for empty alias names. Aliases defined as \"\" or [] are not allowed. Change the alias to a valid name.".into(),
        });
    }
    Ok(text)
}

/// Reads up to the closing `close`, where a doubled `close` is an escape.
fn delimited(chars: &[char], mut i: usize, close: char) -> Result<(String, usize), SqlError> {
    let mut out = String::new();
    loop {
        match chars.get(i) {
            None => {
                let shown: String = out.chars().take(40).collect();
                return Err(SqlError {
                    number: 105,
                    state: 1,
                    class: 15,
                    message: format!(
                        "Unclosed quotation mark after the character string '{shown}'."
                    ),
                });
            }
            Some(&c) if c == close => {
                if chars.get(i + 1) == Some(&close) {
                    out.push(close);
                    i += 2;
                } else {
                    return Ok((out, i + 1));
                }
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Statement keywords that exist in T-SQL but not in the fake.
const UNSUPPORTED_STATEMENTS: &[&str] = &[
    "ALTER",
    "BACKUP",
    "BEGIN",
    "BULK",
    "CHECKPOINT",
    "COMMIT",
    "CREATE",
    "DBCC",
    "DECLARE",
    "DELETE",
    "DENY",
    "DROP",
    "EXECUTE",
    "GRANT",
    "IF",
    "MERGE",
    "PRINT",
    "RAISERROR",
    "REVERT",
    "REVOKE",
    "ROLLBACK",
    "SAVE",
    "SET",
    "THROW",
    "TRUNCATE",
    "UPDATE",
    "WAITFOR",
    "WHILE",
    "WITH",
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// "Incorrect syntax near" the current token, or the last one at the end.
    fn syntax_error(&self) -> SqlError {
        let tok = self.toks.get(self.pos).or_else(|| self.toks.last());
        SqlError::syntax(&tok.map(Tok::display).unwrap_or_default())
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn eat_sym(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, c: char) -> Result<(), SqlError> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Word(w)) if !is_reserved(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            Some(Tok::Quoted(q)) => {
                let q = q.clone();
                self.pos += 1;
                Ok(q)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// `name`, `dbo.name` or `[dbo].[name]`; other schemas do not exist.
    fn object_name(&mut self) -> Result<String, SqlError> {
        let first = self.ident()?;
        if self.eat_sym('.') {
            let second = self.ident()?;
            if self.peek() == Some(&Tok::Sym('.')) {
                return Err(SqlError::not_supported("multi-part object names"));
            }
            if !first.eq_ignore_ascii_case("dbo") {
                return Err(SqlError::invalid_object(&format!("{first}.{second}")));
            }
            Ok(second)
        } else {
            Ok(first)
        }
    }

    fn at_statement_end(&self) -> bool {
        matches!(self.peek(), None | Some(Tok::Sym(';')))
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let Some(first) = self.peek().cloned() else {
            return Err(self.syntax_error());
        };
        let Tok::Word(word) = first else {
            return Err(self.syntax_error());
        };
        let upper = word.to_ascii_uppercase();
        match upper.as_str() {
            "SELECT" => {
                self.pos += 1;
                self.select()
            }
            "INSERT" => {
                self.pos += 1;
                self.insert()
            }
            "USE" => {
                self.pos += 1;
                let database = self.ident()?;
                Ok(Statement::Use { database })
            }
            "EXEC" | "EXECUTE" => {
                self.pos += 1;
                self.exec()
            }
            "CREATE" if self.word_at(1, "USER") => {
                self.pos += 2;
                self.create_user()
            }
            "CREATE" if self.word_at(1, "TABLE") => {
                self.pos += 2;
                self.create_table()
            }
            "DROP" if self.word_at(1, "USER") => {
                self.pos += 2;
                let name = self.ident()?;
                Ok(Statement::DropUser { name })
            }
            "ALTER" if self.word_at(1, "ROLE") => {
                self.pos += 2;
                self.alter_role()
            }
            _ if UNSUPPORTED_STATEMENTS.contains(&upper.as_str()) => {
                Err(SqlError::not_supported(&upper))
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn word_at(&self, offset: usize, kw: &str) -> bool {
        matches!(self.toks.get(self.pos + offset), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn create_user(&mut self) -> Result<Statement, SqlError> {
        let name = self.ident()?;
        if self.at_statement_end() {
            // A user without login: SQL authentication, not in the fake.
            return Err(SqlError::not_supported("CREATE USER WITHOUT LOGIN"));
        }
        if self.peek_keyword("FROM") && self.word_at(1, "LOGIN") {
            return Err(SqlError::not_supported("FROM LOGIN"));
        }
        if self.peek_keyword("WITH") {
            return Err(SqlError::not_supported("WITH"));
        }
        self.expect_keyword("FROM")?;
        self.expect_keyword("EXTERNAL")?;
        self.expect_keyword("PROVIDER")?;
        if self.peek_keyword("WITH") {
            return Err(SqlError::not_supported("OBJECT_ID"));
        }
        Ok(Statement::CreateExternalUser { name })
    }

    fn alter_role(&mut self) -> Result<Statement, SqlError> {
        let role = self.ident()?;
        let add = if self.eat_keyword("ADD") {
            true
        } else if self.eat_keyword("DROP") {
            false
        } else if self.peek_keyword("WITH") {
            return Err(SqlError::not_supported("WITH NAME"));
        } else {
            return Err(self.syntax_error());
        };
        self.expect_keyword("MEMBER")?;
        let member = self.ident()?;
        Ok(Statement::AlterRole { role, member, add })
    }

    /// `EXEC sp_addrolemember 'role', 'member'` and `sp_droprolemember`, the
    /// pre-2012 spelling older tutorials use.
    fn exec(&mut self) -> Result<Statement, SqlError> {
        let proc = self.object_name()?;
        let add = if proc.eq_ignore_ascii_case("sp_addrolemember") {
            true
        } else if proc.eq_ignore_ascii_case("sp_droprolemember") {
            false
        } else {
            return Err(SqlError::unknown_procedure(&proc));
        };
        let role = self.string_or_ident()?;
        self.expect_sym(',')?;
        let member = self.string_or_ident()?;
        Ok(Statement::AlterRole { role, member, add })
    }

    fn string_or_ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Str(s, _)) => {
                let s = s.clone();
                self.pos += 1;
                identifier(s)
            }
            _ => self.ident(),
        }
    }

    fn create_table(&mut self) -> Result<Statement, SqlError> {
        let name = self.object_name()?;
        self.expect_sym('(')?;
        let mut columns = Vec::new();
        loop {
            let col = self.ident()?;
            let ty = self.column_type(&col, columns.len() + 1)?;
            let mut nullable = true;
            let mut primary_key = false;
            loop {
                if self.eat_keyword("NOT") {
                    self.expect_keyword("NULL")?;
                    nullable = false;
                } else if self.eat_keyword("NULL") {
                    nullable = true;
                } else if self.eat_keyword("PRIMARY") {
                    self.expect_keyword("KEY")?;
                    primary_key = true;
                    nullable = false;
                } else if self.peek_keyword("IDENTITY")
                    || self.peek_keyword("DEFAULT")
                    || self.peek_keyword("UNIQUE")
                    || self.peek_keyword("CONSTRAINT")
                    || self.peek_keyword("REFERENCES")
                    || self.peek_keyword("CHECK")
                {
                    let Some(Tok::Word(w)) = self.next() else {
                        unreachable!("peeked a word")
                    };
                    return Err(SqlError::not_supported(&w.to_ascii_uppercase()));
                } else {
                    break;
                }
            }
            columns.push(ColumnDef {
                name: col,
                ty,
                nullable,
                primary_key,
            });
            if self.eat_sym(',') {
                continue;
            }
            self.expect_sym(')')?;
            break;
        }
        Ok(Statement::CreateTable { name, columns })
    }

    fn column_type(&mut self, column: &str, ordinal: usize) -> Result<ColumnType, SqlError> {
        let ty = self.ident()?;
        let lower = ty.to_ascii_lowercase();
        match lower.as_str() {
            "int" => Ok(ColumnType::Int),
            "bigint" => Ok(ColumnType::BigInt),
            "bit" => Ok(ColumnType::Bit),
            "nvarchar" | "varchar" | "nchar" | "char" => {
                let unicode = lower.starts_with('n');
                let max: u16 = if unicode { 4000 } else { 8000 };
                let size = if self.eat_sym('(') {
                    let size = match self.next() {
                        Some(Tok::Num(n)) => n.parse::<u64>().unwrap_or(u64::MAX),
                        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("max") => {
                            return Err(SqlError::not_supported("MAX"));
                        }
                        _ => {
                            self.pos = self.pos.saturating_sub(1);
                            return Err(self.syntax_error());
                        }
                    };
                    self.expect_sym(')')?;
                    size
                } else {
                    1
                };
                if size > u64::from(max) {
                    return Err(SqlError::column_size(size, column, max));
                }
                let size = u16::try_from(size).unwrap_or(max).max(1);
                Ok(if unicode {
                    ColumnType::NVarChar(size)
                } else {
                    ColumnType::VarChar(size)
                })
            }
            _ => Err(SqlError::unknown_type(ordinal, &ty)),
        }
    }

    fn insert(&mut self) -> Result<Statement, SqlError> {
        self.eat_keyword("INTO");
        let table = self.object_name()?;
        let columns = if self.eat_sym('(') {
            let mut cols = vec![self.ident()?];
            while self.eat_sym(',') {
                cols.push(self.ident()?);
            }
            self.expect_sym(')')?;
            Some(cols)
        } else {
            None
        };
        if self.peek_keyword("SELECT") || self.peek_keyword("DEFAULT") {
            return Err(SqlError::not_supported("INSERT without VALUES"));
        }
        self.expect_keyword("VALUES")?;
        let mut rows = Vec::new();
        loop {
            self.expect_sym('(')?;
            let mut row = vec![self.literal()?];
            while self.eat_sym(',') {
                row.push(self.literal()?);
            }
            self.expect_sym(')')?;
            rows.push(row);
            if !self.eat_sym(',') {
                break;
            }
        }
        Ok(Statement::Insert {
            table,
            columns,
            rows,
        })
    }

    fn literal(&mut self) -> Result<Literal, SqlError> {
        let negative = self.eat_sym('-');
        match self.next() {
            Some(Tok::Num(n)) => {
                let text = if negative { format!("-{n}") } else { n };
                text.parse::<i64>()
                    .map(Literal::Int)
                    .map_err(|_| SqlError::arithmetic_overflow("bigint"))
            }
            Some(Tok::Str(value, unicode)) if !negative => Ok(Literal::Str { value, unicode }),
            Some(Tok::Word(w)) if !negative && w.eq_ignore_ascii_case("NULL") => Ok(Literal::Null),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(self.syntax_error())
            }
        }
    }

    fn select(&mut self) -> Result<Statement, SqlError> {
        if self.peek_keyword("TOP") || self.peek_keyword("DISTINCT") {
            let Some(Tok::Word(w)) = self.next() else {
                unreachable!("peeked a word")
            };
            return Err(SqlError::not_supported(&w.to_ascii_uppercase()));
        }
        let mut items = vec![self.select_item()?];
        while self.eat_sym(',') {
            items.push(self.select_item()?);
        }
        let mut from = None;
        let mut filter = None;
        if self.eat_keyword("FROM") {
            from = Some(self.object_name()?);
            if self.eat_keyword("WHERE") {
                let col = self.column_ref()?;
                self.expect_sym('=')?;
                let lit = self.literal()?;
                filter = Some((col, lit));
            }
        }
        for kw in [
            "ORDER", "GROUP", "HAVING", "JOIN", "UNION", "WHERE", "FOR", "OPTION",
        ] {
            if self.peek_keyword(kw) {
                return Err(SqlError::not_supported(kw));
            }
        }
        if from.is_none() && items.iter().any(|i| matches!(i, SelectItem::Star)) {
            return Err(SqlError {
                number: 263,
                state: 1,
                class: 16,
                message: "Must specify table to select from.".into(),
            });
        }
        Ok(Statement::Select {
            items,
            from,
            filter,
        })
    }

    /// `col` or `t.col`; the qualifier is not checked.
    fn column_ref(&mut self) -> Result<String, SqlError> {
        let mut name = self.ident()?;
        while self.eat_sym('.') {
            name = self.ident()?;
        }
        Ok(name)
    }

    fn select_item(&mut self) -> Result<SelectItem, SqlError> {
        if self.eat_sym('*') {
            return Ok(SelectItem::Star);
        }
        let expr = match self.peek().cloned() {
            Some(Tok::Num(_) | Tok::Str(..) | Tok::Sym('-')) => Expr::Literal(self.literal()?),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NULL") => Expr::Literal(self.literal()?),
            Some(Tok::Global(g)) => {
                self.pos += 1;
                match g.to_ascii_uppercase().as_str() {
                    "SERVERNAME" => Expr::Function(Function::ServerName),
                    "VERSION" => Expr::Function(Function::Version),
                    _ => return Err(SqlError::not_supported(&format!("@@{g}"))),
                }
            }
            Some(Tok::Word(w)) if self.toks.get(self.pos + 1) == Some(&Tok::Sym('(')) => {
                self.pos += 2;
                let f = match w.to_ascii_uppercase().as_str() {
                    "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" => Function::SuserSname,
                    "USER_NAME" => Function::UserName,
                    "DB_NAME" => Function::DbName,
                    _ => {
                        return Err(SqlError {
                            number: 195,
                            state: 10,
                            class: 15,
                            message: format!("'{w}' is not a recognized built-in function name."),
                        });
                    }
                };
                if !self.eat_sym(')') {
                    return Err(SqlError::not_supported("function arguments"));
                }
                Expr::Function(f)
            }
            Some(Tok::Word(w))
                if ["SYSTEM_USER", "CURRENT_USER", "USER", "SESSION_USER"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                self.pos += 1;
                if w.eq_ignore_ascii_case("SYSTEM_USER") {
                    Expr::Function(Function::SuserSname)
                } else {
                    Expr::Function(Function::UserName)
                }
            }
            _ => Expr::Column(self.column_ref()?),
        };
        let alias = if self.eat_keyword("AS") {
            Some(self.alias()?)
        } else if matches!(self.peek(), Some(Tok::Quoted(_)))
            || matches!(self.peek(), Some(Tok::Word(w)) if !is_reserved(w))
        {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(SelectItem::Expr { expr, alias })
    }

    fn alias(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Str(s, _)) => {
                let s = s.clone();
                self.pos += 1;
                identifier(s)
            }
            _ => self.ident(),
        }
    }
}

/// Keywords that cannot be bare identifiers (a subset of T-SQL's list,
/// enough for the grammar above to terminate aliases correctly).
fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "ADD", "ALTER", "AS", "BY", "CREATE", "DEFAULT", "DELETE", "DISTINCT", "DROP", "EXEC",
        "EXECUTE", "EXTERNAL", "FOR", "FROM", "GROUP", "HAVING", "INSERT", "INTO", "JOIN", "KEY",
        "NOT", "NULL", "OPTION", "ORDER", "PRIMARY", "SELECT", "TABLE", "TOP", "UNION", "UPDATE",
        "USE", "USER", "VALUES", "WHERE", "WITH",
    ];
    RESERVED.iter().any(|r| word.eq_ignore_ascii_case(r))
}

/// Parses a batch: statements separated by `;` (or simply juxtaposed, as
/// T-SQL allows).
pub fn parse_batch(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let mut parser = Parser {
        toks: tokenize(sql)?,
        pos: 0,
    };
    let mut statements = Vec::new();
    loop {
        while parser.eat_sym(';') {}
        if parser.peek().is_none() {
            break;
        }
        statements.push(parser.statement()?);
        if !parser.at_statement_end() && !matches!(parser.peek(), Some(Tok::Word(_))) {
            return Err(parser.syntax_error());
        }
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn one(sql: &str) -> Statement {
        let mut v = parse_batch(sql).expect("parses");
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    #[rstest]
    #[case("CREATE USER [VMName] FROM EXTERNAL PROVIDER", "VMName")]
    #[case("create user [my vm] from external provider;", "my vm")]
    #[case("CREATE USER myvm FROM EXTERNAL PROVIDER", "myvm")]
    #[case("CREATE USER \"a]b\" FROM EXTERNAL PROVIDER", "a]b")]
    #[case("CREATE USER [a]]b] FROM EXTERNAL PROVIDER", "a]b")]
    #[case(
        "  -- comment\n CREATE /* x /* nested */ */ USER [v] FROM EXTERNAL PROVIDER",
        "v"
    )]
    fn create_user(#[case] sql: &str, #[case] name: &str) {
        assert_eq!(
            one(sql),
            Statement::CreateExternalUser {
                name: name.to_owned()
            }
        );
    }

    #[rstest]
    #[case(
        "ALTER ROLE db_datareader ADD MEMBER [VMName]",
        "db_datareader",
        "VMName",
        true
    )]
    #[case("alter role [db_owner] drop member vm1", "db_owner", "vm1", false)]
    #[case(
        "EXEC sp_addrolemember 'db_datareader', 'VMName'",
        "db_datareader",
        "VMName",
        true
    )]
    #[case(
        "exec sp_droprolemember N'db_datareader', N'v'",
        "db_datareader",
        "v",
        false
    )]
    fn alter_role(#[case] sql: &str, #[case] role: &str, #[case] member: &str, #[case] add: bool) {
        assert_eq!(
            one(sql),
            Statement::AlterRole {
                role: role.into(),
                member: member.into(),
                add
            }
        );
    }

    #[rstest]
    #[case("CREATE TABLE t (id int, name nvarchar(50), code varchar(10))", vec![
        ("id", ColumnType::Int, true, false),
        ("name", ColumnType::NVarChar(50), true, false),
        ("code", ColumnType::VarChar(10), true, false),
    ])]
    #[case("create table dbo.[Some Table] (id INT PRIMARY KEY, n NVARCHAR NOT NULL, b bit null, x bigint)", vec![
        ("id", ColumnType::Int, false, true),
        ("n", ColumnType::NVarChar(1), false, false),
        ("b", ColumnType::Bit, true, false),
        ("x", ColumnType::BigInt, true, false),
    ])]
    fn create_table(#[case] sql: &str, #[case] cols: Vec<(&str, ColumnType, bool, bool)>) {
        let Statement::CreateTable { columns, .. } = one(sql) else {
            panic!("not a create table")
        };
        let got: Vec<_> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty, c.nullable, c.primary_key))
            .collect();
        assert_eq!(got, cols);
    }

    #[test]
    fn insert_multi_row() {
        assert_eq!(
            one("INSERT INTO dbo.t (id, name) VALUES (1, N'it''s'), (-2, NULL)"),
            Statement::Insert {
                table: "t".into(),
                columns: Some(vec!["id".into(), "name".into()]),
                rows: vec![
                    vec![
                        Literal::Int(1),
                        Literal::Str {
                            value: "it's".into(),
                            unicode: true
                        }
                    ],
                    vec![Literal::Int(-2), Literal::Null],
                ],
            }
        );
    }

    #[rstest]
    #[case("SELECT * FROM t", vec![SelectItem::Star], Some("t"), None)]
    #[case("select id, [name] from [dbo].[t] where id = 3", vec![
        SelectItem::Expr { expr: Expr::Column("id".into()), alias: None },
        SelectItem::Expr { expr: Expr::Column("name".into()), alias: None },
    ], Some("t"), Some(("id", Literal::Int(3))))]
    #[case("SELECT t.name AS n FROM t WHERE name = 'x'", vec![
        SelectItem::Expr { expr: Expr::Column("name".into()), alias: Some("n".into()) },
    ], Some("t"), Some(("name", Literal::Str { value: "x".into(), unicode: false })))]
    #[case("SELECT SUSER_SNAME(), USER_NAME() u, DB_NAME() AS 'db', 1", vec![
        SelectItem::Expr { expr: Expr::Function(Function::SuserSname), alias: None },
        SelectItem::Expr { expr: Expr::Function(Function::UserName), alias: Some("u".into()) },
        SelectItem::Expr { expr: Expr::Function(Function::DbName), alias: Some("db".into()) },
        SelectItem::Expr { expr: Expr::Literal(Literal::Int(1)), alias: None },
    ], None, None)]
    #[case("SELECT @@VERSION", vec![
        SelectItem::Expr { expr: Expr::Function(Function::Version), alias: None },
    ], None, None)]
    fn select(
        #[case] sql: &str,
        #[case] items: Vec<SelectItem>,
        #[case] from: Option<&str>,
        #[case] filter: Option<(&str, Literal)>,
    ) {
        assert_eq!(
            one(sql),
            Statement::Select {
                items,
                from: from.map(str::to_owned),
                filter: filter.map(|(c, l)| (c.to_owned(), l)),
            }
        );
    }

    #[test]
    fn batch_of_several() {
        let v = parse_batch("CREATE TABLE t (id int); INSERT INTO t VALUES (1)\nSELECT * FROM t;;")
            .unwrap();
        assert_eq!(v.len(), 3);
    }

    #[rstest]
    #[case("", None)]
    #[case("   ;  -- nothing", None)]
    #[case("SELEC * FROM t", Some((102, "Incorrect syntax near 'SELEC'.")))]
    #[case("SELECT * FROM", Some((102, "Incorrect syntax near 'FROM'.")))]
    #[case("CREATE USER [x] FROM EXTERNAL", Some((102, "Incorrect syntax near 'EXTERNAL'.")))]
    #[case("CREATE USER [x", Some((105, "Unclosed quotation mark after the character string 'x'.")))]
    #[case("SELECT 'abc", Some((105, "Unclosed quotation mark after the character string 'abc'.")))]
    #[case("UPDATE t SET a = 1", Some((40517, "Keyword or statement option 'UPDATE' is not supported in this version of SQL Server.")))]
    #[case("DROP TABLE t", Some((40517, "Keyword or statement option 'DROP' is not supported in this version of SQL Server.")))]
    #[case("SELECT * FROM t ORDER BY id", Some((40517, "Keyword or statement option 'ORDER' is not supported in this version of SQL Server.")))]
    #[case("SELECT *", Some((263, "Must specify table to select from.")))]
    #[case("CREATE TABLE t (a varchar(9000))", Some((131, "The size (9000) given to the column 'a' exceeds the maximum allowed for any data type (8000).")))]
    #[case("CREATE TABLE t (a int, b money)", Some((2715, "Column, parameter, or variable #2: Cannot find data type money.")))]
    #[case("EXEC sp_who", Some((2812, "Could not find stored procedure 'sp_who'.")))]
    #[case("SELECT NOPE()", Some((195, "'NOPE' is not a recognized built-in function name.")))]
    #[case("SELECT 1 ?", Some((102, "Incorrect syntax near '?'.")))]
    #[case("INSERT INTO t VALUES (99999999999999999999)", Some((8115, "Arithmetic overflow error converting expression to data type bigint.")))]
    fn errors_and_empty(#[case] sql: &str, #[case] expected: Option<(u32, &str)>) {
        match (parse_batch(sql), expected) {
            (Ok(v), None) => assert!(v.is_empty()),
            (Err(e), Some((number, message))) => {
                assert_eq!((e.number, e.message.as_str()), (number, message));
            }
            (got, want) => panic!("{sql:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn overlong_identifier_is_rejected() {
        let sql = format!("SELECT * FROM [{}]", "x".repeat(200));
        assert_eq!(parse_batch(&sql).unwrap_err().number, 103);
    }
}
