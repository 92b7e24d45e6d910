//! Reporters: a readable console table, JSON, and JUnit XML (quick-junit).

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::{Value, json};

use crate::driver::{StepStatus, Trial, Verdict};
use crate::runner::{RunReport, TrialResult};
use crate::snapshot::Comparison;

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

fn trial_name(t: Trial) -> &'static str {
    match t {
        Trial::Normal => "as written",
        Trial::WithoutGrant => "without grant",
    }
}

fn result_word(r: &TrialResult) -> &'static str {
    if r.ignored() {
        "ignored"
    } else if !r.outcome.passed() {
        "FAIL"
    } else {
        match &r.snapshot {
            Some(Comparison::Differs { .. }) => "FAIL (snapshot)",
            Some(Comparison::Missing(_)) => "pass (new snapshot)",
            _ => "pass",
        }
    }
}

fn steps_cell(r: &TrialResult) -> String {
    let steps: Vec<_> = r
        .outcome
        .steps
        .iter()
        .filter(|s| s.id != "teardown")
        .collect();
    let ran = steps
        .iter()
        .filter(|s| !matches!(s.status, StepStatus::Skipped(_)))
        .count();
    format!("{ran}/{}", steps.len())
}

/// The console table plus failure details and a summary line.
pub fn console(report: &RunReport) -> String {
    let mut out = String::new();
    let width = report
        .results
        .iter()
        .map(|r| r.outcome.scenario_id.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:<width$}  {:<13}  {:>5}  {:<19}  {:>8}",
        "scenario", "trial", "steps", "result", "time"
    );
    let _ = writeln!(out, "{}", "-".repeat(width + 55));
    for r in &report.results {
        let o = &r.outcome;
        let waited: Duration = o.steps.iter().filter_map(|s| s.propagation_wait).sum();
        let _ = writeln!(
            out,
            "{:<width$}  {:<13}  {:>5}  {:<19}  {:>8}{}",
            o.scenario_id,
            trial_name(o.trial),
            steps_cell(r),
            result_word(r),
            ms(o.duration),
            if waited.is_zero() {
                String::new()
            } else {
                format!("  (waited {} for the grant to propagate)", ms(waited))
            }
        );
    }
    for r in &report.results {
        if let Some(f) = r.outcome.failure_report() {
            let _ = writeln!(out, "\n{f}");
        }
        if r.outcome.passed()
            && let Some(Comparison::Differs { path, diff }) = &r.snapshot
        {
            let _ = writeln!(
                out,
                "\n{} differs from its snapshot {} (- stored, + this run):\n{diff}  review: cargo insta review   rerun: {}",
                r.outcome.trial_name(),
                path.display(),
                r.outcome.rerun_command()
            );
        }
        if let Verdict::Unavailable(why) = &r.outcome.verdict {
            let _ = writeln!(out, "\n{} ignored: {why}", r.outcome.trial_name());
        }
    }
    out.push_str(&sharing(report));
    let scenarios = report
        .results
        .iter()
        .filter(|r| r.outcome.trial == Trial::Normal)
        .count();
    let necessity = report.results.len() - scenarios;
    let _ = writeln!(
        out,
        "\n{} scenarios and {} grant-necessity trials on the {} backend in {}",
        scenarios,
        necessity,
        report.backend,
        ms(report.wall_time)
    );
    let mut summary = format!("{} passed, {} failed", report.passed(), report.failed());
    if report.ignored() > 0 {
        let _ = write!(summary, ", {} skipped", report.ignored());
    }
    let _ = writeln!(out, "{summary}");
    out
}

/// Which trials shared which fixture and the VMs saved (empty when nothing was shared).
pub fn sharing(report: &RunReport) -> String {
    let mut out = String::new();
    if report.fixtures.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nshared fixtures: {}; VMs and scale sets created: {} (without sharing: {})",
        report.fixtures.len(),
        report.hosts_created(),
        report.hosts_without_sharing()
    );
    for f in &report.fixtures {
        let _ = writeln!(
            out,
            "  {} (steps {}; {} pool; created in {}, kept {}){}",
            f.name,
            f.steps.join(", "),
            f.pool.name(),
            ms(f.creation),
            ms(f.lifetime),
            match (&f.error, &f.teardown_error) {
                (Some(e), _) => format!(" CREATION FAILED: {e}"),
                (None, Some(t)) => format!(" TEARDOWN FAILED: {t}"),
                (None, None) => String::new(),
            }
        );
        for m in &f.members {
            let _ = writeln!(out, "    {m}");
        }
    }
    out
}

