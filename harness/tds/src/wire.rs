//! TDS packet framing and the parsers for client messages (PRELOGIN,
//! LOGIN7 with its FEDAUTH feature extension, SQLBatch, RPC).
//!
//! Every byte here comes from an untrusted peer, so all parsing goes through
//! [`Reader`], a bounds-checked cursor whose every read returns a
//! [`Malformed`] error instead of panicking, and every socket read runs under
//! a timeout with the message size bounded up front.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

/// Packet types ([MS-TDS] 2.2.3.1.1).
pub(crate) mod packet {
    pub const SQL_BATCH: u8 = 0x01;
    pub const RPC: u8 = 0x03;
    pub const TABULAR_RESULT: u8 = 0x04;
    pub const ATTENTION: u8 = 0x06;
    pub const TRANSACTION_MANAGER: u8 = 0x0E;
    pub const LOGIN7: u8 = 0x10;
    pub const PRELOGIN: u8 = 0x12;
}

const HEADER_LEN: usize = 8;
const STATUS_EOM: u8 = 0x01;
/// Largest packet the protocol allows (negotiable packet size is at most
/// 32767; accept one byte of slack for clients that round up).
const MAX_PACKET: usize = 32_768;

/// Something in the client's bytes that cannot be right.
#[derive(Debug, thiserror::Error)]
#[error("malformed TDS data: {0}")]
pub(crate) struct Malformed(pub &'static str);

/// Why a connection stops.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out waiting for the client")]
    Timeout,
    #[error("client closed the connection")]
    Eof,
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

/// A reassembled client message.
pub(crate) struct Message {
    pub ty: u8,
    pub payload: Vec<u8>,
}

async fn read_exact_timed<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    limit: Duration,
) -> Result<(), WireError> {
    match timeout(limit, stream.read_exact(buf)).await {
        Err(_) => Err(WireError::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(WireError::Eof),
        Ok(Err(e)) => Err(WireError::Io(e)),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Reads one message: packets up to and including the end-of-message one.
/// `first_wait` bounds the wait for the first byte (idle time), `read_wait`
/// every later read.
pub(crate) async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    first_wait: Duration,
    read_wait: Duration,
    max_bytes: usize,
) -> Result<Message, WireError> {
    let mut payload = Vec::new();
    let mut ty = None;
    let mut first = true;
    loop {
        let mut header = [0u8; HEADER_LEN];
        if first {
            read_exact_timed(stream, &mut header[..1], first_wait).await?;
            read_exact_timed(stream, &mut header[1..], read_wait).await?;
            first = false;
        } else {
            read_exact_timed(stream, &mut header, read_wait).await?;
        }
        let [packet_ty, status, len_hi, len_lo, ..] = header;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if !matches!(
            packet_ty,
            packet::SQL_BATCH
                | packet::RPC
                | packet::ATTENTION
                | packet::TRANSACTION_MANAGER
                | packet::LOGIN7
                | packet::PRELOGIN
        ) {
            return Err(Malformed("unknown packet type").into());
        }
        if *ty.get_or_insert(packet_ty) != packet_ty {
            return Err(Malformed("packet type changed inside a message").into());
        }
        if !(HEADER_LEN..=MAX_PACKET).contains(&len) {
            return Err(Malformed("packet length out of range").into());
        }
        let body = len - HEADER_LEN;
        if payload.len() + body > max_bytes {
            return Err(Malformed("message too large").into());
        }
        let start = payload.len();
        payload.resize(start + body, 0);
        read_exact_timed(stream, &mut payload[start..], read_wait).await?;
        if status & STATUS_EOM != 0 {
            return Ok(Message {
                ty: packet_ty,
                payload,
            });
        }
    }
}

/// Writes `payload` as a message of packets of at most `packet_size` bytes.
pub(crate) async fn write_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    ty: u8,
    payload: &[u8],
    packet_size: usize,
    spid: u16,
    limit: Duration,
) -> Result<(), WireError> {
    let chunk = packet_size.clamp(512, MAX_PACKET - 1) - HEADER_LEN;
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN * (payload.len() / chunk + 1));
    let mut chunks = payload.chunks(chunk).peekable();
    let mut id: u8 = 1;
    if chunks.peek().is_none() {
        out.extend_from_slice(&[ty, STATUS_EOM, 0, 8]);
        out.extend_from_slice(&spid.to_be_bytes());
        out.extend_from_slice(&[id, 0]);
    }
    while let Some(part) = chunks.next() {
        let status = if chunks.peek().is_none() {
            STATUS_EOM
        } else {
            0
        };
        let len = u16::try_from(part.len() + HEADER_LEN).unwrap_or(u16::MAX);
        out.push(ty);
        out.push(status);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&spid.to_be_bytes());
        out.push(id);
        out.push(0);
        out.extend_from_slice(part);
        id = id.wrapping_add(1);
    }
    match timeout(limit, async {
        stream.write_all(&out).await?;
        stream.flush().await
    })
    .await
    {
        Err(_) => Err(WireError::Timeout),
        Ok(r) => r.map_err(WireError::Io),
    }
}

