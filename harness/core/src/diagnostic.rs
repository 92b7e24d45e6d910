//! Diagnostics: a scenario file is wrong (exit code 2, before anything runs).
//!
//! This is one of the two error families (the other is a step failure: the cloud behaved
//! unexpectedly). A diagnostic always points into a file: the long form is rustc-style, with a
//! stable code, `--> path:line:col`, the source line with a caret and `= help:`; the short form
//! is one `path:line:col: error[E0xxx]: message` line for logs and editors. Plain text (no
//! colour) is what tests snapshot, so the exact wording users see is reviewed like code.
//!
//! Every problem in every file is reported in one run (see [`crate::catalog`]), so a docs author
//! fixes a file in one pass instead of one error per run.
//!
//! # Codes
//!
//! Codes are stable: tests, docs and users' searches refer to them. Never reuse a retired code.
//!
//! | Code  | Meaning |
//! |-------|---------|
//! | E0001 | TOML syntax error |
//! | E0002 | empty scenario file |
//! | E0003 | the file could not be read |
//! | E0101 | unknown top-level key |
//! | E0102 | unknown field in a step (including a misspelt phase key such as `fetch`) |
//! | E0103 | unknown key in an `expect` / `denied_without_grant` table |
//! | E0104 | unknown key in `[article]` or `[host]` |
//! | E0110 | unknown step kind (`provision = "vmm"`) |
//! | E0111 | a step has no phase key (`provision`, `grant`, `fetch_token`, `call`) |
//! | E0112 | a step has more than one phase key |
//! | E0120 | a required key or field is missing |
//! | E0121 | a value has the wrong type |
//! | E0122 | a bad `call` value (unknown method, missing URL) |
//! | E0123 | unsupported `format` version |
//! | E0124 | unknown backend in `backends` |
//! | E0125 | unknown host `kind` or `os` |
//! | E0126 | a value of the right type that is not allowed (bad `lines` range, status out of range, unknown JSON type name, malformed id) |
//! | E0130 | unterminated `${` in a string |
//! | E0131 | empty reference `${}` |
//! | E0132 | malformed reference name (bad character, empty segment) |
//! | E0201 | duplicate step id |
//! | E0202 | reference to an unknown step or builtin |
//! | E0203 | reference to a step that runs later (or to the step itself) |
//! | E0204 | a token is used before the fetch_token step that fetches it |
//! | E0205 | unknown output of a step or builtin (`${vm.identiy.principal_id}`) |
//! | E0206 | unknown built-in role name |
//! | E0207 | grant steps but no step with `denied_without_grant` (grant necessity unproven) |
//! | E0208 | duplicate scenario id across files |
//! | E0209 | a step-id field (`token`, `host`) names a step of the wrong kind |
//! | E0210 | a step id shadows a builtin reference root |
//! | E0211 | `denied_without_grant` in a scenario that has no grant step |

use std::fmt::Write as _;
use std::sync::Arc;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Chars, Config};

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
    /// Other places that explain this one (the first definition of a duplicate), possibly in
    /// another file.
    pub secondary: Vec<SecondaryLabel>,
    /// `note:` lines (context such as the list of valid keys).
    pub notes: Vec<String>,
}

/// A secondary label: another place relevant to a diagnostic.
#[derive(Debug, Clone)]
pub struct SecondaryLabel {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub label: String,
}

impl Diagnostic {
    pub fn new(
        code: &'static str,
        message: impl Into<String>,
        file: &Arc<SourceFile>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            file: Arc::clone(file),
            span,
            label: label.into(),
            help: None,
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Add a secondary label in the same file.
    #[must_use]
    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push(SecondaryLabel {
            file: Arc::clone(&self.file),
            span,
            label: label.into(),
        });
        self
    }

    /// Add a secondary label in another file.
    #[must_use]
    pub fn with_secondary_in(
        mut self,
        file: &Arc<SourceFile>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        self.secondary.push(SecondaryLabel {
            file: Arc::clone(file),
            span,
            label: label.into(),
        });
        self
    }

    /// 1-based line and column of the primary span.
    pub fn line_col(&self) -> (usize, usize) {
        self.file.line_col(self.span.start)
    }

