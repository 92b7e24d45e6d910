//! Report model and renderers (text, JSON, Markdown).

use crate::classify::BlockKind;
use crate::extract::SourceFormat;
use crate::op::{Action, DocOperation, OpSource};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Verdict for one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Works,
    Drifted,
    Broken,
    NotCheckable,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Works => "works",
            Status::Drifted => "drifted",
            Status::Broken => "broken",
            Status::NotCheckable => "not-checkable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    ResourceNameMismatch,
    AudienceMismatch,
    UnknownAudience,
    ApiVersionNotAccepted,
    MissingHeader,
    MalformedHeader,
    CmdletVerbMismatch,
    MalformedJson,
    BodyShapeMismatch,
    InvalidSyntax,
}

/// A static consistency finding, anchored at article lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub line: usize,
    pub end_line: usize,
    pub block: Option<usize>,
    pub message: String,
}

/// Scenario coverage input: which scenario step exercises which article lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageEntry {
    /// Article file name (a path is fine; the file name is compared).
    pub article: String,
    pub start_line: usize,
    pub end_line: usize,
    pub scenario: String,
    pub step: String,
}

/// Short form of an operation for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpSummary {
    pub line: usize,
    pub end_line: usize,
    pub tool: String,
    pub method: String,
    pub url: String,
    pub service: String,
    pub api_version: Option<String>,
    pub action: String,
    pub inferred: bool,
}

impl From<&DocOperation> for OpSummary {
    fn from(op: &DocOperation) -> Self {
        let tool = match &op.source {
            OpSource::Request(t) => format!("{t:?}").to_ascii_lowercase(),
            OpSource::AzCli(c) | OpSource::Cmdlet(c) => c.clone(),
        };
        let action = match &op.action {
            Action::ImdsToken {
                resource, identity, ..
            } => {
                format!(
                    "token for {} ({identity:?})",
                    resource.as_deref().unwrap_or("<no resource>")
                )
            }
            Action::Arm { action, .. } => action.clone(),
            Action::OperatorToken { resource } => format!("operator token for {resource}"),
            Action::SignIn { managed_identity } => {
                if *managed_identity {
                    "sign in with the managed identity".into()
                } else {
                    "operator sign-in".into()
                }
            }
            Action::DataPlane { what } => what.clone(),
            Action::Unmapped { why } => why.clone(),
        };
        Self {
            line: op.line,
            end_line: op.end_line,
            tool,
            method: op.method.clone(),
            url: op.url.clone(),
            service: op.service.name().to_string(),
            api_version: op.api_version.clone(),
            action,
            inferred: op.inferred,
        }
    }
}

/// Report for one code block.
#[derive(Debug, Clone, Serialize)]
pub struct BlockReport {
    pub index: usize,
    pub start_line: usize,
    pub end_line: usize,
    pub article_title: String,
    pub heading: String,
    pub info: String,
    pub kind: BlockKind,
    pub detail: String,
    pub kind_reason: String,
    pub status: Status,
    pub reason: String,
    pub operations: Vec<OpSummary>,
    pub findings: Vec<Finding>,
    /// `scenario/step` ids that cover this block.
    pub covered_by: Vec<String>,
    /// Index of the request block this example output belongs to.
    pub response_to: Option<usize>,
}

/// Counts per status and kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub blocks: usize,
    pub by_status: BTreeMap<String, usize>,
    pub by_kind: BTreeMap<String, usize>,
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
}

/// Share of request/command blocks covered by scenarios.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub actionable_blocks: usize,
    pub covered_blocks: usize,
    /// 0.0 ..= 1.0 (1.0 when there is nothing to cover).
    pub share: f64,
    /// Start lines of actionable blocks no scenario covers.
    pub uncovered_lines: Vec<usize>,
}

/// Report for one article file.
#[derive(Debug, Clone, Serialize)]
pub struct ArticleReport {
    pub article: String,
    pub format: SourceFormat,
    pub summary: Summary,
    pub coverage: Coverage,
    pub findings: Vec<Finding>,
    pub blocks: Vec<BlockReport>,
}