/// A bounds-checked little cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn at(buf: &'a [u8], pos: usize) -> Result<Self, Malformed> {
        if pos > buf.len() {
            return Err(Malformed("offset past the end"));
        }
        Ok(Self { buf, pos })
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Malformed("field runs past the end"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16_le(&mut self) -> Result<u16, Malformed> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u16_be(&mut self) -> Result<u16, Malformed> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32_le(&mut self) -> Result<u32, Malformed> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64_le(&mut self) -> Result<u64, Malformed> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// `chars` UTF-16LE code units as a string.
    pub fn utf16(&mut self, chars: usize) -> Result<String, Malformed> {
        let bytes = self.bytes(chars.checked_mul(2).ok_or(Malformed("length overflow"))?)?;
        utf16_string(bytes)
    }
}

fn utf16_string(bytes: &[u8]) -> Result<String, Malformed> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Malformed("odd-length UTF-16"));
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| Malformed("invalid UTF-16"))
}

/// What the server needs from the client's PRELOGIN.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientPrelogin {
    pub encryption: Option<u8>,
    pub fed_auth_required: bool,
}

/// Parses PRELOGIN's option table ([MS-TDS] 2.2.6.5).
pub(crate) fn parse_prelogin(payload: &[u8]) -> Result<ClientPrelogin, Malformed> {
    let mut r = Reader::new(payload);
    let mut out = ClientPrelogin::default();
    let mut seen_version = false;
    for _ in 0..32 {
        let token = r.u8()?;
        if token == 0xFF {
            if !seen_version {
                return Err(Malformed("PRELOGIN without VERSION"));
            }
            return Ok(out);
        }
        let offset = usize::from(r.u16_be()?);
        let len = usize::from(r.u16_be()?);
        let data = Reader::at(payload, offset)?.bytes(len)?;
        match token {
            0x00 => {
                if len < 6 {
                    return Err(Malformed("short PRELOGIN VERSION"));
                }
                seen_version = true;
            }
            0x01 => out.encryption = data.first().copied(),
            0x06 => out.fed_auth_required = data.first().is_some_and(|b| *b != 0),
            _ => {}
        }
    }
    Err(Malformed("too many PRELOGIN options"))
}

/// The FEDAUTH feature extension's content. `Debug` never shows the token.
pub(crate) struct FedAuth {
    /// `bFedAuthLibrary`: 0x01 SECURITYTOKEN, 0x02 ADAL (MSAL).
    pub library: u8,
    pub token: String,
}

impl fmt::Debug for FedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FedAuth")
            .field("library", &self.library)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What the server needs from LOGIN7 ([MS-TDS] 2.2.6.4).
#[derive(Debug)]
pub(crate) struct Login7 {
    pub packet_size: u32,
    pub user_name: String,
    pub database: String,
    pub fed_auth: Option<FedAuth>,
}

const FEATURE_FEDAUTH: u8 = 0x02;
const FEATURE_TERMINATOR: u8 = 0xFF;
const FEDAUTH_LIBRARY_SECURITYTOKEN: u8 = 0x01;
/// A JWT from Entra is a few KiB; anything past this is not a token.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
const FIXED_LOGIN7: usize = 94;

/// Reads an (offset, char count) pair and the UTF-16 string it points at.
fn login_string(payload: &[u8], r: &mut Reader<'_>) -> Result<String, Malformed> {
    let offset = usize::from(r.u16_le()?);
    let chars = usize::from(r.u16_le()?);
    if chars == 0 {
        return Ok(String::new());
    }
    if offset < FIXED_LOGIN7 {
        return Err(Malformed("LOGIN7 field points into the fixed header"));
    }
    Reader::at(payload, offset)?.utf16(chars)
}