/// Machine-readable report.
pub fn json(report: &RunReport) -> Value {
    let results: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let o = &r.outcome;
            let failure = match &o.verdict {
                Verdict::Failed(f) => json!({
                    "step": f.step_index + 1, "step_id": f.step_id, "kind": f.step_kind,
                    "location": f.location, "message": f.message,
                    "mismatches": f.mismatches.iter().map(|m| json!({"what": m.what, "expected": m.expected, "actual": m.actual})).collect::<Vec<_>>(),
                    "rerun": o.rerun_command(),
                }),
                _ => Value::Null,
            };
            json!({
                "scenario": o.scenario_id,
                "backend": o.backend.to_string(),
                "trial": match o.trial { Trial::Normal => "normal", Trial::WithoutGrant => "without-grant" },
                "result": result_word(r),
                "passed": r.passed(),
                "duration_ms": o.duration.as_secs_f64() * 1000.0,
                "snapshot": match &r.snapshot {
                    None => Value::Null,
                    Some(Comparison::Matches) => json!("matches"),
                    Some(Comparison::Missing(p)) => json!({"missing": p.display().to_string()}),
                    Some(Comparison::Differs { path, diff }) => json!({"differs": path.display().to_string(), "diff": diff}),
                },
                "teardown_error": o.teardown_error,
                "failure": failure,
                "steps": o.steps.iter().map(|s| json!({
                    "id": s.id, "kind": s.kind, "location": s.location,
                    "status": match &s.status { StepStatus::Passed => "passed".to_string(), StepStatus::Failed => "failed".to_string(), StepStatus::Skipped(w) => format!("skipped: {w}") },
                    "requests": s.exchanges.len(),
                    "duration_ms": s.duration.as_secs_f64() * 1000.0,
                    "propagation_wait_ms": s.propagation_wait.map(|d| d.as_secs_f64() * 1000.0),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut out = json!({
        "backend": report.backend,
        "passed": report.passed(),
        "failed": report.failed(),
        "ignored": report.ignored(),
        "wall_time_ms": report.wall_time.as_secs_f64() * 1000.0,
        "results": results,
    });
    if !report.fixtures.is_empty() {
        out["sharing"] = json!({
            "hosts_created": report.hosts_created(),
            "hosts_without_sharing": report.hosts_without_sharing(),
            "fixtures": report.fixtures.iter().map(|f| json!({
                "name": f.name,
                "pool": f.pool.name(),
                "steps": f.steps,
                "hosts": f.hosts,
                "members": f.members,
                "creation_ms": f.creation.as_secs_f64() * 1000.0,
                "lifetime_ms": f.lifetime.as_secs_f64() * 1000.0,
                "error": f.error,
                "teardown_error": f.teardown_error,
            })).collect::<Vec<_>>(),
        });
    }
    out
}

/// JUnit XML, one test case per trial.
pub fn junit(report: &RunReport) -> String {
    let mut suite = TestSuite::new(format!("mic::{}", report.backend));
    for r in &report.results {
        let o = &r.outcome;
        let status = if r.ignored() {
            let mut s = TestCaseStatus::skipped();
            if let Verdict::Unavailable(why) = &o.verdict {
                s.set_message(why.clone());
            }
            s
        } else if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let text = o.failure_report().or_else(|| match &r.snapshot {
                Some(Comparison::Differs { diff, .. }) => {
                    Some(format!("snapshot differs:\n{diff}"))
                }
                _ => None,
            });
            s.set_message(result_word(r));
            if let Some(t) = text {
                s.set_description(t);
            }
            s
        };
        let mut case = TestCase::new(o.trial_name(), status);
        case.set_classname(
            o.scenario_id
                .split('/')
                .next()
                .unwrap_or("misc")
                .to_string(),
        );
        case.set_time(o.duration);
        suite.add_test_case(case);
    }
    let mut rep = Report::new("mic");
    rep.set_time(report.wall_time);
    rep.add_test_suite(suite);
    rep.to_string().unwrap_or_default()
}

/// The drift report: which shared snapshots this run's (redacted) transcripts differ from,
/// and how. On the live backend this is where the fakes are caught lying (or Azure changed).
pub fn drift_markdown(report: &RunReport) -> String {
    let mut out = format!("# Snapshot drift on the {} backend\n\n", report.backend);
    let differs: Vec<&TrialResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.snapshot, Some(Comparison::Differs { .. })))
        .collect();
    let missing: Vec<&TrialResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.snapshot, Some(Comparison::Missing(_))))
        .collect();
    let matching = report
        .results
        .iter()
        .filter(|r| matches!(r.snapshot, Some(Comparison::Matches)))
        .count();
    let _ = writeln!(
        out,
        "{matching} trials match their snapshot, {} differ, {} have none.\n",
        differs.len(),
        missing.len()
    );
    for r in differs {
        if let Some(Comparison::Differs { path, diff }) = &r.snapshot {
            let _ = writeln!(
                out,
                "## {}\n\n`{}` (`-` stored, `+` this run)\n\n```diff\n{}```\n",
                r.outcome.trial_name(),
                path.display(),
                diff
            );
        }
    }
    for r in missing {
        let _ = writeln!(out, "- {}: no stored snapshot", r.outcome.trial_name());
    }
    out
}