    /// One line: `path:line:col: error[E0xxx]: message`.
    pub fn render_short(&self) -> String {
        let (line, col) = self.line_col();
        format!(
            "{}:{line}:{col}: error[{}]: {}",
            self.file.path.display(),
            self.code,
            self.message
        )
    }

    /// rustc-style multi-line form. `color = false` gives plain text (for logs and snapshots).
    pub fn render_long(&self, color: bool) -> String {
        let mut files = SimpleFiles::new();
        let mut ids: Vec<(*const SourceFile, usize)> = Vec::new();
        let mut id_of = |f: &Arc<SourceFile>, files: &mut SimpleFiles<String, String>| {
            let key = Arc::as_ptr(f);
            if let Some((_, id)) = ids.iter().find(|(k, _)| *k == key) {
                return *id;
            }
            let id = files.add(f.path.display().to_string(), f.text.clone());
            ids.push((key, id));
            id
        };
        let main = id_of(&self.file, &mut files);
        let mut labels =
            vec![Label::primary(main, clamp(self.span, &self.file)).with_message(&self.label)];
        for s in &self.secondary {
            let id = id_of(&s.file, &mut files);
            labels.push(Label::secondary(id, clamp(s.span, &s.file)).with_message(&s.label));
        }
        let mut notes: Vec<String> = self.notes.iter().map(|n| format!("note: {n}")).collect();
        if let Some(h) = &self.help {
            notes.push(format!("help: {h}"));
        }
        let diag = CsDiagnostic::error()
            .with_code(self.code)
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(notes);
        let config = Config {
            chars: Chars::ascii(),
            ..Config::default()
        };
        let rendered = if color {
            let mut buffer = term::termcolor::Buffer::ansi();
            let styles = term::Styles::default();
            let mut writer = term::StylesWriter::new(&mut buffer, &styles);
            term::emit_to_write_style(&mut writer, &config, &files, &diag)
                .ok()
                .map(|()| String::from_utf8_lossy(buffer.as_slice()).into_owned())
        } else {
            term::emit_into_string(&config, &files, &diag).ok()
        };
        // Rendering only fails if a span is outside its file, which `clamp` prevents; fall back
        // to the short form rather than lose the diagnostic.
        rendered.unwrap_or_else(|| format!("{}\n", self.render_short()))
    }
}

/// The candidate closest to `word`, if any is close enough to be worth a "did you mean".
///
/// Case-insensitive; a candidate that `word` is a prefix of (`fetch` -> `fetch_token`) counts as
/// close, as does an edit distance of about a third of the word.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let w = word.to_lowercase().replace('-', "_");
    if w.is_empty() {
        return None;
    }
    let mut best: Option<(f64, &'a str)> = None;
    for c in candidates {
        let cl = c.to_lowercase().replace('-', "_");
        let mut score = strsim::normalized_damerau_levenshtein(&w, &cl);
        if cl == w {
            score = 2.0;
        } else if w.len() >= 3 && (cl.starts_with(&w) || w.starts_with(&cl)) {
            score = score.max(0.8);
        }
        if score >= 0.6 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `` `a`, `b` and `c` `` for notes listing valid names.
pub fn list_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    join_names(names, "and")
}

/// `` `a`, `b` or `c` `` for "expected one of".
pub fn list_alternatives<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    join_names(names, "or")
}