pub(crate) fn parse_login7(payload: &[u8]) -> Result<Login7, Malformed> {
    let mut r = Reader::new(payload);
    let length = r.u32_le()? as usize;
    if length < FIXED_LOGIN7 || length > payload.len() {
        return Err(Malformed("LOGIN7 length field disagrees with the packet"));
    }
    let payload = &payload[..length];
    let mut r = Reader::at(payload, 4)?;
    let _tds_version = r.u32_le()?;
    let packet_size = r.u32_le()?;
    r.bytes(12)?; // client prog version, pid, connection id
    let _flags1 = r.u8()?;
    let _flags2 = r.u8()?;
    let _type_flags = r.u8()?;
    let flags3 = r.u8()?;
    r.bytes(8)?; // time zone, LCID
    let _host = login_string(payload, &mut r)?;
    let user_name = login_string(payload, &mut r)?;
    r.bytes(4)?; // password: never read
    let _app = login_string(payload, &mut r)?;
    let _server = login_string(payload, &mut r)?;
    let ib_extension = usize::from(r.u16_le()?);
    let cb_extension = usize::from(r.u16_le()?);
    let _client_interface = login_string(payload, &mut r)?;
    let _language = login_string(payload, &mut r)?;
    let database = login_string(payload, &mut r)?;
    if database.chars().count() > 128 {
        return Err(Malformed("database name too long"));
    }
    let fed_auth = if flags3 & 0x10 != 0 && cb_extension >= 4 {
        let feature_offset = Reader::at(payload, ib_extension)?.u32_le()? as usize;
        parse_features(payload, feature_offset)?
    } else {
        None
    };
    Ok(Login7 {
        packet_size,
        user_name,
        database,
        fed_auth,
    })
}

fn parse_features(payload: &[u8], offset: usize) -> Result<Option<FedAuth>, Malformed> {
    let mut r = Reader::at(payload, offset)?;
    let mut fed_auth = None;
    for _ in 0..64 {
        let id = r.u8()?;
        if id == FEATURE_TERMINATOR {
            return Ok(fed_auth);
        }
        let len = r.u32_le()? as usize;
        let data = r.bytes(len)?;
        if id == FEATURE_FEDAUTH {
            let mut d = Reader::new(data);
            let options = d.u8()?;
            let library = options >> 1;
            if library == FEDAUTH_LIBRARY_SECURITYTOKEN {
                let token_len = d.u32_le()? as usize;
                if token_len > MAX_TOKEN_BYTES {
                    return Err(Malformed("FEDAUTH token too large"));
                }
                let token = utf16_string(d.bytes(token_len)?)?;
                fed_auth = Some(FedAuth { library, token });
            } else {
                fed_auth = Some(FedAuth {
                    library,
                    token: String::new(),
                });
            }
        }
    }
    Err(Malformed("too many LOGIN7 features"))
}

/// Skips ALL_HEADERS ([MS-TDS] 2.2.5.3), returning the rest.
fn skip_all_headers(payload: &[u8]) -> Result<Reader<'_>, Malformed> {
    let mut r = Reader::new(payload);
    let total = r.u32_le()? as usize;
    if total < 4 || total > payload.len() {
        return Err(Malformed("ALL_HEADERS length out of range"));
    }
    Reader::at(payload, total)
}

/// The text of a SQLBatch.
pub(crate) fn parse_sql_batch(payload: &[u8]) -> Result<String, Malformed> {
    let mut r = skip_all_headers(payload)?;
    let rest = r.remaining();
    utf16_string(r.bytes(rest)?)
}

/// What an RPC request asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rpc {
    /// `sp_executesql` with a statement and no parameters.
    ExecuteSql(String),
    /// `sp_executesql` with parameters (not supported).
    Parameterized,
    /// Any other procedure, by name or id.
    Other(String),
}

const PROC_ID_EXECUTESQL: u16 = 10;
const TYPE_INTN: u8 = 0x26;
const TYPE_NVARCHAR: u8 = 0xE7;
const TYPE_NTEXT: u8 = 0x63;

