//! The five seed articles, read from the repository: snapshot of the report
//! (offline, nothing executed), every block has a status and a reason, and the
//! known defects of the docs are found at their lines.

use mic_docs::{
    ArticleReport, CheckOptions, CoverageEntry, FindingKind, NotExecuted, World, check_article,
    report,
};
use std::path::PathBuf;

const SEEDS: &[&str] = &[
    "000_44d34d0bde431b24.txt",
    "001_7da49cfd79e2188b.txt",
    "002_b842000a364b5c0e.txt",
    "003_6ba7083581a62e83.txt",
    "004_68e52737ddb40452.txt",
];

fn articles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/articles")
}

fn check(name: &str, coverage: &[CoverageEntry]) -> ArticleReport {
    let text =
        std::fs::read_to_string(articles_dir().join(name)).expect("seed article in the repo");
    let world = World::new();
    let opts = CheckOptions {
        world: &world,
        executor: &NotExecuted,
        coverage,
    };
    check_article(name, &text, &opts)
}

fn all() -> Vec<ArticleReport> {
    SEEDS.iter().map(|s| check(s, &[])).collect()
}

#[test]
fn snapshot_of_seed_reports() {
    insta::assert_snapshot!("seed_reports_text", report::render_text(&all()));
}

#[test]
fn every_block_has_a_status_and_a_reason() {
    for r in all() {
        assert!(!r.blocks.is_empty(), "{}", r.article);
        for b in &r.blocks {
            assert!(
                !b.reason.trim().is_empty(),
                "{} L{} has no reason",
                r.article,
                b.start_line
            );
            assert!(
                !b.kind_reason.trim().is_empty(),
                "{} L{} has no classification reason",
                r.article,
                b.start_line
            );
            assert!(b.start_line <= b.end_line);
        }
        let total: usize = r.summary.by_status.values().sum();
        assert_eq!(total, r.blocks.len());
    }
}

fn has(r: &ArticleReport, kind: FindingKind, line: usize) -> bool {
    r.findings
        .iter()
        .any(|f| f.kind == kind && f.line <= line && line <= f.end_line.max(f.line))
}

#[test]
fn known_defects_are_found_at_their_lines() {
    let r002 = check("002_b842000a364b5c0e.txt", &[]);
    assert!(
        has(&r002, FindingKind::CmdletVerbMismatch, 83),
        "002 creates the identity with Get-: {:#?}",
        r002.findings
    );
    assert!(has(&r002, FindingKind::ResourceNameMismatch, 107));
    assert!(has(&r002, FindingKind::ResourceNameMismatch, 108));
    let r004 = check("004_68e52737ddb40452.txt", &[]);
    for (kind, line) in [
        (FindingKind::MalformedHeader, 1130),
        (FindingKind::MalformedHeader, 1346),
        (FindingKind::MalformedJson, 3397),
        (FindingKind::BodyShapeMismatch, 5089),
        (FindingKind::ApiVersionNotAccepted, 7123),
    ] {
        assert!(
            has(&r004, kind, line),
            "{kind:?} at 004 L{line}: {:#?}",
            r004.findings
                .iter()
                .filter(|f| f.line.abs_diff(line) < 5)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn export_blocks_keep_original_spans() {
    let r = check("004_68e52737ddb40452.txt", &[]);
    // The wrapped Graph curl at L3560-3564 is one block, one operation spanning L3561-3563.
    let b = r
        .blocks
        .iter()
        .find(|b| b.start_line == 3560)
        .expect("block at 3560");
    assert_eq!(b.end_line, 3564);
    assert_eq!(b.operations.len(), 1);
    assert_eq!(
        (b.operations[0].line, b.operations[0].end_line),
        (3561, 3563)
    );
    assert!(
        b.operations[0]
            .url
            .contains("servicePrincipals?$filter=startswith"),
        "{}",
        b.operations[0].url
    );
    // The nested ``` / ```json fence at L8013-8036 is one template block.
    let t = r
        .blocks
        .iter()
        .find(|b| b.start_line == 8013)
        .expect("nested block");
    assert_eq!(t.end_line, 8036);
    assert_eq!(t.kind, mic_docs::classify::BlockKind::Template);
}

#[test]
fn coverage_share_per_article() {
    let entries = vec![
        CoverageEntry {
            article: "docs/articles/002_b842000a364b5c0e.txt".into(),
            start_line: 150,
            end_line: 154,
            scenario: "S02".into(),
            step: "7".into(),
        },
        CoverageEntry {
            article: "002_b842000a364b5c0e.txt".into(),
            start_line: 159,
            end_line: 161,
            scenario: "S02".into(),
            step: "8".into(),
        },
        CoverageEntry {
            article: "003_6ba7083581a62e83.txt".into(),
            start_line: 1,
            end_line: 200,
            scenario: "S03".into(),
            step: "1".into(),
        },
    ];
    let r = check("002_b842000a364b5c0e.txt", &entries);
    assert_eq!(r.coverage.covered_blocks, 2);
    assert!(r.coverage.actionable_blocks >= 8);
    assert!(r.coverage.share > 0.0 && r.coverage.share < 1.0);
    let b = r.blocks.iter().find(|b| b.start_line == 150).unwrap();
    assert_eq!(b.covered_by, vec!["S02/7".to_string()]);
    let md = report::render_markdown(&[r]);
    assert!(md.contains("| `002_b842000a364b5c0e.txt` |"));
    assert!(md.contains("S02/7"));
}

#[test]
fn json_report_round_trips_through_serde() {
    let json = report::render_json(&all());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(5));
}
