//! Plans and runs many scenarios on one backend, concurrently, and pairs each outcome with
//! its snapshot comparison. Shared by the `mic` CLI; the conformance tests run the same
//! [`crate::driver::run`] per trial.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::backend::Backend;
use crate::driver::{self, RunOutcome, Trial};
use crate::model::Scenario;
use crate::snapshot::{self, Comparison};

/// Every trial a scenario gets: the scenario as written, plus the grant-necessity trial when
/// it grants access.
pub fn trials(scenario: &Scenario) -> Vec<Trial> {
    if scenario.has_grants() {
        vec![Trial::Normal, Trial::WithoutGrant]
    } else {
        vec![Trial::Normal]
    }
}

/// One finished trial with its snapshot verdict.
#[derive(Debug)]
pub struct TrialResult {
    pub outcome: RunOutcome,
    pub snapshot: Option<Comparison>,
}

impl TrialResult {
    /// Passed the run and (if a snapshot is stored) matched it.
    pub fn passed(&self) -> bool {
        self.outcome.passed() && !matches!(self.snapshot, Some(Comparison::Differs { .. }))
    }

    pub fn ignored(&self) -> bool {
        matches!(self.outcome.verdict, driver::Verdict::Unavailable(_))
    }
}

/// A fixture several trials shared (see [`crate::share`]).
#[derive(Debug)]
pub struct FixtureReport {
    pub name: String,
    pub pool: crate::share::Pool,
    /// Ids of the steps it provided.
    pub steps: Vec<String>,
    pub os: crate::model::Os,
    /// VMs / scale sets it holds.
    pub hosts: usize,
    /// Trial names (`scenario::backend[::without-grant]`) that used it.
    pub members: Vec<String>,
    /// Creation and teardown step records (empty when creation failed early).
    pub records: Vec<driver::StepRecord>,
    pub creation: Duration,
    /// From the start of its creation to the end of its teardown.
    pub lifetime: Duration,
    pub error: Option<String>,
    pub teardown_error: Option<String>,
}

/// The whole run.
#[derive(Debug)]
pub struct RunReport {
    pub backend: String,
    pub results: Vec<TrialResult>,
    pub wall_time: Duration,
    /// Shared fixtures (empty when sharing was off or nothing could share).
    pub fixtures: Vec<FixtureReport>,
}

fn is_host_step(rec: &driver::StepRecord) -> bool {
    (rec.kind == "provision.vm" || rec.kind == "provision.vmss")
        && !matches!(rec.status, driver::StepStatus::Skipped(_))
}

impl RunReport {
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.passed() && !r.ignored())
            .count()
    }
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !r.passed() && !r.ignored())
            .count()
    }
    pub fn ignored(&self) -> usize {
        self.results.iter().filter(|r| r.ignored()).count()
    }

    /// VMs and scale sets this run created (or tried to).
    pub fn hosts_created(&self) -> usize {
        let own = self
            .results
            .iter()
            .flat_map(|r| &r.outcome.steps)
            .filter(|s| is_host_step(s) && s.shared.is_none())
            .count();
        let shared = self
            .fixtures
            .iter()
            .flat_map(|f| &f.records)
            .filter(|s| is_host_step(s))
            .count();
        own + shared
    }

    /// VMs and scale sets the same trials would have created each on their own.
    pub fn hosts_without_sharing(&self) -> usize {
        self.results
            .iter()
            .flat_map(|r| &r.outcome.steps)
            .filter(|s| is_host_step(s))
            .count()
    }
}

/// How [`run_all_with`] runs.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// At most this many trials (or fixture creations) at once.
    pub concurrency: usize,
    /// Let trials share fixtures where [`crate::share::plan`] allows it (only on backends
    /// whose environments see one cloud, [`Backend::shares_fixtures`]).
    pub share: bool,
}

/// Run `(scenario, trial)` pairs with at most `concurrency` at once, in a stable order,
/// sharing fixtures where that is safe.
pub async fn run_all(
    backend: Arc<dyn Backend>,
    work: Vec<(Arc<Scenario>, Trial)>,
    concurrency: usize,
    snapshot_root: Option<&Path>,
) -> RunReport {
    let options = RunOptions {
        concurrency,
        share: true,
    };
    run_all_with(backend, work, options, snapshot_root).await
}

/// One fixture's state during a run.
struct Slot {
    plan: crate::share::FixturePlan,
    os: crate::model::Os,
    cell: tokio::sync::OnceCell<Result<Arc<tokio::sync::RwLock<driver::Fixture>>, String>>,
    /// Members that have not finished yet; the last one tears the fixture down.
    remaining: AtomicUsize,
    members: Vec<String>,
    started: Mutex<Option<Instant>>,
    report: Mutex<Option<FixtureReport>>,
}

/// The fixtures `work` would share, each with the indices of its members: a fixture is made
/// only for two trials or more.
pub fn shared_fixtures(
    work: &[(Arc<Scenario>, Trial)],
) -> Vec<(crate::share::FixturePlan, Vec<usize>)> {
    let mut by_key: BTreeMap<String, (crate::share::FixturePlan, Vec<usize>)> = BTreeMap::new();
    for (i, (s, t)) in work.iter().enumerate() {
        if let Ok(plan) = crate::share::plan(s, *t) {
            by_key
                .entry(plan.key.clone())
                .or_insert_with(|| (plan, Vec::new()))
                .1
                .push(i);
        }
    }
    by_key.into_values().filter(|(_, m)| m.len() >= 2).collect()
}

