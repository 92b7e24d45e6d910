//! Code-block extraction from markdown articles (pulldown-cmark) and from the
//! PDF/text export of the doc set (a line scanner that understands nested fences).

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Serialize;

/// How an article file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// A markdown article (fenced and indented code blocks, parsed with pulldown-cmark).
    Markdown,
    /// A text export of many articles: fences may nest (```` ``` ```` around ```` ```json ````),
    /// long lines were wrapped by the PDF export, indented blocks are not code.
    TextExport,
}

impl SourceFormat {
    /// Guess the format: a file without YAML front matter that carries the export's
    /// "N minutes to read" stamps, or that nests fences, is a text export.
    pub fn detect(text: &str) -> Self {
        let has_front_matter = text.trim_start_matches('\u{feff}').starts_with("---");
        if has_front_matter {
            return Self::Markdown;
        }
        if text.contains(" minutes to read") || has_nested_fence(text) {
            Self::TextExport
        } else {
            Self::Markdown
        }
    }
}

fn has_nested_fence(text: &str) -> bool {
    let mut open: Option<bool> = None; // Some(bare)
    for line in text.lines() {
        if let Some(f) = Fence::parse(line) {
            match open {
                None => open = Some(f.info.is_empty()),
                Some(true) if !f.info.is_empty() => return true,
                Some(_) if f.info.is_empty() => open = None,
                Some(_) => {}
            }
        }
    }
    false
}

/// One code block of an article.
#[derive(Debug, Clone, Serialize)]
pub struct CodeBlock {
    /// 0-based position in the article.
    pub index: usize,
    /// 1-based line of the opening fence (first line for indented blocks).
    pub start_line: usize,
    /// 1-based line of the closing fence (last line for indented blocks).
    pub end_line: usize,
    /// 1-based line of the first content line.
    pub content_start: usize,
    /// Info string of the fence (empty for bare fences and indented blocks).
    pub info: String,
    /// Block content as written (one entry per source line, indentation removed as markdown does).
    pub lines: Vec<String>,
    /// True for fenced blocks, false for indented blocks.
    pub fenced: bool,
    /// True when the export nested this block inside another fence.
    pub nested: bool,
    /// Nearest heading above the block.
    pub heading: String,
    /// Top-level (`# `) article title the block belongs to (relevant for the text export).
    pub article_title: String,
    /// 1-based line of that title (0 when none).
    pub article_line: usize,
    /// The prose paragraph(s) between the previous block/heading and this block.
    pub prose: String,
}

impl CodeBlock {
    /// Content joined with newlines.
    pub fn raw(&self) -> String {
        self.lines.join("\n")
    }

    /// 1-based source line of content line `i` (0-based).
    pub fn line_of(&self, i: usize) -> usize {
        self.content_start + i
    }
}

/// Extract code blocks, choosing the scanner with [`SourceFormat::detect`].
pub fn extract(text: &str) -> (SourceFormat, Vec<CodeBlock>) {
    let format = SourceFormat::detect(text);
    let blocks = match format {
        SourceFormat::Markdown => extract_markdown(text),
        SourceFormat::TextExport => extract_text_export(text),
    };
    (format, blocks)
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            v.push(i + 1);
        }
    }
    v
}

fn line_at(starts: &[usize], offset: usize) -> usize {
    match starts.binary_search(&offset) {
        Ok(i) => i + 1,
        Err(i) => i, // i >= 1 because starts[0] == 0
    }
}

