//! `mic docs check` and `mic docs coverage`: which examples of an article still work, which
//! drifted, which are broken, and why.
//!
//! `check` runs the `mic-docs` pipeline (extract, classify, parse, static checks) and executes
//! every request an article prints against a scenario world on a fresh fake cloud:
//!
//! - the world: resource group `myResourceGroup`, user-assigned identity
//!   `myUserAssignedIdentity`, Linux VM `myVM` (system-assigned + the user-assigned identity,
//!   with the legacy ManagedIdentityExtensionForLinux installed), Windows VM `myWindowsVM`
//!   (system-assigned), scale set `myVMSS` (system-assigned); every identity is Reader on the
//!   group. It is provisioned through ARM REST as the deployer, exactly as a scenario would.
//! - placeholders (`<SUBSCRIPTION ID>`, `<RESOURCE GROUP>`, `<VM NAME>`, `<UAMI CLIENT ID>`,
//!   `$ArmToken` / `<ACCESS TOKEN>` ...) are filled from that world; the access token is a real
//!   one, fetched from `myVM`'s IMDS. Sample GUIDs the docs print as subscription ids or as
//!   `client_id` / `object_id` stand for the reader's own and are replaced by the world's.
//! - routing: `http://169.254.169.254` goes to `myVM`'s IMDS, `http://localhost:50342` to its
//!   extension endpoint, `https://management.azure.com` to the fake ARM, data-plane hosts to the
//!   fake's data plane when it has one (`FakeCloud::service_urls`), otherwise the block is "not
//!   checkable" with the reason.
//! - ARM writes (PUT/PATCH/POST/DELETE) are sent with the operator's token, as the REST how-tos
//!   get it from `az account get-access-token`; reads use the VM identity's token as the
//!   tutorials do. After a doc example rewrites `myVM`, its identities are put back so that later
//!   token examples still find the VM their prerequisites describe.
//! - data planes: the world also holds what the data-plane tutorials' portal steps create
//!   (storage account `mystorageaccount` with `mycontainer/hello.txt`, key vault `mykeyvault`
//!   with secret `MyTestSecret`, Cosmos DB account `mycosmosaccount` with database and
//!   collection `Test`, Data Lake Store `myadlsaccount` with `TestFolder`) and the grants the
//!   tutorials give `myVM`'s system-assigned identity (Storage Blob Data Reader + Storage
//!   Account Contributor, a Secret Management access policy, DocumentDB Account Contributor,
//!   ACLs r-x on `/` and rwx on `/TestFolder`, Graph `Directory.Read.All` and membership of
//!   group `myGroup`). `<ACCESS TOKEN>` in a data-plane request is `myVM`'s IMDS token for
//!   that service; Graph writes other than `getMemberGroups` are the operator's. Hosts
//!   (`<account>.blob.core.windows.net`, `<vault>.vault.azure.net`,
//!   `<account>.documents.azure.com`, `<account>.azuredatalakestore.net`,
//!   `graph.windows.net`) go to the fake's server of that resource. Keys, tokens and SAS
//!   signatures are masked in the report.
//! - CLI and PowerShell commands are replayed as the current tools send them (their
//!   api-versions and look-ups, see `mic_docs::tool`) with the operator's token, and the
//!   output the doc prints after them is compared with what the tool would print.
//!
//! `coverage` reads the scenario catalog: each step's `lines = "a-b"` in the scenario's
//! `[article] file` says which article lines it exercises.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use mic_core::catalog;
use mic_docs::exec::{ExecResponse, Executor, ResolvedRequest};
use mic_docs::op::Action;
use mic_docs::specs::Service;
use mic_docs::{ArticleReport, CheckOptions, CoverageEntry, NotExecuted, Status, World, report};
use mic_fake::{FakeCloud, FakeConfig};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum DocsCommand {
    /// Check the examples of articles: works / drifted / broken / not checkable, with reasons
    /// and line numbers (exit 1 when an example is broken).
    Check(CheckArgs),
    /// Show, per article, the share of request/command blocks that a scenario step covers.
    Coverage(CoverageArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Article files (markdown or the text export) or directories of them.
    #[arg(required = true)]
    pub articles: Vec<PathBuf>,
    /// Where requests run: the embedded fake cloud, live Azure, or nowhere (static checks only).
    #[arg(long, value_enum, default_value_t = DocsBackend::Fake)]
    pub backend: DocsBackend,
    #[arg(long, value_enum, default_value_t = DocsFormat::Text)]
    pub format: DocsFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Text format: list every example (default: problems in detail, the rest summarised).
    #[arg(long)]
    pub all: bool,
    /// Print how long the world setup and each article took (to stderr).
    #[arg(long)]
    pub timings: bool,
}

#[derive(Args)]
pub struct CoverageArgs {
    /// Article files or directories (default: docs/articles).
    pub articles: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = DocsFormat::Text)]
    pub format: DocsFormat,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocsBackend {
    Fake,
    Live,
    /// Execute nothing: static checks only.
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocsFormat {
    Text,
    Json,
    Markdown,
}

pub async fn run(cmd: DocsCommand, scenarios: &Path) -> Result<ExitCode> {
    match cmd {
        DocsCommand::Check(args) => check(args, scenarios).await,
        DocsCommand::Coverage(args) => coverage(&args, scenarios),
    }
}

// ------------------------------------------------------------------------------------ inputs

/// Article files named on the command line (directories expand to their files, sorted).
pub fn article_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.extension()
                            .is_some_and(|x| x == "md" || x == "txt" || x == "markdown")
                })
                .collect();
            files.sort();
            out.extend(files);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("article `{}` does not exist", p.display());
        }
    }
    if out.is_empty() {
        bail!("no article files (*.md, *.txt) in {paths:?}");
    }
    Ok(out)
}

fn default_articles(scenarios: &Path) -> Vec<PathBuf> {
    let local = PathBuf::from("docs/articles");
    if local.is_dir() {
        return vec![local];
    }
    vec![
        scenarios
            .parent()
            .unwrap_or(Path::new("."))
            .join("docs/articles"),
    ]
}

