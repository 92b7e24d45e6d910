//! SQL Server errors as the client sees them.
//!
//! Scenario assertions compare error numbers and messages with what the real
//! Azure SQL service says, so every error the fake can raise is built here,
//! in one place, with the number, severity (class), state and message text of
//! the real one.

/// A SQL Server error, sent to the client as an ERROR token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Msg {number}, Level {class}, State {state}: {message}")]
pub struct SqlError {
    /// Error number (`Msg`).
    pub number: u32,
    /// Error state.
    pub state: u8,
    /// Severity (`Level`).
    pub class: u8,
    /// Message text.
    pub message: String,
}

impl SqlError {
    fn new(number: u32, state: u8, class: u8, message: impl Into<String>) -> Self {
        Self {
            number,
            state,
            class,
            message: message.into(),
        }
    }

    /// 18456: what Azure SQL reports for any failed token login, whatever the
    /// reason; the real reason only goes to the server's own records.
    pub fn login_failed(user: &str) -> Self {
        Self::new(18456, 1, 14, format!("Login failed for user '{user}'."))
    }

    /// 4060: the database named in LOGIN7 does not exist.
    pub fn cannot_open_database(db: &str) -> Self {
        Self::new(
            4060,
            1,
            11,
            format!("Cannot open database \"{db}\" requested by the login. The login failed."),
        )
    }

    /// 4002: the TDS stream could not be parsed.
    pub fn protocol_stream() -> Self {
        Self::new(
            4002,
            1,
            16,
            "The incoming tabular data stream (TDS) protocol stream is incorrect.",
        )
    }

    /// 102: the parser gave up at `near`.
    pub fn syntax(near: &str) -> Self {
        Self::new(102, 1, 15, format!("Incorrect syntax near '{near}'."))
    }

    /// 40517: a statement the fake (like some Azure SQL editions) does not
    /// implement.
    pub fn not_supported(keyword: &str) -> Self {
        Self::new(
            40517,
            1,
            16,
            format!(
                "Keyword or statement option '{keyword}' is not supported in this version of SQL Server."
            ),
        )
    }

    /// 40508: Azure SQL does not switch databases on a connection.
    pub fn use_not_supported() -> Self {
        Self::new(
            40508,
            1,
            16,
            "USE statement is not supported to switch between databases. Use a new connection to connect to a different database.",
        )
    }

    /// 33130: `CREATE USER ... FROM EXTERNAL PROVIDER` found no principal.
    pub fn principal_not_found(name: &str) -> Self {
        Self::new(
            33130,
            1,
            16,
            format!(
                "Principal '{name}' could not be found or this principal type is not supported."
            ),
        )
    }

    /// 33131: the display name is not unique in the directory.
    pub fn principal_duplicate_display_name(name: &str) -> Self {
        Self::new(
            33131,
            1,
            16,
            format!(
                "Principal '{name}' has a duplicate display name. Make the display name unique in Azure Active Directory and execute this statement again."
            ),
        )
    }

    /// 15023: a user of that name already exists.
    pub fn user_exists(name: &str) -> Self {
        Self::new(
            15023,
            1,
            16,
            format!("User, group, or role '{name}' already exists in the current database."),
        )
    }

    /// 15247: only the admin may manage users.
    pub fn no_permission() -> Self {
        Self::new(
            15247,
            1,
            16,
            "User does not have permission to perform this action.",
        )
    }

    /// 15151 for `ALTER ROLE ... ADD MEMBER` naming an unknown principal.
    pub fn cannot_add_principal(name: &str) -> Self {
        Self::new(
            15151,
            1,
            16,
            format!(
                "Cannot add the principal '{name}', because it does not exist or you do not have permission."
            ),
        )
    }

    /// 15151 for `ALTER ROLE ... DROP MEMBER` naming an unknown principal.
    pub fn cannot_drop_principal(name: &str) -> Self {
        Self::new(
            15151,
            1,
            16,
            format!(
                "Cannot drop the principal '{name}', because it does not exist or you do not have permission."
            ),
        )
    }

    /// 15151 for an unknown role, or one the caller may not alter.
    pub fn cannot_alter_role(role: &str) -> Self {
        Self::new(
            15151,
            1,
            16,
            format!(
                "Cannot alter the role '{role}', because it does not exist or you do not have permission."
            ),
        )
    }

    /// 15151 for `DROP USER` naming an unknown user.
    pub fn cannot_drop_user(name: &str) -> Self {
        Self::new(
            15151,
            1,
            16,
            format!(
                "Cannot drop the user '{name}', because it does not exist or you do not have permission."
            ),
        )
    }

    /// 229: object permission denied.
    pub fn permission_denied(permission: &str, object: &str, db: &str) -> Self {
        Self::new(
            229,
            5,
            14,
            format!(
                "The {permission} permission was denied on the object '{object}', database '{db}', schema 'dbo'."
            ),
        )
    }