/// Markdown extraction with pulldown-cmark (fenced and indented blocks).
pub fn extract_markdown(text: &str) -> Vec<CodeBlock> {
    let starts = line_starts(text);
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter();
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut article_title = String::new();
    let mut article_line = 0;
    let mut in_heading: Option<(HeadingLevel, usize)> = None;
    let mut heading_buf = String::new();
    let mut prose = String::new();
    let mut para_buf = String::new();
    let mut in_para = false;
    let mut current: Option<CodeBlock> = None;
    let mut code_buf = String::new();

    for (event, range) in parser {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                in_heading = Some((level, line_at(&starts, range.start)));
                heading_buf.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, line)) = in_heading.take() {
                    heading = heading_buf.trim().to_string();
                    if level == HeadingLevel::H1 {
                        article_title.clone_from(&heading);
                        article_line = line;
                    }
                    prose.clear();
                }
            }
            Event::Start(Tag::Paragraph) => {
                in_para = true;
                para_buf.clear();
            }
            Event::End(TagEnd::Paragraph) => {
                in_para = false;
                if !prose.is_empty() {
                    prose.push('\n');
                }
                prose.push_str(para_buf.trim());
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let start_line = line_at(&starts, range.start);
                let end_line = line_at(&starts, range.end.saturating_sub(1).max(range.start));
                let (info, fenced) = match kind {
                    CodeBlockKind::Fenced(info) => (info.trim().to_string(), true),
                    CodeBlockKind::Indented => (String::new(), false),
                };
                code_buf.clear();
                current = Some(CodeBlock {
                    index: blocks.len(),
                    start_line,
                    end_line,
                    content_start: if fenced { start_line + 1 } else { start_line },
                    info,
                    lines: Vec::new(),
                    fenced,
                    nested: false,
                    heading: heading.clone(),
                    article_title: article_title.clone(),
                    article_line,
                    prose: prose.clone(),
                });
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(mut b) = current.take() {
                    let content = code_buf.strip_suffix('\n').unwrap_or(&code_buf);
                    b.lines = if content.is_empty() {
                        Vec::new()
                    } else {
                        content
                            .split('\n')
                            .map(|l| l.trim_end_matches('\r').to_string())
                            .collect()
                    };
                    // An unterminated fence runs to the end of the document.
                    if b.fenced && b.end_line < b.content_start + b.lines.len() {
                        b.end_line = b.content_start + b.lines.len();
                    }
                    blocks.push(b);
                    prose.clear();
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if current.is_some() {
                    code_buf.push_str(&t);
                } else if in_heading.is_some() {
                    heading_buf.push_str(&t);
                } else if in_para {
                    para_buf.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak if in_para => para_buf.push(' '),
            _ => {}
        }
    }
    blocks
}

#[derive(Debug, Clone)]
struct Fence {
    ch: char,
    len: usize,
    info: String,
}

impl Fence {
    fn parse(line: &str) -> Option<Self> {
        let trimmed = line.trim_start();
        let ch = trimmed.chars().next()?;
        if ch != '`' && ch != '~' {
            return None;
        }
        let len = trimmed.chars().take_while(|&c| c == ch).count();
        if len < 3 {
            return None;
        }
        let info = trimmed[len * ch.len_utf8()..].trim().to_string();
        if ch == '`' && info.contains('`') {
            return None;
        }
        Some(Self { ch, len, info })
    }

    fn closes(&self, other: &Fence) -> bool {
        other.ch == self.ch && other.len >= self.len && other.info.is_empty()
    }
}

struct OpenBlock {
    fence: Fence,
    start_line: usize,
    /// Content lines (line number, text) that are not inner fences.
    content: Vec<(usize, String)>,
    inner_info: Option<String>,
    nested: bool,
    heading: String,
    article_title: String,
    article_line: usize,
    prose: String,
}

/// Line scanner for the text export: fences may nest; indented text is prose.
pub fn extract_text_export(text: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut stack: Vec<OpenBlock> = Vec::new();
    let mut heading = String::new();
    let mut article_title = String::new();
    let mut article_line = 0;
    let mut prose: Vec<String> = Vec::new();

    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let fence = Fence::parse(line);
        if stack.is_empty() {
            if let Some(f) = fence {
                stack.push(OpenBlock {
                    fence: f,
                    start_line: lineno,
                    content: Vec::new(),
                    inner_info: None,
                    nested: false,
                    heading: heading.clone(),
                    article_title: article_title.clone(),
                    article_line,
                    prose: prose.join("\n"),
                });
                prose.clear();
                continue;
            }
            let t = line.trim();
            if let Some(h) = heading_text(t) {
                heading = h.1.to_string();
                if h.0 == 1 {
                    article_title.clone_from(&heading);
                    article_line = lineno;
                }
                prose.clear();
            } else if !t.is_empty() {
                prose.push(t.to_string());
                if prose.len() > 6 {
                    prose.remove(0);
                }
            }
            continue;
        }
        let depth = stack.len();
        match fence {
            Some(f) if stack[depth - 1].fence.closes(&f) => {
                let Some(done) = stack.pop() else { continue };
                if let Some(outer) = stack.last_mut() {
                    // inner block closed: its content becomes the outer's content
                    outer.nested = true;
                    outer.inner_info = Some(done.fence.info.clone());
                    outer.content.extend(done.content);
                } else {
                    blocks.push(finish(done, lineno, blocks.len()));
                }
            }
            Some(f) if !f.info.is_empty() && stack[depth - 1].fence.info.is_empty() => {
                // An opening fence with an info string inside a bare fence: the export nested it.
                let outer = &stack[depth - 1];
                stack.push(OpenBlock {
                    fence: f,
                    start_line: lineno,
                    content: Vec::new(),
                    inner_info: None,
                    nested: true,
                    heading: outer.heading.clone(),
                    article_title: outer.article_title.clone(),
                    article_line: outer.article_line,
                    prose: outer.prose.clone(),
                });
            }
            _ => {
                if let Some(top) = stack.last_mut() {
                    top.content.push((lineno, line.to_string()));
                }
            }
        }
    }
    // Unterminated fences run to the end of the file.
    let last = text.lines().count();
    while let Some(done) = stack.pop() {
        if let Some(outer) = stack.last_mut() {
            outer.nested = true;
            outer.inner_info = Some(done.fence.info.clone());
            outer.content.extend(done.content);
        } else {
            blocks.push(finish(done, last, blocks.len()));
        }
    }
    blocks
}

