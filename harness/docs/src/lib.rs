//! `mic-docs`: the docs checker behind `mic docs check`.
//!
//! Pipeline per article: [`extract`] code blocks (markdown via pulldown-cmark, or the
//! text export with nested fences) -> [`wrap`] re-join wrapped command lines ->
//! [`classify`] -> [`parse`] (curl, PowerShell, raw HTTP, az, cmdlets) -> [`op`] map to
//! [`op::DocOperation`] -> static checks and execution through an [`exec::Executor`]
//! -> [`report`] (text, JSON, Markdown).
//!
//! ```no_run
//! use mic_docs::{check_article, CheckOptions, exec::NotExecuted, placeholder::World, report};
//! let text = std::fs::read_to_string("docs/articles/002_b842000a364b5c0e.txt").unwrap();
//! let world = World::new();
//! let opts = CheckOptions { world: &world, executor: &NotExecuted, coverage: &[] };
//! let r = check_article("002_b842000a364b5c0e.txt", &text, &opts);
//! println!("{}", report::render_markdown(&[r]));
//! ```

pub mod check;
pub mod classify;
pub mod exec;
pub mod extract;
pub mod json;
pub mod op;
pub mod parse;
pub mod placeholder;
pub mod psenv;
pub mod report;
pub mod specs;
pub mod tool;
pub mod tool_data;
pub mod wrap;

pub use check::{BlockAnalysis, CheckOptions, analyse, check_article, static_findings};
pub use exec::{ExecResponse, Executor, NotExecuted, ResolvedRequest, StubCloud};
pub use op::DocOperation;
pub use placeholder::World;
pub use report::{ArticleReport, CoverageEntry, Finding, FindingKind, Severity, Status};