    /// 262: statement permission denied.
    pub fn statement_permission_denied(statement: &str, db: &str) -> Self {
        Self::new(
            262,
            1,
            14,
            format!("{statement} permission denied in database '{db}'."),
        )
    }

    /// 208: no such table.
    pub fn invalid_object(name: &str) -> Self {
        Self::new(208, 1, 16, format!("Invalid object name '{name}'."))
    }

    /// 207: no such column.
    pub fn invalid_column(name: &str) -> Self {
        Self::new(207, 1, 16, format!("Invalid column name '{name}'."))
    }

    /// 2714: the table already exists.
    pub fn object_exists(name: &str) -> Self {
        Self::new(
            2714,
            6,
            16,
            format!("There is already an object named '{name}' in the database."),
        )
    }

    /// 2705: a column name repeats in `CREATE TABLE`.
    pub fn duplicate_column(name: &str, table: &str) -> Self {
        Self::new(
            2705,
            3,
            16,
            format!(
                "Column names in each table must be unique. Column name '{name}' in table '{table}' is specified more than once."
            ),
        )
    }

    /// 264: a column repeats in an `INSERT` column list.
    pub fn column_listed_twice(name: &str) -> Self {
        Self::new(
            264,
            1,
            16,
            format!(
                "The column name '{name}' is specified more than once in the SET clause or column list of an INSERT. A column cannot be assigned more than one value in the same clause. Modify the clause to make sure that a column is updated only once. If this statement updates or inserts columns into a view, column aliasing can conceal the duplication in your code."
            ),
        )
    }

    /// 109 / 110: the `VALUES` row has a different arity than the column list.
    pub fn insert_arity(too_many_columns: bool) -> Self {
        if too_many_columns {
            Self::new(
                109,
                1,
                15,
                "There are more columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
            )
        } else {
            Self::new(
                110,
                1,
                15,
                "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
            )
        }
    }

    /// 245: a string that is not a number went into an int column.
    pub fn conversion_failed(value: &str, target: &str) -> Self {
        Self::new(
            245,
            1,
            16,
            format!(
                "Conversion failed when converting the varchar value '{value}' to data type {target}."
            ),
        )
    }

    /// 8115: an integer out of range for its column.
    pub fn arithmetic_overflow(target: &str) -> Self {
        Self::new(
            8115,
            2,
            16,
            format!("Arithmetic overflow error converting expression to data type {target}."),
        )
    }

    /// 2628: a string longer than its column.
    pub fn truncated(db: &str, table: &str, column: &str, value: &str) -> Self {
        Self::new(
            2628,
            1,
            16,
            format!(
                "String or binary data would be truncated in table '{db}.dbo.{table}', column '{column}'. Truncated value: '{value}'."
            ),
        )
    }

    /// 515: NULL into a NOT NULL column.
    pub fn null_not_allowed(column: &str, db: &str, table: &str) -> Self {
        Self::new(
            515,
            2,
            16,
            format!(
                "Cannot insert the value NULL into column '{column}', table '{db}.dbo.{table}'; column does not allow nulls. INSERT fails."
            ),
        )
    }

    /// 2627: a duplicate primary key.
    pub fn duplicate_key(table: &str, key: &str) -> Self {
        Self::new(
            2627,
            1,
            14,
            format!(
                "Violation of PRIMARY KEY constraint 'PK_{table}'. Cannot insert duplicate key in object 'dbo.{table}'. The duplicate key value is ({key})."
            ),
        )
    }

    /// 131: a varchar length above 8000 (nvarchar: above 4000).
    pub fn column_size(size: u64, column: &str, max: u16) -> Self {
        Self::new(
            131,
            2,
            15,
            format!(
                "The size ({size}) given to the column '{column}' exceeds the maximum allowed for any data type ({max})."
            ),
        )
    }

    /// 2715: an unknown data type in `CREATE TABLE`.
    pub fn unknown_type(ordinal: usize, ty: &str) -> Self {
        Self::new(
            2715,
            6,
            16,
            format!("Column, parameter, or variable #{ordinal}: Cannot find data type {ty}."),
        )
    }

    /// 2812: an unknown stored procedure.
    pub fn unknown_procedure(name: &str) -> Self {
        Self::new(
            2812,
            62,
            16,
            format!("Could not find stored procedure '{name}'."),
        )
    }

    /// 1105: more rows than the fake keeps per table (a resource guard).
    pub fn table_full(table: &str) -> Self {
        Self::new(
            1105,
            2,
            17,
            format!(
                "Could not allocate space for object 'dbo.{table}' in database because the fake's table row limit was reached."
            ),
        )
    }
}
