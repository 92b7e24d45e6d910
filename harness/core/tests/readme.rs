//! `scenarios/README.md` cannot drift from the schema: its reference tables are generated from
//! `mic_core::schema` between `<!-- generated:NAME -->` / `<!-- /generated:NAME -->` markers,
//! and this test fails when they differ (or when a kind, field, output or builtin is missing).
//! Regenerate with `MIC_BLESS_README=1 cargo test -p mic-core --test readme`.
//!
//! It also checks that the README's first example is the real scenario file, byte for byte, so
//! the example is one that CI runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mic_core::model::Phase;
use mic_core::parse::JSON_TYPES;
use mic_core::schema::{
    ARTICLE_FIELDS, BUILTIN_PATHS, BUILTINS, EXPECT_FIELDS, FieldSpec, HOST_FIELDS, KINDS,
    KindSpec, METHODS, STEP_COMMON, TOP_LEVEL,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn field_table(fields: &[FieldSpec]) -> String {
    let mut out = String::from("| Key | Type | Required | Meaning |\n|---|---|---|---|\n");
    for f in fields {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            f.name,
            f.ty.describe(),
            if f.required { "yes" } else { "no" },
            cell(f.doc)
        );
    }
    out
}

fn heading(k: &KindSpec) -> String {
    if k.phase == Phase::Call && k.key == "sql" {
        "### `call = \"SQL SERVER/DATABASE\"`".to_string()
    } else if k.phase == Phase::Call && k.key == "blob" {
        "### `call = \"BLOB OPERATION URL\"`".to_string()
    } else if k.phase == Phase::Call {
        "### `call = \"METHOD URL\"`".to_string()
    } else {
        format!("### `{} = \"{}\"`", k.phase.key(), k.key)
    }
}

fn kinds() -> String {
    let mut out = String::new();
    for k in KINDS {
        let _ = writeln!(out, "{}\n\n{}\n", heading(k), k.doc);
        if k.phase == Phase::Call && k.key == "http" {
            let _ = writeln!(
                out,
                "Methods: {}.\n",
                METHODS
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if k.fields.is_empty() {
            out.push_str("No fields besides the common step keys.\n\n");
        } else {
            out.push_str(&field_table(k.fields));
            out.push('\n');
        }
        let outputs: Vec<String> = k.outputs.iter().map(|o| format!("`{o}`")).collect();
        let _ = writeln!(out, "Outputs: {}.\n", outputs.join(", "));
    }
    out
}

fn builtins() -> String {
    let mut out = String::from("| Builtin | Fields | Meaning |\n|---|---|---|\n");
    for (name, doc) in BUILTINS {
        let fields = BUILTIN_PATHS.iter().find(|(b, _)| b == name).map_or_else(
            || "none: `${".to_string() + name + "}`",
            |(_, f)| {
                f.iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        let _ = writeln!(out, "| `{name}` | {fields} | {} |", cell(doc));
    }
    out
}

fn json_types() -> String {
    let names: Vec<String> = JSON_TYPES.iter().map(|t| format!("`{t}`")).collect();
    format!("`json_types` values: {}.\n", names.join(", "))
}

fn sections() -> Vec<(&'static str, String)> {
    vec![
        ("top-level", field_table(TOP_LEVEL)),
        ("article", field_table(ARTICLE_FIELDS)),
        ("host", field_table(HOST_FIELDS)),
        ("step-common", field_table(STEP_COMMON)),
        ("kinds", kinds()),
        ("builtins", builtins()),
        ("expect", field_table(EXPECT_FIELDS) + "\n" + &json_types()),
    ]
}

/// Replace the generated sections; `Err` names a missing marker.
fn regenerate(readme: &str) -> Result<String, String> {
    let mut out = readme.to_string();
    for (name, body) in sections() {
        let begin = format!("<!-- generated:{name} -->\n");
        let end = format!("<!-- /generated:{name} -->");
        let b = out
            .find(&begin)
            .ok_or_else(|| format!("README has no `{}` marker", begin.trim()))?
            + begin.len();
        let e = out[b..]
            .find(&end)
            .ok_or_else(|| format!("README has no `{end}` marker"))?
            + b;
        out.replace_range(b..e, &body);
    }
    Ok(out)
}

#[test]
fn readme_matches_schema() {
    let path = workspace().join("scenarios/README.md");
    let readme = std::fs::read_to_string(&path).expect("scenarios/README.md");
    let want = regenerate(&readme).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("MIC_BLESS_README").is_some() {
        std::fs::write(&path, &want).expect("write README");
        return;
    }
    assert!(
        want == readme,
        "scenarios/README.md is out of date with mic_core::schema; run\n  \
         MIC_BLESS_README=1 cargo test -p mic-core --test readme\nand review the diff"
    );
}

#[test]
fn readme_names_every_kind_field_output_and_builtin() {
    // Independent of the generator: each kind has its heading, and its section names every
    // field and output.
    let readme = std::fs::read_to_string(workspace().join("scenarios/README.md")).expect("README");
    for k in KINDS {
        let h = heading(k);
        let start = readme
            .find(&format!("{h}\n"))
            .unwrap_or_else(|| panic!("README has no section {h}"));
        let rest = &readme[start + h.len()..];
        let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
        for f in k.fields {
            assert!(
                section.contains(&format!("| `{}` |", f.name)),
                "{h}: field `{}` missing",
                f.name
            );
        }
        for o in k.outputs {
            assert!(
                section.contains(&format!("`{o}`")),
                "{h}: output `{o}` missing"
            );
        }
    }
    for f in TOP_LEVEL
        .iter()
        .chain(ARTICLE_FIELDS)
        .chain(HOST_FIELDS)
        .chain(STEP_COMMON)
        .chain(EXPECT_FIELDS)
    {
        assert!(
            readme.contains(&format!("| `{}` |", f.name)),
            "`{}` missing",
            f.name
        );
    }
    for (b, _) in BUILTINS {
        assert!(
            readme.contains(&format!("| `{b}` |")),
            "builtin `{b}` missing"
        );
    }
}

#[test]
fn readme_example_is_the_real_scenario() {
    let readme = std::fs::read_to_string(workspace().join("scenarios/README.md")).expect("README");
    let real =
        std::fs::read_to_string(workspace().join("scenarios/arm/linux-vm-system-assigned.toml"))
            .expect("scenario");
    let start = readme.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("end of example");
    assert_eq!(
        &readme[start..end],
        real,
        "first example differs from the real file"
    );
}