/// Which article lines each scenario step exercises, from the scenario catalog.
pub fn coverage_entries(scenarios: &Path) -> Vec<CoverageEntry> {
    let root = scenarios.parent().unwrap_or(Path::new("."));
    let cat = catalog::load_dir(scenarios, root);
    let mut out = Vec::new();
    for s in &cat.scenarios {
        if s.article.file.is_empty() {
            continue;
        }
        for step in &s.steps {
            if let Some((a, b)) = step.doc_lines {
                out.push(CoverageEntry {
                    article: s.article.file.clone(),
                    start_line: a as usize,
                    end_line: b as usize,
                    scenario: s.id.value.clone(),
                    step: step.id.value.clone(),
                });
            }
        }
    }
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn emit(text: &str, out: Option<&Path>) -> Result<()> {
    match out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("report written to {}", path.display());
        }
        None => {
            // A closed pipe (`| head`) is not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------- check

/// Check articles against a backend; the reports in the order of `files`.
pub fn check_files(
    files: &[(String, String)],
    world: &World,
    executor: &dyn Executor,
    coverage: &[CoverageEntry],
    mut timed: impl FnMut(&str, Duration),
) -> Vec<ArticleReport> {
    let opts = CheckOptions {
        world,
        executor,
        coverage,
    };
    files
        .iter()
        .map(|(name, text)| {
            let started = Instant::now();
            let r = mic_docs::check_article(name, text, &opts);
            timed(name, started.elapsed());
            r
        })
        .collect()
}

async fn check(args: CheckArgs, scenarios: &Path) -> Result<ExitCode> {
    let files = article_files(&args.articles)?;
    let mut inputs = Vec::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        inputs.push((file_name(f), text));
    }
    let coverage = coverage_entries(scenarios);
    let started = Instant::now();
    let timings = args.timings;
    let (reports, backend_line) = match args.backend {
        DocsBackend::Live => match crate::docs_live::check(inputs, coverage, timings).await? {
            Ok(done) => done,
            Err(code) => return Ok(code),
        },
        DocsBackend::None => {
            let reports = check_files(&inputs, &World::new(), &NotExecuted, &coverage, |n, d| {
                if timings {
                    eprintln!("timing: {n}: {:.0} ms", d.as_secs_f64() * 1e3);
                }
            });
            (reports, "static checks only (nothing executed)".to_string())
        }
        DocsBackend::Fake => {
            let fake = FakeDocsWorld::start(&prerequisites(&inputs)).await?;
            let setup = started.elapsed();
            if timings {
                eprintln!(
                    "timing: scenario world on the fake cloud: {:.0} ms",
                    setup.as_secs_f64() * 1e3
                );
            }
            let line = fake.describe();
            let exec = FakeExecutor::new(tokio::runtime::Handle::current(), fake.clone());
            let world = fake.placeholders.clone();
            let reports = tokio::task::spawn_blocking(move || {
                check_files(&inputs, &world, &exec, &coverage, |n, d| {
                    if timings {
                        eprintln!("timing: {n}: {:.0} ms", d.as_secs_f64() * 1e3);
                    }
                })
            })
            .await
            .map_err(|e| anyhow!("the check panicked: {e}"))?;
            fake.cloud.clone().shutdown().await;
            let mut reports = reports;
            for b in reports.iter_mut().flat_map(|r| r.blocks.iter_mut()) {
                b.reason = mask_secrets(&b.reason, &fake.secrets);
                for f in &mut b.findings {
                    f.message = mask_secrets(&f.message, &fake.secrets);
                }
            }
            (reports, line)
        }
    };
    if timings {
        eprintln!(
            "timing: total {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let text = match args.format {
        DocsFormat::Text => render_text(&reports, &backend_line, args.all),
        DocsFormat::Json => report::render_json(&reports),
        DocsFormat::Markdown => {
            format!(
                "_Backend: {}._\n\n{}",
                backend_line.replace('\n', "; "),
                report::render_markdown(&reports)
            )
        }
    };
    emit(&text, args.out.as_deref())?;
    let broken: usize = reports.iter().map(|r| count(r, Status::Broken)).sum();
    Ok(if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `1 example`, `2 examples`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn count(r: &ArticleReport, s: Status) -> usize {
    r.blocks.iter().filter(|b| b.status == s).count()
}

// ---------------------------------------------------------------------------------- coverage

fn coverage(args: &CoverageArgs, scenarios: &Path) -> Result<ExitCode> {
    let paths = if args.articles.is_empty() {
        default_articles(scenarios)
    } else {
        args.articles.clone()
    };
    let files = article_files(&paths)?;
    let mut inputs = Vec::new();
    for f in &files {
        inputs.push((
            file_name(f),
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        ));
    }
    let entries = coverage_entries(scenarios);
    let reports = check_files(&inputs, &World::new(), &NotExecuted, &entries, |_, _| {});
    let text = match args.format {
        DocsFormat::Text => render_coverage_text(&reports),
        DocsFormat::Json => {
            let v: Vec<Value> = reports
                .iter()
                .map(|r| {
                    json!({
                        "article": r.article,
                        "coverage": r.coverage,
                        "blocks": r.blocks.iter().filter(|b| b.kind.is_actionable()).map(|b| json!({
                            "start_line": b.start_line, "end_line": b.end_line, "kind": b.kind,
                            "covered_by": b.covered_by,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&v)?
        }
        DocsFormat::Markdown => render_coverage_markdown(&reports),
    };
    emit(&text, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

pub fn render_coverage_text(reports: &[ArticleReport]) -> String {
    let mut s =
        String::from("Scenario coverage: request/command blocks exercised by a scenario step\n\n");
    let _ = writeln!(s, "{:<28} {:>8} {:>6}", "article", "covered", "share");
    for r in reports {
        let c = &r.coverage;
        let _ = writeln!(
            s,
            "{:<28} {:>8} {:>6}",
            r.article,
            format!("{}/{}", c.covered_blocks, c.actionable_blocks),
            pct(c.share)
        );
    }
    for r in reports {
        let _ = writeln!(s, "\n{}", r.article);
        let mut any = false;
        for b in r
            .blocks
            .iter()
            .filter(|b| b.kind.is_actionable() && !b.covered_by.is_empty())
        {
            any = true;
            let _ = writeln!(
                s,
                "  {:<12} {:<13} {}",
                lines(b.start_line, b.end_line),
                kind_label(b.kind),
                b.covered_by.join(", ")
            );
        }
        if !any {
            s.push_str("  no block is covered by a scenario yet\n");
        }
        if !r.coverage.uncovered_lines.is_empty() {
            let _ = writeln!(s, "  not covered ({}):", r.coverage.uncovered_lines.len());
            let ls: Vec<String> = r
                .coverage
                .uncovered_lines
                .iter()
                .map(|l| format!("L{l}"))
                .collect();
            wrap_list(&mut s, &ls, "    ");
        }
    }
    s
}

fn render_coverage_markdown(reports: &[ArticleReport]) -> String {
    let mut s = String::from(
        "# Scenario coverage of the articles\n\n| Article | Covered | Share |\n|---|---:|---:|\n",
    );
    for r in reports {
        let c = &r.coverage;
        let _ = writeln!(
            s,
            "| `{}` | {}/{} | {} |",
            r.article,
            c.covered_blocks,
            c.actionable_blocks,
            pct(c.share)
        );
    }
    for r in reports {
        let _ = writeln!(
            s,
            "\n## `{}`\n\n| Lines | Kind | Covered by |\n|---|---|---|",
            r.article
        );
        for b in r.blocks.iter().filter(|b| b.kind.is_actionable()) {
            let by = if b.covered_by.is_empty() {
                "—".to_string()
            } else {
                b.covered_by.join(", ")
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                lines(b.start_line, b.end_line),
                kind_label(b.kind),
                by
            );
        }
    }
    s
}

// -------------------------------------------------------------------------------- text report

fn lines(a: usize, b: usize) -> String {
    if a == b {
        format!("L{a}")
    } else {
        format!("L{a}-{b}")
    }
}

fn kind_label(k: mic_docs::classify::BlockKind) -> String {
    use mic_docs::classify::BlockKind as K;
    match k {
        K::HttpRequest => "request",
        K::AzCli => "az command",
        K::Cmdlet => "PowerShell",
        K::ExampleResponse => "example output",
        K::RequestBody => "request body",
        K::SourceCode => "source code",
        K::Template => "template",
        K::Other => "other",
    }
    .to_string()
}

fn wrap_list(s: &mut String, items: &[String], indent: &str) {
    let mut line = String::from(indent);
    for (i, it) in items.iter().enumerate() {
        let sep = if i + 1 < items.len() { ", " } else { "" };
        if line.len() + it.len() + sep.len() > 100 && !line.trim().is_empty() {
            let _ = writeln!(s, "{}", line.trim_end());
            line = String::from(indent);
        }
        line.push_str(it);
        line.push_str(sep);
    }
    if !line.trim().is_empty() {
        let _ = writeln!(s, "{}", line.trim_end());
    }
}

/// Split "L123: message (+2 more)" style reasons into the parts a reader scans for.
fn clean_reason(reason: &str) -> String {
    reason
        .trim_start_matches("parsed and statically consistent; ")
        .trim()
        .to_string()
}

/// A reason without its line numbers, to group "not checkable" blocks.
fn reason_group(reason: &str) -> String {
    let r = clean_reason(reason);
    let mut out = String::with_capacity(r.len());
    let bytes: Vec<char> = r.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let prev_alnum = i > 0 && bytes[i - 1].is_ascii_alphanumeric();
        if c == 'L' && !prev_alnum && bytes.get(i + 1).is_some_and(char::is_ascii_digit) {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_digit()
                    || (bytes[j] == '-' && bytes.get(j + 1).is_some_and(char::is_ascii_digit)))
            {
                j += 1;
            }
            // Drop "L12: " prefixes entirely; keep a neutral word elsewhere.
            if bytes.get(j) == Some(&':') {
                j += 1;
                while bytes.get(j) == Some(&' ') {
                    j += 1;
                }
            } else {
                out.push_str("the block above");
            }
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    // "output of the block above, which was not executed: X" reads better as the cause.
    let out = out.replace(
        "output of the block above, which was not executed: ",
        "its request was not executed: ",
    );
    // Coarse classes: the individual reasons are in `--all` and the JSON report.
    let classes: &[(&str, &str)] = &[
        (
            "its request was not executed",
            "example output of a request or command that was not executed",
        ),
        (
            "output of the block at",
            "example output of a block with nothing to execute",
        ),
        (
            "which the scenario world does not provide",
            "needs values the scenario world does not provide (variables set in earlier blocks, passwords ...)",
        ),
        (
            "CLI/PowerShell command: checked statically",
            "CLI/PowerShell command: checked statically, not replayed (its requests depend on the tool's defaults)",
        ),
        (
            "is not mapped",
            "command the checker does not map to a request yet",
        ),
        (
            "data-plane tool command",
            "data-plane tool command (storage, Cosmos DB CLI): not replayed",
        ),
        ("source sample", "source code sample: not compiled or run"),
        (
            "operator token from the CLI",
            "the operator's own token or sign-in: nothing to check",
        ),
        (
            "sign-in of the tool",
            "the operator's own token or sign-in: nothing to check",
        ),
    ];
    for (needle, class) in classes {
        if out.contains(needle) {
            return (*class).to_string();
        }
    }
    out.trim_start_matches("not checkable: ").to_string()
}

/// Section heading worth printing (the export turns callouts like NOTE into headings).
fn section(heading: &str) -> Option<String> {
    let h = heading.trim();
    let callout = !h.contains(' ') && h.chars().all(|c| c.is_ascii_uppercase());
    if h.is_empty() || callout {
        return None;
    }
    Some(if h.chars().count() > 70 {
        format!("{}...", h.chars().take(67).collect::<String>())
    } else {
        h.to_string()
    })
}

/// The report a docs author reads: per article, what to fix first, then what works, then
/// what could not be checked and why.
pub fn render_text(reports: &[ArticleReport], backend: &str, all: bool) -> String {
    let mut s = String::new();
    let total: usize = reports.iter().map(|r| r.blocks.len()).sum();
    let _ = writeln!(
        s,
        "mic docs check: {} article(s), {total} examples",
        reports.len()
    );
    let _ = writeln!(s, "backend: {}", backend.replace('\n', "\n         "));
    let _ = writeln!(
        s,
        "broken = fails as written, drifted = runs but the doc shows something else, not checkable = the reason is given\n"
    );
    let _ = writeln!(
        s,
        "{:<28} {:>8} {:>6} {:>8} {:>7} {:>14} {:>18}",
        "article", "examples", "works", "drifted", "broken", "not checkable", "scenario coverage"
    );
    let mut sums = [0usize; 5];
    for r in reports {
        let row = [
            r.blocks.len(),
            count(r, Status::Works),
            count(r, Status::Drifted),
            count(r, Status::Broken),
            count(r, Status::NotCheckable),
        ];
        for (a, b) in sums.iter_mut().zip(row) {
            *a += b;
        }
        let cov = format!(
            "{}/{} ({})",
            r.coverage.covered_blocks,
            r.coverage.actionable_blocks,
            pct(r.coverage.share)
        );
        let _ = writeln!(
            s,
            "{:<28} {:>8} {:>6} {:>8} {:>7} {:>14} {:>18}",
            r.article, row[0], row[1], row[2], row[3], row[4], cov
        );
    }
    if reports.len() > 1 {
        let _ = writeln!(
            s,
            "{:<28} {:>8} {:>6} {:>8} {:>7} {:>14}",
            "total", sums[0], sums[1], sums[2], sums[3], sums[4]
        );
    }
    for r in reports {
        let title = r
            .blocks
            .iter()
            .map(|b| b.article_title.as_str())
            .find(|t| !t.is_empty())
            .unwrap_or("");
        let _ = writeln!(s, "\n{}", "=".repeat(100));
        if title.is_empty() {
            let _ = writeln!(s, "{}", r.article);
        } else {
            let _ = writeln!(s, "{} - {title}", r.article);
        }
        let _ = writeln!(
            s,
            "{} examples: {} broken, {} drifted, {} work, {} not checkable",
            r.blocks.len(),
            count(r, Status::Broken),
            count(r, Status::Drifted),
            count(r, Status::Works),
            count(r, Status::NotCheckable)
        );
        if all {
            render_all_blocks(&mut s, r);
            continue;
        }
        for (status, head) in [
            (
                Status::Broken,
                "BROKEN - these examples fail as written; fix them first",
            ),
            (
                Status::Drifted,
                "DRIFTED - these run, but the doc shows something the service no longer does",
            ),
        ] {
            let blocks: Vec<_> = r.blocks.iter().filter(|b| b.status == status).collect();
            if blocks.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n  {head}");
            for b in blocks {
                let place = section(&b.heading)
                    .map(|h| format!("in \"{h}\""))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  {:<12} {:<15} {place}",
                    lines(b.start_line, b.end_line),
                    kind_label(b.kind)
                );
                let problems: Vec<_> = b
                    .findings
                    .iter()
                    .filter(|f| f.severity != mic_docs::Severity::Note)
                    .collect();
                if problems.is_empty() {
                    for part in clean_reason(&b.reason).split("; ") {
                        let _ = writeln!(s, "      {part}");
                    }
                } else {
                    for f in problems {
                        let _ = writeln!(s, "      {}: {}", lines(f.line, f.end_line), f.message);
                    }
                    // Execution results come on top of static findings.
                    if !b.reason.starts_with('L') || !problems_mention(b) {
                        let _ = writeln!(s, "      {}", clean_reason(&b.reason));
                    }
                }
                if !b.covered_by.is_empty() {
                    let _ = writeln!(s, "      scenario: {}", b.covered_by.join(", "));
                }
            }
        }
        let works: Vec<_> = r
            .blocks
            .iter()
            .filter(|b| b.status == Status::Works)
            .collect();
        if !works.is_empty() {
            let _ = writeln!(
                s,
                "\n  WORKS - {} ran and matched what the doc says",
                plural(works.len(), "example")
            );
            let items: Vec<String> = works
                .iter()
                .map(|b| {
                    if b.covered_by.is_empty() {
                        lines(b.start_line, b.end_line)
                    } else {
                        format!(
                            "{} [{}]",
                            lines(b.start_line, b.end_line),
                            b.covered_by.join(", ")
                        )
                    }
                })
                .collect();
            wrap_list(&mut s, &items, "    ");
        }
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for b in r.blocks.iter().filter(|b| b.status == Status::NotCheckable) {
            groups
                .entry(reason_group(&b.reason))
                .or_default()
                .push(lines(b.start_line, b.end_line));
        }
        if !groups.is_empty() {
            let n: usize = groups.values().map(Vec::len).sum();
            let _ = writeln!(s, "\n  NOT CHECKABLE - {}, by reason", plural(n, "example"));
            let mut sorted: Vec<_> = groups.into_iter().collect();
            sorted.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            for (reason, ls) in sorted {
                let _ = writeln!(s, "    {:>3} x {reason}", ls.len());
                wrap_list(&mut s, &ls, "          ");
            }
        }
    }
    s
}

fn problems_mention(b: &mic_docs::report::BlockReport) -> bool {
    b.findings.iter().any(|f| b.reason.contains(&f.message))
}

fn render_all_blocks(s: &mut String, r: &ArticleReport) {
    for b in &r.blocks {
        let cov = if b.covered_by.is_empty() {
            String::new()
        } else {
            format!(" [{}]", b.covered_by.join(", "))
        };
        let _ = writeln!(
            s,
            "  {:<12} {:<15} {:<14} {}{cov}",
            lines(b.start_line, b.end_line),
            kind_label(b.kind),
            b.status.label(),
            clean_reason(&b.reason)
        );
    }
}

// ----------------------------------------------------------------------- the scenario world

/// What the articles' own setup steps create (resource groups, user-assigned identities with
/// literal names): the world provisions them so the examples that use them find them.
#[derive(Debug, Default, Clone)]
pub struct Prerequisites {
    pub resource_groups: Vec<String>,
    /// (resource group, name)
    pub identities: Vec<(String, String)>,
    /// Storage accounts the articles grant roles on: (resource group, name).
    pub storage_accounts: Vec<(String, String)>,
}

fn literal_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x.eq_ignore_ascii_case(s)) {
        v.push(s.to_string());
    }
}

/// User-assigned identity ids (`.../resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME`) in a string.
fn identity_refs(s: &str, out: &mut Vec<(String, String)>) {
    resource_refs(
        s,
        "/providers/microsoft.managedidentity/userassignedidentities/",
        out,
    );
}

/// `(group, name)` of every `.../resourceGroups/RG<mark>NAME` in a string (`mark` lower case).
fn resource_refs(s: &str, mark: &str, out: &mut Vec<(String, String)>) {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(mark).map(|i| i + from) {
        let name_start = i + mark.len();
        let name_end = s[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .map_or(s.len(), |j| name_start + j);
        let name = &s[name_start..name_end];
        let before = &lower[..i];
        if let Some(g) = before.rfind("/resourcegroups/") {
            let rg = &s[g + "/resourcegroups/".len()..i];
            if literal_name(rg)
                && literal_name(name)
                && !out
                    .iter()
                    .any(|(r, n)| r.eq_ignore_ascii_case(rg) && n.eq_ignore_ascii_case(name))
            {
                out.push((rg.to_string(), name.to_string()));
            }
        }
        from = name_end.max(i + 1);
    }
}

/// Scan articles for the resources their setup steps create or reference by literal name.
pub fn prerequisites(texts: &[(String, String)]) -> Prerequisites {
    let mut p = Prerequisites::default();
    for (_, text) in texts {
        let (_, blocks) = mic_docs::analyse(text);
        for b in &blocks {
            for op in &b.ops {
                if let mic_docs::op::Action::Arm { resource_type, .. } = &op.action
                    && resource_type.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups")
                    && op.method == "PUT"
                {
                    let path = mic_docs::op::split_url(&op.url).path;
                    if let Some(name) = path
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .filter(|n| literal_name(n))
                    {
                        push_unique(&mut p.resource_groups, name);
                    }
                }
                identity_refs(&op.url, &mut p.identities);
                if let Some(body) = &op.body {
                    identity_refs(body, &mut p.identities);
                }
                if let Some(r) = &op.replay {
                    for l in &r.lookups {
                        if let mic_docs::tool::Lookup::RoleDefinition { scope, .. } = l {
                            resource_refs(
                                scope,
                                "/providers/microsoft.storage/storageaccounts/",
                                &mut p.storage_accounts,
                            );
                        }
                    }
                }
            }
        }
    }
    for (rg, _) in p
        .identities
        .iter()
        .chain(&p.storage_accounts)
        .cloned()
        .collect::<Vec<_>>()
    {
        push_unique(&mut p.resource_groups, &rg);
    }
    p
}

pub(crate) const RG: &str = "myResourceGroup";
pub(crate) const LINUX_VM: &str = "myVM";
const WINDOWS_VM: &str = "myWindowsVM";
const VMSS: &str = "myVMSS";
pub(crate) const UAMI: &str = "myUserAssignedIdentity";
pub(crate) const VM_API: &str = "2018-06-01";
const ARM_RESOURCE: &str = "https://management.azure.com/";

/// The scenario world the examples run in, on a fresh fake cloud.
#[derive(Clone)]
pub struct FakeDocsWorld {
    pub cloud: FakeCloud,
    client: reqwest::Client,
    operator_token: String,
    /// Token of `myVM`'s system-assigned identity for ARM (what `$ArmToken` holds).
    pub vm_token: String,
    pub subscription_id: String,
    pub host_vm_id: String,
    pub uami_id: String,
    pub uami_client_id: String,
    pub uami_principal_id: String,
    pub vm_principal_id: String,
    /// Placeholder values for the docs.
    pub placeholders: World,
    /// Tokens of `myVM`'s system-assigned identity per data plane (audience), substituted
    /// for the ARM token where a data-plane example sends `<ACCESS TOKEN>`.
    pub data_tokens: BTreeMap<&'static str, String>,
    /// The operator's Graph token: Graph writes (granting the app role) are the operator's.
    operator_graph_token: String,
    /// `host:port/database` of the world's SQL database (T-SQL blocks run there).
    sql_target: String,
    /// Keys and tokens of the world, masked in reports.
    pub secrets: Vec<String>,
    /// Resource groups and identities the articles' setup steps create.
    pub extra_groups: Vec<String>,
    pub extra_identities: Vec<String>,
}

async fn send_json(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let m = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut b = client.request(m, url).bearer_auth(token);
    if let Some(body) = body {
        b = b.json(body);
    }
    let resp = b.send().await.with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// A token for `resource` from `myVM`'s IMDS (system-assigned identity).
async fn imds_token(client: &reqwest::Client, imds: &str, resource: &str) -> Result<String> {
    let resp = client
        .get(format!(
            "{imds}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}"
        ))
        .header("Metadata", "true")
        .send()
        .await?;
    let body: Value = resp.json().await?;
    Ok(body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow!("IMDS token of {LINUX_VM} for {resource} failed: {body}"))?
        .to_string())
}

impl FakeDocsWorld {
    /// Start a fake cloud and provision the world through ARM REST as the deployer.
    pub async fn start(prereqs: &Prerequisites) -> Result<Self> {
        mic_backends::install_crypto_provider();
        let cloud = FakeCloud::start(FakeConfig::default())
            .await
            .map_err(|e| anyhow!("starting the fake cloud: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        match Self::provision(cloud.clone(), client, prereqs).await {
            Ok(w) => Ok(w),
            Err(e) => {
                cloud.shutdown().await;
                Err(e.context("provisioning the docs scenario world on the fake cloud"))
            }
        }
    }

    async fn provision(
        cloud: FakeCloud,
        client: reqwest::Client,
        prereqs: &Prerequisites,
    ) -> Result<Self> {
        let d = cloud.deployer();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("resource", ARM_RESOURCE),
        ];
        let resp = client
            .post(format!(
                "{}/{}/oauth2/token",
                cloud.login_url(),
                cloud.tenant_id()
            ))
            .form(&form)
            .send()
            .await?;
        let body: Value = resp.json().await?;
        let operator_token = body["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("deployer sign-in failed: {body}"))?
            .to_string();
        let sub = cloud.subscription_id();
        let loc = cloud.location();
        let arm = cloud.arm_url();
        let rg_id = format!("/subscriptions/{sub}/resourceGroups/{RG}");
        let put = |path: String, api: &'static str, body: Value| {
            let client = client.clone();
            let url = format!("{arm}{path}?api-version={api}");
            let token = operator_token.clone();
            async move {
                let (status, v) = send_json(&client, "PUT", &url, &token, Some(&body)).await?;
                if !(200..300).contains(&status) {
                    bail!("PUT {path} answered {status}: {v}");
                }
                Ok::<Value, anyhow::Error>(v)
            }
        };
        put(rg_id.clone(), "2021-04-01", json!({"location": loc})).await?;
        let uami_id =
            format!("{rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{UAMI}");
        let uami = put(uami_id.clone(), "2018-11-30", json!({"location": loc})).await?;
        let uami_client_id = uami["properties"]["clientId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uami_principal_id = uami["properties"]["principalId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut principals = vec![uami_principal_id.clone()];
        let mut vm_ids = Vec::new();
        for (name, os, users, is_vm) in [
            (LINUX_VM, "linux", vec![uami_id.clone()], true),
            (WINDOWS_VM, "windows", vec![], true),
            (VMSS, "linux", vec![], false),
        ] {
            let ty = if is_vm {
                "virtualMachines"
            } else {
                "virtualMachineScaleSets"
            };
            let id = format!("{rg_id}/providers/Microsoft.Compute/{ty}/{name}");
            let identity = mic_core::driver::identity_body(VM_API, true, &users, &[]);
            let v = put(
                id.clone(),
                VM_API,
                compute_body(is_vm, name, &loc, os, &identity, &rg_id),
            )
            .await?;
            let principal = v["identity"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            principals.push(principal);
            vm_ids.push(id);
        }
        let host_vm_id = vm_ids[0].clone();
        let vm_principal_id = principals[1].clone();
        put(
            format!("{host_vm_id}/extensions/ManagedIdentityExtensionForLinux"),
            VM_API,
            json!({"location": loc, "properties": {"publisher": "Microsoft.ManagedIdentity", "type": "ManagedIdentityExtensionForLinux", "typeHandlerVersion": "1.0", "autoUpgradeMinorVersion": true, "settings": {"port": 50342}}}),
        )
        .await?;
        // What the articles' setup steps create, next to the main group.
        let mut groups = vec![rg_id.clone()];
        for g in prereqs
            .resource_groups
            .iter()
            .filter(|g| !g.eq_ignore_ascii_case(RG))
        {
            let id = format!("/subscriptions/{sub}/resourceGroups/{g}");
            put(id.clone(), "2021-04-01", json!({"location": loc})).await?;
            groups.push(id);
        }
        for (g, n) in &prereqs.identities {
            if g.eq_ignore_ascii_case(RG) && n.eq_ignore_ascii_case(UAMI) {
                continue;
            }
            let id = format!(
                "/subscriptions/{sub}/resourceGroups/{g}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}"
            );
            put(id, "2018-11-30", json!({"location": loc})).await?;
        }
        // Only names Azure accepts (3-24 lower-case letters and digits): a sample name such
        // as `myStorageAcct` cannot exist, and the example granting on it fails as it would.
        for (g, n) in prereqs.storage_accounts.iter().filter(|(_, n)| {
            (3..=24).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }) {
            let id = format!(
                "/subscriptions/{sub}/resourceGroups/{g}/providers/Microsoft.Storage/storageAccounts/{n}"
            );
            put(
                id,
                "2023-05-01",
                json!({"location": loc, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}),
            )
            .await?;
        }
        let reader =
            mic_core::roles::find_role("Reader").ok_or_else(|| anyhow!("no Reader role"))?;
        for scope in &groups {
            for p in principals.iter().filter(|p| !p.is_empty()) {
                put(
                    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4()),
                    "2022-04-01",
                    json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", reader.id), "principalId": p, "principalType": "ServicePrincipal"}}),
                )
                .await?;
            }
        }
        let extra_groups: Vec<String> = groups
            .iter()
            .skip(1)
            .map(|g| g.rsplit('/').next().unwrap_or(g).to_string())
            .collect();
        let data = DataPlanes {
            cloud: &cloud,
            client: &client,
            operator_token: &operator_token,
            rg_id: &rg_id,
            location: &loc,
            vm_principal: &vm_principal_id,
        }
        .provision()
        .await?;
        let imds = cloud
            .imds_url(&host_vm_id)
            .ok_or_else(|| anyhow!("{LINUX_VM} has no IMDS endpoint"))?;
        let vm_token = imds_token(&client, &imds, ARM_RESOURCE).await?;
        let mut w = World::new();
        w.set("subscription_id", sub.clone())
            .set("resource_group", RG)
            .set("vm_name", LINUX_VM)
            .set("vmss_name", VMSS)
            .set("identity_name", UAMI)
            .set("identity_id", uami_id.clone())
            .set("client_id", uami_client_id.clone())
            .set("uami_principal_id", uami_principal_id.clone())
            .set("principal_id", vm_principal_id.clone())
            .set("tenant_id", cloud.tenant_id())
            .set("location", loc)
            .set("access_token", vm_token.clone());
        let mut data_tokens = BTreeMap::new();
        for (service, resource) in DATA_AUDIENCES {
            data_tokens.insert(service, imds_token(&client, &imds, resource).await?);
        }
        data.fill(&mut w, &data_tokens);
        let secrets = data
            .secrets
            .iter()
            .cloned()
            .chain(data_tokens.values().cloned())
            .chain([
                vm_token.clone(),
                operator_token.clone(),
                data.operator_graph_token.clone(),
                data.operator_sql_token.clone(),
                data.operator_storage_token.clone(),
                data.storage_key.clone(),
            ])
            .collect();
        Ok(Self {
            secrets,
            data_tokens,
            operator_graph_token: data.operator_graph_token.clone(),
            sql_target: data.sql_target.clone(),

            extra_groups,
            extra_identities: prereqs
                .identities
                .iter()
                .filter(|(g, n)| !(g.eq_ignore_ascii_case(RG) && n.eq_ignore_ascii_case(UAMI)))
                .map(|(g, n)| format!("{g}/{n}"))
                .collect(),
            cloud,
            client,
            operator_token,
            vm_token,
            subscription_id: sub,
            host_vm_id,
            uami_id,
            uami_client_id,
            uami_principal_id,
            vm_principal_id,
            placeholders: w,
        })
    }

    pub(crate) fn identities(&self) -> WorldIdentities<'_> {
        WorldIdentities {
            uami_client: &self.uami_client_id,
            uami_principal: &self.uami_principal_id,
            vm_principal: &self.vm_principal_id,
        }
    }

    /// One line per fact (the text report indents them, Markdown joins them).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "fake cloud\nscenario world: resource group {RG}; {LINUX_VM} (Linux, system-assigned + {UAMI}, IMDS host); {WINDOWS_VM} (Windows); {VMSS}; identities are Reader on the groups"
        );
        if !self.extra_groups.is_empty() || !self.extra_identities.is_empty() {
            let _ = write!(
                s,
                "\nfrom the articles' setup steps: groups {}; identities {}",
                if self.extra_groups.is_empty() {
                    "-".into()
                } else {
                    self.extra_groups.join(", ")
                },
                if self.extra_identities.is_empty() {
                    "-".into()
                } else {
                    self.extra_identities.join(", ")
                }
            );
        }
        s
    }

    /// Put `myVM`'s identities back after a doc example rewrote them.
    async fn restore_host(&self) {
        let identity =
            mic_core::driver::identity_body(VM_API, true, std::slice::from_ref(&self.uami_id), &[]);
        let url = format!(
            "{}{}?api-version={VM_API}",
            self.cloud.arm_url(),
            self.host_vm_id
        );
        let _ = send_json(
            &self.client,
            "PATCH",
            &url,
            &self.operator_token,
            Some(&json!({"identity": identity})),
        )
        .await;
    }
}

// ------------------------------------------------------------------ data planes of the world

/// Data-plane audiences `myVM` fetches tokens for (the `data_tokens` keys).
const DATA_AUDIENCES: [(&str, &str); 4] = [
    ("blob", "https://storage.azure.com/"),
    ("vault", "https://vault.azure.net"),
    ("datalake", "https://datalake.azure.net/"),
    ("graph", "https://graph.windows.net"),
];
pub(crate) const STORAGE_ACCOUNT: &str = "mystorageaccount";
pub(crate) const CONTAINER: &str = "mycontainer";
pub(crate) const BLOB: &str = "hello.txt";
pub(crate) const VAULT: &str = "mykeyvault";
pub(crate) const SECRET: &str = "MyTestSecret";
const COSMOS: &str = "mycosmosaccount";
const ADLS: &str = "myadlsaccount";
const ADLS_FOLDER: &str = "TestFolder";
const SQL_SERVER: &str = "mysqlserver";
const SQL_DATABASE: &str = "mydatabase";

/// What the tutorials' portal steps create in the data planes, and the grants they give the
/// VM's system-assigned identity (as in `scenarios/storage|keyvault|cosmos|datalake|graph`).
struct DataPlanes<'a> {
    cloud: &'a FakeCloud,
    client: &'a reqwest::Client,
    operator_token: &'a str,
    rg_id: &'a str,
    location: &'a str,
    vm_principal: &'a str,
}

/// Facts the placeholders need once the data planes exist.
struct DataFacts {
    vault_host: String,
    /// The operator's Graph token (`az account get-access-token --resource https://graph.windows.net/`).
    operator_graph_token: String,
    /// `host:port/database` of the world's SQL database.
    sql_target: String,
    /// The operator's (the server's Entra admin's) token for Azure SQL.
    operator_sql_token: String,
    /// Account keys the examples may print: masked in the report.
    secrets: Vec<String>,
    /// The operator's token for `https://storage.azure.com/` (`az storage --auth-mode login`).
    operator_storage_token: String,
    /// `mystorageaccount`'s first key (`--account-key <STORAGE ACCOUNT KEY>`).
    storage_key: String,
}

impl DataPlanes<'_> {
    async fn call(
        &self,
        method: &str,
        url: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, v) = send_json(self.client, method, url, token, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {url} answered {status}: {v}");
        }
        Ok(v)
    }

    async fn arm_put(&self, path: &str, api: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}?api-version={api}", self.cloud.arm_url());
        self.call("PUT", &url, self.operator_token, Some(body))
            .await
    }

    async fn role(&self, scope: &str, role: &str, principal: &str) -> Result<()> {
        let def = mic_core::roles::find_role(role).ok_or_else(|| anyhow!("no role {role}"))?;
        let sub = self.cloud.subscription_id();
        self.arm_put(
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4()),
            "2022-04-01",
            &json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", def.id), "principalId": principal, "principalType": "ServicePrincipal"}}),
        )
        .await
        .map(drop)
    }

    /// The deployer's token for a data plane (`az account get-access-token --resource`).
    async fn deployer_token(&self, resource: &str) -> Result<String> {
        let d = self.cloud.deployer();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", d.client_id.as_str()),
            ("client_secret", d.client_secret.as_str()),
            ("resource", resource),
        ];
        let url = format!(
            "{}/{}/oauth2/token",
            self.cloud.login_url(),
            self.cloud.tenant_id()
        );
        let body: Value = self
            .client
            .post(url)
            .form(&form)
            .send()
            .await?
            .json()
            .await?;
        Ok(body["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("deployer token for {resource} failed: {body}"))?
            .to_string())
    }

    fn service_url(&self, name: &str) -> Result<String> {
        self.cloud
            .service_urls()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, u)| u.trim_end_matches('/').to_string())
            .ok_or_else(|| anyhow!("the fake cloud serves no `{name}`"))
    }

    async fn provision(&self) -> Result<DataFacts> {
        let deployer = self.cloud.deployer().object_id;
        let (rg, loc, vm) = (self.rg_id, self.location, self.vm_principal);
        // Storage: a StorageV2 account, the tutorials' container and blob (the portal user
        // uploads with a data role), the VM reads with a data role and lists keys / SAS as
        // Storage Account Contributor.
        let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}");
        self.arm_put(
            &account,
            "2023-05-01",
            &json!({"location": loc, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}),
        )
        .await?;
        self.role(&account, "Storage Blob Data Contributor", &deployer)
            .await?;
        self.role(&account, "Storage Blob Data Reader", vm).await?;
        self.role(&account, "Storage Account Contributor", vm)
            .await?;
        let blob = self.service_url(&format!("blob:{STORAGE_ACCOUNT}"))?;
        let st = self.deployer_token("https://storage.azure.com/").await?;
        for (url, body) in [
            (format!("{blob}/{CONTAINER}?restype=container"), None),
            (
                format!("{blob}/{CONTAINER}/{BLOB}"),
                Some("Hello world! :)"),
            ),
        ] {
            let mut b = self
                .client
                .put(&url)
                .bearer_auth(&st)
                .header("x-ms-version", "2017-11-09");
            if let Some(body) = body {
                b = b.header("x-ms-blob-type", "BlockBlob").body(body);
            }
            let r = b.send().await?;
            if !r.status().is_success() {
                bail!(
                    "PUT {url} answered {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
        }
        // Key Vault: the secret, and the "Secret Management" access policy for the VM.
        let tenant = self.cloud.tenant_id();
        let vault = format!("{rg}/providers/Microsoft.KeyVault/vaults/{VAULT}");
        let v = self.arm_put(&vault, "2023-07-01", &json!({"location": loc, "properties": {
            "tenantId": tenant, "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [{"tenantId": tenant, "objectId": deployer, "permissions": {"keys": [], "secrets": ["get", "list", "set", "delete"], "certificates": []}}],
        }})).await?;
        self.arm_put(&format!("{vault}/accessPolicies/add"), "2023-07-01", &json!({"properties": {"accessPolicies": [{
            "tenantId": tenant, "objectId": vm,
            "permissions": {"keys": [], "secrets": ["get", "list", "set", "delete", "recover", "backup", "restore"], "certificates": []},
        }]}})).await?;
        let vault_base = self.service_url(&format!("vault:{VAULT}"))?;
        let kt = self.deployer_token("https://vault.azure.net").await?;
        self.call(
            "PUT",
            &format!("{vault_base}/secrets/{SECRET}?api-version=7.4"),
            &kt,
            Some(&json!({"value": "p@ssw0rd!"})),
        )
        .await?;
        // The doc's `<YOUR-KEY-VAULT-URL>` is the host of the vault's public URI (routed to
        // the fake's server for `vault:<name>`).
        let vault_host = v
            .pointer("/properties/vaultUri")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("https://"))
            .map_or_else(
                || format!("{VAULT}.vault.azure.net"),
                |u| {
                    u.trim_start_matches("https://")
                        .trim_end_matches('/')
                        .to_string()
                },
            );
        // Cosmos DB: the account; the VM lists its keys as DocumentDB Account Contributor.
        let cosmos = format!("{rg}/providers/Microsoft.DocumentDB/databaseAccounts/{COSMOS}");
        self.arm_put(&cosmos, "2024-05-15", &json!({"location": loc, "kind": "GlobalDocumentDB", "properties": {
            "databaseAccountOfferType": "Standard", "locations": [{"locationName": loc, "failoverPriority": 0}]}})).await?;
        self.role(&cosmos, "DocumentDB Account Contributor", vm)
            .await?;
        // The tutorial's database and collection `Test` (created in the portal): data-plane
        // requests signed with the account's master key.
        let keys = self
            .call(
                "POST",
                &format!(
                    "{}{cosmos}/listKeys?api-version=2024-05-15",
                    self.cloud.arm_url()
                ),
                self.operator_token,
                None,
            )
            .await?;
        let master = keys["primaryMasterKey"].as_str().unwrap_or_default();
        let docs = self.service_url(&format!("cosmos:{COSMOS}"))?;
        for (path, ty, link, body) in [
            ("dbs", "dbs", "", json!({"id": "Test"})),
            (
                "dbs/Test/colls",
                "colls",
                "dbs/Test",
                json!({"id": "Test", "partitionKey": {"paths": ["/id"], "kind": "Hash"}}),
            ),
        ] {
            let date = httpdate::fmt_http_date(std::time::SystemTime::now());
            let auth = mic_core::sign::cosmos_authorization("POST", ty, link, &date, master)
                .map_err(|e| anyhow!("signing the Cosmos DB request: {e}"))?;
            let url = format!("{docs}/{path}");
            let r = self
                .client
                .post(&url)
                .header("authorization", auth)
                .header("x-ms-date", date)
                .header("x-ms-version", "2018-12-31")
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!(
                    "POST {url} answered {}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
        }
        // Data Lake Store: the folder, r-x on the root and rwx on the folder for the VM.
        let adls = format!("{rg}/providers/Microsoft.DataLakeStore/accounts/{ADLS}");
        self.arm_put(&adls, "2016-11-01", &json!({"location": loc}))
            .await?;
        let lake = self.service_url(&format!("datalake:{ADLS}"))?;
        let dt = self.deployer_token("https://datalake.azure.net/").await?;
        self.call(
            "PUT",
            &format!("{lake}/webhdfs/v1/{ADLS_FOLDER}?op=MKDIRS"),
            &dt,
            None,
        )
        .await?;
        for (path, perms) in [("/", "r-x"), (&format!("/{ADLS_FOLDER}") as &str, "rwx")] {
            let spec = format!("user:{vm}:{perms}").replace(':', "%3A");
            self.call(
                "PUT",
                &format!("{lake}/webhdfs/v1{path}?op=MODIFYACLENTRIES&aclspec={spec}"),
                &dt,
                None,
            )
            .await?;
        }
        // Graph: Directory.Read.All for the VM (before its Graph token is minted).
        self.cloud
            .grant_graph_app_role(vm, "Directory.Read.All")
            .ok_or_else(|| anyhow!("the fake Graph has no Directory.Read.All app role"))?;
        // The group the tutorials add the VM's service principal to (New-AzureADGroup,
        // Add-AzureADGroupMember as the operator), so getMemberGroups has something to list.
        let operator_graph_token = self.deployer_token("https://graph.windows.net/").await?;
        let graph = self.cloud.graph_url();
        let graph = graph.trim_end_matches('/');
        let group = self
            .call(
                "POST",
                &format!("{graph}/myorganization/groups?api-version=1.6"),
                &operator_graph_token,
                Some(&json!({"displayName": "myGroup", "mailEnabled": false, "mailNickname": "NotSet", "securityEnabled": true})),
            )
            .await?;
        let group_id = group["objectId"]
            .as_str()
            .ok_or_else(|| anyhow!("Graph group without objectId: {group}"))?;
        let tenant = self.cloud.tenant_id();
        self.call(
            "POST",
            &format!("{graph}/myorganization/groups/{group_id}/$links/members?api-version=1.6"),
            &operator_graph_token,
            Some(&json!({"url": format!("{graph}/{tenant}/directoryObjects/{vm}")})),
        )
        .await?;
        // The keys the listKeys examples return: masked wherever a report would print them.
        let mut secrets = Vec::new();
        let mut storage_key = String::new();
        for path in [&account, &cosmos] {
            let api = if path == &account {
                "2023-05-01"
            } else {
                "2024-05-15"
            };
            let url = format!("{}{path}/listKeys?api-version={api}", self.cloud.arm_url());
            let keys = self.call("POST", &url, self.operator_token, None).await?;
            collect_strings(&keys, &mut secrets);
            if path == &account {
                storage_key = keys["keys"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        secrets.retain(|k| k.len() >= 20);
        // Azure SQL: a logical server whose Entra admin is the operator (the tutorial's
        // portal step) and a database, for the tutorial's T-SQL in the query editor.
        let d = self.cloud.deployer();
        let server = format!("{rg}/providers/Microsoft.Sql/servers/{SQL_SERVER}");
        let created = self
            .arm_put(
                &server,
                "2021-11-01",
                &json!({"location": loc, "properties": {"administratorLogin": "micadmin", "administratorLoginPassword": format!("P@{}", uuid::Uuid::new_v4().simple()), "version": "12.0"}}),
            )
            .await?;
        // Creating a server is a long-running operation: read it until it is there.
        let mut fqdn = created["properties"]["fullyQualifiedDomainName"]
            .as_str()
            .map(str::to_string);
        let url = format!("{}{server}?api-version=2021-11-01", self.cloud.arm_url());
        for _ in 0..100 {
            if fqdn.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (status, v) =
                send_json(self.client, "GET", &url, self.operator_token, None).await?;
            if status == 200 {
                fqdn = v["properties"]["fullyQualifiedDomainName"]
                    .as_str()
                    .map(str::to_string);
            }
        }
        let fqdn = fqdn.ok_or_else(|| anyhow!("SQL server {SQL_SERVER} was not created"))?;
        self.arm_put(
            &format!("{server}/databases/{SQL_DATABASE}"),
            "2021-11-01",
            &json!({"location": loc}),
        )
        .await?;
        self.arm_put(
            &format!("{server}/administrators/ActiveDirectory"),
            "2021-11-01",
            &json!({"properties": {"administratorType": "ActiveDirectory", "login": "operator", "sid": d.client_id, "tenantId": self.cloud.tenant_id()}}),
        )
        .await?;
        let operator_sql_token = self
            .deployer_token(mic_core::driver::sql::SQL_RESOURCE)
            .await?;
        Ok(DataFacts {
            vault_host,
            operator_graph_token,
            sql_target: format!("{fqdn}/{SQL_DATABASE}"),
            operator_sql_token,
            secrets,
            operator_storage_token: st,
            storage_key,
        })
    }
}

/// Every string in a JSON value (the key values of a listKeys response).
pub(crate) fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Hide the world's keys and tokens and every SAS signature (`sig=...`) in a report text.
pub fn mask_secrets(text: &str, secrets: &[String]) -> String {
    let mut s = text.to_string();
    for k in secrets.iter().filter(|k| !k.is_empty()) {
        if s.contains(k.as_str()) {
            s = s.replace(k.as_str(), "[secret]");
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("sig=") {
        out.push_str(&rest[..i + 4]);
        let after = &rest[i + 4..];
        let end = after
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(if end == 0 { "" } else { "[signature]" });
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl DataFacts {
    fn fill(&self, w: &mut World, tokens: &BTreeMap<&'static str, String>) {
        w.set("storage_account", STORAGE_ACCOUNT)
            .set("containername", CONTAINER)
            .set("filename", BLOB)
            .set("yourkeyvaulturl", self.vault_host.clone())
            .set("secretname", SECRET)
            .set("COSMOS DB ACCOUNT NAME", COSMOS)
            .set("keyoperationtype", "listKeys")
            .set("youradlsname", ADLS)
            .set("foldername", ADLS_FOLDER)
            .set("expirationtime", "2099-01-01T00:00:00Z")
            .set("sql server", SQL_SERVER)
            .set("database", SQL_DATABASE)
            .set("sql admin token", self.operator_sql_token.clone());
        // The operator's own credentials for the replayed storage and directory commands.
        w.set(
            "operator storage token",
            self.operator_storage_token.clone(),
        )
        .set("operator graph token", self.operator_graph_token.clone())
        .set("storage account key", self.storage_key.clone());
        if let Some(t) = tokens.get("vault") {
            w.set("keyvaulttoken", t.clone());
        }
    }
}

pub(crate) fn compute_body(
    is_vm: bool,
    name: &str,
    location: &str,
    os: &str,
    identity: &Value,
    rg_id: &str,
) -> Value {
    let image = if os == "windows" {
        json!({"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2019-Datacenter", "version": "latest"})
    } else {
        json!({"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"})
    };
    let storage = json!({"imageReference": image, "osDisk": {"caching": "ReadWrite", "managedDisk": {"storageAccountType": "Standard_LRS"}, "createOption": "FromImage"}});
    // The fake never logs in to the VM; a fresh random password keeps the body realistic.
    let password = format!("Pw-{}", uuid::Uuid::new_v4().simple());
    if is_vm {
        json!({"location": location, "identity": identity, "properties": {
            "hardwareProfile": {"vmSize": "Standard_B1s"},
            "storageProfile": storage,
            "osProfile": {"adminUsername": "azureuser", "computerName": name, "adminPassword": password},
            "networkProfile": {"networkInterfaces": [{"id": format!("{rg_id}/providers/Microsoft.Network/networkInterfaces/{name}-nic"), "properties": {"primary": true}}]},
        }})
    } else {
        json!({"location": location, "identity": identity, "sku": {"name": "Standard_B1s", "tier": "Standard", "capacity": 1}, "properties": {
            "overprovision": false, "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "storageProfile": storage,
                "osProfile": {"computerNamePrefix": name, "adminUsername": "azureuser", "adminPassword": password},
                "networkProfile": {"networkInterfaceConfigurations": [{"name": name, "properties": {"primary": true, "ipConfigurations": [{"name": name, "properties": {"subnet": {"id": format!("{rg_id}/providers/Microsoft.Network/virtualNetworks/{name}-vnet/subnets/default")}}}]}}]},
            },
        }})
    }
}

// ----------------------------------------------------------------------------- the executor

/// Runs the docs' requests against the scenario world (sync trait, async fake: `block_on`
/// from the blocking thread the check runs on).
pub struct FakeExecutor {
    handle: tokio::runtime::Handle,
    world: FakeDocsWorld,
}

impl FakeExecutor {
    pub fn new(handle: tokio::runtime::Handle, world: FakeDocsWorld) -> Self {
        Self { handle, world }
    }

    /// Where a request goes, or why it cannot be checked.
    fn route(&self, req: &ResolvedRequest) -> Result<String, String> {
        let w = &self.world;
        let url = req.url.trim();
        let (scheme_host, rest) = split_origin(url);
        match req.service {
            Service::Imds => {
                let base = w
                    .cloud
                    .imds_url(&w.host_vm_id)
                    .ok_or("the VM has no IMDS endpoint")?;
                Ok(format!(
                    "{base}{}",
                    sample_identity(rest, &self.world.identities())
                ))
            }
            Service::Extension => match w.cloud.extension_url(&w.host_vm_id) {
                Some(base) => Ok(format!(
                    "{base}{}",
                    sample_identity(rest, &self.world.identities())
                )),
                None => {
                    Err("the VM extension endpoint is not running (extension not installed)".into())
                }
            },
            Service::Arm => {
                if !scheme_host
                    .to_ascii_lowercase()
                    .starts_with("https://management.azure.com")
                {
                    return Err(format!(
                        "`{scheme_host}` is not the public-cloud Resource Manager the fake serves"
                    ));
                }
                Ok(format!(
                    "{}{}",
                    w.cloud.arm_url(),
                    sample_subscription(rest, &self.world.subscription_id)
                ))
            }
            Service::Local | Service::Unknown => Err(format!(
                "`{scheme_host}` is not a service the checker can call"
            )),
            data => {
                let host = scheme_host
                    .split("://")
                    .nth(1)
                    .unwrap_or(scheme_host)
                    .to_ascii_lowercase();
                let first = host.split('.').next().unwrap_or("");
                let prefix = match data {
                    Service::Blob => "blob",
                    Service::KeyVault => "vault",
                    Service::Cosmos => "cosmos",
                    Service::DataLake => "datalake",
                    Service::Graph => "graph",
                    Service::Sql => "sql",
                    _ => "",
                };
                let urls = w.cloud.service_urls();
                let wanted = if data == Service::Graph {
                    "graph".to_string()
                } else {
                    format!("{prefix}:{first}")
                };
                if let Some((_, base)) = urls.iter().find(|(n, _)| n.eq_ignore_ascii_case(&wanted))
                {
                    return Ok(format!("{}{rest}", base.trim_end_matches('/')));
                }
                if urls.iter().any(|(n, _)| n.starts_with(prefix)) {
                    Err(format!(
                        "the scenario world has no {} `{host}`",
                        data.name()
                    ))
                } else {
                    Err(format!(
                        "the fake cloud has no {} data plane yet",
                        data.name()
                    ))
                }
            }
        }
    }

    /// The Linux Graph tutorial's operator step granting `Directory.Read.All` to the VM: the
    /// world granted exactly that assignment up front (so that the earlier Windows tutorial's
    /// token examples work), and Azure answers a repeat with 400 "One or more properties are
    /// invalid" (as the article itself notes), so sending it again checks nothing.
    fn repeated_graph_grant(&self, req: &ResolvedRequest) -> Option<String> {
        if req.service != Service::Graph
            || req.method != "POST"
            || !req.url.to_ascii_lowercase().contains("/approleassignments")
        {
            return None;
        }
        let body: Value = serde_json::from_str(req.body.as_deref()?).ok()?;
        let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
        let read_all = mic_fake::graph::GRAPH_APP_ROLES
            .iter()
            .find(|(_, v, _)| *v == "Directory.Read.All")?
            .0;
        (field("id").eq_ignore_ascii_case(read_all)
            && field("principalId").eq_ignore_ascii_case(&self.world.vm_principal_id)
            && field("resourceId").eq_ignore_ascii_case(mic_fake::graph::GRAPH_SP_OBJECT_ID))
        .then(|| {
            "the scenario world already granted this app role (Directory.Read.All for the VM, \
             so that the Graph token examples work); Azure answers a repeat with 400 \
             Request_BadRequest"
                .to_string()
        })
    }

    /// A replayed command that would take `myVM`'s system-assigned identity away (or delete
    /// the VM): later examples use that identity's principal (group membership, ACLs, app
    /// roles), and Azure never gives a re-enabled identity the same principal, so the world
    /// could not be put back. Such commands are checked statically only.
    fn would_strip_host(&self, req: &ResolvedRequest) -> Option<String> {
        if !req.inferred
            || req.service != Service::Arm
            || matches!(req.method.as_str(), "GET" | "HEAD")
        {
            return None;
        }
        let path = split_url_path(&req.url).to_ascii_lowercase();
        let host = self.world.host_vm_id.to_ascii_lowercase();
        let host_name = host.rsplit('/').next().unwrap_or_default();
        let targets_host = path.trim_end_matches('/').ends_with(&format!(
            "/providers/microsoft.compute/virtualmachines/{host_name}"
        )) && path
            .contains(&format!("/resourcegroups/{}/", RG.to_ascii_lowercase()));
        if !targets_host {
            return None;
        }
        let drops_system = req.method == "DELETE"
            || req
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|b| b["identity"]["type"].as_str().map(str::to_ascii_lowercase))
                .is_some_and(|t| !t.contains("systemassigned"));
        drops_system.then(|| {
            format!(
                "not replayed: it would take the system-assigned identity of the world's {LINUX_VM} away, which later examples use (a re-enabled identity gets a new principal); checked statically"
            )
        })
    }

    /// `az group create` / `New-AzResourceGroup` of a group the world already has elsewhere:
    /// keep the world's location (Azure answers 409 InvalidResourceGroupLocation otherwise,
    /// which says nothing about the doc).
    async fn keep_group_location(
        &self,
        req: &ResolvedRequest,
        url: &str,
    ) -> Option<ResolvedRequest> {
        let Action::Arm { resource_type, .. } = &req.action else {
            return None;
        };
        if !req.inferred
            || req.method != "PUT"
            || !resource_type.eq_ignore_ascii_case("Microsoft.Resources/resourceGroups")
        {
            return None;
        }
        let (status, current) = send_json(
            &self.world.client,
            "GET",
            url,
            &self.world.operator_token,
            None,
        )
        .await
        .ok()?;
        let loc = current["location"].as_str().filter(|_| status == 200)?;
        let mut body: Value = serde_json::from_str(req.body.as_deref()?).ok()?;
        body["location"] = json!(loc);
        let mut r = req.clone();
        r.body = Some(body.to_string());
        Some(r)
    }

    async fn send(&self, req: &ResolvedRequest, url: String) -> Result<ExecResponse, String> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| format!("method `{}`: {e}", req.method))?;
        let mut b = self.world.client.request(method, &url);
        let write = !matches!(req.method.as_str(), "GET" | "HEAD");
        for (k, v) in &req.headers {
            if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            let mut v = v.clone();
            // The REST how-tos write with the operator's token (`az account get-access-token`).
            if req.service == Service::Arm
                && write
                && k.eq_ignore_ascii_case("authorization")
                && v.contains(&self.world.vm_token)
            {
                v = v.replace(&self.world.vm_token, &self.world.operator_token);
            }
            // `<ACCESS TOKEN>` in a data-plane example is the token the tutorial fetched
            // for that service just before.
            // Graph writes other than the VM's own `getMemberGroups` are the operator's setup
            // steps (`az account get-access-token --resource https://graph.windows.net/`).
            let graph_setup = req.service == Service::Graph
                && write
                && !url.to_ascii_lowercase().contains("/getmember");
            if k.eq_ignore_ascii_case("authorization") {
                // A replayed CLI/PowerShell command runs as the signed-in operator.
                if req.inferred && req.service == Service::Arm {
                    v = v.replace(&self.world.vm_token, &self.world.operator_token);
                } else if graph_setup || (req.inferred && req.service == Service::Graph) {
                    v = v.replace(&self.world.vm_token, &self.world.operator_graph_token);
                } else if let Some(t) = self.world.data_tokens.get(data_plane_key(req.service)) {
                    v = v.replace(&self.world.vm_token, t);
                }
            }
            b = b.header(k.as_str(), v);
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        let resp = b
            .send()
            .await
            .map_err(|e| format!("could not send the request: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        // Errors read better in the doc's own terms than with the world's ids.
        let body = if status >= 400 {
            body.replace(&self.world.subscription_id, "<SUBSCRIPTION ID>")
        } else {
            body
        };
        if req.service == Service::Arm
            && write
            && url
                .to_ascii_lowercase()
                .contains(&self.world.host_vm_id.to_ascii_lowercase())
        {
            self.world.restore_host().await;
        }
        Ok(ExecResponse {
            status,
            headers,
            body,
        })
    }
}

/// `/subscriptions/<sample GUID>/` stands for the reader's subscription `sub`.
pub(crate) fn sample_subscription(path: &str, sub: &str) -> String {
    let lower = path.to_ascii_lowercase();
    let Some(i) = lower.find("/subscriptions/") else {
        return path.to_string();
    };
    let start = i + "/subscriptions/".len();
    let end = path[start..]
        .find(['/', '?'])
        .map_or(path.len(), |j| start + j);
    let seg = &path[start..end];
    if seg != sub && mic_docs::placeholder::looks_like_guid(seg) {
        format!("{}{sub}{}", &path[..start], &path[end..])
    } else {
        path.to_string()
    }
}

/// The world's identities a sample GUID in an IMDS query may stand for.
pub(crate) struct WorldIdentities<'a> {
    pub uami_client: &'a str,
    pub uami_principal: &'a str,
    pub vm_principal: &'a str,
}

/// A sample GUID in `client_id=` / `object_id=` stands for the reader's identity.
pub(crate) fn sample_identity(rest: &str, w: &WorldIdentities<'_>) -> String {
    let Some((path, query)) = rest.split_once('?') else {
        return rest.to_string();
    };
    let known = [w.uami_client, w.uami_principal, w.vm_principal];
    let parts: Vec<String> = query
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            if mic_docs::placeholder::looks_like_guid(v)
                && !known.iter().any(|x| x.eq_ignore_ascii_case(v))
            {
                match k.to_ascii_lowercase().as_str() {
                    "client_id" => return format!("{k}={}", w.uami_client),
                    "object_id" | "principal_id" => {
                        return format!("{k}={}", w.uami_principal);
                    }
                    _ => {}
                }
            }
            p.to_string()
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// The `data_tokens` key of a data-plane service (`""` for the others).
fn data_plane_key(s: Service) -> &'static str {
    match s {
        Service::Blob => "blob",
        Service::KeyVault => "vault",
        Service::DataLake => "datalake",
        Service::Graph => "graph",
        _ => "",
    }
}

/// The path of a URL (no query).
fn split_url_path(url: &str) -> &str {
    let (_, rest) = split_origin(url);
    rest.split('?').next().unwrap_or(rest)
}

/// `https://host[:port]` and the rest (path and query).
pub(crate) fn split_origin(url: &str) -> (&str, &str) {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find(['/', '?']) {
        Some(j) => (&url[..after + j], &url[after + j..]),
        None => (url, ""),
    }
}

impl Executor for FakeExecutor {
    /// Shared Key with the repo's signer (`mic_core::sign`), as the storage tools sign.
    fn sign_shared_key(
        &self,
        req: &mut ResolvedRequest,
        account: &str,
        key: &str,
    ) -> Result<(), String> {
        let mut r = mic_core::backend::HttpRequest::new(&req.method, req.url.clone());
        r.headers.clone_from(&req.headers);
        r.body = req.body.as_ref().map(|b| b.as_bytes().to_vec());
        mic_core::sign::shared_key(account, key, &mut r)
            .map_err(|e| format!("signing the storage request: {e}"))?;
        req.headers = r.headers;
        Ok(())
    }

    fn execute(&self, req: &ResolvedRequest) -> Result<ExecResponse, String> {
        if req.url.is_empty() {
            return Err("local command: checked statically, nothing to send".into());
        }
        if req.service == Service::Arm && req.headers.is_empty() && req.body.is_none() {
            return Err("request line only (the doc lists its headers separately); nothing to send as written".into());
        }
        if !req.unresolved.is_empty() {
            return Err(format!(
                "needs {} which the scenario world does not provide",
                req.unresolved.join(", ")
            ));
        }
        if let Some(why) = self.repeated_graph_grant(req) {
            return Err(why);
        }
        if req.method == "SQL" {
            let token = req
                .header("Authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or_default();
            let query = req.body.as_deref().unwrap_or_default();
            let (status, body) = self.handle.block_on(mic_core::driver::sql::run_batch(
                &self.world.sql_target,
                token,
                query,
            ))?;
            return Ok(ExecResponse {
                status,
                headers: Vec::new(),
                body,
            });
        }
        if let Some(why) = self.would_strip_host(req) {
            return Err(why);
        }
        // A URL a fake service handed out itself (a redirect's `Location`, held in a
        // PowerShell variable): send it there, as the service it belongs to.
        if matches!(req.service, Service::Unknown | Service::Local) {
            let (origin, _) = split_origin(req.url.trim());
            let urls = self.world.cloud.service_urls();
            if let Some((name, _)) = urls
                .iter()
                .find(|(_, base)| base.trim_end_matches('/').eq_ignore_ascii_case(origin))
            {
                let mut r = req.clone();
                r.service = match name.split(':').next().unwrap_or_default() {
                    "blob" => Service::Blob,
                    "vault" => Service::KeyVault,
                    "cosmos" => Service::Cosmos,
                    "datalake" => Service::DataLake,
                    "graph" => Service::Graph,
                    _ => req.service,
                };
                return self
                    .handle
                    .block_on(self.send(&r, req.url.trim().to_string()));
            }
        }
        let url = self.route(req)?;
        if let Some(req) = self.handle.block_on(self.keep_group_location(req, &url)) {
            return self.handle.block_on(self.send(&req, url));
        }
        self.handle.block_on(self.send(req, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_sas_signatures_are_masked() {
        let keys = vec!["c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw".to_string()];
        assert_eq!(
            mask_secrets(
                r#"doc shows "sv=2015-04-05&sr=c&sig=QcVw%2F0%3D", service returns "se=x&sig=a3D%2B&sp=r"; key c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw"#,
                &keys
            ),
            r#"doc shows "sv=2015-04-05&sr=c&sig=[signature]", service returns "se=x&sig=[signature]&sp=r"; key [secret]"#
        );
        assert_eq!(mask_secrets("no secret, sig=", &keys), "no secret, sig=");
    }

    #[test]
    fn reason_groups_drop_line_numbers() {
        assert_eq!(
            reason_group(
                "parsed and statically consistent; L1783: the fake cloud has no Key Vault (data plane) data plane yet"
            ),
            "the fake cloud has no Key Vault (data plane) data plane yet"
        );
        assert_eq!(
            reason_group(
                "output of L653, which was not executed: needs <X> which the scenario world does not provide"
            ),
            "example output of a request or command that was not executed"
        );
        assert_eq!(section("NOTE"), None);
        assert_eq!(
            section("Read properties").as_deref(),
            Some("Read properties")
        );
        assert_eq!(
            split_origin("https://management.azure.com/subscriptions/x?a=b"),
            ("https://management.azure.com", "/subscriptions/x?a=b")
        );
        assert_eq!(
            split_origin("http://169.254.169.254"),
            ("http://169.254.169.254", "")
        );
    }
}