fn heading_text(t: &str) -> Option<(usize, &str)> {
    let level = t.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&level) && t[level..].starts_with(' ') {
        Some((level, t[level..].trim()))
    } else {
        None
    }
}

fn finish(open: OpenBlock, end_line: usize, index: usize) -> CodeBlock {
    let info = match (&open.inner_info, open.fence.info.is_empty()) {
        (Some(inner), true) => inner.clone(),
        _ => open.fence.info.clone(),
    };
    // Drop blank lines the export put around the content, keep line numbers right.
    let mut content = open.content;
    while content.first().is_some_and(|(_, l)| l.trim().is_empty()) {
        content.remove(0);
    }
    while content.last().is_some_and(|(_, l)| l.trim().is_empty()) {
        content.pop();
    }
    let content_start = content.first().map_or(open.start_line + 1, |(n, _)| *n);
    // Lines must be contiguous for line_of(); fill gaps left by inner fences with empty lines.
    let mut lines = Vec::new();
    let mut expected = content_start;
    for (n, l) in content {
        while expected < n {
            lines.push(String::new());
            expected += 1;
        }
        lines.push(l);
        expected = n + 1;
    }
    CodeBlock {
        index,
        start_line: open.start_line,
        end_line,
        content_start,
        info,
        lines,
        fenced: true,
        nested: open.nested,
        heading: open.heading,
        article_title: open.article_title,
        article_line: open.article_line,
        prose: open.prose,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fences_merge_into_one_block() {
        let text = "# T\n\nintro\n\n```\n\n```json\n{\"a\":1}\n```\n\n```\nafter\n```\nx\n```\n";
        let blocks = extract_text_export(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].info, "json");
        assert!(blocks[0].nested);
        assert_eq!(blocks[0].start_line, 5);
        assert_eq!(blocks[0].end_line, 11);
        assert_eq!(blocks[0].content_start, 8);
        assert_eq!(blocks[0].lines, vec!["{\"a\":1}"]);
        assert_eq!(blocks[1].start_line, 13);
    }

    #[test]
    fn markdown_blocks_have_lines_and_info() {
        let text = "---\na: b\n---\n# Title\n\nSay hi:\n\n   ```azurecli\n   az login\n   ```\n\n    indented\n";
        let blocks = extract_markdown(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].info, "azurecli");
        assert_eq!(blocks[0].start_line, 8);
        assert_eq!(blocks[0].end_line, 10);
        assert_eq!(blocks[0].lines, vec!["az login"]);
        assert_eq!(blocks[0].prose, "Say hi:");
        assert_eq!(blocks[0].article_title, "Title");
        assert!(!blocks[1].fenced);
        assert_eq!(blocks[1].start_line, 12);
    }

    #[test]
    fn detect_formats() {
        assert_eq!(
            SourceFormat::detect("---\nx\n---\n"),
            SourceFormat::Markdown
        );
        assert_eq!(
            SourceFormat::detect("# A\n3/26/2019 • 3 minutes to read\n"),
            SourceFormat::TextExport
        );
    }
}