fn join_names<'a>(names: impl IntoIterator<Item = &'a str>, conj: &str) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n => format!("{} {conj} {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

/// Keep a span inside the file and on char boundaries, so rendering cannot fail.
fn clamp(span: Span, file: &SourceFile) -> std::ops::Range<usize> {
    let text = &file.text;
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Render every diagnostic (long form), followed by a summary line such as
/// `error: 3 problems in 2 files`. Empty when there is nothing to report.
pub fn render_all(diags: &[Diagnostic], color: bool) -> String {
    if diags.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for d in diags {
        out.push_str(d.render_long(color).trim_end());
        out.push_str("\n\n");
    }
    let mut files: Vec<&std::path::Path> = diags.iter().map(|d| d.file.path.as_path()).collect();
    files.sort();
    files.dedup();
    let n = diags.len();
    let f = files.len();
    let _ = writeln!(
        out,
        "error: {n} problem{} in {f} file{}",
        if n == 1 { "" } else { "s" },
        if f == 1 { "" } else { "s" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::path::PathBuf;

    fn file(text: &str) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: PathBuf::from("scenarios/x.toml"),
            text: text.to_string(),
        })
    }

    #[rstest]
    #[case::start("ab\ncd\n", 0, (1, 1))]
    #[case::mid_first_line("ab\ncd\n", 1, (1, 2))]
    #[case::at_newline("ab\ncd\n", 2, (1, 3))]
    #[case::second_line("ab\ncd\n", 3, (2, 1))]
    #[case::second_line_col2("ab\ncd\n", 4, (2, 2))]
    #[case::end_of_file("ab\ncd\n", 6, (3, 1))]
    #[case::past_end("ab\ncd\n", 99, (3, 1))]
    #[case::empty("", 0, (1, 1))]
    #[case::crlf("a\r\nb", 3, (2, 1))]
    #[case::chars_not_bytes("é=1", 2, (1, 2))]
    #[case::inside_a_char("é", 1, (1, 1))]
    #[case::after_multibyte_line("ü\nx", 3, (2, 1))]
    fn line_col(#[case] text: &str, #[case] offset: usize, #[case] want: (usize, usize)) {
        assert_eq!(file(text).line_col(offset), want);
    }

    #[rstest]
    #[case::typo("nmae", &["name", "note"], Some("name"))]
    #[case::prefix("fetch", &["provision", "grant", "fetch_token", "call"], Some("fetch_token"))]
    #[case::case("READER", &["Reader", "Owner"], Some("Reader"))]
    #[case::dash("app_service", &["vm", "app-service"], Some("app-service"))]
    #[case::nothing_close("zzz", &["name", "note"], None)]
    #[case::empty("", &["name"], None)]
    fn suggests(#[case] word: &str, #[case] cands: &[&str], #[case] want: Option<&str>) {
        assert_eq!(suggest(word, cands.iter().copied()), want);
    }

    #[test]
    fn short_form() {
        let f = file("format = 1\nid = 3\n");
        let d = Diagnostic::new("E0121", "wrong type", &f, Span::new(16, 17), "here");
        assert_eq!(
            d.render_short(),
            "scenarios/x.toml:2:6: error[E0121]: wrong type"
        );
    }

    #[test]
    fn long_form_plain() {
        let f = file("format = 1\nid = 3\n");
        let d = Diagnostic::new(
            "E0121",
            "wrong type",
            &f,
            Span::new(16, 17),
            "expected a string",
        )
        .with_help("quote it");
        let out = d.render_long(false);
        assert!(out.starts_with("error[E0121]: wrong type\n"), "{out}");
        assert!(out.contains("--> scenarios/x.toml:2:6"), "{out}");
        assert!(out.contains("^ expected a string"), "{out}");
        assert!(out.contains("= help: quote it"), "{out}");
        assert!(!out.contains('\u{1b}'), "no escapes in plain text");
        assert!(d.render_long(true).contains('\u{1b}'), "colour when asked");
    }

    #[test]
    fn out_of_range_span_does_not_fail() {
        let f = file("é");
        let d = Diagnostic::new("E0001", "x", &f, Span::new(1, 50), "y");
        assert!(d.render_long(false).contains("error[E0001]"));
    }

    #[test]
    fn summary_counts_files() {
        let a = file("a");
        let b = Arc::new(SourceFile {
            path: PathBuf::from("scenarios/y.toml"),
            text: "b".into(),
        });
        let d1 = Diagnostic::new("E0001", "x", &a, Span::new(0, 1), "");
        let d2 = Diagnostic::new("E0001", "x", &a, Span::new(0, 1), "");
        let d3 = Diagnostic::new("E0001", "x", &b, Span::new(0, 1), "");
        assert!(
            render_all(&[d1.clone(), d2, d3], false).ends_with("error: 3 problems in 2 files\n")
        );
        assert!(render_all(&[d1], false).ends_with("error: 1 problem in 1 file\n"));
        assert_eq!(render_all(&[], false), "");
    }
}
