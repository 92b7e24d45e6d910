//! Encoders for the server-to-client TDS tokens ([MS-TDS] 2.2.7) the fake
//! sends, and the PRELOGIN response.
//!
//! Everything is written into a plain `Vec<u8>` that the framing layer then
//! splits into packets; lengths that the protocol caps (B_VARCHAR at 255
//! characters, token lengths at 65535 bytes) are enforced here by truncating
//! text rather than by trusting callers.

use crate::catalog::{ColumnType, Value};
use crate::engine::OutColumn;
use crate::error::SqlError;

pub(crate) const TOKEN_RETURNSTATUS: u8 = 0x79;
pub(crate) const TOKEN_COLMETADATA: u8 = 0x81;
pub(crate) const TOKEN_ERROR: u8 = 0xAA;
pub(crate) const TOKEN_INFO: u8 = 0xAB;
pub(crate) const TOKEN_LOGINACK: u8 = 0xAD;
pub(crate) const TOKEN_FEATUREEXTACK: u8 = 0xAE;
pub(crate) const TOKEN_ROW: u8 = 0xD1;
pub(crate) const TOKEN_ENVCHANGE: u8 = 0xE3;
pub(crate) const TOKEN_DONE: u8 = 0xFD;
pub(crate) const TOKEN_DONEPROC: u8 = 0xFE;
pub(crate) const TOKEN_DONEINPROC: u8 = 0xFF;

/// DONE status bits.
pub(crate) mod done {
    pub const FINAL: u16 = 0x0000;
    pub const MORE: u16 = 0x0001;
    pub const ERROR: u16 = 0x0002;
    pub const COUNT: u16 = 0x0010;
    pub const ATTN: u16 = 0x0020;
}

/// TDS 7.4, the version tiberius and current drivers ask for.
pub(crate) const TDS_VERSION_74: [u8; 4] = [0x74, 0x00, 0x00, 0x04];

/// `SQL_Latin1_General_CP1_CI_AS`: LCID 0x0409, case/kana/width-insensitive,
/// sort id 52 (code page 1252). Azure SQL Database's default collation.
pub(crate) const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

/// Server version the fake claims (Azure SQL Database reports 12.0.2000.8).
pub(crate) const SERVER_VERSION: (u8, u8, u16) = (12, 0, 2000);

const TYPE_INTN: u8 = 0x26;
const TYPE_BITN: u8 = 0x68;
const TYPE_BIGVARCHAR: u8 = 0xA7;
const TYPE_NVARCHAR: u8 = 0xE7;

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn put_units(buf: &mut Vec<u8>, units: &[u16]) {
    for u in units {
        buf.extend_from_slice(&u.to_le_bytes());
    }
}

/// B_VARCHAR: one-byte character count, UTF-16LE; truncated to 255 units.
fn put_b_varchar(buf: &mut Vec<u8>, s: &str) {
    let units = utf16(s);
    let units = &units[..units.len().min(255)];
    buf.push(u8::try_from(units.len()).unwrap_or(u8::MAX));
    put_units(buf, units);
}

/// US_VARCHAR: two-byte character count, UTF-16LE; truncated to `max` units.
fn put_us_varchar(buf: &mut Vec<u8>, s: &str, max: usize) {
    let units = utf16(s);
    let units = &units[..units.len().min(max)];
    buf.extend_from_slice(&u16::try_from(units.len()).unwrap_or(u16::MAX).to_le_bytes());
    put_units(buf, units);
}

/// Writes `token`, a u16 length, then `body` (truncated to fit the length).
fn put_with_len(buf: &mut Vec<u8>, token: u8, body: &[u8]) {
    let len = body.len().min(usize::from(u16::MAX));
    buf.push(token);
    buf.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
    buf.extend_from_slice(&body[..len]);
}

fn error_or_info(buf: &mut Vec<u8>, token: u8, e: &SqlError, server: &str) {
    let mut body = Vec::new();
    body.extend_from_slice(&e.number.to_le_bytes());
    body.push(e.state);
    body.push(e.class);
    // Leave room for the other fields inside the 64 KiB token.
    put_us_varchar(&mut body, &e.message, 30_000);
    put_b_varchar(&mut body, server);
    put_b_varchar(&mut body, "");
    body.extend_from_slice(&1u32.to_le_bytes());
    put_with_len(buf, token, &body);
}

