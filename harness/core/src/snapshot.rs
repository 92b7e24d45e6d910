//! Snapshot files: one set under `snapshots/`, shared by every backend, in insta's `.snap`
//! format so that `cargo insta review` works on them. The conformance tests assert them with
//! insta; the `mic` CLI reads and compares the same files.

use std::path::{Path, PathBuf};

use crate::driver::{RunOutcome, Trial};

/// `snapshots/<area>/<name>.snap` (`<name>@without-grant.snap` for the grant-necessity trial).
pub fn path(root: &Path, scenario_id: &str, trial: Trial) -> PathBuf {
    let (area, name) = scenario_id.split_once('/').unwrap_or(("misc", scenario_id));
    let file = match trial {
        Trial::Normal => format!("{name}.snap"),
        Trial::WithoutGrant => format!("{name}@without-grant.snap"),
    };
    root.join(area).join(file)
}

/// The directory insta should write a scenario's snapshots to.
pub fn dir(root: &Path, scenario_id: &str) -> PathBuf {
    let area = scenario_id.split_once('/').map_or("misc", |(a, _)| a);
    root.join(area)
}

/// The body of an insta `.snap` file (after its `---` header).
pub fn read_body(text: &str) -> String {
    let mut parts = text.splitn(3, "---\n");
    match (parts.next(), parts.next(), parts.next()) {
        (Some(""), Some(_header), Some(body)) => body.trim_end().to_string(),
        _ => text.trim_end().to_string(),
    }
}

/// Write a snapshot file in insta's format.
pub fn write(path: &Path, expression: &str, body: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = format!("---\nsource: harness/conformance/tests/scenarios.rs\nexpression: {expression}\n---\n{}\n", body.trim_end());
    std::fs::write(path, text)
}

/// Result of comparing a run with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Matches,
    /// No snapshot stored yet.
    Missing(PathBuf),
    /// Differs: a unified-ish line diff.
    Differs { path: PathBuf, diff: String },
}

/// Compare a run's redacted snapshot text with the stored file.
pub fn compare(root: &Path, outcome: &RunOutcome) -> Option<Comparison> {
    let actual = outcome.snapshot.as_ref()?;
    let path = path(root, &outcome.scenario_id, outcome.trial);
    let Ok(stored) = std::fs::read_to_string(&path) else {
        return Some(Comparison::Missing(path));
    };
    let expected = read_body(&stored);
    if expected == actual.trim_end() {
        Some(Comparison::Matches)
    } else {
        Some(Comparison::Differs { diff: line_diff(&expected, actual.trim_end()), path })
    }
}

/// A small line diff: `-` expected, `+` actual, with a line of context.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table (snapshots are small).
    let (n, m) = (e.len(), a.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if e[i] == a[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && e[i] == a[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", a[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", e[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_insta_body() {
        let text = "---\nsource: x\nexpression: y\n---\nline 1\nline 2\n";
        assert_eq!(read_body(text), "line 1\nline 2");
    }

    #[test]
    fn diff_shows_changed_lines() {
        assert_eq!(line_diff("a\nb\nc", "a\nB\nc"), "+B\n-b\n");
        assert_eq!(line_diff("a", "a"), "");
    }
}
