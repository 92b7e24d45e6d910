//! Cost and time per scenario trial, from the driver's outcome.
//!
//! What was created (every successful PUT, as `type/name`), how long each phase took
//! (provision, grant, fetch-token, call, teardown), the propagation wait observed after a
//! grant, and the VM-minutes with their approximate price ([`crate::cost`]): a VM counts
//! from the start of the step that created it to the end of teardown.

use std::fmt::Write as _;
use std::time::Duration;

use mic_core::driver::RunOutcome;
use mic_core::model::Os;
use mic_core::runner::FixtureReport;

use crate::cost::CostEstimate;

/// One trial's cost and time.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub trial: String,
    pub created: Vec<String>,
    /// (phase, time), in phase order, phases that ran only.
    pub phases: Vec<(&'static str, Duration)>,
    pub propagation_wait: Option<Duration>,
    pub total: Duration,
    pub cost: CostEstimate,
}

const PHASES: [&str; 5] = ["provision", "grant", "fetch_token", "call", "teardown"];

/// The report of one outcome; `vm_size`/`os` price the VM-minutes.
pub fn scenario_report(outcome: &RunOutcome, vm_size: &str, os: Os) -> ScenarioReport {
    let mut phases: Vec<(&'static str, Duration)> = Vec::new();
    let mut created = Vec::new();
    let mut vm_time = Duration::ZERO;
    let mut vm_count = 0u32;
    let mut vm_running = false;
    let mut propagation_wait = None;
    for rec in &outcome.steps {
        let phase = PHASES
            .iter()
            .find(|p| rec.kind.starts_with(*p))
            .copied()
            .unwrap_or("other");
        match phases.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, d)) => *d += rec.duration,
            None => phases.push((phase, rec.duration)),
        }
        // A shared fixture's VM is counted once, in its own report (`fixture_report`).
        if (rec.kind == "provision.vm" || rec.kind == "provision.vmss") && rec.shared.is_none() {
            vm_count += 1;
            vm_running = true;
        }
        if vm_running {
            vm_time += rec.duration;
        }
        if let Some(w) = rec.propagation_wait {
            propagation_wait = Some(propagation_wait.map_or(w, |p: Duration| p.max(w)));
        }
        for ex in &rec.exchanges {
            let ok = ex
                .response
                .as_ref()
                .is_some_and(mic_core::backend::HttpResponse::is_success);
            if ex.request.method == "PUT" && ok {
                let path = ex.request.url.split('?').next().unwrap_or_default();
                if let Some((ty, name)) = crate::arm::resource_type(path) {
                    let item = format!("{}/{name}", ty.rsplit('/').next().unwrap_or(&ty));
                    if !created.contains(&item) {
                        created.push(item);
                    }
                }
            }
        }
    }
    phases.sort_by_key(|(p, _)| PHASES.iter().position(|x| x == p).unwrap_or(PHASES.len()));
    let vm_minutes =
        vm_time.as_secs_f64() / 60.0 * f64::from(vm_count.max(u32::from(vm_count > 0)));
    ScenarioReport {
        trial: outcome.trial_name(),
        created,
        phases,
        propagation_wait,
        total: outcome.duration,
        cost: CostEstimate::new(vm_size, os == Os::Windows, vm_minutes),
    }
}

/// The report of a shared fixture: what it created, and its VMs' minutes from the start of
/// its creation to the end of its teardown (the last member's).
pub fn fixture_report(fixture: &FixtureReport, vm_size: &str) -> ScenarioReport {
    let mut created = Vec::new();
    let mut phases: Vec<(&'static str, Duration)> = Vec::new();
    for rec in &fixture.records {
        let phase = if rec.kind == "teardown" {
            "teardown"
        } else {
            "provision"
        };
        match phases.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, d)) => *d += rec.duration,
            None => phases.push((phase, rec.duration)),
        }
        for ex in &rec.exchanges {
            let ok = ex
                .response
                .as_ref()
                .is_some_and(mic_core::backend::HttpResponse::is_success);
            if ex.request.method == "PUT" && ok {
                let path = ex.request.url.split('?').next().unwrap_or_default();
                if let Some((ty, name)) = crate::arm::resource_type(path) {
                    let item = format!("{}/{name}", ty.rsplit('/').next().unwrap_or(&ty));
                    if !created.contains(&item) {
                        created.push(item);
                    }
                }
            }
        }
    }
    #[allow(clippy::cast_precision_loss)] // a handful of VMs
    let vm_minutes = fixture.lifetime.as_secs_f64() / 60.0 * fixture.hosts as f64;
    ScenarioReport {
        trial: format!(
            "{} (shared by {} trials)",
            fixture.name,
            fixture.members.len()
        ),
        created,
        phases,
        propagation_wait: None,
        total: fixture.lifetime,
        cost: CostEstimate::new(vm_size, fixture.os == Os::Windows, vm_minutes),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A table of reports and the run's total estimate.
pub fn render(reports: &[ScenarioReport]) -> String {
    let mut out = String::from("cost and time per trial (estimates; see mic_live::cost)\n");
    let mut total = 0.0;
    for r in reports {
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|(p, d)| format!("{p} {}", secs(*d)))
            .collect();
        let _ = writeln!(out, "{}  total {}  {}", r.trial, secs(r.total), r.cost);
        let _ = writeln!(out, "  phases: {}", phases.join(", "));
        if let Some(w) = r.propagation_wait {
            let _ = writeln!(out, "  waited {} for a grant to propagate", secs(w));
        }
        if !r.created.is_empty() {
            let _ = writeln!(out, "  created: {}", r.created.join(", "));
        }
        total += r.cost.usd.unwrap_or(0.0);
    }
    let _ = writeln!(out, "total estimate: ~${total:.4}");
    out
}
