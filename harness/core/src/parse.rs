//! Scenario file -> [`Scenario`], reporting every problem in the file at once.
//!
//! The file is read with `toml-span`, which keeps the byte span of every key and value, and the
//! value tree is walked by hand against the table in [`crate::schema`]. serde's
//! `deny_unknown_fields` would stop at the first problem and lose spans in tagged enums
//! (toml-rs/toml#535); walking the tree lets one pass report an unknown field, a wrong type and
//! a missing field in three different steps, each with a caret and a suggestion.
//!
//! The parser is lenient internally ([`parse_lenient`]): it builds as much of the scenario as
//! it can even when parts are wrong, so that [`crate::validate`] can still check references in
//! the good parts. Steps whose kind cannot be determined are left out of the scenario and their
//! ids are returned in [`Parsed::unresolved_steps`] so that references to them are not
//! reported a second time as "unknown step".

use std::path::PathBuf;
use std::sync::Arc;

use toml_span::value::{Key, Table, Value, ValueInner};

use crate::diagnostic::{Diagnostic, list_alternatives, list_names, suggest};
use crate::model::{
    Article, BackendKind, Expect, Field, FieldValue, Fields, Host, HostKind, Os, Phase, Scenario,
    SourceFile, Span, Spanned, Step, StepKind, Template,
};
use crate::schema::{
    self, ARTICLE_FIELDS, EXPECT_FIELDS, FieldSpec, FieldType, HOST_FIELDS, KINDS, METHODS,
    STEP_COMMON, TOP_LEVEL,
};
use crate::template::{self, OffsetMap};

/// JSON type names accepted in `expect.json_types`.
pub const JSON_TYPES: &[&str] = &["string", "number", "boolean", "object", "array", "null"];

const PHASES: [Phase; 4] = [
    Phase::Provision,
    Phase::Grant,
    Phase::FetchToken,
    Phase::Call,
];

/// The result of a lenient parse: the scenario (when the file was TOML with a table at the
/// top), every problem found, and the ids of steps that could not be understood.
#[derive(Debug)]
pub struct Parsed {
    pub file: Arc<SourceFile>,
    pub scenario: Option<Scenario>,
    pub diagnostics: Vec<Diagnostic>,
    /// Ids of steps left out of `scenario` because their kind is unknown or ambiguous, with
    /// their 0-based position in the file.
    pub unresolved_steps: Vec<(usize, String)>,
}

/// Parse one scenario file.
///
/// `path` is the display path used in diagnostics (e.g. `scenarios/arm/x.toml`).
///
/// # Errors
///
/// Every problem in the file (syntax, unknown keys, wrong types, missing fields, malformed
/// references), sorted by position. Semantic checks across steps are in
/// [`crate::validate::validate`].
pub fn parse_str(path: impl Into<PathBuf>, text: String) -> Result<Scenario, Vec<Diagnostic>> {
    let parsed = parse_lenient(path, text);
    match parsed.scenario {
        Some(s) if parsed.diagnostics.is_empty() => Ok(s),
        _ => Err(parsed.diagnostics),
    }
}

/// Parse one scenario file, keeping whatever could be understood (see the module docs).
pub fn parse_lenient(path: impl Into<PathBuf>, text: String) -> Parsed {
    let file = Arc::new(SourceFile {
        path: path.into(),
        text,
    });
    let mut p = Parser {
        file: Arc::clone(&file),
        diags: Vec::new(),
        unresolved: Vec::new(),
    };
    let scenario = p.file_root();
    p.diags.sort_by_key(|d| d.span.start);
    Parsed {
        file,
        scenario,
        diagnostics: p.diags,
        unresolved_steps: p.unresolved,
    }
}

fn sp(s: toml_span::Span) -> Span {
    Span::new(s.start, s.end)
}

/// A table's entries in file order (toml-span keeps them sorted by name).
fn entries<'a, 'de>(t: &'a Table<'de>) -> Vec<(&'a Key<'de>, &'a Value<'de>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span.start);
    v
}