/// ERROR token.
pub(crate) fn error(buf: &mut Vec<u8>, e: &SqlError, server: &str) {
    error_or_info(buf, TOKEN_ERROR, e, server);
}

/// INFO token (class 0).
pub(crate) fn info(buf: &mut Vec<u8>, number: u32, state: u8, message: &str, server: &str) {
    let e = SqlError {
        number,
        state,
        class: 0,
        message: message.to_owned(),
    };
    error_or_info(buf, TOKEN_INFO, &e, server);
}

/// ENVCHANGE with B_VARCHAR new/old values (database, language, packet size).
pub(crate) fn envchange_text(buf: &mut Vec<u8>, kind: u8, new: &str, old: &str) {
    let mut body = vec![kind];
    put_b_varchar(&mut body, new);
    put_b_varchar(&mut body, old);
    put_with_len(buf, TOKEN_ENVCHANGE, &body);
}

pub(crate) const ENV_DATABASE: u8 = 1;
pub(crate) const ENV_LANGUAGE: u8 = 2;
pub(crate) const ENV_PACKET_SIZE: u8 = 4;
const ENV_SQL_COLLATION: u8 = 7;

/// ENVCHANGE announcing the database collation.
pub(crate) fn envchange_collation(buf: &mut Vec<u8>) {
    let mut body = vec![ENV_SQL_COLLATION, 5];
    body.extend_from_slice(&COLLATION);
    body.push(0);
    put_with_len(buf, TOKEN_ENVCHANGE, &body);
}

/// LOGINACK.
pub(crate) fn loginack(buf: &mut Vec<u8>) {
    let mut body = vec![1]; // SQL_TSQL
    body.extend_from_slice(&TDS_VERSION_74);
    put_b_varchar(&mut body, "Microsoft SQL Server");
    let (major, minor, build) = SERVER_VERSION;
    body.push(major);
    body.push(minor);
    body.extend_from_slice(&build.to_be_bytes());
    put_with_len(buf, TOKEN_LOGINACK, &body);
}

/// FEATUREEXTACK acknowledging FEDAUTH (no nonce: the library is
/// SECURITYTOKEN and the server sent none).
pub(crate) fn featureextack_fedauth(buf: &mut Vec<u8>) {
    buf.push(TOKEN_FEATUREEXTACK);
    buf.push(0x02);
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.push(0xFF);
}

/// DONE / DONEPROC / DONEINPROC.
pub(crate) fn done_token(buf: &mut Vec<u8>, token: u8, status: u16, cur_cmd: u16, rows: u64) {
    buf.push(token);
    buf.extend_from_slice(&status.to_le_bytes());
    buf.extend_from_slice(&cur_cmd.to_le_bytes());
    buf.extend_from_slice(&rows.to_le_bytes());
}

/// RETURNSTATUS.
pub(crate) fn return_status(buf: &mut Vec<u8>, status: i32) {
    buf.push(TOKEN_RETURNSTATUS);
    buf.extend_from_slice(&status.to_le_bytes());
}

/// COLMETADATA.
pub(crate) fn colmetadata(buf: &mut Vec<u8>, columns: &[OutColumn]) {
    buf.push(TOKEN_COLMETADATA);
    let count = u16::try_from(columns.len()).unwrap_or(u16::MAX - 1);
    buf.extend_from_slice(&count.to_le_bytes());
    for c in columns.iter().take(usize::from(count)) {
        buf.extend_from_slice(&0u32.to_le_bytes()); // UserType
        let flags = u16::from(c.nullable); // fNullable
        buf.extend_from_slice(&flags.to_le_bytes());
        match c.ty {
            ColumnType::Int => buf.extend_from_slice(&[TYPE_INTN, 4]),
            ColumnType::BigInt => buf.extend_from_slice(&[TYPE_INTN, 8]),
            ColumnType::Bit => buf.extend_from_slice(&[TYPE_BITN, 1]),
            ColumnType::NVarChar(n) => {
                buf.push(TYPE_NVARCHAR);
                buf.extend_from_slice(&n.saturating_mul(2).to_le_bytes());
                buf.extend_from_slice(&COLLATION);
            }
            ColumnType::VarChar(n) => {
                buf.push(TYPE_BIGVARCHAR);
                buf.extend_from_slice(&n.to_le_bytes());
                buf.extend_from_slice(&COLLATION);
            }
        }
        put_b_varchar(buf, &c.name);
    }
}