impl ArticleReport {
    pub fn new(
        article: &str,
        format: SourceFormat,
        blocks: Vec<BlockReport>,
        findings: Vec<Finding>,
    ) -> Self {
        let mut summary = Summary {
            blocks: blocks.len(),
            ..Summary::default()
        };
        for s in [
            Status::Works,
            Status::Drifted,
            Status::Broken,
            Status::NotCheckable,
        ] {
            summary.by_status.insert(s.label().to_string(), 0);
        }
        for b in &blocks {
            *summary
                .by_status
                .entry(b.status.label().to_string())
                .or_default() += 1;
            *summary
                .by_kind
                .entry(b.kind.label().to_string())
                .or_default() += 1;
        }
        for f in &findings {
            match f.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Note => summary.notes += 1,
            }
        }
        let actionable: Vec<&BlockReport> =
            blocks.iter().filter(|b| b.kind.is_actionable()).collect();
        let covered = actionable
            .iter()
            .filter(|b| !b.covered_by.is_empty())
            .count();
        let coverage = Coverage {
            actionable_blocks: actionable.len(),
            covered_blocks: covered,
            #[allow(clippy::cast_precision_loss)]
            share: if actionable.is_empty() {
                1.0
            } else {
                covered as f64 / actionable.len() as f64
            },
            uncovered_lines: actionable
                .iter()
                .filter(|b| b.covered_by.is_empty())
                .map(|b| b.start_line)
                .collect(),
        };
        Self {
            article: article.to_string(),
            format,
            summary,
            coverage,
            findings,
            blocks,
        }
    }

    fn count(&self, s: Status) -> usize {
        self.summary.by_status.get(s.label()).copied().unwrap_or(0)
    }
}

fn lines(a: usize, b: usize) -> String {
    if a == b {
        format!("L{a}")
    } else {
        format!("L{a}-{b}")
    }
}

/// Summary table (text), one row per article.
pub fn summary_table(reports: &[ArticleReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:>6} {:>6} {:>8} {:>7} {:>14} {:>7} {:>9} {:>9}",
        "article",
        "blocks",
        "works",
        "drifted",
        "broken",
        "not-checkable",
        "errors",
        "warnings",
        "coverage"
    );
    for r in reports {
        let _ = writeln!(
            s,
            "{:<28} {:>6} {:>6} {:>8} {:>7} {:>14} {:>7} {:>9} {:>8.0}%",
            r.article,
            r.summary.blocks,
            r.count(Status::Works),
            r.count(Status::Drifted),
            r.count(Status::Broken),
            r.count(Status::NotCheckable),
            r.summary.errors,
            r.summary.warnings,
            r.coverage.share * 100.0
        );
    }
    s
}

/// Plain-text report: summary table, then one line per block and its findings.
pub fn render_text(reports: &[ArticleReport]) -> String {
    let mut s = summary_table(reports);
    for r in reports {
        let _ = writeln!(s, "\n== {} ({:?}) ==", r.article, r.format);
        for b in &r.blocks {
            let cov = if b.covered_by.is_empty() {
                String::new()
            } else {
                format!(" [{}]", b.covered_by.join(", "))
            };
            let _ = writeln!(
                s,
                "{:<12} {:<16} {:<13} {}{cov}",
                lines(b.start_line, b.end_line),
                b.kind.label(),
                b.status.label(),
                b.reason
            );
            for f in b.findings.iter().filter(|f| f.severity != Severity::Note) {
                let _ = writeln!(
                    s,
                    "    {:?} {}: {:?}: {}",
                    f.severity,
                    lines(f.line, f.end_line),
                    f.kind,
                    f.message
                );
            }
        }
    }
    s
}

/// JSON report (pretty).
pub fn render_json(reports: &[ArticleReport]) -> String {
    serde_json::to_string_pretty(reports).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown page for docs authors.
pub fn render_markdown(reports: &[ArticleReport]) -> String {
    let mut s = String::from("# Docs check report\n\n");
    s.push_str("| Article | Blocks | Works | Drifted | Broken | Not checkable | Errors | Warnings | Scenario coverage |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in reports {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {:.0}% ({}/{}) |",
            r.article,
            r.summary.blocks,
            r.count(Status::Works),
            r.count(Status::Drifted),
            r.count(Status::Broken),
            r.count(Status::NotCheckable),
            r.summary.errors,
            r.summary.warnings,
            r.coverage.share * 100.0,
            r.coverage.covered_blocks,
            r.coverage.actionable_blocks
        );
    }
    for r in reports {
        let _ = writeln!(s, "\n## `{}`\n", r.article);
        let problems: Vec<&crate::report::Finding> = r
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Note)
            .collect();
        if problems.is_empty() {
            s.push_str("No problems found.\n");
        } else {
            s.push_str("### Problems to fix\n\n| Lines | Severity | Kind | What is wrong |\n|---|---|---|---|\n");
            for f in problems {
                let _ = writeln!(
                    s,
                    "| {} | {:?} | {:?} | {} |",
                    lines(f.line, f.end_line),
                    f.severity,
                    f.kind,
                    md_escape(&f.message)
                );
            }
        }
        s.push_str("\n### Every example\n\n| Lines | Section | Kind | Status | Why | Scenario |\n|---|---|---|---|---|---|\n");
        for b in &r.blocks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | **{}** | {} | {} |",
                lines(b.start_line, b.end_line),
                md_escape(&b.heading),
                b.kind.label(),
                b.status.label(),
                md_escape(&b.reason),
                b.covered_by.join(", ")
            );
        }
    }
    s
}
