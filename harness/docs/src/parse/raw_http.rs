//! Raw HTTP request examples: `GET <url> HTTP/1.1`, header lines, blank line, body.

use super::{HttpRequest, ParseError, RequestTool};

pub const METHODS: &[&str] = &["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Is this line an HTTP request line (`METHOD target [HTTP/x.y]`)?
pub fn is_request_line(line: &str) -> bool {
    let protected = crate::placeholder::protect(line);
    let mut it = protected.split_whitespace();
    let (Some(m), Some(target)) = (it.next(), it.next()) else {
        return false;
    };
    let version = it.next();
    METHODS.contains(&m)
        && (target.starts_with('/') || target.starts_with("http"))
        && version.is_none_or(|v| v.starts_with("HTTP/"))
        && it.next().is_none()
}

/// A request printed on one line, `GET 'https://...' HTTP/1.1 Metadata: true`: the request
/// line (target unquoted) and the header after the version as lines of their own. Other lines
/// come back unchanged.
pub fn split_inline(line: &str) -> Vec<String> {
    let t = line.trim();
    let Some(v) = t.find(" HTTP/1.") else {
        return vec![line.to_string()];
    };
    let version_end = (v + " HTTP/1.x".len()).min(t.len());
    if !t.is_char_boundary(version_end) {
        return vec![line.to_string()];
    }
    let (request, rest) = t.split_at(version_end);
    let mut parts = request.splitn(2, ' ');
    let method = parts.next().unwrap_or_default();
    let target_and_version = parts.next().unwrap_or_default();
    let Some((target, version)) = target_and_version.rsplit_once(' ') else {
        return vec![line.to_string()];
    };
    let target = target.trim().trim_matches(|c| c == '\'' || c == '"');
    let mut out = vec![format!("{method} {target} {version}")];
    let rest = rest.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Parse a raw HTTP request. `lines` are the block lines (already re-joined where wrapped).
pub fn parse(lines: &[String]) -> Result<HttpRequest, ParseError> {
    let mut inline = false;
    let lines: Vec<String> = match lines.iter().position(|l| !l.trim().is_empty()) {
        Some(i) => {
            let split = split_inline(&lines[i]);
            inline = split.len() > 1 || split[0] != lines[i].trim();
            lines[..i]
                .iter()
                .cloned()
                .chain(split)
                .chain(lines[i + 1..].iter().cloned())
                .collect()
        }
        None => lines.to_vec(),
    };
    let mut iter = lines
        .iter()
        .map(|l| l.trim())
        .skip_while(|l| l.is_empty())
        .peekable();
    let mut first = iter
        .next()
        .ok_or_else(|| ParseError::RequestLine(String::new()))?
        .to_string();
    // The export wraps long request lines: join until the `HTTP/x` version or a header line.
    while !first.contains(" HTTP/") {
        let Some(next) = iter.peek() else { break };
        let looks_header = next
            .split_once(':')
            .is_some_and(|(k, _)| !k.is_empty() && !k.contains(' ') && !k.contains('/'));
        if next.is_empty() || looks_header {
            break;
        }
        if crate::wrap::ends_in_open_placeholder(&first) || next.starts_with("HTTP/") {
            first.push(' ');
        }
        first.push_str(next);
        iter.next();
    }
    let first = first.as_str();
    if !is_request_line(first) {
        return Err(ParseError::RequestLine(first.to_string()));
    }
    let protected = crate::placeholder::protect(first);
    let mut parts = protected.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = crate::placeholder::unprotect(parts.next().unwrap_or_default());
    let mut headers = Vec::new();
    let mut issues = Vec::new();
    if inline {
        issues.push(
            "note: the request is printed on one line with a quoted URL; raw HTTP puts each header on its own line and does not quote the target (sent as the reader would)".to_string(),
        );
    }
    let mut body_lines = Vec::new();
    let mut in_body = false;
    for l in iter {
        if in_body {
            body_lines.push(l);
        } else if l.is_empty() {
            in_body = true;
        } else if let Some((k, v)) = l.split_once(':') {
            if k.contains(' ') {
                issues.push(format!("header line `{l}` has a space in its name"));
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        } else {
            issues.push(format!("header line `{l}` has no `:`"));
        }
    }
    let url = if target.starts_with('/') {
        if let Some((_, host)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")) {
            format!("http://{host}{target}")
        } else {
            issues.push("relative request target and no Host header".into());
            target
        }
    } else {
        target
    };
    let body = if body_lines.is_empty() {
        None
    } else {
        Some(body_lines.join("\n"))
    };
    Ok(HttpRequest {
        tool: RequestTool::RawHttp,
        method,
        url,
        headers,
        body,
        issues,
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest as table;

    #[table]
    #[case("GET 'http://169.254.169.254/x?a=1' HTTP/1.1 Metadata: true", &["GET http://169.254.169.254/x?a=1 HTTP/1.1", "Metadata: true"])]
    #[case("GET https://h/x HTTP/1.1", &["GET https://h/x HTTP/1.1"])]
    #[case("GET https://h/x", &["GET https://h/x"])]
    #[case("GET x HTTP/1.\u{e9}", &["GET x HTTP/1.\u{e9}"])]
    fn one_line_requests(#[case] line: &str, #[case] want: &[&str]) {
        assert_eq!(split_inline(line), want);
    }

    use super::*;
    use rstest::rstest;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[rstest]
    #[case::imds(
        "GET 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/' HTTP/1.1 Metadata: true",
        Some(("GET", "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/", 1))
    )]
    #[case::abs(
        "GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/ HTTP/1.1\nMetadata: true",
        Some(("GET", "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/", 1))
    )]
    #[case::rel(
        "GET /oauth2/token?resource=x HTTP/1.1\nHost: localhost:50342\nMetadata: true",
        Some(("GET", "http://localhost:50342/oauth2/token?resource=x", 2))
    )]
    #[case::patch("PATCH https://management.azure.com/x?api-version=2018-06-01 HTTP/1.1", Some(("PATCH", "https://management.azure.com/x?api-version=2018-06-01", 0)))]
    #[case::not_http("{\"a\": 1}", None)]
    fn raw(#[case] input: &str, #[case] expected: Option<(&str, &str, usize)>) {
        let r = parse(&lines(input));
        match expected {
            None => assert!(r.is_err()),
            Some((m, u, n)) => {
                let r = r.unwrap();
                assert_eq!(r.method, m);
                assert_eq!(r.url, u);
                assert_eq!(r.headers.len(), n);
            }
        }
    }

    #[test]
    fn body_after_blank_line() {
        let r = parse(&lines(
            "PUT https://h/x HTTP/1.1\nContent-Type: application/json\n\n{\"a\":1}",
        ))
        .unwrap();
        assert_eq!(r.body.as_deref(), Some("{\"a\":1}"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}
