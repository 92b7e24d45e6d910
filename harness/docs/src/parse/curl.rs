//! curl command lines (POSIX shell quoting via `shell-words`).

use super::{HttpRequest, ParseError, RequestTool};

const VALUE_FLAGS: &[&str] = &[
    "-X",
    "--request",
    "-H",
    "--header",
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-ascii",
    "--data-urlencode",
    "-u",
    "--user",
    "-o",
    "--output",
    "--url",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-T",
    "--upload-file",
    "-b",
    "--cookie",
    "-c",
    "--cookie-jar",
    "-w",
    "--write-out",
    "-F",
    "--form",
    "--retry",
    "-x",
    "--proxy",
    "--cacert",
    "--cert",
    "-E",
];

fn is_data_flag(f: &str) -> bool {
    matches!(
        f,
        "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-ascii" | "--data-urlencode"
    )
}

/// Parse a logical line containing a curl invocation.
pub fn parse(line: &str) -> Result<HttpRequest, ParseError> {
    let tokens: Vec<String> = shell_words::split(&crate::placeholder::protect(line))
        .map_err(|e| ParseError::Quoting(e.to_string()))?
        .iter()
        .map(|t| crate::placeholder::unprotect(t))
        .collect();
    let start = tokens
        .iter()
        .position(|t| t == "curl" || t.ends_with("(curl") || t.ends_with("/curl"))
        .ok_or(ParseError::NotThisTool("curl"))?;
    let mut method: Option<String> = None;
    let mut headers = Vec::new();
    let mut data: Vec<String> = Vec::new();
    let mut url: Option<String> = None;
    let mut get = false;
    let mut issues = Vec::new();
    let mut i = start + 1;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        if matches!(t, "|" | ";" | "&&" | "||" | ">" | ")") {
            break;
        }
        // --flag=value
        let (flag, inline): (&str, Option<String>) = if t.starts_with("--") && t.contains('=') {
            let (f, v) = t.split_once('=').unwrap_or((t, ""));
            (f, Some(v.to_string()))
        } else if t.len() > 2
            && t.starts_with('-')
            && !t.starts_with("--")
            && VALUE_FLAGS.contains(&&t[..2])
        {
            (&t[..2], Some(t[2..].to_string()))
        } else {
            (t, None)
        };
        if flag.starts_with('-') && flag.len() > 1 {
            if VALUE_FLAGS.contains(&flag) {
                let value = if let Some(v) = inline {
                    v
                } else {
                    i += 1;
                    if let Some(v) = tokens.get(i) {
                        v.clone()
                    } else {
                        issues.push(format!("`{flag}` has no value"));
                        String::new()
                    }
                };
                match flag {
                    "-X" | "--request" => method = Some(value.to_ascii_uppercase()),
                    "-H" | "--header" => {
                        if let Some((k, v)) = value.split_once(':') {
                            headers.push((k.trim().to_string(), v.trim().to_string()));
                        } else {
                            issues.push(format!("header `{value}` has no `:` separator"));
                            headers.push((value.trim().to_string(), String::new()));
                        }
                    }
                    "--url" => url = Some(value),
                    f if is_data_flag(f) => data.push(value),
                    _ => {}
                }
            } else if flag == "-G" || flag == "--get" {
                get = true;
            }
        } else if url.is_none() {
            url = Some(t.to_string());
        }
        i += 1;
    }
    let mut url = url.ok_or(ParseError::NoUrl)?;
    let body = if data.is_empty() {
        None
    } else {
        Some(data.join("&"))
    };
    let method = method.unwrap_or_else(|| {
        if body.is_some() && !get {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let body = if get {
        if let Some(b) = body {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&b);
        }
        None
    } else {
        body
    };
    Ok(HttpRequest {
        tool: RequestTool::Curl,
        method,
        url,
        headers,
        body,
        issues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::imds(
        "curl 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/' -H Metadata:true",
        "GET", "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
        &[("Metadata", "true")], None
    )]
    #[case::post_data(
        "curl https://management.azure.com/x/listKeys?api-version=2016-12-01 --request POST -d \"\" -H \"Authorization: Bearer <ACCESS TOKEN>\"",
        "POST", "https://management.azure.com/x/listKeys?api-version=2016-12-01",
        &[("Authorization", "Bearer <ACCESS TOKEN>")], Some("")
    )]
    #[case::patch_json(
        "curl 'https://m/vm?api-version=2018-06-01' -X PATCH -d '{\"identity\":{\"type\":\"SystemAssigned\"}}' -H \"Content-Type: application/json\" -H Authorization:\"Bearer <ACCESS TOKEN>\"",
        "PATCH", "https://m/vm?api-version=2018-06-01",
        &[("Content-Type", "application/json"), ("Authorization", "Bearer <ACCESS TOKEN>")],
        Some("{\"identity\":{\"type\":\"SystemAssigned\"}}")
    )]
    #[case::implicit_post("curl https://x/y -d '{\"a\":1}'", "POST", "https://x/y", &[], Some("{\"a\":1}"))]
    #[case::get_flag("curl -G https://x/y -d a=b", "GET", "https://x/y?a=b", &[], None)]
    #[case::joined_flags("curl -XDELETE -HMetadata:true --url=https://x/z -s", "DELETE", "https://x/z", &[("Metadata", "true")], None)]
    #[case::blob(
        "curl https://acct.blob.core.windows.net/c/b -H \"x-ms-version: 2017-11-09\" -H \"Authorization: Bearer <ACCESS TOKEN>\"",
        "GET", "https://acct.blob.core.windows.net/c/b",
        &[("x-ms-version", "2017-11-09"), ("Authorization", "Bearer <ACCESS TOKEN>")], None
    )]
    #[case::in_subshell("token=$(curl -s 'http://h/p' -H Metadata:true | jq -r .access_token)", "GET", "http://h/p", &[("Metadata", "true")], None)]
    fn parses(
        #[case] line: &str,
        #[case] method: &str,
        #[case] url: &str,
        #[case] headers: &[(&str, &str)],
        #[case] body: Option<&str>,
    ) {
        let r = parse(line).unwrap();
        assert_eq!(r.method, method);
        assert_eq!(r.url, url);
        let h: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(h, headers);
        assert_eq!(r.body.as_deref(), body);
    }

    #[rstest]
    #[case("curl 'http://x", "unbalanced")]
    #[case("wget http://x", "not a curl")]
    #[case("curl -H a:b", "no URL")]
    fn errors(#[case] line: &str, #[case] msg: &str) {
        let e = parse(line).unwrap_err().to_string();
        assert!(e.contains(msg), "{e}");
    }
}
