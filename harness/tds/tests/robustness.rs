//! Hostile and broken clients over raw TCP: every case must end in an error
//! token or a clean close within the server's timeouts, never a hang or a
//! panic, and a real tiberius login must still work afterwards.

mod common;

use std::time::Duration;

use common::{DB, admin, authority, config, connect, token};
use mic_tds::{ServerOptions, TdsServer};
use rstest::rstest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

const PRELOGIN: u8 = 0x12;
const LOGIN7: u8 = 0x10;
const SQL_BATCH: u8 = 0x01;
const RPC: u8 = 0x03;
const TM: u8 = 0x0E;

async fn start_strict() -> TdsServer {
    let options = ServerOptions {
        read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
        max_message_bytes: 64 * 1024,
        max_connections: 256,
    };
    TdsServer::start_with(config(), authority(), options)
        .await
        .expect("start")
}

fn packet(ty: u8, eom: bool, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 8).unwrap();
    let mut p = vec![ty, u8::from(eom)];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0, 1, 0]);
    p.extend_from_slice(payload);
    p
}

fn prelogin_payload() -> Vec<u8> {
    // VERSION (6), ENCRYPTION (1) = NOT_SUP, FEDAUTHREQUIRED (1), terminator.
    let mut p = vec![
        0x00, 0x00, 0x10, 0x00, 0x06, //
        0x01, 0x00, 0x16, 0x00, 0x01, //
        0x06, 0x00, 0x17, 0x00, 0x01, //
        0xFF,
    ];
    p.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x02, 0x01]);
    p
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// LOGIN7 per [MS-TDS] 2.2.6.4, optionally with a FEDAUTH (SECURITYTOKEN)
/// feature extension carrying `token`.
fn login7_payload(db: &str, user: &str, token: Option<&str>) -> Vec<u8> {
    let mut p = vec![0u8; 94];
    p[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
    p[8..12].copy_from_slice(&4096u32.to_le_bytes());
    p[24] = 0xE0;
    p[25] = 0x03;
    p[27] = if token.is_some() { 0x10 } else { 0 };
    let put = |p: &mut Vec<u8>, at: usize, s: &str| {
        let off = u16::try_from(p.len()).unwrap();
        let chars = u16::try_from(s.encode_utf16().count()).unwrap();
        p[at..at + 2].copy_from_slice(&off.to_le_bytes());
        p[at + 2..at + 4].copy_from_slice(&chars.to_le_bytes());
        p.extend_from_slice(&utf16(s));
    };
    put(&mut p, 36, "rawhost");
    put(&mut p, 40, user);
    put(&mut p, 48, "raw-test");
    put(&mut p, 68, db);
    if let Some(token) = token {
        let dword_at = p.len();
        p[56..58].copy_from_slice(&u16::try_from(dword_at).unwrap().to_le_bytes());
        p[58..60].copy_from_slice(&4u16.to_le_bytes());
        let feature_at = u32::try_from(dword_at + 4).unwrap();
        p.extend_from_slice(&feature_at.to_le_bytes());
        let t = utf16(token);
        p.push(0x02);
        p.extend_from_slice(&u32::try_from(1 + 4 + t.len()).unwrap().to_le_bytes());
        p.push((0x01 << 1) | 1);
        p.extend_from_slice(&u32::try_from(t.len()).unwrap().to_le_bytes());
        p.extend_from_slice(&t);
        p.push(0xFF);
    }
    let len = u32::try_from(p.len()).unwrap();
    p[0..4].copy_from_slice(&len.to_le_bytes());
    p
}

fn sql_batch_payload(sql: &str) -> Vec<u8> {
    // ALL_HEADERS with one transaction descriptor header.
    let mut p = Vec::new();
    p.extend_from_slice(&22u32.to_le_bytes());
    p.extend_from_slice(&18u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&utf16(sql));
    p
}

/// Sends `bytes`, optionally half-closes, then reads until the server
/// closes. Returns everything received, or panics if the server neither
/// closes nor answers within `limit`.
async fn send_expect_close(server: &TdsServer, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let limit = Duration::from_secs(5);
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    // The server may close before taking everything; that is fine.
    let _ = s.write_all(bytes).await;
    if half_close {
        let _ = s.shutdown().await;
    }
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(read) = timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await
        else {
            panic!("server neither answered nor closed within {limit:?}");
        };
        match read {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one server message (all packets to EOM).
async fn read_message(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut payload = Vec::new();
    loop {
        let mut h = [0u8; 8];
        timeout(Duration::from_secs(5), s.read_exact(&mut h))
            .await
            .expect("no hang")
            .expect("header");
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let mut body = vec![0u8; len - 8];
        timeout(Duration::from_secs(5), s.read_exact(&mut body))
            .await
            .expect("no hang")
            .expect("body");
        payload.extend_from_slice(&body);
        if h[1] & 1 != 0 {
            return (h[0], payload);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An ERROR token for `number` somewhere in `bytes`.
fn has_error(bytes: &[u8], number: u32) -> bool {
    bytes
        .windows(7)
        .any(|w| w[0] == 0xAA && w[3..7] == number.to_le_bytes())
}

async fn assert_healthy(server: &TdsServer) {
    let mut c = connect(server, Some(DB), &token(&admin()))
        .await
        .expect("a real login still works");
    let r = c
        .simple_query("SELECT 1")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(r[0].get::<i32, _>(0), Some(1));
    assert_eq!(server.panicked_connections(), 0);
}

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn with_prelogin(rest: &[u8]) -> Vec<u8> {
    let mut v = packet(PRELOGIN, true, &prelogin_payload());
    v.extend_from_slice(rest);
    v
}

fn oversize_message() -> Vec<u8> {
    let chunk = vec![0u8; 32_000];
    let mut v = Vec::new();
    for _ in 0..3 {
        v.extend_from_slice(&packet(PRELOGIN, false, &chunk));
    }
    v
}

fn login7_bad_db_offset() -> Vec<u8> {
    let mut l = login7_payload(DB, "", Some("x"));
    l[68..70].copy_from_slice(&0x7000u16.to_le_bytes());
    with_prelogin(&packet(LOGIN7, true, &l))
}

fn login7_bad_feature_offset() -> Vec<u8> {
    let mut l = login7_payload(DB, "", Some("x"));
    let dword_at = usize::from(u16::from_le_bytes([l[56], l[57]]));
    l[dword_at..dword_at + 4].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    with_prelogin(&packet(LOGIN7, true, &l))
}

fn login7_extension_offset_outside() -> Vec<u8> {
    let mut l = login7_payload(DB, "", Some("x"));
    l[56..58].copy_from_slice(&0xFFF0u16.to_le_bytes());
    with_prelogin(&packet(LOGIN7, true, &l))
}

fn login7_lying_length() -> Vec<u8> {
    let mut l = login7_payload(DB, "", Some("x"));
    l[0..4].copy_from_slice(&5000u32.to_le_bytes());
    with_prelogin(&packet(LOGIN7, true, &l))
}

fn login7_lying_token_length() -> Vec<u8> {
    let mut l = login7_payload(DB, "", Some("abc"));
    // FEDAUTH token length sits after feature id (1), len (4), options (1).
    let dword_at = usize::from(u16::from_le_bytes([l[56], l[57]]));
    let token_len_at = dword_at + 4 + 1 + 4 + 1;
    l[token_len_at..token_len_at + 4].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
    with_prelogin(&packet(LOGIN7, true, &l))
}

fn login7_truncated() -> Vec<u8> {
    let l = login7_payload(DB, "", Some("x"));
    with_prelogin(&packet(LOGIN7, true, &l[..50]))
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Closed, nothing (or only the PRELOGIN response) sent.
    Close,
    /// An ERROR token with this number, then closed.
    Error(u32),
}

#[rstest]
#[case::truncated_header(vec![0x12, 0x01, 0x00], false, Expect::Close)]
#[case::truncated_header_then_eof(vec![0x12, 0x01, 0x00], true, Expect::Close)]
#[case::length_below_header(vec![0x12, 0x01, 0x00, 0x04, 0, 0, 0, 0], false, Expect::Close)]
#[case::oversize_length(vec![0x12, 0x01, 0xFF, 0xFF, 0, 0, 0, 0, 1, 2, 3], false, Expect::Close)]
#[case::length_longer_than_sent({ let mut p = packet(PRELOGIN, true, &[0u8; 20]); p[3] = 200; p }, false, Expect::Close)]
#[case::premature_eof(packet(PRELOGIN, true, &prelogin_payload())[..12].to_vec(), true, Expect::Close)]
#[case::http_garbage(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false, Expect::Close)]
#[case::random_garbage(pseudo_random(512), false, Expect::Close)]
#[case::oversize_message(oversize_message(), false, Expect::Close)]
#[case::prelogin_offsets_outside(packet(PRELOGIN, true, &[0x00, 0x10, 0x00, 0x00, 0x06, 0xFF]), false, Expect::Close)]
#[case::prelogin_without_terminator(packet(PRELOGIN, true, &[0x01, 0x00, 0x05, 0x00, 0x01]), false, Expect::Close)]
#[case::batch_before_login(packet(SQL_BATCH, true, &sql_batch_payload("SELECT 1")), false, Expect::Close)]
#[case::type_change_mid_message({ let mut v = packet(PRELOGIN, false, &[0u8; 10]); v.extend(packet(LOGIN7, true, &[0u8; 10])); v }, false, Expect::Close)]
#[case::prelogin_then_silence(packet(PRELOGIN, true, &prelogin_payload()), false, Expect::Close)]
#[case::login7_db_offset_outside(login7_bad_db_offset(), false, Expect::Error(4002))]
#[case::login7_feature_offset_outside(login7_bad_feature_offset(), false, Expect::Error(4002))]
#[case::login7_extension_offset_outside(
    login7_extension_offset_outside(),
    false,
    Expect::Error(4002)
)]
#[case::login7_length_field_lies(login7_lying_length(), false, Expect::Error(4002))]
#[case::login7_token_length_lies(login7_lying_token_length(), false, Expect::Error(4002))]
#[case::login7_truncated(login7_truncated(), false, Expect::Error(4002))]
#[case::login7_garbage_token(with_prelogin(&packet(LOGIN7, true, &login7_payload(DB, "", Some("not.a.jwt")))), false, Expect::Error(18456))]
#[case::login7_sql_auth(with_prelogin(&packet(LOGIN7, true, &login7_payload(DB, "sa", None))), false, Expect::Error(18456))]
#[tokio::test]
async fn malformed_input_ends_cleanly(
    #[case] bytes: Vec<u8>,
    #[case] half_close: bool,
    #[case] expect: Expect,
) {
    let server = start_strict().await;
    let got = send_expect_close(&server, &bytes, half_close).await;
    match expect {
        Expect::Close => assert!(!contains(&got, &[0x01, 0x74, 0x00, 0x00, 0x04]), "{got:?}"),
        Expect::Error(n) => assert!(has_error(&got, n), "no error {n} in {got:?}"),
    }
    assert_healthy(&server).await;
}

#[tokio::test]
async fn sql_auth_is_refused_with_the_user_name() {
    let server = start_strict().await;
    let got = send_expect_close(
        &server,
        &with_prelogin(&packet(LOGIN7, true, &login7_payload(DB, "sa", None))),
        false,
    )
    .await;
    assert!(contains(&got, &utf16("Login failed for user 'sa'.")));
}

async fn raw_login(server: &TdsServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(&packet(PRELOGIN, true, &prelogin_payload()))
        .await
        .unwrap();
    let (ty, pre) = read_message(&mut s).await;
    assert_eq!(ty, 0x04);
    // ENCRYPTION option answered with ENCRYPT_NOT_SUP.
    assert!(!pre.is_empty());
    let t = token(&admin());
    s.write_all(&packet(LOGIN7, true, &login7_payload(DB, "", Some(&t))))
        .await
        .unwrap();
    let (_, ack) = read_message(&mut s).await;
    assert!(
        contains(&ack, &[0x01, 0x74, 0x00, 0x00, 0x04]),
        "no LOGINACK"
    );
    assert!(!contains(&ack, &utf16(&t)), "token echoed back");
    s
}

#[rstest]
#[case::all_headers_too_long({ let mut p = sql_batch_payload("SELECT 1"); p[0..4].copy_from_slice(&1000u32.to_le_bytes()); packet(SQL_BATCH, true, &p) })]
#[case::all_headers_too_short({ let mut p = sql_batch_payload("SELECT 1"); p[0..4].copy_from_slice(&2u32.to_le_bytes()); packet(SQL_BATCH, true, &p) })]
#[case::odd_text({ let mut p = sql_batch_payload("SELECT 1"); p.push(0x41); packet(SQL_BATCH, true, &p) })]
#[case::invalid_utf16({ let mut p = sql_batch_payload(""); p.extend_from_slice(&[0x00, 0xD8, 0x41, 0x00]); packet(SQL_BATCH, true, &p) })]
#[case::rpc_garbage(packet(RPC, true, &[22, 0, 0, 0, 1, 2, 3]))]
#[case::rpc_param_runs_off_end({ let mut p = sql_batch_payload(""); p.extend_from_slice(&[0xFF, 0xFF, 10, 0, 0, 0, 0, 0, 0xE7, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]); packet(RPC, true, &p) })]
#[tokio::test]
async fn malformed_requests_after_login_get_4002_and_close(#[case] request: Vec<u8>) {
    let server = start_strict().await;
    let mut s = raw_login(&server).await;
    s.write_all(&request).await.unwrap();
    let mut got = Vec::new();
    let r = timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(r.is_ok(), "server hung");
    assert!(has_error(&got, 4002), "{got:?}");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn unsupported_requests_keep_the_connection() {
    let server = start_strict().await;
    let mut s = raw_login(&server).await;
    s.write_all(&packet(TM, true, &[0u8; 30])).await.unwrap();
    let (_, r) = read_message(&mut s).await;
    assert!(has_error(&r, 40517));
    // Attention is acknowledged with DONE(ATTN).
    s.write_all(&packet(0x06, true, &[])).await.unwrap();
    let (_, r) = read_message(&mut s).await;
    assert_eq!(&r[..3], &[0xFD, 0x20, 0x00]);
    // An unknown stored procedure by name.
    let mut p = sql_batch_payload("");
    p.extend_from_slice(&5u16.to_le_bytes());
    p.extend_from_slice(&utf16("sp_wh"));
    p.extend_from_slice(&0u16.to_le_bytes());
    s.write_all(&packet(RPC, true, &p)).await.unwrap();
    let (_, r) = read_message(&mut s).await;
    assert!(has_error(&r, 2812));
    // And a normal batch still works on the same connection.
    s.write_all(&packet(SQL_BATCH, true, &sql_batch_payload("SELECT 42")))
        .await
        .unwrap();
    let (_, r) = read_message(&mut s).await;
    assert!(contains(&r, &[0xD1, 4, 42, 0, 0, 0]), "{r:?}");
    // Idle connections are closed after the idle timeout.
    let mut rest = Vec::new();
    let closed = timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "idle connection not closed");
}

#[tokio::test]
async fn stalled_clients_do_not_block_real_ones() {
    let server = start_strict().await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        s.write_all(&[0x12, 0x01]).await.unwrap();
        stalled.push(s);
    }
    let started = Instant::now();
    assert_healthy(&server).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(stalled);
}

#[tokio::test]
async fn connection_limit_refuses_extra_clients() {
    let options = ServerOptions {
        max_connections: 2,
        read_timeout: Duration::from_secs(5),
        ..ServerOptions::default()
    };
    let server = TdsServer::start_with(config(), authority(), options)
        .await
        .unwrap();
    let a = TcpStream::connect(server.addr()).await.unwrap();
    let b = TcpStream::connect(server.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = send_expect_close(&server, &packet(PRELOGIN, true, &prelogin_payload()), false).await;
    assert!(got.is_empty());
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_healthy(&server).await;
}
