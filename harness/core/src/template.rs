//! `${...}` templates: parsing only (rendering belongs to the driver, which has the bindings).
//!
//! Every string value in a step may refer to an earlier step's outputs or to a builtin:
//! `"Bearer ${token.access_token}"`. Parsing happens once, at load time, so that a typo in a
//! reference is a diagnostic with a caret under the exact text instead of a run-time failure
//! halfway through a scenario against live Azure.
//!
//! Grammar:
//!
//! - `${root.seg.seg}`: a reference. `root` and every segment are non-empty runs of
//!   `[A-Za-z0-9_-]`, separated by `.`.
//! - `$${`: a literal `${` (the escape for text that must contain `${`).
//! - any other `$` is literal.
//!
//! [`parse`] reports *every* problem in the string, not only the first, and gives spans relative
//! to the string; the parser maps them to file offsets (see [`OffsetMap`]).

use crate::model::{Reference, Span, Template, TemplatePart};

/// What is wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// `${` without a closing `}`.
    Unterminated,
    /// `${}`.
    Empty,
    /// An empty segment: `${a..b}`, `${.a}`, `${a.}`.
    EmptySegment,
    /// A character outside `[A-Za-z0-9_-]` in a name.
    BadChar(char),
}

/// A problem in a template, with its span relative to the template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    pub span: Span,
}

impl TemplateError {
    /// The stable diagnostic code for this error (see [`crate::diagnostic`]).
    pub fn code(&self) -> &'static str {
        match self.kind {
            TemplateErrorKind::Unterminated => "E0130",
            TemplateErrorKind::Empty => "E0131",
            TemplateErrorKind::EmptySegment | TemplateErrorKind::BadChar(_) => "E0132",
        }
    }

    /// Headline for the diagnostic.
    pub fn message(&self) -> String {
        match &self.kind {
            TemplateErrorKind::Unterminated => {
                "unterminated reference: `${` has no closing `}`".into()
            }
            TemplateErrorKind::Empty => "empty reference `${}`".into(),
            TemplateErrorKind::EmptySegment => "empty name in reference".into(),
            TemplateErrorKind::BadChar(c) => {
                format!("invalid character {} in reference", describe_char(*c))
            }
        }
    }

    /// Label under the caret.
    pub fn label(&self) -> String {
        match &self.kind {
            TemplateErrorKind::Unterminated => "this `${` is never closed".into(),
            TemplateErrorKind::Empty => "nothing between the braces".into(),
            TemplateErrorKind::EmptySegment => "a name is missing around this `.`".into(),
            TemplateErrorKind::BadChar(_) => "not allowed in a reference name".into(),
        }
    }

    /// A suggestion.
    pub fn help(&self) -> String {
        match &self.kind {
            TemplateErrorKind::Unterminated => {
                "close the reference with `}`, e.g. `${rg.name}`; write `$${` for a literal `${`"
                    .into()
            }
            TemplateErrorKind::Empty => {
                "name a step output or a builtin, e.g. `${rg.name}` or `${subscription_id}`".into()
            }
            TemplateErrorKind::EmptySegment | TemplateErrorKind::BadChar(_) => {
                "reference names are letters, digits, `_` and `-`, joined by `.`, e.g. `${vm.identity.principal_id}`"
                    .into()
            }
        }
    }
}

