//! Parsers for the command lines found in the articles.

pub mod az;
pub mod curl;
pub mod pwsh;
pub mod raw_http;

use serde::Serialize;
use thiserror::Error;

/// The tool an HTTP request example is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestTool {
    Curl,
    InvokeWebRequest,
    InvokeRestMethod,
    RawHttp,
}

/// An HTTP request as the example writes it (placeholders kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRequest {
    pub tool: RequestTool,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Problems in the example's own syntax (it would not run as written).
    pub issues: Vec<String>,
}

impl HttpRequest {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
pub enum ParseError {
    #[error("unbalanced quoting: {0}")]
    Quoting(String),
    #[error("not a {0} command")]
    NotThisTool(&'static str),
    #[error("no URL in the command")]
    NoUrl,
    #[error("malformed request line: {0}")]
    RequestLine(String),
}