fn share_plan(work: &[(Arc<Scenario>, Trial)], backend: &str) -> Vec<Option<Arc<Slot>>> {
    let mut slots = vec![None; work.len()];
    for (plan, members) in shared_fixtures(work) {
        let names = members
            .iter()
            .map(|&j| {
                let (s, t) = &work[j];
                format!("{}::{backend}{}", s.id.value, t.suffix())
            })
            .collect();
        let slot = Arc::new(Slot {
            os: work[members[0]].0.host.os,
            plan,
            cell: tokio::sync::OnceCell::new(),
            remaining: AtomicUsize::new(members.len()),
            members: names,
            started: Mutex::new(None),
            report: Mutex::new(None),
        });
        for j in members {
            slots[j] = Some(slot.clone());
        }
    }
    slots
}

/// Run `(scenario, trial)` pairs with at most `options.concurrency` at once, in a stable
/// order. With `options.share`, trials that may share a fixture wait for the one creation of
/// it (without holding a concurrency slot), and the last of them to finish tears it down.
///
/// # Panics
/// A trial's task panicked.
pub async fn run_all_with(
    backend: Arc<dyn Backend>,
    work: Vec<(Arc<Scenario>, Trial)>,
    options: RunOptions,
    snapshot_root: Option<&Path>,
) -> RunReport {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let slots = if options.share && backend.shares_fixtures() {
        share_plan(&work, backend.kind().name())
    } else {
        vec![None; work.len()]
    };
    let mut handles = Vec::with_capacity(work.len());
    for ((scenario, trial), slot) in work.into_iter().zip(slots.iter().cloned()) {
        let backend = backend.clone();
        let permits = permits.clone();
        handles.push(tokio::spawn(async move {
            let Some(slot) = slot else {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                return driver::run(backend.as_ref(), &scenario, trial).await;
            };
            run_member(backend.as_ref(), &scenario, trial, &slot, &permits).await
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for h in handles {
        let outcome = match h.await {
            Ok(o) => o,
            Err(e) => panic!("a scenario task panicked: {e}"),
        };
        let snapshot = snapshot_root.and_then(|root| snapshot::compare(root, &outcome));
        results.push(TrialResult { outcome, snapshot });
    }
    let mut fixtures = Vec::new();
    let mut seen = BTreeSet::new();
    for slot in slots.into_iter().flatten() {
        if seen.insert(slot.plan.key.clone())
            && let Some(r) = slot.report.lock().expect("not poisoned").take()
        {
            fixtures.push(r);
        }
    }
    RunReport {
        backend: backend.kind().to_string(),
        results,
        wall_time: started.elapsed(),
        fixtures,
    }
}

async fn run_member(
    backend: &dyn Backend,
    scenario: &Scenario,
    trial: Trial,
    slot: &Slot,
    permits: &Arc<Semaphore>,
) -> RunOutcome {
    let fixture = slot
        .cell
        .get_or_init(|| async {
            let _permit = permits.acquire().await.expect("semaphore is never closed");
            *slot.started.lock().expect("not poisoned") = Some(Instant::now());
            driver::Fixture::create(backend, scenario, &slot.plan)
                .await
                .map(|f| Arc::new(tokio::sync::RwLock::new(f)))
        })
        .await
        .clone();
    let mut outcome = {
        let _permit = permits.acquire().await.expect("semaphore is never closed");
        match &fixture {
            Ok(f) => {
                // Members only read the fixture; the teardown (a write) comes after all.
                let f = f.read().await;
                driver::run_with_fixture(backend, scenario, trial, Some(&f)).await
            }
            Err(e) => driver::fixture_failed(backend.kind(), scenario, trial, &slot.plan, e),
        }
    };
    if slot.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        let _permit = permits.acquire().await.expect("semaphore is never closed");
        let lifetime_start = slot
            .started
            .lock()
            .expect("not poisoned")
            .unwrap_or_else(Instant::now);
        let report = match &fixture {
            Ok(f) => {
                let mut f = f.write().await;
                let teardown_error = f.teardown().await;
                if let Some(t) = &teardown_error {
                    let msg = format!("shared fixture {}: {t}", f.name);
                    outcome.teardown_error = Some(match outcome.teardown_error.take() {
                        Some(own) => format!("{own}; {msg}"),
                        None => msg,
                    });
                }
                FixtureReport {
                    name: f.name.clone(),
                    pool: slot.plan.pool,
                    steps: slot.plan.steps.iter().cloned().collect(),
                    os: slot.os,
                    hosts: slot.plan.hosts,
                    members: slot.members.clone(),
                    records: std::mem::take(&mut f.records),
                    creation: f.creation,
                    lifetime: lifetime_start.elapsed(),
                    error: None,
                    teardown_error,
                }
            }
            Err(e) => FixtureReport {
                name: slot.plan.name.clone(),
                pool: slot.plan.pool,
                steps: slot.plan.steps.iter().cloned().collect(),
                os: slot.os,
                hosts: slot.plan.hosts,
                members: slot.members.clone(),
                records: Vec::new(),
                creation: lifetime_start.elapsed(),
                lifetime: lifetime_start.elapsed(),
                error: Some(e.clone()),
                teardown_error: None,
            },
        };
        *slot.report.lock().expect("not poisoned") = Some(report);
    }
    outcome
}