fn describe_char(c: char) -> String {
    if c.is_whitespace() || c.is_control() {
        format!("`{}`", c.escape_default())
    } else {
        format!("`{c}`")
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Parse a template. Reference spans are relative to `raw` (byte offsets of the text inside
/// `${...}`).
///
/// # Errors
///
/// Every malformed reference in the string, in order.
pub fn parse(raw: &str) -> Result<Template, Vec<TemplateError>> {
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        if rest.starts_with("$${") {
            literal.push_str("${");
            i += 3;
        } else if rest.starts_with("${") {
            let inner_start = i + 2;
            let Some(close) = raw[inner_start..].find('}') else {
                errors.push(TemplateError {
                    kind: TemplateErrorKind::Unterminated,
                    span: Span::new(i, raw.len()),
                });
                break;
            };
            let inner_end = inner_start + close;
            match parse_reference(raw, inner_start, inner_end) {
                Ok(r) => {
                    if !literal.is_empty() {
                        parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(TemplatePart::Ref(r));
                }
                Err(mut e) => errors.append(&mut e),
            }
            i = inner_end + 1;
        } else {
            // Safe: `i` is always on a char boundary (we only advance by whole chars or ASCII).
            let c = rest.chars().next().unwrap_or('\0');
            literal.push(c);
            i += c.len_utf8();
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    if errors.is_empty() {
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    } else {
        Err(errors)
    }
}

fn parse_reference(raw: &str, start: usize, end: usize) -> Result<Reference, Vec<TemplateError>> {
    let inner = &raw[start..end];
    if inner.is_empty() {
        // Point at `${}` itself.
        return Err(vec![TemplateError {
            kind: TemplateErrorKind::Empty,
            span: Span::new(start - 2, end + 1),
        }]);
    }
    let mut errors = Vec::new();
    let mut segments = Vec::new();
    let mut seg_start = start;
    for piece in inner.split('.') {
        let seg_end = seg_start + piece.len();
        if piece.is_empty() {
            // Point at the dot next to the missing name.
            let dot = if seg_start < end {
                seg_start
            } else {
                seg_start.saturating_sub(1)
            };
            errors.push(TemplateError {
                kind: TemplateErrorKind::EmptySegment,
                span: Span::new(dot, (dot + 1).min(end)),
            });
        } else if let Some((off, c)) = piece.char_indices().find(|(_, c)| !is_name_char(*c)) {
            let at = seg_start + off;
            errors.push(TemplateError {
                kind: TemplateErrorKind::BadChar(c),
                span: Span::new(at, at + c.len_utf8()),
            });
        }
        segments.push(piece.to_string());
        seg_start = seg_end + 1;
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut segments = segments.into_iter();
    let root = segments.next().unwrap_or_default();
    Ok(Reference {
        root,
        path: segments.collect(),
        span: Span::new(start, end),
    })
}

/// Maps byte offsets in a decoded TOML string to byte offsets in the file.
///
/// TOML basic strings may contain escapes (`\"`, `\u00e9`, a line-ending backslash), so the
/// decoded text and the source text differ; a reference after an escape must still point at
/// the right column.
#[derive(Debug, Clone)]
pub struct OffsetMap {
    /// Source offset of each decoded byte offset (`decoded.len() + 1` entries), or empty when
    /// decoded text equals the source text.
    map: Vec<usize>,
    base: usize,
}

impl OffsetMap {
    /// `source` is the file text of the string's content (between the quotes), starting at
    /// file offset `base`; `decoded` is the string's value.
    pub fn new(source: &str, decoded: &str, base: usize) -> Self {
        if source == decoded {
            return Self {
                map: Vec::new(),
                base,
            };
        }
        let mut map = Vec::with_capacity(decoded.len() + 1);
        let bytes = source.as_bytes();
        let mut r = 0;
        let mut decoded_chars = decoded.chars();
        while r < bytes.len() {
            let raw_len = if bytes[r] == b'\\' {
                match bytes.get(r + 1) {
                    Some(b'u') => 6,
                    Some(b'U') => 10,
                    Some(b'x') => 4,
                    Some(b' ' | b'\t' | b'\n' | b'\r') => {
                        // Line-ending backslash: skip all following whitespace, produce nothing.
                        let mut k = r + 1;
                        while k < bytes.len() && matches!(bytes[k], b' ' | b'\t' | b'\n' | b'\r') {
                            k += 1;
                        }
                        r = k;
                        continue;
                    }
                    _ => 2,
                }
            } else {
                source[r..].chars().next().map_or(1, char::len_utf8)
            };
            if let Some(c) = decoded_chars.next() {
                map.extend(std::iter::repeat_n(base + r, c.len_utf8()));
            }
            r = (r + raw_len).min(bytes.len());
        }
        map.push(base + source.len());
        Self { map, base }
    }

    /// The file offset of decoded offset `at`.
    pub fn get(&self, at: usize) -> usize {
        if self.map.is_empty() {
            self.base + at
        } else {
            self.map
                .get(at)
                .or_else(|| self.map.last())
                .copied()
                .unwrap_or(self.base)
        }
    }

    /// The map for the part of the string starting at decoded offset `from` (e.g. the URL
    /// after `GET ` in a `call` value).
    #[must_use]
    pub fn sub(&self, from: usize) -> Self {
        if self.map.is_empty() {
            Self {
                map: Vec::new(),
                base: self.base + from,
            }
        } else {
            let from = from.min(self.map.len().saturating_sub(1));
            Self {
                map: self.map[from..].to_vec(),
                base: self.get(from),
            }
        }
    }

    pub fn span(&self, span: Span) -> Span {
        Span::new(self.get(span.start), self.get(span.end))
    }
}

/// Parse a template whose text sits in the file at `map`; reference and error spans are file
/// offsets.
///
/// # Errors
///
/// Every malformed reference, with file spans.
pub fn parse_mapped(raw: &str, map: &OffsetMap) -> Result<Template, Vec<TemplateError>> {
    match parse(raw) {
        Ok(mut t) => {
            for part in &mut t.parts {
                if let TemplatePart::Ref(r) = part {
                    r.span = map.span(r.span);
                }
            }
            Ok(t)
        }
        Err(errors) => Err(errors
            .into_iter()
            .map(|e| TemplateError {
                span: map.span(e.span),
                kind: e.kind,
            })
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn refs(t: &Template) -> Vec<(String, Span)> {
        t.references().map(|r| (r.dotted(), r.span)).collect()
    }

    #[rstest]
    #[case::plain("abc", &[], "abc")]
    #[case::one_ref("${rg.name}", &[("rg.name", 2, 9)], "")]
    #[case::ref_in_text("DevTest-${run_id}", &[("run_id", 10, 16)], "DevTest-")]
    #[case::two_refs("${a}/${b.c.d}", &[("a", 2, 3), ("b.c.d", 7, 12)], "/")]
    #[case::escaped("cost $${x}", &[], "cost ${x}")]
    #[case::lone_dollar("$5 and $", &[], "$5 and $")]
    #[case::dash_underscore("${read-rg.body.value_1}", &[("read-rg.body.value_1", 2, 22)], "")]
    #[case::unicode_before("é${a}", &[("a", 4, 5)], "é")]
    fn parses(#[case] raw: &str, #[case] want: &[(&str, usize, usize)], #[case] literal: &str) {
        let t = parse(raw).expect("valid template");
        let got = refs(&t);
        let want: Vec<(String, Span)> = want
            .iter()
            .map(|(d, s, e)| ((*d).to_string(), Span::new(*s, *e)))
            .collect();
        assert_eq!(got, want);
        let lit: String = t
            .parts
            .iter()
            .filter_map(|p| match p {
                TemplatePart::Literal(l) => Some(l.as_str()),
                TemplatePart::Ref(_) => None,
            })
            .collect();
        assert_eq!(lit, literal);
        assert_eq!(t.raw, raw);
    }

    #[rstest]
    #[case::unterminated("a ${rg.name", &[(TemplateErrorKind::Unterminated, 2, 11)])]
    #[case::empty("${}", &[(TemplateErrorKind::Empty, 0, 3)])]
    #[case::space("${rg name}", &[(TemplateErrorKind::BadChar(' '), 4, 5)])]
    #[case::slash("${rg/name}", &[(TemplateErrorKind::BadChar('/'), 4, 5)])]
    #[case::double_dot("${a..b}", &[(TemplateErrorKind::EmptySegment, 4, 5)])]
    #[case::leading_dot("${.a}", &[(TemplateErrorKind::EmptySegment, 2, 3)])]
    #[case::trailing_dot("${a.}", &[(TemplateErrorKind::EmptySegment, 3, 4)])]
    #[case::all_reported("${a b} ${} ${c", &[
        (TemplateErrorKind::BadChar(' '), 3, 4),
        (TemplateErrorKind::Empty, 7, 10),
        (TemplateErrorKind::Unterminated, 11, 14),
    ])]
    fn rejects(#[case] raw: &str, #[case] want: &[(TemplateErrorKind, usize, usize)]) {
        let errs = parse(raw).expect_err("invalid template");
        let got: Vec<(TemplateErrorKind, usize, usize)> = errs
            .into_iter()
            .map(|e| (e.kind, e.span.start, e.span.end))
            .collect();
        assert_eq!(got, want);
    }

    #[rstest]
    #[case::identity("a${b}", "a${b}", 3, 10)]
    #[case::after_quote_escape(r#"\"${b}"#, "\"${b}", 4, 10)]
    #[case::after_unicode_escape(r"\u00e9${b}", "é${b}", 8, 10)]
    #[case::after_line_continuation("a\\\n   ${b}", "a${b}", 8, 10)]
    fn maps_offsets(
        #[case] source: &str,
        #[case] decoded: &str,
        #[case] want_start: usize,
        #[case] base: usize,
    ) {
        let map = OffsetMap::new(source, decoded, base);
        let t = parse_mapped(decoded, &map).expect("valid");
        let r = t.references().next().expect("one ref");
        assert_eq!(r.span.start, base + want_start);
        assert_eq!(&source[r.span.start - base..r.span.end - base], "b");
    }
}
