//! Small helpers shared by every server: ids, time formatting, percent-decoding.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::RngCore as _;

/// A fresh random GUID in the lower-case hyphenated form Azure prints.
pub(crate) fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` is a GUID (hyphenated or 32 hex digits), as role-assignment names must be.
pub(crate) fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && (s.len() == 36 || s.len() == 32)
}

/// Random URL-safe base64 text of `bytes` random bytes (for `aio`, `uti`, secrets).
pub(crate) fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Seconds since the Unix epoch of `t` (0 for times before the epoch).
pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 / ISO 8601 with 7 fractional digits as ARM prints (`2024-01-01T00:00:00.0000000Z`).
pub(crate) fn iso(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.nanosecond() / 100
    )
}

/// `2024-01-01 00:00:00Z` as Entra prints `timestamp`.
pub(crate) fn entra_timestamp(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The .NET `M/d/yyyy h:mm:ss tt` form ARM uses in `ExpiredAuthenticationToken` messages.
pub(crate) fn dotnet_utc(unix_secs: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (h12, ampm) = match dt.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {}:{:02}:{:02} {}",
        u8::from(dt.month()),
        dt.day(),
        dt.year(),
        h12,
        dt.minute(),
        dt.second(),
        ampm
    )
}

/// Percent-decode (also `+` as space when `form` is set), lossy on invalid UTF-8.
pub(crate) fn decode(s: &str, form: bool) -> String {
    let s = if form {
        s.replace('+', " ")
    } else {
        s.to_owned()
    };
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parse a query string or form body into decoded pairs (never fails).
pub(crate) fn parse_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// First value of `key` (case-insensitive key match, as Azure services treat query names).
pub(crate) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Fully decode a value that may have been encoded once, twice or half-encoded
/// (`https%3A%2F%2Fmanagement.azure.com/`). Decoding is repeated while it changes
/// something and the result still contains `%XX` sequences.
pub(crate) fn fully_decode(v: &str) -> String {
    let mut cur = v.to_owned();
    for _ in 0..3 {
        if !cur.contains('%') {
            break;
        }
        let next = decode(&cur, false);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// Ceil of a duration in whole seconds.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Remove dashes from a GUID (the form `PrincipalNotFound` prints).
pub(crate) fn undash(s: &str) -> String {
    s.replace('-', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_format() {
        assert_eq!(dotnet_utc(0), "1/1/1970 12:00:00 AM");
        assert_eq!(dotnet_utc(13 * 3600 + 5), "1/1/1970 1:00:05 PM");
    }

    #[test]
    fn decode_forms() {
        assert_eq!(
            fully_decode("https%3A%2F%2Fmanagement.azure.com/"),
            "https://management.azure.com/"
        );
        assert_eq!(
            fully_decode("https://management.azure.com/"),
            "https://management.azure.com/"
        );
        assert!(is_guid("8e3af657-a8ff-443c-a75c-2fe8c4bcb635"));
        assert!(!is_guid("not-a-guid"));
    }
}