fn found(v: &Value<'_>) -> &'static str {
    match v.as_ref() {
        ValueInner::String(_) => "a string",
        ValueInner::Integer(_) => "an integer",
        ValueInner::Float(_) => "a float",
        ValueInner::Boolean(_) => "a boolean",
        ValueInner::Array(_) => "an array",
        ValueInner::Table(_) => "a table",
    }
}

/// An example value for a field, for "add `x = ...`" help.
fn example(name: &str, ty: FieldType) -> String {
    let v = match name {
        "format" => "1",
        "id" => "\"area/behaviour_outcome\"",
        "resource_group" => "\"${rg.name}\"",
        "principal" => "\"${vm.identity.principal_id}\"",
        "scope" => "\"${rg.id}\"",
        "role" => "\"Reader\"",
        "resource" => "\"https://management.azure.com/\"",
        "file" => "\"004_68e52737ddb40452.txt\"",
        "kind" => "\"vm\"",
        "os" => "\"linux\"",
        "name" | "vm" => "\"myVM\"",
        "vmss" => "\"myVMSS\"",
        _ => match ty {
            FieldType::Str => "\"...\"",
            FieldType::Bool => "true",
            FieldType::Int => "1",
            FieldType::StrList => "[\"...\"]",
            FieldType::StrTable => "{ Name = \"...\" }",
            FieldType::Json => "{ ... }",
        },
    };
    format!("{name} = {v}")
}

struct Parser {
    file: Arc<SourceFile>,
    diags: Vec<Diagnostic>,
    unresolved: Vec<(usize, String)>,
}

impl Parser {
    fn text(&self) -> &str {
        &self.file.text
    }

    fn diag(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(code, message, &self.file, span, label);
        self.diags.push(d);
        self.diags.last_mut().expect("just pushed")
    }

    /// The span of a value including the quotes around a string.
    fn full_span(&self, v: &Value<'_>) -> Span {
        let mut s = sp(v.span);
        if matches!(v.as_ref(), ValueInner::String(_)) {
            let b = self.text().as_bytes();
            let mut n = 0;
            while n < 3 && s.start > 0 && matches!(b.get(s.start - 1), Some(b'"' | b'\'')) {
                s.start -= 1;
                n += 1;
            }
            let mut n = 0;
            while n < 3 && matches!(b.get(s.end), Some(b'"' | b'\'')) {
                s.end += 1;
                n += 1;
            }
        }
        s
    }

    /// `key = value` as one span.
    fn entry_span(&self, k: &Key<'_>, v: &Value<'_>) -> Span {
        let vs = self.full_span(v);
        Span::new(k.span.start, vs.end.max(k.span.end))
    }

    /// The first line of a span (a `[[step]]` header, or the first line of an inline table).
    fn head_span(&self, s: Span) -> Span {
        let text = self.text();
        let start = s.start.min(text.len());
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |n| start + n)
            .min(s.end.max(start + 1))
            .min(text.len());
        Span::new(start, end.max(start))
    }

    fn wrong_type(&mut self, what: &str, ty: FieldType, v: &Value<'_>) {
        let got = found(v);
        let help = match (ty, v.as_ref()) {
            (
                FieldType::Str,
                ValueInner::Integer(_) | ValueInner::Float(_) | ValueInner::Boolean(_),
            ) => {
                let raw = self.text().get(v.span.start..v.span.end).unwrap_or("...");
                Some(format!("quote it: `{what} = \"{raw}\"`"))
            }
            (FieldType::Int, ValueInner::String(s)) if s.trim().parse::<i64>().is_ok() => {
                Some(format!("remove the quotes: `{what} = {}`", s.trim()))
            }
            (FieldType::Bool, ValueInner::String(s)) if matches!(s.as_ref(), "true" | "false") => {
                Some(format!("remove the quotes: `{what} = {s}`"))
            }
            (FieldType::StrList, ValueInner::String(s)) => {
                Some(format!("use an array: `{what} = [\"{s}\"]`"))
            }
            _ => None,
        };
        let span = self.full_span(v);
        let d = self.diag(
            "E0121",
            format!(
                "wrong type for `{what}`: expected {}, found {got}",
                ty.describe()
            ),
            span,
            format!("expected {}", ty.describe()),
        );
        if let Some(h) = help {
            d.help = Some(h);
        }
    }

    /// A plain string (no template parsing).
    fn plain_str(&mut self, what: &str, v: &Value<'_>) -> Option<Spanned<String>> {
        if let ValueInner::String(s) = v.as_ref() {
            Some(Spanned::new(s.to_string(), sp(v.span)))
        } else {
            self.wrong_type(what, FieldType::Str, v);
            None
        }
    }

    fn plain_str_list(&mut self, what: &str, v: &Value<'_>) -> Vec<Spanned<String>> {
        let ValueInner::Array(items) = v.as_ref() else {
            self.wrong_type(what, FieldType::StrList, v);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            if let ValueInner::String(s) = item.as_ref() {
                out.push(Spanned::new(s.to_string(), sp(item.span)));
            } else {
                self.wrong_type(&format!("{what}` item `"), FieldType::Str, item);
            }
        }
        out
    }

    fn bool(&mut self, what: &str, v: &Value<'_>) -> Option<bool> {
        if let ValueInner::Boolean(b) = v.as_ref() {
            Some(*b)
        } else {
            self.wrong_type(what, FieldType::Bool, v);
            None
        }
    }

    /// A string value parsed as a template; on a template error the raw text is kept as a
    /// literal (the error is reported).
    fn template(&mut self, s: &str, v: &Value<'_>) -> Template {
        let map = self.offset_map(s, v);
        self.template_with(s, &map)
    }

    fn offset_map(&self, s: &str, v: &Value<'_>) -> OffsetMap {
        let source = self.text().get(v.span.start..v.span.end).unwrap_or(s);
        OffsetMap::new(source, s, v.span.start)
    }

    fn template_with(&mut self, s: &str, map: &OffsetMap) -> Template {
        match template::parse_mapped(s, map) {
            Ok(t) => t,
            Err(errors) => {
                for e in errors {
                    let d = self.diag(e.code(), e.message(), e.span, e.label());
                    d.help = Some(e.help());
                }
                Template::literal(s)
            }
        }
    }

    /// Any value, converted for a `Json` field (strings become templates).
    fn json_value(&mut self, v: &Value<'_>) -> Spanned<FieldValue> {
        let fv = match v.as_ref() {
            ValueInner::String(s) => FieldValue::Str(self.template(s, v)),
            ValueInner::Integer(i) => FieldValue::Int(*i),
            ValueInner::Float(f) => FieldValue::Float(*f),
            ValueInner::Boolean(b) => FieldValue::Bool(*b),
            ValueInner::Array(items) => {
                FieldValue::List(items.iter().map(|i| self.json_value(i)).collect())
            }
            ValueInner::Table(t) => FieldValue::Table(
                entries(t)
                    .into_iter()
                    .map(|(k, v)| (k.name.to_string(), self.json_value(v)))
                    .collect(),
            ),
        };
        Spanned::new(fv, sp(v.span))
    }

    /// A value checked against a field type.
    fn typed(&mut self, what: &str, ty: FieldType, v: &Value<'_>) -> Option<Spanned<FieldValue>> {
        let fv = match (ty, v.as_ref()) {
            (FieldType::Str, ValueInner::String(s)) => FieldValue::Str(self.template(s, v)),
            (FieldType::Bool, ValueInner::Boolean(b)) => FieldValue::Bool(*b),
            (FieldType::Int, ValueInner::Integer(i)) => FieldValue::Int(*i),
            (FieldType::Json, _) => return Some(self.json_value(v)),
            (FieldType::StrList, ValueInner::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    if let ValueInner::String(s) = item.as_ref() {
                        out.push(Spanned::new(
                            FieldValue::Str(self.template(s, item)),
                            sp(item.span),
                        ));
                    } else {
                        self.wrong_type(&format!("{what}` item `"), FieldType::Str, item);
                    }
                }
                FieldValue::List(out)
            }
            (FieldType::StrTable, ValueInner::Table(t)) => {
                let mut out = std::collections::BTreeMap::new();
                for (k, item) in entries(t) {
                    if let ValueInner::String(s) = item.as_ref() {
                        let t = self.template(s, item);
                        out.insert(
                            k.name.to_string(),
                            Spanned::new(FieldValue::Str(t), sp(item.span)),
                        );
                    } else {
                        self.wrong_type(&format!("{what}.{}", k.name), FieldType::Str, item);
                    }
                }
                FieldValue::Table(out)
            }
            _ => {
                self.wrong_type(what, ty, v);
                return None;
            }
        };
        Some(Spanned::new(fv, sp(v.span)))
    }

    fn lines(&mut self, what: &str, v: &Value<'_>) -> Option<(u32, u32)> {
        let s = self.plain_str(what, v)?;
        let parsed = match s.value.trim().split_once('-') {
            Some((a, b)) => a
                .trim()
                .parse::<u32>()
                .ok()
                .zip(b.trim().parse::<u32>().ok()),
            None => s.value.trim().parse::<u32>().ok().map(|n| (n, n)),
        };
        match parsed {
            Some((a, b)) if a >= 1 && a <= b => Some((a, b)),
            Some((a, b)) if a > b => {
                let span = self.full_span(v);
                self.diag(
                    "E0126",
                    format!("line range `{}` ends before it starts", s.value),
                    span,
                    "start is after end",
                )
                .help = Some(format!("write `{what} = \"{b}-{a}\"`"));
                None
            }
            _ => {
                let span = self.full_span(v);
                self.diag(
                    "E0126",
                    format!("invalid line range `{}`", s.value),
                    span,
                    "not a line number or range",
                )
                .help = Some(format!(
                    "write an inclusive 1-based range such as `{what} = \"438-572\"` or one line, `{what} = \"454\"`"
                ));
                None
            }
        }
    }

    fn unknown_key(
        &mut self,
        code: &'static str,
        where_: &str,
        k: &Key<'_>,
        valid: &[&'static str],
    ) {
        let name = k.name.as_ref();
        let suggestion = suggest(name, valid.iter().copied());
        let message = if where_.is_empty() {
            format!("unknown top-level key `{name}`")
        } else {
            format!("unknown key `{name}` in {where_}")
        };
        let d = self.diag(code, message, sp(k.span), "unknown key");
        match suggestion {
            Some(s) => d.help = Some(format!("did you mean `{s}`?")),
            None => d.notes.push(format!(
                "valid keys are {}",
                list_names(valid.iter().copied())
            )),
        }
    }

    // ---------------------------------------------------------------------------------------
    // top level

    fn file_root(&mut self) -> Option<Scenario> {
        if self.text().trim().is_empty() {
            self.diag("E0002", "scenario file is empty", Span::new(0, 0), "nothing here")
                .help = Some("a scenario starts with `format = 1`, `id`, `title`, `[article]`, `[host]` and one or more `[[step]]` tables; see scenarios/README.md".into());
            return None;
        }
        let text = self.file.text.clone();
        let root = match toml_span::parse(&text) {
            Ok(v) => v,
            Err(e) => {
                self.syntax_error(&e);
                return None;
            }
        };
        let ValueInner::Table(table) = root.as_ref() else {
            return None;
        };
        if table.is_empty() {
            self.diag("E0002", "scenario file has no keys (only comments or whitespace)", self.head_span(Span::new(0, text.len())), "nothing but comments here")
                .help = Some("a scenario starts with `format = 1`, `id`, `title`, `[article]`, `[host]` and one or more `[[step]]` tables; see scenarios/README.md".into());
            return None;
        }
        Some(self.scenario(table))
    }

    fn syntax_error(&mut self, e: &toml_span::Error) {
        use toml_span::ErrorKind as K;
        let mut span = sp(e.span);
        if span.end < span.start {
            span.end = span.start;
        }
        let (label, help): (String, Option<String>) = match &e.kind {
            K::UnquotedString => {
                let word = self
                    .text()
                    .get(span.start..span.end)
                    .unwrap_or("...")
                    .to_string();
                (
                    "string is not quoted".into(),
                    Some(format!("strings must be quoted: `\"{word}\"`")),
                )
            }
            K::UnterminatedString => (
                "this string is never closed".into(),
                Some("add the closing quote".into()),
            ),
            K::DuplicateKey { .. } => (
                "duplicate key".into(),
                Some(
                    "each key may appear only once per table (use a new `[[step]]` for a new step)"
                        .into(),
                ),
            ),
            K::DuplicateTable { .. } => (
                "duplicate table".into(),
                Some("a `[table]` may appear only once; steps use `[[step]]`".into()),
            ),
            K::RedefineAsArray => (
                "redefined as an array".into(),
                Some("use `[[step]]` (double brackets) for every step".into()),
            ),
            K::Wanted { expected, .. } => (format!("expected {expected}"), None),
            K::Unexpected(_) => ("unexpected character".into(), None),
            _ => ("here".into(), None),
        };
        let first = match &e.kind {
            K::DuplicateKey { first, .. } | K::DuplicateTable { first, .. } => Some(sp(*first)),
            _ => None,
        };
        let message = match &e.kind {
            K::UnquotedString => "invalid TOML: a string value without quotes".to_string(),
            _ => format!("invalid TOML: {e}"),
        };
        let mut d = Diagnostic::new("E0001", message, &self.file, span, label).with_help_opt(help);
        if let Some(f) = first {
            d = d.with_secondary(f, "first defined here");
        }
        self.diags.push(d);
    }

    fn scenario(&mut self, table: &Table<'_>) -> Scenario {
        let top_names: Vec<&'static str> = TOP_LEVEL.iter().map(|f| f.name).collect();
        let mut format = None;
        let mut id: Option<Spanned<String>> = None;
        let mut title = None;
        let mut description = None;
        let mut article = None;
        let mut backends = None;
        let mut tags = Vec::new();
        let mut host = None;
        let mut steps = None;
        for (k, v) in entries(table) {
            match k.name.as_ref() {
                "format" => format = self.format(v),
                "id" => id = self.scenario_id(v),
                "title" => title = self.plain_str("title", v).map(|s| s.value),
                "description" => description = self.plain_str("description", v).map(|s| s.value),
                "article" => article = self.article(v),
                "backends" => backends = Some(self.backends(v)),
                "tags" => {
                    tags = self
                        .plain_str_list("tags", v)
                        .into_iter()
                        .map(|s| s.value)
                        .collect();
                }
                "host" => host = self.host(v),
                "step" => steps = self.steps(v),
                other => {
                    let is_step_key = PHASES.iter().any(|p| p.key() == other)
                        || STEP_COMMON.iter().any(|f| f.name == other)
                        || KINDS.iter().any(|k| k.field(other).is_some());
                    if is_step_key && suggest(other, top_names.iter().copied()).is_none() {
                        self.diag(
                            "E0101",
                            format!("unknown top-level key `{other}`"),
                            sp(k.span),
                            "not a top-level key",
                        )
                        .help = Some(format!(
                            "`{other}` belongs in a step: put it after a `[[step]]` line"
                        ));
                    } else {
                        self.unknown_key("E0101", "", k, &top_names);
                    }
                }
            }
        }
        // Missing required keys.
        let head = self.head_span(Span::new(0, self.text().len()));
        let present = |name: &str| table.contains_key(name);
        for f in TOP_LEVEL.iter().filter(|f| f.required && !present(f.name)) {
            let help = match f.name {
                "article" => "add an `[article]` table with `file = \"...\"` (the seed article this scenario encodes)".to_string(),
                "host" => "add a `[host]` table with `kind = \"vm\"`, `os = \"linux\"` and `name = \"myVM\"`".to_string(),
                "step" => "add at least one `[[step]]` table".to_string(),
                _ => format!("add `{}` at the top of the file", example(f.name, f.ty)),
            };
            self.diag(
                "E0120",
                format!("missing required key `{}`", f.name),
                head,
                format!("this scenario has no `{}`", f.name),
            )
            .help = Some(help);
        }
        let file = Arc::clone(&self.file);
        Scenario {
            file,
            format: format.unwrap_or(1),
            id: id.unwrap_or_else(|| Spanned::new(String::new(), head)),
            title: title.unwrap_or_default(),
            description,
            article: article.unwrap_or(Article {
                file: String::new(),
                lines: None,
                sections: Vec::new(),
            }),
            backends: backends.unwrap_or_else(|| BackendKind::ALL.to_vec()),
            tags,
            host: host.unwrap_or(Host {
                kind: HostKind::Vm,
                os: Os::Linux,
                name: String::new(),
                system_assigned: false,
                user_assigned: Vec::new(),
            }),
            steps: steps.unwrap_or_default(),
        }
    }

    fn format(&mut self, v: &Value<'_>) -> Option<u32> {
        let ValueInner::Integer(n) = v.as_ref() else {
            self.wrong_type("format", FieldType::Int, v);
            return None;
        };
        if *n == 1 {
            Some(1)
        } else {
            let span = self.full_span(v);
            self.diag(
                "E0123",
                format!("unsupported format version {n}"),
                span,
                "this harness reads format 1",
            )
            .help = Some("set `format = 1`".into());
            None
        }
    }

    fn scenario_id(&mut self, v: &Value<'_>) -> Option<Spanned<String>> {
        let s = self.plain_str("id", v)?;
        let ok_part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        let ok = s
            .value
            .split_once('/')
            .is_some_and(|(a, b)| ok_part(a) && ok_part(b));
        if !ok {
            let span = self.full_span(v);
            self.diag("E0126", format!("malformed scenario id `{}`", s.value), span, "expected `area/behaviour_outcome`")
                .help = Some("scenario ids are an area and a name in lower case, e.g. `arm/linux-vm-system-assigned`".into());
        }
        Some(s)
    }

    fn backends(&mut self, v: &Value<'_>) -> Vec<BackendKind> {
        let names: Vec<&str> = BackendKind::ALL.iter().map(|b| b.name()).collect();
        let mut out = Vec::new();
        let items = self.plain_str_list("backends", v);
        for s in items {
            if let Some(b) = BackendKind::parse(&s.value) {
                out.push(b);
            } else {
                let span = s.span;
                let d = self.diag(
                    "E0124",
                    format!("unknown backend `{}`", s.value),
                    span,
                    "not a backend",
                );
                match suggest(&s.value, names.iter().copied()) {
                    Some(sug) => d.help = Some(format!("did you mean `{sug}`?")),
                    None => d.notes.push(format!(
                        "backends are {}",
                        list_names(names.iter().copied())
                    )),
                }
            }
        }
        if out.is_empty() && matches!(v.as_ref(), ValueInner::Array(a) if a.is_empty()) {
            let span = self.full_span(v);
            self.diag(
                "E0126",
                "`backends` is empty, so this scenario would never run",
                span,
                "no backend listed",
            )
            .help = Some(
                "list at least one of `fake`, `live`, or remove `backends` to run on both".into(),
            );
        }
        out
    }

    fn sub_table<'a, 'de>(&mut self, what: &str, v: &'a Value<'de>) -> Option<&'a Table<'de>> {
        if let ValueInner::Table(t) = v.as_ref() {
            Some(t)
        } else {
            self.wrong_type(what, FieldType::Json, v);
            // Json accepts anything; say what we wanted instead.
            if let Some(d) = self.diags.last_mut() {
                d.message = format!(
                    "wrong type for `{what}`: expected a table, found {}",
                    found(v)
                );
                d.label = "expected a table".into();
                d.help = Some(format!("write it as a `[{what}]` table"));
            }
            None
        }
    }

    fn missing_in(&mut self, specs: &[FieldSpec], t: &Table<'_>, table_name: &str, span: Span) {
        for f in specs
            .iter()
            .filter(|f| f.required && !t.contains_key(f.name))
        {
            let span = self.head_span(span);
            self.diag(
                "E0120",
                format!("missing required key `{}` in `[{table_name}]`", f.name),
                span,
                format!("`[{table_name}]` needs `{}`", f.name),
            )
            .help = Some(format!("add `{}`", example(f.name, f.ty)));
        }
    }

    fn article(&mut self, v: &Value<'_>) -> Option<Article> {
        let t = self.sub_table("article", v)?;
        let names: Vec<&'static str> = ARTICLE_FIELDS.iter().map(|f| f.name).collect();
        let mut a = Article {
            file: String::new(),
            lines: None,
            sections: Vec::new(),
        };
        for (k, v) in entries(t) {
            match k.name.as_ref() {
                "file" => {
                    a.file = self
                        .plain_str("file", v)
                        .map(|s| s.value)
                        .unwrap_or_default();
                }
                "lines" => a.lines = self.lines("lines", v),
                "sections" => {
                    a.sections = self
                        .plain_str_list("sections", v)
                        .into_iter()
                        .map(|s| s.value)
                        .collect();
                }
                _ => self.unknown_key("E0104", "`[article]`", k, &names),
            }
        }
        self.missing_in(ARTICLE_FIELDS, t, "article", sp(v.span));
        Some(a)
    }

    fn host(&mut self, v: &Value<'_>) -> Option<Host> {
        let t = self.sub_table("host", v)?;
        let names: Vec<&'static str> = HOST_FIELDS.iter().map(|f| f.name).collect();
        let mut h = Host {
            kind: HostKind::Vm,
            os: Os::Linux,
            name: String::new(),
            system_assigned: false,
            user_assigned: Vec::new(),
        };
        for (k, v) in entries(t) {
            match k.name.as_ref() {
                "kind" => {
                    if let Some(s) = self.plain_str("kind", v) {
                        let kinds = [HostKind::Vm, HostKind::Vmss, HostKind::AppService];
                        if let Some(kind) = kinds.iter().find(|h| h.name() == s.value) {
                            h.kind = *kind;
                        } else {
                            self.bad_enum("host kind", &s, &kinds.map(HostKind::name), v);
                        }
                    }
                }
                "os" => {
                    if let Some(s) = self.plain_str("os", v) {
                        match s.value.as_str() {
                            "linux" => h.os = Os::Linux,
                            "windows" => h.os = Os::Windows,
                            _ => self.bad_enum(
                                "host os",
                                &s,
                                &[Os::Linux.name(), Os::Windows.name()],
                                v,
                            ),
                        }
                    }
                }
                "name" => {
                    h.name = self
                        .plain_str("name", v)
                        .map(|s| s.value)
                        .unwrap_or_default();
                }
                "system_assigned" => {
                    h.system_assigned = self.bool("system_assigned", v).unwrap_or(false);
                }
                "user_assigned" => {
                    h.user_assigned = self
                        .plain_str_list("user_assigned", v)
                        .into_iter()
                        .map(|s| s.value)
                        .collect();
                }
                _ => self.unknown_key("E0104", "`[host]`", k, &names),
            }
        }
        self.missing_in(HOST_FIELDS, t, "host", sp(v.span));
        Some(h)
    }

    fn bad_enum(&mut self, what: &str, s: &Spanned<String>, valid: &[&'static str], v: &Value<'_>) {
        let span = self.full_span(v);
        let d = self.diag(
            "E0125",
            format!("unknown {what} `{}`", s.value),
            span,
            format!("not a {what}"),
        );
        match suggest(&s.value, valid.iter().copied()) {
            Some(sug) => d.help = Some(format!("did you mean `{sug}`?")),
            None => d.notes.push(format!(
                "expected one of {}",
                list_alternatives(valid.iter().copied())
            )),
        }
    }

    // ---------------------------------------------------------------------------------------
    // steps

    fn steps(&mut self, v: &Value<'_>) -> Option<Vec<Step>> {
        let ValueInner::Array(items) = v.as_ref() else {
            let span = self.head_span(sp(v.span));
            self.diag(
                "E0121",
                format!(
                    "wrong type for `step`: expected an array of tables, found {}",
                    found(v)
                ),
                span,
                "expected `[[step]]`",
            )
            .help = Some("write each step as a `[[step]]` table (double brackets)".into());
            return None;
        };
        let mut steps = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let ValueInner::Table(t) = item.as_ref() {
                if let Some(s) = self.step(i, t, sp(item.span)) {
                    steps.push(s);
                }
            } else {
                let span = self.full_span(item);
                self.diag(
                    "E0121",
                    format!(
                        "wrong type for step {}: expected a table, found {}",
                        i + 1,
                        found(item)
                    ),
                    span,
                    "expected a table",
                )
                .help = Some("write each step as a `[[step]]` table".into());
            }
        }
        Some(steps)
    }

    fn step(&mut self, index: usize, t: &Table<'_>, span: Span) -> Option<Step> {
        let n = index + 1;
        let head = self.head_span(span);
        let all = entries(t);

        // id first: unresolved steps still need it.
        let mut id = Spanned::new(format!("step-{n}"), head);
        if let Some((_, v)) = all.iter().find(|(k, _)| k.name == "id")
            && let Some(s) = self.plain_str("id", v)
        {
            if let Some(c) = s
                .value
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                let vspan = self.full_span(v);
                self.diag(
                    "E0126",
                    format!("step id `{}` contains `{c}`", s.value),
                    vspan,
                    "references could not name this step",
                )
                .help = Some("step ids are letters, digits, `_` and `-`, e.g. `read-rg`".into());
            } else if s.value.is_empty() {
                let vspan = self.full_span(v);
                self.diag(
                    "E0126",
                    "empty step id",
                    vspan,
                    "references could not name this step",
                )
                .help = Some(
                    "give the step a name such as `vm`, or remove `id` to use the default".into(),
                );
            }
            id = s;
        }

        let phase_entries: Vec<(Phase, &Key<'_>, &Value<'_>)> = all
            .iter()
            .filter_map(|(k, v)| {
                PHASES
                    .iter()
                    .find(|p| p.key() == k.name)
                    .map(|p| (*p, *k, *v))
            })
            .collect();
        let phase_keys: Vec<&'static str> = PHASES.iter().map(|p| p.key()).collect();

        let (phase, pk, pv) = match phase_entries.as_slice() {
            [] => {
                // A misspelt phase key (`fetch = "imds"`) explains the missing phase best.
                let typo = all.iter().find(|(k, _)| {
                    STEP_COMMON.iter().all(|f| f.name != k.name)
                        && suggest(&k.name, phase_keys.iter().copied()).is_some()
                });
                if let Some((k, _)) = typo {
                    let sug = suggest(&k.name, phase_keys.iter().copied()).unwrap_or("fetch_token");
                    self.diag(
                        "E0102",
                        format!("`{}` is not a step kind key", k.name),
                        sp(k.span),
                        "not a phase key",
                    )
                    .help = Some(format!(
                        "did you mean `{sug}`? every step starts with one of {}",
                        list_names(phase_keys.iter().copied())
                    ));
                } else {
                    self.diag("E0111", format!("step {n}{} has no phase key", if t.contains_key("id") { format!(" (`{}`)", id.value) } else { String::new() }), head, "this step does not say what it does")
                        .help = Some("add one of `provision = \"vm\"`, `grant = \"role_assignment\"`, `fetch_token = \"imds\"` or `call = \"GET ${arm}/...\"`".into());
                }
                self.unresolved.push((index, id.value));
                return None;
            }
            [one] => *one,
            [first, second, ..] => {
                let second_span = self.entry_span(second.1, second.2);
                let first_span = self.entry_span(first.1, first.2);
                let d = Diagnostic::new(
                    "E0112",
                    format!(
                        "step {n} has two phase keys, `{}` and `{}`",
                        first.0.key(),
                        second.0.key()
                    ),
                    &self.file,
                    second_span,
                    "second phase key",
                )
                .with_secondary(first_span, "first phase key")
                .with_help("a step does one thing: split this into two `[[step]]` tables");
                self.diags.push(d);
                self.unresolved.push((index, id.value));
                return None;
            }
        };
        let kind_span = self.entry_span(pk, pv);

        let kind = if phase == Phase::Call {
            self.call_kind(pv)
        } else {
            self.phase_kind(phase, pv)
        };
        let Some(kind) = kind else {
            self.unresolved.push((index, id.value));
            return None;
        };
        let spec = schema::kind_spec(&kind);
        let qualified = match &kind {
            StepKind::Call { .. } => "call".to_string(),
            k => format!("{} = \"{}\"", k.phase().key(), k.key()),
        };

        let mut step = Step {
            index,
            id,
            span,
            kind: Spanned::new(kind, kind_span),
            fields: Fields::default(),
            expect: None,
            denied_without_grant: None,
            snapshot: None,
            note: None,
            doc_lines: None,
        };
        for (k, v) in &all {
            let name = k.name.as_ref();
            match name {
                "id" => {}
                _ if PHASES.iter().any(|p| p.key() == name) => {}
                "note" => step.note = self.plain_str("note", v).map(|s| s.value),
                "lines" => step.doc_lines = self.lines("lines", v),
                "expect" => step.expect = self.expect("expect", v),
                "denied_without_grant" => {
                    step.denied_without_grant = self.expect("denied_without_grant", v);
                }
                "snapshot" => step.snapshot = self.bool("snapshot", v),
                _ => {
                    if let Some(f) = spec.field(name) {
                        if let Some(value) = self.typed(name, f.ty, v) {
                            step.fields.map.insert(
                                name.to_string(),
                                Field {
                                    key_span: sp(k.span),
                                    value,
                                },
                            );
                        }
                    } else {
                        self.unknown_step_field(k, spec, &qualified);
                    }
                }
            }
        }
        for f in spec
            .fields
            .iter()
            .filter(|f| f.required && !t.contains_key(f.name))
        {
            self.diag(
                "E0120",
                format!("missing required field `{}` in `{qualified}` step", f.name),
                kind_span,
                format!("this step needs `{}`", f.name),
            )
            .help = Some(format!(
                "add `{}` ({})",
                example(f.name, f.ty),
                f.doc.trim_end_matches('.')
            ));
        }
        Some(step)
    }

    fn unknown_step_field(&mut self, k: &Key<'_>, spec: &schema::KindSpec, qualified: &str) {
        let name = k.name.as_ref();
        let mut valid: Vec<&'static str> = spec.fields.iter().map(|f| f.name).collect();
        valid.extend(STEP_COMMON.iter().map(|f| f.name));
        let d = Diagnostic::new(
            "E0102",
            format!("unknown field `{name}` in `{qualified}` step"),
            &self.file,
            sp(k.span),
            "unknown field",
        );
        let phase_keys = PHASES.map(Phase::key);
        let d = if let Some(s) = suggest(name, valid.iter().copied()) {
            d.with_help(format!("did you mean `{s}`?"))
        } else if EXPECT_FIELDS.iter().any(|f| f.name == name) {
            d.with_help(format!(
                "`{name}` is an expectation: write `expect = {{ {name} = ... }}`"
            ))
        } else if let Some(p) = suggest(name, phase_keys.iter().copied()) {
            d.with_help(format!("`{name}` is not a step kind; did you mean `{p}`? (a step has exactly one phase key)"))
        } else if let Some(other) = KINDS.iter().find(|o| o.field(name).is_some()) {
            let q = if other.phase == Phase::Call {
                "call".to_string()
            } else {
                format!("{} = \"{}\"", other.phase.key(), other.key)
            };
            d.with_note(format!(
                "`{name}` is a field of `{q}` steps; fields of `{qualified}` steps are {}",
                list_names(valid.iter().copied())
            ))
        } else {
            d.with_note(format!(
                "fields of `{qualified}` steps are {}",
                list_names(valid.iter().copied())
            ))
        };
        self.diags.push(d);
    }

    fn phase_kind(&mut self, phase: Phase, v: &Value<'_>) -> Option<StepKind> {
        let ValueInner::String(s) = v.as_ref() else {
            self.wrong_type(phase.key(), FieldType::Str, v);
            return None;
        };
        if let Some(k) = schema::step_kind_from_key(phase, s) {
            return Some(k);
        }
        let keys = schema::kind_keys(phase);
        let span = self.full_span(v);
        let d = Diagnostic::new(
            "E0110",
            format!("unknown {} kind `{s}`", phase.key()),
            &self.file,
            span,
            format!("not a {} kind", phase.key()),
        );
        let other = KINDS
            .iter()
            .find(|k| k.phase != phase && k.key == s.as_ref());
        let d = if let Some(sug) = suggest(s, keys.iter().copied()) {
            d.with_help(format!("did you mean `{sug}`?"))
        } else if let Some(o) = other {
            let write = if o.phase == Phase::Call {
                "call = \"GET <url>\"".to_string()
            } else {
                format!("{} = \"{s}\"", o.phase.key())
            };
            d.with_help(format!(
                "`{s}` is a {} kind: write `{write}`",
                o.phase.key()
            ))
        } else {
            d.with_note(format!(
                "{} kinds are {}",
                phase.key(),
                list_names(keys.iter().copied())
            ))
        };
        self.diags.push(d);
        None
    }

    fn call_kind(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let ValueInner::String(s) = v.as_ref() else {
            self.wrong_type("call", FieldType::Str, v);
            return None;
        };
        let span = self.full_span(v);
        let example =
            "write `call = \"GET ${arm}/subscriptions/${subscription_id}?api-version=2022-12-01\"`";
        let lead = s.len() - s.trim_start().len();
        let rest = &s[lead..];
        let method_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let method = &rest[..method_len];
        let after = &rest[method_len..];
        let url_start = lead + method_len + (after.len() - after.trim_start().len());
        let url = s[url_start..].trim_end();
        if method.is_empty() {
            self.diag("E0122", "empty `call`", span, "no method or URL")
                .help = Some(example.into());
            return None;
        }
        let map = self.offset_map(s, v);
        let method_span = map.span(Span::new(lead, lead + method_len));
        let upper = method.to_ascii_uppercase();
        let method = if METHODS.contains(&method) || !METHODS.contains(&upper.as_str()) {
            method
        } else {
            // Recover, so the URL's references are still checked.
            self.diags.push(
                Diagnostic::new(
                    "E0122",
                    format!("HTTP method `{method}` must be upper case"),
                    &self.file,
                    method_span,
                    "lower-case method",
                )
                .with_help(format!("write `{upper}`")),
            );
            upper.as_str()
        };
        if !METHODS.contains(&method)
            && method != schema::SQL_METHOD
            && method != schema::BLOB_METHOD
        {
            let looks_like_url =
                method.contains("://") || method.starts_with("${") || method.starts_with('/');
            let d = if looks_like_url {
                Diagnostic::new(
                    "E0122",
                    "`call` is missing the HTTP method",
                    &self.file,
                    method_span,
                    "this is the URL",
                )
                .with_help(format!("start with a method: `call = \"GET {method}\"`"))
            } else {
                let d = Diagnostic::new(
                    "E0122",
                    format!("unknown HTTP method `{method}`"),
                    &self.file,
                    method_span,
                    "not a method",
                );
                match suggest(method, METHODS.iter().copied()) {
                    Some(sug) => d.with_help(format!("did you mean `{sug}`?")),
                    None => d.with_note(format!(
                        "methods are {}",
                        list_names(METHODS.iter().copied())
                    )),
                }
            };
            self.diags.push(d);
            return None;
        }
        if url.is_empty() {
            self.diag(
                "E0122",
                "`call` has no URL",
                method_span,
                "a method but no URL",
            )
            .help = Some(example.into());
            return None;
        }
        let sub = map.sub(url_start);
        let url = self.template_with(url, &sub);
        Some(StepKind::Call {
            method: method.to_string(),
            url,
        })
    }

    // ---------------------------------------------------------------------------------------
    // expectations

    fn expect(&mut self, what: &str, value: &Value<'_>) -> Option<Expect> {
        let v = value;
        let ValueInner::Table(table) = v.as_ref() else {
            let span = self.full_span(v);
            self.diag(
                "E0121",
                format!(
                    "wrong type for `{what}`: expected a table, found {}",
                    found(v)
                ),
                span,
                "expected a table",
            )
            .help = Some(format!("write `{what} = {{ status = 200 }}`"));
            return None;
        };
        let names: Vec<&'static str> = EXPECT_FIELDS.iter().map(|f| f.name).collect();
        let mut e = Expect {
            span: sp(v.span),
            ..Expect::default()
        };
        for (k, val) in entries(table) {
            let key = k.name.as_ref();
            match key {
                "status" => {
                    if let ValueInner::Integer(n) = val.as_ref() {
                        match u16::try_from(*n) {
                            Ok(s) if (100..=599).contains(&s) => {
                                e.status = Some(Spanned::new(s, sp(val.span)));
                            }
                            _ => {
                                let span = self.full_span(val);
                                self.diag(
                                    "E0126",
                                    format!("HTTP status {n} is out of range"),
                                    span,
                                    "not an HTTP status",
                                )
                                .help = Some(
                                    "use a status between 100 and 599, e.g. `status = 403`".into(),
                                );
                            }
                        }
                    } else {
                        self.wrong_type("status", FieldType::Int, val);
                    }
                }
                "code" | "body_contains" => {
                    if let ValueInner::String(s) = val.as_ref() {
                        let t = Spanned::new(self.template(s, val), sp(val.span));
                        if key == "code" {
                            e.code = Some(t);
                        } else {
                            e.body_contains = Some(t);
                        }
                    } else {
                        self.wrong_type(key, FieldType::Str, val);
                    }
                }
                "json" => {
                    if let ValueInner::Table(jt) = val.as_ref() {
                        for (jk, jv) in entries(jt) {
                            let value = self.json_value(jv);
                            e.json
                                .push((Spanned::new(jk.name.to_string(), sp(jk.span)), value));
                        }
                    } else {
                        self.wrong_type("json", FieldType::StrTable, val);
                        if let Some(d) = self.diags.last_mut() {
                            d.message = format!(
                                "wrong type for `json`: expected a table of JSON paths, found {}",
                                found(val)
                            );
                            d.label = "expected a table".into();
                            d.help = Some("write `json = { \"properties.provisioningState\" = \"Succeeded\" }`".into());
                        }
                    }
                }
                "json_types" => {
                    if let ValueInner::Table(jt) = val.as_ref() {
                        for (jk, jv) in entries(jt) {
                            let Some(ty) = self.plain_str(&format!("json_types.{}", jk.name), jv)
                            else {
                                continue;
                            };
                            if JSON_TYPES.contains(&ty.value.as_str()) {
                                e.json_types
                                    .push((Spanned::new(jk.name.to_string(), sp(jk.span)), ty));
                            } else {
                                let span = self.full_span(jv);
                                let d = Diagnostic::new(
                                    "E0126",
                                    format!("unknown JSON type `{}`", ty.value),
                                    &self.file,
                                    span,
                                    "not a JSON type",
                                );
                                let d = match ty.value.as_str() {
                                    "integer" | "int" | "float" | "double" => {
                                        d.with_help("JSON has one numeric type: use `number`")
                                    }
                                    "bool" => d.with_help("did you mean `boolean`?"),
                                    "table" | "map" | "dict" => {
                                        d.with_help("did you mean `object`?")
                                    }
                                    other => match suggest(other, JSON_TYPES.iter().copied()) {
                                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                                        None => d.with_note(format!(
                                            "JSON types are {}",
                                            list_names(JSON_TYPES.iter().copied())
                                        )),
                                    },
                                };
                                self.diags.push(d);
                            }
                        }
                    } else {
                        self.wrong_type("json_types", FieldType::StrTable, val);
                    }
                }
                "absent" => e.absent = self.plain_str_list("absent", val),
                "headers" => {
                    if let ValueInner::Table(ht) = val.as_ref() {
                        for (hk, hv) in entries(ht) {
                            if let ValueInner::String(s) = hv.as_ref() {
                                let t = self.template(s, hv);
                                e.headers.push((
                                    Spanned::new(hk.name.to_string(), sp(hk.span)),
                                    Spanned::new(t, sp(hv.span)),
                                ));
                            } else {
                                self.wrong_type(
                                    &format!("headers.{}", hk.name),
                                    FieldType::Str,
                                    hv,
                                );
                            }
                        }
                    } else {
                        self.wrong_type("headers", FieldType::StrTable, val);
                    }
                }
                _ => self.unknown_key("E0103", &format!("`{what}`"), k, &names),
            }
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProvisionKind, TokenSource};
    use rstest::rstest;

    const REAL: &str = include_str!("../../../scenarios/arm/linux-vm-system-assigned.toml");

    fn parse(text: &str) -> Result<Scenario, Vec<Diagnostic>> {
        parse_str("x.toml", text.to_string())
    }

    fn codes(text: &str) -> Vec<&'static str> {
        parse_lenient("x.toml", text.to_string())
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn real_scenario_model() {
        let s = parse(REAL).expect("valid");
        assert_eq!(s.id.value, "arm/linux-vm-system-assigned");
        assert_eq!(
            &REAL[s.id.span.start..s.id.span.end],
            "arm/linux-vm-system-assigned"
        );
        assert_eq!(s.article.lines, Some((438, 572)));
        assert_eq!(s.backends, BackendKind::ALL.to_vec());
        assert!(s.host.system_assigned);
        let ids: Vec<&str> = s.steps.iter().map(|s| s.id.value.as_str()).collect();
        assert_eq!(ids, ["rg", "vm", "grant", "token", "read-rg"]);
        assert_eq!(
            s.steps[1].kind.value,
            StepKind::Provision(ProvisionKind::Vm)
        );
        assert_eq!(
            &REAL[s.steps[1].kind.span.start..s.steps[1].kind.span.end],
            "provision = \"vm\""
        );
        assert_eq!(s.steps[1].doc_lines, Some((454, 454)));
        assert_eq!(
            s.steps[3].kind.value,
            StepKind::FetchToken(TokenSource::Imds)
        );
        let expect = s.steps[3].expect.as_ref().expect("expect");
        assert_eq!(expect.status.as_ref().map(|s| s.value), Some(200));
        let json: Vec<&str> = expect.json.iter().map(|(k, _)| k.value.as_str()).collect();
        assert_eq!(json, ["token_type", "resource"], "file order kept");
        assert_eq!(expect.json_types.len(), 2);
        let call = &s.steps[4];
        let StepKind::Call { method, url } = &call.kind.value else {
            panic!("call")
        };
        assert_eq!(method, "GET");
        // Every reference span is exactly the text inside `${}` in the file.
        for r in url.references() {
            assert_eq!(&REAL[r.span.start..r.span.end], r.dotted());
        }
        assert_eq!(url.references().count(), 3);
        let denied = call.denied_without_grant.as_ref().expect("denied");
        assert_eq!(denied.status.as_ref().map(|s| s.value), Some(403));
        assert_eq!(
            denied.code.as_ref().map(|c| c.raw.as_str()),
            Some("AuthorizationFailed")
        );
        assert_eq!(call.fields.template_table("headers")[0].0, "Authorization");
    }

    #[test]
    fn reference_spans_survive_escapes() {
        let text = REAL.replace(
            "name = \"DevTest-${run_id}\"",
            "name = \"D\\u00e9v\\\"Test-${run_id}\"",
        );
        let s = parse(&text).expect("valid");
        let t = s.steps[0].fields.template("name").expect("name");
        let r = t.references().next().expect("ref");
        assert_eq!(&text[r.span.start..r.span.end], "run_id");
    }

    #[test]
    fn default_step_id() {
        let text = REAL
            .replace("id = \"rg\"\n", "")
            .replace("${rg.", "${step-1.");
        let s = parse(&text).expect("valid");
        assert_eq!(s.steps[0].id.value, "step-1");
    }

    #[rstest]
    #[case::range("\"438-572\"", Some((438, 572)))]
    #[case::single("\"454\"", Some((454, 454)))]
    #[case::spaces("\" 3 - 4 \"", Some((3, 4)))]
    #[case::reversed("\"9-3\"", None)]
    #[case::zero("\"0\"", None)]
    #[case::words("\"intro\"", None)]
    #[case::integer("454", None)]
    fn lines(#[case] value: &str, #[case] want: Option<(u32, u32)>) {
        let text = REAL.replace("lines = \"454\"", &format!("lines = {value}"));
        let parsed = parse_lenient("x.toml", text);
        let s = parsed.scenario.expect("scenario");
        assert_eq!(s.steps[1].doc_lines, want);
        assert_eq!(parsed.diagnostics.is_empty(), want.is_some());
    }

    #[rstest]
    #[case::all_problems_at_once(
        &[("name = \"DevTest", "nmae = \"DevTest"), ("os = \"linux\"", "os = \"linnux\""), ("status = 403", "status = 4030")],
        &["E0125", "E0120", "E0102", "E0126"]
    )]
    #[case::phase_key_wrong_type(&[("provision = \"vm\"", "provision = 3")], &["E0121"])]
    #[case::kind_of_other_phase(&[("provision = \"vm\"", "provision = \"imds\"")], &["E0110"])]
    #[case::call_without_method(&[("call = \"GET ", "call = \"")], &["E0122"])]
    #[case::call_without_url(&[("call = \"GET ${arm}/subscriptions/${subscription_id}/resourceGroups/${rg.name}?api-version=2016-09-01\"", "call = \"GET\"")], &["E0122"])]
    #[case::unknown_method(&[("call = \"GET ", "call = \"FETCH ")], &["E0122"])]
    #[case::bad_step_id(&[("id = \"rg\"", "id = \"r.g\"")], &["E0126"])]
    #[case::missing_top_level(&[("title = ", "# title = ")], &["E0120"])]
    #[case::step_field_at_top_level(&[("title = ", "provision = \"vm\"\ntitle = ")], &["E0101"])]
    #[case::expectation_at_step_level(&[("lines = \"454\"", "status = 200")], &["E0102"])]
    #[case::empty_backends(&[("title = ", "backends = []\ntitle = ")], &["E0126"])]
    #[case::bad_scenario_id(&[("arm/linux-vm-system-assigned", "Linux VM")], &["E0126"])]
    #[case::missing_format(&[("format", "# format")], &["E0120"])]
    #[case::string_list_item_type(&[("sections = [\"Use", "sections = [1, \"Use")], &["E0121"])]
    #[case::template_errors_in_json(&[("name = \"${rg.name}\"", "name = \"${rg name}${}\"")], &["E0132", "E0131"])]
    fn problems(#[case] edits: &[(&str, &str)], #[case] want: &[&str]) {
        let mut text = REAL.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        assert_eq!(codes(&text), want, "{text}");
    }

    #[test]
    fn step_must_be_an_array_of_tables() {
        let text = REAL[..REAL.find("[[step]]").expect("steps")].to_string()
            + "[step]\nprovision = \"vm\"\nresource_group = \"x\"\n";
        assert_eq!(
            codes(&text),
            ["E0121"],
            "{}",
            crate::diagnostic::render_all(&parse_lenient("x", text.clone()).diagnostics, false)
        );
        let text = REAL[..REAL.find("[[step]]").expect("steps")].to_string();
        assert_eq!(codes(&("step = [1]\n".to_string() + &text)), ["E0121"]);
        assert_eq!(codes(&text), ["E0120"], "no steps at all");
    }

    #[test]
    fn comments_only_file_is_empty() {
        assert_eq!(codes("# nothing\n\n"), ["E0002"]);
        assert_eq!(codes("\n"), ["E0002"]);
    }
}