/// ROW.
pub(crate) fn row(buf: &mut Vec<u8>, columns: &[OutColumn], values: &[Value]) {
    buf.push(TOKEN_ROW);
    for (c, v) in columns.iter().zip(values) {
        match (c.ty, v) {
            // NULL; also for a string in an integer column, which only a
            // corrupt catalog could produce: NULL beats a malformed row.
            (
                ColumnType::Int | ColumnType::BigInt | ColumnType::Bit,
                Value::Null | Value::Str(_),
            ) => {
                buf.push(0);
            }
            (ColumnType::Int, Value::Int(i)) => {
                buf.push(4);
                let i = i32::try_from(*i).unwrap_or_default();
                buf.extend_from_slice(&i.to_le_bytes());
            }
            (ColumnType::BigInt, Value::Int(i)) => {
                buf.push(8);
                buf.extend_from_slice(&i.to_le_bytes());
            }
            (ColumnType::Bit, Value::Int(i)) => {
                buf.push(1);
                buf.push(u8::from(*i != 0));
            }
            (ColumnType::NVarChar(_) | ColumnType::VarChar(_), Value::Null) => {
                buf.extend_from_slice(&0xFFFFu16.to_le_bytes());
            }
            (ColumnType::NVarChar(n), Value::Str(s)) => {
                let units = utf16(s);
                let units = &units[..units.len().min(usize::from(n))];
                let bytes = u16::try_from(units.len() * 2).unwrap_or(u16::MAX - 1);
                buf.extend_from_slice(&bytes.to_le_bytes());
                put_units(buf, units);
            }
            (ColumnType::VarChar(n), Value::Str(s)) => {
                let bytes: Vec<u8> = s
                    .chars()
                    .map(|ch| u8::try_from(u32::from(ch)).unwrap_or(b'?'))
                    .take(usize::from(n))
                    .collect();
                let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX - 1);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(&bytes);
            }
            // An integer in a string column (also corrupt): send its text.
            (ColumnType::NVarChar(_) | ColumnType::VarChar(_), Value::Int(i)) => {
                let units = utf16(&i.to_string());
                let bytes = u16::try_from(units.len() * 2).unwrap_or(0);
                buf.extend_from_slice(&bytes.to_le_bytes());
                put_units(buf, &units);
            }
        }
    }
}

const PL_VERSION: u8 = 0x00;
const PL_ENCRYPTION: u8 = 0x01;
const PL_INSTOPT: u8 = 0x02;
const PL_THREADID: u8 = 0x03;
const PL_MARS: u8 = 0x04;
const PL_FEDAUTHREQUIRED: u8 = 0x06;
const PL_TERMINATOR: u8 = 0xFF;

/// `ENCRYPT_NOT_SUP`: the fake never offers TLS on loopback.
pub(crate) const ENCRYPT_NOT_SUP: u8 = 0x02;

/// The server's PRELOGIN response.
pub(crate) fn prelogin_response(fed_auth_required: bool) -> Vec<u8> {
    let (major, minor, build) = SERVER_VERSION;
    let mut version = vec![major, minor];
    version.extend_from_slice(&build.to_be_bytes());
    version.extend_from_slice(&[0, 0]); // sub-build
    let mut options: Vec<(u8, Vec<u8>)> = vec![
        (PL_VERSION, version),
        (PL_ENCRYPTION, vec![ENCRYPT_NOT_SUP]),
        (PL_INSTOPT, vec![0]),
        (PL_THREADID, vec![]),
        (PL_MARS, vec![0]),
    ];
    if fed_auth_required {
        options.push((PL_FEDAUTHREQUIRED, vec![1]));
    }
    let mut out = Vec::new();
    let mut offset = options.len() * 5 + 1;
    for (token, data) in &options {
        out.push(*token);
        out.extend_from_slice(&u16::try_from(offset).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
        offset += data.len();
    }
    out.push(PL_TERMINATOR);
    for (_, data) in options {
        out.extend_from_slice(&data);
    }
    out
}
