//! The catalog: every scenario file, parsed and validated, with every problem in every file.
//!
//! `cargo test` and the `mic` CLI both start here, so a scenario that the CLI rejects is also
//! rejected by the test suite, with the same diagnostics. Files are discovered in sorted order
//! so runs and reports are deterministic. A file with any diagnostic is left out of
//! [`Catalog::scenarios`] (nothing in it runs) but all its problems are reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::model::{Scenario, SourceFile, Span};
use crate::parse;
use crate::validate;

/// Every loaded scenario and every problem found.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Scenarios without diagnostics, in path order.
    pub scenarios: Vec<Scenario>,
    /// Problems in all files, grouped by file in path order, then by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Catalog {
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Look a scenario up by id.
    pub fn get(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id.value == id)
    }
}

/// All `*.toml` files under `root` (recursively), sorted. A missing directory yields nothing.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Parse and validate one file's text (`path` is the display path).
///
/// # Errors
///
/// Every parse and validation problem in the file.
pub fn check_str(path: impl Into<PathBuf>, text: String) -> Result<Scenario, Vec<Diagnostic>> {
    let (scenario, diags) = check_one(path.into(), text);
    match scenario {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(diags),
    }
}

fn check_one(path: PathBuf, text: String) -> (Option<Scenario>, Vec<Diagnostic>) {
    let parsed = parse::parse_lenient(path, text);
    let mut diags = parsed.diagnostics;
    if let Some(s) = &parsed.scenario {
        diags.extend(validate::validate_with(s, &parsed.unresolved_steps));
    }
    diags.sort_by_key(|d| d.span.start);
    (parsed.scenario, diags)
}

/// Load in-memory sources: `(display path, text)` pairs. Duplicate scenario ids across files
/// are diagnostics on the later file.
pub fn from_sources(sources: Vec<(PathBuf, String)>) -> Catalog {
    // (scenario, has diagnostics): scenarios with problems still take part in duplicate-id
    // detection, so fixing one problem does not reveal another on the next run.
    let mut candidates: Vec<(Scenario, bool)> = Vec::new();
    let mut diagnostics = Vec::new();
    for (path, text) in sources {
        let (scenario, diags) = check_one(path, text);
        if let Some(s) = scenario {
            candidates.push((s, !diags.is_empty()));
        }
        diagnostics.extend(diags);
    }
    let dups = validate::duplicate_scenario_ids(candidates.iter().map(|(s, _)| s));
    let dup_files: Vec<Arc<SourceFile>> = dups.iter().map(|d| Arc::clone(&d.file)).collect();
    diagnostics.extend(dups);
    sort(&mut diagnostics);
    let scenarios = candidates
        .into_iter()
        .filter(|(s, broken)| !broken && !dup_files.iter().any(|f| Arc::ptr_eq(f, &s.file)))
        .map(|(s, _)| s)
        .collect();
    Catalog {
        scenarios,
        diagnostics,
    }
}

/// Group by file (path order), then position.
fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        a.file
            .path
            .cmp(&b.file.path)
            .then(a.span.start.cmp(&b.span.start))
    });
}

/// Read, parse and validate `paths`; display paths are relative to `display_root` when
/// possible (e.g. `scenarios/arm/x.toml`). An unreadable file is a diagnostic (E0003).
pub fn load(paths: &[PathBuf], display_root: &Path) -> Catalog {
    let mut sources = Vec::new();
    let mut unreadable = Vec::new();
    for p in paths {
        let display = p.strip_prefix(display_root).unwrap_or(p).to_path_buf();
        match std::fs::read(p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => sources.push((display, text)),
                Err(e) => unreadable.push((display, format!("not UTF-8 ({e})"))),
            },
            Err(e) => unreadable.push((display, e.to_string())),
        }
    }
    let mut catalog = from_sources(sources);
    for (path, why) in unreadable {
        let file = Arc::new(SourceFile {
            path,
            text: String::new(),
        });
        catalog.diagnostics.push(Diagnostic::new(
            "E0003",
            format!("cannot read scenario file: {why}"),
            &file,
            Span::new(0, 0),
            "",
        ));
    }
    sort(&mut catalog.diagnostics);
    catalog
}

/// [`discover`] then [`load`].
pub fn load_dir(dir: &Path, display_root: &Path) -> Catalog {
    load(&discover(dir), display_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"format = 1
id = "arm/one"
title = "t"

[article]
file = "004_68e52737ddb40452.txt"

[host]
kind = "vm"
os = "linux"
name = "myVM"

[[step]]
id = "rg"
provision = "resource_group"
name = "rg-${run_id}"
"#;

    #[test]
    fn duplicate_ids_across_files_are_reported_on_the_later_file() {
        let c = from_sources(vec![
            (PathBuf::from("scenarios/arm/a.toml"), VALID.to_string()),
            (PathBuf::from("scenarios/arm/b.toml"), VALID.to_string()),
        ]);
        assert_eq!(c.diagnostics.len(), 1, "{:#?}", c.diagnostics);
        let d = &c.diagnostics[0];
        assert_eq!(d.code, "E0208");
        assert_eq!(d.file.path, PathBuf::from("scenarios/arm/b.toml"));
        assert_eq!(
            d.secondary[0].file.path,
            PathBuf::from("scenarios/arm/a.toml")
        );
        assert_eq!(c.scenarios.len(), 1);
        assert_eq!(
            c.scenarios[0].file.path,
            PathBuf::from("scenarios/arm/a.toml")
        );
        let text = d.render_long(false);
        assert!(text.contains("scenarios/arm/a.toml:2:7"), "{text}");
    }

    #[test]
    fn broken_files_are_reported_and_left_out() {
        let broken = VALID.replace("name = \"rg", "nmae = \"rg");
        let c = from_sources(vec![
            (PathBuf::from("a.toml"), broken),
            (PathBuf::from("b.toml"), VALID.replace("arm/one", "arm/two")),
        ]);
        assert!(c.diagnostics.iter().any(|d| d.code == "E0102"));
        assert!(
            c.diagnostics
                .iter()
                .all(|d| d.file.path == Path::new("a.toml"))
        );
        assert_eq!(c.scenarios.len(), 1);
        assert_eq!(c.scenarios[0].id.value, "arm/two");
    }

    #[test]
    fn missing_directory_discovers_nothing() {
        assert!(discover(Path::new("/nonexistent/mic/scenarios")).is_empty());
    }

    #[test]
    fn unreadable_file_is_a_diagnostic() {
        let c = load(
            &[PathBuf::from("/nonexistent/x.toml")],
            Path::new("/nonexistent"),
        );
        assert_eq!(c.diagnostics.len(), 1);
        assert_eq!(c.diagnostics[0].code, "E0003");
        assert_eq!(c.diagnostics[0].file.path, PathBuf::from("x.toml"));
    }
}
