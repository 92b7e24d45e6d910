//! The bad-scenarios corpus: one mistake per file, each rendered as the user would see it and
//! snapshotted in `snapshots/diagnostics/`. The table below pins the code and position of the
//! first diagnostic of each file, so a caret that drifts fails even if someone blesses the
//! snapshot without reading it.

use std::path::{Path, PathBuf};

use mic_core::catalog::{self, Catalog};
use mic_core::diagnostic::render_all;
use rstest::rstest;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn load_bad(name: &str) -> Catalog {
    let root = workspace();
    let path = root.join("bad-scenarios").join(format!("{name}.toml"));
    assert!(path.exists(), "{} is missing", path.display());
    catalog::load(&[path], &root)
}

#[rstest]
#[case::syntax_error("syntax-error", "E0001", "13:6")]
#[case::unknown_step_kind("unknown-step-kind", "E0110", "19:13")]
#[case::unknown_field("unknown-field", "E0102", "25:1")]
#[case::reference_typo("reference-typo", "E0205", "32:19")]
#[case::later_reference("later-reference", "E0203", "20:21")]
#[case::token_before_fetch("token-before-fetch", "E0204", "39:39")]
#[case::unknown_role("unknown-role", "E0206", "31:9")]
#[case::unknown_backend("unknown-backend", "E0124", "4:22")]
#[case::duplicate_step_id("duplicate-step-id", "E0201", "44:7")]
#[case::wrong_type("wrong-type", "E0121", "48:21")]
#[case::missing_required_field("missing-required-field", "E0120", "30:1")]
#[case::empty("empty", "E0002", "1:1")]
#[case::two_phase_keys("two-phase-keys", "E0112", "39:1")]
#[case::bad_format_version("bad-format-version", "E0123", "2:10")]
#[case::grant_without_denied("grant-without-denied", "E0207", "30:1")]
#[case::unterminated_reference("unterminated-reference", "E0130", "20:17")]
#[case::misspelt_phase_key("misspelt-phase-key", "E0102", "38:1")]
#[case::lowercase_call_method("lowercase-call-method", "E0122", "45:9")]
#[case::unknown_top_level_key("unknown-top-level-key", "E0101", "4:1")]
#[case::bad_host_kind("bad-host-kind", "E0125", "12:8")]
#[case::unknown_expect_key("unknown-expect-key", "E0103", "41:12")]
#[case::call_token_not_fetched("call-token-not-fetched", "E0209", "46:10")]
#[case::bad_json_type("bad-json-type", "E0126", "41:132")]
#[case::unknown_builtin("unknown-builtin", "E0202", "45:36")]
fn bad_scenario(#[case] name: &str, #[case] code: &str, #[case] at: &str) {
    let c = load_bad(name);
    let rendered = render_all(&c.diagnostics, false);
    assert!(!c.diagnostics.is_empty(), "{name}: no diagnostics");
    assert!(
        c.scenarios.is_empty(),
        "{name}: a broken file must not be runnable"
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(workspace().join("snapshots/diagnostics"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(format!("bad-scenarios/{name}.toml"));
    settings.bind(|| insta::assert_snapshot!(name, rendered));
    let first = &c.diagnostics[0];
    let (line, col) = first.line_col();
    assert_eq!(
        (first.code, format!("{line}:{col}")),
        (code, at.to_string()),
        "{name}: first diagnostic\n{rendered}"
    );
}

#[test]
fn every_bad_scenario_has_a_case() {
    let this = include_str!("diagnostics.rs");
    let dir = workspace().join("bad-scenarios");
    let files = catalog::discover(&dir);
    assert!(files.len() >= 12, "corpus has only {} files", files.len());
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
        assert!(
            this.contains(&format!("(\"{stem}\", \"E")),
            "bad-scenarios/{stem}.toml has no case in tests/diagnostics.rs"
        );
    }
}

#[test]
fn real_scenarios_have_no_diagnostics() {
    let root = workspace();
    let paths = catalog::discover(&root.join("scenarios"));
    assert!(!paths.is_empty(), "no scenarios found");
    let c = catalog::load(&paths, &root);
    assert!(
        c.diagnostics.is_empty(),
        "{}",
        render_all(&c.diagnostics, false)
    );
    assert_eq!(c.scenarios.len(), paths.len());
}

#[test]
fn all_bad_scenarios_at_once() {
    // The whole corpus in one catalog: every file reports, ids stay unique, the summary counts.
    let root = workspace();
    let c = catalog::load_dir(&root.join("bad-scenarios"), &root);
    let files: std::collections::BTreeSet<_> =
        c.diagnostics.iter().map(|d| d.file.path.clone()).collect();
    assert_eq!(
        files.len(),
        catalog::discover(&root.join("bad-scenarios")).len()
    );
    assert!(c.diagnostics.iter().all(|d| d.code != "E0208"));
    let out = render_all(&c.diagnostics, false);
    assert!(
        out.ends_with(&format!(
            "error: {} problems in {} files\n",
            c.diagnostics.len(),
            files.len()
        )),
        "{out}"
    );
}
