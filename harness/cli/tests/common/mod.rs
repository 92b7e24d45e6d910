//! Helpers shared by the CLI tests that read `mic docs check --format json` reports.
#![allow(dead_code)]

use serde_json::Value;

/// The block whose lines contain `line`.
pub fn block_at(report: &Value, line: u64) -> &Value {
    report["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["start_line"].as_u64().unwrap() <= line && line <= b["end_line"].as_u64().unwrap()
        })
        .unwrap_or_else(|| panic!("no block at L{line}"))
}

pub fn status(b: &Value) -> &str {
    b["status"].as_str().unwrap()
}

pub fn reason(b: &Value) -> &str {
    b["reason"].as_str().unwrap()
}