pub(crate) fn parse_rpc(payload: &[u8]) -> Result<Rpc, Malformed> {
    let mut r = skip_all_headers(payload)?;
    let name_len = r.u16_le()?;
    let proc_name = if name_len == 0xFFFF {
        let id = r.u16_le()?;
        if id != PROC_ID_EXECUTESQL {
            return Ok(Rpc::Other(format!("procedure id {id}")));
        }
        "sp_executesql".to_owned()
    } else {
        r.utf16(usize::from(name_len))?
    };
    if !proc_name.eq_ignore_ascii_case("sp_executesql") {
        return Ok(Rpc::Other(proc_name));
    }
    let _option_flags = r.u16_le()?;
    let Param::Text(statement) = rpc_param(&mut r)? else {
        return Err(Malformed("sp_executesql statement is not a string"));
    };
    if r.is_empty() {
        return Ok(Rpc::ExecuteSql(statement));
    }
    match rpc_param(&mut r)? {
        // No declaration (tiberius sends an int 0), or an empty one.
        Param::NotText | Param::Null => Ok(Rpc::ExecuteSql(statement)),
        Param::Text(decl) if decl.trim().is_empty() => Ok(Rpc::ExecuteSql(statement)),
        Param::Text(_) => Ok(Rpc::Parameterized),
    }
}

/// An RPC parameter value, as far as the fake cares.
enum Param {
    Text(String),
    Null,
    NotText,
}

/// Reads one RPC parameter.
fn rpc_param(r: &mut Reader<'_>) -> Result<Param, Malformed> {
    let name_chars = usize::from(r.u8()?);
    let _name = r.utf16(name_chars)?;
    let _status = r.u8()?;
    match r.u8()? {
        TYPE_INTN => {
            let _max = r.u8()?;
            let len = usize::from(r.u8()?);
            r.bytes(len)?;
            Ok(Param::NotText)
        }
        TYPE_NVARCHAR => {
            let max = r.u16_le()?;
            r.bytes(5)?; // collation
            if max == 0xFFFF {
                Ok(read_plp(r)?.map_or(Param::Null, Param::Text))
            } else {
                let len = r.u16_le()?;
                if len == 0xFFFF {
                    return Ok(Param::Null);
                }
                Ok(Param::Text(utf16_string(r.bytes(usize::from(len))?)?))
            }
        }
        TYPE_NTEXT => Err(Malformed("ntext parameters are not supported")),
        _ => Err(Malformed("unsupported RPC parameter type")),
    }
}

/// A PLP (partially length-prefixed) UTF-16 value.
fn read_plp(r: &mut Reader<'_>) -> Result<Option<String>, Malformed> {
    const PLP_NULL: u64 = 0xFFFF_FFFF_FFFF_FFFF;
    let total = r.u64_le()?;
    if total == PLP_NULL {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    loop {
        let chunk = r.u32_le()? as usize;
        if chunk == 0 {
            break;
        }
        bytes.extend_from_slice(r.bytes(chunk)?);
    }
    utf16_string(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelogin_requires_version_and_bounds() {
        assert!(parse_prelogin(&[0xFF]).is_err());
        // VERSION pointing past the end.
        assert!(parse_prelogin(&[0x00, 0x00, 0x40, 0x00, 0x06, 0xFF]).is_err());
        let ok = [
            0x00, 0x00, 0x0B, 0x00, 0x06, 0x06, 0x00, 0x11, 0x00, 0x01, 0xFF, 1, 2, 3, 4, 5, 6, 1,
        ];
        let p = parse_prelogin(&ok).unwrap();
        assert!(p.fed_auth_required);
    }

    #[test]
    fn login7_rejects_short_and_lying_lengths() {
        assert!(parse_login7(&[0u8; 10]).is_err());
        let mut p = vec![0u8; 94];
        p[0] = 200; // claims 200 bytes, has 94
        assert!(parse_login7(&p).is_err());
        let mut p = vec![0u8; 94];
        p[0] = 94;
        // database offset/len pointing outside the packet
        p[68] = 90;
        p[69] = 0;
        p[70] = 50;
        assert!(parse_login7(&p).is_err());
    }

    #[test]
    fn fedauth_debug_redacts() {
        let f = FedAuth {
            library: 1,
            token: "secret-token".into(),
        };
        assert!(!format!("{f:?}").contains("secret"));
    }
}
