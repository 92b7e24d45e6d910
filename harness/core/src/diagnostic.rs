//! Diagnostics: a scenario file is wrong (exit code 2, before anything runs).
//! (Interface fixed here; rendering implemented in this module.)

use std::sync::Arc;

use crate::model::{SourceFile, Span};

/// One problem in one scenario file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable code, e.g. `E0102`.
    pub code: &'static str,
    /// Headline, e.g. "unknown field `nmae` in `provision = \"vm\"`".
    pub message: String,
    pub file: Arc<SourceFile>,
    pub span: Span,
    /// Label under the caret.
    pub label: String,
    /// `help:` line (a suggestion), if any.
    pub help: Option<String>,
}
