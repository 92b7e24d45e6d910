//! Plans and runs many scenarios on one backend, concurrently, and pairs each outcome with
//! its snapshot comparison. Shared by the `mic` CLI; the conformance tests run the same
//! [`crate::driver::run`] per trial.

use std::path::Path;
use std::sync::Arc;
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

/// The whole run.
#[derive(Debug)]
pub struct RunReport {
    pub backend: String,
    pub results: Vec<TrialResult>,
    pub wall_time: Duration,
}

impl RunReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed() && !r.ignored()).count()
    }
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| !r.passed() && !r.ignored()).count()
    }
    pub fn ignored(&self) -> usize {
        self.results.iter().filter(|r| r.ignored()).count()
    }
}

/// Run `(scenario, trial)` pairs with at most `concurrency` at once, in a stable order.
pub async fn run_all(
    backend: Arc<dyn Backend>,
    work: Vec<(Arc<Scenario>, Trial)>,
    concurrency: usize,
    snapshot_root: Option<&Path>,
) -> RunReport {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut handles = Vec::with_capacity(work.len());
    for (scenario, trial) in work {
        let backend = backend.clone();
        let permits = permits.clone();
        handles.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore is never closed");
            driver::run(backend.as_ref(), &scenario, trial).await
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
    RunReport { backend: backend.kind().to_string(), results, wall_time: started.elapsed() }
}
